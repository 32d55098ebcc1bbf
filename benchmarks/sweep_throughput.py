"""Throughput of sweeps (not a test): 24 fits of a 2-D triangle with sphere noise, three ways.

    python benchmarks/sweep_throughput.py [--jobs 2] [--seeds N] [--keep DIR]

The fits are recipes/sweeps/triangle-radius.yaml: the obtuse triangle, sphere noise at 4 radii
x 6 seeds, the default training method. Measured in one run:

1. sequential: 24 `reluden fit` processes, one after another (what a shell loop does: each pays
   the interpreter and import start-up, and the figures);
2. `reluden sweep --jobs N --no-batch`: long-lived workers, no per-point start-up, no per-point
   figures, one fit at a time;
3. `reluden sweep --jobs N`: the same with the fits of one data shape trained together as one
   network with stacked weights (train/batched.py), in N groups of 24 / N.

Prints wall times, seconds per fit and the ratio to the sequential baseline, the machine's load
average before and after, and checks that every way found the same status and cost, bit for bit
(a fit trained in a group ends exactly as alone: docs/training.md 11).

Measured (2 cores, idle but for this; every fit also polishes its output layer, docs/theory.md
9.4, about 0.04 s here; same status and cost at all 24 points, bit for bit):

    load average before 0.16 0.73 1.14, after 1.31 0.95 1.15
    way                                        wall s  s / fit  speed-up
    sequential `reluden fit` x 24               137.3     5.72     1.00x
    `reluden sweep --jobs 2 --no-batch`          18.7     0.78     7.33x
    `reluden sweep --jobs 2` (batched)           13.8     0.58     9.94x

An earlier run with the slower first polish (about 0.2 s a fit): 157.6, 22.5 and 15.4 s (7.01x and
10.22x). With one core each (`--jobs 1`, another job on the other core; the slower polish): 171.6, 36.2 and
20.3 s (4.74x and 8.46x). Where the batched way's time goes (in-process profile, 24 fits in one group): the
group's steps 47%, the per-fit checks (output solves, exact interpolants) 28%, the rest writing
the runs and the summary figure. Fits leave the group as their own rule stops them; the radius-0.02
fits run to 18,000-20,000 steps, far beyond the others' 2,000-5,800, and set its length.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "recipes" / "sweeps" / "triangle-radius.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="sweep workers (default 2)")
    parser.add_argument("--keep", type=Path, help="write the runs here and keep them (default: a temporary folder)")
    parser.add_argument("--seeds", type=int, default=None, help="only seeds 0 .. N-1 (a quick look; default 6)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.jobs, args.seeds)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, jobs: int, limit: int | None) -> None:
    from relu_denoise.sweep import load_sweep

    grid = ["--grid", f"seed=0:{limit}"] if limit else []
    points = load_sweep(SWEEP, out=work / "sweep", grid=grid[1:]).points
    print(f"{len(points)} fits of {SWEEP.relative_to(ROOT)}; {os.cpu_count()} cores; load average before "
          f"{_load()}", flush=True)
    rows = []

    start = time.perf_counter()
    seq = []
    for i, p in enumerate(points):
        out = work / "sequential" / str(i)
        cmd = ["reluden", "fit", p.recipe_path, *[a for o in p.overrides for a in ("--set", o)], "--device",
               "cpu", "--out", str(out), "--json", "-q"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if not (out / "result.json").is_file():
            print(f"point {i}: reluden fit exited {done.returncode} without a result: {done.stderr.strip()[-300:]}")
        seq.append(json.loads((out / "result.json").read_text()) if (out / "result.json").is_file()
                   else {"status": f"exit {done.returncode}", "cost": None})
    rows.append(("sequential `reluden fit` x %d" % len(points), time.perf_counter() - start))

    for label, extra, folder in ((f"`reluden sweep --jobs {jobs} --no-batch`", ["--no-batch"], "sweep"),
                                 (f"`reluden sweep --jobs {jobs}` (batched)", [], "batched")):
        start = time.perf_counter()
        done = subprocess.run(["reluden", "sweep", str(SWEEP), "--jobs", str(jobs), "--out", str(work / folder),
                               "--json", "-q", *extra, *grid], capture_output=True, text=True)
        if done.returncode not in (0, 1):
            sys.exit(f"reluden sweep failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        rows.append((label, time.perf_counter() - start))
        _check_same(seq, json.loads(done.stdout), label)

    base = rows[0][1]
    print(f"\nload average after {_load()}\n")
    print(f"{'way':<40} {'wall s':>8} {'s / fit':>8} {'speed-up':>9}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds:8.1f} {seconds / len(points):8.2f} {base / seconds:8.2f}x")


def _check_same(seq: list[dict], swept: list[dict], label: str) -> None:
    """Sequential fits and sweep points train on the same content-derived streams, and a fit trained in a
    group ends as alone: the same status and cost, bit for bit."""
    for a, b in zip(seq, swept, strict=True):
        if a["status"] != b["status"] or a["cost"] != b["cost"]:
            print(f"warning ({label}): a point differs: fit {a['status']} cost {a['cost']}, sweep {b['status']} "
                  f"cost {b['cost']}")
            return
    print(f"same status and cost at all {len(seq)} points, bit for bit ({label} vs sequential)", flush=True)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
