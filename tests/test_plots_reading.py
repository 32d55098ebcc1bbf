"""What a reader of the figures sees (issue "What a researcher sees"): every series visible, colour scales
centred where the data has a sign, axial directions on 0-180 degrees, legends inside the figure, the returned
network marked on training.png, rho circles above the points, figures no wider than a column can show.

Each test inspects the Figure the plots module saves (captured by wrapping its `_save`), not pixels."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from relu_denoise import plots
from relu_denoise.network import ShallowDenoiser
from relu_denoise.plots import denoisers as plot_denoisers
from relu_denoise.plots import directions as plot_directions
from relu_denoise.plots import runs as plot_runs
from relu_denoise.plots.base import _DPI, _MAX_WIDTH
from relu_denoise.recipe import load_recipe
from relu_denoise.workflows import closed_form_workflow, fit_workflow

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _capture(monkeypatch, module):
    """The Figures `module` saves, kept for inspection (still saved as usual)."""
    drawn, save = [], module._save
    monkeypatch.setattr(module, "_save", lambda fig, path, **kw: (drawn.append(fig), save(fig, path, **kw))[1])
    return drawn


def _obtuse_net():
    """The obtuse-simplex closed form at x0 = (0, 0), x1 = (2, 0), x2 = (0, 1) with rho = 0.1 (docs/theory.md 4.3)."""
    rho, a, w, b = 0.1, [], [], []
    for u, L in (((1.0, 0.0), 2.0), ((0.0, 1.0), 1.0)):
        s, u = L / (L - 2 * rho), np.array(u)
        a += [s * u, -s * u]
        w += [u, u]
        b += [-rho, -(L - rho)]
    return ShallowDenoiser.from_weights(a, w, b, None, None), rho


POINTS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])


# ---------------------------------------------------------------- contour figures


def test_coordinate_colour_scale_is_centred_on_zero_with_round_ticks(tmp_path, monkeypatch):
    """h_0 of the obtuse closed form runs from about -0.1 to 2.1: the diverging map's limits are symmetric about
    0 (white is 0), and the colorbar ticks are round numbers inside the drawn range."""
    drawn = _capture(monkeypatch, plot_denoisers)
    net, rho = _obtuse_net()
    plots.contours_2d(tmp_path / "c.png", {"closed form": net}, POINTS, rho=rho, nets={"closed form": net})
    fig = drawn[0]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    for ax in panels:
        (cs,) = [c for c in ax.collections if hasattr(c, "levels")]
        lo, hi = float(cs.levels[0]), float(cs.levels[-1])
        assert cs.norm.vmin == pytest.approx(-max(abs(lo), abs(hi))) and cs.norm.vmax == pytest.approx(-cs.norm.vmin)
        (cax,) = ax.child_axes                                        # the colorbar, as tall as the panel
        ticks = cax.get_yticks()
        assert len(ticks) >= 3 and np.all((ticks >= lo) & (ticks <= hi))
        for t in ticks:                                               # at most two significant digits: round
            assert t == 0 or np.isclose(t, float(f"{t:.2g}"), rtol=0, atol=1e-12)
        steps = np.diff(ticks)
        np.testing.assert_allclose(steps, steps[0])


def test_rho_circles_are_drawn_above_the_points(tmp_path, monkeypatch):
    """A flat zone of radius 0.1 on a 4-unit-wide panel is smaller than a 6 pt marker: the circles are drawn
    above the points, which shrink to dots, so each circle stays visible."""
    drawn = _capture(monkeypatch, plot_denoisers)
    net, rho = _obtuse_net()
    plots.contours_2d(tmp_path / "c.png", {"closed form": net}, POINTS, rho=rho)
    ax = next(ax for ax in drawn[0].axes if ax.get_title())
    circles = [p for p in ax.patches if getattr(p, "radius", None) == pytest.approx(rho)]
    (points,) = [li for li in ax.get_lines() if li.get_marker() == "o"]
    assert len(circles) == 3
    assert min(c.get_zorder() for c in circles) > points.get_zorder()
    radius_pt = rho * ax.bbox.width / np.diff(ax.get_xlim())[0] * 72 / drawn[0].dpi
    assert points.get_markersize() / 2 < radius_pt                  # the dot fits inside its circle


def test_plane_figures_fit_a_column(tmp_path, monkeypatch):
    """Three panels (digits on a plane in R^64 draw this) were 2385 px wide; now at most _MAX_WIDTH inches."""
    drawn = _capture(monkeypatch, plot_denoisers)
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    points = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]]) @ U.T
    out = plots.plane_contours(tmp_path / "p.png", {"projection": lambda y: (y @ U) @ U.T}, points)
    width, _ = drawn[0].get_size_inches()
    assert width <= _MAX_WIDTH + 1e-9
    assert matplotlib.image.imread(out).shape[1] <= _MAX_WIDTH * _DPI


def test_coinciding_curves_stay_visible(tmp_path, monkeypatch):
    """A trained net on its closed form: the first curve wide and pale, the second dashed on top."""
    drawn = _capture(monkeypatch, plot_denoisers)
    x = np.array([[0.0], [0.5], [1.0]])
    h = lambda y: np.clip(np.round(2 * y) / 2, 0, 1)               # noqa: E731 (a staircase; both are the same)
    plots.curve_1d(tmp_path / "c.png", {"trained": h, "closed form": h}, x)
    ax = drawn[0].axes[0]
    lines = {li.get_label(): li for li in ax.get_lines()}
    first, second = lines["trained"], lines["closed form"]
    assert first.get_linewidth() > 2 * second.get_linewidth()
    assert first.get_linestyle() == "-" and second.get_linestyle() == "--"
    assert second.get_zorder() > first.get_zorder()


def test_a_line_in_r3_is_not_called_univariate(tmp_path, monkeypatch):
    """closed_form.png of 5 points on a line in R^3: titled with the geometry solved (univariate) and where it
    lives, with an axis along the line."""
    drawn = _capture(monkeypatch, plot_denoisers)
    recipe, base = load_recipe(RECIPES / "subspace.yaml")
    outcome = closed_form_workflow(recipe, base, out=tmp_path / "run")
    assert outcome.summary.reference.form.geometry == "univariate"
    ax = drawn[0].axes[0]
    assert ax.get_title() == "univariate, on a line in R^3, empirical rho"
    assert ax.get_xlabel().startswith("position along the line")


# ---------------------------------------------------------------- directions


def test_directions_are_axial_on_half_a_disc(tmp_path, monkeypatch):
    """w and -w are the same direction (alignment uses |cos|, docs/theory.md 6): both fall in one bin of a
    0-180 degree histogram; each candidate is one line above the grid; the non-predicted candidates share one
    legend entry; the legend lies inside the figure."""
    drawn = _capture(monkeypatch, plot_directions)
    angles = np.array([0.01, np.pi + 0.01, np.pi / 2, -np.pi / 2])       # two axial pairs
    cands = {"edge a": 0.0, "edge b": np.pi / 2, "altitude a": 3.5, "altitude b": 2.0}
    plots.direction_histogram(tmp_path / "d.png", angles, [1.0, 1.0, 1.0, 1.0], candidates=cands,
                              predicted={"edge a", "edge b"})
    fig = drawn[0]
    (ax,) = fig.axes
    assert (ax.get_thetamin(), ax.get_thetamax()) == pytest.approx((0, 180))               # degrees
    heights = np.array([p.get_height() for p in ax.patches if p.get_height() > 0])
    np.testing.assert_allclose(np.sort(heights), [0.5, 0.5])               # each pair in one bin
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert all(0 <= p.get_x() < np.pi for p in bars)
    radial = [li for li in ax.get_lines() if len(li.get_xdata()) == 2 and li.get_xdata()[0] == li.get_xdata()[1]]
    assert len(radial) == len(cands)                                        # no second, opposite line
    assert all(0 <= li.get_xdata()[0] < np.pi for li in radial)             # 3.5 rad is drawn at 3.5 - pi
    assert ax.get_axisbelow() is True and min(li.get_zorder() for li in radial) > 2.5
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == len(set(labels))
    assert labels.count("other candidates") == 1 and "edge a (predicted)" in labels
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent()
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


# ---------------------------------------------------------------- training curves


def test_training_png_marks_the_returned_network_and_the_tolerance(tmp_path, monkeypatch):
    """The returned check (step 300, not the last) is a vertical line in every panel and a star at the value the
    summary reports (after the polish: 2.5, off the recorded curve); the tolerance is a line of the max residual
    panel."""
    drawn = _capture(monkeypatch, plot_runs)
    steps = list(range(0, 600, 100))
    history = {"step": steps, "loss": [5, 4, 3, 2.9, 3.1, 3.2], "cost": [5, 4, 3, 2.8, 3.0, 3.1],
               "max_residual": [1e-3, 1e-5, 1e-7, 1e-9, 1e-8, 1e-8]}
    plots.training_curves(tmp_path / "t.png", history, references={"cost": (2.7, "closed form's cost"),
                                                                   "max_residual": (1e-4, "stopping tolerance")},
                          returned_step=300, returned={"cost": 2.5, "max_residual": 2e-10},
                          returned_label="returned (step 300, polished)")
    axes = drawn[0].axes
    assert len(axes) == 3
    for ax in axes:
        vertical = [li for li in ax.get_lines() if list(li.get_xdata()) == [300, 300]]
        assert len(vertical) == 1
    cost_ax, res_ax = axes[1], axes[2]
    (star,) = [li for li in cost_ax.get_lines() if li.get_marker() == "*"]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (300, 2.5)
    assert star.get_label() == "returned (step 300, polished): 2.5"
    texts = [t.get_text() for t in res_ax.get_legend().get_texts()]
    assert "stopping tolerance" in texts
    assert any(li.get_label() == "stopping tolerance" and li.get_ydata()[0] == 1e-4 for li in res_ax.get_lines())
    assert res_ax.get_yscale() == "log"


def test_fit_training_png_ends_at_the_reported_cost(tmp_path, monkeypatch):
    """A real fit: the star of training.png sits at result.json's cost and returned_step, and the tolerance line
    at train.tol x tol_unit."""
    drawn = _capture(monkeypatch, plot_runs)
    recipe, base = load_recipe(RECIPES / "obtuse-triangle.yaml", ["train.steps=400", "noise.samples=10",
                                                                  "model.width=16"])
    result = fit_workflow(recipe, base, out=tmp_path / "run", device="cpu").result
    (fig,) = drawn
    cost_ax = next(ax for ax in fig.axes if ax.get_ylabel() == "path cost")
    (star,) = [li for li in cost_ax.get_lines() if li.get_marker() == "*"]
    assert star.get_ydata()[0] == pytest.approx(result["cost"], rel=1e-12)
    assert star.get_xdata()[0] == result["returned_step"]
    res_ax = next(ax for ax in fig.axes if ax.get_ylabel() == "max residual")
    tol = next(li for li in res_ax.get_lines() if li.get_label().startswith("stopping tolerance"))
    assert tol.get_ydata()[0] == pytest.approx(result["tol"] * result["tol_unit"])
