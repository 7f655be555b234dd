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
