"""`fastdl selftest`: every kernel of the cpu backend against the NumPy reference, on random
inputs on this machine (the functions of backends/INTERFACE.md), with a table of worst errors.

Each case builds float32 inputs from a seeded generator, runs `reference.<fn>` and `cpu.<fn>`
on copies, and compares every output (for the in-place optimizer steps: the updated parameters
and state) by fastdl.testing's rule: |cpu - ref| <= ATOL * scale + RTOL * |ref|, where scale is
max(1, max |ref|), float32 tolerances. Integer outputs (maxpool indices) must match exactly.
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
        sq = [np.abs(f32(*s)) for s in shapes]
        g_avg = [f32(*s) * 0.01 for s in shapes] if centered else []
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
    """Run every case, print the table of worst errors, return True when all match."""
    results: dict = {}
    for name, args, kwargs, in_place in _cases(np.random.default_rng(seed)):
        res = results.setdefault(name, Result(name))
        res.cases += 1
        try:
            act, exp = run_backends(name, *args, in_place=in_place, **kwargs)
            for i, (a, e) in enumerate(zip(act, exp)):
                result = compare(a, e, name=f"output {i}")
                res.worst_abs = max(res.worst_abs, result.worst_abs)
                res.worst_scaled = max(res.worst_scaled, result.worst_ratio)
                if not result.ok:
                    raise AssertionError(result.describe(f"output {i}"))
        except Exception as e:  # noqa: BLE001 - every failure is reported in the table
            res.failures.append(f"case {res.cases}: {type(e).__name__}: {e}")

    log(
        f"fastdl selftest: cpu backend vs NumPy reference (seed {seed}; "
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
