"""Turning what users hand the data API (NumPy arrays, fastdl Tensors, pandas DataFrames and
Series, nested lists) into NumPy arrays, with errors that name the op and the bad column."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor


def is_pandas(x: Any) -> bool:
    """True for a pandas DataFrame or Series, without importing pandas."""
    return type(x).__module__.startswith("pandas") and hasattr(x, "to_numpy")


def is_dataframe(x: Any) -> bool:
    return is_pandas(x) and hasattr(x, "columns")


def column_names(x: Any) -> list | None:
    """A DataFrame's column names as strings (None for anything else)."""
    return [str(c) for c in x.columns] if is_dataframe(x) else None


def _first_non_numeric(series: Any) -> tuple[Any, Any] | None:
    """(row label, value) of the first entry of `series` that is not a number, or None."""
    import pandas as pd

    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna() & series.notna()
    if not bad.any():
        return None
    label = bad.idxmax()
    return label, series[label]


def _pandas_numeric(x: Any, op: str) -> np.ndarray:
    """A numeric DataFrame or Series as a NumPy array; NA becomes NaN."""
    import pandas as pd

    columns = [(c, x[c]) for c in x.columns] if is_dataframe(x) else [(x.name, x)]
    for name, col in columns:
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            continue
        where = _first_non_numeric(col)
        detail = f": row {where[0]!r} holds {where[1]!r}" if where else ""
        raise ValueError(
            f"[{op}] column {name!r} is not numeric (dtype {col.dtype}){detail}; "
            "convert it, or encode it with fastdl.data.OneHotEncoder first"
        )
    has_na = bool(x.isna().to_numpy().any())
    if has_na:
        return x.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = x.to_numpy()
    if arr.dtype == object:  # mixed nullable dtypes without NA
        arr = arr.astype(np.float64)
    return arr


def to_numpy(x: Any, op: str, *, numeric: bool = True) -> np.ndarray:
    """`x` as a NumPy array (no copy when it already is one; a Tensor's storage is shared).

    With numeric=True the result has a bool, integer or floating dtype, else ValueError names
    the op and (for pandas input) the offending column and row.
    """
    if isinstance(x, Tensor):
        arr = x._data
    elif isinstance(x, np.ndarray):
        arr = x
    elif is_pandas(x):
        if numeric:
            return _pandas_numeric(x, op)
        arr = x.to_numpy()
    else:
        try:
            arr = np.asarray(x)
        except ValueError as e:
            raise ValueError(
                f"[{op}] expected array-like data, got {type(x).__name__}: {e}"
            ) from None
    if numeric and arr.dtype.kind not in "biuf":
        raise ValueError(
            f"[{op}] expected numeric data (bool, int or float), got dtype {arr.dtype}"
        )
    return arr


def to_float(arr: np.ndarray) -> np.ndarray:
    """Floating arrays keep their dtype; integers and bools become float32 (the kernels' dtype)."""
    return arr if arr.dtype.kind == "f" else arr.astype(np.float32)


def as_2d(arr: np.ndarray, op: str) -> np.ndarray:
    """(n,) -> (n, 1); (n, f) stays; anything else is an error."""
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"[{op}] expected 2-D data (samples, features), got shape {arr.shape}")
    return arr


def like_input(result: np.ndarray, original: Any) -> Any:
    """A fastdl Tensor when the input was one, else the NumPy array."""
    if not isinstance(original, Tensor):
        return result
    return Tensor._make(result if result.flags.c_contiguous else result.copy(order="C"))
