"""Source: the clean training points of a recipe and, where they come from a distribution, a way to draw more."""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..checks import check_rng
from ..errors import DataError, NoDistributionError

Sampler = Callable[[int, np.random.Generator], np.ndarray]


@dataclass
class Source:
    """Clean training points and, where they come from a distribution, a way to draw more.

    Attributes
    ----------
    points : ndarray, shape (N, d), float64
        The clean training points.
    kind : str
        The recipe's `data.kind`.
    info : dict
        JSON-able facts worth reporting (chosen indices, angles, bases, ...).
    pool : str or None
        Where the draws come from is a finite held-out pool (digits, patches): that pool in words,
        e.g. "class 3 has 177 held-out images"; None for a distribution or no draws at all.
    """

    points: np.ndarray
    kind: str
    info: dict
    _sampler: Optional[Sampler] = field(default=None, repr=False, compare=False)
    pool: Optional[str] = None

    @property
    def has_distribution(self) -> bool:
        """Whether `draw` can give fresh clean points (False for the fixed points of `points` and `file`)."""
        return self._sampler is not None

    def draw(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """Return (n, d) fresh clean points from the source's distribution.

        Raises NoDistributionError where the source has no distribution (`points`, `file`) and
        NotEnoughHeldOutError (with `available`) where a held-out pool (digits, patches) holds fewer
        than n points.
        """
        if self._sampler is None:
            raise NoDistributionError(
                f"data.kind={self.kind} has no distribution to draw fresh clean points from; "
                "use a kind with one (univariate, subspace, rays, simplex, digits, patches) "
                "or supply the test points yourself")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DataError(f"draw: n must be an integer >= 1, got {n!r}")
        check_rng(rng)
        return self._sampler(int(n), rng)
