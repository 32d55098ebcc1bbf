"""The acceptance runs of `reluden fit` (issue 3): four shipped recipes, sphere and Gaussian noise,
offline and online, default settings, CPU.

    python benchmarks/fit_acceptance.py [--out DIR]      (with the package installed)

Each run is the command itself (`python -m relu_denoise fit RECIPE --quiet --json --out ...`), so
`wall` includes start-up, the closed form and the figures; `train` is result.json's `seconds`.
Sphere runs replace the recipe's Gaussian noise by the theory's bounded noise with
`--set noise.sigma=null --set noise.distribution=sphere --set noise.radius=R`. The last column
compares the offline and online networks of the same recipe and noise: the sup norm of their
difference on the fit probe set, relative to the data diameter (relu_denoise.fitting.function_gap).

Targets (sphere, offline): |cost_ratio - 1| <= 0.02, max residual <= 0.01 x smallest distance,
function gap <= 0.05, under 2 minutes; Gaussian offline: 0.94 <= cost_ratio <= 1.02.

Measured on an AMD EPYC VM, 2 cores, shared with other jobs, torch 2.13 CPU (about 2.5 minutes):

    recipe                noise     mode      status         cost_ratio  res/dmin     gap   steps  train s  wall s  off~on
    univariate            sphere    offline   ok                 1.0055    0.0028  0.0011    6300      0.8     3.9
    univariate            sphere    online    ok                 1.0018    0.0027  0.0028    8300      1.3     4.4  0.0017
    rays                  sphere    offline   ok                 0.9985    0.0022  0.0053   10700      4.6     8.4
    rays                  sphere    online    ok                 0.9943    0.0057  0.0423   13300      6.7    10.7  0.0471
    obtuse-triangle       sphere    offline   ok                 0.9991    0.0032  0.0017    3500      0.8     4.6
    obtuse-triangle       sphere    online    ok                 0.9996    0.0030  0.0137   11900      3.4     7.1  0.0134
    equilateral-triangle  sphere    offline   ok                 0.9969    0.0026  0.0040    3000      0.7     4.5
    equilateral-triangle  sphere    online    ok                 0.9901    0.0024  0.0033   10800      3.0     6.6  0.0027
    univariate            gaussian  offline   ok                 0.9948    0.0041  0.0009   11300      1.3     4.0
    univariate            gaussian  online    ok                 0.8988    0.0079  0.0138   20000      3.6     6.4  0.0400
    rays                  gaussian  offline   ok                 0.9946    0.0037  0.1082   17000      7.4    11.2
    rays                  gaussian  online    not-converged      0.9356    0.0196  0.0708   20000     10.7    14.7
    obtuse-triangle       gaussian  offline   ok                 0.9986    0.0064  0.0089   14700      3.5     7.6
    obtuse-triangle       gaussian  online    ok                 1.0571    0.0013  0.0965   20000      6.5    10.7  0.0851
    equilateral-triangle  gaussian  offline   ok                 0.9781    0.0048  0.0378    8100      2.0     6.0
    equilateral-triangle  gaussian  online    ok                 0.9787    0.0026  0.0210   18800      5.9    10.0  0.0308

Sphere noise meets every target, offline and online (offline and online networks within 4.7% of
the diameter of each other). Gaussian offline: cost ratios 0.978 to 0.999 against the empirical
closed form, an upper bound that exact interpolation may undercut (theory.md 1); its function gap
is reported, not a target (rays: 11%, the tilted ramps theory.md describes). Gaussian online is
the weak case: the exact methods constrain only samples within rho = sigma sqrt(2 ln M) of their
clean point, the rare samples near that radius pull weakly under the penalty continuation, and
three of four runs stop at train.steps (rays without reaching train.tol: exit 1).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = {"univariate": 0.05, "rays": 0.1, "obtuse-triangle": 0.15, "equilateral-triangle": 0.1}
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
    from relu_denoise.fitting import function_gap
    from relu_denoise.network import ShallowDenoiser
    from relu_denoise.recipe import load_recipe
    from relu_denoise.data import make_source
    import numpy as np

    net_a, _ = ShallowDenoiser.load(a / "model.pt")
    net_b, _ = ShallowDenoiser.load(b / "model.pt")
    r, base = load_recipe(a / "recipe.yaml")
    points = make_source(r.data, rng=np.random.default_rng(r.seed), base_dir=base).points
    return function_gap(net_a, net_b, points, scale=r.noise.scale)


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


if __name__ == "__main__":
    main()
