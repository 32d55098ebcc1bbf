"""The command line from the outside: exit codes, --json equals result.json, files, messages."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.errors import DataError, NoClosedFormError, RecipeError, RunError, SolverError, TrainingError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_closed_form_rays_writes_the_run_directory(tmp_path):
    res = run("closed-form", RECIPES / "rays.yaml", "--out", tmp_path / "run", "--json")
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "run"
    result = json.loads((out / "result.json").read_text())
    assert json.loads(res.stdout) == result
    assert result["geometry"] == "rays" and result["closed_form"]["status"] == "paper" and result["status"] == "ok"
    assert result["cost"] == pytest.approx(result["cost_formula"], rel=1e-10)
    assert result["units"] == 12 and result["dim"] == 2 and result["n_points"] == 7
    for name in ("recipe.yaml", "manifest.json", "ramps.csv", "closed_form.png"):
        assert (out / name).stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["seed"] == 0 and manifest["end"]
    assert "ramps" in res.stderr and "rays" in res.stderr
    assert not list(out.glob(".*.tmp"))


def test_closed_form_digits_reduces_to_the_plane(tmp_path):
    res = run("closed-form", RECIPES / "digits-obtuse.yaml", "--out", tmp_path, "--json", "--quiet")
    assert res.exit_code == 0, res.stderr
    result = json.loads(res.stdout)
    assert (result["geometry"], result["dim"], result["affine_dim"]) == ("obtuse-simplex", 64, 2)
    assert 93 <= result["data"]["largest_angle_deg"] <= 99
    assert res.stderr == f"{tmp_path.resolve()}\n"                 # --quiet: the run directory, alone


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_query_writes_predictions(tmp_path, suffix):
    q = np.array([[0.0, 0.0], [2.05, 0.01], [0.7, 0.3]])
    path = tmp_path / f"q{suffix}"
    np.save(path, q) if suffix == ".npy" else np.savetxt(path, q, delimiter=",")
    res = run("closed-form", RECIPES / "obtuse-triangle.yaml", "--query", path, "--out", tmp_path / "r", "-q")
    assert res.exit_code == 0, res.stderr
    lines = (tmp_path / "r" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "y0,y1,h0,h1"
    rows = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert rows[:, :2] == pytest.approx(q)
    assert rows[:2, 2:] == pytest.approx(np.array([[0, 0], [2, 0]]), abs=1e-12)   # inside the balls


def test_a_query_csv_with_a_header_reads_and_the_manifest_records_the_file(tmp_path):
    """predictions.csv's own header (y0,y1,...) is skipped; the manifest names the file, its points and sha256."""
    path = tmp_path / "q.csv"
    path.write_text("y0,y1\n0.0,0.0\n2.05,0.01\n")
    res = run("closed-form", RECIPES / "obtuse-triangle.yaml", "--query", path, "--out", tmp_path / "r", "-q",
              "--no-figures")
    assert res.exit_code == 0, res.stderr
    rows = (tmp_path / "r" / "predictions.csv").read_text().splitlines()[1:]
    assert [[float(v) for v in row.split(",")[:2]] for row in rows] == [[0.0, 0.0], [2.05, 0.01]]
    query = json.loads((tmp_path / "r" / "manifest.json").read_text())["query"]
    import hashlib

    assert query == {"path": str(path.resolve()), "points": 2, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    again = run("closed-form", RECIPES / "obtuse-triangle.yaml", "--query", tmp_path / "r" / "predictions.csv",
                "--out", tmp_path / "again", "-q")                     # 4 columns for d = 2: refused, one line
    assert again.exit_code == 2 and "expected shape (n, 2), got (2, 4)" in again.output


@pytest.mark.parametrize("text, words", [("y0,y1\n0,0\n0.5,x\n", "'x' to float64 on line 3, column 2"),
                                         ("y0,0.3\n0,0\n", "'y0' to float64 on line 1, column 1"),
                                         ("y0,y1\n0,0\n1\n", "line 3 has 1 field(s), the lines before 2")],
                         ids=["bad value", "half a header", "short row"])
def test_a_malformed_query_row_is_one_line_naming_the_files_line(tmp_path, text, words):
    path = tmp_path / "q.csv"
    path.write_text(text)
    res = run("closed-form", RECIPES / "obtuse-triangle.yaml", "--query", path, "--out", tmp_path / "r")
    assert res.exit_code == 2 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output


NO_CLOSED_FORM = [
    (["closed-form", RECIPES / "patches.yaml", "--set", "noise.radius=0.3"], "no closed form: balls overlap"),
    (["closed-form", RECIPES / "rays.yaml", "--set", "data.angles_deg=[0, 60, 180]"], "no closed form: rays"),
    (["closed-form", RECIPES / "rays.yaml", "--rho", "0.6"], "no closed form: balls overlap"),
]


@pytest.mark.parametrize("args,message", NO_CLOSED_FORM, ids=[m for _, m in NO_CLOSED_FORM])
def test_no_closed_form_is_a_recorded_result_with_exit_3(tmp_path, args, message):
    res = run(*args, "--out", tmp_path / "r", "--json")
    assert res.exit_code == 3, res.output
    assert message in res.stderr and "Traceback" not in res.output
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert json.loads(res.stdout) == result
    assert result["status"] == "no-closed-form" and result["reason"].startswith(message)
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"] == "no-closed-form"


BAD_USAGE = [
    (["closed-form", RECIPES / "rays.yaml", "--rho", "big"], "--rho"),
    (["closed-form", RECIPES / "rays.yaml", "--set", "noise.sigma=-1"], "noise.sigma: must be > 0, got -1"),
    (["closed-form", RECIPES / "rays.yaml", "--set", "noise.sigmaa=1"], "noise.sigmaa: unknown key"),
    (["closed-form", "missing.yaml"], "recipe: file not found"),
    (["closed-form", RECIPES / "rays.yaml", "--query", "nope.npy"], "--query: file not found"),
    (["closed-form", RECIPES / "rays.yaml", "--set", "data.kind=file", "--set", "data.path=nope.csv"],
     "unknown key"),
]


@pytest.mark.parametrize("args,message", BAD_USAGE, ids=[m for _, m in BAD_USAGE])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    res = run(*args, "--out", tmp_path / "r")
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r" / "result.json").exists()


def test_bad_query_shape(tmp_path):
    path = tmp_path / "q.npy"
    np.save(path, np.zeros((4, 3)))
    res = run("closed-form", RECIPES / "rays.yaml", "--query", path, "--out", tmp_path / "r")
    assert res.exit_code == 2
    assert "--query (" in res.output and "): expected shape (n, 2), got (4, 3)" in res.output


@pytest.mark.parametrize("command", ["closed-form", "fit", "compare", "align", "certify", "flow", "reproduce", "sweep",
                                     "collect"])
def test_every_command_has_help_and_is_in_the_readme(command):
    res = run(command, "--help")
    assert res.exit_code == 0 and "Usage" in res.stdout
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"reluden {command}" in readme


def test_closed_form_collinear_in_r3_draws_the_curve_along_the_line(tmp_path):
    res = run("closed-form", RECIPES / "subspace.yaml", "--out", tmp_path, "--json", "-q")
    assert res.exit_code == 0, res.stderr
    result = json.loads(res.stdout)
    assert (result["geometry"], result["dim"], result["affine_dim"]) == ("univariate", 3, 1)
    assert result["figure"] == "closed_form.png" and (tmp_path / "closed_form.png").stat().st_size > 0


ENDINGS = [
    (TrainingError("diverged at step 7: lower train.lr", reason="diverged"), 1, "error: diverged at step 7"),
    (KeyboardInterrupt(), 1, "interrupted"),
    (NoClosedFormError("rays: two rays make an angle under 90 degrees", kind="geometry"), 3,
     "error: no closed form: rays"),
    (SolverError("no optimal point", program="restricted dual", status="infeasible"), 1,
     "error: solver failed: restricted dual (status infeasible): no optimal point"),
    (RecipeError("noise.sigma: must be > 0, got -1"), 2, "error: noise.sigma: must be > 0, got -1"),
    (RunError("run directory not found: nope"), 2, "error: run directory not found: nope"),
    (MemoryError(), 1, "error: out of memory (the run directory records it)"),
]


@pytest.mark.parametrize("exc, code, line", ENDINGS, ids=[type(e).__name__ for e, _, _ in ENDINGS])
@pytest.mark.parametrize("command", ["closed-form", "sweep"])
def test_every_command_ends_by_the_one_table_of_exceptions(monkeypatch, tmp_path, command, exc, code, line):
    """The same exception ends closed-form (a run) and sweep (a batch) with the same status and one line."""
    def raising(*args, **kwargs):
        raise exc

    monkeypatch.setattr("relu_denoise.workflows.closed_form_workflow", raising)
    monkeypatch.setattr("relu_denoise.sweep.load_sweep", raising)
    res = run(command, RECIPES / "rays.yaml", "--out", tmp_path / "r")
    assert res.exit_code == code, res.output
    assert res.stderr.startswith(line) and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == "" and "Traceback" not in res.output


def test_library_words_are_printed_as_they_are(monkeypatch, tmp_path):
    """A message holding square brackets (a file name, a list) is printed literally, never read as rich markup."""
    def raising(*args, **kwargs):
        raise DataError("data.path: cannot read [bold]results[/bold].csv")

    monkeypatch.setattr("relu_denoise.workflows.closed_form_workflow", raising)
    res = run("closed-form", RECIPES / "rays.yaml", "--out", tmp_path / "r")
    assert res.exit_code == 2 and res.stderr == "error: data.path: cannot read [bold]results[/bold].csv\n"


@pytest.mark.parametrize("overrides, message", [
    (["train.steps=0"], "train.steps: must be >= 1, got 0"),
    (["train.steps=many"], "train.steps: must be a valid integer, got 'many'"),
    (["train.lr=0.1"], "--resume continues a run as it was"),
    (["train.steps=500", "seed=2"], "--resume continues a run as it was"),
    (["train=5"], "--resume continues a run as it was"),
])
def test_resume_takes_only_train_steps_checked_as_the_recipe_checks_it(tmp_path, overrides, message):
    args = [a for o in overrides for a in ("--set", o)]
    res = run("fit", "--resume", tmp_path, *args)
    assert res.exit_code == 2 and message in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1
