"""Where the command line writes: the summary on stdout (stderr when stdout carries --json), errors and progress
on stderr, progress as plain lines at a steady interval where stderr is not a terminal."""

import json
from pathlib import Path

from typer.testing import CliRunner

from relu_denoise.cli import app

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _cli(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def test_the_summary_goes_to_stdout_without_json_and_stdout_holds_only_json_with_it(tmp_path):
    res = _cli("closed-form", RECIPES / "rays.yaml", "--out", tmp_path / "a", "--no-figures")
    assert res.exit_code == 0, res.output
    assert "rays" in res.stdout and f"run directory: {(tmp_path / 'a').resolve()}" in res.stdout
    assert res.stderr == ""
    res = _cli("closed-form", RECIPES / "rays.yaml", "--out", tmp_path / "b", "--no-figures", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads((tmp_path / "b" / "result.json").read_text())
    assert "rays" in res.stderr and "run directory:" in res.stderr
    res = _cli("closed-form", RECIPES / "rays.yaml", "--out", tmp_path / "c", "--no-figures", "-q")
    assert res.stdout == "" and res.stderr == f"{(tmp_path / 'c').resolve()}\n"
