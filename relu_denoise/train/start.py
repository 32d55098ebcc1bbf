"""Where the exact methods start (docs/training.md 3): enough units, input directions in the clean points'
affine hull, every boundary through a training sample."""

import torch

from ..geometry import affine_hull
from ..network import ShallowDenoiser

_UNITS_PER_POINT = 8   # default width: max(64, this x N) units (docs/training.md 3)
_MIN_WIDTH = 64


def choose_width(N: int, d: int) -> int:
    """Units K when the recipe leaves model.width unset: max(64, c N), c = _UNITS_PER_POINT
    (docs/training.md 3: enough boundaries per clean point)."""
    return max(_MIN_WIDTH, _UNITS_PER_POINT * N)


def _hull_basis(points: torch.Tensor) -> torch.Tensor | None:
    """An orthonormal basis U (d, r) of the directions of the clean points' affine hull (geometry.affine_hull,
    the one rank rule), or None when r = d (every direction is in it). docs/theory.md 4.1."""
    X = points.detach().to(device="cpu", dtype=torch.float64).numpy()
    U = affine_hull(X)[1]                                                              # (d, r)
    return None if U.shape[1] == X.shape[1] else torch.as_tensor(U)


@torch.no_grad()
def _directions_in_hull(net: ShallowDenoiser, points: torch.Tensor) -> None:
    """Turn every input direction w_k into the span of the clean-point differences, keeping its norm: w_k <-
    ||w_k|| P w_k / ||P w_k||, P the orthogonal projection onto the span (a uniformly random direction there,
    as P of an isotropic draw is isotropic in the span). The min-cost interpolant of ball noise has its units
    in that span (docs/theory.md 4.1); from directions drawn in all of R^D a high-dimensional triangle's first
    exact interpolant is far from it (docs/training.md 3). Nothing changes when the hull has dimension d, or
    0 (one point). Draws no random numbers: the rest of the run's random stream is unchanged."""
    U = _hull_basis(points)
    if U is None or U.shape[1] == 0:
        return
    U = U.to(dtype=net.w.dtype, device=net.w.device)
    Pw = (net.w @ U) @ U.T                                                             # (K, d)
    norm = Pw.norm(dim=1, keepdim=True)
    net.w.copy_(torch.where(norm > 0, Pw * (net.w.norm(dim=1, keepdim=True) / norm.clamp_min(1e-300)), net.w))


@torch.no_grad()
def _kinks_through_samples(net: ShallowDenoiser, Yt: torch.Tensor, N: int, M: int,
                           generator: torch.Generator) -> None:
    """Set b_k = -w_k^T z_k for a training sample z_k (a column of Yt (d, N M), point-major): every unit's
    boundary crosses the data. z_k is a random sample of clean point n_k, the n_k running through random
    orders of the N points, so each point gets floor(K / N) or ceil(K / N) boundaries."""
    K = net.width
    order = torch.cat([torch.randperm(N, generator=generator) for _ in range(-(-K // N))])[:K]   # (K,)
    idx = (order * M + torch.randint(0, M, (K,), generator=generator)).to(Yt.device)
    net.b.copy_(-(net.w * Yt[:, idx].T).sum(dim=1))


def start_units(net: ShallowDenoiser, problem, generator: torch.Generator) -> None:
    """The exact methods' start for a TrainingProblem: directions in the hull, then kinks through samples."""
    _directions_in_hull(net, problem.points)
    _kinks_through_samples(net, problem.measured.Yt, problem.N, problem.M, generator)
