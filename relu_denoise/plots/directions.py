"""The polar histogram of neuron directions weighted by cost share (docs/theory.md 6).

    direction_histogram polar histogram of neuron directions, candidate directions as radial lines
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..checks import check_vector
from ..errors import DataError
from .base import _figure, _gc_paused, _save


@_gc_paused()
def direction_histogram(path, angles_rad, weights, *, candidates: Mapping[str, float] | None = None,
                        predicted: set[str] | None = None, title: str = "", bins: int = 72) -> Path:
    """Polar histogram of neuron input directions weighted by cost share (docs/theory.md 6).

    Parameters
    ----------
    angles_rad : (K,) direction angle of each unit's w_k, taken mod 2 pi.
    weights : (K,) nonnegative weights (e.g. unit costs), normalised to shares summing to 1.
    candidates : name -> angle (radians) of a candidate direction u; drawn as a radial line at
        the angle and, fainter, at the opposite angle (alignment uses |cos|, so -u counts too).
    predicted : names of the candidates the closed form predicts to carry the cost: solid and
        coloured; the others are dotted grey.
    """
    theta = np.mod(check_vector(angles_rad, name="angles_rad"), 2 * np.pi)  # (K,)
    wts = check_vector(weights, name="weights", n=theta.size)               # (K,)
    if np.any(wts < 0):
        raise DataError("weights: must be >= 0 (cost shares), got a negative value")
    candidates = {str(k): float(v) for k, v in (candidates or {}).items()}
    predicted = set(predicted or ())
    unknown = sorted(predicted - set(candidates))
    if unknown:
        raise DataError(f"predicted: no candidate named {', '.join(unknown)}; "
                        f"known: {', '.join(candidates) or 'none'}")
    share = wts / wts.sum() if wts.sum() > 0 else wts
    hist, edges = np.histogram(theta, bins=bins, range=(0.0, 2 * np.pi), weights=share)
    rmax = 1.15 * float(hist.max()) if hist.size and hist.max() > 0 else 1.0
    fig = _figure((7.5, 6))
    ax = fig.add_subplot(projection="polar")
    ax.bar(edges[:-1], hist, width=2 * np.pi / bins, align="edge", color="tab:blue", alpha=0.75,
           edgecolor="tab:blue", lw=0.3, label=f"neurons (K = {theta.size}), cost share")
    colors = iter(f"C{i}" for i in range(1, 1000))
    for name, angle in candidates.items():
        is_pred = name in predicted
        style = (dict(color=next(colors), ls="-", lw=2.0) if is_pred
                 else dict(color="grey", ls=":", lw=1.5))
        ax.plot([angle, angle], [0, rmax], **style, label=name + (" (predicted)" if is_pred else ""))
        ax.plot([angle + np.pi] * 2, [0, rmax], **{**style, "lw": style["lw"] * 0.6}, alpha=0.5)
        ax.text(angle, rmax * 0.88, name, color=style["color"], fontsize="small", ha="center",
                va="center", zorder=6, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    ax.set_ylim(0, rmax)
    ax.tick_params(axis="y", labelsize="x-small")
    ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize="small")
    ax.set_title(title or "neuron input directions $w_k/\\|w_k\\|$ weighted by cost share", pad=18)
    return _save(fig, path)
