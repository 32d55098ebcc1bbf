"""Start-up time of `reluden --help` against the floor of any typer + rich app (issue: fast start).

    python benchmarks/startup.py [--repeats 15]

Runs each command `repeats` times, interleaved, in fresh interpreters, and prints the median
wall time and the ratio. The floor is `python -c "import typer, rich"`; a usage error
(`reluden fit --bogus`) must be as fast as --help: neither may import torch, scipy or matplotlib.

Measured (2 cores, shared with other jobs; load average about 2; 15 repeats):

"""

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import typer, rich' (floor)": [sys.executable, "-c", "import typer, rich"],
    "reluden --help": [sys.executable, "-m", "relu_denoise", "--help"],
    "reluden fit --bogus (usage error)": [sys.executable, "-m", "relu_denoise", "fit", "--bogus"],
    "python -c 'import torch' (what is avoided)": [sys.executable, "-c", "import torch"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True)
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(next(iter(times.values())))
    print(f"{'command':48s} {'median s':>9s} {'x floor':>8s}")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"{name:48s} {m:9.3f} {m / floor:8.2f}")


if __name__ == "__main__":
    main()
