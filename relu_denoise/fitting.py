"""`reluden fit` as library code: a recipe trained into a run directory, beside its closed form.

    fit_recipe(recipe, base_dir, run, device=...)  ->  FitOutcome(result, fit, form, points, samples)

writes, in the run directory (design.md):

    model.pt        the trained network, balanced (ShallowDenoiser.save; meta: resolved recipe, stats)
    checkpoint.pt   the training state (train.checkpoint_every steps; the last good one on divergence;
                    the current one on Ctrl-C); `fit --resume RUN_DIR` continues from it
    history.csv     step, loss, cost, max_residual, train_mse, lambda, penalty, multiplier, lr
    result.json     the summary, written last and only when training ended normally: status "ok" (the
                    max residual is within train.tol) or "not-converged" (it is not, at train.steps);
                    a diverged or interrupted run has no result.json, its manifest has the status and reason
    fit.png         the trained function beside the closed form; training.png the training curves

The closed-form reference (theory.md 1): the radius for sphere / ball noise; the empirical rule
on the training samples for offline Gaussian noise; the recipe's rho (auto: sigma sqrt(2 ln M))
for online Gaussian noise. A number given as noise.rho is used as is.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checks import check_points
from .closed_form import ClosedForm, closed_form
from .errors import NoClosedFormError, TrainingError
from .geometry import affine_hull, diameter, distance_to_hull_2d
from .noise import offline_samples, resolve_rho
from .recipe import Recipe
from .runs import Run
from .train import HISTORY_COLUMNS, FitResult, fit_denoiser, load_checkpoint

_PROBE_MARGIN = 0.1     # the probe set reaches this fraction of the data diameter beyond the convex hull
_SHARE = 1e-3           # units with a smaller share of the path cost are not counted as active


@dataclass
class FitOutcome:
    result: dict
    fit: FitResult
    form: ClosedForm | None
    points: np.ndarray
    samples: np.ndarray | None


# ---------------------------------------------------------------- the closed-form reference


def reference_form(points: np.ndarray, noise, samples: np.ndarray | None) -> tuple[ClosedForm | None, str]:
    """The closed form to compare a trained network with, and how its rho was chosen (or why there is none)."""
    rule = noise.rho
    try:
        if isinstance(rule, float):
            return closed_form(points, rho=rule), f"rho = {rule:g} (recipe)"
        if noise.distribution != "gaussian":
            return closed_form(points, rho=noise.radius), f"rho = radius = {noise.radius:g}"
        if samples is not None:
            return closed_form(points, samples=samples), "empirical rule on the training samples"
        rho = resolve_rho(noise, "auto")
        return closed_form(points, rho=rho), f"rho = sigma sqrt(2 ln M) = {rho:.4g} (online)"
    except NoClosedFormError as exc:
        return None, str(exc)


# ---------------------------------------------------------------- function gap


def probe_points(points, *, margin: float = _PROBE_MARGIN, scale: float = 0.0, seed: int = 0) -> np.ndarray:
    """Where `function_gap` compares two denoisers: (n, d) points near the clean data.

    d = 1: 4001 points evenly over [x_min - m, x_max + m]; d = 2: the points of a 241 x 241 grid
    over the bounding box enlarged by m that lie within m of the convex hull; m = margin * diameter.
    d > 2: 4000 convex combinations of the clean points (Dirichlet(1) weights) stretched by 1 + margin
    about the centroid, plus 200 points per clean point at distance up to 2 * scale (the noise scale)
    in uniformly random directions of R^d.
    """
    X = check_points(points, name="points")
    N, d = X.shape
    m = margin * max(diameter(X), scale, 1e-12)
    lo, hi = X.min(axis=0) - m, X.max(axis=0) + m
    if d == 1:
        return np.linspace(lo[0], hi[0], 4001)[:, None]
    if d == 2:
        g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 241), np.linspace(lo[1], hi[1], 241))
        grid = np.stack([g0.ravel(), g1.ravel()], axis=1)                       # (n, 2)
        return grid[distance_to_hull_2d(grid, X) <= m]
    rng = np.random.default_rng(seed)
    centre = X.mean(axis=0)
    inside = rng.dirichlet(np.ones(N), size=4000) @ X                            # (4000, d)
    stretched = centre + (1 + margin) * (inside - centre)
    u = rng.standard_normal((N, 200, d))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    around = X[:, None, :] + 2 * scale * rng.random((N, 200, 1)) * u            # (N, 200, d)
    return np.vstack([stretched, around.reshape(-1, d)])



def function_gap(net, form, points, *, scale: float = 0.0) -> float:
    """sup_y ||h(y) - h*(y)|| over `probe_points`, divided by the data diameter (theory.md 1).

    `net` and `form` are denoisers with `predict` (n, d) -> (n, d); `scale` is the noise scale
    (used for d > 2 and for a single point, whose gap is returned relative to the scale).
    """
    X = check_points(points, name="points")
    Y = probe_points(X, scale=scale)
    gap = float(np.linalg.norm(net.predict(Y) - form.predict(Y), axis=1).max())
    return gap / (diameter(X) or scale or 1.0)


def plane_gap(net, form, points) -> float:
    """`function_gap` restricted to the affine hull of 2-D-hull data in R^D (theory.md 5, real images).

    The probe set is the 2-D grid of `probe_points` in plane coordinates, mapped into R^D.
    """
    X = check_points(points, name="points")
    x_bar, U = affine_hull(X)                                                    # (D,), (D, 2)
    Y = x_bar + probe_points((X - x_bar) @ U) @ U.T                              # (n, D)
    return float(np.linalg.norm(net.predict(Y) - form.predict(Y), axis=1).max()) / diameter(X)


# ---------------------------------------------------------------- the run


def recipe_data(recipe: Recipe, base_dir) -> tuple[np.ndarray, np.ndarray | None]:
    """The clean points (N, d) and offline samples (N, M, d) (None online) a fit of `recipe` trains on.

    Both come from one generator seeded by the recipe, so a later command (align on a run
    directory) redraws exactly the samples the network was trained on.
    """
    from .data import make_source

    rng = np.random.default_rng(recipe.seed)
    points = make_source(recipe.data, rng=rng, base_dir=Path(base_dir)).points          # (N, d)
    online = recipe.noise.mode == "online"
    return points, None if online else offline_samples(points, recipe.noise, rng=rng)


def fit_recipe(recipe: Recipe, base_dir, run: Run, *, device="cpu", callback=None, resume: bool = False) -> FitOutcome:
    """Train the recipe's denoiser into `run` (see the module docstring); TrainingError after writing
    history.csv, the checkpoint and the manifest's status and reason."""
    points, samples = recipe_data(recipe, base_dir)
    online = samples is None
    form, rho_note = reference_form(points, recipe.noise, samples)
    state = load_checkpoint(run.file("checkpoint.pt")) if resume else None
    try:
        fit = fit_denoiser(points, recipe.noise if online else samples, recipe.model, recipe.train,
                           generator=torch.Generator().manual_seed(recipe.seed), device=device,
                           callback=callback, checkpoint=run.file("checkpoint.pt"), resume=state)
    except TrainingError as exc:
        _write_history(run, getattr(exc, "history", {}))
        run.finish(getattr(exc, "reason", "failed"), reason=str(exc))
        raise
    _write_history(run, fit.history)
    fit.net.save(run.file("model.pt"), recipe=recipe.model_dump(mode="json"), stats=fit.stats)
    result = _result(recipe, fit, form, rho_note, points)
    result["figures"] = _figures(run, recipe, fit, form, points, samples)
    run.finish(result["status"], reason=result.get("reason"), result=result)
    return FitOutcome(result, fit, form, points, samples)


def _write_history(run: Run, history: dict) -> None:
    if history and history.get("step"):
        run.write_csv("history.csv", HISTORY_COLUMNS, zip(*(history[k] for k in HISTORY_COLUMNS)))


@torch.no_grad()
def _result(recipe: Recipe, fit: FitResult, form, rho_note: str, points: np.ndarray) -> dict:
    s, tol = fit.stats, recipe.train.tol
    shares = fit.net.unit_costs() / max(float(fit.net.path_cost()), 1e-300)
    result = {k: s[k] for k in ("cost", "train_mse", "max_residual", "steps", "seconds", "device", "dtype")}
    result.update(max_residual_rel=s["max_residual_rel"], residual_unit=s["residual_unit"], tol=tol,
                  method=s["method"], mode=s["mode"], converged=s["converged"], stop_reason=s["stop_reason"],
                  units=fit.net.width, active_units=int((shares >= _SHARE).sum()))
    if form is not None:
        ratio = s["cost"] / form.cost_formula if form.cost_formula > 0 else None   # one point: cost 0
        result.update(closed_form_cost=form.cost_formula, cost_ratio=ratio,
                      function_gap=function_gap(fit.net, form, points, scale=recipe.noise.scale),
                      closed_form={"geometry": form.geometry, "status": form.status, "rho": form.rho,
                                   "rho_rule": rho_note, "cost_weights": float(form.network.path_cost())})
    else:
        result["closed_form"] = {"none": rho_note}
    ok = s["max_residual_rel"] <= tol
    result["status"] = "ok" if ok else "not-converged"
    if not ok:
        result["reason"] = (f"could not converge: max residual {s['max_residual_rel']:.3g} x ell > train.tol = "
                            f"{tol:g} after {s['steps']} steps (raise train.steps)")
    elif not s["converged"] and s["stop_reason"] == "max-steps":
        result["note"] = "the path cost was still falling at train.steps; raise it for a tighter cost"
    return result


def _figures(run: Run, recipe: Recipe, fit: FitResult, form, points, samples) -> list[str]:
    from . import plots

    names = []
    h, nets = {"trained": fit.net.predict}, {"trained": fit.net.prune(1e-6)[0]}   # boundaries of live units
    if form is not None:
        h[f"closed form ({form.status})"] = form.predict
        nets[f"closed form ({form.status})"] = form.network
    rho = form.rho if form is not None else None
    title = f"{recipe.name}: trained ({fit.stats['method']}) vs closed form"
    d = points.shape[1]
    if d == 1:
        names.append(plots.curve_1d(run.file("fit.png"), h, points, rho=rho, samples=samples, title=title).name)
    elif d == 2:
        names.append(plots.contours_2d(run.file("fit.png"), h, points, rho=rho, nets=nets, title=title).name)
    elif len(points) == 3:
        names.append(plots.plane_contours(run.file("fit.png"), h, points, rho=rho, nets=nets, title=title).name)
    refs = {"cost": form.cost_formula} if form is not None else None
    names.append(plots.training_curves(run.file("training.png"), fit.history, references=refs,
                                       title=f"{recipe.name}: {fit.stats['method']}").name)
    return names
