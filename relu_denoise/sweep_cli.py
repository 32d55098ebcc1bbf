"""`reluden sweep` and `reluden collect`: thin Typer commands over relu_denoise.sweep.

cli.py registers them: `app.command("sweep")(sweep_command)`, `app.command("collect")(collect_command)`.
Bad input raises RecipeError or typer.BadParameter (cli maps them to one line and exit status 2);
human output goes to stderr, `--json` data to stdout.
"""

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True, highlight=False)


def sweep_command(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP.yaml", help="Sweep file: name, command "
                          "(closed-form | fit | compare | align), recipe (relative to the sweep file), grid "
                          "(recipe key -> list of values, or 'START:STOP' for integers) and set (fixed "
                          "overrides). Examples in recipes/sweeps/.", show_default=False)],
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Points run at once (worker "
                    "processes, or LocalCluster workers with --executor dask). Each worker gets cores // jobs "
                    "torch threads. Default: the number of cores; 1 runs the points in this process.",
                    show_default=False)] = None,
    executor: Annotated[str, typer.Option(help="local: worker processes on this machine; dask: tasks on a "
                        "Dask cluster (--scheduler ADDRESS, or a LocalCluster of --jobs workers; needs "
                        "pip install 'relu-denoise[dask]').")] = "local",
    scheduler: Annotated[Optional[str], typer.Option(metavar="ADDRESS", help="Dask scheduler to submit to, "
                         "e.g. tcp://host:8786 (--executor dask). Default: a LocalCluster on this machine.",
                         show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Sweep directory (one run directory per point, "
                   "sweep.csv, sweep.json, sweep.png). Default: results/sweep/NAME/.", show_default=False)] = None,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", metavar="KEY=VALUES", help="Sweep a recipe key: "
                    "--grid noise.sigma=0.01,0.02 or --grid seed=0:3 (0, 1, 2); replaces the file's grid for "
                    "that key, adds it otherwise (repeatable).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Rerun every point, finished ones too.")] = False,
    figures: Annotated[Optional[bool], typer.Option("--figures/--no-figures", help="Each point's own figures "
                       "(fit.png, training.png, ...). Default: the sweep file's `figures`, else off (faster).",
                       show_default=False)] = None,
    batch: Annotated[Optional[bool], typer.Option("--batch/--no-batch", help="fit sweeps: train the fits that "
                     "share a data shape (seeds, noise levels) together as one network with stacked weights; the "
                     "results are the same, bit for bit. Default: the sweep file's `batch`, else on.",
                     show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table's rows to stdout as a JSON array of "
                       "objects (the rows of sweep.json).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or summary on stderr.")] = False,
):
    """Run a grid of runs of one command: cached, resumable, on local processes or a Dask cluster.

    Each point of the grid (the cartesian product of the swept keys, last key fastest) is an
    ordinary run directory under the sweep directory, named by a hash of its command and
    resolved recipe. Running the sweep again skips finished points (ok, not-converged,
    no-closed-form), resumes interrupted fits from their checkpoint and reruns failed ones;
    --force reruns all. A failing point never stops the others. Ctrl-C stops the sweep: running
    fits save a checkpoint, and the next run finishes only the rest.

    After every finished point, sweep.csv and sweep.json hold one row per point: the swept keys
    (columns named by the dotted recipe key), status, reason, run_dir, seconds and the scalar
    results (cost, cost_ratio, max_residual, function_gap, aligned_fraction ...; compare: one row
    per noise level and estimator with its test MSE). sweep.png plots the main metric against
    the first swept key.

    On a batch system, start a cluster with dask-jobqueue (e.g. SLURMCluster(cores=1,
    processes=1, memory="4GB"); cluster.scale(jobs=20)) and pass its scheduler_address to
    --scheduler; the workers need relu_denoise installed and the sweep directory on a shared
    file system.

    Exit status: 0 when every point ended ok or no-closed-form; 1 when one failed, did not
    converge or the sweep was interrupted; 2 bad sweep file or options (nothing runs).
    """
    from .sweep import load_sweep, run_sweep

    if scheduler is not None and executor != "dask":
        raise typer.BadParameter("--scheduler needs --executor dask", param_hint="--scheduler")
    if executor not in ("local", "dask"):
        raise typer.BadParameter(f"expected local or dask, got {executor!r}", param_hint="--executor")
    sweep = load_sweep(sweep_file, grid=grid or [], out=out, force=force, figures=figures, batch=batch)
    result = run_sweep(sweep, jobs=jobs, executor=executor, scheduler=scheduler, events=RichSweepEvents(quiet))
    if as_json:
        from .files import to_jsonable

        sys.stdout.write(json.dumps(to_jsonable(result.rows), indent=2) + "\n")
    if not quiet:
        _show_sweep(result)
    if not result.ok:
        raise typer.Exit(1)


class RichSweepEvents:
    """Progress of a sweep on stderr: points done / to run, running, failed, cached, elapsed and ETA."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    @contextlib.contextmanager
    def progress(self, counts, sweep):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("[bold]{task.description}[/]"), BarColumn(bar_width=20),
                   TextColumn("{task.completed}/{task.total} done"),
                   TextColumn("{task.fields[running]} running  {task.fields[failed]} failed  "
                              "{task.fields[cached]} cached"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=err, disable=self.quiet, transient=False) as bar:
            task = bar.add_task(f"sweep {sweep.spec.name}", total=counts.total, running=counts.running, failed=0,
                                cached=counts.cached)

            def update(counts, point, rows) -> None:
                bar.update(task, completed=counts.done, running=counts.running, failed=counts.failed,
                           cached=counts.cached)

            yield update


def _show_sweep(result) -> None:
    from collections import Counter

    points, c = len(result.sweep.points), result.counts
    statuses = Counter(rows_status(result.rows))
    if points > result.finished:
        statuses["not started"] = points - result.finished
    parts = ", ".join(f"{n} {s}" for s, n in statuses.most_common())
    head = "[red]interrupted[/]: " if result.interrupted else ""
    err.print(f"{head}{points} points: {parts} (ran {c.done}, cached {c.cached})", soft_wrap=True)
    shown = 0
    for r in _first_rows(result.rows):
        if r["status"] not in ("ok", "no-closed-form") and shown < 5:
            shown += 1
            err.print(f"  {r['status']}: {Path(r['run_dir']).name}: {r.get('reason') or ''}", soft_wrap=True)
    if result.interrupted:
        err.print("run the same command again to finish the remaining points", soft_wrap=True)
    err.print(f"table: [bold]{result.directory / 'sweep.csv'}[/]", soft_wrap=True)


def _first_rows(rows: list[dict]) -> list[dict]:
    """The first row of each point (compare has several rows per point)."""
    return list({r["run_dir"]: r for r in reversed(rows)}.values())[::-1]


def rows_status(rows: list[dict]) -> list[str]:
    """One status per point."""
    return [r["status"] for r in _first_rows(rows)]


def collect_command(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Run directories, sweep directories or "
                     "any folders holding run directories (searched recursively).", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows to stdout as a JSON array of "
                       "objects.")] = False,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", metavar="FILE", help="Write the rows as CSV to "
                        "FILE (tidy: one row per run; compare: one per noise level and estimator).",
                        show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table on stderr.")] = False,
):
    """Gather the results of run directories into one table, as a sweep does.

    Finds every run directory (a folder with a manifest.json) under the PATHs: sweeps, single
    runs, results of hand-made shell loops. Columns: the keys a sweep swept (or, for runs made
    by hand, the recipe keys whose values differ between the runs), command, status, reason,
    run_dir, seconds and the scalar results. Prints a summary table on stderr; --json prints the
    rows to stdout, --csv writes them to a file. In Python, relu_denoise.sweep.collect_frame(paths)
    returns the same rows as a pandas DataFrame.
    """
    from .errors import RecipeError
    from .files import atomic_write_text, to_jsonable
    from .sweep import collect, to_csv

    rows = collect(paths)
    if not rows:
        raise RecipeError(f"collect: no run directories (folders with a manifest.json) under "
                          f"{', '.join(map(str, paths))}")
    if csv_file is not None:
        atomic_write_text(csv_file, to_csv(rows))
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(rows), indent=2) + "\n")
    if not quiet:
        _show_rows(rows)
        if csv_file is not None:
            err.print(f"wrote {csv_file}", soft_wrap=True)


_SHOWN = ("cost", "cost_ratio", "max_residual_rel", "aligned_fraction", "noise", "estimator", "mse", "geometry")


def _show_rows(rows: list[dict], limit: int = 40) -> None:
    from .sweep import columns

    cols = columns(rows)
    common = ("command", "status", "reason", "run_dir", "seconds")
    keys = cols[:cols.index("command")] if "command" in cols else []
    shown = [*keys, "status", *(c for c in _SHOWN if c in cols)]
    table = Table(title=f"{len(rows)} rows ({len(set(r['run_dir'] for r in rows))} runs)", title_justify="left")
    for c in shown:
        table.add_column(c, justify="left" if c in ("status", "estimator", "geometry") or c in common else "right")
    for r in rows[:limit]:
        table.add_row(*(_cell(r.get(c)) for c in shown))
    err.print(table)
    if len(rows) > limit:
        err.print(f"... {len(rows) - limit} more rows (--json or --csv for all)")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
