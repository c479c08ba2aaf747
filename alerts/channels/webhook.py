"""The generic webhook channel (``type: webhook``), and the HTTP plumbing every HTTP channel shares.

The body is a versioned JSON document (``schema: monitor.notification/1``, see docs/channels.md) carrying the
channel-neutral message as is. With a ``secret`` each request is signed: ``X-Monitor-Signature: sha256=<hex>``
over ``f"{timestamp}.".encode() + raw_body``; :func:`sign` and :func:`verify` are public so receivers and the
external-queue adapter compute exactly the same thing.

The shared helpers (:func:`post`, :func:`check_status`, :func:`json_answer`, :data:`WebhookUrl`) keep one rule for
every HTTP channel: errors name the channel and the host only. Tokens live in webhook paths and query strings,
so neither the full URL nor a secret ever reaches an exception message or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, Field, field_validator

from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError

if TYPE_CHECKING:
    from alerts.message import Message

#: The ``schema`` field of every webhook body; a breaking change of the body gets a new number.
SCHEMA = "monitor.notification/1"
SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
DELIVERY_HEADER = "X-Monitor-Delivery"

# How much of a service's error answer goes into a message: enough to read "invalid_payload", not a whole page.
_ANSWER_CHARS = 200
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP header name (RFC 9110 token)
_RESERVED_HEADERS = {"content-type", "content-length", "host", "transfer-encoding",
                     SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower(), DELIVERY_HEADER.lower()}


def check_webhook_url(value: str) -> str:
    """Config validator: an absolute http(s) URL with a host. The URL is not echoed (it may hold a token)."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError("not a valid URL; write the full https://... address the service gave you") from None
    if parts.scheme not in ("http", "https"):
        shown = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise ValueError(f"must be an http(s) URL (got {shown}); write the full https://... address")
    if not host:
        raise ValueError("has no host; write the full https://host/path address the service gave you")
    if any(c.isspace() for c in value):
        raise ValueError("contains spaces; copy the address again without line breaks or spaces")
    return value


#: A config string that must be an absolute http(s) URL (checked at load time, never echoed in messages).
WebhookUrl = Annotated[str, AfterValidator(check_webhook_url)]


def host_of(url: str) -> str:
    """The host (and port, if any) of ``url``: all an error message may say about a webhook address."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON: the exact bytes sent (and signed)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Monitor-Signature`` value: ``"sha256=" + hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``.

    Binding the timestamp into the MAC lets a receiver refuse replays of an old request.
    """
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int | str, body: bytes, signature: str, *, now: float | None = None,
           tolerance: float = 300.0) -> bool:
    """True when ``signature`` is :func:`sign` of the request (compared in constant time).

    ``timestamp`` is the ``X-Monitor-Timestamp`` header; with ``now`` (unix seconds) a request older or newer than
    ``tolerance`` seconds is refused too, so a captured request cannot be replayed later.
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if now is not None and abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature.strip())


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def where(channel: Channel, url: str) -> str:
    """``dingtalk channel 'ops' (oapi.dingtalk.com)``: how errors name a channel without its token."""
    return f"{channel.kind} channel {channel.name!r} ({host_of(url)})"


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret (URL, path, query, key) replaced by "…"."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of ``url`` that may carry a token (whole URL, path, query, last path segment), for :func:`scrub`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return (url,)
    return (url, parts.path, parts.query, parts.path.rsplit("/", 1)[-1])


async def post(channel: Channel, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    """One POST of ``body`` with the channel's timeout on the shared client.

    A timeout or a network failure becomes a retryable :class:`DeliveryError` naming the channel and host only.
    """
    try:
        return await channel.http.post(url, content=body, headers=dict(headers), timeout=channel.config.timeout)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{where(channel, url)}: no answer within {channel.config.timeout:g}s "
                            f"({type(exc).__name__}); the service or the network is slow, will retry",
                            channel=channel.name, retryable=True) from None
    except httpx.HTTPError as exc:
        detail = scrub(str(exc), *url_secrets(url)) or "no detail"
        raise DeliveryError(f"{where(channel, url)}: request failed ({type(exc).__name__}: {detail}); "
                            f"check the host is reachable from here (DNS, firewall, proxy), will retry",
                            channel=channel.name, retryable=True) from None


def answer_excerpt(response: httpx.Response, url: str) -> str:
    """The start of a response body, for an error message (whitespace folded, tokens scrubbed)."""
    text = " ".join(response.text.split())
    text = scrub(text, *url_secrets(url))
    return text if len(text) <= _ANSWER_CHARS else text[: _ANSWER_CHARS - 1] + "…"


def check_status(channel: Channel, response: httpx.Response, url: str) -> None:
    """Raise DeliveryError unless 2xx: 408/429/5xx are retryable (with Retry-After), other statuses are not."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = parse_retry_after(response.headers.get("retry-after"), channel.clock.now())
    excerpt = answer_excerpt(response, url)
    said = f": {excerpt}" if excerpt else ""
    if status in (408, 429) or status >= 500:
        what = "rate limited" if status == 429 else "temporarily failing"
        raise DeliveryError(f"{where(channel, url)}: HTTP {status}, {what}{said}; will retry",
                            channel=channel.name, retryable=True, retry_after=retry_after, status=status)
    hint = {
        400: "the service refused the body",
        401: "check the credentials or token",
        403: "check the token and the service's allow-list",
        404: "check the webhook address (the hook may have been deleted)",
        410: "the webhook was removed; create a new one",
    }.get(status, "check the channel's configuration")
    if 300 <= status < 400:
        hint = "the address redirects; configure the final address"
    raise DeliveryError(f"{where(channel, url)}: HTTP {status}{said}; {hint}",
                        channel=channel.name, retryable=False, status=status)


def json_answer(channel: Channel, response: httpx.Response, url: str) -> dict[str, Any]:
    """The JSON object a chat service answers; anything else is a retryable DeliveryError (a proxy's error page)."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise DeliveryError(f"{where(channel, url)}: HTTP {response.status_code} with an answer that is not a "
                            f"JSON object ({answer_excerpt(response, url)!r}); a proxy or gateway may be in the "
                            f"way, will retry", channel=channel.name, retryable=True, status=response.status_code)
    return data


def transient_status(channel: Channel, response: httpx.Response, url: str) -> None:
    """For chat services whose errors come as JSON: raise (retryable) on 429 and 5xx only."""
    status = response.status_code
    if status == 429 or status >= 500:
        check_status(channel, response, url)


class WebhookConfig(ChannelConfig):
    """Options of ``type: webhook``."""

    url: WebhookUrl = Field(description="Where to POST the JSON document (http or https).")
    secret: str | None = Field(default=None, description="HMAC-SHA256 key; signs each request when set.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (e.g. Authorization).")

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by monitor itself; remove it")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} contains a line break")
            if not value.isascii():
                raise ValueError(f"the value of header {name!r} is not ASCII; HTTP headers cannot carry it as is")
        return v


class WebhookChannel(Channel):
    """POST ``monitor.notification/1`` JSON to any HTTP endpoint, signed when a secret is set."""

    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[ChannelConfig]] = WebhookConfig
    config: WebhookConfig

    def body(self, message: Message, delivery: Delivery) -> bytes:
        """The exact bytes sent for one attempt (``sent_at`` from the injected clock)."""
        doc = {"schema": SCHEMA, "delivery_id": delivery.id, "key": delivery.key, "attempt": delivery.attempt,
               "kind": message.kind, "sent_at": self.clock.now().astimezone(UTC).isoformat(),
               "message": message.to_json()}
        return dumps(doc)

    async def send(self, message: Message, delivery: Delivery) -> None:
        """POST the document once; 2xx is success."""
        cfg = self.config
        body = self.body(message, delivery)
        timestamp = int(self.clock.now().timestamp())
        headers = dict(cfg.headers)
        headers.update({"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: delivery.id,
                        TIMESTAMP_HEADER: str(timestamp)})
        if cfg.secret:
            headers[SIGNATURE_HEADER] = sign(cfg.secret, timestamp, body)
        response = await post(self, cfg.url, body, headers)
        check_status(self, response, cfg.url)
