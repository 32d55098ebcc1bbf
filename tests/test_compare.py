"""compare: the protocol of docs/theory.md 3 on tiny recipes, and the command from the outside."""

import json

import pytest
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.compare import compare
from relu_denoise.recipe import DEFAULT_RECIPE, parse_recipe

runner = CliRunner()
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
    recipe = parse_recipe({"data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]}})
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
                                          (["--set", "compare.n_test=0"], "compare.n_test: must be >= 1")])
def test_cli_bad_input(tmp_path, args, message):
    res = runner.invoke(app, ["compare", "--no-nn", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
