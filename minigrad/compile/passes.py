"""Passes: each takes a ``Program`` and returns a new one that computes the same outputs, and
does one thing. ``mg.compile(fn, passes=("dce",))`` picks them by name (``PASSES``).

- ``decompose``: cross-entropy and its gradient become ops on the same softmax terms of the
  logits (their max, ``exp(x - max)`` and its sum), which ``cse`` then computes once for both
  programs.
- ``dce``: dead-code elimination. Tracing records every op the function applied, also those
  whose results it then dropped (the unused pieces of a ``chunk``, a final state nobody
  reads); backward records the gradients of values no input needs. Walking backwards from the
  outputs keeps what they depend on.
- ``cse``: common-subexpression elimination. A cell that splits or transposes its weight at
  every step records the same op on the same slots once per step; it runs once. A backward
  program reads what its forward already computed instead of computing it again.
- ``distribute``: a sum of concatenations becomes a concatenation of sums, and a sum of
  transposes the transpose of a sum (a cell that splits its weight sums, at every step, the
  pieces of the weight's gradient).
- ``gather``: a weight's gradient summed over the steps that used it, ``Σ aᵢᵀ bᵢ``, becomes
  one matmul of the stacked factors.
- ``fuse``: elementwise fusion. A run of elementwise instructions (``Sigmoid``, ``Mul``,
  ``Add``...) over arrays of one shape becomes one generated kernel (see ``kernels.py``) that
  reads the run's inputs once and writes only the values used after it; the split before
  the run and the concatenation after it are taken in.
- ``free``: buffer reuse by liveness: each array is let go right after its last reader, so
  that the memory of dead intermediates serves the next ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from minigrad.compile.kernels import fusible, make_kernel
from minigrad.compile.program import Instr, Program
from minigrad.ops.elementwise import Add, Exp, Sub
from minigrad.ops.linalg import Linear, MatMul
from minigrad.ops.nn import (
    CrossEntropy,
    CrossEntropyGrad,
    CrossEntropyGradOfTerms,
    CrossEntropyOfTerms,
)
from minigrad.ops.reduce import Max, Sum
from minigrad.ops.shape import Concat, Reshape, Split, Stack, Transpose


def dead_code_elimination(program: Program) -> Program:
    """Drop every instruction whose outputs no output depends on (random draws stay: dropping
    one would shift the numbers the later ones draw)."""
    live = set(program.outputs)
    kept = []
    for ins in reversed(program.instrs):
        if ins.impure or live.intersection(ins.outputs):
            kept.append(ins)
            live.update(ins.inputs)
    constants = {s: a for s, a in program.constants.items() if s in live}
    return replace(program, instrs=kept[::-1], constants=constants)


def common_subexpressions(program: Program) -> Program:
    """Run each op once per distinct (op, options, input slots): a later instruction that
    repeats an earlier one is dropped, and its readers read the earlier one's outputs. Random
    draws are never merged (each draws afresh)."""
    return merge_repeats(program)[0]


def merge_repeats(program: Program, known: Program | None = None
                  ) -> tuple[Program, dict[int, int]]:
    """``common_subexpressions``, and the map from each dropped instruction's output slot to
    the slot that holds the same value (for a program that reads this one's values). With
    ``known``, the program that ``program`` reads values of (a backward program's forward), an
    instruction that repeats one of ``known``'s is dropped too: it reads ``known``'s slots."""
    alias: dict[int, int] = {}
    seen = {_key(ins): ins for ins in known.instrs if not ins.impure} if known else {}
    meta = dict(program.meta)
    kept = []
    for ins in program.instrs:
        ins = replace(ins, inputs=tuple(alias.get(s, s) for s in ins.inputs))
        first = None if ins.impure else seen.get(_key(ins))
        if first is None:
            seen.setdefault(_key(ins), ins)
            kept.append(ins)
        else:
            alias.update(zip(ins.outputs, first.outputs))
            meta.update({s: meta[o] for s, o in zip(first.outputs, ins.outputs)})
    outputs = [alias.get(s, s) for s in program.outputs]
    return replace(program, instrs=kept, outputs=outputs, meta=meta), alias


def _key(ins: Instr) -> tuple:
    """What makes two instructions compute the same: op, options and input slots."""
    return (ins.op or ins.label, repr(ins.options), ins.inputs)


def decompose(program: Program) -> Program:
    """Split cross-entropy and its gradient into the ops that compute the softmax's terms,
    ``m = max(x)``, ``e = exp(x - m)`` and ``total = sum(e)`` along the class axis, and an op
    that finishes each from those terms.

    Both then start with the same ops on the same logits, which ``cse`` runs once: the
    backward program reads the forward's ``e`` instead of exponentiating the logits again. And
    ``x - m`` and ``exp`` are elementwise, so ``fuse`` makes them one kernel.
    """
    meta = dict(program.meta)
    instrs = []
    for ins in program.instrs:
        if ins.op not in (CrossEntropy, CrossEntropyGrad):
            instrs.append(ins)
            continue
        x, t, w, *g = ins.inputs
        axis = ins.options["axis"]
        shape, dtype = meta[x]
        m, z, e, total = _new_slots(meta, ((*shape[:axis], 1, *shape[axis + 1:]), dtype),
                                    meta[x], meta[x], ((*shape[:axis], *shape[axis + 1:]), dtype))
        instrs += [_instr(Max, (x,), (m,), axis=axis, keepdims=True),
                   _instr(Sub, (x, m), (z,)),
                   _instr(Exp, (z,), (e,)),
                   _instr(Sum, (e,), (total,), axis=axis, keepdims=False)]
        if ins.op is CrossEntropy:
            instrs.append(_instr(CrossEntropyOfTerms, (m, total, x, t, w), ins.outputs,
                                 **ins.options))
        else:
            instrs.append(_instr(CrossEntropyGradOfTerms, (e, total, t, w, *g), ins.outputs,
                                 axis=axis))
    return replace(program, instrs=instrs, meta=meta)


def _instr(op: type, inputs: tuple[int, ...], outputs: tuple[int, ...], **options) -> Instr:
    """An instruction that runs ``op(**options)``'s forward."""
    return Instr(op.__name__, op(**options).forward, inputs, outputs, len(outputs) > 1, op,
                 options)


def _new_slots(meta: dict, *kinds: tuple) -> tuple[int, ...]:
    """New slots after the last one in ``meta``, one per ``(shape, dtype)`` in ``kinds``,
    entered in ``meta``."""
    start = max(meta) + 1
    slots = tuple(range(start, start + len(kinds)))
    meta.update(zip(slots, kinds))
    return slots


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
        readers, maker = _readers(instrs), _makers(instrs)
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
                    out, = _new_slots(meta, meta[total])
                    new.append(_instr(Add, (total, instrs[k].inputs[position]), (out,)))
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
    readers, meta = _readers(instrs), dict(program.meta)
    replaced: dict[int, list[Instr]] = {}
    for k, ins in enumerate(instrs):
        out = ins.outputs[0]
        if (ins.op is not Linear or len(ins.inputs) != 3 or out in program.outputs
                or meta[ins.inputs[2]] != meta[out] or len(readers[out]) != 1
                or instrs[readers[out][0]].op is not Split):
            continue
        split = instrs[readers[out][0]]
        product, = _new_slots(meta, meta[out])
        pieces = [replace(split, inputs=(whole,),
                          outputs=_new_slots(meta, *[meta[q] for q in split.outputs]))
                  for whole in (product, ins.inputs[2])]
        replaced[k] = [replace(ins, inputs=ins.inputs[:2], outputs=(product,)), *pieces,
                       *[_instr(Add, (p, q), (y,))
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
    readers, maker = _readers(instrs), _makers(instrs)
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
        a, b, a_t = _new_slots(meta, ((rows, p), dtype), ((rows, q), dtype), ((p, rows), dtype))
        stack = _stack_of(lefts, instrs, readers)  # a = [a₁; a₂; ...], b = [b₁; b₂; ...]
        if stack is None:
            joined = [_instr(Concat, lefts, (a,), axis=0)]
        else:  # the program stacks the aᵢ already (for another gradient): read that, in its order
            paired = dict(zip(lefts, rights))
            rights = tuple(paired[s] for s in instrs[stack].inputs)
            joined = [_instr(Reshape, instrs[stack].outputs, (a,), shape=meta[a][0])]
            if stack > root:  # moved up to here: the aᵢ are all made by now
                joined.insert(0, instrs[stack])
                removed.add(stack)
        replaced[root] = [*joined, _instr(Concat, rights, (b,), axis=0),
                          _instr(Transpose, (a,), (a_t,), axes=None),
                          _instr(MatMul, (a_t, b), (out,))]
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


def _readers(instrs: list[Instr]) -> dict[int, list[int]]:
    """Slot -> the positions of the instructions that read it."""
    readers: dict[int, list[int]] = defaultdict(list)
    for k, ins in enumerate(instrs):
        for s in ins.inputs:
            readers[s].append(k)
    return readers


def _makers(instrs: list[Instr]) -> dict[int, int]:
    """Slot -> the position of the instruction that makes it."""
    return {s: k for k, ins in enumerate(instrs) for s in ins.outputs}


def fuse(program: Program) -> Program:
    """Replace groups of elementwise instructions of one output shape, each joined to the next
    by data, with one kernel per group.

    Instructions are visited in order; one joins the groups of the instructions that made its
    inputs when the kernel can take the place of its last member: no instruction outside the
    group, before that place, may read a value the group makes. A kernel reads pieces of a
    split from the whole array and writes the parts of a concatenation in place (an LSTM
    step's four gates, and their four gradients), so those ops go too.
    """
    instrs = program.instrs
    readers, maker = _readers(instrs), _makers(instrs)
    group_of: dict[int, list[int]] = {}  # position -> the positions of its group, in order

    def closed(members: list[int], end: int) -> bool:
        return all(r in members or r > end
                   for m in members for s in instrs[m].outputs for r in readers[s])

    for k, ins in enumerate(instrs):
        if not fusible(ins):
            continue
        shape = program.meta[ins.outputs[0]][0]
        members = [k]
        for s in ins.inputs:
            group = group_of.get(maker.get(s, -1))
            if group is None or group[0] in members or program.meta[
                    instrs[group[0]].outputs[0]][0] != shape:
                continue
            if closed(sorted(members + group), k):
                members = sorted(members + group)
        for m in members:
            group_of[m] = members

    kernels, absorbed = {}, set()  # the last member's position -> the kernel; taken-in ops
    for group in {id(g): g for g in group_of.values() if len(g) > 1}.values():
        kernels[group[-1]] = _kernel(group, instrs, readers, maker, program, absorbed)
    for k, ins in enumerate(instrs):  # a split whose pieces only kernels read is not needed
        if ins.op is Split and all(r in group_of and len(group_of[r]) > 1
                                   for s in ins.outputs for r in readers[s]) and not any(
                                       s in program.outputs for s in ins.outputs):
            absorbed.add(k)
    result = []
    for k, ins in enumerate(instrs):
        if k in kernels:
            result.append(kernels[k])
        elif k not in absorbed and len(group_of.get(k, ())) <= 1:
            result.append(ins)
    return replace(program, instrs=result)


def _kernel(positions: list[int], instrs: list[Instr], readers: dict[int, list[int]],
            maker: dict[int, int], program: Program, absorbed: set[int]) -> Instr:
    """One instruction that runs the instructions at ``positions`` as a generated kernel. It
    reads what they read from outside, a piece of a split as its whole array; it writes what is
    read outside or is a program output, and takes in a concatenation of its values that only
    that concatenation reads (adding its position to ``absorbed``)."""
    members = [instrs[m] for m in positions]
    made = {s for ins in members for s in ins.outputs}
    inputs = list(dict.fromkeys(s for ins in members for s in ins.inputs if s not in made))
    pieces = {}
    for s in inputs:
        split = instrs[maker[s]] if s in maker else None
        if split is not None and split.op is Split:
            sizes, at = split.options["sizes"], split.outputs.index(s)
            pieces[s] = (split.inputs[0], split.options["axis"], sum(sizes[:at]))
    joins, taken = {}, []
    for r in dict.fromkeys(r for s in made for r in readers[s]):
        join = instrs[r]
        if (join.op is Concat and all(q > positions[-1] for q in readers[join.outputs[0]])
                and all(p in made and p not in program.outputs and set(readers[p]) == {r}
                        for p in join.inputs)):
            joins[join.outputs[0]] = (join.options["axis"], join.inputs)
            taken.append(join)
            absorbed.add(r)
    outputs = [s for ins in members for s in ins.outputs if s in program.outputs
               or any(r not in positions and r not in absorbed for r in readers[s])]
    if not outputs and not joins:
        outputs = list(members[-1].outputs)
    kernel = make_kernel(members, inputs, outputs, program.meta, pieces, joins)
    splits = [instrs[k] for k in dict.fromkeys(maker[s] for s in pieces)]
    return Instr(kernel.name, kernel.fn, kernel.inputs, kernel.outputs,
                 len(kernel.outputs) > 1, source=kernel.source,
                 fused=(*splits, *members, *taken))


def free(program: Program) -> Program:
    """Mark on each instruction the slots that nothing reads after it (liveness), so that
    ``run`` lets go of their arrays there and NumPy's allocator reuses the memory for the
    arrays made later, instead of holding every intermediate to the end. Outputs stay."""
    last: dict[int, int] = {}  # slot -> the position of the last instruction that touches it
    for k, ins in enumerate(program.instrs):
        for s in (*ins.inputs, *ins.outputs):
            last[s] = k
    kept = set(program.outputs)
    dying: dict[int, list[int]] = defaultdict(list)
    for s, k in last.items():
        if s not in kept:
            dying[k].append(s)
    instrs = [replace(ins, frees=tuple(dying[k])) for k, ins in enumerate(program.instrs)]
    return replace(program, instrs=instrs)


PASSES: dict[str, Callable[[Program], Program]] = {
    "decompose": decompose,
    "dce": dead_code_elimination,
    "cse": common_subexpressions,
    "distribute": distribute,
    "gather": gather,
    "fuse": fuse,
    "free": free,
}
ALL: tuple[str, ...] = tuple(PASSES)


def run_passes(program: Program, names: Sequence[str]) -> Program:
    """``program`` after each named pass, in order."""
    for name in names:
        program = PASSES[name](program)
    return program
