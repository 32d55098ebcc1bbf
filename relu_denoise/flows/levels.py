"""The denoiser at a noise level: what a probability flow asks for at every step (docs/theory.md 10.2).

    RampField(form)                  a closed form evaluated in numpy (the flows' fast `predict`)
    closed_form_family(points, rho)  h*_{rho(sigma)} at any sigma, built from one closed form by moving its ramps
    Levels(sigma, denoisers)         one denoiser per level of a schedule; `Levels(...)(sigma)` picks the level

A closed form of the ball model has ramps whose ends are the data plus or minus rho (docs/theory.md 2, 4.2-4.4:
lo = t + rho, hi = t' - rho, the heights fixed by the data), so the form at another rho' is the same ramps
with lo + (rho' - rho), hi - (rho' - rho): no geometry to detect again, a few array operations per step.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

import numpy as np

from ..checks import check_points
from ..errors import DataError, NoClosedFormError


class RampField:
    """h(y) = c + sum_i u_i H_i clip((u_i^T y - s_i - lo_i) / (hi_i - lo_i), 0, 1), the sum of ramps of a
    closed form (docs/theory.md 1), in float64 numpy: the same map as ClosedForm.predict without torch."""

    def __init__(self, U: np.ndarray, shift: np.ndarray, lo: np.ndarray, hi: np.ndarray, height: np.ndarray,
                 c: np.ndarray):
        self.U, self.shift, self.lo, self.hi, self.height, self.c = U, shift, lo, hi, height, c  # (R, d), (R,)x4, (d,)
        self._start, self._inv, self._out = shift + lo, 1.0 / (hi - lo), height[:, None] * U       # (R,), (R,), (R, d)

    @classmethod
    def from_form(cls, form) -> "RampField":
        """The ramps of a ClosedForm (any geometry, ball model or empirical flat zones)."""
        d = len(form.c)
        R = form.ramps
        U = np.array([r.u for r in R]).reshape(len(R), d)                                          # (R, d)
        shift = np.array([r.u @ r.origin for r in R], dtype=np.float64)                              # (R,)
        lo, hi, H = (np.array([getattr(r, k) for r in R], dtype=np.float64) for k in ("lo", "hi", "height"))
        return cls(U, shift, lo, hi, H, np.asarray(form.c, dtype=np.float64))

    def widened(self, delta: float) -> "RampField":
        """The same data at rho + delta (ball model): every flat zone delta wider, every ramp 2 delta shorter."""
        lo, hi = self.lo + delta, self.hi - delta
        if len(lo) and not np.all(lo < hi):
            i = int(np.argmin(hi - lo))
            raise NoClosedFormError(f"flat zones overlap at rho {delta:+g} from the built one: ramp {i} would run "
                                    f"from {lo[i]:g} to {hi[i]:g}", kind="rho-too-large")
        return RampField(self.U, self.shift, lo, hi, self.height, self.c)

    @property
    def dim(self) -> int:
        return len(self.c)

    def predict(self, y) -> np.ndarray:
        """h(y) for y (n, d) -> (n, d), float64. Callers inside the flows pass checked float64 arrays."""
        y = np.asarray(y, dtype=np.float64)
        P = np.clip((y @ self.U.T - self._start) * self._inv, 0.0, 1.0)                            # (n, R)
        return self.c + P @ self._out                                                               # (n, d)


def closed_form_family(points, rho: Callable[[float], float], *, sigma_max: float) -> Callable[[float], RampField]:
    """h_at(sigma) = the ball-model closed form h*_{rho(sigma)} (docs/theory.md 4), exact at every sigma.

    The form is built once, at rho(sigma_max) (the widest flat zones: every smaller rho is then valid), and
    moved to rho(sigma) at each call (RampField.widened). rho: sigma -> the flat-zone radius, e.g. the ball
    model's alpha sigma (docs/theory.md 10.2) or `lambda s: schedule.rho_at(noise, s)[0]`. NoClosedFormError
    where the points have no closed form or the balls at sigma_max overlap.
    """
    from ..closed_forms import closed_form

    rho_T = float(rho(sigma_max))
    base = RampField.from_form(closed_form(points, rho=rho_T))

    def h_at(sigma: float) -> RampField:
        return base.widened(float(rho(sigma)) - rho_T)

    return h_at


LEVEL_RULES = ("nearest", "above")


class Levels:
    """One denoiser per noise level (sigma decreasing, the start level first) and which one serves a sigma.

    rule "nearest" (default): the level nearest sigma in ln sigma (ties to the higher level), so on a
    geometric schedule each level serves half a spacing either side and every level is used; its piecewise
    constant rho is a midpoint rule for the continuous rho(r) (docs/theory.md 10.5). rule "above": the
    nearest level at or above sigma, a denoiser trained at at least the current noise (its flat zones cover
    the current noise clouds); the flow never reaches sigma_min itself, so the last level then serves only
    sigma_min. Calling returns the stored object: nothing is rebuilt.
    """

    def __init__(self, sigma: Sequence[float], denoisers: Sequence, *, rule: str = "nearest"):
        s = np.asarray(sigma, dtype=np.float64)
        if s.ndim != 1 or len(s) == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise DataError(f"levels: sigma must be a list of numbers > 0, got {list(sigma)!r:.80}")
        if np.any(np.diff(s) >= 0):
            raise DataError("levels: sigma must decrease strictly, the start level first")
        if len(denoisers) != len(s):
            raise DataError(f"levels: {len(s)} noise levels but {len(denoisers)} denoisers; give one per level")
        if rule not in LEVEL_RULES:
            raise DataError(f"levels: rule must be one of {', '.join(LEVEL_RULES)}, got {rule!r}")
        self.sigma, self.denoisers, self.rule = s, list(denoisers), rule
        self._log = -np.log(s)                    # increasing: bisect works on it
        self._cuts = (self._log[1:] + self._log[:-1]) / 2

    def index(self, sigma: float) -> int:
        """The level serving noise level sigma (see the class docstring for the rule)."""
        x = -np.log(float(sigma))
        if self.rule == "nearest":
            return bisect_left(self._cuts, x)          # cuts below x: a tie goes to the higher level
        # at or above: the largest k with sigma_k >= sigma, within a relative 1e-9 (sigma_max e^{-r} rounds)
        k = bisect_right(self._log, x + 1e-9) - 1
        return int(min(max(k, 0), len(self.sigma) - 1))

    def __call__(self, sigma: float):
        return self.denoisers[self.index(sigma)]


def closed_form_levels(points, sigma: Sequence[float], rho: Sequence[float], *, rule: str = "nearest") -> Levels:
    """Levels of ball-model closed forms, one per (sigma_k, rho_k) of a schedule, as RampFields (built once)."""
    from ..closed_forms import closed_form

    X = check_points(points, name="points")
    if any(r is None for r in rho):
        raise DataError("closed_form_levels: a rho per level is needed (the empirical rule has none: build each "
                        "level's closed form from its own samples and pass them to Levels)")
    return Levels(sigma, [RampField.from_form(closed_form(X, rho=r)) for r in rho], rule=rule)
