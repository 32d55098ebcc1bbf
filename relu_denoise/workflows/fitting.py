"""`reluden fit`: train a recipe's denoiser into a run directory; resume one; fit many (sweeps).

A fit's run holds model.pt, history.csv, result.json (results.FitSummary), fit.png and training.png, and
checkpoint.pt unless the fit ended by its stopping rule. The result's status is "ok" (the stopping rule met, max
residual within train.tol) or "not-converged"; a diverged or interrupted fit raises TrainingError after
recording its status and reason in the manifest.
"""

import sys
from pathlib import Path

from ..errors import ReludenError, RunError, TrainingError
from ..problem import Problem, make_problem
from ..recipe import Recipe, load_recipe, recipe_to_yaml
from ..results import Course, FitSummary
from ..runs import Run, ending, load_run
from .common import Events, Outcome, open_training_run, train, training_ended, write_history


def fit_workflow(recipe: Recipe, base_dir, *, out=None, force=False, device="auto", figures: bool = True,
                 events: Events = Events(), facts: dict | None = None) -> Outcome:
    """Train the recipe's denoiser to min-cost interpolation (docs/training.md) into a new run directory.

    `facts`: more manifest entries (a sweep records its own command line as `argv`)."""
    run, problem, dev = open_training_run("fit", recipe, base_dir, device, out, force, figures, **(facts or {}))
    with run.recording():
        return fit_into(run, recipe, problem, dev, events)


def resume_fit(run_dir, *, device=None, steps: int | None = None, figures: bool = True,
               events: Events = Events(), argv: list[str] | None = None) -> Outcome:
    """Continue a fit from RUN_DIR/checkpoint.pt with the run's own recipe (interrupted, failed or killed).

    A finished run (ok, not-converged) is refused unless `steps` extends it beyond the steps it ran;
    the manifest records each resume (with `argv`, default this process's command line).
    """
    from ..files import atomic_write_text, utc_now
    from ..train import load_checkpoint, resolve_device

    manifest, result, path = load_run(run_dir)
    if manifest.get("command") == "fit" and str(manifest.get("checkpoint", "")).startswith("removed"):
        raise RunError(f"--resume {path}: the fit finished by its stopping rule ({manifest.get('status')}, "
                       f"{result.get('steps')} steps): model.pt holds its network and its checkpoint was removed, so "
                       "there is nothing to continue; for a longer fit start a new one (--set train.steps=N)")
    if manifest.get("command") != "fit" or not (path / "checkpoint.pt").is_file():
        raise RunError(f"--resume {path}: not a fit run with a checkpoint.pt")
    recipe, _ = load_recipe(path / "recipe.yaml")
    done = result.get("steps")
    if manifest.get("status") in ("ok", "not-converged") and (steps is None or steps <= (done or 0)):
        raise RunError(f"--resume {path}: the run finished ({manifest['status']}, {done} steps); to extend it give "
                       f"more steps: --set train.steps=N with N > {done}")
    if steps is not None:
        recipe = Recipe.model_validate({**recipe.model_dump(), "train": {**recipe.train.model_dump(),
                                                                          "steps": steps}})
    state = load_checkpoint(path / "checkpoint.pt")      # a corrupt file stops here (exit 2), the run untouched
    problem = make_problem(recipe, Path(manifest.get("recipe_dir", path)))
    dev = resolve_device(device or manifest.get("device", "auto"))
    run = Run.reopen(path, figures=figures)
    resumes = [*manifest.get("resumes", []), {"start": utc_now(), "from_status": manifest.get("status"),
                                              "steps": recipe.train.steps,
                                              "argv": list(sys.argv if argv is None else argv)}]
    run.update(status="running", end=None, reason=None, resumes=resumes, device=str(dev))
    if steps is not None:
        atomic_write_text(path / "recipe.yaml", recipe_to_yaml(recipe))
    with run.recording():
        return fit_into(run, recipe, problem, dev, events, resume=state)


def fit_into(run: Run, recipe: Recipe, problem: Problem, device, events: Events, *, resume: dict | None = None,
             close: bool = True) -> Outcome:
    """Train into `run` (from the checkpoint state `resume`); `close` ends the run with the fit's status (align
    and certify keep it open)."""
    with events.training(recipe.train.steps) as on_check:
        job = problem.fit_job(recipe, device=device, checkpoint=run.file("checkpoint.pt"), callback=on_check,
                              resume=resume)
        (fit,) = train([job])
    if isinstance(fit, TrainingError):
        raise training_ended(run, fit) from None
    if isinstance(fit, Exception):
        raise fit
    return fitted(run, recipe, problem, fit, close)


def fitted(run: Run, recipe: Recipe, problem: Problem, fit, close: bool = True) -> Outcome:
    """Write a finished fit's files (history, model, result, figures) and, if `close`, end the run. A fit that
    ended by its stopping rule (ok) loses its checkpoint (`drop_checkpoint`)."""
    write_history(run, fit.history)
    fit.net.save(run.file("model.pt"), recipe=recipe.model_dump(mode="json"), stats=fit.stats.to_dict())
    summary = summarise_fit(recipe, problem, fit)
    if run.figures:
        summary = _with_figures(summary, fit_figures(run, recipe, fit, problem, summary))
    if summary.status == "ok":
        drop_checkpoint(run)
    result = summary.to_dict()
    if close:
        result = run.finish(summary.status, reason=summary.reason, result=result)
    return Outcome(run, summary, result, {"fit": fit, "problem": problem})


CHECKPOINT_REMOVED = "removed: the fit ended by its stopping rule and model.pt holds its network"


def drop_checkpoint(run: Run) -> None:
    """Delete the run's checkpoint.pt (a fit's whole training state: 118 MB at d = 784) once the fit ended by its
    stopping rule: a resumed fit would stop again at once, and model.pt holds the network. The manifest says so.
    A fit that did not (not-converged, interrupted, failed) keeps it for --resume."""
    path = run.path / "checkpoint.pt"
    if not path.is_file():
        return
    path.unlink()
    files = [f for f in run.manifest.get("files", []) if f != "checkpoint.pt"]
    run.update(files=files, checkpoint=CHECKPOINT_REMOVED)


def summarise_fit(recipe: Recipe, problem: Problem, fit) -> FitSummary:
    """The fit's facts beside the reference closed form and the best cheap exact interpolant of its samples."""
    from ..metrics import active_units, function_gap, residual_trend

    ref, s = problem.reference, fit.stats
    gap = None
    if ref.form is not None:
        gap = function_gap(fit.net, ref.form, problem.points, scale=recipe.noise.scale)
    return FitSummary(s, ref, recipe.train.tol, fit.net.width, active_units(fit.net), gap, fit.polish,
                      _best_reference(recipe, problem, fit),
                      reason_detail=residual_trend(fit.history, s.tol_unit),
                      course=Course.of(fit.history, s.returned_step))


def _best_reference(recipe: Recipe, problem: Problem, fit):
    """The closed form where it interpolates the samples, else the ramps method's solution (train.reference);
    None online, for the ramps method itself, or when asked not to."""
    from ..train.methods import method
    from ..train.reference import best_reference

    if recipe.train.reference == "none" or problem.samples is None or not method(recipe.train.method).trains:
        return None                                                  # the ramps method is its own reference

    return best_reference(problem.points, problem.samples, problem.reference.form, recipe.model, recipe.train,
                          seed=problem.init_seed)


def _with_figures(summary: FitSummary, names: list[str]) -> FitSummary:
    from dataclasses import replace

    return replace(summary, figures=tuple(names))


def panels(net, ref) -> tuple[dict, dict]:
    """The denoisers a figure draws (trained, and the closed form where one exists) and their networks, whose
    ReLU boundaries it draws (the trained one pruned to its live units)."""
    h, nets = {"trained": net}, {"trained": net.prune()[0]}
    if ref.form is not None:
        name = f"closed form ({ref.form.status})"
        h[name], nets[name] = ref.form, ref.form.network
    return h, nets


def _fit_title(recipe: Recipe, method: str, form) -> str:
    if form is None:
        return f"{recipe.name}: trained ({method})"
    return f"{recipe.name}: trained ({method}) vs closed form ({form.setting})"


def fit_figures(run: Run, recipe: Recipe, fit, problem: Problem, summary: FitSummary) -> list[str]:
    from .. import plots

    ref, method = problem.reference, fit.stats.method
    h, nets = panels(fit.net, ref)
    rho = ref.form.rho if ref.form is not None else None
    names = []
    figure = plots.denoiser_figure(run.file("fit.png"), h, problem.points, rho=rho, nets=nets,
                                   samples=problem.samples, title=_fit_title(recipe, method, ref.form))
    if figure:
        names.append(figure.name)
    names.append(plots.training_curves(run.file("training.png"), fit.history, title=f"{recipe.name}: {method}",
                                       **training_marks(summary)).name)
    return names


def training_marks(summary: FitSummary) -> dict:
    """What training.png marks beside the curves: the closed form's cost, the stopping tolerance of the max
    residual (train.tol x min(ell, noise radius), in data units like the history), and the returned network at
    the step of its check, with the cost and max residual the summary reports (after the polish)."""
    s, form, tol = summary.stats, summary.reference.form, summary.tol
    refs = {"max_residual": (tol * s.tol_unit, f"stopping tolerance train.tol × min(ell, noise radius) = "
                                               f"{tol * s.tol_unit:.3g}")}
    if form is not None:
        refs["cost"] = (form.cost_formula, f"closed form's cost = {form.cost_formula:.6g}")
    initial = ": the initial units" if summary.returned == "initial" else ""
    label = f"returned (step {s.returned_step}{initial}{', polished' if summary.polished else ''})"
    return dict(references=refs, returned_step=s.returned_step, returned_label=label,
                returned={"cost": s.cost, "max_residual": s.max_residual})


# ---------------------------------------------------------------- many fits (sweeps)


def fit_many_workflow(jobs: list, *, device="auto", figures: bool = True, facts: dict | None = None) -> list:
    """`fit_workflow` for several recipes at once, for sweeps: the fits go through train together, so those that
    share one data shape (seeds and noise levels of one geometry) train as one network with stacked weights
    (docs/training.md 11). Each ends in its own run directory exactly as `fit_workflow` leaves it, with the
    same weights bit for bit.

    jobs: (recipe, base_dir, out) each; `facts`: more manifest entries of every run. Returns, per job, its
    Outcome or the library error that ended it (recorded in its run when the run was created). Ctrl-C
    interrupts every fit still training (each saves its checkpoint and records "interrupted"); a second one
    ends at once, every open run recording it.
    """
    outcomes: list = [None] * len(jobs)
    started = []                                             # (job index, run, recipe, problem, device)
    for i, (recipe, base, out) in enumerate(jobs):
        try:
            run, problem, dev = open_training_run("fit", recipe, base, device, out, True, figures, **(facts or {}))
            started.append((i, run, recipe, problem, dev))
        except ReludenError as exc:
            outcomes[i] = exc
    try:
        fits = train([problem.fit_job(recipe, device=dev, checkpoint=run.file("checkpoint.pt"))
                      for _, run, recipe, problem, dev in started])
        for (i, run, recipe, problem, _), fit in zip(started, fits):
            outcomes[i] = _end_fit(run, recipe, problem, fit)
    except BaseException as exc:                             # a second Ctrl-C, or a bug: every open run records it
        for _, run, *_ in started:
            if run.manifest.get("status") == "running":
                run.finish(*ending(exc))
        raise
    return outcomes


def _end_fit(run: Run, recipe: Recipe, problem: Problem, fit):
    """A grouped fit's FitResult or error into its run: the Outcome, or the recorded library error."""
    try:
        with run.recording():
            if isinstance(fit, TrainingError):
                raise training_ended(run, fit)
            if isinstance(fit, Exception):
                raise fit
            return fitted(run, recipe, problem, fit)
    except ReludenError as exc:
        return exc
