"""The optional compiled cores of the analysis stages: import one, or say it is not there.

``setup.py`` builds ``monitor/analysis/_<name>.c`` into ``monitor.analysis._<name>`` when a C compiler is present.
Each core has a pure-Python reference implementation with the same results; ``MONITOR_NATIVE=0`` in the environment
turns the compiled cores off (to compare, or to rule them out) wherever a class is not asked for one explicitly.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["CORES", "MISSING_HINT", "built", "choose", "enabled", "load", "missing"]

#: The compiled cores: the near-duplicate index and the topic clusterer (together about 60 % of the pure-Python
#: replay's time).
CORES = ("_dedup_c", "_cluster_c")
#: What to tell the operator when a core is missing.
MISSING_HINT = ("the compiled cores were not built (no C compiler at pip install): the analysis is about 2.5x slower, "
                "with the same results; reinstall with gcc present")


def enabled() -> bool:
    """Whether the compiled cores are used by default (``MONITOR_NATIVE`` is not ``0``)."""
    return os.environ.get("MONITOR_NATIVE") != "0"


def built(name: str) -> ModuleType | None:
    """The compiled module ``monitor.analysis.<name>`` whatever ``MONITOR_NATIVE`` says, or None when not built."""
    try:
        return importlib.import_module("monitor.analysis." + name)
    except ImportError:
        return None


def load(name: str) -> ModuleType | None:
    """The compiled module ``monitor.analysis.<name>``, or None when it was not built or ``MONITOR_NATIVE=0``."""
    return built(name) if enabled() else None


def choose(module: ModuleType | None, native: bool | None, what: str) -> ModuleType | None:
    """The core a class runs on, from its ``native`` argument: None, the built ``module`` unless ``MONITOR_NATIVE=0``;
    False, none (the Python reference); True, the built ``module`` (whatever the environment says) or RuntimeError
    naming ``what``."""
    if native is False or (native is None and not enabled()):
        return None
    if module is None and native:
        raise RuntimeError(f"the C core of {what} is not built (or does not match this Python): pip install needs "
                           "a C compiler")
    return module


def missing() -> list[str]:
    """The cores that are not built (empty when all are, or when ``MONITOR_NATIVE=0`` turned them off on purpose).

    The analysis runs either way, with the same results; without them it is about 2.5 times slower.
    """
    if not enabled():
        return []
    return [name for name in CORES if built(name) is None]
