"""`reluden flow` from the outside: where the flows of the denoisers end, the audit, bad input, trained levels
cached by content and kept when a flow is interrupted (docs/theory.md 10)."""

import csv
import json

import pytest
import yaml
from typer.testing import CliRunner

from relu_denoise.cli import app

ORTHOGONAL = {"name": "orth", "data": {"kind": "points", "points": [[0, 0], [1.5, 0], [0, 1.2]]},
              "noise": {"distribution": "sphere", "radius": 0.15, "samples": 20}, "model": {"width": 32},
              "train": {"steps": 2000}, "flow": {"kind": "score", "starts": 200, "start_sigma": 0.6}}
OBTUSE = {**ORTHOGONAL, "name": "obtuse", "data": {"kind": "points", "points": [[0, 0], [1.5, 0], [-0.6, 1.2]]}}


def _flow(tmp_path, raw, *args, name="r"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / f"{name}-run"
    res = CliRunner().invoke(app, ["flow", str(path), "--out", str(out), "--no-figures", "--json", "--force",
                                   "--cache", str(tmp_path / "cache"), *map(str, args)])
    return res, (json.loads(res.stdout) if res.exit_code in (0, 1) and res.stdout.strip() else None), out


def test_flows_end_at_virtual_points_on_the_orthogonal_triangle_and_at_training_points_on_the_obtuse(tmp_path):
    res, orth, out = _flow(tmp_path, ORTHOGONAL, name="orth")
    assert res.exit_code == 0, res.output
    assert orth["denoiser"] == "closed-form" and orth["kind"] == "score" and orth["starts"] == 200
    assert orth["counts"]["virtual"] > 0 and orth["virtual_by_size"] == {"2": orth["counts"]["virtual"]}
    assert sum(orth["counts"].values()) == 200 and orth["schedule"] == [{"sigma": 0.15, "rho": 0.15}]
    res, obtuse, _ = _flow(tmp_path, OBTUSE, name="obtuse")
    assert obtuse["counts"]["virtual"] == 0 and obtuse["counts"]["training"] > orth["counts"]["training"]
    rows = list(csv.reader((out / "endpoints.csv").read_text().splitlines()))
    assert rows[0] == ["start0", "start1", "end0", "end1", "class", "size", "nearest", "distance"]
    assert len(rows) == 201 and {r[4] for r in rows[1:]} <= {"training", "virtual", "boundary", "other"}
    sweep = orth["threshold_sweep"]
    assert [s["training"] + s["virtual"] for s in sweep] == sorted(s["training"] + s["virtual"] for s in sweep)


def test_the_closed_form_keeps_every_subset_sum_and_the_audit_says_k_of_c(tmp_path):
    raw = {**ORTHOGONAL, "data": {"kind": "simplex", "shape": "orthogonal", "dim": 5}, "noise": {
        "distribution": "sphere", "radius": 0.1, "samples": 20}}
    res, result, _ = _flow(tmp_path, raw, "--starts", "subset-sums:2,3")
    assert res.exit_code == 0, res.output
    assert result["audit"] == {"2": {"stable": 10, "total": 10, "population": 10, "sampled": False},
                               "3": {"stable": 10, "total": 10, "population": 10, "sampled": False}}
    assert "m = 2: 10 of 10" in res.stderr


@pytest.mark.parametrize("args, raw, words", [
    (["--starts", "subset-sums:2"], {**ORTHOGONAL, "data": {"kind": "points", "points": [[0, 0], [1, 0], [0.5, 0.9]]}},
     "virtual points need an apex"),
    (["--kind", "probability", "--sigma-min", "0.5"], ORTHOGONAL, "sigma_min (0.5) must be < sigma_max"),
    (["--denoiser", "nn", "--sigma-max", "0.7"], ORTHOGONAL, "noise clouds overlap"),
    (["--starts", "subset-sums:2,3"], ORTHOGONAL, "has 2 edges"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_run(tmp_path, args, raw, words):
    res, _, out = _flow(tmp_path, raw, *args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and words in lines[0], res.output
    assert not out.exists()


def test_trained_levels_are_cached_and_an_interrupted_flow_keeps_the_finished_ones(tmp_path, monkeypatch):
    from relu_denoise import train
    from relu_denoise.errors import TrainingError

    raw = {**ORTHOGONAL, "flow": {"kind": "probability", "denoiser": "nn", "levels": 2, "starts": 20,
                                  "sigma_max": 0.15, "sigma_min": 0.05}}
    original, seen = train.fit_many, []

    def first_level_then_ctrl_c(jobs):                       # Ctrl-C after the first level finished
        seen.append(len(jobs))
        return original(jobs[:1]) + [TrainingError("interrupted at step 300", reason="interrupted")] * (len(jobs) - 1)

    monkeypatch.setattr(train, "fit_many", first_level_then_ctrl_c)
    res, _, out = _flow(tmp_path, raw, name="a")
    assert res.exit_code == 1 and "interrupted" in res.output and seen == [2]
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1

    def spy(jobs):
        seen.append(len(jobs))
        return original(jobs)

    monkeypatch.setattr(train, "fit_many", spy)
    res, result, _ = _flow(tmp_path, raw, name="b")
    assert res.exit_code == 0, res.output
    assert seen == [2, 1] and [lv["cached"] for lv in result["levels"]] == [True, False]   # only the missing one
    assert all(lv["interpolates"] for lv in result["levels"])
    res, again, _ = _flow(tmp_path, {**raw, "flow": {**raw["flow"], "starts": 30}}, name="c")
    assert seen == [2, 1] and again["starts"] == 30 and [lv["cached"] for lv in again["levels"]] == [True, True]
    assert [lv["cost"] for lv in again["levels"]] == [lv["cost"] for lv in result["levels"]]


def test_starts_from_a_file_a_fit_run_as_the_denoiser_and_a_sweep_of_flows(tmp_path):
    import numpy as np

    starts = tmp_path / "starts.csv"
    np.savetxt(starts, [[1.4, 1.1], [0.1, 0.2], [1.3, -0.1]], delimiter=",")
    res, result, out = _flow(tmp_path, ORTHOGONAL, "--starts", starts, name="file")
    assert res.exit_code == 0, res.output
    rows = list(csv.reader((out / "endpoints.csv").read_text().splitlines()))[1:]
    assert [r[4] for r in rows] == ["virtual", "training", "training"] and result["starts"] == 3
    fit = CliRunner().invoke(app, ["fit", str(tmp_path / "file.yaml"), "--out", str(tmp_path / "fit"), "-q",
                                   "--no-figures", "--set", "train.steps=5000"])      # to its stopping rule: ok
    assert fit.exit_code == 0, fit.output
    res = CliRunner().invoke(app, ["flow", str(tmp_path / "fit"), "--out", str(tmp_path / "from-fit"), "--json", "-q",
                                   "--no-figures", "--starts", "50"])
    assert res.exit_code == 0, res.output
    from_fit = json.loads(res.stdout)
    assert from_fit["denoiser"] == "nn" and len(from_fit["levels"]) == 1 and from_fit["starts"] == 50
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "command": "flow", "recipe": "file.yaml",
                                     "grid": {"flow.threshold": [0.1, 0.3]}, "set": {"flow.starts": 40}}))
    res = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "sw"), "--jobs", "1", "--json", "-q"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)
    assert [r["flow.threshold"] for r in table] == [0.1, 0.3] and all(r["starts"] == 40 for r in table)
    assert table[0]["memorized"] <= table[1]["memorized"]                 # a wider threshold keeps more
