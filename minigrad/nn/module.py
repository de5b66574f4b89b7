"""Module, Parameter and ModuleList: the containers that models are built from, as in PyTorch."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from minigrad.autograd import name_scope, no_grad
from minigrad.tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A leaf tensor that a Module registers as one of its parameters.

    It owns a copy of ``data`` (so in-place updates never reach the caller's array); float data
    from lists defaults to float32 and a float64 array stays float64.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        array = np.array(data.data if isinstance(data, Tensor) else data, copy=True)
        if array.dtype.kind != "f":
            raise TypeError(
                f"Parameter: data must be floating point; got dtype {array.dtype} "
                f"(shape {array.shape})"
            )
        if array.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic, Tensor)):
            array = array.astype(np.float32)
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter containing:\n{super().__repr__()}"


def _check_not_a_checkpoint(state_dict: Mapping[str, Any], where: str) -> None:
    """Raise if ``state_dict`` holds dicts rather than arrays: a Trainer checkpoint (its model's
    state_dict is under "model") or another nesting; name the part to pass instead."""
    nested = [key for key, value in state_dict.items() if isinstance(value, Mapping)]
    if not nested:
        return
    if "model" in nested:
        raise ValueError(
            f"{where}: got a checkpoint with keys {list(state_dict)} (as Trainer.save writes), "
            "not a state_dict; pass its model part: model.load_state_dict(ckpt['model'])"
        )
    raise ValueError(
        f"{where}: expected a state_dict of name -> array; the value of {nested[0]!r} is a "
        f"dict (keys {list(state_dict)}): pass the part that holds this module's state_dict, "
        f"e.g. ckpt[{nested[0]!r}]"
    )


class Module:
    """Base class of layers and models.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, in insertion order;
    ``parameters()``, ``state_dict()``, ``train()`` and the rest walk what is registered.
    Subclasses call ``super().__init__()`` first and define ``forward``. Calling a module runs
    ``forward`` inside a name scope (the attribute name it was registered under), so every op
    records the module path that created it.
    """

    #: Children whose parameters this module registers as its own under flat names (Recurrent
    #: lists its cells' ``weight_ih`` as ``weight_ih_l0``, ...): ``named_parameters`` and
    #: ``state_dict`` give them under those names only; ``train``, ``apply`` and the module
    #: walks still reach the children.
    _flat_children: tuple[str, ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_scope_name", None)
        self.training = True

    # -- registration ---------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )
        modules = self._modules
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
            if value._scope_name is None:
                value._scope_name = name
        elif name in params or name in modules:
            if value is not None:
                kind = "Parameter" if name in params else "Module"
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to {name!r} of "
                    f"{type(self).__name__}: it holds a {kind} ({kind} or None expected)"
                )
            (params if name in params else modules)[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (which need not be an identifier, e.g. "0")."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(
                f"add_module: name must be a non-empty string without '.'; got {name!r}"
            )
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"add_module: {type(self).__name__}.{name} must be a Module or None; got a "
                f"{type(module).__name__}"
            )
        if module is None:
            self._modules[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, module)

    # -- traversal ------------------------------------------------------------------------------

    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True, memo: set | None = None
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" by default) and every module below it;
        ``memo`` holds the ids of modules already yielded."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                path = f"{prefix}.{name}" if prefix else name
                yield from child.named_modules(path, remove_duplicate, memo)

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, each once."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for the direct children, each once."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """The direct children, each once."""
        for _, child in self.named_children():
            yield child

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter): each module's own in registration order, then its children's.

        A parameter shared by two modules (tied weights) is yielded once unless
        ``remove_duplicate=False``.
        """
        seen, flattened = set(), set()
        owners = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        for path, module in owners:
            if id(module) in flattened:  # an ancestor lists its parameters (_flat_children)
                continue
            for child in module._flat_children:
                flattened.update(map(id, module._modules[child].modules()))
            for name, p in module._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{path}.{name}" if path else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, each once, in ``named_parameters`` order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every child (recursively) and then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- modes and gradients --------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``training = mode``) here and in every child; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode must be a bool; got {mode!r}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``): dropout becomes the identity."""
        return self.train(False)

    @contextmanager
    def evaluating(self) -> Iterator[Module]:
        """Context manager for evaluation: eval mode and no graph inside, everything as before
        after.

        ``with model.evaluating(): ...`` puts this module and every module below it in eval
        mode (dropout off) and records no graph (``no_grad``); on exit, exception or not, it
        gives each module back its own previous ``training`` flag (a submodule frozen in eval
        mode stays so) and restores the grad mode. It yields the module.
        """
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        try:
            with no_grad():
                yield self
        finally:
            for module, mode in modes:  # parents first, so each child's own flag has the last word
                module.train(mode)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (the default, as in PyTorch), or with
        ``set_to_none=False`` to a new tensor of zeros (a gradient that was None stays None).
        """
        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor(np.zeros_like(p.grad.data))

    def to(self, dtype) -> Module:
        """Convert every parameter (and its gradient) to the float ``dtype``, in place."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(
                f"{type(self).__name__}.to: parameters must be floating point; got dtype {dtype}"
            )
        for p in self.parameters():
            if p.dtype != dtype:
                p.data = p.data.astype(dtype)
                if p.grad is not None:
                    p.grad = Tensor(p.grad.data.astype(dtype))
        return self

    def double(self) -> Module:
        """Convert the parameters to float64 (as ``gradcheck`` needs)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Convert the parameters to float32."""
        return self.to(np.float32)

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter's array by dotted name (tied weights under each name)."""
        return OrderedDict(
            (name, p.data.copy()) for name, p in self.named_parameters(remove_duplicate=False)
        )

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into the parameters, all or nothing.

        Every key and shape is checked first; a missing key or an unexpected key (when
        ``strict``), a wrong shape or non-float values raise one ValueError that names them all,
        and the module is left as it was. Arrays of another float dtype are cast to the
        parameter's dtype. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict: expected a mapping of name -> array; got a "
                f"{type(state_dict).__name__}"
            )
        _check_not_a_checkpoint(state_dict, f"{type(self).__name__}.load_state_dict")
        own = OrderedDict(self.named_parameters(remove_duplicate=False))
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        arrays = {}
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.dtype.kind != "f":
                problems.append(f"{name}: expected floating-point values; got dtype {array.dtype}")
            elif array.shape != p.shape:
                problems.append(
                    f"size mismatch for {name}: the state_dict has shape {array.shape}, the "
                    f"parameter has shape {p.shape}"
                )
            else:
                arrays[name] = array
        if problems:
            raise ValueError(
                f"Error(s) in loading state_dict for {type(self).__name__} (nothing was "
                "loaded):\n  " + "\n  ".join(problems)
            )
        with no_grad():  # in place, as PyTorch's param.copy_: graphs that saved it will raise
            for name, array in arrays.items():
                own[name].copy_(Tensor._wrap(np.asarray(array)))
        return IncompatibleKeys(missing, unexpected)

    # -- calling and printing -------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with name_scope(self._scope_name or type(self).__name__.lower()):
            return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (sizes, options)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [f"({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self._modules.items() if child is not None]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class _Container(Module):
    """What Sequential and ModuleList share, as in PyTorch: indexing by position, item
    assignment (the new module keeps the old one's name) and deletion, ``insert``, ``pop``,
    ``append`` and ``extend``. Deleting or inserting registers the children afresh under
    "0", "1", ... (PyTorch renumbers after a deletion too)."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _check(self, module: Any, where: Any) -> None:
        if not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}: module {where} must be a Module; got a "
                f"{type(module).__name__}"
            )

    def _position(self, index: Any) -> int:
        """``index`` as a position in ``0..len-1``, or a clear error."""
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"{type(self).__name__}: indices must be integers or slices; got {index!r}"
            )
        if not -n <= index < n:
            raise IndexError(
                f"{type(self).__name__}: index {index} is out of range for {n} modules"
            )
        return int(index) % n

    def _renumber(self, modules: Iterable[Module]) -> None:
        """Register ``modules`` as this container's children, under "0", "1", ..."""
        modules = list(modules)
        for name in list(self._modules):
            delattr(self, name)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __setitem__(self, index: int, module: Module) -> None:
        """Replace the module at ``index``; it keeps that position's name."""
        key = list(self._modules)[self._position(index)]
        self._check(module, index)
        setattr(self, key, module)

    def __delitem__(self, index: int | slice) -> None:
        """Remove the module(s) at ``index`` (an int or a slice); the rest are renumbered."""
        n = len(self)
        drop = set(range(n)[index]) if isinstance(index, slice) else {self._position(index)}
        self._renumber(m for i, m in enumerate(self) if i not in drop)

    def insert(self, index: int, module: Module) -> _Container:
        """Put ``module`` before position ``index`` (-len..len, as ``list.insert`` within
        range); the modules are renumbered. Returns self."""
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}.insert: index must be an int; got {index!r}")
        if not -n <= index <= n:
            raise IndexError(
                f"{type(self).__name__}.insert: index {index} is out of range for {n} modules "
                f"(expected -{n}..{n})"
            )
        self._check(module, index)
        modules = list(self)
        modules.insert(int(index) + n if index < 0 else int(index), module)
        self._renumber(modules)
        return self

    def pop(self, key: int | slice) -> Module:
        """Remove and return the module at ``key`` (a slice gives a container of them)."""
        value = self[key]
        del self[key]
        return value

    def append(self, module: Module) -> _Container:
        """Add ``module`` at the end, under the name ``str(len(self))``. Returns self."""
        self._check(module, len(self))
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> _Container:
        """Add each of ``modules`` at the end. Returns self."""
        if not isinstance(modules, Iterable):
            raise TypeError(
                f"{type(self).__name__}.extend: expected an iterable of modules; got a "
                f"{type(modules).__name__}"
            )
        for module in modules:
            self.append(module)
        return self


class ModuleList(_Container):
    """A list of modules, registered under their indices "0", "1", ...: index, assign
    (``layers[1] = m``), delete (``del layers[0]``), ``append``, ``extend``, ``insert``,
    ``pop``, ``+`` and ``+=``, as ``torch.nn.ModuleList``."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(self._position(index))]

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)
