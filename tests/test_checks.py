"""Input gates and resource estimates (relu_denoise.checks)."""

import pytest

from relu_denoise import checks
from relu_denoise.errors import RecipeError


def test_available_memory_counts_the_reclaimable_page_cache(tmp_path, monkeypatch):
    """MemAvailable, not MemFree: a long-running machine whose memory is page cache can still run a fit."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25165824 kB\nMemFree:          524288 kB\nMemAvailable:   20971520 kB\n")
    monkeypatch.setattr(checks, "MEMINFO", str(meminfo))
    assert checks.available_memory() == 20971520 * 1024
    checks.check_memory(8 * 2**30, what="fit", fix="lower model.width")       # 8 GiB of 20 available: runs
    with pytest.raises(RecipeError, match=r"fit needs about 17 GiB, more than the 20 GiB available; lower"):
        checks.check_memory(17 * 2**30, what="fit", fix="lower model.width")
