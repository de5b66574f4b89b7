"""The ``distribute`` and ``gather`` passes: a recurrent weight's gradient as one matmul.

What they buy: a weight used at every step of a recurrent layer gets its gradient as one
product per step, added up as it arrives; one matmul over the stacked factors does the same
sum with one call into BLAS instead of one per step, and none of the additions. The user cell
of ``examples/custom_cell.py``, which splits its weight at every step, needs ``distribute``
first so that ``gather`` sees plain sums of products. Figures (``benchmarks/passes.py``):
without ``gather`` the language-model step takes 25.6 ms instead of 21.8 (big), 0.55 instead of
0.46 ms (tiny); without ``distribute`` the minimal gated unit's step takes 31.3 ms instead of
16.5 (big), 1.10 instead of 0.87 ms (tiny).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from minigrad.compile.passes import find_makers, find_readers
from minigrad.compile.program import Instr, Program, new_instr, new_slots
from minigrad.ops.elementwise import Add
from minigrad.ops.linalg import Linear, MatMul
from minigrad.ops.shape import Concat, Reshape, Split, Stack, Transpose


def _rewritten(instrs: list[Instr], replaced: dict[int, list[Instr]],
               removed: Collection[int] = ()) -> list[Instr]:
    """``instrs`` with the instruction at each position in ``replaced`` replaced by its list,
    and those at the positions in ``removed`` dropped."""
    return [new for k, ins in enumerate(instrs)
            for new in replaced.get(k, [] if k in removed else [ins])]


def distribute(program: Program) -> Program:
    """Move sums inside concatenations and transposes: ``Σ concat(aᵢ, bᵢ)`` becomes
    ``concat(Σ aᵢ, Σ bᵢ)``, and ``Σ transpose(pᵢ)`` becomes ``transpose(Σ pᵢ)``; and splits
    inside sums: ``split(x @ Wᵀ + b)`` becomes ``split(x @ Wᵀ) + split(b)``.

    A cell that splits its weight, ``u_f, u_h = w_hh.chunk(2)``, and multiplies by ``u_f.T``
    at every step gets the weight's gradient as a sum over the steps of concatenations of
    transposed products. Once the sums are inside, each is a plain sum of products that
    ``gather`` turns into one matmul. Repeated until no such sum is left. A gated cell's step
    splits ``h @ W_hhᵀ + x_t W_ihᵀ`` into its gates; added piece by piece, the sum goes into
    the kernel that ``fuse`` makes of the gates' elementwise ops, instead of being one more
    pass over memory before it.
    """
    program = _split_biases(program)
    while True:
        instrs = program.instrs
        readers, maker = find_readers(instrs), find_makers(instrs)
        meta = dict(program.meta)
        replaced: dict[int, list[Instr]] = {}
        removed: set[int] = set()
        for root, ins in enumerate(instrs):
            if ins.op is not Add or _inside_a_sum(ins.outputs[0], instrs, readers):
                continue
            terms, adds = _sum_terms(root, instrs, readers, maker)
            leaves = [maker.get(s) for s in terms]
            if None in leaves or not _alike([instrs[k] for k in leaves], terms, readers, meta,
                                            meta[ins.outputs[0]]):
                continue
            first, parts, new = instrs[leaves[0]], [], []
            for position in range(len(first.inputs)):
                total = first.inputs[position]
                for k in leaves[1:]:
                    out, = new_slots(meta, meta[total])
                    new.append(new_instr(Add, (total, instrs[k].inputs[position]), (out,)))
                    total = out
                parts.append(total)
            replaced[root] = new + [replace(first, inputs=tuple(parts), outputs=ins.outputs)]
            removed.update(adds + leaves)
        if not replaced:
            return program
        program = replace(program, instrs=_rewritten(instrs, replaced, removed), meta=meta)


def _split_biases(program: Program) -> Program:
    """``split(linear(x, W, b))``, with ``b`` of the output's shape and the split its only
    reader, becomes ``split(linear(x, W)) + split(b)``, a piece at a time."""
    instrs = program.instrs
    readers, meta = find_readers(instrs), dict(program.meta)
    replaced: dict[int, list[Instr]] = {}
    for k, ins in enumerate(instrs):
        out = ins.outputs[0]
        if (ins.op is not Linear or len(ins.inputs) != 3 or out in program.outputs
                or meta[ins.inputs[2]] != meta[out] or len(readers[out]) != 1
                or instrs[readers[out][0]].op is not Split):
            continue
        split = instrs[readers[out][0]]
        product, = new_slots(meta, meta[out])
        pieces = [replace(split, inputs=(whole,),
                          outputs=new_slots(meta, *[meta[q] for q in split.outputs]))
                  for whole in (product, ins.inputs[2])]
        replaced[k] = [replace(ins, inputs=ins.inputs[:2], outputs=(product,)), *pieces,
                       *[new_instr(Add, (p, q), (y,))
                         for p, q, y in zip(pieces[0].outputs, pieces[1].outputs, split.outputs)]]
        replaced[readers[out][0]] = []
    if not replaced:
        return program
    return replace(program, instrs=_rewritten(instrs, replaced), meta=meta)


def _alike(leaves: list[Instr], terms: list[int], readers: dict[int, list[int]], meta: dict,
           target: tuple) -> bool:
    """Whether the terms of a sum are two or more concatenations (or transposes) with the same
    options and input shapes, each read by the sum alone, of the sum's own shape."""
    first = leaves[0]
    return (len(leaves) > 1 and first.op in (Concat, Transpose)
            and all(leaf.op is first.op and leaf.options == first.options
                    and [meta[s] for s in leaf.inputs] == [meta[s] for s in first.inputs]
                    and len(readers[s]) == 1 and meta[s] == target
                    for leaf, s in zip(leaves, terms)))


def _sum_terms(root: int, instrs: list[Instr], readers: dict[int, list[int]],
               maker: dict[int, int]) -> tuple[list[int], list[int]]:
    """The slots that the Add at ``root`` adds up, through Adds that only it reads (partial
    sums), in order; and the positions of all those Adds."""
    terms, adds, pending = [], [], [instrs[root].outputs[0]]
    while pending:
        s = pending.pop()
        k = maker.get(s)
        if k is not None and instrs[k].op is Add and (
                k == root or _inside_a_sum(s, instrs, readers)):
            adds.append(k)
            pending += reversed(instrs[k].inputs)
        else:
            terms.append(s)
    return terms, adds


def gather(program: Program) -> Program:
    """Turn a sum of products ``Σ aᵢᵀ bᵢ`` into one product ``[a₁; a₂; ...]ᵀ [b₁; b₂; ...]``.

    A weight used at every step of a recurrent layer gets its gradient as one such product per
    step, added up as it arrives. One matmul over the stacked factors does the same sum with one
    call into BLAS instead of one per step, and none of the additions. Only a sum made entirely
    of such products, each read by the sum alone, is rewritten. A transpose ``aᵢᵀ`` goes too
    unless something else still reads it (two pieces of a weight that multiply the same ``h``).
    """
    instrs = program.instrs
    readers, maker = find_readers(instrs), find_makers(instrs)
    meta = dict(program.meta)
    replaced: dict[int, list[Instr]] = {}  # position of a sum -> the instructions it becomes
    removed: set[int] = set()
    for root, ins in enumerate(instrs):
        if ins.op is not Add or _inside_a_sum(ins.outputs[0], instrs, readers):
            continue
        found = _sum_of_products(root, instrs, readers, maker, meta)
        if found is None:
            continue
        (lefts, rights), positions = found
        out = ins.outputs[0]
        (p, q), dtype = meta[out]
        rows = sum(meta[s][0][0] for s in lefts)
        a, b, a_t = new_slots(meta, ((rows, p), dtype), ((rows, q), dtype), ((p, rows), dtype))
        stack = _stack_of(lefts, instrs, readers)  # a = [a₁; a₂; ...], b = [b₁; b₂; ...]
        if stack is None:
            joined = [new_instr(Concat, lefts, (a,), axis=0)]
        else:  # the program stacks the aᵢ already (for another gradient): read that, in its order
            paired = dict(zip(lefts, rights))
            rights = tuple(paired[s] for s in instrs[stack].inputs)
            joined = [new_instr(Reshape, instrs[stack].outputs, (a,), shape=meta[a][0])]
            if stack > root:  # moved up to here: the aᵢ are all made by now
                joined.insert(0, instrs[stack])
                removed.add(stack)
        replaced[root] = [*joined, new_instr(Concat, rights, (b,), axis=0),
                          new_instr(Transpose, (a,), (a_t,), axes=None),
                          new_instr(MatMul, (a_t, b), (out,))]
        removed.update(positions)
    for k in list(removed):  # keep a transpose that something besides the products reads
        if instrs[k].op is Transpose and not set(readers[instrs[k].outputs[0]]) <= removed:
            removed.discard(k)
    return replace(program, instrs=_rewritten(instrs, replaced, removed), meta=meta)


def _stack_of(slots: tuple[int, ...], instrs: list[Instr], readers: dict[int, list[int]]
              ) -> int | None:
    """The position of a ``Stack`` along axis 0 of exactly ``slots`` (in any order), if one
    of their readers is one."""
    if len(set(slots)) != len(slots):
        return None
    for k in readers[slots[0]]:
        ins = instrs[k]
        if ins.op is Stack and ins.options["axis"] == 0 and sorted(ins.inputs) == sorted(slots):
            return k
    return None


def _sum_of_products(root: int, instrs: list[Instr], readers: dict[int, list[int]],
                     maker: dict[int, int], meta: dict
                     ) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], list[int]] | None:
    """For the Add at ``root``: the factors ``(a₁, a₂, ...), (b₁, b₂, ...)`` of the products
    ``MatMul(Transpose(aᵢ), bᵢ)`` of matrices it adds up, through Adds that only it reads, and
    the positions of all those instructions; None if it adds anything else."""
    target = meta[instrs[root].outputs[0]]
    terms, positions = _sum_terms(root, instrs, readers, maker)
    lefts, rights = [], []
    for s in terms:
        k = maker.get(s)
        if k is None or instrs[k].op is not MatMul or len(readers[s]) != 1 or meta[s] != target:
            return None
        transposed, right = instrs[k].inputs
        j = maker.get(transposed)
        if (j is None or instrs[j].op is not Transpose or instrs[j].options["axes"] is not None
                or len(meta[transposed][0]) != 2 or meta[right][1] != target[1]):
            return None
        lefts.append(instrs[j].inputs[0])
        rights.append(right)
        positions += [j, k]
    return (tuple(lefts), tuple(rights)), positions


def _inside_a_sum(s: int, instrs: list[Instr], readers: dict[int, list[int]]) -> bool:
    """Whether slot ``s`` is read by one instruction only, an Add (so it is a partial sum)."""
    return len(readers[s]) == 1 and instrs[readers[s][0]].op is Add
