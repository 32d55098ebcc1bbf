"""One fit being trained: its frozen problem, its state (exactly what a checkpoint saves) and its checks.

Constraints h(y_nm) = x_n for the noisy samples y_nm of each clean point x_n, at least cost
C = 1/2 sum_k (||a_k||^2 + ||w_k||^2) (docs/theory.md 1), within train.tol x tol_unit (docs/training.md 1).
Objectives, Adam (train/methods.py says which method does what):

    weight-decay          the paper's procedure: MSE + lambda C, MSE over all N M d coordinates (torch's
                          MSELoss), the network's own initialisation and the data's coordinates, full batches,
                          the last iterate.
    exact methods         L = C + (1/M) sum_nm [lam_nm . r_nm + mu/2 ||r_nm||^2],  r_nm = (h(y_nm) - x_n) / nu;
                          lam_nm += mu r_nm every `multiplier_every` steps (augmented-lagrangian, offline);
                          without multipliers mu grows by continuation (penalty; online).

The exact methods train in normalised coordinates, start every unit in the data's hull with its boundary
through a sample, solve the output layer at the checks, keep a moving average of the weights and, offline,
measure and return an exact interpolant made from it (docs/training.md 3-8). The step itself is written
once, for a group of fits (loop.py); a fit alone is a group of one.
"""

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checks import check_points
from ..errors import RecipeError, RunError, TrainingError
from ..files import atomic_write
from ..network import ShallowDenoiser
from ..recipe import ModelSpec, TrainSpec
from .devices import resolve_device, resolve_dtype, single_thread
from .engine import _cloud_features, _Flat, _forward, _OutputSystem, _snap_boundaries, _Workspace
from .methods import method as method_row
from .problem import Constraints, Frame, OfflineSamples, OnlineNoise, training_problem
from .schedule import _Schedule
from .start import choose_width, start_units
from .stats import HISTORY_COLUMNS, FitResult, FitStats

_EXPLODE = 1e6         # a max residual this many ells away counts as divergence
_CHECKPOINT_VERSION = 2
_SOLVE_ROUNDS = 1      # multiplier updates on the average's exact output layer at each check (training.md 4) ...
_EXACT_ROUNDS = 3      # multiplier rounds of the exact interpolant's output solve (docs/training.md 4), and more,
_EXACT_ROUNDS_MAX = 50  # up to this, until the residual's norm is within _EXACT_STOP x tol (large N needs them)
_EXACT_STOP = 0.1


@dataclass
class TrainingState:
    """What changes while a fit trains; exactly what its checkpoint saves (`state_dict`)."""

    p: _Flat                             # the iterate
    avg: _Flat | None                    # the moving average of the weights (exact methods)
    adam_m: torch.Tensor                 # Adam's moments (n,)
    adam_v: torch.Tensor
    multipliers: torch.Tensor | None     # (d, P) one per constraint (augmented-lagrangian, offline)
    schedule: _Schedule
    noise: torch.Generator | None        # online: the training noise stream
    batches: torch.Generator             # the minibatches' order
    adam_t: int = 0
    step: int = 0
    seconds: float = 0.0
    exact: _Flat | None = None           # the exact interpolant made at the last check (offline exact methods)
    best: tuple | None = None            # (_Flat, its measurements): the cheapest exact interpolant within tol
    order: torch.Tensor | None = None    # (N, M) this pass's order of each point's samples
    stopped: str | None = None           # the stopping rule's reason, once it has stopped training
    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_COLUMNS})


class Trainer:
    """One fit: problem, state, the per-member parts of the step (batch, constants, multipliers), checks,
    checkpoints that resume bit for bit on the same device, and the result."""

    def __init__(self, points, data: OfflineSamples | OnlineNoise, model: ModelSpec, train: TrainSpec, *,
                 generator: torch.Generator, device="cpu"):
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.dtype = resolve_dtype(train.dtype, self.device)
        self.method, self.spec, self.model = method_row(train.method), train, model
        if not self.method.trains:
            raise RecipeError(f"train.method {train.method} trains nothing: train.fit solves it")
        X = check_points(points, name="points")
        N, d = X.shape
        frame = Frame.of(X, normalise=self.method.normalises, fallback=data.noise_scale(X))
        width = choose_width(N, d) if model.width is None else model.width
        net = ShallowDenoiser(width, d, skip=model.skip, dtype=self.dtype, device=self.device, generator=generator,
                              init_scale=train.init_scale)
        noise_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        self.problem = pr = training_problem(X, data, self.method, train, width=width, frame=frame,
                                             noise_seed=noise_seed, dtype=self.dtype, device=self.device)
        if self.method.exact:                  # the paper's method keeps the network's own initialisation
            start_units(net, pr, generator)
        batch_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        self.state = self._start(net, noise_seed, batch_seed)
        self.g = _Flat(torch.zeros_like(self.state.p.flat), width, d)                   # scratch: the gradient
        self.ws = _Workspace()
        self.last_good = None                  # the state at the last check that measured finite numbers

    def _start(self, net: ShallowDenoiser, noise_seed: int, batch_seed: int) -> TrainingState:
        pr, spec = self.problem, self.spec
        p = _Flat.from_network(net)
        n = p.flat.numel()
        noise = None
        if pr.online:
            noise = torch.Generator(device=self.device).manual_seed(noise_seed)
        lam = torch.zeros_like(pr.fixed.Xt) if self.method.uses_multipliers(pr.online) else None   # (d, P)
        avg = _Flat(p.flat.clone(), p.K, p.d) if self.method.averages and spec.average > 0 else None
        zeros = lambda: torch.zeros(n, dtype=self.dtype, device=self.device)  # noqa: E731
        return TrainingState(p, avg, zeros(), zeros(), lam, _Schedule.start(spec, pr.noise_radius_t), noise,
                             torch.Generator().manual_seed(batch_seed))

    @property
    def K(self) -> int:
        return self.state.p.K

    @property
    def averaged(self) -> _Flat:
        """The running average of the weights where there is one, else the iterate."""
        return self.state.p if self.state.avg is None else self.state.avg

    @property
    def reported(self) -> _Flat:
        """The weights measured and returned: the exact interpolant made from the average at the last check
        where there is one (`_exact_interpolant`), else the average."""
        return self.averaged if self.state.exact is None else self.state.exact

    def group_key(self) -> tuple:
        """What fits stepped together must share: shapes, samples per step, device, dtype, sections."""
        pr = self.problem
        return (pr.N, pr.d, pr.M, self.K, pr.per_step, str(self.device), self.dtype, self.spec.model_dump_json(),
                self.model.model_dump_json())

    # ---- the member's parts of a step (loop.py runs the step)

    def next_batch(self) -> tuple[Constraints, torch.Tensor | None]:
        """The step's constraints: all, or `per_step` samples of every clean point, drawn without replacement
        within each pass over a point's M samples. Returns (constraints, columns or None for all)."""
        pr, st = self.problem, self.state
        if pr.per_step is None:
            return pr.draw(st.noise), None
        N, M, m = pr.N, pr.M, pr.per_step
        j = st.step % (M // m)
        if j == 0:                                                                     # a new pass
            st.order = torch.rand(N, M, generator=st.batches).argsort(dim=1)             # (N, M)
        cols = (st.order[:, j * m:(j + 1) * m] + M * torch.arange(N)[:, None]).reshape(-1).to(self.device)
        return Constraints(pr.fixed.Yt[:, cols], pr.fixed.Xt[:, cols]), cols

    def gradient_scales(self, columns: int) -> tuple[float, float | None, float]:
        """(residual scale, multiplier scale or None, cost coefficient) of d(objective)/d(outputs) for a step on
        `columns` constraints: G = R x the first (+ lam x the second), and the gradient of coef x C.
        m samples per point stand for M: (1/M) sum over a point's M samples is estimated by (1/m) sum over m."""
        if not self.method.exact:
            return 2.0 / (self.problem.d * columns), None, self.spec.weight_decay   # MSELoss over (d, P)
        st, nu = self.state, self.problem.nu_t
        m = self.problem.M if self.problem.per_step is None else self.problem.per_step
        return st.schedule.mu / (nu * nu * m), None if st.multipliers is None else 1.0 / (nu * m), 1.0

    def after_step(self, R: torch.Tensor, cols) -> None:
        """Count the step and, every `multiplier_every` steps, update the multipliers lam += mu r from the
        step's residuals R (d, B) or, on minibatches, all of them."""
        st = self.state
        st.step += 1
        if st.multipliers is not None and st.step % self.spec.multiplier_every == 0:
            if cols is not None:                                                       # every constraint's residual
                full = self.problem.fixed
                R = _forward(st.p, full.Yt, self.ws)[2].sub_(full.Xt)                  # (d, P)
            st.multipliers.add_(R, alpha=st.schedule.mu / self.problem.nu_t)           # lam += mu r

    # ---- checks

    def check(self, callback, checkpoint: Path | None, start: float) -> str | None:
        """Measure, record, decide: the stopping rule's reason or None. Raises TrainingError on divergence."""
        st, spec = self.state, self.spec
        averaged = None
        if self.method.exact:
            if (st.step // spec.check_every) % self.problem.solve_every == 0:
                self._solve_outputs()
            st.exact = None
            if not self.problem.online:
                averaged = self.measure()
                st.exact = self._exact_interpolant(averaged)
        m = averaged if averaged is not None and st.exact is None else self.measure()
        if st.exact is not None and m["max_residual"] <= spec.tol * self.problem.tol_unit and (
                st.best is None or m["cost"] < st.best[1]["cost"]):
            st.best = (_Flat(st.exact.flat.clone(), self.K, self.problem.d), {**m, "step": st.step})
        if not all(math.isfinite(v) for v in m.values()) or m["max_residual"] > _EXPLODE * self.problem.ell:
            raise self._diverged(m, checkpoint)
        self._record(m)
        reason = st.stopped = self._decide(m)     # before the snapshot: a resumed run must not decide again
        self.last_good = self.state_dict(time.perf_counter() - start)
        if checkpoint is not None and st.step % spec.checkpoint_every == 0:
            save_checkpoint(checkpoint, self.last_good)
        if callback is not None and callback({**m, "step": st.step, "steps": spec.steps, "lr": st.schedule.lr,
                                              "penalty": st.schedule.mu}):
            return reason or "callback"
        return reason

    def _decide(self, m: dict) -> str | None:
        """The schedule's stopping and stall rule (none at step 0); mu continuation without multipliers."""
        if self.state.step == 0:
            return None
        return self.state.schedule.decide(self.spec, m["cost"], m["max_residual"], self.problem.tol_unit,
                                          continuation=self.method.continuation(self.problem.online),
                                          exact=self.state.exact is not None,
                                          give_up=self.method.exact and not self.problem.online)

    def _diverged(self, m: dict, checkpoint) -> TrainingError:
        bad = ", ".join(f"{k} = {v:.3g}" for k, v in m.items())
        where = ""
        if checkpoint is not None and self.last_good is not None:
            save_checkpoint(checkpoint, self.last_good)
            where = f"; last good state (step {self.last_good['step']}) saved to {checkpoint}"
        return TrainingError(f"diverged at step {self.state.step} ({bad}){where}; lower train.lr (now "
                             f"{self.state.schedule.lr:g})", reason="diverged", history=self.state.history)

    def interrupted(self, checkpoint, start: float) -> TrainingError:
        """The error of a fit stopped by Ctrl-C, its state saved to `checkpoint` first (when given)."""
        where = ""
        if checkpoint is not None:
            save_checkpoint(checkpoint, self.state_dict(time.perf_counter() - start))
            where = f"; checkpoint saved to {checkpoint}"
        return TrainingError(f"interrupted at step {self.state.step}{where}", reason="interrupted",
                             history=self.state.history)

    def _solve_outputs(self) -> None:
        """Set the output layer (a, V, c) of the iterate and the average to the exact minimiser of the objective
        for their (w, b) (docs/training.md 4: why the output solve)."""
        st, pr = self.state, self.problem
        batch = pr.draw(st.noise)           # offline: the samples; online: fresh ones, not the probe
        mu, nu, M = st.schedule.mu, pr.nu_t, pr.M
        k, weight = mu / (nu * nu * M), 1.0 / (nu * M)                                 # L = ... + k/2 ||h - x||^2
        lam = st.multipliers
        solved = (st.avg, st.p) if st.avg is not None else (st.p,)
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
        None. docs/training.md 4."""
        pr, tol = self.problem, self.spec.tol
        full, N, M = pr.fixed, pr.N, pr.M
        q = _snap_boundaries(self.averaged, full.Yt, N, M)
        if pr.d + 1 < M:                                                               # N (d + 1) virtual samples
            F, T = _cloud_features(q, full.Yt, full.Xt, N, M, self.model.skip)
            system = _OutputSystem(q, None, T, None, k=1.0, skip=self.model.skip, stiff=True, features=F)
        else:
            system = _OutputSystem(q, full.Yt, full.Xt, None, k=1.0, skip=self.model.skip, stiff=True)
        lam = torch.zeros_like(system.X)
        theta = system.solve()
        enough = _EXACT_STOP * tol * pr.tol_unit / pr.frame.scale                      # training units
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
            residual = float(O.sub_(full.Xt).norm(dim=0).max()) * pr.frame.scale
        return q if residual <= max(tol * pr.tol_unit, m["max_residual"]) else None

    @torch.no_grad()
    def measure(self) -> dict:
        """Loss (the method's objective, training units), path cost, max residual and MSE (data units) on the
        training samples (offline) or on a fixed set of fresh samples (online)."""
        batch, p = self.problem.measured, self.reported
        _, _, O = _forward(p, batch.Yt, self.ws)
        with single_thread():                          # full reductions: the same digits on any thread count
            R = O.sub_(batch.Xt)
            norms = R.norm(dim=0) if batch.mask is None else R.norm(dim=0) * batch.mask[0]
            mse = R.pow(2).mean()
            loss = self._loss(R, mse, p.weight_cost(), batch)
            values = torch.stack([loss, p.path_cost(), norms.max(), mse]).tolist()    # one synchronisation
        s = self.problem.frame.scale                                                   # back to data units
        return {"loss": values[0], "cost": values[1], "max_residual": values[2] * s, "train_mse": values[3] * s * s}

    def _loss(self, R, mse, C, batch: Constraints) -> torch.Tensor:
        if not self.method.exact:
            return mse + self.spec.weight_decay * C
        st, M = self.state, self.problem.M
        Rn = R / self.problem.nu_t
        if batch.mask is not None:
            Rn = Rn * batch.mask
        loss = C + 0.5 * st.schedule.mu * Rn.pow(2).sum() / M
        if st.multipliers is not None:
            loss = loss + (st.multipliers * Rn).sum() / M
        return loss

    def _record(self, m: dict) -> None:
        st, exact = self.state, self.method.exact
        mult = None
        if st.multipliers is not None:
            mult = float(st.multipliers.norm(dim=0).max()) / self.problem.M
        row = dict(step=st.step, **m, **{"lambda": None if exact else self.spec.weight_decay},
                   penalty=st.schedule.mu if exact else None, multiplier=mult, lr=st.schedule.lr)
        for k in HISTORY_COLUMNS:
            st.history[k].append(row[k])

    # ---- the result

    def result(self, reason: str, threads, *, trained_with: int = 1) -> FitResult:
        """The returned network: the cheapest exact interpolant within tolerance seen at a check where there is
        one (successive ones jitter in cost; each is a feasible network), else the last reported one. Its
        measurements, and the step of the check it comes from (0: the initial units' exact interpolant), are the
        stats. `threads`: the loop's ThreadRule."""
        st, pr = self.state, self.problem
        chosen, last = self.reported, {k: st.history[k][-1] for k in ("cost", "train_mse", "max_residual")}
        step = st.history["step"][-1] if st.history["step"] else st.step
        if st.best is not None:          # a checkpoint of an older version has no step for its best
            chosen, last = st.best[0], {k: st.best[1][k] for k in ("cost", "train_mse", "max_residual")}
            step = st.best[1].get("step")
        net = pr.frame.outward(chosen.network(self.model.skip), self.model.skip).balance()
        stats = FitStats(**last, max_residual_rel=last["max_residual"] / pr.tol_unit, steps=st.step,
                         seconds=st.seconds, converged=reason == "converged", stop_reason=reason, returned_step=step,
                         method=self.spec.method, mode="online" if pr.online else "offline", device=str(self.device),
                         dtype=self.spec.dtype, lr=st.schedule.lr, penalty=st.schedule.mu if self.method.exact else None,
                         tol_unit=pr.tol_unit, ell=pr.ell, noise_radius=pr.noise_radius,
                         affine_residual=pr.affine_residual, affine_residual_rel=pr.affine_residual / pr.tol_unit,
                         width=self.K, threads=threads.current if threads.active else None,
                         thread_choices=[list(c) for c in threads.decisions], trained_with=trained_with)
        return FitResult(net, {k: list(v) for k, v in st.history.items()}, stats)

    # ---- checkpoints

    def state_dict(self, seconds: float) -> dict:
        """The state, copied (tensors on the CPU), as save_checkpoint writes it."""
        cpu = lambda t: None if t is None else t.detach().to("cpu", copy=True)  # noqa: E731
        st, pr = self.state, self.problem
        return {"version": _CHECKPOINT_VERSION, "step": st.step, "seconds": seconds,
                "theta": cpu(st.p.flat), "average": None if st.avg is None else cpu(st.avg.flat),
                "exact": None if st.exact is None else cpu(st.exact.flat),
                "best": None if st.best is None else [cpu(st.best[0].flat), dict(st.best[1])],
                "adam_m": cpu(st.adam_m), "adam_v": cpu(st.adam_v), "adam_t": st.adam_t,
                "multipliers": cpu(st.multipliers), "schedule": st.schedule.state_dict(),
                "history": {k: list(v) for k, v in st.history.items()},
                "noise_state": None if st.noise is None else st.noise.get_state(),
                "batch_state": st.batches.get_state(), "order": cpu(st.order),
                "shape": [pr.N, pr.d, self.K, pr.M], "method": self.spec.method, "dtype": self.spec.dtype,
                "stopped": st.stopped}

    def load_state_dict(self, state: dict) -> None:
        pr, st = self.problem, self.state
        expect = [pr.N, pr.d, self.K, pr.M]
        if state.get("version") != _CHECKPOINT_VERSION or state.get("shape") != expect:
            raise RunError(f"checkpoint does not match this run (version {state.get('version')}, shape "
                           f"{state.get('shape')}; expected version {_CHECKPOINT_VERSION}, shape {expect})")
        dev = lambda t: t.to(device=self.device, dtype=self.dtype)  # noqa: E731
        flat = lambda t: _Flat(dev(t), self.K, pr.d)  # noqa: E731
        st.p.flat.copy_(dev(state["theta"]))
        if st.avg is not None:
            st.avg.flat.copy_(dev(state["average"]))
        st.exact = None if state.get("exact") is None else flat(state["exact"])
        best = state.get("best")
        st.best = None if best is None else (flat(best[0]), dict(best[1]))
        st.adam_m.copy_(dev(state["adam_m"]))
        st.adam_v.copy_(dev(state["adam_v"]))
        st.adam_t = state["adam_t"]
        if st.multipliers is not None:
            st.multipliers.copy_(dev(state["multipliers"]))
        st.schedule = _Schedule.from_state(state["schedule"])
        st.history = {k: list(state["history"][k]) for k in HISTORY_COLUMNS}
        if st.noise is not None:
            st.noise.set_state(state["noise_state"])
        st.batches.set_state(state["batch_state"])
        st.order = state["order"]
        st.step, st.seconds = state["step"], state["seconds"]
        st.stopped = state.get("stopped")


def save_checkpoint(path, state: dict) -> None:
    """Write a training state atomically (temporary name, then rename)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path) -> dict:
    """A training state written by save_checkpoint (tensors on the CPU). Read with weights_only=True: a
    checkpoint holds tensors, numbers, strings, lists and dicts only, so a file from elsewhere cannot run code.
    RunError naming the file when it is missing, truncated or not a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:                     # torch raises RuntimeError, EOFError, UnpicklingError, ...
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise RunError(f"{path}: not a readable reluden checkpoint ({type(exc).__name__}{': ' if text else ''}"
                       f"{text[:120]})") from None
    if not isinstance(state, dict) or "version" not in state:
        raise RunError(f"{path}: not a reluden checkpoint (no version)")
    return state


def training_data(data, X: np.ndarray) -> OfflineSamples | OnlineNoise:
    """The one gate between what callers hold and what the trainer takes: offline samples (N, M, d) checked,
    or a NoiseSpec (online); typed values pass through."""
    from ..checks import check_samples
    from ..noise import NoiseSpec

    if isinstance(data, (OfflineSamples, OnlineNoise)):
        return data
    if isinstance(data, NoiseSpec):
        return OnlineNoise(data)
    return OfflineSamples(check_samples(data, X))
