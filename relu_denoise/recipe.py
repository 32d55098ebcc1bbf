"""Recipes: the YAML files that describe an experiment, as pydantic models (design.md, Recipes).

    name: obtuse-triangle
    seed: 0
    data:  {kind: points, points: [[0, 0], [2, 0], [-1, 1]]}
    noise: {distribution: gaussian, sigma: 0.05, samples: 100, mode: offline, rho: auto}
    model: {width: 256, skip: true}
    train: {...}
    compare: {...}

`load_recipe(path, overrides)` reads, applies `--set key.path=value` overrides (values parsed
as YAML) and validates; every problem becomes one RecipeError line naming the key path.
"""

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from .data import DataSpec
from .errors import RecipeError
from .noise import NoiseSpec
from .train.methods import METHODS
from .train.methods import NAMES as METHOD_NAMES


class _Section(BaseModel):
    # strict: a YAML "yes" (True) or "1.5" is not silently an integer; YAML's ints still pass as floats
    model_config = ConfigDict(extra="forbid", strict=True)


class ModelSpec(_Section):
    """The recipe's `model:` section: the ShallowDenoiser's shape."""

    width: int | None = Field(None, ge=1, description="ReLU units K; default (null): chosen from the data, "
                              "relu_denoise.train.choose_width (enough units per clean point); with train.method ramps an "
                              "upper bound (null: the units the solution needs)")
    skip: bool = Field(True, description="unregularised linear skip unit V y")


class TrainSpec(_Section):
    """The recipe's `train:` section: method, optimiser schedule and stopping rule (see relu_denoise.train).

    Every `check_every` steps the path cost and the max residual are measured. The cost has
    *stopped falling* when the lowest cost of the last `patience` checks is within `ftol`
    (relative) of the lowest of the `patience` checks before and (unless the measured network
    is an exact interpolant) the last cost is within 10 ftol of the lowest of its window (not
    rising). Training stops when the max residual is within `tol` x min(smallest distance
    between clean points, largest noise norm) and the cost has stopped falling. It *stalls*
    when the residual is above tolerance and has not fallen by a third between the two windows
    while the cost is within 10 ftol, or when the residual is within tolerance but the lowest
    cost of a window is not 10 ftol below the one before: then the learning rate is multiplied
    by `lr_decay` (down to `lr_min`). Without multipliers the penalty mu grows by
    `penalty_growth` at every check while the max residual is above tol / 4.
    """

    method: Literal[METHOD_NAMES] = Field(
        "augmented-lagrangian", description="; ".join(f"{m.name} ({m.summary})" for m in METHODS.values())
        + " (docs/training.md)")
    steps: int = Field(20000, ge=1, description="maximum optimisation steps")
    lr: float | None = Field(None, gt=0, description="Adam learning rate; default 1e-2 capped at a tenth of the "
                             "largest noise norm in the normalised training coordinates (exact methods), or "
                             "1e-3 for weight-decay (the paper's)")
    lr_decay: float = Field(0.5, gt=0, le=1, description="learning-rate factor at each stall (1: constant)")
    lr_min: float = Field(1e-4, gt=0, description="floor of the decayed learning rate")
    weight_decay: float = Field(1e-5, ge=0, description="lambda of the weight-decay method")
    penalty: float = Field(300.0, gt=0, description="mu: penalty weight on the squared residuals relative to "
                           "min(smallest distance between clean points, 10 x rms noise norm) "
                           "(augmented-lagrangian, penalty)")
    penalty_growth: float = Field(1.05, ge=1, description="without multipliers (penalty method; online mode): mu "
                                  "factor at each check while the max residual is above tol / 4 (continuation)")
    penalty_max: float = Field(1e6, gt=0, description="largest penalty weight mu")
    multiplier_every: int = Field(100, ge=1, description="steps between multiplier updates (augmented-lagrangian)")
    tol: float = Field(0.01, gt=0, description="max residual allowed, as a fraction of min(smallest distance "
                                                "between clean points, largest noise norm)")
    ftol: float = Field(1e-4, ge=0, description="relative change of the path cost between two windows of "
                                                "`patience` checks below which it has stopped falling")
    check_every: int = Field(100, ge=1, description="steps between measurements of cost and residual")
    patience: int = Field(5, ge=1, description="checks per plateau window")
    checkpoint_every: int = Field(2000, ge=1, description="steps between checkpoints (run directories only)")
    average: float = Field(0.99, ge=0, lt=1, description="exponential moving average of the weights, measured and "
                                                       "returned by the exact methods (0: the last iterate)")
    init_scale: float = Field(1.0, gt=0, description="scale of the random initial weights")
    dtype: Literal["float64", "float32"] = "float64"
    batch: int | None = Field(None, ge=1, description="samples of each clean point in a step's minibatch of "
                              "constraints (offline exact methods; every constraint keeps its multiplier, the "
                              "output solve and the checks use all); default (null): all while N M <= 2048, "
                              "else about 1024 columns a step (at least 4 per point); >= samples: all")
    threads: int | None = Field(None, ge=1, description="CPU threads of the training step; default (null): "
                                "measured, one thread unless more are faster (the CLI's --threads)")
    polish: bool = Field(True, description="after an exact method's offline fit, replace the output layer by the "
                         "least-path-cost one for the trained units (an exact cone program) where that costs less "
                         "and fits as well; skipped beyond 4096 samples (docs/training.md 4)")
    reference: Literal["auto", "none"] = Field("auto", description="after an offline fit, measure the best exact "
                                               "interpolant of the same samples that is cheap to get: the closed form "
                                               "where it interpolates them, else the ramps method within "
                                               "train.reference_seconds; none: skip")
    reference_seconds: float = Field(60.0, gt=0, description="time budget of the ramps reference (seconds)")
    allow_overlap: bool = Field(False, description="train even where noise clouds of clean points overlap "
                                "(the theory's regime fails there and exact interpolation is hopeless: refused by default)")

    @property
    def learning_rate(self) -> float:
        """The Adam learning rate: `lr`, or the method's default (before the exact methods' cap on it)."""
        return self.lr if self.lr is not None else METHODS[self.method].default_lr


class CompareSpec(_Section):
    """The recipe's `compare:` section (see `reluden compare --help`)."""

    noise: list[PositiveFloat] = Field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1], min_length=1,
                                       description="noise levels: sigma (gaussian) or the radius (sphere, ball)")
    n_test: int = Field(2000, ge=1, description="fresh clean test points per noise level (digits, patches: at "
                        "most the held-out ones, all of them where fewer exist)")
    repeats: int = Field(1, ge=1, description="training sets drawn per noise level")
    test_points: Literal["fresh", "training"] = Field(
        "fresh", description="fresh: new clean points from the data's distribution (digits, patches: held-out "
        "ones; points and file data have none and are refused); training: the training points themselves, "
        "with fresh noise (says so in the table, result.json and the figure)")


class FlowSpec(_Section):
    """The recipe's `flow:` section: run the denoisers as a generative model (docs/theory.md 10, `reluden flow`)."""

    kind: Literal["probability", "score"] = Field("probability", description="probability: dy/dr = h_sigma(r)(y) - y "
                                                 "with sigma(r) = sigma_max e^-r down to sigma_min; score: dy/dr = "
                                                 "h(y) - y at sigma_max (step 1 is the fixed-point iteration y <- h(y))")
    denoiser: Literal["auto", "closed-form", "nn", "ramps"] = Field(
        "auto", description="auto: the closed form where one exists (exact at any level), else trained networks; "
                            "nn: one trained network per level (train.method honoured); ramps: the ramps method")
    starts: int | str = Field(500, description="N Gaussian starts around the data's mean with spread start_sigma; "
                                               "'subset-sums:2,3,4' for the stability audit; or a .npy/.csv file")
    start_sigma: float | None = Field(None, gt=0, description="spread of the Gaussian starts; default sigma_max")
    sigma_max: float | None = Field(None, gt=0, description="the start level sigma_T; default the recipe's noise "
                                                            "scale (sigma, or the radius)")
    sigma_min: float | None = Field(None, gt=0, description="where a probability flow stops; default sigma_max / 100")
    levels: int = Field(8, ge=1, description="trained denoisers of a probability flow, one per level of a geometric "
                                             "schedule (the closed form needs none: it is exact at any level)")
    step: float | None = Field(None, gt=0, le=1, description="Euler step dr in r; default 0.01 (probability), 1 "
                                                             "(score: the paper's fixed-point iteration)")
    steps: int = Field(1000, ge=1, description="the score flow's steps at most (it stops once no start moves)")
    threshold: float = Field(0.2, gt=0, description="an endpoint within this L-infinity distance of a clean point or "
                                                    "subset sum ends there (the paper's 0.2)")
    apex: Literal["auto", "none"] | int = Field("auto", description="the clean point whose subset sums are virtual "
                                                "points: auto (the closed form's apex of an obtuse or orthogonal "
                                                "simplex), none, or its index")
    audit_limit: int = Field(30000, ge=1, description="subset sums per size in the audit; beyond, a seeded sample")
    duplicate: int = Field(0, ge=0, description="the first k clean points duplicated: each has a second, "
                                                "independent set of noise.samples samples (trained denoisers)")
    record: int = Field(50, ge=0, description="trajectories kept for trajectories.csv and the figure")


class Recipe(_Section):
    name: str = Field("recipe", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="a safe file name: letters, digits, '.', '_', '-' (it names the run's folder)")
    seed: int = 0
    data: DataSpec
    noise: NoiseSpec = Field(default_factory=NoiseSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    compare: CompareSpec = Field(default_factory=CompareSpec)
    flow: FlowSpec = Field(default_factory=FlowSpec)


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-3 (no dot) as a string; recipes mean a number, and strict validation would refuse it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$"
               r"|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


def read_yaml(text: str):
    """Parse recipe YAML (safe, with 1e-3 read as a number)."""
    return yaml.load(text, Loader=_Loader)


def read_yaml_file(path, *, what: str = "recipe"):
    """The parsed YAML of a recipe or sweep file (the one loader: `read_yaml`); RecipeError naming the file,
    and the line and column of a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{what}: file not found: {path}")
    try:
        return read_yaml(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{what} {path}: YAML syntax error{where}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{what} {path}: cannot read it ({type(exc).__name__})") from None


def read_raw_recipe(path) -> dict:
    """A recipe file as the mapping `parse_recipe` takes (its name defaulting to the file's stem)."""
    path = Path(path)
    raw = read_yaml_file(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {path}: expected a mapping of sections (name, data, noise, ...), "
                          f"got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    return raw


def load_recipe(path, overrides: list[str] = ()) -> tuple[Recipe, Path]:
    """Read, override and validate a YAML recipe. Returns the recipe and its folder (for relative paths).

    `path` None: the built-in DEFAULT_RECIPE (docs/theory.md 3), relative to the working directory.
    """
    if path is None:
        return parse_recipe(DEFAULT_RECIPE, overrides), Path(".")
    path = Path(path)
    return parse_recipe(read_raw_recipe(path), overrides), path.parent


def parse_recipe(raw: dict, overrides: list[str] = ()) -> Recipe:
    """Validate a recipe given as a dictionary, after applying `key.path=value` overrides."""
    raw = apply_overrides(raw, overrides)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc)) from None


def parse_section(name: str, raw: dict):
    """One section of a recipe (train, model, compare, ...) validated alone, its defaults filled in; a
    RecipeError names the key as `name.key`."""
    try:
        return Recipe.model_fields[name].annotation.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(f"{name}.{format_validation_error(exc)}") from None


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of `raw` with each `a.b.c=value` set (value parsed as YAML)."""
    import copy

    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set {item}: expected KEY=VALUE, e.g. noise.sigma=0.1")
        try:
            value = read_yaml(text)
        except yaml.YAMLError:
            raise RecipeError(f"--set {item}: value is not valid YAML") from None
        node, parts = raw, key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError(f"--set {item}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def format_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as `key.path: message, got value`."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if "[" not in str(p)]   # drop validator names pydantic inserts
    if len(loc) > 1 and loc[0] == "data" and loc[1] in _DATA_KINDS:
        del loc[1]                                            # the discriminator value, not a key
    where = ".".join(loc) or "recipe"
    msg = err["msg"].replace("Value error, ", "").replace("Input should be", "must be")
    for words, sign in (("greater than or equal to", ">="), ("greater than", ">"),
                        ("less than or equal to", "<="), ("less than", "<")):
        msg = msg.replace(words, sign)
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key (check its spelling and section)"
    if err["type"] == "string_pattern_mismatch":
        return f"{where}: must be a safe file name (letters, digits, '.', '_', '-'; no '/'), got {err.get('input')!r}"
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"{where}.kind: {msg}"
    shown = err.get("input")
    got = "" if isinstance(shown, dict) or shown is None else f", got {shown!r}"
    return f"{where}: {msg}{got}"


_DATA_KINDS = {"points", "univariate", "subspace", "rays", "simplex", "digits", "patches", "file"}


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe (defaults filled in) as YAML text."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)


DEFAULT_RECIPE = {
    # theory.md 3: N = 10 nearly evenly spread points on [0, 1], M = 100
    "name": "default-univariate",
    "seed": 0,
    "data": {"kind": "univariate", "n": 10, "low": 0.0, "high": 1.0, "spacing": "jittered"},
    "noise": {"distribution": "gaussian", "sigma": 0.01, "samples": 100, "rho": "empirical"},
    "model": {"width": 64},
}
