"""Code generation for fused kernels: a chain of elementwise instructions becomes one function.

Every elementwise op has an expression here that computes what its ``forward`` does, written
so that it works on whole arrays (NumPy) and on single numbers (inside a numba loop)::

    Sigmoid: "1 / (1 + np.exp(-{0}))"        Mul: "{0} * {1}"

A fused kernel strings those expressions together. With NumPy it is a function of arrays, one
line per op; it saves the interpreter's work per instruction but still makes one pass over
memory per op. With numba (``pip install numba``, or minigrad's ``fast`` extra) it is a loop
that computes every op for one element before moving to the next, compiled to machine code
with ``@njit(cache=True)``: one pass over memory (but see ``_SMALL``: big kernels with exp,
log or tanh stay NumPy, whose versions of those are vectorized). Its source is written to a
file in the kernel cache (``$MINIGRAD_CACHE_DIR``, else ``~/.cache/minigrad``), named by a
hash of the source, so that numba keeps the machine code beside it and a second process pays
no compile time. ``BACKEND`` says which one is used: ``"numba"`` when numba is installed,
else ``"numpy"``; the environment variable ``MINIGRAD_KERNELS=numpy`` forces NumPy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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

_QUIET = (ew.Sigmoid,)  # ops whose forward silences overflow (e ** -x = inf gives 0, rightly)
_TRANSCENDENTAL = (ew.Exp, ew.Log, ew.Tanh, ew.Sigmoid)
_SMALL = 256
"""A numba loop computes exp, log and tanh one element at a time with the C library, about 5x
slower per element than NumPy's vectorized versions (measured on float32), but it saves
NumPy's microsecond per op: kernels with those ops use numba up to ``_SMALL`` elements
(about where the two cross on this project's benchmark machine), NumPy above."""


def _numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


BACKEND = os.environ.get("MINIGRAD_KERNELS") or ("numba" if _numba_installed() else "numpy")


def fusible(ins: Instr) -> bool:
    """Whether fusion can take ``ins`` into a kernel: a known elementwise op, not random."""
    return ins.op in EXPRESSIONS and not ins.impure


def cache_dir() -> Path:
    """Where numba kernels and their machine code are kept."""
    root = os.environ.get("MINIGRAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "minigrad")
    return Path(root) / "kernels"


@dataclass
class Kernel:
    """A generated kernel: its name, its source (what a user prints) and the function that
    runs it on arrays, returning one array or a tuple of them."""

    name: str
    source: str
    fn: Callable[..., np.ndarray | tuple[np.ndarray, ...]]


def make_kernel(instrs: Sequence[Instr], inputs: Sequence[int], outputs: Sequence[int],
                meta: dict[int, Meta]) -> Kernel:
    """The kernel that computes ``instrs`` (elementwise, in order, all of one output shape)
    from the slots ``inputs`` and returns the slots ``outputs``."""
    size = int(np.prod(meta[outputs[0]][0], dtype=np.int64))
    if BACKEND == "numba" and (size <= _SMALL or not any(i.op in _TRANSCENDENTAL for i in instrs)):
        return _numba_kernel(instrs, inputs, outputs, meta)
    return _numpy_kernel(instrs, inputs, outputs)


def _lines(instrs: Sequence[Instr], inputs: Sequence[int], outputs: Sequence[int],
           prefix: str) -> tuple[list[str], list[str]]:
    """One line ``t3 = <expression>`` per instruction, over inputs named ``prefix`` + k; and
    the names of the outputs."""
    names = {s: f"{prefix}{k}" for k, s in enumerate(inputs)}
    lines = []
    for k, ins in enumerate(instrs):
        names[ins.outputs[0]] = f"t{k}"
        expr = EXPRESSIONS[ins.op].format(*[names[s] for s in ins.inputs], **ins.options)
        lines.append(f"t{k} = {expr}")
    return lines, [names[s] for s in outputs]


def _name(source: str) -> str:
    return "fused_" + hashlib.sha1(source.encode()).hexdigest()[:10]


def _numpy_kernel(instrs: Sequence[Instr], inputs: Sequence[int],
                  outputs: Sequence[int]) -> Kernel:
    lines, results = _lines(instrs, inputs, outputs, "a")
    body = [f"    {line}" for line in lines] + [f"    return {', '.join(results)}"]
    if any(ins.op in _QUIET for ins in instrs):
        body = ['    with np.errstate(over="ignore"):'] + [f"    {line}" for line in body]
    args = ", ".join(f"a{k}" for k in range(len(inputs)))
    source = "\n".join([f"def kernel({args}):", *body]) + "\n"
    name = _name(source)
    source = source.replace("def kernel(", f"def {name}(")
    namespace = {"np": np}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return Kernel(name, source, namespace[name])


_LOADED: dict[str, Callable] = {}  # numba kernels already imported in this process


def _numba_kernel(instrs: Sequence[Instr], inputs: Sequence[int], outputs: Sequence[int],
                  meta: dict[int, Meta]) -> Kernel:
    """A numba loop over the elements of 2-D views, (rows, last axis), and the Python function
    that makes the views and the output arrays: a broadcast input is read in place, as a row,
    a column or a single number."""
    shape = meta[outputs[0]][0]
    rows, cols = (int(np.prod(shape[:-1], dtype=np.int64)), shape[-1]) if shape else (1, 1)
    lines, results = _lines(instrs, inputs, outputs, "x")
    views, hoisted, loads = [], [], []
    for k, s in enumerate(inputs):
        view, index = _view(meta[s][0], shape, rows, cols)
        views.append(view.format(f"a{k}"))
        (hoisted if index == "0, 0" else loads).append(f"x{k} = a{k}[{index}]")
    outs = [f"o{k}" for k in range(len(outputs))]
    loop = "\n".join([
        "import numpy as np",
        "from numba import njit",
        "",
        "",
        '@njit(cache=True, error_model="numpy")',  # x / 0 gives inf, as in NumPy
        f"def kernel({', '.join([f'a{k}' for k in range(len(inputs))] + outs)}):",
        *[f"    {line}" for line in hoisted],
        "    for i in range(o0.shape[0]):",
        "        for j in range(o0.shape[1]):",
        *[f"            {line}" for line in loads + lines],
        *[f"            o{k}[i, j] = {r}" for k, r in enumerate(results)],
    ]) + "\n"
    name = _name(loop)
    loop = loop.replace("def kernel(", f"def {name}(")
    wrapper = "\n".join([
        f"def run_{name}({', '.join(f'a{k}' for k in range(len(inputs)))}):",
        *[f"    o{k} = np.empty(({rows}, {cols}), np.{meta[s][1].name})"
          for k, s in enumerate(outputs)],
        f"    {name}({', '.join(views + outs)})",
        f"    return {', '.join(f'{o}.reshape({shape})' for o in outs)}",
    ]) + "\n"
    namespace = {"np": np, name: _LOADED.get(name) or _load(name, loop)}
    exec(compile(wrapper, f"<run_{name}>", "exec"), namespace)
    return Kernel(name, f"{loop}\n\n{wrapper}", namespace[f"run_{name}"])


def _view(given: tuple[int, ...], shape: tuple[int, ...], rows: int, cols: int
          ) -> tuple[str, str]:
    """How the kernel sees an input of shape ``given`` broadcast to ``shape``: the expression
    that makes its 2-D view (``{}`` is the array) and the index of element (i, j) in it."""
    if given == shape:
        return f"{{}}.reshape({rows}, {cols})", "i, j"
    if int(np.prod(given, dtype=np.int64)) == 1:
        return "{}.reshape(1, 1)", "0, 0"
    if given[-1:] == (cols,) and int(np.prod(given, dtype=np.int64)) == cols:
        return f"{{}}.reshape(1, {cols})", "0, j"
    if given[-1:] == (1,) and given[:-1] == shape[:-1]:
        return f"{{}}.reshape({rows}, 1)", "i, 0"
    return f"np.broadcast_to({{}}, {shape}).reshape({rows}, {cols})", "i, j"


def _load(name: str, source: str) -> Callable:
    """Import the kernel from its file in the cache (written once), so that numba can cache
    its machine code beside it."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists():  # rewriting it would change its time stamp and void numba's cache
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source)
        os.replace(temporary, path)
    spec = importlib.util.spec_from_file_location(f"minigrad_kernel_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba caches only functions of a module it can find
    spec.loader.exec_module(module)
    _LOADED[name] = getattr(module, name)
    return _LOADED[name]
