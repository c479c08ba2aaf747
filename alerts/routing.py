"""Routing: which channels a notification goes to, from the config's routes (first match wins unless continue)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alerts.config import AlertsConfig, RouteMatch
from monitor.analysis.surge import SEVERITIES


def _matches(match: RouteMatch, *, watches: Iterable[str], sources: Iterable[str], category: str | None,
             severity: str) -> bool:
    if SEVERITIES.index(severity) < SEVERITIES.index(match.min_severity):
        return False
    if match.watches and not set(match.watches) & set(watches):
        return False
    if match.sources and not set(match.sources) & set(sources):
        return False
    return not (match.categories and category not in match.categories)


def route(alerts: AlertsConfig, enabled_channels: Sequence[str], *, watches: Iterable[str] = (),
          sources: Iterable[str] = (), category: str | None = None, severity: str = "blue") -> list[str]:
    """Channel names for a notification with these labels, in config order, without repeats.

    Routes are tried in order; the first that matches decides, unless it says ``continue: true``. When none
    matches, ``default_channels`` (or, if that is not set, every enabled channel) takes it. Disabled channels are
    dropped at the end, so disabling a channel never reroutes its messages elsewhere.
    """
    watches, sources = list(watches), list(sources)
    chosen: list[str] = []
    matched = False
    for r in alerts.routes:
        if _matches(r.match, watches=watches, sources=sources, category=category, severity=severity):
            matched = True
            chosen += [c for c in r.channels if c not in chosen]
            if not r.continue_:
                break
    if not matched:
        chosen = list(alerts.default_channels) if alerts.default_channels is not None else list(enabled_channels)
    enabled = set(enabled_channels)
    return [c for c in chosen if c in enabled]
