"""Optimizers (SGD, Adam, AdamW) and learning-rate schedulers, with PyTorch's update rules.

An optimizer holds param groups: dicts of ``params`` and hyperparameters (``lr``, ...), so
different parameters can use different settings. ``step()`` updates each parameter's array in
place from its ``.grad``; gradient arrays are never written to (two parameters may share one)
and the per-parameter state (momentum, moments) is the optimizer's own copy.
"""

from __future__ import annotations

import math
import sys
import types
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from minigrad.autograd import enable_grad
from minigrad.ops.inplace import mark_written
from minigrad.tensor import Tensor


class Optimizer:
    """Base class: param groups, per-parameter ``state``, ``zero_grad``, ``step`` and
    ``state_dict``/``load_state_dict`` in PyTorch's layout (parameters by position)."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict) -> None:
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        if isinstance(params, (Tensor, dict)):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Parameters or of dicts "
                f"(param groups); got a single {type(params).__name__}, wrap it in a list"
            )
        if callable(params):  # model.parameters without the call, or the model itself
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Parameters or of dicts "
                f"(param groups); got the callable "
                f"{getattr(params, '__qualname__', type(params).__name__)}: pass "
                "model.parameters(), with the parentheses"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (the rest from defaults)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a param group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors; got a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf tensor (shape {p.shape})")
            if id(p) in seen:
                raise ValueError(
                    f"{name}: a parameter (shape {p.shape}) appears twice in the param groups"
                )
            seen.add(id(p))
        group = {**self.defaults, **group, "params": params}
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: dict) -> None:
        """Validate a group's hyperparameters (subclasses extend this)."""
        for key in ("lr", "weight_decay"):
            if not group[key] >= 0:
                raise ValueError(f"{type(self).__name__}: {key} must be >= 0; got {group[key]}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradient of every parameter: to None (the default, as in PyTorch), or
        with ``set_to_none=False`` to a new tensor of zeros (a None gradient stays None)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor(np.zeros_like(p.grad.data))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given
        (it re-evaluates the model and the loss first)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._opt_called = True  # schedulers warn when they step before the optimizer did
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad.data, self.state.setdefault(p, {}), group)
                    mark_written(p)  # a graph built before the update now raises in backward
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}``,
        with parameters numbered in group order and every array copied."""
        groups, state, index = [], {}, 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            for i, p in zip(packed["params"], group["params"]):
                if p in self.state:
                    state[i] = _copy_state(self.state[p])
            index += len(group["params"])
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by ``state_dict``, all or nothing.

        The groups must have the same sizes as this optimizer's; state arrays must have their
        parameter's shape and are cast to its dtype.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'"
            )
        saved_groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved_groups]
        if sizes != saved_sizes:
            raise ValueError(
                f"{name}.load_state_dict: the saved param groups have sizes {saved_sizes}; this "
                f"optimizer's have {sizes}"
            )
        params = {}
        for group, saved in zip(self.param_groups, saved_groups):
            params.update(zip(saved["params"], group["params"]))
        state = {}
        for i, entry in state_dict["state"].items():
            if i not in params:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter {i}")
            p = params[i]
            for key, value in entry.items():
                if isinstance(value, np.ndarray) and value.shape != p.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: state {key!r} of parameter {i} has shape "
                        f"{value.shape}; the parameter has shape {p.shape}"
                    )
            state[p] = _copy_state(entry, p.dtype)
        groups = [{**saved, "params": group["params"]}
                  for group, saved in zip(self.param_groups, saved_groups)]
        for group in groups:
            self._check(group)
        self.param_groups, self.state = groups, state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in group.items() if k != "params"]
        return "\n".join(lines) + "\n)"


def _copy_state(state: dict, dtype=None) -> dict:
    """A private copy of one parameter's state (arrays copied, cast to ``dtype`` if given)."""
    return {k: np.array(v, dtype=dtype if v.dtype.kind == "f" else None)
            if isinstance(v, np.ndarray) else v for k, v in state.items()}


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``::

        g = grad + weight_decay * p
        buf = g (first step), else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf          (when momentum != 0)
        p = p - lr * g
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check(self, group: dict) -> None:
        super()._check(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: momentum must be >= 0; got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: nesterov momentum needs momentum > 0 and dampening = 0; got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        momentum = group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``; with ``amsgrad`` the running maximum of v is used::

        g = grad + weight_decay * p          (AdamW instead: p = p * (1 - lr * weight_decay))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check(self, group: dict) -> None:
        super()._check(group)
        name = type(self).__name__
        if len(group["betas"]) != 2 or not all(0 <= b < 1 for b in group["betas"]):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1); got {group['betas']}")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: eps must be >= 0; got {group['eps']}")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if decay and self.decoupled_weight_decay:
            p.data *= 1 - lr * decay
        elif decay:
            grad = grad + decay * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)  # beta1 * m + (1 - beta1) * g in PyTorch's lerp form
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + group["eps"]
        p.data -= lr / (1 - beta1**t) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``): before the Adam step,
    p = p * (1 - lr * weight_decay); the gradient itself is not decayed."""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)  # 1e-2, as in PyTorch


# ----------------------------------------------------------------------------------------------
# learning-rate schedulers (also importable as minigrad.optim.lr_scheduler, as in PyTorch)

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where "
    "possible. Please use `scheduler.step()` to step the scheduler. During the deprecation, if "
    "epoch is different from None, the closed form is used instead of the new chainable form, "
    "where available."
)
_STEP_ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. As in PyTorch, call "
    "them in the opposite order: `optimizer.step()` before `lr_scheduler.step()`; otherwise "
    "the first value of the learning rate schedule is skipped."
)
# Entries of PyTorch's scheduler state_dicts that minigrad has no use for: loading ignores them.
_TORCH_ONLY_STATE = frozenset({"_is_initial", "_get_lr_called_within_step", "verbose"})


class LRScheduler:
    """Base of the epoch-based schedulers, as ``torch.optim.lr_scheduler.LRScheduler``.

    With ``last_epoch=-1`` (a fresh run) each param group's ``initial_lr`` is set to its
    ``lr``; a larger ``last_epoch`` resumes a schedule and needs ``initial_lr`` in every group
    (a loaded optimizer state_dict has it). ``base_lrs`` holds the ``initial_lr`` values. The
    constructor takes one step, to epoch 0. Each ``step()`` counts an epoch and sets every
    group's lr to ``get_lr()``; ``get_last_lr()`` returns the lrs that the last step set.
    Subclasses define ``get_lr`` (the next lrs from the current ones) and may define
    ``_get_closed_form_lr`` (the lrs at ``last_epoch`` from ``base_lrs``), which the
    deprecated ``step(epoch)`` uses.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer; got a {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: param 'initial_lr' is not specified in param_groups[{i}] when "
                        f"resuming a schedule with last_epoch={last_epoch}: load the "
                        "optimizer's state_dict first, or use last_epoch=-1 for a fresh run"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()  # to epoch 0; no warning about the order of the steps for this one

    def get_lr(self) -> list[float]:
        """The lr of each param group for the epoch ``last_epoch`` (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr")

    def get_last_lr(self) -> list[float]:
        """The lr of each param group as the last ``step()`` set it."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Count one epoch and set every group's lr for it. Passing ``epoch`` is deprecated,
        as in PyTorch: it jumps to that epoch (with the closed form where there is one)."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(_STEP_ORDER_WARNING, UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute but the optimizer (counters, settings, ``base_lrs``, ``_last_lr``),
        as PyTorch's scheduler state_dict."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` returned (PyTorch's entries that minigrad does not keep,
        such as ``_is_initial``, are ignored; any other unknown key is an error)."""
        unknown = set(state_dict) - set(self.state_dict()) - _TORCH_ONLY_STATE
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: unknown keys {sorted(unknown)}"
            )
        vars(self).update({k: v for k, v in state_dict.items() if k not in _TORCH_ONLY_STATE})


class StepLR(LRScheduler):
    """Multiply every group's lr by ``gamma`` once every ``step_size`` epochs::

        lr_epoch = initial_lr * gamma ** (epoch // step_size)

    (as a chain: at each epoch that is a positive multiple of ``step_size`` the current lr is
    multiplied by ``gamma``, so changes made to the lr from outside are kept).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer; got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current lrs, times ``gamma`` at a positive multiple of ``step_size``."""
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has not improved for ``patience`` steps.

    As ``torch.optim.lr_scheduler.ReduceLROnPlateau``: in mode 'min' a value improves on the
    best so far when it is below ``best * (1 - threshold)`` ('rel') or ``best - threshold``
    ('abs'); 'max' mirrors that. After a reduction, ``cooldown`` steps pass before bad steps
    count again; no lr goes below ``min_lr`` (one number, or one per param group) and a
    reduction smaller than ``eps`` is skipped. The language-model rule "divide the lr by 4
    whenever the validation loss does not improve" is ``factor=0.25, patience=0, threshold=0``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        name = type(self).__name__
        if not 0 < factor < 1:
            raise ValueError(f"{name}: factor must be in (0, 1); got {factor}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer; got a {type(optimizer).__name__}")
        if patience < 0 or cooldown < 0:
            raise ValueError(
                f"{name}: patience and cooldown must be >= 0; got {patience}, {cooldown}"
            )
        self.factor, self.optimizer = factor, optimizer
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != groups:
                raise ValueError(f"{name}: expected {groups} min_lrs (one per param group); "
                                 f"got {len(min_lr)}")
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * groups
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._init_is_better(mode, threshold, threshold_mode)
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        name = type(self).__name__
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max'; got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs'; got "
                             f"{threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode

    def is_better(self, a: float, best: float) -> bool:
        """Whether ``a`` improves on ``best``, by the threshold rule."""
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < best * (1 - self.threshold) if rel else a < best - self.threshold
        return a > best * (1 + self.threshold) if rel else a > best + self.threshold

    @property
    def in_cooldown(self) -> bool:
        """Whether a reduction happened less than ``cooldown`` steps ago."""
        return self.cooldown_counter > 0

    def step(self, metrics: float | Tensor, epoch: int | None = None) -> None:
        """Record this epoch's ``metrics`` (e.g. the validation loss) and reduce the lr if it
        has not improved for more than ``patience`` epochs. Passing ``epoch`` is deprecated."""
        current = metrics.item() if isinstance(metrics, Tensor) else float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"{type(self).__name__}: the optimizer has {len(groups)} param groups but "
                    f"min_lr was given for {len(self.min_lrs)}; set min_lrs to one per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            new_lr = max(group["lr"] * self.factor, min_lr)
            if group["lr"] - new_lr > self.eps:
                group["lr"] = new_lr

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` returned (a ``min_lr`` entry, as older minigrad versions
        saved, sets ``min_lrs``)."""
        state_dict = dict(state_dict)
        if "min_lr" in state_dict:
            min_lr = state_dict.pop("min_lr")
            state_dict.setdefault("default_min_lr", min_lr)
            state_dict.setdefault("min_lrs", [min_lr] * len(self.optimizer.param_groups))
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


lr_scheduler = types.ModuleType(
    f"{__name__}.lr_scheduler",
    "Learning-rate schedulers, as ``torch.optim.lr_scheduler``: LRScheduler, StepLR and "
    "ReduceLROnPlateau (the classes of ``minigrad.optim``).",
)
lr_scheduler.__all__ = ["LRScheduler", "ReduceLROnPlateau", "StepLR"]
for _name in lr_scheduler.__all__:
    setattr(lr_scheduler, _name, globals()[_name])
lr_scheduler.EPOCH_DEPRECATION_WARNING = EPOCH_DEPRECATION_WARNING
sys.modules[lr_scheduler.__name__] = lr_scheduler  # so that `import ....lr_scheduler` works
del _name
