"""Clean points from images and files: digits, patches, spread-out selection, file (docs/theory.md 5)."""

import functools
from pathlib import Path
from typing import Optional

import numpy as np

from ..checks import read_points_file
from ..errors import DataError, NotEnoughHeldOutError
from ..geometry import DUPLICATE_TOL, near_duplicate, pairwise_distances, triangle_angles_deg
from .source import Source
from .specs import _DIGIT_RANGES, DigitsData, FileData, PatchesData, duplicate_message


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
    """n row indices of the candidates P (C, d), pairwise >= min_distance apart.

    Without min_distance only near-duplicates are excluded: rows closer than geometry.DUPLICATE_TOL x
    the candidates' extent (the luma of two RGB patches can agree to 1e-17), which geometry.min_distance
    would refuse later.

    Greedy in a random order (rng): keep a candidate when it is far enough from every one kept.
    Where that keeps fewer than n, farthest-point selection from the same first candidate
    (it spreads the points as far as it can, favouring extreme ones). Returns the indices and
    the method; raises DataError naming data.min_distance (or data.n) where neither reaches n.
    """
    if min_distance is None:
        gap = DUPLICATE_TOL * 2 * float(np.linalg.norm(P - P[0], axis=1).max())   # 2 max |p - p_0| >= diameter
    else:
        gap = float(min_distance)
    kept = _greedy(P, n, gap, order=rng.permutation(len(P)), duplicates_only=min_distance is None)
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


def _greedy(P: np.ndarray, n: int, gap: float, *, order: np.ndarray, duplicates_only: bool = False) -> np.ndarray:
    """Indices (<= n) kept by walking `order`: each is >= gap (> 0) from all kept before."""
    if duplicates_only:  # the first of each distinct row along `order`: the walk's answer where none is near another
        _, first = np.unique(P[order], axis=0, return_index=True)
        kept = order[np.sort(first)][:n].astype(np.int64)
        if len(kept) < 2 or pairwise_distances(P[kept]).min() >= gap:
            return kept
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
    info["held_out_images"] = len(held_out)
    where = f"class {spec.digit} has {len(held_out)} held-out images"

    def sample(n, rng):  # held-out images of the class, without replacement
        if n > len(held_out):
            raise NotEnoughHeldOutError(f"draw: asked for {n} fresh images of digit {spec.digit}, but only "
                                        f"{len(held_out)} are held out ({where}: its {len(pool)} images less "
                                        f"the {len(chosen)} training ones); ask for at most {len(held_out)}",
                                        available=len(held_out))
        return X[rng.choice(held_out, size=n, replace=False)].copy()

    return Source(X[chosen].copy(), "digits", info, sample, pool=where)


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


def _find_triangle(X: np.ndarray, pool: np.ndarray, lo_hi: tuple[float, float], min_side: Optional[float],
                   *, digit: int, rng: np.random.Generator) -> np.ndarray:
    """Three dataset indices whose triangle has its largest angle in [lo, hi].

    Random search over _TRIANGLE_TRIES triples; among those in range (and with every side >=
    min_side), the one with the largest shortest side (so noise balls around the images stay apart).
    """
    lo, hi = lo_hi
    T = np.stack([rng.choice(pool, size=3, replace=False) for _ in range(_TRIANGLE_TRIES)])  # (T, 3)
    A, B, C = X[T[:, 0]], X[T[:, 1]], X[T[:, 2]]
    largest = triangle_angles_deg(A, B, C).max(axis=1)
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
    angles = triangle_angles_deg(x[[0]], x[[1]], x[[2]])[0]
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

    where = f"image {spec.image} has {len(test_pos)} held-out positions for {k}x{k} patches"

    def sample(n, rng):  # patches at held-out grid positions, without replacement
        if n > len(test_pos):
            raise NotEnoughHeldOutError(f"draw: asked for {n} fresh patches, but only {len(test_pos)} positions "
                                        f"are held out ({where}); ask for at most {len(test_pos)} or lower "
                                        "data.size", available=len(test_pos))
        return patches(test_pos[rng.choice(len(test_pos), size=n, replace=False)])

    info = {"image": spec.image, "size": k, "grayscale": spec.grayscale, "dim": int(x.shape[1]),
            "normalize": spec.normalize, "selection": how, "smallest_distance": _smallest_distance(x),
            "positions": chosen.tolist(), "held_out_positions": len(test_pos)}
    if len(x) == 3:
        info.update(_triangle_facts(x))
    return Source(x, "patches", info, sample, pool=where)


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
    same = near_duplicate(x)
    if same is not None:
        raise DataError(f"data.path: {path}: {duplicate_message(same, 'rows')}")
    return Source(x, "file", {"path": str(path), "n_points": len(x), "dim": x.shape[1]})

