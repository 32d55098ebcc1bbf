"""The ramps method: the least-cost sum of ramps over a dictionary of directions, a convex program
(docs/training.md 12).

A ramp along a unit direction u rises from 0 to a height D (a vector) between two levels lo < hi of u^T y:
D ramp(u^T y; lo, hi, 1), two units, path cost 2 ||D|| / (hi - lo) (docs/theory.md 1). Where the gap (lo, hi)
falls between the clouds' projections (every sample of a clean point on one side), the ramp is constant on
every cloud: 0 below, D above. So h(y) = c + sum_j D_j ramp_j interpolates exactly when

    P D + 1 c^T = X,      P (N, J) the ramps' patterns (P_nj = 1: cloud n lies above ramp j's gap),

and its cost is sum_j w_j ||D_j||, w_j = 2 / (hi_j - lo_j): a group lasso with equality constraints. It is
solved by iteratively reweighted least squares (the eta-trick: D = E P~^T (P~ E P~^T)^-1 X~, E = diag of
||D_j|| / w_j from the round before, P~ and X~ centred so that c is free), which interpolates exactly at every
round and lowers the cost monotonically; the solve's multipliers G give a lower bound on the least cost over the
whole dictionary, <G, X~> / max_j (||P~_j^T G|| / w_j) (weak duality). Every closed form of docs/theory.md 4 is
such a sum. On image patches, where training finds no interpolant (docs/training.md 10), this program finds one wherever the
gaps' patterns span the clouds (docs/training.md 12). Runs on the CPU (numpy); the network is returned on the requested device.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ..errors import RecipeError, TrainingError
from ..geometry import affine_hull, unit_edges, unit_rows
from ..metrics import PRUNE_SHARE
from ..network import ShallowDenoiser
from ..recipe import ModelSpec, TrainSpec

_EDGES_MAX = 20000      # directions x_n - x_m: every pair up to this many, else a random choice of pairs
_RANDOM = 5000          # and this many random directions in the span of the clean points' differences
_BLOCK = 1024           # directions projected at once (memory: _BLOCK x N M floats)
_CHECK_EVERY = 10       # rounds between checks (history rows)
_ETA_FLOOR = 1e-12      # E's floor relative to its largest entry: ramps that dropped out stay solvable
_RIDGE = 1e-13          # relative ridge of the (N, N) system: rounding, not regularisation
_SHARE = PRUNE_SHARE    # ramps with a smaller share of the cost are dropped from the network
_ACTIVE = 20000         # the IRLS's first columns: the widest ramps (column generation adds the others' best)
_ADD = 2000             # ramps added at a check, at most
_PRICE_TOL = 1e-3       # a dual constraint violated by more than this relative amount brings its ramp in


@dataclass
class Ramps:
    """A dictionary of J ramps: unit directions u (J, d), gaps lo < hi (J,), patterns (J, N) bool."""

    u: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    pattern: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """Path cost per unit height, 2 / (hi - lo) (J,)."""
        return 2.0 / (self.hi - self.lo)

    def take(self, keep) -> "Ramps":
        return Ramps(self.u[keep], self.lo[keep], self.hi[keep], self.pattern[keep])


def ramps_rng(seed: int) -> np.random.Generator:
    """The ramps method's generator for a fit's seed (the FitJob's): the first draw of the torch generator a
    trained fit would start from, so the same seed means the same random directions wherever it runs."""
    import torch

    return np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=torch.Generator().manual_seed(seed))))


def directions(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Candidate unit directions (D, d): the clean points' differences (the edges, docs/theory.md 6; all pairs up
    to _EDGES_MAX, else a random choice) and _RANDOM random directions in their span (outside it no ramp helps:
    every cloud projects to the same place up to noise)."""
    N = len(points)
    i, j = np.triu_indices(N, 1)
    if len(i) > _EDGES_MAX:
        pick = np.sort(rng.choice(len(i), _EDGES_MAX, replace=False))
        i, j = i[pick], j[pick]
    basis = affine_hull(points)[1].T                                         # (r, d): the one rank rule
    random = rng.standard_normal((_RANDOM, len(basis))) @ basis
    return np.vstack([unit_edges(points, i, j), unit_rows(random)])


def ramp_dictionary(samples: np.ndarray, U: np.ndarray) -> Ramps:
    """Every ramp along the directions U (D, d) whose gap no cloud straddles, the widest of each pattern.

    samples: (N, M, d). Along u the clouds are sorted by their lowest projection; a gap opens after the first k
    clouds where the next cloud's lowest projection exceeds the highest of those k. The ramp spans the whole gap
    (the cheapest ramp with that pattern along u).
    """
    N = samples.shape[0]
    found = []                                          # per block: direction index, lo, hi, packed pattern
    for start in range(0, len(U), _BLOCK):
        z = np.einsum("nmd,kd->knm", samples, U[start:start + _BLOCK])                  # (B, N, M)
        low, high = z.min(axis=2), z.max(axis=2)                                         # (B, N)
        order = np.argsort(low, axis=1, kind="stable")
        low_sorted = np.take_along_axis(low, order, 1)
        top = np.maximum.accumulate(np.take_along_axis(high, order, 1), axis=1)          # highest of the first k
        k, g = np.nonzero(low_sorted[:, 1:] > top[:, :-1])                               # gap after cloud g
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(N)[None, :], 1)
        found.append(_widest((start + k, top[k, g], low_sorted[k, g + 1], np.packbits(rank[k] > g[:, None], axis=1))))
    k, lo, hi, packed = _widest(tuple(np.concatenate(f) for f in zip(*found)))
    return Ramps(U[k], lo, hi, np.unpackbits(packed, axis=1, count=N).astype(bool))


def _widest(found: tuple) -> tuple:
    """(direction index, lo, hi, packed pattern) arrays reduced to the widest ramp of each pattern, in order."""
    k, lo, hi, packed = found
    widest_first = np.argsort(lo - hi, kind="stable")
    _, first = np.unique(packed[widest_first], axis=0, return_index=True)
    keep = np.sort(widest_first[first])
    return k[keep], lo[keep], hi[keep], packed[keep]


def _centred(ramps: Ramps) -> np.ndarray:
    """The patterns as centred columns P~ (N, J): sums of them plus a free constant are the ramps' sums."""
    A = ramps.pattern.T.astype(np.float64)
    return A - A.mean(axis=0)


def _centred_blocks(ramps: Ramps):
    """(start, P~ rows (b, N)) over all J ramps in blocks: the whole dictionary never in float at once."""
    for start in range(0, len(ramps.u), 8 * _BLOCK):
        P = ramps.pattern[start:start + 8 * _BLOCK].astype(np.float64)
        yield start, P - P.mean(axis=1, keepdims=True)


def _first_columns(ramps: Ramps, N: int) -> np.ndarray:
    """The IRLS's first columns: all ramps when there are at most _ACTIVE, else the _ACTIVE widest, plus where
    those do not span the clouds the pivots of a QR of all the ramps (which do)."""
    J = len(ramps.u)
    if J <= _ACTIVE:
        return np.arange(J)
    first = np.sort(np.argsort(-(ramps.hi - ramps.lo), kind="stable")[:_ACTIVE])
    if span(ramps.take(first), N) == N:
        return first
    pivots = scipy.linalg.qr(_centred(ramps) / ramps.weight, mode="r", pivoting=True)[1][:N - 1]  # cheap first
    return np.union1d(first, pivots)


def span(ramps: Ramps, N: int) -> int:
    """How many of the N clouds' values sums of these ramps (and a constant) can set independently: 1 + the rank
    of the centred patterns, from their (N, N) Gram matrix. N: every target is reachable."""
    G = np.zeros((N, N))
    for _, P in _centred_blocks(ramps):
        G += P.T @ P
    values = np.linalg.eigvalsh(G)
    return 1 + int((values > 1e-9 * max(values[-1], 1e-300)).sum())


def _prices(ramps: Ramps, gamma: np.ndarray) -> np.ndarray:
    """||P~_j^T G|| / w_j for every ramp j (J,): the dual constraint of the group lasso."""
    out = np.empty(len(ramps.u))
    for start, P in _centred_blocks(ramps):
        out[start:start + len(P)] = np.linalg.norm(P @ gamma, axis=1)
    return out / ramps.weight


def ramp_rounds(ramps: Ramps, points: np.ndarray, rounds: int):
    """The IRLS rounds of the group lasso: yields (round, cols, D (len(cols), d), cost, lower bound or None, max
    residual, ramps added) after every round: the heights D of the ramps `cols` in work (the others' are 0);
    lower bound and ramps added at the checks only (None, 0 between).

    The residual is max_n ||(P D + 1 c^T - X)_n|| with c = mean(X - P D): every round interpolates up to the
    rounding of the (N, N) solve, and a ramp is constant on each cloud, so this is every sample's residual.
    The rounds work on a set of columns (`_first_columns`); every _CHECK_EVERY rounds all ramps are priced:
    the lower bound over the whole dictionary comes out, and up to _ADD ramps whose dual constraint is violated
    join the set (column generation), so that large dictionaries (low noise: 300,000 ramps) stay affordable.
    """
    N = len(points)
    cols = _first_columns(ramps, N)
    B = points - points.mean(axis=0)
    eta = 1.0 / ramps.weight[cols]                                                       # round 1: E = 1 / w^2
    A = _centred(ramps.take(cols))
    for r in range(1, rounds + 1):
        w = ramps.weight[cols]
        e = eta / w
        G = (A * e) @ A.T                                                                # (N, N)
        gamma = np.linalg.solve(G + _RIDGE * np.trace(G) / N * np.eye(N), B)            # (N, d) multipliers
        D = e[:, None] * (A.T @ gamma)
        norm = np.linalg.norm(D, axis=1)
        residual = float(np.linalg.norm(A @ D - B, axis=1).max())
        cost, lower, added, work = float(w @ norm), None, 0, cols
        eta = np.maximum(norm, _ETA_FLOOR * norm.max())
        if r % _CHECK_EVERY == 0 or r == rounds:
            price = _prices(ramps, gamma)
            lower = float((gamma * B).sum()) / float(price.max())
            price[cols] = 0.0
            new = np.argsort(-price, kind="stable")[:_ADD]
            new = np.sort(new[price[new] > 1.0 + _PRICE_TOL])
            added = len(new)
            if added:
                cols = np.concatenate([cols, new])
                eta = np.concatenate([eta, np.full(len(new), np.median(eta[norm > _ETA_FLOOR * norm.max()]))])
                order = np.argsort(cols, kind="stable")
                cols, eta = cols[order], eta[order]
                A = _centred(ramps.take(cols))
        yield r, work, D, cost, lower, residual, added


def ramp_network(ramps: Ramps, D: np.ndarray, points: np.ndarray, skip: bool) -> ShallowDenoiser:
    """The network of the ramps with heights D (J, d), balanced (||a_k|| = ||w_k||), 2 units per ramp.

    Ramps with a share of the cost below _SHARE are dropped and the others' heights solved once more, by the
    last round's weights restricted to them, so that the network interpolates exactly."""
    costs = ramps.weight * np.linalg.norm(D, axis=1)
    keep = costs > _SHARE * costs.sum()
    r = ramps.take(keep)
    A, B = _centred(r), points - points.mean(axis=0)
    e = np.linalg.norm(D[keep], axis=1) / r.weight
    G = (A * e) @ A.T
    D = e[:, None] * (A.T @ np.linalg.lstsq(G, B, rcond=None)[0])                      # exact on the kept ramps
    c = (points - r.pattern.T.astype(np.float64) @ D).mean(axis=0)
    gap = r.hi - r.lo
    s = np.sqrt(np.linalg.norm(D, axis=1) / gap)                                         # ||a|| = ||w|| per unit
    w = r.u * s[:, None]
    a = D / (gap * s)[:, None]
    d = points.shape[1]
    return ShallowDenoiser.from_weights(np.vstack([a, -a]), np.vstack([w, w]), np.concatenate([-r.lo * s, -r.hi * s]),
                                        np.zeros((d, d)) if skip else None, c)


def fit_ramps(points: np.ndarray, samples: np.ndarray, model: ModelSpec, train: TrainSpec, *, rng: np.random.Generator,
              callback: Callable[[dict], object] | None = None) -> tuple[ShallowDenoiser, dict, dict]:
    """The ramps method on clean points (N, d) and samples (N, M, d): (network on the CPU in float64, history,
    info). Stops when the cost fell by at most train.ftol (relative) over the last train.patience checks and no
    ramp joined in them, or the lower bound is within ftol of it ("converged"), at train.steps rounds
    ("max-steps"), or when `callback` returns true ("callback"). Raises TrainingError when no sum of the
    dictionary's ramps interpolates (their patterns do not span the clouds), RecipeError when model.width is
    below the units the solution uses.
    """
    history = {"step": [], "cost": [], "max_residual": [], "lower_bound": []}
    with threadpool_limits(train.threads or 1):       # one thread unless asked: never slower on a shared machine
        U = directions(points, rng)
        ramps = ramp_dictionary(samples, U)
        reach = span(ramps, len(points))
        if reach < len(points):
            raise TrainingError(
                f"no sum of ramps interpolates these samples: the {len(ramps.u)} ramps found along {len(U)} "
                f"directions (gaps between the clouds' projections) span {reach} of the {len(points)} clouds' "
                f"patterns; lower the noise or raise data.min_distance (both widen the gaps)",
                reason="failed")
        reason, joined = "max-steps", []
        for r, cols, D, cost, lower, residual, added in ramp_rounds(ramps, points, train.steps):
            if lower is None:
                continue
            for key, value in zip(history, (r, cost, residual, lower)):
                history[key].append(value)
            joined.append(added)
            stop = callback is not None and callback({"step": r, "steps": train.steps, "loss": cost, "cost": cost,
                                                        "max_residual": residual, "lr": None, "penalty": None})
            c, p = history["cost"], train.patience
            settled = len(c) > p and c[-1 - p] - c[-1] <= train.ftol * c[-1] and not any(joined[-p:])
            if settled or cost - lower <= train.ftol * cost:
                reason = "converged"
                break
            if stop:
                reason = "callback"
                break
        net = ramp_network(ramps.take(cols), D, points, model.skip)
    if model.width is not None and net.width > model.width:
        raise RecipeError(f"model.width = {model.width} is below the {net.width} units the ramps method's "
                          f"solution uses: unset model.width (the method takes the units it needs)")
    info = dict(lower_bound=history["lower_bound"][-1], directions=len(U), ramps=len(ramps.u), stop_reason=reason)
    return net, history, info
