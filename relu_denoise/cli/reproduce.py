"""`reluden reproduce`: every claim of the two papers as a measured row, in one report (relu_denoise.reproduce)."""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import render
from .app import FitDeviceOpt, QuietOpt, RichEvents, app, json_option
from .sweep import ExecutorOpt, JobsOpt, RerunOpt, SchedulerOpt


@app.command()
def reproduce(quick: Annotated[bool, typer.Option("--quick", help="Every claim at reduced size (fewer samples, "
                                                  "points, starts and levels): under 5 minutes on 2 cores.")] = False,
              only: Annotated[Optional[str], typer.Option(metavar="ID,...", help="Only these claims (ids as in the "
                              "report's first column). Default: all.", show_default=False)] = None,
              jobs: JobsOpt = None, executor: ExecutorOpt = "local", scheduler: SchedulerOpt = None,
              out: Annotated[Optional[Path], typer.Option("--out", help="Report directory: runs/ (one run "
                             "directory per run, as a sweep), report.html, report.md, report.json. Default: "
                             "results/reproduce/ (--quick: results/reproduce-quick/), so that running again finds "
                             "the finished runs.", show_default=False)] = None,
              device: FitDeviceOpt = "auto", force: RerunOpt = False,
              as_json: Annotated[bool, typer.Option("--json", callback=json_option, help="Print report.json to "
                                 "stdout, for scripts; the table then goes to stderr.")] = False,
              quiet: QuietOpt = False):
    """Reproduce every claim of the two papers as a measured row, in one report.

    Each claim of Zeno et al. (NeurIPS 2023) and of the follow-up on flows (ICML 2025) is a row:
    the number reluden measures, what the paper says, the expectation (a comparison with its
    tolerance, and why that tolerance) and the verdict: holds, fails, inconclusive (with why: a
    fit that did not converge, an ambiguous alignment) or not built. The runs go through the sweep
    machinery into OUT/runs/: cached by content, resumable, parallel (--jobs), on a Dask cluster
    (--executor dask); running again with nothing changed only reads them back.

    Writes report.html (one self-contained file: open it in a browser), report.md and report.json
    (rows of {id, claim, source, measured, expected, verdict, reason, seconds, evidence}, and a
    summary of counts per verdict) into OUT.

    Exit status: 0 when no claim fails; 1 when one fails or the runs were interrupted
    (inconclusive rows say why in the report, and do not change the status); 2 bad options.
    """
    from ..reproduce import reproduce as run

    out = out or Path("results") / ("reproduce-quick" if quick else "reproduce")
    ids = [i.strip() for i in only.split(",") if i.strip()] if only else None
    report = run(out, quick=quick, only=ids, jobs=jobs, executor=executor, scheduler=scheduler, device=device,
                 force=force, events=RichEvents(quiet, "reproduce"))
    if as_json:
        from ..files import to_jsonable

        sys.stdout.write(json.dumps(to_jsonable(report), indent=2) + "\n")
    if not quiet:
        render.reproduce(report, {name: out / name for name in ("report.html", "report.md", "report.json")})
    if report["status"] != "ok":
        raise typer.Exit(1)
