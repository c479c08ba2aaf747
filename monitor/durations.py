"""Parse human durations such as ``90``, ``30s``, ``5m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Return seconds for an int/float (seconds) or a string like ``'1h30m'``; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or a number of seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):  # YAML .nan / .inf: nan would pass every `< floor` check
            raise ValueError("a duration must be a finite number of seconds")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration like 30s, 5m, 2h or a number of seconds")
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"cannot read duration {value!r}; write it like 30s, 5m, 1h30m or 2d")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds compactly (``3723`` -> ``'1h2m3s'``)."""
    seconds = round(seconds)
    if seconds == 0:
        return "0s"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)



#: A pydantic field type reading ``30s``, ``5m``, ``2h`` or a number of seconds into float seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]
