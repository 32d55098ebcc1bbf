"""The reproduce report: report.json, a self-contained report.html and report.md from one hand-built report dict,
and (marker `browser`, skipped without Chromium) report.html opened in a real headless browser."""

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from relu_denoise.reproduce.report import render_html, render_markdown, write_report

MAGENTA = "#ff00ff"      # the test figures' background: a colour nothing else in the report uses


def _png(path: Path, *, size=(3, 2), dpi=40) -> Path:
    """A real matplotlib PNG of size[0]*dpi x size[1]*dpi pixels on a magenta background."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=size, dpi=dpi, facecolor=MAGENTA)     # no pyplot: no backend chosen, nothing to close
    ax = fig.add_subplot()
    ax.plot(np.linspace(0, 1, 20), np.linspace(0, 1, 20) ** 2)
    fig.savefig(path, facecolor=MAGENTA)
    return path


def _row(cid, paper, verdict, **extra) -> dict:
    row = {"id": cid, "paper": paper, "claim": f"claim {cid}", "source": f"{paper}, Theorem 2; docs/theory.md 2",
           "paper_says": "the min-cost interpolant is the staircase", "measured": 1.0,
           "measured_text": "cost ratio 1.0000", "expected": "cost ratio in [0.99, 1.01]",
           "why": "the optimiser stops within 1%", "checks": [], "verdict": verdict, "reason": None,
           "seconds": 7.1, "evidence": []}
    return row | extra


def sample_report(run_dir: Path, *, size=(3, 2), dpi=40) -> dict:
    """Rows of every verdict, papers interleaved, one row with a real figure, one with two, one with a missing one,
    text with <, & and |."""
    fig = _png(run_dir / "runs/fit-1a2b/fit.png", size=size, dpi=dpi)
    _png(run_dir / "runs/flow-9f/flow.png", size=size, dpi=dpi)
    _png(run_dir / "runs/flow-9f/classes.png", size=size, dpi=dpi)
    rows = [
        _row("1d-closed-form", "NeurIPS 2023", "holds",
             checks=[{"name": "cost ratio", "measured": 1.0000002, "expected": "in [0.99, 1.01]", "holds": True},
                     {"name": "function gap", "measured": 1.1e-15, "expected": "< 1e-6 x diameter", "holds": True}],
             evidence=[{"label": "fit run", "path": "runs/fit-1a2b"},
                       {"label": "fit.png", "path": str(fig.relative_to(run_dir))}]),
        _row("flow-subset-sums", "ICML 2025", "not built", measured=None, measured_text=None, seconds=None,
             reason="needs the flow command"),
        _row("obtuse-alignment", "NeurIPS 2023", "inconclusive", reason="ambiguous alignment",
             evidence=[{"label": "directions", "path": "runs/align-77/directions.png"}]),
        _row("mnist-784", "NeurIPS 2023", "fails", claim="<b>bold</b> & a|b",
             reason="<script>alert(1)</script> not converged", measured_text="ratio 1.3 | gap < 0.1 & more",
             checks=[{"name": "cost ratio", "measured": 1.3, "expected": "in [0.99, 1.01]", "holds": False}]),
        _row("pf-boundary", "ICML 2025", "holds", seconds=75.25,
             evidence=[{"label": "flow run", "path": "runs/flow-9f"},
                       {"label": "trajectories", "path": "runs/flow-9f/flow.png"},
                       {"label": "classes", "path": "runs/flow-9f/classes.png"}]),
    ]
    return {"command": "reproduce", "status": "ok", "reason": None, "run_dir": str(run_dir), "seed": 0,
            "version": "0.1.0", "git_commit": "72cd223abc", "machine": "Linux x86_64, 2 cores, 24 GiB",
            "device": "cpu", "quick": True, "started": "2026-12-02T22:10:00Z", "seconds": 187.3,
            "summary": {"holds": 2, "fails": 1, "inconclusive": 1, "not built": 1}, "rows": rows}


class _Elements(HTMLParser):
    """Every start tag (tags, elements as (tag, attrs)), the elements by id, and every src/href value."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.elements, self.by_id, self.urls = [], [], {}, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.elements.append((tag, attrs))
        if "id" in attrs:
            self.by_id[attrs["id"]] = (tag, attrs)
        self.urls += [attrs[k] for k in ("src", "href") if k in attrs]


def _write(tmp_path) -> tuple[dict, dict[str, Path]]:
    report = sample_report(tmp_path)
    return report, write_report(tmp_path, report)


def test_the_three_files_are_written_and_report_json_round_trips(tmp_path):
    report, paths = _write(tmp_path)
    assert paths == {k: tmp_path / f"report.{k}" for k in ("json", "html", "md")}
    assert json.loads(paths["json"].read_text()) == report
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]          # no temporary file left


def test_the_html_is_self_contained(tmp_path):
    text = _write(tmp_path)[1]["html"].read_text()
    page = _Elements(text)
    assert "http://" not in text and "https://" not in text and 'src="/' not in text and "url(" not in text
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    for url in page.urls:
        assert url.startswith(("data:image/png;base64,", "#")) or not (url.startswith("/") or ":" in url), url


def test_every_row_is_there_with_its_verdict_grouped_by_paper(tmp_path):
    report, paths = _write(tmp_path)
    text = paths["html"].read_text()
    page = _Elements(text)
    for row in report["rows"]:
        tag, attrs = page.by_id[f"row-{row['id']}"]
        assert (tag, attrs["data-verdict"]) == ("tr", row["verdict"])
    order = [i for i in page.by_id if i.startswith("row-")]
    assert order == ["row-1d-closed-form", "row-obtuse-alignment", "row-mnist-784", "row-flow-subset-sums",
                     "row-pf-boundary"]
    assert text.index("NeurIPS 2023</th>") < text.index("row-1d-closed-form") < text.index("ICML 2025</th>")
    assert "2 of 4 built claims hold" in text          # 2 holds; 5 rows less 1 not built


def test_figures_are_inlined_as_the_same_bytes(tmp_path):
    page = _Elements(_write(tmp_path)[1]["html"].read_text())
    figures = {"fig-1d-closed-form-1": "runs/fit-1a2b/fit.png", "fig-pf-boundary-1": "runs/flow-9f/flow.png",
               "fig-pf-boundary-2": "runs/flow-9f/classes.png"}
    srcs = [u for u in page.urls if u.startswith("data:")]
    assert len(srcs) == len(figures)
    for (fid, path), src in zip(figures.items(), srcs):
        assert page.by_id[fid][0] == "figure"
        assert base64.b64decode(src.split(",", 1)[1]) == (tmp_path / path).read_bytes()
    assert page.by_id["fig-pf-boundary-2"][1]["data-verdict"] == "holds"


def test_the_image_declares_its_pixel_size(tmp_path):
    text = _write(tmp_path)[1]["html"].read_text()
    assert text.count('width="120" height="80"') == 3          # figsize (3, 2) at 40 dpi


def test_a_missing_figure_is_a_caption_not_a_failure(tmp_path):
    text = _write(tmp_path)[1]["html"].read_text()
    page = _Elements(text)
    tag, attrs = page.by_id["fig-obtuse-alignment-1"]
    assert tag == "figure" and attrs["data-verdict"] == "inconclusive"
    assert "figure missing: runs/align-77/directions.png" in text


def test_a_png_path_that_is_not_a_png_is_named_not_inlined(tmp_path):
    report = sample_report(tmp_path)
    (tmp_path / "runs/flow-9f/classes.png").write_text("<html>an error page</html>")
    text = render_html(report)
    assert text.count("data:image/png;base64,") == 2
    assert "figure not a PNG file: runs/flow-9f/classes.png" in text


def test_a_run_that_did_not_finish_says_so_in_both_reports(tmp_path):
    report = sample_report(tmp_path) | {"status": "interrupted", "reason": "stopped by Ctrl-C after 3 of 5 claims"}
    assert 'class="status-bad">run interrupted: stopped by Ctrl-C after 3 of 5 claims' in render_html(report)
    assert "- status: interrupted: stopped by Ctrl-C after 3 of 5 claims" in render_markdown(report).splitlines()


def test_text_is_escaped(tmp_path):
    text = _write(tmp_path)[1]["html"].read_text()
    page = _Elements(text)
    assert "b" not in page.tags and "script" not in page.tags
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; a|b" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "ratio 1.3 | gap &lt; 0.1 &amp; more" in text


def test_links_are_relative_to_the_report_folder(tmp_path):
    report = sample_report(tmp_path / "out")
    html_at_root = render_html(report, where=tmp_path / "out")
    assert 'href="runs/fit-1a2b"' in html_at_root
    paths = write_report(tmp_path / "out" / "report", report)
    text = paths["html"].read_text()
    assert 'href="../runs/fit-1a2b"' in text and 'href="../runs/flow-9f/flow.png"' in text
    assert text.count("data:image/png;base64,") == 3             # figures read from the run directory
    assert "](../runs/fit-1a2b)" in paths["md"].read_text()


def test_the_markdown_has_one_table_line_per_row_and_the_links(tmp_path):
    report, paths = _write(tmp_path)
    text = paths["md"].read_text()
    assert text == render_markdown(report, where=tmp_path)
    lines = text.splitlines()
    for row in report["rows"]:
        table_lines = [line for line in lines if line.startswith(f"| {row['id']} |")]
        assert len(table_lines) == 1
        assert table_lines[0].replace(r"\|", "").count("|") == 9            # 8 cells: pipes inside escaped
        assert f"| {row['verdict']} |" in table_lines[0]
    assert r"| <b>bold</b> & a\|b |" in text
    assert lines.index("## NeurIPS 2023") < lines.index("## ICML 2025")
    assert "- [fit run](runs/fit-1a2b)" in lines and "- ![fit.png](runs/fit-1a2b/fit.png)" in lines
    assert "- ![classes](runs/flow-9f/classes.png)" in lines
    assert "**2 of 4 built claims hold**: holds 2, fails 1, inconclusive 1, not built 1" in lines


# ---------------------------------------------------------------- in a real browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_PROBE = ("<script>window.addEventListener('load', () => { for (const img of document.images) "
          "img.setAttribute('data-natural-width', img.naturalWidth); document.body.dataset.probed = 'yes'; });"
          "</script>")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           *args], capture_output=True, text=True, timeout=60, check=True)


def screenshot(html_path: Path, png: Path, *, size=(1400, 2400)) -> Path:
    _chromium(f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", Path(html_path).resolve().as_uri())
    return png


def _count(pixels, colour: str, tol=8) -> int:
    """Pixels of an (h, w, 3) image in [0, 1] within `tol` of `colour` ("#rrggbb") in each channel."""
    target = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return int(np.all(np.abs(np.round(pixels * 255) - target) <= tol, axis=-1).sum())


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (.ci/run installs Debian's)")
def test_the_report_renders_in_a_real_browser(tmp_path):
    import matplotlib.image

    report, paths = _write(tmp_path)
    pixels = matplotlib.image.imread(screenshot(paths["html"], tmp_path / "shot.png"))[..., :3]   # (h, w, 3)
    rgb = np.round(pixels * 255).astype(np.int64)                                            # (h, w, 3)
    assert len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])) > 100   # not blank: text, badges, figures
    in_figures = sum(_count(matplotlib.image.imread(tmp_path / e["path"])[..., :3], MAGENTA)
                     for row in report["rows"] for e in row["evidence"] if (tmp_path / e["path"]).is_file()
                     and e["path"].endswith(".png"))
    assert _count(pixels, MAGENTA) >= 0.95 * in_figures > 0           # the three figures painted at full size
    assert _count(pixels, "#1a7f37") > 200                            # the CSS applied: the holds badges
    probe = paths["html"].with_name("probe.html")                     # the report itself has no script
    probe.write_text(paths["html"].read_text().replace("</body>", _PROBE + "</body>"))
    dom = _Elements(_chromium("--dump-dom", probe.resolve().as_uri()).stdout)
    assert ("body", {"data-probed": "yes"}) in dom.elements            # the probe ran after the load event
    for row in report["rows"]:
        assert dom.by_id[f"row-{row['id']}"][1]["data-verdict"] == row["verdict"]
    for fid in ("fig-1d-closed-form-1", "fig-obtuse-alignment-1", "fig-pf-boundary-1", "fig-pf-boundary-2"):
        assert dom.by_id[fid][0] == "figure"
    widths = [attrs.get("data-natural-width") for tag, attrs in dom.elements if tag == "img"]
    assert widths == ["120", "120", "120"]                            # every image decoded at its pixel size
