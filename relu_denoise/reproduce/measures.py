"""How the claims' numbers come from their runs' results (result.json, and model.pt where a property of the
network itself is measured). Each returns a Measurement, inconclusive with the reason where the run cannot
decide its claim (a fit that did not converge, an ambiguous alignment, overlapping clouds)."""

from pathlib import Path

import numpy as np

from .spec import Measurement, RunResult, of_run


def not_decisive(run: RunResult, what: str) -> str | None:
    """Why `run` cannot decide a claim about `what` (None: it can)."""
    if run.status != "ok":
        return f"{what}: {run.status}" + (f" ({run.reason})" if run.reason else "")
    return None


def not_interpolating(run: RunResult, what: str = "the fit") -> str | None:
    """Why a fit's returned network is no interpolant of its samples (None: it is, within train.tol): the claims
    are about min-cost interpolants, whatever ended the training loop (the polish may finish the job)."""
    res = run.result
    if run.status not in ("ok", "not-converged"):
        return not_decisive(run, what)
    residual, tol = res.get("max_residual_rel"), res.get("tol")
    if residual is None or tol is None:
        return f"{what}: no max_residual_rel or tol in its result.json"
    if residual > tol:
        return (f"{what} returned a network that does not interpolate its samples: max residual {residual:.3g} x "
                f"min(ell, noise radius), above train.tol {tol:g}")
    return None


def fit_matches_closed_form(runs: dict, name: str = "fit") -> Measurement:
    """Trained cost / closed-form cost, and the function gap (docs/theory.md 1), of fits whose returned networks
    interpolate their samples; over several seeds, the worst of each (the ratio farthest from 1)."""
    fits = of_run(runs, name)
    ratios = [r.result.get("cost_ratio") for r in fits]
    gaps = [r.result.get("function_gap") for r in fits]
    worst = max(ratios, key=lambda x: abs(x - 1)) if None not in ratios else None
    values = {"cost ratio": worst, "function gap": max(gaps) if None not in gaps else None}
    r = fits[0]
    text = (f"cost {r.result.get('cost', float('nan')):.4g} / closed form "
            f"{r.result.get('closed_form_cost') or float('nan'):.4g} = {_g(ratios[0])}; "
            f"function gap {_g(gaps[0])} x diameter; max residual "
            f"{_g(r.result.get('max_residual_rel'))} x tol unit ({r.status}, {r.result.get('steps')} steps)")
    if len(fits) > 1:
        text += (f"; over {len(fits)} seeds: ratios {', '.join(_g(x) for x in ratios)}, largest gap "
                 f"{_g(values['function gap'])}")
    labels = [f"the fit (seed {f.result.get('seed')})" if len(fits) > 1 else "the fit" for f in fits]
    why = next((w for w in map(not_interpolating, fits, labels) if w), None)
    return Measurement(values, text, why)


def certified(runs: dict, name: str = "certify") -> Measurement:
    """Where the closed form's cost lies in the certified interval [lower, upper] of the minimum (docs/theory.md
    8): its ratio to the lower bound (1: the closed form is the minimum, to the interval's width)."""
    r = runs[name]
    res, form = r.result, r.result.get("closed_form", {})
    lower, upper = res.get("lower"), res.get("upper")
    cost = form.get("cost_formula", form.get("cost"))          # "cost" in runs written before it was renamed
    if not isinstance(lower, (int, float)) or cost is None:
        return Measurement({}, "no certified lower bound", not_decisive(r, "certify") or "no lower bound")
    values = {"closed form / lower": cost / lower if lower > 0 else None, "closed form / upper": cost / upper,
              "gap": res.get("gap")}
    text = (f"minimum in [{lower:.5g}, {upper:.5g}] (gap {res.get('gap', float('nan')):.2g}); "
            f"closed form {cost:.5g}")
    return Measurement(values, text, not_decisive(r, "certify"))


def aligned(runs: dict, name: str = "align") -> Measurement:
    """The aligned cost fraction at the tolerance and at half the separation (the widest tolerance that still
    tells predicted from rival directions), against its random-rotation baseline (docs/theory.md 6); over
    several seeds, the lowest of each."""
    fits = of_run(runs, name)
    wide = [r.result.get("aligned_at_discriminating") for r in fits]
    above = [r.result["aligned_fraction"] - r.result["baseline_fraction"]
             if None not in (r.result.get("aligned_fraction"), r.result.get("baseline_fraction")) else None
             for r in fits]
    values = {"aligned at half separation": min(wide) if None not in wide else None,
              "aligned - baseline": min(above) if None not in above else None}
    res = fits[0].result
    text = (f"aligned {_g(res.get('aligned_fraction'))} within {_g(res.get('tolerance_deg'))} deg (random "
            f"directions {_g(res.get('baseline_fraction'))}), {_g(wide[0])} within {_g(res.get('discriminating_deg'))} "
            f"deg (half the separation); nearest a predicted direction {_g(res.get('nearest_fraction'))}; cost "
            f"{_g(res.get('cost_ratio'))} x the closed form")
    if len(fits) > 1:
        text += f"; over {len(fits)} seeds: half-separation fractions {', '.join(_g(x) for x in wide)}"
    why = next((w for w in (_not_aligning(f) for f in fits) if w), None)
    return Measurement(values, text, why)


def _not_aligning(run: RunResult) -> str | None:
    """Why an alignment run cannot decide its claim: its fit, an ambiguous geometry, a fit above the minimum."""
    res = run.result
    why = not_interpolating(_fit_of(run), "the fit")
    if why is None and res.get("ambiguous"):
        why = (f"ambiguous: predicted and rival directions {_g(res.get('separation_deg'))} degrees apart, under "
               f"twice the tolerance (docs/theory.md 6)")
    if why is None and (res.get("cost_ratio") or 0) > 1.05:
        why = (f"the fit costs {res['cost_ratio']:.3g}x the closed form: not a min-cost interpolant, whose "
               "directions the claim predicts (docs/theory.md 6)")
    return why


def _fit_of(run: RunResult) -> RunResult:
    """An align run's fit, as a fit run (align's result.json holds it under `fit`)."""
    fit = run.result.get("fit") or {}
    return RunResult(fit.get("status", run.status), fit.get("reason"), fit, run.run_dir, run.seconds)


def emmse_ratio(runs: dict, name: str = "compare") -> Measurement:
    """NN / eMMSE test MSE at the lowest noise level, with a conservative 95% interval of the ratio (the ends of
    the two means' intervals), and the levels where the ordering is reversed or the NN is not available."""
    res = runs[name].result
    est, low, high = res.get("estimators", {}), res.get("ci_low", {}), res.get("ci_high", {})
    noise = res.get("noise", [])
    if "nn" not in est or "emmse" not in est or not noise or est["nn"][0] is None:
        why = (res.get("unavailable", {}).get("nn") or ["nn not run"])[0]
        return Measurement({}, "no nn at the lowest level", f"nn unavailable: {why}")
    ratio = est["nn"][0] / est["emmse"][0]
    upper = high["nn"][0] / low["emmse"][0] if low["emmse"][0] > 0 else None
    parts = []
    for i, s in enumerate(noise):
        nn, em = est["nn"][i], est["emmse"][i]
        parts.append(f"{s:g}: " + ("n/a" if nn is None else f"{nn / em:.3g}"))
    values = {"nn / emmse": ratio, "nn / emmse (95% upper)": upper}
    text = (f"nn / emmse = {ratio:.3g} (95% interval up to {_g(upper)}) at sigma {noise[0]:g}; "
            f"by level {', '.join(parts)}" + _flip(noise, est))
    return Measurement(values, text, not_decisive(runs[name], "compare"))


def _flip(noise: list, est: dict) -> str:
    """Where the ordering flips: the first level at which eMMSE is at least as good as the NN."""
    for i, s in enumerate(noise):
        nn, em = est["nn"][i], est["emmse"][i]
        if nn is None:
            return f"; nn not available from sigma {s:g} (noise clouds overlap)"
        if nn >= em:
            return f"; the ordering flips at sigma {s:g}"
    return "; eMMSE never wins over these levels"


def contraction(runs: dict, name: str = "fit") -> Measurement:
    """The trained 1-D network's worst excess max_y |h(y) - x_near(y)| - |y - x_near(y)| over a fine grid
    around the data, relative to the diameter (<= 0: contractive toward the data, docs/theory.md 2)."""
    r = runs[name]
    net, x = _network_and_points(r.run_dir)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    y = np.linspace(lo - 0.2 * span, hi + 0.2 * span, 20001)[:, None]         # (n, 1)
    h = net.predict(y)
    near = x[np.abs(y - x[:, 0][None, :]).argmin(axis=1)]                      # (n, 1)
    excess = float((np.abs(h - near) - np.abs(y - near)).max()) / span
    monotone = float(np.diff(h[:, 0]).min()) / span
    values = {"contraction excess": excess, "monotone (min step)": monotone}
    return Measurement(values, f"max(|h(y) - x_near| - |y - x_near|) = {excess:.2g} x diameter over 20001 inputs; "
                       f"smallest step {monotone:.2g}", not_decisive(r, "the fit"))


def offline_online(runs: dict) -> Measurement:
    """The largest gap between the offline and the online network over the offline samples, relative to the
    data's diameter, beside each fit's cost ratio."""
    from ..network import ShallowDenoiser

    off, on = runs["offline"], runs["online"]
    problem = _problem(off.run_dir)
    x = problem.points
    y = problem.samples.reshape(-1, x.shape[1])                                 # (N M, d): the offline samples
    net_off, _ = ShallowDenoiser.load(off.run_dir / "model.pt")
    net_on, _ = ShallowDenoiser.load(on.run_dir / "model.pt")
    diameter = float(np.max(np.linalg.norm(x[:, None] - x[None], axis=-1)))
    gap = float(np.linalg.norm(net_off.predict(y) - net_on.predict(y), axis=1).max()) / diameter
    values = {"gap offline-online": gap, "cost ratio online": on.result.get("cost_ratio")}
    why = not_decisive(off, "the offline fit")
    text = (f"max ||h_off - h_on|| = {gap:.3g} x diameter over the {len(y)} offline samples; cost ratios "
            f"{_g(off.result.get('cost_ratio'))} offline, {_g(on.result.get('cost_ratio'))} online")
    return Measurement(values, text, why)


def _network_and_points(run_dir: Path):
    """The run's network (model.pt) and clean points (rebuilt from its recipe.yaml, as the run drew them)."""
    from ..network import ShallowDenoiser

    net, _ = ShallowDenoiser.load(run_dir / "model.pt")
    return net, _problem(run_dir).points


def _problem(run_dir: Path):
    from ..problem import make_problem
    from ..recipe import load_recipe

    recipe, base = load_recipe(run_dir / "recipe.yaml")
    return make_problem(recipe, base)


def _g(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"
