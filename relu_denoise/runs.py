"""Run directories: where every command writes, atomically, and how a run is read back.

    results/<command>/<recipe name>/<UTC timestamp>-<short hash of the resolved recipe>/
        recipe.yaml     the resolved recipe
        manifest.json   argv, versions, seed, device, dtype, start/end, status (+ reason)
        result.json     the summary (written last; its presence means the run finished)
        *.csv, *.png    tables and figures

Every file is written under a temporary name and renamed, so a crash never leaves a
half-written file that looks complete.
"""

import contextlib
import csv
import hashlib
import io
import json
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import RunError
from .files import atomic_write_text, to_jsonable
from .recipe import Recipe, recipe_to_yaml


def _versions() -> dict:
    import torch

    from . import __version__

    return {"relu_denoise": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__}


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Run:
    """An open run directory. Write files through it; `finish` records how it ended."""

    path: Path
    manifest: dict = field(default_factory=dict)

    @classmethod
    def create(cls, command: str, recipe: Recipe, *, out=None, root="results", **facts) -> "Run":
        """Make the run directory (a new one under `root`, or `out`), write recipe.yaml and the manifest."""
        text = recipe_to_yaml(recipe)
        if out is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            digest = hashlib.sha256(text.encode()).hexdigest()[:8]
            out = Path(root) / command / recipe.name / f"{stamp}-{digest}"
        path = Path(out)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"--out {path}: cannot create the run directory ({exc.strerror})") from None
        if (path / "result.json").exists():
            (path / "result.json").unlink()  # a reused --out must not show a stale result as this run's
        run = cls(path, {"command": command, "argv": sys.argv, "versions": _versions(), "seed": recipe.seed,
                         "start": _utc_now(), "end": None, "status": "running", **facts})
        atomic_write_text(path / "recipe.yaml", text)
        run._write_manifest()
        return run

    def _write_manifest(self) -> None:
        atomic_write_text(self.path / "manifest.json", json.dumps(to_jsonable(self.manifest), indent=2) + "\n")

    def write_json(self, name: str, obj) -> Path:
        return atomic_write_text(self.path / name, json.dumps(to_jsonable(obj), indent=2) + "\n")

    def write_csv(self, name: str, header: list[str], rows) -> Path:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(to_jsonable(list(rows)))
        return atomic_write_text(self.path / name, buf.getvalue())

    def file(self, name: str) -> Path:
        """Path for a file a library function writes itself (it must write atomically too)."""
        return self.path / name

    def update(self, **facts) -> None:
        self.manifest.update(facts)
        self._write_manifest()

    @contextlib.contextmanager
    def recording(self):
        """Close the run with a recorded status whatever ends the block: interrupted or failed, with the reason."""
        try:
            yield self
        except BaseException as exc:
            if self.manifest.get("status") == "running":
                status, reason = ending(exc)
                self.finish(status, reason=reason)
            raise

    def finish(self, status: str = "ok", reason: str | None = None, result: dict | None = None) -> None:
        """Write result.json (if given) and close the manifest with the status and reason."""
        if result is not None:
            self.write_json("result.json", result)
        self.manifest.update(status=status, end=_utc_now())
        if reason:
            self.manifest["reason"] = reason
        self._write_manifest()


def ending(exc: BaseException) -> tuple[str, str]:
    """(status, reason) a run records when `exc` ends it."""
    from .errors import TrainingError

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted (SIGINT or SIGTERM) before the run finished"
    if isinstance(exc, TrainingError):
        return exc.reason, str(exc)
    if isinstance(exc, MemoryError):
        return "failed", "out of memory"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return "failed", f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_run(path) -> tuple[dict, dict, Path]:
    """Read a finished run directory back: (manifest, result, path)."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run directory not found: {path}")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise RunError(f"{path}: not a reluden run directory (no readable manifest.json)") from None
    result_file = path / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return manifest, result, path
