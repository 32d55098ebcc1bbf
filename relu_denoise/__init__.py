"""reluden: minimum-norm shallow ReLU denoisers, their closed forms, and experiments around them.

Implements Zeno, Ongie, Blumenfeld, Weinberger, Soudry, "How do Minimum-Norm Shallow Denoisers
Look in Function Space?" (NeurIPS 2023). See theory.md for the mathematics.
"""

__version__ = "0.1.0"

from .align import AlignReport, Candidate, align_report, candidates
from .closed_form import ClosedForm, Ramp, closed_form, reference_form, Reference, ramps_network
from .estimators import DENOISERS, REFERENCES, LinearMMSE, make_denoiser, emmse, identity, lmmse_fit, make_estimator, nearest
from .errors import DataError, NoClosedFormError, RecipeError, ReludenError, RunError, TrainingError
from .network import ShallowDenoiser
from .noise import NoiseSpec, offline_samples, resolve_rho, rho_rule
from .recipe import Recipe, load_recipe, parse_recipe

__all__ = [
    "AlignReport", "Candidate", "align_report", "candidates",
    "ClosedForm", "Ramp", "closed_form", "reference_form", "Reference", "ramps_network",
    "DataError", "NoClosedFormError", "RecipeError", "ReludenError", "RunError", "TrainingError",
    "DENOISERS", "REFERENCES", "make_denoiser", "LinearMMSE", "emmse", "identity", "lmmse_fit", "make_estimator", "nearest",
    "ShallowDenoiser", "NoiseSpec", "offline_samples", "resolve_rho", "rho_rule",
    "Recipe", "load_recipe", "parse_recipe",
]
