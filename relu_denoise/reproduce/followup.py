"""The claims of Zeno, Manor, Ongie, Weinberger, Michaeli and Soudry (ICML 2025): min-cost denoisers run as a
generative model (docs/theory.md 10), as reproduce measures them."""

from .spec import Check, Claim, Measurement, RunSpec, at_least, at_most

PAPER = "ICML 2025"
AUDIT = {"flow.kind": "score", "flow.starts": "subset-sums:2,3,4"}


def audit_stable(runs: dict, name: str = "audit", key: str = "audit") -> Measurement:
    """The share of subset sums of 2, 3 and 4 edges that the score flow keeps (docs/theory.md 10.3)."""
    r = runs[name]
    audit = r.result.get(key) or {}
    values, parts = {}, []
    for m, a in sorted(audit.items(), key=lambda kv: int(kv[0])):
        values[f"stable m={m}"] = a["stable"] / a["total"] if a["total"] else None
        parts.append(f"m={m}: {a['stable']}/{a['total']}" + (" (sampled)" if a.get("sampled") else ""))
    why = None if r.status == "ok" else f"the denoiser: {r.status} ({r.reason})"
    return Measurement(values, "stable " + ", ".join(parts) if parts else "no audit", why)


def audit_trained(runs: dict) -> Measurement:
    """The trained denoiser's audit, beside how far its fit is from the closed form."""
    m = audit_stable(runs)
    ratio = runs["audit"].result.get("cost_ratio_max")
    values = {**m.values, "cost ratio": ratio}
    why = m.inconclusive
    if why is None and ratio is not None and ratio > 1.05:
        why = f"the trained denoiser costs {ratio:.3g}x the closed form: not the min-cost interpolant of the claim"
    return Measurement(values, f"{m.text}; cost {ratio:.3g}x the closed form" if ratio else m.text, why)


def fractions(runs: dict, name: str) -> dict:
    res = runs[name].result
    return {k: res.get(k) for k in ("memorized", "virtual_fraction", "boundary_fraction", "other_fraction")}


def endpoints(runs: dict, name: str = "flow") -> Measurement:
    """Where the flow's endpoints went: training points, virtual points, the box's boundary, elsewhere."""
    f, r = fractions(runs, name), runs[name]
    text = (f"{r.result.get('starts')} starts: training {f['memorized']:.3f}, virtual {f['virtual_fraction']:.3f}, "
            f"boundary {f['boundary_fraction']:.3f}, other {f['other_fraction']:.3f}")
    why = None if r.status == "ok" else f"the denoiser: {r.status} ({r.reason})"
    return Measurement({"virtual fraction": f["virtual_fraction"], "memorized": f["memorized"]}, text, why)


def boundary_gain(runs: dict) -> Measurement:
    """Boundary fraction of the probability flow minus the score flow's, from the same starts."""
    p, s = fractions(runs, "probability"), fractions(runs, "score")
    gain = p["boundary_fraction"] - s["boundary_fraction"]
    return Measurement({"boundary: probability - score": gain},
                       f"on the box's boundary: probability flow {p['boundary_fraction']:.3f}, score flow "
                       f"{s['boundary_fraction']:.3f} (score: training {s['memorized']:.3f}, virtual "
                       f"{s['virtual_fraction']:.3f})")


def memorization_by_n(runs: dict) -> Measurement:
    """The memorized share against N; the claim is the fall from the smallest to the largest N."""
    by_n = sorted(((_n_points(r), r) for r in runs.values()), key=lambda nr: nr[0])
    ns, ordered = [n for n, _ in by_n], [r for _, r in by_n]
    mem = [r.result.get("memorized") for r in ordered]
    bad = [f"N={n}" for n, r in zip(ns, ordered) if r.status != "ok"]
    why = f"the denoisers at {', '.join(bad)} do not interpolate their samples" if bad else None
    rise = max((b - a for a, b in zip(mem, mem[1:])), default=0.0)
    return Measurement({"memorized: largest N - smallest N": mem[-1] - mem[0], "largest rise to the next N": rise},
                       "memorized " + ", ".join(f"N={n}: {m:.3f}" for n, m in zip(ns, mem)), why)


def _n_points(run) -> int:
    """The run's number of clean points, from its recipe (an orthogonal simplex of dim d has d + 1)."""
    from ..recipe import load_recipe

    recipe, _ = load_recipe(run.run_dir / "recipe.yaml")
    return recipe.data.dim + 1


def weight_decay_virtual(runs: dict) -> Measurement:
    """Virtual points of the weight-decay denoiser against the exact interpolant's."""
    wd, al = fractions(runs, "weight-decay"), fractions(runs, "exact")
    gain = wd["virtual_fraction"] - al["virtual_fraction"]
    text = (f"virtual: weight decay {wd['virtual_fraction']:.3f}, exact interpolation {al['virtual_fraction']:.3f}; "
            f"weight decay ends elsewhere for {wd['other_fraction']:.3f}")
    why = None
    if wd["other_fraction"] > 0.5:
        why = (f"the weight-decay denoiser collapsed: {wd['other_fraction']:.0%} of its flows end at no training, "
               "virtual or boundary point, so it says nothing about virtual points")
    return Measurement({"virtual: weight decay - exact": gain}, text, why)


def _orthogonal(dim_full: int, dim_quick: int) -> tuple[dict, dict]:
    return {"data.dim": dim_full}, {"data.dim": dim_quick}


CLOSED, NN = {"flow.denoiser": "closed-form"}, {"flow.denoiser": "nn"}
FULL, QUICK = _orthogonal(30, 12)

CLAIMS = (
    Claim("subset-sums-closed-form", PAPER, "Every subset sum is a stable point of the closed form's score flow",
          "Section 4; docs/theory.md 10.4 (derived)", "subset sums are virtual training points (orthogonal simplex)",
          runs=(RunSpec("audit", "flow", "flow-orthogonal.yaml", {**AUDIT, **CLOSED, **FULL}, QUICK),),
          measure=audit_stable,
          checks=tuple(at_least(f"stable m={m}", 1.0, "exact: the form decouples by coordinate (docs/theory.md 10.4)")
                       for m in (2, 3, 4))),
    Claim("subset-sums-trained", PAPER, "Trained denoisers keep most subset sums of 2 edges stable",
          "Section 4, Table 1; docs/theory.md 10.6", "429/435 (m=2), 3390/4060 (m=3), 6965/27405 (m=4) kept",
          runs=(RunSpec("audit", "flow", "flow-orthogonal.yaml", {**AUDIT, **NN, "data.dim": 8, "noise.samples": 50}),),
          measure=audit_trained,
          checks=(at_least("stable m=2", 0.5, "the paper keeps 98.6%; most (> half) is the claim's content"),),
          evidence=(("audit", "flow.png"),)),
    Claim("probability-flow-boundary", PAPER, "The probability flow ends on the hyperbox boundary more often than "
          "the score flow", "Section 4; docs/theory.md 10.2, 10.4", "probability flow can stop on the box boundary",
          runs=(RunSpec("probability", "flow", "flow-orthogonal.yaml", {**CLOSED, **FULL}, QUICK, figures=True),
                RunSpec("score", "flow", "flow-orthogonal.yaml", {**CLOSED, **FULL, "flow.kind": "score"}, QUICK)),
          measure=boundary_gain,
          checks=(at_least("boundary: probability - score", 0.2, "well above the sampling noise of 500 starts "
                           "(1/sqrt(500) = 0.045)"),),
          evidence=(("probability", "flow.png"),)),
    Claim("right-triangle-virtual", PAPER, "A right triangle's score flow reaches the virtual corner",
          "Section 4; docs/theory.md 10.4", "stable virtual points x1 + x2 - x0 for orthogonal edges",
          runs=(RunSpec("flow", "flow", "flow-orthogonal-triangle.yaml", CLOSED, figures=True),),
          measure=endpoints,
          checks=(at_least("virtual fraction", 0.05, "a basin of the virtual corner, not a stray endpoint"),),
          evidence=(("flow", "flow.png"),)),
    Claim("obtuse-triangle-no-virtual", PAPER, "An obtuse triangle's score flow keeps no virtual point",
          "Section 4; docs/theory.md 10.4", "virtual points need (near) orthogonal edges",
          runs=(RunSpec("flow", "flow", "flow-obtuse-triangle.yaml", CLOSED),), measure=endpoints,
          checks=(at_most("virtual fraction", 0.0, "derived: the corner is not a fixed point (docs/theory.md 10.4)"),)),
    Claim("memorization-falls-with-n", PAPER, "Memorization falls as the number of training points grows",
          "Section 5; docs/theory.md 10", "flows end at training points less often for larger N",
          runs=tuple(RunSpec(f"N={i}", "flow", "flow-orthogonal.yaml",
                             {**NN, "data.dim": d, "flow.kind": "score", "flow.starts": 200, "train.steps": 20000},
                             {"data.dim": q, "flow.starts": 100, "train.steps": 5000})
                     for i, (d, q) in enumerate(((2, 2), (4, 4), (8, 6), (16, 8)), 1)),
          measure=memorization_by_n,
          checks=(at_most("memorized: largest N - smallest N", -0.1, "a fall of 10 points of share, over sampling "
                          "noise (1/sqrt(200) = 0.07)"),
                  at_most("largest rise to the next N", 0.1, "no rise beyond sampling noise on the way"))),
    Claim("weight-decay-virtual", PAPER, "Weight decay creates virtual points that exact interpolation does not",
          "Section 5; docs/theory.md 10", "virtual points with weight decay, training or boundary points without",
          runs=(RunSpec("weight-decay", "flow", "flow-orthogonal-triangle.yaml",
                        {**NN, "train.method": "weight-decay", "train.weight_decay": 0.25, "train.steps": 5000}),
                RunSpec("exact", "flow", "flow-orthogonal-triangle.yaml", {**NN, "train.steps": 5000})),
          measure=weight_decay_virtual,
          checks=(Check("virtual: weight decay - exact", 0.05, None, "a basin, not a stray endpoint"),)),
)
