"""The `reluden` command line: parse, call `workflows`, render with rich, map errors to exit codes.

    app.py       the Typer app, the exit-status tables (ENDINGS, RUN_STATUSES), shared options, RichEvents
    commands.py  closed-form, fit, compare, align, certify
    flow.py      flow
    reproduce.py reproduce
    sweep.py     sweep, collect
    render.py    what each command prints, from the typed summaries of relu_denoise.results

The summary goes to stdout, or to stderr when stdout carries data (--json; collect --csv -); errors and
progress go to stderr (plain lines at a steady interval where stderr is not a terminal). Start-up imports
neither torch, scipy nor matplotlib: `--help` and usage errors stay fast. The console script is
`relu_denoise.cli:main`.
"""

from . import commands, flow, reproduce, sweep  # noqa: F401  (their commands register on `app`, in this order in --help)
from .app import ENDINGS, RUN_STATUSES, app, main

__all__ = ["ENDINGS", "RUN_STATUSES", "app", "main"]
