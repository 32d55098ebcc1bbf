"""Input gates and resource estimates (relu_denoise.checks)."""

import pytest

from relu_denoise import checks
from relu_denoise.errors import DataError, RecipeError


def test_available_memory_counts_the_reclaimable_page_cache(tmp_path, monkeypatch):
    """MemAvailable, not MemFree: a long-running machine whose memory is page cache can still run a fit."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25165824 kB\nMemFree:          524288 kB\nMemAvailable:   20971520 kB\n")
    monkeypatch.setattr(checks, "MEMINFO", str(meminfo))
    assert checks.available_memory() == 20971520 * 1024
    checks.check_memory(8 * 2**30, what="fit", fix="lower model.width")       # 8 GiB of 20 available: runs
    with pytest.raises(RecipeError, match=r"fit needs about 17 GiB, more than the 20 GiB available; lower"):
        checks.check_memory(17 * 2**30, what="fit", fix="lower model.width")


def test_denoisers_gate_takes_predict_before_call():
    """An object with predict is drawn through predict even when it is callable too (an nn.Module is)."""
    class Half:
        def predict(self, y):
            return 0.5 * y

        def __call__(self, y):
            raise AssertionError("called instead of predict")

    half = Half()
    maps = checks.check_denoisers({"half": half, "abs": abs})
    assert maps == {"half": half.predict, "abs": abs}
    for bad, match in (({"three": 3}, "without one: three"), ({}, "at least one"), ([half], "expected a dict")):
        with pytest.raises(DataError, match=match):
            checks.check_denoisers(bad)
    assert checks.check_denoisers({}, at_least_one=False) == {}


def test_rho_gate():
    assert checks.check_rho(None) is None and checks.check_rho(0) == 0.0 and checks.check_rho("0.25") == 0.25
    for bad in (-1e-3, float("nan"), float("inf")):
        with pytest.raises(DataError, match="rho: must be >= 0"):
            checks.check_rho(bad)
    with pytest.raises(DataError, match="rho: expected a number or None, got 'wide'"):
        checks.check_rho("wide")
