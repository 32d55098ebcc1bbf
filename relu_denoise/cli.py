"""The `reluden` command line: parse, call `workflows`, render with rich, map errors to exit codes.

Human output goes to stderr, data (--json) to stdout. Exit status (design.md): 0 ok; 1 the run
failed, did not converge or was interrupted (the reason is written); 2 bad usage or bad input,
nothing run; 3 no closed form for this geometry (a result, recorded in the run directory).
Start-up imports neither torch, scipy nor matplotlib: `--help` and usage errors stay fast.
"""

import contextlib
import functools
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from .errors import NoClosedFormError, ReludenError, SolverError, TrainingError


# typer vendors its own click; its UsageError (no-such-option, missing argument, bad value) is BadParameter's base
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineErrors(TyperGroup):
    """Usage errors (typer's and click's too) as one line on stderr with exit status 2, never a box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            hint = f" ({exc.param_hint})" if isinstance(exc, typer.BadParameter) and exc.param_hint else ""
            message = " ".join(exc.format_message().split())
            sys.stderr.write(f"error: {message}{hint if hint.strip(' ()') not in message else ''}\n")
            code = 2
        except typer.Abort:
            sys.stderr.write("interrupted\n")
            code = 1
        if standalone_mode:
            sys.exit(code or 0)
        return code


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"reluden {version('relu-denoise')}\n")
        raise typer.Exit()


app = typer.Typer(
    cls=_OneLineErrors,
    help="Minimum-norm shallow ReLU denoisers: closed forms, training, comparisons, alignment.\n\n"
         "Each command reads a YAML recipe (see recipes/), writes a run directory with recipe.yaml, "
         "manifest.json, result.json, CSV tables and PNG figures, and prints a summary. The mathematics "
         "is docs/theory.md. Exit status: 0 ok; 1 failed, not converged or interrupted; 2 bad input; "
         "3 no closed form.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")
err = Console(stderr=True, highlight=False)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Minimum-norm shallow ReLU denoisers."""

RecipeArg = Annotated[Path, typer.Argument(help="YAML recipe file (see recipes/ for examples).", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run directory to write. Default: "
                   "results/COMMAND/RECIPE-NAME/UTC-TIME-HASH/.", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe key, e.g. --set "
                   "noise.sigma=0.1 (value parsed as YAML; repeatable).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly result.json to stdout (the summary "
                    "still goes to stderr unless --quiet).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary on stderr; the run "
                     "directory is then the only line printed there.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Recipe seed (same as --set seed=N). Every random "
                    "stream derives from it and from what it draws for, never from positions.", show_default=False)]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads of training (sets "
                       "train.threads). Default: measured, one thread unless more are faster; results do not "
                       "depend on it.", show_default=False)]
FitDeviceOpt = Annotated[str, typer.Option("--device", help="Device for the fit (RECIPE only): auto, cpu, cuda, "
                         "cuda:N or mps.")]
FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the PNG figures (about a second "
                       "each; batches of small runs may skip them).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a non-empty --out directory (it is emptied "
                     "first). Without it a non-empty --out is refused.")]


def _guard(fn):
    """Turn library exceptions into one-line messages and exit codes (2 bad input, 1 failed run)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrainingError as exc:
            err.print(f"[red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[red]interrupted[/]")
            raise typer.Exit(1) from None
        except NoClosedFormError as exc:
            err.print(f"[red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(3) from None
        except SolverError as exc:                                  # the run failed, not the input
            from .runs import ending

            err.print(f"[red]error:[/] {ending(exc)[1]}", soft_wrap=True)
            raise typer.Exit(1) from None
        except ReludenError as exc:
            err.print(f"[red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        except MemoryError:
            err.print("[red]error:[/] out of memory (the run directory records it); lower model.width, "
                      "noise.samples or the data size", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _emit(outcome, as_json: bool, quiet: bool) -> None:
    from .files import to_jsonable

    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(outcome.result), indent=2) + "\n")
    if quiet:
        sys.stderr.write(f"{outcome.run.path.resolve()}\n")       # the one line a script reads
    else:
        err.print(f"run directory: [bold]{outcome.run.path.resolve()}[/]", soft_wrap=True)


def _load(recipe, overrides, seed=None, threads=None):
    from .recipe import load_recipe

    return load_recipe(recipe, [*(overrides or []), *([f"seed={seed}"] if seed is not None else []),
                                *([f"train.threads={threads}"] if threads is not None else [])])


# ---------------------------------------------------------------- closed-form


@app.command("closed-form")
@_guard
def closed_form_cmd(
    recipe: RecipeArg,
    rho: Annotated[Optional[str], typer.Option(help="Flat-zone radius: a number, 'auto' (sigma*sqrt(2 ln M)) "
                   "or 'empirical' (extreme sample projections). Default: the recipe's noise.rho; the radius "
                   "for sphere/ball noise.", show_default=False)] = None,
    query: Annotated[Optional[Path], typer.Option(help="Points to denoise: .npy of shape (n, d) or .csv with "
                     "d numeric columns and no header. Writes predictions.csv (y0.., h0..).",
                     show_default=False)] = None,
    out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None, force: ForceOpt = False,
    figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Build the min-cost denoiser of docs/theory.md for the recipe's clean points.

    Detects the geometry (univariate, subspace, rays, obtuse/orthogonal simplex, equilateral or
    acute triangle), builds the closed form as an explicit ReLU network, and reports its cost,
    ramps and status (paper / derived / numerical). Where no closed form applies it says
    "no closed form:" and the failed condition, records it in the run directory (result.json has
    status no-closed-form) and exits with status 3.
    """
    from .workflows import closed_form_workflow

    r, base = _load(recipe, set_, seed)
    outcome = closed_form_workflow(r, base, rho=_parse_rho(rho), query=query, out=out, force=force, figures=figures)
    if not quiet and outcome.summary.reference.form is not None:
        _show_closed_form(outcome.summary)
    _emit(outcome, as_json, quiet)
    _exit_for(outcome)


def _parse_rho(text: Optional[str]):
    if text is None or text in ("auto", "empirical"):
        return text
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"expected a number, 'auto' or 'empirical', got {text!r}", param_hint="--rho") from None


def _show_closed_form(summary) -> None:
    form, ref = summary.reference.form, summary.reference
    err.print(f"[bold]{form.geometry}[/]  status [bold]{form.status}[/]  "
              f"{form.n_points} points in R^{form.dim} (affine dimension {form.affine_dim})")
    rho = "empirical (extreme sample projections)" if form.rho is None else f"{form.rho:.6g} ({ref.rho_rule})"
    err.print(f"rho {rho}   "
              f"cost {summary.cost:.6g} (weights)  {form.cost_formula:.6g} (formula: {form.formula})   "
              f"units {summary.units}")
    for note in form.notes:
        err.print(f"  note: {note}")
    table = Table(title="ramps  u * ramp(u^T (y - origin); lo, hi, height)", title_justify="left")
    for col in ("ramp", "direction u", "flat below", "flat above", "slope", "cost"):
        table.add_column(col, justify="right" if col not in ("ramp", "direction u") else "left")
    for p in form.ramps:
        u = "(" + ", ".join(f"{v:.3f}" for v in p.u) + ")" if form.dim <= 4 else f"{form.dim}-dim"
        table.add_row(p.label, u, f"t <= {p.lo:.4g}", f"t >= {p.hi:.4g}", f"{p.slope:.4g}", f"{p.cost:.4g}")
    err.print(table)


# ---------------------------------------------------------------- commands other issues fill


@app.command()
@_guard
def fit(
    recipe: Annotated[Optional[Path], typer.Argument(help="YAML recipe file (see recipes/). Omit it with "
                      "--resume.", show_default=False)] = None,
    out: OutOpt = None, set_: SetOpt = None,
    device: Annotated[Optional[str], typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or "
                      "mps. Default: auto; with --resume, the device the run started on.",
                      show_default=False)] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float64 or float32 (sets train.dtype; default float64, "
                     "the paper's effects live at low noise; MPS needs float32).", show_default=False)] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", metavar="RUN_DIR", help="Continue an interrupted "
                      "fit (Ctrl-C) from RUN_DIR/checkpoint.pt, with the run's own recipe; on the same CPU the "
                      "result equals an uninterrupted run.", show_default=False)] = None,
    seed: SeedOpt = None, force: ForceOpt = False, figures: FiguresOpt = True, threads: ThreadsOpt = None,
    as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Train a shallow ReLU denoiser to min-cost interpolation of its noisy samples.

    Methods (train.method): augmented-lagrangian (default; exact interpolation at minimal path
    cost, 36x fewer steps than the paper's procedure, see benchmarks/fit_speed.py), penalty
    (continuation on the penalty weight), weight-decay (the paper: Adam on MSE + lambda C) and
    ramps (no training: the least-cost sum of ramps between the clouds, a convex program, for
    hundreds of points and image patches; offline; docs/theory.md 9.12).
    Offline (fixed noisy samples) or online (noise.mode: online, fresh noise every step).
    Stops when the max residual max ||h(y_nm) - x_n|| is under train.tol (a fraction of
    min(smallest distance between clean points, largest noise norm)) and the path cost has
    stopped falling.

    Writes model.pt, checkpoint.pt, history.csv, result.json (cost, train_mse, max_residual,
    steps, seconds, device, dtype and, where a closed form exists, closed_form_cost, cost_ratio,
    function_gap), fit.png and training.png. Exit status 1 when training diverges (the last good
    state stays in checkpoint.pt; lower train.lr), is interrupted (Ctrl-C saves a checkpoint for
    --resume; neither writes result.json) or ends at train.steps with the residual above
    train.tol (result.json then has status "not-converged").
    """
    from .workflows import fit_workflow, resume_fit

    if dtype is not None:
        set_ = [*(set_ or []), f"train.dtype={dtype}"]
    events = RichEvents(quiet)
    if resume is not None:
        steps = _resume_steps(set_)
        if recipe is not None or out is not None or seed is not None or (set_ and steps is None):
            raise typer.BadParameter("--resume continues a run as it was: give no RECIPE, --dtype, --seed or --out, "
                                     "and no --set but train.steps=N (to extend a finished run)",
                                     param_hint="--resume")
        outcome = resume_fit(resume, device=device, steps=steps, figures=figures, events=events)
    else:
        if recipe is None:
            raise typer.BadParameter("give a RECIPE, or --resume RUN_DIR", param_hint="RECIPE")
        r, base = _load(recipe, set_, seed, threads)
        outcome = fit_workflow(r, base, out=out, force=force, device=device or "auto", figures=figures,
                               events=events)
    if not quiet:
        _show_fit(outcome.summary)
    _emit(outcome, as_json, quiet)
    _exit_for(outcome)


def _resume_steps(overrides) -> int | None:
    """N of a lone `--set train.steps=N` (the one override --resume takes), else None."""
    if overrides and len(overrides) == 1 and overrides[0].replace(" ", "").startswith("train.steps="):
        text = overrides[0].split("=", 1)[1].strip()
        if not text.isdigit() or int(text) < 1:
            raise typer.BadParameter(f"train.steps: expected an integer >= 1, got {text!r}", param_hint="--set")
        return int(text)
    return None




def _exit_for(outcome) -> None:
    """0 ok; 3 no closed form (a result); 1 anything else that ended the run (its reason printed)."""
    if outcome.status == "ok":
        return
    label = "" if outcome.status == "no-closed-form" else "[red]error:[/] "      # the reason says "no closed form:"
    err.print(f"{label}{outcome.result.get('reason')}", soft_wrap=True)
    raise typer.Exit(3 if outcome.status == "no-closed-form" else 1)


class RichEvents:
    """The workflows' Events, drawn with rich on stderr: a training bar (step, loss, cost, residual, ETA) and a task bar."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    @contextlib.contextmanager
    def training(self, steps: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (BarColumn(bar_width=10), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]} cost {task.fields[cost]} max res {task.fields[res]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=err, disable=self.quiet, transient=True) as progress:
            task = progress.add_task("fit", total=steps, loss="-", cost="-", res="-")

            def on_check(rec: dict) -> None:
                progress.update(task, completed=rec["step"], loss=f"{rec['loss']:.3g}", cost=f"{rec['cost']:.4g}",
                                res=f"{rec['max_residual']:.1e}")

            yield on_check

    @contextlib.contextmanager
    def tasks(self, total: int | None):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=self.quiet,
                      transient=True) as bar:
            task = bar.add_task("", total=total)
            yield lambda message: bar.update(task, advance=1, description=message)


def _show_fit(summary) -> None:
    """The fit's table (results.FitSummary): what training returned beside the closed form and the reference."""
    s, form, ramps = summary.stats, summary.reference.form, summary.stats.lower_bound is not None
    table = Table(title=f"fit: {s.method} ({s.mode}), {s.steps} {'rounds' if ramps else 'steps'} in {s.seconds:.1f} s "
                        f"on {s.device} ({s.dtype}); {summary.active_units} of {summary.units} units active",
                  title_justify="left")
    for col in ("", "ramps" if ramps else "trained", "closed form" + (f" ({form.status})" if form is not None else "")):
        table.add_column(col, justify="right" if col else "left")
    ratio = f" (ratio {summary.cost_ratio:.4f})" if summary.cost_ratio is not None else ""
    table.add_row("path cost", f"{s.cost:.6g}{ratio}", f"{form.cost_formula:.6g}" if form is not None else "none")
    table.add_row("max residual", f"{s.max_residual:.3g} = {s.max_residual_rel:.3g} x min(ell, noise radius) "
                  f"(tol {summary.tol:g})", "0 (interpolates)" if form is not None else "")
    table.add_row("train MSE", f"{s.train_mse:.3g}", "")
    if ramps:
        table.add_row("lower bound", f"{s.lower_bound:.6g} over the {s.ramps} ramps of {s.directions} directions "
                      "(docs/training.md 12)", "")
    table.add_row("best affine map", f"max residual {s.affine_residual_rel:.3g} x min(ell, noise radius) (the free "
                  "linear part alone)", "")
    if summary.function_gap is not None:
        table.add_row("function gap", f"{summary.function_gap:.3g} x diameter", "")
    err.print(table)
    cf = summary.reference.to_dict()
    err.print(f"closed form: {cf['geometry']}, rho rule {_rho_words(cf)}" if form is not None
              else f"closed form: {cf['reason']}", soft_wrap=True)
    _show_reference(summary)
    for note in summary.notes:
        err.print(f"note: {note}", soft_wrap=True)


def _show_reference(summary) -> None:
    best = summary.best
    if best is None or best.kind == "closed-form":
        return                                        # the closed form's ratio is in the table
    if best.kind == "none":
        err.print(f"reference: {best.reason}", soft_wrap=True)
        return
    budget = "" if best.complete else " (stopped at train.reference_seconds)"
    ratio = "" if summary.reference_ratio is None else f"; fit / reference = {summary.reference_ratio:.4g}"
    err.print(f"reference: ramps, an exact interpolant of the same samples, cost {best.cost:.6g} (lower bound "
              f"{best.lower_bound:.6g} over its dictionary) in {best.seconds:.1f} s{budget}{ratio}", soft_wrap=True)


def _rho_words(cf: dict) -> str:
    return cf["rho_rule"] + (f" (rho = {cf['rho']:.4g})" if cf.get("rho") is not None else "")


@app.command()
@_guard
def compare(
    recipe: Annotated[Optional[Path], typer.Argument(help="YAML recipe. Default: the built-in recipe of "
                      "docs/theory.md 3 (10 nearly evenly spread points on [0, 1], M = 100).", show_default=False)] = None,
    noise: Annotated[Optional[list[float]], typer.Option("--noise", help="Noise level (repeatable): sigma for the "
                     "recipe's Gaussian noise, the radius for sphere/ball noise. Default: the recipe's compare.noise "
                     "grid.", show_default=False)] = None,
    repeats: Annotated[Optional[int], typer.Option(min=1, help="Training sets drawn per noise level "
                       "(averaged). Default: compare.repeats.", show_default=False)] = None,
    n_test: Annotated[Optional[int], typer.Option("--n-test", min=1, help="Fresh test points per noise "
                      "level. Default: compare.n_test.", show_default=False)] = None,
    no_nn: Annotated[bool, typer.Option("--no-nn", help="Skip training the NN (references only; fast).")] = False,
    device: Annotated[str, typer.Option(help="Device for training: auto, cpu, cuda, cuda:N or mps.")] = "auto",
    out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None, force: ForceOpt = False,
    figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Test MSE on fresh data of the NN denoiser and reference estimators across noise levels.

    Estimators: nn (trained on the recipe's offline samples at each noise level), closed_form
    (the one reference rule of docs/theory.md 1.1, where a closed form exists), emmse (empirical
    MMSE), lmmse (Gaussian linear MMSE), nearest (nearest training point) and identity; the noise
    is the recipe's model (Gaussian, sphere or ball) at each level (docs/theory.md 3). Every draw
    depends on the seed and the level's value, never on its position in the grid. Where noise
    clouds overlap, nn is "n/a" (not trained: hopeless) and so is the closed form. Writes
    compare.csv (each level as it finishes: an interrupted comparison keeps them), result.json
    and a log-log figure; the table marks the best estimator per noise level.
    """
    from .recipe import DEFAULT_RECIPE, parse_recipe
    from .workflows import compare_workflow

    if recipe is None:
        r, base = parse_recipe(DEFAULT_RECIPE, [*(set_ or []), *([f"seed={seed}"] if seed is not None else [])]), Path(".")
    else:
        r, base = _load(recipe, set_, seed)
    levels = noise or r.compare.noise
    if any(s <= 0 for s in levels):
        raise typer.BadParameter(f"noise levels must be > 0, got {levels}", param_hint="--noise")
    outcome = compare_workflow(r, base, noise=levels, repeats=repeats or r.compare.repeats,
                               n_test=n_test or r.compare.n_test, nn=not no_nn, device=device, out=out,
                               force=force, figures=figures, events=RichEvents(quiet))
    if not quiet:
        _show_comparison(outcome.summary.comparison)
        loose = [f"{f['sigma']:g}" for f in outcome.summary.fits if not f["converged"]]
        if loose:
            err.print(f"  nn did not reach train.tol at level {', '.join(loose)} (see nn_fits in result.json)")
    _emit(outcome, as_json, quiet)


def _show_comparison(c) -> None:
    table = Table(title=f"test MSE  E||h(x + eps) - x||^2  ({c.n_test} {c.test_points} test points "
                        f"x {c.repeats} repeat(s); 95% CIs in compare.csv)  * = best", title_justify="left")
    table.add_column("sigma", justify="right")
    for name in c.mse:
        table.add_column(name.replace("_", " "), justify="right")  # "closed form" wraps, no ellipsis
    for i, s in enumerate(c.noise):
        best = c.best(i)
        cells = []
        for name in c.mse:
            m = c.mse[name][i]
            text = "n/a" if m is None else f"{m:.2e}"
            cells.append(f"[bold green]*{text}[/]" if name == best else text)
        table.add_row(f"{s:g}", *cells)
    err.print(table)
    for note in c.notes:
        err.print(f"  note: {note}", soft_wrap=True)
    for name, why in c.to_dict()["unavailable"].items():
        first = next(w for w in why if w)
        err.print(f"  {name} n/a at {sum(w is not None for w in why)} level(s): {first}")


@app.command()
@_guard
def align(
    target: Annotated[Path, typer.Argument(metavar="RUN_DIR|RECIPE", help="A `reluden fit` run directory to "
                      "analyse, or a YAML recipe to fit first (with its own settings) and then analyse.",
                      show_default=False)],
    tolerance: Annotated[float, typer.Option(min=0.01, max=89.0, help="Angle in degrees within which a unit "
                         "is assigned to its nearest candidate direction.")] = 5.0,
    device: FitDeviceOpt = "auto",
    out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None, force: ForceOpt = False,
    figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Measure how the neurons of a trained denoiser align with the edges and faces of the data.

    Balances and prunes the network, groups units by direction, and compares each with the
    candidate directions of the clean points (edges, altitudes / face normals). The headline is
    aligned_fraction: the share of the path cost of the units assigned to a direction the closed
    form uses, each unit assigned to its nearest candidate when that one is within --tolerance
    (docs/theory.md 6), next to baseline_fraction, the same statistic against randomly turned
    candidates. Where a predicted and a rival candidate are under twice the tolerance apart the
    verdict is "ambiguous". Writes neurons.csv, result.json, the trained function beside the
    closed form with its ReLU boundaries, and a polar histogram of neuron directions.
    """

    from .workflows import align_run_dir, align_workflow

    if target.is_dir():
        if set_ or seed is not None:
            raise typer.BadParameter("--set and --seed apply to a RECIPE, not to a fit run directory",
                                     param_hint="--set")
        outcome = align_run_dir(target, tolerance=tolerance, out=out, force=force, figures=figures)
    else:
        r, base = _load(target, set_, seed)
        outcome = align_workflow(r, base, tolerance=tolerance, device=device, out=out, force=force,
                                 figures=figures, events=RichEvents(quiet))
        if not quiet:
            _show_fit(outcome.extra["fit_outcome"].summary)
    if not quiet:
        _show_alignment(outcome.summary)
    _emit(outcome, as_json, quiet)
    _exit_for(outcome)


def _show_alignment(summary) -> None:
    report, form = summary.report, summary.reference.form
    against = "the closed form's directions" if report.against == "predicted" else "all candidate directions"
    if report.ambiguous:
        err.print(f"[bold yellow]ambiguous:[/] the predicted and rival directions ({' and '.join(report.separation_pair)})"
                  f" are only {report.separation_deg:.3g} degrees apart, under twice the tolerance "
                  f"({report.tolerance_deg:g}); rerun with --tolerance below {report.separation_deg / 2:.3g} to tell "
                  "them apart", soft_wrap=True)
    err.print(f"[bold]aligned fraction {report.aligned_fraction:.3f}[/] of the path cost assigned (nearest candidate, "
              f"within {report.tolerance_deg:g} degrees) to {against}; to the other candidates "
              f"{report.other_fraction:.3f}; random orientations: {report.baseline_fraction:.3f} "
              f"(sd {report.baseline_sd:.3f})" + (f"; predicted and rival candidates {report.separation_deg:.3g} "
                                                   "degrees apart" if report.separation_deg is not None else ""),
              soft_wrap=True)
    err.print(f"{report.n_units_kept} of {report.n_units} units kept ({100 * report.pruned_share:.2g}% of the cost "
              f"pruned), {report.n_groups} direction groups; output parallel to input "
              f"{report.output_parallel:.3f}" + (f"; in-plane share {report.in_plane_share:.3f}"
                                                 if report.in_plane_share is not None else ""))
    if form is not None:
        gaps = f"function gap {summary.function_gap:.3g}"
        if summary.plane_gap is not None:
            gaps += f", in the data's plane {summary.plane_gap:.3g}"
        err.print(f"closed form {form.geometry} ({form.status}): {gaps} (x data diameter)")
    table = Table(title="cost share per candidate direction", title_justify="left")
    for col in ("direction", "kind", "predicted", "cost share"):
        table.add_column(col, justify="right" if col == "cost share" else "left")
    for name, share in sorted(report.per_direction.items(), key=lambda kv: -kv[1]):
        info = report.directions.get(name, {})
        table.add_row(name, info.get("kind", ""), "yes" if info.get("predicted") else "", f"{share:.3f}")
    err.print(table)
    source = {"form": "the reference closed form", "fallback": "align's own closed form (the reference rule gave "
              "none; directions only)", "names": "the names given", "none": "nothing: no closed form"}
    err.print(f"predicted directions from {source.get(report.predicted_from, report.predicted_from)}")
    for note in report.notes:
        if not note.startswith("ambiguous"):                      # printed above, with the fix
            err.print(f"  note: {note}", soft_wrap=True)


@app.command()
@_guard
def certify(
    target: Annotated[Path, typer.Argument(metavar="RUN_DIR|RECIPE", help="A `reluden fit` (or align) run "
                      "directory whose network seeds the bounds, or a YAML recipe to fit first and then certify.",
                      show_default=False)],
    time_limit: Annotated[float, typer.Option("--time-limit", min=1.0, help="Seconds for the bounds; no round "
                          "starts that would end after it.")] = 120.0,
    tol: Annotated[float, typer.Option(min=1e-9, help="Stop when upper / lower - 1 is below this.")] = 1e-3,
    device: FitDeviceOpt = "auto",
    out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None, force: ForceOpt = False,
    figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Bracket the minimum path cost of interpolating the recipe's samples: [lower, upper], certified.

    No training is trusted (docs/theory.md 8). The upper bound fixes units (the network's, the
    closed form's and a grid through the data) and solves a cone program (cvxpy, Clarabel) for
    the least-cost output weights that interpolate every sample exactly: the network at the
    upper end is saved as model.pt. The lower bound comes from weak duality: multipliers on the
    samples, scaled by the supremum of their dual constraint over all units, which is computed
    exactly for 1-D and 2-D inputs (lower_method lp-1d / exact-1d / exact-2d) and only searched
    above (searched: then the lower bound is not a proof, and result.json says so). Stabilised
    column generation moves the two together until the gap is below --tol or --time-limit.

    result.json: lower, upper, gap, the methods, rounds, the closed form's cost and whether it
    lies inside the interval (certified when the interval is narrower than --tol), and how
    much the exact output solve lowers the trained network's cost and residual (polish).
    Exit status 1 when the gap is still above --tol at the time limit (the bounds are written).
    """
    from .workflows import certify_run_dir, certify_workflow

    events = RichEvents(quiet)
    if target.is_dir():
        if set_ or seed is not None:
            raise typer.BadParameter("--set and --seed apply to a RECIPE, not to a run directory", param_hint="--set")
        outcome = certify_run_dir(target, time_limit=time_limit, tol=tol, out=out, force=force, events=events)
    else:
        r, base = _load(target, set_, seed)
        outcome = certify_workflow(r, base, time_limit=time_limit, tol=tol, device=device, out=out, force=force,
                                   figures=figures, events=events)
    if not quiet:
        _show_certificate(outcome.summary)
    _emit(outcome, as_json, quiet)
    _exit_for(outcome)


def _show_certificate(summary) -> None:
    cert, pol, form = summary.certificate, summary.polish, summary.reference.form
    gap = f"{100 * cert.gap:.3g}%" if math.isfinite(cert.gap) else "n/a (no positive lower bound)"
    err.print(f"[bold]minimum path cost in [{cert.lower:.6g}, {cert.upper:.6g}][/]  gap {gap}  "
              f"(lower: {cert.lower_method}, upper: {cert.upper_method}; {cert.rounds} rounds, "
              f"{cert.n_units} units, {cert.n_constraints} samples, {cert.seconds:.1f} s)", soft_wrap=True)
    if form is not None:
        pos = summary.position
        where = "inside" if pos["inside"] else ("above the upper bound" if pos["above_lower"] else
                                                "BELOW the lower bound")
        err.print(f"closed form {form.geometry} ({form.status}): cost {form.cost_formula:.6g}, {where}"
                  + (" - certified for this recipe" if pos["certified"] else ""), soft_wrap=True)
    if pol.get("reason"):
        err.print(f"trained network: no exact output weights for its units ({pol['reason']})", soft_wrap=True)
    elif pol.get("cost_before") is not None:
        err.print(f"trained network: cost {pol['cost_before']:.6g} -> {pol['cost_after']:.6g} and max residual "
                  f"{pol['max_residual_before']:.3g} -> {pol['max_residual_after']:.3g} with exact output weights "
                  "(polish)", soft_wrap=True)
    err.print(f"upper network interpolates to max residual {cert.max_residual:.3g} (model.pt)")
    for note in cert.notes:
        err.print(f"  note: {note}", soft_wrap=True)


def _register_batches() -> None:
    """`reluden sweep` and `reluden collect` live in sweep_cli (batches of runs); registered with the same guard."""
    from .sweep_cli import collect_command, sweep_command

    app.command("sweep")(_guard(sweep_command))
    app.command("collect")(_guard(collect_command))


_register_batches()


def _sigterm_as_sigint(signum, frame) -> None:
    """SIGTERM (a job scheduler's stop) takes the SIGINT path: a fit checkpoints, every run records its end."""
    os.kill(os.getpid(), signal.SIGINT)


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm_as_sigint)
    app()
