"""The problem a command works on: the clean points, their offline samples, the noise, the reference closed
form and the regime checks, built once per command (`make_problem`) from content-seeded random streams.

Every draw of a run comes from a generator seeded by (recipe seed, purpose, values), where
the values are what the draw depends on: the noise distribution and level, the repeat index.
So a noise level gives the same numbers alone or inside any grid, in any order, and two
levels never share draws.

    make_problem(recipe, base_dir, noise=..., repeat=r)   the clean points, offline samples, reference
"""

import hashlib
import struct
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Source, make_source
from .noise import NoiseSpec, offline_samples


def _word(value) -> int:
    """A 64-bit word for one value: floats by their bits (0.1 and 0.10 agree), text by its hash."""
    if isinstance(value, str):
        return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "little")
    if isinstance(value, (float, np.floating)):
        return struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    return int(value) % 2**64


def seed_sequence(seed: int, purpose: str, *values) -> np.random.SeedSequence:
    return np.random.SeedSequence([_word(seed), _word(purpose), *(_word(v) for v in values)])


def rng(seed: int, purpose: str, *values) -> np.random.Generator:
    """A numpy generator for one purpose ("points", "samples", "test", ...) and the values it depends on."""
    return np.random.default_rng(seed_sequence(seed, purpose, *values))


def torch_seed(seed: int, purpose: str, *values) -> int:
    """A 63-bit seed for torch.Generator().manual_seed, derived like `rng`."""
    return int(seed_sequence(seed, purpose, *values).generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class Overlap:
    """Two noise clouds overlap: exact interpolation is hopeless, outside the theory's regime (docs/theory.md 1).
    Clean points x_i and x_j are `distance` apart, their samples reach `reach` from them."""

    i: int
    j: int
    distance: float
    reach: tuple[float, float]
    widest: float                   # the largest reach of any cloud
    noise: NoiseSpec

    def reason(self) -> str:
        """The finding, in one clause."""
        key = "sigma" if self.noise.distribution == "gaussian" else "radius"
        return (f"noise clouds overlap: x{self.i} and x{self.j} are {self.distance:.3g} apart but their samples "
                f"reach {self.reach[0]:.3g} and {self.reach[1]:.3g} from them ({self.noise.distribution} {key} "
                f"{self.noise.scale:g}, M = {self.noise.samples})")

    def message(self) -> str:
        """The finding, why it matters and the fixes."""
        key = "sigma" if self.noise.distribution == "gaussian" else "radius"
        below = self.noise.scale * self.distance / sum(self.reach)
        return (f"{self.reason()}, so exact interpolation is hopeless; lower noise.{key} below about "
                f"{0.9 * below:.3g}, keep the clean points more than {2 * self.widest:.3g} apart (data.min_distance), "
                "or set train.allow_overlap: true")


@dataclass(frozen=True)
class Trivial:
    """N M <= d + 1: the free affine part V y + c interpolates every sample at cost 0 (docs/theory.md 1)."""

    N: int
    M: int
    d: int

    def message(self) -> str:
        need = -(-(self.d + 2) // self.N)
        return (f"{self.N} points x {self.M} samples = {self.N * self.M} <= d + 1 = {self.d + 1}: the free affine "
                f"map V y + c interpolates every sample at cost 0, outside the paper's regime; give noise.samples "
                f">= {need} (N M > d + 1)")


@dataclass
class Problem:
    """Clean points (N, d) of a source, their offline samples (N, M, d) (None online), the noise they were
    drawn with, and what every command compares with: the reference closed form (computed once)."""

    source: Source
    points: np.ndarray
    samples: np.ndarray | None
    noise: NoiseSpec
    repeat: int = 0
    seed: int = 0

    @functools.cached_property
    def reference(self):
        """The reference closed form (closed_forms.reference_form, the one rho rule), built once."""
        from .closed_forms import reference_form

        return reference_form(self.points, self.noise, self.samples)

    def reference_at(self, rho=None):
        """The reference closed form, with `rho` (closed-form --rho: a number, "auto" or "empirical") overriding
        the recipe's rule; rho None is `reference`."""
        from .closed_forms import reference_form

        return self.reference if rho is None else reference_form(self.points, self.noise, self.samples, rho=rho)

    def radii(self) -> np.ndarray:
        """How far each clean point's noise reaches (N,): its farthest sample, or rho online (docs/theory.md 1)."""
        if self.samples is not None:
            return np.linalg.norm(self.samples - self.points[:, None, :], axis=2).max(axis=1)
        from .noise import rho_rule

        return np.full(len(self.points), rho_rule(self.noise)[0])

    def overlap(self) -> Overlap | None:
        """Two noise clouds that overlap (exact interpolation hopeless); None in the regime of the theory."""
        from .geometry import closest_clouds

        r = self.radii()
        i, j, slack = closest_clouds(self.points, r)
        if slack > 0:
            return None
        return Overlap(i, j, float(np.linalg.norm(self.points[i] - self.points[j])), (float(r[i]), float(r[j])),
                       float(r.max()), self.noise)

    def trivial(self) -> Trivial | None:
        """N M <= d + 1 (the free affine map interpolates every sample at cost 0); None otherwise."""
        N, d = self.points.shape
        return Trivial(N, self.noise.samples, d) if N * self.noise.samples <= d + 1 else None

    def refusal(self, recipe) -> str | None:
        """Why training cannot answer here (overlapping clouds unless train.allow_overlap; a trivial problem
        with the free affine part), or None."""
        overlap, trivial = self.overlap(), self.trivial()
        if overlap is not None and not recipe.train.allow_overlap:
            return overlap.message()
        if trivial is not None and recipe.model.skip:
            return trivial.message()
        return None

    @property
    def init_seed(self) -> int:
        """The seed of a network trained on this problem (the same for `fit` and `compare` at this level)."""
        return torch_seed(self.seed, "init", *_level(self.noise), self.repeat)

    def fit_job(self, recipe, *, device="cpu", checkpoint=None, resume=None, callback=None):
        """The train.FitJob of the recipe's model and train sections on this problem."""
        from .train import FitJob

        data = self.noise if self.samples is None else self.samples
        return FitJob(self.points, data, recipe.model, recipe.train, self.init_seed, device, checkpoint, resume,
                      callback)


def _level(noise: NoiseSpec) -> tuple:
    return noise.distribution, float(noise.scale)


def make_problem(recipe, base_dir=".", *, noise: NoiseSpec | None = None, repeat: int = 0) -> Problem:
    """The recipe's clean points (repeat r: a redrawn set) and offline samples at `noise` (default: the recipe's).

    Points depend on (seed, repeat); samples on (seed, distribution, level, repeat) — so `fit`,
    `closed-form`, `align` and `compare` at the recipe's own level train and measure on the same samples.
    """
    noise = recipe.noise if noise is None else noise
    source = make_source(recipe.data, rng=rng(recipe.seed, "points", repeat), base_dir=Path(base_dir))
    samples = None
    if noise.mode == "offline":
        samples = offline_samples(source.points, noise, rng=rng(recipe.seed, "samples", *_level(noise), repeat))
    return Problem(source, source.points, samples, noise, repeat, recipe.seed)
