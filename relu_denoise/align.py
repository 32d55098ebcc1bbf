"""Alignment of a denoiser's ReLU units with directions of the clean data (docs/theory.md 6).

Neuron k of h(y) = sum_k a_k [w_k^T y + b_k]_+ + V y + c has input direction w_k / ||w_k||,
output direction a_k / ||a_k||, boundary {y : w_k^T y + b_k = 0} and cost share
||a_k|| ||w_k|| / path cost. The clean points give **candidate directions** (undirected lines):

    edge          x_j - x_i for i < j, named 'edge xi-xj'
    altitude      in a triangle of three points, the component of x_i - x_j perpendicular to the
                  opposite edge (from the foot of the altitude to x_i), named 'altitude xi' when the
                  triangle is all the points, 'altitude xi of xaxbxc' for a triangle among more points
    face-normal   the same for a simplex of m >= 4 points: the direction within its affine hull
                  perpendicular to the facet opposite x_i ('face-normal xi', '... of xaxbxcxd')
    ray           a closed-form ramp direction that is none of the above (rare; named 'ray <label>')

Candidates that coincide (|cos| > 1 - 1e-9, e.g. the edges of one ray, or an altitude of a right
triangle and a leg) are kept once under the first name, the others listed as its aliases. The
**predicted** directions are the distinct ramp directions of the closed form (docs/theory.md 4),
named after the candidate they coincide with; the other candidates are the **rivals**.

Each kept unit is **assigned** to its nearest candidate (largest |cos(w_k, u)|: only |cos| matters
for an undirected line) when that candidate lies within the tolerance, |cos| >= cos(tolerance),
else to 'unaligned' (docs/theory.md 6). The headline aligned fraction is the cost share assigned to
predicted candidates, so it is the sum of the per-direction shares over the predicted names: a
unit near a predicted direction but nearer a rival counts for the rival. Where a predicted and a
rival candidate lie less than twice the tolerance apart, a unit within tolerance of one may be
as close to the other, and the report says so (`ambiguous`) instead of giving a verdict.

`align_report` balances and prunes a copy of the network and reports the aligned cost fraction,
its random baseline, cost shares per direction, the separation between predicted and rival
candidates, groups of units by (signed) direction, how parallel a_k is to w_k, for data whose
affine hull is smaller than R^d the in-plane share, and, given the closed form, the network's cost
over the form's: the predicted directions are those of min-cost interpolants, so a network far above
the form's cost (a fit whose output layer spreads its cost over many units) is flagged in a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .checks import check_points, check_positive
from .closed_forms import closed_form
from .errors import DataError, NoClosedFormError
from .files import to_jsonable
from .geometry import affine_hull, diameter, line_angle_deg, min_distance, span_basis
from .metrics import ACTIVE_SHARE
from .network import ShallowDenoiser

__all__ = ["Candidate", "AlignReport", "candidates", "align_report"]

KINDS = ("edge", "altitude", "face-normal", "ray")
UNALIGNED = "unaligned"          # the per_direction key of the cost share aligned with no candidate
_SAME = 1e-9                     # |cos| within this of 1: the same undirected line
_MAX_EDGE_POINTS = 100           # above: edges to nearest neighbours only
_NEIGHBOURS = 2                  # nearest neighbours per point for many points
_MAX_EDGES = 2000                # at most this many (shortest) edges for many points
_MAX_FACE_POINTS = 8             # above: no altitudes / face normals (2^N subsets)
_RHO_SHARE = 0.05                # rho = 0.05 x the smallest distance (0.1 x half of it) when none given
_COSTLY = 1.05                   # network cost / closed form's above this: not a min-cost interpolant (note). Fits
#                                  that reach the minimum cost at most ~1% more than the form (0.97-1.003 measured,
#                                  docs/theory.md 4.2, 5); the dense fits that misled issue 10 sat at 1.27-9.3


@dataclass(frozen=True)
class Candidate:
    """A candidate direction of the clean data: a unit vector u (d,) standing for the line R u."""

    name: str
    u: np.ndarray                # (d,)
    kind: str                    # edge | altitude | face-normal | ray
    aliases: tuple[str, ...] = ()


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


# ---------------------------------------------------------------- candidates


def candidates(points) -> tuple[list[Candidate], list[str]]:
    """Candidate directions of the clean points (N, d), N >= 2, and notes on any cap applied.

    Edges between all pairs for N <= 100 (else each point's 2 nearest neighbours, at most the
    2000 shortest); altitudes / face normals of every affinely independent subset of >= 3 points
    for N <= 8. Coinciding lines are merged (first name kept, the others become aliases).
    """
    X = check_points(points, name="points")
    N = len(X)
    if N < 2:
        raise DataError(f"points: alignment needs at least 2 clean points, got {N}")
    notes = []
    if N <= _MAX_EDGE_POINTS:
        pairs = list(combinations(range(N), 2))
    else:
        pairs = _neighbour_pairs(X)
        notes.append(f"{N} points: edges only to each point's {_NEIGHBOURS} nearest neighbours "
                     f"({len(pairs)} edges), no altitudes or face normals")
    cands = [_edge(X, i, j) for i, j in pairs]
    if N <= _MAX_FACE_POINTS:
        cands += _faces(X)
    elif N <= _MAX_EDGE_POINTS:
        notes.append(f"{N} points: edges only, no altitudes or face normals (they need N <= {_MAX_FACE_POINTS})")
    return _merge(cands), notes


def _edge(X: np.ndarray, i: int, j: int) -> Candidate:
    v = X[j] - X[i]
    n = np.linalg.norm(v)
    if n == 0:
        raise DataError(f"points: x{i} and x{j} coincide; remove duplicates")
    return Candidate(f"edge x{i}-x{j}", v / n, "edge")


def _neighbour_pairs(X: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, joining each point to its nearest neighbours; the shortest _MAX_EDGES."""
    N = len(X)
    found = {}
    step = max(1, 2_000_000 // (N * max(X.shape[1], 1)))
    for s in range(0, N, step):
        D = np.linalg.norm(X[s:s + step, None, :] - X[None, :, :], axis=-1)  # (n_s, N)
        D[np.arange(D.shape[0]), np.arange(s, s + D.shape[0])] = np.inf
        near = np.argsort(D, axis=1)[:, :_NEIGHBOURS]
        for r, row in enumerate(near):
            for j in row:
                i = s + r
                found[(min(i, j), max(i, j))] = D[r, j]
    return sorted(found, key=lambda p: (found[p], p))[:_MAX_EDGES]


def _faces(X: np.ndarray) -> list[Candidate]:
    """Altitudes (triangles) and face normals (simplices of >= 4 points) of every affinely independent subset."""
    N = len(X)
    out = []
    for m in range(3, N + 1):
        for S in combinations(range(N), m):
            if span_basis(X[list(S)] - X[S[0]]).shape[1] != m - 1:
                continue                                  # not a simplex
            kind = "altitude" if m == 3 else "face-normal"
            where = "" if m == N else " of " + "".join(f"x{i}" for i in S)
            out += [Candidate(f"{kind} x{i}{where}", _face_normal(X, i, [j for j in S if j != i]), kind)
                    for i in S]
    return out


def _face_normal(X: np.ndarray, i: int, facet: list[int]) -> np.ndarray:
    """Unit component of x_i - x_f perpendicular to the facet's affine hull: from the facet to x_i."""
    f = X[facet[0]]
    Q = span_basis(X[facet] - f)                       # (d, m - 2)
    v = X[i] - f
    n = v - Q @ (Q.T @ v)
    return n / np.linalg.norm(n)


def _merge(cands: list[Candidate]) -> list[Candidate]:
    """Keep the first of each set of coinciding lines; the later names become its aliases."""
    if not cands:
        return []
    C = np.array([c.u for c in cands])                  # (C, d)
    G = np.abs(C @ C.T) > 1 - _SAME                     # (C, C)
    taken = np.zeros(len(cands), bool)
    out = []
    for i, c in enumerate(cands):
        if taken[i]:
            continue
        same = np.flatnonzero(G[i] & ~taken)
        taken[same] = True
        out.append(Candidate(c.name, c.u, c.kind, tuple(cands[j].name for j in same if j != i)))
    return out


# ---------------------------------------------------------------- predicted directions


def _predicted_set(X: np.ndarray, cands: list[Candidate], *, rho, predicted, form, notes: list[str]):
    """(candidates, predicted names, predicted_from, the closed form that gave them or None)."""
    if form is not None and (rho is not None or predicted is not None):
        raise DataError("form: give the closed form alone; rho only sets the closed form align builds itself "
                        "when no form is given, and predicted names replace a closed form's directions")
    if predicted is not None:
        return cands, _resolve_names(cands, list(predicted)), "names", None
    if form is not None:
        _check_form(form, X)
        source = "form"
    else:
        form, failure = _fallback_form(X, rho)
        source = "fallback"
        if form is None:
            notes.append(failure)
            return cands, [], "none", None
    cands, names = _mark_predicted(cands, _ramp_directions(form))
    return cands, names, (source if names else "none"), form


def _check_form(form, X: np.ndarray) -> None:
    """A ClosedForm of these points: the right shape, and it keeps every clean point fixed (h*(x_n) = x_n)."""
    if hasattr(form, "rho_rule") and hasattr(form, "form"):
        raise DataError("form: got a Reference; pass its .form (a ClosedForm), or None where it has none")
    if not all(hasattr(form, k) for k in ("ramps", "geometry", "status", "rho", "dim", "n_points", "predict")):
        raise DataError(f"form: expected a ClosedForm (closed_form(...) or reference_form(...).form), "
                        f"got {type(form).__name__}")
    N, d = X.shape
    if (form.n_points, form.dim) != (N, d):
        raise DataError(f"form: a closed form of {form.n_points} points in R^{form.dim}, but the points are {N} "
                        f"in R^{d}; build it from the same points")
    moved = float(np.max(np.linalg.norm(np.asarray(form.predict(X), dtype=np.float64) - X, axis=1)))
    if moved > 1e-6 * diameter(X):                       # docs/theory.md 4: every closed form fixes the clean points
        raise DataError(f"form: moves a clean point by {moved:.3g} (a closed form of these points fixes them); "
                        "the form was built from other points")


def _fallback_form(X: np.ndarray, rho: float | None):
    """align's own closed form, for its directions only: (form, None) or (None, a failure note).

    rho None takes 0.05 x the smallest distance (then 1e-3 of that, for flat triangles): the
    directions of docs/theory.md 4 do not depend on rho as long as a form exists.
    """
    if rho is None:
        dmin = min_distance(X)
        tries = [_RHO_SHARE * dmin, _RHO_SHARE * dmin * 1e-3]
    else:
        tries = [check_positive(rho, name="rho")]
    failure = None
    for r in tries:
        try:
            return closed_form(X, rho=r), None
        except NoClosedFormError as exc:
            failure = exc
            if exc.kind != "rho-too-large":
                break                                     # a smaller rho cannot help
    return None, f"no closed form for these points ({failure.condition})"


def _ramp_directions(form) -> list[tuple[np.ndarray, str]]:
    """Distinct ramp directions (u, label) of a closed form, as undirected lines."""
    dirs = []
    for ramp in form.ramps:
        u = np.asarray(ramp.u, dtype=np.float64)
        if not any(abs(u @ v) > 1 - _SAME for v, _ in dirs):
            dirs.append((u, ramp.label))
    return dirs


def _mark_predicted(cands: list[Candidate], dirs) -> tuple[list[Candidate], list[str]]:
    """Names of the candidates each predicted direction coincides with; unmatched ones become 'ray' candidates."""
    cands, names = list(cands), []
    for u, label in dirs:
        match = next((c for c in cands if abs(c.u @ u) > 1 - _SAME), None)
        if match is None:
            match = Candidate(f"ray {label}", np.asarray(u, float), "ray")
            cands.append(match)
        if match.name not in names:
            names.append(match.name)
    return cands, names


def _resolve_names(cands: list[Candidate], predicted: list[str]) -> list[str]:
    """Canonical candidate names for user-given names (aliases accepted)."""
    lookup = {c.name: c.name for c in cands} | {a: c.name for c in cands for a in c.aliases}
    if len(predicted) == 0:
        raise DataError("predicted: empty list; give candidate names, or None to take them from the closed form")
    unknown = [p for p in predicted if p not in lookup]
    if unknown:
        raise DataError(f"predicted: no candidate named {', '.join(map(repr, unknown))}; "
                        f"known: {', '.join(lookup)}")
    return list(dict.fromkeys(lookup[p] for p in predicted))


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
    cost_ratio = _cost_ratio(net, used) if source == "form" else None
    if cost_ratio is not None and cost_ratio > _COSTLY:
        notes.append(_costly_note(cost_ratio))
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


def _nearest(cost: np.ndarray, st: dict, target: list[int], separation: float | None) -> dict:
    """How the units sit around the predicted directions whatever the tolerance: the share nearest to one, its
    widest angle (units of at least 1% of the cost), and the aligned share at half the separation (the widest
    tolerance whose cones of predicted and rival directions do not meet)."""
    near = np.isin(st["closest"], target)
    big = near & (_shares(cost) >= 0.01)
    out = {"nearest_fraction": _share(cost, near),
           "nearest_max_deg": float(st["angle_deg"][big].max()) if big.any() else None,
           "discriminating_deg": None, "aligned_at_discriminating": None}
    if separation is not None:
        half = separation / 2
        out.update(discriminating_deg=half, aligned_at_discriminating=_share(cost, near & (st["angle_deg"] <= half)))
    return out


def _wider_note(nearest: dict, tol: float) -> str:
    return (f"{nearest['nearest_fraction']:.3g} of the cost is nearest to the predicted directions, up to "
            f"{nearest['nearest_max_deg']:.3g} degrees from them, beyond the tolerance of {tol:g}; at a tolerance of "
            f"{nearest['discriminating_deg']:.3g} degrees (half the separation, still telling predicted from rival "
            f"directions) the aligned fraction is {nearest['aligned_at_discriminating']:.3g}")


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


def _check_tolerance(tolerance_deg) -> float:
    t = float(tolerance_deg)
    if not 0 < t < 90:
        raise DataError(f"tolerance_deg: must be in (0, 90) degrees, got {tolerance_deg}")
    return t


def _check_prune_tol(prune_tol) -> float:
    t = float(prune_tol)
    if not 0 <= t < 1:
        raise DataError(f"prune_tol: must be in [0, 1) (a share of the path cost), got {prune_tol}")
    return t


def _kept_units(net: ShallowDenoiser, prune_tol: float, hull=None) -> dict:
    """Balance and prune a float64 CPU copy; the kept units' weights as numpy, with their original indices.

    With `hull` = (x_bar, U) the units are those of the function restricted to the affine hull
    x_bar + U z and projected onto it, U^T (h(x_bar + U z) - x_bar): a U, w U, b + w x_bar (F2:
    this never costs more). `in_plane` = ||U^T w_k|| / ||w_k|| is measured before restricting.
    """
    a, w, b = (t.detach().cpu().double().numpy() for t in (net.a, net.w, net.b))
    in_plane = np.ones(len(w))
    if hull is not None:
        x_bar, U = hull
        in_plane = np.linalg.norm(w @ U, axis=1) / np.maximum(np.linalg.norm(w, axis=1), 1e-300)
        a, w, b = a @ U, w @ U, b + w @ x_bar
    copy = ShallowDenoiser.from_weights(a, w, b).balance()
    costs = copy.unit_costs().detach().numpy()          # (K,)
    pruned, share = copy.prune(prune_tol)
    keep = costs > prune_tol * max(float(costs.sum()), 1e-300)  # the rule of ShallowDenoiser.prune
    if int(keep.sum()) != pruned.width:
        raise RuntimeError("align: pruning rule out of step with ShallowDenoiser.prune")
    a, w, b = (t.detach().numpy() for t in (pruned.a, pruned.w, pruned.b))
    return {"idx": np.flatnonzero(keep), "a": a, "w": w, "b": b, "cost": costs[keep], "pruned_share": share,
            "in_plane": in_plane[keep]}


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _neuron_stats(units: dict, C: np.ndarray, target: list[int], cos_tol: float) -> dict:
    """Per kept unit: closest candidate, its angle, the assigned one (-1: none within tolerance), |cos(a, w)|.

    `aligned` marks units assigned to a target candidate, `other` those assigned to a rival.
    """
    uw = _unit(units["w"])                              # (K, d)
    cos = np.abs(uw @ C.T)                              # (K, C)
    if cos.size == 0:
        none = np.zeros(len(uw), bool)
        return {"closest": np.zeros(len(uw), int), "assigned": np.full(len(uw), -1), "angle_deg": np.zeros(len(uw)),
                "aligned": none, "other": none, "out_cos": np.zeros(len(uw))}
    closest = cos.argmax(axis=1)                        # (K,) nearest line
    within = cos[np.arange(len(uw)), closest] >= cos_tol
    in_target = np.isin(closest, target)
    return {
        "closest": closest,
        "assigned": np.where(within, closest, -1),
        "angle_deg": line_angle_deg(uw, C[closest]),
        "aligned": within & in_target,
        "other": within & ~in_target,
        "out_cos": np.abs(np.sum(_unit(units["a"]) * uw, axis=1)),
    }


def _share(cost: np.ndarray, mask: np.ndarray) -> float:
    """sum of cost over mask / total (exactly 1.0 when mask is all true, 0.0 when empty)."""
    total = cost.sum()
    return float(cost[mask].sum() / total) if total > 0 else 0.0


def _shares(cost: np.ndarray) -> np.ndarray:
    total = cost.sum()
    return cost / total if total > 0 else cost


def _weighted(cost: np.ndarray, values: np.ndarray) -> float:
    total = cost.sum()
    return float(cost @ values / total) if total > 0 else 0.0


def _baseline(units: dict, C: np.ndarray, target: list[int], rivals: list[int], cos_tol: float,
              rng: np.random.Generator, draws: int) -> np.ndarray:
    """The aligned fraction against the candidates C (C, r) turned as one rigid body by a uniformly
    random orthogonal map of the analysis space, under the same nearest-candidate rule, per draw: (draws,)."""
    uw = _unit(units["w"])                              # (K, r)
    out = np.zeros(draws)
    if uw.size == 0 or not target:
        return out
    T, R = C[target], C[rivals]                         # (T, r), (R, r)
    for t in range(draws):
        Q = _haar_orthogonal(C.shape[1], rng)           # (r, r)
        best_target = np.abs(uw @ (T @ Q).T).max(axis=1)  # (K,)
        best_rival = np.abs(uw @ (R @ Q).T).max(axis=1) if len(R) else np.full(len(uw), -1.0)
        out[t] = _share(units["cost"], (best_target >= cos_tol) & (best_target > best_rival))
    return out


def _haar_orthogonal(r: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly (Haar) distributed orthogonal (r, r) matrix: QR of a Gaussian, signs fixed by R's diagonal."""
    Q, R = np.linalg.qr(rng.standard_normal((r, r)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def _per_direction(cost: np.ndarray, st: dict, cands: list[Candidate]) -> dict:
    """Cost share of the units assigned to each candidate, plus 'unaligned' (assigned to none)."""
    out = {c.name: _share(cost, st["assigned"] == j) for j, c in enumerate(cands)}
    out[UNALIGNED] = _share(cost, st["assigned"] < 0)
    return out


def _groups(units: dict, x_bar: np.ndarray, C: np.ndarray, cands: list[Candidate], cos_tol: float) -> list[dict]:
    """Cluster units by signed direction: each joins the group of the costliest unit within tolerance."""
    uw, cost = _unit(units["w"]), units["cost"]
    share = np.round(_shares(cost), 12)                # rounded: rescaled copies order ties alike
    order = sorted(range(len(cost)), key=lambda k: (-share[k], k))
    seeds, members = [], []
    for k in order:
        g = next((i for i, s in enumerate(seeds) if uw[k] @ uw[s] >= cos_tol), None)
        if g is None:
            seeds.append(k)
            members.append([k])
        else:
            members[g].append(k)
    nw = np.linalg.norm(units["w"], axis=1)
    offsets = -(units["b"] + units["w"] @ x_bar) / np.where(nw > 0, nw, 1.0)  # from the data mean
    out_cos = np.abs(np.sum(_unit(units["a"]) * uw, axis=1))
    out = []
    for m in members:
        m = np.array(m)
        u = _unit(cost[m] @ uw[m])
        cos = np.abs(C @ u)
        j = int(cos.argmax())
        out.append({"direction": u.tolist(), "cost_share": float(cost[m].sum() / cost.sum()), "n_units": int(m.size),
                    "units": units["idx"][np.sort(m)].tolist(), "offsets": sorted(offsets[m].tolist()),
                    "output_parallel": _weighted(cost[m], out_cos[m]), "closest": cands[j].name,
                    "angle_deg": float(line_angle_deg(u[None], C[j][None])[0])})
    return out
