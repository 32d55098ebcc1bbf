"""Clean-point sources: the recipe's `data:` section and the points it describes.

Every source holds the clean training points x_1..x_N (an (N, d) float64 array) and, where the
points come from a distribution, draws fresh clean points from it (the new clean x of the
generalization test, docs/theory.md section 3). Kinds (design.md, "Data kinds needed"):

    points      explicit points                          no distribution
    univariate  N points on [low, high]                  uniform on [x_1, x_N]
    subspace    points in a random r-dim affine subspace  more points of the same subspace
    rays        apex + points on rays at t = spacing*j    uniform on the union of the segments
    simplex     obtuse | orthogonal | equilateral | acute uniform in the convex hull
    digits      sklearn 8x8 digits of one class          held-out images of the class
    patches     k x k patches of a bundled sklearn image  patches at held-out positions
    file        .npy (N, d) or headerless .csv            no distribution

Every check that needs only the recipe is a validator on the kind's model, so a bad recipe
fails in `load_recipe` with one line naming the key; the builders check only what needs the
data itself (file contents, a digit class's size, how far apart an image's patches can be) and
raise DataError. `digits` and `patches` state their pixel scale (`normalize`) and can keep the
chosen points `min_distance` apart, so noise clouds around them need not overlap (docs/theory.md 5).

Randomness is explicit: every function that draws takes a keyword-only `rng`
(np.random.Generator); the same spec and seed give the same points. Nothing downloads.
"""

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .checks import check_rng, read_points_file
from .errors import DataError
from .geometry import pairwise_distances

_FINITE = dict(allow_inf_nan=False)
_FiniteFloat = Annotated[float, Field(**_FINITE)]
_ANGLE_LIMITS = {"obtuse": (90.0, 180.0, 120.0), "acute": (60.0, 90.0, 75.0)}  # lo, hi, default
_DIGIT_RANGES = {"obtuse": (93.0, 99.0), "acute": (70.0, 76.0)}
_TRIANGLE_SHAPES = ("obtuse", "acute", "most-obtuse", "most-acute")

_NORMALIZE_HELP = ("pixel scale, applied before any distance is measured: unit (pixels in [0, 1], "
                   "the default), center (unit, then each image's own mean subtracted) or none "
                   "(raw pixel values: 0..16 digits, 0..255 patches)")
_MIN_DISTANCE_HELP = ("smallest Euclidean distance allowed between two chosen clean points, in the "
                      "normalised pixel units; default: only exact duplicates are excluded")


def _invalid(key: str, message: str) -> ValidationError:
    """A validation error located at the field `key`, for checks that need several fields.

    Raised inside a validator, pydantic prefixes the location, so a recipe reports it as
    `data.<key>: <message>` (recipe.format_validation_error), like any single-field error.
    """
    error = PydanticCustomError("value_error", "{message}", {"message": message})
    return ValidationError.from_exception_data("data", [InitErrorDetails(type=error, loc=(key,), input=None)])


# ---------------------------------------------------------------------------------------------
# Recipe models, one per kind; every check that needs only the recipe lives here
# ---------------------------------------------------------------------------------------------

class PointsData(BaseModel):
    """Explicit clean points, one row per point: `points: [[0, 0], [2, 0], [-1, 1]]`."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["points"] = "points"
    points: list[Annotated[list[float], Field(min_length=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_points(self):
        _check_rows_same_length(self.points, key="points", what="point")
        x = np.asarray(self.points, dtype=np.float64)  # (N, d)
        bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
        if bad.size:
            raise _invalid("points", f"contains NaN or inf values (row {bad[0]}); give finite coordinates")
        same = _first_duplicate(x)
        if same is not None:
            raise _invalid("points", f"rows {same[0]} and {same[1]} are the same point; remove duplicates")
        return self


class UnivariateData(BaseModel):
    """N points on [low, high] (d = 1): `even` grid, `jittered` grid, or `uniform` random.

    `jitter` is the half-width of the uniform jitter as a fraction of half the even gap:
    x_n = grid_n + U(-jitter * gap / 2, +jitter * gap / 2), clipped to [low, high].
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["univariate"] = "univariate"
    n: int = Field(10, ge=1)
    low: float = Field(0.0, **_FINITE)
    high: float = Field(1.0, **_FINITE)
    spacing: Literal["even", "jittered", "uniform"] = "jittered"
    jitter: float = Field(0.2, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _check_interval(self):
        if not self.high > self.low:
            raise _invalid("high", f"must be > data.low (= {self.low}), got {self.high}")
        return self


class SubspaceData(BaseModel):
    """n points x_bar + U z, U a random orthonormal (dim, rank) basis, z ~ U[-scale, scale]^rank."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["subspace"] = "subspace"
    n: int = Field(20, ge=1)
    dim: int = Field(3, ge=2)
    rank: int = Field(1, ge=1)
    scale: float = Field(1.0, gt=0, **_FINITE)

    @model_validator(mode="after")
    def _check_rank(self):
        if self.rank >= self.dim:
            raise _invalid("rank", f"must be < data.dim (= {self.dim}), got {self.rank}")
        if self.n <= self.rank:
            raise _invalid("n", f"a {self.rank}-dim affine subspace needs at least rank + 1 = "
                                f"{self.rank + 1} points to span it, got {self.n}")
        return self


class RaysData(BaseModel):
    """Rays apex + t u_k with points at t = spacing * j, j = 1..points_per_ray; the apex is a point.

    Give ray directions either as `angles_deg` (dim = 2 only) or as `directions` (normalised
    here). Without either, dim = 2 uses angles [0, 120, 240].
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["rays"] = "rays"
    dim: int = Field(2, ge=1)
    angles_deg: Optional[list[_FiniteFloat]] = Field(None, min_length=1)
    directions: Optional[list[list[_FiniteFloat]]] = Field(None, min_length=1)
    points_per_ray: int = Field(2, ge=1)
    spacing: float = Field(1.0, gt=0, **_FINITE)
    apex: Optional[list[_FiniteFloat]] = None

    @model_validator(mode="after")
    def _check_rays(self):
        if self.angles_deg is not None and self.directions is not None:
            raise _invalid("directions", "give either data.angles_deg or data.directions, not both")
        if self.directions is None and self.dim != 2:
            raise _invalid("angles_deg", f"angles describe rays only for dim = 2, got dim = {self.dim}; "
                                         "give data.directions instead")
        if self.directions is not None:
            _check_direction_rows(self.directions, self.dim)
        _check_distinct_directions(_ray_directions(self))
        if self.apex is not None and len(self.apex) != self.dim:
            raise _invalid("apex", f"expected {self.dim} coordinates (data.dim), got {len(self.apex)}")
        return self


class SimplexData(BaseModel):
    """A simplex of `vertices` points in R^dim (default dim + 1 vertices).

    obtuse: all edges at vertex x0 (row 0) pairwise at obtuse angles; orthogonal: x0 + L_i e_i;
    equilateral: regular, every edge `size`; acute: every angle at every vertex < 90 degrees,
    not equilateral. `size` is the edge scale (the shortest edge). `angle_deg` (triangles only):
    obtuse, the angle at x0 (default 120); acute, the largest angle (default 75).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["simplex"] = "simplex"
    shape: Literal["obtuse", "orthogonal", "equilateral", "acute"] = "obtuse"
    dim: int = Field(2, ge=1)
    vertices: Optional[int] = Field(None, ge=2)
    size: float = Field(1.0, gt=0, **_FINITE)
    angle_deg: Optional[float] = Field(None, gt=0, lt=180)

    @property
    def n_vertices(self) -> int:
        """The number of vertices m: `vertices`, or dim + 1."""
        return self.dim + 1 if self.vertices is None else self.vertices

    @model_validator(mode="after")
    def _check_fields(self):
        m = self.n_vertices
        if m > self.dim + 1:
            raise _invalid("vertices", f"a simplex in R^{self.dim} has at most dim + 1 = "
                                       f"{self.dim + 1} vertices, got {m}")
        if self.shape == "acute" and m < 3:
            raise _invalid("vertices", f"acute needs at least 3 vertices (a triangle), got {m}")
        if self.angle_deg is not None:
            if self.shape not in _ANGLE_LIMITS or m != 3:
                raise _invalid("angle_deg", f"only for an obtuse or acute triangle (vertices = 3), "
                                            f"got shape={self.shape} with {m} vertices")
            lo, hi, _ = _ANGLE_LIMITS[self.shape]
            if not lo < self.angle_deg < hi:
                raise _invalid("angle_deg", f"{self.shape} needs {lo:g} < angle < {hi:g}, "
                                            f"got {self.angle_deg:g}")
        return self


class DigitsData(BaseModel):
    """Images of one class of sklearn's bundled 8x8 digits (d = 64).

    obtuse / acute: three images forming a triangle whose largest angle lies in `angle_range`
    (defaults: obtuse [93, 99], acute [70, 76] degrees; random search, seed-dependent);
    most-obtuse / most-acute: the triangle of the class with the largest / the smallest
    largest angle, over every triple of the class (deterministic); any: n random images of
    the class. `min_distance` bounds the shortest side (triangles) or every pairwise distance.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["digits"] = "digits"
    digit: int = Field(3, ge=0, le=9)
    shape: Literal["obtuse", "acute", "most-obtuse", "most-acute", "any"] = Field(
        "obtuse", description="which images: a triangle (obtuse, acute, most-obtuse, most-acute) or any n")
    angle_range: Optional[tuple[_FiniteFloat, _FiniteFloat]] = Field(
        None, description="[lo, hi] degrees for the largest angle (shape obtuse or acute only)")
    n: int = Field(3, ge=1)
    min_distance: Optional[float] = Field(None, gt=0, description=_MIN_DISTANCE_HELP, **_FINITE)
    normalize: Literal["unit", "center", "none"] = Field("unit", description=_NORMALIZE_HELP)

    @model_validator(mode="after")
    def _check_selection(self):
        if self.angle_range is not None and self.shape not in _DIGIT_RANGES:
            raise _invalid("angle_range", f"only for shape obtuse or acute, got shape={self.shape}")
        if self.shape in _TRIANGLE_SHAPES and self.n != 3:
            raise _invalid("n", f"shape={self.shape} picks a triangle, so n must be 3, got {self.n}; "
                                "use shape: any for other n")
        if self.shape in _DIGIT_RANGES:
            lo, hi = self.angle_range or _DIGIT_RANGES[self.shape]
            lim_lo, lim_hi, _ = _ANGLE_LIMITS[self.shape]
            if not lim_lo <= lo < hi <= lim_hi:
                raise _invalid("angle_range", f"{self.shape} needs {lim_lo:g} <= lo < hi <= {lim_hi:g} "
                                              f"(largest angle of the triangle, degrees), got [{lo:g}, {hi:g}]")
        return self


class PatchesData(BaseModel):
    """n flattened `size` x `size` patches of a bundled sklearn image (d = size^2, x 3 in colour).

    Candidates are the patches at half of the non-overlapping grid positions (the other half is
    held out for fresh draws); n of them are chosen in a random order, greedily keeping those at
    least `min_distance` from every patch kept so far (farthest-point selection where greedy
    falls short).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["patches"] = "patches"
    image: Literal["china", "flower"] = Field("china", description="sklearn's bundled china.jpg "
                                              "(427 x 640) or flower.jpg (427 x 640)")
    size: int = Field(4, ge=2, description="patch side k: d = k^2 (28 gives the paper's MNIST size, d = 784)")
    n: int = Field(200, ge=1)
    grayscale: bool = True
    min_distance: Optional[float] = Field(None, gt=0, description=_MIN_DISTANCE_HELP, **_FINITE)
    normalize: Literal["unit", "center", "none"] = Field("unit", description=_NORMALIZE_HELP)


class FileData(BaseModel):
    """Clean points from a `.npy` of shape (N, d) or a headerless `.csv` of N rows, d columns.

    A relative `path` resolves against the recipe's folder.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["file"] = "file"
    path: str = Field(min_length=1)


def _check_rows_same_length(rows: list[list[float]], *, key: str, what: str) -> None:
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise _invalid(key, f"every {what} needs the same number of coordinates, got rows of "
                            f"lengths {lengths}; write one {what} per row")


def _check_direction_rows(rows: list[list[float]], dim: int) -> None:
    _check_rows_same_length(rows, key="directions", what="direction")
    if len(rows[0]) != dim:
        raise _invalid("directions", f"expected shape (n, {dim}), got ({len(rows)}, {len(rows[0])}); "
                                     "write one direction of data.dim coordinates per row")
    norms = np.linalg.norm(np.asarray(rows, dtype=np.float64), axis=1)
    if np.any(norms == 0):
        raise _invalid("directions", f"row {int(np.argmin(norms))} is the zero vector; "
                                     "every ray needs a nonzero direction")


def _check_distinct_directions(u: np.ndarray) -> None:
    cos = u @ u.T  # (K, K)
    i, j = np.triu_indices(len(u), k=1)
    same = np.flatnonzero(cos[i, j] > 1 - 1e-12)
    if same.size:
        a, b = int(i[same[0]]), int(j[same[0]])
        raise _invalid("directions", f"rays {a} and {b} point the same way; give distinct directions")


def _first_duplicate(x: np.ndarray) -> Optional[tuple[int, int]]:
    """The first two row indices (i < j) of equal rows of x (N, d), or None."""
    _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    repeated = np.flatnonzero(first[inverse] != np.arange(len(x)))
    if repeated.size == 0:
        return None
    j = int(repeated[0])
    return int(first[inverse[j]]), j


DataSpec = Annotated[
    Union[PointsData, UnivariateData, SubspaceData, RaysData, SimplexData, DigitsData, PatchesData, FileData],
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------------------------------------
# Source
# ---------------------------------------------------------------------------------------------

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
    """

    points: np.ndarray
    kind: str
    info: dict
    _sampler: Optional[Sampler] = field(default=None, repr=False, compare=False)

    def draw(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """Return (n, d) fresh clean points from the source's distribution.

        Raises DataError where the source has no distribution (`points`, `file`) or cannot
        supply n more points (held-out digits or patches).
        """
        if self._sampler is None:
            raise DataError(
                f"data.kind={self.kind} has no distribution to draw fresh clean points from; "
                "use a kind with one (univariate, subspace, rays, simplex, digits, patches) "
                "or supply the test points yourself")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DataError(f"draw: n must be an integer >= 1, got {n!r}")
        check_rng(rng)
        return self._sampler(int(n), rng)


def make_source(spec: DataSpec, *, rng: np.random.Generator, base_dir: Path = Path(".")) -> Source:
    """Build the clean-point source a recipe's `data:` section describes.

    Parameters
    ----------
    spec : one of the DataSpec models (a plain dict is validated first)
    rng : np.random.Generator
        The only source of randomness; same spec and seed give the same points.
    base_dir : Path
        Folder that relative `file` paths resolve against (the recipe's folder).
    """
    if isinstance(spec, dict):
        spec = TypeAdapter(DataSpec).validate_python(spec)
    check_rng(rng)
    if isinstance(spec, FileData):
        source = _file_source(spec, base_dir=Path(base_dir))
    else:
        source = _BUILDERS[type(spec)](spec, rng=rng)
    return source


# ---------------------------------------------------------------------------------------------
# points
# ---------------------------------------------------------------------------------------------

def _points_source(spec: PointsData, *, rng: np.random.Generator) -> Source:
    x = np.asarray(spec.points, dtype=np.float64)  # (N, d), checked by PointsData
    return Source(x, "points", {"n_points": len(x), "dim": x.shape[1]})


# ---------------------------------------------------------------------------------------------
# univariate (docs/theory.md section 2 and 3)
# ---------------------------------------------------------------------------------------------

def _univariate_source(spec: UnivariateData, *, rng: np.random.Generator) -> Source:
    x = np.sort(_univariate_points(spec, rng=rng))[:, None]  # (N, 1)
    x1, xN = float(x[0, 0]), float(x[-1, 0])

    def sample(n, rng):  # docs/theory.md 3: test x uniform on [x_1, x_N]
        return rng.uniform(x1, xN, size=(n, 1))

    info = {"spacing": spec.spacing, "min_gap": float(np.diff(x[:, 0]).min()) if len(x) > 1 else None}
    return Source(x, "univariate", info, sample)


def _univariate_points(spec: UnivariateData, *, rng: np.random.Generator) -> np.ndarray:
    """(N,) points on [low, high]: even grid, jittered grid or iid uniform."""
    if spec.spacing == "uniform":
        return rng.uniform(spec.low, spec.high, size=spec.n)
    grid = np.linspace(spec.low, spec.high, spec.n)  # (N,)
    if spec.spacing == "even" or spec.n == 1:
        return grid
    half = spec.jitter * (grid[1] - grid[0]) / 2  # gaps stay >= (1 - jitter) * gap > 0
    lo, hi = np.maximum(grid - half, spec.low), np.minimum(grid + half, spec.high)
    return rng.uniform(lo, hi)


# ---------------------------------------------------------------------------------------------
# subspace (docs/theory.md 4.1)
# ---------------------------------------------------------------------------------------------

def _subspace_source(spec: SubspaceData, *, rng: np.random.Generator) -> Source:
    d, r = spec.dim, spec.rank
    U, _ = np.linalg.qr(rng.standard_normal((d, r)))  # (d, r) orthonormal columns
    x_bar = rng.standard_normal(d)  # (d,)

    def sample(n, rng):
        z = rng.uniform(-spec.scale, spec.scale, size=(n, r))  # (n, r)
        return x_bar + z @ U.T  # (n, d)

    info = {"basis": U.T.tolist(), "offset": x_bar.tolist(), "rank": r}
    return Source(sample(spec.n, rng), "subspace", info, sample)


# ---------------------------------------------------------------------------------------------
# rays (docs/theory.md 4.2)
# ---------------------------------------------------------------------------------------------

def _rays_source(spec: RaysData, *, rng: np.random.Generator) -> Source:
    u = _ray_directions(spec)  # (K, d) unit rows
    x0 = _ray_apex(spec)  # (d,)
    t = spec.spacing * np.arange(1, spec.points_per_ray + 1)  # (P,)
    on_rays = x0 + (u[:, None, :] * t[None, :, None]).reshape(-1, spec.dim)  # (K * P, d)
    x = np.vstack([x0, on_rays])  # (1 + K * P, d), apex first, then ray by ray
    t_max = float(t[-1])

    def sample(n, rng):  # uniform on the union of the K equally long segments
        k = rng.integers(len(u), size=n)
        s = rng.uniform(0.0, t_max, size=n)
        return x0 + s[:, None] * u[k]  # (n, d)

    info = {"apex": x0.tolist(), "directions": u.tolist(), "t": t.tolist()}
    return Source(x, "rays", info, sample)


def _ray_directions(spec: RaysData) -> np.ndarray:
    """(K, d) unit ray directions from `angles_deg` or `directions` (checked by RaysData)."""
    if spec.directions is None:
        theta = np.radians(spec.angles_deg if spec.angles_deg is not None else [0.0, 120.0, 240.0])
        return np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (K, 2)
    u = np.asarray(spec.directions, dtype=np.float64)  # (K, d)
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _ray_apex(spec: RaysData) -> np.ndarray:
    return np.zeros(spec.dim) if spec.apex is None else np.asarray(spec.apex, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# simplex (docs/theory.md 4.3, 4.4)
# ---------------------------------------------------------------------------------------------

def _simplex_source(spec: SimplexData, *, rng: np.random.Generator) -> Source:
    m = spec.n_vertices
    x = _embed(_SIMPLEX_BUILDERS[spec.shape](spec, m), spec.dim)  # (m, d)
    _check_affinely_independent(x)
    _SIMPLEX_CHECKS[spec.shape](x)

    def sample(n, rng):  # uniform in the convex hull
        return rng.dirichlet(np.ones(m), size=n) @ x  # (n, d)

    return Source(x, "simplex", _simplex_info(spec.shape, x), sample)


def _edge_lengths(k: int, size: float) -> np.ndarray:
    """(k,) unequal edge lengths at x0, from size to 1.5 * size, so the simplex is not symmetric."""
    return size * np.linspace(1.0, 1.5, k) if k > 1 else np.array([size])


def _regular_directions(m: int) -> np.ndarray:
    """(m, m - 1) unit vectors of a regular simplex centred at 0, pairwise at cos = -1/(m - 1).

    The centred basis vectors of R^m written in the Helmert basis of {z : sum(z) = 0}.
    """
    k = m - 1
    H = np.zeros((k, m))  # rows: Helmert basis, orthonormal, orthogonal to the ones vector
    for j in range(1, m):
        H[j - 1, :j] = 1.0
        H[j - 1, j] = -j
        H[j - 1] /= np.sqrt(j * (j + 1))
    v = H.T  # (m, k): coordinates of e_i - 1/m
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _obtuse_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): x0 = 0 and x0 + L_i u_i with the u_i pairwise obtuse."""
    k = m - 1
    if k == 2:  # a triangle: the angle at x0 is exactly angle_deg
        theta = np.radians(spec.angle_deg or _ANGLE_LIMITS["obtuse"][2])
        u = np.array([[1.0, 0.0], [np.cos(theta), np.sin(theta)]])
    else:  # k of the k + 1 directions of a regular k-simplex: cos = -1/k (or the segment, k = 1)
        u = _regular_directions(k + 1)[:k] if k > 1 else np.ones((1, 1))
    return np.vstack([np.zeros(k), _edge_lengths(k, spec.size)[:, None] * u])


def _orthogonal_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): x0 = 0 and x0 + L_i e_i (right angles at x0)."""
    k = m - 1
    return np.vstack([np.zeros(k), np.diag(_edge_lengths(k, spec.size))])


def _equilateral_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): a regular simplex with every edge `size`, centred at 0."""
    v = _regular_directions(m)  # (m, m - 1), |v_i - v_j|^2 = 2 (1 + 1/(m - 1))
    return v * spec.size / np.linalg.norm(v[0] - v[1])


def _acute_vertices(spec: SimplexData, m: int) -> np.ndarray:
    """(m, m - 1): a scalene triangle with largest angle angle_deg, or, for m >= 4, a regular
    simplex whose vertex 0 moved a tenth of the way toward the opposite face's centroid."""
    if m == 3:
        return _triangle_from_angles(spec.angle_deg or _ANGLE_LIMITS["acute"][2], spec.size)
    x = _equilateral_vertices(spec, m)
    x[0] += 0.1 * (x[1:].mean(axis=0) - x[0])
    return x


def _triangle_from_angles(alpha: float, size: float) -> np.ndarray:
    """(3, 2) triangle with angles alpha > beta > gamma at its vertices 0, 1, 2 (alpha in (60, 90)).

    beta = 75 - alpha/4 and gamma = 105 - 3 alpha/4 keep it scalene; the shortest edge is `size`.
    """
    beta, gamma = 75.0 - alpha / 4, 105.0 - 3 * alpha / 4
    sin = np.sin(np.radians([alpha, beta, gamma]))  # law of sines: edge opposite each vertex
    b, c = size * sin[1] / sin[2], size  # |x2 - x0| opposite beta, |x1 - x0| opposite gamma
    a_rad = np.radians(alpha)
    return np.array([[0.0, 0.0], [c, 0.0], [b * np.cos(a_rad), b * np.sin(a_rad)]])


def _embed(x: np.ndarray, d: int) -> np.ndarray:
    """Pad (m, k) coordinates with zeros to (m, d), k <= d."""
    return np.hstack([x, np.zeros((len(x), d - x.shape[1]))])


def _vertex_angles(x: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Every angle of the simplex: (vertex i, j, k, angle between x_j - x_i and x_k - x_i in degrees)."""
    out = []
    for i in range(len(x)):
        others = [j for j in range(len(x)) if j != i]
        for a, j in enumerate(others):
            for k in others[a + 1:]:
                u, v = x[j] - x[i], x[k] - x[i]
                cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
                out.append((i, j, k, float(np.degrees(np.arccos(np.clip(cos, -1, 1))))))
    return out




def _check_affinely_independent(x: np.ndarray) -> None:
    if np.linalg.matrix_rank(x[1:] - x[0]) != len(x) - 1:
        raise DataError("data.shape: the constructed simplex is degenerate "
                        "(vertices not affinely independent)")


def _check_obtuse(x: np.ndarray) -> None:
    E = x[1:] - x[0]  # (k, d) edges at x0
    G = E @ E.T
    off = G[~np.eye(len(E), dtype=bool)]
    if np.any(off >= 0):
        raise DataError(f"data.shape: obtuse construction failed, "
                        f"max (x_i - x0)^T (x_j - x0) = {off.max():.3g} >= 0")


def _check_orthogonal(x: np.ndarray) -> None:
    E = x[1:] - x[0]
    off = (E @ E.T)[~np.eye(len(E), dtype=bool)]
    if np.any(np.abs(off) > 1e-12 * np.max(E * E)):
        raise DataError("data.shape: orthogonal construction failed, edges at x0 not perpendicular")


def _check_equilateral(x: np.ndarray) -> None:
    edges = pairwise_distances(x)
    if np.ptp(edges) > 1e-9 * edges.max():
        raise DataError("data.shape: equilateral construction failed, edges differ")


def _check_acute(x: np.ndarray) -> None:
    largest = max(a[3] for a in _vertex_angles(x))
    if largest >= 90:
        raise DataError(f"data.shape: acute construction failed, an angle is {largest:.2f} >= 90 degrees")
    edges = pairwise_distances(x)
    if np.ptp(edges) <= 1e-9 * edges.max():
        raise DataError("data.shape: acute construction failed, the simplex is equilateral")


def _simplex_info(shape: str, x: np.ndarray) -> dict:
    edges = pairwise_distances(x)
    info = {"shape": shape, "vertices": len(x), "min_edge": float(edges.min()),
            "max_edge": float(edges.max())}
    angles = _vertex_angles(x)
    if angles:
        info["max_angle_deg"] = max(a[3] for a in angles)
    if len(x) == 3:
        info["angles_deg"] = [a[3] for a in angles]  # at vertices 0, 1, 2
    if shape in ("obtuse", "orthogonal"):
        info["x0_index"] = 0
        info["lengths_at_x0"] = np.linalg.norm(x[1:] - x[0], axis=1).tolist()
    return info


_SIMPLEX_BUILDERS = {"obtuse": _obtuse_vertices, "orthogonal": _orthogonal_vertices,
                     "equilateral": _equilateral_vertices, "acute": _acute_vertices}
_SIMPLEX_CHECKS = {"obtuse": _check_obtuse, "orthogonal": _check_orthogonal,
                   "equilateral": _check_equilateral, "acute": _check_acute}


# ---------------------------------------------------------------------------------------------
# images: normalisation and spread-out selection (digits and patches)
# ---------------------------------------------------------------------------------------------

def _normalize(x: np.ndarray, how: str, full_scale: float) -> np.ndarray:
    """(n, d) pixels in [0, 1] to the recipe's scale: unit (as they are), center (each row minus
    its own mean), none (x full_scale, the raw pixel values)."""
    if how == "center":
        return x - x.mean(axis=1, keepdims=True)
    return x * full_scale if how == "none" else x


def _spread(P: np.ndarray, n: int, min_distance: Optional[float], *, what: str,
            rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """n row indices of the candidates P (C, d), pairwise >= min_distance apart (> 0 when None).

    Greedy in a random order (rng): keep a candidate when it is far enough from every one kept.
    Where that keeps fewer than n, farthest-point selection from the same first candidate
    (it spreads the points as far as it can, favouring extreme ones). Returns the indices and
    the method; raises DataError naming data.min_distance (or data.n) where neither reaches n.
    """
    gap = 0.0 if min_distance is None else float(min_distance)
    kept = _greedy(P, n, gap, order=rng.permutation(len(P)))
    if len(kept) == n:
        return kept, "greedy"
    far, reach = _farthest_points(P, n, first=int(kept[0]))
    if reach >= gap and reach > 0:
        return far, "farthest-point"
    if min_distance is None:
        raise DataError(f"data.n: only {len(kept)} of the {len(P)} candidate {what} are distinct, "
                        f"got {n}; lower data.n")
    reach = _floor3(reach)  # a value that, with this seed, works
    raise DataError(f"data.min_distance: only {len(kept)} of the {len(P)} candidate {what} are pairwise "
                    f">= {gap:g} apart, got data.n = {n}; farthest-point selection of {n} keeps them "
                    f"{reach:g} apart: lower data.min_distance to at most {reach:g}, or lower data.n")


def _floor3(x: float) -> float:
    """x rounded down to 3 significant digits (0 stays 0)."""
    if x <= 0:
        return 0.0
    scale = 10.0 ** (2 - int(np.floor(np.log10(x))))
    return float(np.floor(x * scale) / scale)


def _greedy(P: np.ndarray, n: int, gap: float, *, order: np.ndarray) -> np.ndarray:
    """Indices (<= n) kept by walking `order`: each is >= gap (> 0 if gap = 0) from all kept before."""
    if gap == 0:  # only exact duplicates excluded: the first of each distinct row along `order`
        _, first = np.unique(P[order], axis=0, return_index=True)
        return order[np.sort(first)][:n].astype(np.int64)
    free = np.ones(len(P), dtype=bool)  # (C,) still far enough from everything kept
    kept = []
    for i in order:
        if free[i]:
            kept.append(i)
            if len(kept) == n:
                break
            free &= np.linalg.norm(P - P[i], axis=1) >= gap  # (C,)
    return np.asarray(kept, dtype=np.int64)


def _farthest_points(P: np.ndarray, n: int, *, first: int) -> tuple[np.ndarray, float]:
    """n indices by farthest-point selection from `first`, and their smallest pairwise distance."""
    kept, reach = [first], np.inf
    dist = np.linalg.norm(P - P[first], axis=1)  # (C,) distance to the nearest kept point
    for _ in range(n - 1):
        i = int(np.argmax(dist))
        kept.append(i)
        reach = min(reach, float(dist[i]))
        dist = np.minimum(dist, np.linalg.norm(P - P[i], axis=1))
    return np.asarray(kept, dtype=np.int64), reach


def _smallest_distance(x: np.ndarray) -> Optional[float]:
    return float(pairwise_distances(x).min()) if len(x) > 1 else None


# ---------------------------------------------------------------------------------------------
# digits (docs/theory.md section 5, real images)
# ---------------------------------------------------------------------------------------------

_TRIANGLE_TRIES = 4000


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled 8x8 digits: images (1797, 64) / 16 in [0, 1], labels (1797,). No download."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X.flags.writeable = False
    return X, y


def _digits_source(spec: DigitsData, *, rng: np.random.Generator) -> Source:
    X, y = _digits()
    X = _normalize(X, spec.normalize, 16.0)  # (1797, 64)
    pool = np.flatnonzero(y == spec.digit)  # dataset indices of the class
    if spec.n > len(pool):
        raise DataError(f"data.n: digit {spec.digit} has only {len(pool)} images, got {spec.n}")
    chosen, facts = _choose_digits(spec, X, pool, rng=rng)  # (n,) dataset indices
    info = {"digit": spec.digit, "shape": spec.shape, "normalize": spec.normalize,
            "indices": chosen.tolist(), "smallest_distance": _smallest_distance(X[chosen]), **facts}
    held_out = np.setdiff1d(pool, chosen)

    def sample(n, rng):  # held-out images of the class, without replacement
        if n > len(held_out):
            raise DataError(f"draw: asked for {n} fresh images of digit {spec.digit}, but only "
                            f"{len(held_out)} are held out")
        return X[rng.choice(held_out, size=n, replace=False)].copy()

    return Source(X[chosen].copy(), "digits", info, sample)


def _choose_digits(spec: DigitsData, X: np.ndarray, pool: np.ndarray, *,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Dataset indices of the chosen images of the class `pool`, and facts about the choice."""
    if spec.shape == "any":
        picked, how = _spread(X[pool], spec.n, spec.min_distance, rng=rng, what=f"images of digit {spec.digit}")
        return np.sort(pool[picked]), {"selection": how}
    if spec.shape in _DIGIT_RANGES:
        lo_hi = spec.angle_range or _DIGIT_RANGES[spec.shape]
        chosen = _find_triangle(X, pool, lo_hi, spec.min_distance, digit=spec.digit, rng=rng)
        return chosen, _triangle_facts(X[chosen])
    picked, searched = _extreme_triangle(X[pool], spec.shape, spec.min_distance, digit=spec.digit)
    return pool[picked], {**_triangle_facts(X[pool[picked]]), "triples_searched": searched}


def _triangle_angles(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> np.ndarray:
    """(T, 3) angles in degrees at A, B, C of T triangles given as (T, d) vertex arrays."""
    def at(p, q, r):
        u, v = q - p, r - p
        cos = np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return np.stack([at(A, B, C), at(B, C, A), at(C, A, B)], axis=1)


def _find_triangle(X: np.ndarray, pool: np.ndarray, lo_hi: tuple[float, float], min_side: Optional[float],
                   *, digit: int, rng: np.random.Generator) -> np.ndarray:
    """Three dataset indices whose triangle has its largest angle in [lo, hi].

    Random search over _TRIANGLE_TRIES triples; among those in range (and with every side >=
    min_side), the one with the largest shortest side (so noise balls around the images stay apart).
    """
    lo, hi = lo_hi
    T = np.stack([rng.choice(pool, size=3, replace=False) for _ in range(_TRIANGLE_TRIES)])  # (T, 3)
    A, B, C = X[T[:, 0]], X[T[:, 1]], X[T[:, 2]]
    largest = _triangle_angles(A, B, C).max(axis=1)
    shortest = np.min([np.linalg.norm(A - B, axis=1), np.linalg.norm(B - C, axis=1),
                       np.linalg.norm(C - A, axis=1)], axis=0)
    ok = np.flatnonzero((largest >= lo) & (largest <= hi) & (shortest >= (min_side or 0)) & (shortest > 0))
    if ok.size == 0:
        sides = f" and every side >= {min_side:g}" if min_side else ""
        raise DataError(f"data.angle_range: no triangle of digit-{digit} images with largest angle in "
                        f"[{lo:g}, {hi:g}] degrees{sides} among {_TRIANGLE_TRIES} random triples; widen the "
                        "range, pick another digit, or try shape: most-obtuse / most-acute")
    return T[ok[np.argmax(shortest[ok])]]


def _extreme_triangle(P: np.ndarray, shape: str, min_side: Optional[float], *,
                      digit: int) -> tuple[np.ndarray, int]:
    """Rows (3,) of P (n, d) forming the most obtuse (largest largest angle) or the most acute
    (smallest largest angle) of all its triangles with every side >= min_side (> 0 when None),
    and the number of triples searched. Exhaustive and vectorised: law of cosines on the (n, n)
    distances, about 1e6 triples for a class of 180 images (well under a second)."""
    from scipy.spatial.distance import squareform

    D = squareform(pairwise_distances(P))  # (n, n)
    T = _all_triples(len(P))  # (t, 3), i < j < k
    a, b, c = D[T[:, 1], T[:, 2]], D[T[:, 0], T[:, 2]], D[T[:, 0], T[:, 1]]  # (t,) sides opposite i, j, k
    shortest = np.minimum(np.minimum(a, b), c)
    ok = shortest >= min_side if min_side else shortest > 0
    if not ok.any():
        raise DataError(f"data.min_distance: no triangle of digit-{digit} images has every side >= "
                        f"{min_side:g} (the class's largest distance is {D.max():.3g}); lower data.min_distance")
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_min = np.minimum(np.minimum((b * b + c * c - a * a) / (2 * b * c),  # the largest angle's
                                        (a * a + c * c - b * b) / (2 * a * c)),  # cosine, per triple
                             (a * a + b * b - c * c) / (2 * a * b))
    key = np.where(ok, cos_min, np.inf if shape == "most-obtuse" else -np.inf)
    best = np.argmin(key) if shape == "most-obtuse" else np.argmax(key)
    return T[best].astype(np.int64), int(ok.sum())


def _all_triples(n: int) -> np.ndarray:
    """(n choose 3, 3) index triples i < j < k in lexicographic order (int32)."""
    i, j = np.triu_indices(n, k=1)  # pairs (i, j), each extended by every k > j
    count = n - 1 - j
    start = np.repeat(np.cumsum(count) - count, count)
    k = np.repeat(j, count) + 1 + (np.arange(count.sum()) - start)
    return np.stack([np.repeat(i, count), np.repeat(j, count), k], axis=1).astype(np.int32)


def _triangle_facts(x: np.ndarray) -> dict:
    """Angles (degrees) at each vertex and the side opposite each vertex, for a (3, d) triangle."""
    angles = _triangle_angles(x[[0]], x[[1]], x[[2]])[0]
    sides = [np.linalg.norm(x[1] - x[2]), np.linalg.norm(x[2] - x[0]), np.linalg.norm(x[0] - x[1])]
    return {"angles_deg": angles.tolist(), "largest_angle_deg": float(angles.max()),
            "sides_opposite": [float(s) for s in sides]}


# ---------------------------------------------------------------------------------------------
# patches
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _image(name: str, grayscale: bool) -> np.ndarray:
    """A bundled sklearn sample image as float64 in [0, 1]: (H, W) gray or (H, W, 3). No download."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image(f"{name}.jpg") / 255.0  # (H, W, 3)
    img = rgb @ np.array([0.299, 0.587, 0.114]) if grayscale else rgb  # ITU-R 601 luma
    img.flags.writeable = False
    return img


def _patches_source(spec: PatchesData, *, rng: np.random.Generator) -> Source:
    img, k = _image(spec.image, spec.grayscale), spec.size
    positions = _grid_positions(img.shape[:2], k)  # (P, 2) top-left corners, non-overlapping
    order = rng.permutation(len(positions))
    train_pos, test_pos = positions[order[: len(order) // 2]], positions[order[len(order) // 2:]]
    if spec.n > len(train_pos):
        raise DataError(f"data.n: image {spec.image} has {len(train_pos)} training positions for "
                        f"{k}x{k} patches, got {spec.n}; lower data.n or data.size")

    def patches(corners):  # (n, d) in the recipe's normalisation
        return _normalize(_cut(img, corners, k), spec.normalize, 255.0)

    picked, how = _spread(patches(train_pos), spec.n, spec.min_distance, rng=rng,
                          what=f"{k}x{k} patches of {spec.image}")
    chosen = train_pos[picked]  # (n, 2)
    x = patches(chosen)  # (n, d)

    def sample(n, rng):  # patches at held-out grid positions, without replacement
        if n > len(test_pos):
            raise DataError(f"draw: asked for {n} fresh patches, but only {len(test_pos)} "
                            "positions are held out")
        return patches(test_pos[rng.choice(len(test_pos), size=n, replace=False)])

    info = {"image": spec.image, "size": k, "grayscale": spec.grayscale, "dim": int(x.shape[1]),
            "normalize": spec.normalize, "selection": how, "smallest_distance": _smallest_distance(x),
            "positions": chosen.tolist(), "held_out_positions": len(test_pos)}
    if len(x) == 3:
        info.update(_triangle_facts(x))
    return Source(x, "patches", info, sample)


def _grid_positions(hw: tuple[int, int], k: int) -> np.ndarray:
    """(P, 2) top-left (row, col) corners of the non-overlapping k x k grid."""
    rows, cols = np.arange(0, hw[0] - k + 1, k), np.arange(0, hw[1] - k + 1, k)
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)


def _cut(img: np.ndarray, corners: np.ndarray, k: int) -> np.ndarray:
    """(n, k*k) or (n, k*k*3) flattened patches with the given top-left corners."""
    return np.stack([img[r:r + k, c:c + k].reshape(-1) for r, c in corners])


# ---------------------------------------------------------------------------------------------
# file
# ---------------------------------------------------------------------------------------------

def _file_source(spec: FileData, *, base_dir: Path) -> Source:
    path = Path(spec.path).expanduser()
    path = path if path.is_absolute() else base_dir / path
    x = read_points_file(path, name="data.path")                  # (N, d)
    same = _first_duplicate(x)
    if same is not None:
        raise DataError(f"data.path: rows {same[0]} and {same[1]} of {path} are the same point; "
                        "remove duplicates")
    return Source(x, "file", {"path": str(path), "n_points": len(x), "dim": x.shape[1]})


_BUILDERS = {PointsData: _points_source, UnivariateData: _univariate_source, SubspaceData: _subspace_source,
             RaysData: _rays_source, SimplexData: _simplex_source, DigitsData: _digits_source,
             PatchesData: _patches_source}
