"""The figures' plumbing: a Figure drawn by Agg, the atomic save, contour levels and boxes, ReLU boundaries.

Shared by the figure modules of `plots`; `relu_boundaries` is public.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import DataError
from ..files import atomic_write
from ..metrics import ACTIVE_SHARE

Map = Callable[[np.ndarray], np.ndarray]   # a denoiser's map (n, d) -> (n, d), as checks.check_denoisers gives it


_DPI = 150
_GRID = 200              # grid points per axis of the contour plots
_MAX_WIDTH = 11.0        # inches (1650 px at _DPI): wider figures are unreadable at a column's width
_PAD = 0.4               # contour box: bounding box enlarged by this fraction of its diameter
_MIN_SHARE = ACTIVE_SHARE  # units with a smaller share of the path cost draw no boundary (network.ACTIVE_SHARE)
_CHUNK = 2_000_000       # floats per denoiser call on the plane of a high-dimensional triangle
_COORD_CMAP = "coolwarm"
_NORM_CMAP = "YlOrRd"


# ---------------------------------------------------------------- figure plumbing


def _target(path) -> Path:
    """The output path (".png" added when there is no suffix), its folder created."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _figure(figsize, *, dpi: int = _DPI) -> Figure:
    """A figure drawn straight by Agg at the saving resolution `dpi`.

    No pyplot, so no backend: its figure manager and the garbage collection it runs on every close cost time,
    and a Figure nobody refers to any more is simply freed (nothing to close). The layout is measured at the
    resolution it is saved at.
    """
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, *, tight: bool = True) -> Path:
    """Tight layout once (unless the figure placed its axes itself: tight=False), then write `fig` (at its dpi)
    to a temporary file beside `path` and rename it over `path`."""
    path = _target(path)
    # One measuring pass, then one drawing pass: the "tight" layout engine measures every label twice and draws
    # the figure once more without rendering before the real draw; bbox_inches="tight" also draws twice, and the
    # constrained layout iterates over every text bounding box.
    if tight:
        fig.tight_layout()
        fig.set_layout_engine(None)   # tight_layout() leaves a placeholder engine, which makes savefig draw twice
    fmt = path.suffix[1:].lower()
    # zlib level 3, the fastest strategy's best: quicker than the default 6 for slightly larger files
    extra = {"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=fig.dpi, **extra))


def _wrapped(title: str, width: int = 64) -> str:
    """A title broken into lines of at most `width` characters: a 7-inch figure's title line holds about 64."""
    return textwrap.fill(title, width, break_long_words=False, break_on_hyphens=False)


def _apply(h: Map, y: np.ndarray, name: str) -> np.ndarray:
    """h(y) as float64, checked to have the shape of y."""
    out = np.asarray(h(y), dtype=np.float64)
    if out.shape != y.shape:
        raise DataError(f"denoiser {name!r}: expected output shape {y.shape}, got {out.shape}; "
                        "a denoiser maps (n, d) arrays to (n, d) arrays")
    return out


def _levels(arrays, *, n: int = 20, lower: float | None = None, floor: float = 0.0) -> np.ndarray:
    """About n rounded, increasing contour levels covering the finite values of all `arrays`.

    `lower` pins the bottom level; `floor` is the smallest span (a constant field gets a band).
    """
    vals = np.concatenate([np.ravel(a) for a in arrays])
    vals = vals[np.isfinite(vals)]
    lo = float(vals.min()) if vals.size else 0.0
    hi = float(vals.max()) if vals.size else 1.0
    if lower is not None:
        lo = lower
    span = max(hi - lo, floor, 1e-9 * max(abs(lo), abs(hi), 1.0))
    if hi - lo < span:
        mid = lo + span / 2 if lower is not None else (lo + hi) / 2
        lo, hi = mid - span / 2, mid + span / 2
    levels = MaxNLocator(n).tick_values(lo, hi)
    step = levels[1] - levels[0]
    if lower is not None:
        levels = np.r_[lower, levels[levels > lower]]
    else:
        # round values (plateaus at clean-point coordinates) fall mid-band, not on a boundary,
        # where float round-off would paint them in stripes of two colours
        levels = np.r_[levels - step / 2, levels[-1] + step / 2]
    if levels[0] > lo:                             # rounding may leave the extremes just outside
        levels = np.r_[levels[0] - step, levels]
    if levels[-1] < hi:
        levels = np.r_[levels, levels[-1] + step]
    return levels


def _box(z: np.ndarray, rho: float | None):
    """Limits of the bounding box of z (N, 2) enlarged on every side by _PAD of its diameter."""
    lo, hi = z.min(axis=0), z.max(axis=0)
    pad = max(_PAD * float(np.linalg.norm(hi - lo)), 1.5 * (rho or 0.0))
    pad = pad if pad > 0 else 1.0
    return (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad)


def _figsize(xlim, ylim, rows: int, cols: int) -> tuple[float, float]:
    """Figure size whose equal-aspect panels (about 3.6 in wide, plus a colorbar and labels; narrower where `cols`
    of them would pass _MAX_WIDTH) fill their rows."""
    aspect = min(max((ylim[1] - ylim[0]) / (xlim[1] - xlim[0]), 0.4), 2.5)
    scale = min(1.0, _MAX_WIDTH / (5.3 * cols))
    return 5.3 * cols * scale, (3.5 * aspect + 0.9) * scale * rows + 0.8


def _grid(xlim, ylim):
    """Meshgrid (G, G) arrays and the flattened (G*G, 2) points."""
    Z0, Z1 = np.meshgrid(np.linspace(*xlim, _GRID), np.linspace(*ylim, _GRID))
    return Z0, Z1, np.column_stack([Z0.ravel(), Z1.ravel()])  # (G*G, 2)


# ---------------------------------------------------------------- ReLU boundaries


def relu_boundaries(w, b, xlim, ylim) -> list[tuple[tuple[float, float], tuple[float, float]] | None]:
    """Segments of the lines {y : w_k^T y + b_k = 0} inside the box xlim x ylim.

    Parameters
    ----------
    w : (K, 2) input weights; b : (K,) biases; xlim, ylim : (lo, hi) of the box.

    Returns
    -------
    One entry per unit: ((x0, y0), (x1, y1)), the endpoints on the box's border, or None when
    w_k = 0, the line misses the box, or it only touches it at a point.
    """
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 2 or b.shape != (w.shape[0],):
        raise DataError(f"relu_boundaries: expected w of shape (K, 2) and b of shape (K,), "
                        f"got {w.shape} and {b.shape}")
    lo = np.array([xlim[0], ylim[0]], dtype=np.float64)
    hi = np.array([xlim[1], ylim[1]], dtype=np.float64)
    return [_clip_line(wk, bk, lo, hi) for wk, bk in zip(w, b)]


def _clip_line(wk: np.ndarray, bk: float, lo: np.ndarray, hi: np.ndarray):
    """Clip the line wk^T y + bk = 0 to the box [lo, hi] (Liang-Barsky on an unbounded line)."""
    norm = float(np.hypot(wk[0], wk[1]))
    if not (np.isfinite(norm) and norm > 0 and np.isfinite(bk)):
        return None
    n = wk / norm                                  # unit normal
    p = -(bk / norm) * n                           # the line's point closest to the origin
    t = np.array([-n[1], n[0]])                    # unit direction along the line
    t_lo, t_hi = -np.inf, np.inf
    for i in range(2):
        if t[i] == 0:
            if not lo[i] <= p[i] <= hi[i]:
                return None
            continue
        s0, s1 = sorted(((lo[i] - p[i]) / t[i], (hi[i] - p[i]) / t[i]))
        t_lo, t_hi = max(t_lo, s0), min(t_hi, s1)
    if not t_lo < t_hi:
        return None
    q0, q1 = p + t_lo * t, p + t_hi * t
    return (float(q0[0]), float(q0[1])), (float(q1[0]), float(q1[1]))


def _boundary_lines(net, xlim, ylim, *, U=None, x_bar=None):
    """(segments, alphas) of the units of `net` with cost share >= _MIN_SHARE, alpha = share / max share.

    With U (D, 2) and x_bar (D,), the boundaries are those restricted to the plane x_bar + U z:
    {z : (U^T w_k)^T z + (w_k^T x_bar + b_k) = 0}.
    """
    w = net.w.detach().cpu().numpy().astype(np.float64)         # (K, d)
    b = net.b.detach().cpu().numpy().astype(np.float64)         # (K,)
    costs = net.unit_costs().detach().cpu().numpy().astype(np.float64)  # (K,)
    total = costs.sum()
    if not total > 0:
        return [], []
    share = costs / total                                       # (K,)
    if U is not None:
        w, b = w @ U, w @ x_bar + b                             # (K, 2), (K,)
    segments, alphas = [], []
    for seg, s in zip(relu_boundaries(w, b, xlim, ylim), share):
        if seg is not None and s >= _MIN_SHARE:
            segments.append(seg)
            alphas.append(min(1.0, s / share.max()))
    return segments, alphas
