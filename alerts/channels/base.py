"""The channel plugin contract.

A channel kind is one module in ``alerts/channels/`` named after its config key (``type: dingtalk`` lives in
``alerts/channels/dingtalk.py``) defining a :class:`Channel` subclass with:

* ``kind``: its config key,
* ``config_model``: a :class:`ChannelConfig` subclass validating its options at config load (secrets come from
  ``${ENV}``),
* ``send(message, delivery)``: render the :class:`~alerts.message.Message` in the service's format and deliver it
  once; return normally on success, raise :class:`DeliveryError` otherwise, saying whether a retry can help.

The outbox owns retries, backoff and bookkeeping; a channel makes exactly one attempt per call.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.durations import Duration
from monitor.errors import MonitorError

if TYPE_CHECKING:
    import httpx

    from alerts.message import Message
    from monitor.clock import Clock

#: What a channel name may be: it is part of outbox keys and routes.
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class DeliveryError(MonitorError):
    """One delivery attempt failed.

    ``retryable``: trying again later can help (network down, 5xx, 429, rate limited by the service). False means
    the request itself is wrong (bad token, bad signature, keyword check failed): the outbox still keeps the message
    but waits longer and the log says what to fix. ``retry_after``: seconds the service asked us to wait.
    """

    def __init__(self, message: str, *, channel: str = "", retryable: bool = True,
                 retry_after: float | None = None, status: int | None = None) -> None:
        self.channel = channel
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Delivery:
    """The outbox row being delivered: ``id`` is stable across retries (receivers deduplicate on it)."""

    id: str
    key: str
    attempt: int


class ChannelConfig(BaseModel):
    """Options every channel has. A kind subclasses this to add its own (webhook URL, secret, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique name, used by routes.")
    type: str = Field(description="The channel kind: dingtalk, wecom, feishu, lark, slack, email or webhook.")
    enabled: bool = True
    timeout: Duration = Field(default=10.0, gt=0, description="How long one delivery attempt may take (10s, 1m).")

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not CHANNEL_NAME.match(v):
            raise ValueError("use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
        return v


class Channel(ABC):
    """One configured channel instance."""

    kind: ClassVar[str]
    config_model: ClassVar[type[ChannelConfig]] = ChannelConfig

    def __init__(self, config: ChannelConfig, http: httpx.AsyncClient, clock: Clock) -> None:
        self.config = config
        self.http = http
        self.clock = clock

    @property
    def name(self) -> str:
        """The configured name."""
        return self.config.name

    @abstractmethod
    async def send(self, message: Message, delivery: Delivery) -> None:
        """Deliver ``message`` once; raise DeliveryError on failure."""
