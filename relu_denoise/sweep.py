"""Sweeps: a grid of runs of one command, cached by content, resumable, on local processes or Dask.

    name: rays-noise
    command: fit                  # closed-form | fit | compare | align
    recipe: ../rays.yaml          # relative to the sweep file
    grid:                         # cartesian product of recipe keys (last key varies fastest)
      noise.sigma: [0.01, 0.02, 0.05]
      seed: "0:3"                 # a range: 0, 1, 2
    set: {train.steps: 5000}      # fixed overrides (nested mappings are merged key by key)

Each point is an ordinary run directory `<sweep dir>/<command>-<hash>/`, the hash taken over the
command, its options and the resolved recipe, so a point's directory (like its random streams,
relu_denoise.problem) depends on its content, never on its position in the grid. Beside the run's
own files, `sweep_point.json` records the swept values and the wall seconds of the point.

Running a sweep again skips points whose run finished (ok, not-converged, no-closed-form),
resumes interrupted fits from their checkpoint, reruns failed and unfinished ones; `force`
reruns all. A failing point never stops the others; an interrupted one (Ctrl-C, SIGTERM) stops
the sweep after the running points have recorded their state.

`sweep.csv` and `sweep.json` in the sweep directory hold one tidy row per point (one per
noise level and estimator for compare), rewritten atomically after every finished point;
`sweep.png` plots the main metric against the first swept key. `collect(paths)` builds the same
rows from any run directories under the paths.

Executors call the same `run_task(points) -> rows of each point`. A task is one point, or fits to run
from the start that share their data shape (seeds and noise levels of one geometry; `tasks`), trained
together as one network with stacked weights, which ends every fit with the same weights, bit for bit,
as alone (`batch: false` or --no-batch: one fit at a time):

- `local`: `jobs` long-lived worker processes (spawn), torch threads per worker = cores // jobs;
  with one job, the points run in this process.
- `dask`: a `distributed.Client` on a scheduler address, or on a LocalCluster of `jobs` single-
  threaded worker processes. On a batch system, start the cluster with dask-jobqueue and pass its
  address (workers need relu_denoise installed and the sweep directory on a shared file system):

      from dask_jobqueue import SLURMCluster
      cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00")
      cluster.scale(jobs=20)
      print(cluster.scheduler_address)     # reluden sweep S.yaml --executor dask --scheduler <address>
"""

import contextlib
import csv
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import NoClosedFormError, RecipeError, ReludenError, RunError
from .files import atomic_write_text, to_jsonable
from .recipe import (format_validation_error, load_recipe, parse_recipe, read_raw_recipe, read_yaml, read_yaml_file,
                     recipe_to_yaml)

COMMANDS = ("closed-form", "fit", "compare", "align")
FINISHED = ("ok", "not-converged", "no-closed-form")      # cached by a rerun
SUCCESS = ("ok", "no-closed-form")                         # exit status 0
POINT_FILE = "sweep_point.json"
_RANGE = re.compile(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?")
_COMMON = ("command", "status", "reason", "run_dir", "seconds")


# ---------------------------------------------------------------- the sweep file


class SweepFile(BaseModel):
    """A sweep file (see the module docstring). Command options are accepted only for their command."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, description="the sweep's name; default: the file's stem")
    command: Literal["closed-form", "fit", "compare", "align"]
    recipe: str = Field(min_length=1, description="the recipe, relative to the sweep file")
    grid: dict[str, list[Any] | str] = Field(default_factory=dict, description="recipe key -> values, or "
                                             "'START:STOP[:STEP]' for integers")
    set_: dict[str, Any] = Field(default_factory=dict, alias="set", description="fixed recipe overrides")
    device: str = Field("auto", description="device of fit, compare and align: auto, cpu, cuda, cuda:N, mps")
    figures: bool = Field(False, description="each point's own figures (fit.png, ...); off for speed")
    batch: bool = Field(True, description="fit: train the fits of one data shape together as one network with "
                        "stacked weights (the same results, bit for bit; docs/theory.md 9.11)")
    noise: list[float] | None = Field(None, description="compare: noise levels (compare.noise)")
    repeats: int | None = Field(None, ge=1, description="compare: training sets per level (compare.repeats)")
    n_test: int | None = Field(None, ge=1, description="compare: test points per level (compare.n_test)")
    nn: bool | None = Field(None, description="compare: train the nn estimator (default true)")
    tolerance: float | None = Field(None, gt=0, lt=90, description="align: aligned within this angle (degrees)")

    @field_validator("grid", mode="before")
    @classmethod
    def _grid_values(cls, grid):
        for key, values in (grid or {}).items() if isinstance(grid, dict) else ():
            if not isinstance(values, (list, str)):
                raise ValueError(f"{key}: expected a list of values or a quoted range 'START:STOP', got {values!r} "
                                 "(YAML reads an unquoted 0:3 as a base-60 number)")
        return grid

    @model_validator(mode="after")
    def _options_match_command(self):
        for key, command in (("noise", "compare"), ("repeats", "compare"), ("n_test", "compare"),
                             ("nn", "compare"), ("tolerance", "align")):
            if getattr(self, key) is not None and self.command != command:
                raise ValueError(f"{key}: only for command {command} (this sweep's command is {self.command}); "
                                 "remove it or set the recipe key instead")
        if self.noise is not None and (not self.noise or any(s <= 0 for s in self.noise)):
            raise ValueError(f"noise: expected a list of levels > 0, got {self.noise}")
        return self


@dataclass
class Point:
    """One run of a sweep: the command, the overrides that make its recipe, and its run directory."""

    index: int
    command: str
    values: dict                    # swept key -> value, as given
    overrides: list[str]            # --set strings: the sweep's set, then the grid values
    recipe_path: str                # absolute
    run_dir: str                    # absolute
    keys: list[str]                 # the sweep's swept keys (row columns)
    sweep: str
    options: dict = field(default_factory=dict)   # device, figures, nn, tolerance
    action: str = "run"             # run | resume | cached
    threads: int | None = None      # torch threads while the point runs
    argv: list[str] = field(default_factory=list)


@dataclass
class Sweep:
    """A validated sweep: its file, grid, directory and points (before their actions are planned)."""

    spec: SweepFile
    source: Path
    grid: dict[str, list]
    directory: Path
    points: list[Point]
    force: bool = False

    @property
    def keys(self) -> list[str]:
        return list(self.grid)


def load_sweep(path, *, grid: list[str] = (), out=None, force: bool = False, figures: bool | None = None,
               batch: bool | None = None) -> Sweep:
    """Read and validate a sweep file, with `--grid K=V` strings merged into its grid; nothing runs.

    Every point's recipe is built and validated here, so a bad key or value is one RecipeError naming
    it before any point runs. The sweep directory is `out` or results/sweep/<name>/.
    """
    path = Path(path)
    spec = _read_spec(path)
    if figures is not None:
        spec = spec.model_copy(update={"figures": figures})
    if batch is not None:
        spec = spec.model_copy(update={"batch": batch})
    full_grid = {k: parse_values(v, where=f"sweep {path.name}: grid {k}") for k, v in spec.grid.items()}
    full_grid.update(dict(parse_grid_option(g) for g in grid))
    recipe_path = (path.parent / spec.recipe).resolve()
    fixed = _fixed_overrides(spec)
    _check_keys(path, recipe_path, fixed, full_grid)
    directory = Path(out) if out is not None else Path("results") / "sweep" / spec.name
    points = _points(spec, path, recipe_path, fixed, full_grid, directory.resolve())
    return Sweep(spec, path, full_grid, directory, points, force)


def _read_spec(path: Path) -> SweepFile:
    raw = read_yaml_file(path, what="sweep")
    if not isinstance(raw, dict):
        raise RecipeError(f"sweep {path}: expected a mapping (name, command, recipe, grid, set), "
                          f"got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as exc:
        message = format_validation_error(exc)
        if not exc.errors()[0]["loc"]:                              # a check across keys names its key itself
            message = message.removeprefix("recipe: ")
        raise RecipeError(f"sweep {path}: {message}") from None
    if not (path.parent / spec.recipe).is_file():
        raise RecipeError(f"sweep {path}: recipe: file not found: {path.parent / spec.recipe} "
                          "(the path is relative to the sweep file)")
    return spec


def parse_grid_option(text: str) -> tuple[str, list]:
    """`--grid KEY=V1,V2,...` or `--grid KEY=START:STOP[:STEP]` -> (KEY, values)."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip() or not spec.strip():
        raise RecipeError(f"--grid {text}: expected KEY=V1,V2,... or KEY=START:STOP, e.g. "
                          "--grid noise.sigma=0.01,0.02 or --grid seed=0:3")
    return key.strip(), parse_values(spec, where=f"--grid {text}")


def parse_values(spec, *, where: str) -> list:
    """Grid values: a list as is; text 'START:STOP[:STEP]' (integers, STOP excluded), '[...]' or 'a,b,c'."""
    if isinstance(spec, list):
        values = spec
    elif (m := _RANGE.fullmatch(spec)) is not None:
        start, stop, step = int(m[1]), int(m[2]), int(m[3] or 1)
        if step == 0:
            raise RecipeError(f"{where}: a range needs a nonzero step, got {spec!r}")
        values = list(range(start, stop, step))
    elif spec.strip().startswith("["):
        values = _yaml_value(spec, where)
    else:
        values = [_scalar(part, where) for part in spec.split(",")]
    if not isinstance(values, list) or not values:
        raise RecipeError(f"{where}: expected at least one value, got {spec!r} (a range START:STOP excludes STOP)")
    seen = [json.dumps(to_jsonable(v), sort_keys=True) for v in values]
    if len(set(seen)) < len(seen):
        raise RecipeError(f"{where}: a value appears twice in {spec!r}")
    return values


def _scalar(text: str, where: str):
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return _yaml_value(text, where)


def _yaml_value(text: str, where: str):
    try:
        return read_yaml(text)
    except yaml.YAMLError:
        raise RecipeError(f"{where}: {text!r} is not valid YAML") from None


def _override(key: str, value) -> str:
    """A `--set` string whose YAML value reads back as `value`."""
    text = yaml.safe_dump(to_jsonable(value), default_flow_style=True, width=math.inf).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def _flatten(mapping: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _fixed_overrides(spec: SweepFile) -> dict:
    """The sweep's `set` (flattened) plus the compare options, as recipe key -> value."""
    fixed = _flatten(spec.set_)
    for key in ("noise", "repeats", "n_test"):
        if getattr(spec, key) is not None:
            fixed[f"compare.{key}"] = getattr(spec, key)
    return fixed


def _check_keys(path: Path, recipe_path: Path, fixed: dict, grid: dict) -> None:
    """Each grid value, beside the fixed overrides and the other keys' first values, must give a valid recipe.

    An error names the grid key and value, or `set` when the fixed overrides alone fail the same way.
    """
    both = sorted(set(fixed) & set(grid))
    if both:
        raise RecipeError(f"sweep {path.name}: {both[0]} is both fixed (set) and swept (grid); keep one")
    base = [_override(k, v) for k, v in fixed.items()]
    raw = _raw_recipe(recipe_path)
    firsts = {k: values[0] for k, values in grid.items()}
    trials = [(k, v) for k, values in grid.items() for v in values] or [(None, None)]
    for key, value in trials:
        chosen = {**firsts, key: value} if key is not None else {}
        try:
            parse_recipe(raw, [*base, *(_override(k, v) for k, v in chosen.items())])
        except RecipeError as exc:
            if key is None or _fails_alike(raw, base, str(exc)):
                raise RecipeError(f"sweep {path.name}: set: {exc}") from None
            raise RecipeError(f"sweep {path.name}: grid {key}={_show(value)}: {exc}") from None


def _fails_alike(raw: dict, base: list[str], message: str) -> bool:
    try:
        parse_recipe(raw, base)
    except RecipeError as exc:
        return str(exc) == message
    return False


def _raw_recipe(recipe_path: Path) -> dict:
    load_recipe(recipe_path)                       # the recipe's own errors, with its messages
    return read_raw_recipe(recipe_path)


def _show(value) -> str:
    return json.dumps(to_jsonable(value)) if not isinstance(value, str) else value


def _points(spec: SweepFile, path: Path, recipe_path: Path, fixed: dict, grid: dict, directory: Path) -> list[Point]:
    """The cartesian product of the grid (last key fastest), each with its validated recipe and run directory."""
    raw = _raw_recipe(recipe_path)
    base = [_override(k, v) for k, v in fixed.items()]
    options = {"device": spec.device, "figures": spec.figures, "batch": spec.batch}
    if spec.command == "compare":
        options["nn"] = True if spec.nn is None else spec.nn
    if spec.command == "align":
        options["tolerance"] = 5.0 if spec.tolerance is None else spec.tolerance
    hashed = {k: v for k, v in options.items() if k in ("nn", "tolerance")}
    points, seen = [], {}
    for i, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(grid, combo))
        overrides = [*base, *(_override(k, v) for k, v in values.items())]
        try:
            recipe = parse_recipe(raw, overrides)
        except RecipeError as exc:
            shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
            raise RecipeError(f"sweep {path.name}: grid point {shown}: {exc}") from None
        digest = point_hash(spec.command, recipe_to_yaml(recipe), hashed)
        if digest in seen:
            raise RecipeError(f"sweep {path.name}: grid points {seen[digest]} and {values} give the same recipe; "
                              "remove the duplicate value")
        seen[digest] = values
        points.append(Point(i, spec.command, values, overrides, str(recipe_path),
                            str(directory / f"{spec.command}-{digest}"), list(grid), spec.name, dict(options)))
    return points


def point_hash(command: str, recipe_yaml: str, options: dict) -> str:
    """The short content hash naming a point's run directory: command, result-changing options, resolved recipe."""
    text = f"{command}\n{json.dumps(options, sort_keys=True)}\n{recipe_yaml}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- planning: what each point needs


def plan(sweep: Sweep) -> list[Point]:
    """Set each point's action from its run directory: cached (finished), resume (an interrupted fit), run."""
    for p in sweep.points:
        p.action = "run" if sweep.force else point_action(Path(p.run_dir), p.command)
    return sweep.points


def point_action(run_dir: Path, command: str) -> str:
    manifest = _read_json(run_dir / "manifest.json")
    status = manifest.get("status")
    if status in FINISHED and ((run_dir / "result.json").is_file() or status == "no-closed-form"):
        return "cached"
    if command == "fit" and status in ("interrupted", "running") and (run_dir / "checkpoint.pt").is_file():
        return "resume"
    return "run"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- one point (every executor calls this)


def run_point(point: Point) -> list[dict]:
    """Run (or resume) one point into its run directory unless cached, and return its table rows.

    Any failure is recorded in the run directory (status failed and the reason) and returned as rows:
    it never raises, except KeyboardInterrupt, which a workflow has recorded as interrupted.
    """
    if point.action != "cached":
        start = time.perf_counter()
        _execute(point)
        _write_point_file(point, time.perf_counter() - start)
    return run_rows(point.run_dir, point.keys)


def _execute(point: Point) -> None:
    from . import workflows
    from .errors import TrainingError

    run_dir = Path(point.run_dir)
    if point.action == "resume":
        try:
            workflows.resume_fit(run_dir, device=point.options["device"], figures=point.options["figures"])
            return
        except TrainingError as exc:
            if exc.reason == "interrupted":                           # recorded; the sweep stops
                return
        except Exception:                                             # noqa: S110 (started again below)
            pass
        # no usable checkpoint, or the resumed fit failed: the point runs again from the start
    try:
        recipe, base = load_recipe(point.recipe_path, point.overrides)
        _run_command(point, recipe, base, run_dir)
    except KeyboardInterrupt:
        _record_interrupted(point)
        raise
    except Exception as exc:                                          # keep going: recorded, reported in the row
        _record_failure(point, exc)


def _record_interrupted(point: Point) -> None:
    if not _recorded(Path(point.run_dir)):
        _record(point, "interrupted", "interrupted (SIGINT or SIGTERM) before the run started")


def _record_failure(point: Point, exc: Exception) -> None:
    """Record how a point ended when its workflow could not (no run directory yet, or it never closed)."""
    if _recorded(Path(point.run_dir)):
        return
    if isinstance(exc, NoClosedFormError):
        _record(point, "no-closed-form", str(exc))
    else:
        from .runs import ending

        _record(point, "failed", ending(exc)[1])


def _run_command(point: Point, recipe, base, run_dir: Path) -> None:
    from . import workflows

    _clear_stale(run_dir)
    o = point.options
    common = {"out": run_dir, "force": True, "figures": o["figures"]}
    if point.command == "closed-form":
        workflows.closed_form_workflow(recipe, base, **common)
    elif point.command == "fit":
        workflows.fit_workflow(recipe, base, device=o["device"], **common)
    elif point.command == "compare":
        workflows.compare_workflow(recipe, base, noise=recipe.compare.noise, repeats=recipe.compare.repeats,
                                   n_test=recipe.compare.n_test, nn=o["nn"], device=o["device"], **common)
    else:
        workflows.align_workflow(recipe, base, tolerance=o["tolerance"], device=o["device"], **common)



def _clear_stale(run_dir: Path) -> None:
    """Before a fresh run: drop the files of an earlier attempt that would read as this run's (its result and
    point record), and mark its manifest unfinished; the manifest's list of files stays, so the new run may
    replace them (files.claim_dir)."""
    for name in ("result.json", POINT_FILE):
        (run_dir / name).unlink(missing_ok=True)
    manifest = _read_json(run_dir / "manifest.json")
    if manifest:
        from .files import write_json

        write_json(run_dir / "manifest.json", {**manifest, "status": "running", "reason": "rerun by the sweep"})


def _recorded(run_dir: Path) -> bool:
    """Did the workflow create the run and record how it ended?"""
    return _read_json(run_dir / "manifest.json").get("status") not in (None, "running")


def _record(point: Point, status: str, reason: str) -> None:
    """The run directory of a point that ended before its workflow made one: recipe, manifest, no result."""
    run_dir = Path(point.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "result.json").unlink(missing_ok=True)
    try:
        recipe, _ = load_recipe(point.recipe_path, point.overrides)
        atomic_write_text(run_dir / "recipe.yaml", recipe_to_yaml(recipe))
        seed = recipe.seed
    except RecipeError:
        seed = None
    now = _utc_now()
    manifest = {"command": point.command, "argv": point.argv or sys.argv, "seed": seed, "start": now, "end": now,
                "status": status, "reason": reason}
    atomic_write_text(run_dir / "manifest.json", json.dumps(to_jsonable(manifest), indent=2) + "\n")


def _utc_now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_point_file(point: Point, seconds: float, trained_with: int = 1) -> None:
    run_dir = Path(point.run_dir)
    if run_dir.is_dir():
        info = {"sweep": point.sweep, "index": point.index, "keys": point.keys, "values": point.values,
                "seconds": seconds, "action": point.action, "trained_with": trained_with}
        atomic_write_text(run_dir / POINT_FILE, json.dumps(to_jsonable(info), indent=2) + "\n")


# ---------------------------------------------------------------- tasks: a point, or fits trained together


def tasks(points: list[Point], jobs: int) -> list[list[Point]]:
    """What the executors run: one point each, except fits to run from the start whose recipes differ only
    where the data shape stays (seeds, noise levels): those train together (`run_task`), in at most `jobs`
    groups so that every worker gets some. The worker checks the shapes; what does not match trains alone."""
    out, groups = [], {}
    for p in points:
        key = _batch_key(p)
        if key is None:
            out.append([p])
        else:
            groups.setdefault(key, []).append(p)
    for members in groups.values():
        k = min(jobs, len(members))
        out += [members[i::k] for i in range(k)]              # interleaved: long and short fits in each
    return sorted(out, key=lambda task: task[0].index)


def _batch_key(point: Point) -> str | None:
    """Fits that may train together share this key (None: the point runs alone)."""
    if point.command != "fit" or point.action != "run" or not point.options.get("batch"):
        return None
    try:
        recipe, _ = load_recipe(point.recipe_path, point.overrides)
    except ReludenError:                                       # its own run records the error
        return None
    from .train.methods import method

    if not method(recipe.train.method).groupable or recipe.noise.mode == "online" \
            or not _on_cpu(point.options.get("device", "auto")):
        return None
    return json.dumps([recipe.data.kind, recipe.noise.samples, recipe.model.model_dump(mode="json"),
                       recipe.train.model_dump(mode="json"), point.options.get("device")], sort_keys=True)


def _on_cpu(device: str) -> bool:
    """Whether `device` resolves to this machine's CPU, the only place fits train together (`batchable`: on a
    GPU stacked products round differently); a device that only remote workers have counts as not."""
    from .train import resolve_device

    try:
        return resolve_device(device).type == "cpu"
    except RecipeError:
        return False


def run_task(points: list[Point]) -> list[list[dict]]:
    """Run a task (`tasks`) and return each point's rows; fits of a group are trained together. Each point
    of a group records an equal share of the group's wall time as its `seconds`, and `trained_with`."""
    if len(points) == 1:
        return [run_point(points[0])]
    start = time.perf_counter()
    _execute_together(points)
    seconds = (time.perf_counter() - start) / len(points)
    for p in points:
        _write_point_file(p, seconds, trained_with=len(points))
    return _task_rows(points)


def _task_rows(points: list[Point]) -> list[list[dict]]:
    """The rows each point's run directory holds now."""
    return [run_rows(p.run_dir, p.keys) for p in points]


def _execute_together(points: list[Point]) -> None:
    from . import workflows

    jobs, kept = [], []
    for p in points:
        try:
            recipe, base = load_recipe(p.recipe_path, p.overrides)
        except Exception as exc:                               # noqa: BLE001 (recorded, reported in the row)
            _record_failure(p, exc)
            continue
        _clear_stale(Path(p.run_dir))
        jobs.append((recipe, base, p.run_dir))
        kept.append(p)
    o = points[0].options
    try:
        outcomes = workflows.fit_many_workflow(jobs, device=o["device"], figures=o["figures"])
    except KeyboardInterrupt:
        for p in kept:
            _record_interrupted(p)
        raise
    for p, outcome in zip(kept, outcomes):
        if isinstance(outcome, Exception):
            _record_failure(p, outcome)


def guarded_task(points: list[Point]) -> list[list[dict]]:
    """run_task inside a worker process: the points' torch threads and argv; Ctrl-C ends only this task.

    Idle workers ignore SIGINT (the local pool's initializer); while a task runs the first SIGINT
    interrupts it (the trainer saves a checkpoint) and later ones are ignored. Returns [] for every point
    without running when the sweep was stopped before the task started.
    """
    import torch

    if _STOP is not None and _STOP.is_set():
        return [[] for _ in points]                # the sweep was stopped before this task started
    first = points[0]
    if first.threads and torch.get_num_threads() != first.threads:
        torch.set_num_threads(first.threads)
    argv, sys.argv = sys.argv, list(first.argv) or sys.argv
    try:
        with _interrupt_on(signal.SIGINT, once=True):
            return run_task(points)
    except KeyboardInterrupt:
        return _task_rows(points)
    finally:
        sys.argv = argv


@contextlib.contextmanager
def _interrupt_on(signum: int, *, once: bool = False):
    """While the block runs, `signum` raises KeyboardInterrupt in the main thread (`once`: only the first time,
    so a worker's Ctrl-C stops its point once and lets it record its state)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit = []

    def handler(signum, frame):
        if not (once and hit):
            hit.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


_STOP = None          # in a local pool worker: the pool's stop event (set on Ctrl-C: start no more points)


def _worker_init(stop) -> None:
    """Local pool workers: ignore SIGINT while idle (the sweep's process decides when to stop)."""
    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------- rows: one table for sweeps and collect


_METRICS = {
    "fit": ("cost", "closed_form_cost", "cost_ratio", "function_gap", "max_residual", "max_residual_rel",
            "train_mse", "steps", "converged", "active_units", "units"),
    "closed-form": ("cost", "cost_formula", "rho", "rho_rule", "units", "ramps"),
    "align": ("aligned_fraction", "baseline_fraction", "baseline_sd", "function_gap", "plane_gap", "n_units_kept"),
}
_FIT_IN_ALIGN = ("cost", "closed_form_cost", "cost_ratio", "max_residual", "max_residual_rel", "steps")


def run_rows(run_dir, keys: list[str]) -> list[dict]:
    """The table rows of one run directory: the keys' values (from its recipe.yaml), status, reason,
    run_dir, seconds and the command's scalar results; compare gives one row per noise level and estimator.
    """
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / "manifest.json")
    result = _read_json(run_dir / "result.json")
    recipe = _read_recipe(run_dir)
    command = manifest.get("command", result.get("command"))
    row = {k: _lookup(recipe, k) for k in keys}
    row.update(command=command, status=manifest.get("status", "running"), reason=manifest.get("reason"),
               run_dir=str(run_dir.resolve()), seconds=_seconds(run_dir, manifest))
    if command == "compare":
        return _compare_rows(row, result)
    return [{**row, **_scalars(command, result)}]


def _read_recipe(run_dir: Path) -> dict:
    try:
        data = read_yaml((run_dir / "recipe.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _lookup(mapping: dict, key: str):
    node = mapping
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _seconds(run_dir: Path, manifest: dict) -> float | None:
    """Wall seconds of the point (sweep_point.json), else the manifest's end - start (1 s resolution)."""
    seconds = _read_json(run_dir / POINT_FILE).get("seconds")
    if seconds is not None:
        return round(float(seconds), 3)
    from datetime import datetime

    try:
        return (datetime.fromisoformat(manifest["end"]) - datetime.fromisoformat(manifest["start"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _scalars(command: str, result: dict) -> dict:
    out = {}
    cf = result.get("closed_form")
    if isinstance(cf, dict):
        out["geometry"] = cf.get("geometry")
    elif command == "closed-form":
        out["geometry"] = result.get("geometry")
    if command == "align":
        fit = result.get("fit") or {}
        out.update({k: fit.get(k) for k in _FIT_IN_ALIGN})
    out.update({k: result.get(k) for k in _METRICS.get(command, ())})
    return out


def _compare_rows(row: dict, result: dict) -> list[dict]:
    levels, mse = result.get("noise") or [], result.get("estimators") or {}
    lo, hi, best = result.get("ci_low") or {}, result.get("ci_high") or {}, result.get("best") or []
    rows = []
    for i, level in enumerate(levels):
        for name, values in mse.items():
            if i < len(values) and values[i] is not None:
                rows.append({**row, "noise": level, "estimator": name, "mse": values[i],
                             "ci_low": _at(lo.get(name), i), "ci_high": _at(hi.get(name), i),
                             "best": _at(best, i) == name, "n_test": result.get("n_test")})
    return rows or [{**row, "noise": None, "estimator": None, "mse": None}]


def _at(values, i):
    return values[i] if isinstance(values, list) and i < len(values) else None


def columns(rows: list[dict]) -> list[str]:
    """Every key of the rows, in order of first appearance."""
    return list(dict.fromkeys(k for row in rows for k in row))


def write_table(directory: Path, rows: list[dict], meta: dict) -> None:
    """sweep.csv (tidy, one row per line) and sweep.json ({meta..., "rows": [...]}), atomically."""
    atomic_write_text(directory / "sweep.csv", to_csv(rows))
    atomic_write_text(directory / "sweep.json", json.dumps(to_jsonable({**meta, "rows": rows}), indent=2) + "\n")


def to_csv(rows: list[dict]) -> str:
    """Rows as CSV text: empty cells for None, JSON for lists and mappings."""
    cols = columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in to_jsonable(rows):
        writer.writerow(["" if row.get(c) is None else
                         json.dumps(row[c]) if isinstance(row[c], (list, dict)) else row[c] for c in cols])
    return buf.getvalue()


# ---------------------------------------------------------------- running a sweep


@dataclass
class Counts:
    """Progress of a sweep: points to run this time, and how the finished ones ended."""

    total: int             # points to run this time (not cached)
    cached: int = 0
    done: int = 0          # ran to an ending this time (interrupted ones excluded)
    failed: int = 0        # of those, ended failed
    interrupted: int = 0
    running: int = 0


class SweepEvents:
    """How a sweep reports progress. This default is silent; the CLI passes a rich one."""

    def progress(self, counts: Counts, sweep: Sweep):
        """A context manager yielding `update(counts, point, rows)`, called after every finished point."""
        return contextlib.nullcontext(lambda counts, point, rows: None)


@dataclass
class SweepResult:
    """The finished (or stopped) sweep: its rows in point order, counts, and whether it was interrupted."""

    sweep: Sweep
    rows: list[dict]
    counts: Counts
    interrupted: bool
    finished: int          # points with rows

    @property
    def directory(self) -> Path:
        return self.sweep.directory

    @property
    def ok(self) -> bool:
        """Every point ran to ok or no-closed-form (exit status 0)."""
        return (not self.interrupted and self.finished == len(self.sweep.points)
                and all(r["status"] in SUCCESS for r in self.rows))


def run_sweep(sweep: Sweep, *, jobs: int | None = None, executor: str = "local", scheduler: str | None = None,
              events: SweepEvents = SweepEvents()) -> SweepResult:
    """Run the sweep's points that need it on `executor`, writing the table after every finished point."""
    jobs = jobs or available_cores()
    if jobs < 1:
        raise RecipeError(f"--jobs: must be >= 1, got {jobs}")
    if executor not in ("local", "dask"):
        raise RecipeError(f"--executor: expected local or dask, got {executor!r}")
    if scheduler is not None and executor != "dask":
        raise RecipeError("--scheduler: only with --executor dask")
    if scheduler is None:
        _check_device(sweep)
    with _claim(sweep.directory, sweep.source):
        points = plan(sweep)
        threads = max(1, available_cores() // jobs) if executor == "local" or scheduler is None else None
        for p in points:
            p.threads, p.argv = threads, list(sys.argv)
        return _drive(sweep, points, jobs, executor, scheduler, events)


def _check_device(sweep: Sweep) -> None:
    """The sweep's device must exist here (on a remote cluster the workers' devices count)."""
    if sweep.spec.command == "closed-form":
        return
    from .train import resolve_device

    try:
        resolve_device(sweep.spec.device)
    except RecipeError as exc:
        raise RecipeError(f"sweep {sweep.source.name}: device: {exc}") from None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def _claim(directory: Path, source: Path):
    """Create the sweep directory and hold its lock (files.lock_dir) while the sweep runs; refuse a non-empty
    folder that is not a sweep's (a sweep never deletes what it did not write)."""
    from .files import lock_dir

    if directory.exists() and not directory.is_dir():
        raise RecipeError(f"--out {directory}: exists and is not a directory")
    if directory.is_dir() and any(p.name != ".reluden.lock" for p in directory.iterdir()) \
            and not (directory / "sweep.json").exists() and not any(directory.glob(f"*/{POINT_FILE}")):
        raise RecipeError(f"--out {directory}: not empty and not a sweep directory (no sweep.json); "
                          "choose another --out")
    lock = lock_dir(directory, holder=f"sweep {source}")
    try:
        yield
    finally:
        lock.release()


def _drive(sweep: Sweep, points: list[Point], jobs: int, executor: str, scheduler, events) -> SweepResult:
    """Collect rows as points finish (any order), keep the table current, stop on an interruption."""
    spec = sweep.spec
    meta = {"name": spec.name, "command": spec.command, "recipe": str((sweep.source.parent / spec.recipe).resolve()),
            "sweep_file": str(sweep.source.resolve()), "keys": sweep.keys, "points": len(points)}
    todo = [p for p in points if p.action != "cached"]
    table = _Table(sweep.directory, meta, Counts(total=len(todo), running=min(jobs, len(todo))), jobs)
    for p in points:
        if p.action == "cached":
            table.by_index[p.index] = run_rows(p.run_dir, p.keys)
            table.counts.cached += 1
    table.write()
    with events.progress(table.counts, sweep) as update:
        table.update = update
        run = {"local": _run_local if jobs > 1 else _run_here, "dask": _run_dask}[executor]
        try:
            if todo:
                run(tasks(todo, jobs), jobs, scheduler, table.add)
        except KeyboardInterrupt:
            table.stopped = True
    rows = table.rows()
    if rows and (table.counts.done or not (sweep.directory / "sweep.png").exists()):
        from .plots import summary_figure

        summary_figure(sweep.directory / "sweep.png", rows, sweep.keys, spec.command, title=spec.name)
    return SweepResult(sweep, rows, table.counts, table.stopped, len(table.by_index))


@dataclass
class _Table:
    """The rows of the finished points and the counts, written to sweep.csv / sweep.json after every point."""

    directory: Path
    meta: dict
    counts: Counts
    jobs: int
    by_index: dict = field(default_factory=dict)      # point index -> its rows
    stopped: bool = False
    update: Any = None                                # the progress display's callback

    def rows(self) -> list[dict]:
        return [row for i in sorted(self.by_index) for row in self.by_index[i]]

    def write(self) -> None:
        write_table(self.directory, self.rows(), self.meta)

    def add(self, point: Point, rows: list[dict]) -> bool:
        """Record a finished point; True when the sweep must stop (the point was interrupted)."""
        if not rows:                                  # a worker skipped it: the sweep was stopping
            return self.stopped
        self.by_index[point.index] = rows
        status, c = rows[0]["status"], self.counts
        c.interrupted += status == "interrupted"
        c.done += status != "interrupted"
        c.failed += status not in FINISHED and status != "interrupted"
        c.running = max(0, min(self.jobs, c.total - c.done - c.interrupted))
        self.write()
        if self.update is not None:
            self.update(c, point, rows)
        self.stopped = self.stopped or status == "interrupted"
        return self.stopped


def _report(task: list[Point], rows: list[list[dict]], finished) -> bool:
    """Hand every point's rows of a finished task to `finished`; True when the sweep must stop."""
    stop = False
    for p, r in zip(task, rows):
        stop = finished(p, r) or stop
    return stop


def _run_here(todo: list[list[Point]], jobs, scheduler, finished) -> None:
    """One job: the tasks run one after another in this process."""
    for task in todo:
        try:
            rows = run_task(task)
        except KeyboardInterrupt:
            _report(task, _task_rows(task), finished)
            raise
        if _report(task, rows, finished):
            return


def _run_local(todo: list[list[Point]], jobs: int, scheduler, finished) -> None:
    """`jobs` long-lived spawned worker processes; on Ctrl-C the pending tasks are dropped and the running
    ones interrupted (they save a checkpoint) and recorded before the table is written."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context, initializer=_worker_init,
                               initargs=(stop,))
    futures = {pool.submit(guarded_task, task): task for task in todo}
    handled = set()
    try:
        with _interrupt_on(signal.SIGTERM):
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    handled.add(f)
                    if _report(futures[f], _rows_of(f, futures[f]), finished):
                        raise KeyboardInterrupt
    except KeyboardInterrupt:
        stop.set()
        _stop_local(pool, {f: p for f, p in futures.items() if f not in handled}, finished)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _rows_of(future, task: list[Point]) -> list[list[dict]]:
    try:
        return future.result()
    except Exception as exc:                      # a worker died (killed, out of memory): record and go on
        for p in task:
            if not _recorded(Path(p.run_dir)):
                _record(p, "failed", f"worker process failed: {type(exc).__name__}: {exc}")
        return _task_rows(task)


def _stop_local(pool, futures: dict, finished) -> None:
    """Cancel what has not started; give running points 2 s to see the terminal's SIGINT, then forward one;
    record the rows of every point that ended."""
    from concurrent.futures import wait

    running = [f for f in futures if not f.cancel()]
    _, late = wait(running, timeout=2.0)
    if late:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):   # the stdlib has no public handle
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGINT)
    wait(running, timeout=120)
    for f in running:
        if f.done():                               # a point's [] : the worker saw the stop before starting it
            _report(futures[f], _rows_of(f, futures[f]), finished)


def _run_dask(todo: list[list[Point]], jobs: int, scheduler: str | None, finished) -> None:
    """Tasks (points, or fits trained together) as tasks of a Dask cluster: `scheduler`'s, or a LocalCluster of `jobs` single-thread processes."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RecipeError("--executor dask: dask.distributed is not installed; "
                          "pip install 'relu-denoise[dask]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            try:
                cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                           dashboard_address=None, silence_logs=logging.ERROR))
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise RunError(f"--executor dask: the LocalCluster did not start ({exc})") from None
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=30))
            except (OSError, TimeoutError, ValueError) as exc:
                raise RecipeError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        futures = {client.submit(guarded_task, task, pure=False,
                                 key=f"point-{task[0].index}-{Path(task[0].run_dir).name}"): task for task in todo}
        try:
            with _interrupt_on(signal.SIGTERM):
                for f in as_completed(futures):
                    if _report(futures[f], _rows_of(f, futures[f]), finished):
                        break
        finally:
            client.cancel(list(futures))


# ---------------------------------------------------------------- collect


def collect(paths) -> list[dict]:
    """The rows of every run directory under `paths` (run directories, sweep directories, any folders).

    Columns are the swept keys recorded by sweeps (sweep_point.json); runs made by hand add the recipe
    keys whose values differ between the runs found. Sweep points come first, in grid order.
    """
    runs = find_runs(paths)
    infos = {r: _read_json(r / POINT_FILE) for r in runs}
    keys = list(dict.fromkeys(k for info in infos.values() for k in info.get("keys", [])))
    if not all(infos.values()):
        keys += [k for k in varying_keys([_read_recipe(r) for r in runs]) if k not in keys]
    order = sorted(runs, key=lambda r: (not infos[r], infos[r].get("sweep", ""), infos[r].get("index", 0), str(r)))
    return [row for r in order for row in run_rows(r, keys)]


def collect_frame(paths):
    """collect(paths) as a pandas DataFrame (pandas imported here; pip install pandas)."""
    try:
        import pandas as pd
    except ImportError:
        raise RecipeError("collect_frame needs pandas: pip install pandas") from None
    rows = collect(paths)
    return pd.DataFrame(rows, columns=columns(rows))


def find_runs(paths) -> list[Path]:
    """Run directories (folders with a manifest.json) at or under each path, each once, sorted."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise RecipeError(f"collect: no such file or directory: {path}")
        if (path / "manifest.json").is_file():
            found.append(path.resolve())
        elif path.is_dir():
            found += [m.parent.resolve() for m in path.rglob("manifest.json")]
    return sorted(set(found))


def varying_keys(recipes: list[dict]) -> list[str]:
    """Dotted recipe keys whose values differ between the recipes (or are missing from some), in recipe order."""
    flat = [_flatten(r) for r in recipes]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if len({json.dumps(to_jsonable(f.get(k)), sort_keys=True) for f in flat}) > 1]
