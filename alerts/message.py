"""The channel-neutral notification: what every channel renders in its own format.

A :class:`Message` is built once, when the notification is written to the outbox, and stored there as JSON; each
channel turns it into its own body (markdown, card, e-mail) at delivery time with a pure function. Retries of one
delivery therefore send the same content, whatever happened to the incident since.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Severities from lowest to highest (the detector's levels) and how they are shown.
SEVERITY_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
SEVERITY_EMOJI = {"blue": "🔵", "yellow": "🟡", "orange": "🟠", "red": "🔴"}


@dataclass(frozen=True)
class PostRef:
    """A representative post quoted in a message."""

    text: str
    url: str = ""
    author: str = ""
    source: str = ""
    published_at: str = ""  # ISO 8601 with offset, in the display timezone


@dataclass(frozen=True)
class Message:
    """One notification, ready to be rendered by any channel.

    ``kind`` is the event (``incident.opened``, ``incident.escalated``, ``incident.repeat``, ``incident.reflared``,
    ``ticket.created``, ``ticket.overdue``, ``ticket.escalated``, ``test``); ``title`` starts with the severity;
    ``facts`` are the numbers as (label, value) pairs; ``reasons`` are sentences saying why; ``data`` is the
    structured record (the incident or ticket as JSON) that the generic webhook sends as is.
    """

    kind: str
    severity: str
    title: str
    summary: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    reasons: tuple[str, ...] = ()
    posts: tuple[PostRef, ...] = ()
    link: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the outbox column)."""
        out = asdict(self)
        out["facts"] = [list(f) for f in self.facts]
        out["reasons"] = list(self.reasons)
        out["posts"] = [asdict(p) for p in self.posts]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        """The inverse of :meth:`to_json`."""
        return cls(kind=data["kind"], severity=data["severity"], title=data["title"],
                   summary=data.get("summary", ""),
                   facts=tuple((str(a), str(b)) for a, b in data.get("facts", [])),
                   reasons=tuple(data.get("reasons", [])),
                   posts=tuple(PostRef(**p) for p in data.get("posts", [])),
                   link=data.get("link", ""), data=dict(data.get("data", {})))
