"""What a sweep writes into a point's run directory beside the run's own files, and how it reads them back.

`sweep_point.json` records the swept values and the wall seconds of the point. Where a point ends before
or outside its run (no run directory yet, a run that never closed), the sweep records how it ended in the
manifest itself: status, reason, and for an error that is not one of the library's own, its traceback in
error.txt (as runs.Run.recording does inside a run).
"""

import sys
import traceback
from pathlib import Path

from ..errors import ReludenError, RunError
from ..files import atomic_write_text, read_json, utc_now, write_json
from ..recipe import recipe_to_yaml
from ..runs import ERROR_FILE, ending

POINT_FILE = "sweep_point.json"


def read_record(path: Path) -> dict:
    """A run file as a mapping; {} when it does not exist; RunError naming it when it cannot be read."""
    if not path.exists():
        return {}
    return read_json(path)


def status_of(run_dir: Path) -> str | None:
    """The status the run's manifest records (None: no manifest, or one that cannot be read)."""
    try:
        return read_record(run_dir / "manifest.json").get("status")
    except RunError:
        return None


def recorded(run_dir: Path) -> bool:
    """Did the workflow create the run and record how it ended?"""
    return status_of(run_dir) not in (None, "running")


def clear_stale(run_dir: Path) -> None:
    """Before a fresh run: drop the files of an earlier attempt that would read as this run's (its result, its
    point record and traceback), and mark its manifest unfinished; the manifest's list of files stays, so the
    new run may replace them (files.claim_dir)."""
    for name in ("result.json", POINT_FILE, ERROR_FILE):
        (run_dir / name).unlink(missing_ok=True)
    try:
        manifest = read_record(run_dir / "manifest.json")
    except RunError:
        return
    if manifest:
        write_json(run_dir / "manifest.json", {**manifest, "status": "running", "reason": "rerun by the sweep"})


def record_interrupted(point) -> None:
    if not recorded(Path(point.run_dir)):
        record(point, "interrupted", "interrupted (SIGINT or SIGTERM) before the run started")


def record_failure(point, exc: BaseException) -> None:
    """Record how a point ended when its workflow could not (no run directory yet, or it never closed)."""
    if recorded(Path(point.run_dir)):
        return
    record(point, *ending(exc))


def record(point, status: str, reason: str) -> None:
    """The run directory of a point that ended before its workflow made one: recipe, manifest, no result."""
    run_dir = Path(point.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "result.json").unlink(missing_ok=True)
    atomic_write_text(run_dir / "recipe.yaml", recipe_to_yaml(point.recipe))
    now = utc_now()
    manifest = {"command": point.command, "argv": list(point.argv or sys.argv), "seed": point.recipe.seed, "start": now, "end": now,
                "status": status, "reason": reason}
    write_json(run_dir / "manifest.json", manifest)


def write_point_file(point, seconds: float, trained_with: int = 1) -> None:
    run_dir = Path(point.run_dir)
    if run_dir.is_dir():
        info = {"sweep": point.sweep, "index": point.index, "keys": point.keys, "values": point.values,
                "seconds": seconds, "action": point.action, "trained_with": trained_with}
        write_json(run_dir / POINT_FILE, info)


def unexpected(exc: BaseException) -> bool:
    """An error the library does not raise on purpose (a bug, or one from below it)."""
    return isinstance(exc, Exception) and not isinstance(exc, (ReludenError, MemoryError))


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
