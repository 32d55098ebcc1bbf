"""reluden: minimum-norm shallow ReLU denoisers, their closed forms, and experiments around them.

Implements Zeno, Ongie, Blumenfeld, Weinberger, Soudry, "How do Minimum-Norm Shallow Denoisers
Look in Function Space?" (NeurIPS 2023). The mathematics the code cites is docs/theory.md.

The public names below load their module on first use, so `reluden --help` does not import
torch, scipy or matplotlib.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "api": ["align_recipe", "certify_recipe", "closed_form_recipe", "compare_recipe", "fit_recipe", "read_recipe"],
    "align": ["AlignReport", "Candidate", "align_report", "candidates"],
    "certificates": ["Certificate", "certify", "polish", "supremum"],
    "closed_forms": ["ClosedForm", "Ramp", "Reference", "closed_form", "ramps_network", "reference_form"],
    "estimators": ["DENOISERS", "REFERENCES", "LinearMMSE", "emmse", "identity", "lmmse_fit", "make_denoiser",
                   "make_estimator", "nearest"],
    "errors": ["DataError", "NoClosedFormError", "NoDistributionError", "NotEnoughHeldOutError", "RecipeError",
               "ReludenError", "RunError", "SolverError", "TrainingError"],
    "problem": ["Problem", "make_problem"],
    "train": ["FitJob", "fit", "fit_denoiser", "fit_many"],
    "network": ["ShallowDenoiser"],
    "noise": ["NoiseSpec", "offline_samples", "resolve_rho", "rho_rule"],
    "recipe": ["Recipe", "load_recipe", "parse_recipe"],
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
