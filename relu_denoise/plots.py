"""Figures for the command-line runner (design.md, `plots`): matplotlib Figures drawn by Agg, no pyplot.

Every public function draws one figure, writes it atomically (`files.atomic_write`: a temporary
name in the same folder, then a rename) and returns the Path it wrote; the figure is never
registered with pyplot, so there is nothing to close. A *denoiser* is any
callable numpy (n, d) -> numpy (n, d), e.g. ``net.predict`` or an estimator of `estimators`.

    curve_1d            h(y) against y for 1-D data, flat zones and a rug of noisy samples
    contours_2d         filled contours of h_0, h_1 over the plane, ReLU boundaries, rho circles
    plane_contours      the same on the plane through three points in R^D (docs/theory.md 5, digits)
    denoiser_figure     whichever of curve_1d, contours_2d, curve_on_line, plane_contours fits the data
    training_curves     loss, cost, max residual, multiplier, learning rate against the step
    mse_vs_noise        test MSE against the noise level, log-log, with confidence bands
    direction_histogram polar histogram of neuron directions weighted by cost share (docs/theory.md 6)
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING


@contextmanager
def _gc_paused():
    """Run the block (or, as `@_gc_paused()`, the function) with the cyclic garbage collector off.

    A full collection walks every object of the process, some 300k once torch and scipy are loaded: about 0.14 s
    on one core. Importing matplotlib and drawing a figure each allocate enough long-lived objects (classes,
    artists) to trigger one, which finds next to no garbage; a finished figure's cycles go at a later collection.
    So the imports below and every public drawing function run with it paused, and it is restored as it was.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


with _gc_paused():
    import matplotlib

    matplotlib.use("Agg")  # figures are files, never windows (also for pyplot, where a caller imports it)

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle
    from matplotlib.ticker import MaxNLocator

from .checks import check_points, check_series, check_vector  # noqa: E402
from .files import atomic_write  # noqa: E402
from .geometry import affine_hull, plane_basis, span_basis  # noqa: E402
from .errors import DataError  # noqa: E402

if TYPE_CHECKING:
    from .network import ShallowDenoiser

Denoiser = Callable[[np.ndarray], np.ndarray]

__all__ = ["curve_1d", "contours_2d", "plane_contours", "training_curves", "mse_vs_noise",
           "direction_histogram", "relu_boundaries"]

_DPI = 150
_GRID = 200              # grid points per axis of the contour plots
_PAD = 0.4               # contour box: bounding box enlarged by this fraction of its diameter
_MIN_SHARE = 1e-3        # units with a smaller share of the path cost draw no boundary
_CHUNK = 2_000_000       # floats per denoiser call on the plane of a high-dimensional triangle
_COORD_CMAP = "coolwarm"
_NORM_CMAP = "YlOrRd"


# ---------------------------------------------------------------- gates (once per public entry)


def _check_rho(rho) -> float | None:
    """None, or a finite float >= 0 (0 draws no flat zones)."""
    if rho is None:
        return None
    try:
        v = float(rho)
    except (TypeError, ValueError):
        raise DataError(f"rho: expected a number or None, got {rho!r}") from None
    if not np.isfinite(v) or v < 0:
        raise DataError(f"rho: must be >= 0, got {rho}")
    return v


def _check_denoisers(denoisers, *, at_least_one: bool) -> dict[str, Denoiser]:
    if not isinstance(denoisers, Mapping):
        raise DataError(f"denoisers: expected a dict name -> callable, got {type(denoisers).__name__}")
    bad = [str(k) for k, h in denoisers.items() if not callable(h)]
    if bad:
        raise DataError(f"denoisers: values must be callables (n, d) -> (n, d); not callable: {', '.join(bad)}")
    if at_least_one and not denoisers:
        raise DataError("denoisers: expected at least one denoiser, got an empty dict")
    return {str(k): h for k, h in denoisers.items()}


def _check_nets(nets, names: Sequence[str], *, d: int) -> dict[str, ShallowDenoiser]:
    """nets[name] for names among the denoisers, each of input dimension d (None entries dropped)."""
    if nets is None:
        return {}
    if not isinstance(nets, Mapping):
        raise DataError(f"nets: expected a dict name -> ShallowDenoiser, got {type(nets).__name__}")
    unknown = sorted(str(k) for k in nets if k not in names)
    if unknown:
        raise DataError(f"nets: no denoiser named {', '.join(unknown)}; known: {', '.join(names)}")
    out = {}
    for name, net in nets.items():
        if net is None:
            continue
        if not all(hasattr(net, attr) for attr in ("w", "b", "unit_costs")):
            raise DataError(f"nets[{name!r}]: expected a ShallowDenoiser, got {type(net).__name__}")
        if tuple(net.w.shape[1:]) != (d,):
            raise DataError(f"nets[{name!r}]: expected input dimension {d}, got weights w of shape "
                            f"{tuple(net.w.shape)}")
        out[name] = net
    return out


# ---------------------------------------------------------------- figure plumbing


def _target(path) -> Path:
    """The output path (".png" added when there is no suffix), its folder created."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _figure(figsize) -> Figure:
    """A figure drawn straight by Agg at the saving resolution.

    No pyplot: its figure manager and the garbage collection it runs on every close cost time, and a Figure
    nobody refers to any more is simply freed (nothing to close). The layout is measured at _DPI, as it is saved.
    """
    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    """Tight layout once, then write `fig` to `<name>.tmp<suffix>` beside `path` and rename it over `path`."""
    path = _target(path)
    # One measuring pass, then one drawing pass. The "tight" layout engine measured every label twice and drew
    # the figure once more without rendering before the real draw; bbox_inches="tight" also draws twice, and the
    # constrained layout cost about 0.3 s more per fit, iterating over every text bounding box.
    fig.tight_layout()
    fig.set_layout_engine(None)   # tight_layout() leaves a placeholder engine, which makes savefig draw twice
    fmt = path.suffix[1:].lower()
    # zlib level 3 (the fastest strategy's best): about 15 ms less per figure than the default 6, files ~15% larger
    extra = {"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=_DPI, **extra))


def _apply(h: Denoiser, y: np.ndarray, name: str) -> np.ndarray:
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
    """Figure size whose equal-aspect panels (4.2 in wide, plus a colorbar) fill their rows."""
    aspect = min(max((ylim[1] - ylim[0]) / (xlim[1] - xlim[0]), 0.4), 2.5)
    return 5.3 * cols, (3.9 * aspect + 0.8) * rows + 0.8


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


# ---------------------------------------------------------------- shared panel drawing


def _decorate_plane(ax, z: np.ndarray, rho: float | None, lines, xlim, ylim, labels) -> None:
    """Clean points z (N, 2), rho circles and ReLU boundary segments on a contour panel."""
    segments, alphas = lines
    if segments:
        colors = [(0.0, 0.0, 0.0, a) for a in alphas]
        lw = 1.0 if len(segments) <= 64 else 0.5   # wide networks: thinner lines
        ax.add_collection(LineCollection(segments, colors=colors, linewidths=lw, zorder=3), autolim=False)
    if rho:
        for zn in z:
            ax.add_patch(Circle(tuple(zn), rho, fill=False, ec="black", ls="--", lw=1.0, zorder=4))
    ax.plot(z[:, 0], z[:, 1], "o", ms=6, mfc="white", mec="black", zorder=5)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_aspect("equal")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def _plane_legend(fig, rho: float | None, has_lines: bool, title: str) -> None:
    """One legend for the whole figure, below the panels, and the figure's title."""
    if title:
        fig.suptitle(title)
    handles = [Line2D([], [], ls="", marker="o", ms=6, mfc="white", mec="black", label="clean points")]
    if rho:
        handles.append(Line2D([], [], color="black", ls="--", lw=1.0, label=f"$\\rho$ = {rho:.3g}"))
    if has_lines:
        handles.append(Line2D([], [], color="black", lw=1.0, label="ReLU boundary (alpha ∝ cost share)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small", frameon=False)


def _filled(fig, ax, Z0, Z1, F, levels, cmap: str, title: str, label: str) -> None:
    cs = ax.contourf(Z0, Z1, F, levels=levels, cmap=cmap)
    fig.colorbar(cs, ax=ax, label=label, shrink=0.9)
    ax.set_title(title, fontsize="medium")


# ---------------------------------------------------------------- 1. univariate curves


@_gc_paused()
def curve_1d(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
             samples=None, title: str = "") -> Path:
    """h(y) against y for 1-D data (docs/theory.md 2).

    Parameters
    ----------
    path : output file (PNG unless the suffix says otherwise).
    denoisers : name -> callable (n, 1) -> (n, 1), one line each.
    points : (N, 1) clean points, drawn on the diagonal; the plotted range is
        [x_1 - m, x_N + m] with m = max(0.15 (x_N - x_1), 0.1).
    rho : flat-zone radius; shades [x_n - rho, x_n + rho] when given.
    samples : (N, M, 1) noisy samples (any shape with one coordinate), drawn as a rug.
    """
    denoisers = _check_denoisers(denoisers, at_least_one=False)
    x = np.sort(check_points(points, name="points", d=1)[:, 0])  # (N,)
    rho = _check_rho(rho)
    rug = None if samples is None else _check_rug(samples)
    m = max(0.15 * (x[-1] - x[0]), 0.1)
    y = np.linspace(x[0] - m, x[-1] + m, 1201)[:, None]         # (n, 1)
    outputs = {name: _apply(h, y, name)[:, 0] for name, h in denoisers.items()}
    fig = _figure((7, 5))
    ax = fig.subplots()
    if rho:
        for i, xn in enumerate(x):
            ax.axvspan(xn - rho, xn + rho, color="gold", alpha=0.3, lw=0,
                       label=f"flat zones $x_n \\pm \\rho$, $\\rho$ = {rho:.3g}" if i == 0 else None)
    ax.plot(y[:, 0], y[:, 0], ls="--", color="grey", lw=1.0, label="identity")
    for name, hy in outputs.items():
        ax.plot(y[:, 0], hy, lw=1.8, label=name)
    ax.plot(x, x, "o", ms=6, mfc="white", mec="black", zorder=5, label="clean points")
    if rug is not None:
        ax.plot(rug, np.full_like(rug, 0.02), "|", ms=10, color="black", alpha=0.25,
                transform=ax.get_xaxis_transform(), label="noisy samples")
    ax.set_xlim(y[0, 0], y[-1, 0])
    ax.set_xlabel("noisy input $y$")
    ax.set_ylabel("denoiser output $h(y)$")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def curve_on_line(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
                  title: str = "") -> Path:
    """`curve_1d` along the line through collinear points in R^D (docs/theory.md 4.1, r = 1).

    Plots t -> u^T (h(x_bar + t u) - x_bar) against t, with u the line's unit direction.
    """
    x = check_points(points, name="points")                      # (N, D)
    x_bar = x.mean(axis=0)
    u = span_basis(x - x_bar)[:, 0]                              # (D,)
    along = {name: (lambda t, h=h, name=name: (_apply(h, x_bar + t @ u[None], name) - x_bar) @ u[:, None])
             for name, h in _check_denoisers(denoisers, at_least_one=False).items()}
    return curve_1d(path, along, (x - x_bar) @ u[:, None], rho=rho, title=title)


def _check_rug(samples) -> np.ndarray:
    """Noisy 1-D samples (N, M, 1), (N, M) or (n,) flattened; at most 20000 kept (even stride)."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 3 and s.shape[-1] != 1:
        raise DataError(f"samples: expected shape (N, M, 1) for 1-D data, got {s.shape}")
    s = s.ravel()
    s = s[np.isfinite(s)]
    return s[:: max(1, math.ceil(s.size / 20000))]


# ---------------------------------------------------------------- 2. planar contours


@_gc_paused()
def contours_2d(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
                nets: Mapping[str, ShallowDenoiser] | None = None, title: str = "") -> Path:
    """Filled contours of the output coordinates h_0 and h_1 over the plane (docs/theory.md 4, 5).

    One row per denoiser, two panels (h_0, h_1), over a 200 x 200 grid of the points' bounding
    box enlarged on every side by 40% of its diameter. Colour scales are shared down each
    column. The ReLU boundaries {y : w_k^T y + b_k = 0} of nets[name] are drawn with alpha
    proportional to the unit's share of the path cost (shares < 1e-3 skipped), with the clean
    points and circles of radius rho around them.
    """
    denoisers = _check_denoisers(denoisers, at_least_one=True)
    x = check_points(points, name="points", d=2)                 # (N, 2)
    rho = _check_rho(rho)
    nets = _check_nets(nets, list(denoisers), d=2)
    xlim, ylim = _box(x, rho)
    Z0, Z1, grid = _grid(xlim, ylim)
    H = {name: _apply(h, grid, name).reshape(*Z0.shape, 2) for name, h in denoisers.items()}  # (G, G, 2)
    levels = [_levels([F[..., i] for F in H.values()]) for i in range(2)]
    rows = len(H)
    fig = _figure(_figsize(xlim, ylim, rows, 2))
    axes = fig.subplots(rows, 2, squeeze=False)
    has_lines = False
    for r, (name, F) in enumerate(H.items()):
        lines = _boundary_lines(nets[name], xlim, ylim) if name in nets else ([], [])
        for i in range(2):
            ax = axes[r, i]
            _filled(fig, ax, Z0, Z1, F[..., i], levels[i], _COORD_CMAP,
                    f"{name}: output coordinate $h_{i}(y)$", f"$h_{i}$")
            _decorate_plane(ax, x, rho, lines, xlim, ylim, ("$y_0$", "$y_1$"))
        has_lines = has_lines or bool(lines[0])
    _plane_legend(fig, rho, has_lines, title)
    return _save(fig, path)


# ---------------------------------------------------------------- 3. contours on a plane in R^D


@_gc_paused()
def plane_contours(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
                   nets: Mapping[str, ShallowDenoiser] | None = None, title: str = "") -> Path:
    """The denoisers restricted to the plane through three points in R^D (docs/theory.md 4.1, 5).

    U (D, 2) is an orthonormal basis of the plane through the points, centred at their mean
    x_bar (SVD of the centred points; each column's largest entry made positive). Over a
    200 x 200 grid of plane coordinates z (box as in `contours_2d`), h is evaluated at
    x_bar + U z. Per denoiser, a row of three panels: the in-plane output coordinates
    U^T (h - x_bar) and the out-of-plane norm ||(I - U U^T)(h - x_bar)||. ReLU boundaries of
    nets[name] are drawn restricted to the plane: {z : (U^T w_k)^T z + (w_k^T x_bar + b_k) = 0}.
    """
    denoisers = _check_denoisers(denoisers, at_least_one=True)
    x = check_points(points, name="points")                      # (N, D)
    rho = _check_rho(rho)
    x_bar, U = plane_basis(x)                                   # (D,), (D, 2)
    nets = _check_nets(nets, list(denoisers), d=x.shape[1])
    z = (x - x_bar) @ U                                          # (N, 2)
    xlim, ylim = _box(z, rho)
    Z0, Z1, grid = _grid(xlim, ylim)
    H = {name: _plane_outputs(h, name, x_bar, U, grid) for name, h in denoisers.items()}
    H = {name: F.reshape(*Z0.shape, 3) for name, F in H.items()}  # (G, G, 3): two in-plane, out-of-plane
    scale = float(np.linalg.norm(z.max(axis=0) - z.min(axis=0)))
    levels = [_levels([F[..., i] for F in H.values()]) for i in range(2)]
    levels.append(_levels([F[..., 2] for F in H.values()], lower=0.0, floor=1e-3 * scale))  # round-off reads as 0
    rows = len(H)
    fig = _figure(_figsize(xlim, ylim, rows, 3))
    axes = fig.subplots(rows, 3, squeeze=False)
    has_lines = False
    for r, (name, F) in enumerate(H.items()):
        lines = (_boundary_lines(nets[name], xlim, ylim, U=U, x_bar=x_bar) if name in nets else ([], []))
        panels = [(f"{name}: in-plane output $u_{i}^T(h - \\bar x)$", f"$u_{i}^T(h - \\bar x)$",
                   _COORD_CMAP) for i in range(2)]
        panels.append((f"{name}: out-of-plane $\\|(I - UU^T)(h - \\bar x)\\|$", "out-of-plane norm",
                       _NORM_CMAP))
        for i, (panel_title, label, cmap) in enumerate(panels):
            ax = axes[r, i]
            _filled(fig, ax, Z0, Z1, F[..., i], levels[i], cmap, panel_title, label)
            _decorate_plane(ax, z, rho, lines, xlim, ylim, ("plane coordinate $z_0$", "plane coordinate $z_1$"))
        has_lines = has_lines or bool(lines[0])
    _plane_legend(fig, rho, has_lines, title)
    return _save(fig, path)




def _plane_outputs(h: Denoiser, name: str, x_bar: np.ndarray, U: np.ndarray, z: np.ndarray) -> np.ndarray:
    """For plane coordinates z (n, 2): [U^T(h - x_bar), ||(I - U U^T)(h - x_bar)||], shape (n, 3).

    Evaluated in chunks so that the (n, D) inputs never have to fit in memory at once.
    """
    n, D = z.shape[0], U.shape[0]
    out = np.empty((n, 3))
    step = max(1, _CHUNK // D)
    for s in range(0, n, step):
        y = x_bar + z[s:s + step] @ U.T                          # (n_s, D)
        e = _apply(h, y, name) - x_bar                           # (n_s, D)
        p = e @ U                                                # (n_s, 2)
        out[s:s + step, :2] = p
        out[s:s + step, 2] = np.linalg.norm(e - p @ U.T, axis=1)
    return out


# ---------------------------------------------------------------- 4. training curves


_TRAINING_PANELS = (
    (("loss",), "loss"),
    (("cost",), "path cost"),
    (("max_residual",), "max residual"),
    (("lambda", "multiplier"), "$\\lambda$ / multiplier"),
    (("lr",), "learning rate"),
)


def denoiser_figure(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
                    nets: Mapping[str, ShallowDenoiser] | None = None, samples=None, title: str = "") -> Path | None:
    """The picture of denoisers that suits the data's dimension, or None where there is none.

    d = 1: `curve_1d` (with the samples as a rug); d = 2: `contours_2d`; collinear data in R^D:
    `curve_on_line`; three points in R^D: `plane_contours`; anything else: None.
    """
    X = check_points(points, name="points")
    N, d = X.shape
    r = span_basis(X - X.mean(axis=0)).shape[1]
    if d == 1:
        return curve_1d(path, denoisers, X, rho=rho, samples=samples, title=title)
    if d == 2:
        return contours_2d(path, denoisers, X, rho=rho, nets=nets, title=title)
    if r == 1:
        return curve_on_line(path, denoisers, X, rho=rho, title=title)
    if r == 2 and N == 3:
        return plane_contours(path, denoisers, X, rho=rho, nets=nets, title=title)
    return None


@_gc_paused()
def training_curves(path, history: Mapping[str, Sequence[float]], *, x: str = "step", title: str = "",
                    references: Mapping[str, float] | None = None) -> Path:
    """Stacked panels, one per present key group: loss, cost, max_residual, lambda/multiplier, lr.

    history[x] (default "step") gives the x-axis; without it the record index is used. Entries
    may be None (not recorded at that step; the recorded values are joined). A panel uses a log
    y-axis when all its finite values are positive and span at least a decade. `references` (key -> value, e.g. {"cost": closed-form cost}) adds a
    dashed horizontal line to that key's panel.
    """
    if not isinstance(history, Mapping):
        raise DataError(f"history: expected a dict key -> list of numbers, got {type(history).__name__}")
    panels = [(keys, label) for keys, label in _TRAINING_PANELS if any(k in history for k in keys)]
    if not panels:
        known = ", ".join(k for keys, _ in _TRAINING_PANELS for k in keys)
        raise DataError(f"history: none of the keys {known} is present; got {', '.join(map(str, history)) or 'none'}")
    n = len(next(iter(history[k] for keys, _ in panels for k in keys if k in history)))
    xs = check_series(history[x], name=f"history[{x!r}]") if x in history else np.arange(n, dtype=np.float64)
    references = dict(references or {})
    fig = _figure((7.5, 1.1 + 2.0 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (keys, label) in zip(axes[:, 0], panels):
        series = {k: check_series(history[k], name=f"history[{k!r}]", n=xs.size) for k in keys if k in history}
        series = {k: v for k, v in series.items() if np.isfinite(v).any()} or series   # a column never recorded
        for k, v in series.items():
            kept = np.isfinite(v)                            # None entries: not recorded at that step
            ax.plot(xs[kept], v[kept], lw=1.3, marker="." if kept.sum() < 50 else None, label=k)
        refs = [(k, float(references[k])) for k in keys if k in references]
        for k, value in refs:
            ax.axhline(value, color="grey", ls="--", lw=1.0, label=f"{k} reference = {value:.4g}")
        finite = np.concatenate([v[np.isfinite(v)] for v in series.values()] + [np.array([r for _, r in refs])])
        if finite.size and np.all(finite > 0) and finite.max() >= 10 * finite.min():
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if len(series) > 1 or refs:
            ax.legend(fontsize="small", loc="best")
    axes[-1, 0].set_xlabel(x if x in history else "record")
    if title:
        axes[0, 0].set_title(title)
    return _save(fig, path)


# ---------------------------------------------------------------- 5. MSE against noise


@_gc_paused()
def mse_vs_noise(path, noise: Sequence[float], results: Mapping[str, Mapping[str, Sequence[float | None]]], *,
                 title: str = "") -> Path:
    """Test MSE against the noise level, log-log, one line per estimator (docs/theory.md 3).

    results[name] = {"mse": [...], "ci_low": [...], "ci_high": [...]}, each one value per noise
    level; None (or a missing key) marks an unavailable value. Non-positive values are not
    drawn (log axes). Confidence intervals are error bars joined by shaded bands.
    """
    sigma = check_vector(noise, name="noise")
    if sigma.size == 0 or np.any(sigma <= 0):
        raise DataError(f"noise: expected a non-empty list of levels > 0, got {list(noise)}")
    if not isinstance(results, Mapping) or not results:
        raise DataError("results: expected a non-empty dict name -> {'mse': [...], 'ci_low': [...], 'ci_high': [...]}")
    curves = {str(name): _mse_curve(r, name=str(name), n=sigma.size) for name, r in results.items()}
    positive = np.concatenate([c[np.isfinite(c)] for c in (v for trio in curves.values() for v in trio)])
    fig = _figure((7, 5))
    ax = fig.subplots()
    for i, (name, (mse, lo, hi)) in enumerate(curves.items()):
        color = f"C{i % 10}"
        if not np.any(np.isfinite(mse)):
            ax.add_line(Line2D([], [], color=color, marker="o", label=f"{name} (unavailable)"))
            continue
        ax.plot(sigma, mse, "-o", color=color, ms=5, lw=1.6, label=name)
        band = np.isfinite(lo) & np.isfinite(hi)
        bars = band & np.isfinite(mse)
        if bars.any():
            err = np.clip([mse[bars] - lo[bars], hi[bars] - mse[bars]], 0, None)
            ax.errorbar(sigma[bars], mse[bars], yerr=err, fmt="none", ecolor=color, capsize=3, lw=1)
        if band.any():
            ax.fill_between(sigma, np.where(band, lo, 1.0), np.where(band, hi, 1.0), where=band,
                            color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*_log_limits(sigma))
    ax.set_ylim(*_log_limits(positive if positive.size else np.array([1e-3, 1.0])))
    ax.set_xlabel("noise level $\\sigma$")
    ax.set_ylabel("test MSE $E\\|h(x + \\epsilon) - x\\|^2$")
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.1, which="minor")
    ax.legend(fontsize="small", loc="best")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _mse_curve(r, *, name: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mse, ci_low, ci_high), each (n,), unavailable or non-positive values as NaN."""
    if not isinstance(r, Mapping) or "mse" not in r:
        raise DataError(f"results[{name!r}]: expected a dict with key 'mse' (and optional 'ci_low', 'ci_high')")
    out = []
    for key in ("mse", "ci_low", "ci_high"):
        v = r.get(key)
        v = np.full(n, np.nan) if v is None else check_series(v, name=f"results[{name!r}][{key!r}]", n=n)
        out.append(np.where(v > 0, v, np.nan))
    return out[0], out[1], out[2]


def _log_limits(v: np.ndarray) -> tuple[float, float]:
    """Axis limits a little beyond the positive values v, in log space."""
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    f = (hi / lo) ** 0.05
    return lo / f, hi * f


# ---------------------------------------------------------------- 6. direction histogram


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
