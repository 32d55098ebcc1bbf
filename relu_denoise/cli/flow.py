"""`reluden flow`: the recipe's denoisers run as a generative model (docs/theory.md 10)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import render
from .app import (FiguresOpt, FitDeviceOpt, ForceOpt, JsonOpt, OutOpt, QuietOpt, RichEvents, SeedOpt, SetOpt, app,
                  finish, load)


def _opt(help_text: str, *names: str, **kw):
    return typer.Option(*names, help=help_text, show_default=False, **kw)


@app.command()
def flow(target: Annotated[Path, typer.Argument(metavar="RECIPE|RUN_DIR", help="A YAML recipe (its flow: section "
                           "holds the defaults of every option below), or a `reluden fit` run directory whose network "
                           "is then the one denoiser, at its recipe's noise level.", show_default=False)],
         kind: Annotated[Optional[str], _opt("score: dy/dr = h(y) - y at --sigma-max (step 1 is the fixed-point "
                         "iteration y <- h(y)); probability: the denoiser's level falls as sigma_max e^-r down to "
                         "--sigma-min. Default: flow.kind (probability).")] = None,
         denoiser: Annotated[Optional[str], _opt("closed-form (exact at any level), nn (one trained network per "
                             "level, train.method honoured, cached by content) or ramps. Default: flow.denoiser "
                             "(auto: the closed form where one exists).")] = None,
         starts: Annotated[Optional[str], _opt("N Gaussian starts around the data's mean (spread flow.start_sigma, "
                           "default sigma_max); subset-sums:2,3,4 for the stability audit (the score flow started "
                           "at every subset sum of m points); or a .npy/.csv file of starts. Default: flow.starts "
                           "(500).")] = None,
         sigma_max: Annotated[Optional[float], _opt("The start level sigma_T. Default: the recipe's noise scale.",
                              "--sigma-max", min=0.0)] = None,
         sigma_min: Annotated[Optional[float], _opt("Where a probability flow stops. Default: sigma_max / 100.",
                              "--sigma-min", min=0.0)] = None,
         levels: Annotated[Optional[int], _opt("Trained denoisers of a probability flow (a geometric schedule). "
                           "Default: flow.levels (8).", min=1)] = None,
         step: Annotated[Optional[float], _opt("Euler step dr. Default: 0.01 (probability), 1 (score).",
                         min=0.0)] = None,
         threshold: Annotated[Optional[float], _opt("An endpoint within this L-infinity distance of a clean point "
                              "or subset sum ends there. Default: flow.threshold (0.2, the paper's).",
                              min=0.0)] = None,
         cache: Annotated[Optional[Path], _opt("Folder of trained denoisers, by content (a second flow with other "
                          "starts trains nothing). Default: results/cache/denoisers.")] = None,
         device: FitDeviceOpt = "auto", out: OutOpt = None, set_: SetOpt = None, seed: SeedOpt = None,
         force: ForceOpt = False, figures: FiguresOpt = True, as_json: JsonOpt = False, quiet: QuietOpt = False):
    """Run the min-cost denoisers as a generative model: where do their flows end?

    From each start the flow follows the denoiser (docs/theory.md 10): a score flow at one noise
    level, or the probability flow through a schedule of levels. Each endpoint is classed against
    the clean points (L-infinity, --threshold): a training point (memorized), a virtual point (a
    subset sum x0 + sum of edges from an apex), on the boundary of the box of subset sums, or
    other. With --starts subset-sums:2,3,4 it runs the paper's stability audit: "k of C(n, m)"
    subset sums kept by the score flow, a trained denoiser beside the closed form.

    Writes result.json (counts, fractions, virtual_by_size, threshold_sweep, schedule, levels with
    each denoiser's cost over the closed form's, audit), endpoints.csv, trajectories.csv and
    figures. Exit status 1 when a trained level does not interpolate its samples; 2 for bad input
    (no apex for virtual points, sigma_min >= sigma_max, levels where the noise clouds overlap).
    """
    from ..workflows import flow_workflow

    options = {"kind": kind, "denoiser": denoiser, "starts": starts, "sigma_max": sigma_max,
               "sigma_min": sigma_min, "levels": levels, "step": step, "threshold": threshold}
    overrides = [f"flow.{k}={v}" for k, v in options.items() if v is not None]
    net = None
    if target.is_dir():
        from ..workflows import trained_run

        if set_ or seed is not None:
            raise typer.BadParameter("--set and --seed apply to a RECIPE, not to a fit run directory",
                                     param_hint="--set")
        r, base, net, _, _ = trained_run(target, "flow")
        from ..recipe import parse_recipe

        r = parse_recipe(r.model_dump(mode="json"), overrides)
    else:
        r, base = load(target, [*(set_ or []), *overrides], seed)
    outcome = flow_workflow(r, base, device=device, out=out, force=force, figures=figures, cache=cache, net=net,
                            events=RichEvents(quiet, "flow"))
    if not quiet:
        render.flow(outcome.summary)
    finish(outcome, as_json, quiet)
