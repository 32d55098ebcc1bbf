"""A fit is held against the best exact interpolant of its samples that is cheap to get (the closed form where it
interpolates them, else the ramps method), and a fit that cannot reach one stops early and says why."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from relu_denoise.cli import app


def _grid(n: int = 3) -> list:
    rng = np.random.default_rng(0)
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2) + rng.uniform(-0.2, 0.2, (n * n, 2))
    return g.tolist()


GRID = {"name": "grid", "data": {"kind": "points", "points": _grid()},
        "noise": {"distribution": "sphere", "radius": 0.1, "samples": 20}}


def _fit(tmp_path, raw, *args):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(app, ["fit", str(path), "--out", str(tmp_path / "run"), "--no-figures", "--json",
                                   "--force", *args])
    return res, json.loads(res.stdout) if res.stdout.strip() else None


def test_a_fit_without_closed_form_reports_the_ramps_reference_and_how_far_above_it_stopped(tmp_path):
    """A jittered 3 x 3 grid: training converges by its rule, above an exact interpolant that the ramps method
    finds in a fraction of a second; the summary, result.json and a note say by how much."""
    res, result = _fit(tmp_path, GRID)
    assert res.exit_code == 0 and result["status"] == "ok" and result["closed_form"]["geometry"] is None
    ref = result["reference"]
    assert result["reference_kind"] == ref["kind"] == "ramps" and ref["complete"]
    assert ref["max_residual"] <= 1e-9 and ref["lower_bound"] <= ref["cost"]          # an exact interpolant
    assert result["reference_ratio"] == pytest.approx(result["cost"] / ref["cost"])
    assert result["reference_ratio"] > 1.05
    note = f"cost {result['reference_ratio']:.3g}x an exact interpolant found by ramps"
    assert any(n.startswith(note) for n in result["notes"])
    assert "reference: ramps, an exact interpolant of the same samples" in res.stderr
    assert f"fit / reference = {result['reference_ratio']:.4g}" in res.stderr
    _, skipped = _fit(tmp_path, GRID, "--set", "train.reference=none")
    assert "reference" not in skipped and skipped["cost"] == result["cost"]


def test_the_closed_form_is_the_reference_where_it_interpolates_the_samples(tmp_path):
    raw = {"name": "tri", "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
           "noise": {"distribution": "sphere", "radius": 0.1, "samples": 20}, "model": {"width": 32}}
    res, result = _fit(tmp_path, raw)
    ref = result["reference"]
    assert ref["kind"] == "closed-form" and ref["cost"] == result["closed_form_cost"]
    assert ref["max_residual"] <= result["tol"] * result["tol_unit"]                 # measured, not assumed


def test_a_fit_that_cannot_interpolate_stops_early_with_the_numbers_and_a_measured_fix(tmp_path):
    """One unit cannot interpolate three Gaussian clouds: instead of training its 20,000 steps to 'not
    converged', the fit stops after three windows of checks, and the fix names what was measured."""
    raw = {"name": "tri", "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
           "noise": {"distribution": "gaussian", "sigma": 0.04, "samples": 20}, "model": {"width": 1}}
    res, result = _fit(tmp_path, raw)
    assert res.exit_code == 1 and result["status"] == "not-converged"
    assert result["stop_reason"] == "no-interpolant" and result["steps"] <= 2000
    reason = result["reason"]
    assert "training stopped there, far from an interpolant" in reason
    units = 2 * 2                                                     # the obtuse triangle's form: two ramps
    assert f"the closed form interpolates these samples, {units} units" in reason and "raise model.width (now 1)" in reason
