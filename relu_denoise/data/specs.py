"""The recipe's `data:` section: one pydantic model per kind, and every check that needs only the recipe.

A bad recipe fails in `load_recipe` with one line naming the key (recipe.format_validation_error);
the builders (shapes, images) check only what needs the data itself.
"""

from typing import Annotated, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..geometry import ANGLE_TOL, DUPLICATE_TOL, angle_rad, near_duplicate

_FINITE = dict(allow_inf_nan=False)
_FiniteFloat = Annotated[float, Field(**_FINITE)]
_ANGLE_LIMITS = {"obtuse": (90.0, 180.0, 120.0), "acute": (60.0, 90.0, 75.0)}  # lo, hi, default
_DIGIT_RANGES = {"obtuse": (93.0, 99.0), "acute": (70.0, 76.0)}
_TRIANGLE_SHAPES = ("obtuse", "acute", "most-obtuse", "most-acute")

_NORMALIZE_HELP = ("pixel scale, applied before any distance is measured: unit (pixels in [0, 1], "
                   "the default), center (unit, then each image's own mean subtracted) or none "
                   "(raw pixel values: 0..16 digits, 0..255 patches)")
_MIN_DISTANCE_HELP = ("smallest Euclidean distance allowed between two chosen clean points, in the "
                      "normalised pixel units; default: only (near-)duplicates are excluded, points closer than "
                      "geometry.DUPLICATE_TOL x the candidates' extent")


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
        same = near_duplicate(x)
        if same is not None:
            raise _invalid("points", duplicate_message(same, "rows"))
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
    """Two rays closer than geometry.ANGLE_TOL point the same way (the closed forms would make them one)."""
    i, j = np.triu_indices(len(u), k=1)
    same = np.flatnonzero(angle_rad(u[i], u[j]) < ANGLE_TOL)
    if same.size:
        a, b = int(i[same[0]]), int(j[same[0]])
        raise _invalid("directions", f"rays {a} and {b} point the same way (to within {ANGLE_TOL:g} rad, "
                                     "geometry.ANGLE_TOL); give distinct directions")


def duplicate_message(same: tuple[int, int, float, float], what: str) -> str:
    """'rows i and j are the same point ...' for geometry.near_duplicate's (i, j, distance, diameter)."""
    i, j, dist, diam = same
    if dist == 0:
        return f"{what} {i} and {j} are the same point; remove duplicates"
    return (f"{what} {i} and {j} are the same point up to rounding: {dist:.3g} apart, below {DUPLICATE_TOL:g} x "
            f"the points' diameter ({diam:.3g}); remove duplicates")


DataSpec = Annotated[
    Union[PointsData, UnivariateData, SubspaceData, RaysData, SimplexData, DigitsData, PatchesData, FileData],
    Field(discriminator="kind"),
]


def _ray_directions(spec: RaysData) -> np.ndarray:
    """(K, d) unit ray directions from `angles_deg` or `directions` (checked by RaysData)."""
    if spec.directions is None:
        theta = np.radians(spec.angles_deg if spec.angles_deg is not None else [0.0, 120.0, 240.0])
        return np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (K, 2)
    u = np.asarray(spec.directions, dtype=np.float64)  # (K, d)
    return u / np.linalg.norm(u, axis=1, keepdims=True)

