"""Executors: the same `run_task` in this process, in a pool of local worker processes, or on a Dask cluster.

Each takes the tasks, the job count, the scheduler address, `finished(point, rows) -> stop?`, called once
per point as its task ends, and the sweep's StopFlag. Ctrl-C (and SIGTERM) stops a sweep: running points
record their state (a fit saves a checkpoint), pending ones are dropped, and KeyboardInterrupt reaches the
caller.
"""

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import RecipeError, RunError
from . import records
from .execute import run_task, task_rows


STOP_FILE = ".reluden.stop"


@dataclass(frozen=True)
class StopFlag:
    """"The sweep is stopping: start no more tasks", as a file in the sweep directory: a plain value handed to
    every task, that reaches spawned workers and Dask workers (which share the sweep directory) alike. The
    sweep clears it when it starts and when it ends."""

    path: Path

    def set(self) -> None:
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def guarded_task(points: list, stop: StopFlag | None = None) -> list[list[dict]]:
    """run_task inside a worker process, with the points' torch threads (restored after); Ctrl-C ends only
    this task.

    Idle workers ignore SIGINT (the local pool's initializer); while a task runs the first SIGINT
    interrupts it (the trainer saves a checkpoint) and later ones are ignored. Returns [] for every point
    without running when `stop` was set before it started (the sweep is stopping).
    """
    from ..train.devices import threads_set

    if stop is not None and stop.is_set():
        return [[] for _ in points]
    with threads_set(points[0].threads):
        try:
            with interrupt_on(signal.SIGINT, once=True):
                return run_task(points)
        except KeyboardInterrupt:
            return task_rows(points)


@contextlib.contextmanager
def interrupt_on(signum: int, *, once: bool = False):
    """While the block runs, `signum` raises KeyboardInterrupt in the main thread (`once`: only the first time,
    so a worker's Ctrl-C stops its point once and lets it record its state)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit = []

    def handler(signum, frame):
        if not (once and hit):
            hit.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _ignore_sigint() -> None:
    """Initializer of the local pool's worker processes, which are the sweep's own: they ignore the terminal's
    SIGINT while idle (the sweep's process decides when to stop)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _report(task: list, rows: list[list[dict]], finished) -> bool:
    """Hand every point's rows of a finished task to `finished`; True when the sweep must stop."""
    stop = False
    for p, r in zip(task, rows):
        stop = finished(p, r) or stop
    return stop


# ---------------------------------------------------------------- in this process


def run_here(todo: list[list], jobs, scheduler, finished, stop: StopFlag) -> None:
    """One job: the tasks run one after another in this process."""
    for task in todo:
        try:
            rows = run_task(task)
        except KeyboardInterrupt:
            _report(task, task_rows(task), finished)
            raise
        if _report(task, rows, finished):
            return


# ---------------------------------------------------------------- local worker processes


def run_local(todo: list[list], jobs: int, scheduler, finished, stop: StopFlag) -> None:
    """`jobs` long-lived spawned worker processes; on Ctrl-C the pending tasks are dropped and the running
    ones interrupted (they save a checkpoint) and recorded before the table is written."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_sigint)
    futures = {pool.submit(guarded_task, task, stop): task for task in todo}
    handled = set()
    try:
        with interrupt_on(signal.SIGTERM):
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    handled.add(f)
                    if _report(futures[f], _rows_of(f, futures[f]), finished):
                        raise KeyboardInterrupt
    except KeyboardInterrupt:
        stop.set()
        _stop_local(pool, {f: p for f, p in futures.items() if f not in handled}, finished)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _rows_of(future, task: list) -> list[list[dict]]:
    try:
        return future.result()
    except Exception as exc:                      # a worker died (killed, out of memory): record and go on
        for p in task:
            if not records.recorded(Path(p.run_dir)):
                records.record(p, "failed", f"worker process failed: {type(exc).__name__}: {exc}")
        return task_rows(task)


def _stop_local(pool, futures: dict, finished) -> None:
    """Cancel what has not started; give running points 2 s to see the terminal's SIGINT, then forward one;
    record the rows of every point that ended."""
    from concurrent.futures import wait

    running = [f for f in futures if not f.cancel()]
    _, late = wait(running, timeout=2.0)
    if late:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):   # the stdlib has no public handle
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGINT)
    wait(running, timeout=120)
    for f in running:
        if f.done():                               # a point's [] : the worker saw the stop before starting it
            _report(futures[f], _rows_of(f, futures[f]), finished)


# ---------------------------------------------------------------- Dask


def run_dask(todo: list[list], jobs: int, scheduler: str | None, finished, stop: StopFlag) -> None:
    """Tasks (points, or fits trained together) as tasks of a Dask cluster: `scheduler`'s, or a LocalCluster of
    `jobs` single-thread processes."""
    try:
        from distributed import as_completed
    except ImportError:
        raise RecipeError("--executor dask: dask.distributed is not installed; "
                          "pip install 'relu-denoise[dask]'") from None
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(_dask_client(scheduler, jobs, stack))
        futures = {client.submit(guarded_task, task, stop, pure=False,
                                 key=f"point-{task[0].index}-{Path(task[0].run_dir).name}"): task for task in todo}
        try:
            with interrupt_on(signal.SIGTERM):
                for f in as_completed(futures):
                    if _report(futures[f], _rows_of(f, futures[f]), finished):
                        break
        finally:
            stop.set()                             # what a worker has not started yet, it skips
            client.cancel(list(futures))


def _dask_client(scheduler: str | None, jobs: int, stack: contextlib.ExitStack):
    """A Client of `scheduler`, or of a LocalCluster of `jobs` single-thread worker processes (entered on
    `stack`)."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        try:
            cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, silence_logs=logging.ERROR))
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise RunError(f"--executor dask: the LocalCluster did not start ({exc})") from None
        return Client(cluster)
    try:
        return Client(scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RecipeError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
