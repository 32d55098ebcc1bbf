"""Several fits of one data shape trained together: one step of stacked weights for all of them.

B Trainers are built exactly as for fits alone (initial weights, frame, penalty unit, schedule); their
parameters, gradients, averages, Adam moments and multipliers then become the rows of stacked buffers
(`_Group`), one batched step (batched matrix products) moves them all, and each Trainer's own checks,
output solves, exact interpolants, checkpoints and results run unchanged on its row. The step does, member
by member, the arithmetic of the solo step (engine's batched products, which a fit alone runs with B = 1;
per-member constants as broadcast products, which round as products by a scalar; Adam's step size per member
where the learning rates differ), so a fit trained in a group ends with the same weights, bit for bit, as
the same fit alone (tests/test_batched.py): a sweep's numbers do not depend
on which of its points were trained together. CPU only: on a GPU the batched products round by batch count
(`batchable`). docs/theory.md 9.11.

Offline exact methods only (the fits must share N, M, d, the width and the recipe's model and train
sections); `batchable` says whether a group qualifies.
"""

import time
from typing import Callable

import torch

from ..errors import TrainingError
from .devices import ThreadRule, threads_set
from .engine import _Flat, _forward, _gradients, _Stacked, _Workspace
from .trainer import FitResult, Trainer, _Interrupt


def shape_key(trainer: Trainer) -> tuple:
    """What members of one group must share: (N, d, M, K, samples per step, device, dtype)."""
    return (trainer.N, trainer.d, trainer.samples.M, trainer.p.K, trainer.per_step, str(trainer.device),
            trainer.dtype)


def batchable(trainers: list[Trainer]) -> str | None:
    """None when the trainers can be stepped together, else why not (one line)."""
    if not trainers:
        return "no fits"
    first = trainers[0]
    if first.device.type != "cpu":
        # cuBLAS picks its kernels by the batch count: on an H200 a sweep's points trained in groups of 3
        # ended 1e-4 away in cost (and up to 4,500 steps apart) from the same fits alone, which repeat
        # exactly run after run. Numbers must not depend on grouping, so GPUs train fits one at a time.
        return f"on {first.device.type} stacked products round differently from a lone fit's"
    if first.samples.online:
        return "online noise (fresh samples every step) is trained one fit at a time"
    if first.spec.method == "weight-decay":
        return "train.method weight-decay is trained one fit at a time"
    for t in trainers[1:]:
        if t.spec != first.spec or t.model != first.model:
            return "the fits' train or model sections differ"
        if shape_key(t) != shape_key(first):
            return f"the fits' shapes differ: {shape_key(t)[:5]} against {shape_key(first)[:5]}"
    return None


class _Group:
    """The active members' state as stacked buffers; each member's own tensors are views of its row."""

    def __init__(self, trainers: list[Trainer]):
        self.trainers = ts = trainers
        K, d = ts[0].p.K, ts[0].d

        def rows(tensors):
            stacked = torch.stack(tensors)
            return stacked, list(stacked.unbind(0))

        flat, mine = rows([t.p.flat for t in ts])
        grad, gmine = rows([t.g.flat for t in ts])
        self.p, self.g = _Stacked(flat, K, d), _Stacked(grad, K, d)
        self.avg = None
        if ts[0].avg is not None:
            self.avg, amine = rows([t.avg.flat for t in ts])
        self.m, mm = rows([t.adam.m for t in ts])
        self.v, vm = rows([t.adam.v for t in ts])
        self.lam = None
        if ts[0].multipliers is not None:
            self.lam, lmine = rows([t.multipliers for t in ts])
        for i, t in enumerate(ts):
            t.p, t.g = _Flat(mine[i], K, d), _Flat(gmine[i], K, d)
            if self.avg is not None:
                t.avg = _Flat(amine[i], K, d)
            t.adam.m, t.adam.v = mm[i], vm[i]
            if self.lam is not None:
                t.multipliers = lmine[i]
        self.Y = torch.stack([t.samples.fixed.Yt for t in ts])                        # (B, d, P)
        self.X = torch.stack([t.samples.fixed.Xt for t in ts])
        self.ws = _Workspace()

    def step(self) -> None:
        """One Adam step of every member: the arithmetic of Trainer.step, member by member."""
        ts, p, g = self.trainers, self.p, self.g
        first = ts[0]
        drawn = [t._step_batch() for t in ts]                        # each member's own minibatch stream
        cols = drawn[0][1]
        if cols is None:
            Yt, Xt, lam = self.Y, self.X, self.lam
        else:
            Yt = torch.stack([b.Yt for b, _ in drawn])
            Xt = torch.stack([b.Xt for b, _ in drawn])
            lam = None if self.lam is None else torch.stack([t.multipliers[:, c] for t, (_, c) in zip(ts, drawn)])
        m = first.samples.M if cols is None else first.per_step
        Z, S, O = _forward(p, Yt, self.ws)
        R = O.sub_(Xt)                                                                # (B, d, cols)
        column = lambda values: torch.tensor(values, dtype=R.dtype, device=R.device).view(-1, 1, 1)  # noqa: E731
        G = R * column([t.schedule.mu / (t.nu * t.nu * m) for t in ts])              # Trainer._output_gradient
        if lam is not None:                                          # G.add_(lam, alpha=...): the same rounding
            G.addcmul_(lam, column([1.0 / (t.nu * m) for t in ts]))
        _gradients(p, g, Yt, Z, S, G, 1.0, first.model.skip, self.ws)
        self._adam([t.schedule.lr for t in ts])
        if self.avg is not None:
            self.avg.lerp_(p.flat, 1 - first.spec.average)
        for i, t in enumerate(ts):
            t._stepped(R[i], cols)

    def _adam(self, lrs: list[float]) -> None:
        """engine._Adam.step on the stacked rows: the moments at once, the step size per member."""
        adam = self.trainers[0].adam
        b1, b2 = adam.betas
        t = adam.t + 1
        for tr in self.trainers:
            tr.adam.t = t
        self.m.lerp_(self.g.flat, 1 - b1)
        self.v.mul_(b2).addcmul_(self.g.flat, self.g.flat, value=1 - b2)
        denom = (self.v / (1 - b2 ** t)).sqrt_().add_(adam.eps)
        if len(set(lrs)) == 1:                                        # the usual case: one operation
            self.p.flat.addcdiv_(self.m, denom, value=-lrs[0] / (1 - b1 ** t))
            return
        for i, lr in enumerate(lrs):
            self.p.flat[i].addcdiv_(self.m[i], denom[i], value=-lr / (1 - b1 ** t))


def fit_together(trainers: list[Trainer], *, callbacks: list[Callable | None] | None = None,
                 checkpoints: list | None = None) -> list[FitResult | TrainingError]:
    """Train `batchable` trainers (freshly built, step 0) together; one FitResult or TrainingError per member.

    Each member stops by its own rule (docs/theory.md 9.7) and leaves the group; its stats' `seconds` are
    the group's wall time until then and `trained_with` the group's size. A divergence fails that member
    only; Ctrl-C interrupts every member still training (each saves its checkpoint, if it has a path).
    """
    why = batchable(trainers)
    if why is not None:
        raise ValueError(f"cannot train these fits together: {why}")
    if any(t.step_count for t in trainers):
        raise ValueError("fit_together starts fits at step 0 (resume a fit alone)")
    B = len(trainers)
    callbacks = callbacks or [None] * B
    checkpoints = checkpoints or [None] * B
    out: list = [None] * B
    first, spec = trainers[0], trainers[0].spec
    columns = first.N * (first.samples.M if first.per_step is None else first.per_step)
    rule = ThreadRule(first.device, spec.threads, work=B * columns * first.p.K * max(first.d, 8))
    for t in trainers:
        t.threads = rule
    start = time.perf_counter()

    def check(i: int) -> bool:
        """Member i's check; True when it has finished (a result or an error)."""
        t = trainers[i]
        try:
            reason = t._check(callbacks[i], checkpoints[i], start)
        except TrainingError as exc:
            out[i] = exc
            return True
        if reason is None and t.step_count < spec.steps:
            return False
        t.seconds = time.perf_counter() - start
        out[i] = _tagged(t._result(reason or "max-steps"), B)
        return True

    active = [i for i in range(B) if not check(i)]
    group = _Group([trainers[i] for i in active]) if active else None
    interrupt = _Interrupt()
    with threads_set(rule.next() if rule.active else None), interrupt.installed():
        while active:
            n = rule.next()
            if rule.active and n != torch.get_num_threads():
                torch.set_num_threads(n)
            tick = time.perf_counter()
            if len(active) == 1:                 # the same arithmetic as the group's, without its overhead
                trainers[active[0]].step()
            else:
                group.step()
            step = trainers[active[0]].step_count
            rule.record(step, n, time.perf_counter() - tick)
            if interrupt.requested:
                for i in active:
                    try:
                        trainers[i]._interrupted(checkpoints[i], start)
                    except TrainingError as exc:
                        out[i] = exc
                break
            if step % spec.check_every == 0 or step == spec.steps:
                still = [i for i in active if not check(i)]
                if still != active:
                    active = still
                    group = _Group([trainers[i] for i in active]) if active else None
    return out


def _tagged(result: FitResult, size: int) -> FitResult:
    result.stats["trained_with"] = size
    return result
