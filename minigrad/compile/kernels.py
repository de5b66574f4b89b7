"""Code generation for fused kernels: a chain of elementwise instructions becomes one function.

Every elementwise op has an expression here that computes what its ``forward`` does, written
so that it works on whole arrays (NumPy) and on single numbers (inside a numba loop)::

    Sigmoid: "1 / (1 + np.exp(-{0}))"        Mul: "{0} * {1}"

A fused kernel strings those expressions together. With NumPy it is a function of arrays, one
line per op; it saves the interpreter's work per instruction but still makes one pass over
memory per op. With numba (``pip install numba``, or minigrad's ``fast`` extra) it is a loop
that computes every op for one element before moving to the next, compiled to machine code
with ``@njit(cache=True)``: one pass over memory, and SIMD code where LLVM can vectorize the
loop (on float32, exp, tanh and sigmoid come from ``fastmath.py`` so that it can; see
``_SMALL`` for the rest). Its source is written to a file in the kernel cache
(``$MINIGRAD_CACHE_DIR``, else ``~/.cache/minigrad``), named by a hash of the source, so that
numba keeps the machine code beside it and a second process pays no compile time.
``BACKEND`` says which one is used: ``"numba"`` when numba is installed, else ``"numpy"``; the
environment variable ``MINIGRAD_KERNELS=numpy`` forces NumPy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
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

FLOAT32: dict[type, str] = {
    ew.Exp: "exp32({0})",
    ew.Tanh: "tanh32({0})",
    ew.Sigmoid: "sigmoid32({0})",
    ew.TanhGrad: "{0} * (one - {1} * {1})",
    ew.SigmoidGrad: "{0} * {1} * (one - {1})",
    ew.Relu: "np.maximum({0}, zero)",
}
"""What a numba kernel on float32 writes instead: ``fastmath.py``'s exp, tanh and sigmoid,
which vectorize, and its float32 ``one`` and ``zero`` (with an int 1, numba would compute
``1 - x`` in float64, at half the SIMD width)."""
_FROM_FASTMATH = ("exp32", "one", "sigmoid32", "tanh32", "zero")  # the names FLOAT32 uses

QUIET = (ew.Sigmoid,)  # ops whose forward silences overflow (e ** -x = inf gives 0, rightly)
_TRANSCENDENTAL = (ew.Exp, ew.Log, ew.Tanh, ew.Sigmoid)
_SMALL = 256
"""A numba loop computes the C library's exp, log and tanh one element at a time, about 2x
(exp) to 6x (tanh) slower per element than NumPy's vectorized versions, but it saves NumPy's
microsecond per op: kernels that call those (log, or any of them on float64) use numba up to
``_SMALL`` elements (about where the two cross on this project's benchmark machine), NumPy
above. On float32, exp, tanh and sigmoid come from ``fastmath.py`` and do not count."""


@functools.cache
def _fastmath_version() -> str:
    """A hash of ``fastmath.py``, which the kernels that import it carry in their source."""
    return hashlib.sha1(Path(__file__).with_name("fastmath.py").read_bytes()).hexdigest()[:10]


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
    """A generated kernel: its name, its source (what a user prints), the slots it reads and
    writes, and the function that runs it on the arrays of ``inputs``, returning one array or
    (several ``outputs``) a tuple of them."""

    name: str
    source: str
    fn: Callable[..., np.ndarray | tuple[np.ndarray, ...]]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


Piece = tuple[int, int, int]  # (the whole array's slot, axis, start): a piece of a split
Join = tuple[int, tuple[int, ...]]  # (axis, the slots joined): a concatenation


def make_kernel(instrs: Sequence[Instr], inputs: Sequence[int], outputs: Sequence[int],
                meta: dict[int, Meta], pieces: dict[int, Piece] | None = None,
                joins: dict[int, Join] | None = None) -> Kernel:
    """The kernel that computes ``instrs`` (elementwise, in order, all of one shape) from the
    slots ``inputs`` and returns the slots ``outputs``.

    Two shape ops around the chain can be taken in. An input in ``pieces`` is a piece of a
    split, ``{piece: (whole, axis, start)}``: the kernel reads the whole array from ``start``
    along ``axis``, with no split. An entry of ``joins``, ``{slot: (axis, parts)}``, is a
    concatenation of values the chain makes: the kernel writes each part at its place in one
    array for ``slot``, with no concatenation. The kernel's inputs are then the whole arrays,
    and its outputs ``outputs`` followed by the joined slots.
    """
    pieces, joins = pieces or {}, joins or {}
    args = list(dict.fromkeys(pieces.get(s, (s,))[0] for s in inputs))
    shape = meta[instrs[-1].outputs[0]][0]
    size = int(np.prod(shape, dtype=np.int64))
    dtypes = {meta[s][1] for s in [*outputs, *joins]}
    fast = FLOAT32 if dtypes == {np.dtype(np.float32)} else {}
    slow = any(i.op in _TRANSCENDENTAL and i.op not in fast for i in instrs)
    if BACKEND == "numba" and shape and len(dtypes) == 1 and (size <= _SMALL or not slow):
        name, source, fn = _numba_kernel(instrs, inputs, outputs, meta, pieces, joins, args,
                                         fast)
    else:
        name, source, fn = _numpy_kernel(instrs, inputs, outputs, meta, pieces, joins, args)
    return Kernel(name, source, fn, tuple(args), (*outputs, *joins))


def _lines(instrs: Sequence[Instr], names: dict[int, str],
           fast: dict[type, str] | None = None) -> list[str]:
    """One line ``t3 = <expression>`` per instruction (from ``fast`` where it has the op);
    ``names`` maps the slots read from outside to names, and gets the names of the values
    made."""
    lines = []
    for k, ins in enumerate(instrs):
        form = (fast or {}).get(ins.op) or EXPRESSIONS[ins.op]
        expr = form.format(*[names[s] for s in ins.inputs], **ins.options)
        names[ins.outputs[0]] = f"t{k}"
        lines.append(f"t{k} = {expr}")
    return lines


def _name(source: str) -> str:
    return "fused_" + hashlib.sha1(source.encode()).hexdigest()[:10]


def _numpy_kernel(instrs: Sequence[Instr], inputs: Sequence[int], outputs: Sequence[int],
                  meta: dict[int, Meta], pieces: dict[int, Piece], joins: dict[int, Join],
                  args: list[int]) -> tuple[str, str, Callable]:
    names, lines = {}, []
    for k, s in enumerate(inputs):
        if s in pieces:  # a slice of the whole array, as the split made it
            whole, axis, start = pieces[s]
            lead = ":, " * (axis % len(meta[s][0]))
            names[s] = f"x{k}"
            lines.append(f"x{k} = a{args.index(whole)}[{lead}{start}:{start + meta[s][0][axis]}]")
        else:
            names[s] = f"a{args.index(s)}"
    lines += _lines(instrs, names)
    results = [names[s] for s in outputs]
    for m, (axis, parts) in enumerate(joins.values()):
        lines.append(f"j{m} = np.concatenate(({', '.join(names[p] for p in parts)},), "
                     f"axis={axis}, out=j{m})")
        results.append(f"j{m}")
    body = [f"    {line}" for line in lines] + [f"    return {', '.join(results)}"]
    if any(ins.op in QUIET for ins in instrs):
        body = ['    with np.errstate(over="ignore"):'] + [f"    {line}" for line in body]
    params = [f"a{j}" for j in range(len(args))] + [f"j{m}=None" for m in range(len(joins))]
    source = "\n".join([f"def kernel({', '.join(params)}):", *body]) + "\n"
    name = _name(source)
    source = source.replace("def kernel(", f"def {name}(")
    namespace = {"np": np}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return name, source, namespace[name]


_LOADED: dict[str, Callable] = {}  # numba kernels already imported in this process


def _numba_kernel(instrs: Sequence[Instr], inputs: Sequence[int], outputs: Sequence[int],
                  meta: dict[int, Meta], pieces: dict[int, Piece], joins: dict[int, Join],
                  args: list[int], fast: dict[type, str]) -> tuple[str, str, Callable]:
    """A numba loop nest over the elements of the chain's shape, and the Python function that
    calls it. A broadcast input is read in place: its index repeats 0 along the axes it is
    broadcast over; a piece is read from its whole array, its index shifted along the split's
    axis. The outputs are written into one array, ``o[k]`` the k-th (one allocation instead
    of one per output), and each join into its own array ``j``, each part at its offset.
    ``fast`` gives the expressions to use instead of ``EXPRESSIONS`` (``FLOAT32``, on float32)."""
    shape = meta[instrs[-1].outputs[0]][0]
    index = [f"i{d}" for d in range(len(shape))]
    names, hoisted, loads = {}, [], []
    for k, s in enumerate(inputs):
        whole, axis, start = pieces.get(s, (s, 0, 0))
        own = meta[s][0]
        at = ["0" if n == 1 else i for n, i in zip(own, index[len(index) - len(own):])]
        if start:
            at[axis % len(own)] += f" + {start}"
        names[s] = f"x{k}"
        load = f"x{k} = a{args.index(whole)}[{', '.join(at) or '()'}]"
        (loads if any(i.startswith("i") for i in at) else hoisted).append(load)
    lines = _lines(instrs, names, fast)
    stores = [f"o[{', '.join([str(k), *index])}] = {names[s]}" for k, s in enumerate(outputs)]
    for m, (axis, parts) in enumerate(joins.values()):
        start, d = 0, axis % len(shape)
        for p in parts:
            at = [*index[:d], f"{index[d]} + {start}" if start else index[d], *index[d + 1:]]
            stores.append(f"j{m}[{', '.join(at)}] = {names[p]}")
            start += meta[p][0][d]
    written = (["o"] if outputs else []) + [f"j{m}" for m in range(len(joins))]
    a = [f"a{j}" for j in range(len(args))]
    inner = "    " * (len(shape) + 1)
    words = {word for line in lines for word in re.findall(r"\w+", line)}
    used = [name for name in _FROM_FASTMATH if name in words]
    header = ["import numpy as np", "from numba import njit"]
    if used:  # the hash names the version of fastmath.py, so that a new one makes a new kernel
        header.append(f"from minigrad.compile.fastmath import {', '.join(used)}  "
                      f"# {_fastmath_version()}")
    loop = "\n".join([
        *header,
        "",
        "",
        # x / 0 gives inf, as in NumPy; a * b + c may be one fused multiply-add
        '@njit(cache=True, error_model="numpy", fastmath={"contract"})',
        f"def kernel({', '.join(a + written)}, shape):",
        *[f"    {line}" for line in hoisted],
        *[f"{'    ' * (d + 1)}for i{d} in range(shape[{d}]):" for d in range(len(shape))],
        *[f"{inner}{line}" for line in loads + lines + stores],
    ]) + "\n"
    name = _name(loop)
    loop = loop.replace("def kernel(", f"def {name}(")
    dtype = f"np.{meta[[*outputs, *joins][0]][1].name}"
    allocations = [f"    o = np.empty({(len(outputs), *shape)}, {dtype})"] if outputs else []
    allocations += [f"    j{m} = np.empty({meta[s][0]}, {dtype}) if j{m} is None else j{m}"
                    for m, s in enumerate(joins)]  # or written where the caller says
    results = [f"o[{k}]" for k in range(len(outputs))] + [f"j{m}" for m in range(len(joins))]
    wrapper = "\n".join([
        f"def run_{name}({', '.join(a + [f'j{m}=None' for m in range(len(joins))])}):",
        *allocations,
        f"    {name}({', '.join(a + written)}, {shape})",
        f"    return {', '.join(results)}",
    ]) + "\n"
    namespace = {"np": np, name: _LOADED.get(name) or _load(name, loop)}
    exec(compile(wrapper, f"<run_{name}>", "exec"), namespace)
    return name, f"{loop}\n\n{wrapper}", namespace[f"run_{name}"]


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
