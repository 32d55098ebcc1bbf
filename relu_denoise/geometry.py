"""Geometry of the clean points: affine hulls, distances, angles. One home for the shared math.

Closed forms, alignment, plots, training and certificates all measure the data the same way
through these functions. Inputs are float64 arrays that a public entry has already checked
(`checks.check_points`); nothing here re-validates them.
"""

import numpy as np
from scipy.spatial.distance import pdist

from .errors import DataError

RANK_TOL = 1e-10     # singular values below this fraction of the largest count as zero

# Tolerances of the shape classification, relative to the data's own scale (docs/theory.md 4.6): points
# typed by hand to 6 significant digits classify as the shape they describe; float64 constructions, exact
# to about 1e-15, sit ten orders of magnitude inside. A value within NEAR_FACTOR x of its tolerance (either
# side) gets a note in the closed form's notes.
SIDE_TOL = 1e-4        # sides equal: (longest - shortest) / longest <= SIDE_TOL (equilateral triangle)
ANGLE_TOL = 1e-4       # radians: directions closer than this are one ray; angles within it of 90 degrees are right
DUPLICATE_TOL = 1e-9   # two points closer than this x the points' diameter are one point
NEAR_FACTOR = 10.0


def span_basis(Xc: np.ndarray) -> np.ndarray:
    """Orthonormal basis U (d, r) of the span of the rows of Xc (N, d), r = numerical rank.

    Each column's largest entry is made positive, so the same points always give the same basis
    (plots and alignment angles are drawn in it).
    """
    if len(Xc) < 2:
        return np.zeros((Xc.shape[1], 0))
    U, s, _ = np.linalg.svd(Xc.T, full_matrices=False)
    r = int(np.sum(s > RANK_TOL * s[0])) if s[0] > 0 else 0
    U = U[:, :r]
    return U * np.sign(U[np.abs(U).argmax(axis=0), np.arange(r)])


def affine_hull(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean x_bar (d,) and orthonormal basis U (d, r) of the directions of the affine hull of X (N, d)."""
    x_bar = X.mean(axis=0)
    return x_bar, span_basis(X - x_bar)


def plane_basis(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x_bar (D,) and U (D, 2) of a 2-D affine hull (three points in R^D, say); DataError otherwise."""
    x_bar, U = affine_hull(X)
    if U.shape[1] != 2:
        raise DataError(f"points: their affine hull is {U.shape[1]}-D, not 2-D; "
                        "a plane view needs points spanning a plane, e.g. three affinely independent points")
    return x_bar, U


def min_distance(X: np.ndarray) -> float:
    """Smallest distance between two clean points (inf for one); DataError if two coincide, that is are
    closer than DUPLICATE_TOL x the points' diameter (the closed forms divide by the gaps)."""
    if len(X) < 2:
        return np.inf
    same = near_duplicate(X)
    if same is not None:
        i, j, dist, diam = same
        raise DataError(f"points: two clean points coincide: x{i} and x{j} are {dist:.3g} apart, below "
                        f"{DUPLICATE_TOL:g} x the points' diameter ({diam:.3g}); remove duplicates")
    return float(pdist(X).min())


def near_duplicate(X: np.ndarray) -> tuple[int, int, float, float] | None:
    """(i, j, ||x_i - x_j||, diameter) of the closest two rows of X (N, d) where they are closer than
    DUPLICATE_TOL x the diameter of X (i < j; exact duplicates included), else None."""
    if len(X) < 2:
        return None
    dist = pdist(X)                                                            # (N (N - 1) / 2,)
    k = int(np.argmin(dist))
    if dist[k] > DUPLICATE_TOL * dist.max():
        return None
    i, j = _condensed_pair(k, len(X))
    return i, j, float(dist[k]), float(dist.max())


def _condensed_pair(k: int, n: int) -> tuple[int, int]:
    """The pair (i, j), i < j, at index k of scipy's condensed distance order for n points."""
    i = int(n - 2 - np.floor(np.sqrt(-8 * k + 4 * n * (n - 1) - 7) / 2 - 0.5))
    j = int(k + i + 1 - n * (n - 1) // 2 + (n - i) * (n - i - 1) // 2)
    return i, j


def side_spread(X: np.ndarray) -> float:
    """(longest - shortest) / longest over the pairwise distances of X (N >= 2): 0 for a regular simplex."""
    edges = pdist(X)
    return float(np.ptp(edges) / edges.max())


def is_equilateral(X: np.ndarray) -> bool:
    """Every pairwise distance of X (N >= 2) equal to within SIDE_TOL (relative to the longest)."""
    return side_spread(X) <= SIDE_TOL


def near_threshold(value: float, tol: float) -> bool:
    """Whether a measured `value` sits within NEAR_FACTOR x of its tolerance `tol`, on either side."""
    return tol / NEAR_FACTOR <= value <= tol * NEAR_FACTOR


def unit_rows(V: np.ndarray) -> np.ndarray:
    """The nonzero rows of V (n, d), each divided by its norm."""
    norm = np.linalg.norm(V, axis=1)
    return V[norm > 0] / norm[norm > 0, None]


def unit_edges(X: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The unit directions (X_i - X_j) / ||X_i - X_j|| of the pairs (i, j), coinciding pairs left out (E, d)."""
    return unit_rows(X[i] - X[j])


def diameter(X: np.ndarray) -> float:
    """The largest distance between two clean points (0 for one point)."""
    return float(pdist(X).max()) if len(X) > 1 else 0.0


def pairwise_distances(X: np.ndarray) -> np.ndarray:
    """Condensed distances ||x_i - x_j||, i < j, in scipy's `pdist` order."""
    return pdist(X)


def closest_clouds(X: np.ndarray, radii: np.ndarray) -> tuple[int, int, float]:
    """The pair (i, j) of clean points whose clouds (radii r_n around x_n) come closest, and the slack
    ||x_i - x_j|| - r_i - r_j (<= 0: the clouds overlap). For one point: (0, 0, inf)."""
    from scipy.spatial.distance import squareform

    if len(X) < 2:
        return 0, 0, np.inf
    slack = squareform(pdist(X)) - radii[:, None] - radii[None, :]                  # (N, N)
    np.fill_diagonal(slack, np.inf)
    i, j = np.unravel_index(np.argmin(slack), slack.shape)
    return int(min(i, j)), int(max(i, j)), float(slack[i, j])


def line_angle_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between the lines of unit rows u, v (n, d), in [0, 90]; accurate near 0 (no arccos)."""
    s = np.where(np.sum(u * v, axis=1) < 0, -1.0, 1.0)[:, None]
    return np.degrees(2 * np.arctan2(np.linalg.norm(u - s * v, axis=1), np.linalg.norm(u + s * v, axis=1)))


def angle_rad(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in radians, in [0, pi], between the nonzero rows of u and v (n, d); accurate near 0 and pi
    (2 atan2(|u' - v'|, |u' + v'|) of the unit rows, no arccos)."""
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return 2 * np.arctan2(np.linalg.norm(u - v, axis=-1), np.linalg.norm(u + v, axis=-1))


def vertex_angle_deg(x: np.ndarray, j: np.ndarray, k: np.ndarray) -> float:
    """The angle at x between the segments to j and to k, in degrees."""
    return float(np.degrees(angle_rad(j - x, k - x)))


def triangle_angles_deg(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """(T, 3) angles in degrees at A, B, C of T triangles given as (T, d) vertex arrays."""
    return np.degrees(np.stack([angle_rad(B - A, C - A), angle_rad(C - B, A - B), angle_rad(A - C, B - C)], axis=1))


def simplex_angles_deg(X: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Every angle of the simplex X (m, d): (vertex i, j, k, the angle between x_j - x_i and x_k - x_i in degrees),
    by vertex i, then j < k."""
    out = []
    for i in range(len(X)):
        others = [j for j in range(len(X)) if j != i]
        for a, j in enumerate(others):
            for k in others[a + 1:]:
                out.append((i, j, k, vertex_angle_deg(X[i], X[j], X[k])))
    return out


def orthocenter(X: np.ndarray) -> np.ndarray:
    """Orthocenter H of a triangle X (3, 2): (H - x_i)^T (x_j - x_k) = 0 for each i."""
    A = np.array([X[1] - X[2], X[2] - X[0]])          # (2, 2)
    rhs = np.array([X[0] @ (X[1] - X[2]), X[1] @ (X[2] - X[0])])
    return np.linalg.solve(A, rhs)


def distance_to_hull_2d(Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of Y (n, 2) to the convex hull of X (N, 2)."""
    segments = _hull_segments(X)                                                 # (E, 2, 2)
    A, B = segments[:, 0], segments[:, 1]                                        # (E, 2)
    AB = B - A
    t = np.einsum("ned,ed->ne", Y[:, None, :] - A, AB) / np.maximum((AB * AB).sum(1), 1e-300)
    foot = A + np.clip(t, 0, 1)[..., None] * AB                                  # (n, E, 2)
    dist = np.linalg.norm(Y[:, None, :] - foot, axis=-1).min(axis=1)             # (n,)
    if len(segments) >= 3:
        dist[_inside_polygon(Y, segments)] = 0.0
    return dist


def _hull_segments(X: np.ndarray) -> np.ndarray:
    """The hull's edges as (E, 2, 2) segments, counterclockwise; a degenerate hull is one segment."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        v = ConvexHull(X).vertices                                               # counterclockwise in 2-D
        return np.stack([X[v], X[np.roll(v, -1)]], axis=1)
    except (QhullError, ValueError):
        c = X.mean(axis=0)
        _, _, Vt = np.linalg.svd(X - c)
        t = (X - c) @ Vt[0]
        return np.array([[X[np.argmin(t)], X[np.argmax(t)]]])


def _inside_polygon(Y: np.ndarray, segments: np.ndarray) -> np.ndarray:
    A, B = segments[:, 0], segments[:, 1]
    cross = (B - A)[:, 0] * (Y[:, None, 1] - A[:, 1]) - (B - A)[:, 1] * (Y[:, None, 0] - A[:, 0])   # (n, E)
    return np.all(cross >= 0, axis=1)
