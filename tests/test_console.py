"""Where the command line writes: the summary on stdout (stderr when stdout carries --json), errors and progress
on stderr, progress as plain lines at a steady interval where stderr is not a terminal."""

import json
import re
import time
from pathlib import Path

import pytest
import yaml
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


PROGRESS = re.compile(r"^(?P<label>[^:]+): (?P<words>.*); elapsed (?P<elapsed>\d+) s$")
FIT_WORDS = re.compile(r"^step (\d+)/(\d+)  loss \S+  cost \S+  max residual \S+$")
TRIANGLE = {"name": "tri", "seed": 0, "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
            "noise": {"distribution": "sphere", "radius": 0.1, "samples": 10}, "model": {"width": 32},
            "train": {"steps": 6000, "check_every": 50}, "compare": {"test_points": "training", "n_test": 20}}


def _recipe(tmp_path) -> Path:
    path = tmp_path / "tri.yaml"
    path.write_text(yaml.safe_dump(TRIANGLE))
    return path


def _progress(stderr: str) -> list[dict]:
    """The plain progress lines of stderr, parsed; every line of stderr must be one."""
    lines = [PROGRESS.match(line) for line in stderr.splitlines()]
    assert all(lines), stderr
    return [m.groupdict() for m in lines]


def test_a_fit_not_on_a_terminal_prints_plain_progress_lines_at_the_interval(tmp_path):
    started = time.monotonic()
    res = _cli("fit", _recipe(tmp_path), "--out", tmp_path / "f", "--no-figures", "--json",
               env={"RELUDEN_PROGRESS_INTERVAL": "0.05"})
    wall = time.monotonic() - started
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)                                   # stdout: the JSON alone
    summary_start = res.stderr.index("fit: augmented-lagrangian")       # --json: the summary follows on stderr
    lines = _progress(res.stderr[:summary_start])
    assert 2 <= len(lines) <= wall / 0.05 + 2                        # steady: neither silent nor one per step
    steps = [FIT_WORDS.match(line["words"]) for line in lines]
    assert all(steps) and all(line["label"] == "fit" for line in lines)
    numbers = [int(m.group(1)) for m in steps]
    assert numbers == sorted(numbers) and {int(m.group(2)) for m in steps} == {6000}
    assert numbers[-1] == result["steps"]                            # the last line is where the fit ended
    quiet = _cli("fit", _recipe(tmp_path), "--out", tmp_path / "q", "--no-figures", "-q",
                 env={"RELUDEN_PROGRESS_INTERVAL": "0.05"})
    assert quiet.exit_code == 0 and quiet.stderr == f"{(tmp_path / 'q').resolve()}\n"


def test_tasks_and_sweep_points_print_plain_progress_lines(tmp_path):
    res = _cli("compare", _recipe(tmp_path), "--out", tmp_path / "c", "--no-nn", "--no-figures",
               "--noise", "0.05", "--noise", "0.1", env={"RELUDEN_PROGRESS_INTERVAL": "0.01"})
    assert res.exit_code == 0, res.output
    lines = _progress(res.stderr)
    assert {line["label"] for line in lines} == {"compare"} and lines[-1]["words"].startswith("2/2 done (level 0.1")
    assert "test MSE" in res.stdout and "run directory:" in res.stdout
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "cf", "command": "closed-form", "recipe": "tri.yaml",
                                                     "grid": {"noise.radius": [0.05, 0.1]}}))
    res = _cli("sweep", tmp_path / "s.yaml", "--out", tmp_path / "s", "--jobs", "1",
               env={"RELUDEN_PROGRESS_INTERVAL": "0.01"})
    assert res.exit_code == 0, res.output
    lines = _progress(res.stderr)
    assert lines[-1] == {"label": "sweep cf", "words": "2/2 done, 0 running, 0 failed, 0 cached",
                         "elapsed": lines[-1]["elapsed"]}
    assert "2 points: 2 ok" in res.stdout


@pytest.mark.parametrize("value", ["soon", "0", "-3", "inf"])
def test_a_bad_progress_interval_is_one_line_and_exit_2(tmp_path, value):
    res = _cli("fit", _recipe(tmp_path), "--out", tmp_path / "f", env={"RELUDEN_PROGRESS_INTERVAL": value})
    assert res.exit_code == 2 and res.stderr.startswith("error: RELUDEN_PROGRESS_INTERVAL: expected seconds > 0")
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "f").exists()
