"""The results `certify`, `polish` and `supremum` return (docs/theory.md 8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..files import to_jsonable
from ..network import ShallowDenoiser

LOWER_METHODS = ("lp-1d", "exact-1d", "exact-2d", "searched")
UPPER_SOCP = "socp-fixed-units+column-generation"
UPPER_LP = "lp-knots-at-samples"


@dataclass
class Certificate:
    """A certified interval [lower, upper] on the minimum path cost, and the network at `upper`.

    gap = upper / lower - 1. `lower_method` is 'lp-1d' or 'exact-1d' (one input dimension, exact),
    'exact-2d' (the dual constraint checked over every unit of a 2-D input) or 'searched' (above
    two dimensions: the supremum was searched and the lower bound is not a proof; `notes` says
    so). `network` interpolates every sample to solver precision (`max_residual`, measured with
    `ShallowDenoiser.predict`). `history` has one entry per round (best lower and upper so far).
    """

    lower: float
    upper: float
    lower_method: str
    upper_method: str
    n_constraints: int
    n_units: int
    rounds: int
    seconds: float
    solver: dict
    network: ShallowDenoiser
    max_residual: float
    converged: bool
    stop_reason: str
    tol: float
    notes: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return _gap(self.lower, self.upper)

    def to_dict(self) -> dict:
        """Everything but the network, JSON-able."""
        keys = ("lower", "upper", "gap", "lower_method", "upper_method", "n_constraints", "n_units",
                "rounds", "seconds", "solver", "max_residual", "converged", "stop_reason", "tol",
                "notes", "history")
        return to_jsonable({k: getattr(self, k) for k in keys})        # inf (no lower bound yet) -> None


class Polished(NamedTuple):
    """`polish`'s result: the network with least-cost output weights, its path cost, its max residual."""

    network: ShallowDenoiser
    cost: float
    max_residual: float


@dataclass(frozen=True)
class Supremum:
    """s = sup_{||w||=1, b} ||sum_i lam_i relu(w . y_i + b)|| and the best units found.

    W (k, r) unit directions, b (k,) and values (k,) sorted from the largest; values[0] = value.
    `exact` is False where the supremum was only searched (inputs of dimension > 2).
    """

    value: float
    W: np.ndarray
    b: np.ndarray
    values: np.ndarray
    exact: bool


def _gap(lower: float, upper: float) -> float:
    if upper == 0 and lower == 0:
        return 0.0
    return upper / lower - 1 if lower > 0 else float("inf")
