"""Optimizers against hand-computed updates, param groups, state round trips, schedulers."""

import math
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import Linear, Module, Parameter
from minigrad.nn import functional as F
from minigrad.optim import SGD, Adam, AdamW, ReduceLROnPlateau, StepLR


def run(opt_factory, grads, p0=1.0):
    """Apply ``grads`` one step at a time to a float64 parameter starting at ``p0``."""
    p = Parameter(np.full(np.shape(grads[0]), p0))
    opt = opt_factory([p])
    trajectory = []
    for g in grads:
        p.grad = mg.tensor(np.array(g, dtype=np.float64))
        opt.step()
        trajectory.append(p.data.copy())
    return np.array(trajectory)


# -- SGD, by hand: lr 0.1, p0 = 1, gradient 1 at every step --------------------------------------


@pytest.mark.parametrize("options, expected", [
    ({}, [0.9, 0.8, 0.7]),
    # buf = 1, 1.9, 2.71
    ({"momentum": 0.9}, [0.9, 0.71, 0.439]),
    # buf = 1, 0.9 + 0.5 = 1.4, 1.26 + 0.5 = 1.76
    ({"momentum": 0.9, "dampening": 0.5}, [0.9, 0.76, 0.584]),
    # g + 0.9 buf with buf = 1, 1.9, 2.71: steps 1.9, 2.71, 3.439
    ({"momentum": 0.9, "nesterov": True}, [0.81, 0.539, 0.1951]),
    # g = 1 + 0.1 p: 1.1, 1.089, 1.07811
    ({"weight_decay": 0.1}, [0.89, 0.7811, 0.673289]),
])
def test_sgd_by_hand(options, expected):
    got = run(lambda ps: SGD(ps, lr=0.1, **options), [[1.0]] * 3)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12)


def test_sgd_momentum_with_weight_decay_by_hand():
    # step 1: g = 1 + 0.5 * 1 = 1.5, buf = 1.5, p = 1 - 0.15 = 0.85
    # step 2: g = -1 + 0.5 * 0.85 = -0.575, buf = 0.5 * 1.5 - 0.575 = 0.175, p = 0.85 - 0.0175
    got = run(lambda ps: SGD(ps, lr=0.1, momentum=0.5, weight_decay=0.5), [[1.0], [-1.0]])
    np.testing.assert_allclose(got[:, 0], [0.85, 0.8325], rtol=1e-12)


# -- Adam and AdamW -----------------------------------------------------------------------------


def adam_reference(grads, lr, betas, eps, weight_decay=0.0, decoupled=False, amsgrad=False):
    """Kingma & Ba's equations with PyTorch's weight decay options, step by step in float64."""
    b1, b2 = betas
    p = np.ones_like(np.asarray(grads[0], np.float64))
    m, v, v_max, trajectory = 0 * p, 0 * p, 0 * p, []
    for t, g in enumerate(np.asarray(grads, np.float64), start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - b1**t)
        v_hat = (v_max if amsgrad else v) / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        trajectory.append(p)
    return np.array(trajectory)


GRADS = [[0.5, -2.0], [-1.0, -1.5], [2.0, 0.25], [0.1, 3.0]]


def test_adam_with_a_constant_gradient_moves_lr_per_step():
    got = run(lambda ps: Adam(ps, lr=0.1), [[1.0]] * 3)
    np.testing.assert_allclose(got[:, 0], 1 - 0.1 * np.arange(1, 4) / (1 + 1e-8), rtol=1e-12)


@pytest.mark.parametrize("options", [
    {},
    {"betas": (0.5, 0.9), "eps": 1e-3},
    {"weight_decay": 0.3},
    {"amsgrad": True, "betas": (0.9, 0.5)},  # v shrinks at step 3: the maximum matters
])
def test_adam_matches_the_equations(options):
    got = run(lambda ps: Adam(ps, lr=0.05, **options), GRADS)
    settings = {"betas": (0.9, 0.999), "eps": 1e-8, **options}
    expected = adam_reference(GRADS, 0.05, settings.pop("betas"), settings.pop("eps"), **settings)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_amsgrad_keeps_the_largest_second_moment():
    grads = [[3.0], [0.1], [0.1]]
    plain = run(lambda ps: Adam(ps, lr=0.1, betas=(0.9, 0.5)), grads)
    ams = run(lambda ps: Adam(ps, lr=0.1, betas=(0.9, 0.5), amsgrad=True), grads)
    assert ams[0] == plain[0] and abs(1 - ams[-1, 0]) < abs(1 - plain[-1, 0])


@pytest.mark.parametrize("weight_decay", [1e-2, 0.5])
def test_adamw_decays_the_weights_not_the_gradient(weight_decay):
    got = run(lambda ps: AdamW(ps, lr=0.05, weight_decay=weight_decay), GRADS)
    expected = adam_reference(GRADS, 0.05, (0.9, 0.999), 1e-8, weight_decay, decoupled=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert AdamW([Parameter([1.0])]).defaults["weight_decay"] == 1e-2
    l2 = run(lambda ps: Adam(ps, lr=0.05, weight_decay=weight_decay), GRADS)
    assert not np.allclose(got, l2)


# -- what step() may and may not touch ----------------------------------------------------------


OPTIMIZERS = {
    "sgd": lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
    "adam": lambda ps: Adam(ps, lr=0.1, weight_decay=0.1, amsgrad=True),
    "adamw": lambda ps: AdamW(ps, lr=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_never_writes_into_gradients_even_when_shared(name):
    a, b = Parameter(np.array([1.0, 2.0])), Parameter(np.array([3.0, 4.0]))
    c, d = Parameter(np.array([1.0, 2.0])), Parameter(np.array([3.0, 4.0]))
    shared_opt, separate_opt = OPTIMIZERS[name]([a, b]), OPTIMIZERS[name]([c, d])
    for _ in range(3):
        shared_opt.zero_grad()
        (a + b).sum().backward()  # the engine may hand a and b one gradient array
        before = a.grad.data.copy()
        c.grad, d.grad = mg.tensor(np.ones(2)), mg.tensor(np.ones(2))
        shared_opt.step()
        separate_opt.step()
        np.testing.assert_array_equal(a.grad.data, before)
        np.testing.assert_array_equal(b.grad.data, before)
    np.testing.assert_array_equal(a.data, c.data)
    np.testing.assert_array_equal(b.data, d.data)
    for state in shared_opt.state.values():
        for value in state.values():
            if isinstance(value, np.ndarray):
                assert not np.shares_memory(value, a.grad.data)
                assert not np.shares_memory(value, a.data)


def test_parameters_without_gradients_are_skipped_and_arrays_updated_in_place():
    a, b = Parameter([1.0]), Parameter([2.0])
    array = a.data
    a.grad = mg.tensor([1.0])
    opt = Adam([a, b], lr=0.1)
    opt.step()
    assert a.data is array and a.data[0] != 1.0 and b.data[0] == 2.0
    assert b not in opt.state
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_have_their_own_hyperparameters():
    a, b = Parameter([1.0]), Parameter([1.0])
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.0
    for _ in range(2):
        a.grad, b.grad = mg.tensor([1.0]), mg.tensor([1.0])
        opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.8, 1 - 0.5 - 0.95], rtol=1e-6)
    assert "lr: 0.5" in repr(opt)


def test_step_with_closure_returns_the_loss():
    p = Parameter([3.0])
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with mg.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert loss.item() == 9.0 and p.data[0] == 1.5


def test_optimizer_errors():
    p = Parameter([1.0])
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="got a single Parameter, wrap it in a list"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match=r"can't optimize a non-leaf tensor \(shape \(1,\)\)"):
        SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="appears twice in the param groups"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors; got a ndarray"):
        Adam([np.zeros(2)])
    with pytest.raises(ValueError, match="lr must be >= 0; got -1"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov momentum needs momentum > 0 and dampening"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas must be two numbers in \[0, 1\)"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="AdamW: eps must be >= 0"):
        AdamW([p], eps=-1.0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        Adam([{"params": [p], "weight_decay": -0.1}])


def test_the_parameters_method_passed_uncalled_gives_an_error_that_says_to_call_it():
    """``SGD(model.parameters)`` (no parentheses) or ``SGD(model)``; clipping too, which
    lives in minigrad.nn.utils but takes the same argument in the same training loop."""
    model = Linear(2, 3)
    for make in (lambda params: SGD(params, lr=0.1), Adam):
        with pytest.raises(TypeError, match=re.escape(
                f"{make(model.parameters()).__class__.__name__}: params must be an iterable of "
                "Parameters or of dicts (param groups); got the callable Module.parameters: "
                "pass model.parameters(), with the parentheses")):
            make(model.parameters)
        with pytest.raises(TypeError, match="got the callable Linear: pass model.parameters()"):
            make(model)
    for clip in (mg.nn.utils.clip_grad_norm_, mg.nn.utils.clip_grad_value_):
        with pytest.raises(TypeError, match=re.escape(
                f"{clip.__name__}: parameters must be a Tensor or an iterable of Tensors; got "
                "the callable Module.parameters: pass model.parameters(), with the parentheses")):
            clip(model.parameters, 1.0)


# -- state_dict round trips ---------------------------------------------------------------------


class Net(Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = Linear(3, 8), Linear(8, 2)

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


def _train(model, opt, steps):
    rng = np.random.default_rng(5)
    x, y = mg.tensor(rng.standard_normal((16, 3)), dtype=mg.float32), rng.integers(0, 2, 16)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("through_file", [False, True])
def test_state_dict_round_trip_resumes_identically(name, through_file, tmp_path):
    mg.manual_seed(0)
    model = Net()
    opt = OPTIMIZERS[name]([{"params": [model.hidden.weight]},
                            {"params": list(model.parameters())[1:], "lr": 0.05}])
    _train(model, opt, 3)
    checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    if through_file:
        mg.save(checkpoint, tmp_path / "ckpt.npz")
        checkpoint = mg.load(tmp_path / "ckpt.npz")
    expected = _train(model, opt, 3)

    mg.manual_seed(1)
    resumed = Net()
    resumed_opt = OPTIMIZERS[name]([{"params": [resumed.hidden.weight]},
                                    {"params": list(resumed.parameters())[1:]}])
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    assert resumed_opt.param_groups[1]["lr"] == 0.05
    assert _train(resumed, resumed_opt, 3) == expected
    for p, q in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_snapshot_and_bad_state_is_rejected_untouched():
    model = Net()
    opt = Adam(model.parameters(), lr=0.01)
    _train(model, opt, 2)
    saved = opt.state_dict()
    step_before = saved["state"][0]["step"]
    moment = saved["state"][0]["exp_avg"].copy()
    _train(model, opt, 1)
    assert saved["state"][0]["step"] == step_before
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], moment)

    current = opt.state_dict()
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = 123.0
    bad["state"][2]["exp_avg"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 2 has shape \(5,\); the "
                                         r"parameter has shape \(2, 8\)"):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == 0.01
    after = opt.state_dict()
    for i, state in current["state"].items():
        for key, value in state.items():
            np.testing.assert_array_equal(after["state"][i][key], value)
    with pytest.raises(ValueError, match=r"saved param groups have sizes \[2\]; this "
                                         r"optimizer's have \[4\]"):
        opt.load_state_dict(Adam(list(model.parameters())[:2]).state_dict())
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    p = Parameter(np.ones(2, np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.load_state_dict({"state": {0: {"momentum_buffer": np.ones(2)}},
                         "param_groups": [{**opt.param_groups[0], "params": [0]}]})
    assert opt.state[p]["momentum_buffer"].dtype == np.float32


# -- schedulers ---------------------------------------------------------------------------------


def test_step_lr():
    opt = SGD([Parameter([1.0])], lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    assert sched.get_last_lr() == [1.0] and sched.last_epoch == 0
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert opt.param_groups[0]["initial_lr"] == 1.0 and sched.base_lrs == [1.0]
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer"):
        StepLR(opt, 0)
    with pytest.raises(TypeError, match="StepLR: expected an Optimizer"):
        StepLR("sgd", 2)


def test_step_lr_state_dict_round_trip_through_a_checkpoint_resumes_the_schedule(tmp_path):
    def run(sched, opt, steps):
        lrs = []
        for _ in range(steps):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        return lrs

    opt = SGD([{"params": [Parameter([1.0])], "lr": 1.0},
               {"params": [Parameter([1.0])], "lr": 0.1}], lr=0.5)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    run(sched, opt, 4)
    mg.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "c.npz")
    expected = run(sched, opt, 5)
    saved = mg.load(tmp_path / "c.npz")
    opt2 = SGD([{"params": [Parameter([1.0])], "lr": 1.0},
                {"params": [Parameter([1.0])], "lr": 0.1}], lr=0.5)
    opt2.load_state_dict(saved["optimizer"])
    sched2 = StepLR(opt2, step_size=1)  # then loaded, as in PyTorch
    sched2.load_state_dict(saved["scheduler"])
    assert (sched2.step_size, sched2.base_lrs) == (3, [1.0, 0.1])
    assert run(sched2, opt2, 5) == expected


def test_step_lr_with_last_epoch_needs_initial_lr_and_step_with_epoch_is_deprecated():
    opt = SGD([Parameter([1.0])], lr=1.0)
    with pytest.raises(KeyError, match=r"StepLR: param 'initial_lr' is not specified in "
                                       r"param_groups\[0\] when resuming a schedule with "
                                       r"last_epoch=4"):
        StepLR(opt, 2, last_epoch=4)
    sched = StepLR(opt, 2, gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match=r"The epoch parameter in `scheduler.step\(\)` was not "
                                         "necessary"):
        sched.step(5)
    assert sched.last_epoch == 5 and sched.get_last_lr() == [0.25]  # the closed form
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: unknown keys \['bogus'\]"):
        sched.load_state_dict({"bogus": 1})


def test_a_scheduler_stepped_before_its_optimizer_warns():
    opt = SGD([Parameter([1.0])], lr=1.0)
    sched = StepLR(opt, 2)
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before "
                                         r"`optimizer.step\(\)`"):
        sched.step()


def test_lr_scheduler_submodule_has_the_schedulers():
    import minigrad.optim.lr_scheduler as lr_scheduler
    from minigrad.optim.lr_scheduler import LRScheduler
    from minigrad.optim.lr_scheduler import ReduceLROnPlateau as Plateau

    assert mg.optim.lr_scheduler is lr_scheduler
    assert lr_scheduler.StepLR is StepLR and Plateau is ReduceLROnPlateau
    assert issubclass(StepLR, LRScheduler) and issubclass(ReduceLROnPlateau, LRScheduler)
    assert sorted(lr_scheduler.__all__) == ["LRScheduler", "ReduceLROnPlateau", "StepLR"]


def test_zero_grad_set_to_none():
    a, b = Parameter([1.0, 2.0]), Parameter([3.0])
    opt = SGD([a, b], lr=0.1)
    a.grad = g = mg.tensor([5.0, 6.0])
    opt.zero_grad(set_to_none=False)
    assert a.grad is not g and a.grad.shape == (2,) and not a.grad.data.any()
    assert b.grad is None  # None stays None, as in PyTorch
    np.testing.assert_array_equal(g.data, [5.0, 6.0])  # the old gradient is not written to
    opt.zero_grad()
    assert a.grad is None


def test_sgd_lr_defaults_to_pytorchs():
    assert SGD([Parameter([1.0])]).param_groups[0]["lr"] == 1e-3


def _lrs(sched, metrics):
    lrs = []
    for value in metrics:
        sched.step(value)
        lrs.append(sched.get_last_lr()[0])
    return lrs


def test_reduce_lr_on_plateau_language_model_rule():
    # divide by 4 whenever the validation loss does not improve on the best so far
    opt = SGD([Parameter([1.0])], lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.25, patience=0, threshold=0)
    assert _lrs(sched, [5.0, 4.0, 4.5, 4.2, 3.9, 3.9]) == [1, 1, 0.25, 0.0625, 0.0625, 0.015625]


def test_reduce_lr_on_plateau_patience_cooldown_min_lr_and_max_mode():
    opt = SGD([Parameter([1.0])], lr=1.0)
    sched = ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1, cooldown=1, min_lr=0.3)
    metrics = [mg.tensor(1.0)] + [1.0] * 8
    assert _lrs(sched, metrics) == [1, 1, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]


def test_reduce_lr_on_plateau_threshold_and_state_round_trip():
    opt = SGD([Parameter([1.0])], lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0)  # rel threshold 1e-4
    assert _lrs(sched, [1.0, 0.99995]) == [1.0, 0.5]  # too small an improvement
    abs_sched = ReduceLROnPlateau(SGD([Parameter([1.0])], lr=1.0), factor=0.5, patience=0,
                                  threshold=0.1, threshold_mode="abs")
    assert _lrs(abs_sched, [1.0, 0.95, 0.85]) == [1.0, 0.5, 0.5]

    copy = ReduceLROnPlateau(SGD([Parameter([1.0])], lr=0.5), factor=0.5, patience=0)
    copy.load_state_dict(sched.state_dict())
    assert copy.best == sched.best == 1.0
    assert _lrs(copy, [2.0]) == _lrs(sched, [2.0]) == [0.25]
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]"):
        copy.load_state_dict({"bogus": 1})


def test_reduce_lr_on_plateau_min_lr_per_group_and_old_state_dicts():
    opt = SGD([{"params": [Parameter([1.0])], "lr": 1.0},
               {"params": [Parameter([1.0])], "lr": 1.0}], lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0, min_lr=[0.6, 0.1])
    for value in [1.0, 2.0, 2.0, 2.0]:
        sched.step(value)
    assert sched.get_last_lr() == [0.6, 0.125]
    with pytest.raises(ValueError, match=r"expected 2 min_lrs \(one per param group\); got 1"):
        ReduceLROnPlateau(opt, min_lr=[0.1])
    old = {k: v for k, v in sched.state_dict().items() if k not in ("min_lrs", "default_min_lr")}
    old["min_lr"] = 0.3  # what minigrad saved before min_lr could be a list
    copy = ReduceLROnPlateau(opt)
    copy.load_state_dict(old)
    assert copy.min_lrs == [0.3, 0.3] and copy.default_min_lr == 0.3


def test_reduce_lr_on_plateau_errors():
    opt = SGD([Parameter([1.0])], lr=1.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\); got 1.0"):
        ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="threshold_mode must be 'rel' or 'abs'"):
        ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="patience and cooldown must be >= 0"):
        ReduceLROnPlateau(opt, patience=-1)
    assert math.isinf(ReduceLROnPlateau(opt).best)


def test_an_optimizer_without_update_names_its_class():
    from minigrad.optim import Optimizer

    class Plain(Optimizer):
        pass

    p = Parameter(np.ones(2))
    p.grad = mg.tensor(np.ones(2))
    with pytest.raises(NotImplementedError, match="^Plain must define _update$"):
        Plain([p], {"lr": 0.1, "weight_decay": 0.0}).step()
