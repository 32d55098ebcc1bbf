"""The learning rate and penalty schedule and the stopping rule, read at every check (TrainSpec states it).

At each check (path cost, max residual): stop when the residual is under tol ell and the cost has
stopped falling; without multipliers grow the penalty mu while the residual is above tol ell / 4;
when the residual is above tol ell, has stopped falling and the cost has nearly settled, decay lr.
"""

from dataclasses import dataclass, field

from ..recipe import TrainSpec

_PENALTY_TARGET = 0.25  # without multipliers, mu grows while the max residual is above this fraction of tol
_STALL = 10           # a stall needs the cost settled within _STALL * ftol (looser than convergence)
_LR_PER_RADIUS = 0.1  # default lr of the exact methods <= this * rho (training units; docs/theory.md 9)


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
        if spec.lr is None and spec.method != "weight-decay":
            lr = min(lr, max(_LR_PER_RADIUS * rho, spec.lr_min))      # docs/theory.md 9: lr capped at rho / 10
        return cls(lr, spec.penalty)

    def decide(self, spec: TrainSpec, cost: float, residual: float, ell: float, *, continuation: bool) -> str | None:
        """Record a check (cost, max residual, in the units of ell) and adapt; "converged" to stop, else None.

        `continuation`: grow mu while the residual is above the target (the penalty method, online mode).
        """
        self.costs.append(cost)
        self.residuals.append(residual)
        interpolates = residual <= spec.tol * ell
        if interpolates and self.settled(spec, spec.ftol):
            return "converged"
        if continuation and residual > _PENALTY_TARGET * spec.tol * ell:
            self.mu = min(self.mu * spec.penalty_growth, spec.penalty_max)
        stuck = self.settled(spec, _STALL * spec.ftol) and not self.residual_falling(spec)
        if not interpolates and stuck:
            self.stall(spec)
        return None

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

    def state_dict(self) -> dict:
        return {"lr": self.lr, "mu": self.mu, "costs": list(self.costs), "residuals": list(self.residuals),
                "stalls": self.stalls}

    @classmethod
    def from_state(cls, state: dict) -> "_Schedule":
        return cls(state["lr"], state["mu"], list(state["costs"]), list(state["residuals"]), state["stalls"])
