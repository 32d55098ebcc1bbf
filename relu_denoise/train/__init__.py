"""Training: shallow ReLU denoisers to min-cost interpolation of noisy samples (docs/theory.md 1, 5 and 9).

    devices   device strings, dtypes, CPU threads
    engine    the step by hand: forward, gradients, Adam on one flat buffer, the output-layer solve
    schedule  learning rate, penalty and the stopping rule
    trainer   the loop, checks and checkpoints; fit_denoiser
"""

from .devices import ThreadRule, resolve_device, resolve_dtype
from .trainer import (HISTORY_COLUMNS, FitResult, Trainer, choose_width, fit_denoiser, load_checkpoint,
                      residual_unit, save_checkpoint, tolerance_unit)

__all__ = [
    "ThreadRule", "resolve_device", "resolve_dtype",
    "HISTORY_COLUMNS", "FitResult", "Trainer", "choose_width", "fit_denoiser", "load_checkpoint", "residual_unit",
    "save_checkpoint", "tolerance_unit",
]
