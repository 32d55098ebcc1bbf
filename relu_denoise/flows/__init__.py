"""Flows of denoisers: min-cost denoisers as a generative model (docs/theory.md 10; Zeno et al., ICML 2025).

Pure functions over numpy arrays and denoisers (objects with predict((n, d)) -> (n, d)); no files, no CLI.

    schedule    the noise levels of a probability flow and each level's rho (Schedule, make_schedule)
    levels      the denoiser at a noise level: closed forms at any sigma, trained ones per level (Levels)
    integrate   score_flow and probability_flow (Euler in r, vectorised over the starts)
    classify    endpoints as training points, virtual points (subset sums), box boundary or other
    audit       the virtual-point stability audit: the score flow started at every subset sum

No function shares its module's name (importing the module would shadow it, or it the module).
"""

from .audit import Audit, stability_audit
from .classify import (CLASSES, SWEEP, THRESHOLD, Box, Classification, SubsetSums, classify_endpoints, find_box,
                       require_box, subset_sums)
from .integrate import Flow, Trajectories, probability_flow, score_flow
from .levels import Levels, RampField, closed_form_family, closed_form_levels
from .schedule import Schedule, geometric_levels, make_schedule, rho_at

__all__ = ["Audit", "Box", "CLASSES", "Classification", "Flow", "Levels", "RampField", "SWEEP", "Schedule",
           "SubsetSums", "THRESHOLD", "Trajectories", "classify_endpoints", "closed_form_family",
           "closed_form_levels", "find_box", "geometric_levels", "make_schedule", "probability_flow", "require_box",
           "rho_at", "score_flow", "stability_audit", "subset_sums"]
