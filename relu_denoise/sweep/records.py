"""What a sweep writes into a point's run directory beside the run's own files, and how it reads them back.

`sweep_point.json` records the swept values and the wall seconds of the point. Where a point ends before
or outside its run (no run directory yet, a run that never closed), the sweep records how it ended in the
manifest itself: status, reason, and for an error that is not one of the library's own, its traceback in
error.txt (as runs.Run.recording does inside a run).
"""

import sys
import traceback
from pathlib import Path

import yaml

from ..errors import RunError
from ..files import atomic_write_text, read_json, read_mapping, utc_now, write_json
from ..recipe import read_yaml, recipe_to_yaml
from ..runs import ERROR_FILE, ending, unexpected

POINT_FILE = "sweep_point.json"


def read_record(path: Path) -> dict:
    """A run file as a mapping; {} when it does not exist; RunError naming it when it cannot be read."""
    if not path.exists():
        return {}
    return read_json(path)


def read_recipe(run_dir: Path) -> dict:
    """The run's recipe.yaml as a mapping ({} when missing); RunError naming it when it cannot be read."""
    path = run_dir / "recipe.yaml"
    if not path.exists():
        return {}
    return read_mapping(path, read_yaml, errors=(yaml.YAMLError,), kind="a mapping of sections")


def manifest_of(run_dir: Path) -> dict:
    """The run's manifest; {} when there is none or it cannot be read (plan.py reports that one)."""
    try:
        return read_record(run_dir / "manifest.json")
    except RunError:
        return {}


def status_of(run_dir: Path) -> str | None:
    """The status the run's manifest records (None: no manifest, or one that cannot be read)."""
    return manifest_of(run_dir).get("status")


def recorded(run_dir: Path) -> bool:
    """Did the workflow create the run and record how it ended?"""
    return status_of(run_dir) not in (None, "running")


def clear_stale(run_dir: Path) -> None:
    """Before a fresh run: drop the files of an earlier attempt that would read as this run's (its result, its
    point record and traceback), and mark its manifest unfinished; the manifest's list of files stays, so the
    new run may replace them (files.claim_dir)."""
    for name in ("result.json", POINT_FILE, ERROR_FILE):
        (run_dir / name).unlink(missing_ok=True)
    mark_running(run_dir, "rerun by the sweep")


def mark_running(run_dir: Path, reason: str) -> None:
    """Mark the run's manifest unfinished (if it has one), so that how this attempt ends is recorded."""
    manifest = manifest_of(run_dir)
    if manifest:
        write_json(run_dir / "manifest.json", {**manifest, "status": "running", "reason": reason})


def record_interrupted(point) -> None:
    if not recorded(Path(point.run_dir)):
        record(point, "interrupted", "interrupted (SIGINT or SIGTERM) before the run started")


def record_failure(point, exc: BaseException) -> None:
    """Record how a point ended where its workflow could not (no run directory yet, or it never closed).

    An error that is not the library's own leaves its traceback in error.txt, and the reason says where,
    also when the run was closed without it (a group of fits closes every open run with the error's first
    line)."""
    run_dir = Path(point.run_dir)
    if not unexpected(exc):
        if not recorded(run_dir):
            record(point, *ending(exc))
        return
    error = run_dir / ERROR_FILE
    if error.exists():                           # the run recorded it (runs.Run.recording), pointer and all
        return
    status, reason = ending(exc)
    # a run that is closed was closed by this error only if it records the ending this error gives
    # (workflows.fit_many_workflow closes the open runs of a group with it); else it ended its own way before
    closed_by_it = recorded(run_dir) and manifest_of(run_dir).get("reason") == reason
    if recorded(run_dir) and not closed_by_it:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(error, _traceback(exc))
    reason = f"{reason} (traceback in {error})"
    if closed_by_it:
        write_json(run_dir / "manifest.json", {**manifest_of(run_dir), "reason": reason})
    else:
        record(point, status, reason)


def record(point, status: str, reason: str) -> None:
    """The run directory of a point that ended before its workflow made one (or closed it): recipe, manifest
    (what an earlier attempt's manifest holds beside, such as its files), no result."""
    run_dir = Path(point.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "result.json").unlink(missing_ok=True)
    atomic_write_text(run_dir / "recipe.yaml", recipe_to_yaml(point.recipe))
    now = utc_now()
    manifest = {"start": now, **manifest_of(run_dir), "command": point.command, "argv": list(point.argv or sys.argv),
                "seed": point.recipe.seed, "end": now, "status": status, "reason": reason}
    write_json(run_dir / "manifest.json", manifest)


def write_point_file(point, seconds: float, trained_with: int = 1, resume_abandoned: str | None = None) -> None:
    """sweep_point.json: the swept values, the wall seconds, the action and, where a resume was abandoned for a
    run from the start, why."""
    run_dir = Path(point.run_dir)
    if run_dir.is_dir():
        info = {"sweep": point.sweep, "index": point.index, "keys": point.keys, "values": point.values,
                "seconds": seconds, "action": point.action, "trained_with": trained_with}
        if resume_abandoned is not None:
            info["resume_abandoned"] = resume_abandoned
        write_json(run_dir / POINT_FILE, info)


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
