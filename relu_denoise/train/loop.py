"""The training loop: one loop for a group of 1..B fits, one step of stacked weights for all of them.

Each member is a Trainer built exactly as for a fit alone (initial weights, frame, penalty unit, schedule).
While members train together, their parameters, averages, Adam moments and multipliers are the rows of
stacked buffers (`_Group`) and the members' state tensors are views of those rows; one step (batched matrix
products) moves them all, and each member's own checks, output solves, exact interpolants, checkpoints and
results run on its row. A fit alone is a group of one: the step's arithmetic exists once, and a fit trained
in a group ends with the same weights, bit for bit, as the same fit alone (per-member constants enter as
broadcast products, which round as products by a scalar; tests/test_batched.py). CPU only for B > 1: on a
GPU batched products round by batch count (`groupable`). docs/training.md 11.
"""

import contextlib
import signal
import threading
import time
from typing import Callable

import torch

from ..errors import TrainingError
from .devices import ThreadRule, threads_set
from .engine import _Flat, _forward, _gradients, _Stacked, _Workspace, adam_step
from .stats import FitResult
from .trainer import Trainer


def groupable(members: list[Trainer]) -> str | None:
    """None when the fits can be stepped together, else why not (one line)."""
    if not members:
        return "no fits"
    first = members[0]
    if len(members) > 1 and first.device.type != "cpu":
        # batched products on a GPU pick their kernels by the batch count: numbers would depend on grouping
        return f"on {first.device.type} stacked products round differently from a lone fit's"
    if len(members) > 1 and first.problem.online:
        return "online noise (fresh samples every step) is trained one fit at a time"
    if len(members) > 1 and not first.method.groupable:
        return f"train.method {first.spec.method} is trained one fit at a time"
    for t in members[1:]:
        if t.spec != first.spec or t.model != first.model:
            return "the fits' train or model sections differ"
        if t.group_key() != first.group_key():
            return f"the fits' shapes differ: {t.group_key()[:5]} against {first.group_key()[:5]}"
        if t.state.step != first.state.step:
            return "the fits are at different steps (resume a fit alone)"
    return None


class _Group:
    """The active members' state as stacked buffers; each member's own tensors are views of its row."""

    def __init__(self, members: list[Trainer]):
        self.members = ms = members
        K, d = ms[0].K, ms[0].problem.d

        def rows(tensors):
            stacked = torch.stack(tensors)
            return stacked, list(stacked.unbind(0))

        flat, mine = rows([t.state.p.flat for t in ms])
        grad, gmine = rows([t.g.flat for t in ms])
        self.p, self.g = _Stacked(flat, K, d), _Stacked(grad, K, d)
        self.avg = None
        if ms[0].state.avg is not None:
            self.avg, amine = rows([t.state.avg.flat for t in ms])
        self.m, mm = rows([t.state.adam_m for t in ms])
        self.v, vm = rows([t.state.adam_v for t in ms])
        self.lam = None
        if ms[0].state.multipliers is not None:
            self.lam, lmine = rows([t.state.multipliers for t in ms])
        for i, t in enumerate(ms):               # the members' tensors become views of the rows
            st = t.state
            st.p, t.g = _Flat(mine[i], K, d), _Flat(gmine[i], K, d)
            if self.avg is not None:
                st.avg = _Flat(amine[i], K, d)
            st.adam_m, st.adam_v = mm[i], vm[i]
            if self.lam is not None:
                st.multipliers = lmine[i]
        self.Y = self.X = None
        if ms[0].problem.fixed is not None:                       # (B, d, P); a view for a fit alone
            self.Y = _rows([t.problem.fixed.Yt for t in ms])
            self.X = _rows([t.problem.fixed.Xt for t in ms])
        self.ws = _Workspace()

    def step(self) -> None:
        """One Adam step of every member on its objective (no host synchronisation)."""
        ms, p = self.members, self.p
        drawn = [t.next_batch() for t in ms]                      # each member's own minibatch or noise stream
        batch, cols = drawn[0]
        if cols is None and not ms[0].problem.online:
            Yt, Xt, lam = self.Y, self.X, self.lam
        else:
            Yt = _rows([b.Yt for b, _ in drawn])                                           # (B, d, cols)
            Xt = _rows([b.Xt for b, _ in drawn])
            lam = None if self.lam is None else torch.stack([t.state.multipliers[:, c] for t, (_, c) in zip(ms, drawn)])
        Z, S, O = _forward(p, Yt, self.ws)
        R = O.sub_(Xt)                                                                     # (B, d, cols)
        scales = [t.gradient_scales(R.shape[2]) for t in ms]
        column = lambda values: torch.tensor(values, dtype=R.dtype, device=R.device).view(-1, 1, 1)  # noqa: E731
        G = R * column([s[0] for s in scales])                    # d objective / d outputs
        if lam is not None:                                       # G.add_(lam, alpha=...): the same rounding
            G.addcmul_(lam, column([s[1] for s in scales]))
        if batch.mask is not None:                                # online: one member (not groupable)
            G.mul_(batch.mask)
        _gradients(p, self.g, Yt, Z, S, G, scales[0][2], ms[0].model.skip, self.ws)
        t = ms[0].state.adam_t + 1
        for member in ms:
            member.state.adam_t = t
        adam_step(p.flat, self.g.flat, self.m, self.v, t, [m.state.schedule.lr for m in ms])
        if self.avg is not None:
            self.avg.lerp_(p.flat, 1 - ms[0].spec.average)
        for i, member in enumerate(ms):
            member.after_step(R[i], drawn[i][1])


def _rows(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors stacked as rows (B, ...); one tensor as a view with a leading axis (no copy)."""
    return tensors[0][None] if len(tensors) == 1 else torch.stack(tensors)


class _Interrupt:
    """Ctrl-C during training sets a flag that the loop reads between steps (a second Ctrl-C is immediate).
    The handler is installed for the loop only (main thread), the previous one restored after."""

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


def train_members(members: list[Trainer], *, callbacks: list[Callable | None] | None = None,
                  checkpoints: list | None = None) -> list[FitResult | TrainingError]:
    """Train `groupable` members together until each stops by its own rule (docs/training.md 7) or reaches
    train.steps; one FitResult or TrainingError per member.

    A member that stops leaves the group; its `seconds` are the group's wall time until then (plus the time
    of a resumed fit before) and `trained_with` the group's size. A divergence fails that member only; Ctrl-C
    interrupts every member still training (each saves its checkpoint, if it has a path). The CPU thread count
    may change between steps (devices.ThreadRule) and is restored when the loop ends.
    """
    why = groupable(members)
    if why is not None:
        raise ValueError(f"cannot train these fits together: {why}")
    B, first = len(members), members[0]
    callbacks, checkpoints = callbacks or [None] * B, checkpoints or [None] * B
    out: list = [None] * B
    rule = ThreadRule(first.device, first.spec.threads, work=B * first.problem.columns * first.K
                      * max(first.problem.d, 8))
    start = time.perf_counter() - first.state.seconds

    def check(i: int, first_check: bool = False) -> bool:
        """Member i's check; True when it has finished (a result or an error)."""
        t = members[i]
        reason = t.state.stopped                  # a checkpoint written at the stopping check: stop again
        try:
            if reason is None and (not first_check or t.state.step == 0):
                reason = t.check(callbacks[i], checkpoints[i], start)
        except TrainingError as exc:
            out[i] = exc
            return True
        if reason is None and t.state.step < t.spec.steps:
            return False
        t.state.seconds = time.perf_counter() - start
        out[i] = t.result(reason or "max-steps", rule, trained_with=B)
        return True

    with threads_set(rule.next() if rule.active else None):
        active = [i for i in range(B) if not check(i, first_check=True)]
        _loop(members, active, rule, check, checkpoints, start, out)
    return out


def _loop(members, active, rule, check, checkpoints, start, out) -> None:
    group = _Group([members[i] for i in active]) if active else None
    interrupt = _Interrupt()
    every, steps = members[0].spec.check_every, members[0].spec.steps
    with interrupt.installed():
        while active:
            n = rule.next()
            if rule.active and n != torch.get_num_threads():
                torch.set_num_threads(n)
            tick = time.perf_counter()
            group.step()
            step = members[active[0]].state.step
            rule.record(step, n, time.perf_counter() - tick)
            if interrupt.requested:
                for i in active:
                    out[i] = members[i].interrupted(checkpoints[i], start)
                return
            if step % every == 0 or step == steps:
                still = [i for i in active if not check(i)]
                if still != active:
                    active = still
                    group = _Group([members[i] for i in active]) if active else None
