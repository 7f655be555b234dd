"""`fastdl selftest`: every kernel of the cpu backend (and of the cuda backend, when a GPU and
CuPy are there) against the NumPy reference, on random inputs on this machine (the functions of
backends/INTERFACE.md), with a table of worst errors per backend.

Each case builds float32 inputs from a seeded generator, runs `reference.<fn>` and the
backend's on copies (on the GPU: device copies), and compares every output (for the in-place
optimizer steps: the updated parameters and state) by fastdl.testing's rule: |out - ref| <=
ATOL * scale + RTOL * |ref|, where scale is max(1, max |ref|), float32 tolerances. Integer
outputs (maxpool indices) must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from .testing import TOLERANCES, compare, run_backends

RTOL, ATOL = TOLERANCES[np.dtype(np.float32)]


@dataclass
class Result:
    function: str
    cases: int = 0
    worst_abs: float = 0.0
    worst_scaled: float = 0.0  # worst |cpu - ref| / (ATOL * scale + RTOL * |ref|); <= 1 passes
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# ---------------------------------------------------------------- cases


def _cases(rng: np.random.Generator) -> Iterator[tuple]:
    """(function, args, kwargs, in_place_outputs): in_place_outputs picks what to compare for
    functions that update their arguments (None: compare the return values)."""
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731

    for m, k, n in ((1, 1, 1), (37, 53, 29), (64, 3136, 128), (130, 7, 65)):
        for ta, tb in ((False, False), (True, False), (False, True), (True, True)):
            a = f32(k, m) if ta else f32(m, k)
            b = f32(n, k) if tb else f32(k, n)
            yield "matmul", (a, b), {"trans_a": ta, "trans_b": tb}, None
    yield "matmul", (f32(3, 17, 9), f32(3, 9, 11)), {}, None

    conv_shapes = [  # (N, C, H, W), (K, R, S), stride, padding
        ((2, 1, 28, 28), (32, 3, 3), (1, 1), (1, 1)),
        ((2, 32, 14, 14), (64, 3, 3), (1, 1), (1, 1)),
        ((3, 5, 11, 9), (4, 3, 2), (2, 1), (0, 2)),
        ((1, 2, 5, 5), (3, 5, 5), (1, 1), (0, 0)),
    ]
    for (nn_, c, h, w), (kk, r, s), stride, padding in conv_shapes:
        x, wt, b = f32(nn_, c, h, w), f32(kk, c, r, s), f32(kk)
        yield "conv2d_forward", (x, wt, b, stride, padding), {}, None
        y = _reference().conv2d_forward(x, wt, b, stride, padding)
        yield "conv2d_backward", (f32(*y.shape), x, wt, stride, padding), {}, None

    for shape, kernel, stride, padding in (
        ((2, 32, 28, 28), (2, 2), (2, 2), (0, 0)),
        ((2, 3, 9, 10), (3, 3), (2, 2), (1, 1)),
        ((1, 4, 7, 7), (2, 3), (1, 2), (0, 1)),
    ):
        x = f32(*shape)
        yield "maxpool2d_forward", (x, kernel, stride, padding), {}, None
        y, idx = _reference().maxpool2d_forward(x, kernel, stride, padding)
        yield "maxpool2d_backward", (f32(*y.shape), idx, shape), {}, None

    for shape, eps in (((4, 3, 25), 1e-5), ((1, 7, 512), 1e-5), ((64, 1, 1), 1e-3)):
        x = f32(*shape) * 2 + 1
        yield "norm_forward", (x, eps), {}, None
        _, mean, _, rstd = _reference().norm_forward(x, eps)
        yield "norm_backward", (f32(*shape), x, mean, rstd), {}, None

    for shape, kernel, stride, padding, ceil_mode, include, divisor in (
        ((2, 32, 28, 28), (2, 2), (2, 2), (0, 0), False, True, None),
        ((2, 3, 9, 10), (3, 3), (2, 2), (1, 1), True, False, None),
        ((1, 4, 7, 7), (2, 3), (1, 2), (0, 1), False, True, 5),
    ):
        options = (kernel, stride, padding, ceil_mode, include, divisor)
        x = f32(*shape)
        yield "avgpool2d_forward", (x, *options), {}, None
        y = _reference().avgpool2d_forward(x, *options)
        yield "avgpool2d_backward", (f32(*y.shape), shape, *options), {}, None
    for shape, out in (((2, 8, 14, 14), (1, 1)), ((2, 3, 14, 14), (5, 5)), ((1, 2, 7, 9), (3, 4))):
        x = f32(*shape)
        yield "adaptive_avgpool2d_forward", (x, out), {}, None
        yield "adaptive_avgpool2d_backward", (f32(*shape[:2], *out), shape), {}, None
        yield "adaptive_maxpool2d_forward", (x, out), {}, None

    for v, d, m, padding_idx in ((10, 4, 7, None), (1000, 128, 2240, 0), (5, 3, 0, 4)):
        indices = rng.integers(0, v, m).astype(np.int64)
        yield "embedding_backward", (f32(m, d), indices, v, padding_idx), {}, None

    for n, h in ((1, 1), (20, 128), (7, 33)):
        c, b = f32(n, h), f32(4 * h)
        yield "lstm_cell_forward", (f32(n, 4 * h), f32(n, 4 * h), b, c), {}, None
        _, _, act, tanh_c = _reference().lstm_cell_forward(f32(n, 4 * h), f32(n, 4 * h), b, c)
        for dc in (None, f32(n, h)):
            yield "lstm_cell_backward", (act, tanh_c, c, f32(n, h), dc), {}, None
        hh = f32(n, h)
        yield "gru_cell_forward", (f32(n, 3 * h), f32(n, 3 * h), f32(3 * h), hh), {}, None
        _, gact = _reference().gru_cell_forward(f32(n, 3 * h), f32(n, 3 * h), None, hh)
        yield "gru_cell_backward", (gact, hh, f32(n, h)), {}, None

    for name in ("relu", "sigmoid", "tanh"):
        for shape in ((1,), (1000,), (2, 32, 28, 28)):
            x = f32(*shape) * 3
            yield f"{name}_forward", (x,), {}, None
            y = getattr(_reference(), f"{name}_forward")(x)
            yield f"{name}_backward", (f32(*shape), y), {}, None

    for shape in ((2, 32, 28, 28), (3, 5, 7, 9), (64, 128), (1, 10)):
        yield "bias_relu_", (f32(*shape), f32(shape[1])), {}, (0,)
    for shape in ((2, 32, 28, 28), (3, 4, 7, 9)):
        x = f32(*shape)
        x[0, 0, :2, :2] = -1.0  # a window with no positive value: y is 0, no gradient
        yield "relu_maxpool2x2_forward", (x,), {}, None
        y, idx = _reference().relu_maxpool2x2_forward(x)
        yield "relu_maxpool2x2_backward", (f32(*y.shape), idx, y, shape), {}, None
    # the conv block: one input channel (the fused path), several (conv, then pool), stride 2
    for shape, k, stride, padding in (((2, 1, 28, 28), 32, 1, 1), ((3, 4, 9, 7), 5, 1, 1),
                                      ((2, 1, 11, 10), 3, 2, 0)):
        x, w, b = f32(*shape), f32(k, shape[1], 3, 3), f32(k)
        yield "conv2d_relu_maxpool2x2_forward", (x, w, b, stride, padding), {}, None
        y, codes = _reference().conv2d_relu_maxpool2x2_forward(x, w, b, stride, padding)
        for need in ((False, True, True), (True, True, True)):
            args = (f32(*y.shape), codes, y, x, w, stride, padding, *need)
            yield "conv2d_relu_maxpool2x2_backward", args, {}, None

    for n, c in ((1, 10), (64, 10), (37, 1000)):
        logits = f32(n, c) * 4
        labels = rng.integers(0, c, n).astype(np.int64)
        probs = rng.random((n, c)).astype(np.float32)
        probs /= probs.sum(1, keepdims=True)
        weight = rng.random(c).astype(np.float32) + 0.5
        for target, w in ((labels, None), (labels, weight), (probs, None)):
            for reduction in ("mean", "sum", "none"):
                kwargs = {"weight": w, "reduction": reduction}
                yield "cross_entropy_forward", (logits, target), kwargs, None
                _, log_probs = _reference().cross_entropy_forward(logits, target, **kwargs)
                dloss = f32(n) if reduction == "none" else np.array(rng.random(), np.float32)
                yield "cross_entropy_backward", (dloss, log_probs, target), kwargs, None

    shapes = [(32, 1, 3, 3), (32,), (128, 3136), (10,)]
    for momentum, nesterov, wd in ((0.0, False, 0.0), (0.9, False, 1e-4), (0.9, True, 0.0)):
        params = [f32(*s) for s in shapes]
        grads = [f32(*s) for s in shapes]
        bufs = [f32(*s) for s in shapes] if momentum else []
        yield (
            "sgd_step",
            (params, grads, bufs, 0.01),
            {"momentum": momentum, "nesterov": nesterov, "weight_decay": wd},
            (0, 2),
        )
    for step, decoupled in ((1, False), (7, True)):
        params = [f32(*s) for s in shapes]
        grads = [f32(*s) for s in shapes]
        m = [f32(*s) * 0.1 for s in shapes]
        v = [np.abs(f32(*s)) * 0.01 for s in shapes]
        yield (
            "adam_step",
            (params, grads, m, v, step, 1e-3, 0.9, 0.999, 1e-8),
            {"weight_decay": 0.01, "decoupled": decoupled},
            (0, 2, 3),
        )
    for centered, momentum in ((False, 0.0), (True, 0.9)):
        params, grads = [f32(*s) for s in shapes], [f32(*s) for s in shapes]
        g_avg = [f32(*s) * 0.01 for s in shapes] if centered else []
        sq = [np.abs(f32(*s)) + 0.01 for s in shapes]  # > g_avg^2: a real running variance
        bufs = [f32(*s) * 0.1 for s in shapes] if momentum else []
        yield (
            "rmsprop_step",
            (params, grads, sq, g_avg, bufs, 0.01, 0.99, 1e-8),
            {"weight_decay": 1e-4, "momentum": momentum, "centered": centered},
            (0, 2, 3, 4),
        )
    params, grads = [f32(*s) for s in shapes], [f32(*s) for s in shapes]
    sums = [np.abs(f32(*s)) for s in shapes]
    yield "adagrad_step", (params, grads, sums, 3, 0.01), {"lr_decay": 0.01}, (0, 2)
    params, grads = [f32(*s) for s in shapes], [f32(*s) for s in shapes]
    m, v = [f32(*s) * 0.1 for s in shapes], [np.abs(f32(*s)) * 0.01 for s in shapes]
    yield (
        "nadam_step",
        (params, grads, m, v, 2, 2e-3, 0.9, 0.999, 1e-8, 0.8),
        {"weight_decay": 0.01},
        (0, 2, 3),
    )


def _reference() -> Any:
    from .backends import reference

    return reference


def run(seed: int = 0, log: Callable[[str], None] = print) -> bool:
    """Run every case on the cpu backend, and on the cuda backend when a GPU is there; print a
    table of worst errors per backend; return True when all match."""
    from . import cuda
    from .backends import cpu

    ok = _run_backend(cpu, seed, log, lambda v: v, lambda v: v)
    why = cuda.unavailable_reason()
    if why is not None:
        log(f"cuda backend: not checked ({why})")
        return ok
    cp = cuda.device_type().lib.cp
    from .backends import cuda as cuda_backend

    def to_device(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return cp.asarray(v)
        return [to_device(x) for x in v] if isinstance(v, list) else v

    def to_host(v: Any) -> Any:
        return cp.asnumpy(v) if isinstance(v, cp.ndarray) else v

    return _run_backend(cuda_backend, seed, log, to_device, to_host) and ok


def _run_backend(backend: Any, seed: int, log: Callable[[str], None], to_device: Callable,
                 to_host: Callable) -> bool:
    """Every case on `backend` (its arguments moved by to_device, its outputs back by to_host)
    against the reference on the host; prints the table, returns True when all match."""
    results: dict = {}
    for name, args, kwargs, in_place in _cases(np.random.default_rng(seed)):
        res = results.setdefault(name, Result(name))
        res.cases += 1
        try:
            act, exp = run_backends(
                name, *args, backend=backend, in_place=in_place, to_device=to_device,
                to_host=to_host, **kwargs
            )
            for i, (a, e) in enumerate(zip(act, exp)):
                result = compare(a, e, name=f"output {i}")
                res.worst_abs = max(res.worst_abs, result.worst_abs)
                res.worst_scaled = max(res.worst_scaled, result.worst_ratio)
                if not result.ok:
                    raise AssertionError(result.describe(f"output {i}"))
        except Exception as e:  # noqa: BLE001 - every failure is reported in the table
            res.failures.append(f"case {res.cases}: {type(e).__name__}: {e}")

    log(
        f"fastdl selftest: {backend.name} backend vs NumPy reference (seed {seed}; "
        f"tolerance {ATOL:g} * max(1, max|ref|) + {RTOL:g} * |ref|)"
    )
    log(f"{'function':<24}{'cases':>6}{'worst abs err':>16}{'err/tolerance':>16}  status")
    for res in results.values():
        status = "ok" if res.ok else "MISMATCH"
        log(
            f"{res.function:<24}{res.cases:>6}{res.worst_abs:>16.3g}"
            f"{res.worst_scaled:>16.3g}  {status}"
        )
        for failure in res.failures[:3]:
            log(f"    {failure}")
    bad = [r.function for r in results.values() if not r.ok]
    total = sum(r.cases for r in results.values())
    if bad:
        log(f"FAILED: {len(bad)} of {len(results)} functions mismatch: {', '.join(bad)}")
    else:
        log(f"all {len(results)} functions match the reference ({total} cases)")
    return not bad
