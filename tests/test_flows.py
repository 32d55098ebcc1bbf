"""Flows of min-cost denoisers (docs/theory.md 10): schedules, denoisers per level, score and probability flow,
endpoint classes and the stability audit, pinned to the exact results of section 10 with hand-written oracles."""

from itertools import combinations, product
from math import comb

import numpy as np
import pytest

from relu_denoise import DataError, NoClosedFormError, RecipeError, closed_form
from relu_denoise.data import SimplexData, make_source
from relu_denoise.flows import (CLASSES, Levels, RampField, classify_endpoints, closed_form_family, closed_form_levels,
                                find_box, geometric_levels, make_schedule, probability_flow, score_flow,
                                stability_audit, subset_sums)
from relu_denoise.noise import NoiseSpec

OBTUSE = np.array([[0.0, 0.0], [1.5, 0.0], [-0.6, 1.2]])      # docs/theory.md 10, "Obtuse simplex"


def _orthogonal(L):
    L = np.asarray(L, dtype=float)
    return np.vstack([np.zeros(len(L)), np.diag(L)]), L


def _g(Y, L, rho):
    """docs/theory.md 10: h*_rho of the orthogonal simplex, coordinate by coordinate: clip(s (t - rho), 0, L)."""
    return np.clip(L / (L - 2 * rho) * (Y - rho), 0.0, L)


def _h1(y, x, rho):
    """docs/theory.md 2: x_1 + sum_n ramp(y; x_n + rho, x_{n+1} - rho, D_n), written out."""
    out = np.full_like(y, x[0])
    for a, b in zip(x[:-1], x[1:]):
        out += (b - a) * np.clip((y - a - rho) / (b - a - 2 * rho), 0.0, 1.0)
    return out


# ---------------------------------------------------------------- schedule


def test_geometric_levels_run_from_sigma_max_to_sigma_min_with_one_ratio():
    s = geometric_levels(0.5, 0.005, 5)
    assert s[0] == 0.5 and s[-1] == pytest.approx(0.005, rel=1e-12)
    assert np.allclose(s[1:] / s[:-1], 0.01 ** 0.25)
    assert list(geometric_levels(0.5, 0.005, 1)) == [0.5]


@pytest.mark.parametrize("sigma_max, sigma_min, levels, words", [
    (0.1, 0.1, 5, "sigma_min (0.1) must be < sigma_max (0.1)"),
    (0.1, 0.5, 5, "sigma_min (0.5) must be < sigma_max (0.1)"),
    (0.1, -0.01, 5, "sigma_min must be a finite number > 0, got -0.01"),
    (float("nan"), 0.01, 5, "sigma_max must be a finite number > 0"),
    ("big", 0.01, 5, "sigma_max must be a finite number > 0, got 'big'"),
    (0.1, 0.01, 0, "levels must be an integer >= 1, got 0"),
    (0.1, 0.01, 2.5, "levels must be an integer >= 1, got 2.5"),
    (0.1, 0.01, True, "levels must be an integer >= 1, got True"),
])
def test_a_bad_schedule_is_one_line_naming_the_value(sigma_max, sigma_min, levels, words):
    with pytest.raises(RecipeError) as exc:
        geometric_levels(sigma_max, sigma_min, levels)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_schedule_rho_follows_the_recipe_rule_at_each_level():
    M = 50
    auto = make_schedule(NoiseSpec(sigma=0.1, rho="auto", samples=M), sigma_max=0.2, sigma_min=0.002, levels=3)
    assert auto.rho_rule == "auto" and auto.r_end == pytest.approx(np.log(100))
    assert [d["sigma"] for d in auto.to_dict()] == pytest.approx([0.2, 0.02, 0.002])
    assert [d["rho"] for d in auto.to_dict()] == pytest.approx([s * np.sqrt(2 * np.log(M)) for s in auto.sigma])
    sphere = make_schedule(NoiseSpec(distribution="sphere", radius=0.1), sigma_max=0.2, sigma_min=0.02, levels=2)
    assert sphere.rho == sphere.sigma and sphere.rho_rule == "radius"
    empirical = make_schedule(NoiseSpec(sigma=0.1), sigma_max=0.2, sigma_min=0.02, levels=2)
    assert empirical.rho_rule == "empirical" and [d["rho"] for d in empirical.to_dict()] == [None, None]
    assert auto.sigma_at(auto.r_end) == pytest.approx(0.002)


# ---------------------------------------------------------------- denoisers at a level


@pytest.mark.parametrize("points, rho", [
    ([[0.0], [1.0], [3.0], [3.7]], 0.2),
    (OBTUSE, 0.15),
    ([[0, 0], [1, 0], [0.4, 0.8]], 0.1),                                        # acute: the orthocenter form
    ([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 1.5]], 0.2),
    ([[0, 0, 0], [1, 1, 1], [3, 3, 3]], 0.3),                                  # lifted from a line
])
def test_ramp_field_is_the_closed_form_and_the_family_is_the_form_built_at_each_rho(points, rho, rng):
    form = closed_form(points, rho=rho)
    Y = rng.uniform(-1, 4, (200, form.dim))
    assert np.abs(RampField.from_form(form).predict(Y) - form.predict(Y)).max() < 1e-12
    h_at = closed_form_family(points, lambda s: rho * s, sigma_max=1.0)
    for sigma in (1.0, 0.4, 0.01):
        built = closed_form(points, rho=rho * sigma)
        assert np.abs(h_at(sigma).predict(Y) - built.predict(Y)).max() < 1e-12


def test_a_family_whose_balls_overlap_at_the_start_level_is_refused():
    with pytest.raises(NoClosedFormError):
        closed_form_family(OBTUSE, lambda s: s, sigma_max=1.0)


def test_levels_pick_the_nearest_level_in_log_sigma_or_the_nearest_at_or_above():
    nearest = Levels([1.0, 0.1, 0.01], ["a", "b", "c"])
    above = Levels([1.0, 0.1, 0.01], ["a", "b", "c"], rule="above")
    assert [nearest(s) for s in (1.0, 0.5, np.sqrt(0.1), 0.2, 0.1, 0.02, 0.005)] == list("aaabbcc")
    assert [above(s) for s in (1.0, 0.5, 0.2, 0.1, 0.1 * (1 - 1e-12), 0.05, 0.01)] == list("aaabbbc")


@pytest.mark.parametrize("sigma, denoisers, rule, words", [
    ([0.1, 0.2], ["a", "b"], "nearest", "must decrease"),
    ([0.2, 0.1], ["a"], "nearest", "2 noise levels but 1 denoisers"),
    ([0.2, -0.1], ["a", "b"], "nearest", "numbers > 0"),
    ([0.2, 0.1], ["a", "b"], "below", "rule must be one of nearest, above"),
])
def test_bad_levels_are_refused(sigma, denoisers, rule, words):
    with pytest.raises(DataError, match=words):
        Levels(sigma, denoisers, rule=rule)


# ---------------------------------------------------------------- orthogonal simplex: the exact results


@pytest.mark.parametrize("L", [[1.0, 1.3, 0.8, 1.6], [1.0, 1.3, 0.8, 1.6, 1.1, 0.9]])
def test_orthogonal_simplex_every_subset_sum_is_a_flat_fixed_point(L, rng):
    X, L = _orthogonal(L)
    h = closed_form(X, rho=0.2)
    V = np.array([L * np.array(s) for s in product((0, 1), repeat=len(L))])        # all 2^k subset sums
    wiggle = V + rng.uniform(-0.15, 0.15, V.shape)                                  # inside the flat zones
    assert np.abs(h.predict(V) - V).max() < 1e-12
    assert np.abs(h.predict(wiggle) - V).max() < 1e-12


@pytest.mark.parametrize("dr", [1.0, 0.1])
def test_orthogonal_simplex_score_flow_ends_at_the_rounding_of_the_start(dr, rng):
    X, L = _orthogonal([1.0, 1.3, 0.8, 1.6, 1.1])
    Y0 = rng.uniform(-0.3, 1.3, (40, 5)) * L
    flow = score_flow(closed_form(X, rho=0.2), Y0, dr=dr, steps=10_000)
    assert flow.stopped and flow.steps < 10_000
    assert np.abs(flow.end - np.where(Y0 > L / 2, L, 0.0)).max() < 1e-7


def test_orthogonal_simplex_probability_flow_ends_at_one_application_of_the_start_denoiser(rng):
    """docs/theory.md 10: the flow ends at h*_{rho_T}(y_T); Euler's error shrinks with dr (first order)."""
    source = make_source(SimplexData(shape="orthogonal", dim=5), rng=rng)
    X = source.points
    L, rho_T = np.diag(X[1:]), 0.2
    Y0 = X.mean(axis=0) + 0.6 * rng.standard_normal((30, 5))
    h_at = closed_form_family(X, lambda s: rho_T * s, sigma_max=1.0)
    err = []
    for dr in (1e-2, 1e-3):
        flow = probability_flow(h_at, Y0, sigma_max=1.0, sigma_min=1e-5, dr=dr)
        err.append(np.abs(flow.end - _g(Y0, L, rho_T)).max())
    assert err[1] < 5e-4 and err[1] < err[0] / 5
    exact = _g(Y0, L, rho_T)
    assert np.any((exact > 0) & (exact < L))              # some ends are not vertices: on the box's boundary


def test_one_dimension_score_flow_rounds_and_probability_flow_applies_the_start_denoiser(rng):
    x, rho_T = np.array([0.0, 1.0, 2.5, 3.2]), 0.15
    Y0 = rng.uniform(-0.5, 3.7, (40, 1))
    score = score_flow(closed_form(x[:, None], rho=rho_T), Y0, dr=0.5, steps=5000)
    nearest = x[np.abs(Y0 - x).argmin(axis=1)][:, None]                               # the gap midpoints split
    assert np.abs(score.end - nearest).max() < 1e-7
    h_at = closed_form_family(x[:, None], lambda s: rho_T * s, sigma_max=1.0)
    err = [np.abs(probability_flow(h_at, Y0, sigma_max=1.0, sigma_min=1e-5, dr=dr).end - _h1(Y0, x, rho_T)).max()
           for dr in (1e-2, 1e-3)]
    assert err[1] < 5e-4 and err[1] < err[0] / 5


def test_obtuse_triangle_score_flow_ends_at_a_training_point_and_the_identity_fails():
    y0 = np.array([[0.331, 1.471]])
    h = closed_form(OBTUSE, rho=0.15)
    for dr in (1.0, 0.1):
        end = score_flow(h, y0, dr=dr, steps=5000).end
        assert np.abs(end - OBTUSE[2]).max() < 1e-7                                   # (-0.6, 1.2)
        assert np.abs(end - (OBTUSE[1] + OBTUSE[2])).max() > 1                         # not (0.9, 1.2)
    h_at = closed_form_family(OBTUSE, lambda s: 0.15 * s, sigma_max=1.0)
    end = probability_flow(h_at, y0, sigma_max=1.0, sigma_min=1e-5, dr=1e-2).end
    assert np.abs(end - h.predict(y0)).max() > 0.1


def test_trained_style_levels_converge_to_the_continuous_flow_and_nearest_beats_above(rng):
    X, L = _orthogonal([1.0, 1.3, 0.8])
    Y0 = rng.uniform(0.0, 1.0, (30, 3)) * L
    exact = _g(Y0, L, 0.2)
    sigma_min = 1e-4

    def error(K, rule):
        s = geometric_levels(1.0, sigma_min, K)
        return np.abs(probability_flow(closed_form_levels(X, s, 0.2 * s, rule=rule), Y0, sigma_max=1.0,
                                       sigma_min=sigma_min, dr=1e-3).end - exact).max()

    assert error(80, "nearest") < error(10, "nearest") / 4
    assert error(20, "nearest") < error(20, "above") / 2


# ---------------------------------------------------------------- integrators: contracts


def test_score_flow_records_a_thinned_subsample_from_start_to_end(rng):
    X, L = _orthogonal([1.0, 1.3])
    Y0 = rng.uniform(0, 1, (50, 2)) * L
    flow = score_flow(closed_form(X, rho=0.2), Y0, dr=0.01, steps=3000, tol=0.0, record=7, record_points=100)
    tr = flow.trajectories
    assert flow.steps == 3000 and not flow.stopped and len(tr.index) == 7 and tr.index[0] == 0 and tr.index[-1] == 49
    assert tr.y.shape == (7, len(tr.r), 2) and 100 <= len(tr.r) <= 102
    assert np.array_equal(tr.y[:, 0], Y0[tr.index]) and np.array_equal(tr.y[:, -1], flow.end[tr.index])
    assert tr.r[0] == 0 and tr.r[-1] == pytest.approx(30.0)


def test_probability_flow_asks_each_level_once_per_step_from_sigma_max_to_sigma_min():
    asked = []

    def h_at(sigma):
        asked.append(sigma)
        return lambda Y: np.zeros_like(Y)

    flow = probability_flow(h_at, np.ones((3, 2)), sigma_max=2.0, sigma_min=0.02, dr=0.1, record=1)
    assert flow.steps == len(asked) == int(np.ceil(np.log(100) / 0.1))
    assert asked[0] == 2.0 and asked[-1] > 0.02 and np.all(np.diff(asked) < 0)
    assert flow.r == pytest.approx(np.log(100)) and flow.trajectories.sigma[-1] == pytest.approx(0.02)
    assert np.allclose(flow.end, (1 - flow.dr) ** flow.steps)                          # Euler on dy/dr = -y


@pytest.mark.parametrize("kwargs, error, words", [
    ({"dr": 1.5, "steps": 3}, RecipeError, "dr: must be in (0, 1]"),
    ({"dr": 0.0, "steps": 3}, RecipeError, "dr: must be a number in (0, 1]"),
    ({"dr": 0.5}, RecipeError, "exactly one of steps"),
    ({"dr": 0.5, "steps": 3, "r_end": 2.0}, RecipeError, "exactly one of steps"),
    ({"dr": 0.5, "steps": 0}, RecipeError, "steps: must be an integer >= 1"),
])
def test_score_flow_refuses_bad_settings(kwargs, error, words):
    with pytest.raises(error) as exc:
        score_flow(lambda Y: Y, np.zeros((2, 2)), **kwargs)
    assert words in str(exc.value)


def test_a_denoiser_of_the_wrong_shape_is_named():
    with pytest.raises(DataError, match=r"returned shape \(2, 3\) for input \(2, 2\)"):
        score_flow(lambda Y: np.zeros((2, 3)), np.zeros((2, 2)), steps=1)
    with pytest.raises(RecipeError, match="sigma_min .* must be < sigma_max"):
        probability_flow(lambda s: None, np.zeros((2, 2)), sigma_max=0.1, sigma_min=0.2, dr=0.1)


# ---------------------------------------------------------------- classification


def test_hand_built_endpoints_of_each_class():
    X, L = _orthogonal([1.0, 2.0, 1.5])
    ends = np.array([[0.05, 1.95, -0.05],                  # training: x2
                     [1.1, 1.9, 0.0],                      # virtual {1, 2}
                     [0.95, 2.05, 1.4],                    # virtual {1, 2, 3}
                     [0.5, 2.0, 0.0],                      # boundary: the face t2 = 1, t3 = 0
                     [0.5, 2.1, 1.0],                      # boundary, 0.1 outside the face t2 = 1
                     [0.5, 1.0, 0.7],                      # other: inside the box
                     [3.0, 3.0, 3.0]])                     # other: outside
    c = classify_endpoints(ends, X)
    assert list(c.cls) == ["training", "virtual", "virtual", "boundary", "boundary", "other", "other"]
    assert list(c.size) == [0, 2, 3, 0, 0, 0, 0]
    brute = np.abs(ends[:, None] - X[None]).max(axis=2)
    assert np.array_equal(c.nearest, brute.argmin(axis=1)) and np.allclose(c.distance, brute.min(axis=1))
    assert c.counts == {"training": 1, "virtual": 2, "boundary": 2, "other": 2} and c.virtual_by_size == {2: 1, 3: 1}
    assert c.apex == 0 and c.to_dict()["fractions"]["other"] == pytest.approx(2 / 7)


def test_the_threshold_sweep_is_monotone(rng):
    X, L = _orthogonal([1.0, 1.3, 0.8, 1.6])
    ends = rng.uniform(-0.4, 1.4, (400, 4)) * L
    sweep = classify_endpoints(ends, X, thresholds=np.linspace(0.02, 0.6, 12)).sweep
    cum = np.array([[s["training"], s["training"] + s["virtual"], 400 - s["other"]] for s in sweep])
    assert np.all(np.diff(cum, axis=0) >= 0) and cum[-1, 1] > cum[0, 1]
    assert all(sum(s[c] for c in CLASSES) == 400 for s in sweep)


@pytest.mark.parametrize("tau", [0.05, 0.2, 0.45, 0.9])
def test_virtual_points_agree_with_every_subset_sum_searched_on_a_skewed_box(tau, rng):
    X = np.array([[0.0, 0.0, 0.0], [1.0, 0.3, 0.0], [0.5, 1.2, 0.1], [-0.2, 0.4, 0.9]])     # apex x0, acute
    E = X[1:] - X[0]
    V = np.array([np.array(s) @ E for s in product((0, 1), repeat=3)])                      # (8, 3)
    size = np.array([sum(s) for s in product((0, 1), repeat=3)])
    ends = V[rng.integers(8, size=300)] + rng.uniform(-1.2 * tau, 1.2 * tau, (300, 3))
    c = classify_endpoints(ends, X, apex=0, threshold=tau, thresholds=[tau])
    D = np.abs(ends[:, None] - V[None]).max(axis=2)                                        # (300, 8)
    training = np.abs(ends[:, None] - X[None]).max(axis=2).min(axis=1) <= tau
    virtual = ~training & np.any((D <= tau) & (size >= 2), axis=1)
    assert np.array_equal(c.cls == "training", training) and np.array_equal(c.cls == "virtual", virtual)
    assert virtual.any() and not c.notes


def test_without_an_apex_there_are_no_virtual_points_and_subset_sums_are_refused():
    X = np.array([[0, 0], [1, 0], [0.4, 0.8]])                                             # acute: no apex
    ends = np.array([[1.4, 0.8], [0.0, 0.05]])                                             # (1.4, 0.8) = x1 + x2
    c = classify_endpoints(ends, X)
    assert list(c.cls) == ["other", "training"] and c.apex is None and "no apex found" in c.notes[0]
    assert list(classify_endpoints(ends, X, apex=0).cls) == ["virtual", "training"]
    assert list(classify_endpoints(ends, OBTUSE, apex=None).cls) == ["other", "training"]
    with pytest.raises(DataError) as exc:
        stability_audit(closed_form(X, rho=0.1), X)
    assert "virtual points need an apex" in str(exc.value) and "\n" not in str(exc.value)


def test_find_box_takes_the_closed_forms_apex_and_refuses_rays_with_several_points():
    box, _ = find_box(np.array([[1.5, 0.0], [0.0, 0.0], [-0.6, 1.2]]))
    assert box.apex == 1 and list(box.edges) == [0, 2]
    box, reason = find_box(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]))
    assert box is None and "several points" in reason
    box, reason = find_box(np.array([[0.0], [1.0], [-1.0]]), apex=0)
    assert box is None and "not linearly independent" in reason


# ---------------------------------------------------------------- subset sums and the audit


def test_subset_sums_are_all_of_them_or_a_seeded_sample_of_distinct_ones():
    X, L = _orthogonal([1.0, 1.3, 0.8, 1.6, 1.1, 0.9])
    box, _ = find_box(X)
    every = subset_sums(box, 3)
    assert len(every.points) == every.population == comb(6, 3) and not every.sampled
    assert {tuple(np.flatnonzero(p)) for p in every.points} == set(combinations(range(6), 3))
    some = subset_sums(box, 3, limit=7, rng=np.random.default_rng(3))
    again = subset_sums(box, 3, limit=7, rng=np.random.default_rng(3))
    assert some.sampled and len({tuple(s) for s in some.subsets}) == 7 and np.array_equal(some.points, again.points)
    assert np.allclose(some.points, [L * np.isin(range(6), s) for s in some.subsets])
    with pytest.raises(DataError, match="give rng"):
        subset_sums(box, 3, limit=7)
    with pytest.raises(DataError, match=r"size m must be an integer in 1..6"):
        subset_sums(box, 7)


def test_the_closed_form_audit_keeps_every_subset_sum_of_an_orthogonal_simplex():
    X, _ = _orthogonal([1.0, 1.3, 0.8, 1.6, 1.1, 0.9])
    a = stability_audit(closed_form(X, rho=0.2), X, sizes=(2, 3))
    assert a.to_dict() == {2: {"stable": 15, "total": 15, "population": 15, "sampled": False},
                           3: {"stable": 20, "total": 20, "population": 20, "sampled": False}}
    sampled = stability_audit(closed_form(X, rho=0.2), X, sizes=(3,), limit=5, rng=np.random.default_rng(0))
    assert sampled.to_dict()[3] == {"stable": 5, "total": 5, "population": 20, "sampled": True} and sampled.sampled


def test_the_audit_sees_an_unstable_subset_sum_of_an_obtuse_triangle():
    # (0.9, 1.2) projects to 0.9 on the edge to (1.5, 0): inside that ramp, not a flat zone (docs/theory.md 10)
    a = stability_audit(closed_form(OBTUSE, rho=0.15), OBTUSE, sizes=(2,))
    assert a.to_dict()[2] == {"stable": 0, "total": 1, "population": 1, "sampled": False}
    assert np.abs(a.ends[2] - a.starts[2]).max() > 0.5
