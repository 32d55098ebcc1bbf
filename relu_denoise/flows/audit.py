"""The virtual-point stability audit (docs/theory.md 10.3; the paper's table): start the score flow at every
subset sum of m clean points (or a seeded sample of them) and count those that stay within the threshold.

A subset sum is stable for a denoiser h when the score flow started there ends within `threshold` of it in the
L-infinity norm. The closed form of an orthogonal simplex keeps every subset sum (each is a flat fixed point,
docs/theory.md 10.4); trained denoisers lose some (the paper: 98.6% of pairs, 83.5% of triplets, 25.4% of
quadruplets of 30 orthogonal points in R^30).
"""

from dataclasses import dataclass, field

import numpy as np

from ..checks import check_points, check_positive
from .classify import THRESHOLD, require_box, subset_sums
from .integrate import SCORE_TOL, score_flow

SIZES = (2, 3, 4)
STEPS = 1000            # score-flow steps from each subset sum (at dr = 1: fixed-point iterations), at most


@dataclass
class Audit:
    """Per size m: stable (ends within threshold of its start), total (subset sums started), population
    (C(k, m)), sampled (total < population: a seeded random sample); `ends` (C, d) per m for reports."""

    threshold: float
    apex: int
    by_size: dict[int, dict] = field(default_factory=dict)
    ends: dict[int, np.ndarray] = field(default_factory=dict)
    starts: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        return any(v["sampled"] for v in self.by_size.values())

    def to_dict(self) -> dict:
        """{m: {stable, total, population, sampled}}: the `audit` of the flow command's result.json."""
        return {m: dict(v) for m, v in self.by_size.items()}


def stability_audit(h, points, *, sizes=SIZES, apex="auto", threshold: float = THRESHOLD, limit: int | None = None,
          rng: np.random.Generator | None = None, dr: float = 1.0, steps: int = STEPS,
          tol: float = SCORE_TOL) -> Audit:
    """The stability audit of denoiser h on clean points (N, d) with apex as in classify.find_box.

    All subset sums of each size m when C(k, m) <= limit (limit None: always all), else `limit` drawn with rng.
    One score flow runs from all starts together (dr, steps, tol as in integrate.score_flow). DataError, one
    line, where the points have no apex (no subset sums) or m is not in 1..k.
    """
    X = check_points(points, name="points")
    tau = check_positive(threshold, name="threshold")
    box = require_box(X, apex)
    groups = [subset_sums(box, m, limit=limit, rng=rng) for m in sizes]
    starts = np.concatenate([g.points for g in groups])                            # (C, d)
    ends = score_flow(h, starts, dr=dr, steps=steps, tol=tol).end                   # (C, d)
    out, at = Audit(tau, box.apex), 0
    for g in groups:
        e = ends[at:at + len(g.points)]
        at += len(g.points)
        stable = int(np.sum(np.abs(e - g.points).max(axis=1) <= tau))
        out.by_size[g.m] = {"stable": stable, "total": len(g.points), "population": g.population,
                            "sampled": g.sampled}
        out.ends[g.m], out.starts[g.m] = e, g.points
    return out
