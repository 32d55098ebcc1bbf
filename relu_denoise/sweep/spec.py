"""The sweep file, its grid and its points: each point's recipe resolved (and validated) once, here.

A point's run directory is named by a hash of its command, the options that change its result and its
resolved recipe, so it depends on the point's content, never on its position in the grid.
"""

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import RecipeError
from ..files import to_jsonable
from ..recipe import (Recipe, format_validation_error, load_recipe, parse_recipe, read_raw_recipe, read_yaml,
                      read_yaml_file, recipe_to_yaml)

COMMANDS = ("closed-form", "fit", "compare", "align", "certify", "flow")
_RANGE = re.compile(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?")
# command options -> the command they belong to; those that change a point's result are hashed into its name
_OPTION_OF = {"noise": "compare", "repeats": "compare", "n_test": "compare", "nn": "compare",
              "tolerance": "align", "time_limit": "certify", "tol": "certify"}
_HASHED = ("nn", "tolerance", "time_limit", "tol")


class SweepFile(BaseModel):
    """A sweep file (see the package docstring). Command options are accepted only for their command."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, description="the sweep's name; default: the file's stem")
    command: Literal["closed-form", "fit", "compare", "align", "certify", "flow"]
    recipe: str = Field(min_length=1, description="the recipe, relative to the sweep file")
    grid: dict[str, list[Any] | str] = Field(default_factory=dict, description="recipe key -> values, or "
                                             "'START:STOP[:STEP]' for integers")
    set_: dict[str, Any] = Field(default_factory=dict, alias="set", description="fixed recipe overrides")
    device: str = Field("auto", description="device of the fits (fit, compare, align, certify, flow): auto, cpu, cuda, "
                        "cuda:N, mps")
    figures: bool = Field(False, description="each point's own figures (fit.png, ...); off for speed")
    batch: bool = Field(True, description="fit: train the fits of one data shape together as one network with "
                        "stacked weights (the same results, bit for bit; docs/training.md 11)")
    noise: list[float] | None = Field(None, description="compare: noise levels (compare.noise)")
    repeats: int | None = Field(None, ge=1, description="compare: training sets per level (compare.repeats)")
    n_test: int | None = Field(None, ge=1, description="compare: test points per level (compare.n_test)")
    nn: bool | None = Field(None, description="compare: train the nn estimator (default true)")
    tolerance: float | None = Field(None, gt=0, lt=90, description="align: aligned within this angle (degrees)")
    time_limit: float | None = Field(None, ge=1, description="certify: seconds for the bounds (--time-limit)")
    tol: float | None = Field(None, gt=0, description="certify: stop when upper / lower - 1 is below this (--tol)")

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
        for key, command in _OPTION_OF.items():
            if getattr(self, key) is not None and self.command != command:
                raise ValueError(f"{key}: only for command {command} (this sweep's command is {self.command}); "
                                 "remove it or set the recipe key instead")
        if self.noise is not None and (not self.noise or any(s <= 0 for s in self.noise)):
            raise ValueError(f"noise: expected a list of levels > 0, got {self.noise}")
        return self

    def options(self) -> dict:
        """What the command is run with beside its recipe: device, figures, batch and its own options."""
        out = {"device": self.device, "figures": self.figures, "batch": self.batch}
        if self.command == "compare":
            out["nn"] = True if self.nn is None else self.nn
        if self.command == "align":
            out["tolerance"] = 5.0 if self.tolerance is None else self.tolerance
        if self.command == "certify":                 # the defaults of reluden certify
            out["time_limit"] = 120.0 if self.time_limit is None else self.time_limit
            out["tol"] = 1e-3 if self.tol is None else self.tol
        return out


@dataclass
class Point:
    """One run of a sweep: the command, its resolved recipe, and its run directory."""

    index: int
    command: str
    values: dict                    # swept key -> value, as given
    overrides: list[str]            # --set strings: the sweep's set, then the grid values (what made `recipe`)
    recipe_path: str                # absolute
    run_dir: str                    # absolute: <sweep dir>/<command>-<digest>
    keys: list[str]                 # the sweep's swept keys (row columns)
    sweep: str
    recipe: Recipe                  # resolved and validated once, by load_sweep
    digest: str                     # point_hash of the command, hashed options and resolved recipe
    options: dict = field(default_factory=dict)   # device, figures, batch and the command's own (nn, tolerance ...)
    action: str = "run"             # run | resume | cached (plan.py)
    threads: int | None = None      # torch threads while the point runs
    argv: list[str] = field(default_factory=list)  # the sweep's command line, recorded in the point's manifest

    @property
    def base_dir(self) -> Path:
        """The folder the recipe's relative paths (data files) are read from."""
        return Path(self.recipe_path).parent


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
    changes = {k: v for k, v in (("figures", figures), ("batch", batch)) if v is not None}
    if changes:
        spec = SweepFile.model_validate({**spec.model_dump(by_alias=True), **changes})
    full_grid = {k: parse_values(v, where=f"sweep {path.name}: grid {k}") for k, v in spec.grid.items()}
    full_grid.update(dict(parse_grid_option(g) for g in grid))
    recipe_path = (path.parent / spec.recipe).resolve()
    raw = _raw_recipe(recipe_path)
    fixed = _fixed_overrides(spec)
    _check_keys(path, raw, fixed, full_grid)
    directory = Path(out) if out is not None else Path("results") / "sweep" / spec.name
    points = _points(spec, path, recipe_path, raw, fixed, full_grid, directory.resolve())
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


# ---------------------------------------------------------------- grid values


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


def override(key: str, value) -> str:
    """A `--set` string whose YAML value reads back as `value`."""
    text = yaml.safe_dump(to_jsonable(value), default_flow_style=True, width=math.inf).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested mappings as dotted key -> value (an empty mapping is a value)."""
    out = {}
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def show(value) -> str:
    """A grid value as messages and the summary figure show it: strings as they are, else JSON."""
    return json.dumps(to_jsonable(value)) if not isinstance(value, str) else value


# ---------------------------------------------------------------- the recipes of the points


def _fixed_overrides(spec: SweepFile) -> dict:
    """The sweep's `set` (flattened) plus the compare options, as recipe key -> value."""
    fixed = flatten(spec.set_)
    for key in ("noise", "repeats", "n_test"):
        if getattr(spec, key) is not None:
            fixed[f"compare.{key}"] = getattr(spec, key)
    return fixed


def _raw_recipe(recipe_path: Path) -> dict:
    load_recipe(recipe_path)                       # the recipe's own errors, with its messages
    return read_raw_recipe(recipe_path)


def _check_keys(path: Path, raw: dict, fixed: dict, grid: dict) -> None:
    """Each grid value, beside the fixed overrides and the other keys' first values, must give a valid recipe.

    An error names the grid key and value, or `set` when the fixed overrides alone fail the same way.
    """
    both = sorted(set(fixed) & set(grid))
    if both:
        raise RecipeError(f"sweep {path.name}: {both[0]} is both fixed (set) and swept (grid); keep one")
    base = [override(k, v) for k, v in fixed.items()]
    firsts = {k: values[0] for k, values in grid.items()}
    trials = [(k, v) for k, values in grid.items() for v in values] or [(None, None)]
    for key, value in trials:
        chosen = {**firsts, key: value} if key is not None else {}
        try:
            parse_recipe(raw, [*base, *(override(k, v) for k, v in chosen.items())])
        except RecipeError as exc:
            if key is None or _fails_alike(raw, base, str(exc)):
                raise RecipeError(f"sweep {path.name}: set: {exc}") from None
            raise RecipeError(f"sweep {path.name}: grid {key}={show(value)}: {exc}") from None


def _fails_alike(raw: dict, base: list[str], message: str) -> bool:
    try:
        parse_recipe(raw, base)
    except RecipeError as exc:
        return str(exc) == message
    return False


def _points(spec: SweepFile, path: Path, recipe_path: Path, raw: dict, fixed: dict, grid: dict,
            directory: Path) -> list[Point]:
    """The cartesian product of the grid (last key fastest), each with its resolved recipe and run directory."""
    base = [override(k, v) for k, v in fixed.items()]
    points, seen = [], {}
    for i, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(grid, combo))
        try:
            point = make_point(i, spec.command, recipe_path, raw, [*base, *(override(k, v) for k, v in values.items())],
                               spec.options(), directory, values=values, keys=list(grid), sweep=spec.name)
        except RecipeError as exc:
            shown = ", ".join(f"{k}={show(v)}" for k, v in values.items())
            raise RecipeError(f"sweep {path.name}: grid point {shown}: {exc}") from None
        if point.digest in seen:
            raise RecipeError(f"sweep {path.name}: grid points {seen[point.digest]} and {values} give the same recipe; "
                              "remove the duplicate value")
        seen[point.digest] = values
        points.append(point)
    return points


def make_point(index: int, command: str, recipe_path: Path, raw: dict, overrides: list[str], options: dict,
               directory: Path, *, values: dict, keys: list[str], sweep: str) -> Point:
    """One point: `raw` (the recipe file's mapping) with the `--set` strings `overrides`, resolved and validated
    (RecipeError), in `directory`/<command>-<hash of its content>."""
    recipe = parse_recipe(raw, overrides)
    digest = point_hash(command, recipe_to_yaml(recipe), {k: v for k, v in options.items() if k in _HASHED})
    return Point(index, command, values, overrides, str(recipe_path), str(directory / f"{command}-{digest}"),
                 keys, sweep, recipe, digest, dict(options))


def point_hash(command: str, recipe_yaml: str, options: dict) -> str:
    """The short content hash naming a point's run directory: command, result-changing options, resolved recipe."""
    text = f"{command}\n{json.dumps(options, sort_keys=True)}\n{recipe_yaml}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]
