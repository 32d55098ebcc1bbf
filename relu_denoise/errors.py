"""Typed exceptions. The library raises these; only `cli` turns them into messages and exit codes."""


class ReludenError(Exception):
    """Base class of every error the library raises on purpose."""


class RecipeError(ReludenError, ValueError):
    """A recipe, an override or another user input is malformed (exit status 2)."""


class DataError(ReludenError, ValueError):
    """Clean points or an input file cannot be used as asked (exit status 2)."""


class NoClosedFormError(ReludenError):
    """No closed form of theory.md applies; `condition` names the condition that failed."""

    def __init__(self, condition: str):
        super().__init__(f"no closed form: {condition}")
        self.condition = condition


class RunError(ReludenError):
    """A run directory is missing, incomplete or of the wrong kind (exit status 2)."""


class TrainingError(ReludenError):
    """Training failed (diverged, interrupted); partial results were written (exit status 1)."""
