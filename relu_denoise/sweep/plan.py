"""What each point needs this time, read from its run directory: cached, resume, run or unreadable."""

from pathlib import Path

from ..errors import RunError
from .records import POINT_FILE, read_recipe, read_record
from .spec import Sweep

FINISHED = ("ok", "not-converged", "no-closed-form")      # cached by a rerun
SUCCESS = ("ok", "no-closed-form")                         # exit status 0


def plan(sweep: Sweep) -> list:
    """Set each point's action from its run directory: cached (finished), resume (an interrupted fit), run,
    or unreadable. `force` reruns every point but an unreadable one: the sweep cannot tell what such a directory
    holds, so it leaves it alone (its row says which file to repair, or to delete the directory)."""
    return plan_points(sweep.points, force=sweep.force)


def plan_points(points: list, *, force: bool) -> list:
    """`plan` for any points (a sweep's, or reproduce's runs of several commands)."""
    for p in points:
        action = point_action(Path(p.run_dir), p.command)
        p.action = "run" if force and action != "unreadable" else action
    return points


def point_action(run_dir: Path, command: str) -> str:
    """cached: the run finished (its result is there); resume: an interrupted fit with a checkpoint; run;
    unreadable: its manifest, result, point record or recipe cannot be read (hand-edited, truncated)."""
    try:
        manifest = read_record(run_dir / "manifest.json")
        for name in ("result.json", POINT_FILE):
            read_record(run_dir / name)
        read_recipe(run_dir)
    except RunError:
        return "unreadable"
    status = manifest.get("status")
    if status in FINISHED and ((run_dir / "result.json").is_file() or status == "no-closed-form"):
        return "cached"
    if command == "fit" and status in ("interrupted", "running") and (run_dir / "checkpoint.pt").is_file():
        return "resume"
    return "run"
