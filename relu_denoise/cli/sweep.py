"""`reluden sweep` and `reluden collect`: batches of runs, over relu_denoise.sweep.

Like every command, their errors end through app.ENDINGS (bad sweep files and options: one line, exit 2);
progress goes to stderr, the summary to stdout, or to stderr when stdout carries data (`--json`, `collect
--csv -`).
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import render
from .app import RichEvents, json_option, app, summary

SweepArg = Annotated[Path, typer.Argument(metavar="SWEEP.yaml", help="Sweep file: name, command (closed-form | fit "
                     "| compare | align), recipe (relative to the sweep file), grid (recipe key -> list of values, or "
                     "'START:STOP' for integers) and set (fixed overrides). Examples in recipes/sweeps/.",
                     show_default=False)]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Points run at once (worker processes, "
                    "or LocalCluster workers with --executor dask). Each worker gets cores // jobs torch threads. "
                    "Default: the number of cores; 1 runs the points in this process (easiest to debug).",
                    show_default=False)]
ExecutorOpt = Annotated[str, typer.Option(help="local: worker processes on this machine; dask: tasks on a Dask "
                        "cluster (--scheduler ADDRESS, or a LocalCluster of --jobs workers; needs pip install "
                        "'relu-denoise[dask]'). Use dask to spread a sweep over the nodes of a batch system.")]
SchedulerOpt = Annotated[Optional[str], typer.Option(metavar="ADDRESS", help="Dask scheduler to submit to, e.g. "
                         "tcp://host:8786 (--executor dask only). Default: a LocalCluster on this machine.",
                         show_default=False)]
SweepOutOpt = Annotated[Optional[Path], typer.Option("--out", help="Sweep directory (one run directory per point, "
                        "sweep.csv, sweep.json, sweep.png). Default: results/sweep/NAME/, so that running the same "
                        "sweep again finds its finished points.", show_default=False)]
GridOpt = Annotated[Optional[list[str]], typer.Option("--grid", metavar="KEY=VALUES", help="Sweep a recipe key: "
                    "--grid noise.sigma=0.01,0.02 or --grid seed=0:3 (0, 1, 2); replaces the file's grid for that "
                    "key, adds it otherwise (repeatable). Default: the file's grid.", show_default=False)]
RerunOpt = Annotated[bool, typer.Option("--force", help="Rerun every point, finished ones too (after a change "
                     "of the code). Without it finished points are cached.")]
PointFiguresOpt = Annotated[Optional[bool], typer.Option("--figures/--no-figures", help="Each point's own figures "
                            "(fit.png, training.png, ...). Default: the sweep file's `figures`, else off (faster); "
                            "sweep.png is drawn either way.", show_default=False)]
BatchOpt = Annotated[Optional[bool], typer.Option("--batch/--no-batch", help="fit sweeps: train the fits that share "
                     "a data shape (seeds, noise levels) together as one network with stacked weights; the results "
                     "are the same, bit for bit. Default: the sweep file's `batch`, else on; --no-batch to time "
                     "points alone.", show_default=False)]
RowsJsonOpt = Annotated[bool, typer.Option("--json", callback=json_option, help="Print the table's rows to stdout "
                        "as a JSON array of objects (the rows of sweep.json), for scripts; the summary then goes to "
                        "stderr.")]


@app.command("sweep")
def sweep(sweep_file: SweepArg, jobs: JobsOpt = None, executor: ExecutorOpt = "local",
          scheduler: SchedulerOpt = None, out: SweepOutOpt = None, grid: GridOpt = None, force: RerunOpt = False,
          figures: PointFiguresOpt = None, batch: BatchOpt = None, as_json: RowsJsonOpt = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or "
                                              "summary.")] = False):
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
    from ..sweep import load_sweep, run_sweep

    spec = load_sweep(sweep_file, grid=grid or [], out=out, force=force, figures=figures, batch=batch)
    result = run_sweep(spec, jobs=jobs, executor=executor, scheduler=scheduler, events=RichEvents(quiet))
    if as_json:
        _print_json(result.rows)
    if not quiet:
        render.sweep(result)
    if not result.ok:
        raise typer.Exit(1)


@app.command("collect")
def collect(paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Run directories, sweep "
                             "directories or any folders holding run directories (searched recursively).",
                             show_default=False)],
            as_json: Annotated[bool, typer.Option("--json", callback=json_option, help="Print the rows to stdout "
                               "as a JSON array of objects, for scripts; the tables then go to stderr.")] = False,
            csv_file: Annotated[Optional[Path], typer.Option("--csv", metavar="FILE", help="Write the rows as CSV "
                                "to FILE, or to stdout with --csv - (tidy: one row per run; compare: one per noise "
                                "level and estimator; every column). Default: no CSV.", show_default=False)] = None,
            quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No tables.")] = False):
    """Gather the results of run directories into one table, as a sweep does.

    Finds every run directory (a folder with a manifest.json) under the PATHs: sweeps, single
    runs, results of hand-made shell loops. Columns: the keys a sweep swept (or, for runs made
    by hand, the recipe keys whose values differ between the runs), command, status, reason,
    run_dir, seconds and the scalar results. Prints one table per command with the columns its
    rows fill (on stdout; on stderr with --json or --csv -); --json prints every row to stdout,
    --csv FILE writes them as CSV (--csv - to stdout). In Python,
    relu_denoise.sweep.collect_frame(paths) returns the same rows as a pandas DataFrame.
    """
    from ..errors import RecipeError
    from ..files import atomic_write_text
    from ..sweep import collect as collect_rows
    from ..sweep import to_csv

    to_stdout = csv_file is not None and str(csv_file) == "-"
    if to_stdout and as_json:
        raise typer.BadParameter("--csv - and --json both print to stdout; give one, or --csv FILE",
                                 param_hint="--csv")
    rows = collect_rows(paths)
    if not rows:
        raise RecipeError(f"collect: no run directories (folders with a manifest.json) under "
                          f"{', '.join(map(str, paths))}")
    summary.to_stderr = as_json or to_stdout
    if to_stdout:
        sys.stdout.write(to_csv(rows))
    elif csv_file is not None:
        atomic_write_text(csv_file, to_csv(rows))
    if as_json:
        _print_json(rows)
    if not quiet:
        render.rows(rows)
        if csv_file is not None and not to_stdout:
            summary.print(f"wrote {csv_file}", soft_wrap=True, markup=False)


def _print_json(rows: list[dict]) -> None:
    from ..files import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(rows), indent=2) + "\n")
