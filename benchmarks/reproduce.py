"""Time of `reluden reproduce` (not a test), measured in one run and printed as a table.

    python benchmarks/reproduce.py [--full] [--jobs N] [--out DIR]

1. A first reproduce (--quick unless --full) into a fresh directory: every run from the start.
2. The same again into the same directory, nothing changed: every run cached, only the report rebuilt.
The ratio is the rerun's share of the first run's time; the goals are a first --quick under 5 minutes on
2 cores and a rerun under 10 s. Prints the machine's load average before and after (this machine's cores
may be shared) and the verdict counts of each pass (they must be equal).

Measured (2 CPU cores, otherwise idle: load 0.57 before, 2.32 after; `--jobs 2`):

    first run                   106.5 s   1.000x   holds 23, fails 0, inconclusive 1, not built 0
    rerun, nothing changed        0.5 s   0.005x   holds 23, fails 0, inconclusive 1, not built 0

(in one process; `reluden reproduce --quick` again from the shell adds the interpreter's start-up: 2.9 s.)
"""

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full size (default: --quick)")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (default: the cores)")
    parser.add_argument("--out", type=Path, default=None, help="report directory (default: a temporary one)")
    args = parser.parse_args()
    from relu_denoise.reproduce import reproduce

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "reproduce"
        rows = []
        for label in ("first run", "rerun, nothing changed"):
            start = time.perf_counter()
            report = reproduce(out, quick=not args.full, jobs=args.jobs, device="cpu")
            rows.append((label, time.perf_counter() - start, report["summary"]))
    first = rows[0][1]
    for label, seconds, summary in rows:
        counts = ", ".join(f"{k} {v}" for k, v in summary.items())
        print(f"{label:24s} {seconds:8.1f} s  {seconds / first:6.3f}x   {counts}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
