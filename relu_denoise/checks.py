"""Input gates: each converts one kind of input and validates it, or raises with a precise message.

Call them once at public entries, never deep in the mathematics (style.md, habit 4).
"""

import numpy as np

from .errors import DataError


def check_points(x, *, name: str = "points", d: int | None = None) -> np.ndarray:
    """Return `x` as a finite float64 array of shape (n, d), n >= 1.

    A 1-D array of length n is read as n points in one dimension.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers, got {type(x).__name__} ({exc})") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DataError(f"{name}: expected shape (n, d) with n >= 1, got {arr.shape}; write one point per row")
    if d is not None and arr.shape[1] != d:
        raise DataError(f"{name}: expected shape (n, {d}), got {arr.shape}; write one point per row")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name}: contains NaN or inf values")
    return arr


def output_dtype(y) -> np.dtype:
    """The dtype a denoiser's output keeps: the input's float dtype, float64 otherwise (style.md, habit 8)."""
    dtype = np.asarray(y).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def check_positive(value, *, name: str) -> float:
    """Return `value` as a finite float > 0."""
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise DataError(f"{name}: must be > 0, got {value}")
    return v


def read_points_file(path, *, name: str, d: int | None = None) -> np.ndarray:
    """Points (n, d) from a `.npy` file or a `.csv` with one point per row and no header.

    Every problem (missing file, unknown suffix, unreadable or non-numeric content, wrong shape)
    is one DataError line that starts with `name`.
    """
    import warnings
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{name}: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise DataError(f"{name}: expected a .npy or .csv file, got {path.name}")
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an empty file warns; check_points reports it
                arr = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name}: cannot read {path}: {reason}") from None
    return check_points(arr, name=f"{name} ({path})", d=d)
