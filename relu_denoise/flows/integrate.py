"""Score flow and probability flow of a denoiser, by Euler steps in r, vectorised over the starts (docs/theory.md 10).

    score_flow(h, Y0, dr=, steps= | r_end=)                       dy/dr = h(y) - y           (10.1)
    probability_flow(h_at, Y0, sigma_max=, sigma_min=, dr=)       dy/dr = h_{sigma(r)}(y) - y (10.2)

Euler in r: y <- y + dr (h(y) - y); dr = 1 is the paper's fixed-point iteration y <- h(y). A denoiser is any
object with predict((n, d)) -> (n, d) (or such a callable); computation is float64. A Flow keeps the starts,
the ends, how many steps ran and, on request, a subsample of trajectories thinned to a few hundred points.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..checks import check_points, check_positive
from ..errors import DataError, RecipeError
from .levels import RampField
from .schedule import _level

SCORE_TOL = 1e-10          # score flow: stop once no start moved more than this (L-infinity) in one step
RECORD_POINTS = 200        # recorded time points per trajectory, at most (plus the last)


@dataclass
class Trajectories:
    """A subsample of the flow's paths: starts `index` (k,), times r (T,), positions y (k, T, d), and for a
    probability flow the noise level sigma (T,) at each recorded time."""

    index: np.ndarray
    r: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | None = None


@dataclass
class Flow:
    """Starts (n, d) and ends (n, d) of a flow; `steps` Euler steps of `dr` ran, reaching time r.

    stopped: the score flow stopped early, every start having moved less than `tol` in its last step
    (`moved` is the largest L-infinity move of that step). sigma_end: where a probability flow stopped.
    """

    kind: str                          # score | probability
    start: np.ndarray
    end: np.ndarray
    dr: float
    steps: int
    r: float
    moved: float
    stopped: bool = False
    sigma_end: float | None = None
    trajectories: Trajectories | None = None


def _as_map(h, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """h's map (n, d) -> (n, d); a ClosedForm is evaluated as its RampField (the same map in numpy, without
    the torch network's per-call overhead, which dominates a flow's many small steps)."""
    from ..closed_forms import ClosedForm

    if isinstance(h, ClosedForm):
        return RampField.from_form(h).predict
    f = h.predict if callable(getattr(h, "predict", None)) else h
    if not callable(f):
        raise DataError(f"{name}: expected a denoiser (an object with predict mapping (n, d) to (n, d)), "
                        f"got {type(h).__name__}")
    return f


class _Recorder:
    """Every `stride`-th state of the starts `index`, plus the last one."""

    def __init__(self, Y: np.ndarray, record: int, steps: int, points: int):
        n = len(Y)
        k = min(int(record), n)
        self.index = np.unique(np.linspace(0, n - 1, k).round().astype(int)) if k > 0 else np.zeros(0, int)
        self.stride = max(1, -(-steps // max(points, 1)))
        self.r, self.y, self.sigma, self.last = [], [], [], -1

    def __call__(self, step: int, r: float, Y: np.ndarray, sigma: float | None = None, *, final=False) -> None:
        if not len(self.index) or step == self.last or not (final or step % self.stride == 0):
            return
        self.r.append(r)
        self.y.append(Y[self.index].copy())                  # (k, d)
        self.sigma.append(sigma)
        self.last = step

    def result(self) -> Trajectories | None:
        if not len(self.index):
            return None
        sigma = None if self.sigma[0] is None else np.array(self.sigma)
        return Trajectories(self.index, np.array(self.r), np.stack(self.y, axis=1), sigma)   # y (k, T, d)


def _check_step(dr) -> float:
    try:
        dr = check_positive(dr, name="dr")
    except (DataError, TypeError, ValueError):
        raise RecipeError(f"dr: must be a number in (0, 1], got {dr!r}") from None
    if dr > 1:
        raise RecipeError(f"dr: must be in (0, 1] (1 is the fixed-point iteration y <- h(y); larger steps "
                        f"overshoot h(y)), got {dr:g}")
    return dr


def _velocity(f, Y: np.ndarray, name: str) -> np.ndarray:
    HY = np.asarray(f(Y), dtype=np.float64)
    if HY.shape != Y.shape:
        raise DataError(f"{name}: predict returned shape {HY.shape} for input {Y.shape}; a denoiser maps (n, d) "
                        "to (n, d)")
    return HY - Y                                                                      # (n, d)


def score_flow(h, Y0, *, dr: float = 1.0, steps: int | None = None, r_end: float | None = None,
               tol: float = SCORE_TOL, record: int = 0, record_points: int = RECORD_POINTS) -> Flow:
    """Euler on dy/dr = h(y) - y from each row of Y0 (n, d) (docs/theory.md 10.1).

    Give `steps` or `r_end` (steps = ceil(r_end / dr)). Stops early once every start moved less than `tol`
    (L-infinity) in one step: a fixed point to that tolerance (for a flat zone of a closed form at dr = 1,
    exactly). `record` = k keeps k starts, evenly spaced in Y0's order, thinned to about record_points times.
    """
    Y = check_points(Y0, name="Y0").copy()                                              # (n, d)
    f = _as_map(h, "h")
    dr = _check_step(dr)
    steps = _steps(steps, r_end, dr)
    tol = float(tol)
    rec = _Recorder(Y, record, steps, record_points)
    rec(0, 0.0, Y)
    start, moved, stopped, k = Y.copy(), 0.0, False, 0
    while k < steps:
        V = _velocity(f, Y, "h")                                                         # (n, d)
        Y += dr * V
        k += 1
        moved = dr * float(np.abs(V).max())
        stopped = moved < tol
        rec(k, k * dr, Y, final=stopped or k == steps)
        if stopped:
            break
    return Flow("score", start, Y, dr, k, k * dr, moved, stopped, trajectories=rec.result())


def _steps(steps, r_end, dr: float) -> int:
    if (steps is None) == (r_end is None):
        raise RecipeError("score_flow: give exactly one of steps (Euler steps) or r_end (the flow time)")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise RecipeError(f"steps: must be an integer >= 1, got {steps!r}")
        return int(steps)
    return max(1, int(np.ceil(_level(r_end, "r_end", "score_flow") / dr - 1e-9)))


def probability_flow(h_at, Y0, *, sigma_max: float, sigma_min: float, dr: float, record: int = 0,
                     record_points: int = RECORD_POINTS) -> Flow:
    """Euler on dy/dr = h_{sigma(r)}(y) - y, sigma(r) = sigma_max e^{-r}, r from 0 to ln(sigma_max / sigma_min)
    (docs/theory.md 10.2), from each row of Y0 (n, d).

    h_at(sigma) returns the denoiser for noise level sigma: a closed form at any sigma (levels.closed_form_family)
    or one of a schedule's trained denoisers (levels.Levels). The step is dr shortened to r_end / ceil(r_end / dr),
    so the last step ends at sigma_min; step j evaluates h at sigma(r_j), its left end (explicit Euler). h_at is
    called once per step; where it returns the object of the previous step its predict is reused.
    """
    Y = check_points(Y0, name="Y0").copy()                                              # (n, d)
    hi, lo = _level(sigma_max, "sigma_max", "probability_flow"), _level(sigma_min, "sigma_min", "probability_flow")
    if not lo < hi:
        raise RecipeError(f"probability_flow: sigma_min ({lo:g}) must be < sigma_max ({hi:g})")
    r_end = float(np.log(hi / lo))
    steps = max(1, int(np.ceil(r_end / _check_step(dr) - 1e-9)))
    dr = r_end / steps
    rec = _Recorder(Y, record, steps, record_points)
    rec(0, 0.0, Y, hi)
    start, moved, last, f = Y.copy(), 0.0, None, None
    for k in range(steps):
        h = h_at(hi * np.exp(-k * dr))
        if h is not last:
            f, last = _as_map(h, "h_at(sigma)"), h
        V = _velocity(f, Y, "h_at(sigma)")                                               # (n, d)
        Y += dr * V
        moved = dr * float(np.abs(V).max())
        rec(k + 1, (k + 1) * dr, Y, hi * np.exp(-(k + 1) * dr), final=k + 1 == steps)
    return Flow("probability", start, Y, dr, steps, r_end, moved, sigma_end=lo, trajectories=rec.result())
