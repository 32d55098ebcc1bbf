"""The commands from Python: a recipe (a YAML path or a Recipe) in, the same run and summary as the CLI out.

    import relu_denoise as rd

    recipe = rd.read_recipe("recipes/obtuse-triangle.yaml", "noise.sigma=0.02")
    rd.make_problem(recipe).reference.form         # the closed form (a ShallowDenoiser-backed ClosedForm)
    run = rd.fit_recipe(recipe, out="runs/tri")    # = reluden fit ... --out runs/tri
    run.summary.stats.cost, run.result["cost_ratio"], run.extra["fit"].net

Each `*_recipe` function runs the workflow of its command with the CLI's defaults and writes the same run
directory (`out`, else results/<command>/<recipe name>/<time>-<hash>/ under the working directory); it
returns the workflow's Outcome: `.summary` (relu_denoise.results), `.result` (result.json as written),
`.run.path`. Nothing is printed; errors are the library's typed exceptions. No process-wide state is left
changed (the CPU thread count, the SIGINT handler, matplotlib's backend, the garbage collector).
"""

from pathlib import Path

from .recipe import Recipe, load_recipe, parse_recipe


def read_recipe(recipe, *overrides: str) -> Recipe:
    """A validated Recipe from a YAML path, a mapping or a Recipe, with `key.path=value` overrides applied
    (the CLI's --set)."""
    if isinstance(recipe, Recipe):
        return parse_recipe(recipe.model_dump(mode="json"), list(overrides)) if overrides else recipe
    if isinstance(recipe, dict):
        return parse_recipe(recipe, list(overrides))
    return load_recipe(recipe, list(overrides))[0]


def _resolve(recipe, base_dir) -> tuple[Recipe, Path]:
    """The Recipe and the folder its relative data paths start from: `base_dir`, else a recipe file's own
    folder (as the CLI reads it), else the working directory."""
    if base_dir is None:
        base_dir = Path(recipe).parent if isinstance(recipe, (str, Path)) else Path(".")
    return read_recipe(recipe), Path(base_dir)


def closed_form_recipe(recipe, *, base_dir=None, rho=None, query=None, out=None, force=False, figures=True):
    """`reluden closed-form RECIPE`: the reference closed form as a run (Outcome)."""
    from .workflows import closed_form_workflow

    r, base = _resolve(recipe, base_dir)
    return closed_form_workflow(r, base, rho=rho, query=query, out=out, force=force, figures=figures)


def fit_recipe(recipe, *, base_dir=None, out=None, force=False, device="auto", figures=True):
    """`reluden fit RECIPE`: train the recipe's denoiser into a run (Outcome; .extra["fit"] the FitResult)."""
    from .workflows import fit_workflow

    r, base = _resolve(recipe, base_dir)
    return fit_workflow(r, base, out=out, force=force, device=device, figures=figures)


def compare_recipe(recipe=None, *, base_dir=None, noise=None, repeats=None, n_test=None, nn=True, device="auto",
                   out=None, force=False, figures=True):
    """`reluden compare [RECIPE]`: test MSE of every denoiser across noise levels (default: the recipe's
    compare section; no recipe: the built-in one of docs/theory.md 3)."""
    from .recipe import DEFAULT_RECIPE
    from .workflows import compare_workflow

    r, base = _resolve(DEFAULT_RECIPE if recipe is None else recipe, base_dir)
    return compare_workflow(r, base, noise=list(noise or r.compare.noise), repeats=repeats or r.compare.repeats,
                            n_test=n_test or r.compare.n_test, nn=nn, device=device, out=out, force=force,
                            figures=figures)


def align_recipe(target, *, base_dir=None, tolerance=5.0, device="auto", out=None, force=False, figures=True):
    """`reluden align RUN_DIR|RECIPE`: fit a recipe (or read a fit's run directory) and measure alignment."""
    from .workflows import align_run_dir, align_workflow

    if isinstance(target, (str, Path)) and Path(target).is_dir():
        return align_run_dir(target, tolerance=tolerance, out=out, force=force, figures=figures)
    r, base = _resolve(target, base_dir)
    return align_workflow(r, base, tolerance=tolerance, device=device, out=out, force=force, figures=figures)


def certify_recipe(target, *, base_dir=None, time_limit=120.0, tol=1e-3, device="auto", out=None, force=False,
                   figures=True):
    """`reluden certify RUN_DIR|RECIPE`: [lower, upper] on the minimum cost of interpolating the samples."""
    from .workflows import certify_run_dir, certify_workflow

    if isinstance(target, (str, Path)) and Path(target).is_dir():
        return certify_run_dir(target, time_limit=time_limit, tol=tol, out=out, force=force)
    r, base = _resolve(target, base_dir)
    return certify_workflow(r, base, time_limit=time_limit, tol=tol, device=device, out=out, force=force,
                            figures=figures)
