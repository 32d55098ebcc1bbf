"""The best exact interpolant of a fit's samples that is cheap to get, to hold the fit against
(docs/training.md 12): the closed form where it interpolates the samples, else the ramps method's solution
within a time budget. A fit that says "converged" says what its stopping rule saw; this says how far above a
known interpolant it stopped."""

import time

import numpy as np

from ..errors import ReludenError
from ..recipe import ModelSpec, TrainSpec
from .problem import ell_of, noise_stats, tol_unit
from .stats import FitReference


def best_reference(points: np.ndarray, samples: np.ndarray, form, model: ModelSpec, train: TrainSpec, *,
                   seed: int) -> FitReference:
    """The closed form `form` (None: none) where its max residual on the samples is within train.tol, else the
    ramps method on the samples, stopped at train.reference_seconds (its every round interpolates)."""
    N, M, d = samples.shape
    Y, T = samples.reshape(N * M, d), np.repeat(points, M, axis=0)
    unit = tol_unit(ell_of(points, float(np.sqrt(np.mean((samples - points[:, None]) ** 2)))), noise_stats(Y, T)[2])
    if form is not None:
        residual = float(np.linalg.norm(form.predict(Y) - T, axis=1).max())
        if residual <= train.tol * unit:
            return FitReference("closed-form", cost=form.cost_formula, max_residual=residual)
    return _ramps_reference(points, samples, model, train, seed=seed)


def _ramps_reference(points, samples, model: ModelSpec, train: TrainSpec, *, seed: int) -> FitReference:
    from .ramps import fit_ramps, ramps_rng

    start, budget = time.perf_counter(), train.reference_seconds
    late = lambda record: time.perf_counter() - start > budget  # noqa: E731
    rng = ramps_rng(seed)
    try:
        net, history, info = fit_ramps(points, samples, ModelSpec(width=None, skip=model.skip),
                                       train.model_copy(update={"steps": 1000}), rng=rng, callback=late)
    except ReludenError as exc:
        return FitReference("none", seconds=time.perf_counter() - start, reason=f"no ramps reference: {exc}")
    return FitReference("ramps", cost=history["cost"][-1], lower_bound=info["lower_bound"],
                        max_residual=history["max_residual"][-1], seconds=time.perf_counter() - start,
                        complete=info["stop_reason"] != "callback")
