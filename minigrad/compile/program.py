"""The compiler's IR: a ``Program`` is a list of ``Instr`` over numbered array slots.

A slot holds one array. A program's inputs and constants fill some slots; each instruction
reads arrays from slots, runs, and writes its results to new slots; the outputs are read from
slots at the end. Printed, a program reads like ``jax.make_jaxpr``'s output::

    inputs: s0 f32[2,3], s1 f32[3]
    constants: s2 f32[] = 2.0
    s3 = Mul(s0, s1)                      # f32[2,3]
    s4 = Mul(s3, s2)                      # f32[2,3]
    outputs: s4

``interpret`` runs it one instruction at a time, which is what a program means (see
``reference.py``); ``run`` does the same through one generated Python function, a line per
instruction (``code`` shows it). Neither makes a Tensor or a graph node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import graphviz

    from minigrad.compile.kernels import Kernel

Meta = tuple[tuple[int, ...], np.dtype]  # a slot's shape and dtype
Lowering = Callable[[list[str], list[str], str], list[str]]
"""Writes an instruction as Python lines, given the names of its inputs and of its outputs and
the name its function has in the generated code."""


@dataclass
class Instr:
    """One step of a program: ``outputs = fn(*inputs)`` over slots.

    ``label`` is what printing and drawing show (the op's name, or a fused kernel's);
    ``fn`` runs it on arrays and returns one array or, when ``unpack``, a tuple of them (an
    op such as ``Split`` returns a tuple, even of one array). ``op`` and ``options`` say which
    ``Function`` class, with which keyword options, the instruction came from (for the
    passes); ``impure`` marks an op that draws random numbers (never removed or merged).
    Passes fill in the rest: ``recomputed`` marks a forward instruction that backward runs
    again rather than keep its value (``remat``), ``kernel`` describes a fused kernel
    (``fuse``), ``lower`` writes the instruction as lines of Python instead of a call of
    ``fn`` (``lower``), and ``frees`` lists the slots that nothing reads after it (``free``),
    which a run lets go of there.
    """

    label: str
    fn: Callable[..., Any]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    unpack: bool = False
    op: type | None = None
    options: dict = field(default_factory=dict)
    impure: bool = False
    recomputed: bool = False
    kernel: Kernel | None = None
    lower: Lowering | None = None
    frees: tuple[int, ...] = ()

    @property
    def source(self) -> str | None:
        """A fused kernel's generated source (None for any other instruction)."""
        return self.kernel.source if self.kernel else None

    @property
    def fused(self) -> tuple[Instr, ...]:
        """The instructions a fused kernel replaced, in order (empty for any other)."""
        return self.kernel.fused if self.kernel else ()

    def text(self) -> str:
        """The instruction as one line: ``s7 = Mul(s3, s5)``."""
        args = [f"s{s}" for s in self.inputs]
        args += [f"{k}={_short(v)}" for k, v in self.options.items()]
        return f"{', '.join(f's{s}' for s in self.outputs)} = {self.label}({', '.join(args)})"


def new_instr(op: type, inputs: tuple[int, ...], outputs: tuple[int, ...],
              **options: Any) -> Instr:
    """An instruction that runs ``op(**options)``'s forward (for a pass that makes one)."""
    return Instr(op.__name__, op(**options).forward, inputs, outputs, len(outputs) > 1, op,
                 options)


def new_slots(meta: dict[int, Meta], *kinds: Meta) -> tuple[int, ...]:
    """New slots after the last one in ``meta``, one per ``(shape, dtype)`` in ``kinds``,
    entered in ``meta`` (for a pass that makes values)."""
    start = max(meta) + 1
    slots = tuple(range(start, start + len(kinds)))
    meta.update(zip(slots, kinds))
    return slots


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def type_text(meta: Meta) -> str:
    """``f32[2,3]``: a slot's dtype and shape, as jaxprs print them."""
    shape, dtype = meta
    kind = {"f": "f", "i": "i", "u": "u", "b": "bool", "c": "c"}.get(dtype.kind, dtype.kind)
    name = "bool" if kind == "bool" else f"{kind}{dtype.itemsize * 8}"
    return f"{name}[{','.join(map(str, shape))}]"


@dataclass(repr=False)
class Program:
    """Instructions over slots, with the slots that hold the inputs, the outputs and the
    constants (arrays fixed at trace time); ``meta`` gives every slot's shape and dtype."""

    instrs: list[Instr]
    inputs: list[int]
    outputs: list[int]
    constants: dict[int, np.ndarray]
    meta: dict[int, Meta]

    def renamed(self, alias: Mapping[int, int]) -> Program:
        """The program reading slot ``alias[s]`` wherever it read slot ``s`` (for slots known
        to hold the same value)."""
        instrs = [replace(ins, inputs=tuple(alias.get(s, s) for s in ins.inputs))
                  for ins in self.instrs]
        meta = {**self.meta, **{alias[s]: m for s, m in self.meta.items() if s in alias}}
        return replace(self, instrs=instrs,
                       inputs=list(dict.fromkeys(alias.get(s, s) for s in self.inputs)),
                       outputs=[alias.get(s, s) for s in self.outputs], meta=meta)

    def interpret(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the program on ``arrays`` (one per input slot), one instruction at a time, and
        return the output arrays: what the program means (``reference.interpret``)."""
        from minigrad.compile.reference import interpret

        return interpret(self, arrays)

    def run(self, arrays: Sequence[np.ndarray], consume: bool = False) -> list[np.ndarray]:
        """What ``interpret`` does, through the function generated from the program: one way
        to run it fast. With ``consume``, ``arrays`` (a list) is emptied as the run starts:
        the caller hands its references over, so that each input array is let go after its
        last reader, as the intermediates are (a compiled backward that frees the graph)."""
        return self._generated[1](arrays if consume else list(arrays))

    @property
    def code(self) -> str:
        """The Python function that ``run`` calls, generated from the instructions at the
        first run (``codegen.py``): one line per instruction, each slot a local variable."""
        return self._generated[0]

    @cached_property
    def _generated(self) -> tuple[str, Callable[[Sequence[np.ndarray]], list[np.ndarray]]]:
        from minigrad.compile.codegen import build

        return build(self)

    def __str__(self) -> str:
        lines = ["inputs: " + ", ".join(f"s{s} {type_text(self.meta[s])}" for s in self.inputs)]
        if self.constants:
            lines.append("constants: " + ", ".join(
                f"s{s} {type_text(self.meta[s])} = {_value_text(a)}"
                for s, a in self.constants.items()))
        for ins in self.instrs:
            types = ", ".join(type_text(self.meta[s]) for s in ins.outputs)
            lines.append(f"{ins.text():<44} # {types}{_recomputed_text(ins)}")
        lines.append("outputs: " + ", ".join(f"s{s}" for s in self.outputs))
        return "\n".join(lines)

    __repr__ = __str__  # a notebook shows the listing

    def kernels(self) -> list[Instr]:
        """The fused kernels among the instructions (those with generated source)."""
        return [ins for ins in self.instrs if ins.source is not None]

    def draw(self, rankdir: str = "TB", names: Mapping[int, str] | None = None,
             prefix: str = "") -> graphviz.Digraph:
        """The program as a Graphviz drawing: slots are boxes (inputs green, constants grey,
        outputs bold), instructions ovals (fused kernels orange, with the ops they replaced;
        instructions that backward recomputes rather than keep, blue), edges follow the data.
        ``names`` labels slots (``{0: "x"}``); ``prefix`` starts every node id, so that two
        programs can be drawn side by side in one graph."""
        from minigrad.viz.render import to_digraph

        nodes, edges = [], []
        outputs, names = set(self.outputs), names or {}
        for s in [*self.inputs, *self.constants, *(o for i in self.instrs for o in i.outputs)]:
            slot = f"{names[s]} (s{s})" if s in names else f"s{s}"
            attrs = {"label": f"{slot}\n{type_text(self.meta[s])}", "shape": "box",
                     "style": "filled", "fillcolor": "white"}
            if s in self.inputs:
                attrs["fillcolor"] = "#e3f1dc"
            elif s in self.constants:
                attrs["fillcolor"] = "#dddddd"
                attrs["label"] = f"s{s} = {_value_text(self.constants[s])}"
            if s in outputs:
                attrs["penwidth"] = "2.5"
            nodes.append(("", f"{prefix}s{s}", attrs))
        for k, ins in enumerate(self.instrs):
            fill = ("#fdd0a2" if ins.source is not None else
                    "#c6dbef" if ins.recomputed else "#eeeeee")
            label = ins.label + (f"\n{_counted(ins.fused)}" if ins.fused else "")
            label += _recomputed_text(ins).replace(", ", "\n", 1)
            nodes.append(("", f"{prefix}i{k}", {"label": label, "shape": "oval",
                                                "style": "filled", "fillcolor": fill}))
            edges += [(f"{prefix}s{s}", f"{prefix}i{k}", {}) for s in dict.fromkeys(ins.inputs)]
            edges += [(f"{prefix}i{k}", f"{prefix}s{s}", {}) for s in ins.outputs]
        return to_digraph(nodes, edges, {}, graph_attr={"rankdir": rankdir},
                          node_attr={"fontsize": "10", "height": "0.3"})


def _recomputed_text(ins: Instr) -> str:
    """``, recomputed`` for an instruction that ``remat`` copied from forward;
    ``, recomputes 1 Tanh`` for a kernel that took such instructions in; else nothing."""
    if ins.recomputed:
        return ", recomputed"
    again = [f for f in ins.fused if f.recomputed]
    return f", recomputes {_counted(again)}" if again else ""


def _counted(instrs: Sequence[Instr]) -> str:
    """The ops of ``instrs``, counted in order of first use: ``3 Sigmoid, 2 Tanh, 1 Add``."""
    return ", ".join(f"{n} {op}" for op, n in Counter(ins.label for ins in instrs).items())


def _value_text(array: np.ndarray) -> str:
    if array.size == 1:
        return np.format_float_positional(array.item(), trim="-") \
            if array.dtype.kind == "f" else str(array.item())
    return f"<{type_text((array.shape, array.dtype))}>"
