"""Fused kernels: a chain of elementwise instructions becomes one generated function.

Every elementwise op has an expression here that computes what its ``forward`` does, written
so that it works on whole arrays and on single numbers::

    Sigmoid: "1 / (1 + np.exp(-{0}))"        Mul: "{0} * {1}"

A kernel strings those expressions together, one line per op, as a NumPy function of arrays.
It saves the interpreter's work per instruction and the arrays in between, but still makes one
pass over memory per op; ``fast/numba.py`` turns the same chain into one loop compiled to
machine code, which makes one pass in all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from minigrad.compile.program import Instr, Meta
from minigrad.ops import elementwise as ew

EXPRESSIONS: dict[type, str] = {
    ew.Add: "{0} + {1}",
    ew.Sub: "{0} - {1}",
    ew.Mul: "{0} * {1}",
    ew.Div: "{0} / {1}",
    ew.Neg: "-{0}",
    ew.Pow: "{0} ** {exponent!r}",
    ew.Exp: "np.exp({0})",
    ew.Log: "np.log({0})",
    ew.Tanh: "np.tanh({0})",
    ew.TanhGrad: "{0} * (1 - {1} * {1})",
    ew.Sigmoid: "1 / (1 + np.exp(-{0}))",
    ew.SigmoidGrad: "{0} * {1} * (1 - {1})",
    ew.Relu: "np.maximum({0}, 0)",
    ew.Sqrt: "np.sqrt({0})",
    ew.Abs: "np.abs({0})",
}
"""The elementwise ops that fusion knows, as expressions of their inputs {0}, {1}, ... and
their keyword options."""

QUIET = (ew.Sigmoid,)  # ops whose forward silences overflow (e ** -x = inf gives 0, rightly)


def fusible(ins: Instr) -> bool:
    """Whether fusion can take ``ins`` into a kernel: a known elementwise op, not random."""
    return ins.op in EXPRESSIONS and not ins.impure


Piece = tuple[int, int, int]  # (the whole array's slot, axis, start): a piece of a split
Join = tuple[int, tuple[int, ...]]  # (axis, the slots joined): a concatenation


@dataclass
class Kernel:
    """A fused kernel. What it computes: the elementwise ``chain`` (in order, all of one
    shape) from the slots ``reads`` to the slots ``writes``, reading each slot in ``pieces``,
    ``{piece: (whole, axis, start)}``, from its whole array, and writing each concatenation in
    ``joins``, ``{slot: (axis, parts)}``, part by part into one array; ``fused`` lists every
    instruction it replaced (the splits and concatenations taken in too). How it runs: ``fn``
    takes the arrays of ``inputs`` (the whole arrays) and returns those of ``outputs``
    (``writes``, then the joined slots); ``name`` and ``source`` show it. A caller may pass
    the array each join is written into as ``j0=``, ``j1=``..."""

    chain: tuple[Instr, ...]
    reads: tuple[int, ...]
    writes: tuple[int, ...]
    pieces: dict[int, Piece]
    joins: dict[int, Join]
    fused: tuple[Instr, ...]
    name: str
    source: str
    fn: Callable[..., np.ndarray | tuple[np.ndarray, ...]] = field(repr=False)

    @property
    def inputs(self) -> tuple[int, ...]:
        """The slots of the arrays ``fn`` takes: the chain's inputs, a piece as its whole."""
        return wholes(self.reads, self.pieces)

    @property
    def outputs(self) -> tuple[int, ...]:
        """The slots of the arrays ``fn`` returns."""
        return (*self.writes, *self.joins)


def wholes(reads: Sequence[int], pieces: dict[int, Piece]) -> tuple[int, ...]:
    """``reads``, each piece of a split replaced by its whole array, without repeats."""
    return tuple(dict.fromkeys(pieces.get(s, (s,))[0] for s in reads))


def lines(chain: Sequence[Instr], names: dict[int, str],
          expressions: Callable[[Instr], str] = lambda ins: EXPRESSIONS[ins.op]) -> list[str]:
    """One line ``t3 = <expression>`` per instruction of ``chain``; ``names`` maps the slots
    read from outside to names, and gets the names of the values made."""
    result = []
    for k, ins in enumerate(chain):
        expr = expressions(ins).format(*[names[s] for s in ins.inputs], **ins.options)
        names[ins.outputs[0]] = f"t{k}"
        result.append(f"t{k} = {expr}")
    return result


def named(source: str) -> tuple[str, str]:
    """A name for the function ``def kernel(`` in ``source`` from a hash of it, and the source
    with that name."""
    name = "fused_" + hashlib.sha1(source.encode()).hexdigest()[:10]
    return name, source.replace("def kernel(", f"def {name}(")


def make_kernel(chain: Sequence[Instr], reads: Sequence[int], writes: Sequence[int],
                meta: dict[int, Meta], pieces: dict[int, Piece],
                joins: dict[int, Join], fused: Sequence[Instr]) -> Kernel:
    """The kernel that computes ``chain`` as a NumPy function, one line per op."""
    args = wholes(reads, pieces)
    names, body = {}, []
    for k, s in enumerate(reads):
        if s in pieces:  # a slice of the whole array, as the split made it
            whole, axis, start = pieces[s]
            lead = ":, " * (axis % len(meta[s][0]))
            names[s] = f"x{k}"
            body.append(f"x{k} = a{args.index(whole)}[{lead}{start}:{start + meta[s][0][axis]}]")
        else:
            names[s] = f"a{args.index(s)}"
    body += lines(chain, names)
    results = [names[s] for s in writes]
    for m, (axis, parts) in enumerate(joins.values()):
        body.append(f"j{m} = np.concatenate(({', '.join(names[p] for p in parts)},), "
                    f"axis={axis}, out=j{m})")
        results.append(f"j{m}")
    body = [f"    {line}" for line in body] + [f"    return {', '.join(results)}"]
    if any(ins.op in QUIET for ins in chain):
        body = ['    with np.errstate(over="ignore"):'] + [f"    {line}" for line in body]
    params = [f"a{j}" for j in range(len(args))] + [f"j{m}=None" for m in range(len(joins))]
    name, source = named("\n".join([f"def kernel({', '.join(params)}):", *body]) + "\n")
    namespace = {"np": np}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return Kernel(tuple(chain), tuple(reads), tuple(writes), pieces, joins, tuple(fused), name,
                  source, namespace[name])
