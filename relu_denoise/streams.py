"""Random streams derived from content, never from position (design.md, Conventions).

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
