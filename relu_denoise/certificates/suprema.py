"""The dual constraint's supremum s(lam) = sup_{||w||=1, b} ||sum_i lam_i relu(w . y_i + b)|| (docs/theory.md 8):
exact over every breakpoint in 1-D and every arc between critical angles in 2-D, searched above.
"""

from __future__ import annotations

import numpy as np

from .results import Supremum

ADD_PER_POINT = 40       # units added per separation point and round
SEARCH_DIRECTIONS = 2000  # random directions of the searched supremum (d > 2)
SEARCH_REFINE = 16       # best directions refined by local ascent
SEARCH_CHUNK = 256       # directions evaluated at once (the searched supremum holds (chunk, n, p) arrays)


def _supremum(z: np.ndarray, lam: np.ndarray, *, rng=None, directions=None, top: int = ADD_PER_POINT) -> Supremum:
    r = z.shape[1]
    if r == 1:
        return _sup_1d(z, lam, top)
    if r == 2:
        return _sup_2d(z, lam, top)
    return _sup_searched(z, lam, rng, directions, top)


def _sup_1d(z: np.ndarray, lam: np.ndarray, top: int) -> Supremum:
    """Exact in 1-D: the two directions w = +-1, every breakpoint."""
    W = np.array([[1.0], [-1.0]])
    v = _breakpoint_values(z, lam, W)                                # (2, n)
    return _units_from_breakpoints(z, W, v, top, exact=True)


def _breakpoint_values(z: np.ndarray, lam: np.ndarray, W: np.ndarray) -> np.ndarray:
    """||g(w, b_j)|| for every direction w (rows of W) and every sample j, b_j = -w . z_j: (nd, n).

    With sum lam = 0 and sum lam z^T = 0, g(w, .) is piecewise linear in b, zero outside the data,
    so its supremum over b is at one of these breakpoints (docs/theory.md 8). Sorting the projections
    in decreasing order, g at the k-th is sum_{m<k} lam_m (p_m - p_k): two prefix sums.
    """
    P = W @ z.T                                                      # (nd, n)
    order = np.argsort(-P, axis=1, kind="stable")
    Ps = np.take_along_axis(P, order, axis=1)                        # (nd, n)
    L = lam[order]                                                   # (nd, n, p)
    Lp = L * Ps[..., None]
    g = (np.cumsum(Lp, axis=1) - Lp) - (np.cumsum(L, axis=1) - L) * Ps[..., None]
    values = np.empty(P.shape)
    np.put_along_axis(values, order, np.linalg.norm(g, axis=-1), axis=1)
    return values


def _units_from_breakpoints(z, W, values, top: int, *, exact: bool) -> Supremum:
    """The `top` largest breakpoint values (at most one per direction and sample) as units."""
    flat = np.argsort(-values, axis=None)[:top]
    d_idx, j_idx = np.unravel_index(flat, values.shape)
    Wt = W[d_idx]
    return Supremum(float(values.max()), Wt, -np.sum(Wt * z[j_idx], axis=1), values[d_idx, j_idx], exact)


def _sup_2d(z: np.ndarray, lam: np.ndarray, top: int) -> Supremum:
    """Exact in 2-D. At the breakpoint of sample j the value is ||M_j(theta) w(theta)||, w = (cos, sin),
    M_j = sum_{i active} lam_i (z_i - z_j)^T with i active iff w . (z_i - z_j) > 0: a half circle of
    angles per i. So M_j is constant on the arcs between the 2(n-1) critical angles of j and changes
    by +-lam_i (z_i - z_j)^T across each (a running sum). On an arc, ||M w||^2 = alpha + beta cos 2theta
    + gamma sin 2theta is largest at an end or at the top eigenvector of M^T M. O(n^2 log n) in all.
    """
    n = len(z)
    D = z[None, :, :] - z[:, None, :]                                # (j, i, 2): z_i - z_j
    C = lam[None, :, :, None] * D[:, :, None, :]                     # (j, i, p, 2): lam_i (z_i - z_j)^T
    phi = np.arctan2(D[..., 1], D[..., 0])                           # (j, i)
    theta0 = _reference_angle(phi, np.any(D != 0, axis=-1))
    active = D @ np.array([np.cos(theta0), np.sin(theta0)]) > 0      # (j, i) at theta0
    M0 = np.einsum("ji,jipq->jpq", active.astype(float), C)          # (j, p, 2)
    turn = 2 * np.pi
    events = np.concatenate([(phi - np.pi / 2 - theta0) % turn,      # i becomes active
                             (phi + np.pi / 2 - theta0) % turn], axis=1)   # (j, 2n)
    delta = np.concatenate([C, -C], axis=1)                          # (j, 2n, p, 2)
    order = np.argsort(events, axis=1, kind="stable")
    events = np.take_along_axis(events, order, axis=1)
    delta = delta[np.arange(n)[:, None], order]
    Ms = M0[:, None] + np.concatenate([np.zeros_like(delta[:, :1]), np.cumsum(delta, axis=1)], axis=1)
    lo = theta0 + np.concatenate([np.zeros((n, 1)), events], axis=1)       # (j, 2n + 1) arcs
    hi = theta0 + np.concatenate([events, np.full((n, 1), turn)], axis=1)
    value, theta = _arc_maxima(Ms, lo, hi)                           # (j, 2n + 1)
    best_arc = np.argmax(value, axis=1)                              # one unit per sample j
    v, th = value[np.arange(n), best_arc], theta[np.arange(n), best_arc]
    pick = np.argsort(-v)[:top]
    W = np.stack([np.cos(th[pick]), np.sin(th[pick])], axis=1)
    return Supremum(float(v.max()), W, -np.sum(W * z[pick], axis=1), v[pick], True)


def _reference_angle(phi: np.ndarray, valid: np.ndarray) -> float:
    """An angle at which no pair of samples projects equally: the middle of the widest gap between
    critical angles (the critical angles repeat every pi)."""
    crit = np.sort((phi[valid] + np.pi / 2) % np.pi)
    if len(crit) == 0:
        return 0.0
    gaps = np.diff(np.concatenate([crit, [crit[0] + np.pi]]))
    k = int(np.argmax(gaps))
    return float(crit[k] + gaps[k] / 2)


def _arc_maxima(M: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max over theta in [lo, hi] of ||M w(theta)|| for M (..., p, 2); the value and the angle."""
    q11 = np.sum(M[..., 0] ** 2, axis=-1)
    q22 = np.sum(M[..., 1] ** 2, axis=-1)
    q12 = np.sum(M[..., 0] * M[..., 1], axis=-1)
    alpha, beta, gamma = (q11 + q22) / 2, (q11 - q22) / 2, q12
    f = lambda th: alpha + beta * np.cos(2 * th) + gamma * np.sin(2 * th)   # ||M w(th)||^2
    peak = 0.5 * np.arctan2(gamma, beta)                             # top eigenvector's angle (mod pi)
    inner = peak + np.pi * np.ceil((lo - peak) / np.pi)
    candidates = np.stack([f(lo), f(hi), np.where(inner <= hi, alpha + np.hypot(beta, gamma), -np.inf)])
    angles = np.stack([lo, hi, inner])
    k = np.argmax(candidates, axis=0)
    best = np.take_along_axis(candidates, k[None], axis=0)[0]
    return np.sqrt(np.maximum(best, 0.0)), np.take_along_axis(angles, k[None], axis=0)[0]


def _sup_searched(z, lam, rng, directions, top: int) -> Supremum:
    """r > 2: no exact method; random directions (and given ones), each at its best breakpoint,
    then local ascent from the best. A lower estimate of the supremum: a bound from it is no proof."""
    r = z.shape[1]
    W = rng.standard_normal((SEARCH_DIRECTIONS, r))
    if directions is not None and len(directions):
        W = np.vstack([W, directions])
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    values = np.vstack([_breakpoint_values(z, lam, W[i:i + SEARCH_CHUNK]) for i in range(0, len(W), SEARCH_CHUNK)])
    best = np.argsort(-values.max(axis=1))[:SEARCH_REFINE]
    W = np.vstack([W, [_ascend(z, lam, w) for w in W[best]]])
    values = np.vstack([values, _breakpoint_values(z, lam, W[len(values):])])
    vmax, j = values.max(axis=1), values.argmax(axis=1)
    pick = np.argsort(-vmax)[:top]                                   # one unit per direction
    Wt = W[pick]
    return Supremum(float(vmax.max()), Wt, -np.sum(Wt * z[j[pick]], axis=1), vmax[pick], False)


def _ascend(z: np.ndarray, lam: np.ndarray, w: np.ndarray, steps: int = 20) -> np.ndarray:
    """Local ascent of max_b ||g(w, b)|| from w: toward the top right singular vector of the active
    M_j (the maximiser were the active set fixed), halving the step until the value rises."""
    v = _breakpoint_values(z, lam, w[None])[0]
    for _ in range(steps):
        j = int(np.argmax(v))
        active = (z - z[j]) @ w > 0
        M = lam[active].T @ (z[active] - z[j])                       # (p, r)
        u = np.linalg.svd(M)[2][0]
        u = u if u @ w >= 0 else -u
        tries = np.array([w + s * (u - w) for s in (1.0, 0.5, 0.25, 0.125)])
        tries /= np.linalg.norm(tries, axis=1, keepdims=True)
        tv = _breakpoint_values(z, lam, tries)                       # (4, n)
        k = int(np.argmax(tv.max(axis=1)))
        if tv[k].max() <= v.max() * (1 + 1e-12):
            break
        w, v = tries[k], tv[k]
    return w
