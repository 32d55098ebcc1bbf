"""The problem certify and polish solve, in reduced coordinates, and its input gates (docs/theory.md 8, F2).

Two exact reductions: the units only see the samples' affine hull (restricting w to it never costs
more), and the outputs are projected onto the clean points' affine hull (docs/theory.md F2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_no_shared_samples, check_points, check_samples
from ..geometry import affine_hull, min_distance


@dataclass
class _Problem:
    """Samples and targets, and the same in the reduced coordinates of the module docstring."""

    Y: np.ndarray        # (n, D) samples
    T: np.ndarray        # (n, D) targets
    z: np.ndarray        # (n, r) samples in their affine hull: y = y_bar + U_in z
    y_bar: np.ndarray    # (D,)
    U_in: np.ndarray     # (D, r)
    t: np.ndarray        # (n, p) targets in the clean points' affine hull: t = x_bar + U_out t'
    x_bar: np.ndarray    # (D,)
    U_out: np.ndarray    # (D, p)
    Up: np.ndarray       # (n, m) orthonormal basis of the complement of span[z, 1]
    R: np.ndarray        # (m, p) = Up^T t
    dmin: float          # smallest distance between clean points
    M: int               # samples per clean point (rows n M .. n M + M - 1 belong to x_n)

    @property
    def trivial(self) -> bool:
        """An affine map interpolates (one clean point, or too few samples): C* = 0."""
        return self.R.size == 0 or np.abs(self.R).max() <= 1e-12 * max(np.abs(self.t).max(), 1e-300)


def _hulls(X: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """y_bar (D,), U_in (D, r), x_bar (D,), U_out (D, p): the samples' and the clean points' affine hulls.
    O(n D min(n, D)), no (n, n) array: computed before the size check."""
    return (*affine_hull(S.reshape(-1, S.shape[2])), *affine_hull(X))


def _problem(X: np.ndarray, S: np.ndarray, hulls=None) -> _Problem:
    """The reduced problem; `hulls` from `_hulls` where already computed. Holds an (n, n) array (Up's complete QR)."""
    N, M, D = S.shape
    Y = S.reshape(N * M, D)                                          # (n, D)
    T = np.repeat(X, M, axis=0)                                      # (n, D)
    y_bar, U_in, x_bar, U_out = _hulls(X, S) if hulls is None else hulls
    z, t = (Y - y_bar) @ U_in, (T - x_bar) @ U_out                   # (n, r), (n, p)
    Q, _ = np.linalg.qr(np.hstack([z, np.ones((len(z), 1))]), mode="complete")
    Up = Q[:, z.shape[1] + 1:]                                       # (n, m)
    return _Problem(Y, T, z, y_bar, U_in, t, x_bar, U_out, Up, Up.T @ t, min_distance(X), M)


def _check_inputs(points, samples) -> tuple[np.ndarray, np.ndarray]:
    """Clean points (N, d) and samples (N, M, d) as float64, or DataError naming the problem."""
    X = check_points(points, name="points")
    S = check_samples(samples, X)
    min_distance(X)                                                  # DataError if two points coincide
    check_no_shared_samples(S)
    return X, S


def _reduction_notes(prob: _Problem) -> list[str]:
    D, r, p = prob.Y.shape[1], prob.z.shape[1], prob.t.shape[1]
    notes = []
    if r < D:
        notes.append(f"the samples span a {r}-dimensional affine subspace of R^{D}: units restricted to it (exact)")
    if p < D:
        notes.append(f"outputs projected onto the clean points' {p}-dimensional affine hull (docs/theory.md F2; exact)")
    return notes
