"""The virtual-point stability audit of the flow command (docs/theory.md 10.3; the paper's table) as a table figure.

    flow_audit    a row per subset size m, a column per denoiser (and the paper's numbers beside them)
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

from matplotlib.colors import to_rgb

from ..checks import check_positive
from ..errors import DataError
from .base import _figure, _save
from .flows import CLASS_STYLE, _count, _share, _size

_CHAR_IN = 0.075          # inches per character of 9 pt text: the table's column widths
_SMALL_CHAR_IN = 0.068    # and of the "small" note under it
_SIZE_NAMES = {1: "clean points", 2: "pairs", 3: "triplets", 4: "quadruplets", 5: "quintuplets"}


def flow_audit(path, audits, *, reference=None, reference_label: str = "paper", threshold: float | None = None,
               title: str = "") -> Path | None:
    """The virtual-point stability audit (docs/theory.md 10.3) as a table: a row per subset size m, a column per
    denoiser, cells "k of C (pct%)" (k stable of the C subset sums started; "sample of P" below where C is a
    seeded sample of the P = C(n, m) subset sums), each shaded by its stable share.

    audits : label -> {m: {"stable": k, "total": C, "population": P, "sampled": bool}} (flows.Audit.to_dict(), or
        the Audit itself; population defaults to total, sampled to total < population; JSON's string keys accepted).
    reference : {m: (k, C)}, a last column `reference_label`, e.g. the paper's {2: (429, 435), 3: (3390, 4060),
        4: (6965, 27405)}.
    threshold : the audit's threshold, stated under the table. Returns None where there is no cell to draw.
    """
    if not isinstance(audits, Mapping):
        raise DataError(f"audits: expected a dict label -> {{m: {{stable, total, population, sampled}}}}, "
                        f"got {type(audits).__name__}")
    cols = {str(label): _check_audit(a, name=f"audits[{label!r}]") for label, a in audits.items()}
    if reference is not None:
        if str(reference_label) in cols:
            raise DataError(f"reference_label: {reference_label!r} is also a denoiser's label in audits; "
                            "give the reference column another name")
        cols[str(reference_label)] = _check_reference(reference)
    tau = None if threshold is None else check_positive(threshold, name="threshold")
    sizes = sorted({m for col in cols.values() for m in col})
    if not sizes:
        return None
    fig, width = _table(cols, sizes)
    what = f"within τ = {tau:g} (L∞)" if tau else "within the threshold"
    note = f"stable: the score flow from a subset sum ends {what} of it; shading: stable share"
    ax = fig.axes[0]
    ax.set_title(title or "virtual-point stability audit", fontsize="medium")
    ax.text(0.5, -0.04, textwrap.fill(note, int(0.9 * width / _SMALL_CHAR_IN)), transform=ax.transAxes,
            ha="center", va="top", fontsize="small", color="0.3")
    return _save(fig, path)


def _table(cols: dict, sizes: list[int]):
    """(the figure of the table, its width in inches): a header row, a row per size, columns as wide as their
    text, each cell shaded by its stable share."""
    cells = [[col.get(m) for col in cols.values()] for m in sizes]
    text = [[f"m = {m} ({_SIZE_NAMES[m]})" if m in _SIZE_NAMES else f"m = {m}"] + [_audit_cell(c) for c in row]
            for m, row in zip(sizes, cells)]
    header = ["subset size", *cols]
    chars = [max(len(line) for t in column for line in t.split("\n")) + 3 for column in zip(header, *text)]
    lines = 2 if any("\n" in t for row in text for t in row) else 1
    width = max(_CHAR_IN * sum(chars) + 0.3, 4.2)
    fig = _figure((width, 1.1 + (0.12 + 0.2 * lines) * len(sizes)))
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=text, colLabels=header, cellLoc="center", bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for (r, c), cell in table.get_celld().items():
        cell.set_width(chars[c])                           # the bbox rescales: widths in proportion to the text
        cell.set_edgecolor("0.6")
        if r == 0:
            cell.set_text_props(fontweight="bold")
        elif c > 0 and cells[r - 1][c - 1] is not None and cells[r - 1][c - 1][1]:
            k, C = cells[r - 1][c - 1][:2]
            cell.set_facecolor(_mix(CLASS_STYLE["virtual"]["color"], 0.55 * k / C))
    return fig, width


def _check_audit(audit, *, name: str) -> dict[int, tuple[int, int, int, bool]]:
    """m -> (stable, total, population, sampled) from {m: {stable, total, population?, sampled?}} or an Audit."""
    if callable(getattr(audit, "to_dict", None)) and hasattr(audit, "by_size"):
        audit = audit.to_dict()
    if not isinstance(audit, Mapping):
        raise DataError(f"{name}: expected a dict m -> {{stable, total, population, sampled}}, got "
                        f"{type(audit).__name__}")
    out = {}
    for key, row in audit.items():
        m = _size(key, name=name, least=1)
        at = f"{name}[{key!r}]"
        if not isinstance(row, Mapping) or "stable" not in row or "total" not in row:
            raise DataError(f"{at}: expected a dict with stable and total (population, sampled optional), "
                            f"got {row!r:.60}")
        k, C = _count(row["stable"], name=f"{at}['stable']"), _count(row["total"], name=f"{at}['total']")
        P = _count(row.get("population", C), name=f"{at}['population']")
        if not k <= C <= P:
            raise DataError(f"{at}: expected stable <= total <= population, got {k}, {C}, {P}")
        out[m] = (k, C, P, bool(row.get("sampled", C < P)))
    return out


def _check_reference(reference) -> dict[int, tuple[int, int, int, bool]]:
    """m -> (k, C, C, False) from {m: (k, C)}."""
    if not isinstance(reference, Mapping):
        raise DataError(f"reference: expected a dict m -> (stable, total), got {type(reference).__name__}")
    out = {}
    for key, pair in reference.items():
        m = _size(key, name="reference", least=1)
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Iterable) or len(pair := list(pair)) != 2:
            raise DataError(f"reference[{key!r}]: expected a pair (stable, total), got {pair!r:.60}")
        k, C = (_count(v, name=f"reference[{key!r}]") for v in pair)
        if k > C:
            raise DataError(f"reference[{key!r}]: stable ({k}) exceeds total ({C})")
        out[m] = (k, C, C, False)
    return out


def _audit_cell(cell) -> str:
    if cell is None:
        return "-"
    k, C, P, sampled = cell
    return f"{k} of {C} ({_share(k, C)})" + (f"\nsample of {P}" if sampled else "")


def _mix(color: str, share: float) -> tuple[float, float, float]:
    """`color` mixed into white by `share` in [0, 1]: a light shade that black text stays readable on."""
    return tuple(1 - share * (1 - v) for v in to_rgb(color))
