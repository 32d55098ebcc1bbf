"""Generated clean points: points, univariate, subspace, rays and simplex sources (docs/theory.md 2, 4)."""

import numpy as np

from ..errors import DataError
from ..geometry import is_equilateral, pairwise_distances, simplex_angles_deg
from .source import Source
from .specs import _ANGLE_LIMITS, PointsData, RaysData, SimplexData, SubspaceData, UnivariateData, _ray_directions


# ---------------------------------------------------------------------------------------------
# points
# ---------------------------------------------------------------------------------------------

def _points_source(spec: PointsData, *, rng: np.random.Generator) -> Source:
    x = np.asarray(spec.points, dtype=np.float64)  # (N, d), checked by PointsData
    return Source(x, "points", {"n_points": len(x), "dim": x.shape[1]})


# ---------------------------------------------------------------------------------------------
# univariate (docs/theory.md section 2 and 3)
# ---------------------------------------------------------------------------------------------

def _univariate_source(spec: UnivariateData, *, rng: np.random.Generator) -> Source:
    x = np.sort(_univariate_points(spec, rng=rng))[:, None]  # (N, 1)
    x1, xN = float(x[0, 0]), float(x[-1, 0])

    def sample(n, rng):  # docs/theory.md 3: test x uniform on [x_1, x_N]
        return rng.uniform(x1, xN, size=(n, 1))

    info = {"spacing": spec.spacing, "min_gap": float(np.diff(x[:, 0]).min()) if len(x) > 1 else None}
    return Source(x, "univariate", info, sample)


def _univariate_points(spec: UnivariateData, *, rng: np.random.Generator) -> np.ndarray:
    """(N,) points on [low, high]: even grid, jittered grid or iid uniform."""
    if spec.spacing == "uniform":
        return rng.uniform(spec.low, spec.high, size=spec.n)
    grid = np.linspace(spec.low, spec.high, spec.n)  # (N,)
    if spec.spacing == "even" or spec.n == 1:
        return grid
    half = spec.jitter * (grid[1] - grid[0]) / 2  # gaps stay >= (1 - jitter) * gap > 0
    lo, hi = np.maximum(grid - half, spec.low), np.minimum(grid + half, spec.high)
    return rng.uniform(lo, hi)


# ---------------------------------------------------------------------------------------------
# subspace (docs/theory.md 4.1)
# ---------------------------------------------------------------------------------------------

def _subspace_source(spec: SubspaceData, *, rng: np.random.Generator) -> Source:
    d, r = spec.dim, spec.rank
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))  # (d, r) orthonormal columns
    x_bar = rng.standard_normal(d)  # (d,)

    def sample(n, rng):
        z = rng.uniform(-spec.scale, spec.scale, size=(n, r))  # (n, r)
        return x_bar + z @ U.T  # (n, d)

    info = {"basis": U.T.tolist(), "offset": x_bar.tolist(), "rank": r}
    return Source(sample(spec.n, rng), "subspace", info, sample)


# ---------------------------------------------------------------------------------------------
# rays (docs/theory.md 4.2)
# ---------------------------------------------------------------------------------------------

def _rays_source(spec: RaysData, *, rng: np.random.Generator) -> Source:
    u = _ray_directions(spec)  # (K, d) unit rows
    x0 = _ray_apex(spec)  # (d,)
    t = spec.spacing * np.arange(1, spec.points_per_ray + 1)  # (P,)
    on_rays = x0 + (u[:, None, :] * t[None, :, None]).reshape(-1, spec.dim)  # (K * P, d)
    x = np.vstack([x0, on_rays])  # (1 + K * P, d), apex first, then ray by ray
    t_max = float(t[-1])

    def sample(n, rng):  # uniform on the union of the K equally long segments
        k = rng.integers(len(u), size=n)
        s = rng.uniform(0.0, t_max, size=n)
        return x0 + s[:, None] * u[k]  # (n, d)

    info = {"apex": x0.tolist(), "directions": u.tolist(), "t": t.tolist()}
    return Source(x, "rays", info, sample)


def _ray_apex(spec: RaysData) -> np.ndarray:
    return np.zeros(spec.dim) if spec.apex is None else np.asarray(spec.apex, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# simplex (docs/theory.md 4.3, 4.4)
# ---------------------------------------------------------------------------------------------

def _simplex_source(spec: SimplexData, *, rng: np.random.Generator) -> Source:
    m = spec.n_vertices
    x = _embed(_SIMPLEX_BUILDERS[spec.shape](spec, m), spec.dim)  # (m, d)
    _check_affinely_independent(x)
    _SIMPLEX_CHECKS[spec.shape](x)

    def sample(n, rng):  # uniform in the convex hull
        return rng.dirichlet(np.ones(m), size=n) @ x  # (n, d)

    return Source(x, "simplex", _simplex_info(spec.shape, x), sample)


def _edge_lengths(k: int, size: float) -> np.ndarray:
    """(k,) unequal edge lengths at x0, from size to 1.5 * size, so the simplex is not symmetric."""
    return size * np.linspace(1.0, 1.5, k) if k > 1 else np.array([size])


def _regular_directions(m: int) -> np.ndarray:
    """(m, m - 1) unit vectors of a regular simplex centred at 0, pairwise at cos = -1/(m - 1).

    The centred basis vectors of R^m written in the Helmert basis of {z : sum(z) = 0}.
    """
    k = m - 1
    H = np.zeros((k, m))  # rows: Helmert basis, orthonormal, orthogonal to the ones vector
    for j in range(1, m):
        H[j - 1, :j] = 1.0
        H[j - 1, j] = -j
        H[j - 1] /= np.sqrt(j * (j + 1))
    v = H.T  # (m, k): coordinates of e_i - 1/m
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _obtuse_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): x0 = 0 and x0 + L_i u_i with the u_i pairwise obtuse."""
    k = m - 1
    if k == 2:  # a triangle: the angle at x0 is exactly angle_deg
        theta = np.radians(spec.angle_deg or _ANGLE_LIMITS["obtuse"][2])
        u = np.array([[1.0, 0.0], [np.cos(theta), np.sin(theta)]])
    else:  # k of the k + 1 directions of a regular k-simplex: cos = -1/k (or the segment, k = 1)
        u = _regular_directions(k + 1)[:k] if k > 1 else np.ones((1, 1))
    return np.vstack([np.zeros(k), _edge_lengths(k, spec.size)[:, None] * u])


def _orthogonal_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): x0 = 0 and x0 + L_i e_i (right angles at x0)."""
    k = m - 1
    return np.vstack([np.zeros(k), np.diag(_edge_lengths(k, spec.size))])


def _equilateral_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): a regular simplex with every edge `size`, centred at 0."""
    v = _regular_directions(m)  # (m, m - 1), |v_i - v_j|^2 = 2 (1 + 1/(m - 1))
    return v * spec.size / np.linalg.norm(v[0] - v[1])


def _acute_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): a scalene triangle with largest angle angle_deg, or, for m >= 4, a regular
    simplex whose vertex 0 moved a tenth of the way toward the opposite face's centroid."""
    if m == 3:
        return _triangle_from_angles(spec.angle_deg or _ANGLE_LIMITS["acute"][2], spec.size)
    x = _equilateral_vertices(spec, m)
    x[0] += 0.1 * (x[1:].mean(axis=0) - x[0])
    return x


def _triangle_from_angles(alpha: float, size: float) -> np.ndarray:
    """(3, 2) triangle with angles alpha > beta > gamma at its vertices 0, 1, 2 (alpha in (60, 90)).

    beta = 75 - alpha/4 and gamma = 105 - 3 alpha/4 keep it scalene; the shortest edge is `size`.
    """
    beta, gamma = 75.0 - alpha / 4, 105.0 - 3 * alpha / 4
    sin = np.sin(np.radians([alpha, beta, gamma]))  # law of sines: edge opposite each vertex
    b, c = size * sin[1] / sin[2], size  # |x2 - x0| opposite beta, |x1 - x0| opposite gamma
    a_rad = np.radians(alpha)
    return np.array([[0.0, 0.0], [c, 0.0], [b * np.cos(a_rad), b * np.sin(a_rad)]])


def _embed(x: np.ndarray, d: int) -> np.ndarray:
    """Pad (m, k) coordinates with zeros to (m, d), k <= d."""
    return np.hstack([x, np.zeros((len(x), d - x.shape[1]))])


def _check_affinely_independent(x: np.ndarray) -> None:
    if np.linalg.matrix_rank(x[1:] - x[0]) != len(x) - 1:
        raise DataError("data.shape: the constructed simplex is degenerate "
                        "(vertices not affinely independent)")


def _check_obtuse(x: np.ndarray) -> None:
    E = x[1:] - x[0]  # (k, d) edges at x0
    G = E @ E.T
    off = G[~np.eye(len(E), dtype=bool)]
    if np.any(off >= 0):
        raise DataError(f"data.shape: obtuse construction failed, "
                        f"max (x_i - x0)^T (x_j - x0) = {off.max():.3g} >= 0")


def _check_orthogonal(x: np.ndarray) -> None:
    E = x[1:] - x[0]
    off = (E @ E.T)[~np.eye(len(E), dtype=bool)]
    if np.any(np.abs(off) > 1e-12 * np.max(E * E)):
        raise DataError("data.shape: orthogonal construction failed, edges at x0 not perpendicular")


def _check_equilateral(x: np.ndarray) -> None:
    if not is_equilateral(x):
        raise DataError("data.shape: equilateral construction failed, edges differ")


def _check_acute(x: np.ndarray) -> None:
    largest = max(a[3] for a in simplex_angles_deg(x))
    if largest >= 90:
        raise DataError(f"data.shape: acute construction failed, an angle is {largest:.2f} >= 90 degrees")
    if is_equilateral(x):       # the closed forms would class it equilateral (geometry.SIDE_TOL)
        raise DataError("data.shape: acute construction failed, the simplex is equilateral")


def _simplex_info(shape: str, x: np.ndarray) -> dict:
    edges = pairwise_distances(x)
    info = {"shape": shape, "vertices": len(x), "min_edge": float(edges.min()),
            "max_edge": float(edges.max())}
    angles = simplex_angles_deg(x)
    if angles:
        info["max_angle_deg"] = max(a[3] for a in angles)
    if len(x) == 3:
        info["angles_deg"] = [a[3] for a in angles]  # at vertices 0, 1, 2
    if shape in ("obtuse", "orthogonal"):
        info["x0_index"] = 0
        info["lengths_at_x0"] = np.linalg.norm(x[1:] - x[0], axis=1).tolist()
    return info


_SIMPLEX_BUILDERS = {"obtuse": _obtuse_vertices, "orthogonal": _orthogonal_vertices,
                     "equilateral": _equilateral_vertices, "acute": _acute_vertices}
_SIMPLEX_CHECKS = {"obtuse": _check_obtuse, "orthogonal": _check_orthogonal,
                   "equilateral": _check_equilateral, "acute": _check_acute}

