"""The acceptance runs of `reluden fit` (issue 3): four shipped recipes, sphere and Gaussian noise,
offline and online, default settings, CPU; then the NN fits of `reluden compare` on its built-in
recipe (DEFAULT_RECIPE: 10 points about 0.1 apart on [0, 1], width 64, M = 100) at low noise.

    python benchmarks/fit_acceptance.py [--out DIR]      (with the package installed)

Each run is the command itself (`python -m relu_denoise fit RECIPE --quiet --json --out ...`), so
`wall` includes start-up, the closed form and the figures; `train` is result.json's `seconds`.
Sphere runs replace the recipe's Gaussian noise by the theory's bounded noise with
`--set noise.sigma=null --set noise.distribution=sphere --set noise.radius=R`. The last column
compares the offline and online networks of the same recipe and noise: the sup norm of their
difference on the fit probe set, relative to the data diameter (relu_denoise.metrics.function_gap).

Targets (sphere, offline): |cost_ratio - 1| <= 0.02, max residual <= 0.01 x smallest distance,
function gap <= 0.05, under 2 minutes; Gaussian offline: 0.94 <= cost_ratio <= 1.02. Compare's
recipe, on the samples `reluden compare` draws (relu_denoise.compare, repeat 0) at sigma 0.001,
0.003 and 0.01 (at 0.03 and 0.1 the noise clouds overlap and no interpolant exists): converged,
max residual <= train.tol, 0.94 <= cost_ratio <= 1.02 against the empirical closed form, under 10 s.

Measured on an AMD EPYC VM, 2 cores, shared with other jobs, torch 2.13 CPU (about 2.3 minutes):

    recipe                noise     mode      status         cost_ratio  res/dmin     gap   steps  train s  wall s  off~on
    univariate            sphere    offline   ok                 1.0017    0.0016  0.0004   10300      1.6     4.8
    univariate            sphere    online    ok                 0.9956    0.0025  0.0006   10600      1.8     5.1  0.0007
    rays                  sphere    offline   ok                 0.9977    0.0037  0.0157    3700      2.3     6.3
    rays                  sphere    online    ok                 0.9960    0.0021  0.0148   13200      8.1    12.4  0.0217
    obtuse-triangle       sphere    offline   ok                 0.9985    0.0020  0.0009    2700      0.8     5.0
    obtuse-triangle       sphere    online    ok                 0.9963    0.0030  0.0115   15900      5.6     9.7  0.0107
    equilateral-triangle  sphere    offline   ok                 0.9963    0.0073  0.0091    1600      0.5     4.5
    equilateral-triangle  sphere    online    ok                 0.9913    0.0021  0.0037   10900      3.8     7.9  0.0081
    univariate            gaussian  offline   ok                 0.9957    0.0077  0.0018    5400      0.7     3.9
    univariate            gaussian  online    ok                 0.9414    0.0016  0.0089   18100      3.8     7.1  0.0385
    rays                  gaussian  offline   ok                 0.9943    0.0025  0.1060    6100      3.4     7.5
    rays                  gaussian  online    ok                 1.0291    0.0019  0.0701   20000     14.0    18.2  0.0858
    obtuse-triangle       gaussian  offline   ok                 1.0004    0.0042  0.0084    5400      1.6     5.5
    obtuse-triangle       gaussian  online    ok                 0.9729    0.0007  0.0158   18300      7.0    11.0  0.0184
    equilateral-triangle  gaussian  offline   ok                 0.9823    0.0008  0.0369    3600      1.1     5.5
    equilateral-triangle  gaussian  online    ok                 1.0017    0.0037  0.0359   20000      7.9    11.7  0.0344

    compare recipe         sigma  status            cost   closed  cost_ratio  res/dmin   steps  train s
    default-univariate     0.001  ok              18.957   18.853      1.0055    0.0057    3800      0.7
    default-univariate     0.003  ok              21.140   20.872      1.0129    0.0003   15600      2.8
    default-univariate      0.01  ok              31.379   31.421      0.9987    0.0051    4500      0.8

Sphere noise meets every target, offline and online (offline and online networks within 2.2% of
the diameter of each other). Gaussian offline: cost ratios 0.982 to 1.000 against the empirical
closed form, an upper bound that exact interpolation may undercut (docs/theory.md 1); its function gap
is reported, not a target (rays: 11%, the tilted ramps docs/theory.md describes). Gaussian online is
the weak case: the exact methods constrain only samples within rho = sigma sqrt(2 ln M) of their
clean point and the rare samples near that radius pull weakly under the penalty continuation; all
four reach train.tol, two stop at train.steps, and their cost ratios spread from 0.94 to 1.03.
Compare's recipe converges at the three low noise levels in under 3 s each. Before the engine's
low-noise changes (docs/training.md 5: penalty unit from the affine fit's residual,
exact output-layer solve, learning-rate cap, K / N boundaries per clean point) none of those three
converged in 20,000 steps (cost ratio 0.24 / 1.37 / 1.19, max residual 3.8% / 21% / 5.7% of dmin,
3.3 s each), and of the table above rays gaussian online stopped not-converged (0.9356, residual
0.0196) and the offline fits took 1.3 to 2.9x the steps they take now, univariate sphere excepted
(6,300 then, 10,300 now).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = {"univariate": 0.05, "rays": 0.1, "obtuse-triangle": 0.15, "equilateral-triangle": 0.1}
COMPARE_SIGMAS = [0.001, 0.003, 0.01]
ROOT = Path(__file__).resolve().parents[1]


def run(recipe: str, noise: str, mode: str, out: Path) -> dict:
    args = [sys.executable, "-m", "relu_denoise", "fit", str(ROOT / "recipes" / f"{recipe}.yaml"), "--quiet",
            "--json", "--out", str(out), "--set", f"noise.mode={mode}"]
    if noise == "sphere":
        args += ["--set", "noise.sigma=null", "--set", "noise.distribution=sphere",
                 "--set", f"noise.radius={RECIPES[recipe]}"]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    result = json.loads(done.stdout) if done.stdout.strip() else {"status": f"exit {done.returncode}"}
    return {**result, "wall": wall, "exit": done.returncode, "stderr": done.stderr.strip()[-300:]}


def offline_online_gap(a: Path, b: Path) -> float:
    from relu_denoise.metrics import function_gap
    from relu_denoise.network import ShallowDenoiser
    from relu_denoise.recipe import load_recipe
    from relu_denoise.data import make_source
    import numpy as np

    net_a, _ = ShallowDenoiser.load(a / "model.pt")
    net_b, _ = ShallowDenoiser.load(b / "model.pt")
    r, base = load_recipe(a / "recipe.yaml")
    points = make_source(r.data, rng=np.random.default_rng(r.seed), base_dir=base).points
    return function_gap(net_a, net_b, points, scale=r.noise.scale)


def compare_fits() -> None:
    """Train compare's NN as `reluden compare` does (library calls) at COMPARE_SIGMAS; print one row each."""
    import numpy as np
    import torch

    from relu_denoise.closed_forms import closed_form
    from relu_denoise.data import make_source
    from relu_denoise.recipe import DEFAULT_RECIPE, parse_recipe
    from relu_denoise.train import fit_denoiser

    r = parse_recipe(DEFAULT_RECIPE)
    x = make_source(r.data, rng=np.random.default_rng(r.seed)).points                      # (N, 1)
    print(f"\n{'compare recipe':20s}  {'sigma':>6s}  {'status':13s}  {'cost':>7s}  {'closed':>7s}  {'cost_ratio':>10s}  "
          f"{'res/dmin':>8s}  {'steps':>6s}  {'train s':>7s}")
    for i, sigma in enumerate(COMPARE_SIGMAS):
        rng = np.random.default_rng([r.seed, 0, i])                                         # compare's draw
        samples = x[:, None, :] + sigma * rng.standard_normal((len(x), r.noise.samples, x.shape[1]))
        fit = fit_denoiser(x, samples, r.model, r.train, seed=r.seed)
        s, reference = fit.stats, closed_form(x, samples=samples).cost_formula
        ok = (s["converged"] and s["max_residual_rel"] <= r.train.tol and 0.94 <= s["cost"] / reference <= 1.02
              and s["seconds"] < 10)
        print(f"{r.name:20s}  {sigma:6g}  {'ok' if ok else 'MISSES TARGET':13s}  {s['cost']:7.3f}  {reference:7.3f}  "
              f"{s['cost'] / reference:10.4f}  {s['max_residual_rel']:8.4f}  {s['steps']:6d}  {s['seconds']:7.1f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the run directories (default: temporary)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="fit-acceptance-"))
    cases = [(r, noise, m) for noise in ("sphere", "gaussian") for r in RECIPES for m in ("offline", "online")]
    print(f"{'recipe':20s}  {'noise':8s}  {'mode':8s}  {'status':13s}  {'cost_ratio':>10s}  {'res/dmin':>8s}  "
          f"{'gap':>6s}  {'steps':>6s}  {'train s':>7s}  {'wall s':>6s}  {'off~on':>6s}")
    for recipe, noise, mode in cases:
        out = root / f"{recipe}-{noise}-{mode}"
        r = run(recipe, noise, mode, out)
        pair = f"{offline_online_gap(root / f'{recipe}-{noise}-offline', out):.4f}" if mode == "online" \
            and r["exit"] == 0 else ""
        f = lambda k, fmt: format(r[k], fmt) if isinstance(r.get(k), (int, float)) else "-"  # noqa: E731
        print(f"{recipe:20s}  {noise:8s}  {mode:8s}  {r['status'][:13]:13s}  {f('cost_ratio', '10.4f')}  "
              f"{f('max_residual_rel', '8.4f')}  {f('function_gap', '6.4f')}  {f('steps', '6d')}  "
              f"{f('seconds', '7.1f')}  {r['wall']:6.1f}  {pair:>6s}", flush=True)
        if r["exit"] not in (0,):
            print(f"    exit {r['exit']}: {r['stderr']}")
    print(f"\nrun directories under {root}")
    compare_fits()


if __name__ == "__main__":
    main()
