"""Clean-point sources (relu_denoise.data): shapes, determinism, the geometry each kind promises,
draws from the right distribution, and messages for bad specs."""

import json
from itertools import combinations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from relu_denoise.data import (DataSpec, DigitsData, PointsData, RaysData, SimplexData, Source,
                               UnivariateData, make_source)
from relu_denoise.errors import DataError, RecipeError
from relu_denoise.recipe import parse_recipe


def rng(seed=0):
    return np.random.default_rng(seed)


def source(spec: dict, seed=0, **kw) -> Source:
    return make_source(TypeAdapter(DataSpec).validate_python(spec), rng=rng(seed), **kw)


def angles_at(x: np.ndarray) -> list[float]:
    """Every angle (degrees) at every vertex of a simplex."""
    out = []
    for i in range(len(x)):
        for j, k in combinations([j for j in range(len(x)) if j != i], 2):
            u, v = x[j] - x[i], x[k] - x[i]
            out.append(np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))))
    return out


def barycentric(x: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(n, m) barycentric coordinates of points x in the simplex's affine hull."""
    A = np.vstack([vertices.T, np.ones(len(vertices))])  # (d + 1, m)
    B = np.vstack([x.T, np.ones(len(x))])  # (d + 1, n)
    return np.linalg.lstsq(A, B, rcond=None)[0].T


# ---------------------------------------------------------------------------------------------
# The contract every kind keeps
# ---------------------------------------------------------------------------------------------

KINDS = [  # (minimal spec, expected shape of the training points)
    ({"kind": "points", "points": [[0, 0], [2, 0], [-1, 1]]}, (3, 2)),
    ({"kind": "univariate"}, (10, 1)),
    ({"kind": "subspace"}, (20, 3)),
    ({"kind": "rays"}, (7, 2)),
    ({"kind": "simplex"}, (3, 2)),
    ({"kind": "digits"}, (3, 64)),
    ({"kind": "patches"}, (200, 16)),
]
DRAWABLE = [k for k in KINDS if k[0]["kind"] != "points"]


@pytest.mark.parametrize("spec, shape", KINDS, ids=[k[0]["kind"] for k in KINDS])
def test_shape_dtype_and_json_info(spec, shape):
    s = source(spec)
    assert s.kind == spec["kind"]
    assert s.points.shape == shape and s.points.dtype == np.float64
    assert np.all(np.isfinite(s.points))
    json.dumps(s.info)


@pytest.mark.parametrize("spec, shape", KINDS, ids=[k[0]["kind"] for k in KINDS])
def test_same_seed_same_points(spec, shape):
    a, b = source(spec, seed=7), source(spec, seed=7)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.info == b.info


@pytest.mark.parametrize("spec", [{"kind": "univariate"}, {"kind": "subspace"}, {"kind": "digits"},
                                  {"kind": "patches"}], ids=lambda s: s["kind"])
def test_random_kinds_depend_on_the_seed(spec):
    assert not np.array_equal(source(spec, seed=0).points, source(spec, seed=1).points)


@pytest.mark.parametrize("spec, shape", DRAWABLE, ids=[k[0]["kind"] for k in DRAWABLE])
@pytest.mark.parametrize("n", [1, 13])
def test_draw_shape_and_determinism(spec, shape, n):
    s = source(spec)
    x = s.draw(n, rng=rng(3))
    assert x.shape == (n, shape[1]) and x.dtype == np.float64
    np.testing.assert_array_equal(x, s.draw(n, rng=rng(3)))


def test_draw_rejects_bad_n_and_rng():
    s = source({"kind": "univariate"})
    with pytest.raises(DataError, match="n must be an integer >= 1"):
        s.draw(0, rng=rng())
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        s.draw(3, rng=0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        make_source(UnivariateData(), rng=np.random.RandomState(0))


def test_every_minimal_spec_validates():
    for kind in ["univariate", "subspace", "rays", "simplex", "digits", "patches"]:
        assert TypeAdapter(DataSpec).validate_python({"kind": kind}).kind == kind


def test_make_source_accepts_a_plain_dict():
    s = make_source({"kind": "univariate", "n": 4}, rng=rng())
    assert s.points.shape == (4, 1)


# ---------------------------------------------------------------------------------------------
# points
# ---------------------------------------------------------------------------------------------

def test_points_are_the_given_points_and_cannot_be_drawn():
    s = make_source(PointsData(points=[[0, 0], [2, 0], [-1, 1]]), rng=rng())
    np.testing.assert_array_equal(s.points, [[0, 0], [2, 0], [-1, 1]])
    with pytest.raises(DataError, match="data.kind=points has no distribution to draw fresh clean points"):
        s.draw(5, rng=rng())


def test_one_point_in_one_dimension():
    assert source({"kind": "points", "points": [[0.5]]}).points.shape == (1, 1)


# ---------------------------------------------------------------------------------------------
# univariate
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spacing", ["even", "jittered", "uniform"])
def test_univariate_sorted_within_interval(spacing):
    x = source({"kind": "univariate", "n": 25, "low": -2, "high": 3, "spacing": spacing}).points[:, 0]
    assert len(x) == 25 and np.all(np.diff(x) > 0)
    assert x.min() >= -2 and x.max() <= 3


def test_univariate_even_is_the_grid():
    x = source({"kind": "univariate", "n": 5, "spacing": "even"}).points[:, 0]
    np.testing.assert_allclose(x, [0, 0.25, 0.5, 0.75, 1])


def test_univariate_jitter_stays_within_its_band():
    n, jitter = 50, 0.4
    x = source({"kind": "univariate", "n": n, "jitter": jitter}).points[:, 0]
    gap = 1 / (n - 1)
    assert np.max(np.abs(x - np.linspace(0, 1, n))) <= jitter * gap / 2 + 1e-15
    assert np.min(np.diff(x)) >= (1 - jitter) * gap - 1e-15


def test_univariate_one_point():
    assert source({"kind": "univariate", "n": 1}).points.shape == (1, 1)


def test_univariate_draws_uniform_on_the_data_span():
    s = source({"kind": "univariate", "n": 10})
    x1, xN = s.points[0, 0], s.points[-1, 0]
    y = s.draw(4000, rng=rng(1))[:, 0]
    assert y.min() >= x1 and y.max() <= xN
    assert abs(y.mean() - (x1 + xN) / 2) < 0.02  # uniform: mean at the midpoint
    assert y.min() - x1 < 0.01 and xN - y.max() < 0.01


# ---------------------------------------------------------------------------------------------
# subspace
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim, rank", [(2, 1), (3, 1), (5, 2), (6, 4)])
def test_subspace_rank_and_draws_in_the_same_subspace(dim, rank):
    s = source({"kind": "subspace", "n": 30, "dim": dim, "rank": rank, "scale": 2.0})
    x = s.points
    assert x.shape == (30, dim)
    assert np.linalg.matrix_rank(x - x.mean(axis=0), tol=1e-9) == rank
    U, x_bar = np.array(s.info["basis"]).T, np.array(s.info["offset"])  # (d, r), (d,)
    np.testing.assert_allclose(U.T @ U, np.eye(rank), atol=1e-12)
    y = s.draw(200, rng=rng(5))
    z = (y - x_bar) @ U  # (n, r)
    np.testing.assert_allclose(x_bar + z @ U.T, y, atol=1e-12)  # no component off the subspace
    assert np.all(np.abs(z) <= 2.0 + 1e-12)
    both = np.vstack([x, y])
    assert np.linalg.matrix_rank(both - both.mean(axis=0), tol=1e-9) == rank


# ---------------------------------------------------------------------------------------------
# rays
# ---------------------------------------------------------------------------------------------

def on_ray(x, apex, directions):
    """(n,) ray index and (n,) t of points x = apex + t u_k (-1 where on no ray)."""
    v = x - apex  # (n, d)
    t = v @ directions.T  # (n, K)
    residual = np.linalg.norm(v[:, None, :] - t[..., None] * directions[None], axis=-1)  # (n, K)
    k = np.argmin(np.where(t >= -1e-12, residual, np.inf), axis=1)
    ok = residual[np.arange(len(x)), k] < 1e-9
    return np.where(ok, k, -1), t[np.arange(len(x)), k]


@pytest.mark.parametrize("spec", [
    {"kind": "rays"},
    {"kind": "rays", "angles_deg": [0, 90, 200], "points_per_ray": 3, "spacing": 0.5, "apex": [1, -1]},
    {"kind": "rays", "dim": 3, "directions": [[1, 0, 0], [0, 2, 0], [-1, -1, -1]], "points_per_ray": 2},
    {"kind": "rays", "dim": 1, "directions": [[1], [-3]], "points_per_ray": 4},
], ids=["default", "angles", "3d", "1d"])
def test_rays_apex_first_then_points_at_multiples_of_spacing(spec):
    s = source(spec)
    spec = RaysData(**spec)
    apex, u = np.array(s.info["apex"]), np.array(s.info["directions"])
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1)
    np.testing.assert_array_equal(s.points[0], apex)
    assert len(s.points) == 1 + len(u) * spec.points_per_ray
    k, t = on_ray(s.points[1:], apex, u)
    assert np.all(k >= 0)
    j = t / spec.spacing
    np.testing.assert_allclose(j, np.round(j), atol=1e-9)
    for ray in range(len(u)):
        np.testing.assert_allclose(np.sort(j[k == ray]), np.arange(1, spec.points_per_ray + 1))


def test_rays_angles_give_those_directions():
    u = np.array(source({"kind": "rays", "angles_deg": [30, 150]}).info["directions"])
    np.testing.assert_allclose(np.degrees(np.arctan2(u[:, 1], u[:, 0])), [30, 150])


def test_rays_draws_lie_on_the_segments():
    s = source({"kind": "rays", "points_per_ray": 3, "spacing": 0.5, "apex": [1, 2]})
    apex, u = np.array(s.info["apex"]), np.array(s.info["directions"])
    y = s.draw(600, rng=rng(2))
    k, t = on_ray(y, apex, u)
    assert np.all(k >= 0) and np.all((t >= 0) & (t <= 1.5 + 1e-12))
    assert set(k.tolist()) == {0, 1, 2}
    assert t.max() > 1.4  # reaches the far end, not only the training points


# ---------------------------------------------------------------------------------------------
# simplex
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim, vertices", [(2, 3), (3, 4), (5, 6), (4, 3), (3, 2)])
def test_obtuse_vertex_pairwise_negative(dim, vertices):
    x = source({"kind": "simplex", "shape": "obtuse", "dim": dim, "vertices": vertices}).points
    assert x.shape == (vertices, dim)
    E = x[1:] - x[0]
    G = E @ E.T
    assert np.all(G[~np.eye(len(E), dtype=bool)] < 0)
    assert np.linalg.matrix_rank(E) == vertices - 1
    if vertices > 2:
        assert np.ptp(np.linalg.norm(E, axis=1)) > 0.1  # not symmetric


@pytest.mark.parametrize("angle", [91, 120, 150, 179])
def test_obtuse_triangle_angle_is_exact(angle):
    s = source({"kind": "simplex", "shape": "obtuse", "angle_deg": angle, "size": 2})
    x = s.points
    u, v = x[1] - x[0], x[2] - x[0]
    assert np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))) == pytest.approx(angle)
    assert s.info["max_angle_deg"] == pytest.approx(angle)
    assert s.info["min_edge"] == pytest.approx(2)


@pytest.mark.parametrize("dim, vertices", [(2, 3), (3, 4), (4, 3)])
def test_orthogonal_right_angles_at_x0(dim, vertices):
    x = source({"kind": "simplex", "shape": "orthogonal", "dim": dim, "vertices": vertices}).points
    E = x[1:] - x[0]
    G = E @ E.T
    np.testing.assert_array_equal(G[~np.eye(len(E), dtype=bool)], 0)
    assert np.all(np.diag(G) > 0)


@pytest.mark.parametrize("dim, vertices", [(1, 2), (2, 3), (3, 4), (6, 7), (5, 3)])
def test_equilateral_all_edges_equal_size(dim, vertices):
    x = source({"kind": "simplex", "shape": "equilateral", "dim": dim, "vertices": vertices, "size": 0.7}).points
    edges = [np.linalg.norm(x[i] - x[j]) for i, j in combinations(range(vertices), 2)]
    np.testing.assert_allclose(edges, 0.7, rtol=1e-12)


@pytest.mark.parametrize("dim, vertices", [(2, 3), (3, 4), (5, 6), (4, 3)])
def test_acute_all_angles_below_90_not_equilateral(dim, vertices):
    x = source({"kind": "simplex", "shape": "acute", "dim": dim, "vertices": vertices}).points
    assert max(angles_at(x)) < 90
    edges = [np.linalg.norm(x[i] - x[j]) for i, j in combinations(range(vertices), 2)]
    assert np.ptp(edges) > 1e-3


@pytest.mark.parametrize("angle", [61, 73, 75, 89])
def test_acute_triangle_largest_angle_is_exact_and_scalene(angle):
    x = source({"kind": "simplex", "shape": "acute", "angle_deg": angle}).points
    a = angles_at(x)
    assert max(a) == pytest.approx(angle)
    assert len({round(v, 6) for v in a}) == 3


@pytest.mark.parametrize("shape", ["obtuse", "orthogonal", "equilateral", "acute"])
def test_simplex_draws_uniform_in_the_hull(shape):
    s = source({"kind": "simplex", "shape": shape, "dim": 3})
    y = s.draw(2000, rng=rng(4))
    lam = barycentric(y, s.points)  # (n, 4)
    assert np.all(lam >= -1e-10)
    np.testing.assert_allclose(lam.sum(axis=1), 1)
    np.testing.assert_allclose(lam.mean(axis=0), 0.25, atol=0.02)  # Dirichlet(1, 1, 1, 1): mean 1/m
    np.testing.assert_allclose(lam.var(axis=0), 3 / 80, atol=0.005)  # variance (m - 1) / (m^2 (m + 1))


def test_simplex_default_is_a_120_degree_obtuse_triangle():
    s = make_source(SimplexData(), rng=rng())
    assert s.points.shape == (3, 2) and s.info["angles_deg"][0] == pytest.approx(120)


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.parametrize("spec, lo, hi", [
    ({"kind": "digits"}, 93, 99),
    ({"kind": "digits", "shape": "acute"}, 70, 76),
    ({"kind": "digits", "digit": 7, "angle_range": [100, 110]}, 100, 110),
    ({"kind": "digits", "digit": 0, "shape": "acute", "angle_range": [62, 65]}, 62, 65),
])
def test_digits_triangle_largest_angle_in_range(spec, lo, hi, digits):
    X, y = digits
    s = source(spec)
    idx = s.info["indices"]
    np.testing.assert_array_equal(s.points, X[idx])
    assert np.all(y[idx] == DigitsData(**spec).digit)
    largest = max(angles_at(s.points))
    assert lo <= largest <= hi and s.info["largest_angle_deg"] == pytest.approx(largest)
    assert min(s.info["sides_opposite"]) > 0.3  # noise balls of radius 0.15 stay apart
    assert 0 <= s.points.min() and s.points.max() <= 1


def test_digits_draw_held_out_images_of_the_class(digits):
    X, y = digits
    s = source({"kind": "digits", "digit": 5})
    pool = X[y == 5]
    fresh = s.draw(50, rng=rng(1))
    assert len(np.unique(fresh, axis=0)) == 50  # without replacement (the class has no duplicates)
    for img in fresh:
        assert np.any(np.all(pool == img, axis=1))  # an image of the class
        assert not np.any(np.all(s.points == img, axis=1))  # not a chosen one
    held_out = int((y == 5).sum()) - 3
    assert s.draw(held_out, rng=rng(1)).shape == (held_out, 64)  # all of them, no repeats
    with pytest.raises(DataError, match=f"only {held_out} are held out"):
        s.draw(held_out + 1, rng=rng(1))


def test_spread_selection_excludes_near_duplicates():
    from relu_denoise.data.images import _spread
    from relu_denoise.geometry import min_distance

    P = np.array([[0.0, 0.0], [1e-17, 0.0], [1.0, 0.0], [0.0, 1.0]])  # rows 0 and 1: one point up to rounding
    for seed in range(8):
        kept, _ = _spread(P, 3, None, what="points", rng=rng(seed))
        assert len(kept) == 3 and not {0, 1} <= set(kept.tolist())
        min_distance(P[kept])                                          # the closed forms accept the choice
    with pytest.raises(DataError, match="only 3 of the 4 candidate points are distinct"):
        _spread(P, 4, None, what="points", rng=rng())


def test_ray_directions_closer_than_the_angle_tolerance_are_one_direction():
    from relu_denoise.geometry import ANGLE_TOL

    close = ANGLE_TOL / 2
    with pytest.raises(RecipeError, match="rays 0 and 1 point the same way"):
        parse_recipe({"data": {"kind": "rays", "angles_deg": [0, float(np.degrees(close)), 180]}})
    far = parse_recipe({"data": {"kind": "rays", "angles_deg": [0, 90, float(90 + np.degrees(4 * ANGLE_TOL))]}})
    assert far.data.angles_deg[2] > 90


def test_held_out_pools_refuse_too_many_draws_with_a_typed_error_naming_the_pool(digits):
    from relu_denoise.errors import NotEnoughHeldOutError

    _, y = digits
    held_out = int((y == 5).sum()) - 3
    s = source({"kind": "digits", "digit": 5})
    assert s.has_distribution and s.pool == f"class 5 has {held_out} held-out images"
    with pytest.raises(NotEnoughHeldOutError, match=f"class 5 has {held_out} held-out images") as info:
        s.draw(held_out + 1, rng=rng(1))
    assert info.value.available == held_out
    p = source({"kind": "patches", "size": 28, "n": 3, "min_distance": 5})
    left = p.info["held_out_positions"]
    assert left == (427 // 28) * (640 // 28) - (427 // 28) * (640 // 28) // 2     # half the 28x28 grid
    with pytest.raises(NotEnoughHeldOutError, match=f"image china has {left} held-out positions for 28x28"):
        p.draw(2000, rng=rng())


@pytest.mark.parametrize("spec", [{"kind": "points", "points": [[0.0], [1.0]]}, {"kind": "file", "path": "x.npy"}])
def test_fixed_points_have_no_distribution_as_a_typed_error(spec, tmp_path):
    from relu_denoise.errors import NoDistributionError, NotEnoughHeldOutError

    np.save(tmp_path / "x.npy", np.array([[0.0], [1.0]]))
    s = source(spec, base_dir=tmp_path)
    assert not s.has_distribution and s.pool is None
    with pytest.raises(NoDistributionError) as info:
        s.draw(1, rng=rng())
    assert not isinstance(info.value, NotEnoughHeldOutError)


def test_digits_any_takes_n_images_of_the_class(digits):
    X, y = digits
    s = source({"kind": "digits", "shape": "any", "n": 40, "digit": 1})
    assert s.points.shape == (40, 64) and np.all(y[s.info["indices"]] == 1)
    assert len(set(s.info["indices"])) == 40


# ---------------------------------------------------------------------------------------------
# patches
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, grayscale, d", [(4, True, 16), (3, False, 27), (2, True, 4)])
def test_patches_dimension_and_range(size, grayscale, d):
    s = source({"kind": "patches", "size": size, "grayscale": grayscale, "n": 50})
    assert s.points.shape == (50, d)
    assert 0 <= s.points.min() and s.points.max() <= 1
    assert s.draw(10, rng=rng()).shape == (10, d)


def test_patches_draws_come_from_held_out_positions():
    from sklearn.datasets import load_sample_image

    k = 4
    s = source({"kind": "patches", "image": "flower", "size": k, "n": 300})
    img = load_sample_image("flower.jpg") / 255.0 @ np.array([0.299, 0.587, 0.114])
    where = {img[r:r + k, c:c + k].tobytes(): (r, c)  # flower's 4x4 grid patches are all distinct
             for r in range(0, img.shape[0] - k + 1, k) for c in range(0, img.shape[1] - k + 1, k)}
    train = {tuple(p) for p in s.info["positions"]}
    assert len(train) == 300
    assert {where[p.reshape(k, k).tobytes()] for p in s.points} == train
    fresh = s.draw(500, rng=rng(9))
    drawn = {where[p.reshape(k, k).tobytes()] for p in fresh}
    assert len(drawn) == 500 and not drawn & train


def test_patches_too_many_draws():
    s = source({"kind": "patches", "size": 64, "n": 5})
    left = s.info["held_out_positions"]
    with pytest.raises(DataError, match=f"only {left} positions are held out"):
        s.draw(left + 1, rng=rng())


# ---------------------------------------------------------------------------------------------
# selection in the paper's regime: min_distance, normalize, bundled images, extreme triangles
# ---------------------------------------------------------------------------------------------

def smallest_distance(x: np.ndarray) -> float:
    from scipy.spatial.distance import pdist

    return float(pdist(x).min())


def largest_angles(x: np.ndarray, triples: np.ndarray) -> np.ndarray:
    """(t,) largest angle (degrees) of each triangle x[triples[t]]."""
    return np.array([max(angles_at(x[list(t)])) for t in triples])


@pytest.mark.parametrize("spec", [
    {"kind": "patches", "size": 4, "n": 200, "min_distance": 0.5},
    {"kind": "patches", "size": 8, "n": 50, "min_distance": 1.0, "image": "flower"},
    {"kind": "patches", "size": 4, "n": 200, "min_distance": 0.75},  # greedy falls short for some seeds
    {"kind": "patches", "size": 6, "n": 40, "min_distance": 0.3, "normalize": "center"},
    {"kind": "digits", "shape": "any", "n": 30, "min_distance": 1.2},
], ids=["4x4", "8x8-flower", "4x4-tight", "6x6-center", "digits-any"])
def test_min_distance_is_respected_and_selection_is_deterministic(spec):
    for seed in (0, 1, 2):
        s = source(spec, seed=seed)
        assert s.points.shape[0] == spec["n"]
        assert smallest_distance(s.points) >= spec["min_distance"]
        assert s.info["smallest_distance"] == pytest.approx(smallest_distance(s.points))
        again = source(spec, seed=seed)
        np.testing.assert_array_equal(s.points, again.points)
        assert s.info == again.info
    assert not np.array_equal(source(spec, seed=0).points, source(spec, seed=1).points)


def test_farthest_point_selection_takes_over_where_greedy_falls_short():
    spec = {"kind": "patches", "size": 4, "n": 200, "min_distance": 0.75}  # near the farthest-point limit
    used = {source(spec, seed=seed).info["selection"] for seed in (0, 1)}
    assert used == {"greedy", "farthest-point"}


@pytest.mark.parametrize("spec", [{"kind": "patches", "n": 200, "min_distance": 2},
                                  {"kind": "digits", "shape": "any", "n": 50, "min_distance": 2}],
                         ids=["patches", "digits"])
def test_impossible_min_distance_suggests_a_value_that_works(spec):
    import re

    with pytest.raises(DataError, match="lower data.min_distance to at most") as info:
        source(spec, seed=4)
    assert "\n" not in str(info.value)
    suggested = float(re.search(r"at most ([0-9.e+-]+),", str(info.value)).group(1))
    s = source({**spec, "min_distance": suggested}, seed=4)
    assert len(s.points) == spec["n"] and smallest_distance(s.points) >= suggested


def test_patches_without_min_distance_are_distinct():
    s = source({"kind": "patches", "size": 2, "n": 2000})  # flat 2x2 patches repeat in china
    assert len(np.unique(s.points, axis=0)) == 2000 and s.info["smallest_distance"] > 0


@pytest.mark.parametrize("image", ["china", "flower"])
def test_each_bundled_image_loads_offline(image, monkeypatch):
    import socket

    from relu_denoise.data import images as data

    def no_network(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    data._image.cache_clear()
    s = source({"kind": "patches", "image": image, "size": 8, "n": 10})
    assert s.info["image"] == image and s.points.shape == (10, 64)
    assert 0 <= s.points.min() and s.points.max() <= 1


def test_bundled_images_differ():
    china, flower = (source({"kind": "patches", "image": i, "n": 5}, seed=0) for i in ("china", "flower"))
    assert china.info["positions"] == flower.info["positions"]  # same grid, same seed
    assert not np.array_equal(china.points, flower.points)


@pytest.mark.parametrize("grayscale, d", [(True, 784), (False, 2352)])
def test_28x28_patches_have_the_mnist_dimension(grayscale, d):
    s = source({"kind": "patches", "size": 28, "n": 3, "grayscale": grayscale, "min_distance": 5})
    assert s.points.shape == (3, d) and s.info["dim"] == d
    assert s.draw(4, rng=rng()).shape == (4, d)
    assert len(s.info["angles_deg"]) == 3 and sum(s.info["angles_deg"]) == pytest.approx(180)


@pytest.mark.parametrize("kind, full_scale", [("digits", 16), ("patches", 255)])
def test_normalize_unit_center_none(kind, full_scale):
    spec = {"kind": kind, "shape": "any", "n": 20} if kind == "digits" else {"kind": kind, "n": 20}
    unit, center, raw = (source({**spec, "normalize": how}) for how in ("unit", "center", "none"))
    assert unit.info["normalize"] == "unit" and 0 <= unit.points.min() and unit.points.max() <= 1
    np.testing.assert_allclose(raw.points, full_scale * unit.points)
    np.testing.assert_allclose(center.points, unit.points - unit.points.mean(axis=1, keepdims=True))
    np.testing.assert_allclose(center.draw(5, rng=rng(1)).mean(axis=1), 0, atol=1e-12)


def test_most_obtuse_and_most_acute_digit_triangles_bound_random_triples(digits):
    X, y = digits
    digit, gap = 4, 1.5
    pool = X[y == digit]
    obtuse = source({"kind": "digits", "digit": digit, "shape": "most-obtuse", "min_distance": gap})
    acute = source({"kind": "digits", "digit": digit, "shape": "most-acute", "min_distance": gap})
    T = np.stack([rng(5).choice(len(pool), size=3, replace=False) for _ in range(3000)])
    far = [smallest_distance(pool[list(t)]) >= gap for t in T]
    random_largest = largest_angles(pool, T[far])
    assert obtuse.info["largest_angle_deg"] >= random_largest.max()
    assert acute.info["largest_angle_deg"] <= random_largest.min()
    assert obtuse.info["largest_angle_deg"] >= 110  # clearly obtuse (docs/theory.md 5)
    for s in (obtuse, acute):
        assert np.all(y[s.info["indices"]] == digit) and smallest_distance(s.points) >= gap
        assert max(angles_at(s.points)) == pytest.approx(s.info["largest_angle_deg"])
        assert sum(s.info["angles_deg"]) == pytest.approx(180)
    again = source({"kind": "digits", "digit": digit, "shape": "most-obtuse", "min_distance": gap}, seed=9)
    assert again.info["indices"] == obtuse.info["indices"]  # exhaustive: independent of the seed


@pytest.mark.parametrize("shape", ["most-obtuse", "most-acute"])
@pytest.mark.parametrize("gap", [None, 1.0])
def test_extreme_triangle_matches_brute_force(shape, gap):
    from relu_denoise.data.images import _extreme_triangle

    P = rng(3).standard_normal((16, 5))  # (n, d)
    T = np.array(list(combinations(range(16), 3)))
    ok = [gap is None or smallest_distance(P[list(t)]) >= gap for t in T]
    largest = largest_angles(P, T[ok])
    best, searched = _extreme_triangle(P, shape, gap, digit=0)
    assert searched == sum(ok)
    want = largest.max() if shape == "most-obtuse" else largest.min()
    assert max(angles_at(P[best])) == pytest.approx(want)


# ---------------------------------------------------------------------------------------------
# file
# ---------------------------------------------------------------------------------------------

X_FILE = np.array([[0.0, 0.0, 1.5], [2.0, 0.0, -1.0], [-1.0, 1.0, 1e-3], [0.25, 3.0, 7.0]])


def test_file_npy_round_trip(tmp_path):
    np.save(tmp_path / "x.npy", X_FILE)
    s = source({"kind": "file", "path": str(tmp_path / "x.npy")})
    np.testing.assert_array_equal(s.points, X_FILE)
    assert s.kind == "file"
    json.dumps(s.info)
    with pytest.raises(DataError, match="data.kind=file has no distribution"):
        s.draw(2, rng=rng())


def test_file_csv_round_trip_relative_to_base_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    np.savetxt(tmp_path / "sub" / "x.csv", X_FILE, delimiter=",", fmt="%.17g")
    s = source({"kind": "file", "path": "sub/x.csv"}, base_dir=tmp_path)
    np.testing.assert_array_equal(s.points, X_FILE)


def test_file_single_column_csv(tmp_path):
    (tmp_path / "x.csv").write_text("0\n0.5\n2\n")
    assert source({"kind": "file", "path": "x.csv"}, base_dir=tmp_path).points.shape == (3, 1)


def test_file_missing_names_the_resolved_path(tmp_path):
    with pytest.raises(DataError, match="data.path: file not found: ") as exc:
        source({"kind": "file", "path": "nope.npy"}, base_dir=tmp_path)
    assert str(tmp_path / "nope.npy") in str(exc.value)


@pytest.mark.parametrize("name, content, fragment", [
    ("bad.csv", "1,2\n3,x\n", "cannot read"),
    ("ragged.csv", "1,2\n3,4,5\n", "cannot read"),
    ("empty.csv", "", "expected shape (n, d) with n >= 1"),
    ("nan.csv", "1,2\nnan,4\n", "NaN"),
    ("cube.npy", np.zeros((2, 2, 2)), "expected shape (n, d)"),
    ("text.npy", "not an npy file", "cannot read"),
    ("x.txt", "1,2\n", "expected a .npy or .csv file"),
])
def test_file_bad_content_one_line_message(tmp_path, name, content, fragment):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content)
    with pytest.raises(DataError, match="data.path") as exc:
        source({"kind": "file", "path": name}, base_dir=tmp_path)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)
    assert name in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Bad specs
# ---------------------------------------------------------------------------------------------

BAD = [  # (spec, exception, message fragment); RecipeError: load_recipe's one-line message
    ({"kind": "nope"}, ValidationError, "does not match any of the expected tags"),
    ({"kind": "univariate", "bogus": 1}, ValidationError, "Extra inputs are not permitted"),
    ({"kind": "univariate", "n": 0}, ValidationError, "greater than or equal to 1"),
    ({"kind": "univariate", "jitter": 0.5}, ValidationError, "less than 0.5"),
    ({"kind": "univariate", "spacing": "random"}, ValidationError, "'even', 'jittered' or 'uniform'"),
    ({"kind": "univariate", "high": float("inf")}, ValidationError, "finite number"),
    ({"kind": "univariate", "low": 1, "high": 1}, RecipeError, "data.high: must be > data.low (= 1.0), got 1.0"),
    ({"kind": "points", "points": []}, ValidationError, "at least 1 item"),
    ({"kind": "points", "points": [[0, 0], [1, 2, 3]]}, RecipeError, "data.points: every point needs the same number"),
    ({"kind": "points", "points": [[0, float("nan")]]}, RecipeError, "data.points: contains NaN"),
    ({"kind": "subspace", "dim": 3, "rank": 3}, RecipeError, "data.rank: must be < data.dim (= 3), got 3"),
    ({"kind": "subspace", "n": 2, "rank": 2, "dim": 4}, RecipeError, "data.n: a 2-dim affine subspace needs at least"),
    ({"kind": "subspace", "scale": 0}, ValidationError, "greater than 0"),
    ({"kind": "rays", "angles_deg": [0, 90], "directions": [[1, 0]]}, RecipeError, "not both"),
    ({"kind": "rays", "dim": 3}, RecipeError, "data.angles_deg: angles describe rays only for dim = 2"),
    ({"kind": "rays", "dim": 3, "angles_deg": [0, 90]}, RecipeError, "give data.directions instead"),
    ({"kind": "rays", "directions": [[1, 0], [0, 0]]}, RecipeError, "data.directions: row 1 is the zero vector"),
    ({"kind": "rays", "directions": [[1, 0], [2, 0]]}, RecipeError, "rays 0 and 1 point the same way"),
    ({"kind": "rays", "angles_deg": [0, 360]}, RecipeError, "point the same way"),
    ({"kind": "rays", "dim": 3, "directions": [[1, 0]]}, RecipeError, "data.directions: expected shape (n, 3)"),
    ({"kind": "rays", "directions": [[1, 0], [0, 1, 0]]}, RecipeError, "same number of coordinates"),
    ({"kind": "rays", "apex": [0, 0, 0]}, RecipeError, "data.apex: expected 2 coordinates"),
    ({"kind": "rays", "spacing": -1}, ValidationError, "greater than 0"),
    ({"kind": "rays", "points_per_ray": 0}, ValidationError, "greater than or equal to 1"),
    ({"kind": "simplex", "angle_deg": 60}, RecipeError, "data.angle_deg: obtuse needs 90 < angle < 180, got 60"),
    ({"kind": "simplex", "shape": "acute", "angle_deg": 95}, RecipeError, "acute needs 60 < angle < 90, got 95"),
    ({"kind": "simplex", "shape": "acute", "angle_deg": 60}, RecipeError, "acute needs 60 < angle < 90"),
    ({"kind": "simplex", "angle_deg": 200}, ValidationError, "less than 180"),
    ({"kind": "simplex", "shape": "equilateral", "angle_deg": 70}, RecipeError, "only for an obtuse or acute triangle"),
    ({"kind": "simplex", "dim": 3, "angle_deg": 100}, RecipeError, "with 4 vertices"),
    ({"kind": "simplex", "vertices": 4}, RecipeError, "data.vertices: a simplex in R^2 has at most dim + 1 = 3"),
    ({"kind": "simplex", "vertices": 1}, ValidationError, "greater than or equal to 2"),
    ({"kind": "simplex", "shape": "acute", "vertices": 2}, RecipeError, "acute needs at least 3 vertices"),
    ({"kind": "simplex", "shape": "square"}, ValidationError, "'obtuse', 'orthogonal', 'equilateral' or 'acute'"),
    ({"kind": "digits", "n": 4}, RecipeError, "data.n: shape=obtuse picks a triangle, so n must be 3, got 4"),
    ({"kind": "digits", "digit": 10}, ValidationError, "less than or equal to 9"),
    ({"kind": "digits", "shape": "any", "angle_range": [93, 99]}, RecipeError,
     "data.angle_range: only for shape obtuse"),
    ({"kind": "digits", "angle_range": [80, 95]}, RecipeError, "obtuse needs 90 <= lo < hi <= 180"),
    ({"kind": "digits", "shape": "acute", "angle_range": [75, 70]}, RecipeError, "got [75, 70]"),
    ({"kind": "digits", "angle_range": [170, 179]}, DataError, "no triangle of digit-3 images with largest angle in [170, 179]"),
    ({"kind": "digits", "shape": "any", "n": 500}, DataError, "data.n: digit 3 has only 183 images, got 500"),
    ({"kind": "digits", "angle_range": [93]}, ValidationError, "angle_range"),
    ({"kind": "patches", "image": "lena"}, ValidationError, "'china' or 'flower'"),
    ({"kind": "patches", "size": 1}, ValidationError, "greater than or equal to 2"),
    ({"kind": "patches", "n": 10**6}, DataError, "data.n: image china has 8480 training positions"),
    ({"kind": "patches", "n": 200, "min_distance": 2}, DataError,
     "data.min_distance: only 2 of the 8480 candidate 4x4 patches of china are pairwise >= 2 apart, got "
     "data.n = 200; farthest-point selection of 200 keeps them 0.7"),
    ({"kind": "digits", "shape": "any", "n": 50, "min_distance": 2}, DataError,
     "lower data.min_distance to at most"),
    ({"kind": "digits", "shape": "most-obtuse", "min_distance": 5}, DataError,
     "data.min_distance: no triangle of digit-3 images has every side >= 5 (the class's largest distance is 3.9"),
    ({"kind": "digits", "angle_range": [120, 130], "min_distance": 1.5}, DataError,
     "and every side >= 1.5 among 4000 random triples"),
    ({"kind": "patches", "min_distance": 0}, ValidationError, "greater than 0"),
    ({"kind": "patches", "normalize": "zscore"}, ValidationError, "'unit', 'center' or 'none'"),
    ({"kind": "digits", "shape": "most-acute", "n": 4}, RecipeError,
     "data.n: shape=most-acute picks a triangle, so n must be 3, got 4"),
    ({"kind": "digits", "shape": "most-obtuse", "angle_range": [110, 130]}, RecipeError,
     "data.angle_range: only for shape obtuse or acute, got shape=most-obtuse"),
    ({"kind": "file"}, ValidationError, "path"),
    ({"kind": "file", "path": ""}, ValidationError, "at least 1 character"),
    ({"kind": "points", "points": [[0, 0], [1, 1], [0, 0]]}, RecipeError,
     "data.points: rows 0 and 2 are the same point; remove duplicates"),
]


@pytest.mark.parametrize("spec, exc, fragment", BAD, ids=[f"{i}-{b[0]['kind']}" for i, b in enumerate(BAD)])
def test_bad_spec_message(spec, exc, fragment):
    if exc is RecipeError:  # a check on the recipe alone: it fails in load_recipe, before any run
        with pytest.raises(RecipeError) as info:
            parse_recipe({"data": spec})
        with pytest.raises(ValidationError):  # and wherever the spec is validated
            TypeAdapter(DataSpec).validate_python(spec)
    else:
        with pytest.raises(exc) as info:
            source(spec)
    assert fragment in str(info.value)
    if exc is not ValidationError:
        assert "\n" not in str(info.value)
