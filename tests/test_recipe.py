"""Recipes: validation messages name the key path; overrides; resolved recipe round trip."""

from pathlib import Path

import pytest
import yaml

from relu_denoise import RecipeError, load_recipe, parse_recipe
from relu_denoise.recipe import DEFAULT_RECIPE, parse_section, recipe_to_yaml

BASE = {"name": "t", "data": {"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]},
        "noise": {"distribution": "gaussian", "sigma": 0.05}}

BAD_OVERRIDES = [
    (["noise.sigma=-1"], "noise.sigma: must be > 0, got -1"),
    (["noise.sigmaa=1"], "noise.sigmaa: unknown key"),
    (["model.width=abc"], "model.width: must be a valid integer"),
    (["model.width=0"], "model.width: must be >= 1, got 0"),
    (["noise.distribution=laplace"], "noise.distribution: must be 'gaussian', 'sphere' or 'ball'"),
    (["noise.distribution=sphere"], "noise: sphere noise takes radius"),
    (["data.kind=blob"], "data.kind"),
    (["noise.rho=-0.1"], "noise.rho: must be > 0, 'auto' or 'empirical', got -0.1"),
    (["train.method=magic"], "train.method: must be"),
    (["sigma"], "--set sigma: expected KEY=VALUE"),
    (["noise.sigma=[1"], "--set noise.sigma=[1: value is not valid YAML"),
]


@pytest.mark.parametrize("overrides,message", BAD_OVERRIDES, ids=[o[0] for o, _ in BAD_OVERRIDES])
def test_bad_recipes_name_the_key(overrides, message):
    with pytest.raises(RecipeError) as info:
        parse_recipe(BASE, overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_parse_values_as_yaml():
    r = parse_recipe(BASE, ["noise.sigma=0.1", "model.skip=false", "noise.rho=empirical", "seed=7"])
    assert (r.noise.sigma, r.model.skip, r.noise.rho, r.seed) == (0.1, False, "empirical", 7)


def test_resolved_recipe_round_trips(tmp_path):
    r = parse_recipe(BASE)
    path = tmp_path / "resolved.yaml"
    path.write_text(recipe_to_yaml(r))
    again, base = load_recipe(path)
    assert again == r and base == tmp_path


def test_no_path_is_the_built_in_default_recipe_read_from_the_working_directory():
    r, base = load_recipe(None, ["seed=3"])
    assert r == parse_recipe(DEFAULT_RECIPE, ["seed=3"]) and r.seed == 3 and base == Path(".")


def test_a_section_alone_fills_its_defaults_and_names_its_keys():
    assert parse_section("train", {"steps": 600}) == parse_recipe(BASE, ["train.steps=600"]).train
    with pytest.raises(RecipeError, match=r"^train\.steps: must be >= 1, got 0$"):
        parse_section("train", {"steps": 0})
    with pytest.raises(RecipeError, match=r"^model\.widht: unknown key"):
        parse_section("model", {"widht": 3})


def test_file_errors(tmp_path):
    with pytest.raises(RecipeError, match="recipe: file not found"):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {kind: points\n")
    with pytest.raises(RecipeError, match="YAML syntax error at line"):
        load_recipe(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="expected a mapping"):
        load_recipe(bad)


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "my-geometry.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in BASE.items() if k != "name"}))
    assert load_recipe(path)[0].name == "my-geometry"


RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_load(path):
    recipe, base = load_recipe(path)
    assert recipe.name == path.stem and base == RECIPES
    assert parse_recipe(yaml.safe_load(recipe_to_yaml(recipe))) == recipe  # resolved recipe round trip


@pytest.mark.parametrize("recipe, override, message", [
    ("univariate", "data.low=2", "data.high: must be > data.low (= 2.0), got 1.0"),
    ("subspace", "data.rank=9", "data.rank: must be < data.dim"),
    ("obtuse-triangle", "data.points=[[0, 0], [1, 1], [0, 0]]",
     "data.points: rows 0 and 2 are the same point; remove duplicates"),
    ("digits-obtuse", "data.n=4", "data.n: shape=obtuse picks a triangle, so n must be 3, got 4"),
])
def test_cross_field_checks_fail_in_load_recipe(recipe, override, message):
    with pytest.raises(RecipeError) as info:  # before any source is built or run directory made
        load_recipe(RECIPES / f"{recipe}.yaml", [override])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value) and "Value error" not in str(info.value)


SHIPPED = sorted(RECIPES.glob("*.yaml"))
SWEEPS = sorted((RECIPES / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_recipe_loads_the_same_through_fit_sweep_and_collect(path, tmp_path):
    """One YAML loader: the recipe `reluden fit` reads, the one a sweep point runs, and the one `collect` reads
    back from the run's recipe.yaml are the same."""
    from relu_denoise.sweep import load_sweep
    from relu_denoise.sweep.records import read_recipe

    recipe, _ = load_recipe(path)
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(f"name: s\ncommand: closed-form\nrecipe: {path}\n")
    (point,) = load_sweep(sweep_file, out=tmp_path / "out").points
    assert load_recipe(point.recipe_path, point.overrides)[0] == recipe
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.yaml").write_text(recipe_to_yaml(recipe))
    assert read_recipe(tmp_path / "run") == recipe.model_dump(mode="json")


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_shipped_sweep_file_gives_points_whose_recipes_fit_reads(path, tmp_path):
    from relu_denoise.sweep import load_sweep

    sweep = load_sweep(path, out=tmp_path / "out")
    assert sweep.points
    for point in sweep.points:
        recipe, _ = load_recipe(point.recipe_path, point.overrides)
        assert recipe.name and all(str(point.values[k]) in point.overrides[-len(point.values):][i]
                                   for i, k in enumerate(point.values))


def test_a_sweep_reads_numbers_written_without_a_dot_as_fit_does(tmp_path):
    """YAML 1.1 reads 1e-5 as a string; recipes mean the number (weight_decay: 1e-5 is the paper's value)."""
    from relu_denoise.sweep import load_sweep

    recipe_file = tmp_path / "wd.yaml"
    recipe_file.write_text("data: {kind: points, points: [[0, 0], [2, 0], [-1, 1]]}\n"
                           "train: {method: weight-decay, weight_decay: 1e-5, lr: 1e-3}\n")
    fitted, _ = load_recipe(recipe_file)
    assert fitted.train.weight_decay == 1e-5
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("name: s\ncommand: fit\nrecipe: wd.yaml\ngrid: {seed: [0, 1]}\nset: {train.ftol: 1e-6}\n")
    points = load_sweep(sweep_file, out=tmp_path / "out").points
    assert [load_recipe(p.recipe_path, p.overrides)[0].train.weight_decay for p in points] == [1e-5, 1e-5]
    assert load_recipe(points[0].recipe_path, points[0].overrides)[0].train.ftol == 1e-6
