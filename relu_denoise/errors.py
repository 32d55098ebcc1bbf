"""Typed exceptions. The library raises these; only `cli` turns them into messages and exit codes."""


class ReludenError(Exception):
    """Base class of every error the library raises on purpose."""


class RecipeError(ReludenError, ValueError):
    """A recipe, an override or another user input is malformed (exit status 2)."""


class DataError(ReludenError, ValueError):
    """Clean points or an input file cannot be used as asked (exit status 2)."""


class NoClosedFormError(ReludenError):
    """No closed form of docs/theory.md applies; `condition` names the condition that failed."""

    def __init__(self, condition: str):
        super().__init__(f"no closed form: {condition}")
        self.condition = condition


class RunError(ReludenError):
    """A run directory is missing, incomplete or of the wrong kind (exit status 2)."""


class TrainingError(ReludenError):
    """Training failed; partial results (history, checkpoint) were written (exit status 1).

    Attributes
    ----------
    reason : str
        diverged | interrupted | bad-checkpoint | failed (anything else).
    history : dict
        The training history so far, column -> list (relu_denoise.train.HISTORY_COLUMNS); {} if none.
    """

    def __init__(self, message: str, *, reason: str = "failed", history: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.history = {k: list(v) for k, v in (history or {}).items()}
