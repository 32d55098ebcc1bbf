"""The acceptance runs of `reluden certify` (issue 12), library calls, one table.

    python benchmarks/certify.py [--time-limit S] [--tol T] [--quick]

Cases: the shipped 1-D recipe as it is (Gaussian noise, M = 100) and with sphere noise; the
obtuse, equilateral and acute triangles and the rays with sphere noise of radius 0.1 and M = 30
samples per point; four points in general position in 2-D (no closed form); and, for the record,
the subspace recipe (points on a line in R^3, full 3-D noise) whose lower bound is only searched.
Points and samples are drawn as the commands draw them (relu_denoise.problem.make_problem).

Columns: lower, upper and gap = upper / lower - 1 of the certificate; `cf` the ball-model closed
form's cost (sphere noise: rho = the radius, must be >= lower; Gaussian: rho = sigma sqrt(2 ln M),
which need not interpolate the samples, so no check),
`cf_emp` the empirical closed form's (exactly interpolating, so >= the minimum); `res/dmin` the
upper network's max residual over the samples, evaluated with ShallowDenoiser.predict, divided by
the smallest distance between clean points; `s` wall seconds of `certify`.

Targets: 1-D gap < 1e-6; 2-D sphere cases gap <= 0.02 in under 120 s each; cf >= lower;
res/dmin <= 1e-6. For the four points the units of the upper network are grouped by direction and
each group's cost share is printed with the nearest candidate direction of the data
(relu_denoise.align.candidates: edges, altitudes).

Measured on an AMD EPYC VM, 2 cores shared with other jobs (load about 3.5), tol 1e-3, numpy 2.4,
cvxpy 1.9.3, Clarabel 0.11.1 (about 4 minutes in all):

    case                     N    M      lower      upper       gap        cf    cf_emp      s rounds method    res/dmin
    univariate gaussian      5  100  13.803024  13.803024  1.00e-09  16.22571  13.80302    1.6      1 lp-1d      3.5e-15
    univariate sphere        5   30  13.719773  13.719773  1.00e-09  13.71977  13.71977    0.0      1 lp-1d      1.8e-15
    obtuse-triangle          3   30   4.540571   4.541349  1.71e-04   4.55165   4.54207   12.5     10 exact-2d   1.7e-15
    equilateral-triangle     3   30   5.176649   5.181659  9.68e-04   5.20116   5.18775    4.7      5 exact-2d   6.3e-16
    acute-triangle           3   30   5.007620   5.010958  6.66e-04   5.04001   5.03599    7.9      7 exact-2d   6.3e-16
    rays                     7   30  14.947665  14.959379  7.84e-04  15.00000  14.96383   29.3      7 exact-2d   3.8e-15
    four points              4   30   5.892858   5.892901  7.39e-06         -         -   38.4     14 exact-2d   1.6e-15
    subspace (searched)      5   30   9.440673   9.466172  2.70e-03   9.64309   9.48550  104.9     35 searched   9.1e-15

Every target is met. The 1-D gap (1e-9) is the supremum's rounding margin. With M = 30 the exact
minimum lies 0.2% (obtuse), 0.4% (equilateral), 0.6% (acute) and 0.3% (rays) below the ball-model
form: the finite-sample effect docs/theory.md 1 describes for d >= 3 shows in 2-D too. Four points:
70% of the cost sits on units whose w is perpendicular to a hull edge (boundaries parallel to the
edges x0-x1, x1-x3, x2-x3 and, 7.7 degrees off, x0-x2), the rest on a few units near other edge
and altitude directions. The searched 3-D case is no proof (see its note).
"""

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPHERE = ["noise.sigma=null", "noise.distribution=sphere", "noise.radius=0.1", "noise.samples=30", "noise.mode=offline"]
FOUR_POINTS = {"name": "four-points", "seed": 0,
               "data": {"kind": "points", "points": [[0, 0], [2, 0.3], [0.4, 1.5], [1.7, 1.9]]},
               "noise": {"distribution": "sphere", "radius": 0.1, "samples": 30}}
CASES = [  # (label, recipe file or dict, overrides, target gap)
    ("univariate gaussian", "univariate", [], 1e-6),
    ("univariate sphere", "univariate", SPHERE[:2] + ["noise.radius=0.05", "noise.samples=30"], 1e-6),
    ("obtuse-triangle", "obtuse-triangle", SPHERE, 0.02),
    ("equilateral-triangle", "equilateral-triangle", SPHERE, 0.02),
    ("acute-triangle", "acute-triangle", SPHERE, 0.02),
    ("rays", "rays", SPHERE, 0.02),
    ("four points", FOUR_POINTS, [], 0.02),
    ("subspace (searched)", "subspace", SPHERE[:2] + ["noise.radius=0.01", "noise.samples=30"], None),
]


def load(recipe, overrides):
    """The recipe, its clean points (N, d) and offline samples (N, M, d), drawn as the commands draw them."""
    from relu_denoise.recipe import load_recipe, parse_recipe

    if isinstance(recipe, dict):
        r, base = parse_recipe(recipe, overrides), ROOT
    else:
        r, base = load_recipe(ROOT / "recipes" / f"{recipe}.yaml", overrides)
    from relu_denoise.problem import make_problem

    data = make_problem(r, base)
    return r, data.points, data.samples


def closed_form_costs(r, points, samples):
    """Path costs of the ball-model closed form (rho = the radius, or sigma sqrt(2 ln M) for Gaussian
    noise) and of the empirical one; None where there is no closed form."""
    from relu_denoise.closed_forms import closed_form
    from relu_denoise.errors import NoClosedFormError

    noise = r.noise
    rho = noise.radius if noise.distribution != "gaussian" else noise.sigma * np.sqrt(2 * np.log(noise.samples))
    try:
        forms = closed_form(points, rho=rho), closed_form(points, samples=samples)
        return tuple(form.network.path_cost().item() for form in forms)
    except NoClosedFormError:
        return None, None


def unit_directions(cert, points):
    """Group the upper network's units by the line of w (within 1 degree): cost share, nearest candidate
    direction of the data, and the clean points on the unit's active side (w . x + b > 0)."""
    from relu_denoise.align import candidates
    from relu_denoise.geometry import line_angle_deg

    net = cert.network
    w, b = net.w.detach().numpy(), net.b.detach().numpy()
    cost = net.unit_costs().detach().numpy()
    angle = np.degrees(np.arctan2(w[:, 1], w[:, 0])) % 180                   # the line of w, in [0, 180)
    cands, _ = candidates(points)
    groups = {}
    for k in np.argsort(-cost):
        key = next((g for g in groups if min(abs(g - angle[k]), 180 - abs(g - angle[k])) < 1.0), angle[k])
        groups.setdefault(key, []).append(k)
    rows = []
    for key, ks in sorted(groups.items(), key=lambda kv: -cost[kv[1]].sum()):
        u = np.array([[np.cos(np.radians(key)), np.sin(np.radians(key))]])
        off = {c.name: float(line_angle_deg(u, c.u[None])[0]) for c in cands}
        name = min(off, key=off.get)
        sides = sorted({" ".join(f"x{i}" for i in np.flatnonzero(points @ w[k] + b[k] > 0)) or "-" for k in ks})
        rows.append((key, cost[ks].sum() / cost.sum(), len(ks), name, off[name], " | ".join(sides)))
    return rows


def main() -> None:
    from relu_denoise.certificates import certify
    from relu_denoise.geometry import min_distance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=110.0, help="seconds per case (default 110)")
    parser.add_argument("--tol", type=float, default=1e-3, help="stop at this gap (default 1e-3)")
    parser.add_argument("--quick", action="store_true", help="the 2-D triangles only")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.quick or "triangle" in c[0]]
    print(f"{'case':22s} {'N':>3s} {'M':>4s} {'lower':>10s} {'upper':>10s} {'gap':>9s} {'cf':>9s} {'cf_emp':>9s} "
          f"{'s':>6s} {'rounds':>6s} {'method':9s} {'res/dmin':>8s}  check")
    four = None
    for label, recipe, overrides, target in cases:
        r, points, samples = load(recipe, overrides)
        cf, emp = closed_form_costs(r, points, samples)
        start = time.perf_counter()
        cert = certify(points, samples, time_limit=args.time_limit, tol=args.tol, rng=np.random.default_rng(r.seed))
        seconds = time.perf_counter() - start
        res = cert.max_residual / min_distance(points)
        ball_applies = r.noise.distribution != "gaussian"        # the Gaussian ball form needn't interpolate
        ok = (res <= 1e-6 and (cf is None or not ball_applies or cf >= cert.lower)
              and (emp is None or emp >= cert.lower)
              and (target is None or (cert.gap <= target and seconds < 120)))
        fmt = lambda v: f"{v:9.5f}" if v is not None else f"{'-':>9s}"  # noqa: E731
        print(f"{label:22s} {len(points):3d} {samples.shape[1]:4d} {cert.lower:10.6f} {cert.upper:10.6f} "
              f"{cert.gap:9.2e} {fmt(cf)} {fmt(emp)} {seconds:6.1f} {cert.rounds:6d} {cert.lower_method:9s} "
              f"{res:8.1e}  {'ok' if ok else 'MISSES TARGET'}", flush=True)
        if label == "four points":
            four = (cert, points)
    if four is not None:
        cert, points = four
        print("\nfour points: units of the upper network by direction of w (line angle, degrees)")
        print(f"  {'angle':>6s} {'share':>6s} {'units':>5s}  {'nearest candidate (angle off)':36s} active side")
        for angle, share, count, name, off, sides in unit_directions(cert, points):
            print(f"  {angle:6.1f} {share:6.3f} {count:5d}  {f'{name} ({off:.1f} deg)':36s} {sides}")


if __name__ == "__main__":
    main()
