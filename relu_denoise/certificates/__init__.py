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

The package: `results` (what the entries return), `reduced` (the reduced problem and its gates),
`cone` (the convex programs on fixed units), `suprema` (the dual constraint's supremum),
`generation` (seeds, the 1-D LP, column generation, the certificate) and `memory` (the size check).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from ..checks import check_network, check_points, check_positive, check_rng
from ..errors import DataError, SolverError, TrainingError
from ..network import ShallowDenoiser
from .cone import (EXACT_WEIGHTS, _features, _interpolant, _restricted_dual, _reweighted_support, _solvable,
                   _within_residual)
from .generation import (_certify_lp_1d, _column_generation, _distinct_units, _network_units, _seed_units,
                         _trivial_certificate)
from .memory import check_certify_memory, certify_memory
from .reduced import _check_inputs, _hulls, _problem, _reduction_notes
from .results import LOWER_METHODS, UPPER_LP, UPPER_SOCP, Certificate, Polished, Supremum
from .suprema import _supremum

__all__ = ["Certificate", "Polished", "Supremum", "certify", "polish", "supremum", "certify_memory",
           "check_certify_memory", "LOWER_METHODS", "UPPER_LP", "UPPER_SOCP"]


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

    Returns a Certificate; its network interpolates every sample to solver precision. RecipeError before
    anything of size (N M)^2 is allocated where `certify_memory` exceeds the memory available; SolverError
    where the convex programs give no interpolating network (`program` and `status` say which and why; a
    cone program that fails after the first round only ends the rounds: stop_reason says so).
    """
    start = time.perf_counter()
    X, S = _check_inputs(points, samples)
    time_limit, tol = check_positive(time_limit, name="time_limit"), check_positive(tol, name="tol")
    check_rng(rng)
    nets = [check_network(net, d=X.shape[1], name=f"networks[{i}]") for i, net in enumerate(networks)]
    hulls = _hulls(X, S)
    check_certify_memory(*S.shape, r=hulls[1].shape[1], p=hulls[3].shape[1], units=sum(net.width for net in nets))
    prob = _problem(X, S, hulls)
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
    10 minutes for 256 units on 4,000 samples in d = 16). SolverError where a cone program finds no
    solution (its `program` says which).
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
        try:
            A = _restricted_dual(G[:, keep], prob.R, program=EXACT_WEIGHTS).A
        except SolverError as exc:
            raise SolverError("polish: Clarabel returned no exact output weights for the network's units (they "
                              "may be too ill-conditioned)", program=exc.program, status=exc.status) from None
        return Polished(*_interpolant(prob, W[keep], b[keep], A))
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
