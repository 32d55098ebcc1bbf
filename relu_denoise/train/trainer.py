"""The training loop: Trainer (state, step, checks, checkpoints) and its entry point fit_denoiser.

Constraints h(y_nm) = x_n for the noisy samples y_nm of each clean point x_n, at least cost
C = 1/2 sum_k (||a_k||^2 + ||w_k||^2) (docs/theory.md 1 and 5), within train.tol x min(ell, rho) (9.1).
Methods (`train.method`), Adam:

    weight-decay          the paper's procedure: MSE + lambda C, MSE over all N M d coordinates (torch's
                          MSELoss), the network's own initialisation and the data's coordinates, full batches,
                          the last iterate.
    augmented-lagrangian  L = C + (1/M) sum_nm [lam_nm . r_nm + mu/2 ||r_nm||^2],  r_nm = (h(y_nm) - x_n) / nu;
                          lam_nm += mu r_nm every `multiplier_every` steps (docs/theory.md 7). Offline only:
                          online it runs as the penalty method.
    penalty               the same L without multipliers; mu grows while the max residual is above tol / 4.

The exact methods (augmented-lagrangian, penalty) train in normalised coordinates (`_Frame`), start every
unit's boundary through a sample, take minibatches of constraints where N M is large, solve the output layer
exactly at the checks, keep a moving average of the weights and, offline, measure and return an exact
interpolant made from it: boundaries moved out of the clouds, output layer solved for interpolation
(docs/theory.md 9.3-9.8). Threads: devices.ThreadRule (9.9).
"""

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.linalg
import torch

from ..checks import check_points, check_samples
from ..errors import RecipeError, TrainingError
from ..files import atomic_write
from ..geometry import min_distance
from ..network import ShallowDenoiser
from ..noise import NoiseSpec, draw_noise_torch, resolve_rho
from ..recipe import ModelSpec, TrainSpec
from .devices import ThreadRule, resolve_device, resolve_dtype, single_thread, threads_set
from .engine import (_Adam, _cloud_features, _Flat, _forward, _gradients, _OutputSystem, _snap_boundaries,
                     _Workspace)
from .schedule import _Schedule

HISTORY_COLUMNS = ["step", "loss", "cost", "max_residual", "train_mse", "lambda", "penalty", "multiplier", "lr"]
_EXPLODE = 1e6         # a max residual this many ells away counts as divergence
_CHECKPOINT_VERSION = 1
_UNITS_PER_POINT = 8   # default width: max(64, this x N) units (docs/theory.md 9.3)
_MIN_WIDTH = 64
_NU_PER_AFFINE = 10.0  # nu = min(ell, max(this * affine fit's rms residual, tol unit)) (docs/theory.md 9.5)
_FULL_BATCH = 2048     # default: full batches up to this many samples N M ...
_BATCH_COLUMNS = 1024  # ... beyond, about this many per step (docs/theory.md 9.8)
_MIN_PER_STEP = 4
_SOLVE_ROUNDS = 1      # multiplier updates on the average's exact output layer at each check (docs/theory.md 9.4)
_EXACT_ROUNDS = 3      # multiplier rounds of the exact interpolant's output solve (docs/theory.md 9.4) ...
_EXACT_ROUNDS_MAX = 50  # ... and more, up to this, until the residual's norm is within _EXACT_STOP x tol: at N = 300
_EXACT_STOP = 0.1       # 2-D points 3 rounds left 4.4 x tol (42 clouds over), 10 left 0.73 x, 30 0.006 x


# ---------------------------------------------------------------- the problem


def residual_unit(X: np.ndarray, noise_scale: float | None = None) -> float:
    """ell: the smallest distance between clean points X (N, d) (docs/theory.md 1); for a single point the
    noise scale, else 1."""
    return min_distance(X) if len(X) > 1 else float(noise_scale or 1.0)


def choose_width(N: int, d: int) -> int:
    """Units K when the recipe leaves model.width unset: max(64, c N), c = _UNITS_PER_POINT
    (docs/theory.md 9.3: enough boundaries per clean point)."""
    return max(_MIN_WIDTH, _UNITS_PER_POINT * N)


def tolerance_unit(ell: float, rho: float) -> float:
    """The unit of train.tol: min(ell, rho), ell the smallest distance between clean points and rho the largest
    distance of a constrained sample from its clean point (docs/theory.md 9.1). A residual must be small against
    the noise as well: against ell alone, a map that barely denoises (or the free affine part alone) can pass."""
    return min(ell, rho) if rho > 0 else ell


def _penalty_unit(ell: float, s: float, floor: float) -> float:
    """nu = min(ell, max(10 s, tol unit)), s the affine fit's rms residual, floor = tol x tolerance unit
    (docs/theory.md 9.5: penalty unit nu)."""
    return min(ell, max(_NU_PER_AFFINE * s, floor))


@dataclass
class _Frame:
    """Training coordinates y' = (y - centre) / scale: the clean points centred, within the unit ball.

    The min-cost interpolant is equivariant under this map and the path cost invariant, so the
    exact methods train here (the random initialisation then suits every data scale); the
    weight-decay method keeps the data's own coordinates, as the paper does.
    """

    centre: np.ndarray   # (d,)
    scale: float

    @classmethod
    def of(cls, X: np.ndarray, *, normalise: bool, fallback: float) -> "_Frame":
        if not normalise:
            return cls(np.zeros(X.shape[1]), 1.0)
        centre = X.mean(axis=0)
        radius = float(np.linalg.norm(X - centre, axis=1).max())
        return cls(centre, radius if radius > 0 else fallback)

    def inward(self, Y: np.ndarray) -> np.ndarray:
        return (Y - self.centre) / self.scale

    def outward(self, net: ShallowDenoiser, skip: bool) -> ShallowDenoiser:
        """h(y) = scale h'((y - centre) / scale) + centre, as a network (same path cost)."""
        with torch.no_grad():
            m = torch.as_tensor(self.centre, dtype=net.w.dtype, device=net.w.device)
            w = net.w / self.scale
            b = net.b - w @ m
            c = self.scale * net.c - net.V @ m + m
            return ShallowDenoiser.from_weights(self.scale * net.a.cpu(), w.cpu(), b.cpu(),
                                                net.V.cpu() if skip else None, c.cpu(),
                                                dtype=net.w.dtype, device=net.w.device)


@dataclass
class _Batch:
    """Inputs Yt (d, P) and targets Xt (d, P), P = N M, sample-major within each point; mask (1, P) or None."""

    Yt: torch.Tensor
    Xt: torch.Tensor
    mask: torch.Tensor | None = None


class _Samples:
    """Offline: the fixed samples. Online: fresh noise every step from a generator on the device."""

    def __init__(self, points: torch.Tensor, data, *, seed: int, scale: float, dtype, device):
        N, d = points.shape
        self.points, self.online, self.scale = points, isinstance(data, NoiseSpec), scale
        if self.online:
            self.noise, self.M = data, data.samples
            keep = _online_keep_radius(data)
            self.keep = None if keep is None else keep / scale
            self.Xt = points.T.repeat_interleave(self.M, dim=1).contiguous()          # (d, P)
            self.generator = torch.Generator(device=device).manual_seed(seed + 1)
            self.probe = self.batch()            # fixed fresh samples on which residuals are measured
            self.generator.manual_seed(seed)     # the training noise stream
        else:
            samples = torch.as_tensor(np.asarray(data), dtype=dtype).to(device)     # (N, M, d)
            self.M = samples.shape[1]
            self.fixed = _Batch(samples.reshape(-1, d).T.contiguous(),
                                points.T.repeat_interleave(self.M, dim=1).contiguous())

    @property
    def measured(self) -> _Batch:
        """The samples on which residuals are measured: the fixed ones offline, the probe online."""
        return self.probe if self.online else self.fixed

    def batch(self) -> _Batch:
        if not self.online:
            return self.fixed
        N, d = self.points.shape
        eps = draw_noise_torch((N * self.M, d), self.noise, generator=self.generator,
                               dtype=self.points.dtype, device=self.points.device) / self.scale   # (P, d)
        mask = None
        if self.keep is not None:
            mask = (eps.norm(dim=1) <= self.keep).to(eps.dtype)[None, :]          # (1, P)
        return _Batch(self.Xt + eps.T, self.Xt, mask)


def _online_keep_radius(noise: NoiseSpec) -> float | None:
    """Online Gaussian noise has no exact interpolant: constraints cover samples within rho (docs/theory.md 1)."""
    if noise.distribution != "gaussian":
        return None
    rho = resolve_rho(noise, "auto" if noise.rho == "empirical" else None)
    return float(rho)


def _per_step(spec: TrainSpec, samples: _Samples) -> int | None:
    """Samples per clean point in a step, or None for all (offline exact methods only): train.batch, or by
    default all while N M <= 2048, else max(4, ceil(1024 / N)) (docs/theory.md 9.8: minibatches)."""
    N, M = samples.points.shape[0], samples.M
    if samples.online or spec.method == "weight-decay":
        return None
    m = spec.batch
    if m is None:
        m = M if N * M <= _FULL_BATCH else max(_MIN_PER_STEP, -(-_BATCH_COLUMNS // N))
    return None if m >= M else m


def _solve_every(K: int, d: int, P: int, B: int, check_every: int) -> int:
    """Checks between the full output-layer solves: every check unless forming the two (K+d+1)^2 systems over
    all P samples costs more than the `check_every` steps on B columns in between (docs/theory.md 9.4)."""
    solve = 4.0 * (K + d + 1) ** 2 * P                                   # two Gram matrices
    steps = check_every * K * B * (6.0 * d + 8.0)                        # three products and the elementwise work
    return max(1, math.ceil(solve / steps))


def _check_data(data, X: np.ndarray):
    """Offline samples as a float64 (N, M, d) array, or the NoiseSpec of online training."""
    return data if isinstance(data, NoiseSpec) else check_samples(data, X)


def _sample_scale(X: np.ndarray, data) -> float:
    S = np.asarray(data, dtype=np.float64)
    return float(np.sqrt(np.mean((S - X[:, None, :]) ** 2)) or 1.0) if S.ndim == 3 else 1.0


def _noise_units(batch: _Batch) -> tuple[float, float, float]:
    """`noise_stats` of the constrained samples (mask kept), in their own units."""
    Y, X = batch.Yt.T.cpu().double().numpy(), batch.Xt.T.cpu().double().numpy()       # (P, d)
    if batch.mask is not None:
        keep = batch.mask[0].cpu().numpy() > 0
        Y, X = Y[keep], X[keep]
    return noise_stats(Y, X)


def noise_stats(Y: np.ndarray, X: np.ndarray) -> tuple[float, float, float]:
    """(s, s_max, rho) of samples Y and their clean points X (P, d): s and s_max the rms and the max of the
    residual ||x - (A y + c)|| of the best affine map (least squares: the free part V y + c of h), rho the
    largest noise norm ||y - x||."""
    if not len(Y):
        return 0.0, 0.0, 0.0
    A = np.hstack([Y, np.ones((len(Y), 1))])                                           # (P, d + 1)
    theta = scipy.linalg.lstsq(A, X, lapack_driver="gelsy")[0]                          # (d + 1, d); QR, 3x gelsd
    r2 = np.sum((A @ theta - X) ** 2, axis=1)                                          # (P,)
    return float(np.sqrt(np.mean(r2))), float(np.sqrt(r2.max())), float(np.linalg.norm(Y - X, axis=1).max())


_HULL_RTOL = 1e-9      # singular values below this x the largest count as 0 in the hull's rank


def _hull_basis(points: torch.Tensor) -> torch.Tensor | None:
    """An orthonormal basis U (d, r) of span{x_n - x_1}, the directions of the clean points' affine hull, or
    None when its dimension r is d (every direction is in the span). docs/theory.md 4.1, 9.3."""
    N, d = points.shape
    if N == 1:
        return torch.zeros(d, 0, dtype=torch.float64)
    D = (points[1:] - points[:1]).to(device="cpu", dtype=torch.float64)              # (N - 1, d)
    U, s, _ = torch.linalg.svd(D.T, full_matrices=False)                               # (d, min(d, N - 1))
    r = int((s > _HULL_RTOL * s[0]).sum()) if s[0] > 0 else 0
    return None if r == d else U[:, :r]


@torch.no_grad()
def _directions_in_hull(net: ShallowDenoiser, points: torch.Tensor) -> None:
    """Turn every input direction w_k into the span of the clean-point differences, keeping its norm: w_k <-
    ||w_k|| P w_k / ||P w_k||, P the orthogonal projection onto the span (a uniformly random direction there,
    as P of an isotropic draw is isotropic in the span). The min-cost interpolant of ball noise has its units
    in that span (docs/theory.md 4.1). Measured on recipes/mnist-size-triangle.yaml (d = 784, r = 2): the
    first check's exact interpolant costs 1.31 x the empirical closed form, against 21 x (and not within tol)
    from directions drawn in R^784 (docs/theory.md 9.3). Nothing changes when the hull has dimension d, or 0
    (one point). Draws no random numbers: the rest of the run's random stream is unchanged."""
    U = _hull_basis(points)
    if U is None or U.shape[1] == 0:
        return
    U = U.to(dtype=net.w.dtype, device=net.w.device)
    Pw = (net.w @ U) @ U.T                                                             # (K, d)
    norm = Pw.norm(dim=1, keepdim=True)
    net.w.copy_(torch.where(norm > 0, Pw * (net.w.norm(dim=1, keepdim=True) / norm.clamp_min(1e-300)), net.w))


@torch.no_grad()
def _kinks_through_samples(net: ShallowDenoiser, samples: _Samples, generator: torch.Generator) -> None:
    """Set b_k = -w_k^T z_k for a training sample z_k: every unit's boundary crosses the data.

    z_k is a random sample of clean point n_k, the n_k running through random orders of the N points, so
    each point gets floor(K / N) or ceil(K / N) boundaries (docs/theory.md 9: kinks through samples).
    """
    Yt = samples.measured.Yt                                                           # (d, P), point-major
    N, M, K = samples.points.shape[0], samples.M, net.width
    order = torch.cat([torch.randperm(N, generator=generator) for _ in range(-(-K // N))])[:K]   # (K,)
    idx = (order * M + torch.randint(0, M, (K,), generator=generator)).to(Yt.device)
    net.b.copy_(-(net.w * Yt[:, idx].T).sum(dim=1))


def _start_units(net: ShallowDenoiser, samples: _Samples, generator: torch.Generator) -> None:
    """The exact methods' start: input directions in the clean points' affine hull (`_directions_in_hull`),
    then every boundary through a sample (`_kinks_through_samples`). docs/theory.md 9.3."""
    _directions_in_hull(net, samples.points)
    _kinks_through_samples(net, samples, generator)


# ---------------------------------------------------------------- results


@dataclass
class FitResult:
    """A trained (balanced) network, its history (column -> list, see HISTORY_COLUMNS) and summary stats.

    stats: cost (path cost), train_mse, max_residual, max_residual_rel (in units of residual_unit =
    min(ell, rho), the unit of train.tol), min_distance (ell), rho (the largest sample distance from its
    clean point), affine_residual and affine_residual_rel (the max residual of the best affine map y -> x:
    what the free linear part alone achieves), steps, seconds, converged, stop_reason ("converged" |
    "max-steps" | "callback"), method, device, dtype, lr, penalty, width (the units used), threads (the
    count the rule chose last; None off the CPU) and thread_choices, mode ("offline" | "online").
    """

    net: ShallowDenoiser
    history: dict
    stats: dict


class _Interrupt:
    """Ctrl-C during training sets a flag that the loop reads between steps (a second Ctrl-C is immediate)."""

    def __init__(self):
        self.requested = False

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------- the trainer


class Trainer:
    """One training run: state (parameters, Adam moments, multipliers, schedule, history, noise
    generator), the step, the checks, and checkpoints that resume bit for bit on the same device."""

    def __init__(self, points, data, model: ModelSpec, train: TrainSpec, *, generator: torch.Generator,
                 device="cpu"):
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.dtype = resolve_dtype(train.dtype, self.device)
        if train.method == "ramps":
            raise RecipeError("train.method ramps trains nothing: fit_denoiser solves it (train/ramps.py)")
        self.spec, self.model = train, model
        X = check_points(points, name="points")
        self.N, self.d = X.shape
        data = self._set_frame(X, _check_data(data, X))
        width = choose_width(self.N, self.d) if model.width is None else model.width
        net = ShallowDenoiser(width, self.d, skip=model.skip, dtype=self.dtype, device=self.device,
                              generator=generator, init_scale=train.init_scale)
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))  # online noise
        self.samples = _Samples(self.points, data, seed=seed, scale=self.frame.scale, dtype=self.dtype,
                                device=self.device)
        s, s_max, self.rho = _noise_units(self.samples.measured)                      # training units
        scale = self.frame.scale
        self.unit = tolerance_unit(self.ell_data, self.rho * scale)                    # data units
        self.affine_residual = s_max * scale                                           # data units
        self.nu = _penalty_unit(self.ell_data / scale, s, train.tol * self.unit / scale)
        if train.method != "weight-decay":            # the paper's method keeps the network's own init
            _start_units(net, self.samples, generator)
        self.per_step = _per_step(train, self.samples)
        columns = self.N * (self.samples.M if self.per_step is None else self.per_step)
        self.solve_every = _solve_every(width, self.d, self.N * self.samples.M, columns, train.check_every)
        self.batch_generator = torch.Generator().manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))
        self.order = None
        self._set_state(net)

    def _set_frame(self, X: np.ndarray, data):
        """The training frame, ell (data units) and the clean points in the frame; returns data in the frame."""
        noise_scale = data.scale if isinstance(data, NoiseSpec) else _sample_scale(X, data)
        self.frame = _Frame.of(X, normalise=self.spec.method != "weight-decay", fallback=noise_scale)
        self.ell_data = residual_unit(X, noise_scale)                                  # data units
        self.points = torch.as_tensor(self.frame.inward(X), dtype=self.dtype).to(self.device)   # (N, d)
        return data if isinstance(data, NoiseSpec) else self.frame.inward(data)

    def _set_state(self, net: ShallowDenoiser) -> None:
        """Parameters from net, gradient and work buffers, average, Adam, multipliers, schedule, history."""
        K, d = net.width, self.d
        self.p = _Flat.from_network(net)
        self.g = _Flat(torch.zeros_like(self.p.flat), K, d)
        self.ws = _Workspace()
        averaged = self.spec.method != "weight-decay" and self.spec.average > 0
        self.avg = _Flat(self.p.flat.clone(), K, d) if averaged else None
        self.adam = _Adam(self.p.flat.numel(), dtype=self.dtype, device=self.device)
        self.multipliers = self._multipliers_or_none()
        self.schedule = _Schedule.start(self.spec, self.rho)
        self.step_count, self.seconds = 0, 0.0
        self.history = {k: [] for k in HISTORY_COLUMNS}
        self.last_good = None
        self.exact = None
        self.best = None                   # the cheapest exact interpolant within tolerance so far, and its check
        self.stopped = None                # the stopping rule's reason, once it has stopped training

    @property
    def averaged(self) -> _Flat:
        """The running average of the weights where there is one, else the iterate."""
        return self.p if self.avg is None else self.avg

    @property
    def reported(self) -> _Flat:
        """The weights that are measured and returned: the exact interpolant made from the average at the last
        check where there is one (`_exact_interpolant`), else the average."""
        return self.averaged if self.exact is None else self.exact

    def _multipliers_or_none(self):
        if self.spec.method != "augmented-lagrangian" or self.samples.online:
            return None
        return torch.zeros_like(self.samples.fixed.Xt)                                 # (d, P)

    # ---- one step

    def step(self) -> None:
        """One Adam step on the method's objective (no host synchronisation)."""
        batch, cols = self._step_batch()
        m = self.samples.M if cols is None else self.per_step                          # samples per point
        lam = self.multipliers if cols is None or self.multipliers is None else self.multipliers[:, cols]
        Z, S, O = _forward(self.p, batch.Yt, self.ws)
        R = O.sub_(batch.Xt)                                                           # (d, B)
        G, coef = self._output_gradient(R, batch, lam, m)
        _gradients(self.p, self.g, batch.Yt, Z, S, G, coef, self.model.skip, self.ws)
        self.adam.step(self.p.flat, self.g.flat, self.schedule.lr)
        if self.avg is not None:
            self.avg.flat.lerp_(self.p.flat, 1 - self.spec.average)
        self._stepped(R, cols)

    def _stepped(self, R: torch.Tensor, cols) -> None:
        """After a step (alone or in a group, batched.py): count it, and every `multiplier_every` steps update
        the multipliers, lam += mu r, from the step's residuals R (d, B) or, on minibatches, all of them."""
        self.step_count += 1
        if self.multipliers is not None and self.step_count % self.spec.multiplier_every == 0:
            if cols is not None:                                                       # every constraint's residual
                full = self.samples.fixed
                R = _forward(self.p, full.Yt, self.ws)[2].sub_(full.Xt)                # (d, P)
            self.multipliers.add_(R, alpha=self.schedule.mu / self.nu)               # lam += mu r

    def _step_batch(self):
        """The step's constraints: all of them, or (train.batch) `per_step` samples of every clean point, drawn
        without replacement within each pass over a point's M samples. Returns (batch, columns or None)."""
        if self.per_step is None:
            return self.samples.batch(), None
        N, M, m = self.N, self.samples.M, self.per_step
        j = self.step_count % (M // m)
        if j == 0:                                                                     # a new pass
            self.order = torch.rand(N, M, generator=self.batch_generator).argsort(dim=1)   # (N, M)
        cols = (self.order[:, j * m:(j + 1) * m] + M * torch.arange(N)[:, None]).reshape(-1)
        cols = cols.to(self.device)
        full = self.samples.fixed
        return _Batch(full.Yt[:, cols], full.Xt[:, cols]), cols

    def _output_gradient(self, R: torch.Tensor, batch: _Batch, lam, m: int):
        """G = d(objective)/d(outputs) (d, B) and the coefficient of C in the objective; m samples per point
        in the batch stand for M: (1/M) sum over a point's M samples is estimated by (1/m) sum over m."""
        if self.spec.method == "weight-decay":
            return R * (2.0 / R.numel()), self.spec.weight_decay
        mu, nu = self.schedule.mu, self.nu
        G = R * (mu / (nu * nu * m))                                                   # d/dO (1/M) mu/2 ||R/nu||^2
        if lam is not None:
            G.add_(lam, alpha=1.0 / (nu * m))
        if batch.mask is not None:
            G.mul_(batch.mask)
        return G, 1.0

    def _solve_outputs(self) -> None:
        """Set the output layer (a, V, c) of the iterate and the average to the exact minimiser of `_loss`
        for their (w, b) (docs/theory.md 9: why the output solve)."""
        batch = self.samples.batch()        # offline: the samples; online: fresh ones, not the probe
        mu, nu, M = self.schedule.mu, self.nu, self.samples.M
        k, weight = mu / (nu * nu * M), 1.0 / (nu * M)                                 # L = ... + k/2 ||h - x||^2
        lam = self.multipliers
        solved = (self.avg, self.p) if self.avg is not None else (self.p,)
        for p in solved:
            system = _OutputSystem(p, batch.Yt, batch.Xt, batch.mask, k=k, skip=self.model.skip)
            theta = system.solve(lam, weight)
            if lam is not None and p is solved[0]:                                     # multipliers for these (w, b)
                for _ in range(_SOLVE_ROUNDS):
                    lam.add_(system.residual(theta).to(lam.dtype), alpha=mu / nu)       # lam += mu r
                    theta = system.solve(lam, weight)
            system.assign(p, theta)

    def _exact_interpolant(self, m: dict) -> _Flat | None:
        """The average with its boundaries moved out of every cloud (`_snap_boundaries`) and its output layer
        solved for exact interpolation: the method of multipliers on the output-layer problem with a stiff
        penalty. Returned when it interpolates within tol (or better than the average, measured as `m`), else
        None. docs/theory.md 9.4."""
        full, N, M = self.samples.fixed, self.N, self.samples.M
        q = _snap_boundaries(self.averaged, full.Yt, N, M)
        if self.d + 1 < M:                                                             # N (d + 1) virtual samples
            F, T = _cloud_features(q, full.Yt, full.Xt, N, M, self.model.skip)
            system = _OutputSystem(q, None, T, None, k=1.0, skip=self.model.skip, stiff=True, features=F)
        else:
            system = _OutputSystem(q, full.Yt, full.Xt, None, k=1.0, skip=self.model.skip, stiff=True)
        lam = torch.zeros_like(system.X)
        theta = system.solve()
        enough = _EXACT_STOP * self.spec.tol * self.unit / self.frame.scale             # training units
        for i in range(_EXACT_ROUNDS_MAX):
            R = system.residual(theta)
            if i >= _EXACT_ROUNDS:
                with single_thread():                  # a full reduction: the same digits on any thread count
                    if float(R.norm()) <= enough:      # bounds every sample's residual (virtual: each cloud's)
                        break
            lam.add_(R, alpha=system.k)
            theta = system.solve(lam, 1.0)
        system.assign(q, theta)
        _, _, O = _forward(q, full.Yt, self.ws)
        with single_thread():
            residual = float(O.sub_(full.Xt).norm(dim=0).max()) * self.frame.scale
        return q if residual <= max(self.spec.tol * self.unit, m["max_residual"]) else None

    # ---- measurements

    @torch.no_grad()
    def measure(self) -> dict:
        """Loss (the method's objective, training coordinates), path cost, max residual and MSE (data units)
        on the training samples (offline) or on a fixed set of fresh samples (online)."""
        batch = self.samples.measured
        p = self.reported
        _, _, O = _forward(p, batch.Yt, self.ws)
        with single_thread():                          # full reductions: the same digits on any thread count
            R = O.sub_(batch.Xt)
            norms = R.norm(dim=0) if batch.mask is None else R.norm(dim=0) * batch.mask[0]
            mse = R.pow(2).mean()
            loss = self._loss(R, mse, p.weight_cost(), batch)
            values = torch.stack([loss, p.path_cost(), norms.max(), mse]).tolist()    # one synchronisation
        s = self.frame.scale                                                           # back to data units
        return {"loss": values[0], "cost": values[1], "max_residual": values[2] * s, "train_mse": values[3] * s * s}

    def _loss(self, R, mse, C, batch) -> torch.Tensor:
        if self.spec.method == "weight-decay":
            return mse + self.spec.weight_decay * C
        Rn = R / self.nu
        if batch.mask is not None:
            Rn = Rn * batch.mask
        loss = C + 0.5 * self.schedule.mu * Rn.pow(2).sum() / self.samples.M
        if self.multipliers is not None:
            loss = loss + (self.multipliers * Rn).sum() / self.samples.M
        return loss

    def record(self, m: dict) -> None:
        wd = self.spec.method == "weight-decay"
        mult = None
        if self.multipliers is not None:
            mult = float(self.multipliers.norm(dim=0).max()) / self.samples.M
        row = dict(step=self.step_count, **m, **{"lambda": self.spec.weight_decay if wd else None},
                   penalty=None if wd else self.schedule.mu, multiplier=mult, lr=self.schedule.lr)
        for k in HISTORY_COLUMNS:
            self.history[k].append(row[k])

    # ---- the loop

    def run(self, *, callback: Callable[[dict], object] | None = None, checkpoint: Path | None = None) -> FitResult:
        """Train until converged or `steps`; raises TrainingError (after a checkpoint) on divergence or Ctrl-C.

        `callback(record)` is called at every check with the history row plus `steps` (the maximum);
        a truthy return value stops training (stop_reason "callback").
        """
        spec, start, reason = self.spec, time.perf_counter() - self.seconds, None
        columns = self.N * (self.samples.M if self.per_step is None else self.per_step)
        work = columns * self.p.K * max(self.d, 8)                                     # a step's N M K max(d, 8)
        self.threads = rule = ThreadRule(self.device, spec.threads, work=work)
        interrupt = _Interrupt()
        with threads_set(rule.next() if rule.active else None), interrupt.installed():
            reason = self.stopped                   # a checkpoint written at the stopping check: stop again
            if self.step_count == 0:
                reason = self._check(callback, checkpoint, start)
            while reason is None and self.step_count < spec.steps:
                n = rule.next()
                if rule.active and n != torch.get_num_threads():
                    torch.set_num_threads(n)
                tick = time.perf_counter()
                self.step()
                rule.record(self.step_count, n, time.perf_counter() - tick)
                if interrupt.requested:
                    self._interrupted(checkpoint, start)
                if self.step_count % spec.check_every == 0 or self.step_count == spec.steps:
                    reason = self._check(callback, checkpoint, start)
        self.seconds = time.perf_counter() - start
        return self._result(reason or "max-steps")

    def _check(self, callback, checkpoint, start) -> str | None:
        averaged = None
        if self.spec.method != "weight-decay":
            if (self.step_count // self.spec.check_every) % self.solve_every == 0:
                self._solve_outputs()
            self.exact = None
            if not self.samples.online:
                averaged = self.measure()
                self.exact = self._exact_interpolant(averaged)
        m = averaged if averaged is not None and self.exact is None else self.measure()
        if self.exact is not None and m["max_residual"] <= self.spec.tol * self.unit and (
                self.best is None or m["cost"] < self.best[1]["cost"]):
            self.best = (_Flat(self.exact.flat.clone(), self.p.K, self.d), m)
        if not all(math.isfinite(v) for v in m.values()) or m["max_residual"] > _EXPLODE * self.ell_data:
            self._diverged(m, checkpoint)
        self.record(m)
        reason = self.stopped = self._decide(m)     # before the snapshot: a resumed run must not decide again
        self.last_good = self.state_dict(time.perf_counter() - start)
        if checkpoint is not None and (self.step_count % self.spec.checkpoint_every == 0):
            save_checkpoint(checkpoint, self.last_good)
        if callback is not None and callback({**m, "step": self.step_count, "steps": self.spec.steps,
                                              "lr": self.schedule.lr, "penalty": self.schedule.mu}):
            return reason or "callback"
        return reason

    def _decide(self, m: dict) -> str | None:
        """The schedule's stopping and stall rule (none at step 0); mu continuation without multipliers."""
        if self.step_count == 0:
            return None
        continuation = self.multipliers is None and self.spec.method != "weight-decay"
        return self.schedule.decide(self.spec, m["cost"], m["max_residual"], self.unit, continuation=continuation,
                                    exact=self.exact is not None)

    def _diverged(self, m: dict, checkpoint) -> None:
        bad = ", ".join(f"{k} = {v:.3g}" for k, v in m.items())
        where = ""
        if checkpoint is not None and self.last_good is not None:
            save_checkpoint(checkpoint, self.last_good)
            where = f"; last good state (step {self.last_good['step']}) saved to {checkpoint}"
        hint = f"lower train.lr (now {self.schedule.lr:g})"
        raise TrainingError(f"diverged at step {self.step_count} ({bad}){where}; {hint}", reason="diverged",
                            history=self.history)

    def _interrupted(self, checkpoint, start) -> None:
        where = ""
        if checkpoint is not None:
            save_checkpoint(checkpoint, self.state_dict(time.perf_counter() - start))
            where = f"; checkpoint saved to {checkpoint}"
        raise TrainingError(f"interrupted at step {self.step_count}{where}", reason="interrupted",
                            history=self.history)

    def _result(self, reason: str) -> FitResult:
        """The returned network: the cheapest exact interpolant within tolerance seen at a check where there is
        one (the snap of 9.4 makes successive ones jitter in cost; each is a feasible network), else the last
        reported one. Its measurements are the stats."""
        chosen, last = self.reported, {k: self.history[k][-1] for k in ("cost", "train_mse", "max_residual")}
        if self.best is not None:
            chosen, last = self.best[0], {k: self.best[1][k] for k in ("cost", "train_mse", "max_residual")}
        net = self.frame.outward(chosen.network(self.model.skip), self.model.skip).balance()
        stats = dict(last, max_residual_rel=last["max_residual"] / self.unit, steps=self.step_count,
                     seconds=self.seconds, converged=reason == "converged", stop_reason=reason,
                     method=self.spec.method, device=str(self.device), dtype=self.spec.dtype,
                     lr=self.schedule.lr, penalty=None if self.spec.method == "weight-decay" else self.schedule.mu,
                     residual_unit=self.unit, min_distance=self.ell_data, rho=self.rho * self.frame.scale,
                     affine_residual=self.affine_residual, affine_residual_rel=self.affine_residual / self.unit,
                     width=self.p.K, threads=self.threads.current if self.threads.active else None,
                     thread_choices=[list(c) for c in self.threads.decisions],
                     mode="online" if self.samples.online else "offline")
        return FitResult(net, {k: list(v) for k, v in self.history.items()}, stats)

    # ---- checkpoints

    def state_dict(self, seconds: float) -> dict:
        """Everything the loop reads, copied (tensors to the CPU)."""
        cpu = lambda t: None if t is None else t.detach().to("cpu", copy=True)  # noqa: E731
        s = self.samples
        return {"version": _CHECKPOINT_VERSION, "step": self.step_count, "seconds": seconds,
                "theta": cpu(self.p.flat), "average": None if self.avg is None else cpu(self.avg.flat),
                "exact": None if self.exact is None else cpu(self.exact.flat),
                "best": None if self.best is None else (cpu(self.best[0].flat), dict(self.best[1])),
                "adam_m": cpu(self.adam.m), "adam_v": cpu(self.adam.v),
                "adam_t": self.adam.t, "multipliers": cpu(self.multipliers),
                "schedule": self.schedule.state_dict(),
                "history": {k: list(v) for k, v in self.history.items()},
                "noise_state": s.generator.get_state() if s.online else None,
                "batch_state": self.batch_generator.get_state(), "order": cpu(self.order),
                "shape": [self.N, self.d, self.p.K, s.M], "method": self.spec.method, "dtype": self.spec.dtype,
                "stopped": self.stopped}

    def load_state_dict(self, state: dict) -> None:
        expect = [self.N, self.d, self.p.K, self.samples.M]
        if state.get("version") != _CHECKPOINT_VERSION or state["shape"] != expect:
            raise TrainingError(f"checkpoint does not match this run (shape {state.get('shape')}, expected {expect})",
                                reason="bad-checkpoint")
        dev = lambda t: t.to(device=self.device, dtype=self.dtype)  # noqa: E731
        self.p.flat.copy_(dev(state["theta"]))
        if self.avg is not None:
            self.avg.flat.copy_(dev(state["average"]))
        self.exact = None if state.get("exact") is None else _Flat(dev(state["exact"]), self.p.K, self.d)
        best = state.get("best")
        self.best = None if best is None else (_Flat(dev(best[0]), self.p.K, self.d), dict(best[1]))
        self.adam.m.copy_(dev(state["adam_m"]))
        self.adam.v.copy_(dev(state["adam_v"]))
        self.adam.t = state["adam_t"]
        if self.multipliers is not None:
            self.multipliers.copy_(dev(state["multipliers"]))
        self.schedule = _Schedule.from_state(state["schedule"])
        self.history = {k: list(state["history"][k]) for k in HISTORY_COLUMNS}
        if self.samples.online:
            self.samples.generator.set_state(state["noise_state"])
        self.batch_generator.set_state(state["batch_state"])
        self.order = state["order"]
        self.step_count, self.seconds = state["step"], state["seconds"]
        self.stopped = state.get("stopped")


def save_checkpoint(path, state: dict) -> None:
    """Write a training state atomically (temporary name, then rename)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path) -> dict:
    """A training state written by save_checkpoint (tensors on the CPU); TrainingError if there is none."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path}", reason="bad-checkpoint")
    return torch.load(path, map_location="cpu", weights_only=False)


# ---------------------------------------------------------------- the entry point


def fit_denoiser(points, data, model: ModelSpec, train: TrainSpec, *, generator: torch.Generator, device="cpu",
                 callback: Callable[[dict], object] | None = None, checkpoint=None, resume=None) -> FitResult:
    """Train a ShallowDenoiser to (near) min-cost interpolation of noisy samples.

    Parameters
    ----------
    points : (N, d) clean points.
    data : (N, M, d) offline samples, or a NoiseSpec for online training (fresh noise every step,
        noise.samples per point per step).
    model, train : the recipe's sections.
    generator : torch.Generator (CPU) seeded by the caller; drives the initial weights and the online noise.
    device : "auto" | "cpu" | "cuda" | "cuda:N" | "mps" or a torch.device.
    callback : called at every check with a dict (step, steps, loss, cost, max_residual, train_mse, lr,
        penalty); a truthy return stops training.
    checkpoint : file for checkpoints (every train.checkpoint_every steps, on divergence: the last good
        state, on Ctrl-C: the current one). None: no checkpoints.
    resume : a checkpoint dict (load_checkpoint) to continue from.

    Returns a FitResult; raises TrainingError on divergence or Ctrl-C (`exc.reason`, `exc.history`).
    """
    if train.method == "ramps":
        return _fit_by_ramps(points, data, model, train, generator=generator, device=device, callback=callback)
    trainer = Trainer(points, data, model, train, generator=generator, device=device)
    if resume is not None:
        trainer.load_state_dict(resume)
    return trainer.run(callback=callback, checkpoint=None if checkpoint is None else Path(checkpoint))


def _fit_by_ramps(points, data, model: ModelSpec, train: TrainSpec, *, generator: torch.Generator, device,
                  callback) -> FitResult:
    """The ramps method (ramps.py, docs/theory.md 9.12) with the trainer's stats, measured on the samples."""
    from .ramps import fit_ramps

    X = check_points(points, name="points")
    S = _check_data(data, X)
    if isinstance(S, NoiseSpec):
        raise RecipeError("train.method ramps needs offline samples (noise.mode: offline): it interpolates a "
                          "fixed set of samples")
    start = time.perf_counter()
    rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))
    net, history, info = fit_ramps(X, S, model, train, rng=rng, callback=callback)
    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    net = net.to(device=dev, dtype=resolve_dtype(train.dtype, dev))
    (N, M, d), seconds = S.shape, time.perf_counter() - start
    Y, T = S.reshape(N * M, d), np.repeat(X, M, axis=0)
    R = net.predict(Y).astype(np.float64) - T
    _, s_max, rho = noise_stats(Y, T)
    ell = residual_unit(X, _sample_scale(X, S))
    unit = tolerance_unit(ell, rho)
    with torch.no_grad():
        cost = float(net.path_cost())
    residual = float(np.linalg.norm(R, axis=1).max())
    steps = history["step"][-1]
    stats = dict(cost=cost, train_mse=float(np.mean(R ** 2)), max_residual=residual, max_residual_rel=residual / unit,
                 steps=steps, seconds=seconds, converged=info["stop_reason"] == "converged",
                 stop_reason=info["stop_reason"], method=train.method, device=str(dev), dtype=train.dtype, lr=None,
                 penalty=None, residual_unit=unit, min_distance=ell, rho=rho, affine_residual=s_max,
                 affine_residual_rel=s_max / unit, width=net.width, threads=train.threads or 1, thread_choices=[],
                 mode="offline", lower_bound=info["lower_bound"], directions=info["directions"],
                 ramps=info["ramps"])
    rows = len(history["step"])
    full = {k: history.get(k, [None] * rows) for k in HISTORY_COLUMNS}
    full["loss"] = list(history["cost"])
    return FitResult(net, full, stats)
