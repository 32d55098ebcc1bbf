"""Noisy samples y = x + eps and the rules that turn a noise level into a flat-zone radius rho.

docs/theory.md section 1: `gaussian` noise (sigma, the paper's experiments) or the theory's bounded
noise, uniform on the `sphere` or in the `ball` of a radius. Offline training uses one fixed set
of M samples per clean point; online training draws fresh noise every step.
"""

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class NoiseSpec(BaseModel):
    """The recipe's `noise:` section."""

    model_config = ConfigDict(extra="forbid", strict=True)

    distribution: Literal["gaussian", "sphere", "ball"] = "gaussian"
    sigma: float | None = Field(None, gt=0, description="standard deviation per coordinate (gaussian)")
    radius: float | None = Field(None, gt=0, description="radius of the sphere or ball")
    samples: int = Field(100, ge=1, description="noisy samples M per clean point (offline)")
    mode: Literal["offline", "online"] = "offline"
    rho: Literal["auto", "empirical"] | float | None = Field(
        None, description="flat-zone radius of the reference closed form: a number, 'auto' (sigma sqrt(2 ln M)) "
        "or 'empirical' (extreme sample projections); default: the radius for sphere/ball noise, empirical for "
        "offline Gaussian noise, auto online (docs/theory.md 1.1)")

    @model_validator(mode="after")
    def _scale_matches_distribution(self):
        if self.distribution == "gaussian":
            if self.radius is not None:
                raise ValueError("gaussian noise takes sigma, not radius")
            self.sigma = 0.05 if self.sigma is None else self.sigma
        elif self.radius is None or self.sigma is not None:
            raise ValueError(f"{self.distribution} noise takes radius (and no sigma)")
        return self

    @field_validator("rho")
    @classmethod
    def _rho_positive(cls, rho):
        if isinstance(rho, float) and rho <= 0:
            raise ValueError("must be > 0, 'auto' or 'empirical'")
        return rho

    @property
    def scale(self) -> float:
        """sigma for gaussian noise, the radius otherwise."""
        return self.sigma if self.distribution == "gaussian" else self.radius


def draw_noise(shape: tuple[int, ...], spec: NoiseSpec, *, rng: np.random.Generator) -> np.ndarray:
    """eps of shape (..., d) from the spec's distribution, float64."""
    g = rng.standard_normal(shape)
    if spec.distribution == "gaussian":
        return spec.sigma * g
    on_sphere = g / np.linalg.norm(g, axis=-1, keepdims=True)
    if spec.distribution == "sphere":
        return spec.radius * on_sphere
    d = shape[-1]
    return spec.radius * rng.random(shape[:-1] + (1,)) ** (1 / d) * on_sphere   # uniform in the ball


def draw_noise_torch(shape: tuple[int, ...], spec: NoiseSpec, *, generator, dtype=None, device="cpu"):
    """Same as draw_noise, drawn by torch on the generator's device (fresh noise for online training).

    generator: a torch.Generator; dtype: a torch dtype (default float64). Returns a torch.Tensor.
    """
    import torch

    dtype = torch.float64 if dtype is None else dtype
    g = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device).to(device)
    if spec.distribution == "gaussian":
        return spec.sigma * g
    on_sphere = g / g.norm(dim=-1, keepdim=True)
    if spec.distribution == "sphere":
        return spec.radius * on_sphere
    u = torch.rand(shape[:-1] + (1,), generator=generator, dtype=dtype, device=generator.device).to(device)
    return spec.radius * u ** (1 / shape[-1]) * on_sphere


def offline_samples(points: np.ndarray, spec: NoiseSpec, *, rng: np.random.Generator) -> np.ndarray:
    """M noisy copies of each clean point: (N, M, d) from points (N, d)."""
    N, d = points.shape
    return points[:, None, :] + draw_noise((N, spec.samples, d), spec, rng=rng)


def rho_rule(spec: NoiseSpec, override: float | str | None = None) -> tuple[float | None, str]:
    """The one rule for the reference closed form's flat zones (docs/theory.md 1.1): (rho, rule).

    `override` (closed-form --rho) or the recipe's noise.rho: a number is used as is ("number");
    "auto" = sigma sqrt(2 ln M), the typical extreme projection of M Gaussian draws ("auto";
    the radius for sphere/ball noise); "empirical" = the extreme projections of the offline
    samples (rho None). Unset: the radius for sphere/ball noise ("radius"), "empirical" for
    offline Gaussian noise, "auto" online, where no fixed samples exist.
    """
    rule = spec.rho if override is None else override
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        return float(rule), "number"
    offline = spec.mode == "offline"
    if offline and (rule == "empirical" or (rule is None and spec.distribution == "gaussian")):
        return None, "empirical"
    if spec.distribution != "gaussian":
        return float(spec.radius), "radius"
    return float(spec.sigma * np.sqrt(2 * np.log(max(spec.samples, 2)))), "auto"   # M = 1 read as 2


def resolve_rho(spec: NoiseSpec, override: float | str | None = None) -> float | str:
    """`rho_rule`'s radius, or "empirical" for the sample-extreme rule."""
    rho, rule = rho_rule(spec, override)
    return "empirical" if rule == "empirical" else rho
