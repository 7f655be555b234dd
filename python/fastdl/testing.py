"""fastdl.testing: one rule for "close enough", used by the test suite, `fastdl selftest` and the
bench's check of each kernel against the reference.

An output passes when every element satisfies

    |actual - expected| <= atol * scale + rtol * |expected|,   scale = max(1, max |expected|)

so sums of many float32 products are judged against the size of the values they came from.
NaNs must sit at the same places on both sides; integer outputs (maxpool indices) must match
exactly. The default (rtol, atol) depend on the dtype (`TOLERANCES`).

    >>> import numpy as np
    >>> from fastdl.testing import assert_close, assert_backends_match
    >>> assert_close(np.float32([1.0, 2.0]), np.float32([1.0, 2.00001]))
    >>> _ = assert_backends_match("relu_forward", np.float32([-1.0, 2.0]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "TOLERANCES",
    "Comparison",
    "assert_backends_match",
    "assert_close",
    "compare",
    "compare_backends",
    "relative_error",
    "run_backends",
]

# (rtol, atol) per dtype: float32 kernels against a reference computed in float32 differ by the
# order of summation; float64 leaves room only for that order.
TOLERANCES = {
    np.dtype(np.float32): (1e-4, 1e-5),
    np.dtype(np.float64): (1e-9, 1e-11),
}


def _tolerance(dtype, rtol, atol) -> tuple:
    default = TOLERANCES.get(np.dtype(dtype), TOLERANCES[np.dtype(np.float32)])
    return (default[0] if rtol is None else rtol), (default[1] if atol is None else atol)


@dataclass
class Comparison:
    """The worst element of one output: its absolute error and that error over what was allowed
    (<= 1 passes; inf for differing integers), with where it was and the two values."""

    worst_abs: float = 0.0
    worst_ratio: float = 0.0
    index: int = 0
    actual: float = 0.0
    expected: float = 0.0
    allowed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.worst_ratio <= 1.0

    def describe(self, name: str = "output") -> str:
        if self.worst_ratio == float("inf"):
            return f"{name}: {int(self.worst_abs)} integer entries differ, first at {self.index}"
        return (
            f"{name}: worst error {self.worst_abs:.3g} at flat index {self.index} "
            f"(actual {self.actual:.7g}, expected {self.expected:.7g}, allowed {self.allowed:.3g})"
        )


def compare(actual, expected, *, rtol=None, atol=None, scale=None, name="output") -> Comparison:
    """The worst element of `actual` against `expected` under the rule above. Raises
    AssertionError when the two cannot be compared: one side None, or different shapes, dtypes
    or NaN positions. Two Nones compare equal."""
    if actual is None or expected is None:
        assert actual is None and expected is None, f"{name}: one side is None"
        return Comparison()
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape, f"{name}: shape {a.shape} != {e.shape}"
    assert a.dtype == e.dtype, f"{name}: dtype {a.dtype} != {e.dtype}"
    if a.dtype.kind in "iub":
        bad = np.flatnonzero(a != e)
        if bad.size:
            return Comparison(float(bad.size), float("inf"), int(bad[0]))
        return Comparison()
    rtol, atol = _tolerance(a.dtype, rtol, atol)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    assert np.array_equal(nan_a, nan_e), f"{name}: NaN positions differ"
    if a64.size == 0:
        return Comparison()
    a64, e64 = np.where(nan_a, 0.0, a64), np.where(nan_e, 0.0, e64)
    if scale is None:
        scale = max(1.0, float(np.abs(e64).max()))
    with np.errstate(invalid="ignore", divide="ignore"):  # equal infs; a zero tolerance
        err = np.where(a64 == e64, 0.0, np.abs(a64 - e64))
        allowed = atol * scale + rtol * np.abs(e64)
        ratio = np.where(err == 0, 0.0, err / allowed)
    worst = int(np.argmax(ratio))
    return Comparison(
        float(err.max()),
        float(ratio.flat[worst]),
        worst,
        float(a64.flat[worst]),
        float(e64.flat[worst]),
        float(allowed.flat[worst]),
    )


def assert_close(actual, expected, *, rtol=None, atol=None, scale=None, name="output") -> None:
    """Raise AssertionError, naming the worst element, unless `actual` is close to `expected`."""
    result = compare(actual, expected, rtol=rtol, atol=atol, scale=scale, name=name)
    assert result.ok, result.describe(name)


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _copy(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def run_backends(
    op: str, *args, backend="cpu", in_place=None, to_device=None, to_host=None, **kwargs
) -> tuple:
    """Run `reference.<op>` and the backend's `<op>` (`backend`: a name under fastdl.backends,
    or the module) on copies of the same arguments; returns (backend outputs, reference outputs)
    as two lists of host arrays. For a function that updates its arguments, `in_place` lists the
    argument positions (each a list of arrays) to compare instead of the return values. For a
    device backend, `to_device` moves an argument there and `to_host` an output back."""
    import importlib

    from .backends import reference

    fast = importlib.import_module(f"fastdl.backends.{backend}") if isinstance(backend, str) else backend
    ref_args, fast_args = _copy(list(args)), _copy(list(args))
    if to_device is not None:
        fast_args = [to_device(a) for a in fast_args]
    expected = getattr(reference, op)(*ref_args, **kwargs)
    actual = getattr(fast, op)(*fast_args, **kwargs)
    if in_place is not None:
        expected = [a for i in in_place for a in ref_args[i]]
        actual = [a for i in in_place for a in fast_args[i]]
    actual, expected = _outputs(actual), _outputs(expected)
    if to_host is not None:
        actual = [to_host(a) for a in actual]
    assert len(actual) == len(expected), f"{op}: returned {len(actual)} values, expected {len(expected)}"
    return actual, expected


def compare_backends(op: str, *args, rtol=None, atol=None, backend="cpu", in_place=None, **kwargs):
    """`run_backends`, then `compare` on every output: a list of Comparisons."""
    actual, expected = run_backends(op, *args, backend=backend, in_place=in_place, **kwargs)
    return [
        compare(a, e, rtol=rtol, atol=atol, name=f"{op} output {i}")
        for i, (a, e) in enumerate(zip(actual, expected))
    ]


def assert_backends_match(op: str, *args, rtol=None, atol=None, backend="cpu", **kwargs):
    """Raise AssertionError unless every output of `<backend>.<op>` is close to the reference's
    on the same arguments; returns the backend's output as the function returned it."""
    actual, expected = run_backends(op, *args, backend=backend, **kwargs)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, rtol=rtol, atol=atol, name=f"{op} output {i}")
    return actual[0] if len(actual) == 1 else tuple(actual)


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected| over the arrays of two outputs (an array, or a
    tuple of arrays and Nones); inf when their numbers or shapes differ."""
    ours = [np.asarray(x, dtype=np.float64) for x in _outputs(actual) if x is not None]
    theirs = [np.asarray(x, dtype=np.float64) for x in _outputs(expected) if x is not None]
    if len(ours) != len(theirs) or any(a.shape != b.shape for a, b in zip(ours, theirs)):
        return float("inf")
    worst = 0.0
    for a, b in zip(ours, theirs):
        scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-30)
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)) / scale)
    return worst
