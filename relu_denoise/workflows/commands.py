"""`reluden closed-form`, `compare`, `align` and `certify`: a recipe (or a fit's run) in, a finished run out.

Each builds its problem once (problem.make_problem: points, samples, the reference closed form) before the
run directory exists, so a data error leaves no directory behind, and closes the run with a recorded status
whatever ends it (`Run.recording`).
"""

from pathlib import Path

import numpy as np

from ..errors import RecipeError, RunError, TrainingError
from ..problem import Problem, make_problem
from ..recipe import Recipe, load_recipe
from ..results import AlignSummary, CertifySummary, ClosedFormSummary, CompareSummary
from ..runs import Run, load_run
from .common import Events, Outcome, check_memory_of, data_files, open_training_run, train_one
from .fitting import fit_into, panels

# ---------------------------------------------------------------- closed-form


def closed_form_workflow(recipe: Recipe, base_dir, *, rho=None, query=None, out=None, force=False,
                         figures: bool = True, facts: dict | None = None) -> Outcome:
    """The reference closed form of the recipe (docs/theory.md 1.1; `rho` overrides the rule), as a run.

    Writes ramps.csv, closed_form.png and, with `query` ((n, d) points), predictions.csv. Where no
    closed form applies the run ends with status "no-closed-form" and the failed condition (a result).
    `facts` (here and in every workflow): more manifest entries (a sweep records its command line as `argv`).
    """
    from ..checks import read_points_file

    problem = make_problem(recipe, base_dir)
    queries = read_points_file(query, name="--query", d=problem.points.shape[1]) if query else None
    ref = problem.reference_at(rho)
    files = data_files(recipe, base_dir) + ([Path(query)] if query else [])
    asked = {"query": {"path": str(Path(query).resolve()), "points": len(queries)}} if query else {}
    run = Run.create("closed-form", recipe, out=out, force=force, device="cpu", dtype="float64", data_files=files,
                     figures=figures, **asked, **(facts or {}))
    if query:                                   # the file's sha256 beside its path (data_files has it too)
        run.update(query={**asked["query"], "sha256": run.manifest["data_files"][str(Path(query))]})
    N, d = problem.points.shape
    summary = ClosedFormSummary(ref, N, d, problem.source.info)
    if ref.form is None:
        return Outcome(run, summary, run.finish(summary.status, reason=summary.reason, result=summary.to_dict()))
    with run.recording():
        form = ref.form
        net = form.network                               # each .network is a fresh build: make it once
        run.write_csv("ramps.csv", ["label", "lo", "hi", "height", "slope", "cost"]
                      + [f"u{i}" for i in range(form.dim)] + [f"origin{i}" for i in range(form.dim)],
                      [[p.label, p.lo, p.hi, p.height, p.slope, p.cost, *p.u, *p.origin] for p in form.ramps])
        if queries is not None:
            run.write_csv("predictions.csv", [f"y{i}" for i in range(form.dim)] + [f"h{i}" for i in range(form.dim)],
                          np.hstack([queries, form.predict(queries)]))
        figure = _closed_form_figure(run, form, net, problem.points) if run.figures else None
        summary = ClosedFormSummary(ref, N, d, problem.source.info, net.path_cost().item(), net.width,
                                    figure.name if figure else None)
        return Outcome(run, summary, run.finish("ok", result=summary.to_dict()))


def _closed_form_figure(run: Run, form, net, points):
    from .. import plots

    name = f"closed form ({form.status})"
    title = f"{form.setting}, " + (f"rho = {form.rho:.4g}" if form.rho is not None else "empirical rho")
    return plots.denoiser_figure(run.file("closed_form.png"), {name: form}, points, rho=form.rho,
                                 nets={name: net}, title=title)


# ---------------------------------------------------------------- compare


_COMPARE_COLUMNS = ["noise", "estimator", "mse", "ci_low", "ci_high", "n_test"]


def compare_workflow(recipe: Recipe, base_dir, *, noise: list[float], repeats: int, n_test: int, nn: bool = True,
                     device="auto", out=None, force=False, figures: bool = True, events: Events = Events(),
                     facts: dict | None = None) -> Outcome:
    """Test MSE of the six denoisers at each noise level (docs/theory.md 3), as a run.

    Writes compare.csv, result.json (with `nn_fits`: each fit's cost, residual, steps) and compare.png.
    """
    from ..compare import check_test_points, compare

    dev, fits, fit_nn = "cpu", [], None
    if nn:
        from ..train import resolve_device

        dev = resolve_device(device)
        fit_nn = _nn_fitter(recipe, dev, fits)
    problem = make_problem(recipe, base_dir)             # a data error stops here, before the directory exists
    check_test_points(recipe, problem.source)
    if nn:
        check_memory_of(recipe, problem)
    run = Run.create("compare", recipe, out=out, force=force, device=str(dev), dtype=recipe.train.dtype,
                     data_files=data_files(recipe, base_dir), figures=figures, **(facts or {}))
    done = []

    def on_level(partial) -> None:                       # every finished level is on disk at once
        done[:] = [partial]
        run.write_csv("compare.csv", _COMPARE_COLUMNS, partial.rows())

    with run.recording():
        try:
            with events.tasks(len(noise) * repeats) as advance:
                comparison = compare(recipe, noise, fit_nn=fit_nn, n_test=n_test, repeats=repeats,
                                     base_dir=base_dir, on_fit=advance, on_level=on_level)
        except (KeyboardInterrupt, TrainingError) as exc:
            if isinstance(exc, TrainingError) and exc.reason != "interrupted":
                raise
            summary = CompareSummary(done[0] if done else None, tuple(fits), None,
                                     len(done[0].noise) if done else 0, tuple(noise))
            run.finish(summary.status, reason=summary.reason, result=summary.to_dict())
            raise
        figure = _compare_figure(run, recipe, comparison) if run.figures else None
        summary = CompareSummary(comparison, tuple(fits), figure)
        return Outcome(run, summary, run.finish("ok", result=summary.to_dict()), {"comparison": comparison})


def _compare_figure(run: Run, recipe: Recipe, comparison) -> str:
    from .. import plots

    plots.mse_vs_noise(run.file("compare.png"), comparison.noise,
                       {k: {"mse": comparison.mse[k], "ci_low": comparison.ci_low[k], "ci_high": comparison.ci_high[k]}
                        for k in comparison.mse}, title=f"{recipe.name}: test MSE on {comparison.test_points} points")
    return "compare.png"


def _nn_fitter(recipe: Recipe, device, fits: list):
    """fit_nn(problem) for `compare`: trains with the recipe's model and train sections (train.fit_many, the one
    path, polish included); each fit's facts go to `fits`."""

    def fit_nn(problem: Problem):
        fit = train_one(problem.fit_job(recipe, device=device))
        s = fit.stats
        fits.append({"sigma": problem.noise.scale, "repeat": problem.repeat, "cost": s.cost,
                     "max_residual_rel": s.max_residual_rel, "steps": s.steps, "converged": s.converged,
                     "seconds": s.seconds})
        return fit.net

    return fit_nn


# ---------------------------------------------------------------- align


def align_workflow(recipe: Recipe, base_dir, *, tolerance: float = 5.0, device="auto", out=None, force=False,
                   figures: bool = True, events: Events = Events(), facts: dict | None = None) -> Outcome:
    """Fit the recipe (as `fit` would), then measure how its units align with the data (docs/theory.md 6)."""
    run, problem, dev = open_training_run("align", recipe, base_dir, device, out, force, figures, **(facts or {}))
    with run.recording():
        fitted = fit_into(run, recipe, problem, dev, events, close=False)
        return _align_into(run, recipe, problem, fitted.extra["fit"].net, fitted.result, tolerance,
                           extra={"fit_outcome": fitted})


def align_run_dir(path, *, tolerance: float = 5.0, out=None, force=False, figures: bool = True) -> Outcome:
    """Measure the alignment of the network of a finished fit (or align) run directory, into a new run."""
    recipe, base, net, fit_result, path = trained_run(path, "align")
    problem = make_problem(recipe, base)
    run = Run.create("align", recipe, out=out, force=force, source_run=str(path), recipe_dir=str(base.resolve()),
                     figures=figures)
    with run.recording():
        return _align_into(run, recipe, problem, net, fit_result, tolerance)


def trained_run(path, command: str):
    """(recipe, base folder, network, fit result, path) of a finished fit or align run directory; RunError
    naming a missing, corrupt or foreign file."""
    from ..network import ShallowDenoiser

    manifest, fit_result, path = load_run(path)
    if manifest.get("command") not in ("fit", "align") or not (path / "model.pt").is_file():
        raise RunError(f"{path}: a `{manifest.get('command', '?')}` run directory, not a finished fit run "
                       f"(no model.pt); {command} needs a fit (or align) run directory or a recipe")
    recipe, _ = load_recipe(path / "recipe.yaml")
    net, _ = ShallowDenoiser.load(path / "model.pt")
    if manifest["command"] == "align":
        fit_result = fit_result.get("fit", {})       # an align run keeps its fit's summary under "fit"
    return recipe, Path(manifest.get("recipe_dir", path)), net, fit_result, path


def _align_into(run: Run, recipe: Recipe, problem: Problem, net, fit_result: dict, tolerance: float,
                extra: dict | None = None) -> Outcome:
    from ..align import align_report
    from ..metrics import function_gap, plane_gap
    from ..problem import rng

    ref, points = problem.reference, problem.points
    report = align_report(net, points, tolerance_deg=tolerance, rng=rng(recipe.seed, "align-baseline"), form=ref.form)
    gap = plane = None
    if ref.form is not None:
        gap = function_gap(net, ref.form, points, scale=recipe.noise.scale)
        if report.affine_dim == 2 and report.dim > 2:
            plane = plane_gap(net, ref.form, points)
    run.write_csv("neurons.csv", list(report.neurons), [list(row.values()) for row in report.neuron_rows()])
    figures = tuple(_align_figures(run, recipe, net, ref, points, report)) if run.figures else ()
    summary = AlignSummary(report, ref, fit_result, gap, plane, figures)
    result = run.finish(summary.status, reason=summary.reason, result=summary.to_dict())
    return Outcome(run, summary, result, {"report": report, **(extra or {})})


def _align_figures(run: Run, recipe: Recipe, net, ref, points, report) -> list[str]:
    from .. import plots

    d, names = points.shape[1], []
    h, nets = panels(net, ref)
    verdict = (f"ambiguous (predicted and rival {report.separation_deg:.1f} degrees apart)" if report.ambiguous
               else f"aligned fraction {report.aligned_fraction:.2f} (chance {report.baseline_fraction:.2f})")
    title = f"{recipe.name}: {verdict}"
    if d == 2:
        names.append(plots.contours_2d(run.file("align.png"), h, points, nets=nets, title=title).name)
        angles, weights = plots.neuron_angles_2d(net)
        cands = plots.candidate_angles_2d(report.directions)
    elif report.affine_dim == 2 and len(points) == 3:
        names.append(plots.plane_contours(run.file("align.png"), h, points, nets=nets, title=title).name)
        angles, weights = plots.neuron_angles_plane(net, points)
        cands = plots.candidate_angles_plane(report.directions, points)
    else:
        return names
    names.append(plots.direction_histogram(run.file("directions.png"), angles, weights, candidates=cands,
                                           predicted=set(report.predicted), title=title).name)
    return names


# ---------------------------------------------------------------- certify


def certify_workflow(recipe: Recipe, base_dir, *, time_limit: float = 120.0, tol: float = 1e-3, device="auto",
                     out=None, force=False, figures: bool = True, events: Events = Events(),
                     facts: dict | None = None) -> Outcome:
    """Fit the recipe (as `fit` would), then certify [lower, upper] on the minimum cost (docs/theory.md 8)."""
    from ..certificates import check_certify_memory

    _check_certifiable(recipe)
    run, problem, dev = open_training_run("certify", recipe, base_dir, device, out, force, figures,
                                          checks=[lambda p: check_certify_memory(*p.samples.shape)], **(facts or {}))
    with run.recording():
        fitted = fit_into(run, recipe, problem, dev, events, close=False)
        return _certify_into(run, recipe, problem, fitted.extra["fit"].net, fitted.result, time_limit, tol, events)


def certify_run_dir(path, *, time_limit: float = 120.0, tol: float = 1e-3, out=None, force=False,
                    events: Events = Events()) -> Outcome:
    """Certify the recipe of a finished fit (or align) run, seeded with its network, into a new run."""
    from ..certificates import check_certify_memory

    recipe, base, net, fit_result, path = trained_run(path, "certify")
    _check_certifiable(recipe)
    problem = make_problem(recipe, base)
    check_certify_memory(*problem.samples.shape)
    run = Run.create("certify", recipe, out=out, force=force, source_run=str(path), recipe_dir=str(base.resolve()))
    with run.recording():
        return _certify_into(run, recipe, problem, net, fit_result, time_limit, tol, events)


def _check_certifiable(recipe: Recipe) -> None:
    if recipe.noise.mode != "offline":
        raise RecipeError("noise.mode: certify bounds the cost of interpolating fixed samples; an online recipe has "
                          "none (set noise.mode: offline)")


def _certify_into(run: Run, recipe: Recipe, problem: Problem, net, fit_result: dict, time_limit: float,
                  tol: float, events: Events) -> Outcome:
    from ..certificates import certify, polish
    from ..errors import SolverError
    from ..problem import rng

    ref = problem.reference
    seeds = [net] + ([ref.form.network] if ref.form is not None else [])
    with events.tasks(None) as advance:
        cert = certify(problem.points, problem.samples, networks=seeds, time_limit=time_limit, tol=tol,
                       rng=rng(recipe.seed, "certify"),
                       on_round=lambda r: advance(f"round {r['round']}: [{r['lower']:.6g}, {r['upper']:.6g}]"))
    cert.network.save(run.file("model.pt"), recipe=recipe.model_dump(mode="json"), stats=cert.to_dict())
    pol = {"cost_before": fit_result.get("cost"), "max_residual_before": fit_result.get("max_residual")}
    try:        # exact only: the residual-bounded program has a cone per sample (minutes at N M = 4000)
        polished = polish(net, problem.points, problem.samples, exact=True)
        pol.update(cost_after=polished.cost, max_residual_after=polished.max_residual)
    except (SolverError, TrainingError) as exc:       # a failed program; units that cannot interpolate exactly
        pol["reason"] = str(exc)
    run.write_csv("history.csv", ["round", "lower", "upper"],
                  [[i + 1, h.get("lower"), h.get("upper")] for i, h in enumerate(cert.history)])
    summary = CertifySummary(cert, ref, fit_result, pol)
    result = run.finish(summary.status, reason=summary.reason, result=summary.to_dict())
    return Outcome(run, summary, result, {"certificate": cert})
