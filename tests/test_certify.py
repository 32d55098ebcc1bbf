"""Certificates of docs/theory.md 8: weak duality, exactness in 1-D, the exact 2-D supremum, interpolation,
polish, bad input. Oracles are independent of the code under test: a raw LP, brute-force sums over a
dense set of units, the closed form, the network evaluated with predict."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from typer.testing import CliRunner

from relu_denoise import DataError, ShallowDenoiser, closed_form
from relu_denoise.certificates import certify, polish, supremum
from relu_denoise.cli import app
from relu_denoise.errors import SolverError, TrainingError


def _sphere_samples(X, radius, M, rng):
    """M samples on the sphere of `radius` around each clean point: (N, M, d)."""
    g = rng.standard_normal((len(X), M, X.shape[1]))
    return X[:, None, :] + radius * g / np.linalg.norm(g, axis=-1, keepdims=True)


def _flat(X, S):
    """Samples (n, d) and their targets (n, d)."""
    return S.reshape(-1, X.shape[1]), np.repeat(X, S.shape[1], axis=0)


def _max_residual(net, X, S):
    Y, T = _flat(X, S)
    return np.linalg.norm(net.predict(Y) - T, axis=1).max()


def _orthogonal_multipliers(y, rng, p):
    """Random lam (n, p) with sum_i lam_i = 0 and sum_i lam_i y_i^T = 0 (orthogonal to affine functions)."""
    B = np.hstack([y, np.ones((len(y), 1))])
    lam = rng.standard_normal((len(y), p))
    return lam - B @ np.linalg.lstsq(B, lam, rcond=None)[0]


def _brute_supremum(y, lam, W):
    """max over directions (rows of W) and breakpoints b = -w . y_j of ||sum_i lam_i relu(w . y_i + b)||,
    by direct summation (the supremum over b is at a breakpoint, docs/theory.md 8)."""
    best = 0.0
    for Wc in np.array_split(W, max(1, len(W) // 500)):
        P = Wc @ y.T                                                         # (k, n)
        act = np.maximum(P[:, None, :] - P[:, :, None], 0)                  # (k, j, i)
        best = max(best, np.linalg.norm(act @ lam, axis=-1).max())
    return best


def _lp_min_cost(y, v):
    """Exact min path cost of a 1-D net with free linear unit interpolating (y, v): the LP with knots at
    every sample, written in the raw form f(t) = alpha + beta t + sum_j c_j [t - k_j]_+ (HiGHS)."""
    knots = np.sort(y)
    n, K = len(y), len(knots)
    R = np.maximum(y[:, None] - knots[None, :], 0)                           # (n, K)
    A = np.hstack([R, -R, np.ones((n, 1)), y[:, None]])
    bounds = [(0, None)] * (2 * K) + [(None, None)] * 2
    res = linprog(np.concatenate([np.ones(2 * K), [0, 0]]), A_eq=A, b_eq=v, bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun


RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRIANGLE = np.array([[0.0, 0.0], [2.0, 0.0], [-1.0, 1.0]])


# ---------------------------------------------------------------- weak duality and exactness


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weak_duality_2d_random_instances(seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (3, 2)) * 2
    X = X[np.argsort(X[:, 0])]
    S = X[:, None, :] + 0.08 * rng.standard_normal((3, 5, 2))
    cert = certify(X, S, time_limit=20, tol=1e-2, rng=rng)
    assert cert.lower_method == "exact-2d"
    assert 0 < cert.lower <= cert.upper * (1 + 1e-9)
    assert cert.upper == pytest.approx(cert.network.path_cost().item(), rel=1e-12)
    assert _max_residual(cert.network, X, S) <= 1e-9
    # every interpolating network costs at least `lower`: here the empirical closed form (a triangle)
    assert closed_form(X, samples=S).network.path_cost().item() >= cert.lower


@pytest.mark.parametrize("seed", [3, 4])
def test_weak_duality_of_any_multipliers(seed):
    """sum_i lam_i . t_i / s(lam) never exceeds the cost of an interpolating network, for random lam."""
    rng = np.random.default_rng(seed)
    S = _sphere_samples(TRIANGLE, 0.1, 6, rng)
    Y, T = _flat(TRIANGLE, S)
    cost = closed_form(TRIANGLE, samples=S).network.path_cost().item()
    for _ in range(20):
        lam = _orthogonal_multipliers(Y, rng, 2)
        s = supremum(Y, lam).value
        assert np.sum(lam * T) / s <= cost * (1 + 1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_dimension_is_exact_and_matches_lp_and_closed_form(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 4, 5)) + 0.6 * np.arange(5)                    # gaps well above the noise
    S = x[:, None, None] + 0.05 * rng.standard_normal((5, 12, 1))
    cert = certify(x[:, None], S, rng=rng)
    lp = _lp_min_cost(S.ravel(), np.repeat(x, 12))
    form = closed_form(x[:, None], samples=S).network.path_cost().item()
    assert cert.lower_method == "lp-1d"
    assert cert.gap < 1e-6
    assert cert.upper == pytest.approx(lp, rel=1e-7)
    assert cert.lower == pytest.approx(lp, rel=1e-7)
    assert form == pytest.approx(lp, rel=1e-7)
    assert _max_residual(cert.network, x[:, None], S) <= 1e-9


def test_one_dimension_in_a_higher_space_reduces_to_the_line(rng):
    """Collinear points and samples in R^3 (noise along the line): the same LP value as on the line."""
    t = np.array([0.0, 1.0, 2.5])
    u = np.array([1.0, 2.0, 2.0]) / 3
    offsets = 0.05 * rng.standard_normal((3, 6))
    S = (t[:, None] + offsets)[..., None] * u + np.array([0.5, -1.0, 2.0])
    X = t[:, None] * u + np.array([0.5, -1.0, 2.0])
    cert = certify(X, S, rng=rng)
    assert cert.lower_method == "lp-1d"
    assert cert.upper == pytest.approx(_lp_min_cost((t[:, None] + offsets).ravel(), np.repeat(t, 6)), rel=1e-7)
    assert _max_residual(cert.network, X, S) <= 1e-9


# ---------------------------------------------------------------- the supremum


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_2d_supremum_against_dense_search(seed):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((25, 2))
    lam = _orthogonal_multipliers(y, rng, 2)
    sup = supremum(y, lam)
    theta = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    dense = _brute_supremum(y, lam, np.stack([np.cos(theta), np.sin(theta)], axis=1))
    assert sup.exact
    assert sup.value >= dense * (1 - 1e-12)                                  # exact is never below a search
    assert sup.value <= dense * (1 + 1e-3)                                   # and the grid comes close
    w, b = sup.W[0], sup.b[0]                                                # the maximiser attains it
    assert np.linalg.norm(w) == pytest.approx(1.0)
    assert np.linalg.norm(lam.T @ np.maximum(y @ w + b, 0)) == pytest.approx(sup.value, rel=1e-10)


def test_exact_1d_supremum_against_dense_offsets(rng):
    y = rng.standard_normal((30, 1))
    lam = _orthogonal_multipliers(y, rng, 1)
    sup = supremum(y, lam)
    offsets = np.linspace(-4, 4, 40001)
    dense = np.abs(np.maximum(y + offsets, 0).T @ lam).max()                 # w = +1; w = -1 is the same here
    assert dense * (1 - 1e-12) <= sup.value <= dense * (1 + 1e-3)


def test_searched_supremum_is_attained_by_its_unit(rng):
    y = rng.standard_normal((20, 3))
    lam = _orthogonal_multipliers(y, rng, 2)
    sup = supremum(y, lam, rng=rng)
    assert not sup.exact
    assert np.linalg.norm(lam.T @ np.maximum(y @ sup.W[0] + sup.b[0], 0)) == pytest.approx(sup.value, rel=1e-10)


def test_supremum_requires_multipliers_orthogonal_to_affine_functions(rng):
    y = rng.standard_normal((10, 2))
    with pytest.raises(DataError, match="orthogonal to affine functions"):
        supremum(y, rng.standard_normal((10, 2)))


# ---------------------------------------------------------------- the upper network, polish, the certificate


def test_certificate_brackets_the_closed_form_and_its_network_interpolates(rng):
    S = _sphere_samples(TRIANGLE, 0.1, 8, rng)
    rounds = []
    cert = certify(TRIANGLE, S, time_limit=30, tol=1e-2, rng=rng, on_round=rounds.append)
    assert cert.gap <= 1e-2 and cert.converged
    assert closed_form(TRIANGLE, rho=0.1).network.path_cost().item() >= cert.lower     # ball model
    assert _max_residual(cert.network, TRIANGLE, S) <= 1e-6 * np.sqrt(2)               # theory: <= 1e-6 dmin
    assert cert.n_constraints == 24 and cert.n_units == cert.network.width
    assert [r["round"] for r in rounds] == list(range(1, cert.rounds + 1))
    assert rounds[-1]["lower"] == cert.lower and rounds[-1]["upper"] == cert.upper
    out = cert.to_dict()
    assert json.loads(json.dumps(out)) == out and "network" not in out
    assert out["gap"] == pytest.approx(cert.upper / cert.lower - 1)
    assert {"cvxpy", "clarabel"} <= set(out["solver"])


def test_searched_lower_bound_says_it_is_not_a_proof(rng):
    X = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    S = _sphere_samples(X, 0.1, 4, rng)
    cert = certify(X, S, time_limit=10, tol=1e-2, rng=rng)
    assert cert.lower_method == "searched"
    assert any("NOT A PROOF" in note for note in cert.notes)
    assert cert.lower <= cert.upper * (1 + 1e-9)
    assert _max_residual(cert.network, X, S) <= 1e-9


def test_polish_never_raises_the_cost_of_a_closed_form_and_keeps_it_interpolating(rng):
    S = _sphere_samples(TRIANGLE, 0.1, 8, rng)
    form = closed_form(TRIANGLE, samples=S).network
    net, cost, residual = polish(form, TRIANGLE, S)
    assert cost <= form.path_cost().item() * (1 + 1e-7)
    assert cost == pytest.approx(net.path_cost().item(), rel=1e-12)
    assert residual == pytest.approx(_max_residual(net, TRIANGLE, S), abs=1e-15)
    assert residual <= 1e-9


def test_polish_of_units_trained_in_float32_finds_the_least_cost():
    # float32 units are nearly dependent (feature singular values down to 1e-14 of the largest); solving
    # exactly along those directions too took this fit from 1.0 x to 1.52 x the closed form.
    from relu_denoise.closed_forms import reference_form
    from relu_denoise.recipe import load_recipe
    from relu_denoise.problem import make_problem
    from relu_denoise.train import fit_denoiser

    recipe, base = load_recipe(RECIPES / "obtuse-triangle.yaml", ["train.dtype=float32", "seed=1"])
    data = make_problem(recipe, base)
    closed = reference_form(data.points, recipe.noise, data.samples).form.cost_formula
    fit = fit_denoiser(data.points, data.samples, recipe.model, recipe.train,
                       seed=data.init_seed)
    net, cost, residual = polish(fit.net, data.points, data.samples)
    assert cost <= fit.stats.cost * (1 + 1e-6)
    assert cost <= closed * 1.001
    assert residual <= 1e-6 * fit.stats.tol_unit


def test_polish_of_too_few_units_fits_no_worse_and_costs_no_more(rng):
    S = _sphere_samples(TRIANGLE, 0.1, 8, rng)
    net = ShallowDenoiser(4, 2, generator=torch.Generator().manual_seed(0))
    own = _max_residual(net, TRIANGLE, S)
    polished, cost, residual = polish(net, TRIANGLE, S)
    assert residual <= own * (1 + 1e-6)
    assert cost <= net.path_cost().item() * (1 + 1e-6)
    with pytest.raises(TrainingError, match="cannot interpolate every sample exactly"):
        polish(net, TRIANGLE, S, exact=True)


def test_given_networks_seed_the_upper_bound(rng):
    S = _sphere_samples(TRIANGLE, 0.1, 6, rng)
    form = closed_form(TRIANGLE, samples=S).network
    cert = certify(TRIANGLE, S, networks=[form], time_limit=30, tol=1e-2, rng=rng)
    assert cert.history[0]["upper"] <= form.path_cost().item() * (1 + 1e-7)


# ---------------------------------------------------------------- bad input


BAD = [
    ({"samples": np.zeros((2, 4, 2))}, r"samples: expected shape \(3, M, 2\)"),
    ({"samples": np.zeros((3, 4, 3))}, r"samples: expected shape \(3, M, 2\)"),
    ({"samples": np.zeros((3, 4))}, r"samples: expected shape \(3, M, 2\)"),
    ({"samples": np.full((3, 4, 2), np.nan)}, "samples: contains NaN or inf"),
    ({"points": [[0, 0], [2, 0], [np.nan, 1]]}, "points: contains NaN or inf"),
    ({"points": [[0, 0], [0, 0], [-1, 1]]}, "two clean points coincide"),
    ({"points": [[0, 0, 0], [2, 0, 0], [-1, 1, 0]]}, r"samples: expected shape \(3, M, 3\)"),
    ({"time_limit": 0}, "time_limit: must be > 0"),
    ({"tol": -1}, "tol: must be > 0"),
    ({"networks": ["model.pt"]}, r"networks\[0\]: expected a ShallowDenoiser"),
    ({"networks": [ShallowDenoiser(3, 3)]}, r"networks\[0\]: a network on R\^3"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_named(override, message, rng):
    args = {"points": TRIANGLE, "samples": _sphere_samples(TRIANGLE, 0.1, 4, rng), "rng": rng, **override}
    with pytest.raises(DataError, match=message):
        certify(args.pop("points"), args.pop("samples"), **args)


def test_samples_shared_by_two_points_cannot_be_interpolated(rng):
    S = _sphere_samples(TRIANGLE, 0.1, 4, rng)
    S[2, 3] = S[0, 1]
    with pytest.raises(DataError, match=r"samples\[0, 1\] and samples\[2, 3\] coincide"):
        certify(TRIANGLE, S, rng=rng)


def test_rng_must_be_a_generator(rng):
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator"):
        certify(TRIANGLE, _sphere_samples(TRIANGLE, 0.1, 4, rng), rng=0)


# ---------------------------------------------------------------- solver failures


class _FailingClarabel:
    """Stands in for clarabel.DefaultSolver: every solve ends with the Clarabel status `status` and no solution.
    cvxpy maps NumericalError to "solver_error" (and raises), PrimalInfeasible to "infeasible"."""

    status = "NumericalError"

    def __init__(self, *args, **kwargs):
        pass

    def solve(self):
        return SimpleNamespace(status=self.status, x=None, z=None, s=None, obj_val=np.nan, solve_time=0.0,
                               iterations=0)


@pytest.fixture
def failing_clarabel(monkeypatch):
    import clarabel

    def install(status="NumericalError"):
        monkeypatch.setattr(clarabel, "DefaultSolver", type("Failing", (_FailingClarabel,), {"status": status}))
    return install


CLARABEL_STATUS = [("NumericalError", "solver_error"), ("PrimalInfeasible", "infeasible")]


@pytest.mark.parametrize("clarabel_status,status", CLARABEL_STATUS)
def test_a_failing_cone_program_is_a_solver_error_with_its_program_and_status(failing_clarabel, clarabel_status,
                                                                             status, rng):
    S = _sphere_samples(TRIANGLE, 0.1, 4, rng)
    failing_clarabel(clarabel_status)
    with pytest.raises(SolverError, match="no exactly interpolating network found") as info:
        certify(TRIANGLE, S, time_limit=10, rng=rng)
    assert (info.value.program, info.value.status) == ("restricted dual cone program", status)
    assert not isinstance(info.value, TrainingError)
    with pytest.raises(SolverError) as info:
        polish(closed_form(TRIANGLE, samples=S).network, TRIANGLE, S)
    assert (info.value.program, info.value.status) == ("polish: exact output weights", status)
    with pytest.raises(SolverError) as info:                                 # 4 units cannot interpolate 12 samples
        polish(ShallowDenoiser(4, 2, generator=torch.Generator().manual_seed(0)), TRIANGLE, S)
    assert (info.value.program, info.value.status) == ("polish: residual-bounded output weights", status)


def test_a_failing_linear_program_is_a_solver_error_with_highs_message(monkeypatch, rng):
    import scipy.optimize

    message = "Numerical difficulties encountered. (HiGHS Status 13: model_status is Solve error)"
    monkeypatch.setattr(scipy.optimize, "linprog",
                        lambda *args, **kwargs: scipy.optimize.OptimizeResult(status=4, message=message, x=None))
    x = np.array([0.0, 1.0, 2.5])
    with pytest.raises(SolverError) as info:
        certify(x[:, None], x[:, None, None] + 0.05 * rng.standard_normal((3, 6, 1)), rng=rng)
    assert (info.value.program, info.value.status) == ("1-D LP (HiGHS)", message)


def _write_recipe(tmp_path, **changes):
    raw = {"name": "tri", "data": {"kind": "points", "points": TRIANGLE.tolist()},
           "noise": {"distribution": "gaussian", "sigma": 0.04, "samples": 20}, "model": {"width": 64},
           "train": {"steps": 1500}, **changes}
    path = tmp_path / "tri.yaml"
    path.write_text(json.dumps(raw))
    return path


def test_certify_command_whose_cone_program_fails_exits_1_and_records_the_program(tmp_path, failing_clarabel):
    failing_clarabel("NumericalError")
    res = CliRunner().invoke(app, ["certify", str(_write_recipe(tmp_path, train={"steps": 200})),
                                   "--out", str(tmp_path / "c"), "--time-limit", "10"])
    assert res.exit_code == 1, res.output
    reason = "solver failed: restricted dual cone program (status solver_error): certify: no exactly interpolating"
    errors = [line for line in res.stderr.strip().splitlines() if not re.search(r"; elapsed \d+ s$", line)]
    assert errors[0].startswith(f"error: {reason}") and len(errors) == 1       # one line beside the progress lines
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["reason"].startswith(reason)


def test_a_fit_whose_polish_fails_keeps_its_trained_output_layer(tmp_path, failing_clarabel):
    """polish is a bonus: a cone program that fails leaves the fit as trained, and result.json says why."""
    recipe = _write_recipe(tmp_path, train={"steps": 6000})                     # to its stopping rule: ok
    raw = CliRunner().invoke(app, ["fit", str(recipe), "--out", str(tmp_path / "raw"), "--set", "train.polish=false",
                                   "--no-figures", "--json", "-q"])
    assert raw.exit_code == 0, raw.output
    failing_clarabel("NumericalError")
    res = CliRunner().invoke(app, ["fit", str(recipe), "--out", str(tmp_path / "fit"), "--no-figures", "--json", "-q"])
    assert res.exit_code == 0, res.output
    out, kept = json.loads(res.stdout), json.loads(raw.stdout)
    assert out["polish"]["applied"] is False
    assert out["polish"]["reason"].startswith("polish: Clarabel returned no exact output weights")
    assert out["status"] == kept["status"] and out["cost"] == kept["cost"]
    trained, _ = ShallowDenoiser.load(tmp_path / "raw" / "model.pt")
    net, _ = ShallowDenoiser.load(tmp_path / "fit" / "model.pt")
    for name, value in trained.state_dict().items():
        assert torch.equal(net.state_dict()[name], value), name


def _warning_clarabel(monkeypatch, real, message, category):
    """clarabel.DefaultSolver that warns `message` before each solve by `real`."""
    import warnings

    import clarabel

    class Warning_:
        def __init__(self, *args, **kwargs):
            self.solver = real(*args, **kwargs)

        def solve(self):
            warnings.warn(message, category)
            return self.solver.solve()

    monkeypatch.setattr(clarabel, "DefaultSolver", Warning_)


def test_warnings_inside_a_solve_reach_the_caller_except_the_judged_inaccuracy(monkeypatch, rng):
    """Only cvxpy's 'Solution may be inaccurate' is silenced (certify judges the status itself); anything else
    raised inside a solve, a numpy overflow say, reaches the caller's warning filters (here: errors)."""
    import clarabel

    S = _sphere_samples(TRIANGLE, 0.1, 4, rng)
    form = closed_form(TRIANGLE, samples=S).network
    real = clarabel.DefaultSolver
    _warning_clarabel(monkeypatch, real, "overflow encountered in multiply", RuntimeWarning)
    with pytest.warns(RuntimeWarning, match="overflow encountered"):
        polish(form, TRIANGLE, S)
    _warning_clarabel(monkeypatch, real, "Solution may be inaccurate. Try another solver, adjusting the solver "
                      "settings, or solve with verbose=True for more information.", UserWarning)
    assert polish(form, TRIANGLE, S).max_residual <= 1e-9                   # no warning: filterwarnings=error


# ---------------------------------------------------------------- sizes refused before allocation


def test_certify_refuses_before_allocating_what_memory_cannot_hold(monkeypatch, rng):
    import relu_denoise.certificates as package
    from relu_denoise import checks
    from relu_denoise.errors import RecipeError

    def no_allocation(*args, **kwargs):
        raise AssertionError("the reduced problem (an (n, n) QR) was built before the size check")

    monkeypatch.setattr(checks, "available_memory", lambda: 16 * 2**20)       # less than certify_memory(3, 8, 2)
    monkeypatch.setattr(package, "_problem", no_allocation)
    S = _sphere_samples(TRIANGLE, 0.1, 8, rng)
    with pytest.raises(RecipeError, match=r"^certify \(3 points x 8 samples = 24 samples\) needs about .* GiB, "
                                          r"more than the 0.0156 GiB available; lower noise.samples"):
        certify(TRIANGLE, S, rng=rng)
    monkeypatch.undo()
    monkeypatch.setattr(checks, "available_memory", lambda: 2**40)
    assert certify(TRIANGLE, S, time_limit=10, tol=0.5, rng=rng).upper > 0


def test_certify_memory_covers_the_square_matrix_and_grows_as_its_square():
    from relu_denoise.certificates import certify_memory

    n = 20_000                                                      # the complete QR alone is 8 n^2 bytes
    for N, d in [(5, 1), (4, 2), (4, 16)]:
        assert certify_memory(N, n // N, d) >= 8 * n**2
    for N, d in [(5, 1), (3, 2)]:
        ratio = certify_memory(N, 8000, d) / certify_memory(N, 4000, d)
        assert 3.5 <= ratio <= 4.1
    assert certify_memory(3, 100, 2, units=1000) > certify_memory(3, 100, 2)   # given networks' units count


def test_certify_command_refuses_a_recipe_too_large_for_memory(tmp_path, monkeypatch):
    from relu_denoise import checks

    from relu_denoise import train

    monkeypatch.setattr(checks, "available_memory", lambda: 16 * 2**20)       # enough for the fit, not certify
    trained = []
    monkeypatch.setattr(train, "fit_many", lambda jobs: trained.append(jobs))
    res = CliRunner().invoke(app, ["certify", str(_write_recipe(tmp_path, train={"steps": 100})),
                                   "--out", str(tmp_path / "c")])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: certify (3 points x 20 samples = 60 samples) needs about")
    assert not trained and not (tmp_path / "c").exists()                       # refused before the fit


def test_every_module_of_the_package_is_its_attribute():
    """No module is shadowed by a function of the same name (`import relu_denoise.certificates.x as m`)."""
    import pkgutil
    import types

    import relu_denoise.certificates as package

    names = [m.name for m in pkgutil.iter_modules(package.__path__)]
    assert len(names) >= 5
    for name in names:
        assert isinstance(getattr(package, name), types.ModuleType), name
