"""Devices and dtypes: device strings normalised once, float64 by default, CPU threads for small steps."""

import contextlib

import torch

from ..errors import RecipeError


def resolve_device(name: str) -> torch.device:
    """Normalise a device string: auto | cpu | cuda | cuda:N | mps; unavailable ones raise RecipeError."""
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise RecipeError("--device mps: MPS (Apple GPU) is not available on this machine; "
                              "use --device cpu or auto")
        return torch.device("mps")
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return _cuda_device(text)
    raise RecipeError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _cuda_device(text: str) -> torch.device:
    if not torch.cuda.is_available():
        raise RecipeError(f"--device {text}: CUDA is not available on this machine; use --device cpu or auto")
    index = int(text[5:]) if ":" in text else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise RecipeError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s), numbered from 0")
    return torch.device("cuda", index)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """float64 (default) or float32; MPS has no float64."""
    dtype = {"float64": torch.float64, "float32": torch.float32}.get(str(name))
    if dtype is None:
        raise RecipeError(f"--dtype {name!r}: expected float64 or float32")
    if dtype == torch.float64 and device.type == "mps":
        raise RecipeError("--dtype float64: MPS does not support float64; use --dtype float32")
    return dtype


@contextlib.contextmanager
def threads_set(n: int | None):
    """Run the block with n CPU threads (None: as they are), the count restored afterwards."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def single_thread():
    """One CPU thread for the block: LAPACK factorisations and full reductions round differently with
    different thread counts; on one thread the training results do not depend on the count
    (docs/training.md 9)."""
    return threads_set(1)


_SMALL_WORK = 1e6      # B K max(d, 8) (B a step's columns) below which one thread is used unmeasured (docs/training.md 9)
_TRIAL_ROUNDS = 3      # rounds of (1 thread, n threads) per measurement
_TRIAL_BLOCK = 3       # steps per block; the first of each block (after the switch) is not timed
_RETRIAL_STEPS = 2000  # measure again after this many steps
_DRIFT = 1.5           # ... or when the median step time moves by this factor from the one measured
_WINDOW = 25           # steps in the running median that watches the drift


class ThreadRule:
    """CPU threads of the training step: `forced` (train.threads) or measured.

    Measured: one thread when the step is small (work B K max(d, 8) < 1e6, B the step's columns) or when the
    process has one thread; otherwise blocks of steps alternate between one thread and n (the process's
    count), and the faster wins (n only when 10% faster: one thread cannot stall on a busy machine). The
    measurement is repeated every 2000 steps and whenever the step time drifts by a factor 1.5 (the machine's
    load changed).
    Training results do not depend on the choice (docs/training.md 9), so measuring keeps runs reproducible.
    """

    def __init__(self, device: torch.device, forced: int | None, *, work: float):
        self.most = torch.get_num_threads()
        self.active = device.type == "cpu"
        self.fixed = forced if forced is not None else (1 if work < _SMALL_WORK or self.most == 1 else None)
        self.current = self.fixed or 1
        self.plan, self.times = [], {}
        self.reference, self.recent, self.since = None, [], 0
        self.decisions = []            # (step, threads, seconds per step at 1 and n threads)
        if self.active and self.fixed is None:
            self._start_trial()

    @property
    def measured(self) -> bool:
        return self.active and self.fixed is None

    def next(self) -> int:
        """Threads for the next step (set by the caller)."""
        if not self.active:
            return torch.get_num_threads()
        if self.plan:
            return self.plan[0][0]
        return self.current

    def record(self, step: int, threads: int, seconds: float) -> None:
        """Time of the step just run with `threads`."""
        if not self.measured:
            return
        if self.plan:
            n, timed = self.plan.pop(0)
            if timed:
                self.times.setdefault(n, []).append(seconds)
            if not self.plan or self._clearly_slower():
                self._decide(step)
            return
        self.since += 1
        self.recent = (self.recent + [seconds])[-_WINDOW:]
        drifted = len(self.recent) == _WINDOW and not (
            self.reference / _DRIFT <= sorted(self.recent)[_WINDOW // 2] <= self.reference * _DRIFT)
        if drifted or self.since >= _RETRIAL_STEPS:
            self._start_trial()

    def _start_trial(self) -> None:
        self.times, self.plan = {}, []
        for _ in range(_TRIAL_ROUNDS):
            for n in (1, self.most):
                self.plan += [(n, False)] + [(n, True)] * (_TRIAL_BLOCK - 1)

    def _clearly_slower(self) -> bool:
        """After a full round: n threads at least twice as slow as one; stop measuring them."""
        one, many = self.times.get(1, []), self.times.get(self.most, [])
        return len(many) >= _TRIAL_BLOCK - 1 and len(one) >= len(many) and _median(many) > 2 * _median(one)

    def _decide(self, step: int) -> None:
        one, many = _median(self.times.get(1, [])), _median(self.times.get(self.most, []))
        self.current = self.most if many is not None and many < 0.9 * one else 1
        self.reference = many if self.current > 1 else one
        self.plan, self.recent, self.since = [], [], 0
        self.decisions.append((step, self.current, one, many))


def _median(values: list) -> float | None:
    return sorted(values)[len(values) // 2] if values else None
