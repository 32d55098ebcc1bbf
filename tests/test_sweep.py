"""Sweeps and collect: one run directory per point, a cache by content, resume, executors, one table."""

import json
import shutil

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from relu_denoise.cli import app
from relu_denoise.errors import RecipeError
from relu_denoise.sweep import (POINT_FILE, collect, collect_frame, load_sweep, parse_grid_option, plan,
                                point_action, run_sweep)

TRIANGLE = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])   # obtuse: a closed form exists
RECIPE = {"name": "tri", "seed": 0, "data": {"kind": "file", "path": "tri.npy"},
          "noise": {"distribution": "sphere", "radius": 0.05, "samples": 10},
          "model": {"width": 32}, "train": {"steps": 6000, "tol": 0.25, "checkpoint_every": 700}}
SWEEP = {"name": "tri-radius", "command": "fit", "recipe": "tri.yaml",
         "grid": {"noise.radius": [0.05, 0.1, 0.15]}, "set": {"train": {"steps": 6000}}, "device": "cpu"}
RADII = [0.05, 0.1, 0.15]


def _write(folder, sweep=SWEEP, recipe=RECIPE):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "tri.npy", TRIANGLE)
    (folder / "tri.yaml").write_text(yaml.safe_dump(recipe))
    (folder / "s.yaml").write_text(yaml.safe_dump(sweep))
    return folder / "s.yaml"


def _numbers(rows):
    """The rows without what differs between runs of the same points (paths, wall time)."""
    return [{k: v for k, v in r.items() if k not in ("run_dir", "seconds")} for r in rows]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """Three fits swept over the noise radius, in this process (--jobs 1): (sweep file, result). Their
    checkpoints are kept (a fit that converges drops its own), so that tests can turn a point into an interrupted
    one."""
    path = _write(tmp_path_factory.mktemp("sweep"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("relu_denoise.workflows.fitting.drop_checkpoint", lambda run: None)
        result = run_sweep(load_sweep(path, out=path.parent / "out"), jobs=1)
    return path, result


def _copy(done, tmp_path):
    """A copy of the finished sweep (sweep file, recipe, data and sweep directory) to change freely."""
    path, _ = done
    shutil.copytree(path.parent, tmp_path / "s")
    return tmp_path / "s" / "s.yaml", tmp_path / "s" / "out"


# ---------------------------------------------------------------- running, caching, resuming


def test_a_sweep_writes_one_run_directory_and_one_row_per_point(done):
    path, result = done
    out = path.parent / "out"
    assert result.ok and result.counts.done == 3 and result.counts.cached == 0
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 3
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["command"] == "fit" and manifest["status"] == "ok"
        assert (run / "result.json").is_file() and (run / POINT_FILE).is_file()
    rows = result.rows
    assert [r["noise.radius"] for r in rows] == RADII                   # grid order, resolved values
    assert {r["run_dir"] for r in rows} == {str(p) for p in runs}
    for r in rows:
        assert r["status"] == "ok" and r["reason"] is None and r["seconds"] > 0
        assert r["cost_ratio"] == pytest.approx(r["cost"] / r["closed_form_cost"])
        assert r["geometry"] == "obtuse-simplex" and r["max_residual"] > 0
    table = json.loads((out / "sweep.json").read_text())
    assert table["keys"] == ["noise.radius"] and table["rows"] == json.loads(json.dumps(rows))
    lines = (out / "sweep.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("noise.radius,command,status,reason,run_dir,seconds,")
    assert (out / "sweep.png").stat().st_size > 0


def test_run_again_every_point_is_cached_with_the_same_rows(done):
    path, result = done
    again = run_sweep(load_sweep(path, out=path.parent / "out"), jobs=1)
    assert again.counts.cached == 3 and again.counts.done == 0 and again.ok
    assert again.rows == result.rows                                    # seconds too: the first run's


def test_point_directories_depend_on_content_not_grid_order(done, tmp_path):
    path, result = done
    flipped = _write(tmp_path, {**SWEEP, "grid": {"noise.radius": RADII[::-1]}})
    points = load_sweep(flipped, out=path.parent / "out").points
    assert sorted(p.run_dir for p in points) == sorted(r["run_dir"] for r in result.rows)
    changed = load_sweep(path, out=path.parent / "out", grid=["noise.samples=11"]).points
    assert not {p.run_dir for p in changed} & {r["run_dir"] for r in result.rows}


def test_a_half_done_sweep_finishes_only_the_rest_with_the_same_numbers(done, tmp_path):
    _, result = done
    path, out = _copy(done, tmp_path)
    runs = [r["run_dir"].replace(str(done[0].parent), str(path.parent)) for r in result.rows]
    killed = 1                  # its last checkpoint (every 700 steps) may be its stopping step: it stops there again
    shutil.rmtree(runs[0])                                              # never ran
    manifest = json.loads((out / runs[killed] / "manifest.json").read_text())
    manifest.update(status="interrupted", reason="interrupted at step 2000")
    (out / runs[killed] / "manifest.json").write_text(json.dumps(manifest))
    (out / runs[killed] / "result.json").unlink()
    sweep = load_sweep(path, out=out)
    actions = ["run", "cached", "cached"]
    actions[killed] = "resume"
    assert [p.action for p in plan(sweep)] == actions
    finished = run_sweep(sweep, jobs=1)
    assert finished.counts.done == 2 and finished.counts.cached == 1 and finished.ok
    assert _numbers(finished.rows) == _numbers(result.rows)              # the resumed fit equals the uninterrupted one
    assert json.loads((out / runs[killed] / "manifest.json").read_text())["resumes"]


def test_which_points_run_again(tmp_path):
    run = tmp_path / "r"
    assert point_action(run, "fit") == "run"                            # no directory
    run.mkdir()
    for status, files, command, action in [
        ("ok", ["result.json"], "fit", "cached"), ("not-converged", ["result.json"], "fit", "cached"),
        ("no-closed-form", ["result.json"], "closed-form", "cached"), ("ok", [], "fit", "run"),
        ("failed", ["result.json", "checkpoint.pt"], "fit", "run"), ("interrupted", ["checkpoint.pt"], "fit", "resume"),
        ("running", ["checkpoint.pt"], "fit", "resume"), ("running", [], "fit", "run"),
        ("interrupted", ["checkpoint.pt"], "align", "run"), ("interrupted", [], "compare", "run"),
    ]:
        for f in run.iterdir():
            f.unlink()
        (run / "manifest.json").write_text(json.dumps({"command": command, "status": status}))
        for f in files:
            (run / f).write_text("{}")
        assert point_action(run, command) == action, (status, files, command)


def test_a_failing_point_does_not_stop_the_others(done, tmp_path):
    """Worker processes (--jobs 2): three cached points, three whose data file is missing."""
    path, out = _copy(done, tmp_path)
    sweep = load_sweep(path, out=out, grid=["data.path=tri.npy,missing.npy"])
    assert [p.action for p in plan(sweep)] == ["cached", "run"] * 3
    result = run_sweep(sweep, jobs=2)
    assert not result.ok and result.counts.failed == 3 and result.counts.cached == 3
    assert [r["status"] for r in result.rows] == ["ok", "failed"] * 3
    for r in result.rows[1::2]:
        assert "missing.npy" in r["reason"] and r["cost"] is None
        assert json.loads((out / r["run_dir"] / "manifest.json").read_text())["status"] == "failed"
    assert [r["data.path"] for r in result.rows] == ["tri.npy", "missing.npy"] * 3
    assert [p.action for p in plan(load_sweep(path, out=out, grid=["data.path=tri.npy,missing.npy"]))] \
        == ["cached", "run"] * 3                                        # failed points run again
    assert len((out / "sweep.csv").read_text().splitlines()) == 7


def test_dask_local_cluster_gives_the_same_table(done, tmp_path):
    """A real LocalCluster of two worker processes, one point each (two of the three, for time)."""
    path, result = done
    dask = run_sweep(load_sweep(path, out=tmp_path / "dask", grid=["noise.radius=0.05,0.1"]), jobs=2,
                     executor="dask")
    assert dask.ok and dask.counts.done == 2
    assert _numbers(dask.rows) == _numbers(result.rows[:2])
    assert [r["run_dir"].rsplit("/", 1)[1] for r in dask.rows] == [r["run_dir"].rsplit("/", 1)[1]
                                                                    for r in result.rows[:2]]


# ---------------------------------------------------------------- collect


def test_collect_on_a_sweep_directory_gives_the_sweeps_rows(done):
    path, result = done
    out = path.parent / "out"
    assert collect([out]) == result.rows
    assert collect([result.rows[1]["run_dir"]]) == [result.rows[1]]
    frame = collect_frame([out])
    assert list(frame["noise.radius"]) == RADII and list(frame.columns) == list(result.rows[0])


def test_collect_of_hand_made_runs_finds_the_keys_that_differ(done, tmp_path):
    """Runs without sweep_point.json (a shell loop): the columns are the recipe keys that differ."""
    _, out = _copy(done, tmp_path)
    for run in out.iterdir():
        if run.is_dir():
            (run / POINT_FILE).unlink()
    rows = collect([tmp_path])
    assert sorted(r["noise.radius"] for r in rows) == RADII
    assert list(rows[0])[:2] == ["noise.radius", "command"]


def test_collect_cli_json_and_csv(done, tmp_path):
    path, result = done
    res = _cli("collect", path.parent / "out", "--json", "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads(json.dumps(result.rows))
    assert (tmp_path / "t.csv").read_text() == (path.parent / "out" / "sweep.csv").read_text()
    res = _cli("collect", tmp_path / "nothing")
    assert res.exit_code == 2 and "no such file or directory" in res.stderr


# ---------------------------------------------------------------- the command line


def test_sweep_cli_cached_json_and_exit_status(done):
    path, result = done
    res = _cli("sweep", path, "--out", path.parent / "out", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads(json.dumps(result.rows))
    assert "3 cached" in res.stderr and "sweep.csv" in res.stderr


def test_sweep_cli_help_describes_every_option():
    for command, options in (("sweep", ["--jobs", "--executor", "--scheduler", "--out", "--grid", "--force",
                                        "--figures", "--json", "--quiet", "dask-jobqueue", "Default"]),
                             ("collect", ["--json", "--csv", "DataFrame"])):
        res = _cli(command, "--help")
        assert res.exit_code == 0
        for word in options:
            assert word in res.stdout, (command, word)


@pytest.mark.parametrize("change, message", [
    ({"grids": {}}, "grids: unknown key"),
    ({"command": "train"}, "command: must be"),
    ({"recipe": "nope.yaml"}, "recipe: file not found"),
    ({"grid": {"noise.sgima": [0.1]}}, "grid noise.sgima=0.1: noise.sgima: unknown key"),
    ({"grid": {"noise.radius": [0.1, -1]}}, "grid noise.radius=-1: noise.radius: must be > 0"),
    ({"grid": {"seed": 3}}, "grid: seed: expected a list of values or a quoted range"),
    ({"device": "cuda:7"}, "device: --device cuda:7"),
    ({"grid": {"seed": [1, 1]}}, "appears twice"),
    ({"set": {"model.widht": 3}}, "set: model.widht: unknown key"),
    ({"set": {"noise.radius": 0.1}}, "noise.radius is both fixed (set) and swept (grid)"),
    ({"noise": [0.1]}, "noise: only for command compare"),
    ({"tol": 0.01}, "tol: only for command certify (this sweep's command is fit)"),
    ({"command": "certify", "time_limit": 0.5}, "time_limit: must be >= 1"),
], ids=lambda v: str(v)[:30])
def test_bad_sweep_files_give_one_line_and_exit_2(tmp_path, change, message):
    path = _write(tmp_path, {**SWEEP, **change})
    res = _cli("sweep", path, "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "out").exists()                              # nothing ran


def test_bad_options_exit_2(tmp_path):
    path = _write(tmp_path)
    for args, message in ((["--grid", "seed"], "expected KEY=V1,V2"), (["--grid", "seed=3:3"], "at least one"),
                          (["--scheduler", "tcp://x:1"], "--executor dask"), (["--executor", "slurm"], "local or dask")):
        res = _cli("sweep", path, "--out", tmp_path / "out", *args)
        assert res.exit_code == 2 and message in res.stderr, (args, res.output)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    res = _cli("sweep", path, "--out", tmp_path / "full")
    assert res.exit_code == 2 and "not a sweep directory" in res.stderr


@pytest.mark.parametrize("text, key, values", [
    ("noise.sigma=0.01,0.02", "noise.sigma", [0.01, 0.02]),
    ("seed=0:3", "seed", [0, 1, 2]),
    ("seed=1:7:2", "seed", [1, 3, 5]),
    ("noise.sigma=1e-3", "noise.sigma", [0.001]),
    ("noise.distribution=sphere,ball", "noise.distribution", ["sphere", "ball"]),
    ("data.points=[[[0, 0], [1, 0]], [[0, 0], [2, 0]]]", "data.points", [[[0, 0], [1, 0]], [[0, 0], [2, 0]]]),
    (" model.width = 32 ", "model.width", [32]),
])
def test_grid_option_parsing(text, key, values):
    assert parse_grid_option(text) == (key, values)


@pytest.mark.parametrize("text", ["seed", "=1", "seed=", "seed=0:5:0", "seed=1,1", "seed=[1"])
def test_bad_grid_options(text):
    with pytest.raises(RecipeError, match="--grid"):
        parse_grid_option(text)


def test_command_line_grid_replaces_the_files_key_and_product_order(tmp_path):
    path = _write(tmp_path)
    sweep = load_sweep(path, grid=["noise.radius=0.2,0.3", "seed=0:2"], out=tmp_path / "o")
    assert sweep.keys == ["noise.radius", "seed"]
    assert [p.values for p in sweep.points] == [{"noise.radius": r, "seed": s} for r in (0.2, 0.3) for s in (0, 1)]
    assert len({p.run_dir for p in sweep.points}) == 4


# ---------------------------------------------------------------- no side effects on the process


def test_a_task_in_this_process_leaves_argv_and_threads_as_they_were(tmp_path):
    """A worker's task sets torch threads for itself only, and records the sweep's command line in the point's
    manifest without rewriting sys.argv; a stop flag handed in skips the task."""
    import sys

    import torch

    from relu_denoise.sweep import guarded_task, run_task
    from relu_denoise.sweep.executors import StopFlag

    path = _write(tmp_path, {**SWEEP, "command": "closed-form"})
    points = plan(load_sweep(path, out=tmp_path / "out"))
    threads, argv = torch.get_num_threads(), list(sys.argv)
    stop = StopFlag(tmp_path / "stop")
    stop.set()
    assert guarded_task(points[:1], stop) == [[]] and not (tmp_path / "out").exists()
    stop.clear()
    for p in points:
        p.threads, p.argv = (1 if threads != 1 else 2), ["reluden", "sweep", str(path), "--jobs", "3"]
    (rows,) = guarded_task(points[:1], stop)
    assert sys.argv == argv and torch.get_num_threads() == threads
    manifest = json.loads((tmp_path / "out" / rows[0]["run_dir"] / "manifest.json").read_text())
    assert rows[0]["status"] == "ok" and manifest["argv"] == points[0].argv
    assert manifest["torch_threads"] == points[0].threads             # set while the task ran
    run_task(points[1:2])
    assert sys.argv == argv and torch.get_num_threads() == threads
    assert json.loads((tmp_path / "out" / points[1].run_dir / "manifest.json").read_text())["argv"] == points[1].argv


# ---------------------------------------------------------------- failures are recorded, never swallowed


def _interrupted_copy(done, tmp_path):
    """A copy of the finished sweep whose first point reads as interrupted with a checkpoint:
    (sweep file, sweep directory, that point's run directory)."""
    path, out = _copy(done, tmp_path)
    run = out / done[1].rows[0]["run_dir"].rsplit("/", 1)[1]
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="interrupted", reason="interrupted at step 2000")
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "result.json").unlink()
    return path, out, run


def test_a_resume_that_cannot_continue_is_recorded_and_the_point_runs_from_the_start(done, tmp_path):
    path, out, run = _interrupted_copy(done, tmp_path)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    sweep = load_sweep(path, out=out, grid=["noise.radius=0.05"])       # that point alone
    assert [p.action for p in plan(sweep)] == ["resume"]
    finished = run_sweep(sweep, jobs=1)
    assert finished.ok and _numbers(finished.rows) == _numbers(done[1].rows[:1])     # from step 0: the same fit
    (entry,) = json.loads((run / "manifest.json").read_text())["resumes"]
    assert entry["from_status"] == "interrupted" and "not a readable reluden checkpoint" in entry["abandoned"]
    assert "not a readable reluden checkpoint" in json.loads((run / POINT_FILE).read_text())["resume_abandoned"]


def test_a_bug_in_a_resume_fails_the_point_with_its_traceback_and_no_restart(done, tmp_path, monkeypatch):
    from relu_denoise import workflows

    path, out, run = _interrupted_copy(done, tmp_path)

    def broken(*args, **kwargs):
        raise AttributeError("a bug in resume_fit")

    monkeypatch.setattr(workflows, "resume_fit", broken)
    (row,) = run_sweep(load_sweep(path, out=out, grid=["noise.radius=0.05"]), jobs=1).rows
    assert row["status"] == "failed" and row["reason"].startswith("AttributeError: a bug in resume_fit")
    assert f"(traceback in {run / 'error.txt'})" in row["reason"] and row["cost"] is None
    assert "in broken" in (run / "error.txt").read_text()
    assert json.loads((run / "manifest.json").read_text())["files"]                   # the run's own list kept


def test_a_bug_in_a_point_is_recorded_with_its_traceback_and_the_others_run(tmp_path, monkeypatch):
    from relu_denoise import workflows

    path = _write(tmp_path, {**SWEEP, "command": "closed-form"})
    real = workflows.closed_form_workflow

    def sometimes(recipe, base, **options):
        if recipe.noise.radius == 0.1:
            raise KeyError("a bug")
        return real(recipe, base, **options)

    monkeypatch.setattr(workflows, "closed_form_workflow", sometimes)
    result = run_sweep(load_sweep(path, out=tmp_path / "out"), jobs=1)
    assert [r["status"] for r in result.rows] == ["ok", "failed", "ok"]
    error = tmp_path / "out" / result.rows[1]["run_dir"] / "error.txt"
    assert result.rows[1]["reason"] == f"KeyError: 'a bug' (traceback in {error})"
    assert "in sometimes" in error.read_text() and "KeyError: 'a bug'" in error.read_text()


def test_a_bug_in_fits_trained_together_is_recorded_in_every_run_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from relu_denoise.workflows import fitting

    path = _write(tmp_path, {**SWEEP, "grid": {"seed": "0:2"}, "set": {"train.steps": 300}})

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug after training")

    monkeypatch.setattr(fitting, "fitted", broken)
    result = run_sweep(load_sweep(path, out=tmp_path / "out"), jobs=1)
    assert [r["status"] for r in result.rows] == ["failed", "failed"]
    for row in result.rows:
        error = tmp_path / "out" / row["run_dir"] / "error.txt"
        assert row["reason"] == f"ZeroDivisionError: a bug after training (traceback in {error})"
        assert "in broken" in error.read_text()


# ---------------------------------------------------------------- unreadable run files


@pytest.mark.parametrize("name, text", [("result.json", '{"cost": 1.0,'), ("manifest.json", ""),
                                        (POINT_FILE, "[1, 2]"), ("recipe.yaml", "noise: [")])
def test_a_hand_edited_run_file_gives_an_unreadable_row_and_the_rest_is_collected(done, tmp_path, name, text):
    _, result = done
    path, out = _copy(done, tmp_path)
    broken = out / result.rows[1]["run_dir"].rsplit("/", 1)[1]
    (broken / name).write_text(text)
    rows = collect([out])
    assert sorted(r["status"] for r in rows) == ["ok", "ok", "unreadable"]
    (bad,) = [r for r in rows if r["status"] == "unreadable"]
    assert bad["reason"].startswith(f"{broken / name}: ") and f"delete {broken.name}/" in bad["reason"]
    good = [r for r in rows if r["status"] == "ok"]
    assert _numbers(good) == _numbers([result.rows[0], result.rows[2]])
    res = _cli("collect", out, "--json")
    assert res.exit_code == 0, res.output
    assert sorted(r["status"] for r in json.loads(res.stdout)) == ["ok", "ok", "unreadable"]
    # a sweep leaves the point alone, even with --force, and says so
    assert [p.action for p in plan(load_sweep(path, out=out, force=True))] == ["run", "unreadable", "run"]
    again = run_sweep(load_sweep(path, out=out), jobs=1)
    assert again.counts.unreadable == 1 and again.counts.cached == 2 and not again.ok
    assert [r["status"] for r in again.rows] == ["ok", "unreadable", "ok"]
    assert (broken / name).read_text() == text


# ---------------------------------------------------------------- certify


def test_a_certify_sweep_gives_the_bounds_of_each_point(tmp_path):
    """1-D (the lower bound's LP is exact): each point's row holds its certificate and the fit it started from."""
    line = {"name": "line", "data": {"kind": "points", "points": [[0.0], [1.0], [2.5]]},
            "noise": {"distribution": "gaussian", "sigma": 0.03, "samples": 6}, "model": {"width": 16},
            "train": {"steps": 1500}}
    (tmp_path / "line.yaml").write_text(yaml.safe_dump(line))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "c", "command": "certify", "recipe": "line.yaml",
                                                     "device": "cpu", "grid": {"seed": "0:2"}, "time_limit": 5}))
    sweep = load_sweep(tmp_path / "s.yaml", out=tmp_path / "out")
    assert [p.options["time_limit"] for p in sweep.points] == [5, 5] and sweep.points[0].options["tol"] == 1e-3
    result = run_sweep(sweep, jobs=1)
    assert result.ok and [r["seed"] for r in result.rows] == [0, 1]
    for row in result.rows:
        certified = json.loads((tmp_path / "out" / row["run_dir"] / "result.json").read_text())
        assert row["command"] == "certify" and row["lower_method"] == certified["lower_method"] == "lp-1d"
        assert row["lower"] == certified["lower"] and row["upper"] == certified["upper"] and row["gap"] <= 1e-3
        assert row["rounds"] >= 1 and row["cost"] == certified["fit"]["cost"] and row["steps"] > 0
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
    other = load_sweep(tmp_path / "s.yaml", out=tmp_path / "out", grid=["seed=0"])
    assert other.points[0].run_dir == sweep.points[0].run_dir             # the same options, the same point
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"name": "c", "command": "certify", "recipe": "line.yaml",
                                                     "grid": {"seed": [0]}, "time_limit": 6}))
    assert load_sweep(tmp_path / "t.yaml", out=tmp_path / "out").points[0].run_dir != sweep.points[0].run_dir
