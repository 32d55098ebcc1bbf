"""certify's peak memory against its estimate (relu_denoise.certificates.certify_memory), one table.

    python benchmarks/certify_memory.py [--large]

Each case runs in its own process: synthetic clean points (uniform in [-2, 2]^d, or evenly spaced on a line
for the 1-D LP) with M samples each on a sphere of radius 0.1 (on the line: uniform, width 0.4 / N), a
tiny certify first so that lazy imports are in the baseline, then one certify with a 20 s time limit.
`peak` is the growth of the process's maximum resident set (ru_maxrss) during that call; `estimate` is
certify_memory(N, M, d) with the data's hull dimensions, what certify checks against MemAvailable.

Measured on an AMD EPYC VM, 2 cores shared with other jobs, numpy 2.4, cvxpy 1.9.3, Clarabel 0.11.1,
scipy 1.17.1 (HiGHS), about 2 minutes (the --large rows: another run, 6 minutes more):

    case          N     M    d      n  method    rounds  peak MiB  estimate MiB  estimate/peak
    1-D LP        5   200    1   1000  lp-1d          1       324           343           1.06
    1-D LP        5   400    1   2000  lp-1d          1      1259          1372           1.09
    1-D LP        5   800    1   4000  lp-1d          1      4898          5491           1.12
    2-D           3   100    2    300  exact-2d       5        93           228           2.45
    2-D           3   200    2    600  exact-2d       1       252           541           2.15
    2-D           3   400    2   1200  exact-2d       1       793          1466           1.85
    searched      3   100   64    300  searched       5       134           183           1.37
    searched      3   300   16    900  searched       1       482           783           1.62

The estimate stays above the peak, within 2.5x: the cone program's term (CONE_BYTES per nonzero) counts
every seed unit and five rounds' worth of added ones, of which these runs kept fewer. Quadratic growth: the
1-D LP needs about 320 n^2 bytes (HiGHS's copies of the dense [G, -G]), the exact 2-D supremum about
(400 + 80 p) n^2, so 20,000 samples would need more than 100 GiB on either path.
"""

import argparse
import resource
import subprocess
import sys

CASES = [("1-D LP", 5, 200, 1), ("1-D LP", 5, 400, 1), ("2-D", 3, 100, 2), ("2-D", 3, 200, 2),
         ("searched", 3, 100, 64), ("searched", 3, 300, 16)]
LARGE = [("1-D LP", 5, 800, 1), ("2-D", 3, 400, 2)]


def _data(kind, N, M, d):
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "1-D LP":
        X = np.linspace(0, 1, N)[:, None] * np.ones(d)
        return X, X[:, None, :] + (0.2 / N) * rng.uniform(-1, 1, (N, M, 1)) * np.ones(d)
    X = rng.uniform(-2, 2, (N, d))
    g = rng.standard_normal((N, M, d))
    return X, X[:, None, :] + 0.1 * g / np.linalg.norm(g, axis=-1, keepdims=True)


def measure(kind: str, N: int, M: int, d: int) -> str:
    """One case in this process: the table row."""
    import numpy as np
    import torch  # noqa: F401  (in the baseline, as in the CLI)

    from relu_denoise.certificates import certify, certify_memory
    from relu_denoise.geometry import affine_hull

    X, S = _data(kind, N, M, d)
    rng = np.random.default_rng(0)
    certify(X[:2], S[:2, :3], time_limit=1, rng=rng)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cert = certify(X, S, time_limit=20, rng=rng)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024             # KiB -> MiB
    r, p = affine_hull(S.reshape(-1, d))[1].shape[1], affine_hull(X)[1].shape[1]
    est = certify_memory(N, M, d, r=r, p=p) / 2**20
    return (f"{kind:10s} {N:4d} {M:5d} {d:4d} {N * M:6d}  {cert.lower_method:9s} {cert.rounds:6d} {peak:9.0f} "
            f"{est:13.0f} {est / max(peak, 1):14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also n = 1200 (2-D) and n = 4000 (1-D LP): minutes")
    parser.add_argument("--case", nargs=4, metavar=("KIND", "N", "M", "D"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, N, M, d = args.case
        print(measure(kind, int(N), int(M), int(d)))
        return
    print(f"{'case':10s} {'N':>4s} {'M':>5s} {'d':>4s} {'n':>6s}  {'method':9s} {'rounds':>6s} {'peak MiB':>9s} "
          f"{'estimate MiB':>13s} {'estimate/peak':>14s}")
    for kind, N, M, d in CASES + (LARGE if args.large else []):
        out = subprocess.run([sys.executable, __file__, "--case", kind, str(N), str(M), str(d)],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
