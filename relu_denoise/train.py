"""Training engine: shallow ReLU denoisers to min-cost interpolation (theory.md sections 1 and 5).

Constraints h(y_nm) = x_n for the noisy samples y_nm of each clean point x_n; cost
C(theta) = 1/2 sum_k (||a_k||^2 + ||w_k||^2) on a and w only (b, V, c are free). The tolerance
`tol` is relative to ell, the smallest distance between clean points (theory.md 1; the noise scale
when N = 1). The exact methods penalise residuals r_nm = (h(y_nm) - x_n) / nu relative to
nu = min(ell, max(10 s, tol ell)), s the rms residual of the best affine map y -> x on the samples
(least squares): what the free part V y + c of h reaches at no cost. Why not ell: denoising costs
about 2 per gap whatever the noise (theory.md 2), while that affine map (about the identity in 1-D;
for the digits recipes, d = 64, the map that also removes the noise off the data's plane) misses
each constraint by only about s. Its penalty, mu/2 N (s / nu)^2, is 0.15 in units of ell on
DEFAULT_RECIPE at sigma 0.001 against 18.9 for the interpolant: the affine map is the better point
of the objective, and training stayed there (cost 4.5, residual 4% of ell after 20k steps; the
digits fits, with the output solve below, fell onto it with every a near 0). With nu = 10 s it is
15 and the multipliers do the rest. Why not smaller: a stiffer penalty slows the fits where the
units must also turn (the obtuse triangle of benchmarks/fit_speed.py: 11,900 steps to target with
nu = s against 700 with nu = ell, which 10 s gives there). Below tol ell residuals pass anyway.

Methods (`train.method`), all with Adam on full batches:

    weight-decay          the paper's procedure: MSE + lambda C, MSE the mean of squared errors over all
                          N M d coordinates (torch's MSELoss), the network's own initialisation, the
                          data's coordinates, constant learning rate; the last iterate is returned.
    augmented-lagrangian  L = C + (1/M) sum_nm [ lam_nm . r_nm + mu/2 ||r_nm||^2 ];
                          lam_nm += mu r_nm every `multiplier_every` steps (the method of multipliers, as
                          in the follow-up paper, theory.md 7). Offline only: fresh samples (online) carry
                          no fixed constraints, so online it runs as the penalty method.
    penalty               the same L without multipliers; mu grows by `penalty_growth` at every check
                          while the max residual is above tol / 4 (continuation).

The exact methods (augmented-lagrangian, penalty) also: train in normalised coordinates (`_Frame`:
the clean points centred and scaled into the unit ball; the min-cost interpolant is equivariant
and the path cost invariant), start every unit's boundary through a training sample (K / N units
per clean point, `_kinks_through_samples`), and measure and return an exponential moving average of
the weights (`train.average`), which damps the jitter of Adam and of the multiplier updates.

At every check they set the output layer (a, V, c) to the exact minimiser of the objective for the
current (w, b), a ridge regression (`_solve_output`), for the iterate and for the average: ReLU
features with far-apart boundaries are nearly collinear, so the small output-weight differences
that make a flat zone of radius nu between two nearby boundaries are the directions Adam (a
diagonal preconditioner) moves slowest along; the solve takes them in one step and leaves Adam the
boundaries (w, b). Without it no fit of DEFAULT_RECIPE at sigma 0.001 to 0.01 converged in 20k
steps. Their default learning rate is capped at rho / 10 (training units), rho the largest distance
of a constrained sample from its clean point: Adam moves every parameter, so every boundary, by up
to about lr per step, and the boundaries must settle at the edges of flat zones of radius rho
(uncapped, 1e-2 is 1.5 rho at sigma 0.001: 5 of 6 such fits did not converge in 20k steps, at 1.15
to 1.38 x the closed-form cost).

Schedule (every `check_every` steps): measure the path cost and the max residual (data units);
stop when the residual is under `tol` and the cost has stopped falling; when the residual is above
`tol`, has stopped falling and the cost has nearly settled, decay the learning rate (a stall).
TrainSpec states the rule.

The step is written out by hand (forward, backward, Adam on one flat buffer) because on a CPU
small networks are bound by per-operation overhead: it is about 4x faster than autograd with
torch.optim.Adam (benchmarks/fit_speed.py). `_gradients` is checked against autograd in the tests.
The same code runs on every device; parameters live in (d, K) / (K, d) layouts chosen for fast
skinny matrix products.
"""

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checks import check_points
from .errors import DataError, RecipeError, TrainingError
from .files import atomic_write
from .network import ShallowDenoiser
from .noise import NoiseSpec, draw_noise_torch, resolve_rho
from .recipe import ModelSpec, TrainSpec

HISTORY_COLUMNS = ["step", "loss", "cost", "max_residual", "train_mse", "lambda", "penalty", "multiplier", "lr"]
_EXPLODE = 1e6        # a max residual this many ells away counts as divergence
_CHECKPOINT_VERSION = 1
_PENALTY_TARGET = 0.25  # without multipliers, mu grows while the max residual is above this fraction of tol
_STALL = 10           # a stall needs the cost settled within _STALL * ftol (looser than convergence)
_LR_PER_RADIUS = 0.1  # default lr of the exact methods <= this * rho (training units; docstring)
_NU_PER_AFFINE = 10.0  # penalty unit nu = min(ell, max(this * affine fit's rms residual, tol ell)) (docstring)


# ---------------------------------------------------------------- devices and dtypes


def resolve_device(name: str) -> torch.device:
    """Normalise a device string: auto | cpu | cuda | cuda:N | mps; unavailable ones raise RecipeError."""
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise RecipeError("--device mps: MPS (Apple GPU) is not available on this machine; "
                              "use --device cpu or auto")
        return torch.device("mps")
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return _cuda_device(text)
    raise RecipeError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _cuda_device(text: str) -> torch.device:
    if not torch.cuda.is_available():
        raise RecipeError(f"--device {text}: CUDA is not available on this machine; use --device cpu or auto")
    index = int(text[5:]) if ":" in text else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise RecipeError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return torch.device("cuda", index)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """float64 (default) or float32; MPS has no float64."""
    dtype = {"float64": torch.float64, "float32": torch.float32}.get(str(name))
    if dtype is None:
        raise RecipeError(f"--dtype {name!r}: expected float64 or float32")
    if dtype == torch.float64 and device.type == "mps":
        raise RecipeError("--dtype float64: MPS does not support float64; use --dtype float32")
    return dtype


@contextlib.contextmanager
def cpu_threads(device: torch.device, work: float):
    """One CPU thread while a step is small, the count restored afterwards.

    `work` = N M K max(d, 8). Measured on 2 idle cores: at work 6e5 (the triangles) one thread is
    10% faster than two, at 2e6 they tie, at 6e6 two are 1.6x faster and at 6e7 2x. With another
    job on one core, two threads made small steps up to 20x slower.
    """
    before = torch.get_num_threads()
    if device.type == "cpu" and work < 3e6:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- the problem


def residual_unit(points: np.ndarray, noise_scale: float | None = None) -> float:
    """ell: the smallest distance between clean points (the noise scale, else 1, for a single point)."""
    X = check_points(points, name="points")
    if len(X) < 2:
        return float(noise_scale or 1.0)
    gaps = [np.linalg.norm(X[i] - X[j]) for i, j in combinations(range(len(X)), 2)]
    dmin = float(min(gaps))
    if dmin == 0:
        raise DataError("points: two clean points coincide; remove duplicates")
    return dmin


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
    """Online Gaussian noise has no exact interpolant: constraints cover samples within rho (theory.md 1)."""
    if noise.distribution != "gaussian":
        return None
    rho = resolve_rho(noise, "auto" if noise.rho == "empirical" else None)
    return float(rho)


# ---------------------------------------------------------------- parameters in one flat buffer


class _Flat:
    """a, w, b, V, c as views of one flat tensor: At (d, K) = a^T, w (K, d), b (K, 1), V (d, d), c (d, 1).

    The first 2 K d entries (a and w) are the regularised ones.
    """

    def __init__(self, flat: torch.Tensor, K: int, d: int):
        self.flat, self.K, self.d = flat, K, d
        self.At, self.w, self.b, self.V, self.c = self.views(flat)
        self.n_reg = 2 * K * d

    def views(self, t: torch.Tensor):
        K, d = self.K, self.d
        sizes = (d * K, K * d, K, d * d, d)
        parts = torch.split(t, sizes)
        return parts[0].view(d, K), parts[1].view(K, d), parts[2].view(K, 1), parts[3].view(d, d), parts[4].view(d, 1)

    @classmethod
    def from_network(cls, net: ShallowDenoiser) -> "_Flat":
        K, d = net.width, net.dim
        parts = [net.a.detach().T.reshape(-1), net.w.detach().reshape(-1), net.b.detach(),
                 net.V.detach().reshape(-1), net.c.detach()]
        return cls(torch.cat(parts).clone(), K, d)

    def network(self, skip: bool) -> ShallowDenoiser:
        net = ShallowDenoiser.from_weights(self.At.T.cpu(), self.w.cpu(), self.b[:, 0].cpu(),
                                           self.V.cpu() if skip else None, self.c[:, 0].cpu(),
                                           dtype=self.flat.dtype, device=self.flat.device)
        return net

    def weight_cost(self) -> torch.Tensor:
        return 0.5 * self.flat[: self.n_reg].pow(2).sum()

    def path_cost(self) -> torch.Tensor:
        return (self.At.norm(dim=0) * self.w.norm(dim=1)).sum()


class _Workspace:
    """Preallocated (K, P) buffers: fresh multi-megabyte temporaries every step cost page faults."""

    def __init__(self):
        self.shape, self.Z, self.S, self.D = None, None, None, None

    def buffers(self, like: torch.Tensor, K: int, P: int):
        if self.shape != (K, P, like.dtype, like.device):
            self.shape = (K, P, like.dtype, like.device)
            self.Z, self.S, self.D = (like.new_empty(K, P) for _ in range(3))
        return self.Z, self.S, self.D


def _forward(p: _Flat, Yt: torch.Tensor, ws: _Workspace):
    """h for inputs Yt (d, P): pre-activations Z (K, P), activations S (K, P), outputs O (d, P)."""
    Z, S, _ = ws.buffers(Yt, p.K, Yt.shape[1])
    torch.addmm(p.b, p.w, Yt, out=Z)                # (K, P)
    torch.clamp_min(Z, 0, out=S)                    # (K, P)
    O = torch.addmm(p.c, p.At, S).addmm_(p.V, Yt)   # (d, P)
    return Z, S, O


def _gradients(p: _Flat, g: _Flat, Yt, Z, S, G: torch.Tensor, coef: float, skip: bool, ws: _Workspace) -> None:
    """Write into g the gradient of  sum(G * O) + coef * C  for the forward pass (Z, S) of Yt; G (d, P)."""
    torch.mm(G, S.T, out=g.At)                                         # (d, K)
    dZ = torch.mm(p.At.T, G, out=ws.D)                                 # (K, P)
    torch.ops.aten.threshold_backward.grad_input(dZ, Z, 0, grad_input=dZ)   # dZ = 0 where Z <= 0, in place
    torch.mm(dZ, Yt.T, out=g.w)                                        # (K, d)
    torch.sum(dZ, 1, keepdim=True, out=g.b)
    if skip:
        torch.mm(G, Yt.T, out=g.V)
    torch.sum(G, 1, keepdim=True, out=g.c)
    g.flat[: p.n_reg].add_(p.flat[: p.n_reg], alpha=coef)


class _Adam:
    """Adam (Kingma and Ba) on one flat buffer, with bias correction; same constants as torch.optim.Adam."""

    def __init__(self, n: int, *, dtype, device, betas=(0.9, 0.999), eps=1e-8):
        self.m = torch.zeros(n, dtype=dtype, device=device)
        self.v = torch.zeros(n, dtype=dtype, device=device)
        self.t, self.betas, self.eps = 0, betas, eps

    def step(self, theta: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
        theta.addcdiv_(self.m, denom, value=-lr / (1 - b1 ** self.t))


# ---------------------------------------------------------------- schedule and stopping rule


@dataclass
class _Schedule:
    """Learning rate, penalty mu and the plateau tests (TrainSpec documents the rule)."""

    lr: float
    mu: float
    costs: list = field(default_factory=list)       # path cost at the checks since the last stall
    residuals: list = field(default_factory=list)   # max residual at the same checks
    stalls: int = 0

    def settled(self, spec: TrainSpec, ftol: float) -> bool:
        """Has the path cost stopped moving: the minima of the last two windows of `patience` checks
        within ftol (relative) of each other, and the last cost within _STALL ftol of its window's minimum?
        (A rising cost has not settled: the constraints still pull. The minima alone passed a cost that
        turned up at the window boundary: a stop at 1.021 x the closed form with the residual rising.)"""
        p, c = spec.patience, self.costs
        if len(c) < 2 * p:
            return False
        recent, before = min(c[-p:]), min(c[-2 * p:-p])
        floor = 1e-2                                     # a cost near 0 settles too
        rising = c[-1] - recent > _STALL * ftol * max(recent, floor)
        return abs(recent - before) <= ftol * max(before, floor) and not rising

    def residual_falling(self, spec: TrainSpec) -> bool:
        """Has the max residual fallen by a third or more between the last two windows?"""
        return self._fell(self.residuals, spec.patience, 2 / 3)

    @staticmethod
    def _fell(values: list, p: int, factor: float) -> bool:
        if len(values) < 2 * p:
            return True
        return min(values[-p:]) < factor * min(values[-2 * p:-p])

    def stall(self, spec: TrainSpec) -> None:
        self.stalls += 1
        self.costs, self.residuals = [], []
        if spec.method != "weight-decay":          # the paper's procedure has nothing to adapt
            self.lr = max(self.lr * spec.lr_decay, min(spec.lr_min, self.lr))


# ---------------------------------------------------------------- results


@dataclass
class FitResult:
    """A trained (balanced) network, its history (column -> list, see HISTORY_COLUMNS) and summary stats.

    stats: cost (path cost), train_mse, max_residual, max_residual_rel (in units of ell), steps,
    seconds, converged, stop_reason ("converged" | "max-steps" | "callback"), method, device,
    dtype, lr, penalty, residual_unit.
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
        self.spec, self.model = train, model
        X = check_points(points, name="points")
        self.N, self.d = X.shape
        data = _check_data(data, X)
        noise_scale = data.scale if isinstance(data, NoiseSpec) else _sample_scale(X, data)
        self.frame = _Frame.of(X, normalise=train.method != "weight-decay", fallback=noise_scale)
        self.ell_data = residual_unit(X, noise_scale)                                  # data units
        if not isinstance(data, NoiseSpec):
            data = self.frame.inward(data)
        self.points = torch.as_tensor(self.frame.inward(X), dtype=self.dtype).to(self.device)   # (N, d)
        net = ShallowDenoiser(model.width, self.d, skip=model.skip, dtype=self.dtype, device=self.device,
                              generator=generator, init_scale=train.init_scale)
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))  # online noise
        self.samples = _Samples(self.points, data, seed=seed, scale=self.frame.scale, dtype=self.dtype,
                                device=self.device)
        s, self.rho = _noise_units(self.samples.probe if self.samples.online else self.samples.fixed)
        ell = self.ell_data / self.frame.scale                                         # training units
        self.nu = min(ell, max(_NU_PER_AFFINE * s, train.tol * ell))                   # penalty unit (docstring)
        if train.method != "weight-decay":            # the paper's method keeps the network's own init
            _kinks_through_samples(net, self.samples, generator)
        self.p = _Flat.from_network(net)
        self.g = _Flat(torch.zeros_like(self.p.flat), self.p.K, self.d)
        self.ws = _Workspace()
        averaged = train.method != "weight-decay" and train.average > 0
        self.avg = _Flat(self.p.flat.clone(), self.p.K, self.d) if averaged else None
        self.adam = _Adam(self.p.flat.numel(), dtype=self.dtype, device=self.device)
        self.multipliers = self._multipliers_or_none()
        self.schedule = _Schedule(self._initial_lr(), train.penalty)
        self.step_count, self.seconds = 0, 0.0
        self.history = {k: [] for k in HISTORY_COLUMNS}
        self.last_good = None

    def _initial_lr(self) -> float:
        """train.lr; by default for the exact methods 1e-2 capped at rho / 10 (module docstring)."""
        if self.spec.lr is not None or self.spec.method == "weight-decay":
            return self.spec.learning_rate
        return min(self.spec.learning_rate, max(_LR_PER_RADIUS * self.rho, self.spec.lr_min))

    @property
    def reported(self) -> _Flat:
        """The weights that are measured and returned: the running average where there is one."""
        return self.p if self.avg is None else self.avg

    def _multipliers_or_none(self):
        if self.spec.method != "augmented-lagrangian" or self.samples.online:
            return None
        return torch.zeros_like(self.samples.fixed.Xt)                                 # (d, P)

    # ---- one step

    def step(self) -> None:
        """One Adam step on the method's objective (no host synchronisation)."""
        batch = self.samples.batch()
        Z, S, O = _forward(self.p, batch.Yt, self.ws)
        R = O.sub_(batch.Xt)                                                           # (d, P)
        G, coef = self._output_gradient(R, batch)
        _gradients(self.p, self.g, batch.Yt, Z, S, G, coef, self.model.skip, self.ws)
        self.adam.step(self.p.flat, self.g.flat, self.schedule.lr)
        if self.avg is not None:
            self.avg.flat.lerp_(self.p.flat, 1 - self.spec.average)
        self.step_count += 1
        if self.multipliers is not None and self.step_count % self.spec.multiplier_every == 0:
            self.multipliers.add_(R, alpha=self.schedule.mu / self.nu)

    def _output_gradient(self, R: torch.Tensor, batch: _Batch):
        """G = d(objective)/d(outputs) (d, P) and the coefficient of C in the objective."""
        if self.spec.method == "weight-decay":
            return R * (2.0 / R.numel()), self.spec.weight_decay
        mu, nu, M = self.schedule.mu, self.nu, self.samples.M
        G = R * (mu / (nu * nu * M))                                                   # d/dO (1/M) mu/2 ||R/nu||^2
        if self.multipliers is not None:
            G.add_(self.multipliers, alpha=1.0 / (nu * M))
        if batch.mask is not None:
            G.mul_(batch.mask)
        return G, 1.0

    @torch.no_grad()
    def _solve_output(self, p: _Flat, batch: _Batch) -> None:
        """Set (a, V, c) of p to the exact minimiser of the objective (`_loss`) for p's fixed (w, b).

        With features f = [relu(w y + b); y; 1] (K + d + 1, P; no y rows without skip), outputs
        h = Theta^T f and k = mu / (nu^2 M), the objective 1/2 ||a||^2 + sum_nm [lam_nm . r_nm / M +
        mu/2 ||r_nm||^2 / M] (r = (h - x) / nu, masked samples left out) is quadratic in Theta; its
        minimiser solves (k F F^T + diag(1 on the a rows)) Theta = k F X^T - F Lam^T / (nu M).
        Solved in float64 (the system is ill-conditioned, float32 loses it) with a 1e-12 relative ridge.
        """
        K, d, skip = p.K, self.d, self.model.skip
        dev = torch.device("cpu") if p.flat.device.type == "mps" else p.flat.device   # MPS has no float64
        f64 = lambda t: t.to(device=dev, dtype=torch.float64)  # noqa: E731
        Yt = f64(batch.Yt)                                                             # (d, P)
        S = torch.relu(torch.addmm(f64(p.b), f64(p.w), Yt))                            # (K, P)
        F = torch.cat([S, Yt, torch.ones_like(Yt[:1])] if skip else [S, torch.ones_like(Yt[:1])])   # (K+d+1, P)
        Fm = F if batch.mask is None else F * f64(batch.mask)
        k = self.schedule.mu / (self.nu * self.nu * self.samples.M)
        H = k * (Fm @ F.T)                                                             # (K+d+1, K+d+1)
        H.diagonal()[:K] += 1.0
        H.diagonal().add_(1e-12 * float(H.diagonal().max()))
        rhs = k * (Fm @ f64(batch.Xt).T)                                               # (K+d+1, d)
        if self.multipliers is not None:
            rhs.sub_(F @ f64(self.multipliers).T, alpha=1.0 / (self.nu * self.samples.M))
        theta = torch.linalg.solve(H, rhs).to(device=p.flat.device, dtype=p.flat.dtype)   # (K+d+1, d)
        p.At.copy_(theta[:K].T)
        if skip:
            p.V.copy_(theta[K:K + d].T)
        p.c.copy_(theta[-1:].T)

    # ---- measurements

    @torch.no_grad()
    def measure(self) -> dict:
        """Loss (the method's objective, training coordinates), path cost, max residual and MSE (data units)
        on the training samples (offline) or on a fixed set of fresh samples (online)."""
        batch = self.samples.probe if self.samples.online else self.samples.fixed
        p = self.reported
        _, _, O = _forward(p, batch.Yt, self.ws)
        R = O.sub_(batch.Xt)
        norms = R.norm(dim=0) if batch.mask is None else R.norm(dim=0) * batch.mask[0]
        mse = R.pow(2).mean()
        C = p.weight_cost()
        loss = self._loss(R, mse, C, batch)
        values = torch.stack([loss, p.path_cost(), norms.max(), mse]).tolist()    # one synchronisation
        s = self.frame.scale                                                           # back to data units
        return dict(zip(("loss", "cost", "max_residual", "train_mse"), (values[0], values[1], values[2] * s,
                                                                          values[3] * s * s)))

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
        work = self.samples.M * self.N * self.p.K * max(self.d, 8)
        interrupt = _Interrupt()
        with cpu_threads(self.device, work), interrupt.installed():
            if self.step_count == 0:
                reason = self._check(callback, checkpoint, start)
            while reason is None and self.step_count < spec.steps:
                self.step()
                if interrupt.requested:
                    self._interrupted(checkpoint, start)
                if self.step_count % spec.check_every == 0 or self.step_count == spec.steps:
                    reason = self._check(callback, checkpoint, start)
        self.seconds = time.perf_counter() - start
        return self._result(reason or "max-steps")

    def _check(self, callback, checkpoint, start) -> str | None:
        if self.spec.method != "weight-decay":
            batch = self.samples.batch()        # offline: the samples; online: fresh ones, not the probe
            for p in (self.p, self.avg):
                if p is not None:
                    self._solve_output(p, batch)
        m = self.measure()
        if not all(math.isfinite(v) for v in m.values()) or m["max_residual"] > _EXPLODE * self.ell_data:
            self._diverged(m, checkpoint)
        self.record(m)
        reason = self._decide(m)                    # before the snapshot: a resumed run must not decide again
        self.last_good = self.state_dict(time.perf_counter() - start)
        if checkpoint is not None and (self.step_count % self.spec.checkpoint_every == 0):
            save_checkpoint(checkpoint, self.last_good)
        if callback is not None and callback({**m, "step": self.step_count, "steps": self.spec.steps,
                                              "lr": self.schedule.lr, "penalty": self.schedule.mu}):
            return reason or "callback"
        return reason

    def _decide(self, m: dict) -> str | None:
        sched = self.schedule
        if self.step_count == 0:
            return None
        sched.costs.append(m["cost"])
        sched.residuals.append(m["max_residual"])
        interpolates = m["max_residual"] <= self.spec.tol * self.ell_data
        if interpolates and sched.settled(self.spec, self.spec.ftol):
            return "converged"
        target = _PENALTY_TARGET * self.spec.tol * self.ell_data
        if m["max_residual"] > target and self.multipliers is None and self.spec.method != "weight-decay":
            sched.mu = min(sched.mu * self.spec.penalty_growth, self.spec.penalty_max)   # continuation
        stuck = sched.settled(self.spec, _STALL * self.spec.ftol) and not sched.residual_falling(self.spec)
        if not interpolates and stuck:
            sched.stall(self.spec)
        return None

    def _diverged(self, m: dict, checkpoint) -> None:
        bad = ", ".join(f"{k} = {v:.3g}" for k, v in m.items())
        where = ""
        if checkpoint is not None and self.last_good is not None:
            save_checkpoint(checkpoint, self.last_good)
            where = f"; last good state (step {self.last_good['step']}) saved to {checkpoint}"
        hint = f"lower train.lr (now {self.schedule.lr:g})"
        raise _failure(f"diverged at step {self.step_count} ({bad}){where}; {hint}", "diverged", self.history)

    def _interrupted(self, checkpoint, start) -> None:
        where = ""
        if checkpoint is not None:
            save_checkpoint(checkpoint, self.state_dict(time.perf_counter() - start))
            where = f"; checkpoint saved to {checkpoint}"
        raise _failure(f"interrupted at step {self.step_count}{where}", "interrupted", self.history)

    def _result(self, reason: str) -> FitResult:
        net = self.frame.outward(self.reported.network(self.model.skip), self.model.skip).balance()
        last = {k: self.history[k][-1] for k in ("cost", "train_mse", "max_residual")}
        stats = dict(last, max_residual_rel=last["max_residual"] / self.ell_data, steps=self.step_count,
                     seconds=self.seconds, converged=reason == "converged", stop_reason=reason,
                     method=self.spec.method, device=str(self.device), dtype=self.spec.dtype,
                     lr=self.schedule.lr, penalty=None if self.spec.method == "weight-decay" else self.schedule.mu,
                     residual_unit=self.ell_data, mode="online" if self.samples.online else "offline")
        return FitResult(net, {k: list(v) for k, v in self.history.items()}, stats)

    # ---- checkpoints

    def state_dict(self, seconds: float) -> dict:
        """Everything the loop reads, copied (tensors to the CPU)."""
        cpu = lambda t: None if t is None else t.detach().to("cpu", copy=True)  # noqa: E731
        s = self.samples
        return {"version": _CHECKPOINT_VERSION, "step": self.step_count, "seconds": seconds,
                "theta": cpu(self.p.flat), "average": None if self.avg is None else cpu(self.avg.flat),
                "adam_m": cpu(self.adam.m), "adam_v": cpu(self.adam.v),
                "adam_t": self.adam.t, "multipliers": cpu(self.multipliers),
                "schedule": {"lr": self.schedule.lr, "mu": self.schedule.mu, "costs": list(self.schedule.costs),
                             "residuals": list(self.schedule.residuals),
                             "stalls": self.schedule.stalls},
                "history": {k: list(v) for k, v in self.history.items()},
                "noise_state": s.generator.get_state() if s.online else None,
                "shape": [self.N, self.d, self.p.K, s.M], "method": self.spec.method, "dtype": self.spec.dtype}

    def load_state_dict(self, state: dict) -> None:
        expect = [self.N, self.d, self.p.K, self.samples.M]
        if state.get("version") != _CHECKPOINT_VERSION or state["shape"] != expect:
            raise _failure(f"checkpoint does not match this run (shape {state.get('shape')}, expected {expect})",
                           "bad-checkpoint")
        dev = lambda t: t.to(device=self.device, dtype=self.dtype)  # noqa: E731
        self.p.flat.copy_(dev(state["theta"]))
        if self.avg is not None:
            self.avg.flat.copy_(dev(state["average"]))
        self.adam.m.copy_(dev(state["adam_m"]))
        self.adam.v.copy_(dev(state["adam_v"]))
        self.adam.t = state["adam_t"]
        if self.multipliers is not None:
            self.multipliers.copy_(dev(state["multipliers"]))
        sched = state["schedule"]
        self.schedule = _Schedule(sched["lr"], sched["mu"], list(sched["costs"]), list(sched["residuals"]),
                                  sched["stalls"])
        self.history = {k: list(state["history"][k]) for k in HISTORY_COLUMNS}
        if self.samples.online:
            self.samples.generator.set_state(state["noise_state"])
        self.step_count, self.seconds = state["step"], state["seconds"]


def _failure(message: str, reason: str, history: dict | None = None) -> TrainingError:
    """A TrainingError carrying `reason` (diverged | interrupted | bad-checkpoint) and the history so far."""
    exc = TrainingError(message)
    exc.reason = reason
    exc.history = {k: list(v) for k, v in (history or {}).items()}
    return exc


@torch.no_grad()
def _kinks_through_samples(net: ShallowDenoiser, samples: "_Samples", generator: torch.Generator) -> None:
    """Set b_k = -w_k^T z_k for a training sample z_k: every unit's boundary crosses the data.

    z_k is a random sample of clean point n_k, the n_k running through random orders of the N points, so
    each point gets floor(K / N) or ceil(K / N) boundaries. Drawn from all N M samples at once, one run in
    about ten of 64 units over 10 points left a point with one boundary or none, and such a point stayed
    unfitted: DEFAULT_RECIPE at sigma 0.01 failed for 1 of 6 seeds, none of 18 with this draw.
    """
    Yt = (samples.probe if samples.online else samples.fixed).Yt                       # (d, P), point-major
    N, M, K = samples.points.shape[0], samples.M, net.width
    order = torch.cat([torch.randperm(N, generator=generator) for _ in range(-(-K // N))])[:K]   # (K,)
    idx = (order * M + torch.randint(0, M, (K,), generator=generator)).to(Yt.device)
    net.b.copy_(-(net.w * Yt[:, idx].T).sum(dim=1))


def _check_data(data, X: np.ndarray):
    """Offline samples as a float64 (N, M, d) array, or the NoiseSpec of online training."""
    if isinstance(data, NoiseSpec):
        return data
    S = np.asarray(data, dtype=np.float64)
    N, d = X.shape
    if S.ndim != 3 or S.shape[0] != N or S.shape[2] != d or S.shape[1] < 1:
        raise DataError(f"samples: expected shape ({N}, M, {d}), got {S.shape}")
    if not np.all(np.isfinite(S)):
        raise DataError("samples: contains NaN or inf values")
    return S


def _sample_scale(X: np.ndarray, data) -> float:
    S = np.asarray(data, dtype=np.float64)
    return float(np.sqrt(np.mean((S - X[:, None, :]) ** 2)) or 1.0) if S.ndim == 3 else 1.0


def _noise_units(batch: _Batch) -> tuple[float, float]:
    """(s, rho) of the constrained samples (mask kept), in their own units: s the rms residual
    ||x - (A y + c)|| of the best affine map (least squares: the free part V y + c of h), rho the
    largest noise norm ||y - x||."""
    Y, X = batch.Yt.T.cpu().double().numpy(), batch.Xt.T.cpu().double().numpy()       # (P, d)
    if batch.mask is not None:
        keep = batch.mask[0].cpu().numpy() > 0
        Y, X = Y[keep], X[keep]
    if not len(Y):
        return 0.0, 0.0
    A = np.hstack([Y, np.ones((len(Y), 1))])                                           # (P, d + 1)
    theta = np.linalg.lstsq(A, X, rcond=None)[0]                                       # (d + 1, d)
    s = float(np.sqrt(np.mean(np.sum((A @ theta - X) ** 2, axis=1))))
    return s, float(np.linalg.norm(Y - X, axis=1).max())


def save_checkpoint(path, state: dict) -> None:
    """Write a training state atomically (temporary name, then rename)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise _failure(f"no checkpoint at {path}", "bad-checkpoint")
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

    Returns a FitResult; raises TrainingError on divergence or Ctrl-C (`exc.history` holds the history).
    """
    trainer = Trainer(points, data, model, train, generator=generator, device=device)
    if resume is not None:
        trainer.load_state_dict(resume)
    return trainer.run(callback=callback, checkpoint=None if checkpoint is None else Path(checkpoint))
