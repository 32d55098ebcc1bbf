"""`reluden flow`: the recipe's denoisers run as a generative model (docs/theory.md 10), as a run.

The denoiser at each noise level is the closed form where one exists (exact at any level) or trained networks
(one per level of a geometric schedule, through train.fit_many, so the levels of one data shape train
together), or the ramps method. Trained levels are cached by content (the FitJob's points, samples, sections
and seed): a second flow with other starts trains nothing, and an interrupted flow keeps its finished levels.
Writes endpoints.csv, trajectories.csv, result.json (results.FlowSummary) and figures.
"""

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import RecipeError, TrainingError
from ..problem import Problem, make_problem, rng
from ..recipe import Recipe
from ..results import FlowSummary
from ..runs import Run
from .common import Events, Outcome, check_memory_of, data_files, train

DEFAULT_CACHE = Path("results") / "cache" / "denoisers"


def flow_workflow(recipe: Recipe, base_dir, *, device="auto", out=None, force=False, figures: bool = True,
                  cache=None, net=None, events: Events = Events(), facts: dict | None = None) -> Outcome:
    """Run the recipe's flow (recipe.flow: kind, denoiser, starts, schedule, threshold) into a new run.

    `net`: a trained network (a fit run's) to use as the one denoiser, at the recipe's noise level."""
    spec = recipe.flow
    problem = make_problem(recipe, base_dir)
    sigma_max = spec.sigma_max or recipe.noise.scale
    levels = _levels(recipe, sigma_max, 1 if net is not None else None)
    starts, audit_sizes = _starts(recipe, problem, base_dir, sigma_max)
    kind = _denoiser_kind(spec.denoiser, problem, net)
    level_problems = [_level_problem(recipe, base_dir, s) for s in levels] if kind != "closed-form" else []
    _check_levels(recipe, level_problems)
    from ..train import resolve_device

    dev = resolve_device(device) if kind in ("nn", "ramps") else "cpu"
    built = _closed_form_levels(recipe, problem, levels, base_dir) if kind == "closed-form" else None  # a refusal
    run = Run.create("flow", recipe, out=out, force=force, device=str(dev), dtype=recipe.train.dtype, figures=figures,
                     recipe_dir=str(Path(base_dir).resolve()), data_files=data_files(recipe, base_dir), **(facts or {}))
    with run.recording():
        h_at, per_level = built or _denoisers(recipe, problem, levels, level_problems, kind, dev, cache, net, events)
        top = (level_problems[0] if level_problems else problem).reference.form      # the closed form at sigma_max
        summary = _run_flow(run, recipe, problem, kind, levels, h_at, per_level, starts, audit_sizes, top)
        return Outcome(run, summary, run.finish(summary.status, reason=summary.reason, result=summary.to_dict()),
                       {"problem": problem})


# ---------------------------------------------------------------- what runs: levels, starts, denoisers


def _levels(recipe: Recipe, sigma_max: float, force_levels: int | None) -> list[float]:
    """The noise levels: a geometric schedule down to sigma_min (probability flow), or sigma_max alone (score)."""
    from ..flows import geometric_levels

    spec = recipe.flow
    sigma_min = spec.sigma_min or sigma_max / 100
    if spec.kind == "score":
        return [sigma_max]
    return [float(s) for s in geometric_levels(sigma_max, sigma_min, force_levels or spec.levels)]


def _starts(recipe: Recipe, problem: Problem, base_dir, sigma_max: float):
    """(starts (n, d) or None, audit sizes or None): Gaussian starts, a file's, or the audit's subset sums."""
    from ..checks import read_points_file

    spec, X = recipe.flow, problem.points
    if isinstance(spec.starts, int):
        if spec.starts < 1:
            raise RecipeError(f"flow.starts: must be >= 1, a file or 'subset-sums:2,3,4', got {spec.starts}")
        z = rng(recipe.seed, "flow-starts").standard_normal((spec.starts, X.shape[1]))
        return X.mean(axis=0) + (spec.start_sigma or sigma_max) * z, None
    text = spec.starts.strip()
    if text.startswith("subset-sums"):
        from ..flows import require_box

        sizes = _sizes(text)
        box = require_box(X, _apex(spec.apex))               # DataError (exit 2) where there is no apex
        if max(sizes) > box.k:
            raise RecipeError(f"flow.starts: subset sums of {max(sizes)} points asked, but the box from apex "
                              f"x{box.apex} has {box.k} edges; use sizes up to {box.k}")
        return None, sizes
    path = Path(text) if Path(text).is_absolute() else Path(base_dir) / text
    return read_points_file(path, name="flow.starts", d=X.shape[1]), None


def _sizes(text: str) -> list[int]:
    _, _, rest = text.partition(":")
    try:
        sizes = [int(s) for s in (rest or "2,3,4").split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(m < 1 for m in sizes):
        raise RecipeError(f"flow.starts: expected subset-sums:M1,M2,... with sizes >= 1, e.g. subset-sums:2,3,4, "
                          f"got {text!r}")
    return sizes


def _apex(apex):
    return None if apex == "none" else apex


def _denoiser_kind(name: str, problem: Problem, net) -> str:
    if net is not None:
        return "nn"
    if name == "auto":
        return "closed-form" if problem.reference.form is not None else "nn"
    return name


def _level_problem(recipe: Recipe, base_dir, sigma: float) -> Problem:
    """The problem at noise level sigma (its own samples, by the content-seeded streams), with the first
    flow.duplicate clean points given a second independent set of samples."""
    from ..compare import level_noise

    p = make_problem(recipe, base_dir, noise=level_noise(recipe.noise, sigma, mode=recipe.noise.mode))
    k = recipe.flow.duplicate
    if k and p.samples is None:
        raise RecipeError("flow.duplicate: duplicated points get a second set of offline samples; online noise "
                          "(noise.mode: online) has none")
    if not k:
        return p
    if k > len(p.points):
        raise RecipeError(f"flow.duplicate: {k} is more than the {len(p.points)} clean points")
    from ..noise import offline_samples

    extra = offline_samples(p.points[:k], p.noise, rng=rng(recipe.seed, "duplicate", float(sigma)))   # (k, M, d)
    second = np.concatenate([extra, p.samples[k:]])          # the others' own samples again: no new constraint
    return replace(p, samples=np.concatenate([p.samples, second], axis=1))


def _check_levels(recipe: Recipe, problems: list[Problem]) -> None:
    """Refuse at once a level training cannot answer (Problem.refusal: overlapping clouds, a trivial problem),
    naming the level and the flow's own fix, or whose fit cannot fit in memory."""
    for p in problems:
        check_memory_of(recipe, p)
        why = p.refusal(recipe)
        if why is not None:
            raise RecipeError(f"flow: at noise level {p.noise.scale:g}: {why}; in a flow, lower flow.sigma_max "
                              "(--sigma-max) to keep every level in the regime")


def _denoisers(recipe, problem, levels, level_problems, kind, device, cache, net, events):
    """(h_at: sigma -> trained denoiser, per-level facts [{sigma, rho, cost, closed_form_cost, cost_ratio, ...}])."""
    from ..flows import Levels

    if net is not None:
        ref = problem.reference
        return Levels(levels, [net]), [_facts(levels[0], ref, float(net.path_cost().detach()))]
    nets, facts = _trained_levels(recipe, level_problems, kind, device, cache, events)
    return Levels(levels, nets), facts


def _closed_form_levels(recipe: Recipe, problem: Problem, levels: list[float], base_dir):
    """The closed form at each level: continuous in sigma where the rule gives a rho per level (the ball model),
    else (the empirical rule) each level's own form, from its own samples."""
    from ..compare import level_noise
    from ..flows import Levels, RampField, closed_form_family, rho_at

    rhos = [rho_at(recipe.noise, s)[0] for s in levels]
    forms = []
    for s, r in zip(levels, rhos):
        p = problem if r is not None else make_problem(recipe, base_dir, noise=level_noise(recipe.noise, s))
        ref = p.reference_at(r) if r is not None else p.reference
        if ref.form is None:
            raise RecipeError(f"flow: no closed form at noise level {s:g}: {ref.error.condition}; lower flow.sigma_max "
                              "(--sigma-max) or use flow.denoiser: nn")
        forms.append(ref)
    facts = [_facts(s, ref, ref.form.cost_formula) for s, ref in zip(levels, forms)]
    if all(r is not None for r in rhos) and recipe.flow.kind == "probability":
        return closed_form_family(problem.points, lambda s: rho_at(recipe.noise, s)[0], sigma_max=levels[0]), facts
    return Levels(levels, [RampField.from_form(ref.form) for ref in forms]), facts


def _facts(sigma: float, ref, cost: float) -> dict:
    """A level's denoiser cost beside the closed form's at that level."""
    form = ref.form
    ratio = cost / form.cost_formula if form is not None and form.cost_formula > 0 else None
    return {"sigma": float(sigma), "rho": ref.rho, "cost": cost,
            "closed_form_cost": None if form is None else form.cost_formula, "cost_ratio": ratio}


# ---------------------------------------------------------------- trained levels, cached by content


def _trained_levels(recipe: Recipe, problems: list[Problem], kind: str, device, cache, events):
    """One network per level: from the cache where the same FitJob was fitted before, else trained (the levels
    together, train.fit_many) and cached when training ends, the finished levels also when it was interrupted."""
    train_spec = recipe.train if kind == "nn" else recipe.train.model_copy(update={"method": "ramps"})
    rec = recipe.model_copy(update={"train": train_spec})
    jobs = [p.fit_job(rec, device=device) for p in problems]
    folder = Path(cache) if cache is not None else DEFAULT_CACHE
    keys = [_cache_key(job) for job in jobs]
    cached = {i: _cached(folder, k) for i, k in enumerate(keys)}
    nets = {i: c[0] for i, c in cached.items() if c is not None}
    stats = {i: c[1] for i, c in cached.items() if c is not None}
    todo = [i for i in range(len(jobs)) if i not in nets]
    fits = {}
    if todo:
        with events.training(train_spec.steps) as on_check:
            ended = train([replace(jobs[i], callback=on_check if i == todo[0] else None) for i in todo])
        for i, fit in zip(todo, ended):
            if not isinstance(fit, Exception):
                fits[i], nets[i], stats[i] = fit, fit.net, fit.stats.to_dict()
                _store(folder, keys[i], fit)
        failed = [(problems[i].noise.scale, fit) for i, fit in zip(todo, ended) if isinstance(fit, Exception)]
        if failed:
            sigma, exc = failed[0]
            kept = f"; the {len(fits)} finished levels are cached in {folder}" if fits else ""
            if isinstance(exc, TrainingError):
                raise TrainingError(f"flow: the denoiser at noise level {sigma:g}: {exc}{kept}", reason=exc.reason,
                                    history=exc.history)
            raise exc
    facts = [_level_facts(p, nets[i], stats[i], cached=i not in fits) | {"interpolates":
             stats[i]["max_residual_rel"] <= train_spec.tol} for i, p in enumerate(problems)]
    return [nets[i] for i in range(len(problems))], facts


def _level_facts(problem: Problem, net, stats: dict, *, cached: bool) -> dict:
    """A trained level's cost beside the closed form's, and its fit's facts (stored with a cached network)."""
    out = {**_facts(problem.noise.scale, problem.reference, float(net.path_cost().detach())), "cached": cached}
    out.update({k: stats.get(k) for k in ("converged", "max_residual_rel", "steps", "method")})
    return out


def _cache_key(job) -> str:
    """The content of a fit: clean points, samples (or online noise), sections, seed, device type, dtype."""
    from ..train import training_data

    h = hashlib.sha256()
    X = np.ascontiguousarray(job.points, dtype=np.float64)
    h.update(X.tobytes())
    data = training_data(job.data, X)
    h.update(np.ascontiguousarray(data.samples).tobytes() if not data.online else data.noise.model_dump_json().encode())
    for part in (job.model.model_dump_json(), job.train.model_dump_json(), str(job.seed), str(job.device)):
        h.update(part.encode())
    return h.hexdigest()[:24]


def _cached(folder: Path, key: str):
    """(network, its fit's stats) stored under the key, or None (a damaged entry is fitted again)."""
    from ..errors import RunError
    from ..network import ShallowDenoiser

    path = folder / f"{key}.pt"
    if not path.is_file():
        return None
    try:
        net, meta = ShallowDenoiser.load(path)
    except RunError:
        return None
    return (net, meta["stats"]) if isinstance(meta.get("stats"), dict) else None


def _store(folder: Path, key: str, fit) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fit.net.save(folder / f"{key}.pt", stats=fit.stats.to_dict())


# ---------------------------------------------------------------- the flow and its files


def _run_flow(run: Run, recipe: Recipe, problem: Problem, kind: str, levels, h_at, per_level, starts,
              audit_sizes, top_form) -> FlowSummary:
    from ..flows import classify_endpoints, probability_flow, score_flow

    spec, X = recipe.flow, problem.points
    if audit_sizes is not None:
        audits = _audits(recipe, problem, kind, h_at(levels[0]), audit_sizes, top_form)
        ends = np.concatenate([audits[kind].ends[m] for m in audit_sizes])
        starts = np.concatenate([audits[kind].starts[m] for m in audit_sizes])
        flow = None
    else:
        audits = {}
        if spec.kind == "score":
            flow = score_flow(h_at(levels[0]), starts, dr=spec.step or 1.0, steps=spec.steps, record=spec.record)
        else:
            flow = probability_flow(h_at, starts, sigma_max=levels[0], sigma_min=spec.sigma_min or levels[0] / 100,
                                    dr=spec.step or 0.01, record=spec.record)
        ends = flow.end
    classes = classify_endpoints(ends, X, apex=_apex(spec.apex), threshold=spec.threshold)
    _write_endpoints(run, starts, ends, classes)
    if flow is not None and flow.trajectories is not None:
        _write_trajectories(run, flow.trajectories)
    figures = _figures(run, recipe, problem, h_at(levels[0]), flow, classes, audits) if run.figures else ()
    return FlowSummary(spec.kind if audit_sizes is None else "score", kind, len(starts), _schedule(recipe, levels),
                       per_level, classes, flow, {k: a for k, a in audits.items()}, tuple(figures))


def _audits(recipe: Recipe, problem: Problem, kind: str, h, sizes, top_form) -> dict:
    """The stability audit of the flow's denoiser, and of the closed form at the same level beside a trained one."""
    from ..flows import stability_audit

    spec = recipe.flow
    run = lambda denoiser: stability_audit(denoiser, problem.points, sizes=sizes, apex=_apex(spec.apex),  # noqa: E731
                                           threshold=spec.threshold, limit=spec.audit_limit,
                                           rng=rng(recipe.seed, "flow-audit"), dr=spec.step or 1.0, steps=spec.steps)
    audits = {kind: run(h)}
    if kind != "closed-form" and top_form is not None:
        audits["closed-form"] = run(top_form)
    return audits


def _schedule(recipe: Recipe, levels) -> list[dict]:
    from ..flows import rho_at

    return [{"sigma": float(s), "rho": rho_at(recipe.noise, s)[0]} for s in levels]


def _write_endpoints(run: Run, starts, ends, classes) -> None:
    d = starts.shape[1]
    header = [f"start{i}" for i in range(d)] + [f"end{i}" for i in range(d)] + ["class", "size", "nearest",
                                                                               "distance"]
    rows = [[*s, *e, c, int(m), int(n), float(t)] for s, e, c, m, n, t in
            zip(starts, ends, classes.cls, classes.size, classes.nearest, classes.distance)]
    run.write_csv("endpoints.csv", header, rows)


def _write_trajectories(run: Run, tr) -> None:
    d = tr.y.shape[2]
    header = ["start", "r", "sigma"] + [f"y{i}" for i in range(d)]
    rows = [[int(idx), float(r), None if tr.sigma is None else float(tr.sigma[t]), *tr.y[j, t]]
            for j, idx in enumerate(tr.index) for t, r in enumerate(tr.r)]
    run.write_csv("trajectories.csv", header, rows)


def _figures(run: Run, recipe: Recipe, problem: Problem, h, flow, classes, audits) -> list[str]:
    from .. import plots
    from ..closed_forms import ClosedForm
    from ..flows import RampField

    kind = recipe.flow.kind if flow is not None else "score"
    title = f"{recipe.name}: {kind} flow"
    field = RampField.from_form(h) if isinstance(h, ClosedForm) else h      # numpy, not a torch network per arrow
    drawn = []
    if flow is not None and problem.points.shape[1] == 2:
        where = "the field of the start level" if kind == "probability" else "the field"
        drawn.append(plots.flow_trajectories_2d(run.file("flow.png"), field, problem.points, flow.trajectories,
                                                flow.end, classes.cls, subset_sums=_subset_sums(problem.points,
                                                recipe.flow.apex), title=f"{title} ({where})"))
    drawn.append(plots.flow_classes(run.file("classes.png"), classes.counts, virtual_by_size=classes.virtual_by_size,
                                    title=title))
    drawn.append(plots.flow_distances(run.file("distances.png"), classes.distance, classes.threshold, title=title))
    if audits:
        paper = _PAPER_AUDIT if len(problem.points) == 31 and problem.points.shape[1] == 30 else None
        drawn.append(plots.flow_audit(run.file("audit.png"), dict(audits), reference=paper,
                                      reference_label="paper (trained)", threshold=recipe.flow.threshold,
                                      title=f"{recipe.name}: subset sums kept by the score flow"))
    return [p.name for p in drawn if p is not None]


_PAPER_AUDIT = {2: (429, 435), 3: (3390, 4060), 4: (6965, 27405)}   # docs/theory.md 10: 30 orthogonal points


def _subset_sums(points, apex):
    """The subset sums of sizes 2..k of the data's box (a list of flows.SubsetSums), or None without a box."""
    from ..flows import find_box, subset_sums

    box, _ = find_box(points, _apex(apex))
    return None if box is None or box.k < 2 else [subset_sums(box, m) for m in range(2, box.k + 1)]


__all__ = ["DEFAULT_CACHE", "flow_workflow"]
