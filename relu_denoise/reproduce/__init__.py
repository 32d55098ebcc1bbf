"""`reluden reproduce`: every claim of the two papers as a measured row, in one report.

    from relu_denoise.reproduce import reproduce
    report = reproduce("results/reproduce-quick", quick=True)     # report.json's content
    report["summary"]        # {"holds": .., "fails": .., "inconclusive": .., "not built": ..}

A claim is a small declarative entry (spec.Claim): its statement and source, the runs it needs (a command on
a shipped recipe, smaller under --quick), how its numbers come from their results (measures, paper,
followup) and the checks they must pass, each with its tolerance and why. The runs go through the sweep
machinery into <out>/runs/ (cached by content, resumable, parallel, on Dask when asked), so a second
reproduce with nothing changed only reads them back; then each claim's verdict is holds, fails, inconclusive
(with why) or not built, and report.json, report.html and report.md are written into <out>.

    spec       Claim, RunSpec, Check, Measurement: what a claim is, and its verdict
    measures   the NeurIPS 2023 claims' numbers from their results
    paper      the NeurIPS 2023 claims (Zeno, Ongie, Blumenfeld, Weinberger, Soudry)
    followup   the ICML 2025 claims (Zeno, Manor, Ongie, Weinberger, Michaeli, Soudry): flows
    engine     the claims' runs as sweep points, their rows and the report
    report     report.html, report.md, report.json
"""

from pathlib import Path

from ..errors import RecipeError
from ..sweep.runner import SweepEvents
from .engine import RUNS, run_claims, select
from .followup import CLAIMS as FOLLOWUP_CLAIMS
from .paper import CLAIMS as PAPER_CLAIMS
from .spec import VERDICTS, Check, Claim, Measurement, RunSpec

CLAIMS = PAPER_CLAIMS + FOLLOWUP_CLAIMS
REPORT_FILES = ("report.json", "report.html", "report.md")


def reproduce(out, *, quick: bool = False, only: list[str] | None = None, jobs: int | None = None,
              executor: str = "local", scheduler: str | None = None, device: str = "auto", force: bool = False,
              claims: tuple | None = None, events: SweepEvents = SweepEvents()) -> dict:
    """Run the claims (default: CLAIMS; those of `only`, by id) into `out` and write the report there; returns
    its content."""
    from . import report as files

    out = Path(out)
    chosen = select(CLAIMS if claims is None else claims, only)
    check_out(out)
    report = run_claims(chosen, out, quick=quick, jobs=jobs, executor=executor, scheduler=scheduler, device=device,
                        force=force, events=events)
    files.write_report(out, report)
    return report


def check_out(out: Path) -> None:
    """`out` must be new, empty, or an earlier reproduce's (its runs/ or report.json): nothing else is touched."""
    if out.exists() and not out.is_dir():
        raise RecipeError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not ((out / RUNS).is_dir() or (out / "report.json").exists()):
        raise RecipeError(f"--out {out}: not empty and not a reproduce directory (no runs/ or report.json); "
                          "choose another --out")


__all__ = ["CLAIMS", "FOLLOWUP_CLAIMS", "PAPER_CLAIMS", "REPORT_FILES", "VERDICTS", "Check", "Claim", "Measurement",
           "RunSpec", "check_out", "reproduce"]
