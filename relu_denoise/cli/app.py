"""The Typer app, the exit-status tables, the options every command shares and the progress display.

Exit status (design.md): 0 ok; 1 the run failed, did not converge or was interrupted (the reason is
written); 2 bad usage or bad input, nothing run; 3 no closed form for this geometry (a result, recorded
in the run directory). Two tables decide it, for every command alike: `ENDINGS` (an exception that ends
a command -> its status and its one line on stderr) and `RUN_STATUSES` (a run's recorded status -> its
exit status). Start-up imports neither torch, scipy nor matplotlib: `--help` and usage errors stay fast.
"""

import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import NoClosedFormError, ReludenError, SolverError, TrainingError

err = Console(stderr=True, highlight=False)          # errors and progress, always
out = Console(highlight=False)                       # the human summary, unless stdout carries data


class SummaryConsole:
    """Where the human summary goes: stdout, or stderr while stdout carries data (--json, collect --csv -), so
    that `reluden ... --json | jq` reads JSON alone. Every command's --json option sets `to_stderr` as it is
    parsed (json_option); the app's callback resets it before each command."""

    to_stderr = False

    @property
    def console(self) -> Console:
        return err if self.to_stderr else out

    def print(self, *objects, **kwargs) -> None:
        self.console.print(*objects, **kwargs)


summary = SummaryConsole()


def json_option(value: bool) -> bool:
    """--json's callback: stdout carries JSON, so the summary goes to stderr."""
    summary.to_stderr = bool(value)
    return value


# ---------------------------------------------------------------- how a command ends


@dataclass(frozen=True)
class Ending:
    """How an exception ends a command: the exit status, the red label and the words after it (None: none)."""

    code: int
    label: str = "error:"
    words: Optional[Callable[[BaseException], str]] = str

    def line(self, exc: BaseException) -> str:
        """The one line printed on stderr (rich markup; the exception's own text escaped)."""
        words = "" if self.words is None else escape(self.words(exc))
        return f"[red]{self.label}[/]" + (f" {words}" if words else "")


def _solver_words(exc: SolverError) -> str:
    from ..runs import ending

    return ending(exc)[1]                   # "solver failed: <program> (status ...): ...", as the run records it


_OUT_OF_MEMORY = ("out of memory (the run directory records it); lower model.width, noise.samples or the data "
                  "size")

# The most specific class of an exception decides (SolverError before ReludenError), whatever the order here.
ENDINGS: dict[type, Ending] = {
    TrainingError: Ending(1),               # the run failed; its reason (and any checkpoint) is written
    KeyboardInterrupt: Ending(1, "interrupted", None),
    NoClosedFormError: Ending(3),           # a result: the message says "no closed form:" and why
    SolverError: Ending(1, words=_solver_words),   # the run failed, not the input
    ReludenError: Ending(2),                # bad input (recipe, data, run directory): nothing ran
    MemoryError: Ending(1, words=lambda exc: _OUT_OF_MEMORY),
}

# A run's recorded status (runs.STATUSES) -> exit status; any other status ends with 1.
RUN_STATUSES = {"ok": 0, "no-closed-form": 3}


def ending_of(exc: BaseException) -> Ending | None:
    """The row of ENDINGS for `exc` (its most specific class listed), or None (a bug: the traceback shows)."""
    return next((ENDINGS[c] for c in type(exc).__mro__ if c in ENDINGS), None)


# typer vendors its own click; its UsageError (no-such-option, missing argument, bad value) is BadParameter's base
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineErrors(TyperGroup):
    """Every command's errors as one line on stderr: usage errors (typer's and click's) with exit status 2,
    never a box; the library's exceptions as ENDINGS says."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            hint = f" ({exc.param_hint})" if isinstance(exc, typer.BadParameter) and exc.param_hint else ""
            message = " ".join(exc.format_message().split())
            sys.stderr.write(f"error: {message}{hint if hint.strip(' ()') not in message else ''}\n")
            code = 2
        except typer.Abort:
            sys.stderr.write("interrupted\n")
            code = 1
        if standalone_mode:
            sys.exit(code or 0)
        return code

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except tuple(ENDINGS) as exc:
            end = ending_of(exc)
            err.print(end.line(exc), soft_wrap=True)
            raise typer.Exit(end.code) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"reluden {version('relu-denoise')}\n")
        raise typer.Exit()


app = typer.Typer(
    cls=_OneLineErrors,
    help="Minimum-norm shallow ReLU denoisers: closed forms, training, comparisons, alignment.\n\n"
         "Each command reads a YAML recipe (see recipes/), writes a run directory with recipe.yaml, "
         "manifest.json, result.json, CSV tables and PNG figures, and prints a summary. The mathematics "
         "is docs/theory.md. Exit status: 0 ok; 1 failed, not converged or interrupted; 2 bad input; "
         "3 no closed form.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Minimum-norm shallow ReLU denoisers."""
    summary.to_stderr = False                 # until the command's --json says otherwise


# ---------------------------------------------------------------- options every command shares

RecipeArg = Annotated[Path, typer.Argument(metavar="RECIPE", help="YAML recipe file (see recipes/ for examples).", show_default=False)]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run directory to write. Default: "
                   "results/COMMAND/RECIPE-NAME/UTC-TIME-HASH/ (a new one each time). A non-empty DIR is "
                   "refused unless --force.", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe key "
                   "for this run, e.g. --set noise.sigma=0.1 (value parsed as YAML and checked with the recipe's "
                   "types; repeatable). The run directory's recipe.yaml holds the recipe as overridden.",
                   show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", callback=json_option, help="Print exactly result.json to stdout, "
                    "for scripts (reluden ... --json | jq .cost); the summary then goes to stderr, unless --quiet. "
                    "Without --json the summary goes to stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary; the run directory is then "
                     "the only line printed, on stderr (for scripts and batch jobs).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Recipe seed (same as --set seed=N). Every random "
                    "stream derives from it and from what it draws for, never from positions. Default: the "
                    "recipe's seed; change it to repeat an experiment on new draws.", show_default=False)]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads of training (sets "
                       "train.threads). Default: measured, one thread unless more are faster; results do not "
                       "depend on it. Set it to share a machine.", show_default=False)]
FitDeviceOpt = Annotated[str, typer.Option("--device", help="Device for the fit (RECIPE only; a run directory "
                         "is not refitted): auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")]
FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the PNG figures (about a second "
                       "each); --no-figures for batches of small runs.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the earlier run in a non-empty --out (the files it "
                     "wrote are deleted first). Without it a non-empty --out is refused; with it too when the folder "
                     "holds anything reluden did not write.")]


def load(recipe: Path | None, overrides, seed: int | None = None, threads: int | None = None):
    """(recipe, its folder): RECIPE (None: the built-in default) with --set, --seed and --threads applied."""
    from ..recipe import load_recipe

    return load_recipe(recipe, [*(overrides or []), *([f"seed={seed}"] if seed is not None else []),
                                *([f"train.threads={threads}"] if threads is not None else [])])


def finish(outcome, as_json: bool, quiet: bool) -> None:
    """Print result.json (--json, stdout) and the run directory (with the summary; --quiet: alone on stderr), then
    exit as the run's status says (RUN_STATUSES), its reason printed on stderr when it is not ok."""
    from ..files import to_jsonable

    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(outcome.result), indent=2) + "\n")
    if quiet:
        sys.stderr.write(f"{outcome.run.path.resolve()}\n")       # the one line a script reads
    else:
        summary.print(f"run directory: [bold]{escape(str(outcome.run.path.resolve()))}[/]", soft_wrap=True)
    if outcome.status == "ok":
        return
    label = "" if outcome.status == "no-closed-form" else "[red]error:[/] "      # the reason says "no closed form:"
    err.print(f"{label}{escape(str(outcome.result.get('reason')))}", soft_wrap=True)
    raise typer.Exit(RUN_STATUSES.get(outcome.status, 1))


# ---------------------------------------------------------------- progress

PROGRESS_INTERVAL = "RELUDEN_PROGRESS_INTERVAL"     # seconds between plain progress lines (not a terminal)
_DEFAULT_INTERVAL = 15.0


def progress_interval() -> float:
    """Seconds between plain progress lines: $RELUDEN_PROGRESS_INTERVAL, else 15 (RecipeError when it is not a
    positive number)."""
    from ..errors import RecipeError

    text = os.environ.get(PROGRESS_INTERVAL, "").strip()
    if not text:
        return _DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise RecipeError(f"{PROGRESS_INTERVAL}: expected seconds > 0 between progress lines, got {text!r}; "
                          f"unset it (every {_DEFAULT_INTERVAL:g} s) or give a number such as 30")
    return value


class RichEvents:
    """Progress on stderr for every command: a fit's steps (workflows.Events.training: step, loss, cost, residual),
    a count of tasks (Events.tasks) and a sweep's points (sweep.SweepEvents.progress). On a terminal rich draws
    bars; elsewhere (a batch job's log, a pipe), where rich would draw nothing until the end, plain lines come
    every progress_interval() seconds of wall time and once at the end (_Lines). With `quiet` nothing is shown.
    `label` names the command's tasks in the plain lines."""

    def __init__(self, quiet: bool, label: str = "progress"):
        self.quiet, self.label = quiet, label
        self.lines = not quiet and not err.is_interactive
        self.interval = progress_interval() if self.lines else None

    def _bar(self, *columns, transient: bool = True):
        from rich.progress import Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        clock = (TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        return Progress(*columns, *clock, console=err, disable=self.quiet, transient=transient)

    @contextlib.contextmanager
    def training(self, steps: int):
        if self.lines:
            with _Lines("fit", self.interval) as lines:
                yield lambda rec: lines.set(_training_words(rec))
            return
        from rich.progress import BarColumn, TextColumn

        with self._bar(BarColumn(bar_width=10), TextColumn("{task.completed}/{task.total}"),
                       TextColumn("loss {task.fields[loss]} cost {task.fields[cost]} max res {task.fields[res]}")) as bar:
            task = bar.add_task("fit", total=steps, loss="-", cost="-", res="-")

            def on_check(rec: dict) -> None:
                bar.update(task, completed=rec["step"], loss=f"{rec['loss']:.3g}", cost=f"{rec['cost']:.4g}",
                           res=f"{rec['max_residual']:.1e}")

            yield on_check

    @contextlib.contextmanager
    def tasks(self, total: int | None):
        if self.lines:
            with _Lines(self.label, self.interval) as lines:
                done = [0]

                def advance(message: str) -> None:
                    done[0] += 1
                    lines.set(f"{done[0]}{'' if total is None else f'/{total}'} done ({message})")

                yield advance
            return
        from rich.progress import BarColumn, TextColumn

        with self._bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}")) as bar:
            task = bar.add_task("", total=total)
            yield lambda message: bar.update(task, advance=1, description=message)

    @contextlib.contextmanager
    def progress(self, counts, name):
        if self.lines:
            with _Lines(name, self.interval) as lines:
                lines.set(_sweep_words(counts))
                yield lambda counts, point, rows: lines.set(_sweep_words(counts))
            return
        from rich.progress import BarColumn, TextColumn

        with self._bar(TextColumn("[bold]{task.description}[/]"), BarColumn(bar_width=20),
                       TextColumn("{task.completed}/{task.total} done"),
                       TextColumn("{task.fields[running]} running  {task.fields[failed]} failed  "
                                  "{task.fields[cached]} cached"), transient=False) as bar:
            task = bar.add_task(escape(name), total=counts.total, running=counts.running,
                                failed=0, cached=counts.cached)

            def update(counts, point, rows) -> None:
                bar.update(task, completed=counts.done, running=counts.running, failed=counts.failed,
                           cached=counts.cached)

            yield update


def _training_words(rec: dict) -> str:
    return (f"step {rec['step']}/{rec['steps']}  loss {rec['loss']:.3g}  cost {rec['cost']:.6g}  "
            f"max residual {rec['max_residual']:.2e}")


def _sweep_words(counts) -> str:
    return (f"{counts.done}/{counts.total} done, {counts.running} running, {counts.failed} failed, "
            f"{counts.cached} cached")


class _Lines:
    """Plain progress lines on stderr: `label: <the latest state>; elapsed N s`, every `interval` seconds of wall
    time from a background thread (so a slow step or a long solve still shows the work is alive, and a fast
    loop prints no more often), and when the work ends unless that state was the last line. `set` only records
    the state."""

    def __init__(self, label: str, interval: float):
        import threading

        self.label, self.interval, self.state, self._printed = label, interval, None, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="reluden-progress", daemon=True)

    def __enter__(self) -> "_Lines":
        import time

        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._printed != self.state:
            self._line()

    def set(self, words: str) -> None:
        self.state = words

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._line()

    def _line(self) -> None:
        import time

        elapsed, self._printed = time.monotonic() - self._start, self.state
        err.print(f"{self.label}: {self.state or 'started'}; elapsed {elapsed:.0f} s", markup=False,
                  highlight=False, soft_wrap=True)


# ---------------------------------------------------------------- the console script


def _sigterm_as_sigint(signum, frame) -> None:
    """SIGTERM (a job scheduler's stop) takes the SIGINT path: a fit checkpoints, every run records its end."""
    os.kill(os.getpid(), signal.SIGINT)


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm_as_sigint)
    app()
