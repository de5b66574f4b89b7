"""The ``decompose`` pass: cross-entropy split so that its backward reads what its forward made.

What it buys: the backward program no longer exponentiates the logits again. The big
language-model step of ``benchmarks/passes.py`` takes 21.8 ms with it, 23.2 ms without.

Cross-entropy and its gradient become the ops that compute the softmax's terms along the class
axis, ``m = max(x)``, ``e = exp(x - m)`` and ``total = sum(e)``, and one op that finishes each
from those terms (below: ops that only this pass makes, with no gradient). Both programs then
start with the same ops on the same logits, which ``cse`` runs once; and ``x - m`` and ``exp``
are elementwise, so ``fuse`` makes them one kernel.
"""

from __future__ import annotations

from dataclasses import replace

from minigrad.compile.program import Program, new_instr, new_slots
from minigrad.ops.elementwise import Exp, NonDifferentiable, Sub
from minigrad.ops.probability import (
    CrossEntropy,
    CrossEntropyGrad,
    _cross_entropy_of_terms,
    _hits,
    _scaled_softmax_minus_onehot,
)
from minigrad.ops.reduce import Max, Sum


class CrossEntropyOfTerms(NonDifferentiable):
    """cross_entropy_of_terms: y = sum w * (m + log(total) - x[t]), from m = max x and
    total = sum exp(x - m) along the class axis; no gradient"""

    def __init__(self, axis: int, reduction: str) -> None:
        self.axis, self.reduction = axis, reduction

    def forward(self, m, total, x, t, w):
        hits = _hits(t, self.axis)
        return _cross_entropy_of_terms(m, total, x, hits, w, self.axis, self.reduction)


class CrossEntropyGradOfTerms(NonDifferentiable):
    """cross_entropy_grad_of_terms: y = w * g * (e / total - onehot(t)); no gradient"""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, e, total, t, w, g):
        return _scaled_softmax_minus_onehot(e, total, _hits(t, self.axis), w * g, self.axis)


def decompose(program: Program) -> Program:
    """Split each ``CrossEntropy`` and ``CrossEntropyGrad`` into the ops of the softmax's terms
    and the op that finishes it from them."""
    meta = dict(program.meta)
    instrs = []
    for ins in program.instrs:
        if ins.op not in (CrossEntropy, CrossEntropyGrad):
            instrs.append(ins)
            continue
        x, t, w, *g = ins.inputs
        axis = ins.options["axis"]
        shape, dtype = meta[x]
        m, z, e, total = new_slots(meta, ((*shape[:axis], 1, *shape[axis + 1:]), dtype),
                                   meta[x], meta[x], ((*shape[:axis], *shape[axis + 1:]), dtype))
        instrs += [new_instr(Max, (x,), (m,), axis=axis, keepdims=True),
                   new_instr(Sub, (x, m), (z,)),
                   new_instr(Exp, (z,), (e,)),
                   new_instr(Sum, (e,), (total,), axis=axis, keepdims=False)]
        if ins.op is CrossEntropy:
            instrs.append(new_instr(CrossEntropyOfTerms, (m, total, x, t, w), ins.outputs,
                                    **ins.options))
        else:
            instrs.append(new_instr(CrossEntropyGradOfTerms, (e, total, t, w, *g), ins.outputs,
                                    axis=axis))
    return replace(program, instrs=instrs, meta=meta)
