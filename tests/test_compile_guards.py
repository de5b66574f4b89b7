"""mg.compile is never silently stale: what a trace took as fixed is guarded (the items of
lists and dicts, the attributes of objects, the submodules and parameters of every module it
reaches) and a change traces again; randomness drawn outside minigrad runs eagerly, drawing
afresh at every call; NumPy array arguments are NumPy arrays inside, as eagerly (in a
Trainer's step too); and verify=True catches a replay that differs from eager.

Each test of a guard changes something between two calls and checks the second call against
eager; before these guards, the second call replayed the first trace. A TraceWarning (a call
falling back to eager) fails a test that does not expect it."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

import minigrad as mg
from minigrad.compile import TraceError, TraceWarning, VerifyError
from minigrad.nn import Dropout, Linear, Module, Parameter
from minigrad.train import Trainer

pytestmark = pytest.mark.filterwarnings("error::minigrad.compile.TraceWarning")


def vector(*values: float) -> mg.Tensor:
    """A float64 tensor, so that compiled and eager results can be compared exactly."""
    return mg.tensor(np.array(values, dtype=np.float64))


# -- the contents of what the function reads -----------------------------------------------------


def test_a_changed_list_item_traces_again():
    scales = [2.0, vector(1, 1, 1)]
    compiled = mg.compile(lambda x: x * scales[0] + scales[1], fallback=False)
    x = vector(0, 1, 2)
    np.testing.assert_array_equal(compiled(x).data, [1, 3, 5])
    scales[0] = 3.0
    np.testing.assert_array_equal(compiled(x).data, [1, 4, 7])
    scales[1] = vector(5, 5, 5)
    np.testing.assert_array_equal(compiled(x).data, [5, 8, 11])
    assert len(compiled.traces) == 1  # each new trace replaced the stale one


PARAMS = {"w": vector(1, 1), "scale": 2.0}


def scaled_product(x: mg.Tensor) -> mg.Tensor:
    """Reads a global dict."""
    return (x * PARAMS["w"]) * PARAMS["scale"]


def test_a_changed_dict_value_traces_again(monkeypatch):
    compiled = mg.compile(scaled_product, fallback=False)
    x = vector(1, 2)
    np.testing.assert_array_equal(compiled(x).data, [2, 4])
    monkeypatch.setitem(PARAMS, "w", vector(10, 100))  # a new tensor: the trace read the old
    np.testing.assert_array_equal(compiled(x).data, [20, 400])
    monkeypatch.setitem(PARAMS, "scale", 0.5)
    np.testing.assert_array_equal(compiled(x).data, [5, 100])


class Scaler:
    """A callable object whose options live in other objects."""

    def __init__(self) -> None:
        self.opts, self.shifts = SimpleNamespace(scale=2.0), {"value": 1.0}

    def scaled(self, x: mg.Tensor) -> mg.Tensor:
        return x * self.opts.scale + self.shifts["value"]

    def __call__(self, x: mg.Tensor) -> mg.Tensor:
        return x * self.opts.scale + self.shifts["value"]


@pytest.mark.parametrize("how", ["closure", "method", "callable object"])
def test_a_changed_attribute_of_an_object_it_reads_traces_again(how):
    scaler = Scaler()
    fn = {"closure": lambda x: x * scaler.opts.scale + scaler.shifts["value"],
          "method": scaler.scaled, "callable object": scaler}[how]
    compiled = mg.compile(fn, fallback=False)
    x = vector(1, 2)
    np.testing.assert_array_equal(compiled(x).data, [3, 5])
    scaler.opts.scale = 10.0  # two levels below the name the function reads
    np.testing.assert_array_equal(compiled(x).data, [11, 21])
    scaler.shifts["value"] = -1.0
    np.testing.assert_array_equal(compiled(x).data, [9, 19])


def test_a_function_that_appends_to_a_list_it_reads_runs_eagerly_as_often_as_called():
    log = []

    def step(x: mg.Tensor) -> mg.Tensor:
        y = x * 2
        log.append(y)
        return y.sum()

    compiled = mg.compile(step)
    x = vector(1, 2)
    with pytest.warns(TraceWarning, match=r"sets log\[0\] while tracing"):
        compiled(x)
    compiled(x)
    compiled(x)
    assert len(log) == 3  # once per call, as eagerly: not twice at the first, never at replays
    with pytest.raises(TraceError, match=r"sets log\[3\] while tracing"):
        mg.compile(step, fallback=False)(x)
    assert len(log) == 3  # set back after the failed trace


def test_an_in_place_write_runs_eagerly():
    def clipped(x: mg.Tensor) -> mg.Tensor:
        y = x * 2
        y[0] = 0.0  # a write a program would not replay where it reads y
        return y

    compiled, x = mg.compile(clipped), vector(1, 2)
    with pytest.warns(TraceWarning, match="in-place op __setitem__ on the output of"):
        assert compiled(x).data.tolist() == [0, 4]
    assert compiled(vector(3, 4)).data.tolist() == [0, 8]


# -- modules --------------------------------------------------------------------------------------


class Net(Module):
    """Linear -> tanh -> dropout -> Linear."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.first, self.drop, self.cell = Linear(3, 4), Dropout(dropout), Linear(4, 2)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        return self.cell(self.drop(self.first(x).tanh()))


@pytest.mark.parametrize("how", ["module", "function"])
def test_a_replaced_submodule_traces_again(how):
    mg.manual_seed(0)
    model = Net()
    compiled = mg.compile(model if how == "module" else lambda x: model(x) * 1.0,
                          fallback=False)
    x = mg.randn(5, 3)
    compiled(x)
    model.cell = Linear(4, 2)
    np.testing.assert_allclose(compiled(x).data, model(x).data, rtol=1e-6)
    inner = Net()  # a module of another kind, with modules of its own
    inner.first = Linear(4, 4)
    model.cell = inner
    np.testing.assert_allclose(compiled(x).data, model(x).data, rtol=1e-6)
    inner.first = Linear(4, 4)  # a module below a module below the compiled one
    np.testing.assert_allclose(compiled(x).data, model(x).data, rtol=1e-6)


@pytest.mark.parametrize("how", ["called", "read through a list"])
def test_a_replaced_parameter_traces_again_wherever_its_module_is_reached(how):
    mg.manual_seed(0)
    model, layers = Net(), [Linear(3, 2)]
    fn = {"called": lambda x: model(x),
          "read through a list": lambda x: x @ layers[0].weight}[how]
    layer = {"called": model.first, "read through a list": layers[0]}[how]
    compiled = mg.compile(fn, fallback=False)
    x = mg.randn(4, 2) if how == "read through a list" else mg.randn(4, 3)
    compiled(x)
    layer.weight = Parameter(np.full(layer.weight.shape, 0.5, np.float32))
    np.testing.assert_allclose(compiled(x).data, fn(x).data, rtol=1e-6)


def test_switching_between_train_and_eval_reuses_both_traces():
    model = Net(dropout=0.5)
    compiled = mg.compile(model, fallback=False)
    x = mg.randn(5, 3)
    for _ in range(3):
        compiled.train()(x)
        compiled.eval()(x)
    assert len(compiled.traces) == 2


# -- randomness drawn outside minigrad -----------------------------------------------------------


def noisy(x: mg.Tensor) -> mg.Tensor:
    return x + mg.tensor(np.random.randn(3))


def test_a_draw_from_numpys_global_state_runs_eagerly_naming_the_line():
    compiled, x = mg.compile(noisy), vector(0, 0, 0)
    np.random.seed(0)
    with pytest.warns(TraceWarning, match=r"np\.random\.randn\(\) uses the global random state"
                      ) as caught:
        first = compiled(x).data
    assert "test_compile_guards.py" in str(caught[0].message)
    assert "x + mg.tensor(np.random.randn(3))" in str(caught[0].message)
    second = compiled(x).data
    np.random.seed(0)
    np.testing.assert_array_equal(first, np.random.randn(3))  # as eager, from the same seed
    np.testing.assert_array_equal(second, np.random.randn(3))  # afresh at every call
    with pytest.raises(TraceError, match=r"np\.random\.randn\(\)"):
        mg.compile(noisy, fallback=False)(x)


def test_draws_from_pythons_random_and_from_an_unseeded_generator_run_eagerly():
    x = vector(1, 1, 1)
    for fn, what in ((lambda x: x * random.random(), r"random\.random\(\)"),
                     (lambda x: x + mg.tensor(np.random.default_rng().normal(size=3)),
                      r"np\.random\.default_rng\(\) seeds a new generator")):
        compiled = mg.compile(fn)
        with pytest.warns(TraceWarning, match=what):
            first = compiled(x).data
        assert not np.array_equal(first, compiled(x).data)


def generator_draw(kind: str):
    """A function that draws from a generator it reads (a closure variable ``rng``), and the
    same function on a twin of that generator, seeded alike."""
    make = {"Generator": np.random.default_rng, "RandomState": np.random.RandomState,
            "random.Random": random.Random}[kind]

    def drawing_from(rng):
        if kind == "random.Random":
            return lambda x: x * rng.random()
        return lambda x: x + mg.tensor(rng.normal(size=3))

    return drawing_from(make(0)), drawing_from(make(0))


@pytest.mark.parametrize("kind", ["Generator", "RandomState", "random.Random"])
def test_a_draw_from_a_generator_it_reads_runs_eagerly_drawing_afresh(kind):
    fn, twin = generator_draw(kind)
    compiled, x = mg.compile(fn), vector(1, 1, 1)
    with pytest.warns(TraceWarning, match="draws random numbers from rng while tracing"):
        first = compiled(x).data
    second = compiled(x).data
    np.testing.assert_array_equal(first, twin(x).data)  # the draw of tracing was set back
    np.testing.assert_array_equal(second, twin(x).data)  # and the next call draws afresh


# -- NumPy array arguments -----------------------------------------------------------------------


def weighted_sum(x: mg.Tensor, ids: np.ndarray):
    """Eager NumPy on an array argument: a comparison, np.where, a count, views."""
    kept = ids != 0
    weights = np.where(kept, 1.0, 0.5)
    return (x * weights).sum(), kept.sum(), ids.reshape(-1)[::2], np.asarray(ids).T


def test_numpy_array_arguments_are_numpy_arrays_inside_as_eagerly():
    compiled = mg.compile(weighted_sum, fallback=False)
    x = mg.tensor(np.arange(6.0), requires_grad=True)
    for ids in (np.array([0, 3, 0, 5, 1, 0]), np.array([2, 0, 0, 0, 7, 1]),
                np.array([4, 4, 4, 4, 4, 4])):
        got, want = compiled(x, ids), weighted_sum(x, ids)
        assert isinstance(got[1], np.integer) and type(got[1]) is type(want[1])
        assert got[1] == want[1]
        for a, b in zip(got[2:], want[2:]):
            assert type(a) is np.ndarray and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got[0].data, want[0].data)
        x.grad = None
        got[0].backward()
        np.testing.assert_array_equal(x.grad.data, np.where(ids != 0, 1.0, 0.5))
    assert len(compiled.traces) == 1


def test_reading_an_array_arguments_values_in_python_runs_eagerly():
    def distinct(x: mg.Tensor, ids: np.ndarray) -> mg.Tensor:
        return x * len(set(ids.tolist()))

    compiled, x = mg.compile(distinct), vector(1, 2)
    with pytest.warns(TraceWarning, match=r"`tolist` reads argument 1 \(an array\)"):
        assert compiled(x, np.array([1, 1, 2])).data.tolist() == [2, 4]
    assert compiled(x, np.array([1, 2, 3])).data.tolist() == [3, 6]


def test_numpy_results_whose_shape_depends_on_the_values_run_eagerly():
    def positives(x: mg.Tensor, ids: np.ndarray) -> mg.Tensor:
        return x[ids[ids > 0]].sum()

    compiled, x = mg.compile(positives), vector(1, 10, 100)
    with pytest.warns(TraceWarning, match="depends on the values of argument 1"):
        assert compiled(x, np.array([0, 1, 2])).item() == 110
    assert compiled(x, np.array([0, 0, 2])).item() == 100


def train_weighted(batches: list, compile: bool) -> tuple[list, np.ndarray, Trainer]:
    """Train a linear model for 2 epochs on ``(x, y, weight)`` batches with a step that computes
    with the batch's arrays in NumPy; returns the step losses, the weights and the trainer."""
    mg.manual_seed(0)
    model = Linear(3, 2)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False,
                      compile=compile)

    def step(batch):
        x, y, weight = batch
        count = np.sum(weight > 0)  # NumPy: the rows that count, a NumPy integer
        share = (weight / count)[:, None].astype(np.float32)
        return (((model(mg.tensor(x)) - y) ** 2) * share).sum(), count

    history = trainer.fit(2, lambda: batches, step)
    return history.step_loss, model.weight.data, trainer


TABLE = np.array([1.0, 10.0, 100.0, 1000.0])


@pytest.mark.parametrize("read", ["indexing", "np.take", "memoryview"])
def test_code_that_reads_an_array_arguments_memory_past_numpy_runs_eagerly(read):
    fn = {"indexing": lambda x, ids: x * mg.tensor(TABLE[ids]),  # TABLE is not an argument
          "np.take": lambda x, ids: x * mg.tensor(np.take(TABLE, ids)),
          "memoryview": lambda x, ids: x * sum(memoryview(ids).tolist())}[read]
    compiled, x = mg.compile(fn), vector(1, 2, 3)
    with pytest.warns(TraceWarning, match="reads the values of an array argument where "
                                          "mg.compile cannot record it"):
        np.testing.assert_array_equal(compiled(x, np.array([0, 1, 1])).data,
                                      fn(x, np.array([0, 1, 1])).data)
    np.testing.assert_array_equal(compiled(x, np.array([3, 2, 0])).data,
                                  fn(x, np.array([3, 2, 0])).data)  # not the first call's


def test_a_trainer_step_sees_the_batch_as_numpy_arrays_compiled_or_not():
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(6, 3)).astype(np.float32),
                rng.normal(size=(6, 2)).astype(np.float32),
                rng.integers(0, 3, size=6).astype(np.float32)) for _ in range(4)]
    eager_losses, eager_weights, _ = train_weighted(batches, compile=False)
    losses, weights, trainer = train_weighted(batches, compile=True)
    assert trainer.compiled_step.traces and not trainer.compiled_step.fallbacks
    np.testing.assert_allclose(np.array(losses), np.array(eager_losses), rtol=1e-6)
    np.testing.assert_allclose(weights, eager_weights, rtol=1e-6)


# -- verify ---------------------------------------------------------------------------------------


def test_verify_catches_a_replay_that_differs_from_eager():
    bias = np.zeros(3)  # read from outside: what the function computes from it is a constant

    def shifted(x: mg.Tensor) -> mg.Tensor:
        return x + mg.tensor(bias * 2.0)

    verified, plain = mg.compile(shifted, verify=True), mg.compile(shifted)
    x = vector(1, 2, 3)
    verified(x)
    plain(x)
    bias += 1.0  # in place: no guard sees it (see "What a replay cannot see")
    np.testing.assert_array_equal(plain(x).data, [1, 2, 3])  # stale: what verify is for
    with pytest.raises(VerifyError, match=r"differs from eager in result 0") as error:
        verified(x)
    assert "shifted" in str(error.value) and "What a replay cannot see" in str(error.value)


def test_verify_compares_gradients_when_a_backward_runs(monkeypatch):
    compiled = mg.compile(lambda x, w: (x @ w).tanh().sum(), verify=True, fallback=False)
    x, w = mg.randn(3, 4, requires_grad=True), mg.randn(4, 2, requires_grad=True)
    compiled(x, w).backward()  # agrees
    backward = compiled.traces[0].backward
    run = backward.run
    monkeypatch.setattr(backward, "run",
                        lambda arrays, consume=False: [g * 2 for g in run(arrays, consume)])
    y = compiled(x, w)
    with pytest.raises(VerifyError, match="the gradient of argument 0"):
        y.backward()


def test_verify_passes_on_a_model_with_dropout_and_draws_what_it_draws_without():
    x = mg.randn(5, 3)
    runs = {}
    for verify in (False, True):
        mg.manual_seed(0)
        model = Net(dropout=0.5)
        compiled = mg.compile(model, verify=verify, fallback=False)
        outputs = []
        for _ in range(3):
            y = compiled(x)
            (y * y).sum().backward()
            outputs.append(y.data.copy())
        runs[verify] = outputs, model.first.weight.grad.data.copy()
    assert not np.array_equal(runs[True][0][0], runs[True][0][1])  # fresh masks at each call
    for got, want in zip(runs[True][0], runs[False][0]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(runs[True][1], runs[False][1])


def test_the_environment_variable_turns_verify_on(monkeypatch):
    deep = {"a": {"b": {"scale": 2.0}}}  # three levels down: deeper than the guards look

    def scaled(x: mg.Tensor) -> mg.Tensor:
        return x * deep["a"]["b"]["scale"]

    monkeypatch.setenv("MINIGRAD_COMPILE_VERIFY", "1")
    compiled, x = mg.compile(scaled), vector(1, 2)
    compiled(x)
    deep["a"]["b"]["scale"] = 3.0
    with pytest.raises(VerifyError, match="result 0"):
        compiled(x)
    monkeypatch.setenv("MINIGRAD_COMPILE_VERIFY", "0")
    assert mg.compile(scaled)(x).data.tolist() == [3, 6]  # traced anew, now
