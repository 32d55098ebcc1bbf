"""The reproduce report: one report dict (its schema: report.json) rendered as report.html and report.md.

report.html is one self-contained file (inline CSS, the figures inlined as data: URIs, no script, no
URL outside the report's folder), so it can be mailed, archived or opened offline; its links to run
directories and files are relative, so the folder can be moved. Every row carries `id="row-<claim id>"`
and every figure `id="fig-<claim id>-<n>"` (n counts a row's figures from 1), both with `data-verdict`.
report.md says the same for a terminal or a repository. Paths in `evidence` are relative to
`report["run_dir"]`; a figure whose file is missing gets a caption saying so instead of an image.
"""

import base64
import html
import os
import re
import struct
from pathlib import Path
from urllib.parse import quote

from ..files import atomic_write_text, write_json

VERDICTS = ("holds", "fails", "inconclusive", "not built")
PAPERS = ("NeurIPS 2023", "ICML 2025")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_CSS = """
:root { --holds: #1a7f37; --fails: #cf222e; --inconclusive: #b35900; --not-built: #6e7781; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328; background: #fff; margin: 0; line-height: 1.4; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 28px; } h2 { margin-top: 32px; border-bottom: 1px solid #d0d7de; }
.headline { font-size: 20px; font-weight: 600; margin: 8px 0; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; font-size: 14px; }
.meta dt { color: #59636e; } .meta dd { margin: 0; }
.badge { display: inline-block; padding: 2px 10px; margin-right: 6px; border-radius: 12px; color: #fff;
  font-size: 14px; font-weight: 600; }
.holds { background: var(--holds); } .fails { background: var(--fails); }
.inconclusive { background: var(--inconclusive); } .not-built { background: var(--not-built); }
.status-bad { color: var(--fails); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid #d0d7de; }
thead th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #f6f8fa; }
tr.paper th { background: #eaeef2; font-size: 15px; }
td .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td .verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; white-space: nowrap; }
.small, ul.checks, ul.evidence { font-size: 12px; color: #59636e; }
ul.checks, ul.evidence { margin: 4px 0 0; padding: 0; list-style: none; }
ul.checks li { margin-top: 2px; }
td.measured { min-width: 220px; } td.claim { min-width: 180px; } td.expected { min-width: 150px; }
td .reason { margin-top: 4px; max-width: 220px; } td .source { margin-top: 2px; }
.scroll { overflow-x: auto; }
ul.checks li.bad { color: var(--fails); }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 16px;
  align-items: start; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 13px; margin-top: 6px; }
figure.missing figcaption { color: var(--fails); }
"""


def write_report(directory: Path, report: dict) -> dict[str, Path]:
    """Write report.json, report.html and report.md into `directory` (created if needed), each atomically.

    Links and figures are resolved from `report["run_dir"]` and written relative to `directory`.
    Returns {"json": path, "html": path, "md": path}.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return {"json": write_json(directory / "report.json", report),
            "html": atomic_write_text(directory / "report.html", render_html(report, where=directory)),
            "md": atomic_write_text(directory / "report.md", render_markdown(report, where=directory))}


# ---------------------------------------------------------------- shared pieces


def _slug(text) -> str:
    """A claim id as an HTML id fragment: letters, digits, '-', '_' and '.' kept, anything else '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", str(text))


def _verdict_class(verdict) -> str:
    return _slug(verdict) if verdict in VERDICTS else "not-built"


def _by_paper(rows: list) -> list[tuple[str, list]]:
    """Rows grouped by paper: the two papers first, in that order, then any other paper a row names."""
    papers = list(PAPERS) + [p for p in dict.fromkeys(str(r.get("paper")) for r in rows) if p not in PAPERS]
    return [(p, [r for r in rows if str(r.get("paper")) == p]) for p in papers
            if any(str(r.get("paper")) == p for r in rows)]


def _counts(rows: list) -> dict[str, int]:
    """Rows per verdict, counted from the rows themselves (what the table shows)."""
    return {v: sum(r.get("verdict") == v for r in rows) for v in VERDICTS}


def _headline(rows: list) -> str:
    counts = _counts(rows)
    return f"{counts['holds']} of {len(rows) - counts['not built']} built claims hold"


def _value(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _seconds(x) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else ""


def _duration(x) -> str:
    if not isinstance(x, (int, float)):
        return "—"
    minutes, seconds = divmod(round(x), 60)
    return f"{x:.1f} s" + (f" ({minutes} min {seconds} s)" if minutes else "")


def _measured(row: dict) -> str:
    text = row.get("measured_text")
    return text if text else _value(row.get("measured"))


def _href(report: dict, path, where) -> str:
    """`path` (relative to the run directory) relative to `where`, the report's folder, URL-quoted."""
    target = Path(report.get("run_dir") or ".") / str(path)
    rel = os.path.relpath(target, where) if where is not None else str(path)
    return quote(Path(rel).as_posix())


def _figures(row: dict) -> list[dict]:
    return [e for e in row.get("evidence") or [] if str(e.get("path", "")).lower().endswith(".png")]


def _meta(report: dict) -> list[tuple[str, str]]:
    size = "quick" if report.get("quick") else "full"
    return [("version", _value(report.get("version"))), ("git commit", _value(report.get("git_commit"))),
            ("machine", _value(report.get("machine"))), ("device", _value(report.get("device"))),
            ("size", size), ("total time", _duration(report.get("seconds"))), *_runs(report),
            ("started", _value(report.get("started"))), ("seed", _value(report.get("seed"))),
            ("status", _value(report.get("status")) + (f": {report['reason']}" if report.get("reason") else ""))]


def _runs(report: dict) -> list[tuple[str, str]]:
    runs = report.get("runs")
    if not runs:
        return []
    return [("runs", f"{runs['total']} runs, {_duration(runs['seconds'])} of run time; {runs['cached']} read back "
                     f"from an earlier reproduce, {runs['ran']} run now")]


# ---------------------------------------------------------------- HTML


def render_html(report: dict, *, where=None) -> str:
    """The report as one self-contained HTML page; `where` is the folder it will be written to (None: the
    run directory), for the relative links. Reads the PNG figures from the run directory."""
    rows = report.get("rows") or []
    return "\n".join([
        '<!doctype html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>reluden reproduce</title>', f'<style>{_CSS}</style>', '</head>', '<body>', '<main>',
        _html_header(report, rows), _html_table(report, rows, where), _html_figures(report, rows),
        '</main>', '</body>', '</html>', ''])


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _html_header(report: dict, rows: list) -> str:
    counts = _counts(rows)
    badges = "".join(f'<span class="badge {_verdict_class(v)}" data-verdict="{_e(v)}">{_e(v)} {n}</span>'
                     for v, n in counts.items())
    meta = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _meta(report))
    status = report.get("status")
    bad = (f'<p class="status-bad">run {_e(status)}: {_e(report.get("reason") or "")}</p>'
           if status not in (None, "ok") else "")
    return (f'<header><h1>reluden reproduce</h1><p class="headline" id="headline">{_e(_headline(rows))}</p>'
            f'{bad}<p class="badges">{badges}</p><dl class="meta">{meta}</dl></header>')


_COLUMNS = ("claim", "the paper says", "measured", "expected", "verdict", "seconds", "evidence")


def _html_table(report: dict, rows: list, where) -> str:
    head = "".join(f'<th class="num">{_e(c)}</th>' if c == "seconds" else f"<th>{_e(c)}</th>" for c in _COLUMNS)
    bodies = []
    for paper, group in _by_paper(rows):
        cells = "".join(_html_row(report, row, where) for row in group)
        bodies.append(f'<tbody id="paper-{_slug(paper)}"><tr class="paper"><th colspan="{len(_COLUMNS)}">'
                      f'{_e(paper)}</th></tr>{cells}</tbody>')
    return (f'<section id="claims"><h2>Claims</h2><div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'{"".join(bodies)}</table></div></section>')


def _html_row(report: dict, row: dict, where) -> str:
    cid, verdict = row.get("id"), row.get("verdict")
    reason = f'<div class="reason small">{_e(row["reason"])}</div>' if row.get("reason") else ""
    cells = [f'<td class="claim"><div class="id">{_e(cid)}</div>{_e(row.get("claim", ""))}'
             f'<div class="small source">{_e(row.get("source", ""))}</div></td>',
             f"<td>{_e(row.get('paper_says', ''))}</td>",
             f'<td class="measured">{_e(_measured(row))}{_html_checks(row)}</td>',
             f'<td class="expected">{_e(row.get("expected", ""))}<div class="small">{_e(row.get("why") or "")}</div></td>',
             f'<td><span class="verdict {_verdict_class(verdict)}">{_e(verdict)}</span>{reason}</td>',
             f'<td class="num">{_e(_seconds(row.get("seconds")))}</td>',
             f"<td>{_html_evidence(report, row, where)}</td>"]
    return f'<tr id="row-{_slug(cid)}" data-verdict="{_e(verdict)}">{"".join(cells)}</tr>'


def _html_checks(row: dict) -> str:
    items = []
    for check in row.get("checks") or []:
        mark, cls = ("✓", "ok") if check.get("holds") else ("✗", "bad")
        items.append(f'<li class="{cls}">{mark} {_e(check.get("name", ""))}: {_e(_value(check.get("measured")))}'
                     f' (expected {_e(check.get("expected", ""))})</li>')
    return f'<ul class="checks">{"".join(items)}</ul>' if items else ""


def _html_evidence(report: dict, row: dict, where) -> str:
    items, n = [], 0
    for item in row.get("evidence") or []:
        link = f'<a href="{_e(_href(report, item.get("path", ""), where))}">{_e(item.get("label", ""))}</a>'
        if str(item.get("path", "")).lower().endswith(".png"):
            n += 1
            link += f' (<a href="#fig-{_slug(row.get("id"))}-{n}">figure</a>)'
        items.append(f"<li>{link}</li>")
    return f'<ul class="evidence">{"".join(items)}</ul>' if items else ""


def _html_figures(report: dict, rows: list) -> str:
    figures = [_html_figure(report, row, n, item) for row in rows
               for n, item in enumerate(_figures(row), start=1)]
    if not figures:
        return ""
    return f'<section id="figures"><h2>Figures</h2><div class="figures">{"".join(figures)}</div></section>'


def _html_figure(report: dict, row: dict, n: int, item: dict) -> str:
    cid, path = row.get("id"), str(item.get("path", ""))
    attrs = f'id="fig-{_slug(cid)}-{n}" data-verdict="{_e(row.get("verdict"))}"'
    caption = f'<a href="#row-{_slug(cid)}">{_e(cid)}</a>: {_e(item.get("label", ""))}'
    data, problem = _read_png(Path(report.get("run_dir") or ".") / path)
    if data is None:
        return (f'<figure class="missing" {attrs}><figcaption>figure {_e(problem)}: {_e(path)} '
                f'({caption})</figcaption></figure>')
    width, height = struct.unpack(">II", data[16:24])       # the IHDR chunk: the image's size in pixels
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure {attrs}><img src="{src}" width="{width}" height="{height}" alt="{_e(item.get("label", ""))}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _read_png(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why not ("missing", "unreadable", "not a PNG file")."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError:
        return None, "unreadable"
    if not data.startswith(PNG_MAGIC) or len(data) < 24:
        return None, "not a PNG file"
    return data, ""


# ---------------------------------------------------------------- Markdown


def render_markdown(report: dict, *, where=None) -> str:
    """The report as Markdown: the header, one table per paper, then each row's evidence (figures as images);
    `where` as for render_html."""
    rows = report.get("rows") or []
    lines = ["# reluden reproduce", "", f"**{_headline(rows)}**: " + ", ".join(
        f"{v} {n}" for v, n in _counts(rows).items()), ""]
    lines += [f"- {k}: {_md(v)}" for k, v in _meta(report)] + [""]
    for paper, group in _by_paper(rows):
        lines += [f"## {_md(paper)}", "", "| id | claim | the paper says | measured | expected | verdict | reason | seconds |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [_md_row(row) for row in group] + [""]
    with_evidence = [row for row in rows if row.get("evidence")]
    if with_evidence:
        lines += ["## Evidence", ""]
        for row in with_evidence:
            lines += [f"### {_md(row.get('id'))}", ""] + _md_evidence(report, row, where) + [""]
    return "\n".join(lines)


def _md(x) -> str:
    """Text for one table cell: pipes escaped, line breaks as spaces."""
    return re.sub(r"\s*\n\s*", " ", str(x if x is not None else "")).replace("|", r"\|")


def _md_row(row: dict) -> str:
    cells = [row.get("id"), row.get("claim"), row.get("paper_says", ""), _measured(row), row.get("expected"),
             row.get("verdict"),
             row.get("reason") or "", _seconds(row.get("seconds"))]
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _md_evidence(report: dict, row: dict, where) -> list[str]:
    lines = []
    for item in row.get("evidence") or []:
        label = _md(item.get("label", "")).replace("[", r"\[").replace("]", r"\]")
        href = _href(report, item.get("path", ""), where)
        image = str(item.get("path", "")).lower().endswith(".png")
        lines.append(f"- {'!' if image else ''}[{label}]({href})")
    return lines
