"""Autograd: every Tensor op's gradient against finite differences (float64), and the engine's
semantics (accumulation, diamonds, long chains, no_grad, detach, custom Function, errors)."""

import numpy as np
import pytest

import fastdl
import fastdl.nn.functional as F
from fastdl.testing import assert_close
from gradcheck import assert_grad_close, numerical_grad


def check_op(fn, *shapes, positive=False, seed=0, atol=1e-6, rtol=1e-5):
    """An op test in one line, run twice. In float64: every input's gradient of
    sum(fn(...) * w), w random, against central differences. In float32: the output and every
    input's gradient on the default backend (the C++ kernels where the op has one) against the
    reference backend, by fastdl.testing's float32 rule."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    w = None

    def run(dtype):
        nonlocal w
        leaves = [fastdl.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        out = fn(*leaves)
        if w is None:
            w = rng.standard_normal(out.shape)
        (out * fastdl.tensor(w.astype(dtype))).sum().backward()
        return out.detach().numpy(), [None if t.grad is None else t.grad.numpy() for t in leaves]

    _, grads = run(np.float64)

    def loss(*arrs):
        with fastdl.no_grad():
            return float((fn(*[fastdl.tensor(a) for a in arrs]) * fastdl.tensor(w)).sum().item())

    for i, (g, a) in enumerate(zip(grads, arrays)):
        assert g is not None, f"input {i} got no gradient"
        assert g.shape == a.shape
        assert_grad_close(g, numerical_grad(loss, arrays, i), atol, rtol, f"input {i}")

    out32, grads32 = run(np.float32)
    with fastdl.backend("reference"):
        ref_out, ref_grads = run(np.float32)
    assert_close(out32, ref_out, name="float32 output, default backend vs reference")
    for i, (g, r) in enumerate(zip(grads32, ref_grads)):
        assert_close(g, r, name=f"float32 gradient of input {i}, default backend vs reference")


@pytest.mark.parametrize(
    "name, fn, shapes, positive",
    [
        ("add_broadcast", lambda a, b: a + b, [(3, 4), (4,)], False),
        ("sub_broadcast", lambda a, b: a - b, [(3, 1), (1, 4)], False),
        ("mul", lambda a, b: a * b, [(2, 3), (2, 3)], False),
        ("div", lambda a, b: a / b, [(2, 3), (3,)], True),
        ("rsub_scalar", lambda a: 2.0 - a, [(3,)], False),
        ("rdiv_scalar", lambda a: 2.0 / a, [(3,)], True),
        ("pow_scalar", lambda a: a**3, [(2, 3)], False),
        ("pow_tensor", lambda a, b: a**b, [(2, 3), (2, 3)], True),
        ("neg", lambda a: -a, [(4,)], False),
        ("exp", lambda a: a.exp(), [(2, 3)], False),
        ("log", lambda a: a.log(), [(2, 3)], True),
        ("sqrt", lambda a: a.sqrt(), [(2, 3)], True),
        ("abs", lambda a: a.abs(), [(2, 3)], False),
        ("sin_cos", lambda a: a.sin() * a.cos(), [(5,)], False),
        ("clamp", lambda a: a.clamp(-0.5, 0.5), [(4, 4)], False),
        ("relu", lambda a: a.relu(), [(3, 5)], False),
        ("sigmoid", lambda a: a.sigmoid(), [(3, 5)], False),
        ("tanh", lambda a: a.tanh(), [(3, 5)], False),
        ("softmax", lambda a: a.softmax(dim=1), [(3, 5)], False),
        ("log_softmax", lambda a: a.log_softmax(dim=0), [(3, 5)], False),
        ("sum_dim", lambda a: a.sum(dim=1), [(3, 4, 2)], False),
        ("sum_keepdim", lambda a: a.sum(dim=(0, 2), keepdim=True), [(3, 4, 2)], False),
        ("mean", lambda a: a.mean(), [(3, 4)], False),
        ("mean_dim", lambda a: a.mean(dim=-1), [(3, 4)], False),
        ("var", lambda a: a.var(dim=1), [(3, 4)], False),
        ("max_all", lambda a: a.max(), [(3, 4)], False),
        ("max_dim", lambda a: a.max(dim=1).values, [(3, 4)], False),
        ("min_dim_keep", lambda a: a.min(dim=0, keepdim=True)[0], [(3, 4)], False),
        ("logsumexp", lambda a: a.logsumexp(dim=1), [(3, 4)], False),
        ("maximum", lambda a, b: a.maximum(b), [(3, 4), (4,)], False),
        ("matmul_2d", lambda a, b: a @ b, [(3, 4), (4, 5)], False),
        ("matmul_vec", lambda a, b: a @ b, [(4,), (4, 5)], False),
        ("matmul_mat_vec", lambda a, b: a @ b, [(3, 4), (4,)], False),
        ("matmul_batched", lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)], False),
        ("matmul_broadcast", lambda a, b: a @ b, [(2, 3, 4), (4, 5)], False),
        ("matmul_bcast_batch", lambda a, b: a @ b, [(1, 3, 4), (2, 4, 5)], False),
        ("reshape", lambda a: a.reshape(4, 3) * 2, [(3, 4)], False),
        ("flatten", lambda a: a.flatten(1), [(2, 3, 4)], False),
        ("permute", lambda a: a.permute(2, 0, 1), [(2, 3, 4)], False),
        ("transpose", lambda a: a.transpose(0, 1), [(2, 3)], False),
        ("T", lambda a: a.T, [(2, 3)], False),
        ("unsqueeze_squeeze", lambda a: a.unsqueeze(1).squeeze(1), [(2, 3)], False),
        ("expand", lambda a: a.expand(3, 4), [(1, 4)], False),
        ("index_int_slice", lambda a: a[1, 1:3], [(3, 4)], False),
        ("index_repeated", lambda a: a[fastdl.tensor([0, 2, 0])], [(3, 4)], False),
        ("index_mask", lambda a: a[a > 0], [(3, 4)], False),
        ("cat", lambda a, b: fastdl.cat([a, b], dim=1), [(2, 3), (2, 2)], False),
        ("stack", lambda a, b: fastdl.stack([a, b], dim=0), [(2, 3), (2, 3)], False),
        ("where", lambda a, b: fastdl.where(a > 0, a, b), [(3, 4), (3, 4)], False),
        ("clone", lambda a: a.clone() * 3, [(3,)], False),
        ("linear", lambda x, w, b: F.linear(x, w, b), [(5, 3), (4, 3), (4,)], False),
        ("linear_3d", lambda x, w: F.linear(x, w), [(2, 5, 3), (4, 3)], False),
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(2, 3, 5, 6), (4, 3, 3, 2), (4,)], False),
        ("max_pool2d", lambda x: F.max_pool2d(x, 2), [(2, 3, 4, 6)], False),
        ("max_pool2d_pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(1, 2, 5, 5)], False),
        ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), [(3, 4)], False),
        ("mse", lambda a, b: F.mse_loss(a, b), [(3, 4), (3, 4)], False),
        ("l1", lambda a, b: F.l1_loss(a, b, reduction="sum"), [(3, 4), (3, 4)], False),
        ("ce_probs_both", lambda x, t: F.cross_entropy(x, t.softmax(1)), [(4, 5), (4, 5)], False),
        ("ce_4d_probs", lambda x, t: F.cross_entropy(x, t.softmax(1), reduction="none"), [(2, 3, 2, 2), (2, 3, 2, 2)], False),
        ("bce_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid()), [(3, 4), (3, 4)], False),
        ("bce", lambda x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid()), [(3, 4), (3, 4)], False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_op_gradient(name, fn, shapes, positive):
    check_op(fn, *shapes, positive=positive)


def test_cross_entropy_index_target_gradient():
    target = fastdl.tensor([1, 0, 4, 2])
    weight = fastdl.tensor([1.0, 2.0, 0.5, 1.5, 3.0], dtype=fastdl.float64)
    check_op(lambda x: F.cross_entropy(x, target, weight=weight), (4, 5))
    check_op(lambda x: F.cross_entropy(x, fastdl.tensor([1, -100, 4, 2]), reduction="sum"), (4, 5))
    check_op(lambda x: F.nll_loss(x.log_softmax(1), target, weight=weight), (4, 5))
    check_op(lambda x: F.cross_entropy(x, fastdl.tensor([[0, 1], [2, 2]])), (2, 3, 2))


# ---------------------------------------------------------------- engine semantics


def test_shared_leaf_accumulates():
    x = fastdl.tensor([2.0, 3.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])
    (x * 2).sum().backward()  # a second graph adds to .grad
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 9.0])


def test_diamond_and_reused_non_leaf():
    x = fastdl.tensor([1.5], requires_grad=True)
    h = x * 3  # reused non-leaf: both branches must arrive before h's backward runs
    y = h.exp() + h * h + h
    y.sum().backward()
    h0 = 4.5
    np.testing.assert_allclose(x.grad.numpy(), [3 * (np.exp(h0) + 2 * h0 + 1)], rtol=1e-6)


def test_long_chain_no_recursion_limit():
    x = fastdl.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-3)


def test_no_grad_context_and_decorator():
    x = fastdl.ones(3, requires_grad=True)
    with fastdl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @fastdl.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert fastdl.is_grad_enabled()
    with fastdl.no_grad():
        with fastdl.enable_grad():
            assert (x * 2).requires_grad


def test_detach_cuts_the_graph():
    x = fastdl.tensor([2.0], requires_grad=True)
    y = x * x
    z = y.detach() * x
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])
    assert not y.detach().requires_grad


def test_retain_grad_on_non_leaf():
    x = fastdl.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_custom_function():
    class Cube(fastdl.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x * x * x * scale

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x * x * ctx.scale * grad, None

    x = fastdl.tensor([1.0, 2.0], requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_custom_function_wrong_gradient_count():
    class Bad(fastdl.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad

    a = fastdl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 1 gradients, expected 2"):
        Bad.apply(a, a).sum().backward()


def test_backward_errors():
    x = fastdl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="implicitly created only for scalar"):
        (x * 2).backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        fastdl.ones(2).sum().backward()


def test_retain_graph_allows_second_backward():
    x = fastdl.tensor([3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.0])


def test_backward_with_explicit_gradient():
    x = fastdl.ones(2, 2, requires_grad=True)
    (x * 3).backward(fastdl.tensor([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[3, 6], [9, 12]])


def test_float32_grads_keep_dtype():
    x = fastdl.randn(3, requires_grad=True)
    (x * fastdl.randn(3, dtype=fastdl.float64)).sum().backward()
    assert x.grad.dtype == fastdl.float32


def test_nan_propagates():
    x = fastdl.tensor([float("nan"), 1.0, -1.0], requires_grad=True)
    y = x.relu().exp().sum()
    assert np.isnan(y.item())
    y.backward()
    assert np.isnan(x.grad.numpy()[0]) or x.grad.numpy()[0] == 0


def test_integer_and_bool_results_have_no_gradient():
    """PyTorch's rule: only floating point results require grad (a cast to int or bool, a
    comparison), so using them downstream records nothing."""
    x = fastdl.tensor([1.5, -2.0], requires_grad=True)
    for y in (x.long(), x.bool(), x.int(), x.to(fastdl.uint8), x > 0):
        assert not y.requires_grad and y.grad_fn is None
    assert x.double().requires_grad
