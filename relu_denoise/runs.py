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
import os
import platform
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


from .errors import RunError
from .files import DirLock, atomic_write_text, claim_dir, lock_dir, read_json, to_jsonable, utc_now, write_json
from .recipe import Recipe, recipe_to_yaml


STATUSES = ("ok", "not-converged", "no-closed-form", "failed", "interrupted")
_PACKAGES = ("relu-denoise", "torch", "numpy", "scipy", "scikit-learn", "matplotlib", "pydantic", "cvxpy")
# what every run directory may hold beside the files its manifest lists (Run.file records those)
ERROR_FILE = "error.txt"        # the traceback of an error that is not the library's own (a bug)
_ALWAYS = ("recipe.yaml", "manifest.json", "result.json", ERROR_FILE, "sweep_point.json")
# run directories written before manifests listed their files: what the commands wrote
_LEGACY = ("*.csv", "*.png", "*.pt", "*.json", "*.yaml", "*.txt")


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
             "torch_threads": torch.get_num_threads(), **git_state()}
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


def git_state() -> dict:
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


@dataclass
class Run:
    """An open run directory, locked for this writer. Write files through it; `finish` records how it ended."""

    path: Path
    manifest: dict = field(default_factory=dict)
    figures: bool = True            # draw the PNG figures (sweeps switch them off: they cost more than small fits)
    lock: DirLock | None = None

    @classmethod
    def create(cls, command: str, recipe: Recipe, *, out=None, force: bool = False, root="results",
               data_files=(), figures: bool = True, **facts) -> "Run":
        """Make the run directory (a new one under `root`, or `out`), write recipe.yaml and the manifest.

        The directory is locked first (files.claim_dir). An existing non-empty `out` is refused (RunError)
        unless it is an earlier run directory and `force` is given, which empties it: every file in it must be
        one reluden wrote (its manifest lists them), anything else is refused and left alone.
        `data_files` are hashed into the manifest.
        """
        text = recipe_to_yaml(recipe)
        if out is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            digest = hashlib.sha256(text.encode()).hexdigest()[:8]
            out = Path(root) / command / recipe.name / f"{stamp}-{digest}"
        path = Path(out)
        lock = claim_dir(path, force=force, owned=owned_files, holder=command)
        run = cls(path, {"command": command, "argv": sys.argv, "seed": recipe.seed, "start": utc_now(),
                         "end": None, "status": "running", **facts, **provenance(),
                         "data_files": {str(f): _sha256(f) for f in data_files}, "figures": figures, "files": []},
                  figures, lock)
        atomic_write_text(path / "recipe.yaml", text)
        run._write_manifest()
        return run

    @classmethod
    def reopen(cls, path, *, figures: bool = True) -> "Run":
        """Lock an existing run directory to continue it (fit --resume); its manifest as it is."""
        path = Path(path)
        lock = lock_dir(path, holder="resume")
        try:
            manifest = read_json(path / "manifest.json")
        except BaseException:
            lock.release()
            raise
        return cls(path, manifest, figures, lock)

    def result_header(self) -> dict:
        """The keys every result.json starts with (the JSON contract of design.md)."""
        from . import __version__

        return {"command": self.manifest["command"], "status": self.manifest["status"],
                "run_dir": str(self.path.resolve()), "seed": self.manifest["seed"], "version": __version__}

    def _write_manifest(self) -> None:
        write_json(self.path / "manifest.json", self.manifest)

    def write_json(self, name: str, obj) -> Path:
        return write_json(self.file(name), obj)

    def write_csv(self, name: str, header: list[str], rows) -> Path:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(to_jsonable(list(rows)))
        return atomic_write_text(self.file(name), buf.getvalue())

    def file(self, name: str) -> Path:
        """The path of a file of this run (a library function writing it must write atomically too); the
        manifest lists it, so that `--force` may later replace it (and nothing it did not write)."""
        files = self.manifest.setdefault("files", [])
        if name not in files and name not in _ALWAYS:
            files.append(name)
            self._write_manifest()
        return self.path / name

    def update(self, **facts) -> None:
        self.manifest.update(facts)
        self._write_manifest()

    @contextlib.contextmanager
    def recording(self):
        """Close the run with a recorded status whatever ends the block: interrupted or failed, with the reason.
        An error that is not one of the library's own (a bug) leaves its traceback in error.txt."""
        try:
            yield self
        except BaseException as exc:
            if self.manifest.get("status") == "running":
                status, reason = ending(exc)
                if unexpected(exc):
                    atomic_write_text(self.path / ERROR_FILE, "".join(traceback.format_exception(exc)))
                    reason += f" (traceback in {self.path / ERROR_FILE})"
                self.finish(status, reason=reason)
            raise

    def finish(self, status: str = "ok", reason: str | None = None, result: dict | None = None) -> dict | None:
        """Write result.json (if given, headed by the JSON contract's keys), close the manifest and release the
        lock. Returns the dictionary written as result.json (what --json prints)."""
        if status not in STATUSES:
            raise ValueError(f"run status must be one of {STATUSES}, got {status!r}")
        self.manifest.update(status=status, end=utc_now(), reason=reason)
        resumes = self.manifest.get("resumes")
        if resumes and isinstance(resumes[-1], dict) and "end" not in resumes[-1]:      # how this resume ended
            resumes[-1].update(end=self.manifest["end"], status=status)
        written = None
        if result is not None:
            header = self.result_header()
            if reason:
                header["reason"] = reason
            written = {**header, **{k: v for k, v in result.items() if k not in header and k != "reason"}}
            self.write_json("result.json", written)
        self._write_manifest()
        if self.lock is not None:
            self.lock.release()
        return written


def owned_files(folder: Path) -> list[str]:
    """The entries of a run directory that reluden wrote (files.claim_dir may delete them under --force): the
    fixed names and the files its manifest lists; none when there is no readable manifest (not a run)."""
    try:
        manifest = read_json(folder / "manifest.json")
    except RunError:
        return []
    listed = manifest.get("files")
    if not isinstance(listed, list):                 # an older run directory: the names commands wrote
        listed = sorted({p.name for pattern in _LEGACY for p in folder.glob(pattern) if p.is_file()})
    return [*_ALWAYS, *map(str, listed)]


def unexpected(exc: BaseException) -> bool:
    """An exception the library does not raise on purpose (a bug, or an error from below it)."""
    from .errors import ReludenError

    return isinstance(exc, Exception) and not isinstance(exc, (ReludenError, MemoryError))


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
    """Read a finished run directory back: (manifest, result, path); RunError naming a missing, corrupt or
    hand-edited file."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run directory not found: {path}")
    if not (path / "manifest.json").is_file():
        raise RunError(f"{path}: not a reluden run directory (no manifest.json)")
    manifest = read_json(path / "manifest.json")
    result = read_json(path / "result.json") if (path / "result.json").exists() else {}
    return manifest, result, path
