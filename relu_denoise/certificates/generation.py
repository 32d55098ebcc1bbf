"""Column generation (docs/theory.md 8): seed units, the 1-D linear program, the stabilised rounds that
move the restricted cone program's upper bound and the weak-duality lower bound together, and the
certificate they end in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, NoClosedFormError, SolverError
from ..geometry import unit_edges
from ..network import ShallowDenoiser
from .cone import RESTRICTED_DUAL, _distinct_columns, _features, _interpolant, _proximal_dual, _restricted_dual
from .reduced import _Problem
from .results import UPPER_LP, UPPER_SOCP, Certificate, _gap
from .suprema import _sup_1d, _supremum

WENTGES = 0.7            # weight of the best multipliers at the smoothed separation point (docs/theory.md 8)
AGE_LIMIT = 1            # rounds a seed-grid unit may stay idle (no weight, slack) in the restricted problem
SLACK = 0.9              # ... where idle means ||sum_i lam_i relu(w . y_i + b)|| below this
SEED_DIRECTIONS = 72     # seed grid: directions over a half circle (w and -w give the same column)
INTERPOLATION_TOL = 1e-9  # an upper network's max residual must be below this x the smallest distance
SUP_MARGIN = 1e-9        # the supremum is inflated by this (relative) to cover its rounding
LP_1D = "1-D LP (HiGHS)"   # the program, as a SolverError names it


# ---------------------------------------------------------------- units: seeds and bookkeeping


def _network_units(net: ShallowDenoiser, prob: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """net's units seen on the samples' affine hull, normalised: W (K, r) unit rows, b (K,)."""
    w = net.w.detach().cpu().numpy().astype(np.float64)              # (K, D)
    b = net.b.detach().cpu().numpy().astype(np.float64)              # (K,)
    Wr, br = w @ prob.U_in, b + w @ prob.y_bar                       # relu(w.y + b) = relu(Wr.z + br) on the hull
    norm = np.linalg.norm(Wr, axis=1)
    live = norm > 1e-12 * np.maximum(np.linalg.norm(w, axis=1), 1e-300)
    return Wr[live] / norm[live, None], br[live] / norm[live]


def _distinct_units(prob: _Problem, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = _distinct_columns(prob.Up.T @ _features(prob.z, W, b))
    return W[keep], b[keep]


def _seed_units(prob: _Problem, X: np.ndarray, S: np.ndarray, nets: list[ShallowDenoiser]):
    """Seed units W (K, r), b (K,): the given networks' units, the empirical closed form's, a grid of
    directions x kinks, and knots at every sample along the principal axis. The last two are the grid,
    whose size comes third; a note says what was used."""
    from ..closed_forms import closed_form

    words = [f"{len(nets)} given network(s)"] if nets else []
    try:
        nets = nets + [closed_form(X, samples=S).network]
        words.append("the empirical closed form")
    except (NoClosedFormError, DataError):
        pass
    grid = [_grid_units(prob), _knots_along(prob, np.eye(prob.z.shape[1])[0])]
    units = [_network_units(net, prob) for net in nets] + grid
    W = np.vstack([u[0] for u in units])
    b = np.concatenate([u[1] for u in units])
    n_grid = sum(len(g[0]) for g in grid)
    return W, b, n_grid, "seed units: " + ", ".join(words + [f"a grid of {n_grid}"])


def _knots_along(prob: _Problem, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A kink at every sample's projection on u: with the free affine part these interpolate any
    targets (piecewise linear along u) when the projections are distinct, so the restricted problem
    is feasible from the first round. u: the samples' principal axis."""
    knots = np.unique(prob.z @ u)[:-1]                               # relu(u.z - max) vanishes on the samples
    return np.tile(u, (len(knots), 1)), -knots


def _grid_units(prob: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """Knots at every sample in 1-D. In r dimensions, directions u x kinks at the extreme projections
    of each point's samples (where a flat zone ends, docs/theory.md 1), 2 N units per direction."""
    z = prob.z
    r = z.shape[1]
    if r == 1:
        return _knots_along(prob, np.ones(1))
    if r == 2:
        angles = np.pi * np.arange(SEED_DIRECTIONS) / SEED_DIRECTIONS
        U = np.stack([np.cos(angles), np.sin(angles)], axis=1)       # (72, 2)
    else:  # deterministic: coordinate axes and the clean points' edge directions, in the hull
        U = np.vstack([np.eye(r), _edge_directions(prob)])
    P = (z @ U.T).reshape(-1, prob.M, len(U))                        # (N, M, dirs)
    kinks = np.concatenate([P.min(axis=1), P.max(axis=1)]).T         # (dirs, 2 N)
    return np.repeat(U, kinks.shape[1], axis=0), -kinks.ravel()


def _edge_directions(prob: _Problem) -> np.ndarray:
    """Unit directions (E, r) of the edges between clean points, seen in the samples' affine hull."""
    Xr = np.unique((prob.T - prob.y_bar) @ prob.U_in, axis=0)        # clean points in input coordinates
    i, j = np.triu_indices(len(Xr), 1)
    return unit_edges(Xr, j, i)


# ---------------------------------------------------------------- the certificate


def _lower_bound(prob: _Problem, lam: np.ndarray, s: float) -> float:
    """Weak duality (docs/theory.md 8): C* >= sum_i lam_i . t_i / s, lam orthogonal to affine functions."""
    if s <= 0:
        return 0.0
    return float(np.sum(lam * prob.t)) / (s * (1 + SUP_MARGIN))


def _project(prob: _Problem, lam: np.ndarray) -> np.ndarray:
    """lam made orthogonal to affine functions of the samples to machine precision."""
    return prob.Up @ (prob.Up.T @ lam)


def _solver_info(kind: str) -> dict:
    if kind == "lp":
        import scipy
        return {"name": "HiGHS (scipy.optimize.linprog)", "scipy": scipy.__version__}
    import clarabel
    import cvxpy
    return {"name": "Clarabel (cvxpy)", "cvxpy": cvxpy.__version__, "clarabel": clarabel.__version__}

def _trivial_certificate(prob: _Problem, start: float, tol: float, notes: list[str]) -> Certificate:
    """An affine map interpolates: the minimum cost is 0."""
    W = np.zeros((0, prob.z.shape[1]))
    net, cost, residual = _interpolant(prob, W, np.zeros(0), np.zeros((0, prob.t.shape[1])))
    notes = notes + ["an affine map interpolates every sample: the minimum cost is 0 (lower = 0 holds "
                     "in any dimension: a cost is never negative)"]
    method = {0: "exact-1d", 1: "exact-1d", 2: "exact-2d"}.get(prob.z.shape[1], "searched")
    return Certificate(0.0, cost, method, "affine",
                       len(prob.Y), 0, 0, time.perf_counter() - start, {"name": "numpy.linalg.lstsq"}, net,
                       residual, True, "affine interpolant", tol, notes, [])


def _certify_lp_1d(prob: _Problem, start: float, tol: float, notes: list[str]) -> Certificate:
    """1-D, scalar outputs: the LP over knots at every sample is the minimum over all widths (F3)."""
    from scipy.optimize import linprog

    W, b = _grid_units(prob)                                         # every knot
    G = prob.Up.T @ _features(prob.z, W, b)                          # (m, K)
    K = G.shape[1]
    res = linprog(np.ones(2 * K), A_eq=np.hstack([G, -G]), b_eq=prob.R[:, 0], bounds=(0, None), method="highs")
    if res.status != 0:
        raise SolverError("certify: the linear program over knots at every sample found no solution",
                          program=LP_1D, status=res.message)
    A = (res.x[:K] - res.x[K:])[:, None]                             # (K, 1)
    net, upper, residual = _interpolant(prob, W, b, A)
    lam = _project(prob, prob.Up @ res.eqlin.marginals[:, None])     # (n, 1) the LP's dual
    lower = _lower_bound(prob, lam, _sup_1d(prob.z, lam, 1).value)
    notes = notes + ["exact in one dimension: knots at every sample suffice (docs/theory.md F3); lower is the "
                     "LP dual's weak-duality bound with the supremum over all units computed exactly"]
    history = [{"round": 1, "lower": lower, "upper": upper, "n_units": net.width,
                "seconds": time.perf_counter() - start}]
    return Certificate(lower, upper, "lp-1d", UPPER_LP, len(prob.Y), net.width, 1, time.perf_counter() - start,
                       _solver_info("lp"), net, residual, _gap(lower, upper) <= tol, "exact", tol, notes, history)


@dataclass
class _Best:
    lower: float = 0.0
    lam: np.ndarray | None = None    # (n, p) feasible multipliers of `lower` (supremum 1)
    upper: float = np.inf
    net: ShallowDenoiser | None = None
    residual: float = np.inf


def _column_generation(prob: _Problem, W, b, n_grid, *, start, deadline, tol, rng, on_round, notes) -> Certificate:
    """Stabilised column generation (docs/theory.md 8): restricted cone program -> upper bound and
    multipliers; supremum at smoothed points -> lower bound and new units; until the gap is below
    tol, the time is up or no unit is violated. Grid units idle for more than AGE_LIMIT rounds (no
    weight, dual constraint slack) leave the restricted problem; the others stay."""
    r = prob.z.shape[1]
    best, history, stop, last, status = _Best(), [], "gap below tol", 0.0, None
    idle = np.where(np.arange(len(W)) >= len(W) - n_grid, 0, -1)    # rounds idle; -1: never leaves
    fresh = np.ones(len(W), bool)                                    # units not in the last restricted problem
    for rnd in range(1, 10_000):
        t0 = time.perf_counter()
        G = prob.Up.T @ _features(prob.z, W, b)                      # (m, K)
        keep = _distinct_columns(G)
        if not fresh[keep].any():
            stop = "no new unit"                                     # every unit found was already there
            break
        W, b, idle, G = W[keep], b[keep], idle[keep], G[:, keep]
        try:
            mu, A, status = _restricted_dual(G, prob.R)
        except SolverError as exc:
            stop, status = f"cone program failed: Clarabel status {exc.status}", exc.status
            break
        _keep_upper(prob, best, W, b, A)
        lam_new = _project(prob, prob.Up @ mu)                       # (n, p) restricted dual
        W_new, b_new = _separate(prob, best, lam_new, G, rng, W)
        last = time.perf_counter() - t0
        entry = {"round": rnd, "lower": best.lower, "upper": best.upper, "gap": _gap(best.lower, best.upper),
                 "n_units": len(W), "seconds": time.perf_counter() - start}
        history.append(entry)
        if on_round is not None:
            on_round(dict(entry))
        if entry["gap"] <= tol:
            break
        if len(W_new) == 0:
            stop = "no violated unit"
            break
        if time.perf_counter() + last > deadline:
            stop = "time limit"
            break
        slack = (np.linalg.norm(A, axis=1) <= 1e-6 * np.abs(A).max()) & (np.linalg.norm(G.T @ mu, axis=1) < SLACK)
        idle = np.where(idle < 0, -1, np.where(slack, idle + 1, 0))
        stay = idle <= AGE_LIMIT
        W, b = np.vstack([W[stay], W_new]), np.concatenate([b[stay], b_new])
        idle = np.concatenate([idle[stay], np.full(len(W_new), -1)])
        fresh = np.arange(len(W)) >= stay.sum()
    if best.net is None:
        raise SolverError(f"certify: no exactly interpolating network found ({stop}); the samples may be too "
                          "close to each other for the cone program", program=RESTRICTED_DUAL, status=status)
    return _finish(prob, best, history, stop, start, tol, notes, r)


def _keep_upper(prob: _Problem, best: _Best, W, b, A) -> None:
    """The network of these output weights becomes the upper end if it interpolates and costs less."""
    net, upper, residual = _interpolant(prob, W, b, A)
    if residual <= INTERPOLATION_TOL * prob.dmin and upper < best.upper:
        best.upper, best.net, best.residual = upper, net, residual


def _separate(prob: _Problem, best: _Best, lam_new: np.ndarray, G: np.ndarray, rng, W) -> tuple[np.ndarray, np.ndarray]:
    """Lower bounds at stabilised points, the best kept in `best`; returns the violated units found.

    The points: lam_new (the restricted dual: plain cutting planes), the Wentges point
    WENTGES lam_best + (1 - WENTGES) lam_new (docs/theory.md 8), and the proximal step around lam_best
    (`_proximal_dual`), which closes the gap in far fewer rounds than the other two.
    """
    points = [lam_new]
    if best.lam is not None:
        points.append(WENTGES * best.lam + (1 - WENTGES) * lam_new)
        mu = _proximal_dual(G, prob.R, prob.Up.T @ best.lam)
        if mu is not None:
            points.append(_project(prob, prob.Up @ mu))
    found = []
    for lam in points:
        sup = _supremum(prob.z, lam, rng=rng, directions=W if prob.z.shape[1] > 2 else None)
        lower = _lower_bound(prob, lam, sup.value)
        if lower > best.lower:
            best.lower, best.lam = lower, lam / (sup.value * (1 + SUP_MARGIN))
        violated = sup.values > 1 + 1e-7
        found.append((sup.W[violated], sup.b[violated]))
    return np.vstack([f[0] for f in found]), np.concatenate([f[1] for f in found])


def _finish(prob, best: _Best, history, stop, start, tol, notes, r) -> Certificate:
    lower_by = {1: "exact-1d", 2: "exact-2d"}.get(r, "searched")
    notes = list(notes)
    if r > 2:
        notes.append(f"NOT A PROOF: the inputs span {r} > 2 dimensions, so the supremum over units in the "
                     "dual constraint was searched (random directions and local ascent), not computed; "
                     "a unit the search missed would lower the bound")
    else:
        notes.append(f"lower bound by weak duality (docs/theory.md 8), the dual constraint checked exactly over "
                     f"every unit of the {r}-D input (supremum inflated by {SUP_MARGIN:g} for rounding)")
    gap = _gap(best.lower, best.upper)
    if gap > tol:
        notes.append(f"not converged: stopped ({stop}) at gap {gap:.3g} > tol {tol:g}")
    return Certificate(best.lower, best.upper, lower_by, UPPER_SOCP, len(prob.Y), best.net.width, len(history),
                       time.perf_counter() - start, _solver_info("socp"), best.net, best.residual,
                       gap <= tol, stop if gap > tol else "gap below tol", tol, notes, history)
