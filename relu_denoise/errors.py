"""Typed exceptions. The library raises these; only `cli` turns them into messages and exit codes."""


class ReludenError(Exception):
    """Base class of every error the library raises on purpose."""


class RecipeError(ReludenError, ValueError):
    """A recipe, an override or another user input is malformed (exit status 2)."""


class DataError(ReludenError, ValueError):
    """Clean points or an input file cannot be used as asked (exit status 2)."""


class NoDistributionError(DataError):
    """The data kind is a fixed set of points (points, file): it has no distribution to draw fresh points from."""


class NotEnoughHeldOutError(DataError):
    """Fewer held-out points exist than were asked for (digits, patches); `available` says how many do."""

    def __init__(self, message: str, *, available: int):
        super().__init__(message)
        self.available = available


class NoClosedFormError(ReludenError):
    """No closed form of docs/theory.md applies; `condition` names the condition that failed.

    `kind` says which family of conditions failed, for code that decides by it (never by the text):
    "rho-too-large" (the balls or flat zones overlap: a smaller rho may help), "geometry" (the points'
    configuration has no closed form at any rho), "samples" (the samples' clouds overlap or touch).
    """

    KINDS = ("rho-too-large", "geometry", "samples")

    def __init__(self, condition: str, *, kind: str = "geometry"):
        if kind not in self.KINDS:
            raise ValueError(f"NoClosedFormError kind must be one of {self.KINDS}, got {kind!r}")
        super().__init__(f"no closed form: {condition}")
        self.condition = condition
        self.kind = kind


class RunError(ReludenError):
    """A run directory is missing, incomplete or of the wrong kind (exit status 2)."""


class SolverError(ReludenError):
    """A convex program (cone program, LP) did not solve; `program` names it and `status` is the solver's own
    status (exit status 1: the run failed, not the input)."""

    def __init__(self, message: str, *, program: str, status: str | None = None):
        super().__init__(message)
        self.program = program
        self.status = status


class TrainingError(ReludenError):
    """Training failed; partial results (history, checkpoint) were written (exit status 1).

    Attributes
    ----------
    reason : str
        diverged | interrupted | failed (anything else).
    history : dict
        The training history so far, column -> list (relu_denoise.train.HISTORY_COLUMNS); {} if none.
    """

    def __init__(self, message: str, *, reason: str = "failed", history: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.history = {k: list(v) for k, v in (history or {}).items()}
