"""Autograd features against PyTorch: autograd.grad (retain_graph, allow_unused,
materialize_grads, grad_outputs, non-leaf inputs), backward(inputs=), Tensor.register_hook on
leaves and non-leaves, retain_grad on views, Module.register_full_backward_hook."""

import numpy as np
import pytest

import fastdl
import fastdl.nn as nn

torch = pytest.importorskip("torch", reason="these tests compare with PyTorch")


def pair(shape, seed=0, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return (
        fastdl.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


def close(ours, theirs, atol=1e-5):
    if theirs is None:
        assert ours is None
        return
    assert ours is not None
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=atol, rtol=1e-5)


def graph(lib, x, w):
    h = lib.tanh(x @ w)
    return h, (h * h).sum() + (x.exp() * 0.5).sum()


# ---------------------------------------------------------------- autograd.grad


def test_grad_matches_torch_and_leaves_grad_alone():
    (x, tx), (w, tw) = pair((3, 4)), pair((4, 2), seed=1)
    _, y = graph(fastdl, x, w)
    _, ty = graph(torch, tx, tw)
    gx, gw = fastdl.autograd.grad(y, [x, w])
    tgx, tgw = torch.autograd.grad(ty, [tx, tw])
    close(gx, tgx)
    close(gw, tgw)
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad


def test_grad_of_non_leaf_input_and_grad_outputs():
    (x, tx), (w, tw) = pair((3, 4)), pair((4, 2), seed=1)
    h, y = graph(fastdl, x, w)
    th, ty = graph(torch, tx, tw)
    (gh,) = fastdl.autograd.grad(y, h, retain_graph=True)
    (tgh,) = torch.autograd.grad(ty, th, retain_graph=True)
    close(gh, tgh)
    v = np.random.default_rng(5).standard_normal((3, 2)).astype(np.float32)
    (gx,) = fastdl.autograd.grad(h, x, grad_outputs=fastdl.tensor(v))
    (tgx,) = torch.autograd.grad(th, tx, grad_outputs=torch.tensor(v))
    close(gx, tgx)


def test_grad_several_outputs_and_repeated_input():
    (x, tx) = pair((5,))
    outs = [(x * x).sum(), x.sin().sum()]
    touts = [(tx * tx).sum(), tx.sin().sum()]
    g1, g2 = fastdl.autograd.grad(outs, [x, x])
    t1, t2 = torch.autograd.grad(touts, [tx, tx])
    close(g1, t1)
    close(g2, t2)


def test_grad_retain_graph_defaults_to_free():
    (x, _) = pair((3,))
    y = (x * x).sum()
    fastdl.autograd.grad(y, x, retain_graph=True)
    fastdl.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        fastdl.autograd.grad(y, x)


def test_grad_allow_unused_and_materialize():
    (x, tx), (z, tz) = pair((3,)), pair((2,), seed=1)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        fastdl.autograd.grad((x * 2).sum(), [x, z])
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad((tx * 2).sum(), [tx, tz])
    gx, gz = fastdl.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    close(gx, torch.full((3,), 2.0))
    assert gz is None
    gx, gz = fastdl.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)
    tgx, tgz = torch.autograd.grad((tx * 2).sum(), [tx, tz], materialize_grads=True)
    close(gz, tgz)
    with pytest.raises(ValueError, match="allow_unused"):
        fastdl.autograd.grad((x * 2).sum(), [x], allow_unused=False, materialize_grads=True)


def test_grad_errors():
    (x, _) = pair((3,))
    c = fastdl.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        fastdl.autograd.grad((x * c).sum(), c)
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        fastdl.autograd.grad(c.sum(), x)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        fastdl.autograd.grad(x * 2, x)


def test_grad_skips_parts_of_the_graph_that_do_not_lead_to_inputs():
    class Boom(fastdl.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("ran a backward that leads to no input")

    (x, _), (z, _) = pair((3,)), pair((3,), seed=1)
    y = (x * 3).sum() + Boom.apply(z).sum()
    (gx,) = fastdl.autograd.grad(y, x)
    close(gx, torch.full((3,), 3.0))


# ---------------------------------------------------------------- backward(inputs=)


def test_backward_inputs_accumulates_only_into_them():
    (x, tx), (w, tw) = pair((3, 4)), pair((4, 2), seed=1)
    h, y = graph(fastdl, x, w)
    th, ty = graph(torch, tx, tw)
    y.backward(inputs=[w, h])
    ty.backward(inputs=[tw, th])
    assert x.grad is None and tx.grad is None
    close(w.grad, tw.grad)
    close(h.grad, th.grad)
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * 2).sum().backward(inputs=[])


# ---------------------------------------------------------------- tensor hooks


def test_hooks_on_leaf_and_non_leaf_match_torch():
    def run(lib, x):
        seen = []
        x.register_hook(lambda g: seen.append(("x", g.clone())))
        a = x * 2
        a.register_hook(lambda g: g * 3)  # replaces a's gradient
        a.register_hook(lambda g: seen.append(("a", g.clone())))
        a.retain_grad()
        y = (a * a).sum() + (x * x).sum()  # x used twice: its hook sees the total
        y.backward()
        return seen, a.grad, x.grad

    (x, tx) = pair((4,))
    ours, theirs = run(fastdl, x), run(torch, tx)
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    for (_, g), (_, tg) in zip(ours[0], theirs[0]):
        close(g, tg)
    close(ours[1], theirs[1])
    close(ours[2], theirs[2])


def test_hook_remove_and_hook_in_autograd_grad():
    (x, tx) = pair((3,))
    h = x.register_hook(lambda g: g * 10)
    th = tx.register_hook(lambda g: g * 10)
    close(fastdl.autograd.grad((x * x).sum(), x)[0], torch.autograd.grad((tx * tx).sum(), tx)[0])
    h.remove()
    th.remove()
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    close(x.grad, tx.grad)


def test_register_hook_needs_grad():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        fastdl.tensor([1.0]).register_hook(lambda g: g)


def test_post_accumulate_grad_hook_matches_torch():
    # Each leaf's hook runs once per backward, after .grad holds its whole gradient (x is used
    # by the first and the last op), and a layer's hooks run before the layer below it is
    # differentiated: the property DDP's buckets rely on.
    def run(lib, x, w1, w2):
        seen = []
        for name, t in (("x", x), ("w1", w1), ("w2", w2)):
            t.register_post_accumulate_grad_hook(
                lambda t, name=name: seen.append((name, t.grad.clone()))
            )
        w1.register_hook(lambda g: g * 2)  # a tensor hook runs before accumulation
        h = (x @ w1).tanh() @ w2
        (h.sum() + (x * x).sum()).backward()
        return seen

    (x, tx), (w1, tw1), (w2, tw2) = pair((3, 4), 0), pair((4, 5), 1), pair((5, 2), 2)
    x.grad = fastdl.ones(3, 4)  # accumulation adds to an existing .grad
    tx.grad = torch.ones(3, 4)
    ours, theirs = run(fastdl, x, w1, w2), run(torch, tx, tw1, tw2)
    # x and w1 are both complete after the first matmul's backward: their order is a tie
    assert [n for n, _ in ours][0] == [n for n, _ in theirs][0] == "w2"
    assert sorted(n for n, _ in ours) == sorted(n for n, _ in theirs) == ["w1", "w2", "x"]
    for name, g in ours:
        close(g, dict(theirs)[name])


def test_post_accumulate_grad_hook_paths_and_errors():
    x = fastdl.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.tolist()))
    (x * x).sum().backward(inputs=[x])  # backward(inputs=) accumulates too
    (x * 3).sum().backward(create_graph=True)  # the graph-building backward
    assert calls == [[2.0, 4.0], [5.0, 7.0]]
    fastdl.autograd.grad((x * x).sum(), x)  # no accumulation, no hook (PyTorch's)
    x.sum().backward()  # the root itself is the leaf
    assert calls[-1] == [6.0, 8.0] and len(calls) == 3
    handle.remove()
    x.sum().backward()
    assert len(calls) == 3
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        fastdl.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)


def test_queue_callback_runs_once_at_the_end_of_backward():
    from fastdl.autograd import engine

    x = fastdl.tensor([1.0, 2.0], requires_grad=True)
    events = []
    x.register_post_accumulate_grad_hook(
        lambda t: (events.append("hook"), engine.queue_callback(lambda: events.append("end")))
    )
    (x * x).sum().backward()
    assert events == ["hook", "end"]
    (x * x).sum().backward()
    assert events == ["hook", "end", "hook", "end"]


# ---------------------------------------------------------------- retain_grad


def test_retain_grad_on_views():
    def run(lib, a):
        b = a * 1
        v = b[0]
        v.retain_grad()
        b.mul_(2)  # the view's history is regenerated; retain_grad follows it
        (v * 3).sum().backward()
        w = a[1]
        w.retain_grad()
        return v.grad, v.retains_grad

    (a, ta) = pair((3, 4))
    ours, theirs = run(fastdl, a), run(torch, ta)
    close(ours[0], theirs[0])
    assert ours[1] == theirs[1]
    (a, ta) = pair((3, 4))
    v, tv = a[1:].t(), ta[1:].t()
    v.retain_grad()
    tv.retain_grad()
    (v * v).sum().backward()
    (tv * tv).sum().backward()
    close(v.grad, tv.grad)
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        fastdl.tensor([1.0]).retain_grad()


# ---------------------------------------------------------------- module hooks


def test_full_backward_hook_matches_torch():
    a = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)

    def run(lib, nn_):
        lib.manual_seed(0)
        lin = nn_.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(a[:2]))
            lin.bias.copy_(lib.tensor([0.1, -0.2]))
        calls = []

        def hook(module, grad_input, grad_output):
            calls.append((grad_input, grad_output))
            return (grad_input[0] * 2,)

        handle = lin.register_full_backward_hook(hook)
        x = lib.tensor(a, requires_grad=True)
        (lin(x) ** 2).sum().backward()
        handle.remove()
        (lin(x) ** 2).sum().backward()  # no hook: x.grad gains the plain gradient
        return calls, x.grad, lin.weight.grad

    ours, theirs = run(fastdl, nn), run(torch, torch.nn)
    assert len(ours[0]) == len(theirs[0]) == 1
    close(ours[0][0][0][0], theirs[0][0][0][0])
    close(ours[0][0][1][0], theirs[0][0][1][0])
    close(ours[1], theirs[1])
    close(ours[2], theirs[2])


def test_full_backward_hook_inputs_without_grad():
    lin = nn.Linear(3, 2)
    calls = []
    lin.register_full_backward_hook(lambda m, gi, go: calls.append((gi, go)))
    lin(fastdl.randn(4, 3)).sum().backward()
    assert len(calls) == 1
    assert calls[0][0] == (None,)
    assert calls[0][1][0].shape == (4, 2)
    assert lin.weight.grad is not None


# ---------------------------------------------------------------- create_graph


SECOND_ORDER = {
    "exp": lambda lib, x, w: x.exp(),
    "log": lambda lib, x, w: (x * x + 1).log(),
    "sin_cos": lambda lib, x, w: x.sin() * x.cos(),
    "pow": lambda lib, x, w: x**3 - x**2,
    "div": lambda lib, x, w: x / (x * x + 2),
    "sub_neg": lambda lib, x, w: -(x - 2 * x * x),
    "relu": lambda lib, x, w: x.relu() * x,
    "sigmoid": lambda lib, x, w: lib.sigmoid(x),
    "tanh": lambda lib, x, w: lib.tanh(x),
    "sqrt": lambda lib, x, w: (x * x + 1).sqrt(),
    "mean_broadcast": lambda lib, x, w: (x * x).mean(dim=1, keepdim=True) * x,
    "matmul": lambda lib, x, w: lib.tanh(x @ w) @ w.t(),
    "linear": lambda lib, x, w: lib.nn.functional.linear(x, w.t()).sigmoid(),
    "reshape_permute": lambda lib, x, w: (x.reshape(2, 6).t() ** 2).sum(dim=0),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_derivative_matches_torch(name):
    f = SECOND_ORDER[name]
    (x, tx), (w, tw) = pair((3, 4)), pair((4, 4), seed=1)
    results = []
    for lib, a, b in ((fastdl, x, w), (torch, tx, tw)):
        y = f(lib, a, b).sum()
        (g,) = lib.autograd.grad(y, a, create_graph=True)
        assert g.requires_grad
        # d2y/dx2 contracted with a fixed vector, and the mixed derivative into w
        v = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
        hx, hw = lib.autograd.grad((g * v).sum(), [a, b], allow_unused=True)
        results.append((g, hx, hw))
    for ours, theirs in zip(*results):
        if theirs is not None and ours is None:
            theirs = theirs if theirs.abs().max() > 0 else None  # unused: zero in torch
        close(ours, theirs, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Using backward.. with create_graph=True")
def test_backward_create_graph_and_hessian_vector_product():
    (x, tx) = pair((5,))
    for lib, a in ((fastdl, x), (torch, tx)):
        y = (a.sin() * a * a).sum()
        y.backward(create_graph=True)
        assert a.grad.requires_grad
    close(x.grad, tx.grad)
    v = np.arange(5, dtype=np.float32)
    (hv,) = fastdl.autograd.grad(x.grad, x, grad_outputs=fastdl.tensor(v))
    (thv,) = torch.autograd.grad(tx.grad, tx, grad_outputs=torch.tensor(v))
    close(hv, thv, atol=1e-4)


def test_gradient_penalty_training_step_matches_torch():
    rng = np.random.default_rng(7)
    w1, b1 = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    w2, b2 = rng.standard_normal((1, 8)).astype(np.float32), rng.standard_normal(1).astype(np.float32)
    data = rng.standard_normal((6, 4)).astype(np.float32)

    def run(lib):
        net = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 1))
        with lib.no_grad():
            for p, a in zip(net.parameters(), (w1, b1, w2, b2)):
                p.copy_(lib.tensor(a))
        opt = lib.optim.SGD(net.parameters(), lr=0.1)
        losses = []
        for _ in range(3):
            x = lib.tensor(data, requires_grad=True)
            out = net(x)
            (g,) = lib.autograd.grad(out.sum(), x, create_graph=True)
            penalty = ((g * g).sum(dim=1) - 1) ** 2
            loss = out.mean() + 10 * penalty.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.detach().numpy() for p in net.parameters()]

    (ours, ours_p), (theirs, theirs_p) = run(fastdl), run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    for a, b in zip(ours_p, theirs_p):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_create_graph_through_an_unsupported_op_names_it():
    (x, _) = pair((2, 3))
    y = fastdl.nn.functional.log_softmax(x, dim=1).sum()
    with pytest.raises(NotImplementedError, match="LogSoftmax"):
        fastdl.autograd.grad(y, x, create_graph=True)
