"""Speed of `reluden flow` (not a test), measured in one run and printed as a table.

    python benchmarks/flow.py [--levels K] [--dim D] [--starts N] [--device cpu|cuda]

1. Trained levels: the K denoisers of a probability flow's schedule on an orthogonal simplex in R^D, trained
   together (train.fit_many: one network with stacked weights, as `reluden flow` trains them) against the same
   K fits one at a time (fit_many of one job each); the ratio is the speed-up, and every level must end with
   the same cost either way (a fit trained in a group ends bit for bit as alone, docs/training.md 11).
2. Flows: N starts through the closed form in R^D, a score flow of 1000 steps and a probability flow with
   dr = 0.001 (4,600 steps for sigma from 0.1 to 0.001), and the score flow through a trained level:
   flows (start x steps) per second.

Prints the machine's load average before and after (this machine's 2 cores may be shared).

Measured (2 CPU cores, otherwise idle: load 0.6 before and after; the grouped and lone fits end at the same
costs, bit for bit):

    python benchmarks/flow.py                          python benchmarks/flow.py --levels 8 --dim 16
    4 levels together (R^8)       1.84 s   1.41x       8 levels together (R^16)     11.13 s   1.33x
    4 levels one at a time        2.60 s   1.00x       8 levels one at a time       14.82 s   1.00x
    score flow, closed form       13.5 million start-steps/s  (500 starts x 1000 steps in 0.04 s)
    probability flow, closed form  9.9 million start-steps/s  (500 x 4606 steps in 0.23 s)
    score flow, trained width 72   2.1 million start-steps/s  (0.24 s)
"""

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=4, help="trained levels K (default 4)")
    parser.add_argument("--dim", type=int, default=8, help="dimension D of the orthogonal simplex (default 8)")
    parser.add_argument("--starts", type=int, default=500, help="starts of the flows (default 500)")
    parser.add_argument("--device", default="cpu", help="device of the trained levels (default cpu)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = trained_levels(args) + flows(args)
    print(f"{'what':58s} {'seconds':>9s} {'rate':>14s}")
    for what, seconds, rate in rows:
        print(f"{what:58s} {seconds:9.2f} {rate:>14s}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _recipe(dim: int):
    from relu_denoise.recipe import parse_recipe

    return parse_recipe({"name": "bench", "data": {"kind": "simplex", "shape": "orthogonal", "dim": dim},
                         "noise": {"distribution": "sphere", "radius": 0.1, "samples": 20},
                         "train": {"steps": 3000, "reference": "none"}})


def trained_levels(args) -> list:
    from relu_denoise.compare import level_noise
    from relu_denoise.flows import geometric_levels
    from relu_denoise.problem import make_problem
    from relu_denoise.train import fit_many

    recipe = _recipe(args.dim)
    sigmas = geometric_levels(0.1, 0.01, args.levels)
    jobs = [make_problem(recipe, noise=level_noise(recipe.noise, s)).fit_job(recipe, device=args.device)
            for s in sigmas]
    tick = time.perf_counter()
    together = fit_many(jobs)
    grouped = time.perf_counter() - tick
    tick = time.perf_counter()
    alone = [fit_many([job])[0] for job in jobs]
    separate = time.perf_counter() - tick
    same = all(a.stats.cost == b.stats.cost for a, b in zip(together, alone))
    return [(f"{args.levels} levels trained together (R^{args.dim})", grouped, f"{separate / grouped:.2f}x"),
            (f"{args.levels} levels one at a time (same costs: {same})", separate, "1.00x")]


def flows(args) -> list:
    from relu_denoise.closed_forms import closed_form
    from relu_denoise.flows import closed_form_family, probability_flow, score_flow
    from relu_denoise.problem import make_problem
    from relu_denoise.train import fit

    recipe = _recipe(args.dim)
    X = make_problem(recipe).points
    Y0 = X.mean(axis=0) + 0.5 * np.random.default_rng(0).standard_normal((args.starts, X.shape[1]))
    form = closed_form(X, rho=0.1)
    out = []
    tick = time.perf_counter()
    score_flow(form, Y0, dr=0.01, steps=1000, tol=0.0)
    t = time.perf_counter() - tick
    out.append((f"score flow, closed form: {args.starts} starts x 1000 steps", t, f"{args.starts * 1000 / t:,.0f}/s"))
    family = closed_form_family(X, lambda s: s, sigma_max=0.1)
    tick = time.perf_counter()
    f = probability_flow(family, Y0, sigma_max=0.1, sigma_min=0.001, dr=0.001)
    t = time.perf_counter() - tick
    out.append((f"probability flow, closed form: {args.starts} x {f.steps} steps", t,
                f"{args.starts * f.steps / t:,.0f}/s"))
    net = fit(make_problem(recipe).fit_job(recipe, device=args.device)).net
    tick = time.perf_counter()
    score_flow(net, Y0, dr=0.01, steps=1000, tol=0.0)
    t = time.perf_counter() - tick
    out.append((f"score flow, trained (width {net.width}): {args.starts} x 1000 steps", t,
                f"{args.starts * 1000 / t:,.0f}/s"))
    return out


if __name__ == "__main__":
    main()
