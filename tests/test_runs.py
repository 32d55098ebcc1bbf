"""Runs a script can trust, tried from the outside: every ending recorded, the JSON contract, --out and --resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from relu_denoise.cli import app

TRI = {"name": "tri", "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
       "noise": {"distribution": "sphere", "radius": 0.15, "samples": 20}, "model": {"width": 32},
       "train": {"steps": 3000}, "compare": {"test_points": "training"}}
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _recipe(tmp_path, raw=TRI, name="r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _start(args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "relu_denoise", *map(str, args)], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    start = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < timeout, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_fit_checkpoints_and_records_interrupted(tmp_path, sig):
    # no plateau window ever completes, so the fit trains until the signal (an exact interpolant meets any tol)
    long = {**TRI, "train": {"steps": 10**7, "patience": 10**6, "checkpoint_every": 10**6}}
    out = tmp_path / "run"
    proc = _start(["fit", _recipe(tmp_path, long), "--out", out], tmp_path)
    _wait_for(out / "manifest.json", proc)
    time.sleep(1.0)                                            # inside the training loop
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "interrupted at step" in err and f"reluden fit --resume {out}" in err and "Traceback" not in err
    manifest = _manifest(out)
    assert manifest["status"] == "interrupted" and "interrupted at step" in manifest["reason"]
    assert (out / "checkpoint.pt").is_file() and not (out / "result.json").exists()


def test_compare_interrupted_keeps_its_finished_levels(tmp_path):
    out = tmp_path / "cmp"
    proc = _start(["compare", _recipe(tmp_path), "--noise", 0.05, "--noise", 0.1, "--noise", 0.12, "--n-test", 30,
                   "--set", "train.steps=100000", "--set", "train.patience=1000000", "--out", out], tmp_path)
    _wait_for(out / "compare.csv", proc, timeout=120)           # the first level is done
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "interrupted" and "of 3 noise levels" in result["reason"]
    assert result["noise"] == [0.05] and result["estimators"]["identity"][0] > 0
    rows = (out / "compare.csv").read_text().splitlines()
    assert len(rows) > 1 and all(r.startswith("0.05,") for r in rows[1:])
    assert _manifest(out)["status"] == "interrupted"


def test_memory_refusal_and_data_errors_leave_no_directory(tmp_path):
    huge = {**TRI, "model": {"width": 10**8}}
    res = _cli("fit", _recipe(tmp_path, huge), "--out", tmp_path / "big")
    assert res.exit_code == 2 and "GiB" in res.output and "lower model.width" in res.output
    assert not (tmp_path / "big").exists()
    bad = tmp_path / "pts.csv"
    bad.write_text("0,0\n1,nan\n")
    res = _cli("fit", _recipe(tmp_path, {**TRI, "data": {"kind": "file", "path": str(bad)}}), "--out",
               tmp_path / "nan")
    assert res.exit_code == 2 and "NaN" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "nan").exists()


def test_out_is_refused_when_not_empty_and_force_replaces(tmp_path):
    recipe, out = _recipe(tmp_path), tmp_path / "cf"
    assert _cli("closed-form", recipe, "--out", out, "-q").exit_code == 0
    (out / "stale.png").write_text("from another run")         # a file of the earlier run's kind ...
    _manifest_files(out, ["stale.png"])                          # ... that the earlier run wrote
    again = _cli("closed-form", recipe, "--out", out, "-q")
    assert again.exit_code == 2 and "not empty; give --force" in again.output
    forced = _cli("closed-form", recipe, "--out", out, "-q", "--force", "--json")
    assert forced.exit_code == 0 and not (out / "stale.png").exists()
    result = json.loads(forced.stdout)
    assert result["run_dir"] == str(out.resolve()) and result["command"] == "closed-form"
    assert result["status"] == "ok" and result["seed"] == 0 and result["version"]
    assert not (out / ".reluden.lock").exists()
    manifest = _manifest(out)
    assert {"torch", "numpy", "scipy", "scikit-learn", "matplotlib", "pydantic"} <= set(manifest["versions"])
    assert manifest["host"] and manifest["cpu"] and manifest["torch_threads"] >= 1


def _manifest_files(out: Path, names: list[str]) -> None:
    manifest = _manifest(out)
    manifest["files"] = [*manifest["files"], *names]
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_force_never_deletes_what_reluden_did_not_write(tmp_path):
    """--force empties only an earlier run's own files: a data folder, or a run folder holding a user's file,
    is refused (exit 2, naming what is there) and left as it was."""
    recipe = _recipe(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "measurements.csv").write_text("1,2\n")
    res = _cli("closed-form", recipe, "--out", data, "--force")
    assert res.exit_code == 2 and "measurements.csv" in res.output and "not a reluden run" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in data.iterdir()) == ["measurements.csv"]
    run = tmp_path / "run"
    assert _cli("closed-form", recipe, "--out", run, "-q").exit_code == 0
    (run / "notes.txt").write_text("mine")
    before = sorted(p.name for p in run.iterdir())
    res = _cli("closed-form", recipe, "--out", run, "--force")
    assert res.exit_code == 2 and "notes.txt" in res.output
    assert sorted(p.name for p in run.iterdir()) == before and (run / "notes.txt").read_text() == "mine"


def test_two_force_writers_one_wins_and_the_other_is_refused_by_the_lock(tmp_path):
    """The lock is taken before anything is emptied: the second --force writer exits 2 naming the lock and the
    first run's files are all there at its end."""
    long = {**TRI, "train": {"steps": 10**7, "patience": 10**6, "checkpoint_every": 10**6}}
    out = tmp_path / "run"
    first = _start(["fit", _recipe(tmp_path, long), "--out", out, "--force"], tmp_path)
    _wait_for(out / "manifest.json", first)
    second = subprocess.run([sys.executable, "-m", "relu_denoise", "fit", _recipe(tmp_path, TRI, "b.yaml"), "--out",
                             out, "--force"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "lock" in second.stderr and "another reluden process" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert _manifest(out)["status"] == "running" and (out / "recipe.yaml").is_file()
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode == 1 and _manifest(out)["status"] == "interrupted"
    assert yaml.safe_load((out / "recipe.yaml").read_text())["train"]["steps"] == 10**7      # the first's recipe
    assert (out / "checkpoint.pt").is_file()


def test_written_files_are_readable_under_the_users_umask(tmp_path):
    """Output files take the mode the umask gives (0644 under 022), not mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "cf"
        assert _cli("closed-form", _recipe(tmp_path), "--out", out, "-q").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes and all(m == 0o644 for m in modes.values()), modes


def test_resume_refuses_a_finished_fit_unless_given_more_steps(tmp_path):
    out = tmp_path / "fit"
    recipe = _recipe(tmp_path, {**TRI, "train": {"steps": 300, "ftol": 0}})      # stops at train.steps
    first = _cli("fit", recipe, "--out", out, "-q")
    assert _manifest(out)["status"] in ("ok", "not-converged") and first.exit_code in (0, 1)
    refused = _cli("fit", "--resume", out, "-q")
    assert refused.exit_code == 2 and "--set train.steps=N with N > 300" in refused.output
    more = _cli("fit", "--resume", out, "-q", "--set", "train.steps=600", "--json")
    assert 300 < json.loads(more.stdout)["steps"] <= 600
    assert [r["steps"] for r in _manifest(out)["resumes"]] == [600]


def test_a_fit_that_ended_by_its_rule_drops_its_checkpoint_and_resume_says_why(tmp_path):
    """checkpoint.pt (118 MB at d = 784) is removed once the fit is ok, and the manifest says so; a fit that did not
    converge keeps it, and each --resume records how it ended."""
    done = tmp_path / "done"
    assert _cli("fit", _recipe(tmp_path), "--out", done, "-q", "--no-figures").exit_code == 0
    manifest = _manifest(done)
    assert manifest["status"] == "ok" and not (done / "checkpoint.pt").exists() and (done / "model.pt").is_file()
    assert manifest["checkpoint"].startswith("removed") and "checkpoint.pt" not in manifest["files"]
    refused = _cli("fit", "--resume", done, "-q")
    assert refused.exit_code == 2 and "finished by its stopping rule" in refused.output
    assert "nothing to continue" in refused.output and len(refused.output.strip().splitlines()) == 1
    short = tmp_path / "short"
    recipe = _recipe(tmp_path, {**TRI, "train": {"steps": 200}}, name="short.yaml")
    assert _cli("fit", recipe, "--out", short, "-q", "--no-figures").exit_code == 1
    assert _manifest(short)["status"] == "not-converged" and (short / "checkpoint.pt").is_file()
    assert _cli("fit", "--resume", short, "-q", "--set", "train.steps=400", "--no-figures").exit_code == 1
    (entry,) = _manifest(short)["resumes"]
    assert entry["from_status"] == "not-converged" and entry["status"] == "not-converged" and entry["end"]
    assert entry["steps"] == 400


def test_a_level_gives_the_same_reference_numbers_alone_or_in_a_grid(tmp_path):
    recipe = _recipe(tmp_path, {**TRI, "data": {"kind": "univariate", "n": 6}, "noise": {"sigma": 0.01}})
    alone = _cli("compare", recipe, "--noise", 0.02, "--no-nn", "--n-test", 50, "--out", tmp_path / "a", "--json",
                 "-q")
    grid = _cli("compare", recipe, "--noise", 0.05, "--noise", 0.01, "--noise", 0.02, "--no-nn", "--n-test", 50,
                "--out", tmp_path / "b", "--json", "-q")
    a, b = json.loads(alone.stdout), json.loads(grid.stdout)
    for name, values in a["estimators"].items():
        assert values[0] == b["estimators"][name][2], name
    assert a["closed_form"][0] == b["closed_form"][2]


def test_usage_errors_are_one_line(tmp_path):
    recipe = _recipe(tmp_path)
    for args, words in ((["compare", "--noise", "0"], "noise levels must be > 0"),
                        (["closed-form", recipe, "--rho", "banana"], "--rho"),
                        (["closed-form", recipe, "--set", "seed=yes"], "seed: must be a valid integer"),
                        (["closed-form", recipe, "--set", "name=a/../x"], "name: must be a safe file name"),
                        (["fit", "--bogus"], "No such option: --bogus")):
        res = _cli(*args)
        assert res.exit_code == 2 and words in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output


def test_help_and_version_import_no_torch():
    code = ("import sys; from relu_denoise.cli import app; "
            "sys.exit(int(any(m in sys.modules for m in ('torch', 'scipy', 'matplotlib'))))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    version = subprocess.run([sys.executable, "-m", "relu_denoise", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("reluden ")


@pytest.mark.parametrize("name, damage", [("result.json", '{"status": "ok", "cost":'), ("manifest.json", "not json"),
                                          ("model.pt", b"PK\x03\x04 truncated"), ("checkpoint.pt", b"")])
def test_a_corrupt_run_file_is_one_line_naming_it_and_exit_2(tmp_path, name, damage):
    """align RUN_DIR, certify RUN_DIR and fit --resume on a hand-edited or truncated file: one line naming the
    file, exit 2, nothing else changed; a .pt file is read with weights_only (no code runs)."""
    out = tmp_path / "fit"                      # stopped at train.steps: not-converged, its checkpoint kept
    assert _cli("fit", _recipe(tmp_path, {**TRI, "train": {"steps": 300}}), "--out", out, "-q",
                "--no-figures").exit_code == 1
    path = out / name
    path.write_bytes(damage) if isinstance(damage, bytes) else path.write_text(damage)
    commands = [("align", out), ("certify", out, "--time-limit", 2)] if name != "checkpoint.pt" else []
    if name != "model.pt":                                     # a resume reads no model.pt (it writes a new one)
        commands.append(("fit", "--resume", out, "--set", "train.steps=400"))
    for args in commands:
        res = _cli(*args, "--out", tmp_path / f"new-{args[0]}") if args[0] != "fit" else _cli(*args)
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and name in lines[0], (args, res.output)
        assert "Traceback" not in res.output


def test_a_pickled_payload_in_a_checkpoint_does_not_run(tmp_path):
    import pickle

    from relu_denoise.errors import RunError
    from relu_denoise.train import load_checkpoint

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "checkpoint.pt"
    import torch

    torch.save({"version": 2, "payload": Boom()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(RunError, match="not a readable reluden checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "ran").exists()
