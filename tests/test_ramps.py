"""The ramps method (train/ramps.py, docs/training.md 12): gaps free of samples, exact interpolation, the
closed forms, the lower bound, the cost of the explicit weights, and its refusals."""

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from relu_denoise import closed_form
from relu_denoise.cli import app
from relu_denoise.errors import RecipeError, TrainingError
from relu_denoise.noise import NoiseSpec, offline_samples
from relu_denoise.recipe import ModelSpec, TrainSpec
from relu_denoise.train import fit_denoiser
from relu_denoise.train.ramps import directions, ramp_dictionary, ramp_network, ramp_rounds

RAMPS = TrainSpec(method="ramps")


def _data(X, radius=0.1, M=20, seed=0):
    return offline_samples(np.asarray(X, float), NoiseSpec(distribution="sphere", radius=radius, samples=M),
                           rng=np.random.default_rng(seed))


def _grid(n=9, seed=0):
    side = int(np.ceil(np.sqrt(n)))
    grid = np.array([(i, j) for i in range(side) for j in range(side)][:n], float)
    return grid + np.random.default_rng(seed).uniform(-0.1, 0.1, grid.shape)


def _fit(X, S, model=None, train=RAMPS):
    return fit_denoiser(X, S, model or ModelSpec(width=None), train, seed=0)


def test_every_ramp_gap_is_free_of_samples_and_its_pattern_says_the_side():
    X = _grid()
    S = _data(X)
    ramps = ramp_dictionary(S, directions(X, np.random.default_rng(0)))
    z = np.einsum("nmd,jd->jnm", S, ramps.u)
    below = z.max(axis=2) <= ramps.lo[:, None]
    above = z.min(axis=2) >= ramps.hi[:, None]
    assert len(ramps.u) > 50 and np.all(ramps.hi > ramps.lo)
    assert np.all(below | above)                       # no cloud straddles a gap
    assert np.array_equal(above, ramps.pattern)
    assert np.allclose(np.linalg.norm(ramps.u, axis=1), 1.0)


def test_univariate_fit_is_the_empirical_closed_form():
    X = np.array([[0.0], [1.0], [2.5], [3.1]])
    S = _data(X)
    fit = _fit(X, S)
    form = closed_form(X, samples=S)
    assert fit.stats.converged
    assert fit.stats.cost / form.cost_formula == pytest.approx(1.0, abs=1e-3)
    assert fit.stats.lower_bound <= fit.stats.cost * (1 + 1e-9)
    worst = np.abs(fit.net.predict(S.reshape(-1, 1)) - np.repeat(X, 20, axis=0)).max()
    assert worst <= 1e-9 and worst == pytest.approx(fit.stats.max_residual, abs=1e-12)


@pytest.mark.parametrize("X", [[[0, 0], [2, 0], [-1, 1]],                          # obtuse: ramps along edges
                               [[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]]])            # equilateral: altitudes
def test_triangles_reach_their_closed_forms(X):
    X = np.array(X, float)
    S = _data(X, radius=0.1, M=60)
    fit = _fit(X, S)
    assert fit.stats.max_residual_rel <= 1e-6
    assert fit.stats.cost / closed_form(X, samples=S).cost_formula == pytest.approx(1.0, abs=0.01)


def test_the_network_costs_what_the_ramps_cost_and_the_bound_is_below_it():
    X = _grid(12)
    S = _data(X)
    ramps = ramp_dictionary(S, directions(X, np.random.default_rng(1)))
    costs, lowers = [], []
    for r, cols, D, cost, lower, residual, added in ramp_rounds(ramps, X, 60):
        costs.append(cost)
        lowers += [] if lower is None else [lower]
        assert residual <= 1e-9
    assert len(lowers) == 6 and all(b <= a * (1 + 1e-12) for a, b in zip(costs, costs[1:]))   # IRLS: cost falls
    assert max(lowers) <= min(costs)                                        # weak duality
    assert (costs[-1] - lowers[-1]) / costs[-1] < 0.01
    net = ramp_network(ramps.take(cols), D, X, skip=True)
    with torch.no_grad():
        assert float(net.path_cost()) == pytest.approx(costs[-1], rel=1e-4)  # 2 ||D|| / gap per ramp = its 2 units
    Y = S.reshape(-1, 2)
    assert np.abs(net.predict(Y) - np.repeat(X, 20, axis=0)).max() <= 1e-9


def test_no_ramps_between_clouds_is_a_training_error_that_says_how_far_they_span():
    X = np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]])
    with pytest.raises(TrainingError, match=r"span 1 of the 3 clouds' patterns; lower the noise"):
        _fit(X, _data(X, radius=0.45, M=60))


def test_refusals_a_width_below_the_solution_and_online_noise():
    X = _grid()
    with pytest.raises(RecipeError, match="model.width = 4 is below the .* units the ramps method's solution uses"):
        _fit(X, _data(X), ModelSpec(width=4))
    with pytest.raises(RecipeError, match="ramps needs offline samples"):
        _fit(X, NoiseSpec(distribution="sphere", radius=0.1, samples=20))


def test_results_do_not_depend_on_the_thread_count():
    X = _grid(16)
    S = _data(X)
    one = _fit(X, S, train=TrainSpec(method="ramps", threads=1))
    two = _fit(X, S, train=TrainSpec(method="ramps", threads=2))
    assert one.stats.cost == pytest.approx(two.stats.cost, rel=1e-9)
    assert one.stats.steps == two.stats.steps


def test_cli_fit_with_ramps_writes_the_bound_and_no_polish(tmp_path):
    recipe = {"name": "grid", "seed": 0, "data": {"kind": "points", "points": _grid().tolist()},
              "noise": {"distribution": "sphere", "radius": 0.1, "samples": 20}, "train": {"method": "ramps"}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(out), "--no-figures"])
    assert res.exit_code == 0, res.output
    assert "fit: ramps (offline)" in res.stdout and "lower bound" in res.stdout and "rounds in" in res.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok" and result["method"] == "ramps" and "polish" not in result
    assert result["lower_bound"] <= result["cost"] and result["kept_units"] % 2 == 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"


def test_column_generation_reaches_the_cost_of_the_whole_dictionary(monkeypatch):
    import relu_denoise.train.ramps as ramps_module

    X = _grid(16)
    S = _data(X)
    whole = _fit(X, S)
    assert whole.stats.ramps > 150
    monkeypatch.setattr(ramps_module, "_ACTIVE", 30)        # start from the 30 widest: they do not span 16 clouds
    monkeypatch.setattr(ramps_module, "_ADD", 10)
    grown = _fit(X, S)
    assert grown.stats.converged and grown.stats.max_residual_rel <= 1e-6
    assert grown.stats.cost == pytest.approx(whole.stats.cost, rel=2e-3)
    assert grown.stats.lower_bound <= grown.stats.cost


def test_a_sweep_of_ramps_fits_runs_each_alone_by_the_ramps_method(tmp_path):
    from relu_denoise.sweep import load_sweep, run_sweep
    from relu_denoise.train import Trainer

    recipe = {"name": "grid", "seed": 0, "data": {"kind": "points", "points": _grid().tolist()},
              "noise": {"distribution": "sphere", "radius": 0.1, "samples": 20}, "train": {"method": "ramps"}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    sweep = {"name": "s", "command": "fit", "recipe": "r.yaml", "device": "cpu", "grid": {"seed": "0:2"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    done = run_sweep(load_sweep(tmp_path / "s.yaml", out=tmp_path / "a"), jobs=1)
    assert done.ok and len(done.rows) == 2
    for row in done.rows:
        result = json.loads((tmp_path / "a" / row["run_dir"].split("/")[-1] / "result.json").read_text())
        assert result["method"] == "ramps" and "lower_bound" in result
    with pytest.raises(RecipeError, match="ramps trains nothing"):
        Trainer(_grid(), _data(_grid()), ModelSpec(width=None), RAMPS, generator=torch.Generator())
