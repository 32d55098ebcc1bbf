"""What each command prints as its summary (on stdout; on stderr when stdout carries --json): rich tables and
lines drawn from the typed summaries of results.py (and a sweep's rows). Renderers print fields; every fact they
show was decided by the library."""

import math
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from .app import summary as err          # the summary's console (app.SummaryConsole), stdout or stderr


def _say(text: str) -> None:
    """One line of the library's own words (notes, reasons), printed as they are."""
    err.print(escape(text), soft_wrap=True)


# ---------------------------------------------------------------- closed-form


def closed_form(summary) -> None:
    """results.ClosedFormSummary (with a closed form): geometry, rho, cost, notes and the table of ramps."""
    form, ref = summary.reference.form, summary.reference
    err.print(f"[bold]{form.geometry}[/]  status [bold]{form.status}[/]  "
              f"{form.n_points} points in R^{form.dim} (affine dimension {form.affine_dim})")
    rho = "empirical (extreme sample projections)" if form.rho is None else f"{form.rho:.6g} ({ref.rho_rule})"
    err.print(f"rho {rho}   "
              f"cost {summary.cost:.6g} (weights)  {form.cost_formula:.6g} (formula: {form.formula})   "
              f"units {summary.units}")
    for note in form.notes:
        _say(f"  note: {note}")
    table = Table(title="ramps  u * ramp(u^T (y - origin); lo, hi, height)", title_justify="left")
    for col in ("ramp", "direction u", "flat below", "flat above", "slope", "cost"):
        table.add_column(col, justify="right" if col not in ("ramp", "direction u") else "left")
    for p in form.ramps:
        u = "(" + ", ".join(f"{v:.3f}" for v in p.u) + ")" if form.dim <= 4 else f"{form.dim}-dim"
        table.add_row(p.label, u, f"t <= {p.lo:.4g}", f"t >= {p.hi:.4g}", f"{p.slope:.4g}", f"{p.cost:.4g}")
    err.print(table)


# ---------------------------------------------------------------- fit


def fit(summary) -> None:
    """results.FitSummary: what training returned beside the closed form and the reference."""
    s, form, ramps = summary.stats, summary.reference.form, summary.stats.lower_bound is not None
    table = Table(title=f"fit: {s.method} ({s.mode}), {s.steps} {'rounds' if ramps else 'steps'} in {s.seconds:.1f} s "
                        f"on {s.device} ({s.dtype}); {summary.active_units} active of {summary.kept_units} units "
                        f"kept ({s.width} trained)", title_justify="left")
    for col in ("", "ramps" if ramps else "trained", "closed form" + (f" ({form.status})" if form is not None else "")):
        table.add_column(col, justify="right" if col else "left")
    ratio = f" (ratio {summary.cost_ratio:.4f})" if summary.cost_ratio is not None else ""
    table.add_row("path cost", f"{s.cost:.6g}{ratio}", f"{form.cost_formula:.6g}" if form is not None else "none")
    table.add_row("max residual", f"{s.max_residual:.3g} = {s.max_residual_rel:.3g} x min(ell, noise radius) "
                  f"(tol {summary.tol:g})", "0 (interpolates)" if form is not None else "")
    table.add_row("train MSE", f"{s.train_mse:.3g}", "")
    if ramps:
        table.add_row("lower bound", f"{s.lower_bound:.6g} over the {s.ramps} ramps of {s.directions} directions "
                      "(docs/training.md 12)", "")
    table.add_row("best affine map", f"max residual {s.affine_residual_rel:.3g} x min(ell, noise radius) (the free "
                  "linear part alone)", "")
    if summary.function_gap is not None:
        table.add_row("function gap", f"{summary.function_gap:.3g} x diameter", "")
    err.print(table)
    _returned(summary)
    ref = summary.reference
    if form is not None:
        rho = f" (rho = {ref.rho:.4g})" if ref.rho is not None else ""
        _say(f"closed form: {form.geometry}, rho rule {ref.rho_rule}{rho}")
    else:
        _say(f"closed form: {ref.reason}")
    _reference(summary)
    for note in summary.notes:
        _say(f"note: {note}")


def _returned(summary) -> None:
    """Which network was returned (the check's step, trained or initial, polished or not), what training did to
    the path cost on the recorded checks, and why it stopped."""
    s, c, pol = summary.stats, summary.course, summary.polish
    what = {"initial": "the step-0 network (the initial units' exact interpolant, not trained)",
            "ramps": f"the ramps method's solution (round {s.returned_step})",
            None: "the network of a check whose step was not recorded (resumed from an older checkpoint)"}.get(
        summary.returned, f"the network of the check at step {s.returned_step}")
    if pol is not None and pol.applied:
        what += f", output layer polished: cost {pol.cost_before:.6g} -> {pol.cost:.6g}"
    elif pol is not None:
        what += f", not polished ({pol.reason or 'no cheaper exact output layer'})"
    _say(f"returned: {what}")
    if c is not None and c.last_step > c.first_step:
        _say(f"training: path cost {c.first_cost:.6g} at step {c.first_step}, {c.last_cost:.6g} at the last check "
             f"(step {c.last_step}); returned {s.cost:.6g}; stopped: {summary.stopped}")
    else:
        _say(f"stopped: {summary.stopped}")


def _reference(summary) -> None:
    """The best exact interpolant the fit is compared with, unless it is the closed form (its ratio is in the table)."""
    best = summary.best
    if best is None or best.kind == "closed-form":
        return
    if best.kind == "none":
        _say(f"reference: {best.reason}")
        return
    budget = "" if best.complete else " (stopped at train.reference_seconds)"
    ratio = "" if summary.reference_ratio is None else f"; fit / reference = {summary.reference_ratio:.4g}"
    err.print(f"reference: ramps, an exact interpolant of the same samples, cost {best.cost:.6g} (lower bound "
              f"{best.lower_bound:.6g} over its dictionary) in {best.seconds:.1f} s{budget}{ratio}", soft_wrap=True)


# ---------------------------------------------------------------- compare


def comparison(summary) -> None:
    """results.CompareSummary: test MSE per noise level and estimator (the best marked), notes, unavailable
    estimators, and the levels whose nn fit did not reach train.tol."""
    c = summary.comparison
    table = Table(title=f"test MSE  E||h(x + eps) - x||^2  ({c.n_test} {c.test_points} test points "
                        f"x {c.repeats} repeat(s); 95% CIs in compare.csv)  * = best", title_justify="left")
    table.add_column("sigma", justify="right")
    for name in c.mse:
        table.add_column(name.replace("_", " "), justify="right")  # "closed form" wraps, no ellipsis
    for i, s in enumerate(c.noise):
        best = c.best(i)
        cells = []
        for name in c.mse:
            m = c.mse[name][i]
            text = "n/a" if m is None else f"{m:.2e}"
            cells.append(f"[bold green]*{text}[/]" if name == best else text)
        table.add_row(f"{s:g}", *cells)
    err.print(table)
    for note in c.notes:
        _say(f"  note: {note}")
    for name, why in c.to_dict()["unavailable"].items():
        first = next(w for w in why if w)
        _say(f"  {name} n/a at {sum(w is not None for w in why)} level(s): {first}")
    loose = [f"{f['sigma']:g}" for f in summary.fits if not f["converged"]]
    if loose:
        err.print(f"  nn did not reach train.tol at level {', '.join(loose)} (see nn_fits in result.json)")


# ---------------------------------------------------------------- align


_PREDICTED_FROM = {"form": "the reference closed form", "fallback": "align's own closed form (the reference rule "
                   "gave none; directions only)", "names": "the names given", "none": "nothing: no closed form"}


def alignment(summary) -> None:
    """results.AlignSummary: the aligned fraction beside its baseline, the units kept, the function gap and the
    cost share of every candidate direction."""
    report, form = summary.report, summary.reference.form
    against = "the closed form's directions" if report.against == "predicted" else "all candidate directions"
    if report.ambiguous:
        err.print(f"[bold yellow]ambiguous:[/] the predicted and rival directions ({' and '.join(report.separation_pair)})"
                  f" are only {report.separation_deg:.3g} degrees apart, under twice the tolerance "
                  f"({report.tolerance_deg:g}); rerun with --tolerance below {report.separation_deg / 2:.3g} to tell "
                  "them apart", soft_wrap=True)
    err.print(f"[bold]aligned fraction {report.aligned_fraction:.3f}[/] of the path cost assigned (nearest candidate, "
              f"within {report.tolerance_deg:g} degrees) to {against}; to the other candidates "
              f"{report.other_fraction:.3f}; random orientations: {report.baseline_fraction:.3f} "
              f"(sd {report.baseline_sd:.3f})" + (f"; predicted and rival candidates {report.separation_deg:.3g} "
                                                   "degrees apart" if report.separation_deg is not None else ""),
              soft_wrap=True)
    err.print(f"{report.n_units_kept} of {report.n_units} units kept ({100 * report.pruned_share:.2g}% of the cost "
              f"pruned), {report.n_groups} direction groups; output parallel to input "
              f"{report.output_parallel:.3f}" + (f"; in-plane share {report.in_plane_share:.3f}"
                                                 if report.in_plane_share is not None else ""))
    if form is not None:
        gaps = f"function gap {summary.function_gap:.3g}"
        if summary.plane_gap is not None:
            gaps += f", in the data's plane {summary.plane_gap:.3g}"
        err.print(f"closed form {form.geometry} ({form.status}): {gaps} (x data diameter)")
    _directions(report)
    _say(f"predicted directions from {_PREDICTED_FROM.get(report.predicted_from, report.predicted_from)}")
    for note in report.notes:
        if not note.startswith("ambiguous"):                      # printed above, with the fix
            _say(f"  note: {note}")


def _directions(report) -> None:
    table = Table(title="cost share per candidate direction", title_justify="left")
    for col in ("direction", "kind", "predicted", "cost share"):
        table.add_column(col, justify="right" if col == "cost share" else "left")
    for name, share in sorted(report.per_direction.items(), key=lambda kv: -kv[1]):
        info = report.directions.get(name, {})
        table.add_row(escape(name), info.get("kind", ""), "yes" if info.get("predicted") else "", f"{share:.3f}")
    err.print(table)


# ---------------------------------------------------------------- certify


def certificate(summary) -> None:
    """results.CertifySummary: the interval, where the closed form lies in it (CertifySummary.position), the
    polish of the trained network and the upper network's residual."""
    cert, pol, form = summary.certificate, summary.polish, summary.reference.form
    gap = f"{100 * cert.gap:.3g}%" if math.isfinite(cert.gap) else "n/a (no positive lower bound)"
    err.print(f"[bold]minimum path cost in \\[{cert.lower:.6g}, {cert.upper:.6g}][/]  gap {gap}  "
              f"(lower: {cert.lower_method}, upper: {cert.upper_method}; {cert.rounds} rounds, "
              f"{cert.n_units} units, {cert.n_constraints} samples, {cert.seconds:.1f} s)", soft_wrap=True)
    if form is not None:
        pos = summary.position
        where = "inside" if pos["inside"] else ("above the upper bound" if pos["above_lower"] else
                                                "BELOW the lower bound")
        err.print(f"closed form {form.geometry} ({form.status}): cost {form.cost_formula:.6g}, {where}"
                  + (" - certified for this recipe" if pos["certified"] else ""), soft_wrap=True)
    if pol.get("reason"):
        _say(f"trained network: no exact output weights for its units ({pol['reason']})")
    elif pol.get("cost_before") is not None:
        err.print(f"trained network: cost {pol['cost_before']:.6g} -> {pol['cost_after']:.6g} and max residual "
                  f"{pol['max_residual_before']:.3g} -> {pol['max_residual_after']:.3g} with exact output weights "
                  "(polish)", soft_wrap=True)
    err.print(f"upper network interpolates to max residual {cert.max_residual:.3g} (model.pt)")
    for note in cert.notes:
        _say(f"  note: {note}")


# ---------------------------------------------------------------- flow


def flow(summary) -> None:
    """Where the flows ended, per class and |S|, each level's cost over the closed form's, and the audit."""
    c = summary.classes
    n = len(c.cls)
    table = Table(title=f"{summary.kind} flow of the {summary.denoiser} denoiser: {n} starts, threshold "
                        f"{c.threshold:g} (L-infinity)", title_justify="left")
    for col in ("end", "count", "share"):
        table.add_column(col, justify="left" if col == "end" else "right")
    for cls, k in c.counts.items():
        table.add_row(cls, str(k), f"{k / n:.1%}" if n else "-")
    err.print(table)
    if c.virtual_by_size:
        err.print("virtual points by |S|: " + ", ".join(f"{m}: {k}" for m, k in sorted(c.virtual_by_size.items())))
    ratios = [(lv["sigma"], lv["cost_ratio"]) for lv in summary.levels if lv.get("cost_ratio") is not None]
    if summary.denoiser != "closed-form" and ratios:
        err.print("denoiser cost / closed form per level: " + ", ".join(f"sigma {s:.3g}: {q:.4g}" for s, q in ratios))
    for label, audit in summary.audits.items():
        rows = ", ".join(f"m = {m}: {v['stable']} of {v['total']}" + (f" (a sample of C = {v['population']})"
                         if v["sampled"] else "") for m, v in audit.to_dict().items())
        err.print(f"audit ({label}): subset sums kept by the score flow: {rows}")
    for note in summary.notes:
        _say(f"note: {note}")


# ---------------------------------------------------------------- sweep and collect


def sweep(result) -> None:
    """A sweep.SweepResult: how its points ended, the first few that did not succeed, and where the table is."""
    from collections import Counter

    from ..sweep import SUCCESS

    points, c, first = len(result.sweep.points), result.counts, _first_rows(result.rows)
    statuses = Counter(r["status"] for r in first)
    if points > result.finished:
        statuses["not started"] = points - result.finished
    parts = ", ".join(f"{n} {s}" for s, n in statuses.most_common())
    head = "[red]interrupted[/]: " if result.interrupted else ""
    err.print(f"{head}{points} points: {parts} (ran {c.done}, cached {c.cached})", soft_wrap=True)
    for r in [r for r in first if r["status"] not in SUCCESS][:5]:
        _say(f"  {r['status']}: {Path(r['run_dir']).name}: {r.get('reason') or ''}")
    if result.interrupted:
        err.print("run the same command again to finish the remaining points", soft_wrap=True)
    err.print(f"table: [bold]{escape(str(result.directory / 'sweep.csv'))}[/]", soft_wrap=True)


def _first_rows(rows: list[dict]) -> list[dict]:
    """The first row of each point (compare has several rows per point)."""
    return list({r["run_dir"]: r for r in reversed(rows)}.values())[::-1]


_LEFT = ("run_dir", "status", "reason", "estimator", "geometry", "lower_method", "kind", "denoiser")


def rows(rows: list[dict], limit: int = 40) -> None:
    """Collected rows (sweep.collect): one table per command, with the columns its rows fill (sweep.shown_columns),
    `limit` rows at most in each."""
    from ..sweep import by_command, shown_columns

    for command, group in by_command(rows).items():
        cols, runs = shown_columns(group), len({r["run_dir"] for r in group})
        per = f", {len(group)} rows (one per noise level and estimator)" if command == "compare" else ""
        table = Table(title=f"{command or 'no command recorded'}: {runs} run{'s' if runs > 1 else ''}{per}",
                      title_justify="left")
        for c in cols:
            table.add_column("run" if c == "run_dir" else escape(c), justify="left" if c in _LEFT else "right",
                             max_width=60 if c == "reason" else None)
        for r in group[:limit]:
            table.add_row(*(escape(_run_name(r[c]) if c == "run_dir" else _cell(r.get(c), c in _COSTS))
                            for c in cols))
        _print_whole(table)
        if len(group) > limit:
            err.print(f"... {len(group) - limit} more {command} rows (--json or --csv for all)")


def _print_whole(table: Table) -> None:
    """A table at its own width where the console is not a terminal (a pipe, a log file): nothing cut to 80
    columns; on a terminal, at the terminal's width."""
    from rich.console import Console

    con = err.console
    width = con.measure(table, options=con.options.update_width(1000)).maximum
    if con.is_terminal or width <= con.width:
        con.print(table)
        return
    Console(file=con.file, width=width, highlight=False, no_color=con.no_color).print(table)


def _run_name(run_dir: str) -> str:
    """A run directory as the user named it: relative to the working directory when under it."""
    path = Path(run_dir)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_COSTS = ("cost", "closed_form_cost", "cost_formula", "reference_cost", "lower", "upper")   # 6 digits, as summaries


def _cell(value, cost: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}" if cost else f"{value:.4g}"
    return str(value)


# ---------------------------------------------------------------- reproduce

_VERDICT_STYLE = {"holds": "green", "fails": "bold red", "inconclusive": "yellow", "not built": "dim"}


def reproduce(report: dict, files: dict) -> None:
    """The report's rows, one table per paper, under a header of version, commit, machine and the counts."""
    s = report["summary"]
    built = len(report["rows"]) - s["not built"]
    err.print(f"[bold]reluden reproduce[/] {'--quick ' if report['quick'] else ''}{report['version']} "
              f"({(report['git_commit'] or 'no git commit')[:10]})  {escape(report['machine'])}  "
              f"device {report['device']}  {report['seconds']:.0f} s")
    for paper in dict.fromkeys(r["paper"] for r in report["rows"]):
        table = Table(title=paper, title_justify="left")
        for col in ("claim", "measured", "expected", "verdict", "s"):
            table.add_column(col, justify="right" if col == "s" else "left", overflow="fold")
        for r in (r for r in report["rows"] if r["paper"] == paper):
            style = _VERDICT_STYLE[r["verdict"]]
            verdict = f"[{style}]{r['verdict']}[/]" + (f"\n{escape(r['reason'])}" if r["reason"] else "")
            table.add_row(f"[bold]{escape(r['id'])}[/]\n{escape(r['claim'])}", escape(r["measured_text"]),
                          escape(r["expected"]), verdict, f"{r['seconds']:.0f}")
        err.print(table)
    err.print(f"[bold]{s['holds']} of {built} built claims hold[/]; {s['fails']} fail, {s['inconclusive']} "
              f"inconclusive, {s['not built']} not built")
    for path in files.values():
        err.print(f"wrote {escape(str(path))}", soft_wrap=True)
