"""The report's files: report.json for now (report.html and report.md follow)."""

from ..files import write_json


def write_report(directory, report: dict) -> dict:
    write_json(directory / "report.json", report)
    return {"json": directory / "report.json"}
