"""`reluden collect`: one tidy table of any run directories; on the terminal, one table per command with the
columns its rows fill. The run directories here are written by hand (the files a run leaves), so the numbers
in them are the test's own."""

import csv
import io
import json

import pytest
import yaml
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.sweep import by_command, collect, shown_columns, to_csv

FIT = {"cost": 4.4812, "closed_form_cost": 4.4741, "cost_ratio": 1.0016, "max_residual": 1e-3,
       "max_residual_rel": 0.02, "train_mse": 1e-7, "steps": 1200, "converged": True,
       "closed_form": {"geometry": "obtuse-simplex"}}
COMPARE = {"noise": [0.02, 0.1], "n_test": 50, "estimators": {"nn": [1e-5, 2e-3], "identity": [8e-4, 2e-2]},
           "ci_low": {"nn": [5e-6, 1e-3], "identity": [6e-4, 1e-2]},
           "ci_high": {"nn": [2e-5, 3e-3], "identity": [1e-3, 3e-2]}, "best": ["nn", "nn"]}
CERTIFY = {"lower": 4.4695, "upper": 4.4710, "gap": 3.4e-4, "lower_method": "exact-2d", "rounds": 2,
           "fit": {"cost": 4.4788, "closed_form_cost": 4.4741, "steps": 900}}


def _run(folder, command: str, result: dict, sigma: float, status: str = "ok"):
    """A run directory as a command leaves it: recipe.yaml, manifest.json and result.json."""
    folder.mkdir(parents=True)
    recipe = {"name": "tri", "seed": 0, "noise": {"distribution": "gaussian", "sigma": sigma, "samples": 20}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    reason = None if status == "ok" else "max residual above train.tol at train.steps"
    (folder / "manifest.json").write_text(json.dumps({"command": command, "status": status, "reason": reason,
                                                      "start": "2026-01-01T00:00:00+00:00",
                                                      "end": "2026-01-01T00:00:07+00:00"}))
    (folder / "result.json").write_text(json.dumps({"command": command, "status": status, **result}))
    return folder


@pytest.fixture
def runs(tmp_path):
    """Two fits at sigma 0.05 and 0.1, a comparison made with the recipe at 0.05, and a certificate."""
    _run(tmp_path / "res" / "fit-a", "fit", FIT, 0.05)
    _run(tmp_path / "res" / "fit-b", "fit", {**FIT, "cost": 4.6, "converged": False}, 0.1, "not-converged")
    _run(tmp_path / "res" / "cmp", "compare", COMPARE, 0.05)
    _run(tmp_path / "res" / "cert", "certify", CERTIFY, 0.05)
    return tmp_path / "res"


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _table_headers(text: str) -> dict:
    """title -> header cells of each rich table printed in `text` (heavy-box header row)."""
    tables, title = {}, None
    for line in text.splitlines():
        if line.startswith("┃") and title is not None:
            tables[title] = [c.strip() for c in line.strip("┃").split("┃")]
            title = None
        elif line and line[0] not in "┏┡│└┃":
            title = line.strip()
    return tables


def test_compare_rows_keep_the_key_but_not_the_recipes_level(runs):
    rows = collect([runs])
    assert all(list(r)[:2] == ["noise.sigma", "command"] for r in rows)          # the same columns as before
    fits = [r for r in rows if r["command"] == "fit"]
    assert sorted(r["noise.sigma"] for r in fits) == [0.05, 0.1]
    compared = [r for r in rows if r["command"] == "compare"]
    assert len(compared) == 4 and all(r["noise.sigma"] is None for r in compared)   # not 0.05: the levels differ
    assert [(r["noise"], r["estimator"], r["mse"]) for r in compared] == [
        (0.02, "nn", 1e-5), (0.02, "identity", 8e-4), (0.1, "nn", 2e-3), (0.1, "identity", 2e-2)]
    (cert,) = [r for r in rows if r["command"] == "certify"]
    assert (cert["lower"], cert["upper"], cert["gap"], cert["lower_method"]) == (4.4695, 4.4710, 3.4e-4, "exact-2d")


def test_each_commands_table_has_the_columns_its_rows_fill(runs):
    groups = by_command(collect([runs]))
    assert list(groups) == ["fit", "compare", "certify"]                  # the order of the commands' pipeline
    for command, group in groups.items():
        cols = shown_columns(group)
        assert all(any(r.get(c) is not None for r in group) for c in cols), (command, cols)
    assert shown_columns(groups["certify"])[:6] == ["noise.sigma", "status", "lower", "upper", "gap", "lower_method"]
    assert "noise.sigma" not in shown_columns(groups["compare"])
    assert {"noise", "estimator", "mse", "ci_low", "ci_high", "best"} <= set(shown_columns(groups["compare"]))
    fit = shown_columns(groups["fit"])
    assert {"noise.sigma", "cost", "cost_ratio", "converged", "reason"} <= set(fit) and "lower" not in fit
    assert "run_dir" not in fit                                           # sigma tells the two fits apart


def test_runs_the_keys_do_not_tell_apart_are_named(tmp_path):
    _run(tmp_path / "one", "fit", FIT, 0.05)
    _run(tmp_path / "two", "fit", {**FIT, "cost": 5.0}, 0.05)
    rows = collect([tmp_path])
    assert shown_columns(rows)[0] == "run_dir"
    res = _cli("collect", tmp_path)
    assert res.exit_code == 0, res.output
    assert str(tmp_path / "one") in res.stdout and str(tmp_path / "two") in res.stdout


def test_collect_prints_one_whole_table_per_command_on_stdout(runs):
    res = _cli("collect", runs)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""                                                 # the summary is stdout's
    tables = _table_headers(res.stdout)
    assert list(tables) == ["fit: 2 runs", "compare: 1 run, 4 rows (one per noise level and estimator)",
                            "certify: 1 run"]
    assert tables["certify: 1 run"][:5] == ["noise.sigma", "status", "lower", "upper", "gap"]
    assert "noise.sigma" not in tables["compare: 1 run, 4 rows (one per noise level and estimator)"]
    assert "…" not in res.stdout                                            # not cut to 80 columns
    assert "4.4695" in res.stdout and "not-converged" in res.stdout


def test_collect_csv_to_stdout_and_json(runs, tmp_path):
    rows = collect([runs])
    res = _cli("collect", runs, "--csv", "-")
    assert res.exit_code == 0, res.output
    assert res.stdout == to_csv(rows)                                       # stdout holds the CSV alone
    assert sorted(r["command"] for r in csv.DictReader(io.StringIO(res.stdout))) == ["certify", *["compare"] * 4,
                                                                                "fit", "fit"]
    assert "certify: 1 run" in res.stderr                                   # the tables moved to stderr
    res = _cli("collect", runs, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == json.loads(json.dumps(rows))
    assert "certify: 1 run" in res.stderr
    res = _cli("collect", runs, "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 0 and res.stdout == "" and (tmp_path / "t.csv").read_text() == to_csv(rows)
    res = _cli("collect", runs, "--csv", "-", "--json")
    assert res.exit_code == 2 and "--csv - and --json" in res.stderr and res.stdout == ""
