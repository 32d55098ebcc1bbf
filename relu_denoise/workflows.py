"""One function per command: a recipe and options in, a finished run directory and its result out.

    closed_form_workflow(recipe, base_dir, ...)   `reluden closed-form`
    fit_workflow(recipe, base_dir, ...)           `reluden fit`  (resume_fit: `reluden fit --resume`)
    compare_workflow(recipe, base_dir, ...)       `reluden compare`
    align_workflow(recipe, base_dir, ...)         `reluden align RECIPE`  (align_run_dir: `align RUN_DIR`)
    certify_workflow(recipe, base_dir, ...)       `reluden certify RECIPE` (certify_run_dir: `certify RUN_DIR`)

This is the only module that strings the steps together (recipe -> data -> denoisers ->
metrics -> run files). It never imports `cli`: progress reaches the console through an
`Events` object the caller passes in. Every workflow draws its data before the run directory
exists, so a data error leaves no directory behind, and closes the run with a recorded status
whatever ends it (`Run.recording`).
"""

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .closed_forms import Reference, reference_form
from .errors import RunError, SolverError, TrainingError
from .recipe import Recipe, TrainSpec, load_recipe
from .runs import Run, ending, load_run
from .problem import TrainingSet, training_set


class Events:
    """How a workflow reports progress. This default is silent; `cli` passes a rich one."""

    def training(self, steps: int):
        """A context manager yielding the training callback (called at every check with a record), or None."""
        return contextlib.nullcontext(None)

    def tasks(self, total: int | None):
        """A context manager yielding `advance(message)`, called once per finished task."""
        return contextlib.nullcontext(lambda message: None)


@dataclass
class Outcome:
    """What a workflow leaves: its run, the result written as result.json, and objects the summary shows."""

    run: Run
    result: dict
    reference: Reference | None = None
    extra: dict = field(default_factory=dict)   # fit, report, comparison, ... (the command's own objects)

    @property
    def status(self) -> str:
        return self.result.get("status", "ok")


# ---------------------------------------------------------------- closed-form


def closed_form_workflow(recipe: Recipe, base_dir, *, rho=None, query=None, out=None, force=False,
                         figures: bool = True) -> Outcome:
    """The reference closed form of the recipe (docs/theory.md 1.1; `rho` overrides the rule), as a run.

    Writes ramps.csv, closed_form.png and, with `query` ((n, d) points), predictions.csv. Where no
    closed form applies the run ends with status "no-closed-form" and the failed condition (a result).
    """
    from .checks import read_points_file

    data = training_set(recipe, base_dir)
    queries = read_points_file(query, name="--query", d=data.points.shape[1]) if query else None
    ref = reference_form(data.points, recipe.noise, data.samples, rho=rho)
    run = Run.create("closed-form", recipe, out=out, force=force, device="cpu", dtype="float64",
                     data_files=_data_files(recipe, base_dir), figures=figures)
    form = ref.form
    if form is None:
        result = {**ref.to_dict(), "n_points": len(data.points), "dim": data.points.shape[1],
                  "data": data.source.info}
        run.finish("no-closed-form", reason=ref.reason, result=result)
        return Outcome(run, result, ref)
    with run.recording():
        net = form.network                               # each .network is a fresh build: make it once
        result = {"geometry": form.geometry, "closed_form": ref.to_dict(), "rho": ref.rho, "rho_rule": ref.rho_rule,
                  "cost": net.path_cost().item(), "cost_formula": form.cost_formula,
                  "formula": form.formula, "units": net.width, "ramps": len(form.ramps), "dim": form.dim,
                  "affine_dim": form.affine_dim, "n_points": form.n_points, "notes": form.notes,
                  "data": data.source.info}
        run.write_csv("ramps.csv", ["label", "lo", "hi", "height", "slope", "cost"]
                      + [f"u{i}" for i in range(form.dim)] + [f"origin{i}" for i in range(form.dim)],
                      [[p.label, p.lo, p.hi, p.height, p.slope, p.cost, *p.u, *p.origin] for p in form.ramps])
        if queries is not None:
            run.write_csv("predictions.csv", [f"y{i}" for i in range(form.dim)] + [f"h{i}" for i in range(form.dim)],
                          np.hstack([queries, form.predict(queries)]))
        figure = _closed_form_figure(run, form, net, data.points) if run.figures else None
        if figure:
            result["figure"] = figure.name
        run.finish("ok", result=result)
    return Outcome(run, result, ref)


def _closed_form_figure(run: Run, form, net, points):
    from . import plots

    name = f"closed form ({form.status})"
    title = f"{form.geometry}, rho = {form.rho:.4g}" if form.rho is not None else f"{form.geometry}, empirical rho"
    return plots.denoiser_figure(run.file("closed_form.png"), {name: form.predict}, points, rho=form.rho,
                                 nets={name: net}, title=title)


# ---------------------------------------------------------------- fit


def fit_workflow(recipe: Recipe, base_dir, *, out=None, force=False, device="auto", figures: bool = True,
                 events: Events = Events()) -> Outcome:
    """Train the recipe's denoiser to min-cost interpolation (docs/theory.md 9) into a new run directory.

    Writes model.pt, checkpoint.pt, history.csv, result.json, fit.png and training.png. The result's
    status is "ok" (max residual within train.tol) or "not-converged"; a diverged or interrupted
    fit raises TrainingError after recording the status and reason in the manifest.
    """
    run, data, dev = _open_training_run("fit", recipe, base_dir, device, out, force, figures)
    with run.recording():
        return _fit_into(run, recipe, data, dev, events, resume=False)


def _open_training_run(command: str, recipe: Recipe, base_dir, device, out, force, figures=True):
    """(run, training set, device) of a command that trains: data drawn and the regime and memory checked
    before the run directory exists."""
    data = training_set(recipe, base_dir)
    check_regime(recipe, data)                           # before torch is imported: a refusal is quick
    check_fit_memory(recipe, data)
    from .train import resolve_device

    dev = resolve_device(device)
    run = Run.create(command, recipe, out=out, force=force, device=str(dev), dtype=recipe.train.dtype,
                     recipe_dir=str(Path(base_dir).resolve()), data_files=_data_files(recipe, base_dir),
                     figures=figures)
    if figures:
        _import_plots_meanwhile()
    return run, data, dev


def _import_plots_meanwhile() -> None:
    """Import matplotlib (through .plots) on a background thread while the run trains: the import is 0.3 s of
    the 1.0 s that a fit's two figures cost drawn cold, and training leaves the interpreter idle most of the
    time (torch's kernels release the GIL). The module lock makes a later `from . import plots` wait for it."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=(f"{__package__}.plots",), daemon=True).start()


def resume_fit(run_dir, *, device=None, steps: int | None = None, figures: bool = True,
               events: Events = Events()) -> Outcome:
    """Continue a fit from RUN_DIR/checkpoint.pt with the run's own recipe (interrupted, failed or killed).

    A finished run (ok, not-converged) is refused unless `steps` extends it beyond the steps it ran;
    the manifest records each resume.
    """
    from .recipe import recipe_to_yaml
    from .train import resolve_device

    manifest, result, path = load_run(run_dir)
    if manifest.get("command") != "fit" or not (path / "checkpoint.pt").is_file():
        raise RunError(f"--resume {path}: not a fit run with a checkpoint.pt")
    recipe, _ = load_recipe(path / "recipe.yaml")
    done = result.get("steps")
    if manifest.get("status") in ("ok", "not-converged") and (steps is None or steps <= (done or 0)):
        raise RunError(f"--resume {path}: the run finished ({manifest['status']}, {done} steps); to extend it give "
                       f"more steps: --set train.steps=N with N > {done}")
    if steps is not None:
        recipe = recipe.model_copy(update={"train": recipe.train.model_copy(update={"steps": steps})})
    base = Path(manifest.get("recipe_dir", path))
    data = training_set(recipe, base)
    dev = resolve_device(device or manifest.get("device", "auto"))
    run = Run(path, manifest, figures)
    resumes = [*manifest.get("resumes", []), {"start": _now(), "from_status": manifest.get("status"),
                                              "steps": recipe.train.steps}]
    run.update(status="running", end=None, reason=None, resumes=resumes, device=str(dev))
    if steps is not None:
        from .files import atomic_write_text

        atomic_write_text(path / "recipe.yaml", recipe_to_yaml(recipe))
    with run.recording():
        return _fit_into(run, recipe, data, dev, events, resume=True)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _data_files(recipe: Recipe, base_dir) -> list[Path]:
    """The user's data file, if the recipe reads one (its sha256 goes into the manifest)."""
    path = getattr(recipe.data, "path", None)
    return [Path(base_dir) / path] if recipe.data.kind == "file" and path else []


def check_regime(recipe: Recipe, data: TrainingSet) -> None:
    """Refuse at once what training cannot answer (RecipeError, exit 2): overlapping noise clouds (unless
    train.allow_overlap) and N M <= d + 1 with the free affine part (cost 0 is the answer); docs/theory.md 1."""
    from .errors import RecipeError

    overlap = data.overlap()
    if overlap and not recipe.train.allow_overlap:
        raise RecipeError(overlap)
    trivial = data.trivial()
    if trivial and recipe.model.skip:
        raise RecipeError(trivial)


def check_fit_memory(recipe: Recipe, data: TrainingSet) -> None:
    """Refuse a fit whose working set cannot fit in the available memory, with the estimate and the limit.

    Estimate: three (K, P) buffers of the forward/backward pass, the (d, P) inputs, targets, residuals and
    multipliers, and the (K + d + 1)^2 output solve, P = N M, in the training dtype (docs/theory.md 9.8).
    """
    from .checks import check_memory

    N, d = data.points.shape
    P, K = N * (data.samples.shape[1] if data.samples is not None else recipe.noise.samples), recipe.model.width
    if K is None:
        from .train import choose_width

        K = choose_width(N, d)
    item = 8 if recipe.train.dtype == "float64" else 4
    need = item * (3 * K * P + 5 * d * P + (K + d + 1) ** 2 + 8 * (2 * K * d + d * d))
    check_memory(need, what=f"fit (width {K} x {P} samples x 3 buffers)", fix="lower model.width or noise.samples")


def _fit_into(run: Run, recipe: Recipe, data: TrainingSet, device, events: Events, *, resume: bool,
              close: bool = True) -> Outcome:
    """Train into `run`; `close` ends the run with the fit's status (align keeps it open for its analysis)."""
    import torch

    from .train import fit_denoiser, load_checkpoint

    ref = reference_form(data.points, recipe.noise, data.samples)
    state = load_checkpoint(run.file("checkpoint.pt")) if resume else None
    try:
        with events.training(recipe.train.steps) as on_check:
            fit = fit_denoiser(data.points, recipe.noise if data.samples is None else data.samples, recipe.model,
                               recipe.train, generator=torch.Generator().manual_seed(data.init_seed),
                               device=device, callback=on_check, checkpoint=run.file("checkpoint.pt"), resume=state)
    except TrainingError as exc:
        raise _training_ended(run, exc) from None
    return _fitted(run, recipe, data, fit, ref, close)


def _training_ended(run: Run, exc: TrainingError) -> TrainingError:
    """The error a fit that did not finish raises: its history written, and for an interrupted fit the command
    that continues it."""
    _write_history(run, exc.history)
    if exc.reason != "interrupted":
        return exc
    return TrainingError(f"{exc}; continue with: reluden fit --resume {run.path}", reason=exc.reason,
                         history=exc.history)


def _fitted(run: Run, recipe: Recipe, data: TrainingSet, fit, ref: Reference, close: bool = True) -> Outcome:
    """Write a finished fit's files (history, model, result, figures) and, if `close`, end the run."""
    _write_history(run, fit.history)
    polished = polish_fit(recipe.train, data.points, data.samples, fit)
    fit.net.save(run.file("model.pt"), recipe=recipe.model_dump(mode="json"), stats=fit.stats)
    result = fit_summary(recipe, fit, ref, data.points)
    if polished is not None:
        result["polish"] = polished
    if run.figures:
        result["figures"] = _fit_figures(run, recipe, fit, ref, data)
    if close:
        run.finish(result["status"], reason=result.get("reason"), result=result)
    return Outcome(run, result, ref, {"fit": fit})


_POLISH_MAX_SAMPLES = 4096    # the cone program works on an (N M)^2 orthogonal complement


def polish_fit(train: TrainSpec, points: np.ndarray, samples: np.ndarray | None, fit) -> dict | None:
    """Give the trained units their least-path-cost output layer (certify.polish, an exact cone program) where
    that costs less and interpolates as well; update fit.net and fit.stats; return what was done.

    Why: the trainer returns an exact interpolant whose output layer is the least-squares one, which spreads
    cost over every unit that helps. On the 126-degree digits triangle (d = 64) it left the fit at 1.33 x the
    closed form with 157 active units, where the same units with least-cost outputs are at 1.001 x with 6
    (docs/theory.md 9.4). The paper's weight-decay method and online fits are left as trained; the ramps method's
    output layer already has the least cost for its ramps (9.12).
    """
    if not train.polish or samples is None or train.method in ("weight-decay", "ramps"):
        return None
    N, M, _ = samples.shape
    if N * M > _POLISH_MAX_SAMPLES:
        return {"applied": False, "reason": f"skipped: N M = {N * M} samples > {_POLISH_MAX_SAMPLES}"}
    s = fit.stats
    if s["max_residual"] > train.tol * s["residual_unit"]:            # nothing exact to make cheaper
        return {"applied": False, "reason": f"skipped: the fit does not interpolate (max residual "
                f"{s['max_residual_rel'] / train.tol:.3g} x tol)"}
    from .certificates import polish

    try:
        pol = polish(fit.net, points, samples, exact=True)
    except (SolverError, TrainingError) as exc:      # a cone program failed, or the units cannot interpolate
        return {"applied": False, "reason": str(exc)}
    allowed = train.tol * s["residual_unit"]                           # the fit itself is within it (above)
    info = {"applied": bool(pol.cost < s["cost"] and pol.max_residual <= allowed), "cost_before": s["cost"],
            "cost": pol.cost, "max_residual": pol.max_residual}
    if info["applied"]:
        net = pol.network.balance()
        Y, T = samples.reshape(N * M, -1), np.repeat(points, M, axis=0)
        fit.net = net
        s.update(cost=pol.cost, max_residual=pol.max_residual, max_residual_rel=pol.max_residual / s["residual_unit"],
                 train_mse=float(np.mean((net.predict(Y) - T) ** 2)))
    return info


def fit_together_workflow(jobs: list, *, device="auto", figures: bool = True) -> list:
    """`fit_workflow` for several recipes at once, for sweeps: fits that share one data shape (seeds and noise
    levels of one geometry) train together as one network with stacked weights (train/batched.py;
    docs/theory.md 9.11), the others one after another. Each ends in its own run directory exactly as
    `fit_workflow` leaves it, with the same weights bit for bit.

    jobs: (recipe, base_dir, out) each. Returns, per job, its Outcome or the exception that ended it (recorded
    in its run, when the run was created). Ctrl-C interrupts every fit still training (each saves its
    checkpoint and records "interrupted"); a second one ends at once, every open run recording it.
    """
    import torch

    from .train import Trainer
    from .train.batched import batchable, fit_together, shape_key

    outcomes: list = [None] * len(jobs)
    started = []                                             # (job index, run, recipe, data, trainer)
    for i, (recipe, base, out) in enumerate(jobs):
        if recipe.train.method == "ramps":                   # trains nothing: nothing to step together
            try:
                outcomes[i] = fit_workflow(recipe, base, out=out, force=True, device=device, figures=figures)
            except Exception as exc:                          # noqa: BLE001 (recorded in its run)
                outcomes[i] = exc
            continue
        try:
            run, data, dev = _open_training_run("fit", recipe, base, device, out, True, figures)
            with run.recording():
                trainer = Trainer(data.points, recipe.noise if data.samples is None else data.samples,
                                  recipe.model, recipe.train, generator=torch.Generator().manual_seed(data.init_seed),
                                  device=dev)
            started.append((i, run, recipe, data, trainer))
        except Exception as exc:
            outcomes[i] = exc
    groups: dict = {}
    for item in started:
        groups.setdefault(shape_key(item[4]), []).append(item)
    try:
        for group in groups.values():
            trainers = [item[4] for item in group]
            checkpoints = [item[1].file("checkpoint.pt") for item in group]
            if len(group) > 1 and batchable(trainers) is None:
                fits = fit_together(trainers, checkpoints=checkpoints)
            else:
                fits = [_run_alone(t, c) for t, c in zip(trainers, checkpoints)]
            for (i, run, recipe, data, _), fit in zip(group, fits):
                outcomes[i] = _end_fit(run, recipe, data, fit)
    except BaseException as exc:                             # a second Ctrl-C, or worse: every open run records it
        for _, run, *_ in started:
            if run.manifest.get("status") == "running":
                run.finish(*ending(exc))
        raise
    return outcomes


def _run_alone(trainer, checkpoint):
    try:
        return trainer.run(checkpoint=checkpoint)
    except TrainingError as exc:
        return exc


def _end_fit(run: Run, recipe: Recipe, data: TrainingSet, fit):
    """A grouped fit's FitResult or TrainingError into its run: the Outcome, or the recorded exception."""
    try:
        with run.recording():
            if isinstance(fit, TrainingError):
                raise _training_ended(run, fit)
            return _fitted(run, recipe, data, fit, reference_form(data.points, recipe.noise, data.samples))
    except Exception as exc:
        return exc


def _write_history(run: Run, history: dict) -> None:
    from .train import HISTORY_COLUMNS

    if history and history.get("step"):
        run.write_csv("history.csv", HISTORY_COLUMNS, zip(*(history[k] for k in HISTORY_COLUMNS)))


_SHARE = 1e-3           # units with a smaller share of the path cost are not counted as active


def _more_steps(history: dict, stats: dict) -> str:
    """Whether more steps could help, as the recorded max residuals say: the lowest of the last fifth of the
    checks against the lowest of the fifth before. On patches (docs/theory.md 9.10) the residual stays near
    the noise norm for most of the 20,000 steps, where "raise train.steps" was advice nobody had checked."""
    r = [v for v in history.get("max_residual", []) if v is not None]
    n = len(r) // 5
    if n < 2:
        return " (raise train.steps)"
    last, before = min(r[-n:]), min(r[-2 * n:-n])
    if last < 0.9 * before:
        return " (the max residual was still falling: raise train.steps)"
    unit = stats["residual_unit"]
    return (f" (the max residual stopped falling: lowest {last / unit:.3g} x min(ell, rho) over the last {n} checks "
            f"against {before / unit:.3g} before them, so more steps are unlikely to help)")


def fit_summary(recipe: Recipe, fit, ref: Reference, points: np.ndarray) -> dict:
    """result.json of a fit: the training stats beside the reference closed form (design.md, result.json)."""
    import torch

    from .metrics import function_gap

    s, tol = fit.stats, recipe.train.tol
    with torch.no_grad():
        shares = fit.net.unit_costs() / max(float(fit.net.path_cost()), 1e-300)
    result = {k: s[k] for k in ("cost", "train_mse", "max_residual", "steps", "seconds", "device", "dtype")}
    result.update({k: s[k] for k in ("min_distance", "rho", "affine_residual", "affine_residual_rel", "threads",
                                     "lower_bound", "directions", "ramps") if k in s})
    result.update(max_residual_rel=s["max_residual_rel"], residual_unit=s["residual_unit"], tol=tol,
                  method=s["method"], mode=s["mode"], converged=s["converged"], stop_reason=s["stop_reason"],
                  units=fit.net.width, active_units=int((shares >= _SHARE).sum()), closed_form=ref.to_dict())
    if ref.form is not None:
        form = ref.form
        ratio = s["cost"] / form.cost_formula if form.cost_formula > 0 else None   # one point: cost 0
        result.update(closed_form_cost=form.cost_formula, cost_ratio=ratio,
                      function_gap=function_gap(fit.net, form, points, scale=recipe.noise.scale))
    ok = s["max_residual_rel"] <= tol
    result["status"] = "ok" if ok else "not-converged"
    if not ok:
        result["reason"] = (f"did not converge: max residual {s['max_residual_rel']:.3g} x min(ell, rho) > "
                            f"train.tol = {tol:g} after {s['steps']} steps" + _more_steps(fit.history, s))
    elif not s["converged"] and s["stop_reason"] == "max-steps":
        result["note"] = "the path cost was still falling at train.steps; raise it for a tighter cost"
    return result


def _panels(net, ref: Reference) -> tuple[dict, dict]:
    """The denoisers a figure draws (trained, and the closed form where one exists) and their networks, whose
    ReLU boundaries it draws (the trained one pruned to its live units)."""
    h, nets = {"trained": net.predict}, {"trained": net.prune(1e-6)[0]}
    if ref.form is not None:
        name = f"closed form ({ref.form.status})"
        h[name], nets[name] = ref.form.predict, ref.form.network
    return h, nets


def _fit_figures(run: Run, recipe: Recipe, fit, ref: Reference, data: TrainingSet) -> list[str]:
    from . import plots

    h, nets = _panels(fit.net, ref)
    rho = ref.form.rho if ref.form is not None else None
    title = f"{recipe.name}: trained ({fit.stats['method']}) vs closed form"
    names = []
    figure = plots.denoiser_figure(run.file("fit.png"), h, data.points, rho=rho, nets=nets, samples=data.samples,
                                   title=title)
    if figure:
        names.append(figure.name)
    refs = {"cost": ref.form.cost_formula} if ref.form is not None else None
    names.append(plots.training_curves(run.file("training.png"), fit.history, references=refs,
                                       title=f"{recipe.name}: {fit.stats['method']}").name)
    return names


# ---------------------------------------------------------------- compare


_COMPARE_COLUMNS = ["noise", "estimator", "mse", "ci_low", "ci_high", "n_test"]


def compare_workflow(recipe: Recipe, base_dir, *, noise: list[float], repeats: int, n_test: int, nn: bool = True,
                     device="auto", out=None, force=False, figures: bool = True, events: Events = Events()) -> Outcome:
    """Test MSE of the six denoisers at each noise level (docs/theory.md 3), as a run.

    Writes compare.csv, result.json (with `nn_fits`: each fit's cost, residual, steps) and compare.png.
    """
    from .compare import compare

    dev, fits = "cpu", []
    fit_nn = None
    if nn:
        from .train import resolve_device

        dev = resolve_device(device)
        fit_nn = _nn_fitter(recipe, dev, fits)
    data = training_set(recipe, base_dir)                # a data error stops here, before the directory exists
    if nn:
        check_fit_memory(recipe, data)
    run = Run.create("compare", recipe, out=out, force=force, device=str(dev), dtype=recipe.train.dtype,
                     data_files=_data_files(recipe, base_dir), figures=figures)
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
            result = {**(done[0].to_dict() if done else {}), "levels_requested": list(noise), "nn_fits": fits}
            run.finish("interrupted", reason=f"interrupted after {len(done[0].noise) if done else 0} of "
                       f"{len(noise)} noise levels (the finished ones are in compare.csv and result.json)",
                       result=result)
            raise
        result = comparison.to_dict()
        if fits:
            result["nn_fits"] = fits
        if run.figures:
            from . import plots

            plots.mse_vs_noise(run.file("compare.png"), comparison.noise,
                               {k: {"mse": comparison.mse[k], "ci_low": comparison.ci_low[k],
                                    "ci_high": comparison.ci_high[k]} for k in comparison.mse},
                               title=f"{recipe.name}: test MSE on {comparison.test_points} points")
            result["figure"] = "compare.png"
        run.finish("ok", result=result)
    return Outcome(run, result, None, {"comparison": comparison, "fits": fits})


def _nn_fitter(recipe: Recipe, device, fits: list):
    """fit_nn(data) for `compare`: trains with the recipe's model and train sections; stats go to `fits`."""
    import torch

    from .train import fit_denoiser

    def fit_nn(data: TrainingSet):
        fit = fit_denoiser(data.points, data.samples, recipe.model, recipe.train, device=device,
                           generator=torch.Generator().manual_seed(data.init_seed))
        polish_fit(recipe.train, data.points, data.samples, fit)   # the network `fit` returns, at every level
        fits.append({"sigma": data.noise.scale, "repeat": data.repeat,
                     **{k: fit.stats[k] for k in ("cost", "max_residual_rel", "steps", "converged", "seconds")}})
        return fit.net

    return fit_nn


# ---------------------------------------------------------------- align


def align_workflow(recipe: Recipe, base_dir, *, tolerance: float = 5.0, device="auto", out=None, force=False,
                   figures: bool = True, events: Events = Events()) -> Outcome:
    """Fit the recipe (as `fit` would), then measure how its units align with the data (docs/theory.md 6)."""
    run, data, dev = _open_training_run("align", recipe, base_dir, device, out, force, figures)
    with run.recording():
        fitted = _fit_into(run, recipe, data, dev, events, resume=False, close=False)
        return _align_into(run, recipe, data, fitted.extra["fit"].net, fitted.result, tolerance,
                           extra={"fit_outcome": fitted})


def align_run_dir(path, *, tolerance: float = 5.0, out=None, force=False, figures: bool = True) -> Outcome:
    """Measure the alignment of the network of a finished fit (or align) run directory, into a new run."""
    recipe, base, net, fit_result, path = _trained_run(path, "align")
    data = training_set(recipe, base)
    run = Run.create("align", recipe, out=out, force=force, source_run=str(path), recipe_dir=str(base.resolve()),
                     figures=figures)
    with run.recording():
        return _align_into(run, recipe, data, net, fit_result, tolerance)


def _trained_run(path, command: str):
    """(recipe, base folder, network, fit result, path) of a finished fit or align run directory."""
    from .network import ShallowDenoiser

    manifest, fit_result, path = load_run(path)
    if manifest.get("command") not in ("fit", "align") or not (path / "model.pt").is_file():
        raise RunError(f"{path}: a `{manifest.get('command', '?')}` run directory, not a finished fit run "
                       f"(no model.pt); {command} needs a fit (or align) run directory or a recipe")
    recipe, _ = load_recipe(path / "recipe.yaml")
    net, _ = ShallowDenoiser.load(path / "model.pt")
    if manifest["command"] == "align":
        fit_result = fit_result.get("fit", {})       # an align run keeps its fit's summary under "fit"
    return recipe, Path(manifest.get("recipe_dir", path)), net, fit_result, path


def _align_into(run: Run, recipe: Recipe, data: TrainingSet, net, fit_result: dict, tolerance: float,
                extra: dict | None = None) -> Outcome:
    from .align import align_report
    from .metrics import function_gap, plane_gap
    from .problem import rng

    ref = reference_form(data.points, recipe.noise, data.samples)
    form = ref.form
    report = align_report(net, data.points, tolerance_deg=tolerance, rng=rng(recipe.seed, "align-baseline"),
                          form=form)
    result = report.to_dict()
    for k in ("geometry", "status", "rho"):              # they describe the closed form, not the run
        result.pop(k, None)
    result.update(closed_form=ref.to_dict(), fit=fit_result)
    if form is not None:
        result["function_gap"] = function_gap(net, form, data.points, scale=recipe.noise.scale)
        if report.affine_dim == 2 and report.dim > 2:
            result["plane_gap"] = plane_gap(net, form, data.points)
    run.write_csv("neurons.csv", list(report.neurons), [list(row.values()) for row in report.neuron_rows()])
    if run.figures:
        result["figures"] = _align_figures(run, recipe, net, ref, data.points, report)
    status = fit_result.get("status", "ok")
    run.finish(status, reason=fit_result.get("reason"), result=result)
    return Outcome(run, result, ref, {"report": report, **(extra or {})})



def _align_figures(run: Run, recipe: Recipe, net, ref: Reference, points, report) -> list[str]:
    from . import align as al
    from . import plots

    d, names = points.shape[1], []
    h, nets = _panels(net, ref)
    verdict = (f"ambiguous (predicted and rival {report.separation_deg:.1f} degrees apart)" if report.ambiguous
               else f"aligned fraction {report.aligned_fraction:.2f} (chance {report.baseline_fraction:.2f})")
    title = f"{recipe.name}: {verdict}"
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


# ---------------------------------------------------------------- certify


def certify_workflow(recipe: Recipe, base_dir, *, time_limit: float = 120.0, tol: float = 1e-3, device="auto",
                     out=None, force=False, figures: bool = True, events: Events = Events()) -> Outcome:
    """Fit the recipe (as `fit` would), then certify [lower, upper] on the minimum cost (docs/theory.md 8)."""
    if recipe.noise.mode != "offline":
        raise _online_refusal()
    run, data, dev = _open_training_run("certify", recipe, base_dir, device, out, force, figures)
    with run.recording():
        fitted = _fit_into(run, recipe, data, dev, events, resume=False, close=False)
        return _certify_into(run, recipe, data, fitted.extra["fit"].net, fitted.result, time_limit, tol, events)


def certify_run_dir(path, *, time_limit: float = 120.0, tol: float = 1e-3, out=None, force=False,
                    events: Events = Events()) -> Outcome:
    """Certify the recipe of a finished fit (or align) run, seeded with its network, into a new run."""
    recipe, base, net, fit_result, path = _trained_run(path, "certify")
    if recipe.noise.mode != "offline":
        raise _online_refusal()
    data = training_set(recipe, base)
    run = Run.create("certify", recipe, out=out, force=force, source_run=str(path), recipe_dir=str(base.resolve()))
    with run.recording():
        return _certify_into(run, recipe, data, net, fit_result, time_limit, tol, events)


def _online_refusal():
    from .errors import RecipeError

    return RecipeError("noise.mode: certify bounds the cost of interpolating fixed samples; an online recipe has "
                       "none (set noise.mode: offline)")


def _certify_into(run: Run, recipe: Recipe, data: TrainingSet, net, fit_result: dict, time_limit: float,
                  tol: float, events: Events) -> Outcome:
    from .certificates import certify, polish
    from .problem import rng

    ref = reference_form(data.points, recipe.noise, data.samples)
    seeds = [net] + ([ref.form.network] if ref.form is not None else [])
    with events.tasks(None) as advance:
        cert = certify(data.points, data.samples, networks=seeds, time_limit=time_limit, tol=tol,
                       rng=rng(recipe.seed, "certify"),
                       on_round=lambda r: advance(f"round {r['round']}: [{r['lower']:.6g}, {r['upper']:.6g}]"))
    cert.network.save(run.file("model.pt"), recipe=recipe.model_dump(mode="json"), stats=cert.to_dict())
    pol = {"cost_before": fit_result.get("cost"), "max_residual_before": fit_result.get("max_residual")}
    try:        # exact only: the residual-bounded program has a cone per sample (minutes at N M = 4000)
        polished = polish(net, data.points, data.samples, exact=True)
        pol.update(cost_after=polished.cost, max_residual_after=polished.max_residual)
    except (SolverError, TrainingError) as exc:
        pol["reason"] = str(exc)
    result = {**cert.to_dict(), "closed_form": ref.to_dict(), "fit": fit_result, "polish": pol}
    if ref.form is not None:
        result["closed_form"].update(_position(ref.form.cost_formula, cert))
    run.write_csv("history.csv", ["round", "lower", "upper"],
                  [[i + 1, h.get("lower"), h.get("upper")] for i, h in enumerate(cert.history)])
    status = "ok" if cert.converged else "not-converged"
    reason = None if cert.converged else (f"gap {cert.gap:.3g} above tol {tol:g} when certify stopped "
                                          f"({cert.stop_reason}); raise --time-limit")
    run.finish(status, reason=reason, result=result)
    return Outcome(run, result, ref, {"certificate": cert})


def _position(cost: float, cert) -> dict:
    """Where the closed form's cost lies against [lower, upper]: `certified` when inside an interval narrower
    than the tolerance (docs/theory.md 8)."""
    inside = cert.lower <= cost <= cert.upper * (1 + 1e-9)
    return {"above_lower": cost >= cert.lower, "ratio_to_upper": cost / cert.upper if cert.upper > 0 else None,
            "certified": bool(inside and cert.converged)}
