"""What a fit's summary says about the network it returned (issue 22): which check's state, trained or initial,
polished or not, what training did to the path cost, a trend only where the history measured one, and `ok` only
when the stopping rule was met."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.closed_forms import Reference
from relu_denoise.metrics import cost_trend
from relu_denoise.results import Course, FitSummary
from relu_denoise.train.stats import FitStats

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# 5 points on a line in R^3: every check after step 0 has a costlier exact interpolant than step 0's (issue 22)
LINE3 = {"name": "line3", "seed": 0, "data": {"kind": "points", "points": [[i, i, i] for i in range(5)]},
         "noise": {"distribution": "gaussian", "sigma": 0.05, "samples": 100, "mode": "offline"},
         "model": {"width": 256, "skip": True}, "train": {"check_every": 50, "patience": 3}}


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _stats(**kw) -> FitStats:
    base = dict(cost=4.05, train_mse=1e-30, max_residual=1e-13, max_residual_rel=2e-13, steps=20, seconds=1.0,
                converged=False, stop_reason="max-steps", method="augmented-lagrangian", mode="offline", device="cpu",
                dtype="float64", lr=1e-3, penalty=300.0, tol_unit=0.5, ell=5.0, noise_radius=0.5,
                affine_residual=0.05, affine_residual_rel=0.1, width=1024, threads=1, returned_step=0)
    return FitStats(**(base | kw))


def _summary(stats: FitStats, costs: list, steps: list) -> FitSummary:
    history = {"step": steps, "cost": costs}
    return FitSummary(stats, Reference(None, None, "empirical"), 0.01, 10, 6,
                      course=Course.of(history, stats.returned_step))


def test_cost_trend_compares_the_last_checks_with_every_check_before():
    assert cost_trend([5.2]) is None and cost_trend([5.2, 19.6]) is None          # no trend measured
    rising = cost_trend([5.2, 19.6, 55.0])
    assert rising["trend"] == "above" and rising["last_low"] == 55.0 and rising["before_low"] == 5.2
    falling = cost_trend([9.0, 8.0, 7.0, 6.0, 5.0, 4.9, 4.8, 4.7, 4.6, 4.5])
    assert falling["trend"] == "falling" and falling["checks"] == 2 and falling["last_low"] == 4.5
    assert cost_trend([5.0, 4.0, 4.0, 4.0, 4.0002])["trend"] == "level"
    assert cost_trend([5.0, None, 4.0, 4.0])["trend"] == "level"                  # unmeasured checks skipped


def test_a_fit_stopped_at_train_steps_is_not_ok_and_claims_no_unmeasured_fall():
    """The mnist-size case: step 0's interpolant returned (polished), the cost rising 5.2 -> 55 at the checks,
    train.steps reached. main said `ok` and "the path cost was still falling"."""
    s = _summary(_stats(), [5.2, 19.6, 55.0], [0, 10, 20])
    assert s.status == "not-converged" and s.interpolates
    assert "still falling" not in s.reason and "still falling" not in " ".join(s.notes)
    assert "train.steps = 20 reached" in s.reason and "stayed above its earlier low" in s.reason
    assert s.returned == "initial" and any("training did not lower the path cost" in n for n in s.notes)
    out = s.to_dict()
    assert out["status"] == "not-converged" and out["returned"] == "initial" and out["returned_step"] == 0
    assert out["cost_initial"] == 5.2 and out["cost_last_check"] == 55.0 and out["cost_trend"] == "above"


def test_a_fall_is_said_only_where_the_checks_measured_one():
    costs = [9.0, 8.0, 7.0, 6.0, 5.0, 4.9, 4.8, 4.7, 4.6, 4.5]
    s = _summary(_stats(returned_step=900, steps=900, cost=4.5), costs, list(range(0, 1000, 100)))
    assert s.status == "not-converged" and "the path cost was still falling" in s.reason
    assert s.returned == "trained" and not s.notes
    few = _summary(_stats(returned_step=10, steps=10), [5.0, 4.0], [0, 10])
    assert "too few checks to tell" in few.reason and "falling (" not in few.reason


def test_ok_needs_the_stopping_rule_and_an_unrecorded_step_is_not_called_trained():
    done = _summary(_stats(converged=True, stop_reason="converged", returned_step=300), [5.0, 4.0, 4.0], [0, 100, 300])
    assert done.status == "ok" and done.reason is None and done.returned == "trained"
    old = _summary(_stats(converged=True, stop_reason="converged", returned_step=None), [5.0, 4.0, 4.0], [0, 1, 2])
    assert old.returned is None and old.to_dict()["returned"] is None


def test_fit_on_a_line_in_r3_says_it_returned_the_initial_network(tmp_path):
    """Every check after step 0 costs more: the network returned is step 0's, polished; the summary says so."""
    path = tmp_path / "line3.yaml"
    path.write_text(json.dumps(LINE3))
    res = _cli("fit", path, "--out", tmp_path / "run", "--json", "--no-figures")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    first, last = (float(row.split(",")[2]) for row in (history[1], history[-1]))
    assert out["status"] == "ok" and out["stop_reason"] == "converged"
    assert out["returned"] == "initial" and out["returned_step"] == 0 and out["polished"] is True
    assert out["cost_initial"] == first == out["polish"]["cost_before"] and out["cost_last_check"] == last > first
    assert "returned: the step-0 network" in res.stderr and "polished" in res.stderr
    assert any(n.startswith("training did not lower the path cost") for n in out["notes"])


def test_a_fit_that_ran_out_of_steps_exits_not_converged(tmp_path):
    """digits-obtuse-110 at 200 steps: the rule was not met; main wrote status ok beside converged false."""
    res = _cli("fit", RECIPES / "digits-obtuse-110.yaml", "--set", "train.steps=200", "--out", tmp_path / "run",
               "--json", "--no-figures")
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert out["status"] == manifest["status"] == "not-converged" and out["stop_reason"] == "max-steps"
    assert "train.steps = 200 reached" in out["reason"] and "still falling" not in res.stderr
    assert out["returned"] == "initial" and out["cost_last_check"] > out["cost_initial"]
    assert out["cost_initial"] == pytest.approx(out["polish"]["cost_before"])


def test_one_meaning_per_key_and_an_earlier_run_still_collects(tmp_path):
    """`cost` is the run's own network's path cost, the closed form's formula is `cost_formula` (never `cost`),
    `width` the units trained and `kept_units` those of model.pt; a fit run written with the earlier keys
    (`units`, closed_form.cost) gives the same row."""
    import torch

    from relu_denoise.network import ShallowDenoiser
    from relu_denoise.sweep import collect

    path = tmp_path / "line3.yaml"
    path.write_text(json.dumps(LINE3))
    out = tmp_path / "run"
    assert _cli("fit", path, "--out", out, "-q", "--no-figures").exit_code == 0
    result = json.loads((out / "result.json").read_text())
    net, _ = ShallowDenoiser.load(out / "model.pt")
    with torch.no_grad():
        assert result["cost"] == pytest.approx(float(net.path_cost()), rel=1e-9)
    assert "cost" not in result["closed_form"] and result["closed_form"]["cost_formula"] == result["closed_form_cost"]
    assert result["width"] == 256 and result["kept_units"] == net.width < 256 and "units" not in result
    (row,) = collect([out])
    old = {k: v for k, v in result.items() if k not in ("kept_units", "width", "returned", "returned_step")}
    old["units"] = result["kept_units"]
    old["closed_form"] = {**result["closed_form"], "cost": result["closed_form"]["cost_formula"]}
    (out / "result.json").write_text(json.dumps(old))
    (before,) = collect([out])
    assert before["kept_units"] == row["kept_units"] == net.width
    assert {k: v for k, v in before.items() if k not in ("width", "returned", "returned_step")} == \
        {k: v for k, v in row.items() if k not in ("width", "returned", "returned_step")}
