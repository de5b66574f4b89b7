"""PyTorch's meanings in the core: elementwise == and !=, in-place ops and the version check,
max/min/sort/topk as (values, indices), chunk and split, dim= and keepdim=, and the ops added
for them (gather, pow with a tensor exponent, clone, einsum, setitem, masked_fill, repeat,
flip, logsumexp, norm), each with its gradient checked against central differences.

The first tests are the silently wrong answers of issue 17: each failed on the code before."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.compile import TraceError
from tests.strategies import arrays, axis, broadcast_shapes, distinct_arrays, leaf, shapes

# -- what used to be silently wrong ------------------------------------------------------------


def test_comparisons_are_elementwise_and_tensors_hash_by_identity() -> None:
    tgt = mg.tensor([3, 0, 5, 0])
    x = mg.tensor([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal((x * (tgt != 0)).data, [1, 0, 3, 0])
    np.testing.assert_array_equal(mg.where(tgt == 0, 0.0, x).data, [1, 0, 3, 0])
    assert (tgt == 0).dtype == np.bool_ and (tgt != 0).shape == (4,)
    a, b = mg.tensor([1.0]), mg.tensor([1.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2  # identity, as in PyTorch
    assert (a == None) is False and a != "text"  # noqa: E711  (not comparable: identity)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tgt == 0)


def test_a_hand_written_sgd_step_updates_the_parameter_in_place() -> None:
    p = mg.tensor([1.0, -2.0], requires_grad=True)
    (p * p).sum().backward()
    alias = p
    with mg.no_grad():
        p -= 0.25 * p.grad
    assert p is alias and p.is_leaf and p.requires_grad
    np.testing.assert_allclose(p.data, [0.5, -1.0])


def test_max_and_min_with_a_dim_return_values_and_indices() -> None:
    x = mg.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.data, [5, 6])
    np.testing.assert_array_equal(indices.data, [1, 2])
    assert indices.dtype == np.int64 and x.max(dim=0).values.shape == (3,)
    assert x.min(1, keepdim=True).indices.shape == (2, 1)
    assert x.max().shape == () and x.max().item() == 6
    np.testing.assert_array_equal(x.max(mg.tensor(4.5)).data, [[4.5, 5, 4.5], [4.5, 4.5, 6]])


def test_chunk_and_split_follow_pytorch() -> None:
    x = mg.arange(24).reshape(6, 4)
    assert [p.shape for p in x.chunk(2)] == [(3, 4), (3, 4)]  # along dim 0
    assert [p.shape for p in x.chunk(4)] == [(2, 4)] * 3  # ceil(6 / 4) rows each: 3 pieces
    assert [p.shape for p in x.split(4)] == [(4, 4), (2, 4)]  # pieces of size 4
    assert [p.shape for p in x.split([1, 5])] == [(1, 4), (5, 4)]
    assert [p.shape for p in x.chunk(3, dim=1)] == [(6, 2), (6, 2)]
    assert [p.shape for p in mg.split(x, 3, dim=1)] == [(6, 3), (6, 1)]
    with pytest.raises(ValueError, match="add up to 6"):
        x.split([2, 2])


def test_dim_and_keepdim_are_accepted_beside_axis_and_keepdims() -> None:
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    for reduce in ("sum", "mean", "amax", "var", "std", "argmax"):
        a = getattr(x, reduce)(dim=1, keepdim=True)
        b = getattr(x, reduce)(axis=1, keepdims=True)
        np.testing.assert_array_equal(a.data, b.data)
        assert a.shape == (2, 1)
    assert x.softmax(dim=0).shape == mg.cat([x, x], dim=1).shape[:1] + (3,)
    with pytest.raises(TypeError, match="same argument"):
        x.sum(dim=0, axis=1)


def test_std_and_var_are_unbiased_by_default() -> None:
    x = mg.tensor([1.0, 2.0, 3.0, 4.0])
    assert x.var().item() == pytest.approx(5 / 3)
    assert x.var(unbiased=False).item() == pytest.approx(1.25)
    assert x.std(0, False).item() == pytest.approx(1.25 ** 0.5)  # PyTorch's positional unbiased


def test_transpose_swaps_two_dims_and_size_is_a_method() -> None:
    x = mg.zeros(2, 3, 4)
    assert x.transpose(0, 1).shape == (3, 2, 4) and x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.numel() == 24 and x.dim() == 3
    assert x.view(6, -1).shape == (6, 4) and x.mT.shape == (2, 4, 3)
    with pytest.raises(IndexError, match="out of range"):
        x.size(3)


def test_type_promotion_with_python_numbers_and_integer_division() -> None:
    i = mg.tensor([1, 2, 3])
    assert (i * 1.5).dtype == np.float32 and (i + 1).dtype == np.int64
    assert (i / 2).dtype == np.float32 and (i / i).dtype == np.float32
    assert (mg.tensor([True, False]) + 1).dtype == np.int64
    assert (mg.tensor([True, True]).sum()).item() == 2


# -- in-place ops and the version counter ------------------------------------------------------


def test_in_place_on_a_leaf_that_requires_grad_raises_outside_no_grad() -> None:
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    before = p.data.copy()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p.add_(1)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p *= 2
    np.testing.assert_array_equal(p.data, before)  # nothing written


def test_a_saved_tensor_changed_in_place_makes_backward_raise() -> None:
    x = mg.tensor([0.5, -1.0], requires_grad=True)
    y = x.tanh()  # tanh's backward reads its output
    with mg.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="in-place operation: output 0 of Tanh"):
        y.sum().backward()
    w = mg.tensor([1.0, 2.0])
    z = (x * w).sum()  # mul's backward reads w
    w.add_(1)
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        z.backward()


def test_writes_through_a_view_count_for_the_tensor_it_views() -> None:
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = mg.tensor([[1.0, 1.0], [1.0, 1.0]])
    y = (x * w).sum()
    row = w[0]  # a view of w
    row.fill_(5.0)
    assert w.data[0, 0] == 5.0
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        y.backward()


def test_in_place_that_backward_does_not_read_is_allowed_as_in_pytorch() -> None:
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    z = x * 2
    z.add_(1)  # add's backward reads nothing: the gradient flows through it
    (z * z).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * 2 * (2 * x.data + 1))


@given(st.data())
def test_in_place_ops_on_recorded_tensors_give_the_out_of_place_gradients(data) -> None:
    shape_x, shape_o = data.draw(broadcast_shapes(2))
    shape_x = np.broadcast_shapes(shape_x, shape_o)  # the target cannot broadcast
    x0 = data.draw(arrays(shape_x))
    o0 = data.draw(arrays(shape_o, lo=0.5, hi=2.0))
    name, reference = data.draw(st.sampled_from([
        ("add_", lambda x, o: x + o), ("sub_", lambda x, o: x - o),
        ("mul_", lambda x, o: x * o), ("div_", lambda x, o: x / o),
        ("copy_", lambda x, o: o.expand(x.shape)),
    ]))

    def in_place(x, o):
        y = x * 1.5  # not a leaf
        getattr(y, name)(o)
        return y.tanh()

    def out_of_place(x, o):
        return reference(x * 1.5, o).tanh()

    x, o = leaf(x0), leaf(o0)
    np.testing.assert_allclose(in_place(x, o).data, out_of_place(x, o).data)
    assert mg.gradcheck(in_place, [x, o])
    assert mg.gradgradcheck(in_place, [x, o])


def test_setitem_writes_in_place_and_passes_gradients_to_the_value() -> None:
    x = mg.zeros(3, 4)
    x[0] = 1
    x[:, 1] = mg.tensor([7.0, 8.0, 9.0])
    x[mg.tensor([2])] = mg.tensor([5.0])
    assert x.data.tolist() == [[1, 7, 1, 1], [0, 8, 0, 0], [5, 5, 5, 5]]

    def write(base, value):
        y = base * 1.0
        y[1:, ::2] = value
        return y * y

    assert mg.gradcheck(write, [leaf(np.random.default_rng(0).normal(size=(3, 4))),
                                leaf(np.array([0.5, -1.0]))])


def test_in_place_errors_name_the_op_and_leave_the_tensor_unchanged() -> None:
    i = mg.tensor([1, 2])
    with pytest.raises(TypeError, match="add_: result type float32 can't be cast.*int64"):
        i.add_(0.5)
    x = mg.zeros(3)
    with pytest.raises(ValueError, match="mul_: the result has shape \\(2, 3\\)"):
        x.mul_(mg.ones(2, 3))
    with pytest.raises(ValueError, match="expanded view"):
        mg.zeros(1, 3).expand(2, 3).zero_()
    assert i.data.tolist() == [1, 2] and x.data.tolist() == [0, 0, 0]
    with pytest.raises(RuntimeError, match="view .* while recording"):
        x[0:2].add_(mg.ones(2, requires_grad=True))


def test_in_place_inside_a_compiled_function_is_refused_with_a_clear_message() -> None:
    def step(x):
        y = x * 2
        y.add_(1)
        return y

    compiled = mg.compile(step, fallback=False)
    with pytest.raises(TraceError, match="in-place op add_"):
        compiled(mg.ones(3))


# -- the ops added, with their gradients -------------------------------------------------------


@given(st.data())
def test_gather_picks_along_a_dim(data) -> None:
    shape = data.draw(shapes(min_dims=1))
    dim = data.draw(axis(len(shape)))
    index_shape = tuple(data.draw(st.integers(1, n)) for n in shape)
    index_shape = index_shape[:dim % len(shape)] + (data.draw(st.integers(1, 4)),) + \
        index_shape[dim % len(shape) + 1:]
    index = data.draw(st.lists(st.integers(0, shape[dim] - 1), min_size=int(np.prod(
        index_shape)), max_size=int(np.prod(index_shape))))
    index = mg.tensor(np.array(index, np.int64).reshape(index_shape))
    x0 = data.draw(arrays(shape))
    y = leaf(x0).gather(dim, index)
    expected = np.take_along_axis(x0[tuple(slice(0, n) if i != dim % len(shape) else slice(None)
                                           for i, n in enumerate(index_shape))],
                                  index.data, dim)
    np.testing.assert_array_equal(y.data, expected)
    assert mg.gradcheck(lambda x: x.gather(dim, index), [leaf(x0)])


def test_gather_rejects_out_of_range_indices_numpy_would_wrap() -> None:
    with pytest.raises(IndexError, match="gather: index -1 is out of bounds"):
        mg.zeros(2, 3).gather(1, mg.tensor([[0], [-1]]))


@given(st.data())
def test_pow_with_a_tensor_exponent(data) -> None:
    shape_a, shape_b = data.draw(broadcast_shapes(2))
    a, b = leaf(data.draw(arrays(shape_a, 0.5, 2.0))), leaf(data.draw(arrays(shape_b)))
    np.testing.assert_allclose((a ** b).data, a.data ** b.data)
    assert mg.gradcheck(lambda a, b: a.pow(b), [a, b])
    assert mg.gradgradcheck(lambda a, b: a.pow(b), [a, b])
    assert mg.gradcheck(lambda b: 2.0 ** b, [b])


@given(st.data())
def test_sort_topk_and_max_with_dim_pass_gradients_to_the_picked_entries(data) -> None:
    shape = data.draw(shapes(min_dims=1))
    x0 = data.draw(distinct_arrays(shape))
    dim = data.draw(axis(len(shape)))
    k = data.draw(st.integers(1, shape[dim]))
    values, indices = leaf(x0).sort(dim, descending=True)
    np.testing.assert_array_equal(values.data, -np.sort(-x0, axis=dim))
    top = leaf(x0).topk(k, dim)
    np.testing.assert_array_equal(top.values.data, values.data.take(range(k), axis=dim))
    np.testing.assert_array_equal(top.indices.data, indices.data.take(range(k), axis=dim))
    assert mg.gradcheck(lambda x: x.topk(k, dim).values, [leaf(x0)])
    assert mg.gradcheck(lambda x: x.max(dim).values * x.min(dim, keepdim=True).values.sum(),
                        [leaf(x0)])


@given(st.data())
def test_composite_ops_match_numpy_and_check(data) -> None:
    shape = data.draw(shapes(min_dims=1))
    x0 = data.draw(arrays(shape, avoid=(0.0,)))
    dim = data.draw(axis(len(shape)))
    reps = tuple(data.draw(st.integers(1, 2)) for _ in range(len(shape) + 1))
    cases = [
        (lambda x: x.repeat(*reps), np.tile(x0, reps)),
        (lambda x: x.flip(dim), np.flip(x0, dim)),
        (lambda x: x.expand(2, *shape), np.broadcast_to(x0, (2, *shape))),
        (lambda x: x.logsumexp(dim), np.log(np.exp(x0).sum(dim))),
        (lambda x: x.norm(), np.sqrt((x0 * x0).sum())),
        (lambda x: x.norm(1, dim, keepdim=True), np.abs(x0).sum(dim, keepdims=True)),
        (lambda x: x.masked_fill(mg.tensor(x0 > 0), -1.0), np.where(x0 > 0, -1.0, x0)),
        (lambda x: x.clone() * 2, x0 * 2),
        (lambda x: x.narrow(dim, 0, 1), x0.take([0], axis=dim)),
        (lambda x: x.index_select(dim, mg.tensor([0, 0])), x0.take([0, 0], axis=dim)),
    ]
    for fn, expected in cases:
        np.testing.assert_allclose(fn(leaf(x0)).data, expected, rtol=1e-10, atol=1e-12)
        assert mg.gradcheck(fn, [leaf(x0)])


@given(st.data())
def test_einsum_matches_numpy_and_checks(data) -> None:
    n, m, p, b = (data.draw(st.integers(1, 3)) for _ in range(4))
    equation, shapes_ = data.draw(st.sampled_from([
        ("ij,jk->ik", [(n, m), (m, p)]), ("bij,bjk->bik", [(b, n, m), (b, m, p)]),
        ("ij->", [(n, m)]), ("ij->ji", [(n, m)]), ("ij,ij->i", [(n, m), (n, m)]),
        ("i,j->ij", [(n,), (m,)]), ("ij,kj", [(n, m), (p, m)]), ("...j,jk->...k", [(b, n, m),
                                                                                   (m, p)]),
        ("ij,jk,kl->il", [(n, m), (m, p), (p, b)]),
    ]))
    xs = [leaf(data.draw(arrays(s))) for s in shapes_]
    np.testing.assert_allclose(mg.einsum(equation, *xs).data,
                               np.einsum(equation, *[x.data for x in xs]), rtol=1e-10, atol=1e-12)
    assert mg.gradcheck(lambda *xs: mg.einsum(equation, *xs), xs)


def test_einsum_takes_diagonals_and_broadcasts_back_in_its_gradient() -> None:
    rng = np.random.default_rng(0)
    a, b = leaf(rng.normal(size=(3, 3))), leaf(rng.normal(size=(3, 2, 4)))
    np.testing.assert_allclose(mg.einsum("ii->i", a).data, np.diag(a.data))
    for equation, xs in (("ii->i", [a]), ("ii", [a]), ("iji->j", [leaf(rng.normal(
            size=(2, 3, 2)))]), ("ij,jkl->ik", [a, b]), ("ii,ikl->k", [a, b])):
        def fn(*xs, equation=equation):
            return mg.einsum(equation, *xs)

        assert mg.gradcheck(fn, xs) and mg.gradgradcheck(fn, xs)


def test_logic_on_masks_and_its_errors() -> None:
    a, b = mg.tensor([True, True, False]), mg.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False] and (a | b).tolist() == [True, True, False]
    assert (~a).tolist() == [False, False, True] and (a ^ b).tolist() == [False, True, False]
    with pytest.raises(TypeError, match="bitwise_and: needs bool or integer tensors"):
        mg.ones(2) & a
    assert mg.tensor([1.0, np.nan, np.inf]).isnan().tolist() == [False, True, False]
    assert mg.tensor([1.0, np.nan, np.inf]).isinf().tolist() == [False, False, True]


def test_creation_functions_follow_torch_dtypes_and_copying() -> None:
    assert mg.full((2,), 3).dtype == mg.int64 and mg.full((2,), 3.0).dtype == mg.float32
    assert mg.eye(2, 3).shape == (2, 3) and mg.zeros(2, dtype=mg.long).dtype == np.int64
    mg.manual_seed(0)
    r = mg.randint(0, 5, (100,))
    assert r.dtype == mg.int64 and 0 <= r.min().item() and r.max().item() < 5
    assert 0 <= mg.rand(50).min().item() and mg.rand(50).max().item() < 1
    a = np.zeros(2, np.float32)
    mg.tensor(a).add_(1)  # torch.tensor copies
    assert a.tolist() == [0, 0]
    mg.from_numpy(a).add_(1)  # from_numpy shares
    assert a.tolist() == [1, 1]
    samples = mg.multinomial(mg.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), 5, True)
    assert samples.shape == (2, 5) and samples.dtype == mg.int64
    assert samples.data[0].tolist() == [1] * 5 and set(samples.data[1].tolist()) <= {0, 2}
    with pytest.raises(ValueError, match="without replacement"):
        mg.multinomial(mg.tensor([0.0, 1.0]), 2)


def test_a_carried_recurrent_state_names_detach_state_when_its_graph_was_freed() -> None:
    from minigrad.models import LSTMCell

    cell = LSTMCell(2, 3)
    state = None
    x = mg.ones(1, 2)
    h, state = cell(x, state)
    h.sum().backward()
    h, state = cell(x, state)  # the state still belongs to the first batch's freed graph
    with pytest.raises(mg.GraphFreedError, match="detach_state"):
        h.sum().backward()


def test_axis_alone_is_taken_where_dim_has_a_default() -> None:
    x = mg.ones(2, 4)
    np.testing.assert_allclose(x.softmax(axis=0).data, 0.5)
    np.testing.assert_allclose(x.log_softmax(axis=0).data, np.log(0.5), rtol=1e-6)
    assert len(x.split(1, axis=1)) == 4 and len(x.chunk(2, axis=1)) == 2 and len(x.chunk(2)) == 2


def test_an_optimizer_step_counts_as_an_in_place_write() -> None:
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0], requires_grad=True)
    loss = (w * x).sum()
    (w * w).sum().backward()
    mg.optim.SGD([w], lr=0.1).step()  # changes w, which loss's Mul saved
    with pytest.raises(RuntimeError, match="input 0 of Mul"):
        loss.backward()


def test_a_compiled_function_returns_a_fresh_array_for_a_constant_each_call() -> None:
    def f(x):
        return x * 2, mg.ones(3), mg.zeros(2, 3)[0]

    compiled = mg.compile(f, fallback=False)
    x = mg.ones(3)
    for _ in range(3):  # each time a caller writes into what it got, the next call is unaffected
        _, ones, zeros = compiled(x)
        assert ones.tolist() == [1, 1, 1] and zeros.tolist() == [0, 0, 0]
        ones.add_(1)
        zeros.fill_(5)


def test_a_float32_layer_fed_float64_raises_instead_of_computing_in_float64() -> None:
    layer = mg.nn.Linear(3, 2)
    with pytest.raises(TypeError, match="linear: input of dtype float64 and weight of dtype "
                                        "float32 must have the same dtype"):
        layer(mg.tensor(np.ones((2, 3))))
    assert layer.double()(mg.tensor(np.ones((2, 3)))).dtype == np.float64
