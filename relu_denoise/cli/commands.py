"""The commands on one run: closed-form, fit, compare, align and certify.

Each gathers its options, calls one function of relu_denoise.workflows, renders the typed summary
(render.py) and ends through app.finish (result.json on stdout with --json, the run directory, the exit
status of the run's status). Library exceptions end a command through app.ENDINGS.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import render
from .app import (FiguresOpt, FitDeviceOpt, ForceOpt, JsonOpt, OutOpt, QuietOpt, RecipeArg, RichEvents, SeedOpt,
                  SetOpt, ThreadsOpt, app, finish, load)

# ---------------------------------------------------------------- closed-form

RhoOpt = Annotated[Optional[str], typer.Option(help="Flat-zone radius of the closed form: a number, 'auto' "
                   "(sigma sqrt(2 ln M), Gaussian noise) or 'empirical' (the extreme projections of the samples). "
                   "Default: the recipe's noise.rho (the radius for sphere and ball noise). Change it to see how "
                   "the denoiser depends on rho, or to find where the balls start to overlap.", show_default=False)]
QueryOpt = Annotated[Optional[Path], typer.Option(help="Points to denoise with the closed form: .npy of shape "
                     "(n, d) or .csv with d numeric columns (a first line of column names is skipped). Writes "
                     "predictions.csv (y0.., h0..). "
                     "Default: none.", show_default=False)]


@app.command("closed-form")
def closed_form(recipe: RecipeArg, rho: RhoOpt = None, query: QueryOpt = None, out: OutOpt = None,
                set_: SetOpt = None, seed: SeedOpt = None, force: ForceOpt = False, figures: FiguresOpt = True,
                as_json: JsonOpt = False, quiet: QuietOpt = False):
    """Build the min-cost denoiser of docs/theory.md for the recipe's clean points.

    Detects the geometry (univariate, subspace, rays, obtuse/orthogonal simplex, equilateral or
    acute triangle), builds the closed form as an explicit ReLU network, and reports its cost,
    ramps and status (paper / derived / numerical). Where no closed form applies it says
    "no closed form:" and the failed condition, records it in the run directory (result.json has
    status no-closed-form) and exits with status 3.

    Writes result.json, ramps.csv, closed_form.png and, with --query, predictions.csv.
    """
    from ..workflows import closed_form_workflow

    r, base = load(recipe, set_, seed)
    outcome = closed_form_workflow(r, base, rho=_parse_rho(rho), query=query, out=out, force=force, figures=figures)
    if not quiet and outcome.summary.reference.form is not None:
        render.closed_form(outcome.summary)
    finish(outcome, as_json, quiet)


def _parse_rho(text: Optional[str]):
    if text is None or text in ("auto", "empirical"):
        return text
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"expected a number, 'auto' or 'empirical', got {text!r}", param_hint="--rho") from None


# ---------------------------------------------------------------- fit

FitRecipeArg = Annotated[Optional[Path], typer.Argument(metavar="RECIPE", help="YAML recipe file (see recipes/). Omit it with "
                         "--resume.", show_default=False)]
DeviceOpt = Annotated[Optional[str], typer.Option(help="Where to train: auto (cuda, then mps, then cpu), cpu, cuda, "
                      "cuda:N or mps. Default: auto; with --resume, the device the run started on. A GPU pays off "
                      "from a few thousand samples; float64 on MPS is not supported.", show_default=False)]
DtypeOpt = Annotated[Optional[str], typer.Option(help="float64 or float32 (sets train.dtype). Default: float64, "
                     "since the paper's effects live at low noise; float32 is faster on GPUs and needed on MPS.",
                     show_default=False)]
ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", metavar="RUN_DIR", help="Continue an interrupted "
                      "fit (Ctrl-C, SIGTERM, a crash) from RUN_DIR/checkpoint.pt, with the run's own recipe; on the "
                      "same CPU the result equals an uninterrupted run. A finished run is extended with --set "
                      "train.steps=N (N above the steps it ran), the only override --resume takes.",
                      show_default=False)]
_RESUME_AS_IT_WAS = ("--resume continues a run as it was: give no RECIPE, --dtype, --seed or --out, and no --set "
                     "but train.steps=N (to extend a finished run)")


@app.command()
def fit(recipe: FitRecipeArg = None, out: OutOpt = None, set_: SetOpt = None, device: DeviceOpt = None,
        dtype: DtypeOpt = None, resume: ResumeOpt = None, seed: SeedOpt = None, force: ForceOpt = False,
        figures: FiguresOpt = True, threads: ThreadsOpt = None, as_json: JsonOpt = False, quiet: QuietOpt = False):
    """Train a shallow ReLU denoiser to min-cost interpolation of its noisy samples.

    Methods (train.method): augmented-lagrangian (default; exact interpolation at minimal path
    cost, 36x fewer steps than the paper's procedure, see benchmarks/fit_speed.py), penalty
    (continuation on the penalty weight), weight-decay (the paper: Adam on MSE + lambda C) and
    ramps (no training: the least-cost sum of ramps between the clouds, a convex program, for
    hundreds of points and image patches; offline; docs/training.md 12).
    Offline (fixed noisy samples) or online (noise.mode: online, fresh noise every step).
    Stops when the max residual max ||h(y_nm) - x_n|| is under train.tol (a fraction of
    min(smallest distance between clean points, largest noise norm)) and the path cost has
    stopped falling.

    Writes model.pt, checkpoint.pt (removed once the stopping rule ends the fit), history.csv,
    result.json (cost, train_mse, max_residual, steps, seconds, device, dtype and, where a closed
    form exists, closed_form_cost, cost_ratio, function_gap), fit.png and training.png (the
    checks' curves, with the returned check and the stopping tolerance marked). Exit status 1
    when training diverges (the last good state stays in checkpoint.pt; lower train.lr), is
    interrupted (Ctrl-C saves a checkpoint for --resume; neither writes result.json) or ends at
    train.steps before the stopping rule was met (result.json then has status "not-converged"
    and says whether the returned network interpolates; --resume with a larger train.steps).
    """
    from ..workflows import fit_workflow, resume_fit

    events = RichEvents(quiet)
    if resume is not None:
        if recipe is not None or out is not None or seed is not None or dtype is not None:
            raise typer.BadParameter(_RESUME_AS_IT_WAS, param_hint="--resume")
        outcome = resume_fit(resume, device=device, steps=_resume_steps(set_), figures=figures, events=events)
    else:
        if recipe is None:
            raise typer.BadParameter("give a RECIPE, or --resume RUN_DIR", param_hint="RECIPE")
        dtypes = [f"train.dtype={dtype}"] if dtype is not None else []
        r, base = load(recipe, [*(set_ or []), *dtypes], seed, threads)
        outcome = fit_workflow(r, base, out=out, force=force, device=device or "auto", figures=figures,
                               events=events)
    if not quiet:
        render.fit(outcome.summary)
    finish(outcome, as_json, quiet)


def _resume_steps(overrides) -> int | None:
    """train.steps of the --set overrides (the one key --resume takes), read as the recipe reads an override and
    checked with the recipe's own type; None without overrides."""
    if not overrides:
        return None
    from ..recipe import apply_overrides, parse_section

    raw = apply_overrides({}, overrides)
    train = raw.get("train")
    if list(raw) != ["train"] or not isinstance(train, dict) or list(train) != ["steps"]:
        raise typer.BadParameter(_RESUME_AS_IT_WAS, param_hint="--resume")
    return parse_section("train", train).steps


# ---------------------------------------------------------------- compare


def _positive(levels: Optional[list[float]]):
    if levels and any(s <= 0 for s in levels):
        raise typer.BadParameter(f"noise levels must be > 0, got {levels}", param_hint="--noise")
    return levels


CompareRecipeArg = Annotated[Optional[Path], typer.Argument(metavar="RECIPE", help="YAML recipe. Default: the built-in recipe of "
                             "docs/theory.md 3 (10 nearly evenly spread points on [0, 1], M = 100).",
                             show_default=False)]
NoiseOpt = Annotated[Optional[list[float]], typer.Option("--noise", metavar="LEVEL", callback=_positive, help="Noise level "
                     "(repeatable): sigma for the recipe's Gaussian noise, the radius for sphere/ball noise. "
                     "Default: the recipe's compare.noise grid. A level gives the same numbers alone or in a grid, "
                     "so a level can be added later.", show_default=False)]
RepeatsOpt = Annotated[Optional[int], typer.Option(min=1, help="Training sets drawn per noise level (averaged; "
                       "the 95% CIs in compare.csv narrow with it). Default: the recipe's compare.repeats.",
                       show_default=False)]
NTestOpt = Annotated[Optional[int], typer.Option("--n-test", min=1, help="Fresh test points per noise level "
                     "(digits and patches: at most the held-out ones). Default: the recipe's compare.n_test.",
                     show_default=False)]
NoNNOpt = Annotated[bool, typer.Option("--no-nn", help="Skip training the NN: the reference estimators only, in "
                    "seconds (to look at the references, or when the NN's fits are too slow).")]
TrainDeviceOpt = Annotated[str, typer.Option(help="Device for the NN's fits: auto (cuda, then mps, then cpu), cpu, "
                           "cuda, cuda:N or mps.")]


@app.command()
def compare(recipe: CompareRecipeArg = None, noise: NoiseOpt = None, repeats: RepeatsOpt = None,
            n_test: NTestOpt = None, no_nn: NoNNOpt = False, device: TrainDeviceOpt = "auto", out: OutOpt = None,
            set_: SetOpt = None, seed: SeedOpt = None, force: ForceOpt = False, figures: FiguresOpt = True,
            as_json: JsonOpt = False, quiet: QuietOpt = False):
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
    from ..workflows import compare_workflow

    r, base = load(recipe, set_, seed)
    outcome = compare_workflow(r, base, noise=noise or r.compare.noise, repeats=repeats or r.compare.repeats,
                               n_test=n_test or r.compare.n_test, nn=not no_nn, device=device, out=out,
                               force=force, figures=figures, events=RichEvents(quiet, "compare"))
    if not quiet:
        render.comparison(outcome.summary)
    finish(outcome, as_json, quiet)


# ---------------------------------------------------------------- align and certify

_NOT_FOR_A_RUN = "--set and --seed apply to a RECIPE, not to a {} run directory"


@app.command()
def align(target: Annotated[Path, typer.Argument(metavar="RUN_DIR|RECIPE", help="A `reluden fit` run directory to "
                            "analyse, or a YAML recipe to fit first (with its own settings) and then analyse.",
                            show_default=False)],
          tolerance: Annotated[float, typer.Option(min=0.01, max=89.0, help="Angle in degrees within which a unit "
                               "is assigned to its nearest candidate direction. Lower it below half the separation "
                               "the summary prints when the verdict is ambiguous.")] = 5.0,
          device: FitDeviceOpt = "auto", out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None,
          force: ForceOpt = False, figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False):
    """Measure how the neurons of a trained denoiser align with the edges and faces of the data.

    Balances and prunes the network, groups units by direction, and compares each with the
    candidate directions of the clean points (edges, altitudes / face normals). The headline is
    aligned_fraction: the share of the path cost of the units assigned to a direction the closed
    form uses, each unit assigned to its nearest candidate when that one is within --tolerance
    (docs/theory.md 6), next to baseline_fraction, the same statistic against randomly turned
    candidates. Where a predicted and a rival candidate are under twice the tolerance apart the
    verdict is "ambiguous". Writes neurons.csv, result.json, the trained function beside the
    closed form with its ReLU boundaries, and a histogram of neuron directions over a half disc
    (0-180 degrees: a direction is a line, w and -w count alike).
    """
    from ..workflows import align_run_dir, align_workflow

    if target.is_dir():
        if set_ or seed is not None:
            raise typer.BadParameter(_NOT_FOR_A_RUN.format("fit"), param_hint="--set")
        outcome = align_run_dir(target, tolerance=tolerance, out=out, force=force, figures=figures)
    else:
        r, base = load(target, set_, seed)
        outcome = align_workflow(r, base, tolerance=tolerance, device=device, out=out, force=force,
                                 figures=figures, events=RichEvents(quiet, "compare"))
        if not quiet:
            render.fit(outcome.extra["fit_outcome"].summary)
    if not quiet:
        render.alignment(outcome.summary)
    finish(outcome, as_json, quiet)


@app.command()
def certify(target: Annotated[Path, typer.Argument(metavar="RUN_DIR|RECIPE", help="A `reluden fit` (or align) run "
                              "directory whose network seeds the bounds, or a YAML recipe to fit first and then "
                              "certify.", show_default=False)],
            time_limit: Annotated[float, typer.Option("--time-limit", min=1.0, help="Seconds for the bounds; no "
                                  "round starts that would end after it. Raise it when the gap is still above "
                                  "--tol at the end (exit status 1).")] = 120.0,
            tol: Annotated[float, typer.Option(min=1e-9, help="Stop when upper / lower - 1 is below this (the "
                           "relative width of the certified interval).")] = 1e-3,
            device: FitDeviceOpt = "auto", out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None,
            force: ForceOpt = False, figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False):
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
    Exit status 1 when the gap is still above --tol at the time limit (the bounds are written)
    or a convex program fails ("solver failed: ..." names it).
    """
    from ..workflows import certify_run_dir, certify_workflow

    events = RichEvents(quiet, "certify")
    if target.is_dir():
        if set_ or seed is not None:
            raise typer.BadParameter(_NOT_FOR_A_RUN.format("fit or align"), param_hint="--set")
        outcome = certify_run_dir(target, time_limit=time_limit, tol=tol, out=out, force=force, events=events)
    else:
        r, base = load(target, set_, seed)
        outcome = certify_workflow(r, base, time_limit=time_limit, tol=tol, device=device, out=out, force=force,
                                   figures=figures, events=events)
    if not quiet:
        render.certificate(outcome.summary)
    finish(outcome, as_json, quiet)
