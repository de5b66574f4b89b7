"""Module, Parameter and ModuleList; nn.init; gradient clipping in nn.utils."""

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.nn import Dropout, Linear, Module, ModuleList, Parameter, init
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_
from tests.strategies import arrays, shapes


class MLP(Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = Parameter([1.0])
        self.layers = ModuleList([Linear(2, 3), Linear(3, 2)])
        self.drop = Dropout(0.1)
        self.head = Linear(2, 1, bias=False)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).tanh()
        return self.head(self.drop(x)) * self.scale


# -- Parameter ----------------------------------------------------------------------------------


def test_parameter_is_a_leaf_tensor_that_owns_its_data():
    p = Parameter([1.0, 2.0])
    assert isinstance(p, mg.Tensor) and p.is_leaf and p.requires_grad and p.dtype == np.float32
    source = np.zeros(3)
    q = Parameter(source)
    assert q.dtype == np.float64
    q.data += 1
    np.testing.assert_array_equal(source, 0)
    assert Parameter(np.ones(2, np.float32), requires_grad=False).requires_grad is False
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    with pytest.raises(TypeError, match=r"Parameter: data must be floating point; got dtype int"):
        Parameter(np.array([1, 2]))


# -- Module registration and traversal ----------------------------------------------------------


def test_registration_order_and_dotted_names():
    model = MLP()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "layers.0.weight", "layers.0.bias", "layers.1.weight",
                     "layers.1.bias", "head.weight"]
    assert [p for p in model.parameters()] == [p for _, p in model.named_parameters()]
    assert [n for n, _ in model.named_children()] == ["layers", "drop", "head"]
    assert list(model.children()) == [model.layers, model.drop, model.head]
    assert [n for n, _ in model.named_modules()] == ["", "layers", "layers.0", "layers.1",
                                                       "drop", "head"]
    assert len(list(model.modules())) == 6
    assert [n for n, _ in model.named_parameters(recurse=False)] == ["scale"]


def test_reassigning_and_deleting_attributes():
    model = MLP()
    model.head = Linear(2, 4)
    model.scale = None
    assert [n for n, _ in model.named_parameters()][-2:] == ["head.weight", "head.bias"]
    assert "scale" not in dict(model.named_parameters())
    with pytest.raises(TypeError, match="cannot assign a ndarray to 'head' of MLP: it holds a "
                                        "Module"):
        model.head = np.zeros(2)
    model.scale = Parameter([2.0])
    with pytest.raises(TypeError, match="'scale' of MLP: it holds a Parameter"):
        model.scale = mg.tensor([1.0])
    del model.drop
    assert "drop" not in dict(model.named_children())
    model.note = "plain attributes are not registered"
    assert "note" not in dict(model.named_children())


def test_module_without_init_gets_a_clear_error():
    class Broken(Module):
        def __init__(self) -> None:
            self.w = Parameter([1.0])

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first in Broken"):
        Broken()


def test_tied_parameters_are_yielded_once_but_saved_under_each_name():
    class Tied(Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = mg.nn.Embedding(5, 3)
            self.out = Linear(3, 5)
            self.out.weight = self.embed.weight

    model = Tied()
    assert [n for n, _ in model.named_parameters()] == ["embed.weight", "out.bias"]
    assert list(model.state_dict()) == ["embed.weight", "out.weight", "out.bias"]
    model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})
    assert model.out.weight is model.embed.weight


def test_modulelist_indexing_and_errors():
    layers = ModuleList([Linear(1, 1), Linear(1, 2)])
    layers.append(Linear(2, 3)).extend([Linear(3, 4)])
    assert len(layers) == 4 and layers[-1].out_features == 4
    assert [m.out_features for m in layers[1:3]] == [2, 3]
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    with pytest.raises(IndexError, match="ModuleList: index 4 is out of range for 4 modules"):
        layers[4]
    with pytest.raises(TypeError, match="ModuleList: module 4 must be a Module; got a int"):
        layers.append(3)
    with pytest.raises(TypeError, match="ModuleList.extend: expected an iterable of modules; "
                                        "got a int"):
        layers.extend(3)


def test_modulelist_assignment_deletion_insert_pop_and_add():
    a, b, c, d = (Linear(1, n) for n in (1, 2, 3, 4))
    layers = ModuleList([a, b, c])
    layers[1] = d
    assert list(layers) == [a, d, c] and layers[1] is d
    del layers[0]
    assert list(layers) == [d, c] and [n for n, _ in layers.named_children()] == ["0", "1"]
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                         "1.bias"]
    layers.insert(1, b)
    assert list(layers) == [d, b, c]
    layers.insert(-3, a)  # before the first, as list.insert
    assert list(layers) == [a, d, b, c]
    assert layers.pop(-1) is c and list(layers) == [a, d, b]
    del layers[::2]
    assert list(layers) == [d] and not hasattr(layers, "1") and not hasattr(layers, "2")
    both = layers + [c]
    assert isinstance(both, ModuleList) and list(both) == [d, c] and list(layers) == [d]
    layers += ModuleList([a])
    assert list(layers) == [d, a]
    with pytest.raises(IndexError, match="ModuleList: index 2 is out of range for 2 modules"):
        layers[2] = b
    with pytest.raises(IndexError, match="ModuleList: index -3 is out of range for 2 modules"):
        del layers[-3]
    with pytest.raises(IndexError, match="ModuleList.insert: index 3 is out of range"):
        layers.insert(3, b)
    with pytest.raises(TypeError, match="ModuleList: module 0 must be a Module; got a str"):
        layers[0] = "linear"
    with pytest.raises(TypeError, match="ModuleList: indices must be integers or slices"):
        del layers["0"]


def test_repr_tree():
    assert repr(MLP()) == (
        "MLP(\n"
        "  (layers): ModuleList(\n"
        "    (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "    (1): Linear(in_features=3, out_features=2, bias=True)\n"
        "  )\n"
        "  (drop): Dropout(p=0.1, inplace=False)\n"
        "  (head): Linear(in_features=2, out_features=1, bias=False)\n"
        ")"
    )


def test_call_records_the_module_path_as_name_scope():
    model = MLP()
    y = model(mg.randn(4, 2))
    assert y.grad_fn.scope == "mlp"
    assert y.grad_fn.inputs[0].grad_fn.scope == "mlp.head"
    assert model.layers[1]._scope_name == "1"
    with mg.name_scope("outer"):
        assert model.head(mg.randn(1, 2)).grad_fn.scope == "outer.head"
    with pytest.raises(NotImplementedError, match="ModuleList must define forward"):
        model.layers(mg.randn(1, 2))


def test_train_eval_propagate_and_zero_grad():
    model = MLP()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="mode must be a bool"):
        model.train("no")
    model(mg.randn(3, 2)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_set_to_none_false_gives_new_zero_tensors():
    model = MLP()
    model(mg.randn(3, 2)).sum().backward()
    model.head.weight.grad = None  # a gradient that is None stays None
    old = {name: p.grad for name, p in model.named_parameters()}
    kept = model.layers[0].weight.grad.data.copy()
    model.zero_grad(set_to_none=False)
    for name, p in model.named_parameters():
        if old[name] is None:
            assert p.grad is None
            continue
        assert p.grad is not old[name] and p.grad.shape == p.shape and p.grad.dtype == p.dtype
        assert not p.grad.requires_grad and not p.grad.data.any()
    np.testing.assert_array_equal(old["layers.0.weight"].data, kept)  # not written to
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_evaluating_turns_off_dropout_and_the_graph_then_restores_each_modules_own_mode():
    model = MLP()
    model.layers.eval()  # a mixed model: layers frozen in eval mode, the rest training
    before = {name: m.training for name, m in model.named_modules()}
    assert sorted(before.values()) == [False, False, False, True, True, True]
    with model.evaluating() as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
        assert not mg.is_grad_enabled()
        x = mg.randn(4, 2)
        assert model(x).grad_fn is None
        np.testing.assert_array_equal(model(x).data, model(x).data)  # dropout is off
    assert {name: m.training for name, m in model.named_modules()} == before
    assert mg.is_grad_enabled()
    assert model(mg.randn(4, 2)).grad_fn is not None


def test_evaluating_restores_the_modes_when_the_body_raises():
    model = MLP()
    model.drop.eval()
    for grad_enabled in (True, False):
        with mg.set_grad_enabled(grad_enabled):
            with pytest.raises(RuntimeError, match="inside"), model.evaluating():
                model.train()  # the body may change modes too: each is put back on exit
                raise RuntimeError("inside")
            assert mg.is_grad_enabled() == grad_enabled
        assert [m.training for m in model.modules()] == [True, True, True, True, False, True]
    with model.evaluating(), mg.enable_grad():
        assert mg.is_grad_enabled()  # an inner enable_grad still wins


def test_apply_visits_every_module():
    seen = []
    model = MLP()
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "Linear", "ModuleList", "Dropout", "Linear", "MLP"]


def test_to_double_and_float_convert_in_place():
    model = MLP()
    model(mg.randn(2, 2)).sum().backward()
    params = list(model.parameters())
    assert model.double() is model
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert model(mg.randn(2, 2, dtype=np.float64)).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    with pytest.raises(TypeError, match="parameters must be floating point; got dtype int32"):
        model.to(np.int32)


# -- state_dict ---------------------------------------------------------------------------------


def test_state_dict_is_an_ordered_copy_and_loads_back():
    model, other = MLP(), MLP()
    sd = model.state_dict()
    assert list(sd) == [name for name, _ in model.named_parameters()]
    sd["scale"][0] = 5.0
    assert model.scale.data[0] == 1.0
    arrays_before = [p.data for p in other.parameters()]
    result = other.load_state_dict(sd)
    assert result == ([], []) and result.missing_keys == []
    for (name, p), q in zip(other.named_parameters(), arrays_before):
        np.testing.assert_array_equal(p.data, sd[name])
        assert p.data is q  # loaded in place


def test_load_state_dict_casts_float_dtypes():
    model = MLP()
    sd = {k: v.astype(np.float64) + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(sd)
    assert all(p.dtype == np.float32 for p in model.parameters())
    np.testing.assert_allclose(model.scale.data, [2.0])


@pytest.mark.parametrize("damage, message", [
    (lambda sd: sd.pop("layers.1.bias"), r"missing keys: \['layers.1.bias'\]"),
    (lambda sd: sd.update(extra=np.zeros(1)), r"unexpected keys: \['extra'\]"),
    (lambda sd: sd.update({"head.weight": np.zeros((2, 2))}),
     r"size mismatch for head.weight: the state_dict has shape \(2, 2\), the parameter has "
     r"shape \(1, 2\)"),
    (lambda sd: sd.update(scale=np.array([1])), "scale: expected floating-point values"),
])
def test_load_state_dict_failures_leave_the_module_untouched(damage, message):
    model = MLP()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    sd = {k: v + 1 for k, v in model.state_dict().items()}  # every valid entry would change
    damage(sd)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(sd)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_names_every_problem_at_once():
    model = MLP()
    sd = model.state_dict()
    sd.pop("scale")
    sd["head.weight"] = np.zeros(3)
    sd["bogus"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(sd)
    text = str(info.value)
    assert "for MLP" in text and "'scale'" in text and "'bogus'" in text
    assert "head.weight" in text


def test_load_state_dict_non_strict_reports_keys_and_loads_the_rest():
    model = MLP()
    sd = {"scale": np.array([3.0]), "stray": np.zeros(2)}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert unexpected == ["stray"] and "scale" not in missing and "head.weight" in missing
    assert model.scale.data[0] == 3.0
    with pytest.raises(ValueError, match="size mismatch for scale"):
        model.load_state_dict({"scale": np.zeros(2)}, strict=False)
    with pytest.raises(TypeError, match="expected a mapping"):
        model.load_state_dict([("scale", np.ones(1))])


def test_load_state_dict_given_a_trainer_checkpoint_says_to_pass_its_model_part(tmp_path):
    from minigrad.optim import SGD
    from minigrad.train import Trainer

    model = MLP()
    path = tmp_path / "run.npz"
    Trainer(model, SGD(model.parameters(), lr=0.1)).save(path)
    ckpt = mg.load(path)
    other = MLP()
    with pytest.raises(ValueError, match=re.escape(
            "MLP.load_state_dict: got a checkpoint with keys ['model', 'optimizer', ") + ".*" +
            re.escape("] (as Trainer.save writes), not a state_dict; pass its model part: "
                      "model.load_state_dict(ckpt['model'])")):
        other.load_state_dict(ckpt)
    with pytest.raises(ValueError, match=re.escape(
            "MLP.load_state_dict: expected a state_dict of name -> array; the value of "
            "'state_dict' is a dict (keys ['state_dict', 'step']): pass the part that holds this "
            "module's state_dict, e.g. ckpt['state_dict']")):
        other.load_state_dict({"state_dict": ckpt["model"], "step": 3})
    other.load_state_dict(ckpt["model"])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value)


# -- init ---------------------------------------------------------------------------------------


def test_init_functions_fill_in_place_with_the_right_statistics():
    mg.manual_seed(0)
    w = Parameter(np.empty((300, 200), np.float32))
    array = w.data
    assert init.uniform_(w, -0.5, 2.0) is w and w.data is array and w.dtype == np.float32
    assert -0.5 <= w.data.min() < -0.49 and 1.99 < w.data.max() <= 2.0
    init.normal_(w, 3.0, 0.5)
    assert abs(w.data.mean() - 3.0) < 0.01 and abs(w.data.std() - 0.5) < 0.01
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    init.constant_(w, 0.25)
    assert (w.data == 0.25).all()


def test_fan_based_inits_use_pytorch_bounds():
    mg.manual_seed(1)
    w = Parameter(np.empty((30, 20, 3, 3)))
    assert init.calculate_fan_in_and_fan_out(w) == (180, 270)
    a = math.sqrt(6 / (180 + 270))
    init.xavier_uniform_(w)
    assert 0.99 * a < np.abs(w.data).max() <= a
    init.xavier_normal_(w, gain=2.0)
    assert abs(w.data.std() - 2 * math.sqrt(2 / 450)) < 0.005
    init.kaiming_uniform_(w, a=math.sqrt(5))
    assert 0.99 / math.sqrt(180) < np.abs(w.data).max() <= 1 / math.sqrt(180)
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    assert 0.99 * math.sqrt(6 / 270) < np.abs(w.data).max() <= math.sqrt(6 / 270)
    init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / 180)) < 0.005
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (3, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal_(Parameter(np.empty(shape)), gain=2.0)
    flat = w.data.reshape(shape[0], -1)
    small = min(flat.shape)
    product = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    np.testing.assert_allclose(product, 4 * np.eye(small), atol=1e-12)


def test_init_is_reproducible_and_errors_are_clear():
    mg.manual_seed(7)
    first = Linear(4, 3).weight.data.copy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(Linear(4, 3).weight.data, first)
    with pytest.raises(ValueError, match=r"at least 2 axes; got shape \(5,\)"):
        init.xavier_uniform_(Parameter(np.zeros(5)))
    with pytest.raises(ValueError, match="orthogonal_: needs at least 2 axes"):
        init.orthogonal_(Parameter(np.zeros(5)))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(Parameter(np.zeros((2, 2))), mode="fan")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="init.uniform_: expected a Tensor"):
        init.uniform_(np.zeros(3))
    with pytest.raises(TypeError, match="must be floating point; got dtype int64"):
        init.zeros_(mg.tensor(np.array([1, 2])))


# -- gradient clipping --------------------------------------------------------------------------


def _params_with_grads(grads):
    params = [Parameter(np.zeros(g.shape)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = mg.tensor(g.copy())
    return params


@given(st.lists(shapes(max_dims=2), min_size=1, max_size=3), st.floats(0.1, 5.0),
       st.sampled_from([2.0, 1.0, math.inf]), st.data())
def test_clip_grad_norm_matches_its_definition(grad_shapes, max_norm, norm_type, data):
    grads = [data.draw(arrays(s)) for s in grad_shapes]
    params = _params_with_grads(grads)
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.linalg.norm(flat, norm_type)
    returned = clip_grad_norm_(params, max_norm, norm_type)
    assert isinstance(returned, mg.Tensor) and returned.shape == ()
    np.testing.assert_allclose(returned.item(), total, rtol=1e-12)
    scale = min(1.0, max_norm / (total + 1e-6))  # as PyTorch: a total at max_norm scales too
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.data, g * scale, rtol=1e-12)
    clipped = np.linalg.norm(np.concatenate([p.grad.data.ravel() for p in params]), norm_type)
    assert clipped <= max_norm + 1e-9


def test_clip_grad_norm_with_a_gradient_shared_by_two_parameters():
    a, b = Parameter(np.array([3.0, 0.0])), Parameter(np.array([0.0, 4.0]))
    (a + b).sum().backward()  # the engine may hand both the same gradient tensor
    total = clip_grad_norm_([a, b], 1.0)
    np.testing.assert_allclose(total.item(), 2.0)
    np.testing.assert_allclose(a.grad.data, [0.5 / (1 + 5e-7)] * 2, rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, [0.5 / (1 + 5e-7)] * 2, rtol=1e-12)
    shared = mg.tensor(np.array([6.0, 8.0]))
    a.grad = b.grad = shared  # the same Tensor object: each parameter scaled exactly once
    total = clip_grad_norm_([a, b], 5.0)
    np.testing.assert_allclose(total.item(), math.sqrt(200))
    for p in (a, b):
        np.testing.assert_allclose(p.grad.data, np.array([6.0, 8.0]) * 5 / (math.sqrt(200) + 1e-6))
    np.testing.assert_array_equal(shared.data, [6.0, 8.0])


def test_clip_grad_value_and_edge_cases():
    a, b = Parameter(np.array([3.0, -1.0])), Parameter(np.array([0.5]))
    (a * mg.tensor([2.0, -3.0])).sum().backward()
    b.grad = mg.tensor(np.array([0.1]))
    shared = a.grad.data.copy()
    clip_grad_value_([a, b, Parameter([1.0])], 2.5)
    np.testing.assert_array_equal(a.grad.data, [2.0, -2.5])
    np.testing.assert_array_equal(b.grad.data, [0.1])
    np.testing.assert_array_equal(shared, [2.0, -3.0])
    assert clip_grad_norm_([Parameter([1.0])], 1.0).item() == 0.0
    norm = clip_grad_norm_(a, 100.0)  # a single tensor is accepted; below max_norm: unchanged
    np.testing.assert_allclose(norm.item(), math.hypot(2.0, 2.5))
    np.testing.assert_array_equal(a.grad.data, [2.0, -2.5])
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm_([a], -1.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value_([a], -1.0)
    a.grad = mg.tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="total norm of the gradients is inf"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
