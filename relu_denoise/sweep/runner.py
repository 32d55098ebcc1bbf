"""Running a sweep: claim its directory, plan the points, hand the tasks to an executor, keep the table current."""

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RecipeError
from ..files import LOCK, lock_dir
from . import executors
from .execute import tasks
from .plan import FINISHED, SUCCESS, plan
from .records import POINT_FILE
from .spec import Point, Sweep
from .table import run_rows, write_table


@dataclass
class Counts:
    """Progress of a sweep: points to run this time, and how the finished ones ended."""

    total: int             # points to run this time (not cached)
    cached: int = 0
    done: int = 0          # ran to an ending this time (interrupted ones excluded)
    failed: int = 0        # of those, ended failed
    interrupted: int = 0
    running: int = 0
    unreadable: int = 0    # not run: a run file cannot be read (plan.py)


class SweepEvents:
    """How a sweep reports progress. This default is silent; the CLI passes a rich one."""

    def progress(self, counts: Counts, name: str):
        """A context manager yielding `update(counts, point, rows)`, called after every finished point."""
        return contextlib.nullcontext(lambda counts, point, rows: None)


@dataclass
class SweepResult:
    """The finished (or stopped) sweep: its rows in point order, counts, and whether it was interrupted."""

    sweep: Sweep
    rows: list[dict]
    counts: Counts
    interrupted: bool
    finished: int          # points with rows

    @property
    def directory(self) -> Path:
        return self.sweep.directory

    @property
    def ok(self) -> bool:
        """Every point ran to ok or no-closed-form (exit status 0)."""
        return (not self.interrupted and self.finished == len(self.sweep.points)
                and all(r["status"] in SUCCESS for r in self.rows))


def run_sweep(sweep: Sweep, *, jobs: int | None = None, executor: str = "local", scheduler: str | None = None,
              events: SweepEvents = SweepEvents()) -> SweepResult:
    """Run the sweep's points that need it on `executor`, writing the table after every finished point."""
    jobs = check_executor(jobs, executor, scheduler)
    if scheduler is None:
        check_device(sweep.spec.command, sweep.spec.device, where=f"sweep {sweep.source.name}")
    spec = sweep.spec
    meta = {"name": spec.name, "command": spec.command, "recipe": str((sweep.source.parent / spec.recipe).resolve()),
            "sweep_file": str(sweep.source.resolve()), "keys": sweep.keys}
    with claim_sweep_dir(sweep.directory, holder=f"sweep {sweep.source}"):
        points = plan(sweep)
        table = run_points(sweep.directory, points, meta, jobs=jobs, executor=executor, scheduler=scheduler,
                           events=events, name=f"sweep {spec.name}")
        rows = table.rows()
        if rows and (table.counts.done or not (sweep.directory / "sweep.png").exists()):
            from ..plots import summary_figure

            summary_figure(sweep.directory / "sweep.png", rows, sweep.keys, spec.command, title=spec.name)
    return SweepResult(sweep, rows, table.counts, table.stopped, len(table.by_index))


def check_executor(jobs: int | None, executor: str, scheduler: str | None) -> int:
    """The job count (default: the cores here), after checking the executor options."""
    jobs = jobs or available_cores()
    if jobs < 1:
        raise RecipeError(f"--jobs: must be >= 1, got {jobs}")
    if executor not in ("local", "dask"):
        raise RecipeError(f"--executor: expected local or dask, got {executor!r}")
    if scheduler is not None and executor != "dask":
        raise RecipeError("--scheduler: only with --executor dask")
    return jobs


def check_device(command: str, device: str, *, where: str) -> None:
    """The device of the fits must exist here (on a remote cluster the workers' devices count)."""
    if command == "closed-form":
        return
    from ..train import resolve_device

    try:
        resolve_device(device)
    except RecipeError as exc:
        raise RecipeError(f"{where}: device: {exc}") from None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def claim_sweep_dir(directory: Path, *, holder: str):
    """Create the sweep directory and hold its lock (files.lock_dir) while the sweep runs; refuse a non-empty
    folder that is not a sweep's (a sweep never deletes what it did not write)."""
    if directory.exists() and not directory.is_dir():
        raise RecipeError(f"--out {directory}: exists and is not a directory")
    if directory.is_dir() and any(p.name != LOCK for p in directory.iterdir()) \
            and not (directory / "sweep.json").exists() and not any(directory.glob(f"*/{POINT_FILE}")):
        raise RecipeError(f"--out {directory}: not empty and not a sweep directory (no sweep.json); "
                          "choose another --out")
    lock = lock_dir(directory, holder=holder)
    try:
        yield
    finally:
        lock.release()


def run_points(directory: Path, points: list[Point], meta: dict, *, jobs: int, executor: str, scheduler,
               events: SweepEvents, name: str) -> "_Table":
    """Run the planned points (any commands) into `directory`, whose lock the caller holds: collect rows as
    points finish (any order), keep sweep.csv / sweep.json current, stop on an interruption."""
    threads = max(1, available_cores() // jobs) if executor == "local" or scheduler is None else None
    for p in points:
        p.threads, p.argv = threads, list(sys.argv)
    todo = [p for p in points if p.action not in ("cached", "unreadable")]
    meta = {**meta, "points": len(points)}
    table = _Table(directory, meta, Counts(total=len(todo), running=min(jobs, len(todo))), jobs)
    for p in points:
        if p.action in ("cached", "unreadable"):
            table.by_index[p.index] = run_rows(p.run_dir, p.keys)
            table.counts.cached += p.action == "cached"
            table.counts.unreadable += p.action == "unreadable"
    table.write()
    with events.progress(table.counts, name) as update:
        table.update = update
        run = {"local": executors.run_local if jobs > 1 else executors.run_here, "dask": executors.run_dask}[executor]
        stop = executors.StopFlag(directory / executors.STOP_FILE)
        stop.clear()                                  # left by a sweep that was killed while stopping
        try:
            if todo:
                run(tasks(todo, jobs), jobs, scheduler, table.add, stop)
        except KeyboardInterrupt:
            table.stopped = True
        finally:
            stop.clear()
    return table


@dataclass
class _Table:
    """The rows of the finished points and the counts, written to sweep.csv / sweep.json after every point."""

    directory: Path
    meta: dict
    counts: Counts
    jobs: int
    by_index: dict = field(default_factory=dict)      # point index -> its rows
    stopped: bool = False
    update: Any = None                                # the progress display's callback

    def rows(self) -> list[dict]:
        return [row for i in sorted(self.by_index) for row in self.by_index[i]]

    def write(self) -> None:
        write_table(self.directory, self.rows(), self.meta)

    def add(self, point: Point, rows: list[dict]) -> bool:
        """Record a finished point; True when the sweep must stop (the point was interrupted)."""
        if not rows:                                  # a worker skipped it: the sweep was stopping
            return self.stopped
        self.by_index[point.index] = rows
        status, c = rows[0]["status"], self.counts
        c.interrupted += status == "interrupted"
        c.done += status != "interrupted"
        c.failed += status not in FINISHED and status != "interrupted"
        c.running = max(0, min(self.jobs, c.total - c.done - c.interrupted))
        self.write()
        if self.update is not None:
            self.update(c, point, rows)
        self.stopped = self.stopped or status == "interrupted"
        return self.stopped
