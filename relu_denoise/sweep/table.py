"""One table for sweeps and `collect`: the rows of run directories, as CSV and JSON.

A row holds the swept keys (read from the run's recipe.yaml), command, status, reason, run_dir, seconds and
the command's scalar results (results.ROW_KEYS); compare gives one row per noise level and estimator.
"""

import csv
import io
import json
from datetime import datetime
from pathlib import Path

from ..errors import RecipeError, RunError
from ..files import atomic_write_text, to_jsonable
from ..results import FIT_IN_ALIGN, OLD_KEYS, ROW_KEYS
from .records import POINT_FILE, read_recipe, read_record
from .spec import flatten


def run_rows(run_dir, keys: list[str]) -> list[dict]:
    """The table rows of one run directory: the keys' values (from its recipe.yaml), status, reason,
    run_dir, seconds and the command's scalar results; compare gives one row per noise level and estimator.

    A run file that cannot be read (hand-edited, truncated) gives status "unreadable" and a reason naming it.
    """
    run_dir = Path(run_dir)
    unreadable = []
    manifest, result, point = (_read(run_dir / name, unreadable) for name in ("manifest.json", "result.json",
                                                                             POINT_FILE))
    try:
        recipe = read_recipe(run_dir)
    except RunError as exc:
        recipe = {}
        unreadable.append(exc)
    command = manifest.get("command", result.get("command"))
    row = {k: _lookup(recipe, k) for k in keys}
    row.update(command=command, status=manifest.get("status", "running"), reason=manifest.get("reason"),
               run_dir=str(run_dir.resolve()), seconds=_seconds(point, manifest))
    if unreadable:
        row.update(status="unreadable", reason=f"{unreadable[0]}; repair the file, or delete {run_dir.name}/ "
                                               "(a sweep then runs its point again)")
    if command == "compare":
        return _compare_rows(_without_level_key(row, recipe), result)
    return [{**row, **_scalars(command, result)}]


def _read(path: Path, unreadable: list) -> dict:
    """A run file as a mapping ({} when missing); one that cannot be read is added to `unreadable`."""
    try:
        return read_record(path)
    except RunError as exc:
        unreadable.append(exc)
        return {}


def _lookup(mapping: dict, key: str):
    node = mapping
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _seconds(point: dict, manifest: dict) -> float | None:
    """Wall seconds of the point (sweep_point.json), else the manifest's end - start (1 s resolution)."""
    seconds = point.get("seconds")
    if seconds is not None:
        return round(float(seconds), 3)
    try:
        return (datetime.fromisoformat(manifest["end"]) - datetime.fromisoformat(manifest["start"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _scalars(command: str, result: dict) -> dict:
    out = {}
    cf = result.get("closed_form")
    if isinstance(cf, dict):
        out["geometry"] = cf.get("geometry")
    elif command == "closed-form":
        out["geometry"] = result.get("geometry")
    if command in ("align", "certify"):             # the fit they ran first
        fit = result.get("fit") or {}
        out.update({k: fit.get(k) for k in FIT_IN_ALIGN})
    out.update({k: result.get(k, result.get(OLD_KEYS.get((command, k), k))) for k in ROW_KEYS.get(command, ())})
    return out


def _without_level_key(row: dict, recipe: dict) -> dict:
    """A compare row without the recipe's own noise level: compare measures at each of its levels instead
    (compare.level_noise replaces noise.sigma, or noise.radius for sphere and ball noise), and the level of
    a row is its `noise` column. The key stays (blank), so the table keeps its columns."""
    noise = recipe.get("noise") if isinstance(recipe.get("noise"), dict) else {}
    key = "noise.sigma" if noise.get("distribution", "gaussian") == "gaussian" else "noise.radius"
    return {**row, key: None} if key in row else row


def _compare_rows(row: dict, result: dict) -> list[dict]:
    levels, mse = result.get("noise") or [], result.get("estimators") or {}
    lo, hi, best = result.get("ci_low") or {}, result.get("ci_high") or {}, result.get("best") or []
    rows = []
    for i, level in enumerate(levels):
        for name, values in mse.items():
            if i < len(values) and values[i] is not None:
                rows.append({**row, "noise": level, "estimator": name, "mse": values[i],
                             "ci_low": _at(lo.get(name), i), "ci_high": _at(hi.get(name), i),
                             "best": _at(best, i) == name, "n_test": result.get("n_test")})
    return rows or [{**row, "noise": None, "estimator": None, "mse": None}]


def _at(values, i):
    return values[i] if isinstance(values, list) and i < len(values) else None


# ---------------------------------------------------------------- CSV and JSON


def columns(rows: list[dict]) -> list[str]:
    """Every key of the rows, in order of first appearance."""
    return list(dict.fromkeys(k for row in rows for k in row))


def write_table(directory: Path, rows: list[dict], meta: dict) -> None:
    """sweep.csv (tidy, one row per line) and sweep.json ({meta..., "rows": [...]}), atomically."""
    atomic_write_text(directory / "sweep.csv", to_csv(rows))
    atomic_write_text(directory / "sweep.json", json.dumps(to_jsonable({**meta, "rows": rows}), indent=2) + "\n")


def to_csv(rows: list[dict]) -> str:
    """Rows as CSV text: empty cells for None, JSON for lists and mappings."""
    cols = columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in to_jsonable(rows):
        writer.writerow(["" if row.get(c) is None else
                         json.dumps(row[c]) if isinstance(row[c], (list, dict)) else row[c] for c in cols])
    return buf.getvalue()


# ---------------------------------------------------------------- collect


def collect(paths) -> list[dict]:
    """The rows of every run directory under `paths` (run directories, sweep directories, any folders).

    Columns are the swept keys recorded by sweeps (sweep_point.json); runs made by hand add the recipe
    keys whose values differ between the runs found. Sweep points come first, in grid order. A run with a
    file that cannot be read gives a row with status "unreadable" (run_rows); the others are collected.
    """
    runs = find_runs(paths)
    infos = {r: _read(r / POINT_FILE, []) for r in runs}            # an unreadable one: its row says so
    keys = list(dict.fromkeys(k for info in infos.values() for k in info.get("keys", [])))
    if not all(infos.values()):
        keys += [k for k in varying_keys([_recipe_or_empty(r) for r in runs]) if k not in keys]
    order = sorted(runs, key=lambda r: (not infos[r], infos[r].get("sweep", ""), infos[r].get("index", 0), str(r)))
    return [row for r in order for row in run_rows(r, keys)]


def _recipe_or_empty(run_dir: Path) -> dict:
    try:
        return read_recipe(run_dir)
    except RunError:                              # its row says so
        return {}


def collect_frame(paths):
    """collect(paths) as a pandas DataFrame (pandas imported here; pip install pandas)."""
    try:
        import pandas as pd
    except ImportError:
        raise RecipeError("collect_frame needs pandas: pip install pandas") from None
    rows = collect(paths)
    return pd.DataFrame(rows, columns=columns(rows))


def find_runs(paths) -> list[Path]:
    """Run directories (folders with a manifest.json) at or under each path, each once, sorted."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise RecipeError(f"collect: no such file or directory: {path}")
        if (path / "manifest.json").is_file():
            found.append(path.resolve())
        elif path.is_dir():
            found += [m.parent.resolve() for m in path.rglob("manifest.json")]
    return sorted(set(found))


def varying_keys(recipes: list[dict]) -> list[str]:
    """Dotted recipe keys whose values differ between the recipes (or are missing from some), in recipe order."""
    flat = [flatten(r) for r in recipes]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if len({json.dumps(to_jsonable(f.get(k)), sort_keys=True) for f in flat}) > 1]


# ---------------------------------------------------------------- the terminal's tables

# The results a terminal table shows for each command, in this order, each where some row fills it (sweep.csv,
# sweep.json, collect --csv and --json hold every column).
SHOWN = {
    "closed-form": ("geometry", "cost", "cost_formula", "rho", "units"),
    "fit": ("geometry", "cost", "cost_ratio", "reference_ratio", "max_residual_rel", "function_gap", "steps",
            "converged"),
    "compare": ("noise", "estimator", "mse", "ci_low", "ci_high", "best"),
    "align": ("aligned_fraction", "baseline_fraction", "function_gap", "n_units_kept"),
    "certify": ("lower", "upper", "gap", "lower_method", "rounds", "closed_form_cost"),
    "flow": ("kind", "denoiser", "memorized", "virtual_fraction", "boundary_fraction", "other_fraction",
             "cost_ratio_max"),
}


def by_command(rows: list[dict]) -> dict:
    """command -> its rows, in the order of SHOWN, then any other command (None: a run whose manifest names
    none); the rows of each in their order."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row.get("command"), []).append(row)
    order = list(SHOWN)
    return dict(sorted(groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def shown_columns(rows: list[dict]) -> list[str]:
    """The columns of a terminal table of one command's rows, each only where some row fills it: run_dir unless
    the keys tell the runs apart, the keys (swept, or differing between runs), status, the command's results
    (SHOWN), seconds and reason."""
    cols = columns(rows)
    keys = cols[:cols.index("command")] if "command" in cols else []
    wanted = [*keys, "status", *SHOWN.get(rows[0].get("command"), ()), "seconds", "reason"]
    shown = [c for c in wanted if any(r.get(c) is not None for r in rows)]
    told_apart = {json.dumps([to_jsonable(r.get(k)) for k in keys if k in shown]) for r in rows}
    if len(told_apart) < len({r["run_dir"] for r in rows}):
        shown.insert(0, "run_dir")
    return shown
