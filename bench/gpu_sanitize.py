"""Every CUDA kernel once on small, odd shapes, for `compute-sanitizer --tool memcheck` (run by
bench/gpu_check.sh). CuPy's memory pool is switched off first, so each array is its own
cudaMalloc and an out-of-bounds access is not hidden inside a pooled block. Exits non-zero when
a result differs from the reference.
    compute-sanitizer --tool memcheck python bench/gpu_sanitize.py
"""

from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    import fastdl

    if not fastdl.cuda.is_available():
        print(f"gpu_sanitize: nothing to run: {fastdl.cuda.unavailable_reason()}")
        return 1
    import cupy as cp
    from fastdl.backends import cuda, reference

    cp.cuda.set_allocator(None)  # plain cudaMalloc per array
    fastdl.cuda.device_type()
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def same(got, want, name, tol=1e-3):
        got, want = cp.asnumpy(got), np.asarray(want)
        if not np.allclose(got, want, rtol=tol, atol=tol / 10, equal_nan=True):
            print(f"gpu_sanitize: {name} differs from the reference")
            return 1
        return 0

    bad = 0
    for ta in (False, True):
        for tb in (False, True):
            a, b = r(2, 7, 13) if not ta else r(2, 13, 7), r(2, 13, 5) if not tb else r(2, 5, 13)
            bad += same(
                cuda.matmul(cp.asarray(a), cp.asarray(b), ta, tb),
                reference.matmul(a, b, ta, tb),
                f"matmul {ta} {tb}",
            )
    cuda.matmul.allow_tf32 = True
    a, b = r(130, 9), r(9, 131)
    bad += same(cuda.matmul(cp.asarray(a), cp.asarray(b)), a @ b, "matmul tf32", tol=1e-2)
    cuda.matmul.allow_tf32 = False
    x, w, bias = r(2, 3, 9, 7), r(5, 3, 3, 2), r(5)
    y = cuda.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(bias), (2, 1), (1, 0))
    bad += same(y, reference.conv2d_forward(x, w, bias, (2, 1), (1, 0)), "conv2d_forward")
    dy = r(*y.shape)
    got = cuda.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w), (2, 1), (1, 0))
    want = reference.conv2d_backward(dy, x, w, (2, 1), (1, 0))
    for g, e, n in zip(got, want, ("dx", "dw", "db")):
        bad += same(g, e, f"conv2d_backward {n}")
    x = r(2, 3, 7, 5)
    y, idx = cuda.maxpool2d_forward(cp.asarray(x), (3, 2), (2, 2), (1, 1))
    yr, ir = reference.maxpool2d_forward(x, (3, 2), (2, 2), (1, 1))
    bad += same(y, yr, "maxpool2d_forward")
    dy = r(*y.shape)
    bad += same(
        cuda.maxpool2d_backward(cp.asarray(dy), idx, x.shape),
        reference.maxpool2d_backward(dy, ir, x.shape),
        "maxpool2d_backward",
    )
    for act in ("relu", "sigmoid", "tanh"):
        x = r(1001)
        y = getattr(cuda, f"{act}_forward")(cp.asarray(x))
        bad += same(y, getattr(reference, f"{act}_forward")(x), f"{act}_forward")
        bad += same(
            getattr(cuda, f"{act}_backward")(cp.asarray(x), y),
            getattr(reference, f"{act}_backward")(x, cp.asnumpy(y)),
            f"{act}_backward",
        )
    logits, t = r(37, 11), rng.integers(0, 11, 37)
    for red in ("none", "mean", "sum"):
        loss, lp = cuda.cross_entropy_forward(cp.asarray(logits), cp.asarray(t), reduction=red)
        bad += same(loss, reference.cross_entropy_forward(logits, t, reduction=red)[0], f"ce {red}")
        dl = r(37) if red == "none" else np.float32(1.5)
        bad += same(
            cuda.cross_entropy_backward(cp.asarray(dl), lp, cp.asarray(t), reduction=red),
            reference.cross_entropy_backward(dl, cp.asnumpy(lp), t, reduction=red),
            f"ce backward {red}",
        )
    shapes = [(5,), (3, 7), (70001,)]
    ps = [cp.asarray(r(*s)) for s in shapes]
    gs = [cp.asarray(r(*s)) for s in shapes]
    cuda.sgd_step(ps, gs, [cp.zeros(s, cp.float32) for s in shapes], 0.1, momentum=0.9)
    cuda.adam_step(
        ps,
        gs,
        [cp.zeros(s, cp.float32) for s in shapes],
        [cp.zeros(s, cp.float32) for s in shapes],
        1,
        1e-3,
        0.9,
        0.999,
        1e-8,
        max_exp_avg_sqs=[cp.zeros(s, cp.float32) for s in shapes],
    )
    fastdl.cuda.synchronize()
    print("gpu_sanitize: every kernel ran" + ("" if not bad else f"; {bad} results differ"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
