"""Pictures of denoisers (docs/theory.md 2, 4, 5): each draws one figure, writes it atomically and returns its Path.

    curve_1d            h(y) against y for 1-D data, flat zones and a rug of noisy samples
    curve_on_line       the same along the line through collinear points in R^D
    contours_2d         filled contours of h_0, h_1 over the plane, ReLU boundaries, rho circles
    plane_contours      the same on the plane through three points in R^D (docs/theory.md 5, digits)
    denoiser_figure     whichever of the four fits the data
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from ..checks import check_denoisers, check_nets, check_points, check_rho
from ..errors import DataError
from ..geometry import plane_basis, span_basis
from .base import (_CHUNK, _COORD_CMAP, _NORM_CMAP, Map, _apply, _boundary_lines, _box, _figsize, _figure,
                   _grid, _levels, _save, _wrapped)

if TYPE_CHECKING:
    from ..estimators import Denoiser
    from ..network import ShallowDenoiser


# ---------------------------------------------------------------- shared panel drawing


def _decorate_plane(ax, z: np.ndarray, rho: float | None, lines, xlim, ylim, labels) -> None:
    """Clean points z (N, 2), rho circles and ReLU boundary segments on a contour panel."""
    segments, alphas = lines
    if segments:
        colors = [(0.0, 0.0, 0.0, a) for a in alphas]
        lw = 1.0 if len(segments) <= 64 else 0.5   # wide networks: thinner lines
        ax.add_collection(LineCollection(segments, colors=colors, linewidths=lw, zorder=3), autolim=False)
    if rho:    # above the points, which shrink to dots: a circle smaller than a marker would hide under it
        for zn in z:
            ax.add_patch(Circle(tuple(zn), rho, fill=False, ec="black", lw=1.0, zorder=6))
    ax.plot(z[:, 0], z[:, 1], "o", zorder=5, **_point_style(rho))
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_aspect("equal")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def _point_style(rho: float | None) -> dict:
    """Clean points: hollow circles, or black dots inside the rho circles when those are drawn."""
    return dict(ms=2, mfc="black", mec="black") if rho else dict(ms=6, mfc="white", mec="black")


def _plane_legend(fig, rho: float | None, has_lines: bool, title: str) -> None:
    """One legend for the whole figure, below the panels, and the figure's title."""
    if title:
        fig.suptitle(title)
    handles = [Line2D([], [], ls="", marker="o", label="clean points", **_point_style(rho))]
    if rho:
        handles.append(Line2D([], [], ls="", marker="o", ms=9, mfc="none", mec="black", mew=1.0,
                              label=f"flat zone, radius $\\rho$ = {rho:.3g}"))
    if has_lines:
        handles.append(Line2D([], [], color="black", lw=1.0, label="ReLU boundary (alpha ∝ cost share)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small", frameon=False)


def _filled(fig, ax, Z0, Z1, F, levels, cmap: str, title: str, label: str) -> None:
    """Filled contours of F with a colorbar as tall as the panel, ticked at round values.

    A diverging map (_COORD_CMAP: output coordinates, which take both signs) is centred on 0 with limits
    symmetric about it, so white means 0 and equal colour depth means equal |value| on either side; the
    sequential map of a norm starts at the bottom level.
    """
    if cmap == _COORD_CMAP:
        m = float(max(abs(levels[0]), abs(levels[-1])))
        norm = Normalize(vmin=-m, vmax=m)
    else:
        norm = Normalize(vmin=float(levels[0]), vmax=float(levels[-1]))
    cs = ax.contourf(Z0, Z1, F, levels=levels, cmap=cmap, norm=norm)
    cax = ax.inset_axes([1.04, 0.0, 0.05, 1.0])        # follows the panel's box once its aspect is applied
    bar = fig.colorbar(cs, cax=cax, label=label)
    ticks = MaxNLocator(6).tick_values(levels[0], levels[-1])
    bar.set_ticks(ticks[(ticks >= levels[0]) & (ticks <= levels[-1])])
    ax.set_title(title, fontsize="medium")


# ---------------------------------------------------------------- 1. univariate curves


def curve_1d(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
             samples=None, title: str = "") -> Path:
    """h(y) against y for 1-D data (docs/theory.md 2).

    Parameters
    ----------
    path : output file (PNG unless the suffix says otherwise).
    denoisers : name -> denoiser on (n, 1) arrays (an object with `predict`, or a callable), one line each.
    points : (N, 1) clean points, drawn on the diagonal; the plotted range is
        [x_1 - m, x_N + m] with m = max(0.15 (x_N - x_1), 0.1).
    rho : flat-zone radius; shades [x_n - rho, x_n + rho] when given.
    samples : (N, M, 1) noisy samples (any shape with one coordinate), drawn as a rug.
    """
    maps = check_denoisers(denoisers, at_least_one=False)
    x = np.sort(check_points(points, name="points", d=1)[:, 0])  # (N,)
    rug = None if samples is None else _check_rug(samples)
    return _curve(path, maps, x, check_rho(rho), rug, title, ("noisy input $y$", "denoiser output $h(y)$"))


def curve_on_line(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
                  title: str = "") -> Path:
    """`curve_1d` along the line through collinear points in R^D (docs/theory.md 4.1, r = 1).

    Plots t -> u^T (h(x_bar + t u) - x_bar) against t, with u the line's unit direction.
    """
    maps = check_denoisers(denoisers, at_least_one=False)
    x = check_points(points, name="points")                      # (N, D)
    rho = check_rho(rho)
    x_bar = x.mean(axis=0)
    basis = span_basis(x - x_bar)                                # (D, r)
    if basis.shape[1] != 1:
        raise DataError(f"points: curve_on_line needs collinear points (affine dimension 1), got affine "
                        f"dimension {basis.shape[1]}; use denoiser_figure, which picks the picture that fits")
    u = basis[:, 0]                                              # (D,)
    along = {name: (lambda t, h=h, name=name: (_apply(h, x_bar + t @ u[None], name) - x_bar) @ u[:, None])
             for name, h in maps.items()}
    return _curve(path, along, np.sort((x - x_bar) @ u), rho, None, title,
                  ("position along the line $t$, input $y = \\bar x + t u$", "$u^T(h(y) - \\bar x)$"))


def _curve(path, maps: Mapping[str, Map], x: np.ndarray, rho: float | None, rug, title: str, labels) -> Path:
    """The figure of `curve_1d` for checked inputs: sorted clean coordinates x (N,), the rug (n,) or None,
    the axis labels (x, y)."""
    m = max(0.15 * (x[-1] - x[0]), 0.1)
    y = np.linspace(x[0] - m, x[-1] + m, 1201)[:, None]         # (n, 1)
    outputs = {name: _apply(h, y, name)[:, 0] for name, h in maps.items()}
    fig = _figure((7, 5))
    ax = fig.subplots()
    if rho:
        for i, xn in enumerate(x):
            ax.axvspan(xn - rho, xn + rho, color="gold", alpha=0.3, lw=0,
                       label=f"flat zones $x_n \\pm \\rho$, $\\rho$ = {rho:.3g}" if i == 0 else None)
    ax.plot(y[:, 0], y[:, 0], ls="--", color="grey", lw=1.0, label="identity")
    for i, (name, hy) in enumerate(outputs.items()):
        # curves that coincide (a trained net on its closed form) stay visible: the first wide and pale, each
        # later one thinner and dashed on top of it
        style = _CURVE_STYLES[min(i, len(_CURVE_STYLES) - 1)] if len(outputs) > 1 else dict(lw=1.8)
        ax.plot(y[:, 0], hy, **style, color=f"C{i}", label=name, zorder=3 + i)
    ax.plot(x, x, "o", ms=6, mfc="white", mec="black", zorder=5, label="clean points")
    if rug is not None:
        ax.plot(rug, np.full_like(rug, 0.02), "|", ms=10, color="black", alpha=0.25,
                transform=ax.get_xaxis_transform(), label="noisy samples")
    ax.set_xlim(y[0, 0], y[-1, 0])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(_wrapped(title))
    return _save(fig, path)


_CURVE_STYLES = (dict(lw=4.0, alpha=0.5, ls="-"), dict(lw=1.6, ls="--"), dict(lw=1.4, ls=":"), dict(lw=1.2, ls="-."))


def _check_rug(samples) -> np.ndarray:
    """Noisy 1-D samples (N, M, 1), (N, M) or (n,) flattened; at most 20000 kept (even stride)."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 3 and s.shape[-1] != 1:
        raise DataError(f"samples: expected shape (N, M, 1) for 1-D data, got {s.shape}")
    s = s.ravel()
    s = s[np.isfinite(s)]
    return s[:: max(1, math.ceil(s.size / 20000))]


# ---------------------------------------------------------------- 2. planar contours


def contours_2d(path, denoisers: Mapping[str, Denoiser], points, *, rho: float | None = None,
                nets: Mapping[str, ShallowDenoiser] | None = None, title: str = "") -> Path:
    """Filled contours of the output coordinates h_0 and h_1 over the plane (docs/theory.md 4, 5).

    One row per denoiser, two panels (h_0, h_1), over a 200 x 200 grid of the points' bounding
    box enlarged on every side by 40% of its diameter. Colour scales are shared down each
    column. The ReLU boundaries {y : w_k^T y + b_k = 0} of nets[name] are drawn with alpha
    proportional to the unit's share of the path cost (shares < 1e-3 skipped), with the clean
    points and circles of radius rho around them.
    """
    maps = check_denoisers(denoisers, at_least_one=True)
    x = check_points(points, name="points", d=2)                 # (N, 2)
    rho = check_rho(rho)
    nets = check_nets(nets, list(maps), d=2)
    xlim, ylim = _box(x, rho)
    Z0, Z1, grid = _grid(xlim, ylim)
    H = {name: _apply(h, grid, name).reshape(*Z0.shape, 2) for name, h in maps.items()}  # (G, G, 2)
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
    maps = check_denoisers(denoisers, at_least_one=True)
    x = check_points(points, name="points")                      # (N, D)
    rho = check_rho(rho)
    x_bar, U = plane_basis(x)                                   # (D,), (D, 2)
    nets = check_nets(nets, list(maps), d=x.shape[1])
    z = (x - x_bar) @ U                                          # (N, 2)
    xlim, ylim = _box(z, rho)
    Z0, Z1, grid = _grid(xlim, ylim)
    H = {name: _plane_outputs(h, name, x_bar, U, grid) for name, h in maps.items()}
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
        panels = [(f"{name}\nin-plane output $u_{i}^T(h - \\bar x)$", f"$u_{i}^T(h - \\bar x)$",
                   _COORD_CMAP) for i in range(2)]
        panels.append((f"{name}\nout-of-plane $\\|(I - UU^T)(h - \\bar x)\\|$", "out-of-plane norm",
                       _NORM_CMAP))
        for i, (panel_title, label, cmap) in enumerate(panels):
            ax = axes[r, i]
            _filled(fig, ax, Z0, Z1, F[..., i], levels[i], cmap, panel_title, label)
            _decorate_plane(ax, z, rho, lines, xlim, ylim, ("plane coordinate $z_0$", "plane coordinate $z_1$"))
        has_lines = has_lines or bool(lines[0])
    _plane_legend(fig, rho, has_lines, title)
    return _save(fig, path)


def _plane_outputs(h: Map, name: str, x_bar: np.ndarray, U: np.ndarray, z: np.ndarray) -> np.ndarray:
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


# ---------------------------------------------------------------- the picture that fits the data


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
