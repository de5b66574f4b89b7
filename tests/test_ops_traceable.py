"""Every built-in op obeys "data flows through ops" (issue 10), so that a traced program replayed
on new arrays is right.

A tracer sees a function as the ops it calls (``Function.apply``) and the backward as the ops
that ``mg.grad(..., create_graph=True)`` calls. Here that view is recorded for a representative
call of each op whose data once escaped (index arrays, class targets, where's condition, the
masks of abs, clip, relu and max, dropout's mask, comparisons, argmax, detach) and checked:
- every tensor an op reads that no recorded op made, and that is not an input or parameter,
  is a genuine constant: the same data when the inputs change (a mask computed from data and
  baked in would differ);
- no option (``__init__`` keyword) holds an array;
- replaying the ops recorded on the first inputs (forward of each, in order, on arrays only)
  on the second inputs gives exactly what eager gives on them: outputs and gradients, with
  dropout's mask redrawn from the same seed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.ops
from minigrad.autograd import Function
from minigrad.nn import Embedding, Linear
from minigrad.nn import functional as F


@dataclass
class Call:
    """One op as a tracer records it."""

    op: type[Function]
    options: dict
    inputs: tuple[mg.Tensor, ...]
    outputs: tuple[mg.Tensor, ...]


@dataclass
class Recording:
    """The ops of one forward and create_graph backward, and the tensors they started from."""

    calls: list[Call]
    sources: list[mg.Tensor]  # inputs, then parameters
    results: list[mg.Tensor]  # the output, then the gradient of each source

    def constants(self) -> list[mg.Tensor]:
        """The tensors that ops read but no recorded op made and that are not sources."""
        made = {id(y) for c in self.calls for y in c.outputs} | {id(s) for s in self.sources}
        found: dict[int, mg.Tensor] = {}
        for c in self.calls:
            for x in c.inputs:
                if id(x) not in made:
                    found.setdefault(id(x), x)
        return list(found.values())


def record(monkeypatch, fn: Callable, arrays: list[np.ndarray], params: list[mg.Tensor],
           seed: int) -> Recording:
    """Run ``fn`` on tensors of ``arrays`` (floating ones require grad) and take the gradient
    of its output's sum with ``create_graph=True``, recording every op that runs."""
    calls: list[Call] = []
    apply = Function.__dict__["apply"].__func__

    def recording(cls, *inputs, **options):
        out = apply(cls, *inputs, **options)
        calls.append(Call(cls, options, inputs, out if isinstance(out, tuple) else (out,)))
        return out

    inputs = [mg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    wanted = [t for t in inputs if t.requires_grad] + params
    mg.manual_seed(seed)
    with monkeypatch.context() as m:
        m.setattr(Function, "apply", classmethod(recording))
        y = fn(*inputs)
        grads = mg.grad(y.sum(), wanted, create_graph=True)
    return Recording(calls, inputs + params, [y, *grads])


def replay(rec: Recording, sources: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Run the recorded ops' forwards in order on new source arrays, as a compiled call would."""
    env = {id(t): a for t, a in zip(rec.sources, sources)}
    env.update({id(t): t.data for t in rec.constants()})
    mg.manual_seed(seed)
    for c in rec.calls:
        out = c.op(**c.options).forward(*[env[id(x)] for x in c.inputs])
        env.update(zip(map(id, c.outputs), out if isinstance(out, tuple) else (out,)))
    return [env[id(r)] for r in rec.results]


def _holds_array(value) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_holds_array(v) for v in value)
    return isinstance(value, (np.ndarray, mg.Tensor))


RNG = np.random.default_rng(0)


def normal(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def with_ties(*shape: int) -> np.ndarray:
    """Values on a coarse grid, so that max and min see ties and clip hits its bounds."""
    return RNG.integers(-2, 3, shape) / 2.0


def ids(high: int, *shape: int) -> np.ndarray:
    return RNG.integers(0, high, shape)


def mask(*shape: int, count: int) -> np.ndarray:
    """A boolean mask with exactly ``count`` true entries (so shapes match across runs)."""
    flat = np.zeros(int(np.prod(shape)), bool)
    flat[RNG.permutation(flat.size)[:count]] = True
    return flat.reshape(shape)


linear = Linear(4, 3).double()
embedding = Embedding(6, 3, padding_idx=2).double()

# name -> (fn, two sets of arrays with the same shapes, parameters)
CASES: dict[str, tuple[Callable, Callable[[], list[np.ndarray]], list[mg.Tensor]]] = {
    "abs": (lambda x: x.abs() * x, lambda: [with_ties(3, 4)], []),
    "clip": (lambda x: x.clip(-0.5, 0.5) * x, lambda: [with_ties(3, 4)], []),
    "clip_lo": (lambda x: x.clip(min=0.0) * x, lambda: [with_ties(3, 4)], []),
    "relu": (lambda x: x.relu() * x, lambda: [with_ties(3, 4)], []),
    "max": (lambda x: x.amax(axis=1) * x.sum(1), lambda: [with_ties(3, 4)], []),
    "min_keepdims": (lambda x: x.amin(axis=0, keepdims=True) * x, lambda: [with_ties(3, 4)], []),
    "max_dim": (lambda x: x.max(1, keepdim=True).values * x.min(0).indices,
                lambda: [with_ties(3, 4)], []),
    "maximum_minimum": (lambda x, y: mg.maximum(x, y) * mg.minimum(x, 0.0),
                        lambda: [with_ties(3, 4), with_ties(4)], []),
    "comparisons": (lambda x, y: x * (x > 0.1) + y * (x <= y) + x * (0.0 >= x) * (y < 1.0),
                    lambda: [normal(3, 4), normal(4)], []),
    "where": (lambda c, x, y: mg.where(c, x * x, y), lambda: [mask(3, 4, count=5), normal(3, 4),
                                                              normal(4)], []),
    "getitem_ids": (lambda x, i: x[i] * x[i, ::-1], lambda: [normal(5, 3), ids(5, 2, 4)], []),
    "getitem_two_arrays": (lambda x, i, j: x[i, 1:, j] ** 2,
                           lambda: [normal(4, 3, 5), ids(4, 6), ids(5, 6)], []),
    "getitem_mask": (lambda x, m: x[m] ** 2, lambda: [normal(3, 4), mask(3, 4, count=7)], []),
    "argmax": (lambda x: x[mg.arange(3), x.argmax(axis=1)] * x.argmin(axis=1),
               lambda: [normal(3, 4)], []),
    "detach": (lambda x: x * x.detach(), lambda: [normal(3, 4)], []),
    "embedding": (lambda i: embedding(i) ** 2, lambda: [ids(6, 4, 3)], [embedding.weight]),
    "linear": (lambda x: linear(x).tanh(), lambda: [normal(2, 5, 4)], list(linear.parameters())),
    "dropout": (lambda x: F.dropout(x, 0.4) * F.dropout(x * x, 0.5), lambda: [normal(6, 5)], []),
    "mse_loss": (lambda x, t: F.mse_loss(x, t), lambda: [normal(3, 4), normal(3, 4)], []),
}
for reduction in ("mean", "sum", "none"):
    CASES[f"cross_entropy_{reduction}"] = (
        lambda x, t, r=reduction: F.cross_entropy(x, t, ignore_index=1, reduction=r) * 1.5,
        lambda: [normal(4, 5, 2), ids(5, 4, 2)], [],
    )
CASES["cross_entropy_classes_last"] = (
    lambda x, t: F.cross_entropy(x, t, axis=-1), lambda: [normal(2, 3, 5), ids(5, 2, 3)], [],
)


@pytest.mark.parametrize("name", CASES)
def test_a_traced_program_reads_its_data_from_inputs_and_replays_exactly(monkeypatch, name):
    fn, draw, params = CASES[name]
    first, second = draw(), draw()
    seed = 7
    runs = [record(monkeypatch, fn, arrays, params, seed) for arrays in (first, second)]
    one, two = runs
    assert [c.op for c in one.calls] == [c.op for c in two.calls]
    for c1, c2 in zip(one.calls, two.calls):
        assert not _holds_array(list(c1.options.values())), (c1.op.__name__, c1.options)
        assert c1.options.keys() == c2.options.keys()
        assert all(c1.options[k] is c2.options[k] or c1.options[k] == c2.options[k]
                   for k in c1.options), (c1.op.__name__, c1.options, c2.options)
    constants = list(zip(one.constants(), two.constants(), strict=True))
    for c1, c2 in constants:
        np.testing.assert_array_equal(c1.data, c2.data, err_msg=f"{name}: a constant that "
                                      "depends on the data was baked into the program")
    replayed = replay(one, [t.data for t in two.sources], seed)
    for got, want in zip(replayed, two.results, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want.data)


def test_the_checks_catch_a_mask_baked_in_from_data(monkeypatch):
    """An op written the old way (sign read from ``.data`` in backward) fails the check."""

    class BakedAbs(Function):
        def forward(self, x):
            return np.abs(x)

        def backward(self, gy):
            return gy * mg.Tensor._wrap(np.sign(self.inputs[0].data))

    one, two = (record(monkeypatch, lambda x: BakedAbs.apply(x) * x, [a], [], 0)
                for a in (np.array([1.0, -2.0]), np.array([-1.0, 2.0])))
    differ = [not np.array_equal(c1.data, c2.data)
              for c1, c2 in zip(one.constants(), two.constants())]
    assert any(differ)
    replayed = replay(one, [t.data for t in two.sources], 0)
    assert not np.array_equal(replayed[1], two.results[1].data)


def test_index_arrays_reach_getitem_as_the_callers_own_array():
    """An ndarray of ids becomes an input of the lookup without a copy, so a tracer can tell
    that the array it sees is the caller's argument."""
    ids_array = np.array([[1, 0], [3, 3]])
    rows = Embedding(4, 2)(ids_array)
    checked_ids = rows.grad_fn.inputs[1]
    assert rows.grad_fn.name == "GetItem" and checked_ids.data is ids_array
    x = mg.randn(3, requires_grad=True)
    index = np.array([2, 0])
    assert x[index].grad_fn.inputs[1].data is index


def _stores_on_self(method: ast.FunctionDef) -> list[str]:
    """Where ``method`` sets an attribute of ``self`` (``self.x = ...``, ``self.x += ...``,
    ``self.a, self.b = ...``, ``setattr(self, ...)``), as ``self.x`` at line n."""
    found = []
    for node in ast.walk(method):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del))
                and isinstance(node.value, ast.Name) and node.value.id == "self"):
            found.append(f"self.{node.attr} at line {node.lineno}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "setattr" and node.args
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"):
            found.append(f"setattr(self, ...) at line {node.lineno}")
    return found


def test_no_forward_keeps_state_on_self():
    """A forward keeps what backward needs with ``save_for_backward`` (``self.saved``), never
    in an attribute of its own: options are set in ``__init__`` only, so that an op made again
    from its options (as a traced program replays it) is the same op."""
    forwards, offenders = 0, []
    for path in sorted(Path(minigrad.ops.__file__).parent.glob("*.py")):
        for cls in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(cls, ast.ClassDef):
                continue
            for method in cls.body:
                if isinstance(method, ast.FunctionDef) and method.name == "forward":
                    forwards += 1
                    offenders += [f"{path.name}: {cls.name}.forward sets {where}"
                                  for where in _stores_on_self(method)]
    assert forwards > 40  # the walk found the ops
    assert not offenders, "\n".join(offenders)
