"""The flow command's figures (relu_denoise.plots.flows and .audit): each writes a 150 dpi PNG of the size it
drew, not blank, or returns None where there is nothing to draw; one colour per class in every figure; bad input
is one DataError line naming the argument, and nothing is written. (That drawing them leaves the caller's backend
and garbage collector as they were is checked in test_plots, in the one fresh interpreter for every figure.)"""

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from PIL import Image

from relu_denoise import flows, plots
from relu_denoise.closed_forms import closed_form
from relu_denoise.errors import DataError
from relu_denoise.flows import CLASSES
from relu_denoise.plots import audit as plot_audit
from relu_denoise.plots import flows as plot_flows

TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])     # orthogonal at x0: the subset sum (1, 1)
PAPER = {2: (429, 435), 3: (3390, 4060), 4: (6965, 27405)}


def _png(path, size=None):
    """The image at path: a 150 dpi PNG, not blank, of `size` (width, height) pixels when given."""
    assert path.suffix == ".png" and path.exists()
    with Image.open(path) as im:
        dpi = im.info.get("dpi")
        wh = im.size
    assert dpi is not None and np.allclose(dpi, 150, atol=0.5)
    if size is not None:
        assert wh == size
    img = matplotlib.image.imread(path)
    assert img[..., :3].std() > 0.01
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]
    return img


def _drawn(monkeypatch, module):
    """The Figures `module` saves (saved as usual), for inspection."""
    drawn, save = [], module._save
    monkeypatch.setattr(module, "_save", lambda fig, path: (drawn.append(fig), save(fig, path))[1])
    return drawn


@pytest.fixture(scope="module")
def flow():
    """The closed-form score flow on the orthogonal triangle from 60 starts around the data, classified."""
    form = closed_form(TRIANGLE, rho=0.1)
    field = flows.RampField.from_form(form)                          # numpy: no torch network is built
    Y0 = TRIANGLE.mean(axis=0) + 0.6 * np.random.default_rng(0).normal(size=(60, 2))  # (n, 2)
    run = flows.score_flow(field, Y0, dr=0.5, steps=60, record=10)
    return field, run, flows.classify_endpoints(run.end, TRIANGLE)


# ---------------------------------------------------------------- 1. trajectories


def test_trajectories_draw_every_endpoint_in_its_class_colour(tmp_path, monkeypatch, flow):
    field, run, c = flow
    drawn = _drawn(monkeypatch, plot_flows)
    box = flows.find_box(TRIANGLE)[0]
    sums = [flows.subset_sums(box, m) for m in (1, 2)]                # |S| = 1 (the clean points) left out
    out = plots.flow_trajectories_2d(tmp_path / "t", field, TRIANGLE, run.trajectories, run.end, c.cls,
                                     subset_sums=sums, title="orthogonal triangle")
    assert out == tmp_path / "t.png"
    ax, below = drawn[0].axes                                          # the flow, and the legends' panel
    assert not below.axison
    legend = [t.get_text() for t in below.get_legend().get_texts()]
    assert legend == [f"{k}: {c.counts[k]} ({100 * c.counts[k] / len(run.end):.1f}%)" for k in CLASSES]
    width, height = (drawn[0].get_size_inches() * 150).astype(int)     # Agg truncates to whole pixels
    assert width == 720 and 450 <= height <= 1100                     # 4.8 in at 150 dpi, the box's aspect
    _png(out, (width, height))
    lines = {line.get_label(): line for line in ax.get_lines()}
    for cls in CLASSES:
        (line,) = [v for k, v in lines.items() if k.startswith(f"{cls}: ")]
        assert len(line.get_xdata()) == c.counts[cls]
        assert matplotlib.colors.same_color(line.get_color(), plots.CLASS_STYLE[cls]["color"])
    assert c.counts["training"] > 0 and c.counts["virtual"] > 0
    np.testing.assert_array_equal(lines["subset sums, $|S| \\geq 2$"].get_xydata(), [[1.0, 1.0]])
    np.testing.assert_array_equal(lines["clean points $x_n$"].get_xydata(), TRIANGLE)
    (paths,) = ax.collections[1:]                                      # after the field's arrows
    tr = run.trajectories
    assert len(paths.get_segments()) == len(tr.index) == 10
    want = [matplotlib.colors.to_rgba(plots.CLASS_STYLE[k]["color"], 0.8) for k in c.cls[tr.index]]
    np.testing.assert_allclose(paths.get_colors(), want)
    starts = [li for li in ax.get_lines() if li.get_marker() == "." and len(li.get_xdata()) == 10]
    np.testing.assert_allclose(starts[0].get_xydata(), tr.y[:, 0])
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    every = np.concatenate([tr.y.reshape(-1, 2), run.end, TRIANGLE])
    assert x0 < every[:, 0].min() and every[:, 0].max() < x1 and y0 < every[:, 1].min() and every[:, 1].max() < y1


def test_trajectories_take_a_callable_and_no_recorded_paths(tmp_path):
    ends = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.0], [3.0, 3.0]])
    out = plots.flow_trajectories_2d(tmp_path / "t.png", lambda y: 0.5 * y, TRIANGLE, None, ends, list(CLASSES),
                                     subset_sums=[[1.0, 1.0]])
    _png(out)


def test_trajectories_of_a_single_point_get_a_box(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch, plot_flows)
    _png(plots.flow_trajectories_2d(tmp_path / "t.png", lambda y: 0 * y + 2.0, [[2.0, 2.0]], None, [[2.0, 2.0]],
                                    ["training"]))
    ax = drawn[0].axes[0]
    assert ax.get_xlim() == (1.5, 2.5) and ax.get_ylim() == (1.5, 2.5)


def test_trajectories_only_in_two_dimensions(tmp_path, flow):
    X = np.eye(3)
    assert plots.flow_trajectories_2d(tmp_path / "t.png", lambda y: y, X, None, X, ["training"] * 3) is None
    assert plots.flow_trajectories_2d(tmp_path / "t.png", lambda y: y, [[0.0], [1.0]], None, [[0.0]], ["other"]) is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("change, message", [
    ({"classes": ["training"] * 3}, r"^classes: expected one class per endpoint \(4\), got 3$"),
    ({"classes": ["training", "virtual", "boundary", "typo"]}, r"^classes: unknown class 'typo'"),
    ({"ends": np.zeros((4, 3))}, r"^ends: "),
    ({"denoiser": 3}, r"^denoiser: expected an object with predict"),
    ({"denoiser": lambda y: y[:, :1]}, r"^denoiser 'denoiser': expected output shape"),
    ({"trajectories": flows.Trajectories(np.array([0, 7]), np.zeros(2), np.zeros((2, 2, 2)))},
     r"^trajectories\.index: indices must point into the 4 endpoints"),
    ({"trajectories": flows.Trajectories(np.array([0]), np.zeros(2), np.zeros((1, 2, 3)))},
     r"^trajectories\.y: expected shape \(k, T, 2\)"),
    ({"subset_sums": [[1.0, 1.0, 1.0]]}, r"^subset_sums: "),
])
def test_trajectories_refuse_bad_input(tmp_path, change, message):
    args = {"denoiser": lambda y: 0.5 * y, "trajectories": None, "ends": np.ones((4, 2)),
            "classes": ["training"] * 4, "subset_sums": None, **change}
    with pytest.raises(DataError, match=message) as err:
        plots.flow_trajectories_2d(tmp_path / "t.png", args["denoiser"], TRIANGLE, args["trajectories"],
                                   args["ends"], args["classes"], subset_sums=args["subset_sums"])
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- 2. classes


def test_classes_show_all_four_with_counts_and_shares(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch, plot_flows)
    out = plots.flow_classes(tmp_path / "c.png", {"training": 3, "virtual": 1}, title="obtuse")
    _png(out, (630, 510))                                              # 4.2 x 3.4 in at 150 dpi
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [p.get_height() for p in ax.patches] == [3, 1, 0, 0]
    assert [t.get_text() for t in ax.texts] == ["3\n(75.0%)", "1\n(25.0%)", "0\n(0.0%)", "0\n(0.0%)"]
    for patch, cls in zip(ax.patches, CLASSES):
        assert matplotlib.colors.same_color(patch.get_facecolor(), plots.CLASS_STYLE[cls]["color"])


def test_classes_with_virtual_points_by_size(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch, plot_flows)
    counts = {"training": 12, "virtual": 448, "boundary": 31, "other": 9}
    out = plots.flow_classes(tmp_path / "c.png", counts, virtual_by_size={"2": 96, "4": 102, "3": 250})
    _png(out, (1050, 510))
    side = drawn[0].axes[1]
    assert [t.get_text() for t in side.get_xticklabels()] == ["2", "3", "4"]        # sorted by |S|
    assert [t.get_text() for t in side.texts] == ["96\n(21.4%)", "250\n(55.8%)", "102\n(22.8%)"]


def test_classes_with_nothing_to_draw(tmp_path):
    assert plots.flow_classes(tmp_path / "c.png", {}) is None
    assert plots.flow_classes(tmp_path / "c.png", {c: 0 for c in CLASSES}, virtual_by_size={}) is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("counts, by_size, message", [
    ({"training": 1, "memorized": 2}, None, r"^counts: unknown class 'memorized'; expected the classes training"),
    ({"training": -1}, None, r"^counts\['training'\]: must be an integer >= 0, got -1$"),
    ({"training": 1.5}, None, r"^counts\['training'\]: must be an integer >= 0"),
    ([1, 2, 3, 4], None, r"^counts: expected a dict class -> count"),
    ({"virtual": 5}, {2: 2, 3: 2}, r"^virtual_by_size: the counts sum to 4, but counts\['virtual'\] is 5"),
    ({"virtual": 5}, {1: 5}, r"^virtual_by_size: keys are subset sizes \|S\|, integers >= 2; got 1$"),
])
def test_classes_refuse_bad_input(tmp_path, counts, by_size, message):
    with pytest.raises(DataError, match=message) as err:
        plots.flow_classes(tmp_path / "c.png", counts, virtual_by_size=by_size)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- 3. distances


def test_distances_on_a_log_axis_keep_exact_hits_in_a_bar_of_their_own(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch, plot_flows)
    d = np.r_[np.zeros(7), [1e-15], np.geomspace(1e-4, 0.15, 30), np.linspace(0.3, 0.9, 12)]
    out = plots.flow_distances(tmp_path / "d.png", d, 0.2)
    _png(out, (720, 555))                                              # 4.8 x 3.7 in
    (ax,) = drawn[0].axes
    assert ax.get_xscale() == "log"
    bars = {b.get_label().split(":")[0]: b for b in ax.containers}
    assert {k: sum(p.get_height() for p in b) for k, b in bars.items()} == {
        "of which < 1e-05 (incl. 0)": 8, "$\\leq \\tau$, training": 30, "$> \\tau$": 12}
    (first,) = [p for p in bars["of which < 1e-05 (incl. 0)"] if p.get_height() > 0]
    assert first.get_x() + first.get_width() <= 1e-4 * 1.0001          # left of every other distance
    assert [li.get_xdata()[0] for li in ax.get_lines()] == [0.2]       # the threshold
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "$\\leq \\tau$, training: 38 (76.0%)" in labels and "$> \\tau$: 12 (24.0%)" in labels


def test_distances_close_together_on_a_linear_axis(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch, plot_flows)
    d = np.linspace(0.0, 0.8, 200)
    _png(plots.flow_distances(tmp_path / "d.png", d, 0.2, title="uniform"))
    (ax,) = drawn[0].axes
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    assert sum(p.get_height() for b in ax.containers for p in b) == 200


def test_distances_with_nothing_to_draw_or_bad_input(tmp_path):
    assert plots.flow_distances(tmp_path / "d.png", [], 0.2) is None
    with pytest.raises(DataError, match=r"^distances: must be >= 0"):
        plots.flow_distances(tmp_path / "d.png", [0.1, -0.5], 0.2)
    with pytest.raises(DataError, match=r"^threshold: must be > 0, got 0$"):
        plots.flow_distances(tmp_path / "d.png", [0.1], 0)
    with pytest.raises(DataError, match=r"^distances: expected shape \(K,\)"):
        plots.flow_distances(tmp_path / "d.png", [[0.1, 0.2]], 0.2)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- 4. audit


def _cells(fig) -> dict[tuple[int, int], str]:
    (table,) = fig.axes[0].tables
    return {rc: cell.get_text().get_text() for rc, cell in table.get_celld().items()}


def test_audit_table_beside_the_paper(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch, plot_audit)
    form = closed_form(TRIANGLE, rho=0.1)
    exact = flows.stability_audit(flows.RampField.from_form(form), TRIANGLE, sizes=(1, 2))
    trained = {"2": {"stable": 3, "total": 4}, "4": {"stable": 512, "total": 2000, "population": 27405,
                                                     "sampled": True}}
    out = plots.flow_audit(tmp_path / "a.png", {"closed form": exact, "trained": trained}, reference=PAPER,
                           threshold=0.2, title="audit")
    img = _png(out)
    assert img.shape[1] > img.shape[0] and img.shape[1] >= 630
    cells = _cells(drawn[0])
    assert [cells[0, c] for c in range(4)] == ["subset size", "closed form", "trained", "paper"]
    assert [cells[r, 0] for r in range(1, 5)] == ["m = 1 (clean points)", "m = 2 (pairs)", "m = 3 (triplets)",
                                                 "m = 4 (quadruplets)"]
    assert [cells[r, 1] for r in range(1, 5)] == ["2 of 2 (100.0%)", "1 of 1 (100.0%)", "-", "-"]
    assert cells[2, 2] == "3 of 4 (75.0%)" and cells[4, 2] == "512 of 2000 (25.6%)\nsample of 27405"
    assert [cells[r, 3] for r in range(1, 5)] == ["-", "429 of 435 (98.6%)", "3390 of 4060 (83.5%)",
                                                 "6965 of 27405 (25.4%)"]


def test_audit_with_nothing_to_draw(tmp_path):
    assert plots.flow_audit(tmp_path / "a.png", {}) is None
    assert plots.flow_audit(tmp_path / "a.png", {"closed form": {}}) is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("audits, extra, message", [
    ([1], {}, r"^audits: expected a dict label -> "),
    ({"nn": {2: {"stable": 5, "total": 4}}}, {}, r"^audits\['nn'\]\[2\]: expected stable <= total <= population, "
                                                 r"got 5, 4, 4$"),
    ({"nn": {2: {"stable": 1}}}, {}, r"^audits\['nn'\]\[2\]: expected a dict with stable and total"),
    ({"nn": {"two": {"stable": 1, "total": 2}}}, {}, r"^audits\['nn'\]: keys are subset sizes"),
    ({"paper": {2: {"stable": 1, "total": 2}}}, {"reference": PAPER}, r"^reference_label: 'paper' is also"),
    ({}, {"reference": {2: (436, 435)}}, r"^reference\[2\]: stable \(436\) exceeds total \(435\)$"),
    ({}, {"reference": {2: 429}}, r"^reference\[2\]: expected a pair \(stable, total\)"),
])
def test_audit_refuses_bad_input(tmp_path, audits, extra, message):
    with pytest.raises(DataError, match=message) as err:
        plots.flow_audit(tmp_path / "a.png", audits, **extra)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- contracts


def test_every_class_has_one_style():
    assert tuple(plots.CLASS_STYLE) == CLASSES
    colors = [matplotlib.colors.to_hex(s["color"]) for s in plots.CLASS_STYLE.values()]
    markers = [s["marker"] for s in plots.CLASS_STYLE.values()]
    assert len(set(colors)) == len(set(markers)) == len(CLASSES)

