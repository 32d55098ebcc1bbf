"""The upper bound's convex programs on fixed units (docs/theory.md 8): the restricted dual and its
proximal step (column generation), the exact and the residual-bounded output weights (polish), and
the exact-interpolation repairs around them.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg

from ..errors import SolverError
from ..network import ShallowDenoiser
from .reduced import _Problem

PROX = 10.0              # strength of the proximal term of the bundle step (see _proximal_dual)
PARALLEL_TOL = 1e-12     # projected feature columns with |cos| > 1 - this are duplicates
RANK_TOL = 1e-7          # singular values of the projected features below this (relative) count as zero
# Clarabel settings tried in turn: ill-conditioned feature columns (units nearly affine on the data)
# can stop the default run with a numerical error that the unequilibrated run does not meet. The
# multipliers need no more accuracy than 1e-7: the bounds are evaluated exactly afterwards.
_LOOSE = {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-7}
CLARABEL_RETRIES = (_LOOSE, {**_LOOSE, "equilibrate_enable": False}, {}, {"direct_solve_method": "qdldl"})
SOLVED = ("optimal", "optimal_inaccurate")   # accepted: the bounds and residuals are evaluated exactly afterwards
INACCURATE = "Solution may be inaccurate"    # cvxpy's UserWarning for the *_inaccurate statuses (judged by status)
# the programs, as a SolverError names them
RESTRICTED_DUAL = "restricted dual cone program"
PROXIMAL_DUAL = "proximal dual"
EXACT_WEIGHTS = "polish: exact output weights"
WITHIN_RESIDUAL = "polish: residual-bounded output weights"


class Dual(NamedTuple):
    """The restricted dual's solution: multipliers, the cone duals (the output weights) and Clarabel's status."""

    mu: np.ndarray       # (m, p)
    A: np.ndarray        # (K, p)
    status: str


def _features(z: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Phi_ik = relu(w_k . z_i + b_k), shape (n, K)."""
    return np.maximum(z @ W.T + b, 0.0)


def _distinct_columns(G: np.ndarray) -> np.ndarray:
    """Indices of the columns of G (m, K) to keep: no (near) zero column and no two nearly parallel.

    A zero column is a unit affine on the samples (no effect); parallel columns (a unit twice, or a
    unit and its mirror -w, -b, which differ by an affine function) made the cone program fail
    numerically (docs/theory.md 8). Of a parallel group the longest column (the cheapest way to reach its
    direction) stays. Only columns parallel to rounding count: with a looser tolerance (1e-8) the
    separation kept returning units that were "parallel" to existing ones yet violated, and the
    bounds stalled at a gap of 0.3%; near dependence is handled in `_restricted_dual` instead.
    """
    norms = np.linalg.norm(G, axis=0)                                # (K,)
    order = np.argsort(-norms, kind="stable")
    order = order[norms[order] > 1e-10 * max(norms.max(initial=0.0), 1e-300)]
    Gn = G[:, order] / norms[order]
    C = np.abs(Gn.T @ Gn)                                            # (K', K') |cos|
    removed = np.zeros(len(order), bool)
    keep = []
    for k in range(len(order)):
        if not removed[k]:
            keep.append(order[k])
            removed |= C[k] > 1 - PARALLEL_TOL
    return np.array(sorted(keep), dtype=int)


def _restricted_dual(G: np.ndarray, R: np.ndarray, *, program: str = RESTRICTED_DUAL) -> Dual:
    """Solve the cone program on fixed units in dual form: mu (m, p) and A (K, p), or SolverError naming `program`.

        maximise <mu, R>  subject to  ||G_k^T mu|| <= 1 for every column k  (dual)
        minimise sum_k ||A_k||  subject to  G A = R                          (primal: the cone duals)

    mu is sought in the range of G: a component outside it changes neither the objective (when
    the units interpolate) nor the constraints, so the optimal face would be unbounded there and
    the interior-point method would stall on it. Zero is the natural value of that component.
    """
    import cvxpy as cp

    ev, Q = np.linalg.eigh(G @ G.T)                                  # singular values of G, squared
    Q = Q[:, ev > RANK_TOL**2 * ev[-1]]                              # (m, rank) basis of range(G)
    K, p = G.shape[1], R.shape[1]
    nu = cp.Variable((Q.shape[1], p))
    cone = cp.SOC(np.ones(K), (G.T @ Q) @ nu, axis=1)
    status = _clarabel(cp.Problem(cp.Maximize(cp.sum(cp.multiply(nu, Q.T @ R))), [cone]), nu, program=program)
    Z = np.asarray(cone.dual_value[1]).reshape(K, p)
    # cvxpy's sign convention for the cone multipliers: take the sign that solves G A = R
    A = -Z if np.abs(G @ Z + R).max() < np.abs(G @ Z - R).max() else Z
    return Dual(Q @ np.asarray(nu.value).reshape(-1, p), A, status)


def _proximal_dual(G: np.ndarray, R: np.ndarray, mu_c: np.ndarray) -> np.ndarray | None:
    """The restricted dual with a proximal term around the best multipliers mu_c (m, p), a proximal
    bundle step: maximise <mu, R> - rho/2 ||mu - mu_c||^2 subject to ||G_k^T mu|| <= 1, with
    rho = PROX <mu_c, R> / ||mu_c||^2 (scale-free). Unlike the plain restricted dual it cannot run
    off along directions the current units barely constrain; returns mu (m, p), or None where Clarabel finds
    no solution (the step is optional: the round goes on with the other separation points)."""
    import cvxpy as cp

    K, (m, p) = G.shape[1], R.shape
    rho = PROX * max(np.sum(mu_c * R), 1e-300) / max(np.sum(mu_c**2), 1e-300)
    mu = cp.Variable((m, p))
    cone = cp.SOC(np.ones(K), G.T @ mu, axis=1)
    objective = cp.sum(cp.multiply(mu, R)) - rho / 2 * cp.sum_squares(mu - mu_c)
    try:
        _clarabel(cp.Problem(cp.Maximize(objective), [cone]), mu, program=PROXIMAL_DUAL)
    except SolverError:
        return None
    return np.asarray(mu.value).reshape(m, p)


def _clarabel(problem, var, *, program: str) -> str:
    """Solve with Clarabel, trying CLARABEL_RETRIES in turn: the status of the first run with a solution, or
    SolverError naming `program` with the last run's status."""
    for settings in CLARABEL_RETRIES:
        status = _solve(problem, settings)
        if status in SOLVED and var.value is not None:
            return status
    raise SolverError(f"Clarabel returned no solution with any of its {len(CLARABEL_RETRIES)} settings",
                      program=program, status=status)


def _solve(problem, settings: dict) -> str:
    """One Clarabel run through cvxpy; its status ("solver_error" where cvxpy raised, as it does when Clarabel
    stops on a numerical error). Only cvxpy's warning about inaccurate solutions is silenced, since the caller
    judges the status; every other warning (a numpy overflow, say) reaches the caller's filters."""
    import cvxpy as cp

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=INACCURATE, category=UserWarning)
        try:
            problem.solve(solver=cp.CLARABEL, **settings)
        except cp.error.SolverError:
            return cp.settings.SOLVER_ERROR
    return str(problem.status)


SUPPORT_ROUNDS = 300    # at most this many reweighted least-squares rounds before polish's cone program ...
SUPPORT_STOP = 1e-9     # ... stopping once sum_k ||A_k|| changes by less than this (relative) in a round
SUPPORT_TOL = 1e-6      # units whose output weight falls below this x the largest are dropped


def _reweighted_support(G: np.ndarray, R: np.ndarray, rounds: int = SUPPORT_ROUNDS) -> np.ndarray:
    """The units the least-cost solution of G A = R uses (a boolean mask over G's columns), found by
    iteratively reweighted least squares: A = D V (V^T D V)^-1 B with D = diag(||A_k||) of the round before
    (the eta-trick for min sum_k ||A_k||), G A = R written on G's row space as V^T A = B (G = U S V^T), so a
    round costs K rank^2 whatever the number of samples. Why: trained networks hold hundreds of nearly collinear
    units, on which the cone program is unreliable: on a d = 784 triangle's 1024 units it returned 1.16 x
    the least cost, and also with the 13 units left after 30 rounds; after 100 rounds 6 units remained and
    it returned the least cost."""
    K = G.shape[1]
    U, sv, Vt = np.linalg.svd(G, full_matrices=False)                # G A = R  <=>  V^T A = B on G's row space
    rank = int((sv > RANK_TOL * sv[0]).sum()) if sv.size and sv[0] > 0 else 0
    V, B = Vt[:rank].T, (U[:, :rank].T @ R) / sv[:rank, None]         # (K, rank), (rank, p)
    eta, cost = np.ones(K), np.inf
    for _ in range(rounds):
        VD = V * eta[:, None]                                         # D V
        C = V.T @ VD                                                  # (rank, rank)
        C[np.diag_indices_from(C)] += 1e-12 * max(float(np.trace(C)) / max(rank, 1), 1e-300)
        try:
            Y = scipy.linalg.cho_solve(scipy.linalg.cho_factor(C), B)
        except np.linalg.LinAlgError:
            return np.ones(K, bool)
        eta = np.linalg.norm(VD @ Y, axis=1)                          # ||A_k||, A = D V (V^T D V)^-1 B
        if abs(cost - eta.sum()) <= SUPPORT_STOP * eta.sum():
            break
        cost = eta.sum()
    return eta > SUPPORT_TOL * eta.max(initial=0.0)


def _solvable(G: np.ndarray, R: np.ndarray) -> bool:
    """Whether G A = R has an exact solution (to rounding). The tolerance admits the near-singular G of units
    trained in float32 (relative residual 2e-9 on the d = 784 triangle, where G's singular values span 1e14);
    callers measure the residual of what they build from it."""
    A = np.linalg.lstsq(G, R, rcond=None)[0]
    return np.abs(G @ A - R).max() <= 1e-7 * max(np.abs(R).max(), 1e-300)


def _exact_weights(G: np.ndarray, R: np.ndarray, A: np.ndarray) -> np.ndarray:
    """A corrected so that G A = R to rounding: the least-norm correction on the fewest units in use that
    allow it (the interior-point solution leaves tiny weights on every unit), or on all. Directions of G with
    singular values below RANK_TOL (relative) are left out, as in `_reweighted_support`: units trained in float32
    are nearly dependent (singular values down to 1e-14), and solving in those directions too took a polished
    d = 784 triangle from 1.001 x to 1.066 x the least cost to remove a residual of 1e-9."""
    if A.size == 0 or R.size == 0:
        return A
    norms = np.linalg.norm(A, axis=1)
    best, best_res = A, np.inf
    for used in [norms > rel * norms.max(initial=0.0) for rel in (1e-6, 1e-9)] + [np.ones(len(A), bool)]:
        A1 = np.where(used[:, None], A, 0.0)
        A1[used] += np.linalg.lstsq(G[:, used], R - G @ A1, rcond=RANK_TOL)[0]
        res = np.abs(G @ A1 - R).max()
        if res < best_res:
            best, best_res = A1, res
        if res <= 1e-12 * max(np.abs(R).max(), 1.0):
            break
    return best


def _interpolant(prob: _Problem, W: np.ndarray, b: np.ndarray, A: np.ndarray) -> tuple[ShallowDenoiser, float, float]:
    """The network with units (W, b), output weights A corrected to interpolate exactly, and the
    free affine part from least squares, in the original coordinates; its path cost and max residual
    (evaluated with ShallowDenoiser.predict)."""
    Phi = _features(prob.z, W, b)                                    # (n, K)
    A = _exact_weights(prob.Up.T @ Phi, prob.R, A)
    used = np.linalg.norm(A, axis=1) > 0
    a = A[used] @ prob.U_out.T                                       # (K', D)
    w = W[used] @ prob.U_in.T                                        # (K', D) unit rows
    b = b[used] - w @ prob.y_bar
    E = prob.T - Phi[:, used] @ a                                    # (n, D) left for V y + c
    B = np.hstack([prob.Y, np.ones((len(prob.Y), 1))])               # (n, D + 1)
    coef = np.linalg.lstsq(B, E, rcond=None)[0]                      # (D + 1, D)
    net = ShallowDenoiser.from_weights(a, w, b, coef[:-1].T, coef[-1])
    residual = np.linalg.norm(net.predict(prob.Y) - prob.T, axis=1).max()
    return net, net.path_cost().item(), float(residual)


def _within_residual(prob: _Problem, W: np.ndarray, b: np.ndarray, eps: float) -> tuple[ShallowDenoiser, float, float]:
    """polish's fallback: least cost with ||h(y_i) - t_i|| <= eps, units fixed (the free part a variable)."""
    import cvxpy as cp

    Phi = _features(prob.z, W, b)                                    # (n, K)
    n, (K, p), r = len(Phi), (len(W), prob.t.shape[1]), prob.z.shape[1]
    A, V, c = cp.Variable((K, p)), cp.Variable((p, r)), cp.Variable(p)
    fit = Phi @ A + prob.z @ V.T + np.ones((n, 1)) @ cp.reshape(c, (1, p), order="C") - prob.t
    problem = cp.Problem(cp.Minimize(cp.sum(cp.norm(A, 2, axis=1))), [cp.norm(fit, 2, axis=1) <= eps])
    status = _solve(problem, {})
    if status not in SOLVED or A.value is None:
        raise SolverError("polish: Clarabel returned no output weights within the network's own residual (the "
                          "units may be too ill-conditioned)", program=WITHIN_RESIDUAL, status=status)
    A = np.asarray(A.value)
    a, w = A @ prob.U_out.T, W @ prob.U_in.T                         # (K, D)
    V = prob.U_out @ np.asarray(V.value) @ prob.U_in.T               # (D, D)
    c = prob.x_bar + prob.U_out @ np.asarray(c.value) - V @ prob.y_bar
    net = ShallowDenoiser.from_weights(a, w, b - w @ prob.y_bar, V, c)
    residual = np.linalg.norm(net.predict(prob.Y) - prob.T, axis=1).max()
    return net, net.path_cost().item(), float(residual)
