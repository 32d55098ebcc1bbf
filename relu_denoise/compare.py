"""Test error of denoisers on fresh data across noise levels (docs/theory.md 3).

The paper's generalization claim made runnable: at low noise the min-cost NN denoiser has
lower test MSE E||h(x + eps) - x||^2 on NEW clean points than the empirical MMSE, which snaps
every input to a training point. Every denoiser follows one protocol, `predict` (n, d) -> (n, d).

Protocol, per noise level s (the recipe's noise model at scale s: sigma, or the radius) and repeat r:
  1. clean training points from the recipe's data source (repeat 0: the same points as
     `closed-form` and `fit`; repeat r > 0: a redrawn training set);
  2. M offline samples per point at level s (the NN is trained on them; the closed form follows
     the one reference rule, docs/theory.md 1.1); at the recipe's own level these are exactly
     the samples `fit` trains on;
  3. n_test fresh clean points from the source's distribution (digits, patches: held-out images or
     positions, all of them where fewer than n_test exist, said in `notes`) plus fresh noise. With
     `compare.test_points: training` the training points instead (said in `test_points`); `points`
     and `file` data have no distribution and are refused unless the recipe asks for that;
  4. per test point the squared error ||h(y) - x||^2 (summed over coordinates).
The MSE is the mean over test points and repeats, with a normal 95% confidence interval.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from .errors import NoClosedFormError, NoDistributionError, NotEnoughHeldOutError, RecipeError, TrainingError
from .estimators import DENOISERS, make_denoiser
from .noise import NoiseSpec, draw_noise
from .problem import Problem, make_problem, rng

_Z95 = 1.959963984540054


@dataclass
class Comparison:
    """Test MSE per estimator and noise level. Lists are indexed like `noise`; None = unavailable."""

    noise: list[float]
    n_test: int                                    # test points per (level, repeat) actually used
    repeats: int
    test_points: str                               # fresh | held-out [(k of them)] | training points (...)
    mse: dict[str, list] = field(default_factory=dict)
    ci_low: dict[str, list] = field(default_factory=dict)
    ci_high: dict[str, list] = field(default_factory=dict)
    unavailable: dict[str, list] = field(default_factory=dict)   # reasons, None where available
    closed_form: list = field(default_factory=list)              # per level: the reference (repeat 0)
    notes: list[str] = field(default_factory=list)               # one line each, e.g. a capped n_test

    def best(self, i: int) -> str | None:
        """Name of the estimator with the lowest MSE at noise level i."""
        avail = {k: v[i] for k, v in self.mse.items() if v[i] is not None}
        return min(avail, key=avail.get) if avail else None

    def rows(self):
        """(noise, estimator, mse, ci_low, ci_high, n_test) for compare.csv; unavailable rows omitted."""
        for i, s in enumerate(self.noise):
            for name in self.mse:
                if self.mse[name][i] is not None:
                    yield s, name, self.mse[name][i], self.ci_low[name][i], self.ci_high[name][i], self.n_test

    def to_dict(self) -> dict:
        return {"noise": self.noise, "n_test": self.n_test, "repeats": self.repeats,
                "test_points": self.test_points, "estimators": self.mse,
                "ci_low": self.ci_low, "ci_high": self.ci_high,
                "unavailable": {k: v for k, v in self.unavailable.items() if any(v)},
                "closed_form": self.closed_form, "notes": self.notes,
                "best": [self.best(i) for i in range(len(self.noise))]}


FitNN = Callable[[Problem], object]    # a problem -> a trained denoiser (ShallowDenoiser)


def level_noise(noise: NoiseSpec, level: float, *, mode: str = "offline") -> NoiseSpec:
    """The recipe's noise model at scale `level` (sigma, or the radius for sphere/ball noise), in `mode`
    (compare's levels are offline: it tests a denoiser trained on fixed samples)."""
    key = "sigma" if noise.distribution == "gaussian" else "radius"
    try:                                         # validated: model_copy(update=...) would not check the level
        return NoiseSpec.model_validate({**noise.model_dump(), key: float(level), "mode": mode})
    except ValidationError as exc:
        raise RecipeError(f"noise level {level!r}: noise.{key} {exc.errors()[0]['msg'].lower()}; "
                          "give levels > 0") from None


def gaussian_sigma(noise: NoiseSpec, d: int) -> float:
    """Per-coordinate standard deviation of the noise: the sigma eMMSE and LMMSE are built with.

    Gaussian: sigma. Uniform on the sphere of radius r in R^d: r / sqrt(d); in the ball: r / sqrt(d + 2)
    (same covariance, so LMMSE stays the best affine estimator; eMMSE is then the Gaussian-kernel
    approximation, docs/theory.md 3).
    """
    if noise.distribution == "gaussian":
        return noise.sigma
    return noise.radius / np.sqrt(d if noise.distribution == "sphere" else d + 2)


def compare(recipe, noise: list[float], *, fit_nn: FitNN | None, n_test: int, repeats: int = 1,
            base_dir=".", on_fit: Callable[[str], None] = lambda msg: None,
            on_level: Callable[[Comparison], None] = lambda partial: None) -> Comparison:
    """Test MSE of every denoiser at each noise level (see the module docstring for the protocol).

    `fit_nn(problem)` trains the NN denoiser (None skips the `nn` estimator); `on_fit(message)` is
    called after each (noise level, repeat), `on_level(comparison)` after each finished level with the
    levels done so far (so an interrupted comparison keeps them). Every draw depends on (seed, level, repeat) alone, so a
    level gives the same numbers alone or in any grid (relu_denoise.problem).
    """
    names = [n for n in DENOISERS if fit_nn is not None or n != "nn"]
    errors = {n: [[] for _ in noise] for n in names}
    reasons = {n: [None] * len(noise) for n in names}
    test_points, used, notes = "fresh", n_test, []
    references = [None] * len(noise)
    for i, level in enumerate(noise):
        for r in range(repeats):
            spec = level_noise(recipe.noise, level)
            data = make_problem(recipe, base_dir, noise=spec, repeat=r)
            rng_i = rng(recipe.seed, "test", *(spec.distribution, float(level)), r)
            x_test, test_points, note = _test_points(data.source, n_test, rng_i, recipe.compare.test_points)
            used = len(x_test)
            if note is not None and note not in notes:
                notes.append(note)
            y_test = x_test + draw_noise(x_test.shape, spec, rng=rng_i)
            sigma = gaussian_sigma(spec, x_test.shape[1])
            ref = data.reference
            if r == 0:
                references[i] = ref.to_dict()
            overlap = data.overlap()
            for name in names:
                if overlap and name == "nn" and not recipe.train.allow_overlap:
                    reasons[name][i] = overlap.reason() + " (not trained: hopeless)"
                    continue
                h, why = _estimator(name, data, sigma, fit_nn, ref)
                if h is None:
                    reasons[name][i] = why
                    continue
                errors[name][i].append(np.sum((h.predict(y_test) - x_test) ** 2, axis=1))
            on_fit(f"level {level:g} repeat {r + 1}/{repeats}")
        on_level(_summarise(noise[:i + 1], used, repeats, test_points,
                            {k: v[:i + 1] for k, v in errors.items()}, {k: v[:i + 1] for k, v in reasons.items()},
                            references[:i + 1], notes))
    return _summarise(noise, used, repeats, test_points, errors, reasons, references, notes)


TRAINING_POINTS = "training points (compare.test_points: training)"


def check_test_points(recipe, source) -> None:
    """Refuse at once (RecipeError) a comparison whose data has no distribution to draw test points from,
    unless the recipe asks to test on the training points (`compare.test_points: training`)."""
    if recipe.compare.test_points == "fresh" and not source.has_distribution:
        raise _no_distribution(source.kind)


def _no_distribution(kind: str) -> RecipeError:
    return RecipeError(f"compare: data.kind={kind} is a fixed set of points with no distribution to draw fresh "
                       "test points from; set compare.test_points: training to test on the training points "
                       "(with fresh noise), or use a data kind with a distribution")


def _test_points(source, n_test: int, rng, mode: str) -> tuple[np.ndarray, str, str | None]:
    """(x_test (n, d), what they are in words, a note or None) for `compare.test_points` = mode.

    fresh: n_test draws; a held-out pool (digits, patches) smaller than n_test gives all of its
    points, and the note says so. training: n_test training points, drawn with replacement.
    """
    if mode == "training":
        return source.points[rng.integers(len(source.points), size=n_test)], TRAINING_POINTS, None
    try:
        x = source.draw(n_test, rng=rng)
    except NoDistributionError:
        raise _no_distribution(source.kind) from None
    except NotEnoughHeldOutError as exc:
        if exc.available == 0:
            raise RecipeError(f"compare: no held-out points to test on ({source.pool}); lower data.n, or set "
                              "compare.test_points: training") from None
        note = f"compare.n_test = {n_test} but {source.pool}: testing on all {exc.available}"
        return source.draw(exc.available, rng=rng), f"held-out ({exc.available} of them)", note
    return x, ("fresh" if source.pool is None else "held-out"), None


def _estimator(name, data: Problem, sigma, fit_nn, ref):
    """(denoiser, None) or (None, reason the estimator is unavailable)."""
    try:
        return make_denoiser(name, data.points, sigma, samples=data.samples, noise=data.noise, reference=ref,
                             fit_nn=lambda x, samples: fit_nn(data)), None
    except NoClosedFormError as exc:
        return None, str(exc)
    except TrainingError as exc:
        if exc.reason == "interrupted":
            raise                                                 # Ctrl-C stops the whole comparison
        return None, str(exc)


def _summarise(noise, n_test, repeats, test_points, errors, reasons, references, notes) -> Comparison:
    out = Comparison(list(map(float, noise)), n_test, repeats, test_points, unavailable=reasons,
                     closed_form=list(references), notes=list(notes))
    for name, per_level in errors.items():
        stats = [_mean_ci(np.concatenate(e)) if e else (None, None, None) for e in per_level]
        out.mse[name], out.ci_low[name], out.ci_high[name] = (list(t) for t in zip(*stats))
    return out


def _mean_ci(e: np.ndarray) -> tuple[float, float, float]:
    m = float(e.mean())
    half = _Z95 * float(e.std(ddof=1)) / np.sqrt(len(e)) if len(e) > 1 else 0.0
    return m, m - half, m + half
