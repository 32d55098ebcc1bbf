"""Reference denoisers (docs/theory.md 3) against independent oracles, plus one contract for all."""

import numpy as np
import pytest
import torch
from scipy.linalg import cholesky, solve_triangular
from scipy.special import softmax

from relu_denoise import estimators
from relu_denoise.errors import DataError
from relu_denoise.network import ShallowDenoiser
from relu_denoise.noise import NoiseSpec
from relu_denoise.estimators import (DENOISERS, LinearMMSE, emmse, identity, lmmse_fit, make_denoiser, make_estimator,
                                     nearest)


def _dense_emmse(y, x, sigma):
    """Brute force: the full (n, N, d) differences, the full (n, N) logits, one softmax."""
    sq = ((y[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1)     # (n, N)
    w = softmax(-sq / (2 * sigma**2), axis=1)                    # (n, N)
    return w @ x                                                 # (n, d)


def _dense_nearest(y, x):
    sq = ((y[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1)     # (n, N)
    return x[sq.argmin(axis=1)]


# ---------------------------------------------------------------- eMMSE


def test_emmse_single_atom_returns_the_atom():
    x = np.array([[0.3, -1.2, 2.0]])
    y = np.random.default_rng(0).normal(scale=5.0, size=(7, 3))
    np.testing.assert_array_equal(emmse(y, x, 0.1), np.repeat(x, 7, axis=0))


def test_emmse_two_symmetric_atoms_give_the_midpoint_at_the_midpoint():
    x = np.array([[1.0, 2.0], [3.0, -4.0]])
    mid = x.mean(axis=0, keepdims=True)
    for sigma in (1e-3, 0.5, 10.0):
        np.testing.assert_allclose(emmse(mid, x, sigma), mid, rtol=0, atol=1e-15)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
@pytest.mark.parametrize("sigma", [0.05, 0.4, 3.0])
def test_emmse_matches_dense_reference(chunk, sigma):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))                                 # N = 50 > chunk for 1 and 7
    y = x[rng.integers(0, 50, size=20)] + sigma * rng.normal(size=(20, 3))
    np.testing.assert_allclose(emmse(y, x, sigma, chunk=chunk), _dense_emmse(y, x, sigma),
                               rtol=1e-12, atol=1e-12)


def test_emmse_streams_over_test_rows_too(monkeypatch):
    # a tiny block forces several row blocks of 2 rows; the answer must not change
    monkeypatch.setattr(estimators, "_BLOCK", 8)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(11, 4))
    np.testing.assert_allclose(emmse(y, x, 0.7, chunk=4), _dense_emmse(y, x, 0.7), rtol=1e-12, atol=1e-12)


def test_emmse_low_sigma_far_from_atoms_is_the_nearest_atom():
    # logits ~ -1e10: a plain softmax underflows to 0/0; the running max keeps the nearest atom
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    y = 10.0 * rng.normal(size=(9, 5))
    h = emmse(y, x, 1e-4, chunk=8)
    assert np.all(np.isfinite(h))
    np.testing.assert_allclose(h, _dense_nearest(y, x), rtol=0, atol=1e-12)


def test_emmse_uses_direct_differences():
    # atoms 1e-3 apart at 1e6: the expansion ||y||^2 - 2 y.x + ||x||^2 has rounding errors of
    # ~1e-4 there, far above the squared distances ~2e-7 that set the weights
    x = np.array([[1e6], [1e6 + 1e-3]])
    y = np.array([[1e6 + 0.45e-3]])
    sigma = 3e-4
    sq = (x[:, 0] - y[0, 0]) ** 2                                # direct, exact to ~1e-10 relative
    w2 = softmax(-sq / (2 * sigma**2))[1]
    assert 0.3 < w2 < 0.4                                        # both atoms matter
    np.testing.assert_allclose(emmse(y, x, sigma)[0, 0] - 1e6, 1e-3 * w2, rtol=1e-5)


# ---------------------------------------------------------------- Gaussian linear MMSE


def _sample_with_moments(mu, S, N, rng):
    """N points whose empirical mean is mu and 1/N covariance is S, up to rounding."""
    d = len(mu)
    z = rng.normal(size=(N, d))
    z -= z.mean(axis=0)
    L = cholesky(z.T @ z / N, lower=True)
    z = solve_triangular(L, z.T, lower=True).T                   # empirical covariance I
    return mu + z @ cholesky(S, lower=True).T                    # (N, d)


def test_lmmse_is_the_gaussian_posterior_mean():
    rng = np.random.default_rng(4)
    d, sigma = 4, 0.7
    B = rng.normal(size=(d, d))
    mu, S = rng.normal(size=d), B @ B.T + 0.5 * np.eye(d)
    x = _sample_with_moments(mu, S, 200, rng)
    est = lmmse_fit(x, sigma)
    np.testing.assert_allclose(est.mu, mu, atol=1e-12)
    np.testing.assert_allclose(est.S, S, atol=1e-12)             # pins the 1/N convention
    y = rng.normal(size=(10, d))
    # independent route: product of the Gaussians N(mu, S) and N(y, sigma^2 I), precision form
    P = np.linalg.inv(S) + np.eye(d) / sigma**2
    oracle = np.linalg.solve(P, (np.linalg.solve(S, mu)[:, None] + y.T / sigma**2)).T
    np.testing.assert_allclose(est.predict(y), oracle, rtol=1e-10, atol=1e-12)


def test_lmmse_of_one_point_returns_it():
    x = np.array([[1.5, -2.0]])
    np.testing.assert_allclose(lmmse_fit(x, 0.3).predict(np.array([[9.0, 9.0], [0.0, 0.0]])), np.repeat(x, 2, axis=0))


def test_lmmse_accepts_a_singular_covariance():
    # points on a line in R^2: the component off the line is shrunk to mu entirely
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    h = LinearMMSE(x.mean(axis=0), np.cov(x, rowvar=False, bias=True), 1e-4).predict(np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(h, [[1.5, 1.5]], atol=1e-6)


# ---------------------------------------------------------------- nearest neighbour


@pytest.mark.parametrize("chunk", [1, 6, 4096])
def test_nearest_returns_the_nearest_point(chunk):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(15, 3))
    np.testing.assert_array_equal(nearest(y, x, chunk=chunk), _dense_nearest(y, x))


def test_nearest_keeps_the_first_of_tied_points():
    x = np.array([[-1.0], [1.0], [-1.0]])
    np.testing.assert_array_equal(nearest(np.array([[0.0]]), x, chunk=1), [[-1.0]])


# ---------------------------------------------------------------- one contract for all


@pytest.fixture
def clean():
    """13 points on three orthogonal rays in R^3, rotated and shifted: every denoiser, the closed form too, exists."""
    rng = np.random.default_rng(6)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rays = np.vstack([np.zeros(3)] + [t * Q[k] for k in range(3) for t in (0.5, 1.0, 1.6, 2.1)])
    return rays + rng.normal(size=3)


def _denoiser(name, x, sigma):
    """Every denoiser through the one registry; nn is a small random network (the protocol, not training)."""
    noise = NoiseSpec(distribution="gaussian", sigma=sigma, samples=5)
    samples = x[:, None, :] + 1e-3 * np.random.default_rng(1).standard_normal((len(x), 5, x.shape[1]))
    net = lambda x, samples: ShallowDenoiser(7, x.shape[1], generator=torch.Generator().manual_seed(0))  # noqa: E731
    return make_denoiser(name, x, sigma, samples=samples, noise=noise, fit_nn=net)


@pytest.mark.parametrize("name", DENOISERS)
def test_contract_shapes_and_n_equals_one(name, clean):
    h = _denoiser(name, clean, 0.3).predict
    y = np.random.default_rng(7).normal(size=(5, 3))
    assert h(y).shape == (5, 3) and h(y).dtype == np.float64
    assert h(y[:1]).shape == (1, 3)


@pytest.mark.parametrize("name", DENOISERS)
def test_contract_batch_invariance(name, clean):
    h = _denoiser(name, clean, 0.3).predict
    y = np.random.default_rng(8).normal(size=(9, 3))
    rows = np.vstack([h(y[i:i + 1]) for i in range(len(y))])
    np.testing.assert_allclose(rows, h(y), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", DENOISERS)
def test_contract_float32_in_float32_out(name, clean):
    h = _denoiser(name, clean, 0.3).predict
    y = np.random.default_rng(9).normal(size=(4, 3))
    out = h(y.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, h(y.astype(np.float32).astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("name", DENOISERS)
def test_contract_one_dimension_and_one_point(name):
    h = _denoiser(name, np.array([[0.25]]), 0.3).predict
    out = h(np.array([[0.0], [1.0]]))
    assert out.shape == (2, 1) and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", DENOISERS)
def test_contract_wrong_dimension_raises(name, clean):
    h = _denoiser(name, clean, 0.3).predict
    with pytest.raises(DataError, match=r"y: expected shape \(n, 3\), got \(5, 2\)"):
        h(np.zeros((5, 2)))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("call, message", [
    (lambda x: make_estimator("wiener", x, 0.1), r"estimator: unknown name 'wiener'; valid names are emmse, lmmse, nearest, identity"),
    (lambda x: make_estimator("emmse", x, -1), r"sigma: must be > 0, got -1"),
    (lambda x: make_estimator("lmmse", x, 0), r"sigma: must be > 0, got 0"),
    (lambda x: emmse(x, x, 0.1, chunk=0), r"chunk: must be an integer >= 1, got 0"),
    (lambda x: nearest(x, x, chunk=2.5), r"chunk: must be an integer >= 1, got 2.5"),
    (lambda x: emmse(x, np.full((2, 3), np.nan), 0.1), r"x: contains NaN or inf values"),
    (lambda x: emmse(np.zeros((0, 3)), x, 0.1), r"y: expected shape \(n, d\) with n >= 1, got \(0, 3\)"),
    (lambda x: identity(np.zeros((2, 2)), d=3), r"y: expected shape \(n, 3\), got \(2, 2\)"),
    (lambda x: LinearMMSE(np.zeros(3), np.eye(2), 0.1), r"S: expected shape \(n, 3\), got \(2, 2\)"),
    (lambda x: LinearMMSE(np.zeros(3), np.ones((4, 3)), 0.1), r"S: expected shape \(3, 3\), got \(4, 3\)"),
])
def test_bad_inputs_raise_with_a_precise_message(call, message, clean):
    with pytest.raises(DataError, match=message):
        call(clean)
