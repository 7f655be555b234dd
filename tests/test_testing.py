"""fastdl.testing: the one tolerance rule of the tests, `fastdl selftest` and the bench."""

import numpy as np
import pytest

from fastdl.testing import (
    TOLERANCES,
    assert_backends_match,
    assert_close,
    compare,
    compare_backends,
    relative_error,
)


def test_tolerance_scales_with_the_largest_value():
    expected = np.float32([1000.0, 0.0])
    # atol * scale = 1e-5 * 1000 = 1e-2 allows 5e-3 next to a zero
    assert_close(np.float32([1000.0, 5e-3]), expected)
    with pytest.raises(AssertionError, match="flat index 1"):
        assert_close(np.float32([1000.0, 5e-2]), expected)


def test_defaults_depend_on_the_dtype():
    assert TOLERANCES[np.dtype(np.float64)][0] < TOLERANCES[np.dtype(np.float32)][0]
    e = np.array([1.0, 2.0])
    assert compare(e + 1e-6, e).ok is False  # too far for float64
    assert compare((e + 1e-6).astype(np.float32), e.astype(np.float32)).ok is True


def test_structural_mismatches_raise():
    with pytest.raises(AssertionError, match="shape"):
        compare(np.zeros(2), np.zeros(3))
    with pytest.raises(AssertionError, match="dtype"):
        compare(np.zeros(2, np.float32), np.zeros(2))
    with pytest.raises(AssertionError, match="NaN positions"):
        compare(np.float32([np.nan, 1]), np.float32([1, np.nan]))
    with pytest.raises(AssertionError, match="one side is None"):
        compare(None, np.zeros(1))
    assert compare(None, None).ok


def test_integers_must_match_exactly_and_infinities_compare_equal():
    result = compare(np.int64([1, 2, 3]), np.int64([1, 5, 3]))
    assert not result.ok and result.index == 1
    assert "1 integer entries differ" in result.describe()
    assert compare(np.float32([np.inf, -np.inf, np.nan]), np.float32([np.inf, -np.inf, np.nan])).ok
    assert not compare(np.float32([np.inf]), np.float32([1.0])).ok


def test_zero_tolerance_accepts_only_equal_values():
    assert_close(np.float32([0.0, 2.0]), np.float32([0.0, 2.0]), rtol=0, atol=0)
    with pytest.raises(AssertionError):
        assert_close(np.float32([0.0, 2.0]), np.float32([0.0, 2.0000002]), rtol=0, atol=0)


def test_backends_are_compared_on_every_output():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    results = compare_backends("maxpool2d_forward", x, (2, 2), (2, 2), (0, 0))
    assert len(results) == 2 and all(r.ok for r in results)
    y = assert_backends_match("relu_forward", x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_relative_error():
    assert relative_error(np.float32([2.0, 4.0]), np.float32([2.0, 3.0])) == pytest.approx(1 / 3)
    assert relative_error((np.zeros(2), None), (np.zeros(2), None)) == 0.0
    assert relative_error(np.zeros(2), np.zeros(3)) == float("inf")
