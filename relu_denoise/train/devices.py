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
def cpu_threads(device: torch.device, work: float):
    """One CPU thread while a step is small, the count restored afterwards.

    `work` = N M K max(d, 8). Measured on 2 idle cores: at work 6e5 (the triangles) one thread is
    10% faster than two, at 2e6 they tie, at 6e6 two are 1.6x faster and at 6e7 2x. With another
    job on one core, two threads made small steps up to 20x slower.
    """
    before = torch.get_num_threads()
    if device.type == "cpu" and work < 3e6:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
