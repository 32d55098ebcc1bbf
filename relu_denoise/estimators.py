"""Reference denoisers of docs/theory.md section 3: empirical MMSE, Gaussian linear MMSE, nearest
neighbour and identity.

Every denoiser of the project, trained or analytic, follows one protocol (`Denoiser`):
`predict(y)` maps an (n, d) array to an (n, d) array in y's float dtype (float64 otherwise) and
raises DataError "y: expected shape (n, d), got ..." for a wrong dimension. `ShallowDenoiser`
and `ClosedForm` follow it; so do the references here. Computation is float64.

    DENOISERS                                  the one registry of names: nn, closed_form, references
    make_estimator(name, x, sigma)             a reference by name
    make_denoiser(name, x, sigma, ...)         any of the six by name (compare uses it)
"""

from typing import Protocol

import numpy as np
from scipy.linalg import solve
from scipy.spatial.distance import cdist

from .checks import check_chunk, check_points, check_positive, output_dtype
from .errors import DataError

DENOISERS = ("nn", "closed_form", "emmse", "lmmse", "nearest", "identity")
REFERENCES = DENOISERS[2:]          # built from the clean points and sigma alone


class Denoiser(Protocol):
    def predict(self, y) -> np.ndarray:
        """h(y) for y (n, d) -> (n, d) in y's float dtype."""

# Elements of one (test rows x training chunk) block: 2**20 float64 = 8 MiB per array, so the
# working memory stays bounded however many test rows and training points there are.
_BLOCK = 2**20


# ---------------------------------------------------------------- gates and helpers


def _row_blocks(n: int, C: int):
    """Slices of the n test rows, B rows each, so that a (B, C) block holds at most _BLOCK numbers."""
    B = max(1, _BLOCK // C)
    return (slice(i, i + B) for i in range(0, n, B))


def _sqdist(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """||y_i - x_j||^2 for y (n, d) and x (C, d), returned as (n, C).

    cdist sums (y_i - x_j)^2 term by term (direct differences). The expansion
    ||y||^2 - 2 y.x + ||x||^2 cancels catastrophically when ||y - x|| << ||x||, which is exactly
    the low-noise regime of docs/theory.md 3.
    """
    return cdist(y, x, "sqeuclidean")


# ---------------------------------------------------------------- empirical MMSE


def emmse(y, x, sigma, *, chunk: int = 4096) -> np.ndarray:
    """Posterior mean for the empirical prior (1/N) sum_n delta_{x_n} and Gaussian noise sigma.

        h(y) = sum_n x_n w_n(y),   w(y) = softmax_n( -||y - x_n||^2 / (2 sigma^2) )

    docs/theory.md 3 (paper). Computed in float64 with direct differences and a streaming
    log-sum-exp over chunks of x (running max), so memory is O(B * chunk + n * d) with
    B * chunk <= max(2**20, chunk) whatever N is. Far from every atom at low sigma the output
    is the nearest atom (never NaN).

    Parameters
    ----------
    y : array_like, shape (n, d)
        Noisy inputs.
    x : array_like, shape (N, d)
        Clean training points (the atoms of the prior).
    sigma : float
        Noise standard deviation, > 0.
    chunk : int
        Training points per streaming step; bounds the memory, not the result.

    Returns
    -------
    h : ndarray, shape (n, d), the dtype of y if floating, else float64.
    """
    dtype = output_dtype(y)
    x = check_points(x, name="x")
    y = check_points(y, name="y", d=x.shape[1])
    sigma = check_positive(sigma, name="sigma")
    chunk = check_chunk(chunk)
    h = np.empty_like(y)                                    # (n, d)
    for rows in _row_blocks(len(y), min(chunk, len(x))):
        h[rows] = _emmse_rows(y[rows], x, sigma, chunk)
    return h.astype(dtype, copy=False)


def _emmse_rows(y: np.ndarray, x: np.ndarray, sigma: float, chunk: int) -> np.ndarray:
    """Online softmax over chunks of x: running max m, normaliser s, weighted sum t."""
    n, d = y.shape
    m = np.full(n, -np.inf)                                 # (n,) running max of the logits
    s = np.zeros(n)                                         # (n,) sum_j exp(l_j - m)
    t = np.zeros((n, d))                                    # (n, d) sum_j exp(l_j - m) x_j
    for j in range(0, len(x), chunk):
        xc = x[j:j + chunk]                                 # (C, d)
        l = _sqdist(y, xc)                                  # (n, C)
        l *= -0.5 / sigma**2                                # logits -||y - x_j||^2 / (2 sigma^2)
        m_new = np.maximum(m, l.max(axis=1))                # (n,)
        scale = np.exp(m - m_new)                           # (n,) moves old sums to the new max; 0 at first
        l -= m_new[:, None]
        p = np.exp(l, out=l)                                # (n, C) in [0, 1]: no overflow
        s = s * scale + p.sum(axis=1)
        t = t * scale[:, None] + p @ xc
        m = m_new
    return t / s[:, None]                                   # s >= 1: the maximal term is exp(0)


# ---------------------------------------------------------------- Gaussian linear MMSE


class LinearMMSE:
    """Gaussian linear MMSE h(y) = mu + S (S + sigma^2 I)^{-1} (y - mu), docs/theory.md 3.

    The posterior mean when the prior is exactly N(mu, S) and the noise N(0, sigma^2 I); for
    any prior with mean mu and covariance S, the best affine estimator.

    Parameters
    ----------
    mu : array_like, shape (d,)
        Prior mean.
    S : array_like, shape (d, d)
        Prior covariance, symmetric positive semi-definite (singular is fine: sigma > 0).
    sigma : float
        Noise standard deviation, > 0.
    """

    def __init__(self, mu, S, sigma):
        self.mu = check_points(np.reshape(mu, (1, -1)), name="mu")[0]       # (d,)
        d = len(self.mu)
        self.S = check_points(S, name="S", d=d)                              # (d, d)
        if self.S.shape != (d, d):
            raise DataError(f"S: expected shape ({d}, {d}), got {self.S.shape}")
        self.sigma = check_positive(sigma, name="sigma")
        # G = (S + sigma^2 I)^{-1} S by a solve, not an inverse. Both factors are symmetric, so
        # G^T = S (S + sigma^2 I)^{-1} and a row y gives h = mu + (y - mu) G.
        self.G = solve(self.S + self.sigma**2 * np.eye(d), self.S)         # (d, d)

    def predict(self, y) -> np.ndarray:
        """h(y) for y of shape (n, d); returns (n, d) in the dtype of y if floating, else float64."""
        dtype = output_dtype(y)
        y = check_points(y, name="y", d=len(self.mu))
        h = self.mu + (y - self.mu) @ self.G                                 # (n, d)
        return h.astype(dtype, copy=False)


def lmmse_fit(x, sigma) -> LinearMMSE:
    """The Gaussian linear MMSE of the empirical mean and covariance of x.

        mu = (1/N) sum_n x_n,   S = (1/N) sum_n (x_n - mu)(x_n - mu)^T

    S is the covariance of the empirical prior (1/N) sum_n delta_{x_n} itself (the biased, 1/N
    estimate, np.cov(..., bias=True)): the prior eMMSE uses, so with one point both return it.

    Parameters
    ----------
    x : array_like, shape (N, d)
        Clean training points.
    sigma : float
        Noise standard deviation, > 0.
    """
    x = check_points(x, name="x")
    N = len(x)
    mu = x.mean(axis=0)                                     # (d,)
    xc = x - mu                                             # (N, d)
    return LinearMMSE(mu, xc.T @ xc / N, sigma)


# ---------------------------------------------------------------- nearest neighbour, identity


def nearest(y, x, *, chunk: int = 4096) -> np.ndarray:
    """Nearest clean point: h(y) = x_{n*}, n* = argmin_n ||y - x_n||^2 (first one on ties).

    The sigma -> 0 limit of eMMSE. Direct differences, chunked over x and over the rows of y.

    Parameters
    ----------
    y : array_like, shape (n, d)
    x : array_like, shape (N, d)
    chunk : int
        Training points per step.

    Returns
    -------
    h : ndarray, shape (n, d), the dtype of y if floating, else float64.
    """
    dtype = output_dtype(y)
    x = check_points(x, name="x")
    y = check_points(y, name="y", d=x.shape[1])
    chunk = check_chunk(chunk)
    idx = np.empty(len(y), dtype=np.intp)                   # (n,)
    for rows in _row_blocks(len(y), min(chunk, len(x))):
        idx[rows] = _nearest_index(y[rows], x, chunk)
    return x[idx].astype(dtype, copy=False)


def _nearest_index(y: np.ndarray, x: np.ndarray, chunk: int) -> np.ndarray:
    """Index of the nearest row of x for each row of y, keeping a running best over chunks."""
    n = len(y)
    best = np.full(n, np.inf)                               # (n,) best squared distance so far
    idx = np.zeros(n, dtype=np.intp)                        # (n,)
    for j in range(0, len(x), chunk):
        sq = _sqdist(y, x[j:j + chunk])                     # (n, C)
        k = sq.argmin(axis=1)                               # (n,)
        dk = sq[np.arange(n), k]
        better = dk < best                                  # strict: a tie keeps the earlier point
        best[better] = dk[better]
        idx[better] = j + k[better]
    return idx


def identity(y, *, d: int | None = None) -> np.ndarray:
    """No denoising: h(y) = y, as a copy. `d`, if given, is the dimension y must have."""
    dtype = output_dtype(y)
    return check_points(y, name="y", d=d).astype(dtype)


class EmpiricalMMSE:
    """`emmse` with its atoms x (N, d) and sigma bound: the denoiser protocol."""

    def __init__(self, x, sigma, *, chunk: int = 4096):
        self.x, self.sigma, self.chunk = check_points(x, name="x"), check_positive(sigma, name="sigma"), chunk

    def predict(self, y) -> np.ndarray:
        return emmse(y, self.x, self.sigma, chunk=self.chunk)


class Nearest:
    """`nearest` with its clean points x (N, d) bound: the denoiser protocol."""

    def __init__(self, x, *, chunk: int = 4096):
        self.x, self.chunk = check_points(x, name="x"), chunk

    def predict(self, y) -> np.ndarray:
        return nearest(y, self.x, chunk=self.chunk)


class Identity:
    """h(y) = y for inputs of dimension d: the denoiser protocol."""

    def __init__(self, d: int):
        self.d = d

    def predict(self, y) -> np.ndarray:
        return identity(y, d=self.d)


# ---------------------------------------------------------------- the registry


def make_estimator(name: str, x, sigma) -> Denoiser:
    """Build the reference `name` from clean points x (N, d) and noise level sigma.

    Names: REFERENCES ("emmse", "lmmse", "nearest", "identity"); sigma is ignored by the last
    two, and every one checks that y has x's d.
    """
    if name not in REFERENCES:
        raise DataError(f"estimator: unknown name {name!r}; valid names are {', '.join(REFERENCES)}")
    x = check_points(x, name="x")
    if name == "emmse":
        return EmpiricalMMSE(x, sigma)
    if name == "lmmse":
        return lmmse_fit(x, sigma)
    if name == "nearest":
        return Nearest(x)
    return Identity(x.shape[1])


def make_denoiser(name: str, x, sigma, *, samples=None, noise=None, fit_nn=None, reference=None) -> Denoiser:
    """Any denoiser of DENOISERS from clean points x (N, d) at noise level sigma.

    "nn": `fit_nn(x, samples)` trains it (a ShallowDenoiser); "closed_form": the reference closed
    form of `noise` (a NoiseSpec) on the offline samples (N, M, d), or `reference` when the caller
    already built it (NoClosedFormError where none applies, naming the condition); the references
    need only x and sigma.
    """
    if name == "nn":
        return fit_nn(x, samples)
    if name == "closed_form":
        from .closed_forms import reference_form
        ref = reference if reference is not None else reference_form(x, noise, samples)
        if ref.form is None:
            raise ref.error
        return ref.form
    if name not in DENOISERS:
        raise DataError(f"denoiser: unknown name {name!r}; valid names are {', '.join(DENOISERS)}")
    return make_estimator(name, x, sigma)
