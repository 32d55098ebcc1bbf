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

Modules: `specs` (the recipe models and their validators), `source` (Source), `shapes` (points,
univariate, subspace, rays, simplex), `images` (digits, patches, spread-out selection, file).
"""

from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

from ..checks import check_rng
from .images import _digits_source, _file_source, _patches_source
from .shapes import _points_source, _rays_source, _simplex_source, _subspace_source, _univariate_source
from .source import Sampler, Source
from .specs import (DataSpec, DigitsData, FileData, PatchesData, PointsData, RaysData, SimplexData, SubspaceData,
                    UnivariateData)

__all__ = ["DataSpec", "DigitsData", "FileData", "PatchesData", "PointsData", "RaysData", "Sampler", "SimplexData",
           "Source", "SubspaceData", "UnivariateData", "make_source"]


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


_BUILDERS = {PointsData: _points_source, UnivariateData: _univariate_source, SubspaceData: _subspace_source,
             RaysData: _rays_source, SimplexData: _simplex_source, DigitsData: _digits_source,
             PatchesData: _patches_source}
