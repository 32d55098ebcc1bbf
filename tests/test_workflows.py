"""The workflow layer: one function per command, and one reference closed form for all of them."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.recipe import parse_recipe
from relu_denoise.problem import make_problem
from relu_denoise.workflows import (align_run_dir, align_workflow, closed_form_workflow, compare_workflow,
                                    fit_workflow)

TRIANGLE = {"name": "tri", "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
            "model": {"width": 48}, "train": {"steps": 5000}, "compare": {"test_points": "training"}}
GAUSSIAN = {**TRIANGLE, "noise": {"distribution": "gaussian", "sigma": 0.04, "samples": 20}}
SPHERE = {**TRIANGLE, "noise": {"distribution": "sphere", "radius": 0.12, "samples": 20}}


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("raw, rule", [(GAUSSIAN, "empirical"), (SPHERE, "radius")], ids=["gaussian", "sphere"])
def test_every_command_reports_the_same_closed_form(tmp_path, raw, rule):
    """closed-form, fit, compare (at the recipe's own level) and align: one cost, one rho, one rule."""
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps(raw))
    scale = raw["noise"].get("sigma", raw["noise"].get("radius"))
    seen = []
    for args in (["closed-form", path], ["fit", path], ["compare", path, "--noise", scale, "--n-test", 50],
                 ["align", path]):
        res = _cli(*args, "--out", tmp_path / args[0], "--json", "-q")
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        cf = out if args[0] == "closed-form" else out["closed_form"]
        cf = cf[0] if isinstance(cf, list) else cf
        cost = cf["cost_formula"]                           # the formula's value, one key in every command
        seen.append((cf["rho"], cf["rho_rule"], round(cost, 12)))
    assert len(set(seen)) == 1, seen
    assert seen[0][1] == rule
    assert (seen[0][0] is None) == (rule == "empirical")


def test_compare_trains_at_the_recipe_level_exactly_the_fit(tmp_path):
    r = parse_recipe(GAUSSIAN)
    fit = fit_workflow(r, ".", out=tmp_path / "fit", device="cpu")
    cmp = compare_workflow(r, ".", noise=[0.02, 0.04], repeats=1, n_test=20, device="cpu", out=tmp_path / "cmp")
    at_level = [f for f in cmp.result["nn_fits"] if f["sigma"] == 0.04]
    assert at_level[0]["cost"] == fit.result["cost"]


def test_closed_form_workflow_writes_its_run_and_refuses_general_position(tmp_path):
    outcome = closed_form_workflow(parse_recipe(SPHERE), ".", out=tmp_path / "cf")
    assert outcome.result["geometry"] == "obtuse-simplex" and outcome.result["rho"] == 0.12
    assert outcome.result["cost"] == pytest.approx(outcome.result["cost_formula"], rel=1e-12)
    assert json.loads((tmp_path / "cf" / "manifest.json").read_text())["status"] == "ok"
    square = {**SPHERE, "data": {"kind": "points", "points": [[0, 0], [1, 0.1], [0.2, 1], [1.3, 1.2]]}}
    none = closed_form_workflow(parse_recipe(square), ".", out=tmp_path / "none")
    assert none.status == "no-closed-form" and none.result["reason"].startswith("no closed form: points in general")
    assert json.loads((tmp_path / "none" / "manifest.json").read_text())["status"] == "no-closed-form"


def test_fit_and_align_workflows(tmp_path):
    r = parse_recipe(SPHERE)
    fit = fit_workflow(r, ".", out=tmp_path / "fit", device="cpu")
    assert fit.status == "ok" and fit.result["cost_ratio"] == pytest.approx(1, abs=0.03)
    again = align_run_dir(tmp_path / "fit", out=tmp_path / "al")
    fresh = align_workflow(r, ".", out=tmp_path / "al2", device="cpu")
    assert again.result["aligned_fraction"] == pytest.approx(fresh.result["aligned_fraction"])
    assert again.result["aligned_fraction"] >= 0.9


def test_a_level_draws_the_same_samples_alone_or_in_a_grid():
    r = parse_recipe(GAUSSIAN)
    from relu_denoise.compare import level_noise

    a = make_problem(r, ".", noise=level_noise(r.noise, 0.01))
    b = make_problem(r, ".", noise=level_noise(r.noise, 0.02))
    again = make_problem(r, ".", noise=level_noise(r.noise, 0.01))
    np.testing.assert_array_equal(a.samples, again.samples)
    noise_a, noise_b = a.samples - a.points[:, None], b.samples - b.points[:, None]
    assert not np.allclose(noise_a / 0.01, noise_b / 0.02)       # different levels never share draws


def test_hopeless_and_trivial_fits_are_refused_at_once(tmp_path):
    from relu_denoise.errors import RecipeError

    close = {**SPHERE, "data": {"kind": "points", "points": [[0, 0], [0.2, 0], [-1, 1]]}}
    with pytest.raises(RecipeError, match=r"noise clouds overlap: x0 and x1 are 0.2 apart .* lower noise.radius"):
        fit_workflow(parse_recipe(close), ".", out=tmp_path / "hopeless")
    assert not (tmp_path / "hopeless").exists()
    allowed = parse_recipe(close, ["train.allow_overlap=true", "train.steps=200"])
    assert fit_workflow(allowed, ".", out=tmp_path / "allowed", device="cpu").status == "not-converged"
    few = {**SPHERE, "data": {"kind": "points", "points": np.eye(12).tolist()}, "noise": {**SPHERE["noise"],
           "samples": 1}}
    with pytest.raises(RecipeError, match=r"12 points x 1 samples = 12 <= d \+ 1 = 13: the free affine map"):
        fit_workflow(parse_recipe(few), ".", out=tmp_path / "trivial")


def test_compare_does_not_train_where_clouds_overlap(tmp_path):
    r = parse_recipe(GAUSSIAN)
    out = compare_workflow(r, ".", noise=[0.04, 0.5], repeats=1, n_test=20, device="cpu", out=tmp_path / "c")
    assert [f["sigma"] for f in out.result["nn_fits"]] == [0.04]          # 0.5 was not trained
    assert out.result["unavailable"]["nn"][1].startswith("noise clouds overlap")
    assert out.result["unavailable"]["closed_form"][1].startswith("no closed form: balls overlap")


def test_certify_a_fit_run_and_a_recipe_in_one_dimension(tmp_path):
    """1-D: the LP is exact, so lower = upper = the empirical closed form's cost (docs/theory.md 2, 8)."""
    line = {"name": "line", "data": {"kind": "points", "points": [[0.0], [1.0], [2.5]]},
            "noise": {"distribution": "gaussian", "sigma": 0.03, "samples": 8}, "model": {"width": 24},
            "train": {"steps": 3000}}
    path = tmp_path / "line.yaml"
    path.write_text(json.dumps(line))
    res = _cli("certify", path, "--out", tmp_path / "c", "--json", "-q")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["lower_method"] == "lp-1d" and out["gap"] <= 1e-6
    assert out["closed_form"]["cost_formula"] == pytest.approx(out["upper"], rel=1e-6) and out["closed_form"]["certified"]
    from relu_denoise.network import ShallowDenoiser

    net, _ = ShallowDenoiser.load(tmp_path / "c" / "model.pt")
    data = make_problem(parse_recipe(line), ".")
    residual = np.abs(net.predict(data.samples.reshape(-1, 1)) - np.repeat(data.points, 8, axis=0)).max()
    assert residual <= 1e-6 * 1.0                                  # 1e-6 of the smallest distance (1.0)
    again = _cli("certify", tmp_path / "c", "--out", tmp_path / "c2", "--json", "-q")
    assert again.exit_code == 2 and "not a finished fit run" in again.output   # a certify run has no fit model


def test_a_fit_ends_with_least_cost_output_weights_for_its_units(tmp_path):
    """The polish (train.polish) never costs more or fits worse, and what it reports is the saved network."""
    import torch

    from relu_denoise.network import ShallowDenoiser

    raw = {**GAUSSIAN, "model": {"width": 64}, "train": {"steps": 1500}}
    kept = fit_workflow(parse_recipe(raw, ["train.polish=false"]), ".", out=tmp_path / "raw", device="cpu",
                        figures=False)
    done = fit_workflow(parse_recipe(raw), ".", out=tmp_path / "polished", device="cpu", figures=False)
    info = done.result["polish"]
    assert "polish" not in kept.result and info["cost_before"] == kept.result["cost"]
    assert info["applied"] and done.result["cost"] == info["cost"] <= kept.result["cost"]
    assert done.result["max_residual_rel"] <= raw.get("tol", 0.01)
    net, _ = ShallowDenoiser.load(tmp_path / "polished" / "model.pt")
    assert float(net.path_cost().detach()) == pytest.approx(done.result["cost"], rel=1e-9)
    data = make_problem(parse_recipe(raw), ".")
    Y = data.samples.reshape(-1, 2)
    T = np.repeat(data.points, data.samples.shape[1], axis=0)
    with torch.no_grad():
        residual = np.linalg.norm(net.predict(Y) - T, axis=1).max()
    assert residual <= 0.01 * done.result["tol_unit"]


def test_a_fit_that_does_not_interpolate_is_not_polished(tmp_path):
    """No exact interpolant, nothing to make cheaper: the polish says so at once (its residual-bounded cone
    program took more than 10 minutes on the patches recipe) and the network is the trained one."""
    raw = {**GAUSSIAN, "model": {"width": 2}, "train": {"steps": 1500}}
    done = fit_workflow(parse_recipe(raw), ".", out=tmp_path / "r", device="cpu", figures=False)
    assert done.result["status"] == "not-converged"
    assert done.result["max_residual_rel"] > 0.01
    info = done.result["polish"]
    assert not info["applied"] and info["reason"].startswith("skipped: the fit does not interpolate")
    # two units cannot interpolate 60 samples: the residual stops falling, and the reason says so from the history
    r = np.array(done.extra["fit"].history["max_residual"]) / done.result["tol_unit"]
    n = len(r) // 5
    assert n >= 2 and r[-n:].min() >= 0.9 * r[-2 * n:-n].min()
    assert f"lowest {r[-n:].min():.3g} x min(ell, noise radius) over the last {n} checks" in done.result["reason"]
    assert "more steps are unlikely to help" in done.result["reason"]
    # certify on that run bounds the minimum and says why its units get no exact output weights
    res = _cli("certify", tmp_path / "r", "--out", tmp_path / "c", "--json", "-q", "--time-limit", "5")
    assert res.exit_code in (0, 1), res.output
    assert "cannot interpolate every sample exactly" in json.loads(res.stdout)["polish"]["reason"]


def test_every_command_that_trains_goes_through_the_one_fit_entry(tmp_path, monkeypatch):
    """fit, fit --resume, compare's nn, align, certify and a sweep's grouped fits all call train.fit_many, and
    torch's thread count is what it was after each (the loop's thread rule is scoped to the fit)."""
    import torch
    import yaml

    from relu_denoise import train

    seen, original = [], train.fit_many

    def spy(jobs):
        seen.append(len(jobs))
        return original(jobs)

    monkeypatch.setattr(train, "fit_many", spy)
    line = {"name": "line", "data": {"kind": "points", "points": [[0.0], [1.0], [2.5]]}, "model": {"width": 16},
            "noise": {"distribution": "sphere", "radius": 0.1, "samples": 10}, "train": {"steps": 200},
            "compare": {"test_points": "training"}}
    recipe = tmp_path / "line.yaml"
    recipe.write_text(yaml.safe_dump(line))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "command": "fit", "recipe": "line.yaml", "device": "cpu",
                                     "grid": {"seed": "0:2"}}))
    threads = torch.get_num_threads()
    runs = [("fit", recipe, "--out", tmp_path / "f", "--threads", 2), ("fit", "--resume", tmp_path / "f", "--set",
            "train.steps=300"), ("compare", recipe, "--noise", 0.1, "--n-test", 20, "--out", tmp_path / "c"),
            ("align", recipe, "--out", tmp_path / "a"), ("certify", recipe, "--out", tmp_path / "z",
            "--time-limit", 2), ("sweep", sweep, "--jobs", 1, "--out", tmp_path / "s")]
    for args in runs:
        before = len(seen)
        res = _cli(*args, "-q", "--no-figures") if args[0] not in ("sweep",) else _cli(*args, "-q")
        assert res.exit_code in (0, 1), (args, res.output)
        assert len(seen) > before, args
        assert torch.get_num_threads() == threads, args
    assert seen[-1] == 2                                     # the sweep's two fits went in together
