"""The polar histogram of neuron directions weighted by cost share (docs/theory.md 6), and the angles it draws.

    direction_histogram      half-polar histogram of neuron directions (0-180 deg), candidates as radial lines
    neuron_angles_2d         each unit's input direction and cost, d = 2
    candidate_angles_2d      each candidate direction of `align` (edges, altitudes, ...), d = 2
    neuron_angles_plane      the same in the plane through three points in R^D (the basis of plane_contours)
    candidate_angles_plane
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..checks import check_network, check_points, check_vector
from ..errors import DataError
from ..geometry import plane_basis
from .base import _figure, _save

if TYPE_CHECKING:
    from ..network import ShallowDenoiser


def direction_histogram(path, angles_rad, weights, *, candidates: Mapping[str, float] | None = None,
                        predicted: set[str] | None = None, title: str = "", bins: int = 36) -> Path:
    """Polar histogram of neuron input directions weighted by cost share (docs/theory.md 6), over 0-180 degrees.

    Directions are undirected lines (alignment uses |cos|, docs/theory.md 6), so every angle is taken mod pi
    and the histogram is a half disc: w_k and -w_k fall in the same bin.

    Parameters
    ----------
    angles_rad : (K,) direction angle of each unit's w_k (any real; taken mod pi).
    weights : (K,) nonnegative weights (e.g. unit costs), normalised to shares summing to 1.
    candidates : name -> angle (radians) of a candidate direction u (taken mod pi); drawn as a labelled
        radial line above the grid.
    predicted : names of the candidates the closed form predicts to carry the cost: solid, coloured, one
        legend entry each; the others are dotted grey and share one legend entry.
    bins : histogram bins over 180 degrees (default 36: 5 degrees, the default alignment tolerance).
    """
    theta = np.mod(check_vector(angles_rad, name="angles_rad"), np.pi)      # (K,)
    wts = check_vector(weights, name="weights", n=theta.size)               # (K,)
    if np.any(wts < 0):
        raise DataError("weights: must be >= 0 (cost shares), got a negative value")
    candidates = {str(k): float(np.mod(v, np.pi)) for k, v in (candidates or {}).items()}
    predicted = set(predicted or ())
    unknown = sorted(predicted - set(candidates))
    if unknown:
        raise DataError(f"predicted: no candidate named {', '.join(unknown)}; "
                        f"known: {', '.join(candidates) or 'none'}")
    share = wts / wts.sum() if wts.sum() > 0 else wts
    hist, edges = np.histogram(theta, bins=bins, range=(0.0, np.pi), weights=share)
    rmax = 1.15 * float(hist.max()) if hist.size and hist.max() > 0 else 1.0
    fig, ax = _half_disc()
    ax.set_axisbelow(True)                        # the grid under the bars and the candidate lines
    ax.bar(edges[:-1], hist, width=np.pi / bins, align="edge", color="tab:blue", alpha=0.75,
           edgecolor="tab:blue", lw=0.3, zorder=2,
           label=f"neurons (K = {theta.size}): cost share per {180 / bins:g} deg")
    colors = iter(f"C{i}" for i in range(1, 1000))
    styles = {name: dict(color=next(colors), ls="-", lw=2.0) if name in predicted
              else dict(color="0.35", ls=":", lw=1.6) for name in candidates}
    handles = {}                                  # legend: the predicted ones, then one entry for all the others
    for name, angle in candidates.items():
        is_pred = name in predicted
        (line,) = ax.plot([angle, angle], [0, rmax], **styles[name], zorder=4 if is_pred else 3)
        handles.setdefault(f"{name} (predicted)" if is_pred else "other candidates", line)
    for name, (at, r) in _label_places(candidates).items():
        ax.text(at, r * rmax, name, color=styles[name]["color"], fontsize="small", ha="center", va="center",
                zorder=6, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    ax.set_ylim(0, rmax)
    ax.tick_params(axis="y", labelsize="x-small")
    order = sorted(handles, key=lambda k: k == "other candidates")
    bars = ax.containers[0]
    ax.legend([handles[k] for k in order] + [bars], order + [bars.get_label()], loc="upper center",
              bbox_to_anchor=(0.5, 0.21), ncols=2, fontsize="small", frameon=False)
    fig.suptitle(title or "neuron input directions $\\pm w_k/\\|w_k\\|$ weighted by cost share")
    return _save(fig, path, tight=False)


_EDGE = np.radians(6)                                  # labels stay this far inside the base line
_CLOSE = np.radians(12)                                # labels of candidates closer than this are stepped apart
_WIDTH, _HEIGHT, _DISC, _BELOW = 7.5, 4.6, 5.4, 1.1   # inches: the figure, the half disc's diameter, room under it


def _label_places(candidates: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """name -> (angle, radius as a fraction of the axis) of each candidate's label: near the rim, kept _EDGE inside
    the base line (a label there would cover 0 or 180 degrees' own), and stepped inwards where candidates lie
    within _CLOSE of each other (their labels would overlap)."""
    places, last, level = {}, None, 0
    for name, angle in sorted(candidates.items(), key=lambda kv: kv[1]):
        level = level + 1 if last is not None and angle - last < _CLOSE else 0
        last = angle
        places[name] = (min(max(angle, _EDGE), np.pi - _EDGE), 0.94 - 0.14 * (level % 3))
    return places


def _half_disc():
    """A figure and its polar axes over 0-180 degrees, placed by hand: a polar Axes keeps a square box with the
    half disc in its middle, so the box reaches past the figure's top and bottom and the disc fills the figure
    (the title above it, the legend in the _BELOW inches under it)."""
    fig = _figure((_WIDTH, _HEIGHT))
    bottom = _BELOW - _DISC / 4                   # the disc's base sits _BELOW over the figure's bottom edge
    ax = fig.add_axes([(_WIDTH - _DISC) / 2 / _WIDTH, bottom / _HEIGHT, _DISC / _WIDTH, _DISC / _HEIGHT],
                      projection="polar")
    ax.set_thetamin(0)
    ax.set_thetamax(180)
    return fig, ax


# ---------------------------------------------------------------- angles for the histogram


def neuron_angles_2d(net: ShallowDenoiser) -> tuple[np.ndarray, np.ndarray]:
    """Angle atan2(w_k1, w_k0) in radians (K,) and unit cost ||a_k|| ||w_k|| (K,), for d = 2."""
    check_network(net, name="net")
    if net.dim != 2:
        raise DataError(f"net: neuron_angles_2d needs d = 2, got d = {net.dim}; use neuron_angles_plane")
    w = net.w.detach().cpu().double().numpy()           # (K, 2)
    return np.arctan2(w[:, 1], w[:, 0]), net.unit_costs().detach().cpu().double().numpy()


def candidate_angles_2d(directions) -> dict[str, float]:
    """name -> angle (radians) of each 2-D candidate; accepts Candidates or AlignReport.directions."""
    return {name: float(np.arctan2(u[1], u[0])) for name, u in _vectors(directions, d=2).items()}


def neuron_angles_plane(net: ShallowDenoiser, points) -> tuple[np.ndarray, np.ndarray]:
    """Angles (K,) of the projected directions U^T w_k in the data plane's basis, weights ||a_k|| ||U^T w_k|| (K,).

    The weight is the unit's cost as the function restricted to the plane sees its input side:
    units orthogonal to the plane get weight 0.
    """
    X = check_points(points, name="points", d=check_network(net, name="net").dim)
    _, U = plane_basis(X)
    w = net.w.detach().cpu().double().numpy() @ U       # (K, 2)
    na = net.a.detach().cpu().double().numpy()
    return np.arctan2(w[:, 1], w[:, 0]), np.linalg.norm(na, axis=1) * np.linalg.norm(w, axis=1)


def candidate_angles_plane(directions, points) -> dict[str, float]:
    """name -> angle (radians) of each candidate projected on the data plane (basis of `plane_basis`)."""
    X = check_points(points, name="points")
    _, U = plane_basis(X)
    return {name: float(np.arctan2(*(U.T @ u)[::-1])) for name, u in _vectors(directions, d=X.shape[1]).items()}


def _vectors(directions, *, d: int) -> dict[str, np.ndarray]:
    """name -> vector (d,) from a list of Candidates or a mapping name -> vector | {'vector': ...}."""
    if isinstance(directions, Mapping):
        items = [(k, v["vector"] if isinstance(v, Mapping) else v) for k, v in directions.items()]
    elif isinstance(directions, Iterable):
        items = [(c.name, c.u) for c in directions]
    else:
        raise DataError(f"directions: expected Candidates or a mapping name -> vector, got {type(directions).__name__}")
    out = {}
    for name, v in items:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (d,):
            raise DataError(f"directions: {name!r} has shape {v.shape}, expected ({d},)")
        out[str(name)] = v
    return out
