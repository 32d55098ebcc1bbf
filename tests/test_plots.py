"""Figures (relu_denoise.plots): each writes a readable PNG atomically and closes its figure;
the ReLU-boundary clipping is pinned against lines whose segments are known by hand; importing and
drawing leave the caller's backend and garbage collector as they were."""

import gc
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import matplotlib
import matplotlib.image
import numpy as np
import pytest
import torch

from relu_denoise import closed_form, plots
from relu_denoise.errors import DataError
from relu_denoise.estimators import Identity
from relu_denoise.geometry import plane_basis
from relu_denoise.network import ShallowDenoiser
from relu_denoise.plots import relu_boundaries
from relu_denoise.plots.base import _figure, _levels

matplotlib.use("Agg")  # the tests' own choice, for pyplot below: plots itself never selects a backend
import matplotlib.pyplot as plt  # noqa: E402


# ---------------------------------------------------------------- helpers


def _ramp_net_1d(x):
    """The univariate min-cost denoiser of docs/theory.md 2 for sorted x with rho = 0.05, as a network."""
    rho = 0.05
    a, w, b = [], [], []
    for lo, hi in zip(x[:-1], x[1:]):
        s = (hi - lo) / ((hi - rho) - (lo + rho))
        a += [[s], [-s]]
        w += [[1.0], [1.0]]
        b += [-(lo + rho), -(hi - rho)]
    return ShallowDenoiser.from_weights(a, w, b, None, [x[0]])


def _triangle_net():
    """Obtuse-simplex closed form (docs/theory.md 4.3) at x0 = (0, 0), x1 = (2, 0), x2 = (0, 1), plus a dead unit."""
    rho = 0.1
    a, w, b = [], [], []
    for u, L in (((1.0, 0.0), 2.0), ((0.0, 1.0), 1.0)):
        s = L / (L - 2 * rho)
        u = np.array(u)
        a += [s * u, -s * u]
        w += [u, u]
        b += [-rho, -(L - rho)]
    a.append([0.0, 0.0])
    w.append([0.0, 0.0])
    b.append(1.0)
    return ShallowDenoiser.from_weights(a, w, b, None, None), rho


def _assert_png(path, tmp_path):
    assert path.exists() and path.suffix == ".png" and path.stat().st_size > 0
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200 and img.shape[2] in (3, 4)
    assert img[..., :3].std() > 0.01                              # not a blank canvas
    assert not list(tmp_path.rglob("*.tmp*"))


@pytest.fixture(autouse=True)
def _no_open_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


def test_figures_are_drawn_by_agg():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    assert isinstance(_figure((2, 2)).canvas, FigureCanvasAgg)


def test_import_and_drawing_keep_the_callers_backend_and_collector(tmp_path):
    """A fresh interpreter whose backend is svg (MPLBACKEND, as a notebook or a user's rc would set it):
    neither importing plots nor drawing a figure (a denoiser's, a sweep's summary, the flow command's four)
    touches the garbage collector, switches the backend or loads pyplot."""
    script = textwrap.dedent(f"""
        import gc, sys
        import matplotlib
        pauses = []
        gc_disable = gc.disable
        gc.disable = lambda: (pauses.append(1), gc_disable())
        import relu_denoise.plots as plots
        assert pauses == [], "the import paused the garbage collector"      # gc is process-wide
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        plots.curve_1d({str(tmp_path / "f.png")!r}, {{"half": lambda y: 0.5 * y}}, [[0.0], [1.0]])
        assert pauses == [] and gc.isenabled()
        rows = [{{"width": 8, "cost": 2.0}}, {{"width": 16, "cost": 1.5}}]
        assert plots.summary_figure({str(tmp_path / "sweep.png")!r}, rows, ["width"], "fit") is not None
        out, X = {str(tmp_path)!r}, [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]              # the flow command's figures
        plots.flow_trajectories_2d(out + "/t.png", lambda y: 0.5 * y, X, None, X, ["training"] * 3)
        plots.flow_classes(out + "/c.png", {{"training": 3}}, virtual_by_size={{}})
        plots.flow_distances(out + "/d.png", [0.0, 0.1, 0.5], 0.2)
        plots.flow_audit(out + "/a.png", {{"cf": {{2: {{"stable": 1, "total": 1}}}}}})
        assert pauses == [] and gc.isenabled()
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
    """)
    env = {**os.environ, "MPLBACKEND": "svg"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert all((tmp_path / f).stat().st_size > 0 for f in ("f.png", "sweep.png", "t.png", "c.png", "d.png", "a.png"))


@pytest.mark.parametrize("enabled", [True, False])
def test_a_figure_leaves_the_collector_as_it_found_it(tmp_path, enabled):
    """The collector is the caller's: on stays on and off stays off, while a figure draws and after it, also
    when the drawing raises."""
    seen = []

    def spy(y):
        seen.append(gc.isenabled())
        return y[:, 0]                                            # the wrong shape: contours_2d raises

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        plots.curve_1d(tmp_path / "ok.png", {}, [[0.0], [1.0]])
        assert gc.isenabled() is enabled
        with pytest.raises(DataError, match="expected output shape"):
            plots.contours_2d(tmp_path / "bad.png", {"bad": spy}, [[0, 0], [1, 0], [0, 1]])
        assert seen == [enabled] and gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


# ---------------------------------------------------------------- relu_boundaries


def _same_segment(seg, p, q):
    assert seg is not None
    got = sorted(seg)
    want = sorted([p, q])
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-12)


def test_relu_boundaries_known_lines():
    w = np.array([[1.0, 0.0],      # x = 0.5: vertical across the box
                  [0.0, 2.0],      # y = 0.25 (2y - 0.5 = 0): horizontal
                  [1.0, 1.0],      # x + y = 1: corner to corner of the lower-left triangle
                  [1.0, 0.0],      # x = 3: misses the box
                  [0.0, 0.0],      # w = 0: no boundary
                  [1.0, 1.0],      # x + y = 0: touches the box only at (0, 0)
                  [1.0, -1.0]])    # x = y: the box's diagonal
    b = np.array([-0.5, -0.5, -1.0, -3.0, 0.2, 0.0, 0.0])
    segs = relu_boundaries(w, b, (0.0, 2.0), (-1.0, 1.0))
    assert len(segs) == 7
    _same_segment(segs[0], (0.5, -1.0), (0.5, 1.0))
    _same_segment(segs[1], (0.0, 0.25), (2.0, 0.25))
    _same_segment(segs[2], (0.0, 1.0), (2.0, -1.0))
    assert segs[3] is None
    assert segs[4] is None
    segs2 = relu_boundaries(w[5:], b[5:], (0.0, 1.0), (0.0, 1.0))
    assert segs2[0] is None
    _same_segment(segs2[1], (0.0, 0.0), (1.0, 1.0))


def test_relu_boundaries_invariant_to_rescaling_and_on_the_line():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(50, 2)), rng.normal(size=50)
    segs = relu_boundaries(w, b, (-2.0, 2.0), (-1.5, 1.0))
    scaled = relu_boundaries(3.7 * w, 3.7 * b, (-2.0, 2.0), (-1.5, 1.0))
    assert sum(s is not None for s in segs) > 10
    for wk, bk, seg, seg2 in zip(w, b, segs, scaled):
        assert (seg is None) == (seg2 is None)
        if seg is None:
            continue
        np.testing.assert_allclose(seg, seg2, atol=1e-12)
        for p in seg:
            assert abs(wk @ np.array(p) + bk) < 1e-12 * (1 + abs(bk))
            assert -2 - 1e-12 <= p[0] <= 2 + 1e-12 and -1.5 - 1e-12 <= p[1] <= 1 + 1e-12


def test_relu_boundaries_rejects_bad_shapes():
    with pytest.raises(DataError, match=r"w of shape \(K, 2\)"):
        relu_boundaries(np.ones((3, 3)), np.ones(3), (0, 1), (0, 1))


# ---------------------------------------------------------------- figures


def test_curve_1d(tmp_path):
    x = np.array([[0.0], [0.3], [1.0]])
    net = _ramp_net_1d(x[:, 0])
    samples = x[:, None, :] + 0.02 * np.random.default_rng(0).normal(size=(3, 40, 1))
    out = plots.curve_1d(tmp_path / "curve.png", {"closed form": net.predict, "shrink": lambda y: 0.5 * y},
                         x, rho=0.05, samples=samples, title="three points")
    assert out == tmp_path / "curve.png"
    _assert_png(out, tmp_path)


def test_curve_1d_minimal_single_point_without_suffix(tmp_path):
    out = plots.curve_1d(tmp_path / "sub" / "one", {}, [[2.0]])
    assert out == tmp_path / "sub" / "one.png"
    _assert_png(out, tmp_path)


def test_contours_2d_with_boundaries(tmp_path):
    net, rho = _triangle_net()
    points = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    out = plots.contours_2d(tmp_path / "c2.png", {"closed form": net.predict, "identity": lambda y: y.copy()},
                            points, rho=rho, nets={"closed form": net}, title="obtuse triangle")
    _assert_png(out, tmp_path)


def test_plane_contours_in_r5(tmp_path):
    rng = np.random.default_rng(1)
    D = 5
    U, _ = np.linalg.qr(rng.normal(size=(D, 2)))                 # (D, 2)
    x_bar = rng.normal(size=D)
    points = x_bar + np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]]) @ U.T  # (3, D)
    net = ShallowDenoiser(16, D, generator=torch.Generator().manual_seed(0))
    project = lambda y: x_bar + (y - x_bar) @ U @ U.T            # noqa: E731
    out = plots.plane_contours(tmp_path / "plane.png", {"net": net.predict, "projection": project}, points,
                               rho=0.1, nets={"net": net}, title="triangle in R^5")
    _assert_png(out, tmp_path)


def test_plane_basis_spans_the_points():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 7))
    x_bar, U = plane_basis(x)
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(x_bar + (x - x_bar) @ U @ U.T, x, atol=1e-12)


def test_plane_contours_rejects_collinear_points(tmp_path):
    x = np.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]])
    with pytest.raises(DataError, match="not 2-D"):
        plots.plane_contours(tmp_path / "p.png", {"id": lambda y: y}, x)
    assert not list(tmp_path.iterdir())


def test_training_curves(tmp_path):
    steps = list(range(0, 1000, 10))
    history = {"step": steps,
               "loss": [1.0 / (1 + s) for s in steps],
               "cost": [3.0 + math.exp(-s / 200) for s in steps],
               "max_residual": [None if s % 50 else 0.1 / (1 + s) for s in steps],
               "multiplier": [0.01 * s - 1 for s in steps],        # crosses 0: linear axis
               "lr": [1e-3] * len(steps)}
    out = plots.training_curves(tmp_path / "train.png", history, references={"cost": 3.0}, title="fit")
    _assert_png(out, tmp_path)


def test_training_curves_needs_a_known_key(tmp_path):
    with pytest.raises(DataError, match="none of the keys"):
        plots.training_curves(tmp_path / "t.png", {"step": [0, 1]})


def test_mse_vs_noise_with_missing_entries(tmp_path):
    noise = [1e-3, 1e-2, 1e-1]
    results = {"network": {"mse": [3e-6, 2e-4, 1e-2], "ci_low": [2e-6, 1e-4, 8e-3], "ci_high": [4e-6, 3e-4, 1.2e-2]},
               "eMMSE": {"mse": [1e-3, 1e-3, None], "ci_low": [9e-4, None, None], "ci_high": [1.1e-3, None, None]},
               "identity": {"mse": [1e-6, 1e-4, 1e-2]},
               "exact solver": {"mse": [None, None, None]}}
    out = plots.mse_vs_noise(tmp_path / "mse.png", noise, results, title="generalization")
    _assert_png(out, tmp_path)


def test_direction_histogram(tmp_path):
    rng = np.random.default_rng(3)
    angles = np.concatenate([rng.normal(0.0, 0.05, 30), rng.normal(np.pi / 2, 0.05, 30), rng.uniform(-7, 7, 40)])
    weights = np.concatenate([np.ones(60), 0.01 * np.ones(40)])
    out = plots.direction_histogram(tmp_path / "dirs.png", angles, weights,
                                    candidates={"edge 01": 0.0, "edge 02": np.pi / 2, "edge 12": 2.68},
                                    predicted={"edge 01", "edge 02"}, title="obtuse triangle")
    _assert_png(out, tmp_path)


def test_direction_histogram_rejects_unknown_predicted(tmp_path):
    with pytest.raises(DataError, match="no candidate named nope"):
        plots.direction_histogram(tmp_path / "d.png", [0.0], [1.0], candidates={"a": 0.0}, predicted={"nope"})


def _drawn_figures(monkeypatch):
    """The Figures the plots package saves, kept for inspection (they are saved as usual)."""
    from relu_denoise.plots import runs as plot_runs

    drawn, save = [], plot_runs._save
    monkeypatch.setattr(plot_runs, "_save", lambda fig, path: (drawn.append(fig), save(fig, path))[1])
    return drawn


def test_summary_figure_of_a_fit_sweep(tmp_path, monkeypatch):
    """cost_ratio against the first key, the mean over repeated points, one line per value of the other keys,
    sorted by x; a first key spanning two decades gets a log axis."""
    drawn = _drawn_figures(monkeypatch)
    rows = [{"width": w, "seed": s, "rep": r, "cost": 9.0, "cost_ratio": 1 + w / 1000 + s + r / 10}
            for w in (1000, 10, 100) for s in (0, 1) for r in (0, 1)]
    rows.append({"width": 10, "seed": 0, "cost": 9.0, "cost_ratio": None})          # a failed point: not drawn
    assert plots.main_metric("fit", rows) == "cost_ratio"
    out = plots.summary_figure(tmp_path / "sweep.png", rows, ["width", "seed"], "fit", title="widths")
    _assert_png(out, tmp_path)
    (ax,) = drawn[0].axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"seed=0", "seed=1", "closed form's cost"}     # and the reference line at 1
    assert lines["closed form's cost"].get_ydata()[0] == 1.0
    # lines that may coincide (seeds on seeds) each keep their own marker and dash, the first larger and hollow
    s0, s1 = lines["seed=0"], lines["seed=1"]
    assert s0.get_marker() != s1.get_marker() and s0.get_linestyle() != s1.get_linestyle()
    assert s0.get_markersize() > s1.get_markersize() and s0.get_markerfacecolor() == "none"
    np.testing.assert_allclose(lines["seed=1"].get_xdata(), [10, 100, 1000])
    np.testing.assert_allclose(lines["seed=1"].get_ydata(), [2.06, 2.15, 3.05])
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_title() == "widths: cost_ratio vs width" and ax.get_xlabel() == "width"


def test_summary_figure_of_compare_and_align_sweeps(tmp_path, monkeypatch):
    drawn = _drawn_figures(monkeypatch)
    rows = [{"seed": s, "noise": n, "estimator": e, "mse": m * (1 + s)}
            for s in (0, 1) for n in (0.01, 0.1) for e, m in (("nn", n**2), ("emmse", n))]
    plots.summary_figure(tmp_path / "compare.png", rows, ["seed"], "compare")
    ax = drawn[-1].axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert {line.get_label() for line in ax.get_lines()} == {"nn", "emmse"}
    assert ax.get_ylabel() == "test MSE (mse), mean over the other keys"
    assert ax.get_xlabel() == "noise level $\\sigma$ (noise)"
    np.testing.assert_allclose(next(li for li in ax.get_lines() if li.get_label() == "nn").get_ydata(),
                               [1.5e-4, 1.5e-2])
    rows = [{"data.kind": k, "aligned_fraction": f} for k, f in (("obtuse", 0.9), ("acute", 0.4), ("obtuse", 0.7))]
    plots.summary_figure(tmp_path / "align.png", rows, ["data.kind"], "align")
    ax = drawn[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["obtuse", "acute"]   # categories in first-seen order
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.8, 0.4])


def test_summary_figure_marks_runs_not_ok_and_names_its_axes(tmp_path, monkeypatch):
    """A point from a run that did not end ok (max-steps: not-converged) is drawn and marked with a cross; the
    axes carry the key in words beside the key sweep.csv calls it."""
    drawn = _drawn_figures(monkeypatch)
    rows = [{"noise.sigma": n, "seed": s, "cost_ratio": 1 + n + s / 100,
             "status": "ok" if n > 0.02 else "not-converged"} for n in (0.02, 0.05, 0.1) for s in (0, 1)]
    plots.summary_figure(tmp_path / "sweep.png", rows, ["noise.sigma", "seed"], "fit")
    ax = drawn[-1].axes[0]
    crosses = [li for li in ax.get_lines() if li.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_label() == "run not ok (not-converged)"
    np.testing.assert_allclose(crosses[0].get_xdata(), [0.02, 0.02])
    np.testing.assert_allclose(sorted(crosses[0].get_ydata()), [1.02, 1.03])
    assert ax.get_xlabel() == "noise level $\\sigma$ (noise.sigma)"
    assert ax.get_ylabel() == "path cost / the closed form's (cost_ratio)"
    plots.summary_figure(tmp_path / "ok.png", [dict(r, status="ok") for r in rows], ["noise.sigma", "seed"], "fit")
    assert not [li for li in drawn[-1].axes[0].get_lines() if li.get_marker() == "x"]


def test_summary_figure_with_nothing_to_draw(tmp_path):
    assert plots.main_metric("fit", [{"cost": 1.0}]) == "cost" and plots.main_metric("align", []) == "aligned_fraction"
    assert plots.summary_figure(tmp_path / "a.png", [{"width": 1, "cost": None}], ["width"], "fit") is None
    assert plots.summary_figure(tmp_path / "b.png", [{"width": 1, "cost": True}], ["width"], "fit") is None
    assert plots.summary_figure(tmp_path / "c.png", [{"cost": 1.0}], [], "fit") is None
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- contracts shared by the figures


def test_wrong_denoiser_output_shape_is_named(tmp_path):
    with pytest.raises(DataError, match=r"denoiser 'bad': expected output shape \(40000, 2\)"):
        plots.contours_2d(tmp_path / "c.png", {"bad": lambda y: y[:, 0]}, [[0, 0], [1, 0], [0, 1]])
    assert not list(tmp_path.iterdir())


def test_nets_must_name_a_denoiser(tmp_path):
    net, _ = _triangle_net()
    with pytest.raises(DataError, match="nets: no denoiser named typo"):
        plots.contours_2d(tmp_path / "c.png", {"cf": net.predict}, [[0, 0], [1, 0]], nets={"typo": net})


def test_denoisers_are_objects_with_predict(tmp_path):
    """The project's one protocol: a network, a closed form and a reference are drawn through their predict,
    exactly as their predict methods passed as callables are."""
    points = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    form = closed_form(points, rho=0.1)
    as_object = plots.contours_2d(tmp_path / "object.png", {"cf": form}, points, rho=0.1, nets={"cf": form.network})
    as_map = plots.contours_2d(tmp_path / "map.png", {"cf": form.predict}, points, rho=0.1, nets={"cf": form.network})
    assert as_object.read_bytes() == as_map.read_bytes()
    x = np.array([[0.0], [0.3], [1.0]])
    net = _ramp_net_1d(x[:, 0])                                   # an nn.Module: callable on tensors only
    as_objects = plots.curve_1d(tmp_path / "objects.png", {"net": net, "id": Identity(1)}, x, rho=0.05)
    as_maps = plots.curve_1d(tmp_path / "maps.png", {"net": net.predict, "id": Identity(1).predict}, x, rho=0.05)
    assert as_objects.read_bytes() == as_maps.read_bytes()
    with pytest.raises(DataError, match="predict method .* without one: three"):
        plots.curve_1d(tmp_path / "bad.png", {"three": 3}, x)


def test_nets_must_match_the_points_dimension(tmp_path):
    net, _ = _triangle_net()
    x = np.array([[0.0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0]])
    with pytest.raises(DataError, match=r"nets\['net'\]: a network on R\^2, but the points are in R\^5"):
        plots.plane_contours(tmp_path / "p.png", {"net": net}, x, nets={"net": net})
    assert not list(tmp_path.iterdir())


def test_curve_on_line_refuses_points_off_a_line(tmp_path):
    with pytest.raises(DataError, match="collinear points .* affine dimension 2"):
        plots.curve_on_line(tmp_path / "c.png", {"id": lambda y: y}, [[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    out = plots.curve_on_line(tmp_path / "line.png", {"id": Identity(3)}, [[0.0, 0, 0], [1, 1, 1], [3, 3, 3]],
                              rho=0.1)
    _assert_png(out, tmp_path)


def test_failed_save_leaves_neither_file_nor_tmp(tmp_path, monkeypatch):
    def boom(self, target, *args, **kwargs):
        pathlib.Path(target).write_bytes(b"partial")          # the temporary file, half written
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)
    with pytest.raises(OSError, match="disk full"):
        plots.curve_1d(tmp_path / "fig.png", {}, [[0.0], [1.0]])
    assert not list(tmp_path.iterdir())


def test_contour_levels_cover_the_data_and_pin_the_lower_end():
    rng = np.random.default_rng(4)
    for _ in range(500):
        lo = rng.normal() * 10 ** rng.uniform(-8, 3)
        hi = lo + 10 ** rng.uniform(-12, 3)
        for lower in (None, min(lo, 0.0)):
            t = _levels([np.array([lo, hi, np.nan])], lower=lower)
            assert t[0] <= lo and t[-1] >= hi and np.all(np.diff(t) > 0)
            assert lower is None or t[0] == lower


def test_mse_vs_noise_keeps_coinciding_estimators_visible(tmp_path, monkeypatch):
    """Estimators with equal curves (nn on closed_form, lmmse on identity) differ in marker and dash, and the
    earlier-drawn one has the larger hollow marker, so that the later one does not hide it."""
    import relu_denoise.plots.runs as runs_plots

    seen = {}
    monkeypatch.setattr(runs_plots, "_save", lambda fig, path: seen.setdefault("fig", fig) and path)
    same = {"mse": [1e-6, 1e-4, 1e-2]}
    runs_plots.mse_vs_noise(tmp_path / "mse.png", [1e-3, 1e-2, 1e-1],
                            {"nn": same, "closed_form": same, "lmmse": same, "identity": same})
    lines = [ln for ln in seen["fig"].axes[0].get_lines() if ln.get_label() in ("nn", "closed_form", "lmmse", "identity")]
    styles = [(ln.get_marker(), ln.get_linestyle()) for ln in lines]
    assert len(lines) == 4 and len(set(styles)) == 4
    sizes = [ln.get_markersize() for ln in lines]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert all(ln.get_markerfacecolor() == "none" for ln in lines)


def test_summary_figure_marks_the_closed_form_and_keeps_categories_apart(tmp_path, monkeypatch):
    import relu_denoise.plots.runs as runs_plots

    seen = []
    monkeypatch.setattr(runs_plots, "_save", lambda fig, path: seen.append(fig) or path)
    rows = [{"train.method": m, "seed": s, "cost_ratio": 1.0 + 0.01 * s, "status": "ok"}
            for m in ("augmented-lagrangian", "weight-decay") for s in (0, 1)]
    runs_plots.summary_figure(tmp_path / "sweep.png", rows, ["train.method", "seed"], "fit")
    fig = seen[0]
    assert fig.dpi == 150                                          # as every other figure
    lines = fig.axes[0].get_lines()
    assert any(ln.get_label() == "closed form's cost" and list(ln.get_ydata()) == [1.0, 1.0] for ln in lines)
    data = [ln for ln in lines if ln.get_label().startswith("seed=")]
    assert data and all(ln.get_linestyle() == "None" for ln in data)   # methods are categories, not joined
