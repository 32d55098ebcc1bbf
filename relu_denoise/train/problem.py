"""The training problem: clean points and their constraints in training coordinates, and its yardsticks.

Computed once per fit by `training_problem`, a pure function of the points, the samples (or the online
noise), the method and the sections of the recipe; frozen afterwards. What changes while training (weights,
moments, multipliers, noise generators) is the trainer's state, not this.

Units. Data units are the recipe's; training units are the frame's, y' = (y - centre) / scale (the exact
methods train there, `Frame`). Yardsticks, in data units unless named `_t` (training units):

    ell           the smallest distance between clean points (docs/theory.md 1)
    noise_radius  the largest distance of a constrained sample from its clean point
    tol_unit      min(ell, noise_radius): the unit of train.tol (docs/training.md 1)
    nu_t          the penalty unit of the residuals, training units (docs/training.md 5)
"""

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from ..geometry import min_distance
from ..noise import NoiseSpec, draw_noise_torch, resolve_rho
from ..recipe import TrainSpec
from .methods import Method

_NU_PER_AFFINE = 10.0  # nu = min(ell, max(this x the affine fit's rms residual, tol x tol unit)) (training.md 5)
_FULL_BATCH = 2048     # default: full batches up to this many samples N M ...
_BATCH_COLUMNS = 1024  # ... beyond, about this many per step (docs/training.md 8)
_MIN_PER_STEP = 4


def ell_of(X: np.ndarray, noise_scale: float | None = None) -> float:
    """ell: the smallest distance between clean points X (N, d); for a single point the noise scale, else 1."""
    return min_distance(X) if len(X) > 1 else float(noise_scale or 1.0)


def tol_unit(ell: float, noise_radius: float) -> float:
    """The unit of train.tol: min(ell, noise_radius) (docs/training.md 1). A residual must be small against
    the noise as well: against ell alone, a map that barely denoises (or the free affine part alone) passes."""
    return min(ell, noise_radius) if noise_radius > 0 else ell


def penalty_unit(ell: float, s: float, floor: float) -> float:
    """nu = min(ell, max(10 s, floor)), s the affine fit's rms residual, floor = tol x tol unit (training.md 5)."""
    return min(ell, max(_NU_PER_AFFINE * s, floor))


def noise_stats(Y: np.ndarray, X: np.ndarray) -> tuple[float, float, float]:
    """(s, s_max, radius) of samples Y and their clean points X (P, d): s and s_max the rms and the max of the
    residual ||x - (A y + c)|| of the best affine map (least squares: the free part V y + c of h), radius the
    largest noise norm ||y - x||."""
    if not len(Y):
        return 0.0, 0.0, 0.0
    A = np.hstack([Y, np.ones((len(Y), 1))])                                           # (P, d + 1)
    theta = scipy.linalg.lstsq(A, X, lapack_driver="gelsy")[0]                          # (d + 1, d); QR, 3x gelsd
    r2 = np.sum((A @ theta - X) ** 2, axis=1)                                          # (P,)
    return float(np.sqrt(np.mean(r2))), float(np.sqrt(r2.max())), float(np.linalg.norm(Y - X, axis=1).max())


@dataclass(frozen=True)
class Frame:
    """Training coordinates y' = (y - centre) / scale: the clean points centred, within the unit ball.

    The min-cost interpolant is equivariant under this map and the path cost invariant, so the exact methods
    train here (the random initialisation then suits every data scale); the weight-decay method keeps the
    data's own coordinates, as the paper does.
    """

    centre: np.ndarray   # (d,)
    scale: float

    @classmethod
    def of(cls, X: np.ndarray, *, normalise: bool, fallback: float) -> "Frame":
        if not normalise:
            return cls(np.zeros(X.shape[1]), 1.0)
        centre = X.mean(axis=0)
        radius = float(np.linalg.norm(X - centre, axis=1).max())
        return cls(centre, radius if radius > 0 else fallback)

    def inward(self, Y: np.ndarray) -> np.ndarray:
        return (Y - self.centre) / self.scale

    def outward(self, net, skip: bool):
        """h(y) = scale h'((y - centre) / scale) + centre, as a network (same path cost)."""
        from ..network import ShallowDenoiser

        with torch.no_grad():
            m = torch.as_tensor(self.centre, dtype=net.w.dtype, device=net.w.device)
            w = net.w / self.scale
            b = net.b - w @ m
            c = self.scale * net.c - net.V @ m + m
            return ShallowDenoiser.from_weights(self.scale * net.a.cpu(), w.cpu(), b.cpu(),
                                                net.V.cpu() if skip else None, c.cpu(),
                                                dtype=net.w.dtype, device=net.w.device)


@dataclass(frozen=True)
class Constraints:
    """Inputs Yt (d, P) and targets Xt (d, P), P = N M, sample-major within each point; mask (1, P) or None
    (online: the samples beyond the noise radius that no interpolant can reach are left out)."""

    Yt: torch.Tensor
    Xt: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass(frozen=True)
class OfflineSamples:
    """Fixed noisy samples (N, M, d) of the clean points: every one a constraint."""

    samples: np.ndarray
    online = False

    @property
    def M(self) -> int:
        return self.samples.shape[1]

    def noise_scale(self, X: np.ndarray) -> float:
        """The samples' rms distance from their clean points (ell of a single point)."""
        return float(np.sqrt(np.mean((self.samples - X[:, None, :]) ** 2)) or 1.0)


@dataclass(frozen=True)
class OnlineNoise:
    """Fresh noise every step: noise.samples draws per clean point per step."""

    noise: NoiseSpec
    online = True

    @property
    def M(self) -> int:
        return self.noise.samples

    def noise_scale(self, X: np.ndarray) -> float:
        return self.noise.scale

    def keep_radius(self) -> float | None:
        """Online Gaussian noise has no exact interpolant: constraints cover samples within rho (theory.md 1)."""
        if self.noise.distribution != "gaussian":
            return None
        return float(resolve_rho(self.noise, "auto" if self.noise.rho == "empirical" else None))


@dataclass(frozen=True)
class TrainingProblem:
    """Everything a fit's steps and checks read that does not change while training."""

    method: Method
    data: OfflineSamples | OnlineNoise
    frame: Frame
    points: torch.Tensor             # (N, d) clean points, training units, on the device
    fixed: Constraints | None        # offline: every sample (training units)
    probe: Constraints | None        # online: a fixed set of fresh samples the checks measure on
    Xt: torch.Tensor                 # (d, P) the targets of every step
    keep_t: float | None             # online: the radius of kept samples, training units
    ell: float
    noise_radius_t: float            # training units (the learning rate's cap reads it there)
    tol_unit: float
    nu_t: float
    affine_residual: float           # the max residual of the best affine map (what V y + c alone achieves)
    per_step: int | None             # samples of each clean point in a step's minibatch, None: all
    solve_every: int                 # checks between full output-layer solves

    @property
    def N(self) -> int:
        return self.points.shape[0]

    @property
    def d(self) -> int:
        return self.points.shape[1]

    @property
    def M(self) -> int:
        return self.data.M

    @property
    def online(self) -> bool:
        return self.data.online

    @property
    def measured(self) -> Constraints:
        """The samples on which residuals are measured: the fixed ones offline, the probe online."""
        return self.probe if self.online else self.fixed

    @property
    def noise_radius(self) -> float:
        return self.noise_radius_t * self.frame.scale

    @property
    def columns(self) -> int:
        """Constraints in a step."""
        return self.N * (self.M if self.per_step is None else self.per_step)

    def draw(self, generator: torch.Generator) -> Constraints:
        """A step's constraints: the fixed samples offline; online fresh noise from `generator`."""
        if not self.online:
            return self.fixed
        return _draw_online(self.points, self.Xt, self.data.noise, self.keep_t, self.frame.scale, generator)


def training_problem(X: np.ndarray, data: OfflineSamples | OnlineNoise, method: Method, train: TrainSpec, *,
                     width: int, frame: Frame, noise_seed: int, dtype, device) -> TrainingProblem:
    """The problem of fitting clean points X (N, d) to `data` in `frame`; `noise_seed` seeds the online probe
    (the training stream is the trainer's state, seeded with it)."""
    N, d = X.shape
    points = torch.as_tensor(frame.inward(X), dtype=dtype).to(device)                  # (N, d)
    Xt = points.T.repeat_interleave(data.M, dim=1).contiguous()                        # (d, P)
    fixed = probe = keep_t = None
    if data.online:
        keep = data.keep_radius()
        keep_t = None if keep is None else keep / frame.scale
        generator = torch.Generator(device=device).manual_seed(noise_seed + 1)
        probe = _draw_online(points, Xt, data.noise, keep_t, frame.scale, generator)
    else:
        samples = torch.as_tensor(frame.inward(data.samples), dtype=dtype).to(device)  # (N, M, d)
        fixed = Constraints(samples.reshape(-1, d).T.contiguous(), Xt)
    s, s_max, radius_t = _noise_units(probe if data.online else fixed)
    ell = ell_of(X, data.noise_scale(X))
    unit = tol_unit(ell, radius_t * frame.scale)
    per_step = _per_step(train, method, data, N)
    columns = N * (data.M if per_step is None else per_step)
    return TrainingProblem(method, data, frame, points, fixed, probe, Xt, keep_t, ell, radius_t, unit,
                           penalty_unit(ell / frame.scale, s, train.tol * unit / frame.scale), s_max * frame.scale,
                           per_step, _solve_every(width, d, N * data.M, columns, train.check_every))


def _draw_online(points, Xt, noise: NoiseSpec, keep_t, scale: float, generator) -> Constraints:
    """Fresh samples of every clean point (targets Xt), training units; mask: those within keep_t."""
    d = points.shape[1]
    eps = draw_noise_torch((Xt.shape[1], d), noise, generator=generator, dtype=points.dtype,
                           device=points.device) / scale                                   # (P, d)
    mask = None if keep_t is None else (eps.norm(dim=1) <= keep_t).to(eps.dtype)[None, :]
    return Constraints(Xt + eps.T, Xt, mask)


def _noise_units(c: Constraints) -> tuple[float, float, float]:
    """`noise_stats` of the constrained samples (mask kept), in their own units."""
    Y, X = c.Yt.T.cpu().double().numpy(), c.Xt.T.cpu().double().numpy()                # (P, d)
    if c.mask is not None:
        keep = c.mask[0].cpu().numpy() > 0
        Y, X = Y[keep], X[keep]
    return noise_stats(Y, X)


def _per_step(spec: TrainSpec, method: Method, data, N: int) -> int | None:
    """Samples per clean point in a step, or None for all (offline, methods with minibatches only): train.batch,
    or by default all while N M <= 2048, else max(4, ceil(1024 / N)) (docs/training.md 8: minibatches)."""
    M = data.M
    if data.online or not method.minibatches:
        return None
    m = spec.batch
    if m is None:
        m = M if N * M <= _FULL_BATCH else max(_MIN_PER_STEP, -(-_BATCH_COLUMNS // N))
    return None if m >= M else m


def _solve_every(K: int, d: int, P: int, B: int, check_every: int) -> int:
    """Checks between the full output-layer solves: every check unless forming the two (K+d+1)^2 systems over
    all P samples costs more than the `check_every` steps on B columns in between (docs/training.md 4)."""
    solve = 4.0 * (K + d + 1) ** 2 * P                                   # two Gram matrices
    steps = check_every * K * B * (6.0 * d + 8.0)                        # three products and the elementwise work
    return max(1, math.ceil(solve / steps))
