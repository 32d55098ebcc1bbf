"""The problem a command works on: content-seeded random streams and the training set (design.md, Conventions).

Every draw of a run comes from a generator seeded by (recipe seed, purpose, values), where
the values are what the draw depends on: the noise distribution and level, the repeat index.
So a noise level gives the same numbers alone or inside any grid, in any order, and two
levels never share draws.

    training_set(recipe, base_dir, noise=..., repeat=r)   the clean points and offline samples
"""

import hashlib
import struct
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


@dataclass
class TrainingSet:
    """Clean points (N, d) of a source and their offline samples (N, M, d); samples None online."""

    source: Source
    points: np.ndarray
    samples: np.ndarray | None
    noise: NoiseSpec
    repeat: int = 0
    seed: int = 0

    def radii(self) -> np.ndarray:
        """How far each clean point's noise reaches (N,): its farthest sample, or rho online (docs/theory.md 1)."""
        if self.samples is not None:
            return np.linalg.norm(self.samples - self.points[:, None, :], axis=2).max(axis=1)
        from .noise import rho_rule

        return np.full(len(self.points), rho_rule(self.noise)[0])

    def overlap(self) -> str | None:
        """Why exact interpolation is hopeless here (two noise clouds overlap), with the numbers and the fixes;
        None in the regime of the theory."""
        from .geometry import closest_clouds

        r = self.radii()
        i, j, slack = closest_clouds(self.points, r)
        if slack > 0:
            return None
        dist = float(np.linalg.norm(self.points[i] - self.points[j]))
        key = "sigma" if self.noise.distribution == "gaussian" else "radius"
        below = self.noise.scale * dist / (r[i] + r[j])
        return (f"noise clouds overlap: x{i} and x{j} are {dist:.3g} apart but their samples reach {r[i]:.3g} and "
                f"{r[j]:.3g} from them ({self.noise.distribution} {key} {self.noise.scale:g}, M = {self.noise.samples}), "
                f"so exact interpolation is hopeless; lower noise.{key} below about {0.9 * below:.3g}, keep the clean "
                f"points more than {r.max() * 2:.3g} apart (data.min_distance), or set train.allow_overlap: true")

    def trivial(self) -> str | None:
        """Why the problem is trivial (N M <= d + 1: the free affine map interpolates every sample at cost 0)."""
        N, d = self.points.shape
        n = N * self.noise.samples
        if n > d + 1:
            return None
        need = -(-(d + 2) // N)
        return (f"{N} points x {self.noise.samples} samples = {n} <= d + 1 = {d + 1}: the free affine map V y + c "
                f"interpolates every sample at cost 0, outside the paper's regime; give noise.samples >= {need} "
                f"(N M > d + 1)")

    @property
    def init_seed(self) -> int:
        """The seed of a network trained on this set (the same for `fit` and `compare` at this level)."""
        return torch_seed(self.seed, "init", *_level(self.noise), self.repeat)


def _level(noise: NoiseSpec) -> tuple:
    return noise.distribution, float(noise.scale)


def training_set(recipe, base_dir=".", *, noise: NoiseSpec | None = None, repeat: int = 0) -> TrainingSet:
    """The recipe's clean points (repeat r: a redrawn set) and offline samples at `noise` (default: the recipe's).

    Points depend on (seed, repeat); samples on (seed, distribution, level, repeat) — so `fit`,
    `closed-form`, `align` and `compare` at the recipe's own level train and measure on the same samples.
    """
    noise = recipe.noise if noise is None else noise
    source = make_source(recipe.data, rng=rng(recipe.seed, "points", repeat), base_dir=Path(base_dir))
    samples = None
    if noise.mode == "offline":
        samples = offline_samples(source.points, noise, rng=rng(recipe.seed, "samples", *_level(noise), repeat))
    return TrainingSet(source, source.points, samples, noise, repeat, recipe.seed)
