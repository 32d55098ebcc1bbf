"""Min-cost denoisers in closed form (docs/theory.md sections 2 and 4), built as explicit networks.

Every closed form here is a constant plus a sum of rank-one ramps,

    h*(y) = c + sum_i u_i ramp(u_i^T (y - p_i); lo_i, hi_i, H_i),

and each ramp is two ReLU units with input weight u_i and output weights +-u_i H_i / (hi_i - lo_i)
(cost 2 H_i / (hi_i - lo_i)). Geometry is detected from the clean points; where no form of
docs/theory.md applies, `NoClosedFormError` names the condition that failed. Flat zones come from a
`margin` rule: the ball model (+-rho along every direction) or the empirical variant (the
extreme projections of the noisy samples, docs/theory.md section 1).
"""

from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from .checks import check_points, check_positive
from .errors import DataError, NoClosedFormError
from .geometry import (ANGLE_TOL, DUPLICATE_TOL, NEAR_FACTOR, SIDE_TOL, affine_hull, angle_rad, closest_clouds,
                       diameter, min_distance, near_threshold, orthocenter, side_spread)

if TYPE_CHECKING:                                  # torch loads with the first network built, not on import
    from .network import ShallowDenoiser

STATUSES = ("paper", "derived", "numerical")  # from most to least established
_COS_SAME = float(np.cos(ANGLE_TOL))   # cosines above this: the same direction (one ray), docs/theory.md 4.6
_COS_RIGHT = float(np.sin(ANGLE_TOL))  # cosines at most this: not acute (>= 90 degrees, to within ANGLE_TOL)


@dataclass(frozen=True)
class Ramp:
    """u * ramp(u^T (y - origin); lo, hi, height): 0 for t <= lo, height for t >= hi, linear between."""

    u: np.ndarray        # (d,) unit direction, input and output
    origin: np.ndarray   # (d,)
    lo: float
    hi: float
    height: float
    label: str = ""

    @property
    def slope(self) -> float:
        return self.height / (self.hi - self.lo)

    @property
    def cost(self) -> float:
        return 2 * self.slope  # docs/theory.md 1: two units of path cost slope each

    def lift(self, U: np.ndarray, x_bar: np.ndarray) -> "Ramp":
        """The same ramp seen in R^D through y = x_bar + U z (U (D, r) orthonormal)."""
        return Ramp(U @ self.u, x_bar + U @ self.origin, self.lo, self.hi, self.height, self.label)


@dataclass
class ClosedForm:
    """A closed-form min-cost denoiser and the facts a report needs.

    `network` is the explicit ShallowDenoiser; `cost_formula` is computed from docs/theory.md's
    formula (not from the weights), so comparing it with `network.path_cost()` is a check.
    """

    geometry: str
    status: str                     # paper | derived | numerical
    formula: str                    # the cost formula, in words of docs/theory.md
    cost_formula: float
    c: np.ndarray                   # (d,)
    ramps: list[Ramp]
    rho: float | None               # None for the empirical rule
    affine_dim: int                 # dimension r of the affine hull of the clean points
    n_points: int
    dim: int
    notes: list[str] = field(default_factory=list)

    @property
    def setting(self) -> str:
        """The geometry and where it was solved, for titles: "univariate, on a line in R^3" for lifted data."""
        if self.affine_dim >= self.dim:
            return self.geometry
        hull = {1: "a line", 2: "a plane"}.get(self.affine_dim, f"a {self.affine_dim}-D affine subspace")
        return f"{self.geometry}, on {hull} in R^{self.dim}"

    @property
    def network(self) -> "ShallowDenoiser":
        """The explicit network (a fresh copy: callers may balance or shift it)."""
        return ramps_network(self.ramps, self.c)

    @cached_property
    def _evaluator(self) -> "ShallowDenoiser":
        return ramps_network(self.ramps, self.c)         # built once: predict is called in loops

    def predict(self, y) -> np.ndarray:
        """h*(y) for y of shape (n, d) -> (n, d), in y's float dtype (the denoiser protocol)."""
        return self._evaluator.predict(y)


def ramps_network(ramps: list[Ramp], c: np.ndarray) -> "ShallowDenoiser":
    """The explicit network of a sum of ramps: two units per ramp, V = 0, output bias c."""
    from .network import ShallowDenoiser

    d = len(c)
    a, w, b = np.zeros((2 * len(ramps), d)), np.zeros((2 * len(ramps), d)), np.zeros(2 * len(ramps))
    for i, r in enumerate(ramps):
        shift = r.u @ r.origin
        w[2 * i] = w[2 * i + 1] = r.u
        b[2 * i], b[2 * i + 1] = -shift - r.lo, -shift - r.hi
        a[2 * i], a[2 * i + 1] = r.slope * r.u, -r.slope * r.u
    return ShallowDenoiser.from_weights(a, w, b, np.zeros((d, d)), c)


# ---------------------------------------------------------------- flat-zone rules


class BallMargin:
    """Ball model: the flat zone around x_n along any direction u is [-rho, rho]."""

    overlap_kind = "rho-too-large"     # zones that overlap: a smaller rho may separate them

    def __init__(self, rho: float):
        self.rho = rho

    def __call__(self, n: int, u: np.ndarray) -> tuple[float, float]:
        return -self.rho, self.rho

    def reduce(self, U, x_bar):
        return self


class EmpiricalMargin:
    """Offline variant: along u the flat zone around x_n ends at the extreme sample projections."""

    overlap_kind = "samples"           # zones that overlap: the samples themselves reach too far

    def __init__(self, points: np.ndarray, samples: np.ndarray):
        self.offsets = samples - points[:, None, :]  # (N, M, d)

    def __call__(self, n: int, u: np.ndarray) -> tuple[float, float]:
        t = self.offsets[n] @ u                       # (M,)
        return float(t.min()), float(t.max())

    def reduce(self, U, x_bar):
        reduced = EmpiricalMargin.__new__(EmpiricalMargin)
        reduced.offsets = self.offsets @ U           # offsets project like points, no shift
        return reduced


# ---------------------------------------------------------------- entry point


def closed_form(points, *, rho: float | None = None, samples=None) -> ClosedForm:
    """The min-cost denoiser of docs/theory.md for clean points (N, d), or NoClosedFormError.

    Give exactly one of `rho` (ball model) or `samples` (N, M, d) offline noisy samples
    (empirical rule: flat zones end at the extreme sample projections along each ramp).
    """
    X = check_points(points, name="points")
    N, d = X.shape
    if (rho is None) == (samples is None):
        raise DataError("closed_form: give exactly one of rho (ball model) or samples (empirical rule)")
    dmin = min_distance(X)
    if rho is not None:
        rho = check_positive(rho, name="rho")
        if rho >= dmin / 2:
            raise NoClosedFormError(f"balls overlap: rho = {rho:g} must be < half the smallest distance "
                                    f"between clean points ({dmin / 2:g})", kind="rho-too-large")
        margin = BallMargin(rho)
    else:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 3 or samples.shape[0] != N or samples.shape[2] != d:
            raise DataError(f"samples: expected shape ({N}, M, {d}), got {samples.shape}")
        _check_clouds_apart(X, samples)
        margin = EmpiricalMargin(X, samples)
    x_bar, U = affine_hull(X)                      # (d,), (d, r)
    r = U.shape[1]
    if r == d:
        form = _full_rank(X, margin, rho)
    else:
        Z = (X - x_bar) @ U                           # (N, r)
        inner = _full_rank(Z, margin.reduce(U, x_bar), rho)
        form = _lift(inner, U, x_bar)
    form.affine_dim, form.dim = r, d
    closest = dmin / diameter(X) if N > 1 else np.inf
    if near_threshold(closest, DUPLICATE_TOL):
        form.notes.append(f"closest clean points {closest:.2g} x the diameter apart, within {NEAR_FACTOR:g}x of "
                          f"the duplicate tolerance {DUPLICATE_TOL:g}: kept as distinct points")
    return form


def _check_clouds_apart(X: np.ndarray, samples: np.ndarray) -> None:
    """The empirical rule's ball model: the sample cloud of each clean point (radius r_n, its farthest
    sample) must not reach another's: ||x_i - x_j|| > r_i + r_j."""
    r = np.linalg.norm(samples - X[:, None, :], axis=2).max(axis=1)                 # (N,)
    i, j, slack = closest_clouds(X, r)
    if slack <= 0:
        raise NoClosedFormError(f"balls overlap: the sample clouds of x{i} and x{j} (radii "
                                f"{r[i]:.3g}, {r[j]:.3g}) reach across their distance {np.linalg.norm(X[i] - X[j]):.3g}",
                                kind="samples")


def _lift(inner: ClosedForm, U: np.ndarray, x_bar: np.ndarray) -> ClosedForm:
    """docs/theory.md 4.1 (paper): h*(y) = x_bar + U g*(U^T (y - x_bar)); same cost, status at most paper."""
    inner.ramps = [r.lift(U, x_bar) for r in inner.ramps]
    inner.c = x_bar + U @ inner.c
    inner.notes.append(f"data in a {U.shape[1]}-D affine subspace of R^{U.shape[0]}: solved there and lifted "
                       "(docs/theory.md 4.1); noise orthogonal to the subspace is removed")
    return inner


def _full_rank(X: np.ndarray, margin, rho) -> ClosedForm:
    """Dispatch on geometry for points whose affine hull is all of R^d (or a single point)."""
    N, d = X.shape
    if N == 1:
        return ClosedForm("single-point", "derived", "0 (a constant map)", 0.0, X[0].copy(), [], rho, 0, 1, d)
    if d == 1:
        return _univariate(X[:, 0], margin, rho)
    rays, failure = _find_rays(X)
    if rays is not None:
        return _rays(X, *rays, margin, rho)
    if N == d + 1 and d == 2:
        return _triangle(X, margin, rho)
    if N == d + 1:
        raise NoClosedFormError(f"acute simplex in {d} dimensions: no vertex has all its edge angles >= 90 degrees "
                                "(docs/theory.md 4.5)")
    raise NoClosedFormError(failure)


# ---------------------------------------------------------------- docs/theory.md 2: univariate (paper)


def _chain(t: np.ndarray, idx: list[int], u: np.ndarray, origin: np.ndarray, margin, label) -> list[Ramp]:
    """Ramps along u joining consecutive points at positions t (sorted) of clean points idx."""
    ramps = []
    for k in range(len(t) - 1):
        lo = t[k] + margin(idx[k], u)[1]              # flat zone of the lower point ends here
        hi = t[k + 1] + margin(idx[k + 1], u)[0]      # flat zone of the upper point starts here
        if not lo < hi:
            raise NoClosedFormError(f"flat zones of {label(idx[k])} and {label(idx[k + 1])} overlap along the "
                                    f"ramp direction (gap {t[k + 1] - t[k]:g}, zones end at {lo:g} and {hi:g})",
                                    kind=margin.overlap_kind)
        ramps.append(Ramp(u, origin, lo, hi, t[k + 1] - t[k], f"{label(idx[k])}->{label(idx[k + 1])}"))
    return ramps


def _point_label(n: int) -> str:
    return f"x{n}"


def _univariate(t: np.ndarray, margin, rho) -> ClosedForm:
    # docs/theory.md 2 (paper): h*(y) = x_1 + sum_n ramp(y; x_n + rho, x_{n+1} - rho, D_n)
    order = list(np.argsort(t))
    ts = t[order]
    ramps = _chain(ts, order, np.ones(1), np.zeros(1), margin, _point_label)
    D = np.diff(ts)
    if rho is not None:
        cost = float(np.sum(2 * D / (D - 2 * rho)))
        formula = "sum_n 2 D_n / (D_n - 2 rho)"
    else:
        cost = float(sum(2 * Dn / (r.hi - r.lo) for Dn, r in zip(D, ramps)))
        formula = "sum_n 2 D_n / ((x_{n+1} + lo_{n+1}) - (x_n + hi_n))"
    return ClosedForm("univariate", "paper", formula, cost, ts[:1].copy(), ramps, rho, 1, len(t), 1)


# ---------------------------------------------------------------- docs/theory.md 4.2 / 4.3: rays, obtuse simplex (paper)


def _group_rays(X: np.ndarray, apex: int):
    """Group the other points by direction from X[apex]: list of (u, [(t, index), ...])."""
    groups = []
    for j in range(len(X)):
        if j == apex:
            continue
        v = X[j] - X[apex]
        t = np.linalg.norm(v)
        for u, members in groups:
            if u @ v / t > _COS_SAME:
                members.append((t, j))
                break
        else:
            groups.append((v / t, [(t, j)]))
    return groups


def _find_rays(X: np.ndarray):
    """((apex, groups), None) if the points are rays from a common apex at pairwise angles >= 90 degrees.

    Otherwise (None, reason). A candidate apex is any clean point (docs/theory.md 4.2: the apex is a
    training point). Per apex the test is one cosine matrix: every pair of other points is either
    on the same ray (cos ~ 1) or at a non-acute angle (cos <= 0).
    """
    worst = None  # (cosine, apex) of the least-acute violation among apexes with multi-point rays
    for apex in range(len(X)):
        V = np.delete(X, apex, axis=0) - X[apex]                      # (N-1, d)
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        C = V @ V.T                                                   # (N-1, N-1)
        same = C > _COS_SAME
        acute = C[~same]
        max_cos = float(acute.max()) if acute.size else -1.0
        if max_cos <= _COS_RIGHT:
            return (apex, _group_rays(X, apex)), None
        if same.sum() > len(V) and (worst is None or max_cos < worst[0]):
            worst = (max_cos, apex)
    if worst is not None:
        angle = float(np.arccos(min(worst[0], 1.0)))
        return None, (f"rays from apex x{worst[1]} meet at an acute angle ({np.degrees(angle):.6g} degrees < 90); "
                      "docs/theory.md 4.2 needs every pair of rays at >= 90 degrees" + _acute_hint(angle))
    return None, ("points in general position: not collinear, not in a lower-dimensional subspace, not rays "
                  "from a common apex at angles >= 90 degrees, not a simplex (docs/theory.md 4.5)")


def find_rays(points) -> tuple[int | None, list, str | None]:
    """(apex, rays, None) where the clean points (N, d) are rays from a common clean point x_apex at pairwise
    angles >= 90 degrees (docs/theory.md 4.2, the test the closed form uses), rays = [(u, [(t, j), ...]), ...]
    (unit direction, positions t along it and point indices); (None, [], reason) otherwise."""
    X = check_points(points, name="points")
    if len(X) < 2:
        return None, [], "a single clean point: no rays"
    min_distance(X)                                  # DataError for coinciding points (the cosines divide by gaps)
    rays, failure = _find_rays(X)
    return (None, [], failure) if rays is None else (rays[0], rays[1], None)


def _acute_hint(angle: float) -> str:
    """For a refused acute angle (radians) within NEAR_FACTOR x of the angle tolerance of 0 or of 90 degrees."""
    if near_threshold(angle, ANGLE_TOL):
        near, meant = f"two directions {angle:.2g} rad apart", "one ray"
    elif near_threshold(np.pi / 2 - angle, ANGLE_TOL):
        near, meant = f"{np.pi / 2 - angle:.2g} rad short of 90 degrees", "a right angle"
    else:
        return ""
    return (f" ({near}, within {NEAR_FACTOR:g}x of the angle tolerance {ANGLE_TOL:g} rad: {meant} if typed "
            "to more digits)")


def _ray_notes(X: np.ndarray, apex: int, groups) -> list[str]:
    """Notes where the ray classification sits within NEAR_FACTOR x of the angle tolerance (docs/theory.md 4.6):
    points grouped on one ray, or two rays at a right angle (or just not), to within about ANGLE_TOL."""
    notes, x0 = [], X[apex]
    spread = max((float(angle_rad(X[j] - x0, u)) for u, members in groups for _, j in members), default=0.0)
    if near_threshold(spread, ANGLE_TOL):
        notes.append(f"points on one ray from apex x{apex} to within {spread:.2g} rad, within {NEAR_FACTOR:g}x of "
                     f"the angle tolerance {ANGLE_TOL:g}: classed one ray")
    for a, b in combinations(range(len(groups)), 2):
        off = abs(float(angle_rad(groups[a][0], groups[b][0])) - np.pi / 2)
        if near_threshold(off, ANGLE_TOL):
            verdict = "a right angle" if off <= ANGLE_TOL else "not a right angle"
            notes.append(f"rays {a} and {b} from apex x{apex} at 90 degrees to within {off:.2g} rad, within "
                         f"{NEAR_FACTOR:g}x of the angle tolerance {ANGLE_TOL:g}: classed {verdict}")
    return notes


def _rays(X: np.ndarray, apex: int, groups, margin, rho) -> ClosedForm:
    # docs/theory.md 4.2 (paper): h*(y) = x0 + sum_k u_k phi_k(u_k^T (y - x0)), phi_k univariate on the ray
    x0 = X[apex]
    ramps, cost = [], 0.0
    for u, members in groups:
        members = sorted(members)
        t = np.array([0.0] + [m[0] for m in members])
        ray = _chain(t, [apex] + [m[1] for m in members], u, x0, margin, _point_label)
        ramps += ray
        D = np.diff(t)
        if rho is not None:
            cost += float(np.sum(2 * D / (D - 2 * rho)))
        else:
            cost += float(sum(2 * Dn / (r.hi - r.lo) for Dn, r in zip(D, ray)))
    one_each = all(len(m) == 1 for _, m in groups)
    simplex = one_each and len(groups) == X.shape[1]
    right = all(abs(groups[i][0] @ groups[j][0]) <= _COS_RIGHT for i, j in combinations(range(len(groups)), 2))
    if simplex:
        geometry = "orthogonal-simplex" if right else "obtuse-simplex"
        formula = "sum_i 2 L_i / (L_i - 2 rho)"         # docs/theory.md 4.3
    else:
        geometry = "rays"
        formula = "sum_rays sum_n 2 D_n / (D_n - 2 rho)"  # docs/theory.md 4.2
    if rho is None:
        formula = formula.replace("- 2 rho", "- empirical flat zones")
    form = ClosedForm(geometry, "paper", formula, cost, x0.copy(), ramps, rho, X.shape[1], len(X), X.shape[1])
    form.notes.append(f"apex x{apex}; {len(groups)} rays" + (", all at right angles" if right else ""))
    form.notes += _ray_notes(X, apex, groups)
    return form


# ---------------------------------------------------------------- docs/theory.md 4.4: acute triangle


def _triangle(X: np.ndarray, margin, rho) -> ClosedForm:
    # docs/theory.md 4.4: equilateral (paper), other acute triangles (numerical)
    H = orthocenter(X)
    sides = np.array([np.linalg.norm(X[(i + 1) % 3] - X[(i + 2) % 3]) for i in range(3)])  # opposite x_i
    e1, e2 = X[1] - X[0], X[2] - X[0]
    area = 0.5 * abs(e1[0] * e2[1] - e1[1] * e2[0])
    altitude = 2 * area / sides                       # h_i, from x_i
    if rho is not None and rho >= altitude.min() / 2:
        raise NoClosedFormError(f"rho = {rho:g} must be < half the smallest altitude ({altitude.min() / 2:g}) "
                                "for the acute-triangle form (docs/theory.md 4.4)", kind="rho-too-large")
    ramps = []
    for i in range(3):
        R = np.linalg.norm(X[i] - H)
        u = (X[i] - H) / R
        others = [j for j in range(3) if j != i]
        lo = max(u @ (X[j] - H) + margin(j, u)[1] for j in others)
        hi = R + margin(i, u)[0]
        if not lo < hi:
            raise NoClosedFormError(f"flat zones of x{i} and the opposite edge overlap along its altitude",
                                    kind=margin.overlap_kind)
        ramps.append(Ramp(u, H, lo, hi, R, f"edge x{others[0]}x{others[1]}->x{i}"))
    spread = side_spread(X)
    equilateral = spread <= SIDE_TOL                   # docs/theory.md 4.6: relative to the longest side
    if rho is not None:
        cost = float(sum(2 * np.linalg.norm(X[i] - H) / (altitude[i] - 2 * rho) for i in range(3)))
        formula = "sum_i 2 ||x_i - H|| / (h_i - 2 rho)"
    else:
        cost = float(sum(2 * r.height / (r.hi - r.lo) for r in ramps))
        formula = "sum_i 2 ||x_i - H|| / (empirical flat-zone gap along altitude i)"
    geometry = "equilateral-triangle" if equilateral else "acute-triangle"
    form = ClosedForm(geometry, "paper" if equilateral else "numerical", formula, cost, H.copy(), ramps, rho, 2, 3, 2)
    if not equilateral:
        form.notes.append("acute non-equilateral triangle: the orthocenter form matches trained networks to about 1% "
                          "in cost but is not proved (status numerical)")
    if near_threshold(spread, SIDE_TOL):
        form.notes.append(f"sides equal to {spread:.2g} (relative), within {NEAR_FACTOR:g}x of the equilateral "
                          f"tolerance {SIDE_TOL:g}: classed {geometry}")
    largest = max(float(angle_rad(X[(i + 1) % 3] - X[i], X[(i + 2) % 3] - X[i])) for i in range(3))
    if near_threshold(np.pi / 2 - largest, ANGLE_TOL):
        form.notes.append(f"largest angle 90 degrees less {np.pi / 2 - largest:.2g} rad, within {NEAR_FACTOR:g}x "
                          f"of the angle tolerance {ANGLE_TOL:g}: classed acute (right if typed to more digits)")
    return form


@dataclass
class Reference:
    """The reference closed form of a recipe and how its flat zones were chosen (docs/theory.md 1.1).

    `form` is None where no closed form applies; `reason` then says which condition failed.
    """

    form: ClosedForm | None
    rho: float | None               # None for the empirical rule
    rho_rule: str                   # number | auto | radius | empirical
    error: NoClosedFormError | None = None   # why there is no form

    @property
    def reason(self) -> str | None:
        return None if self.error is None else str(self.error)

    def to_dict(self) -> dict:
        """What every result.json says about the closed form (the same keys in every command): rho (its flat-zone
        radius, None under the empirical rule) and rho_rule, cost_formula (the formula's value) and cost_weights
        (the path cost of its explicit network: the same up to rounding). No `cost` here: in every result.json
        `cost` is the path cost of the run's own network."""
        out = {"rho": self.rho, "rho_rule": self.rho_rule}
        if self.form is None:
            return {**out, "geometry": None, "status": "no-closed-form", "reason": self.reason}
        f = self.form
        return {**out, "geometry": f.geometry, "status": f.status, "cost_formula": f.cost_formula,
                "cost_weights": f.network.path_cost().item(), "formula": f.formula, "notes": list(f.notes)}


def reference_form(points, noise, samples=None, *, rho=None) -> Reference:
    """The closed form every command compares with, by the one rule of `noise.rho_rule`.

    points (N, d); noise a NoiseSpec; samples (N, M, d) the offline samples (needed by the
    empirical rule); rho overrides noise.rho (a number, "auto" or "empirical").
    """
    from .noise import rho_rule

    value, rule = rho_rule(noise, rho)
    try:
        if rule == "empirical":
            if samples is None:
                raise DataError("reference_form: the empirical rule needs the offline samples")
            form = closed_form(points, samples=samples)
        else:
            form = closed_form(points, rho=value)
    except NoClosedFormError as exc:
        return Reference(None, value, rule, exc)
    return Reference(form, value, rule)
