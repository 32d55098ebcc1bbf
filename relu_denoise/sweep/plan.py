"""What each point needs this time, read from its run directory: cached, resume or run."""

from pathlib import Path

from ..errors import RunError
from .records import read_record
from .spec import Sweep

FINISHED = ("ok", "not-converged", "no-closed-form")      # cached by a rerun
SUCCESS = ("ok", "no-closed-form")                         # exit status 0


def plan(sweep: Sweep) -> list:
    """Set each point's action from its run directory: cached (finished), resume (an interrupted fit), run."""
    for p in sweep.points:
        p.action = "run" if sweep.force else point_action(Path(p.run_dir), p.command)
    return sweep.points


def point_action(run_dir: Path, command: str) -> str:
    """cached: the run finished (its result is there); resume: an interrupted fit with a checkpoint; run."""
    try:
        manifest = read_record(run_dir / "manifest.json")
    except RunError:
        manifest = {}
    status = manifest.get("status")
    if status in FINISHED and ((run_dir / "result.json").is_file() or status == "no-closed-form"):
        return "cached"
    if command == "fit" and status in ("interrupted", "running") and (run_dir / "checkpoint.pt").is_file():
        return "resume"
    return "run"
