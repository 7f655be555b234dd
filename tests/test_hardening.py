"""Regression tests for defects a hardening probe found (issue "Hardening"): each failed, or
crashed the interpreter, before its fix."""

import threading

import numpy as np
import pytest

import fastdl
import fastdl.nn.functional as F
from fastdl.backends import cpu, reference

try:
    import torch
except ImportError:  # the parity halves need PyTorch
    torch = None


@pytest.mark.parametrize("shape", [(1, 2, 0, 0), (1, 1, 0, 5), (2, 2, 0, 4), (1, 2, 3, 0)])
def test_conv2d_kernels_with_an_empty_image_and_padding_do_not_crash(shape):
    # Before: SIGFPE in the "dx as forward" partition (per-image share of 0 pixel tiles).
    x = np.zeros(shape, np.float32)
    w = np.ones((3, shape[1], 3, 3), np.float32)
    b = np.arange(3, dtype=np.float32)
    y = cpu.conv2d_forward(x, w, b, 1, 2)
    np.testing.assert_array_equal(y, reference.conv2d_forward(x, w, b, 1, 2))
    dy = np.ones(y.shape, np.float32)
    ours = cpu.conv2d_backward(dy, x, w, 1, 2, True, True, True)
    theirs = reference.conv2d_backward(dy, x, w, 1, 2, True, True, True)
    for a, r in zip(ours, theirs):
        assert a.shape == r.shape
        np.testing.assert_allclose(a, r, atol=1e-6)


def test_conv2d_on_an_empty_image_raises_like_pytorch():
    x = fastdl.zeros(1, 2, 0, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="zero batch or zero channel"):
        F.conv2d(x, fastdl.ones(3, 2, 3, 3), padding=1)
    if torch is not None:
        with pytest.raises(RuntimeError):
            torch.nn.functional.conv2d(torch.zeros(1, 2, 0, 5), torch.ones(3, 2, 3, 3), padding=1)
    y = F.conv2d(fastdl.zeros(0, 2, 5, 5), fastdl.ones(3, 2, 3, 3), padding=1)  # empty batch: fine
    assert y.shape == (0, 3, 5, 5)


def test_set_num_threads_refuses_absurd_counts():
    # Before: 100000 overflowed the stack inside OpenMP at the next parallel kernel (SIGSEGV).
    most = fastdl._C.max_num_threads()
    assert most >= 64
    before = fastdl.get_num_threads()
    for bad in (most + 1, 100000):
        with pytest.raises(ValueError, match=r"\[set_num_threads\].*got " + str(bad)):
            fastdl.set_num_threads(bad)
    assert fastdl.get_num_threads() == before


def test_thread_count_is_process_wide():
    # Before: omp_set_num_threads is per calling thread, so another thread kept the old count.
    before = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(1)
        seen = []
        t = threading.Thread(target=lambda: seen.append(fastdl.get_num_threads()))
        t.start()
        t.join()
        assert seen == [1]
        fastdl.set_num_threads(2)
        x = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
        results = []

        def run():
            results.append(cpu.matmul(x, x))

        t = threading.Thread(target=run)
        t.start()
        t.join()
        np.testing.assert_allclose(results[0], cpu.matmul(x, x), rtol=1e-6)
    finally:
        fastdl.set_num_threads(before)


def _misaligned(values: np.ndarray) -> np.ndarray:
    """A valid NumPy view of `values` at an odd byte offset (not aligned to its element size)."""
    raw = np.zeros(values.nbytes + 1, np.uint8)[1:]
    out = raw.view(values.dtype).reshape(values.shape)
    out[...] = values
    assert not out.flags.aligned
    return out


def test_misaligned_arrays_are_copied_before_the_kernels():
    # Before: the views reached the kernels (UBSan: misaligned loads in GEMM, maxpool, CE, optim).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    m = rng.standard_normal((16, 16)).astype(np.float32)
    logits = rng.standard_normal((5, 7)).astype(np.float32)
    target = np.array([0, 6, 2, 3, 1])
    cases = {
        "matmul": lambda f: cpu.matmul(f(m), f(m)),
        "relu": lambda f: cpu.relu_forward(f(m)),
        "tanh_backward": lambda f: cpu.tanh_backward(f(m), f(np.tanh(m))),
        "conv2d": lambda f: cpu.conv2d_forward(f(x), f(w), None, 1, 1),
        "conv2d_backward": lambda f: cpu.conv2d_backward(
            f(np.ones((2, 4, 8, 8), np.float32)), f(x), f(w), 1, 1, True, True, True)[0],
        "maxpool": lambda f: cpu.maxpool2d_forward(f(x), 2, 2, 0)[0],
        "cross_entropy": lambda f: cpu.cross_entropy_forward(f(logits), f(target), None, "mean",
                                                             -100)[0],
    }
    for name, run in cases.items():
        np.testing.assert_allclose(run(_misaligned), run(lambda a: a), rtol=1e-6, err_msg=name)


def test_the_binding_refuses_a_misaligned_array_by_name():
    with pytest.raises(ValueError, match=r"\[relu_forward\] x must be aligned"):
        fastdl._C.relu_forward(_misaligned(np.ones(8, np.float32)))


def test_a_parameter_over_a_misaligned_array_trains():
    p = fastdl.nn.Parameter(_misaligned(np.ones(6, np.float32)))
    assert p._data.flags.aligned
    opt = fastdl.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert np.all(p.detach().numpy() < 1.0)


def test_demo_stops_when_the_last_update_makes_the_weights_non_finite(tmp_path, capsys):
    # Before: a finite loss at every step hid weights made inf/NaN by the last update; the demo
    # saved them and exited 0.
    from fastdl.cli import main

    status = main(["demo", "--lr", "1e39", "--limit", "20", "--epochs", "1", "--batch-size", "64",
                   "--no-progress", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "became non-finite by epoch 1, step 1" in err[0] and "conv1.weight" in err[0]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def _out_and_grad_shapes(lib, shape, fn):
    x = lib.zeros(*shape, requires_grad=True)
    y = fn(lib, x)
    y.sum().backward()
    return tuple(y.shape), tuple(x.grad.shape)


def _ce(lib, x, reduction):
    return lib.nn.functional.cross_entropy(x, lib.zeros(0, dtype=lib.long), reduction=reduction)


# name: (input shape, op, expected (output shape, grad shape), or None where PyTorch raises)
ZERO_SIZE_CASES = {
    "max_pool2d_empty_batch": ((0, 2, 4, 4), lambda l, x: l.nn.functional.max_pool2d(x, 2),
                               ((0, 2, 2, 2), (0, 2, 4, 4))),
    "max_pool2d_no_channels": ((1, 0, 4, 4), lambda l, x: l.nn.functional.max_pool2d(x, 2), None),
    "linear_empty_batch": ((0, 3), lambda l, x: l.nn.functional.linear(x, l.ones(2, 3)),
                           ((0, 2), (0, 3))),
    "linear_no_features": ((2, 0), lambda l, x: l.nn.functional.linear(x, l.ones(2, 0)),
                           ((2, 2), (2, 0))),
    "matmul_empty_inner": ((2, 0), lambda l, x: x @ l.ones(0, 3), ((2, 3), (2, 0))),
    "conv2d_empty_batch": ((0, 1, 5, 5), lambda l, x: l.nn.functional.conv2d(x, l.ones(2, 1, 3, 3)),
                           ((0, 2, 3, 3), (0, 1, 5, 5))),
    "cross_entropy_sum_empty": ((0, 3), lambda l, x: _ce(l, x, "sum"), ((), (0, 3))),
    "softmax_empty": ((0, 3), lambda l, x: l.softmax(x, 1), ((0, 3), (0, 3))),
}


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("name", list(ZERO_SIZE_CASES))
def test_zero_size_shapes_compute_or_raise_like_pytorch(name, backend):
    # Before: NumPy reshape errors (reshape(-1, 0), an empty batch in the reference maxpool
    # backward) where PyTorch computes, and a result where PyTorch refuses (no channels).
    shape, fn, expected = ZERO_SIZE_CASES[name]
    with fastdl.backend(backend):
        if expected is None:
            with pytest.raises(RuntimeError):
                _out_and_grad_shapes(fastdl, shape, fn)
        else:
            assert _out_and_grad_shapes(fastdl, shape, fn) == expected
    if torch is not None:
        if expected is None:
            with pytest.raises(RuntimeError):
                _out_and_grad_shapes(torch, shape, fn)
        else:
            assert _out_and_grad_shapes(torch, shape, fn) == expected


def test_kernels_from_several_threads_match_a_serial_run():
    """Concurrency: training steps of separate models on 4 Python threads at once (the kernels
    release the GIL), with set_num_threads changing under them, give the serial run's numbers."""
    from fastdl.models import CNN

    rng = np.random.default_rng(0)
    x = fastdl.from_numpy(rng.standard_normal((8, 1, 28, 28)).astype(np.float32))
    y = fastdl.from_numpy(rng.integers(0, 10, 8))
    fastdl.manual_seed(0)
    start = CNN().state_dict()

    def train(steps=3):
        model = CNN()
        model.load_state_dict(start)
        opt = fastdl.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            opt.zero_grad()
            loss = fastdl.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return loss.item(), model.fc2.weight.detach().numpy().copy()

    before = fastdl.get_num_threads()
    try:
        serial = train()
        results, errors = [None] * 4, []

        def worker(i):
            try:
                results[i] = train()
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for n in (1, 2, 1, 2):
            fastdl.set_num_threads(n)
        for t in threads:
            t.join(timeout=120)
        assert not errors and all(r is not None for r in results)
        for loss, weight in results:
            assert loss == pytest.approx(serial[0], rel=1e-5)
            np.testing.assert_allclose(weight, serial[1], rtol=1e-5, atol=1e-6)
    finally:
        fastdl.set_num_threads(before)


@pytest.mark.parametrize("damage", ["history", "epoch", "best"])
def test_resume_from_a_checkpoint_without_its_progress_is_one_line(tmp_path, capsys, damage):
    # Before: `internal error (KeyError: 'history')`.
    from fastdl.cli import main

    out = tmp_path / "out"
    quick = ["--limit", "20", "--epochs", "1", "--batch-size", "32", "--no-progress"]
    assert main(["demo", *quick, "--out", str(out)]) == 0
    ck = fastdl.load(out / "checkpoint.safetensors")
    del ck[damage]
    fastdl.save(ck, tmp_path / "crafted.safetensors")
    capsys.readouterr()
    status = main(["demo", *quick, "--epochs", "2", "--out", str(tmp_path / "again"),
                   "--resume", str(tmp_path / "crafted.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "holds no valid training progress" in err[0] and damage in err[0]


def test_backend_switch_is_local_to_each_asyncio_task():
    """Two tasks interleave at every await: each keeps its own backend (a ContextVar) and gets
    the same numbers, so a task's `with fastdl.backend(...)` never leaks into another's."""
    import asyncio

    from fastdl import _backend

    x = fastdl.from_numpy(np.linspace(-2, 2, 64, dtype=np.float32).reshape(8, 8))

    async def task(name, seen):
        with fastdl.backend(name):
            for _ in range(5):
                await asyncio.sleep(0)
                seen.append(_backend.current())
                out = (x @ x).tanh().sum().item()
        return out

    async def main():
        a, b = [], []
        results = await asyncio.gather(task("cpu", a), task("reference", b))
        return results, a, b

    (cpu_sum, ref_sum), seen_cpu, seen_ref = asyncio.run(main())
    assert set(seen_cpu) == {"cpu"} and set(seen_ref) == {"reference"}
    assert cpu_sum == pytest.approx(ref_sum, rel=1e-5)
    assert _backend.current() == "cpu"
