"""Where flows end, against the clean points x_n (docs/theory.md 10.3): training point, virtual point, box
boundary or other.

For data with an apex x0 (a clean point the others are edges from), the subset sums
v_S = x0 + sum_{i in S} (x_i - x0) are the vertices of the box (parallelotope) x0 + sum_i t_i (x_i - x0),
t in [0, 1]^k. With threshold tau, an endpoint y is, first match wins:

    training   within tau of a clean point in the L-infinity norm (the paper's test, tau = 0.2)
    virtual    within tau (L-infinity) of a subset sum with |S| >= 2 (reported with |S|)
    boundary   on a face of the box, not within tau of a vertex: in the box's span to within tau (L-infinity
               of the part off the span), every edge coordinate within tau of [0, 1] measured along the edge
               (t_i L_i in [-tau, L_i + tau]), and some coordinate within tau of a face (|t_i| L_i <= tau or
               |1 - t_i| L_i <= tau)
    other      the rest

So as tau grows, `training`, `training + virtual` and `training + virtual + boundary` can only grow (the
threshold sweep is monotone in these cumulative counts). Without an apex there are no virtual points and no
box: endpoints are training or other.
"""

from dataclasses import dataclass, field
from itertools import combinations, product
from math import comb

import numpy as np
from scipy.spatial.distance import cdist

from ..checks import check_points, check_positive
from ..errors import DataError

CLASSES = ("training", "virtual", "boundary", "other")
THRESHOLD = 0.2                                        # the paper's L-infinity convergence test
SWEEP = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
MAX_AMBIGUOUS = 12       # edge coordinates with both 0 and 1 in reach: enumerated up to 2^12 vertices per endpoint


@dataclass(frozen=True)
class Box:
    """The box of subset sums of clean points with apex x_apex: edges E (k, d) = x_i - x0 for i in `edges`.

    coords(y) gives t (n, k) with y = x0 + t E + (a part off the span), t = (y - x0) P^T, P = pinv(E^T) (k, d).
    """

    apex: int
    x0: np.ndarray                    # (d,)
    edges: np.ndarray                 # (k,) indices of the clean points x_i
    E: np.ndarray                     # (k, d)
    P: np.ndarray                     # (k, d)

    @property
    def k(self) -> int:
        return len(self.edges)

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.E, axis=1)                                      # (k,)

    def coords(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t (n, k), the part off the span (n, d)) of points Y (n, d)."""
        Z = Y - self.x0                                                             # (n, d)
        t = Z @ self.P.T                                                            # (n, k)
        return t, Z - t @ self.E

    def vertices(self, s: np.ndarray) -> np.ndarray:
        """Subset sums x0 + s E for indicator rows s (n, k) -> (n, d)."""
        return self.x0 + s @ self.E


def find_box(points, apex="auto") -> tuple[Box | None, str | None]:
    """(box, None), or (None, why there are no subset sums).

    apex "auto": the apex of the closed form's rays (docs/theory.md 4.2/4.3, closed_forms.find_rays) when every
    ray holds one point (an obtuse or orthogonal simplex, or fewer edges than d); an int: that clean point,
    whatever the angles; None: no apex. The edges must be linearly independent (else they span no box).
    """
    from ..closed_forms import find_rays

    X = check_points(points, name="points")
    if apex is None:
        return None, "no apex given"
    if isinstance(apex, str):
        if apex != "auto":
            raise DataError(f"apex: expected 'auto', None or the index of a clean point, got {apex!r}")
        apex, rays, reason = find_rays(X)
        if apex is None:
            return None, f"no apex found: {reason}"
        if any(len(members) > 1 for _, members in rays):
            return None, (f"no box: a ray from apex x{apex} holds several points, so subset sums of the edges "
                          "are not the closed form's fixed points (docs/theory.md 10.3); give an apex to force one")
    elif isinstance(apex, bool) or not isinstance(apex, (int, np.integer)) or not 0 <= apex < len(X):
        raise DataError(f"apex: expected the index of a clean point (0..{len(X) - 1}), got {apex!r}")
    apex = int(apex)
    edges = np.array([j for j in range(len(X)) if j != apex], dtype=int)
    E = X[edges] - X[apex]                                                          # (k, d)
    if len(edges) == 0 or np.linalg.matrix_rank(E) < len(edges):
        return None, (f"no box: the {len(edges)} edges from apex x{apex} are not linearly independent "
                      f"(rank {np.linalg.matrix_rank(E) if len(edges) else 0})")
    return Box(apex, X[apex].copy(), edges, E, np.linalg.pinv(E.T)), None


def require_box(points, apex="auto") -> Box:
    """find_box, or DataError (one line) where subset sums were asked for and there is no box."""
    box, reason = find_box(points, apex)
    if box is None:
        raise DataError(f"virtual points need an apex x0, the clean point the subset sums x0 + sum_(i in S) "
                        f"(x_i - x0) start from: {reason}; give apex (the index of a clean point)")
    return box


@dataclass
class SubsetSums:
    """Subset sums of m edges: points (C, d), the subsets as edge positions (C, m) (into box.edges),
    population = C(k, m), sampled: a seeded random sample of C < population of them."""

    m: int
    points: np.ndarray
    subsets: np.ndarray
    population: int
    sampled: bool


def subset_sums(box: Box, m: int, *, limit: int | None = None, rng: np.random.Generator | None = None) -> SubsetSums:
    """Every subset sum of m edges when C(k, m) <= limit (limit None: always all), else `limit` distinct ones
    drawn with rng (required then: randomness is explicit)."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= box.k:
        raise DataError(f"subset sums: size m must be an integer in 1..{box.k} (the box has {box.k} edges), "
                        f"got {m!r}")
    C = comb(box.k, int(m))
    if limit is None or C <= limit:
        S = np.array(list(combinations(range(box.k), int(m))), dtype=int).reshape(C, int(m))
        sampled = False
    else:
        if rng is None:
            raise DataError(f"subset sums of {m}: C({box.k}, {m}) = {C} > limit {limit}; give rng to draw a "
                            "sample of them, or raise the limit")
        S, sampled = _sample_subsets(box.k, int(m), int(limit), rng), True
    s = np.zeros((len(S), box.k))
    np.put_along_axis(s, S, 1.0, axis=1)
    return SubsetSums(int(m), box.vertices(s), S, C, sampled)


def _sample_subsets(k: int, m: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct sorted m-subsets of range(k) (count < C(k, m)), each uniform: (count, m)."""
    seen: dict[tuple, None] = {}
    while len(seen) < count:
        draw = np.sort(rng.random((count, k)).argsort(axis=1)[:, :m], axis=1)     # (count, m)
        for row in map(tuple, draw):
            seen.setdefault(row)
            if len(seen) == count:
                break
    return np.array(list(seen), dtype=int)


@dataclass
class Classification:
    """Per endpoint (n,): cls (one of CLASSES), size (|S| of a virtual point, 0 otherwise), nearest (index of
    the nearest clean point, L-infinity) and distance (to it); counts per class and per |S| at `threshold`;
    sweep: the counts at each threshold of `thresholds`."""

    cls: np.ndarray
    size: np.ndarray
    nearest: np.ndarray
    distance: np.ndarray
    threshold: float
    apex: int | None
    counts: dict[str, int]
    virtual_by_size: dict[int, int]
    sweep: list[dict]
    notes: list[str] = field(default_factory=list)

    def fractions(self) -> dict[str, float]:
        n = len(self.cls)
        return {c: k / n for c, k in self.counts.items()}

    def to_dict(self) -> dict:
        """counts, fractions, virtual_by_size, threshold_sweep: the keys of the flow command's result.json."""
        return {"threshold": self.threshold, "apex": self.apex, "counts": dict(self.counts),
                "fractions": self.fractions(), "virtual_by_size": dict(self.virtual_by_size),
                "threshold_sweep": list(self.sweep), "notes": list(self.notes)}


def classify_endpoints(ends, points, *, apex="auto", threshold: float = THRESHOLD, thresholds=SWEEP) -> Classification:
    """Classify endpoints (n, d) against clean points (N, d) (module docstring; docs/theory.md 10.3).

    apex as in find_box ("auto": the closed form's apex where the data are an obtuse or orthogonal simplex;
    None: no virtual points). Exact: the nearest subset sum is searched only among the vertices that the
    bound |t_i - s_i| <= ||P_i||_1 tau leaves (P_i row i of pinv(E^T)), all enumerated unless more than
    MAX_AMBIGUOUS coordinates stay open for an endpoint (then those round to the nearer face; a note says how many).
    """
    X = check_points(points, name="points")
    Y = check_points(ends, name="ends", d=X.shape[1])
    tau = check_positive(threshold, name="threshold")
    taus = [check_positive(t, name="thresholds") for t in thresholds]
    box, reason = find_box(X, apex)
    D = cdist(Y, X, "chebyshev")                                                    # (n, N) L-infinity
    nearest = D.argmin(axis=1)
    distance = D[np.arange(len(Y)), nearest]
    geo = None if box is None else (box, *box.coords(Y))
    cls, size, rounded = _classes(distance, Y, geo, tau)
    notes = [] if box is not None else [f"no virtual points or box: {reason}"]
    if rounded:
        notes.append(f"{rounded} endpoints had more than {MAX_AMBIGUOUS} edge coordinates within reach of both "
                     "faces: rounded to the nearer face instead of searched")
    counts = {c: int(np.sum(cls == i)) for i, c in enumerate(CLASSES)}
    by_size = {int(m): int(np.sum((cls == 1) & (size == m))) for m in np.unique(size[cls == 1])}
    sweep = []
    for t in taus:
        c_t, _, _ = _classes(distance, Y, geo, t)
        sweep.append({"threshold": t, **{c: int(np.sum(c_t == i)) for i, c in enumerate(CLASSES)}})
    return Classification(np.array(CLASSES)[cls], size, nearest, distance, tau,
                          None if box is None else box.apex, counts, by_size, sweep, notes)


def _classes(distance: np.ndarray, Y: np.ndarray, geo, tau: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(class codes (n,) into CLASSES, |S| (n,), endpoints rounded) at threshold tau."""
    cls = np.full(len(Y), 3)
    size = np.zeros(len(Y), dtype=int)
    if geo is None:
        cls[distance <= tau] = 0
        return cls, size, 0
    box, t, off = geo
    vdist, s, rounded = _nearest_vertex(box, Y, t, tau)
    m = s.sum(axis=1)
    L = box.lengths                                                                  # (k,)
    inside = (np.abs(off).max(axis=1) <= tau) & np.all((t * L >= -tau) & (t * L <= L + tau), axis=1)
    on_face = np.any((np.abs(t) * L <= tau) | (np.abs(1 - t) * L <= tau), axis=1)
    cls[inside & on_face] = 2
    virtual = (vdist <= tau) & (m >= 2)
    cls[virtual], size[virtual] = 1, m[virtual]
    cls[distance <= tau] = 0
    size[distance <= tau] = 0
    return cls, size, rounded


def _nearest_vertex(box: Box, Y: np.ndarray, t: np.ndarray, tau: float):
    """(L-infinity distance to the nearest vertex within reach, or inf (n,); its indicator s (n, k); count of
    endpoints rounded). A vertex within tau has |t_i - s_i| <= delta_i = ||P_i||_1 tau for every i."""
    delta = tau * np.abs(box.P).sum(axis=1)                                         # (k,)
    can0, can1 = np.abs(t) <= delta, np.abs(t - 1) <= delta                         # (n, k)
    reach = np.all(can0 | can1, axis=1)
    both = can0 & can1
    s = np.where(both, t > 0.5, can1).astype(float)                                 # (n, k) first candidate
    vdist = np.where(reach, np.abs(Y - box.vertices(s)).max(axis=1), np.inf)
    rounded = 0
    for i in np.flatnonzero(reach & both.any(axis=1)):
        open_ = np.flatnonzero(both[i])
        if len(open_) > MAX_AMBIGUOUS:
            rounded += 1
            continue
        S = np.repeat(s[i][None, :], 2 ** len(open_), axis=0)                       # (2^a, k)
        S[:, open_] = np.array(list(product((0.0, 1.0), repeat=len(open_))))
        dist = np.abs(Y[i] - box.vertices(S)).max(axis=1)
        best = int(dist.argmin())
        vdist[i], s[i] = dist[best], S[best]
    return vdist, s.astype(int), rounded
