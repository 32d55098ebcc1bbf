"""Candidate directions of the clean data and the predicted set (docs/theory.md 6); see relu_denoise.align."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..checks import check_points, check_positive
from ..closed_forms import closed_form
from ..errors import DataError, NoClosedFormError
from ..geometry import diameter, min_distance, span_basis

KINDS = ("edge", "altitude", "face-normal", "ray")
UNALIGNED = "unaligned"          # the per_direction key of the cost share aligned with no candidate
_SAME = 1e-9                     # |cos| within this of 1: the same undirected line
_MAX_EDGE_POINTS = 100           # above: edges to nearest neighbours only
_NEIGHBOURS = 2                  # nearest neighbours per point for many points
_MAX_EDGES = 2000                # at most this many (shortest) edges for many points
_MAX_FACE_POINTS = 8             # above: no altitudes / face normals (2^N subsets)
_RHO_SHARE = 0.05                # rho = 0.05 x the smallest distance (0.1 x half of it) when none given


@dataclass(frozen=True)
class Candidate:
    """A candidate direction of the clean data: a unit vector u (d,) standing for the line R u."""

    name: str
    u: np.ndarray                # (d,)
    kind: str                    # edge | altitude | face-normal | ray
    aliases: tuple[str, ...] = ()




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


