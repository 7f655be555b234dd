"""One helper that holds a fast backend to the NumPy reference.

    assert_backends_match("conv2d_forward", x, w, b, (1, 1), (1, 1))

runs the named backend function on the reference and on the cpu backend with the same
arguments, compares every array it returns (tuples and None included) with a tolerance scaled
to float32 and to the size of the values, and reports the worst error on failure.
"""

from __future__ import annotations

import numpy as np

from fastdl.backends import cpu, reference


def _flatten(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def assert_close(actual, expected, *, rtol=1e-4, atol=1e-5, scale=None, name="output"):
    """Compare two arrays with |a - e| <= atol * scale + rtol * |e|, where scale defaults to the
    largest magnitude in `expected` (so sums of many float32 products are judged fairly)."""
    if expected is None or actual is None:
        assert actual is None and expected is None, f"{name}: one side is None"
        return
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype.kind in "iub":
        bad = np.flatnonzero(actual != expected)
        assert bad.size == 0, f"{name}: {bad.size} integer entries differ, first at {bad[0]}"
        return
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), f"{name}: NaN positions differ"
    a, e = np.where(nan_a, 0, a), np.where(nan_e, 0, e)
    if scale is None:
        scale = max(1.0, float(np.abs(e).max(initial=0.0)))
    err = np.abs(a - e)
    allowed = atol * scale + rtol * np.abs(e)
    worst = int(np.argmax(err - allowed)) if err.size else 0
    assert np.all(err <= allowed), (
        f"{name}: worst error {err.flat[worst]:.3g} at flat index {worst} "
        f"(actual {a.flat[worst]:.7g}, expected {e.flat[worst]:.7g}, allowed {allowed.flat[worst]:.3g})"
    )


def assert_backends_match(op: str, *args, rtol=1e-4, atol=1e-5, **kwargs):
    """Run backends.reference.<op> and backends.cpu.<op> on copies of the same arguments and
    compare every returned array. Returns the cpu backend's output."""

    def copy(v):
        if isinstance(v, np.ndarray):
            return v.copy()
        if isinstance(v, list):
            return [copy(x) for x in v]
        return v

    expected = getattr(reference, op)(*[copy(a) for a in args], **kwargs)
    actual = getattr(cpu, op)(*[copy(a) for a in args], **kwargs)
    exp_list, act_list = _flatten(expected), _flatten(actual)
    assert len(exp_list) == len(act_list), f"{op}: returned {len(act_list)} values, expected {len(exp_list)}"
    for i, (a, e) in enumerate(zip(act_list, exp_list)):
        assert_close(a, e, rtol=rtol, atol=atol, name=f"{op} output {i}")
    return actual
