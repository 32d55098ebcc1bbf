"""Closed forms of docs/theory.md 2 and 4: interpolation on the balls, cost, symmetry, fixed points, errors."""

from itertools import combinations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from relu_denoise import NoClosedFormError, closed_form
from relu_denoise.geometry import orthocenter

S3 = np.sqrt(3)
GEOMETRIES = {
    # name: (points, rho, expected geometry, status)
    "univariate": ([[0.0], [1.0], [3.0], [3.7]], 0.2, "univariate", "paper"),
    "obtuse-triangle": ([[0, 0], [2, 0], [-1, 1]], 0.15, "obtuse-simplex", "paper"),
    "right-triangle": ([[0, 0], [1.5, 0], [0, 1]], 0.1, "orthogonal-simplex", "paper"),
    "equilateral": ([[0, 0], [1, 0], [0.5, S3 / 2]], 0.1, "equilateral-triangle", "paper"),
    "acute": ([[0, 0], [1, 0], [0.4, 0.8]], 0.1, "acute-triangle", "numerical"),
    "rays-120": ([[0, 0], [1, 0], [2, 0], [-0.5, S3 / 2], [-1, S3], [-0.5, -S3 / 2]], 0.1, "rays", "paper"),
    "orthogonal-simplex-3d": ([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 1.5]], 0.2, "orthogonal-simplex", "paper"),
    "collinear-3d": ([[0, 0, 0], [1, 1, 1], [3, 3, 3]], 0.3, "univariate", "paper"),
    "obtuse-triangle-in-r5": (np.array([[0, 0], [2, 0], [-1, 1]]) @ np.linalg.qr(
        np.random.default_rng(1).standard_normal((5, 2)))[0].T + 0.3, 0.15, "obtuse-simplex", "paper"),
    "single-point": ([[0.5, -1.0]], 0.1, "single-point", "derived"),
}


def _ball_samples(X, rho, rng, m=50):
    """Points inside and on each ball: (N, 2m, d)."""
    N, d = X.shape
    g = rng.standard_normal((N, 2 * m, d))
    g /= np.linalg.norm(g, axis=-1, keepdims=True)
    radii = np.concatenate([np.full(m, rho), rho * rng.random(m)])
    return X[:, None, :] + radii[None, :, None] * g


@pytest.fixture(params=list(GEOMETRIES))
def case(request):
    pts, rho, geometry, status = GEOMETRIES[request.param]
    X = np.asarray(pts, dtype=float)
    return X, rho, geometry, status, closed_form(X, rho=rho)


def test_geometry_and_status(case):
    X, rho, geometry, status, form = case
    assert (form.geometry, form.status) == (geometry, status)
    assert form.n_points == len(X) and form.dim == X.shape[1]


def test_interpolates_every_ball(case, rng):
    X, rho, *_, form = case
    Y = _ball_samples(X, rho, rng)
    H = form.predict(Y.reshape(-1, X.shape[1])).reshape(Y.shape)
    assert np.abs(H - X[:, None, :]).max() < 1e-9


def test_cost_of_weights_equals_formula(case):
    *_, form = case
    assert form.network.path_cost().item() == pytest.approx(form.cost_formula, rel=1e-12, abs=1e-12)
    assert form.network.width == 2 * len(form.ramps)


def test_jacobian_is_symmetric(case, rng):
    X, *_, form = case
    net = form.network
    lo, hi = X.min(0) - 1, X.max(0) + 1
    for y in lo + (hi - lo) * rng.random((20, X.shape[1])):
        J = torch.autograd.functional.jacobian(lambda t: net(t[None])[0], torch.tensor(y)).numpy()
        assert np.allclose(J, J.T, atol=1e-12)


def test_univariate_closed_form_formula():
    # docs/theory.md 2: cost sum 2 D_n / (D_n - 2 rho), slopes D_n / (D_n - 2 rho)
    x, rho = np.array([0.0, 1.0, 3.0, 3.7]), 0.2
    form = closed_form(x[:, None], rho=rho)
    D = np.diff(x)
    assert form.cost_formula == pytest.approx(np.sum(2 * D / (D - 2 * rho)))
    assert [r.slope for r in form.ramps] == pytest.approx(D / (D - 2 * rho))


def test_univariate_properties(rng):
    x = np.sort(rng.uniform(0, 5, 6))
    rho = 0.4 * np.diff(x).min()
    form = closed_form(x[:, None], rho=rho)
    y = np.linspace(x[0] - 2, x[-1] + 2, 4001)
    h = form.predict(y[:, None])[:, 0]
    nearest = x[np.abs(y[:, None] - x[None]).argmin(1)]
    assert np.all(np.abs(h - nearest) <= np.abs(y - nearest) + 1e-12)        # contractive toward the data
    assert np.all(np.diff(h) >= -1e-12)                                         # monotone
    assert h.min() == pytest.approx(x[0]) and h.max() == pytest.approx(x[-1])  # range [x_1, x_N]
    mids = (x[1:] + x[:-1]) / 2
    assert form.predict(mids[:, None])[:, 0] == pytest.approx(mids, abs=1e-12)  # unstable fixed points
    lipschitz = np.max(np.abs(np.diff(h) / np.diff(y)))
    assert lipschitz == pytest.approx(np.max(np.diff(x) / (np.diff(x) - 2 * rho)), rel=1e-6)
    assert lipschitz > 1


def test_edge_midpoints_at_the_obtuse_vertex_are_fixed():
    # docs/theory.md 4.3: along edge x0 -> x_i the ramp is linear and symmetric about the midpoint
    X = np.array([[0.0, 0], [2, 0], [-1, 1]])
    form = closed_form(X, rho=0.15)
    mids = np.array([(X[0] + X[1]) / 2, (X[0] + X[2]) / 2])
    assert form.predict(mids) == pytest.approx(mids, abs=1e-12)
    assert np.array([r.u for r in form.ramps]) == pytest.approx(np.array([X[1] / 2, X[2] / np.sqrt(2)]))  # along edges


def test_equilateral_units_along_altitudes_and_virtual_points():
    r = 1.0                                         # circumradius
    X = r * np.array([[np.cos(t), np.sin(t)] for t in np.pi / 2 + 2 * np.pi * np.arange(3) / 3])
    rho = 0.1
    form = closed_form(X, rho=rho)
    assert form.cost_formula == pytest.approx(6 * r / (1.5 * r - 2 * rho))     # docs/theory.md 4.4
    assert np.allclose(orthocenter(X), 0, atol=1e-12)
    for i, ramp in enumerate(form.ramps):
        assert ramp.u == pytest.approx(X[i] / r)    # along the altitude through x_i
    far = -10 * X[0]                                 # far beyond the edge opposite x_0
    assert form.predict(far[None])[0] == pytest.approx(X[1] + X[2] - 0, abs=1e-9)  # virtual point x_j + x_k - H


def test_collinear_data_gives_univariate_cost_and_removes_orthogonal_noise(rng):
    t = np.array([0.0, 1.0, 2.5, 3.0])
    u = np.array([1.0, 2.0, 2.0]) / 3
    x0 = np.array([0.5, -1.0, 2.0])
    X = x0 + t[:, None] * u
    rho = 0.2
    form = closed_form(X, rho=rho)
    assert form.cost_formula == pytest.approx(closed_form(t[:, None], rho=rho).cost_formula, rel=1e-12)
    assert form.affine_dim == 1
    noise = rng.standard_normal((len(X), 3))
    noise -= (noise @ u)[:, None] * u                # orthogonal to the line: removed entirely
    assert form.predict(X + 5 * noise) == pytest.approx(X, abs=1e-9)


def test_empirical_rule_interpolates_samples_and_undercuts_nothing(rng):
    X = np.array([[0.0, 0], [2, 0], [-1, 1]])
    samples = X[:, None, :] + 0.05 * rng.standard_normal((3, 100, 2))
    form = closed_form(X, samples=samples)
    H = form.predict(samples.reshape(-1, 2)).reshape(samples.shape)
    assert np.abs(H - X[:, None, :]).max() < 1e-9
    assert form.rho is None and form.network.path_cost().item() == pytest.approx(form.cost_formula)


def _lp_min_cost(y, v):
    """Exact min path cost of a 1-D ReLU net with free linear unit interpolating (y, v) (HiGHS).

    f(t) = alpha + beta t + sum_j c_j [t - k_j]_+ with knots at every sample; cost sum |c_j| (F3).
    """
    knots = np.sort(y)
    n, K = len(y), len(knots)
    R = np.maximum(y[:, None] - knots[None, :], 0)                  # (n, K)
    # variables: c+ (K), c- (K), alpha, beta  (alpha, beta free)
    A = np.hstack([R, -R, np.ones((n, 1)), y[:, None]])
    cost = np.concatenate([np.ones(2 * K), [0, 0]])
    bounds = [(0, None)] * (2 * K) + [(None, None)] * 2
    res = linprog(cost, A_eq=A, b_eq=v, bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun, knots, res.x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_univariate_empirical_cost_equals_exact_lp(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 4, 5))
    x = x + 0.6 * np.arange(5)                                       # gaps well above the noise
    samples = x[:, None, None] + 0.05 * rng.standard_normal((5, 20, 1))
    form = closed_form(x[:, None], samples=samples)
    y = samples.ravel()
    v = np.repeat(x, 20)
    lp_cost, knots, sol = _lp_min_cost(y, v)
    assert form.network.path_cost().item() == pytest.approx(lp_cost, rel=1e-7)
    assert form.cost_formula == pytest.approx(lp_cost, rel=1e-7)
    # and the LP's optimal function is the closed form (it is unique)
    K = len(knots)
    grid = np.linspace(x[0], x[-1], 500)
    f_lp = sol[-2] + sol[-1] * grid + np.maximum(grid[:, None] - knots, 0) @ (sol[:K] - sol[K:2 * K])
    assert form.predict(grid[:, None])[:, 0] == pytest.approx(f_lp, abs=1e-6)


NO_CLOSED_FORM = [
    ("balls overlap", [[0, 0], [0.3, 0], [0, 1]], 0.2),
    ("acute angle", [[0, 0], [1, 0], [2, 0], [1, 1], [2, 2]], 0.1),
    ("general position", [[0, 0], [1, 0.1], [0.2, 1.3], [1.4, 1.1], [0.6, 0.5]], 0.05),
    ("acute simplex in 3 dimensions", [[0, 0, 0], [1, 0, 0], [0.5, 0.9, 0], [0.5, 0.3, 0.8]], 0.05),
    ("smallest altitude", [[0, 0], [1, 0], [0.5, 0.6]], 0.32),
]


@pytest.mark.parametrize("fragment,points,rho", NO_CLOSED_FORM, ids=[c[0] for c in NO_CLOSED_FORM])
def test_no_closed_form_names_the_failed_condition(fragment, points, rho):
    with pytest.raises(NoClosedFormError, match=fragment) as info:
        closed_form(points, rho=rho)
    assert str(info.value).startswith("no closed form: ")


def test_acute_simplex_3d_is_really_acute():
    X = np.array(NO_CLOSED_FORM[3][1], dtype=float)
    for i in range(4):
        for j, k in combinations([m for m in range(4) if m != i], 2):
            assert (X[j] - X[i]) @ (X[k] - X[i]) > 0


# ---------------------------------------------------------------- tolerances on typed numbers (docs/theory.md 4.6)


def _spread(X) -> float:
    sides = [np.linalg.norm(np.subtract(X[i], X[j])) for i, j in combinations(range(len(X)), 2)]
    return (max(sides) - min(sides)) / max(sides)


def test_equilateral_triangle_typed_to_6_decimals_is_the_paper_form():
    typed = [[0, 0], [1, 0], [0.5, 0.866025]]
    form = closed_form(typed, rho=0.1)
    assert (form.geometry, form.status) == ("equilateral-triangle", "paper")
    exact = closed_form(GEOMETRIES["equilateral"][0], rho=0.1)
    assert form.cost_formula == pytest.approx(exact.cost_formula, rel=1e-5)
    assert not [n for n in form.notes if "tolerance" in n]          # 3.5e-7: far inside, nothing to say


@pytest.mark.parametrize("y, geometry", [(0.866, "equilateral-triangle"), (0.8665, "acute-triangle")])
def test_a_triangle_near_the_equilateral_tolerance_says_so(y, geometry):
    from relu_denoise.closed_forms import reference_form
    from relu_denoise.geometry import SIDE_TOL
    from relu_denoise.noise import NoiseSpec

    X = [[0, 0], [1, 0], [0.5, y]]
    spread = _spread(X)
    assert SIDE_TOL / 10 <= spread <= 10 * SIDE_TOL                 # the case this test is about
    form = closed_form(X, rho=0.1)
    assert form.geometry == geometry and form.status == ("paper" if geometry.startswith("equi") else "numerical")
    note = (f"sides equal to {spread:.2g} (relative), within 10x of the equilateral tolerance {SIDE_TOL:g}: "
            f"classed {geometry}")
    assert note in form.notes
    assert note in reference_form(X, NoiseSpec(distribution="sphere", radius=0.1)).to_dict()["notes"]  # every command


def _rays(angles_deg, decimals=None):
    u = np.stack([np.cos(np.radians(angles_deg)), np.sin(np.radians(angles_deg))], axis=1)   # (K, 2)
    X = np.vstack([np.zeros((1, 2)), u, 2 * u])                                             # apex, t = 1, 2
    return X if decimals is None else X.round(decimals)


def test_rays_and_right_angles_typed_to_6_decimals_are_recognised():
    exact = closed_form(_rays([30, 120, 255]), rho=0.1)              # rays 0 and 1 at a right angle
    typed = closed_form(_rays([30, 120, 255], 6), rho=0.1)
    assert (typed.geometry, typed.status) == (exact.geometry, exact.status) == ("rays", "paper")
    assert typed.cost_formula == pytest.approx(exact.cost_formula, rel=1e-5)
    right = np.array([[0, 0], [2 * np.cos(0.3), 2 * np.sin(0.3)], [-np.sin(0.3), np.cos(0.3)]]).round(6)
    assert closed_form(right, rho=0.1).geometry == "orthogonal-simplex"


def test_an_angle_refused_within_10x_of_the_tolerance_says_how_close():
    from relu_denoise.geometry import ANGLE_TOL

    X = _rays([30, 119.99, 255], 4)                                  # rays 0 and 1 at 89.99 degrees
    u, v = X[1] / np.linalg.norm(X[1]), X[2] / np.linalg.norm(X[2])
    short = np.pi / 2 - np.arccos(u @ v)
    assert ANGLE_TOL < short <= 10 * ANGLE_TOL
    with pytest.raises(NoClosedFormError, match=f"{short:.2g} rad short of 90 degrees, within 10x of the angle "
                                                f"tolerance {ANGLE_TOL:g} rad: a right angle if typed to more digits"):
        closed_form(X, rho=0.1)


def test_points_1e_15_apart_are_one_point_and_refused():
    from relu_denoise import DataError
    from relu_denoise.errors import RecipeError
    from relu_denoise.recipe import parse_recipe

    X = [[0, 0], [1e-15, 0], [-1, 1]]
    with pytest.raises(DataError, match=r"x0 and x1 are 1e-15 apart, below 1e-09 x the points' diameter \(1.41\)"):
        closed_form(X, rho=0.1)
    with pytest.raises(RecipeError, match="data.points: rows 0 and 1 are the same point up to rounding: 1e-15 apart"):
        parse_recipe({"data": {"kind": "points", "points": X}})
    near = closed_form([[0, 0], [5e-9, 0], [-1, 1]], rho=1e-10)       # 3.5e-9 x the diameter: kept, and said
    assert any(n.startswith("closest clean points 3.5e-09 x the diameter apart, within 10x") for n in near.notes)


@pytest.mark.parametrize("spec", [{"kind": "simplex", "shape": s} for s in ("obtuse", "orthogonal", "equilateral",
                                                                            "acute")]
                         + [{"kind": "simplex", "shape": "orthogonal", "dim": 3}, {"kind": "rays"},
                            {"kind": "rays", "dim": 3, "directions": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}])
def test_generated_shapes_sit_far_from_every_tolerance(spec):
    from relu_denoise.data import make_source

    form = closed_form(make_source(spec, rng=np.random.default_rng(0)).points, rho=0.05)
    assert not [n for n in form.notes if "tolerance" in n], form.notes


def test_a_triangle_just_short_of_a_right_angle_is_acute_and_says_how_close():
    from relu_denoise.geometry import ANGLE_TOL

    X = np.array([[0, 0], [1, 0], [3e-4, 1]])                        # 3e-4 rad short of 90 degrees at x0
    short = np.pi / 2 - np.arctan2(1, 3e-4)
    form = closed_form(X, rho=0.1)
    assert form.geometry == "acute-triangle"
    assert (f"largest angle 90 degrees less {short:.2g} rad, within 10x of the angle tolerance {ANGLE_TOL:g}: "
            "classed acute (right if typed to more digits)") in form.notes
    within = closed_form([[0, 0], [1, 0], [5e-5, 1]], rho=0.1)       # 5e-5 rad short: a right angle
    assert within.geometry == "orthogonal-simplex"
