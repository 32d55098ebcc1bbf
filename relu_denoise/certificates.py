"""Certified bounds on the minimum path cost of exact interpolation (docs/theory.md 8, derived).

Samples y_i (i = 1..n, n = N M) with targets t_i = x_{n(i)}, the clean point of the sample. Over
shallow ReLU networks of any width with a free affine part V y + c,

    C* = min  sum_k ||a_k|| ||w_k||   subject to   h(y_i) = t_i   for every i.

`certify` returns an interval [lower, upper] that contains C*, and a network at the upper end
that interpolates every sample to solver precision:

- **upper**: fix units (w_k, b_k), ||w_k|| = 1, and solve the cone program for the least-cost
  output weights, minimise sum_k ||a_k|| subject to Up^T Phi A = Up^T T (the free part
  eliminated by Up, an orthonormal basis of the complement of span[Y, 1]). It is solved in its
  dual form (Clarabel through cvxpy), which stays accurate where the primal stalls.
- **lower**, weak duality: any lambda (n, d) with sum_i lambda_i = 0 and sum_i lambda_i y_i^T = 0
  gives C* >= sum_i lambda_i . t_i / s(lambda), s(lambda) = sup_{||w||=1, b} ||sum_i lambda_i
  relu(w . y_i + b)||. s is exact for 1-D and 2-D inputs (`supremum`) and only searched above,
  where the bound is not a proof.
- The two meet by stabilised column generation. Each round solves the restricted cone program
  (upper bound; its dual is lambda_new), evaluates the exact supremum at three points (lambda_new,
  Wentges' smoothed 0.7 lambda_best + 0.3 lambda_new, and a proximal-bundle step around
  lambda_best), keeps the best lower bound, and adds the units where the suprema exceed 1. The
  plain dual oscillates (docs/theory.md 8); the proximal step is what closes the gap in a few rounds.
  Seeds: the given networks' units, the empirical closed form's, a grid of directions x kinks at
  each point's extreme sample projections, and knots at every sample along the principal axis
  (so the first restricted problem can interpolate); idle grid units leave after a round.
- **1-D** (scalar outputs): knots at every sample suffice (docs/theory.md F3), so the linear program
  over them (HiGHS) is the minimum over all widths; its dual closes the interval to solver
  precision (`lp-1d`). With vector outputs the same knots go through the cone program (`exact-1d`).

Two exact reductions come first: the units only see the samples' affine hull (restricting w to
it never costs more), and the outputs are projected onto the clean points' affine hull
(docs/theory.md F2), so a triangle in R^D has 2-D outputs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.linalg

from .checks import check_network, check_points, check_positive, check_rng, check_samples
from .errors import DataError, NoClosedFormError, TrainingError
from .files import to_jsonable
from .geometry import affine_hull, min_distance
from .network import ShallowDenoiser

__all__ = ["Certificate", "Polished", "Supremum", "certify", "polish", "supremum", "LOWER_METHODS"]

LOWER_METHODS = ("lp-1d", "exact-1d", "exact-2d", "searched")
UPPER_SOCP = "socp-fixed-units+column-generation"
UPPER_LP = "lp-knots-at-samples"
WENTGES = 0.7            # weight of the best multipliers at the smoothed separation point (docs/theory.md 8)
PROX = 10.0              # strength of the proximal term of the bundle step (see _proximal_dual)
AGE_LIMIT = 1            # rounds a seed-grid unit may stay idle (no weight, slack) in the restricted problem
SLACK = 0.9              # ... where idle means ||sum_i lam_i relu(w . y_i + b)|| below this
SEED_DIRECTIONS = 72     # seed grid: directions over a half circle (w and -w give the same column)
ADD_PER_POINT = 40       # units added per separation point and round
PARALLEL_TOL = 1e-12     # projected feature columns with |cos| > 1 - this are duplicates
RANK_TOL = 1e-7          # singular values of the projected features below this (relative) count as zero
INTERPOLATION_TOL = 1e-9  # an upper network's max residual must be below this x the smallest distance
SUP_MARGIN = 1e-9        # the supremum is inflated by this (relative) to cover its rounding
SEARCH_DIRECTIONS = 2000  # random directions of the searched supremum (d > 2)
SEARCH_REFINE = 16       # best directions refined by local ascent
# Clarabel settings tried in turn: ill-conditioned feature columns (units nearly affine on the data)
# can stop the default run with a numerical error that the unequilibrated run does not meet. The
# multipliers need no more accuracy than 1e-7: the bounds are evaluated exactly afterwards.
_LOOSE = {"tol_gap_abs": 1e-7, "tol_gap_rel": 1e-7, "tol_feas": 1e-7}
CLARABEL_RETRIES = (_LOOSE, {**_LOOSE, "equilibrate_enable": False}, {}, {"direct_solve_method": "qdldl"})


# ---------------------------------------------------------------- results


@dataclass
class Certificate:
    """A certified interval [lower, upper] on the minimum path cost, and the network at `upper`.

    gap = upper / lower - 1. `lower_method` is 'lp-1d' or 'exact-1d' (one input dimension, exact),
    'exact-2d' (the dual constraint checked over every unit of a 2-D input) or 'searched' (above
    two dimensions: the supremum was searched and the lower bound is not a proof; `notes` says
    so). `network` interpolates every sample to solver precision (`max_residual`, measured with
    `ShallowDenoiser.predict`). `history` has one entry per round (best lower and upper so far).
    """

    lower: float
    upper: float
    lower_method: str
    upper_method: str
    n_constraints: int
    n_units: int
    rounds: int
    seconds: float
    solver: dict
    network: ShallowDenoiser
    max_residual: float
    converged: bool
    stop_reason: str
    tol: float
    notes: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return _gap(self.lower, self.upper)

    def to_dict(self) -> dict:
        """Everything but the network, JSON-able."""
        keys = ("lower", "upper", "gap", "lower_method", "upper_method", "n_constraints", "n_units",
                "rounds", "seconds", "solver", "max_residual", "converged", "stop_reason", "tol",
                "notes", "history")
        return to_jsonable({k: getattr(self, k) for k in keys})        # inf (no lower bound yet) -> None


class Polished(NamedTuple):
    """`polish`'s result: the network with least-cost output weights, its path cost, its max residual."""

    network: ShallowDenoiser
    cost: float
    max_residual: float


@dataclass(frozen=True)
class Supremum:
    """s = sup_{||w||=1, b} ||sum_i lam_i relu(w . y_i + b)|| and the best units found.

    W (k, r) unit directions, b (k,) and values (k,) sorted from the largest; values[0] = value.
    `exact` is False where the supremum was only searched (inputs of dimension > 2).
    """

    value: float
    W: np.ndarray
    b: np.ndarray
    values: np.ndarray
    exact: bool


def _gap(lower: float, upper: float) -> float:
    if upper == 0 and lower == 0:
        return 0.0
    return upper / lower - 1 if lower > 0 else float("inf")


# ---------------------------------------------------------------- the problem, reduced


@dataclass
class _Problem:
    """Samples and targets, and the same in the reduced coordinates of the module docstring."""

    Y: np.ndarray        # (n, D) samples
    T: np.ndarray        # (n, D) targets
    z: np.ndarray        # (n, r) samples in their affine hull: y = y_bar + U_in z
    y_bar: np.ndarray    # (D,)
    U_in: np.ndarray     # (D, r)
    t: np.ndarray        # (n, p) targets in the clean points' affine hull: t = x_bar + U_out t'
    x_bar: np.ndarray    # (D,)
    U_out: np.ndarray    # (D, p)
    Up: np.ndarray       # (n, m) orthonormal basis of the complement of span[z, 1]
    R: np.ndarray        # (m, p) = Up^T t
    dmin: float          # smallest distance between clean points
    M: int               # samples per clean point (rows n M .. n M + M - 1 belong to x_n)

    @property
    def trivial(self) -> bool:
        """An affine map interpolates (one clean point, or too few samples): C* = 0."""
        return self.R.size == 0 or np.abs(self.R).max() <= 1e-12 * max(np.abs(self.t).max(), 1e-300)


def _problem(X: np.ndarray, S: np.ndarray) -> _Problem:
    N, M, D = S.shape
    Y = S.reshape(N * M, D)                                          # (n, D)
    T = np.repeat(X, M, axis=0)                                      # (n, D)
    y_bar, U_in = affine_hull(Y)
    x_bar, U_out = affine_hull(X)
    z, t = (Y - y_bar) @ U_in, (T - x_bar) @ U_out                   # (n, r), (n, p)
    Q, _ = np.linalg.qr(np.hstack([z, np.ones((len(z), 1))]), mode="complete")
    Up = Q[:, z.shape[1] + 1:]                                       # (n, m)
    return _Problem(Y, T, z, y_bar, U_in, t, x_bar, U_out, Up, Up.T @ t, min_distance(X), M)


def _check_inputs(points, samples) -> tuple[np.ndarray, np.ndarray]:
    """Clean points (N, d) and samples (N, M, d) as float64, or DataError naming the problem."""
    X = check_points(points, name="points")
    S = check_samples(samples, X)
    min_distance(X)                                                  # DataError if two points coincide
    _check_no_conflicting_samples(S)
    return X, S


def _check_no_conflicting_samples(S: np.ndarray) -> None:
    N, M, d = S.shape
    _, first, inverse = np.unique(S.reshape(-1, d), axis=0, return_index=True, return_inverse=True)
    owner = np.repeat(np.arange(N), M)
    clash = np.flatnonzero(owner[first[inverse.ravel()]] != owner)
    if len(clash):
        i, j = first[inverse.ravel()[clash[0]]], clash[0]
        raise DataError(f"samples: samples[{i // M}, {i % M}] and samples[{j // M}, {j % M}] coincide but "
                        f"belong to different clean points ({i // M} and {j // M}); no function interpolates "
                        "them: use less noise or more distant points")


# ---------------------------------------------------------------- public entries


def certify(points, samples, *, networks: Iterable[ShallowDenoiser] = (), time_limit: float = 120.0,
            tol: float = 1e-3, rng: np.random.Generator,
            on_round: Callable[[dict], None] | None = None) -> Certificate:
    """Certified interval [lower, upper] on the minimum path cost of exact interpolation (docs/theory.md 8).

    Parameters
    ----------
    points : (N, d) clean points.
    samples : (N, M, d) noisy samples; sample (n, m) must be mapped to points[n].
    networks : ShallowDenoisers whose units (w_k, b_k) seed the upper bound (a trained network,
        a closed form's); the empirical closed form (docs/theory.md 1) is added when one exists.
    time_limit : seconds; no round starts that would likely end after it.
    tol : stop once upper / lower - 1 <= tol.
    rng : draws the searched directions (inputs of dimension > 2).
    on_round : called after each round with {round, lower, upper, gap, n_units, seconds}.

    Returns a Certificate; its network interpolates every sample to solver precision.
    """
    start = time.perf_counter()
    X, S = _check_inputs(points, samples)
    time_limit, tol = check_positive(time_limit, name="time_limit"), check_positive(tol, name="tol")
    check_rng(rng)
    nets = [check_network(net, d=X.shape[1], name=f"networks[{i}]") for i, net in enumerate(networks)]
    prob = _problem(X, S)
    notes = _reduction_notes(prob)
    if prob.trivial:
        return _trivial_certificate(prob, start, tol, notes)
    r, p = prob.z.shape[1], prob.t.shape[1]
    if r == 1 and p == 1:
        return _certify_lp_1d(prob, start, tol, notes)
    W, b, n_grid, seeds = _seed_units(prob, X, S, nets)
    return _column_generation(prob, W, b, n_grid, start=start, deadline=start + time_limit, tol=tol, rng=rng,
                              on_round=on_round, notes=notes + [seeds])


def polish(net: ShallowDenoiser, points, samples, *, exact: bool = False) -> Polished:
    """Least-cost output weights (and free affine part) for `net`'s fixed units (docs/theory.md 8, upper bound).

    Units are normalised (||w_k|| = 1); the cone program minimise sum_k ||a_k|| subject to exact
    interpolation is solved for them. Where those units cannot interpolate every sample exactly
    (fewer units than samples, say), the constraint becomes ||h(y_i) - t_i|| <= the network's own
    max residual, so the result never costs more nor fits worse than `net` (up to solver precision);
    with `exact=True` a TrainingError says so instead (that program has a cone per sample: more than
    10 minutes for 256 units on 4,000 samples in d = 16).
    Compare `cost` and `max_residual` with `net.path_cost()` and net's residual to report the gain.
    """
    X, S = _check_inputs(points, samples)
    net = check_network(net, d=X.shape[1], name="net")
    prob = _problem(X, S)
    W, b = _network_units(net, prob)
    if prob.trivial:                                                 # an affine map interpolates: no unit needed
        return Polished(*_interpolant(prob, W[:0], b[:0], np.zeros((0, prob.t.shape[1]))))
    W, b = _distinct_units(prob, W, b)
    G = prob.Up.T @ _features(prob.z, W, b)                          # (m, K)
    if len(W) and _solvable(G, prob.R):
        keep = _reweighted_support(G, prob.R)
        if not _solvable(G[:, keep], prob.R):
            keep = np.ones(len(W), bool)
        solution = _restricted_dual(G[:, keep], prob.R)
        if solution is None:
            raise TrainingError("polish: the cone program failed (Clarabel); the network's units are "
                                "too ill-conditioned to solve for exact output weights")
        return Polished(*_interpolant(prob, W[keep], b[keep], solution[1]))
    if exact:
        raise TrainingError("polish: the units cannot interpolate every sample exactly")
    own = float(np.linalg.norm(net.predict(prob.Y) - prob.T, axis=1).max())
    return Polished(*_within_residual(prob, W, b, own))


def supremum(y, lam, *, rng: np.random.Generator | None = None) -> Supremum:
    """s = sup_{||w||=1, b} ||sum_i lam_i relu(w . y_i + b)|| (docs/theory.md 8), with its maximising units.

    y (n, r) inputs, lam (n, p) multipliers with sum_i lam_i = 0 and sum_i lam_i y_i^T = 0 (else
    the supremum is infinite). Exact for r = 1 and r = 2 (every breakpoint, every arc between
    critical angles); for r > 2 searched with `rng` (random directions and local ascent), a lower
    estimate of s (`exact` False).
    """
    y = check_points(y, name="y")
    lam = check_points(lam, name="lam")
    if len(lam) != len(y):
        raise DataError(f"lam: expected one row per input row ({len(y)}), got {len(lam)}")
    scale = np.abs(lam).sum() * max(np.abs(y).max(), 1.0)
    if np.abs(lam.sum(0)).max() > 1e-9 * scale or np.abs(lam.T @ y).max() > 1e-9 * scale:
        raise DataError("lam: must be orthogonal to affine functions of y (sum_i lam_i = 0 and "
                        "sum_i lam_i y_i^T = 0), else the supremum is infinite; project lam first")
    if y.shape[1] > 2:
        check_rng(rng)
    return _supremum(y, lam, rng=rng)


def _supremum(z: np.ndarray, lam: np.ndarray, *, rng=None, directions=None, top: int = ADD_PER_POINT) -> Supremum:
    r = z.shape[1]
    if r == 1:
        return _sup_1d(z, lam, top)
    if r == 2:
        return _sup_2d(z, lam, top)
    return _sup_searched(z, lam, rng, directions, top)


# ---------------------------------------------------------------- upper bound: the cone program


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


def _restricted_dual(G: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Solve the cone program on fixed units in dual form; returns (mu (m, p), A (K, p)) or None.

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
    if not _clarabel(cp.Problem(cp.Maximize(cp.sum(cp.multiply(nu, Q.T @ R))), [cone]), nu):
        return None
    Z = np.asarray(cone.dual_value[1]).reshape(K, p)
    # cvxpy's sign convention for the cone multipliers: take the sign that solves G A = R
    A = -Z if np.abs(G @ Z + R).max() < np.abs(G @ Z - R).max() else Z
    return Q @ np.asarray(nu.value).reshape(-1, p), A


def _proximal_dual(G: np.ndarray, R: np.ndarray, mu_c: np.ndarray) -> np.ndarray | None:
    """The restricted dual with a proximal term around the best multipliers mu_c (m, p), a proximal
    bundle step: maximise <mu, R> - rho/2 ||mu - mu_c||^2 subject to ||G_k^T mu|| <= 1, with
    rho = PROX <mu_c, R> / ||mu_c||^2 (scale-free). Unlike the plain restricted dual it cannot run
    off along directions the current units barely constrain; returns mu (m, p) or None."""
    import cvxpy as cp

    K, (m, p) = G.shape[1], R.shape
    rho = PROX * max(np.sum(mu_c * R), 1e-300) / max(np.sum(mu_c**2), 1e-300)
    mu = cp.Variable((m, p))
    cone = cp.SOC(np.ones(K), G.T @ mu, axis=1)
    objective = cp.sum(cp.multiply(mu, R)) - rho / 2 * cp.sum_squares(mu - mu_c)
    return np.asarray(mu.value).reshape(m, p) if _clarabel(cp.Problem(cp.Maximize(objective), [cone]), mu) else None


def _clarabel(problem, var) -> bool:
    """Solve with Clarabel, trying CLARABEL_RETRIES in turn; whether a solution came."""
    import cvxpy as cp

    for settings in CLARABEL_RETRIES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                          # "optimal_inaccurate" is judged here
            try:
                problem.solve(solver=cp.CLARABEL, **settings)
            except cp.error.SolverError:
                continue
        if problem.status in ("optimal", "optimal_inaccurate") and var.value is not None:
            return True
    return False


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            problem.solve(solver=cp.CLARABEL)
        except cp.SolverError:
            raise TrainingError("polish: the cone program failed (Clarabel gave up: ill-conditioned)") from None
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise TrainingError(f"polish: the cone program failed (Clarabel status {problem.status})")
    A = np.asarray(A.value)
    a, w = A @ prob.U_out.T, W @ prob.U_in.T                         # (K, D)
    V = prob.U_out @ np.asarray(V.value) @ prob.U_in.T               # (D, D)
    c = prob.x_bar + prob.U_out @ np.asarray(c.value) - V @ prob.y_bar
    net = ShallowDenoiser.from_weights(a, w, b - w @ prob.y_bar, V, c)
    residual = np.linalg.norm(net.predict(prob.Y) - prob.T, axis=1).max()
    return net, net.path_cost().item(), float(residual)


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
    from .closed_forms import closed_form

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
    E = Xr[j] - Xr[i]
    norm = np.linalg.norm(E, axis=1)
    return E[norm > 0] / norm[norm > 0, None]


# ---------------------------------------------------------------- lower bound: the supremum


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
    values = np.vstack([_breakpoint_values(z, lam, W[i:i + 256]) for i in range(0, len(W), 256)])
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


def _reduction_notes(prob: _Problem) -> list[str]:
    (n, D), r, p = prob.Y.shape, prob.z.shape[1], prob.t.shape[1]
    notes = []
    if r < D:
        notes.append(f"the samples span a {r}-dimensional affine subspace of R^{D}: units restricted to it (exact)")
    if p < D:
        notes.append(f"outputs projected onto the clean points' {p}-dimensional affine hull (docs/theory.md F2; exact)")
    return notes


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
        raise TrainingError(f"certify: the 1-D linear program failed (HiGHS: {res.message})")
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
    best, history, stop, last = _Best(), [], "gap below tol", 0.0
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
        sol = _restricted_dual(G, prob.R)
        if sol is None:
            stop = "cone program failed"
            break
        mu, A = sol
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
        raise TrainingError(f"certify: no exactly interpolating network found ({stop}); the samples may be "
                            "too close to each other for the cone program")
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
    method = {1: "exact-1d", 2: "exact-2d"}.get(r, "searched")
    notes = list(notes)
    if method == "searched":
        notes.append(f"NOT A PROOF: the inputs span {r} > 2 dimensions, so the supremum over units in the "
                     "dual constraint was searched (random directions and local ascent), not computed; "
                     "a unit the search missed would lower the bound")
    else:
        notes.append(f"lower bound by weak duality (docs/theory.md 8), the dual constraint checked exactly over "
                     f"every unit of the {r}-D input (supremum inflated by {SUP_MARGIN:g} for rounding)")
    gap = _gap(best.lower, best.upper)
    if gap > tol:
        notes.append(f"not converged: stopped ({stop}) at gap {gap:.3g} > tol {tol:g}")
    return Certificate(best.lower, best.upper, method, UPPER_SOCP, len(prob.Y), best.net.width, len(history),
                       time.perf_counter() - start, _solver_info("socp"), best.net, best.residual,
                       gap <= tol, stop if gap > tol else "gap below tol", tol, notes, history)
