"""Atomic file writes and JSON conversion: the one place every module writes through.

A file is written under a unique temporary name in its own folder and renamed over the target,
so a crash never leaves a half-written file that looks complete, and two writers never share a
temporary name.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a fresh temporary path beside `path`, then rename it to `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def to_jsonable(obj):
    """numpy / torch scalars and arrays to plain Python, NaN/inf to None (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
