"""Training: shallow ReLU denoisers to min-cost interpolation of noisy samples (docs/training.md).

    methods   one row per train.method: what each does (the only place a method is named)
    problem   the frozen training problem: frame, yardsticks, constraints
    start     where the exact methods start (width, directions, kinks)
    engine    the step by hand: forward, gradients, Adam on stacked buffers, the output-layer solve
    schedule  learning rate, penalty and the stopping rule
    trainer   one fit: its state (what a checkpoint saves), its checks and result
    loop      one loop for a group of 1..B fits stepped together
    ramps     the ramps method (a convex program, no training)
    fitting   fit(job) / fit_many(jobs): the one entry of every fit; polish; memory estimate
    devices   device strings, dtypes, CPU threads

Names load on first use, so importing this package (recipes read train.methods) does not import torch.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "devices": ["ThreadRule", "resolve_device", "resolve_dtype"],
    "fitting": ["FitJob", "check_fit_memory", "fit", "fit_denoiser", "fit_many", "fit_memory", "polish_fit"],
    "loop": ["groupable", "train_members"],
    "methods": ["METHODS", "Method", "method"],
    "problem": ["OfflineSamples", "OnlineNoise", "TrainingProblem", "tol_unit"],
    "start": ["choose_width"],
    "stats": ["HISTORY_COLUMNS", "FitResult", "FitStats", "Polish"],
    "trainer": ["Trainer", "TrainingState", "load_checkpoint", "save_checkpoint", "training_data"],
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
