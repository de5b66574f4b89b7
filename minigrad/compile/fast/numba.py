"""The ``numba`` pass: each fused kernel as one loop compiled to machine code.

A NumPy kernel (``kernels.py``) makes one pass over memory per op of its chain. The same chain
as a numba loop computes every op for one element before moving to the next: one pass in all,
and SIMD code where LLVM can vectorize the loop (on float32, exp, tanh and sigmoid come from
``fastmath.py`` so that it can). The loop's source is written to a file in the kernel cache
(``$MINIGRAD_CACHE_DIR``, else ``~/.cache/minigrad``), named by a hash of the source, so that
numba keeps the machine code beside it and a second process pays no compile time.

What it buys (``benchmarks/passes.py``): the language-model step takes 21.8 ms with it and
24.7 ms without (big), 0.46 and 1.16 ms (tiny).

``BACKEND`` says whether the pass runs: ``"numba"`` when numba is installed (minigrad's
``fast`` extra), else ``"numpy"``, when the pass leaves the NumPy kernels as they are; the
environment variable ``MINIGRAD_KERNELS=numpy`` forces NumPy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from minigrad.compile.kernels import EXPRESSIONS, Kernel, lines, named
from minigrad.compile.program import Meta, Program
from minigrad.ops import elementwise as ew

BACKEND = os.environ.get("MINIGRAD_KERNELS") or (
    "numba" if importlib.util.find_spec("numba") is not None else "numpy")

FLOAT32: dict[type, str] = {
    ew.Exp: "exp32({0})",
    ew.Tanh: "tanh32({0})",
    ew.Sigmoid: "sigmoid32({0})",
    ew.TanhGrad: "{0} * (one - {1} * {1})",
    ew.SigmoidGrad: "{0} * {1} * (one - {1})",
    ew.Relu: "np.maximum({0}, zero)",
}
"""What a loop on float32 writes instead of ``EXPRESSIONS``: ``fastmath.py``'s exp, tanh and
sigmoid, which vectorize, and its float32 ``one`` and ``zero`` (with an int 1, numba would
compute ``1 - x`` in float64, at half the SIMD width)."""
_FROM_FASTMATH = ("exp32", "one", "sigmoid32", "tanh32", "zero")  # the names FLOAT32 uses
_TRANSCENDENTAL = (ew.Exp, ew.Log, ew.Tanh, ew.Sigmoid)
_SMALL = 256
"""A numba loop computes the C library's exp, log and tanh one element at a time, about 2x
(exp) to 6x (tanh) slower per element than NumPy's vectorized versions, but it saves NumPy's
microsecond per op: kernels that call those (log, or any of them on float64) use numba up to
``_SMALL`` elements (about where the two cross on this project's benchmark machine), NumPy
above. On float32, exp, tanh and sigmoid come from ``fastmath.py`` and do not count."""


def compile_kernels(program: Program) -> Program:
    """Each fused kernel that a loop runs faster than NumPy becomes a numba loop."""
    if BACKEND != "numba":
        return program
    instrs = []
    for ins in program.instrs:
        loop = ins.kernel and numba_kernel(ins.kernel, program.meta)
        instrs.append(replace(ins, fn=loop.fn, kernel=loop) if loop else ins)
    return replace(program, instrs=instrs)


def numba_kernel(kernel: Kernel, meta: dict[int, Meta]) -> Kernel | None:
    """``kernel`` as a numba loop nest over the elements of its chain's shape, and the Python
    function that calls it; None where NumPy is faster (see ``_SMALL``) or the chain mixes
    dtypes.

    A broadcast input is read in place: its index repeats 0 along the axes it is broadcast
    over; a piece is read from its whole array, its index shifted along the split's axis. The
    outputs are written into one array, ``o[k]`` the k-th (one allocation instead of one per
    output), and each join into its own array ``j``, each part at its offset.
    """
    chain, reads, writes, pieces, joins = (kernel.chain, kernel.reads, kernel.writes,
                                           kernel.pieces, kernel.joins)
    shape = meta[chain[-1].outputs[0]][0]
    size = int(np.prod(shape, dtype=np.int64))
    dtypes = {meta[s][1] for s in kernel.outputs}
    fast = FLOAT32 if dtypes == {np.dtype(np.float32)} else {}
    slow = any(i.op in _TRANSCENDENTAL and i.op not in fast for i in chain)
    if not shape or len(dtypes) != 1 or (size > _SMALL and slow):
        return None
    args = kernel.inputs
    index = [f"i{d}" for d in range(len(shape))]
    names, hoisted, loads = {}, [], []
    for k, s in enumerate(reads):
        whole, axis, start = pieces.get(s, (s, 0, 0))
        own = meta[s][0]
        at = ["0" if n == 1 else i for n, i in zip(own, index[len(index) - len(own):])]
        if start:
            at[axis % len(own)] += f" + {start}"
        names[s] = f"x{k}"
        load = f"x{k} = a{args.index(whole)}[{', '.join(at) or '()'}]"
        (loads if any(i.startswith("i") for i in at) else hoisted).append(load)
    body = lines(chain, names, lambda ins: fast.get(ins.op) or EXPRESSIONS[ins.op])
    stores = [f"o[{', '.join([str(k), *index])}] = {names[s]}" for k, s in enumerate(writes)]
    for m, (axis, parts) in enumerate(joins.values()):
        start, d = 0, axis % len(shape)
        for p in parts:
            at = [*index[:d], f"{index[d]} + {start}" if start else index[d], *index[d + 1:]]
            stores.append(f"j{m}[{', '.join(at)}] = {names[p]}")
            start += meta[p][0][d]
    written = (["o"] if writes else []) + [f"j{m}" for m in range(len(joins))]
    a = [f"a{j}" for j in range(len(args))]
    inner = "    " * (len(shape) + 1)
    words = {word for line in body for word in re.findall(r"\w+", line)}
    used = [name for name in _FROM_FASTMATH if name in words]
    header = ["import numpy as np", "from numba import njit"]
    if used:  # the hash names the version of fastmath.py, so that a new one makes a new kernel
        header.append(f"from minigrad.compile.fast.fastmath import {', '.join(used)}  "
                      f"# {_fastmath_version()}")
    name, loop = named("\n".join([
        *header,
        "",
        "",
        # x / 0 gives inf, as in NumPy; a * b + c may be one fused multiply-add
        '@njit(cache=True, error_model="numpy", fastmath={"contract"})',
        f"def kernel({', '.join(a + written)}, shape):",
        *[f"    {line}" for line in hoisted],
        *[f"{'    ' * (d + 1)}for i{d} in range(shape[{d}]):" for d in range(len(shape))],
        *[f"{inner}{line}" for line in loads + body + stores],
    ]) + "\n")
    dtype = f"np.{dtypes.pop().name}"
    allocations = [f"    o = np.empty({(len(writes), *shape)}, {dtype})"] if writes else []
    allocations += [f"    j{m} = np.empty({meta[s][0]}, {dtype}) if j{m} is None else j{m}"
                    for m, s in enumerate(joins)]  # or written where the caller says
    results = [f"o[{k}]" for k in range(len(writes))] + [f"j{m}" for m in range(len(joins))]
    # NumPy gives a scalar, not a 0-d array, for an op on 0-d arrays; the loop indexes arrays
    scalars = [f"np.asarray({x})" if not meta[s][0] else x for x, s in zip(a, args)]
    wrapper = "\n".join([
        f"def run_{name}({', '.join(a + [f'j{m}=None' for m in range(len(joins))])}):",
        *allocations,
        f"    {name}({', '.join(scalars + written)}, {shape})",
        f"    return {', '.join(results)}",
    ]) + "\n"
    namespace = {"np": np, name: _LOADED.get(name) or _load(name, loop)}
    exec(compile(wrapper, f"<run_{name}>", "exec"), namespace)
    # the kernel keeps its name, which programs print; the loop's own names its cached file
    return replace(kernel, source=f"{loop}\n\n{wrapper}", fn=namespace[f"run_{name}"])


@functools.cache
def _fastmath_version() -> str:
    """A hash of ``fastmath.py``, which the loops that import it carry in their source."""
    return hashlib.sha1(Path(__file__).with_name("fastmath.py").read_bytes()).hexdigest()[:10]


def cache_dir() -> Path:
    """Where numba kernels and their machine code are kept."""
    root = os.environ.get("MINIGRAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "minigrad")
    return Path(root) / "kernels"


_LOADED: dict[str, Callable] = {}  # numba kernels already imported in this process


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

