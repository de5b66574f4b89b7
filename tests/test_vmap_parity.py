"""mg.func.vmap against torch.func.vmap, in float64: in_dims and out_dims in their forms, trees
of arguments and results, nested vmap, its compositions with grad, jacrev and jvp both ways,
chunk_size; and per-example gradients of an LSTM classifier against torch's loop over the
examples, with the same weights."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import minigrad as mg
from minigrad import func
from minigrad.models import LSTMCell, SequenceClassifier
from minigrad.nn import functional as F

torch = pytest.importorskip("torch")
tfunc = pytest.importorskip("torch.func")

# The two libraries behind one set of names, so that each case is written once.
MG = SimpleNamespace(lib=mg, vmap=func.vmap, grad=func.grad, jacrev=func.jacrev, jvp=func.jvp)
TORCH = SimpleNamespace(lib=torch, vmap=tfunc.vmap, grad=tfunc.grad, jacrev=tfunc.jacrev,
                        jvp=tfunc.jvp)


def data(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def convert(tree, L):
    """``tree`` (NumPy arrays in tuples and dicts; anything else as it is) as L's tensors."""
    if isinstance(tree, np.ndarray):
        return mg.tensor(tree) if L is MG else torch.tensor(tree)
    if isinstance(tree, tuple):
        return tuple(convert(x, L) for x in tree)
    if isinstance(tree, dict):
        return {k: convert(v, L) for k, v in tree.items()}
    return tree


def assert_trees_close(got, want, rtol: float = 1e-10, where: str = "result") -> None:
    """Same structure, shapes and (to ``rtol``) values; torch's tuples may be lists."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, mg.Tensor), f"{where}: a {type(got).__name__}, not a tensor"
        assert got.shape == tuple(want.shape), f"{where}: shape {got.shape} != {want.shape}"
        assert got.dtype == np.dtype(str(want.dtype).removeprefix("torch.")), \
            f"{where}: dtype {got.dtype}, torch's {want.dtype}"
        np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=rtol, atol=rtol,
                                   err_msg=where)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys"
        for k in want:
            assert_trees_close(got[k], want[k], rtol, f"{where}[{k!r}]")
    else:  # a tuple or list; torch's named tuples (return_types) as minigrad's own
        kind = tuple if isinstance(want, tuple) else list
        assert isinstance(got, kind) and len(got) == len(want), f"{where}: structure"
        for k, (g, w) in enumerate(zip(got, want)):
            assert_trees_close(g, w, rtol, f"{where}[{k}]")


def check(run, *args) -> None:
    """``run(L, *args)`` in minigrad and in torch, on the same float64 values, agree."""
    assert_trees_close(run(MG, *convert(args, MG)), run(TORCH, *convert(args, TORCH)))


def layer(L, x, w, b):
    """tanh(x @ w + b) in either library."""
    return L.lib.tanh(x @ w + b)


# -- in_dims and out_dims -----------------------------------------------------------------------


def test_in_dims_with_none_entries_pass_arguments_through():
    def run(L, xs, w, b, bs):
        def f(x, w, b, scale):
            return layer(L, x, w, b) * scale

        return (L.vmap(f, in_dims=(0, None, None, None))(xs, w, b, 2.5),  # the weights shared
                L.vmap(f, in_dims=(None, None, 0, None))(xs[0], w, bs, 0.5),  # only b batched
                L.vmap(f, in_dims=(0, None, 0, None))(xs, w, bs, -1.0))

    check(run, data(0, 6, 2, 3), data(1, 3, 4), data(2, 4), data(3, 6, 4))


def test_in_dims_1_and_minus_1_and_a_tuple_mixing_them():
    def run(L, a, b, w):
        def f(x, y):  # x (3, 4), y (4,): one example of each
            return (x * y).tanh().sum(0) + x.exp().mean(-1).sum()

        return (L.vmap(f, in_dims=(1, 0))(a, b),
                L.vmap(f, in_dims=(-1, 0))(a.transpose(1, 2), b),
                L.vmap(lambda x: x @ w, in_dims=-1)(a.transpose(1, 2)),
                L.vmap(lambda x: x @ w, in_dims=1)(a))

    check(run, data(0, 3, 5, 4), data(1, 5, 4), data(2, 4, 2))


def test_out_dims_1_and_minus_1():
    def run(L, xs, w):
        def f(x):  # (3,) -> (3, 2)
            return L.lib.tanh(x[:, None] * w)

        return (L.vmap(f, out_dims=1)(xs), L.vmap(f, out_dims=-1)(xs),
                L.vmap(f, out_dims=2)(xs))

    check(run, data(0, 5, 3), data(1, 3, 2))


def test_tuple_outputs_with_an_out_dim_each():
    def run(L, xs, w):
        def f(x):  # x (3, 2): three results, the last one the same for every example
            return x.sum(0), (x * w).transpose(0, 1), w * 2

        return L.vmap(f, out_dims=(0, 1, None))(xs), L.vmap(f, out_dims=(-1, 2, None))(xs)

    check(run, data(0, 4, 3, 2), data(1, 3, 2))


def test_a_dict_argument_batched_whole_or_per_key():
    def run(L, p, x):
        def f(p, x):
            return layer(L, x, p["w"], p["b"]).sum(-1)

        return (L.vmap(f)({"w": p["w"][None].expand(5, 3, 4) * 1.5, "b": p["bs"]}, x),
                L.vmap(f, in_dims=({"w": None, "b": 0}, 0))({"w": p["w"], "b": p["bs"]}, x),
                L.vmap(f, in_dims=({"w": None, "b": None}, 0))({"w": p["w"], "b": p["b"]}, x))

    check(run, {"w": data(0, 3, 4), "b": data(1, 4), "bs": data(2, 5, 4)}, data(3, 5, 2, 3))


def test_nested_vmap_outer_product_and_pairwise_distances():
    def run(L, x, y, a, b):
        def mul(u, v):
            return u * v

        def distance(p, q):
            return ((p - q) ** 2).sum().sqrt()

        outer = L.vmap(L.vmap(mul, in_dims=(None, 0)), in_dims=(0, None))(x, y)
        pairwise = L.vmap(L.vmap(distance, in_dims=(None, 0)), in_dims=(0, None))(a, b)
        inner_first = L.vmap(L.vmap(distance, in_dims=(0, None)), in_dims=(None, 0))(a, b)
        return outer, pairwise, inner_first

    check(run, data(0, 4), data(1, 5), data(2, 6, 3), data(3, 7, 3))


# -- compositions ------------------------------------------------------------------------------


def test_vmap_of_grad_gives_per_example_gradients():
    def run(L, xs, ys, w, b):
        def loss(w, b, x, y):  # one example: x (3,), y (2,)
            return ((layer(L, x, w, b) - y) ** 2).sum()

        per_example = L.vmap(L.grad(loss, argnums=(0, 1)), in_dims=(None, None, 0, 0))
        return per_example(w, b, xs, ys)

    check(run, data(0, 6, 3), data(1, 6, 2), data(2, 3, 2), data(3, 2))


def test_vmap_of_jacrev():
    def run(L, xs, w, b):
        return L.vmap(L.jacrev(lambda x: layer(L, x, w, b)))(xs)  # (B, 4, 3)

    check(run, data(0, 5, 3), data(1, 3, 4), data(2, 4))


def test_vmap_of_jvp_and_jvp_of_vmap():
    def run(L, xs, ts, w, b):
        def f(x):
            return layer(L, x, w, b).sigmoid() * x.sum()

        def jvp_one(x, t):
            return L.jvp(f, (x,), (t,))

        return L.vmap(jvp_one)(xs, ts), L.jvp(L.vmap(f), (xs,), (ts,))

    check(run, data(0, 5, 3), data(1, 5, 3), data(2, 3, 4), data(3, 4))


def test_grad_of_vmap():
    def run(L, xs, w, b):
        def total(w, b):
            return (L.vmap(lambda x: layer(L, x, w, b), in_dims=0)(xs) ** 2).sum()

        return L.grad(total, argnums=(0, 1))(w, b)

    check(run, data(0, 5, 3), data(1, 3, 4), data(2, 4))


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 20])
def test_chunk_size_gives_the_same_result(chunk_size):
    def run(L, xs, w, b):
        def f(x):
            return layer(L, x, w, b), x.sum()

        chunked = L.vmap(f, chunk_size=chunk_size)(xs)
        per_example = L.vmap(L.grad(lambda x: layer(L, x, w, b).sum()),
                             chunk_size=chunk_size)(xs)
        return chunked, per_example, L.vmap(f)(xs)

    check(run, data(0, 8, 3), data(1, 3, 4), data(2, 4))


# -- reductions of a whole example, and named-tuple results ----------------------------------


@pytest.mark.parametrize("reduce", [
    lambda L, u: u.max(),
    lambda L, u: u.min(),
    lambda L, u: L.grad(lambda v: (v.tanh() * 3).max())(u),
], ids=["max()", "min()", "grad of max()"])
def test_max_and_min_of_a_whole_example(reduce):
    check(lambda L, xs: L.vmap(lambda u: reduce(L, u))(xs), data(0, 5, 3, 2))


@pytest.mark.parametrize("pick", [
    lambda u: u.max(0), lambda u: u.min(1), lambda u: u.sort(0), lambda u: u.topk(2),
], ids=["max(0)", "min(1)", "sort(0)", "topk(2)"])
def test_named_tuple_results_values_and_indices(pick):
    check(lambda L, xs: L.vmap(pick)(xs), data(0, 5, 3, 4))


# -- per-example gradients of an LSTM classifier ------------------------------------------------


def test_minigrad_lstm_cell_uses_torchs_gate_order_and_weight_layout():
    """The precondition for copying weights as they are: W_ih (4H, I) and W_hh (4H, H) with
    the gates stacked (i, f, g, o), as torch.nn.LSTMCell's; one step agrees."""
    mg.manual_seed(0)
    cell = LSTMCell(3, 5).double()
    ref = torch.nn.LSTMCell(3, 5).double()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            mine = dict(cell.named_parameters())[name]
            assert mine.shape == tuple(p.shape)
            p.copy_(torch.from_numpy(mine.data))
    x, h, c = data(0, 2, 3), data(1, 2, 5), data(2, 2, 5)
    got_h, (_, got_c) = cell(mg.tensor(x), (mg.tensor(h), mg.tensor(c)))
    want_h, want_c = ref(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
    np.testing.assert_allclose(got_h.data, want_h.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_c.data, want_c.detach().numpy(), rtol=1e-12, atol=1e-12)
    # the gate order itself: a bias only on the block of f (rows H..2H) keeps c from decaying
    with mg.no_grad():
        for p in cell.parameters():
            p.data[...] = 0
        cell.bias_ih.data[5:10] = 50.0  # f = σ(50) ≈ 1; i = σ(0) = 1/2, g = tanh(0) = 0
    _, (_, kept) = cell(mg.tensor(np.zeros((1, 3))), (mg.tensor(np.zeros((1, 5))),
                                                      mg.tensor(np.ones((1, 5)))))
    np.testing.assert_allclose(kept.data, 1.0, rtol=1e-12)


class TorchClassifier(torch.nn.Module):
    """What SequenceClassifier(pooling='last') computes without lengths, in torch: a
    time-major LSTM over the embeddings; the last step's forward state (and the first step's
    backward state, when bidirectional) into the linear layer."""

    def __init__(self, vocab: int, embed: int, hidden: int, classes: int, layers: int,
                 bidirectional: bool) -> None:
        super().__init__()
        self.hidden, self.bidirectional = hidden, bidirectional
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers, bidirectional=bidirectional)
        self.out = torch.nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, ids):
        states, _ = self.lstm(self.embed(ids.T))  # (T, B, D*H)
        pooled = states[-1]
        if self.bidirectional:
            pooled = torch.cat([states[-1][:, :self.hidden], states[0][:, self.hidden:]], dim=1)
        return self.out(pooled)


def torch_name(name: str) -> str:
    """minigrad's parameter name as torch's: forward_layers.k.weight_ih_l0 is
    lstm.weight_ih_l{k}; backward_layers.k.* the same with _reverse."""
    parts = name.split(".")
    if parts[0] in ("forward_layers", "backward_layers"):
        suffix = "_reverse" if parts[0] == "backward_layers" else ""
        return f"lstm.{parts[2].removesuffix('_l0')}_l{parts[1]}{suffix}"
    return name


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_per_example_gradients_of_an_lstm_classifier_match_torchs_loop(layers, bidirectional):
    vocab, embed, hidden, classes, batch, steps = 11, 4, 5, 3, 6, 7
    mg.manual_seed(0)
    model = SequenceClassifier(vocab, embed, hidden, classes, num_layers=layers,
                               bidirectional=bidirectional).double()
    ref = TorchClassifier(vocab, embed, hidden, classes, layers, bidirectional).double()
    params = {name: p.detach() for name, p in model.named_parameters()}
    names = {torch_name(name): name for name in params}
    assert set(names) == {name for name, _ in ref.named_parameters()}
    with torch.no_grad():
        for name, p in ref.named_parameters():
            assert tuple(p.shape) == params[names[name]].shape, name
            p.copy_(torch.from_numpy(params[names[name]].data))
    tparams = {name: p.detach() for name, p in ref.named_parameters()}
    rng = np.random.default_rng(1)
    ids = rng.integers(0, vocab, (batch, steps)).astype(np.int64)
    labels = rng.integers(0, classes, batch).astype(np.int64)
    np.testing.assert_allclose(model(ids).data, ref(torch.from_numpy(ids)).detach().numpy(),
                               rtol=1e-12, atol=1e-12)

    def loss(params, ids_i, label_i):
        return F.cross_entropy(func.functional_call(model, params, (ids_i[None],)),
                               label_i[None])

    def torch_loss(params, ids_i, label_i):
        logits = tfunc.functional_call(ref, params, (ids_i[None],))
        return torch.nn.functional.cross_entropy(logits, label_i[None])

    got = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, mg.tensor(ids),
                                                          mg.tensor(labels))
    one = tfunc.grad(torch_loss)
    loop = [one(tparams, torch.from_numpy(ids[b]), torch.from_numpy(labels[b:b + 1])[0])
            for b in range(batch)]
    assert set(got) == set(params)
    for tname, name in names.items():
        want = torch.stack([g[tname] for g in loop]).numpy()
        assert got[name].shape == (batch, *params[name].shape), name
        np.testing.assert_allclose(got[name].data, want, rtol=1e-10, atol=1e-10, err_msg=name)
