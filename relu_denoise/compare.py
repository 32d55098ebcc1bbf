"""Test error of denoisers on fresh data across noise levels (theory.md section 3).

The paper's generalization claim made runnable: at low noise the min-cost NN denoiser has
lower test MSE E||h(x + eps) - x||^2 on NEW clean points than the empirical MMSE, which snaps
every input to a training point. Every estimator is called the same way, (n, d) -> (n, d).

Protocol, per noise level sigma and repeat r:
  1. clean training points from the recipe's data source (repeat 0: the recipe seed, so the
     same points as `closed-form` and `fit`; repeat r > 0: a redrawn training set);
  2. M offline Gaussian samples per point at sigma (the NN is trained on them; the closed
     form uses their extremes, the empirical rho rule);
  3. n_test fresh clean points from the source's distribution (for `points` / `file` data,
     which have none: the training points themselves, said in the result) plus N(0, sigma^2 I);
  4. per test point the squared error ||h(y) - x||^2 (summed over coordinates).
The MSE is the mean over test points and repeats, with a normal 95% confidence interval.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .closed_form import closed_form
from .data import make_source
from .errors import DataError, NoClosedFormError, TrainingError
from .estimators import make_estimator

ESTIMATOR_NAMES = ("nn", "closed_form", "emmse", "lmmse", "nearest", "identity")
_Z95 = 1.959963984540054


@dataclass
class Comparison:
    """Test MSE per estimator and noise level. Lists are indexed like `noise`; None = unavailable."""

    noise: list[float]
    n_test: int
    repeats: int
    test_points: str                               # "fresh" or "training points (no distribution)"
    mse: dict[str, list] = field(default_factory=dict)
    ci_low: dict[str, list] = field(default_factory=dict)
    ci_high: dict[str, list] = field(default_factory=dict)
    unavailable: dict[str, list] = field(default_factory=dict)   # reasons, None where available

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
                "best": [self.best(i) for i in range(len(self.noise))]}


FitNN = Callable[[np.ndarray, np.ndarray, float], Callable]  # (points, samples, sigma) -> denoiser


def compare(recipe, noise: list[float], *, fit_nn: FitNN | None, n_test: int, repeats: int = 1,
            base_dir=".", on_fit: Callable[[str], None] = lambda msg: None) -> Comparison:
    """Test MSE of every estimator at each noise level (see the module docstring for the protocol).

    `fit_nn(points, samples, sigma)` trains the NN denoiser (None skips the `nn` estimator);
    `on_fit(message)` is called after each (noise level, repeat) for progress reporting.
    """
    names = [n for n in ESTIMATOR_NAMES if fit_nn is not None or n != "nn"]
    errors = {n: [[] for _ in noise] for n in names}
    reasons = {n: [None] * len(noise) for n in names}
    test_points = "fresh"
    for r in range(repeats):
        rng = np.random.default_rng(recipe.seed if r == 0 else [recipe.seed, r])
        source = make_source(recipe.data, rng=rng, base_dir=base_dir)
        x = source.points                                             # (N, d)
        for i, sigma in enumerate(noise):
            rng_i = np.random.default_rng([recipe.seed, r, i])
            samples = x[:, None, :] + sigma * rng_i.standard_normal((len(x), recipe.noise.samples, x.shape[1]))
            x_test, fresh = _test_points(source, n_test, rng_i)
            test_points = test_points if fresh else "training points (the data kind has no distribution)"
            y_test = x_test + sigma * rng_i.standard_normal(x_test.shape)
            for name in names:
                h, why = _estimator(name, x, samples, sigma, fit_nn)
                if h is None:
                    reasons[name][i] = why
                    continue
                errors[name][i].append(np.sum((h(y_test) - x_test) ** 2, axis=1))
            on_fit(f"sigma={sigma:g} repeat {r + 1}/{repeats}")
    return _summarise(noise, n_test, repeats, test_points, errors, reasons)


def _test_points(source, n_test: int, rng) -> tuple[np.ndarray, bool]:
    try:
        return source.draw(n_test, rng=rng), True
    except DataError:
        return source.points[rng.integers(len(source.points), size=n_test)], False


def _estimator(name, x, samples, sigma, fit_nn):
    """(denoiser, None) or (None, reason the estimator is unavailable)."""
    try:
        if name == "nn":
            return fit_nn(x, samples, sigma), None
        if name == "closed_form":
            return closed_form(x, samples=samples).predict, None   # theory.md 1: empirical rho rule
    except NoClosedFormError as exc:
        return None, str(exc)
    except TrainingError as exc:
        if getattr(exc, "reason", "") == "interrupted":
            raise                                                 # Ctrl-C stops the whole comparison
        return None, str(exc)
    except DataError as exc:                                      # e.g. duplicate clean points
        return None, f"no closed form: {exc}"
    return make_estimator(name, x, sigma), None


def _summarise(noise, n_test, repeats, test_points, errors, reasons) -> Comparison:
    out = Comparison(list(map(float, noise)), n_test, repeats, test_points, unavailable=reasons)
    for name, per_level in errors.items():
        stats = [_mean_ci(np.concatenate(e)) if e else (None, None, None) for e in per_level]
        out.mse[name], out.ci_low[name], out.ci_high[name] = (list(t) for t in zip(*stats))
    return out


def _mean_ci(e: np.ndarray) -> tuple[float, float, float]:
    m = float(e.mean())
    half = _Z95 * float(e.std(ddof=1)) / np.sqrt(len(e)) if len(e) > 1 else 0.0
    return m, m - half, m + half
