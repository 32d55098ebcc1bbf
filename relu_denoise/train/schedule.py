"""The learning rate and penalty schedule and the stopping rule, read at every check (TrainSpec states it).

At each check (path cost, max residual, tolerance unit min(ell, rho)): stop when the residual is within
tol and the cost has stopped falling; without multipliers grow the penalty mu while the residual is above
tol / 4; decay lr when the residual is above tol, has stopped falling and the cost has nearly settled, or
when the residual is within tol but the cost no longer falls (docs/training.md 7).
"""

from dataclasses import dataclass, field

from ..recipe import TrainSpec
from .methods import method

_PENALTY_TARGET = 0.25  # without multipliers, mu grows while the max residual is above this fraction of tol
_STALL = 10           # a stall needs the cost settled within _STALL * ftol (looser than convergence)
_HOPELESS = 0.5      # a max residual above this x tol unit for two windows, not falling: no interpolant in reach
_LR_PER_RADIUS = 0.1  # default lr of the exact methods <= this * rho (training units; docs/training.md)


@dataclass
class _Schedule:
    """Learning rate, penalty mu and the plateau tests."""

    lr: float
    mu: float
    costs: list = field(default_factory=list)       # path cost at the checks since the last stall
    residuals: list = field(default_factory=list)   # max residual at the same checks
    stalls: int = 0

    @classmethod
    def start(cls, spec: TrainSpec, rho: float) -> "_Schedule":
        """lr = train.lr; by default for the exact methods 1e-2 capped at rho / 10 (rho in training units)."""
        lr = spec.learning_rate
        if spec.lr is None and method(spec.method).exact:
            lr = min(lr, max(_LR_PER_RADIUS * rho, spec.lr_min))      # docs/training.md: lr capped at rho / 10
        return cls(lr, spec.penalty)

    def decide(self, spec: TrainSpec, cost: float, residual: float, unit: float, *,
               continuation: bool, exact: bool = False, give_up: bool = False) -> str | None:
        """Record a check (cost, max residual, in the units of `unit`, the tolerance unit) and adapt;
        "converged" to stop, else None.

        `continuation`: grow mu while the residual is above the target (the penalty method, online mode).
        `exact`: the cost is that of an exact interpolant, which no constraint pulls up: a cost that wanders
        above the lowest so far is the jitter of the boundaries, not a rise. It has settled when two windows
        bring no new low by more than ftol (the returned network is that lowest one), and it stalls when they
        bring none by more than 10 ftol.
        `give_up`: stop ("no-interpolant") when the residual has stayed far from tol and stopped falling
        (`hopeless`): the offline exact methods, where a fit that never comes near the samples will not.
        """
        self.costs.append(cost)
        self.residuals.append(residual)
        if give_up and self.hopeless(spec, unit):
            return "no-interpolant"
        interpolates = residual <= spec.tol * unit
        if continuation and residual > _PENALTY_TARGET * spec.tol * unit:
            self.mu = min(self.mu * spec.penalty_growth, spec.penalty_max)
        if interpolates and exact:
            low = self.new_low(spec)
            if low is not None and low <= spec.ftol:
                return "converged"
            if low is not None and low <= _STALL * spec.ftol:      # it wanders without falling: calm the steps
                self.stall(spec)
            return None
        if interpolates and self.settled(spec, spec.ftol):
            return "converged"
        if not interpolates and self.settled(spec, _STALL * spec.ftol) and not self.residual_falling(spec):
            self.stall(spec)
        return None

    def new_low(self, spec: TrainSpec) -> float | None:
        """How far (relative) the lowest cost of the last two windows lies below the lowest before them, once
        three windows of `patience` checks have passed since the last stall (None before). For exact
        interpolants, whose cost jitters from check to check (docs/training.md 7): two windows, not one,
        so that a lucky low in the window before does not pass for a plateau."""
        p, c = spec.patience, self.costs
        if len(c) < 3 * p:
            return None
        recent, before = min(c[-2 * p:]), min(c[:-2 * p])
        return (before - recent) / max(before, 1e-2)

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
        up = c[-1] - recent > _STALL * ftol * max(recent, floor)
        return abs(recent - before) <= ftol * max(before, floor) and not up

    def hopeless(self, spec: TrainSpec, unit: float) -> bool:
        """Three windows of `patience` checks since the start (or the last stall), the max residual above
        _HOPELESS x the tolerance unit at every check of the last two, and its lowest in the last window not
        10% below the one before: the fit is nowhere near an interpolant and not getting nearer
        (docs/training.md 7; on image patches it stays at about the affine map's residual)."""
        p, r = spec.patience, self.residuals
        if len(r) < 3 * p:
            return False
        return min(r[-2 * p:]) > _HOPELESS * unit and not self._fell(r, p, 0.9)

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
        if method(spec.method).adapts_lr:          # the paper's procedure has nothing to adapt
            self.lr = max(self.lr * spec.lr_decay, min(spec.lr_min, self.lr))

    def state_dict(self) -> dict:
        return {"lr": self.lr, "mu": self.mu, "costs": list(self.costs), "residuals": list(self.residuals),
                "stalls": self.stalls}

    @classmethod
    def from_state(cls, state: dict) -> "_Schedule":
        return cls(state["lr"], state["mu"], list(state["costs"]), list(state["residuals"]), state["stalls"])
