"""compare: the protocol of docs/theory.md 3 on tiny recipes, and the command from the outside."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.compare import compare, level_noise
from relu_denoise.errors import RecipeError
from relu_denoise.noise import NoiseSpec
from relu_denoise.recipe import DEFAULT_RECIPE, parse_recipe

runner = CliRunner()
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRIANGLE = {"name": "tri", "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]}}
TINY = {"name": "tiny", "data": {"kind": "univariate", "n": 4}, "noise": {"samples": 20},
        "model": {"width": 16}}


def test_references_at_low_noise_match_theory():
    # docs/theory.md 3: eMMSE snaps to training points (error ~ spacing^2 / 12 = 1e-3 for N = 10 on
    # [0, 1]), the closed form's error is O(rho^2)
    r = parse_recipe(DEFAULT_RECIPE)
    c = compare(r, [0.001], fit_nn=None, n_test=2000)
    assert c.mse["emmse"][0] == pytest.approx(1e-3, rel=0.25)
    assert c.mse["closed_form"][0] < c.mse["emmse"][0] / 100
    assert c.mse["identity"][0] == pytest.approx(0.001**2, rel=0.1)     # E||eps||^2 = d sigma^2
    assert c.ci_low["emmse"][0] < c.mse["emmse"][0] < c.ci_high["emmse"][0]


def test_unavailable_closed_form_says_why():
    c = compare(parse_recipe(TINY), [0.2], fit_nn=None, n_test=50)
    assert c.mse["closed_form"] == [None]
    assert c.unavailable["closed_form"][0].startswith("no closed form: balls overlap: the sample clouds")


def test_points_data_uses_training_points_and_says_so():
    recipe = parse_recipe({"data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
                           "compare": {"test_points": "training"}})
    c = compare(recipe, [0.01], fit_nn=None, n_test=100)
    assert c.test_points.startswith("training points")
    assert c.mse["nearest"][0] < 1e-12                  # at sigma 0.01 nearest recovers every point


def test_repeats_redraw_the_training_set():
    r = parse_recipe({**TINY, "data": {"kind": "univariate", "n": 4, "spacing": "uniform"}})
    one = compare(r, [0.01], fit_nn=None, n_test=200, repeats=1)
    two = compare(r, [0.01], fit_nn=None, n_test=200, repeats=2)
    assert two.mse["emmse"][0] != one.mse["emmse"][0]


def test_cli_no_nn_table_has_every_estimator_and_level(tmp_path):
    res = runner.invoke(app, ["compare", "--no-nn", "--noise", "0.001", "--noise", "0.01", "--n-test", "100",
                              "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result == json.loads((tmp_path / "result.json").read_text())
    assert result["noise"] == [0.001, 0.01] and result["n_test"] == 100
    assert set(result["estimators"]) == {"closed_form", "emmse", "lmmse", "nearest", "identity"}
    lines = (tmp_path / "compare.csv").read_text().splitlines()
    assert lines[0] == "noise,estimator,mse,ci_low,ci_high,n_test" and len(lines) == 1 + 2 * 5
    assert (tmp_path / "compare.png").stat().st_size > 0
    assert "best" in res.stderr


@pytest.mark.parametrize("args,message", [(["--noise", "-1"], "noise levels must be > 0"),
                                          (["--set", "compare.n_test=0"], "compare.n_test: must be >= 1"),
                                          (["--set", "compare.noise=[0.01, -1]"], "compare.noise.1: must be > 0"),
                                          (["--set", "compare.noise=[]"], "compare.noise: List should have at least 1"),
                                          (["--set", "compare.test_points=test"], "compare.test_points: must be")])
def test_cli_bad_input(tmp_path, args, message):
    res = runner.invoke(app, ["compare", "--no-nn", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def _digit_class_size(digit: int) -> int:
    from sklearn.datasets import load_digits

    _, y = load_digits(return_X_y=True)
    return int((y == digit).sum())


def test_digits_are_tested_on_every_held_out_image_never_the_training_ones(tmp_path):
    held_out = _digit_class_size(3) - 3                     # the class less the triangle's three images
    res = runner.invoke(app, ["compare", str(RECIPES / "digits-obtuse.yaml"), "--no-nn", "--noise", "0.05",
                              "--out", str(tmp_path / "c"), "--json", "--no-figures"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["test_points"] == f"held-out ({held_out} of them)" and result["n_test"] == held_out
    note = f"compare.n_test = 2000 but class 3 has {held_out} held-out images: testing on all {held_out}"
    assert result["notes"] == [note] and note in res.stderr
    assert "training" not in res.stderr + res.stdout
    rows = (tmp_path / "c" / "compare.csv").read_text().splitlines()[1:]
    assert rows and all(row.endswith(f",{held_out}") for row in rows)


def test_held_out_test_images_are_disjoint_from_the_training_images():
    from sklearn.datasets import load_digits

    from relu_denoise.compare import _test_points
    from relu_denoise.recipe import load_recipe
    from relu_denoise.problem import make_problem

    X, y = load_digits(return_X_y=True)
    recipe, base = load_recipe(RECIPES / "digits-obtuse.yaml")
    source = make_problem(recipe, base).source
    x_test, label, note = _test_points(source, 2000, np.random.default_rng(0), "fresh")
    D = np.linalg.norm(x_test[:, None, :] - X[None, :, :] / 16.0, axis=2)        # (n_test, 1797)
    index = D.argmin(axis=1)
    assert np.all(D[np.arange(len(x_test)), index] == 0)        # each test point is a dataset image
    assert np.all(y[index] == 3) and len(set(index)) == len(index) == _digit_class_size(3) - 3
    assert not set(index) & set(source.info["indices"])          # none of them a training image
    assert label == f"held-out ({len(index)} of them)" and note.endswith(f"testing on all {len(index)}")


@pytest.mark.parametrize("kind", ["points", "file"])
def test_fixed_points_without_test_points_are_refused_in_one_line_before_training(tmp_path, kind):
    np.save(tmp_path / "x.npy", np.array(TRIANGLE["data"]["points"], dtype=float))
    data = TRIANGLE["data"] if kind == "points" else {"kind": "file", "path": "x.npy"}
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({**TRIANGLE, "data": data}))
    res = runner.invoke(app, ["compare", str(path), "--noise", "0.05", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"data.kind={kind}" in res.output and "set compare.test_points: training" in res.output
    assert not (tmp_path / "c").exists()

    def never(data):
        raise AssertionError("trained before refusing")

    with pytest.raises(RecipeError, match=f"data.kind={kind} is a fixed set of points"):
        compare(parse_recipe({**TRIANGLE, "data": data}), [0.05], fit_nn=never, n_test=10, base_dir=tmp_path)


def test_training_test_points_are_said_in_the_table_and_the_result(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({**TRIANGLE, "compare": {"test_points": "training"}}))
    res = runner.invoke(app, ["compare", str(path), "--no-nn", "--noise", "0.05", "--n-test", "50",
                              "--out", str(tmp_path / "c"), "--json"])
    assert res.exit_code == 0, res.output
    label = "training points (compare.test_points: training)"
    assert json.loads(res.stdout)["test_points"] == label
    assert json.loads((tmp_path / "c" / "result.json").read_text())["test_points"] == label
    assert f"50 {label} test points" in " ".join(res.stderr.split())      # the table's title, however wrapped


def test_level_noise_validates_the_level():
    sphere = level_noise(NoiseSpec(distribution="sphere", radius=0.1, mode="online"), 0.2)
    assert sphere.radius == 0.2 and sphere.sigma is None and sphere.mode == "offline"
    with pytest.raises(RecipeError, match="noise level -0.1: noise.sigma"):
        level_noise(NoiseSpec(sigma=0.05), -0.1)
