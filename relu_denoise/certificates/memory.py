"""How much memory certify needs, estimated from the sizes alone, so that it refuses before allocating.

Every phase holds O(n^2) or O(n K) arrays (n = N M samples, K units): Up's complete QR (n, n), the features
(n, K) and their projection (m, K), the exact 2-D supremum's (n, 2n, p, 2) running sums, and the convex
programs, whose cost per nonzero of the dense constraint matrix (cvxpy's canonical copies, Clarabel's and
HiGHS's own) is a constant measured by benchmarks/certify_memory.py. The estimate is the persistent arrays
plus the larger of the rounds' two phases (restricted cone program, supremum), which never overlap.
"""

from __future__ import annotations

from ..checks import check_memory
from .generation import SEED_DIRECTIONS
from .suprema import ADD_PER_POINT, SEARCH_CHUNK, SEARCH_DIRECTIONS

CONE_BYTES = 250         # bytes per nonzero of a cone program's constraint matrix, all copies together
LP_BYTES = 160           # the same for the 1-D linear program (HiGHS)
SUP2_BYTES = (400, 80)   # the exact 2-D supremum: (a + b p) n^2 bytes
SEARCH_BYTES = 50        # the searched supremum: this x SEARCH_CHUNK n (p + 1) bytes
ROUND_UNITS = 5 * 3 * ADD_PER_POINT    # margin for the units the rounds add (at most 3 ADD_PER_POINT a round)


def seed_units(N: int, M: int, r: int, units: int = 0) -> int:
    """Units of the first restricted problem (generation._seed_units's grid) plus `units` given ones."""
    n = N * M
    if r == 1:
        return 2 * n + units                                         # knots at every sample, twice
    directions = SEED_DIRECTIONS if r == 2 else r + N * (N - 1) // 2
    return 2 * N * directions + n + units                            # kinks at the extremes, knots along an axis


def certify_memory(N: int, M: int, d: int, *, r: int | None = None, p: int | None = None, units: int = 0) -> int:
    """Bytes `certify` needs, about, for N clean points with M samples each in R^d.

    r and p are the dimensions of the samples' and the clean points' affine hulls; by default those of
    samples with noise in every direction (r = min(d, N M - 1), p = min(d, N - 1)). `units`: the widths of
    the networks given to seed the bounds.
    """
    n = N * M
    r = min(d, n - 1) if r is None else r
    p = max(min(d, N - 1) if p is None else p, 1)
    m = max(n - r - 1, 0)                                            # rows of the projected features
    if r == 1 and p == 1:                                            # the 1-D LP over knots at every sample
        K = n + units
        return int(16 * n * n + 3 * 8 * n * K + LP_BYTES * 2 * m * K)
    K = seed_units(N, M, r, units) + ROUND_UNITS
    persistent = 16 * n * n + 8 * 3 * n * K + 16 * K * K             # QR; features, projection; |cos| of columns
    cone = CONE_BYTES * K * min(K, m) * p + 24 * m * m               # the program; G G^T and its eigenvectors
    if r == 2:
        sup = (SUP2_BYTES[0] + SUP2_BYTES[1] * p) * n * n
    else:                                                            # chunks of directions; every unit's values
        sup = SEARCH_BYTES * SEARCH_CHUNK * n * (p + 1) + 16 * n * (SEARCH_DIRECTIONS + K)
    return int(persistent + max(cone, sup))


def check_certify_memory(N: int, M: int, d: int, **dims) -> None:
    """RecipeError (one line) where `certify_memory` exceeds the memory available; call before allocating."""
    check_memory(certify_memory(N, M, d, **dims), what=f"certify ({N} points x {M} samples = {N * M} samples)",
                 fix="lower noise.samples or the number of points: certify's memory grows as (N M)^2")
