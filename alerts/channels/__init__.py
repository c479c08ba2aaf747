"""Channel kinds: an explicit table of built-ins, imported lazily, loud on unknown kinds."""

from __future__ import annotations

import importlib
from functools import cache

from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError
from monitor.errors import PluginError

#: Built-in kinds, ``type:`` value -> ``module:Class``. One module per kind, named after its config key.
BUILTIN_CHANNELS: dict[str, str] = {
    "dingtalk": "alerts.channels.dingtalk:DingTalkChannel",
    "wecom": "alerts.channels.wecom:WeComChannel",
    "feishu": "alerts.channels.feishu:FeishuChannel",
    "lark": "alerts.channels.feishu:LarkChannel",
    "slack": "alerts.channels.slack:SlackChannel",
    "email": "alerts.channels.email:EmailChannel",
    "webhook": "alerts.channels.webhook:WebhookChannel",
}

__all__ = ["BUILTIN_CHANNELS", "Channel", "ChannelConfig", "Delivery", "DeliveryError", "get_channel_kind"]


@cache
def get_channel_kind(kind: str) -> type[Channel]:
    """Import and return the Channel class for ``kind``; raise PluginError naming the known kinds otherwise."""
    target = BUILTIN_CHANNELS.get(kind)
    if target is None:
        raise PluginError(f"unknown channel type {kind!r}; known types: {', '.join(sorted(BUILTIN_CHANNELS))}")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        raise PluginError(f"channel type {kind!r} ({target}) failed to import: {exc!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Channel)) or getattr(cls, "kind", None) != kind:
        raise PluginError(f"channel type {kind!r} ({target}) is not a Channel subclass declaring kind={kind!r}")
    return cls
