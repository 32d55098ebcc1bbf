"""How far apart two denoisers are: the function gap of docs/theory.md 1 over a probe set near the data.

    function_gap(net, form, points, scale=...)   sup ||h - h*|| over `probe_points`, / diameter
    plane_gap(net, form, points)                 the same on the data's plane (three points in R^D)
    active_units(net)                            units carrying a share of the path cost
    residual_trend(history, tol_unit)            whether more steps could help a fit that did not converge
    cost_trend(costs)                            whether the path cost was falling at the last checks
"""

import functools

import numpy as np

from .checks import check_points
from .geometry import affine_hull, diameter, distance_to_hull_2d

PRUNE_SHARE = 1e-6      # units with a smaller share of the path cost are dropped by ShallowDenoiser.prune
ACTIVE_SHARE = 1e-3     # units with a smaller share are not counted active, drawn or analysed for alignment
_NEW_LOW = 1e-3         # a cost this much (relative) below every earlier check is a new low (cost_trend)
_PROBE_MARGIN = 0.1     # the probe set reaches this fraction of the data diameter beyond the convex hull


def probe_points(points, *, margin: float = _PROBE_MARGIN, scale: float = 0.0, seed: int = 0) -> np.ndarray:
    """Where `function_gap` compares two denoisers: (n, d) points near the clean data.

    d = 1: 4001 points evenly over [x_min - m, x_max + m]; d = 2: the points of a 241 x 241 grid
    over the bounding box enlarged by m that lie within m of the convex hull; m = margin * diameter.
    d > 2: 4000 convex combinations of the clean points (Dirichlet(1) weights) stretched by 1 + margin
    about the centroid, plus 200 points per clean point at distance up to 2 * scale (the noise scale)
    in uniformly random directions of R^d.
    """
    X = check_points(points, name="points")
    N, d = X.shape
    m = margin * max(diameter(X), scale, 1e-12)
    lo, hi = X.min(axis=0) - m, X.max(axis=0) + m
    if d == 1:
        return np.linspace(lo[0], hi[0], 4001)[:, None]
    if d == 2:
        g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 241), np.linspace(lo[1], hi[1], 241))
        grid = np.stack([g0.ravel(), g1.ravel()], axis=1)                       # (n, 2)
        return grid[distance_to_hull_2d(grid, X) <= m]
    rng = np.random.default_rng(seed)
    centre = X.mean(axis=0)
    inside = rng.dirichlet(np.ones(N), size=4000) @ X                            # (4000, d)
    stretched = centre + (1 + margin) * (inside - centre)
    u = rng.standard_normal((N, 200, d))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    around = X[:, None, :] + 2 * scale * rng.random((N, 200, 1)) * u            # (N, 200, d)
    return np.vstack([stretched, around.reshape(-1, d)])


def function_gap(net, form, points, *, scale: float = 0.0) -> float:
    """sup_y ||h(y) - h*(y)|| over `probe_points`, divided by the data diameter (docs/theory.md 1).

    `net` and `form` are denoisers with `predict` (n, d) -> (n, d); `scale` is the noise scale
    (used for d > 2 and for a single point, whose gap is returned relative to the scale).
    """
    X = check_points(points, name="points")
    Y = _probes(X.tobytes(), X.shape, float(scale)).copy()
    gap = float(np.linalg.norm(net.predict(Y) - form.predict(Y), axis=1).max())
    return gap / (diameter(X) or scale or 1.0)


@functools.lru_cache(maxsize=8)
def _probes(data: bytes, shape: tuple, scale: float) -> np.ndarray:
    """probe_points of the points whose float64 bytes are `data`, kept: the fits of a sweep share their points,
    and the 2-D probe set costs about 40 ms. Callers copy it."""
    return probe_points(np.frombuffer(data, dtype=np.float64).reshape(shape), scale=scale)


def plane_gap(net, form, points) -> float:
    """`function_gap` restricted to the affine hull of 2-D-hull data in R^D (docs/theory.md 5, real images).

    The probe set is the 2-D grid of `probe_points` in plane coordinates, mapped into R^D.
    """
    X = check_points(points, name="points")
    x_bar, U = affine_hull(X)                                                    # (D,), (D, 2)
    Y = x_bar + probe_points((X - x_bar) @ U) @ U.T                              # (n, D)
    return float(np.linalg.norm(net.predict(Y) - form.predict(Y), axis=1).max()) / diameter(X)


def active_units(net, *, share: float | None = None) -> int:
    """The units of a ShallowDenoiser whose share of its path cost is at least `share` (network.ACTIVE_SHARE)."""
    import torch

    share = ACTIVE_SHARE if share is None else share
    with torch.no_grad():
        shares = net.unit_costs() / max(float(net.path_cost()), 1e-300)
    return int((shares >= share).sum())


def residual_trend(history: dict, tol_unit: float) -> str:
    """Whether more steps could help, as the recorded max residuals say: the lowest of the last fifth of the
    checks against the lowest of the fifth before (a clause to append to "did not converge")."""
    r = [v for v in history.get("max_residual", []) if v is not None]
    n = len(r) // 5
    if n < 2:
        return " (raise train.steps)"
    last, before = min(r[-n:]), min(r[-2 * n:-n])
    if last < 0.9 * before:
        return " (the max residual was still falling: raise train.steps)"
    return (f" (the max residual stopped falling: lowest {last / tol_unit:.3g} x min(ell, noise radius) over the "
            f"last {n} checks against {before / tol_unit:.3g} before them, so more steps are unlikely to help)")


def cost_trend(costs: list) -> dict | None:
    """How the path cost moved at the last recorded checks: the lowest of the last fifth of them (at least one)
    against the lowest of every check before. None with fewer than three checks: no trend was measured.

    {"trend", "last_low", "before_low", "checks"}: trend "falling" when the last checks reach a new low by more
    than _NEW_LOW (relative), "above" when they stay more than that above an earlier low (training raised the
    cost since), "level" otherwise; `checks` the count of the last checks compared."""
    c = [float(v) for v in costs if v is not None]
    if len(c) < 3:
        return None
    n = max(1, len(c) // 5)
    last, before = min(c[-n:]), min(c[:-n])
    trend = "falling" if last < (1 - _NEW_LOW) * before else "above" if last > (1 + _NEW_LOW) * before else "level"
    return {"trend": trend, "last_low": last, "before_low": before, "checks": n}
