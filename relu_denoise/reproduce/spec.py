"""What a claim is: the runs it needs, how its numbers come from their results, and what they must satisfy.

A claim is data (`Claim`): its statement and source, the runs (`RunSpec`: a command on a shipped recipe with
overrides, smaller ones under --quick), a `measure` function from the runs' results to named numbers, and the
`checks` those numbers must pass, each a comparison with its tolerance and the reason for that tolerance.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

VERDICTS = ("holds", "fails", "inconclusive", "not built")


@dataclass(frozen=True)
class RunSpec:
    """One run a claim needs: `command` on a recipe of recipes/ ("builtin": compare's built-in recipe) with the
    recipe overrides `set` (dotted key -> value), and `quick` on top of them under --quick."""

    name: str                               # the run's name inside its claim
    command: str                            # closed-form | fit | compare | align | certify | flow
    recipe: str                             # a file of recipes/, or "builtin"
    set: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)    # the sweep file's command options: tolerance, nn, time_limit, tol
    figures: bool = False                   # draw the run's own figures (the report's evidence)
    weight: float = 1.0                     # rough relative cost: the heaviest runs start first

    seeds: tuple = ()                       # full size: one run per recipe seed (quick: the first only)

    def overrides(self, quick: bool) -> dict:
        return {**self.set, **(self.quick if quick else {})}

    def variants(self, quick: bool) -> list[tuple[str, dict]]:
        """(run name, overrides) of each run: `name`, then `name@seed=S` for the further seeds."""
        seeds = self.seeds[:1] if quick else self.seeds
        if not seeds:
            return [(self.name, self.overrides(quick))]
        return [(self.name if i == 0 else f"{self.name}@seed={seed}", {**self.overrides(quick), "seed": seed})
                for i, seed in enumerate(seeds)]


def of_run(runs: dict, name: str) -> list:
    """The runs of RunSpec `name`, one per seed (variants)."""
    return [r for key, r in runs.items() if key == name or key.startswith(f"{name}@")]


@dataclass(frozen=True)
class Check:
    """`name`'s measured value must lie in [low, high] (either end open: None); `why` the tolerance."""

    name: str
    low: float | None = None
    high: float | None = None
    why: str = ""

    def holds(self, value) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    @property
    def expected(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"


def within(name: str, target: float, tol: float, why: str) -> Check:
    return Check(name, target - tol, target + tol, why)


def at_most(name: str, bound: float, why: str) -> Check:
    return Check(name, None, bound, why)


def at_least(name: str, bound: float, why: str) -> Check:
    return Check(name, bound, None, why)


@dataclass(frozen=True)
class Measurement:
    """A claim's numbers (check name -> value), one line saying them, and why they cannot decide the claim
    (None: they can)."""

    values: dict
    text: str
    inconclusive: str | None = None
    figures: tuple = ()                     # (label, path) of figures drawn from the results, beside the runs'


@dataclass(frozen=True)
class RunResult:
    """A finished run as a claim reads it: its status, reason, result.json (empty when it has none), directory
    and wall seconds."""

    status: str | None
    reason: str | None
    result: dict
    run_dir: Path
    seconds: float

    @property
    def finished(self) -> bool:
        return self.status in ("ok", "not-converged", "no-closed-form")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, as a measured row of the report."""

    id: str
    paper: str                              # NeurIPS 2023 | ICML 2025
    claim: str                              # the statement, in one line
    source: str                             # the paper's section and docs/theory.md's
    paper_says: str                         # what the paper reports
    runs: tuple = ()                        # RunSpec, ...
    measure: Callable | None = None         # {run name: RunResult} -> Measurement
    checks: tuple = ()                      # Check, ...; the first is the row's headline
    evidence: tuple = ()                    # (run name, file) of figures to show, e.g. ("fit", "fit.png")
    not_built: str | None = None            # why the claim has no measurement yet

    def verdict(self, m: Measurement) -> tuple[str, str | None, list[dict]]:
        """(verdict, reason, checks as rows) of a measurement: holds when every check passes."""
        rows = [{"name": c.name, "measured": m.values.get(c.name), "expected": c.expected,
                 "holds": c.holds(m.values.get(c.name)), "why": c.why} for c in self.checks]
        if m.inconclusive is not None:
            return "inconclusive", m.inconclusive, rows
        failed = [r for r in rows if not r["holds"]]
        if failed:
            return "fails", "; ".join(f"{r['name']} = {_show(r['measured'])}, expected {r['expected']}"
                                      for r in failed), rows
        return "holds", None, rows


def _show(value) -> str:
    return "not measured" if value is None else f"{value:.4g}"
