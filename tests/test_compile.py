"""fastdl.compile against eager mode: the founding CNN, an MLP and a model with BatchNorm2d,
Dropout and AdaptiveAvgPool2d, over 5 Adam steps (loss, gradients, parameters and running
statistics), through `step()` and through autograd; train/eval and grad-mode signatures, new
shapes, the eager fallbacks and their warnings, the memory plan (tracemalloc), and the fallback
off the CPU backend (`--device strict`, or the reference backend)."""

import contextlib
import tracemalloc
import warnings

import numpy as np
import pytest

import fastdl
from fastdl import nn, optim
from fastdl.models import CNN

RTOL, ATOL = 1e-4, 1e-5


def mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
        nn.Linear(32, 10),
    )


def bn_net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


MODELS = {"cnn": CNN, "mlp": mlp, "bn_dropout_avgpool": bn_net}


def data(steps, batch=6, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (fastdl.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)),
         fastdl.tensor(rng.integers(0, 10, batch)))
        for _ in range(steps)
    ]


def twins(make):
    fastdl.manual_seed(0)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    return a, b


def eager_run(model, batches, seed=1):
    opt = optim.Adam(model.parameters(), lr=1e-2)
    crit = nn.CrossEntropyLoss()
    fastdl.manual_seed(seed)  # Dropout's draws
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def assert_same_state(eager, compiled):
    for (name, p), (_, q) in zip(eager.named_parameters(), compiled.named_parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), RTOL, ATOL, err_msg=name)
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), RTOL, ATOL, err_msg=name)
    for (name, p), (_, q) in zip(eager.named_buffers(), compiled.named_buffers()):
        np.testing.assert_allclose(q.numpy(), p.numpy(), RTOL, ATOL, err_msg=name)


@pytest.mark.parametrize("name", list(MODELS))
def test_step_matches_eager(name):
    eager, model = twins(MODELS[name])
    batches = data(5)
    expected = eager_run(eager, batches)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    compiled = fastdl.compile(model, optimizer=opt, loss_fn=nn.CrossEntropyLoss())
    fastdl.manual_seed(1)
    losses = [compiled.step(x, y).item() for x, y in batches]
    np.testing.assert_allclose(losses, expected, RTOL, ATOL)
    assert_same_state(eager, model)


# Conv blocks (conv2d + ReLU + 2x2 max pool, one fused kernel call each way) of other
# geometries: odd sizes (the pooling's floor), no bias, stride 2 without padding, a 5x5 kernel,
# and three input channels then a second block. (model, input shape)
BLOCK_MODELS = {
    "odd_no_bias": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(8 * 3 * 4, 10),
        ),
        (4, 1, 7, 9),
    ),
    "stride_2": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 6, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(6 * 3 * 3, 10),
        ),
        (3, 1, 13, 14),
    ),
    "kernel_5": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(4 * 5 * 5, 10),
        ),
        (2, 1, 10, 11),
    ),
    "rgb_two_blocks": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 4 * 4, 10),
        ),
        (8, 3, 16, 17),
    ),
}


@pytest.mark.parametrize("name", list(BLOCK_MODELS))
def test_conv_blocks_of_other_shapes_match_eager(name, on_strict_device):
    make, shape = BLOCK_MODELS[name]
    eager, model = twins(make)
    rng = np.random.default_rng(2)
    batches = [
        (fastdl.tensor(rng.standard_normal(shape).astype(np.float32)),
         fastdl.tensor(rng.integers(0, 10, shape[0])))
        for _ in range(4)
    ]
    expected = eager_run(eager, batches)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    compiled = fastdl.compile(model, optimizer=opt, loss_fn=nn.CrossEntropyLoss())
    losses = [compiled.step(x, y).item() for x, y in batches]
    plan = next(iter(compiled._plans.values()))
    if not on_strict_device:  # (off the CPU backend the model runs eagerly: no plan)
        assert any(getattr(n, "pool", False) for n in plan.nodes)  # the blocks did fuse
    np.testing.assert_allclose(losses, expected, RTOL, ATOL)
    assert_same_state(eager, model)


@pytest.mark.parametrize("name", list(MODELS))
def test_autograd_path_matches_eager(name):
    """compiled(x) is one autograd node: loss.backward() and opt.step() as in eager code."""
    eager, model = twins(MODELS[name])
    batches = data(5, seed=3)
    expected = eager_run(eager, batches)
    compiled = fastdl.compile(model)
    losses = eager_run(compiled, batches)
    np.testing.assert_allclose(losses, expected, RTOL, ATOL)
    assert_same_state(eager, model)


@pytest.mark.cpu_only(reason="checks the plans the CPU backend records")
def test_plans_per_signature_and_fusions():
    compiled = fastdl.compile(CNN())
    x = fastdl.randn(3, 1, 28, 28)
    for _ in range(2):
        compiled(x)
        with fastdl.no_grad():
            compiled(x)
    compiled(fastdl.randn(5, 1, 28, 28))
    compiled.eval()
    compiled(x)
    assert len(compiled._plans) == 4  # (3, grad), (3, no grad), (5, grad), (3, eval)
    plan = next(iter(compiled._plans.values()))
    kinds = [(type(n).__name__, getattr(n, "relu", None), getattr(n, "pool", None))
             for n in plan.nodes]
    assert kinds == [("_Conv", True, True), ("_Conv", True, True), ("_Flatten", None, None),
                     ("_Linear", True, None), ("_Linear", False, None)]


@pytest.mark.parametrize("name", list(MODELS))
def test_eval_and_no_grad_match_eager(name):
    eager, model = twins(MODELS[name])
    eager_run(eager, data(2))
    compiled = fastdl.compile(model)
    eager_run(compiled, data(2))
    x = data(1, seed=9)[0][0]
    for train in (False, True, False):
        eager.train(train)
        compiled.train(train)
        assert model.training is train
        for _ in range(2):  # recorded, then replayed
            with fastdl.no_grad():
                fastdl.manual_seed(5)
                expected = eager(x).numpy()
                fastdl.manual_seed(5)
                np.testing.assert_allclose(compiled(x).numpy(), expected, RTOL, ATOL)
    assert_same_state(eager, model)  # running statistics: updated in train mode only


def test_unsupported_module_runs_eagerly_with_a_warning():
    make = lambda: nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))  # noqa: E731
    eager, model = twins(make)
    x, w = fastdl.randn(4, 5), fastdl.randn(4, 3)
    compiled = fastdl.compile(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for m in (eager, compiled, compiled):
            (m(x) * w).sum().backward()
    if not fastdl.get_default_device().type == "cpu":
        return  # off the CPU the whole model runs eagerly (test_off_cpu_falls_back)
    assert any("Tanh '1'" in str(c.message) for c in caught), [str(c.message) for c in caught]
    for p, q in zip(eager.parameters(), model.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), 2 * p.grad.numpy(), RTOL, ATOL)


class ViewNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.reshape(x.shape[0], -1))  # a tensor op outside any module


def test_a_forward_that_is_no_chain_runs_eagerly():
    eager, model = twins(ViewNet)
    compiled = fastdl.compile(model)
    batches = data(3)
    with pytest.warns(UserWarning, match="runs eagerly"):
        losses = eager_run(compiled, batches)
    np.testing.assert_allclose(losses, eager_run(eager, batches), RTOL, ATOL)
    with pytest.raises(RuntimeError, match="fullgraph"):
        fastdl.compile(ViewNet(), fullgraph=True)(batches[0][0])


def test_forward_twice_before_backward_raises():
    compiled = fastdl.compile(mlp())
    x = fastdl.randn(2, 1, 28, 28)
    compiled(x)  # recorded (eager)
    first = compiled(x)
    compiled(x)
    if compiled._plans[next(iter(compiled._plans))] is None:
        pytest.skip("the model runs eagerly on this device: there is no plan to misuse")
    with pytest.raises(RuntimeError, match="ran forward again"):
        first.sum().backward()


@pytest.mark.parametrize("tail", [[], [nn.Flatten()], [nn.Dropout(), nn.Identity()]])
def test_outputs_are_not_the_plans_buffers(tail):
    """The pooled output is a reused buffer; what the caller gets (or a view of it) is not."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), *tail)
    model.eval()
    compiled = fastdl.compile(model)
    a, b = fastdl.randn(1, 1, 4, 4), fastdl.randn(1, 1, 4, 4)
    with fastdl.no_grad():
        compiled(a)
        ya = compiled(a).numpy().copy()
        ya2 = compiled(a)
        compiled(b)
        np.testing.assert_array_equal(ya2.numpy(), ya)
        np.testing.assert_allclose(ya, model(a).numpy(), RTOL, ATOL)


def test_compile_arguments():
    model = mlp()
    assert fastdl.compile(model, disable=True) is model
    compiled = fastdl.compile()(model)
    assert compiled._orig_mod is model and compiled.state_dict().keys() == model.state_dict().keys()
    cnn = CNN()
    assert fastdl.compile(cnn).fc1 is cnn.fc1  # the model's attributes, as torch.compile's
    with pytest.raises(TypeError, match="nn.Module"):
        fastdl.compile(lambda x: x)
    with pytest.raises(ValueError, match="backend"):
        fastdl.compile(model, backend="eager-xla")
    with pytest.raises(RuntimeError, match="optimizer and loss_fn"):
        compiled.step(fastdl.randn(1, 1, 28, 28), fastdl.tensor([1]))


def _step_peak(step):
    """Bytes a steady-state step allocates at its peak beyond what it keeps (tracemalloc)."""
    for _ in range(2):
        step()
    tracemalloc.start()
    try:
        step()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.cpu_only(reason="the memory plan is the CPU backend's")
def test_a_compiled_step_allocates_far_less_than_eager():
    """Reused buffers and no per-op tensors: at batch 64 a compiled step's allocation peak is
    about 6 MB (what the conv and GEMM kernels return) against eager's 21 MB."""
    x, y = data(1, batch=64)[0]
    crit = nn.CrossEntropyLoss()
    eager = CNN()
    opt = optim.Adam(eager.parameters(), lr=1e-3)

    def eager_step():
        opt.zero_grad()
        crit(eager(x), y).backward()
        opt.step()

    model = CNN()
    compiled = fastdl.compile(model, optimizer=optim.Adam(model.parameters()), loss_fn=crit)
    assert _step_peak(lambda: compiled.step(x, y)) < 0.5 * _step_peak(eager_step)


@pytest.mark.cpu_only(reason="the memory plan is the CPU backend's")
def test_steady_state_keeps_its_buffers_and_does_not_grow():
    model = CNN()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    compiled = fastdl.compile(model, optimizer=opt, loss_fn=nn.CrossEntropyLoss())
    x, y = data(1, batch=16)[0]
    for _ in range(3):
        compiled.step(x, y)
    plan = next(iter(compiled._plans.values()))
    buffers = [(n.y_buf, n.c_buf) for n in plan.nodes[:2]]
    grads = [p.grad for p in model.parameters()]
    tracemalloc.start()
    try:
        compiled.step(x, y)
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            compiled.step(x, y)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # The fused ops' outputs and gradients are the same arrays every step, the .grad tensors
    # the same objects; what the conv and GEMM kernels return is freed each step.
    assert [(n.y_buf, n.c_buf) for n in plan.nodes[:2]] == buffers
    assert all(a is b for a, b in zip(grads, [p.grad for p in model.parameters()]))
    assert grown < 16 * 1024, grown


def test_off_cpu_falls_back_to_eager(on_strict_device):
    """Plans run on the CPU backend only: elsewhere (the strict device, or the reference
    backend on the CPU) the model runs eagerly, with a warning, and gives eager's numbers."""
    eager, model = twins(MODELS["bn_dropout_avgpool"])
    batches = data(3)
    # Both sides on the same kernels (the conv bias before BatchNorm has a gradient of pure
    # rounding noise, which Adam scales up: other kernels would give other parameters).
    def where():
        return contextlib.nullcontext() if on_strict_device else fastdl.backend("reference")

    with where():
        expected = eager_run(eager, batches)
    compiled = fastdl.compile(model, optimizer=optim.Adam(model.parameters(), lr=1e-2),
                              loss_fn=nn.CrossEntropyLoss())
    fastdl.manual_seed(1)
    with pytest.warns(UserWarning, match="not on the CPU backend"), where():
        losses = [compiled.step(x, y).item() for x, y in batches]
    assert list(compiled._plans.values()) == [None]
    np.testing.assert_allclose(losses, expected, RTOL, ATOL)
    assert_same_state(eager, model)
