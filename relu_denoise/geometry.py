"""Geometry of the clean points: affine hulls, distances, angles. One home for the shared math.

Closed forms, alignment, plots, training and certificates all measure the data the same way
through these functions. Inputs are float64 arrays that a public entry has already checked
(`checks.check_points`); nothing here re-validates them.
"""

import numpy as np
from scipy.spatial.distance import pdist

from .errors import DataError

RANK_TOL = 1e-10     # singular values below this fraction of the largest count as zero


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
    """Smallest distance between two clean points (inf for one); DataError if two coincide."""
    dmin = float(pdist(X).min()) if len(X) > 1 else np.inf
    if dmin == 0:
        raise DataError("points: two clean points coincide; remove duplicates")
    return dmin


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


def vertex_angle_deg(x: np.ndarray, j: np.ndarray, k: np.ndarray) -> float:
    """The angle at x between the segments to j and to k, in degrees."""
    u, v = j - x, k - x
    cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


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
