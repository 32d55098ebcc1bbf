"""The one entry of every fit: `fit(job)` for one, `fit_many(jobs)` for several (stepped together where they can).

A FitJob says what to fit (clean points, offline samples or online noise, the recipe's model and train
sections, the seed of the initial weights, the device) and how (a checkpoint file, a state to resume from,
a callback at every check). Every command that trains goes through `fit_many`: a fit alone is a group of one.
After training, an offline fit of a polishable method gets the least-cost output layer for its units where
that costs less and interpolates as well (`polish_fit`, docs/training.md 4).
"""

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..checks import check_memory, check_points
from ..errors import RecipeError, ReludenError, SolverError, TrainingError
from ..recipe import ModelSpec, TrainSpec
from .devices import resolve_device, resolve_dtype
from .loop import groupable, train_members
from .methods import method as method_row
from .problem import OfflineSamples, OnlineNoise, ell_of, noise_stats, tol_unit
from .start import choose_width
from .stats import HISTORY_COLUMNS, FitResult, FitStats, Polish
from .trainer import Trainer, load_checkpoint, training_data

POLISH_MAX_SAMPLES = 4096    # the polish's cone program works on an (N M)^2 orthogonal complement


@dataclass(frozen=True)
class FitJob:
    """One fit: what (points (N, d); data: offline samples (N, M, d) array or OfflineSamples, or a NoiseSpec
    / OnlineNoise for online training; the model and train sections; `seed` of the initial weights' torch
    generator; the device) and how (`checkpoint` file, `resume` from a checkpoint file or its state, `callback`
    at every check with the history row; a truthy return stops the fit)."""

    points: np.ndarray
    data: object
    model: ModelSpec
    train: TrainSpec
    seed: int
    device: object = "cpu"
    checkpoint: Path | None = None
    resume: Path | dict | None = None
    callback: Callable | None = None


def fit(job: FitJob) -> FitResult:
    """Fit one denoiser; raises TrainingError when training diverges or is interrupted (exc.reason,
    exc.history), SolverError / RecipeError / DataError as the fit's inputs or programs fail."""
    (out,) = fit_many([job])
    if isinstance(out, Exception):
        raise out
    return out


def fit_denoiser(points, data, model: ModelSpec, train: TrainSpec, *, seed: int, device="cpu", callback=None,
                 checkpoint=None, resume=None) -> FitResult:
    """`fit` of one FitJob, for scripts and notebooks: data are offline samples (N, M, d) or a NoiseSpec."""
    return fit(FitJob(points, data, model, train, seed, device, checkpoint, resume, callback))


def fit_many(jobs: list[FitJob]) -> list[FitResult | ReludenError]:
    """Fit every job; those that share a data shape and sections (seeds, noise levels of one geometry) are
    stepped together as one network with stacked weights and end bit for bit as alone (docs/training.md 11).
    Returns per job its FitResult or the library error that ended it (a bug propagates)."""
    out: list = [None] * len(jobs)
    trainers, points, data = {}, {}, {}
    for i, job in enumerate(jobs):
        try:
            points[i] = X = check_points(job.points, name="points")
            data[i] = training_data(job.data, X)
            if method_row(job.train.method).trains:
                trainers[i] = _trainer(job, X, data[i])
            else:
                out[i] = _fit_by_ramps(job, X, data[i])
        except ReludenError as exc:
            out[i] = exc
    for group in _groups(trainers):
        ended = train_members([trainers[i] for i in group], callbacks=[jobs[i].callback for i in group],
                              checkpoints=[jobs[i].checkpoint for i in group])
        for i, result in zip(group, ended):
            out[i] = result
    for i, job in enumerate(jobs):
        if isinstance(out[i], FitResult) and not data[i].online:
            out[i] = polish_fit(job.train, points[i], data[i].samples, out[i])
    return out


def _trainer(job: FitJob, X: np.ndarray, data: OfflineSamples | OnlineNoise) -> Trainer:
    t = Trainer(X, data, job.model, job.train, generator=torch.Generator().manual_seed(job.seed), device=job.device)
    if job.resume is not None:
        t.load_state_dict(job.resume if isinstance(job.resume, dict) else load_checkpoint(job.resume))
    return t


def _groups(trainers: dict) -> list[list[int]]:
    """Job indices trained together: equal group keys, at step 0, where `groupable` allows; the rest alone."""
    by_key: dict = {}
    for i, t in trainers.items():
        key = t.group_key() if t.state.step == 0 else ("alone", i)
        by_key.setdefault(key, []).append(i)
    out = []
    for members in by_key.values():
        if len(members) > 1 and groupable([trainers[i] for i in members]) is None:
            out.append(members)
        else:
            out += [[i] for i in members]
    return out


# ---------------------------------------------------------------- polish


def polish_fit(train: TrainSpec, points: np.ndarray, samples: np.ndarray | None, fit: FitResult) -> FitResult:
    """The fit with its trained units' least-path-cost output layer (certificates.polish, an exact cone
    program) where that costs less and interpolates as well, and what was done (`fit.polish`).

    Why: training returns an exact interpolant whose output layer is the least-squares one, which spreads cost
    over every unit that helps; the same units with least-cost outputs can cost much less (docs/training.md 4).
    Methods without it (the paper's weight decay; ramps, whose outputs already have the least cost for its
    ramps) and online fits are returned as they are."""
    if not train.polish or samples is None or not method_row(train.method).polishable:
        return fit
    s = fit.stats
    N, M, _ = samples.shape
    if N * M > POLISH_MAX_SAMPLES:
        return replace(fit, polish=Polish(False, f"skipped: N M = {N * M} samples > {POLISH_MAX_SAMPLES}"))
    if s.max_residual > train.tol * s.tol_unit:                                    # nothing exact to make cheaper
        return replace(fit, polish=Polish(False, f"skipped: the fit does not interpolate (max residual "
                                                 f"{s.max_residual_rel / train.tol:.3g} x tol)"))
    from ..certificates import polish

    try:
        pol = polish(fit.net, points, samples, exact=True)
    except (SolverError, TrainingError) as exc:   # a failed program; units that cannot interpolate exactly
        return replace(fit, polish=Polish(False, str(exc)))
    # the polished layer in the fit's own dtype and device, measured there (float32 rounds the exact layer)
    net = pol.network.balance().to(dtype=fit.net.w.dtype, device=fit.net.w.device)
    Y, T = samples.reshape(N * M, -1), np.repeat(points, M, axis=0)
    R = net.predict(Y).astype(np.float64) - T                                      # (N M, d)
    with torch.no_grad():
        cost, residual = float(net.path_cost()), float(np.linalg.norm(R, axis=1).max())
    applied = bool(cost < s.cost and residual <= train.tol * s.tol_unit)
    info = Polish(applied, None, s.cost, cost, residual)
    if not applied:
        return replace(fit, polish=info)
    stats = s.remeasured(cost=cost, max_residual=residual, train_mse=float(np.mean(R ** 2)))
    return FitResult(net, fit.history, stats, info)


# ---------------------------------------------------------------- the ramps method


def _fit_by_ramps(job: FitJob, X: np.ndarray, data: OfflineSamples | OnlineNoise) -> FitResult:
    """The ramps method (ramps.py, docs/training.md 12) with the trainer's facts, measured on the samples."""
    from .ramps import fit_ramps, ramps_rng

    if data.online:
        raise RecipeError("train.method ramps needs offline samples (noise.mode: offline): it interpolates a "
                          "fixed set of samples")
    S, train = data.samples, job.train
    start = time.perf_counter()
    rng = ramps_rng(job.seed)
    net, history, info = fit_ramps(X, S, job.model, train, rng=rng, callback=job.callback)
    dev = resolve_device(job.device) if isinstance(job.device, str) else torch.device(job.device)
    net = net.to(device=dev, dtype=resolve_dtype(train.dtype, dev))
    (N, M, d), seconds = S.shape, time.perf_counter() - start
    Y, T = S.reshape(N * M, d), np.repeat(X, M, axis=0)
    R = net.predict(Y).astype(np.float64) - T
    _, s_max, radius = noise_stats(Y, T)
    ell = ell_of(X, data.noise_scale(X))
    unit = tol_unit(ell, radius)
    with torch.no_grad():
        cost = float(net.path_cost())
    residual = float(np.linalg.norm(R, axis=1).max())
    stats = FitStats(cost=cost, train_mse=float(np.mean(R ** 2)), max_residual=residual,
                     max_residual_rel=residual / unit, steps=history["step"][-1], seconds=seconds,
                     converged=info["stop_reason"] == "converged", stop_reason=info["stop_reason"],
                     returned_step=history["step"][-1],
                     method=train.method, mode="offline", device=str(dev), dtype=train.dtype, lr=None, penalty=None,
                     tol_unit=unit, ell=ell, noise_radius=radius, affine_residual=s_max,
                     affine_residual_rel=s_max / unit, width=net.width, threads=train.threads or 1,
                     lower_bound=info["lower_bound"], directions=info["directions"], ramps=info["ramps"])
    rows = len(history["step"])
    full = {k: history.get(k, [None] * rows) for k in HISTORY_COLUMNS}
    full["loss"] = list(history["cost"])
    return FitResult(net, full, stats)


# ---------------------------------------------------------------- resources


def fit_memory(N: int, M: int, d: int, width: int | None, dtype: str) -> float:
    """Bytes a fit's working set needs: three (K, P) buffers of the forward/backward pass, the (d, P) inputs,
    targets, residuals and multipliers, and the (K + d + 1)^2 output solve, P = N M (docs/training.md 8)."""
    K = choose_width(N, d) if width is None else width
    P, item = N * M, 8 if dtype == "float64" else 4
    return item * (3 * K * P + 5 * d * P + (K + d + 1) ** 2 + 8 * (2 * K * d + d * d))


def check_fit_memory(N: int, M: int, d: int, model: ModelSpec, train: TrainSpec) -> None:
    """Refuse (RecipeError) a fit whose working set cannot fit in the available memory, before allocating."""
    K = choose_width(N, d) if model.width is None else model.width
    check_memory(fit_memory(N, M, d, K, train.dtype), what=f"fit (width {K} x {N * M} samples x 3 buffers)",
                 fix="lower model.width or noise.samples")


__all__ = ["FitJob", "FitResult", "FitStats", "Polish", "TrainingError", "check_fit_memory", "fit", "fit_many",
           "fit_memory", "polish_fit"]
