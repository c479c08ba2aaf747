"""The registry of source kinds: an explicit table of built-ins plus the ``monitor.sources`` entry-point group.

Kinds are imported lazily (start-up stays fast) but loudly: an unknown kind or a plugin that fails to import is an
error naming the known kinds, never a silent skip.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from monitor.errors import PluginError
from monitor.source import Source

#: Built-in kinds, ``type:`` value -> ``module:Class``. One module per kind, named after its config key.
BUILTIN_KINDS: dict[str, str] = {
    "rss": "sources.rss:RssSource",
    "html": "sources.html:HtmlSource",
    "json": "sources.json:JsonSource",
}

ENTRY_POINT_GROUP = "monitor.sources"


@cache
def _third_party() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in BUILTIN_KINDS:  # built-ins win: a plugin cannot silently replace rss
            found[ep.name] = ep.value
    return found


def known_kinds() -> list[str]:
    """Every kind name, built-in and third-party, sorted."""
    return sorted({*BUILTIN_KINDS, *_third_party()})


@cache
def get_kind(kind: str) -> type[Source]:
    """Import and return the Source class for ``kind``; raise PluginError with the known kinds otherwise."""
    target = BUILTIN_KINDS.get(kind) or _third_party().get(kind)
    if target is None:
        raise PluginError(f"unknown source type {kind!r}; known types: {', '.join(known_kinds())}")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # any import failure of a plugin is reported, not swallowed
        raise PluginError(f"source type {kind!r} ({target}) failed to import: {exc!r}; "
                          f"reinstall the package that provides it") from exc
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise PluginError(f"source type {kind!r} ({target}) is not a monitor.source.Source subclass")
    if getattr(cls, "kind", None) != kind:
        raise PluginError(f"source type {kind!r} ({target}) declares kind={getattr(cls, 'kind', None)!r}")
    return cls
