"""The optional compiled cores of the analysis stages: import one, or say it is not there.

``setup.py`` builds ``monitor/analysis/_<name>.c`` into ``monitor.analysis._<name>`` when a C compiler is present.
Each core has a pure-Python reference implementation with the same results; ``MONITOR_NATIVE=0`` in the environment
turns the compiled cores off (to compare, or to rule them out).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["CORES", "load", "missing"]

#: The compiled cores: the near-duplicate index and the topic clusterer (together about 60 % of the pure-Python
#: replay's time).
CORES = ("_dedup_c", "_cluster_c")


def load(name: str) -> ModuleType | None:
    """The compiled module ``monitor.analysis.<name>``, or None when it was not built or ``MONITOR_NATIVE=0``."""
    if os.environ.get("MONITOR_NATIVE") == "0":
        return None
    try:
        return importlib.import_module("monitor.analysis." + name)
    except ImportError:
        return None


def missing() -> list[str]:
    """The cores that are not built (empty when all are, or when ``MONITOR_NATIVE=0`` turned them off on purpose).

    The analysis runs either way, with the same results; without them it is about 2.5 times slower.
    """
    if os.environ.get("MONITOR_NATIVE") == "0":
        return []
    return [name for name in CORES if load(name) is None]
