"""Running the claims: their runs as sweep points (cached by content, resumable, parallel, on Dask), then each
claim's measurement and verdict, as the report's rows."""

import platform
import time
from pathlib import Path

from ..errors import RecipeError, ReludenError, RunError
from ..files import read_json, utc_now
from ..recipe import DEFAULT_RECIPE, read_raw_recipe
from ..runs import git_state
from ..sweep.plan import plan_points
from ..sweep.records import POINT_FILE, manifest_of
from ..sweep.runner import SweepEvents, check_device, check_executor, claim_sweep_dir, run_points
from ..sweep.spec import SweepFile, make_point, override
from .spec import VERDICTS, Claim, Measurement, RunResult

RUNS = "runs"


def recipes_dir() -> Path:
    """The shipped recipes (recipes/ of the clone the package was installed from)."""
    here = Path(__file__).resolve().parents[2] / "recipes"
    if not here.is_dir():
        raise RecipeError(f"reproduce: the shipped recipes are not at {here}; install reluden from a clone "
                          "(pip install -e .), as the README says")
    return here


def select(claims: tuple, only: list[str] | None) -> tuple:
    """The claims named in `only` (all when None); RecipeError naming an unknown id and the known ones."""
    if not only:
        return claims
    known = {c.id for c in claims}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise RecipeError(f"--only: unknown claim {unknown[0]!r}; known: {', '.join(c.id for c in claims)}")
    return tuple(c for c in claims if c.id in only)


def claim_points(claims: tuple, directory: Path, *, quick: bool, device: str) -> dict:
    """(claim id, run name) -> its sweep point; runs shared by claims (the same content) are one point."""
    recipes, by_digest, out = recipes_dir(), {}, {}
    runs = [(claim, spec, name, overrides) for claim in claims for spec in claim.runs
            for name, overrides in spec.variants(quick)]
    for claim, spec, name, overrides in sorted(runs, key=lambda r: -r[1].weight):   # stable among equals
        path = recipes / spec.recipe if spec.recipe != "builtin" else recipes / "builtin"
        raw = DEFAULT_RECIPE if spec.recipe == "builtin" else read_raw_recipe(path)
        sweep = SweepFile(name="reproduce", command=spec.command, recipe=spec.recipe, device=device,
                          figures=spec.figures, **spec.options)
        sets = [override(k, v) for k, v in overrides.items()]
        try:
            point = make_point(len(by_digest), spec.command, path, raw, sets, sweep.options(), directory,
                               values={"claim": claim.id, "run": name}, keys=["claim", "run"], sweep="reproduce")
        except RecipeError as exc:
            raise RecipeError(f"reproduce: claim {claim.id}, run {name}: {exc}") from None
        point = by_digest.setdefault(point.digest, point)
        point.options["figures"] = point.options["figures"] or spec.figures
        out[claim.id, name] = point
    return out


def run_claims(claims: tuple, out: Path, *, quick: bool, jobs: int | None, executor: str, scheduler: str | None,
               device: str, force: bool, events: SweepEvents) -> dict:
    """Run what the claims need into out/runs/ and return the report (report.json's content)."""
    start, started = time.perf_counter(), utc_now()
    jobs = check_executor(jobs, executor, scheduler)
    if scheduler is None:
        check_device("fit", device, where="reproduce")
    directory = (out / RUNS).resolve()
    points = claim_points(claims, directory, quick=quick, device=device)
    unique = sorted({p.digest: p for p in points.values()}.values(), key=lambda p: p.index)
    with claim_sweep_dir(directory, holder="reproduce"):
        plan_points(unique, force=force)
        table = run_points(directory, unique, {"name": "reproduce", "command": "reproduce", "keys": ["claim", "run"]},
                           jobs=jobs, executor=executor, scheduler=scheduler, events=events, name="reproduce")
    results = {p.digest: run_result(p) for p in unique}
    rows = [claim_row(c, {name: results[p.digest] for (cid, name), p in points.items() if cid == c.id}, out)
            for c in claims]
    summary = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    status = "interrupted" if table.stopped else ("failed" if summary["fails"] else "ok")
    return {"command": "reproduce", "status": status, "reason": _reason(status, summary), "run_dir": str(out),
            "seed": 0, "version": _version(), "git_commit": git_state().get("git_commit"), "machine": machine(),
            "device": _device_shown(device),
            "quick": quick, "started": started, "seconds": time.perf_counter() - start,
            "runs": {"total": len(unique), "cached": sum(p.action == "cached" for p in unique),
                     "ran": table.counts.done + table.counts.interrupted,
                     "seconds": sum(r.seconds for r in results.values())},
            "summary": summary, "rows": rows}


def run_result(point) -> RunResult:
    """A point's run as its claims read it (status None: it never ran, or its files cannot be read)."""
    run_dir = Path(point.run_dir)
    manifest = manifest_of(run_dir)
    try:
        result = read_json(run_dir / "result.json") if (run_dir / "result.json").is_file() else {}
        seconds = read_json(run_dir / POINT_FILE).get("seconds", 0.0) if (run_dir / POINT_FILE).is_file() else 0.0
    except RunError:
        result, seconds = {}, 0.0
    return RunResult(manifest.get("status"), manifest.get("reason"), result, run_dir, float(seconds or 0.0))


def claim_row(claim: Claim, runs: dict, out: Path) -> dict:
    """The report's row of one claim: its measurement, verdict and evidence."""
    row = {"id": claim.id, "paper": claim.paper, "claim": claim.claim, "source": claim.source,
           "paper_says": claim.paper_says, "measured": None, "measured_text": "", "checks": [],
           "expected": "; ".join(f"{c.name} {c.expected}" for c in claim.checks),
           "why": " ".join(f"{c.name}: {c.why}." for c in claim.checks if c.why),
           "seconds": sum(r.seconds for r in runs.values()), "evidence": _evidence(claim, runs, out)}
    if claim.not_built:
        return row | {"verdict": "not built", "reason": claim.not_built}
    unfinished = [f"run {name}: {r.status or 'did not run'}" + (f" ({r.reason})" if r.reason else "")
                  for name, r in runs.items() if not r.finished]
    if unfinished:
        return row | {"verdict": "inconclusive", "reason": "; ".join(unfinished)}
    try:
        m = claim.measure(runs)
    except (ReludenError, KeyError, TypeError, ValueError, OSError) as exc:
        m = Measurement({}, "", f"could not measure: {type(exc).__name__}: {exc}")
    verdict, reason, checks = claim.verdict(m)
    first = claim.checks[0].name if claim.checks else None
    return row | {"measured": m.values.get(first), "measured_text": m.text, "checks": checks,
                  "verdict": verdict, "reason": reason}


def _evidence(claim: Claim, runs: dict, out: Path) -> list[dict]:
    items = [{"label": f"{name} run", "path": _rel(r.run_dir, out)} for name, r in runs.items()]
    for name, file in claim.evidence:                     # the first seed's figure
        items.append({"label": f"{name}: {file}", "path": _rel(runs[name].run_dir / file, out)})
    return items


def _rel(path: Path, out: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


def _reason(status: str, summary: dict) -> str | None:
    if status == "interrupted":
        return "interrupted: the finished runs are kept; run reproduce again to finish the rest"
    if status == "failed":
        return f"{summary['fails']} claim(s) fail"
    return None


def _device_shown(device: str) -> str:
    """The device the fits ran on, as resolved here ("auto" -> cpu or cuda)."""
    from ..train import resolve_device

    try:
        return str(resolve_device(device))
    except RecipeError:
        return device                               # only the cluster's workers have it


def _version() -> str:
    from .. import __version__

    return __version__


def machine() -> str:
    from ..checks import available_memory
    from ..sweep.runner import available_cores

    memory = available_memory()
    shown = f", {memory / 2**30:.0f} GiB available" if memory else ""
    return f"{platform.system()} {platform.machine()}, {available_cores()} cores{shown}, Python {platform.python_version()}"
