"""The generic passes: each takes a ``Program`` and returns one that computes the same outputs
with less work, and each does one thing. ``pipeline.py`` runs them, with the speed work of
``fast/``, in order.

- ``dce``: dead-code elimination (``reference.py``).
- ``cse``: common-subexpression elimination. A cell that splits or transposes its weight at
  every step records the same op on the same slots once per step; it runs once. A backward
  program reads what its forward already computed instead of computing it again.
- ``fuse``: elementwise fusion. A run of elementwise instructions (``Sigmoid``, ``Mul``,
  ``Add``...) over arrays of one shape becomes one generated kernel (``kernels.py``) that
  reads the run's inputs once and writes only the values used after it; the split before the
  run and the concatenation after it are taken in.
- ``remat``: rematerialization: a value that one or two elementwise instructions make from
  values backward keeps anyway is recomputed in backward instead of kept from forward (an
  LSTM step's ``tanh(c)`` and ``h``), so forward hands backward less memory.
- ``free``: buffer reuse by liveness: each array is let go right after its last reader, so
  that the memory of dead intermediates serves the next ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from minigrad.compile.kernels import fusible, make_kernel
from minigrad.compile.program import Instr, Program, new_slots
from minigrad.compile.reference import dead_code_elimination
from minigrad.ops.shape import Concat, Split

__all__ = ["common_subexpressions", "dead_code_elimination", "find_makers", "find_readers",
           "free", "fuse", "merge_repeats", "read_from_outside", "rematerialize"]


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


def find_readers(instrs: list[Instr]) -> dict[int, list[int]]:
    """Slot -> the positions of the instructions that read it."""
    readers: dict[int, list[int]] = defaultdict(list)
    for k, ins in enumerate(instrs):
        for s in ins.inputs:
            readers[s].append(k)
    return readers


def find_makers(instrs: list[Instr]) -> dict[int, int]:
    """Slot -> the position of the instruction that makes it."""
    return {s: k for k, ins in enumerate(instrs) for s in ins.outputs}


def read_from_outside(program: Program) -> list[int]:
    """The slots ``program`` reads (or returns) that it neither makes nor holds as constants,
    in the order it first reads them."""
    made = {s for ins in program.instrs for s in ins.outputs}
    read = [s for ins in program.instrs for s in ins.inputs] + program.outputs
    return [s for s in dict.fromkeys(read) if s not in made and s not in program.constants]


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
    readers, maker = find_readers(instrs), find_makers(instrs)
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
    splits = [instrs[k] for k in dict.fromkeys(maker[s] for s in pieces)]
    kernel = make_kernel(members, inputs, outputs, program.meta, pieces, joins,
                         (*splits, *members, *taken))
    return Instr(kernel.name, kernel.fn, kernel.inputs, kernel.outputs,
                 len(kernel.outputs) > 1, kernel=kernel)


RECOMPUTE_AT_MOST = 2
"""The most elementwise instructions ``remat`` runs again for one value: ``h = o * tanh(c)``
takes two. A longer chain would follow a recurrence back through the steps (an LSTM's ``c``
from the previous ``c``, from the one before...), trading little memory for much work."""


def rematerialize(backward: Program, forward: Program) -> Program:
    """Recompute in ``backward`` the forward values that cheap instructions make from values
    it keeps anyway, so that ``forward`` need not keep them (``link`` keeps what backward
    reads from outside).

    The values backward reads from forward are visited in forward order. One is recomputed
    when the elementwise instructions that make it, followed back to values that stay kept
    (or the function's inputs, results and constants), are at most ``RECOMPUTE_AT_MOST``. Copies of
    those instructions, marked ``recomputed``, go into backward right before the first
    instruction that reads the value, where ``fuse`` takes them into backward's kernels. No
    value is kept that was not kept before, so the memory that forward hands to backward only
    shrinks; the cost is elementwise work, which a fused kernel does while it reads the values
    it keeps. (AOTAutograd's partitioner makes the same trade, choosing by a min-cut.)
    """
    maker = find_makers(forward.instrs)
    read = [s for s in read_from_outside(backward) if s in maker and s not in forward.outputs]
    kept = {*read, *forward.outputs}  # the function's results are at hand too
    chains = {}  # value -> the forward instructions that remake it, in order
    for s in sorted(read, key=maker.get):
        chain = _chain(s, forward, maker, kept)
        if chain is not None and len(chain) <= RECOMPUTE_AT_MOST:
            chains[s] = chain
            kept.remove(s)
    if not chains:
        return backward
    meta = {**forward.meta, **backward.meta}
    readers = find_readers(backward.instrs)
    before: dict[int, list[Instr]] = defaultdict(list)  # position -> instructions to insert
    for s, chain in chains.items():
        inner = [o for k in chain[:-1] for o in forward.instrs[k].outputs]
        slots = dict(zip(inner, new_slots(meta, *(meta[o] for o in inner))))  # fresh copies
        before[min(readers[s])] += [
            replace(forward.instrs[k], inputs=tuple(slots.get(i, i) for i in ins.inputs),
                    outputs=tuple(slots.get(o, o) for o in ins.outputs), recomputed=True)
            for k in chain for ins in [forward.instrs[k]]]
    instrs = [new for k, ins in enumerate(backward.instrs) for new in (*before[k], ins)]
    constants = {**backward.constants, **{s: forward.constants[s] for ins in instrs
                                          for s in ins.inputs if s in forward.constants}}
    backward = replace(backward, instrs=instrs, constants=constants, meta=meta)
    return replace(backward, inputs=read_from_outside(backward))


def _chain(s: int, forward: Program, maker: dict[int, int], kept: set[int]) -> list[int] | None:
    """The positions, in order, of the elementwise forward instructions that make ``s`` from
    values in ``kept``, forward's inputs or constants; None if a non-elementwise one is on
    the way."""
    chain, todo = set(), [s]
    while todo:
        k = maker[todo.pop()]
        if not fusible(forward.instrs[k]):
            return None
        chain.add(k)
        todo += [i for i in forward.instrs[k].inputs if i in maker and i not in kept
                 and maker[i] not in chain]
    return sorted(chain)


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
