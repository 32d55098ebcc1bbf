"""The alignment report of a network (docs/theory.md 6); see relu_denoise.align."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_points
from ..errors import DataError
from ..files import to_jsonable
from ..geometry import affine_hull, line_angle_deg
from ..metrics import ACTIVE_SHARE
from ..network import ShallowDenoiser
from .directions import UNALIGNED, Candidate, _predicted_set, candidates
from .units import (_baseline, _check_prune_tol, _check_tolerance, _groups, _kept_units, _nearest, _neuron_stats,
                    _per_direction, _share, _shares, _weighted, _wider_note)

_COSTLY = 1.05                   # network cost / closed form's above this: not a min-cost interpolant (note). Fits
#                                  that reach the minimum cost at most ~1% more than the form (0.97-1.003 measured,
#                                  docs/theory.md 4.2, 5); the dense fits that misled issue 10 sat at 1.27-9.3


@dataclass
class AlignReport:
    """What `align_report` measured; `to_dict()` is JSON-able, `neuron_rows()` feeds a CSV.

    Shares are of the path cost of the kept (pruned) units unless stated otherwise, so
    `per_direction` (including 'unaligned') sums to 1; `pruned_share` is of the full path cost.
    """

    aligned_fraction: float      # share assigned to a predicted candidate = sum of per_direction over `predicted`
    other_fraction: float        # share assigned to a rival (non-predicted) candidate
    baseline_fraction: float
    baseline_sd: float           # standard deviation of this network's score over the random orientations
    baseline_draws: int
    tolerance_deg: float
    against: str                 # 'predicted' or 'all candidates'
    separation_deg: float | None  # smallest angle between a predicted and a rival candidate (None: a set is empty)
    separation_pair: list[str] | None  # [predicted name, rival name] at that angle
    ambiguous: bool              # separation_deg < 2 x tolerance_deg: the headline is no verdict
    predicted_from: str          # 'form' (given) | 'fallback' (align's own closed form) | 'names' | 'none'
    pruned_share: float
    n_units: int
    n_units_kept: int
    n_groups: int
    directions: dict             # name -> {vector, kind, predicted, aliases}
    predicted: list[str]
    per_direction: dict          # name -> cost share of the units assigned to it (nearest, within tolerance),
    #                              + 'unaligned'
    groups: list[dict]
    output_parallel: float       # cost-weighted mean |cos(a_k, w_k)|
    in_plane_share: float | None  # cost-weighted mean ||P w_k|| / ||w_k||, when affine_dim < dim
    affine_dim: int
    dim: int
    n_points: int
    geometry: str | None         # of the closed form that gave the predicted set
    status: str | None           # paper | derived | numerical
    rho: float | None            # rho of that closed form (None for the empirical rule)
    cost_ratio: float | None     # the network's path cost / that closed form's cost (only for a given form)
    nearest_fraction: float = 0.0  # share of the units whose nearest candidate is predicted, at any angle
    nearest_max_deg: float | None = None  # the largest angle of those units to their candidate
    discriminating_deg: float | None = None  # separation_deg / 2: the widest tolerance that still tells apart
    aligned_at_discriminating: float | None = None  # aligned_fraction at that tolerance
    notes: list[str] = field(default_factory=list)
    neurons: dict = field(default_factory=dict)  # per kept unit: unit, cost_share, closest, angle_deg, assigned,
    #                                              aligned, in_plane (arrays of length n_units_kept)

    def to_dict(self, *, neurons: bool = False) -> dict:
        """Plain JSON types; the per-neuron arrays only when `neurons` is true (they can be long)."""
        out = {k: to_jsonable(v) for k, v in self.__dict__.items() if k != "neurons"}
        if neurons:
            out["neurons"] = to_jsonable(self.neurons)
        return out

    def neuron_rows(self) -> list[dict]:
        """One dict per kept unit (CSV rows): unit, cost_share, closest, angle_deg, assigned, aligned, in_plane."""
        cols = list(self.neurons)
        return [{c: to_jsonable(self.neurons[c][i]) for c in cols} for i in range(self.n_units_kept)]


# ---------------------------------------------------------------- the report


def align_report(net: ShallowDenoiser, points, *, rho: float | None = None, predicted: list[str] | None = None,
                 form=None, tolerance_deg: float = 5.0, prune_tol: float = ACTIVE_SHARE, rng: np.random.Generator,
                 baseline_draws: int = 200) -> AlignReport:
    """Alignment of the units of `net` with the candidate directions of the clean points (docs/theory.md 6).

    Parameters
    ----------
    net : the denoiser; not modified (a float64 CPU copy is balanced, then pruned).
    points : (N, d) clean points, N >= 2.
    rho : ball radius of the closed form that align builds itself when neither `form` nor
        `predicted` is given; None takes 0.05 x the smallest distance. That fallback serves only
        its directions (docs/theory.md 4: they do not depend on rho); commands that also compare with
        a closed form pass theirs as `form`, so that every command uses one rule.
    predicted : candidate names (aliases accepted) to use instead of a closed form's directions.
    form : a ClosedForm of these points (`closed_form(...)`, or `reference_form(...).form`, the one
        rule every command compares with); its ramp directions are the predicted set and its
        geometry, status and rho are reported. Checked: same N and d, and it fixes every clean
        point. Give at most one of `form`, `predicted` and `rho`.
    tolerance_deg : a unit is assigned to its nearest candidate when |cos(w_k, u)| >= cos(tolerance_deg).
    prune_tol : units with a share of the path cost <= prune_tol are dropped first.
    rng : draws the random orientations of the baseline.
    baseline_draws : number of random orientations averaged in `baseline_fraction`.

    Definitions (s_k = ||a_k|| ||w_k|| / sum over kept units, u_k = w_k / ||w_k||, C the candidates,
    T the predicted set, or all of C when there is none (then `against` = 'all candidates'),
    R the other candidates, the rivals):

    - assignment: unit k goes to c(k) = argmax_{u in C} |u_k^T u| when that |cos| >= cos(tol),
      else to 'unaligned'; per_direction[name] = sum_k s_k [c(k) = name].
    - aligned_fraction = sum_k s_k [c(k) in T] = sum_{name in T} per_direction[name];
      other_fraction = sum_k s_k [c(k) in R]; with per_direction['unaligned'] they sum to 1.
    - separation_deg = min over p in T, q in R of the angle between the lines p and q (None when T
      or R is empty); ambiguous = separation_deg < 2 tol: the tolerance cones of a predicted and a
      rival direction overlap, so "aligned with the predicted directions" cannot be told from
      "aligned with the others" (docs/theory.md 6); the number is kept, a note gives the tolerance that
      would discriminate (below separation_deg / 2), and the headline is no verdict.
    - baseline_fraction: the same statistic at chance: the whole candidate set (predicted and
      rivals together, a rigid body) turned by a uniformly random orthogonal map of the data's
      affine hull, units assigned by the same nearest-candidate rule, averaged over the draws;
      baseline_sd is the spread of this network's score over those orientations. Turning T and R
      together keeps their separation and their overlapping cones, so the mean is the share of
      line directions that the rule gives to T, the expected score of a network with uniformly
      spread directions (a random network scores near it, whatever the geometry). Replacing T
      alone by random directions, with R fixed, would not be fair: random lines land near rivals
      that the real T is clear of (or clear of rivals that crowd the real T), and even a random
      network would score off that baseline. In 2-D the mean is the measure of the lines within
      tol of T and nearer T than R, divided by 180 degrees (2 |T| tol / 180 when no two cones meet).
    - data whose affine hull x_bar + span(U) is smaller than R^d (e.g. three images in R^64):
      the units analysed are those of the function restricted to the hull and projected onto
      it, U^T (h(x_bar + U z) - x_bar), i.e. a_k U, w_k U, b_k + w_k^T x_bar (docs/theory.md 5: the
      paper's real-image claim is about this function; F2: it never costs more). Out-of-hull
      parts of w_k, which fit the noise, do not count against alignment; in_plane_share =
      sum_k s_k ||U^T u_k|| (measured before restricting) reports how much of them there is.
    - groups: units clustered by signed direction (w and -w differ), each unit joining the group
      of the costliest unit within tolerance; offsets are the boundary positions along the
      group's units measured from the data mean x_bar, -(b_k + w_k^T x_bar) / ||w_k||.
    - output_parallel = sum_k s_k |cos(a_k, w_k)| (1 for every closed form of docs/theory.md 4).
    - cost_ratio = path cost of `net` (all units, in R^d) / form's cost, for a given `form` only (None
      otherwise); above 1.05 a note says that the network is not the min-cost interpolant the predicted
      directions are about (docs/theory.md 6: a fit at the minimum costs at most about 1% more).
    """
    X = check_points(points, name="points", d=net.dim)
    tol = _check_tolerance(tolerance_deg)
    prune_tol = _check_prune_tol(prune_tol)
    if int(baseline_draws) < 1:
        raise DataError(f"baseline_draws: must be >= 1, got {baseline_draws}")
    cands, notes = candidates(X)
    cands, names, source, used = _predicted_set(X, cands, rho=rho, predicted=predicted, form=form, notes=notes)
    target, rivals, separation, pair, ambiguous = _targets(cands, names, tol, notes)
    cost_ratio = _cost_ratio(net, used) if source == "form" else None
    if cost_ratio is not None and cost_ratio > _COSTLY:
        notes.append(_costly_note(cost_ratio))
    units, hull, x_bar = _units_in_hull(net, X, prune_tol, notes)
    r, d = (X.shape[1] if hull is None else hull[1].shape[1]), X.shape[1]
    cos_tol = math.cos(math.radians(tol))
    C = np.array([c.u for c in cands])                  # (C, d)
    C = C @ hull[1] if hull is not None else C          # (C, r): candidates lie in the hull
    st = _neuron_stats(units, C, target, cos_tol)
    base = _baseline(units, C, target, rivals, cos_tol, rng, int(baseline_draws))
    groups = _groups(units, x_bar, C, cands, cos_tol)
    nearest = _nearest(units["cost"], st, target, separation)
    if nearest["aligned_at_discriminating"] is not None and nearest["nearest_max_deg"] is not None \
            and not ambiguous and nearest["aligned_at_discriminating"] > _share(units["cost"], st["aligned"]) + 0.05:
        notes.append(_wider_note(nearest, tol))
    return AlignReport(
        aligned_fraction=_share(units["cost"], st["aligned"]), other_fraction=_share(units["cost"], st["other"]),
        baseline_fraction=float(base.mean()), baseline_sd=float(base.std()), baseline_draws=int(baseline_draws),
        tolerance_deg=tol, against="predicted" if names else "all candidates",
        separation_deg=separation, separation_pair=pair, ambiguous=ambiguous, predicted_from=source,
        pruned_share=units["pruned_share"], n_units=net.width, n_units_kept=int(units["idx"].size),
        n_groups=len(groups),
        directions={c.name: {"vector": c.u.tolist(), "kind": c.kind, "predicted": c.name in names,
                             "aliases": list(c.aliases)} for c in cands},
        predicted=list(names), per_direction=_per_direction(units["cost"], st, cands), groups=groups,
        output_parallel=_weighted(units["cost"], st["out_cos"]),
        in_plane_share=_weighted(units["cost"], units["in_plane"]) if hull is not None else None,
        affine_dim=r, dim=d, n_points=len(X), notes=notes,
        geometry=None if used is None else used.geometry, status=None if used is None else used.status,
        rho=None if used is None or used.rho is None else float(used.rho), cost_ratio=cost_ratio, **nearest,
        neurons={"unit": units["idx"], "cost_share": _shares(units["cost"]),
                 "closest": [cands[j].name for j in st["closest"]], "angle_deg": st["angle_deg"],
                 "assigned": [cands[j].name if j >= 0 else UNALIGNED for j in st["assigned"]],
                 "aligned": st["aligned"], "in_plane": units["in_plane"]},
    )



def _targets(cands: list[Candidate], names: list[str], tol: float, notes: list[str]):
    """(target indices, rival indices, separation, its pair, ambiguous) of the candidates; notes as they apply."""
    named = set(names) or {c.name for c in cands}       # no predicted set: every candidate is a target
    target = [i for i, c in enumerate(cands) if c.name in named]
    rivals = [i for i, c in enumerate(cands) if c.name not in named]
    separation, pair = _separation(cands, target, rivals)
    ambiguous = separation is not None and separation < 2 * tol
    if not names:
        notes.append(f"no predicted directions: aligned_fraction is measured against all {len(cands)} candidate "
                     "directions (within tolerance of any), the baseline against randomly turned copies of them")
    if ambiguous:
        notes.append(_ambiguity_note(separation, pair, tol))
    return target, rivals, separation, pair, ambiguous


def _units_in_hull(net: ShallowDenoiser, X: np.ndarray, prune_tol: float, notes: list[str]):
    """(kept units, hull (x_bar, U) or None, the centre in the units' coordinates); for data in a smaller affine
    hull the units are those of the function restricted to it (docs/theory.md 5)."""
    x_bar, U = affine_hull(X)
    r, d = U.shape[1], X.shape[1]
    hull = (x_bar, U) if r < d else None
    units = _kept_units(net, prune_tol, hull)
    if hull is not None:                                # analysis in hull coordinates from here on
        x_bar = np.zeros(r)
        notes.append(f"data in a {r}-D affine subspace of R^{d}: units measured on the function restricted to it "
                     "and projected onto it (docs/theory.md 5); in_plane_share says how much of their directions lies "
                     "in it")
    if units["idx"].size == 0:
        notes.append("no units carry cost after pruning: every fraction is 0")
    return units, hull, x_bar


def _separation(cands: list[Candidate], target: list[int], rivals: list[int]):
    """Smallest angle (degrees) between a target and a rival line, and their names; (None, None) if a set is empty."""
    if not target or not rivals:
        return None, None
    T = np.array([cands[i].u for i in target])          # (T, d)
    R = np.array([cands[j].u for j in rivals])          # (R, d)
    i, j = np.unravel_index(np.abs(T @ R.T).argmax(), (len(T), len(R)))  # nearest lines: largest |cos|
    angle = float(line_angle_deg(T[i][None], R[j][None])[0])
    return angle, [cands[target[i]].name, cands[rivals[j]].name]


def _ambiguity_note(separation: float, pair: list[str], tol: float) -> str:
    return (f"ambiguous: the predicted direction {pair[0]!r} and the other candidate {pair[1]!r} are "
            f"{separation:.3g} degrees apart, less than twice the tolerance ({tol:g} degrees), so a unit within "
            "tolerance of one can be as near the other; aligned_fraction is no verdict here. Read per_direction, "
            f"or measure again with a tolerance below {separation / 2:.3g} degrees (half the separation)")


def _cost_ratio(net: ShallowDenoiser, form) -> float | None:
    """The network's path cost (all units, in R^d) over the closed form's cost; None when the form costs 0."""
    cost = float(form.cost_formula)
    return float(net.path_cost().detach()) / cost if cost > 0 else None


def _costly_note(ratio: float) -> str:
    return (f"the network costs {ratio:.3g} x the reference closed form. Where that form interpolates the training "
            "samples (the empirical rule; sphere or ball noise at its radius) a network costing more is not a "
            "min-cost interpolant, and the predicted directions are a statement about min-cost interpolants "
            "(docs/theory.md 6): the shares then describe this network, not a test of the theory. Where its units "
            "are right but its output layer is not, `reluden certify` reports the cost of least-cost output "
            "weights on the same units (polish)")


