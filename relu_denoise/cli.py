"""The `reluden` command line: parse, call the library, render with rich, write via `runs`.

Human output goes to stderr, data (--json) to stdout. Exit status: 0 success, 1 the run failed
(partial results are written), 2 bad usage or bad recipe.
"""

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from .errors import ReludenError, TrainingError

app = typer.Typer(
    help="Minimum-norm shallow ReLU denoisers: closed forms, training, comparisons, alignment.\n\n"
         "Each command reads a YAML recipe (see recipes/), writes a run directory with recipe.yaml, "
         "manifest.json, result.json, CSV tables and PNG figures, and prints a summary.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")
err = Console(stderr=True, highlight=False)

RecipeArg = Annotated[Path, typer.Argument(help="YAML recipe file (see recipes/ for examples).", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run directory to write. Default: "
                   "results/COMMAND/RECIPE-NAME/UTC-TIME-HASH/.", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe key, e.g. --set "
                   "noise.sigma=0.1 (value parsed as YAML; repeatable).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly result.json to stdout (the summary "
                    "still goes to stderr unless --quiet).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary on stderr.")]


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
        except (ReludenError, ValidationError) as exc:
            err.print(f"[red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _emit(result: dict, run, as_json: bool, quiet: bool) -> None:
    from .runs import to_jsonable

    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")
    if not quiet:
        err.print(f"run directory: [bold]{run.path}[/]")


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
    out: OutOpt = None, set_: SetOpt = None, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Build the min-cost denoiser of theory.md for the recipe's clean points.

    Detects the geometry (univariate, subspace, rays, obtuse/orthogonal simplex, equilateral or
    acute triangle), builds the closed form as an explicit ReLU network, and reports its cost,
    ramps and status (paper / derived / numerical). Where no closed form applies it says
    "no closed form:" and the failed condition (exit status 2).
    """
    from .checks import read_points_file
    from .closed_form import closed_form_for
    from .data import make_source
    from .recipe import load_recipe
    from .runs import Run

    r, base = load_recipe(recipe, set_ or [])
    rng = np.random.default_rng(r.seed)
    source = make_source(r.data, rng=rng, base_dir=base)
    queries = read_points_file(query, name="--query", d=source.points.shape[1]) if query else None
    form = closed_form_for(source.points, r.noise, rho=_parse_rho(rho), rng=rng)
    run = Run.create("closed-form", r, out=out, device="cpu", dtype="float64")
    net = form.network
    result = {
        "geometry": form.geometry, "status": form.status, "rho": form.rho,
        "rho_rule": "ball" if form.rho is not None else "empirical",
        "cost": net.path_cost().item(), "cost_formula": form.cost_formula, "formula": form.formula,
        "units": net.width, "ramps": len(form.ramps), "dim": form.dim, "affine_dim": form.affine_dim,
        "n_points": form.n_points, "notes": form.notes, "data": source.info,
    }
    run.write_csv("ramps.csv", ["label", "lo", "hi", "height", "slope", "cost"]
                  + [f"u{i}" for i in range(form.dim)] + [f"origin{i}" for i in range(form.dim)],
                  [[p.label, p.lo, p.hi, p.height, p.slope, p.cost, *p.u, *p.origin] for p in form.ramps])
    if queries is not None:
        h = form.predict(queries)
        run.write_csv("predictions.csv", [f"y{i}" for i in range(form.dim)] + [f"h{i}" for i in range(form.dim)],
                      np.hstack([queries, h]))
    figure = _closed_form_figure(run, form, source.points)
    if figure:
        result["figure"] = figure.name
    run.finish("ok", result=result)
    if not quiet:
        _show_closed_form(form, result)
    _emit(result, run, as_json, quiet)


def _parse_rho(text: Optional[str]):
    if text is None or text in ("auto", "empirical"):
        return text
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"expected a number, 'auto' or 'empirical', got {text!r}", param_hint="--rho") from None


def _closed_form_figure(run, form, points):
    from . import plots

    h = {f"closed form ({form.status})": form.predict}
    nets = {f"closed form ({form.status})": form.network}
    title = f"{form.geometry}, rho = {form.rho:.4g}" if form.rho is not None else f"{form.geometry}, empirical rho"
    if form.dim == 1:
        return plots.curve_1d(run.file("closed_form.png"), h, points, rho=form.rho, title=title)
    if form.dim == 2:
        return plots.contours_2d(run.file("closed_form.png"), h, points, rho=form.rho, nets=nets, title=title)
    if form.affine_dim == 1:
        return plots.curve_on_line(run.file("closed_form.png"), h, points, rho=form.rho, title=title)
    if form.affine_dim == 2 and form.n_points == 3:
        return plots.plane_contours(run.file("closed_form.png"), h, points, rho=form.rho, nets=nets, title=title)
    return None


def _show_closed_form(form, result) -> None:
    err.print(f"[bold]{form.geometry}[/]  status [bold]{form.status}[/]  "
              f"{form.n_points} points in R^{form.dim} (affine dimension {form.affine_dim})")
    err.print(f"rho {'empirical (extreme sample projections)' if form.rho is None else format(form.rho, '.6g')}   "
              f"cost {result['cost']:.6g} (weights)  {form.cost_formula:.6g} (formula: {form.formula})   "
              f"units {result['units']}")
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
    as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Train a shallow ReLU denoiser to min-cost interpolation of its noisy samples.

    Methods (train.method): augmented-lagrangian (default; exact interpolation at minimal path
    cost, 36x fewer steps than the paper's procedure, see benchmarks/fit_speed.py), penalty
    (continuation on the penalty weight) and weight-decay (the paper: Adam on MSE + lambda C).
    Offline (fixed noisy samples) or online (noise.mode: online, fresh noise every step).
    Stops when the max residual max ||h(y_nm) - x_n|| is under train.tol (a fraction of the
    smallest distance between clean points) and the path cost has stopped falling.

    Writes model.pt, checkpoint.pt, history.csv, result.json (cost, train_mse, max_residual,
    steps, seconds, device, dtype and, where a closed form exists, closed_form_cost, cost_ratio,
    function_gap), fit.png and training.png. Exit status 1 when training diverges (the last good
    state stays in checkpoint.pt; lower train.lr), is interrupted (Ctrl-C saves a checkpoint for
    --resume; neither writes result.json) or ends at train.steps with the residual above
    train.tol (result.json then has status "not-converged").
    """
    from .fitting import fit_recipe

    r, base, run, dev = _fit_setup(recipe, resume, set_ or [], dtype, device, out)
    try:
        with _fit_progress(quiet, r.train.steps) as on_check:
            outcome = fit_recipe(r, base, run, device=dev, callback=on_check, resume=resume is not None)
    except TrainingError as exc:
        if getattr(exc, "reason", "") == "interrupted":
            raise TrainingError(f"{exc}; continue with: reluden fit --resume {run.path}") from None
        raise TrainingError(f"{exc}; run directory {run.path}") from None
    result = outcome.result
    if not quiet:
        _show_fit(outcome)
    _emit(result, run, as_json, quiet)
    if result["status"] != "ok":
        err.print(f"[red]error:[/] {result['reason']}")
        raise typer.Exit(1)


def _new_training_run(command: str, recipe, overrides, device, out):
    """(recipe, base folder, Run, device) for a command that trains: the device resolved once, in the manifest."""
    from .recipe import load_recipe
    from .runs import Run
    from .train import resolve_device

    r, base = load_recipe(recipe, overrides)
    dev = resolve_device(device or "auto")
    run = Run.create(command, r, out=out, device=str(dev), dtype=r.train.dtype, recipe_dir=str(base.resolve()))
    return r, base, run, dev


def _fit_setup(recipe, resume, overrides, dtype, device, out):
    """(recipe, base folder, Run, device) for a new fit or for --resume RUN_DIR."""
    from .recipe import load_recipe
    from .runs import Run, load_run
    from .train import resolve_device

    if dtype is not None:
        overrides = [*overrides, f"train.dtype={dtype}"]
    if resume is None:
        if recipe is None:
            raise typer.BadParameter("give a RECIPE, or --resume RUN_DIR", param_hint="RECIPE")
        return _new_training_run("fit", recipe, overrides, device, out)
    if recipe is not None or overrides or out is not None:
        raise typer.BadParameter("--resume continues a run as it was: give no RECIPE, --set, --dtype or --out",
                                 param_hint="--resume")
    manifest, _, path = load_run(resume)
    if manifest.get("command") != "fit" or not (path / "checkpoint.pt").is_file():
        from .errors import RunError

        raise RunError(f"--resume {path}: not a fit run with a checkpoint.pt")
    r, _ = load_recipe(path / "recipe.yaml")
    dev = resolve_device(device or manifest.get("device", "auto"))
    run = Run(path, manifest)
    run.update(status="running", end=None, resumed=manifest.get("resumed", 0) + 1, device=str(dev))
    return r, Path(manifest.get("recipe_dir", path)), run, dev


def _fit_progress(quiet: bool, steps: int):
    """A context manager yielding the training callback: a rich bar with step, loss, cost, residual, ETA."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    @contextlib.contextmanager
    def bar():
        columns = (BarColumn(bar_width=10), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]} cost {task.fields[cost]} max res {task.fields[res]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=err, disable=quiet, transient=True) as progress:
            task = progress.add_task("fit", total=steps, loss="-", cost="-", res="-")

            def on_check(rec: dict) -> None:
                progress.update(task, completed=rec["step"], loss=f"{rec['loss']:.3g}", cost=f"{rec['cost']:.4g}",
                                res=f"{rec['max_residual']:.1e}")

            yield on_check

    return bar()


def _show_fit(outcome) -> None:
    res, form = outcome.result, outcome.form
    table = Table(title=f"fit: {res['method']} ({res['mode']}), {res['steps']} steps in {res['seconds']:.1f} s on "
                        f"{res['device']} ({res['dtype']}); {res['active_units']} of {res['units']} units active",
                  title_justify="left")
    for col in ("", "trained", "closed form" + (f" ({form.status})" if form is not None else "")):
        table.add_column(col, justify="right" if col else "left")
    ratio = f" (ratio {res['cost_ratio']:.4f})" if res.get("cost_ratio") is not None else ""
    table.add_row("path cost", f"{res['cost']:.6g}{ratio}",
                  f"{res['closed_form_cost']:.6g}" if form is not None else "none")
    table.add_row("max residual", f"{res['max_residual']:.3g} = {res['max_residual_rel']:.3g} x min distance "
                  f"(tol {res['tol']:g})", "0 (interpolates)" if form is not None else "")
    table.add_row("train MSE", f"{res['train_mse']:.3g}", "")
    if "function_gap" in res:
        table.add_row("function gap", f"{res['function_gap']:.3g} x diameter", "")
    err.print(table)
    cf = res["closed_form"]
    err.print(f"closed form: {cf['geometry']}, {cf['rho_rule']}" if form is not None else f"closed form: {cf['none']}")
    if "note" in res:
        err.print(f"note: {res['note']}")


@app.command()
@_guard
def compare(
    recipe: Annotated[Optional[Path], typer.Argument(help="YAML recipe. Default: the built-in recipe of "
                      "theory.md 3 (10 nearly evenly spread points on [0, 1], M = 100).", show_default=False)] = None,
    noise: Annotated[Optional[list[float]], typer.Option("--noise", help="Gaussian noise level sigma "
                     "(repeatable). Default: the recipe's compare.noise grid.", show_default=False)] = None,
    repeats: Annotated[Optional[int], typer.Option(min=1, help="Training sets drawn per noise level "
                       "(averaged). Default: compare.repeats.", show_default=False)] = None,
    n_test: Annotated[Optional[int], typer.Option("--n-test", min=1, help="Fresh test points per noise "
                      "level. Default: compare.n_test.", show_default=False)] = None,
    no_nn: Annotated[bool, typer.Option("--no-nn", help="Skip training the NN (references only; fast).")] = False,
    device: Annotated[str, typer.Option(help="Device for training: auto, cpu, cuda, cuda:N or mps.")] = "auto",
    out: OutOpt = None, set_: SetOpt = None, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Test MSE on fresh data of the NN denoiser and reference estimators across noise levels.

    Estimators: nn (trained on the recipe's offline samples at each noise level), closed_form
    (empirical rho rule, where one exists), emmse (empirical MMSE), lmmse (Gaussian linear
    MMSE), nearest (nearest training point) and identity. Writes compare.csv, result.json and
    a log-log figure of MSE against sigma; the table marks the best estimator per noise level.
    """
    from .compare import compare as run_compare
    from .recipe import DEFAULT_RECIPE, load_recipe, parse_recipe
    from .runs import Run

    if recipe is None:
        r, base = parse_recipe(DEFAULT_RECIPE, set_ or []), Path(".")
    else:
        r, base = load_recipe(recipe, set_ or [])
    levels = noise or r.compare.noise
    if any(s <= 0 for s in levels):
        raise typer.BadParameter(f"noise levels must be > 0, got {levels}", param_hint="--noise")
    repeats, n_test = repeats or r.compare.repeats, n_test or r.compare.n_test
    fit_nn, dev, fits = (None, "cpu", []) if no_nn else _nn_fitter(r, device)
    run = Run.create("compare", r, out=out, device=dev, dtype=r.train.dtype)
    with _progress(quiet) as bar:
        task = bar.add_task("compare", total=len(levels) * repeats)
        comparison = run_compare(r, levels, fit_nn=fit_nn, n_test=n_test, repeats=repeats, base_dir=base,
                                 on_fit=lambda msg: bar.update(task, advance=1, description=msg))
    result = comparison.to_dict()
    if fits:
        result["nn_fits"] = fits
    run.write_csv("compare.csv", ["noise", "estimator", "mse", "ci_low", "ci_high", "n_test"], comparison.rows())
    from . import plots

    plots.mse_vs_noise(run.file("compare.png"), comparison.noise,
                       {k: {"mse": comparison.mse[k], "ci_low": comparison.ci_low[k],
                            "ci_high": comparison.ci_high[k]} for k in comparison.mse},
                       title=f"{r.name}: test MSE on {comparison.test_points} points")
    result["figure"] = "compare.png"
    run.finish("ok", result=result)
    if not quiet:
        _show_comparison(comparison)
        loose = [f"{f['sigma']:g}" for f in fits if not f["converged"]]
        if loose:
            err.print(f"  nn did not reach train.tol at sigma {', '.join(loose)} (overlapping noise clouds cannot "
                      "be interpolated exactly; see nn_fits in result.json)")
    _emit(result, run, as_json, quiet)


def _progress(quiet: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=quiet, transient=True)


def _nn_fitter(recipe, device: str):
    """(fit_nn, device name, fits) for `compare`: trains with the recipe's model and train sections.

    `fits` collects each fit's stats (cost, residual, steps, whether it converged) for result.json.
    """
    import torch

    from .train import fit_denoiser, resolve_device

    dev, fits = resolve_device(device), []

    def fit_nn(points, samples, sigma):
        fit = fit_denoiser(points, samples, recipe.model, recipe.train, device=dev,
                           generator=torch.Generator().manual_seed(recipe.seed))
        fits.append({"sigma": sigma, **{k: fit.stats[k] for k in ("cost", "max_residual_rel", "steps", "converged",
                                                                   "seconds")}})
        return fit.net.predict

    return fit_nn, str(dev), fits


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
    for name, why in c.to_dict()["unavailable"].items():
        first = next(w for w in why if w)
        err.print(f"  {name} n/a at {sum(w is not None for w in why)} level(s): {first}")


@app.command()
@_guard
def align(
    target: Annotated[Path, typer.Argument(metavar="RUN_DIR|RECIPE", help="A `reluden fit` run directory to "
                      "analyse, or a YAML recipe to fit first (with its own settings) and then analyse.",
                      show_default=False)],
    tolerance: Annotated[float, typer.Option(min=0.01, max=89.0, help="Angle in degrees within which a neuron "
                         "counts as aligned with a direction.")] = 5.0,
    device: Annotated[str, typer.Option(help="Device for the fit (RECIPE only): auto, cpu, cuda, cuda:N or "
                      "mps.")] = "auto",
    out: OutOpt = None, set_: SetOpt = None, as_json: JsonOpt = False, quiet: QuietOpt = False,
):
    """Measure how the neurons of a trained denoiser align with the edges and faces of the data.

    Balances and prunes the network, groups units by direction, and compares each with the
    candidate directions of the clean points (edges, altitudes / face normals). The headline is
    aligned_fraction: the cost-weighted share of neurons within --tolerance of a direction the
    closed form uses (theory.md 6), next to baseline_fraction, the same statistic against as
    many random directions. Writes neurons.csv, result.json, the trained function beside the
    closed form with its ReLU boundaries, and a polar histogram of neuron directions.
    """

    from .align import align_report
    from .fitting import function_gap, plane_gap, recipe_data, reference_form
    from .runs import Run

    r, base, net, fit_result, source = _align_inputs(target, set_ or [], device, out, quiet)
    run = source if isinstance(source, Run) else Run.create("align", r, out=out, source_run=str(source),
                                                            recipe_dir=str(Path(base).resolve()))
    points, samples = recipe_data(r, base)
    form, rho_note = reference_form(points, r.noise, samples)
    report = align_report(net, points, tolerance_deg=tolerance, rng=np.random.default_rng(r.seed))
    result = report.to_dict()
    # the report's geometry/status/rho describe the closed form; "status" alone would read as the run's
    closed = {k: result.pop(k) for k in ("geometry", "status", "rho")}
    result.update(closed_form=closed, fit=fit_result)
    if form is not None:
        result["function_gap"] = function_gap(net, form, points, scale=r.noise.scale)
        if report.affine_dim == 2 and report.dim > 2:
            result["plane_gap"] = plane_gap(net, form, points)
    run.write_csv("neurons.csv", list(report.neurons), [list(row.values()) for row in report.neuron_rows()])
    result["figures"] = _align_figures(run, r, net, form, points, report)
    status = fit_result.get("status", "ok")
    run.finish(status, reason=fit_result.get("reason"), result=result)
    if not quiet:
        _show_alignment(report, result, form)
    _emit(result, run, as_json, quiet)
    if status != "ok":
        err.print(f"[red]error:[/] the fit did not converge: {fit_result.get('reason')}")
        raise typer.Exit(1)


def _align_inputs(target: Path, overrides, device, out, quiet):
    """(recipe, base folder, network, fit result, run-or-source) for a fit RUN_DIR or a RECIPE."""
    from .errors import RunError
    from .fitting import fit_recipe
    from .network import ShallowDenoiser
    from .recipe import load_recipe
    from .runs import load_run

    if target.is_dir():
        manifest, fit_result, path = load_run(target)
        if manifest.get("command") not in ("fit", "align") or not (path / "model.pt").is_file():
            raise RunError(f"{path}: a `{manifest.get('command', '?')}` run directory, not a finished fit run "
                           "(no model.pt); align needs a fit (or align) run directory or a recipe")
        if overrides:
            raise typer.BadParameter("--set applies to a RECIPE, not to a fit run directory", param_hint="--set")
        r, _ = load_recipe(path / "recipe.yaml")
        net, _ = ShallowDenoiser.load(path / "model.pt")
        if manifest["command"] == "align":
            fit_result = fit_result.get("fit", {})       # an align run keeps its fit's summary under "fit"
        return r, Path(manifest.get("recipe_dir", path)), net, fit_result, path
    r, base, run, dev = _new_training_run("align", target, overrides, device, out)
    with _fit_progress(quiet, r.train.steps) as on_check:
        outcome = fit_recipe(r, base, run, device=dev, callback=on_check)
    if not quiet:
        _show_fit(outcome)
    return r, base, outcome.fit.net, outcome.result, run


def _align_figures(run, recipe, net, form, points, report) -> list[str]:
    from . import align as al
    from . import plots

    d, names = points.shape[1], []
    h, nets = {"trained": net.predict}, {"trained": net.prune(1e-6)[0]}
    if form is not None:
        h[f"closed form ({form.status})"], nets[f"closed form ({form.status})"] = form.predict, form.network
    title = f"{recipe.name}: aligned fraction {report.aligned_fraction:.2f} (random {report.baseline_fraction:.2f})"
    if d == 2:
        names.append(plots.contours_2d(run.file("align.png"), h, points, nets=nets, title=title).name)
        angles, weights = al.neuron_angles_2d(net)
        cands = al.candidate_angles_2d(report.directions)
    elif report.affine_dim == 2 and len(points) == 3:
        names.append(plots.plane_contours(run.file("align.png"), h, points, nets=nets, title=title).name)
        angles, weights = al.neuron_angles_plane(net, points)
        cands = al.candidate_angles_plane(report.directions, points)
    else:
        return names
    names.append(plots.direction_histogram(run.file("directions.png"), angles, weights, candidates=cands,
                                           predicted=set(report.predicted), title=title).name)
    return names


def _show_alignment(report, result, form) -> None:
    against = "the closed form's directions" if report.against == "predicted" else "all candidate directions"
    err.print(f"[bold]aligned fraction {report.aligned_fraction:.3f}[/] of the path cost within "
              f"{report.tolerance_deg:g} degrees of {against}; random directions: {report.baseline_fraction:.3f} "
              f"(sd {report.baseline_sd:.3f})")
    err.print(f"{report.n_units_kept} of {report.n_units} units kept ({100 * report.pruned_share:.2g}% of the cost "
              f"pruned), {report.n_groups} direction groups; output parallel to input "
              f"{report.output_parallel:.3f}" + (f"; in-plane share {report.in_plane_share:.3f}"
                                                 if report.in_plane_share is not None else ""))
    if form is not None:
        gaps = f"function gap {result['function_gap']:.3g}"
        if "plane_gap" in result:
            gaps += f", in the data's plane {result['plane_gap']:.3g}"
        err.print(f"closed form {form.geometry} ({form.status}): {gaps} (x data diameter)")
    table = Table(title="cost share per candidate direction", title_justify="left")
    for col in ("direction", "kind", "predicted", "cost share"):
        table.add_column(col, justify="right" if col == "cost share" else "left")
    for name, share in sorted(report.per_direction.items(), key=lambda kv: -kv[1]):
        info = report.directions.get(name, {})
        table.add_row(name, info.get("kind", ""), "yes" if info.get("predicted") else "", f"{share:.3f}")
    err.print(table)
    for note in report.notes:
        err.print(f"  note: {note}")


def main() -> None:
    app()
