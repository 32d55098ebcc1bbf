"""Figures of a run's records: each draws one figure, writes it atomically and returns its Path.

    training_curves     loss, cost, max residual, multiplier, learning rate against the step
    mse_vs_noise        test MSE against the noise level, log-log, with confidence bands
    summary_figure      a sweep's main metric against its first swept key (sweep.png)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from ..checks import check_series, check_vector
from ..errors import DataError
from ..files import to_jsonable
from .base import _figure, _save, _wrapped


# ---------------------------------------------------------------- 4. training curves


_TRAINING_PANELS = (
    (("loss",), "loss"),
    (("cost",), "path cost"),
    (("max_residual",), "max residual"),
    (("lambda", "multiplier"), "$\\lambda$ / multiplier"),
    (("lr",), "learning rate"),
)


def training_curves(path, history: Mapping[str, Sequence[float]], *, x: str = "step", title: str = "",
                    references: Mapping[str, float | tuple[float, str]] | None = None,
                    returned_step: float | None = None, returned: Mapping[str, float] | None = None,
                    returned_label: str = "returned network") -> Path:
    """Stacked panels, one per present key group: loss, cost, max_residual, lambda/multiplier, lr.

    history[x] (default "step") gives the x-axis; without it the record index is used. Entries
    may be None (not recorded at that step; the recorded values are joined). A panel uses a log
    y-axis when all its finite values are positive and span at least a decade.

    references : key -> value or (value, label): a dashed horizontal line in that key's panel (the closed
        form's cost, the stopping tolerance of the max residual).
    returned_step : the x of the check whose network was returned: a dotted vertical line in every panel.
    returned : key -> the returned network's value (after any polish: what the summary reports), a star at
        returned_step in that key's panel, labelled `returned_label` and the value.
    """
    if not isinstance(history, Mapping):
        raise DataError(f"history: expected a dict key -> list of numbers, got {type(history).__name__}")
    panels = [(keys, label) for keys, label in _TRAINING_PANELS if any(k in history for k in keys)]
    if not panels:
        known = ", ".join(k for keys, _ in _TRAINING_PANELS for k in keys)
        raise DataError(f"history: none of the keys {known} is present; got {', '.join(map(str, history)) or 'none'}")
    n = len(next(iter(history[k] for keys, _ in panels for k in keys if k in history)))
    xs = check_series(history[x], name=f"history[{x!r}]") if x in history else np.arange(n, dtype=np.float64)
    references = {k: (float(v), f"{k} reference = {float(v):.4g}") if not isinstance(v, tuple) else (float(v[0]), v[1])
                  for k, v in (references or {}).items()}
    returned = {k: float(v) for k, v in (returned or {}).items() if v is not None}
    fig = _figure((7.5, 1.1 + 2.0 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (keys, label) in zip(axes[:, 0], panels):
        series = {k: check_series(history[k], name=f"history[{k!r}]", n=xs.size) for k in keys if k in history}
        series = {k: v for k, v in series.items() if np.isfinite(v).any()} or series   # a column never recorded
        for k, v in series.items():
            kept = np.isfinite(v)                            # None entries: not recorded at that step
            ax.plot(xs[kept], v[kept], lw=1.3, marker="." if kept.sum() < 50 else None, label=k)
        refs = [(k, *references[k]) for k in keys if k in references]
        for k, value, text in refs:
            ax.axhline(value, color="grey", ls="--", lw=1.0, label=text)
        marks = [(k, returned[k]) for k in keys if k in returned and returned_step is not None]
        if returned_step is not None:
            ax.axvline(returned_step, color="C3", ls=":", lw=1.2, zorder=1)
        for k, value in marks:
            ax.plot([returned_step], [value], ls="", marker="*", ms=12, color="C3", mec="black", mew=0.6, zorder=5,
                    label=f"{returned_label}: {value:.6g}")
        finite = np.concatenate([v[np.isfinite(v)] for v in series.values()]
                                + [np.array([r for _, r, _ in refs] + [m for _, m in marks])])
        if finite.size and np.all(finite > 0) and finite.max() >= 10 * finite.min():
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if len(series) > 1 or refs or marks:
            ax.legend(fontsize="small", loc="best")
    axes[-1, 0].set_xlabel(x if x in history else "record")
    if title:
        axes[0, 0].set_title(_wrapped(title))
    return _save(fig, path)


# ---------------------------------------------------------------- 5. MSE against noise


def mse_vs_noise(path, noise: Sequence[float], results: Mapping[str, Mapping[str, Sequence[float | None]]], *,
                 title: str = "") -> Path:
    """Test MSE against the noise level, log-log, one line per estimator (docs/theory.md 3).

    results[name] = {"mse": [...], "ci_low": [...], "ci_high": [...]}, each one value per noise
    level; None (or a missing key) marks an unavailable value. Non-positive values are not
    drawn (log axes). Confidence intervals are error bars joined by shaded bands.
    """
    sigma = check_vector(noise, name="noise")
    if sigma.size == 0 or np.any(sigma <= 0):
        raise DataError(f"noise: expected a non-empty list of levels > 0, got {list(noise)}")
    if not isinstance(results, Mapping) or not results:
        raise DataError("results: expected a non-empty dict name -> {'mse': [...], 'ci_low': [...], 'ci_high': [...]}")
    curves = {str(name): _mse_curve(r, name=str(name), n=sigma.size) for name, r in results.items()}
    positive = np.concatenate([c[np.isfinite(c)] for c in (v for trio in curves.values() for v in trio)])
    fig = _figure((7, 5))
    ax = fig.subplots()
    for i, (name, (mse, lo, hi)) in enumerate(curves.items()):
        color = f"C{i % 10}"
        if not np.any(np.isfinite(mse)):
            ax.add_line(Line2D([], [], color=color, marker="o", label=f"{name} (unavailable)"))
            continue
        # estimators that coincide (nn on closed_form, lmmse on identity) stay visible: each its own marker and
        # dash, the earlier ones larger and hollow so that a later one drawn on top does not hide them
        ax.plot(sigma, mse, **_series_style(i), color=color, lw=1.4, label=name, zorder=3 + i)
        band = np.isfinite(lo) & np.isfinite(hi)
        bars = band & np.isfinite(mse)
        if bars.any():
            err = np.clip([mse[bars] - lo[bars], hi[bars] - mse[bars]], 0, None)
            ax.errorbar(sigma[bars], mse[bars], yerr=err, fmt="none", ecolor=color, capsize=3, lw=1)
        if band.any():
            ax.fill_between(sigma, np.where(band, lo, 1.0), np.where(band, hi, 1.0), where=band,
                            color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*_log_limits(sigma))
    ax.set_ylim(*_log_limits(positive if positive.size else np.array([1e-3, 1.0])))
    ax.set_xlabel("noise level $\\sigma$")
    ax.set_ylabel("test MSE $E\\|h(x + \\epsilon) - x\\|^2$")
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.1, which="minor")
    ax.legend(fontsize="small", loc="best")
    if title:
        ax.set_title(_wrapped(title))
    return _save(fig, path)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def _series_style(i: int) -> dict:
    """The i-th series' marker and dash: each its own, earlier ones larger and hollow, so that series which
    coincide (nn on closed_form, lmmse on identity, seeds on seeds) all stay visible when later ones are drawn
    on top."""
    return dict(ls=_DASHES[i % len(_DASHES)], marker=_MARKERS[i % len(_MARKERS)], ms=max(4.0, 10.0 - 1.2 * i),
                mfc="none", mew=1.4)


def _mse_curve(r, *, name: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mse, ci_low, ci_high), each (n,), unavailable or non-positive values as NaN."""
    if not isinstance(r, Mapping) or "mse" not in r:
        raise DataError(f"results[{name!r}]: expected a dict with key 'mse' (and optional 'ci_low', 'ci_high')")
    out = []
    for key in ("mse", "ci_low", "ci_high"):
        v = r.get(key)
        v = np.full(n, np.nan) if v is None else check_series(v, name=f"results[{name!r}][{key!r}]", n=n)
        out.append(np.where(v > 0, v, np.nan))
    return out[0], out[1], out[2]


def _log_limits(v: np.ndarray) -> tuple[float, float]:
    """Axis limits a little beyond the positive values v, in log space."""
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    f = (hi / lo) ** 0.05
    return lo / f, hi * f


# ---------------------------------------------------------------- a sweep's summary




def main_metric(command: str, rows: list[dict]) -> str:
    """The column a sweep's figure shows: cost_ratio (fit, where closed forms exist), cost, aligned_fraction, mse,
    upper (certify: the certified cost of an exact interpolant), memorized (flow: the share of flows ending at a
    training point)."""
    if command == "compare":
        return "mse"
    if command == "align":
        return "aligned_fraction"
    if command == "certify":
        return "upper"
    if command == "flow":
        return "memorized"
    if command == "fit" and any(r.get("cost_ratio") is not None for r in rows):
        return "cost_ratio"
    return "cost"


def summary_figure(path, rows: list[dict], keys: list[str], command: str, *, title: str = "") -> Path | None:
    """The main metric against the first swept key, one line per combination of the other keys
    (compare: test MSE against the noise level, one line per estimator, the mean over the points).
    Returns None when there is nothing to draw."""
    metric = main_metric(command, rows)
    good = [r for r in rows if _is_number(r.get(metric))]
    xkey = "noise" if command == "compare" else (keys[0] if keys else None)
    if not good or xkey is None:
        return None
    lines = _lines(good, xkey, ["estimator"] if command == "compare" else keys[1:], metric)
    fig = _figure((6.4, 4.2))                     # the dpi of every other figure
    ax = fig.subplots()
    numeric = all(_is_number(x) for xs, _ in lines.values() for x in xs)
    order = list(dict.fromkeys(_show(x) for xs, _ in lines.values() for x in xs))
    many = len(lines) > 10
    for i, (label, (xs, ys)) in enumerate(lines.items()):
        pos = xs if numeric else [order.index(_show(x)) for x in xs]
        if many:
            ax.plot(pos, ys, marker="o", ms=3, lw=0.8, alpha=0.5, color="0.5", ls="-" if numeric else "none")
            continue
        style = _series_style(i)
        if not numeric:
            style["ls"] = "none"                      # categories (methods, shapes) are not a continuum
        ax.plot(pos, ys, **style, lw=1.4, color=f"C{i % 10}", label=label, zorder=3 + i)
    if metric == "cost_ratio":                    # a fit at the closed form's cost (docs/theory.md 1)
        ax.axhline(1.0, color="0.3", ls=":", lw=1, zorder=1, label="closed form's cost")
    failed = [r for r in good if r.get("status") not in (None, "ok")]
    if failed:                                    # a number from a run that did not end ok is drawn, and marked
        fx = [r[xkey] if numeric else order.index(_show(r[xkey])) for r in failed]
        ax.plot(fx, [r[metric] for r in failed], ls="none", marker="x", ms=7, mew=1.6, color="black", zorder=20,
                label=f"run not ok ({', '.join(sorted({str(r['status']) for r in failed}))})")
    if command == "compare":                      # test MSE against the noise level: log-log (docs/theory.md 3)
        ax.set_xscale("log")
        ax.set_yscale("log")
    elif numeric and _spread(good, xkey) >= 100:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(order)), order, rotation=20)
    if not many and any(lines):
        ax.legend(fontsize=8)
    ax.set_xlabel(axis_label(xkey))
    ax.set_ylabel(axis_label(metric) + (", mean over the other keys" if command == "compare" and keys else ""))
    ax.set_title(f"{title}: {metric} vs {xkey}" if title else f"{metric} vs {xkey}", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


# the words of a sweep's keys and metrics on its axes, with the key itself (what the recipe and sweep.csv call it)
_AXIS_WORDS = {
    "noise": "noise level $\\sigma$",
    "noise.sigma": "noise level $\\sigma$",
    "noise.radius": "noise radius",
    "noise.samples": "noisy samples per point $M$",
    "model.width": "network width $K$",
    "data.dim": "dimension $d$",
    "data.shape": "shape of the points",
    "flow.duplicate": "copies of a training point",
    "flow.sigma_max": "starting noise level $\\sigma_{max}$",
    "train.lr": "learning rate",
    "train.steps": "training steps",
    "train.method": "training method",
    "train.weight_decay": "weight decay $\\lambda$",
    "cost_ratio": "path cost / the closed form's",
    "cost": "path cost",
    "mse": "test MSE",
    "aligned_fraction": "aligned cost fraction",
    "upper": "certified upper bound on the min cost",
    "memorized": "share of flows ending at a training point",
}


def axis_label(key: str) -> str:
    """A sweep key or metric in words, followed by the key: "noise level $\\sigma$ (noise.sigma)"; a key with
    no words of its own is shown as it is."""
    words = _AXIS_WORDS.get(key)
    return f"{words} ({key})" if words else key


def _lines(rows: list[dict], xkey: str, group_keys: list[str], metric: str) -> dict:
    """label -> (xs, ys): the mean metric at each x for each combination of the group keys."""
    acc: dict[str, dict] = {}
    for r in rows:
        label = ", ".join(f"{k}={_show(r.get(k))}" if k != "estimator" else str(r.get(k)) for k in group_keys)
        acc.setdefault(label, {}).setdefault(json.dumps(to_jsonable(r.get(xkey))), (r.get(xkey), []))[1].append(
            r[metric])
    out = {}
    for label, by_x in acc.items():
        pairs = list(by_x.values())
        if all(_is_number(x) for x, _ in pairs):
            pairs.sort(key=lambda p: p[0])
        out[label] = ([x for x, _ in pairs], [sum(v) / len(v) for _, v in pairs])
    return out


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _spread(rows, key) -> float:
    """max / min of the positive values of `key`, 0 unless every row has one (then a log axis reads better)."""
    xs = [r[key] for r in rows if _is_number(r.get(key)) and r[key] > 0]
    return max(xs) / min(xs) if xs and len(xs) == len(rows) else 0.0


def _show(value) -> str:
    """A value as the sweep's table writes it (the same rule as sweep._show): strings as they are, else JSON."""
    return json.dumps(to_jsonable(value)) if not isinstance(value, str) else value
