"""What every workflow shares: progress events, the outcome it returns, and the one path into training.

`train(jobs)` is the only place a workflow trains: every command's fits (fit, fit --resume, align, certify,
compare's nn, a sweep's grouped fits) are train.FitJob values handed to `relu_denoise.train.fit_many`.
"""

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RecipeError, TrainingError
from ..problem import Problem, make_problem
from ..recipe import Recipe
from ..runs import Run


class Events:
    """How a workflow reports progress. This default is silent; `cli` passes a rich one."""

    def training(self, steps: int):
        """A context manager yielding the training callback (called at every check with a record), or None."""
        return contextlib.nullcontext(None)

    def tasks(self, total: int | None):
        """A context manager yielding `advance(message)`, called once per finished task."""
        return contextlib.nullcontext(lambda message: None)


@dataclass
class Outcome:
    """What a workflow leaves: its run, its typed summary (results.py), the result.json written, and objects
    the caller may want (the fit, the report, ...)."""

    run: Run
    summary: object
    result: dict
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.result.get("status", "ok")


def data_files(recipe: Recipe, base_dir) -> list[Path]:
    """The user's data file, if the recipe reads one (its sha256 goes into the manifest)."""
    path = getattr(recipe.data, "path", None)
    return [Path(base_dir) / path] if recipe.data.kind == "file" and path else []


def training_problem(recipe: Recipe, base_dir) -> Problem:
    """The recipe's problem, refused at once where training cannot answer (RecipeError, exit 2: overlapping
    clouds, a trivial problem) or where it cannot fit in memory; before any run directory exists."""
    problem = make_problem(recipe, base_dir)
    refusal = problem.refusal(recipe)
    if refusal is not None:
        raise RecipeError(refusal)
    check_memory_of(recipe, problem)
    return problem


def check_memory_of(recipe: Recipe, problem: Problem) -> None:
    """Refuse (RecipeError) a fit of the recipe on this problem whose working set cannot fit in memory."""
    from ..train import check_fit_memory

    N, d = problem.points.shape
    M = recipe.noise.samples if problem.samples is None else problem.samples.shape[1]
    check_fit_memory(N, M, d, recipe.model, recipe.train)


def open_training_run(command: str, recipe: Recipe, base_dir, device, out, force, figures=True, *, checks=(),
                      **facts):
    """(run, problem, device) of a command that trains: data drawn and the regime and memory checked before
    the run directory exists; `checks` (functions of the problem) refuse what the command itself cannot do."""
    problem = training_problem(recipe, base_dir)          # before torch is imported: a refusal is quick
    for check in checks:
        check(problem)
    from ..train import resolve_device

    dev = resolve_device(device)
    run = Run.create(command, recipe, out=out, force=force, device=str(dev), dtype=recipe.train.dtype,
                     recipe_dir=str(Path(base_dir).resolve()), data_files=data_files(recipe, base_dir),
                     figures=figures, **facts)
    if figures:
        import_plots_meanwhile()
    return run, problem, dev


def import_plots_meanwhile() -> None:
    """Import matplotlib (through .plots) on a background thread while the run trains: the import is a third of
    what a fit's figures cost drawn cold, and training leaves the interpreter idle most of the time (torch's
    kernels release the GIL). The module lock makes a later `from .. import plots` wait for it; an import error
    is swallowed here and raised again by that later import, inside the run's recording."""
    import importlib
    import threading

    def load():
        with contextlib.suppress(Exception):
            importlib.import_module(f"{__package__.rsplit('.', 1)[0]}.plots")

    threading.Thread(target=load, daemon=True).start()


def train(jobs: list) -> list:
    """The one path into training: train.fit_many (fits of one shape stepped together where they can);
    per job its FitResult or the library error that ended it."""
    from .. import train as training

    return training.fit_many(jobs)


def train_one(job):
    """`train` of one job: its FitResult, or its error raised."""
    (out,) = train([job])
    if isinstance(out, Exception):
        raise out
    return out


def write_history(run: Run, history: dict) -> None:
    from ..train import HISTORY_COLUMNS

    if history and history.get("step"):
        run.write_csv("history.csv", HISTORY_COLUMNS, zip(*(history[k] for k in HISTORY_COLUMNS)))


def training_ended(run: Run, exc: TrainingError) -> TrainingError:
    """The error a fit that did not finish raises: its history written, and for an interrupted fit the command
    that continues it."""
    write_history(run, exc.history)
    if exc.reason != "interrupted":
        return exc
    return TrainingError(f"{exc}; continue with: reluden fit --resume {run.path}", reason=exc.reason,
                         history=exc.history)
