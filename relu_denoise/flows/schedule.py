"""The noise levels of a probability flow (docs/theory.md 10.2): a geometric schedule and the rho of each level.

The flow runs in the time r = ln(sigma_max / sigma), so sigma(r) = sigma_max e^{-r} for r from 0 to
r_end = ln(sigma_max / sigma_min). A schedule of K levels spaced evenly in r (geometrically in sigma) is where
trained denoisers are fitted, one per level; the closed form is exact at any sigma. Each level's rho comes
from the recipe's own rule (noise.rho_rule on the noise model at that level, docs/theory.md 1.1), so a
schedule says what the command's result.json reports: a list of {sigma, rho}, the start level first.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import RecipeError
from ..noise import NoiseSpec, rho_rule


def geometric_levels(sigma_max, sigma_min, levels) -> np.ndarray:
    """K noise levels sigma_max = s_0 > s_1 > ... > s_{K-1} = sigma_min, evenly spaced in ln sigma: (K,).

    K = 1 is the single level sigma_max (one denoiser for the whole flow). RecipeError, one line naming the
    value, for a level that is not a finite number > 0, sigma_min >= sigma_max, or K not an integer >= 1.
    """
    hi, lo = _level(sigma_max, "sigma_max"), _level(sigma_min, "sigma_min")
    if not lo < hi:
        raise RecipeError(f"schedule: sigma_min ({lo:g}) must be < sigma_max ({hi:g}); the flow runs from the "
                          "start level sigma_max down to sigma_min")
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise RecipeError(f"schedule: levels must be an integer >= 1, got {levels!r}")
    if levels == 1:
        return np.array([hi])
    return hi * (lo / hi) ** (np.arange(levels) / (levels - 1))     # (K,): s_k = s_0 (s_min / s_0)^(k / (K-1))


def _level(value, name: str, where: str = "schedule") -> float:
    """A finite float > 0, or RecipeError "<where>: <name> must be a finite number > 0, got ..."."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = np.nan
    if not np.isfinite(v) or v <= 0:
        raise RecipeError(f"{where}: {name} must be a finite number > 0, got {value!r}")
    return v


def rho_at(noise: NoiseSpec, sigma: float) -> tuple[float | None, str]:
    """(rho, rule) of the recipe's rho rule at noise level sigma (docs/theory.md 1.1): the recipe's noise model
    with its scale set to sigma (sigma for Gaussian noise, the radius for sphere/ball), offline. rho is None
    under the empirical rule, whose flat zones come from each level's own samples."""
    from ..compare import level_noise

    return rho_rule(level_noise(noise, sigma))


@dataclass(frozen=True)
class Schedule:
    """Noise levels of a flow, the start level first, and the rho of each by one rule.

    sigma : (K,) decreasing levels; sigma[0] = sigma_max is the start level sigma_T.
    rho : (K,) the flat-zone radius at each level (None under the empirical rule).
    rho_rule : number | auto | radius | empirical (noise.rho_rule).
    sigma_min : where the flow stops (the last level when K >= 2).
    """

    sigma: tuple[float, ...]
    rho: tuple[float | None, ...]
    rho_rule: str
    sigma_min: float

    @property
    def sigma_max(self) -> float:
        return self.sigma[0]

    @property
    def levels(self) -> int:
        return len(self.sigma)

    @property
    def r_end(self) -> float:
        """r at sigma_min: ln(sigma_max / sigma_min) (docs/theory.md 10.2)."""
        return float(np.log(self.sigma_max / self.sigma_min))

    def sigma_at(self, r) -> np.ndarray | float:
        """sigma(r) = sigma_max e^{-r}."""
        return self.sigma_max * np.exp(-np.asarray(r, dtype=np.float64))

    def to_dict(self) -> list[dict]:
        """[{sigma, rho}, ...], the start level first: the `schedule` of the flow command's result.json."""
        return [{"sigma": float(s), "rho": None if r is None else float(r)} for s, r in zip(self.sigma, self.rho)]


def make_schedule(noise: NoiseSpec, *, sigma_max, sigma_min, levels) -> Schedule:
    """K geometric levels from sigma_max to sigma_min and each level's rho by the recipe's rule (rho_at).

    A number given as noise.rho is used as is at every level (the rule of docs/theory.md 1.1); 'auto' scales
    with sigma, the radius of sphere/ball noise is the level itself.
    """
    sigma = geometric_levels(sigma_max, sigma_min, levels)
    rules = [rho_at(noise, s) for s in sigma]
    return Schedule(tuple(float(s) for s in sigma), tuple(r for r, _ in rules), rules[0][1],
                    _level(sigma_min, "sigma_min"))
