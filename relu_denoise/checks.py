"""Input gates: each converts one kind of input and validates it, or raises with a precise message.

Call them once at public entries, never deep in the mathematics (style.md, habit 4).
"""

from collections.abc import Mapping

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
    """Points (n, d) from a `.npy` file or a `.csv` with one point per row, after an optional header line of
    column names (a first line none of whose fields is a number, e.g. predictions.csv's y0,y1,...).

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
    header = 0
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            header = _csv_header(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an empty file warns; check_points reports it
                arr = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64, skiprows=header)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = _file_lines(reason, header)
        raise DataError(f"{name}: cannot read {path}: {reason}") from None
    return check_points(arr, name=f"{name} ({path})", d=d)


def _file_lines(reason: str, header: int) -> str:
    """numpy's loadtxt message with the file's own line numbers: it counts the rows after the skipped header,
    from 0 for a value it cannot convert and from 1 for a row with another number of fields."""
    import re

    changed = re.match(r"the number of columns changed from (\d+) to (\d+) at row (\d+)", reason)
    if changed:
        first, now, row = map(int, changed.groups())
        return f"line {row + header} has {now} field(s), the lines before {first}: write one point per row"
    return re.sub(r"at row (\d+)", lambda m: f"on line {int(m.group(1)) + 1 + header}", reason)


def _csv_header(path) -> int:
    """1 when the file's first line is a header of names (no field parses as a number), else 0: a first line with
    a number in it is data, and a malformed one is reported by the reader."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    fields = [v.strip() for v in first.split(",")]
    if not first.strip() or not all(fields):
        return 0

    def number(v: str) -> bool:
        try:
            float(v)
        except ValueError:
            return False
        return True

    return 0 if any(number(v) for v in fields) else 1


def check_samples(samples, points: np.ndarray, *, name: str = "samples") -> np.ndarray:
    """Offline samples as a finite float64 (N, M, d) array, M >= 1, for clean points (N, d)."""
    N, d = points.shape
    try:
        S = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers, got {type(samples).__name__} ({exc})") from None
    if S.ndim != 3 or S.shape[0] != N or S.shape[2] != d or S.shape[1] == 0:
        raise DataError(f"{name}: expected shape ({N}, M, {d}) with M >= 1 (M noisy samples of each of "
                        f"the {N} clean points), got {S.shape}")
    if not np.all(np.isfinite(S)):
        raise DataError(f"{name}: contains NaN or inf values")
    return S


def check_no_shared_samples(S: np.ndarray, *, name: str = "samples") -> None:
    """DataError where two samples of (N, M, d) coincide but belong to different clean points: no function
    maps one input to two outputs, so nothing interpolates them."""
    N, M, d = S.shape
    _, first, inverse = np.unique(S.reshape(-1, d), axis=0, return_index=True, return_inverse=True)
    owner = np.repeat(np.arange(N), M)
    clash = np.flatnonzero(owner[first[inverse.ravel()]] != owner)
    if len(clash):
        i, j = first[inverse.ravel()[clash[0]]], clash[0]
        raise DataError(f"{name}: {name}[{i // M}, {i % M}] and {name}[{j // M}, {j % M}] coincide but belong to "
                        f"different clean points ({i // M} and {j // M}); no function interpolates them: use less "
                        "noise or more distant points")


def check_rng(rng, *, name: str = "rng") -> np.random.Generator:
    """A numpy Generator, as given (style.md, habit 8: randomness is explicit)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_chunk(chunk, *, name: str = "chunk") -> int:
    """An int >= 1 (rows per streaming step)."""
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise DataError(f"{name}: must be an integer >= 1, got {chunk!r}")
    return int(chunk)


def check_network(net, *, d: int | None = None, name: str = "network"):
    """A ShallowDenoiser (of input dimension d when given)."""
    from .network import ShallowDenoiser

    if not isinstance(net, ShallowDenoiser):
        raise DataError(f"{name}: expected a ShallowDenoiser, got {type(net).__name__}")
    if d is not None and net.dim != d:
        raise DataError(f"{name}: a network on R^{net.dim}, but the points are in R^{d}")
    return net


def check_series(values, *, name: str, n: int | None = None) -> np.ndarray:
    """A list of numbers or None as a float64 (n,) array, None -> NaN."""
    try:
        arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected a list of numbers (None for unavailable), got {values!r:.80}") from None
    if n is not None and arr.shape != (n,):
        raise DataError(f"{name}: expected {n} values, got {arr.shape[0]}")
    return arr


def check_vector(values, *, name: str, n: int | None = None) -> np.ndarray:
    """A finite float64 (n,) array."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(K,)"
        raise DataError(f"{name}: expected shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name}: contains NaN or inf values")
    return arr


def check_rho(rho, *, name: str = "rho") -> float | None:
    """None, or a closed form's flat-zone radius as a finite float >= 0."""
    if rho is None:
        return None
    try:
        v = float(rho)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected a number or None, got {rho!r}") from None
    if not np.isfinite(v) or v < 0:
        raise DataError(f"{name}: must be >= 0, got {rho}")
    return v


def check_denoisers(denoisers, *, at_least_one: bool = True, name: str = "denoisers") -> dict:
    """A mapping name -> denoiser, as name -> its map (n, d) -> (n, d).

    A denoiser is an object with `predict` (the project's one protocol, `estimators.Denoiser`: a network, a
    closed form, a reference); a plain callable (n, d) -> (n, d) is taken as the map itself.
    """
    if not isinstance(denoisers, Mapping):
        raise DataError(f"{name}: expected a dict name -> denoiser (an object with predict), "
                        f"got {type(denoisers).__name__}")
    maps = {str(k): h.predict if callable(getattr(h, "predict", None)) else h for k, h in denoisers.items()}
    bad = [k for k, h in maps.items() if not callable(h)]
    if bad:
        raise DataError(f"{name}: values must have a predict method mapping (n, d) arrays to (n, d) arrays; "
                        f"without one: {', '.join(bad)}")
    if at_least_one and not maps:
        raise DataError(f"{name}: expected at least one denoiser, got an empty dict")
    return maps


def check_nets(nets, names, *, d: int, name: str = "nets") -> dict:
    """nets[key] for keys among `names` (the denoisers drawn), each a ShallowDenoiser on R^d; None entries dropped."""
    if nets is None:
        return {}
    if not isinstance(nets, Mapping):
        raise DataError(f"{name}: expected a dict name -> ShallowDenoiser, got {type(nets).__name__}")
    unknown = sorted(str(k) for k in nets if k not in names)
    if unknown:
        raise DataError(f"{name}: no denoiser named {', '.join(unknown)}; known: {', '.join(names)}")
    return {k: check_network(net, d=d, name=f"{name}[{k!r}]") for k, net in nets.items() if net is not None}


MEMINFO = "/proc/meminfo"


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: Linux's MemAvailable (free pages plus the page cache
    the kernel can reclaim), else the free pages; None where neither can be read."""
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


MEMORY_SHARE = 0.8      # a command may plan to use at most this share of the available memory


def check_memory(need: float, *, what: str, fix: str) -> None:
    """Refuse (RecipeError) before allocating when `need` bytes exceed MEMORY_SHARE of the available memory:
    "<what> needs about X GiB, more than the Y GiB available; <fix>"."""
    from .errors import RecipeError

    have = available_memory()
    if have is not None and need > MEMORY_SHARE * have:
        raise RecipeError(f"{what} needs about {need / 2**30:.3g} GiB, more than the {have / 2**30:.3g} GiB "
                          f"available; {fix}")
