"""Figures of the flow command (docs/theory.md 10): each draws one figure, writes it atomically and returns its
Path, or None where there is nothing to draw.

    flow_trajectories_2d   d = 2: trajectories over the denoiser's field h(y) - y, endpoints by class, the clean
                           points and the subset sums
    flow_classes           the endpoints per class (all four), and the virtual ones per |S|
    flow_distances         histogram of the endpoints' L-infinity distances to their nearest clean point

Each class has one colour (Okabe-Ito, safe for colour-blind readers) and one marker in every figure; the audit's
table is in plots.audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from ..checks import check_points, check_positive, check_vector
from ..errors import DataError
from ..flows import CLASSES
from .base import _apply, _figure, _save

# one colour (Okabe-Ito), marker and hatch per endpoint class, keys flows.CLASSES in order; the same in every figure
CLASS_STYLE = {
    "training": {"color": "#0072B2", "marker": "o", "hatch": ""},       # blue
    "virtual": {"color": "#E69F00", "marker": "s", "hatch": "//"},      # orange
    "boundary": {"color": "#009E73", "marker": "^", "hatch": ".."},     # bluish green
    "other": {"color": "#CC79A7", "marker": "X", "hatch": "xx"},        # reddish purple
}

_FIELD_GRID = 21          # arrows per axis of the field
_PAD = 0.08               # trajectory box: bounding box enlarged by this fraction of its span on every side
_ASPECT = (0.5, 1.3)      # and widened to a height-to-width ratio in this range
_FLOOR = 1e-6             # log distance axis: distances under this times the threshold share its first bin
_LOG_SPREAD = 100.0       # a log distance axis where the 10%-90% quantiles of the distances span two decades


# ---------------------------------------------------------------- input gates


def _check_classes(classes, *, n: int) -> np.ndarray:
    """One class name of CLASSES per endpoint, as a (n,) str array."""
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        raise DataError(f"classes: expected one class name per endpoint ({', '.join(CLASSES)}), "
                        f"got {type(classes).__name__}")
    cls = np.array([str(c) for c in classes])
    if cls.shape != (n,):
        raise DataError(f"classes: expected one class per endpoint ({n}), got {cls.size}")
    unknown = sorted(set(cls.tolist()) - set(CLASSES))
    if unknown:
        raise DataError(f"classes: unknown class {unknown[0]!r}; expected one of {', '.join(CLASSES)}")
    return cls


def _count(value, *, name: str) -> int:
    """A count: an integer >= 0 (a float with an integral value is accepted, as JSON may give it)."""
    try:
        ok = not isinstance(value, bool) and float(value) == int(value) and int(value) >= 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise DataError(f"{name}: must be an integer >= 0, got {value!r}")
    return int(value)


def _size(key, *, name: str, least: int) -> int:
    """A subset size |S| (a JSON key may be the string "2"), an integer >= least."""
    try:
        m = int(key) if not isinstance(key, bool) and float(key) == int(key) else None
    except (TypeError, ValueError, OverflowError):
        m = None
    if m is None or m < least:
        raise DataError(f"{name}: keys are subset sizes |S|, integers >= {least}; got {key!r}")
    return m


def _check_counts(counts) -> dict[str, int]:
    """class -> count for every class of CLASSES (a missing class counts 0)."""
    if not isinstance(counts, Mapping):
        raise DataError(f"counts: expected a dict class -> count ({', '.join(CLASSES)}), got {type(counts).__name__}")
    unknown = sorted(str(k) for k in counts if k not in CLASSES)
    if unknown:
        raise DataError(f"counts: unknown class {unknown[0]!r}; expected the classes {', '.join(CLASSES)}")
    return {c: _count(counts.get(c, 0), name=f"counts[{c!r}]") for c in CLASSES}


def _check_by_size(virtual_by_size, virtual: int) -> dict[int, int]:
    """|S| -> count of virtual endpoints, sorted by |S| (>= 2), summing to the virtual count."""
    if not isinstance(virtual_by_size, Mapping):
        raise DataError(f"virtual_by_size: expected a dict |S| -> count, got {type(virtual_by_size).__name__}")
    out = {_size(k, name="virtual_by_size", least=2): _count(v, name=f"virtual_by_size[{k!r}]")
           for k, v in virtual_by_size.items()}
    if out and sum(out.values()) != virtual:
        raise DataError(f"virtual_by_size: the counts sum to {sum(out.values())}, but counts['virtual'] is "
                        f"{virtual}; pass both from the same classification")
    return dict(sorted(out.items()))


def _check_trajectories(trajectories, n: int):
    """(index (k,), y (k, T, 2)) of a flows.Trajectories (or anything with index and y), None for None."""
    if trajectories is None:
        return None
    if not hasattr(trajectories, "index") or not hasattr(trajectories, "y"):
        raise DataError(f"trajectories: expected a flows.Trajectories (index, r, y), got {type(trajectories).__name__}")
    y = np.asarray(trajectories.y, dtype=np.float64)
    index = np.asarray(trajectories.index)
    if y.ndim != 3 or y.shape[2] != 2 or y.shape[1] == 0:
        raise DataError(f"trajectories.y: expected shape (k, T, 2) with T >= 1, got {y.shape}")
    if index.shape != (y.shape[0],) or (index.size and index.dtype.kind not in "iu"):
        raise DataError(f"trajectories.index: expected {y.shape[0]} integer indices (one per trajectory), "
                        f"got shape {index.shape} of {index.dtype}")
    if index.size and (index.min() < 0 or index.max() >= n):
        raise DataError(f"trajectories.index: indices must point into the {n} endpoints (0..{n - 1}), "
                        f"got {index.min()}..{index.max()}")
    if not np.all(np.isfinite(y)):
        raise DataError("trajectories.y: contains NaN or inf values")
    return index, y


def _check_subset_sums(subset_sums) -> np.ndarray:
    """Subset sums (n, 2) with |S| >= 2: an array of points, a flows.SubsetSums, or several of them."""
    if subset_sums is None:
        return np.zeros((0, 2))
    groups = [subset_sums] if hasattr(subset_sums, "points") else subset_sums
    if isinstance(groups, (list, tuple)) and groups and all(hasattr(g, "points") for g in groups):
        kept = [np.asarray(g.points, dtype=np.float64) for g in groups if g.m >= 2]
        if not kept:
            return np.zeros((0, 2))
        groups = np.concatenate(kept)
    if np.size(groups) == 0:
        return np.zeros((0, 2))
    return check_points(groups, name="subset_sums", d=2)


def _as_map(denoiser):
    """The denoiser's map (n, 2) -> (n, 2): its predict, or the callable itself."""
    f = denoiser.predict if callable(getattr(denoiser, "predict", None)) else denoiser
    if not callable(f):
        raise DataError(f"denoiser: expected an object with predict mapping (n, 2) arrays to (n, 2) arrays, "
                        f"or such a callable, got {type(denoiser).__name__}")
    return f


def _share(k: int, total: int) -> str:
    return f"{100 * k / total:.1f}%" if total else "n/a"


# ---------------------------------------------------------------- 1. trajectories over the field, d = 2


def flow_trajectories_2d(path, denoiser, points, trajectories, ends, classes, *, subset_sums=None,
                         title: str = "") -> Path | None:
    """The flow in the plane (docs/theory.md 10.1-10.3): the field h(y) - y of `denoiser` as arrows, the recorded
    trajectories as thin lines from a marked start, coloured by their endpoint's class, every endpoint in its
    class's colour and marker, the clean points and the subset sums (|S| >= 2) as hollow markers.

    Parameters
    ----------
    denoiser : an object with predict (n, 2) -> (n, 2), or such a callable (for a probability flow: the level
        whose field is to be shown).
    points : (N, 2) clean points; any other dimension draws nothing and returns None.
    trajectories : a flows.Trajectories (index (k,) into the ends, y (k, T, 2)), or None.
    ends : (n, 2) endpoints; classes : (n,) their classes, names from flows.CLASSES.
    subset_sums : (m, 2) points, a flows.SubsetSums or a list of them (sizes |S| < 2 are left out).
    """
    X = check_points(points, name="points")                                   # (N, d)
    if X.shape[1] != 2:
        return None
    f = _as_map(denoiser)
    Y = check_points(ends, name="ends", d=2)                                  # (n, 2)
    cls = _check_classes(classes, n=len(Y))
    paths = _check_trajectories(trajectories, len(Y))
    V = _check_subset_sums(subset_sums)                                       # (m, 2)
    xlim, ylim = _flow_box([X, Y, V] + ([paths[1].reshape(-1, 2)] if paths else []))
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    fig = _figure((4.8, 4.0 * aspect + 2.1))
    ax, below = fig.subplots(2, 1, height_ratios=[4.0 * aspect, 1.1])
    layers = [_draw_field(ax, f, xlim, ylim)]
    if paths is not None:
        layers += _draw_paths(ax, paths, cls)
    ends_ = _draw_ends(ax, Y, cls)
    layers.append(ax.plot(X[:, 0], X[:, 1], ls="", marker="o", ms=11, mfc="none", mec="black", mew=1.6,
                          zorder=7, label="clean points $x_n$")[0])
    if len(V):
        layers.append(ax.plot(V[:, 0], V[:, 1], ls="", marker="D", ms=11, mfc="none", mec="0.25", mew=1.3,
                              zorder=6, label="subset sums, $|S| \\geq 2$")[0])
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("$y_0$ (data units)")
    ax.set_ylabel("$y_1$ (data units)")
    ax.set_title(title or "flow endpoints over the field $h(y) - y$", fontsize="medium")
    below.axis("off")                                  # the legends' own panel: they never cover the flow
    kw = {"fontsize": "small", "frameon": False}
    below.add_artist(below.legend(handles=layers, loc="upper right", bbox_to_anchor=(0.48, 1.0), **kw))
    below.legend(handles=ends_, loc="upper left", bbox_to_anchor=(0.52, 1.0), title=f"endpoints ({len(Y)})",
                 title_fontsize="small", **kw)
    return _save(fig, path)


def _flow_box(arrays):
    """Limits of the bounding box of every point drawn, enlarged by _PAD of its span on every side, then widened
    about its centre to a height-to-width ratio in [_ASPECT[0], _ASPECT[1]] (so collinear points get a box too)."""
    Z = np.concatenate([a for a in arrays if len(a)])                          # (n, 2)
    lo, hi = Z.min(axis=0), Z.max(axis=0)
    span = (1 + 2 * _PAD) * (hi - lo)                                          # (2,)
    w, h = span if span.max() > 0 else (1.0, 1.0)                              # one point: a unit box around it
    w, h = max(w, h / _ASPECT[1]), max(h, w * _ASPECT[0])
    c = (lo + hi) / 2
    return (c[0] - w / 2, c[0] + w / 2), (c[1] - h / 2, c[1] + h / 2)


def _draw_field(ax, f, xlim, ylim):
    """h(y) - y on a _FIELD_GRID square grid as light arrows, the longest one 0.9 grid steps long."""
    g0, g1 = np.linspace(*xlim, _FIELD_GRID), np.linspace(*ylim, _FIELD_GRID)
    Z0, Z1 = np.meshgrid(g0, g1)
    grid = np.column_stack([Z0.ravel(), Z1.ravel()])                          # (G*G, 2)
    F = _apply(f, grid, "denoiser") - grid                                    # (G*G, 2)
    norm = np.linalg.norm(F, axis=1)
    top = float(norm[np.isfinite(norm)].max()) if np.isfinite(norm).any() else 0.0
    step = min(g0[1] - g0[0], g1[1] - g1[0])
    scale = top / (0.9 * step) if top > 0 else 1.0
    ax.quiver(Z0, Z1, F[:, 0].reshape(Z0.shape), F[:, 1].reshape(Z0.shape), color="0.6", angles="xy",
              scale_units="xy", scale=scale, width=0.0025, headwidth=4, headlength=4.5, zorder=1)
    return Line2D([], [], color="0.6", marker=r"$\rightarrow$", ms=12, ls="",
                  label="field $h(y) - y$")


def _draw_paths(ax, paths, cls: np.ndarray) -> list:
    """Each trajectory in its endpoint's class colour, its start as a small black dot."""
    index, y = paths                                                          # (k,), (k, T, 2)
    colors = [CLASS_STYLE[c]["color"] for c in cls[index]]
    ax.add_collection(LineCollection(list(y), colors=colors, linewidths=0.9, alpha=0.8, zorder=2), autolim=False)
    ax.plot(y[:, 0, 0], y[:, 0, 1], ls="", marker=".", ms=5, color="black", zorder=3)
    return [Line2D([], [], color="0.3", lw=0.9, label=f"{len(index)} recorded paths"),
            Line2D([], [], color="black", ls="", marker=".", ms=5, label="path start")]


def _draw_ends(ax, Y: np.ndarray, cls: np.ndarray) -> list:
    """Endpoints per class in the class's colour and marker; every class in the legend with its count."""
    handles = []
    for c in CLASSES:
        s = CLASS_STYLE[c]
        Yc = Y[cls == c]
        label = f"{c}: {len(Yc)} ({_share(len(Yc), len(Y))})"
        handles.append(ax.plot(Yc[:, 0], Yc[:, 1], ls="", marker=s["marker"], ms=5, color=s["color"], mec="white",
                               mew=0.4, alpha=0.9, zorder=5, label=label)[0])
    return handles


# ---------------------------------------------------------------- 2. endpoints per class


def flow_classes(path, counts, *, virtual_by_size=None, title: str = "") -> Path | None:
    """Endpoints per class (docs/theory.md 10.3) as bars, all four classes (zero bars too), each labelled with its
    count and share; beside them the virtual endpoints per subset size |S| when `virtual_by_size` is given.

    counts : class -> count (flows.Classification.counts; a missing class counts 0, an unknown one is refused).
    virtual_by_size : |S| -> count (Classification.virtual_by_size; JSON's string keys accepted), summing to
        counts["virtual"]. Returns None when there are no endpoints.
    """
    n = _check_counts(counts)
    by_size = None if virtual_by_size is None else _check_by_size(virtual_by_size, n["virtual"])
    total = sum(n.values())
    if total == 0:
        return None
    if by_size:
        fig = _figure((7.0, 3.4))
        ax, side = fig.subplots(1, 2, width_ratios=[4, max(len(by_size), 2) + 0.5])
    else:
        fig = _figure((4.2, 3.4))
        ax, side = fig.subplots(), None
    styles = [CLASS_STYLE[c] for c in CLASSES]
    _bars(ax, list(CLASSES), list(n.values()), total, [s["color"] for s in styles], [s["hatch"] for s in styles])
    ax.set_xlabel("endpoint class")
    ax.set_ylabel("endpoints")
    ax.set_title(f"endpoints by class (n = {total})", fontsize="medium")
    if side is not None:
        v = sum(by_size.values())
        s = CLASS_STYLE["virtual"]
        _bars(side, [str(m) for m in by_size], list(by_size.values()), v, s["color"], s["hatch"])
        side.set_xlabel("subset size $|S|$")
        side.set_ylabel("virtual endpoints")
        side.set_title(f"virtual points by $|S|$ (n = {v})", fontsize="medium")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _bars(ax, names: list[str], values: list[int], total: int, color, hatch) -> None:
    """Bars with their count and share of `total` above them; room left above the tallest for its label, and
    beside a lone bar (as wide as the bars of a pair)."""
    bars = ax.bar(names, values, width=0.7, color=color, hatch=hatch, edgecolor="black", linewidth=0.6)
    side = max(0.0, (2 - len(names)) / 2)
    ax.set_xlim(-0.6 - side, len(names) - 0.4 + side)
    ax.bar_label(bars, labels=[f"{k}\n({_share(k, total)})" for k in values], fontsize="small", padding=2)
    ax.set_ylim(0, 1.3 * max(max(values), 1))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


# ---------------------------------------------------------------- 3. distances to the nearest clean point


def flow_distances(path, distances, threshold, *, title: str = "") -> Path | None:
    """Histogram of the endpoints' L-infinity distances to their nearest clean point (docs/theory.md 10.3), those
    within `threshold` (the training class) apart from the rest, the threshold as a vertical line.

    The distance axis is logarithmic where the distances spread over two decades (from their 10% to their 90%
    quantile, leaving out those under 1e-6 threshold: converged, to round-off); those then get a hatched bin of
    their own a decade below the smallest other one (exact hits, 0, among them). The count axis is logarithmic
    where a linear one would flatten the smallest bars. Returns None for no distances.
    """
    d = check_vector(distances, name="distances")                            # (n,)
    if np.any(d < 0):
        raise DataError(f"distances: must be >= 0 (L-infinity distances), got {float(d.min()):g}")
    tau = check_positive(threshold, name="threshold")
    if d.size == 0:
        return None
    tiny = d < _FLOOR * tau                                                  # converged, to round-off
    log = _spread(d[~tiny]) >= _LOG_SPREAD
    at = _pool_at(d[~tiny], tau) if log and tiny.any() else None
    edges = _log_edges(np.r_[d[~tiny], at or []]) if log else _linear_edges(d, tau)
    pooled = tiny if at is not None else np.zeros(d.size, dtype=bool)
    series = [(np.full(int(pooled.sum()), at), CLASS_STYLE["training"]["color"], "///",
               f"of which < {at or 0:.0e} (incl. 0): {int(pooled.sum())}"),
              (d[~pooled & (d <= tau)], CLASS_STYLE["training"]["color"], "",
               f"$\\leq \\tau$, training: {_tally(d <= tau)}"),
              (d[d > tau], "0.7", "", f"$> \\tau$: {_tally(d > tau)}")]
    fig = _figure((4.8, 3.7))
    ax = fig.subplots()
    bottom = np.zeros(len(edges) - 1)
    handles = []
    for values, color, hatch, label in (series[1:2] + series[:1] + series[2:]) if pooled.any() else series[1:]:
        k = np.histogram(values, edges)[0]
        handles.append(ax.bar(edges[:-1], k, np.diff(edges), bottom=bottom, align="edge", color=color,
                              hatch=hatch, edgecolor="black", lw=0.4, label=label))
        bottom = bottom + k
    handles.append(ax.axvline(tau, color="black", ls="--", lw=1.2, label=f"threshold $\\tau$ = {tau:g}"))
    if log:
        ax.set_xscale("log")
    _count_axis(ax, bottom)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("$L_\\infty$ distance to nearest clean point (data units)")
    ax.set_ylabel("endpoints")
    ax.set_title(title or f"endpoint distances (n = {d.size})", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2,
              frameon=False)
    return _save(fig, path)


def _tally(mask: np.ndarray) -> str:
    return f"{int(mask.sum())} ({_share(int(mask.sum()), mask.size)})"


def _spread(d: np.ndarray) -> float:
    """The ratio of the 90% to the 10% quantile of d (inf where the 10% one is 0, 1 for no values)."""
    if not d.size:
        return 1.0
    q10, q90 = np.quantile(d, [0.1, 0.9])
    return float(q90 / q10) if q10 > 0 else np.inf


def _pool_at(d: np.ndarray, tau: float) -> float:
    """Where the distances under _FLOOR tau are drawn on a log axis: a decade below the smallest other one
    (so no empty decades between), below the threshold's decade, and not under _FLOOR tau's decade."""
    low = 10.0 ** (np.floor(np.log10(d.min())) - 1) if d.size else np.inf
    return float(max(10.0 ** np.floor(np.log10(_FLOOR * tau)), min(low, 10.0 ** (np.floor(np.log10(tau)) - 1))))


def _linear_edges(d: np.ndarray, tau: float) -> np.ndarray:
    """About sqrt(n) bins (10 to 40) from 0 past the largest distance and the threshold."""
    bins = int(min(40, max(10, np.sqrt(d.size))))
    return np.linspace(0.0, 1.05 * max(float(d.max()), tau), bins + 1)


def _log_edges(e: np.ndarray) -> np.ndarray:
    """Six bins a decade, on edges aligned to the decades, covering the positive values e."""
    lo, hi = np.floor(6 * np.log10(e.min()) + 1e-9), np.ceil(6 * np.log10(e.max()) + 1e-9)
    return 10.0 ** (np.arange(lo, max(hi, lo + 1) + 1) / 6)


def _count_axis(ax, counts: np.ndarray) -> None:
    """A log count axis where the tallest bar is 30 times the shortest non-empty one, else linear from 0."""
    top = max(int(counts.max()), 1)
    least = int(counts[counts > 0].min()) if np.any(counts > 0) else 1
    if top >= 30 * least:                        # linear: the smallest bars would be under a pixel or two high
        ax.set_yscale("log")
        ax.set_ylim(0.7, top * 3)
    else:
        ax.set_ylim(0, top * 1.15)

