"""Files: atomic writes, JSON conversion and reading, and claiming a directory for one writer.

A file is written under a unique temporary name in its own folder, flushed to disk and renamed
over the target, so neither a crash nor a power loss leaves a half-written or empty file that
looks complete, and two writers never share a temporary name. Files get the mode the user's
umask gives (colleagues and Dask workers on a shared file system can read them).

A directory is claimed by an advisory lock (`flock`) on a lock file inside it, taken before
anything in it changes: the kernel drops the lock when its process dies, so a killed run never
leaves a lock that blocks the next one, and two writers can never both hold it.
"""

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import RunError


def _umask() -> int:
    mask = os.umask(0)           # the only way to read it; restored at once (one process-wide value)
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a fresh temporary path beside `path`, then make it `path` atomically.

    The file is fsynced before the rename and the folder after it, and gets mode 0666 & ~umask.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:                               # some file systems cannot sync a directory
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path, obj) -> Path:
    """`obj` (through `to_jsonable`) as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


NON_FINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def to_jsonable(obj):
    """numpy / torch scalars and arrays to plain Python. JSON has no inf or NaN: they become the strings
    "inf", "-inf" and "nan" (README, For scripts), so a script can tell an infinite gap from a value that
    was not computed (null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return "nan" if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_json(path, *, what: str | None = None) -> dict:
    """A JSON object from `path`; RunError naming the file when it is missing, unreadable, not JSON or not an
    object (a hand-edited or truncated file)."""
    return read_mapping(path, json.loads, errors=(json.JSONDecodeError,), what=what, kind="a JSON object")


def read_mapping(path, parse: Callable[[str], object], *, errors: tuple = (), what: str | None = None,
                 kind: str = "a mapping") -> dict:
    """`parse(text)` of the file at `path`, which must give a dict; RunError naming the file when it is missing,
    unreadable, does not parse (`errors`) or is not a mapping."""
    path = Path(path)
    name = what or path.name
    try:
        data = parse(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: no {name}") from None
    except (OSError, UnicodeDecodeError, *errors) as exc:
        raise RunError(f"{path}: {name} is unreadable ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: {name} is not {kind} (got {type(data).__name__})")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second (manifests, sweep records)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- claiming a directory


LOCK = ".reluden.lock"     # a name no user folder is likely to hold


class DirLock:
    """A held lock on a directory; `release()` (or the process's end) frees it."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)                        # closing drops the flock
        self._fd = None


def lock_dir(folder: Path, *, holder: str = "") -> DirLock:
    """Create `folder` (and parents) and take its lock, or RunError naming the lock and its holder.

    `holder` is written into the lock file beside the pid (what a refusal shows the other writer).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{folder}: cannot create the directory ({exc.strerror})") from None
    lock = folder / LOCK
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
        except OSError as exc:
            raise RunError(f"{folder}: cannot create its lock {lock} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunError(f"{folder}: another reluden process is writing there (lock {lock}: "
                           f"{_lock_owner(lock)}); wait for it or choose another --out") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:              # not a lock file its last holder unlinked while we waited to lock it
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}{' ' + holder if holder else ''}\n".encode())
    return DirLock(lock, fd)


def _lock_owner(lock: Path) -> str:
    try:
        return lock.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def claim_dir(folder, *, force: bool, owned: Callable[[Path], Iterable[str]], kind: str = "run",
              holder: str = "") -> DirLock:
    """Take `folder` for one writer: lock it first, then, if it is not empty, empty it only when `force` is
    given and every entry in it is one this tool wrote (`owned(folder)` names them); refuse anything else with
    what the folder holds. Returns the held lock.

    owned(folder): the names of the entries the tool may delete there (for a run directory: the files its
    manifest lists); a folder without one of ours gives an empty list.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"--out {folder}: exists and is not a directory")
    lock = lock_dir(folder, holder=holder)
    try:
        entries = sorted(p.name for p in folder.iterdir() if p.name != LOCK)
        if entries:
            _empty_if_ours(folder, entries, set(owned(folder)), force=force, kind=kind)
    except BaseException:
        lock.release()
        raise
    return lock


def _empty_if_ours(folder: Path, entries: list[str], ours: set[str], *, force: bool, kind: str) -> None:
    if not ours:
        raise RunError(f"--out {folder}: not empty and not a reluden {kind} directory ({_listing(entries)}); "
                       "reluden never deletes files it did not write: choose another --out")
    foreign = [e for e in entries if e not in ours and not _is_temporary(e)]
    if foreign:
        raise RunError(f"--out {folder}: holds files reluden did not write ({_listing(foreign)}); "
                       "move them away or choose another --out")
    if not force:
        raise RunError(f"--out {folder}: not empty; give --force to replace the earlier {kind} there "
                       f"({_listing(entries)}), or choose another --out")
    for name in entries:
        child = folder / name
        if child.is_dir() and not child.is_symlink():
            raise RunError(f"--out {folder}: holds a folder {name}/; reluden writes no folders in a {kind} "
                           "directory: move it away or choose another --out")
        child.unlink()


def _is_temporary(name: str) -> bool:
    """A temporary file of `atomic_write` (".stem.XXXX.tmp.suffix") left by a killed writer."""
    return name.startswith(".") and ".tmp" in name


def _listing(names: list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown
