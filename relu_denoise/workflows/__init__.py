"""One function per command: a recipe and options in, a finished run directory and its typed summary out.

    closed_form_workflow(recipe, base_dir, ...)   `reluden closed-form`
    fit_workflow(recipe, base_dir, ...)           `reluden fit`  (resume_fit: `reluden fit --resume`)
    fit_many_workflow(jobs, ...)                  the fits of a sweep, trained together where they can
    compare_workflow(recipe, base_dir, ...)       `reluden compare`
    align_workflow(recipe, base_dir, ...)         `reluden align RECIPE`  (align_run_dir: `align RUN_DIR`)
    certify_workflow(recipe, base_dir, ...)       `reluden certify RECIPE` (certify_run_dir: `certify RUN_DIR`)
    flow_workflow(recipe, base_dir, ...)          `reluden flow RECIPE|RUN_DIR`

This is the only package that strings the steps together (recipe -> problem -> denoisers -> metrics ->
run files); every fit goes through `common.train` (relu_denoise.train.fit_many). It never imports `cli`:
progress reaches the console through an `Events` object the caller passes in.
"""

from .commands import (align_run_dir, align_workflow, certify_run_dir, certify_workflow, closed_form_workflow,
                       compare_workflow, trained_run)
from .common import Events, Outcome
from .fitting import fit_many_workflow, fit_workflow, resume_fit
from .flow import flow_workflow

__all__ = ["Events", "Outcome", "align_run_dir", "align_workflow", "certify_run_dir", "certify_workflow",
           "closed_form_workflow", "compare_workflow", "fit_many_workflow", "flow_workflow", "fit_workflow", "resume_fit",
           "trained_run"]
