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
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


from .errors import RunError
from .files import atomic_write_text, to_jsonable
from .recipe import Recipe, recipe_to_yaml


STATUSES = ("ok", "not-converged", "no-closed-form", "failed", "interrupted")
_PACKAGES = ("relu-denoise", "torch", "numpy", "scipy", "scikit-learn", "matplotlib", "pydantic", "cvxpy")
_LOCK = ".lock"


def provenance() -> dict:
    """Where and with what a run ran: versions, git commit, host, CPU, threads, accelerator (design.md)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    facts = {"versions": versions, "host": platform.node(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
             "torch_threads": torch.get_num_threads(), **_git()}
    if torch.cuda.is_available():
        facts["cuda_device"] = torch.cuda.get_device_name()
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git() -> dict:
    """The commit and dirty flag of the checkout the package runs from (none when installed elsewhere)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Run:
    """An open run directory. Write files through it; `finish` records how it ended."""

    path: Path
    manifest: dict = field(default_factory=dict)
    figures: bool = True            # draw the PNG figures (sweeps switch them off: they cost more than small fits)

    @classmethod
    def create(cls, command: str, recipe: Recipe, *, out=None, force: bool = False, root="results",
               data_files=(), figures: bool = True, **facts) -> "Run":
        """Make the run directory (a new one under `root`, or `out`), write recipe.yaml and the manifest.

        An existing non-empty `out` is refused (RunError) unless `force`, which empties it first; a lock
        file refuses a second writer while this run is open. `data_files` are hashed into the manifest.
        """
        text = recipe_to_yaml(recipe)
        if out is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            digest = hashlib.sha256(text.encode()).hexdigest()[:8]
            out = Path(root) / command / recipe.name / f"{stamp}-{digest}"
        path = Path(out)
        _claim(path, force)
        run = cls(path, {"command": command, "argv": sys.argv, "seed": recipe.seed, "start": _utc_now(),
                         "end": None, "status": "running", **facts, **provenance(),
                         "data_files": {str(f): _sha256(f) for f in data_files}, "figures": figures}, figures)
        atomic_write_text(path / "recipe.yaml", text)
        run._write_manifest()
        return run

    def result_header(self) -> dict:
        """The keys every result.json starts with (the JSON contract of design.md)."""
        from . import __version__

        return {"command": self.manifest["command"], "status": self.manifest["status"],
                "run_dir": str(self.path.resolve()), "seed": self.manifest["seed"], "version": __version__}

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
        """Write result.json (if given, headed by the JSON contract's keys) and close the manifest.

        `result` is updated in place, so what a caller prints with --json is exactly the file.
        """
        if status not in STATUSES:
            raise ValueError(f"run status must be one of {STATUSES}, got {status!r}")
        self.manifest.update(status=status, end=_utc_now(), reason=reason)
        if result is not None:
            header = self.result_header()
            if reason:
                header["reason"] = reason
            rest = {k: v for k, v in result.items() if k not in header and k != "reason"}
            result.clear()
            result.update(header, **rest)
            self.write_json("result.json", result)
        self._write_manifest()
        (self.path / _LOCK).unlink(missing_ok=True)


def _claim(path: Path, force: bool) -> None:
    """Create `path` for one writer: refuse a non-empty folder unless `force` (then empty it), and lock it."""
    import shutil

    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path}: exists and is not a directory")
    lock = path / _LOCK
    if lock.exists() and _alive(lock):
        raise RunError(f"--out {path}: another reluden run is writing there (lock {lock}); wait for it or "
                       "choose another --out")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise RunError(f"--out {path}: the directory is not empty; give --force to replace it, or choose "
                           "another --out")
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise RunError(f"--out {path}: another reluden run took it just now; choose another --out") from None
    except OSError as exc:
        raise RunError(f"--out {path}: cannot create the run directory ({exc.strerror})") from None
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")


def _alive(lock: Path) -> bool:
    """Does the process that wrote the lock still run? (A lock of a killed process is stale.)"""
    try:
        pid = int(lock.read_text().split()[0])
        os.kill(pid, 0)
        return pid != os.getpid()          # this process runs one run at a time: its own lock is stale
    except (ValueError, IndexError, OSError):
        return False


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ending(exc: BaseException) -> tuple[str, str]:
    """(status, reason) a run records when `exc` ends it."""
    from .errors import NoClosedFormError, SolverError, TrainingError

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted (SIGINT or SIGTERM) before the run finished"
    if isinstance(exc, TrainingError):
        return ("interrupted" if exc.reason == "interrupted" else "failed"), str(exc)
    if isinstance(exc, NoClosedFormError):
        return "no-closed-form", str(exc)
    if isinstance(exc, SolverError):
        return "failed", f"solver failed: {exc.program} (status {exc.status}): {exc}"
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
