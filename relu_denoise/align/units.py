"""The kept units of a network and their statistics against the candidates (docs/theory.md 6)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..geometry import line_angle_deg
from ..network import ShallowDenoiser
from .directions import UNALIGNED, Candidate


def _nearest(cost: np.ndarray, st: dict, target: list[int], separation: float | None) -> dict:
    """How the units sit around the predicted directions whatever the tolerance: the share nearest to one, its
    widest angle (units of at least 1% of the cost), and the aligned share at half the separation (the widest
    tolerance whose cones of predicted and rival directions do not meet)."""
    near = np.isin(st["closest"], target)
    big = near & (_shares(cost) >= 0.01)
    out = {"nearest_fraction": _share(cost, near),
           "nearest_max_deg": float(st["angle_deg"][big].max()) if big.any() else None,
           "discriminating_deg": None, "aligned_at_discriminating": None}
    if separation is not None:
        half = separation / 2
        out.update(discriminating_deg=half, aligned_at_discriminating=_share(cost, near & (st["angle_deg"] <= half)))
    return out


def _wider_note(nearest: dict, tol: float) -> str:
    return (f"{nearest['nearest_fraction']:.3g} of the cost is nearest to the predicted directions, up to "
            f"{nearest['nearest_max_deg']:.3g} degrees from them, beyond the tolerance of {tol:g}; at a tolerance of "
            f"{nearest['discriminating_deg']:.3g} degrees (half the separation, still telling predicted from rival "
            f"directions) the aligned fraction is {nearest['aligned_at_discriminating']:.3g}")



def _check_tolerance(tolerance_deg) -> float:
    t = float(tolerance_deg)
    if not 0 < t < 90:
        raise DataError(f"tolerance_deg: must be in (0, 90) degrees, got {tolerance_deg}")
    return t


def _check_prune_tol(prune_tol) -> float:
    t = float(prune_tol)
    if not 0 <= t < 1:
        raise DataError(f"prune_tol: must be in [0, 1) (a share of the path cost), got {prune_tol}")
    return t


def _kept_units(net: ShallowDenoiser, prune_tol: float, hull=None) -> dict:
    """Balance and prune a float64 CPU copy; the kept units' weights as numpy, with their original indices.

    With `hull` = (x_bar, U) the units are those of the function restricted to the affine hull
    x_bar + U z and projected onto it, U^T (h(x_bar + U z) - x_bar): a U, w U, b + w x_bar (F2:
    this never costs more). `in_plane` = ||U^T w_k|| / ||w_k|| is measured before restricting.
    """
    a, w, b = (t.detach().cpu().double().numpy() for t in (net.a, net.w, net.b))
    in_plane = np.ones(len(w))
    if hull is not None:
        x_bar, U = hull
        in_plane = np.linalg.norm(w @ U, axis=1) / np.maximum(np.linalg.norm(w, axis=1), 1e-300)
        a, w, b = a @ U, w @ U, b + w @ x_bar
    copy = ShallowDenoiser.from_weights(a, w, b).balance()
    costs = copy.unit_costs().detach().numpy()          # (K,)
    pruned, share = copy.prune(prune_tol)
    keep = costs > prune_tol * max(float(costs.sum()), 1e-300)  # the rule of ShallowDenoiser.prune
    if int(keep.sum()) != pruned.width:
        raise RuntimeError("align: pruning rule out of step with ShallowDenoiser.prune")
    a, w, b = (t.detach().numpy() for t in (pruned.a, pruned.w, pruned.b))
    return {"idx": np.flatnonzero(keep), "a": a, "w": w, "b": b, "cost": costs[keep], "pruned_share": share,
            "in_plane": in_plane[keep]}


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _neuron_stats(units: dict, C: np.ndarray, target: list[int], cos_tol: float) -> dict:
    """Per kept unit: closest candidate, its angle, the assigned one (-1: none within tolerance), |cos(a, w)|.

    `aligned` marks units assigned to a target candidate, `other` those assigned to a rival.
    """
    uw = _unit(units["w"])                              # (K, d)
    cos = np.abs(uw @ C.T)                              # (K, C)
    if cos.size == 0:
        none = np.zeros(len(uw), bool)
        return {"closest": np.zeros(len(uw), int), "assigned": np.full(len(uw), -1), "angle_deg": np.zeros(len(uw)),
                "aligned": none, "other": none, "out_cos": np.zeros(len(uw))}
    closest = cos.argmax(axis=1)                        # (K,) nearest line
    within = cos[np.arange(len(uw)), closest] >= cos_tol
    in_target = np.isin(closest, target)
    return {
        "closest": closest,
        "assigned": np.where(within, closest, -1),
        "angle_deg": line_angle_deg(uw, C[closest]),
        "aligned": within & in_target,
        "other": within & ~in_target,
        "out_cos": np.abs(np.sum(_unit(units["a"]) * uw, axis=1)),
    }


def _share(cost: np.ndarray, mask: np.ndarray) -> float:
    """sum of cost over mask / total (exactly 1.0 when mask is all true, 0.0 when empty)."""
    total = cost.sum()
    return float(cost[mask].sum() / total) if total > 0 else 0.0


def _shares(cost: np.ndarray) -> np.ndarray:
    total = cost.sum()
    return cost / total if total > 0 else cost


def _weighted(cost: np.ndarray, values: np.ndarray) -> float:
    total = cost.sum()
    return float(cost @ values / total) if total > 0 else 0.0


def _baseline(units: dict, C: np.ndarray, target: list[int], rivals: list[int], cos_tol: float,
              rng: np.random.Generator, draws: int) -> np.ndarray:
    """The aligned fraction against the candidates C (C, r) turned as one rigid body by a uniformly
    random orthogonal map of the analysis space, under the same nearest-candidate rule, per draw: (draws,)."""
    uw = _unit(units["w"])                              # (K, r)
    out = np.zeros(draws)
    if uw.size == 0 or not target:
        return out
    T, R = C[target], C[rivals]                         # (T, r), (R, r)
    for t in range(draws):
        Q = _haar_orthogonal(C.shape[1], rng)           # (r, r)
        best_target = np.abs(uw @ (T @ Q).T).max(axis=1)  # (K,)
        best_rival = np.abs(uw @ (R @ Q).T).max(axis=1) if len(R) else np.full(len(uw), -1.0)
        out[t] = _share(units["cost"], (best_target >= cos_tol) & (best_target > best_rival))
    return out


def _haar_orthogonal(r: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly (Haar) distributed orthogonal (r, r) matrix: QR of a Gaussian, signs fixed by R's diagonal."""
    Q, R = np.linalg.qr(rng.standard_normal((r, r)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def _per_direction(cost: np.ndarray, st: dict, cands: list[Candidate]) -> dict:
    """Cost share of the units assigned to each candidate, plus 'unaligned' (assigned to none)."""
    out = {c.name: _share(cost, st["assigned"] == j) for j, c in enumerate(cands)}
    out[UNALIGNED] = _share(cost, st["assigned"] < 0)
    return out


def _groups(units: dict, x_bar: np.ndarray, C: np.ndarray, cands: list[Candidate], cos_tol: float) -> list[dict]:
    """Cluster units by signed direction: each joins the group of the costliest unit within tolerance."""
    uw, cost = _unit(units["w"]), units["cost"]
    share = np.round(_shares(cost), 12)                # rounded: rescaled copies order ties alike
    order = sorted(range(len(cost)), key=lambda k: (-share[k], k))
    seeds, members = [], []
    for k in order:
        g = next((i for i, s in enumerate(seeds) if uw[k] @ uw[s] >= cos_tol), None)
        if g is None:
            seeds.append(k)
            members.append([k])
        else:
            members[g].append(k)
    nw = np.linalg.norm(units["w"], axis=1)
    offsets = -(units["b"] + units["w"] @ x_bar) / np.where(nw > 0, nw, 1.0)  # from the data mean
    out_cos = np.abs(np.sum(_unit(units["a"]) * uw, axis=1))
    out = []
    for m in members:
        m = np.array(m)
        u = _unit(cost[m] @ uw[m])
        cos = np.abs(C @ u)
        j = int(cos.argmax())
        out.append({"direction": u.tolist(), "cost_share": float(cost[m].sum() / cost.sum()), "n_units": int(m.size),
                    "units": units["idx"][np.sort(m)].tolist(), "offsets": sorted(offsets[m].tolist()),
                    "output_parallel": _weighted(cost[m], out_cos[m]), "closest": cands[j].name,
                    "angle_deg": float(line_angle_deg(u[None], C[j][None])[0])})
    return out
