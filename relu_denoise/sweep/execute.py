"""Running points: one point (`run_point`), or a task of fits trained together (`run_task`); every executor
calls `run_task`. A point's failure is recorded in its run directory and returned as its rows: it never stops
the other points.
"""

import json
import time
from pathlib import Path

from ..errors import RecipeError, ReludenError, TrainingError
from ..files import utc_now
from . import records
from .table import run_rows


def run_point(point) -> list[dict]:
    """Run (or resume) one point into its run directory unless cached, and return its table rows.

    Any failure is recorded in the run directory (status failed and the reason; for an error that is not the
    library's own, its traceback in error.txt) and returned as rows: it never raises, except
    KeyboardInterrupt, which the point's records show as interrupted.
    """
    if point.action != "cached":
        start = time.perf_counter()
        abandoned = _execute(point)
        records.write_point_file(point, time.perf_counter() - start, resume_abandoned=abandoned)
    return run_rows(point.run_dir, point.keys)


def _execute(point) -> str | None:
    """The point's command into its run directory, every ending recorded there; returns why a resume was
    abandoned for a run from the start (None: no resume, or it ended the point)."""
    abandoned, facts, run_dir = None, _facts(point), Path(point.run_dir)
    try:
        if point.action == "resume":
            before = records.manifest_of(run_dir)
            abandoned = _resume(point, before)
            if abandoned is None:
                return None
            facts["resumes"] = [*before.get("resumes", []), {
                "start": utc_now(), "from_status": before.get("status"), "argv": point.argv,
                "abandoned": abandoned, "then": "the point ran again from step 0"}]
        _run_command(point, run_dir, facts)
    except KeyboardInterrupt:
        records.record_interrupted(point)
        raise
    except Exception as exc:                     # noqa: BLE001 (recorded: a failing point never stops the others)
        records.record_failure(point, exc)
    return abandoned


def _resume(point, before: dict) -> str | None:
    """Continue the point's fit from its checkpoint; None when that ended the point, else why it could not.

    A resumed fit that is interrupted or diverges has ended (its run recorded it; from step 0 the fit would
    take the same steps again). Only the library's own errors abandon the resume (a checkpoint or run file that
    cannot be used, TrainingError bad-checkpoint, RunError ...); anything else (a bug) propagates, to be
    recorded as the point's failure with its traceback.
    """
    from .. import workflows

    try:
        workflows.resume_fit(point.run_dir, device=point.options["device"], figures=point.options["figures"],
                             argv=point.argv or None)
    except TrainingError as exc:
        if exc.reason in ("interrupted", "diverged"):
            return None
        return f"resume failed ({exc.reason}): {exc}"
    except ReludenError as exc:
        return f"resume failed: {exc}"
    except Exception:
        if records.manifest_of(Path(point.run_dir)) == before:    # it failed before the run was reopened
            records.mark_running(Path(point.run_dir), "resumed by the sweep")
        raise
    return None


def _run_command(point, run_dir: Path, facts: dict) -> None:
    from .. import workflows

    records.clear_stale(run_dir)
    recipe, base, o = point.recipe, point.base_dir, point.options
    common = {"out": run_dir, "force": True, "figures": o["figures"], "facts": facts}
    if point.command == "closed-form":
        workflows.closed_form_workflow(recipe, base, **common)
    elif point.command == "fit":
        workflows.fit_workflow(recipe, base, device=o["device"], **common)
    elif point.command == "compare":
        workflows.compare_workflow(recipe, base, noise=recipe.compare.noise, repeats=recipe.compare.repeats,
                                   n_test=recipe.compare.n_test, nn=o["nn"], device=o["device"], **common)
    elif point.command == "align":
        workflows.align_workflow(recipe, base, tolerance=o["tolerance"], device=o["device"], **common)
    elif point.command == "certify":
        workflows.certify_workflow(recipe, base, time_limit=o["time_limit"], tol=o["tol"], device=o["device"],
                                   **common)
    else:                                       # flow: every option is in the recipe's flow section
        workflows.flow_workflow(recipe, base, device=o["device"], **common)


def _facts(point) -> dict:
    """What the sweep adds to the point's manifest: the sweep's command line (a worker's own is not it)."""
    return {"argv": list(point.argv)} if point.argv else {}


# ---------------------------------------------------------------- tasks: a point, or fits trained together


def tasks(points: list, jobs: int) -> list[list]:
    """What the executors run: one point each, except fits to run from the start that may train together
    (`_batch_key`): those go into one task, in at most `jobs` tasks per key so that every worker gets some.
    Which of a task's fits are stepped together is train's decision (`run_task`)."""
    out, groups = [], {}
    for p in points:
        key = _batch_key(p)
        if key is None:
            out.append([p])
        else:
            groups.setdefault(key, []).append(p)
    for members in groups.values():
        k = min(jobs, len(members))
        out += [members[i::k] for i in range(k)]              # interleaved: long and short fits in each
    return sorted(out, key=lambda task: task[0].index)


def _batch_key(point) -> str | None:
    """A coarse key: fits that share it may train together, so they go into one task (None: a task alone).

    train has the final word: train.fit_many steps together only the fits that train.loop.groupable accepts
    (equal shapes and sections, at step 0, on the CPU) and trains the others of the task one at a time. This
    key only keeps apart what train would train alone anyway (a method whose row is not groupable, online
    noise, a device other than this machine's CPU), which in one task would run one after another in one
    worker instead of side by side.
    """
    from ..train.methods import method

    if point.command != "fit" or point.action != "run" or not point.options.get("batch"):
        return None
    recipe, device = point.recipe, point.options.get("device", "auto")
    if not method(recipe.train.method).groupable or recipe.noise.mode == "online" or not _on_cpu(device):
        return None
    return json.dumps([recipe.data.kind, recipe.noise.samples, recipe.model.model_dump(mode="json"),
                       recipe.train.model_dump(mode="json"), device], sort_keys=True)


def _on_cpu(device: str) -> bool:
    """Whether `device` resolves to this machine's CPU; a device that only remote workers have counts as not."""
    from ..train import resolve_device

    try:
        return resolve_device(device).type == "cpu"
    except RecipeError:
        return False


def run_task(points: list) -> list[list[dict]]:
    """Run a task (`tasks`) and return each point's rows; the fits of a group go through train together. Each
    point of a group records an equal share of the group's wall time as its `seconds`, and `trained_with`, the
    size of the group train stepped it in (its result's)."""
    if len(points) == 1:
        return [run_point(points[0])]
    start = time.perf_counter()
    trained_with = _execute_together(points)
    seconds = (time.perf_counter() - start) / len(points)
    for p in points:
        records.write_point_file(p, seconds, trained_with=trained_with.get(p.index, 1))
    return task_rows(points)


def task_rows(points: list) -> list[list[dict]]:
    """The rows each point's run directory holds now."""
    return [run_rows(p.run_dir, p.keys) for p in points]


def _execute_together(points: list) -> dict:
    """The points' fits through workflows.fit_many_workflow; point index -> the size of the group it trained in."""
    from .. import workflows

    for p in points:
        records.clear_stale(Path(p.run_dir))
    o = points[0].options
    jobs = [(p.recipe, p.base_dir, p.run_dir) for p in points]
    try:
        outcomes = workflows.fit_many_workflow(jobs, device=o["device"], figures=o["figures"],
                                               facts=_facts(points[0]))
    except KeyboardInterrupt:
        for p in points:
            records.record_interrupted(p)
        raise
    except Exception as exc:                     # noqa: BLE001 (a bug: recorded with its traceback, the sweep goes on)
        for p in points:
            records.record_failure(p, exc)
        return {}
    trained_with = {}
    for p, outcome in zip(points, outcomes):
        if isinstance(outcome, Exception):
            records.record_failure(p, outcome)
        else:
            trained_with[p.index] = outcome.result.get("trained_with", 1)
    return trained_with
