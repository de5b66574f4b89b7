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

QUIET = (ew.Sigmoid,)  # ops whose forward silences overflow (e ** -x = inf gives 0, rightly)
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
    shape = meta[outputs[0]][0]
    size = int(np.prod(shape, dtype=np.int64))
    one_dtype = len({meta[s][1] for s in outputs}) == 1
    if BACKEND == "numba" and shape and one_dtype and (
            size <= _SMALL or not any(i.op in _TRANSCENDENTAL for i in instrs)):
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
    if any(ins.op in QUIET for ins in instrs):
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
    """A numba loop nest over the elements of the output shape, and the Python function that
    calls it. A broadcast input is read in place: its index repeats 0 along the axes it is
    broadcast over. The outputs are written into one array, ``o[k]`` the k-th (one allocation
    instead of one per output)."""
    shape = meta[outputs[0]][0]
    index = [f"i{d}" for d in range(len(shape))]
    lines, results = _lines(instrs, inputs, outputs, "x")
    hoisted, loads = [], []
    for k, s in enumerate(inputs):
        own = meta[s][0]
        at = ["0" if n == 1 else i for n, i in zip(own, index[len(index) - len(own):])]
        load = f"x{k} = a{k}[{', '.join(at) or '()'}]"
        (loads if any(i.startswith("i") for i in at) else hoisted).append(load)
    loops = [f"{'    ' * (d + 1)}for i{d} in range(o.shape[{d + 1}]):" for d in range(len(shape))]
    inner = "    " * (len(shape) + 1)
    args = [f"a{k}" for k in range(len(inputs))]
    loop = "\n".join([
        "import numpy as np",
        "from numba import njit",
        "",
        "",
        '@njit(cache=True, error_model="numpy")',  # x / 0 gives inf, as in NumPy
        f"def kernel({', '.join(args)}, o):",
        *[f"    {line}" for line in hoisted],
        *loops,
        *[f"{inner}{line}" for line in loads + lines],
        *[f"{inner}o[{', '.join([str(k), *index])}] = {r}" for k, r in enumerate(results)],
    ]) + "\n"
    name = _name(loop)
    loop = loop.replace("def kernel(", f"def {name}(")
    wrapper = "\n".join([
        f"def run_{name}({', '.join(args)}):",
        f"    o = np.empty({(len(outputs), *shape)}, np.{meta[outputs[0]][1].name})",
        f"    {name}({', '.join(args)}, o)",
        f"    return {'tuple(o)' if len(outputs) > 1 else 'o[0]'}",
    ]) + "\n"
    namespace = {"np": np, name: _LOADED.get(name) or _load(name, loop)}
    exec(compile(wrapper, f"<run_{name}>", "exec"), namespace)
    return Kernel(name, f"{loop}\n\n{wrapper}", namespace[f"run_{name}"])


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
