"""reluden: minimum-norm shallow ReLU denoisers, their closed forms, and experiments around them.

Implements Zeno, Ongie, Blumenfeld, Weinberger, Soudry, "How do Minimum-Norm Shallow Denoisers
Look in Function Space?" (NeurIPS 2023). See theory.md for the mathematics.
"""

__version__ = "0.1.0"

from .align import AlignReport, Candidate, align_report, candidates
from .closed_form import ClosedForm, Ramp, closed_form, closed_form_for, ramps_network
from .estimators import ESTIMATORS, LinearMMSE, emmse, identity, lmmse_fit, make_estimator, nearest
from .errors import DataError, NoClosedFormError, RecipeError, ReludenError, RunError, TrainingError
from .network import ShallowDenoiser
from .noise import NoiseSpec, offline_samples, resolve_rho
from .recipe import Recipe, load_recipe, parse_recipe

__all__ = [
    "AlignReport", "Candidate", "align_report", "candidates",
    "ClosedForm", "Ramp", "closed_form", "closed_form_for", "ramps_network",
    "DataError", "NoClosedFormError", "RecipeError", "ReludenError", "RunError", "TrainingError",
    "ESTIMATORS", "LinearMMSE", "emmse", "identity", "lmmse_fit", "make_estimator", "nearest",
    "ShallowDenoiser", "NoiseSpec", "offline_samples", "resolve_rho",
    "Recipe", "load_recipe", "parse_recipe",
]
