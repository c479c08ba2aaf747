"""The compiled analysis cores are built and in use where a compiler was present (CI requires it)."""

from __future__ import annotations

import os

import pytest

from monitor.analysis import native
from monitor.analysis.cluster import TopicClusterer
from monitor.analysis.dedup import NearDuplicateIndex


def test_compiled_cores_are_built_and_used() -> None:
    """With the cores built, the public classes run on them by default; .ci/run sets MONITOR_REQUIRE_NATIVE=1 so a
    failed build fails CI instead of silently testing only the pure-Python path."""
    absent = native.missing()
    if os.environ.get("MONITOR_NATIVE") == "0":
        pytest.skip("MONITOR_NATIVE=0 turns the compiled cores off")
    if absent:
        reason = f"compiled cores not built: {', '.join(absent)} (pip install found no working C compiler)"
        if os.environ.get("MONITOR_REQUIRE_NATIVE") == "1":
            pytest.fail(reason + "; MONITOR_REQUIRE_NATIVE=1 says they must be there")
        pytest.skip(reason)
    assert type(NearDuplicateIndex()).__name__ == "_NativeIndex"
    assert type(NearDuplicateIndex(native=False)) is NearDuplicateIndex
    assert TopicClusterer(near_duplicates=False)._core is not None
    assert TopicClusterer(near_duplicates=False, native=False)._core is None


def test_missing_lists_nothing_when_turned_off_on_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    """MONITOR_NATIVE=0 is a choice, not a broken build: nothing is reported missing, and load() gives None."""
    monkeypatch.setenv("MONITOR_NATIVE", "0")
    assert native.missing() == []
    assert all(native.load(name) is None for name in native.CORES)
