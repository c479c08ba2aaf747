"""The ``alerts:`` and ``queue:`` sections: notification timing, routes, quiet hours, silences, SLA policy.

Channels themselves are the top-level ``channels:`` list, validated kind by kind like sources (each channel kind
brings its own model). Cross-references (a route naming a channel that does not exist) are checked in
``monitor.config.parse_config``, where both are known.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.analysis.surge import SEVERITIES
from monitor.durations import Duration

Severity = Literal["blue", "yellow", "orange", "red"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteMatch(_Section):
    """What a route applies to; an empty list matches anything."""

    watches: list[str] = Field(default_factory=list, description="incident is about one of these watches")
    sources: list[str] = Field(default_factory=list, description="incident has posts from one of these sources")
    categories: list[str] = Field(default_factory=list, description="complaint category of the incident")
    min_severity: Severity = Field(default="blue", description="lowest severity the route takes")


class RouteConfig(_Section):
    """One routing rule: matching notifications go to ``channels``; the first match wins unless ``continue``."""

    match: RouteMatch = Field(default_factory=RouteMatch)
    channels: list[str] = Field(min_length=1, description="channel names")
    continue_: bool = Field(default=False, alias="continue",
                            description="also try the following routes after this one matched")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class QuietHours(_Section):
    """At night only the top severities get through at once; the rest is delivered when quiet hours end."""

    start: str = Field(default="23:00", description="HH:MM in the display timezone")
    end: str = Field(default="08:00", description="HH:MM in the display timezone")
    min_severity: Severity = Field(default="red", description="severities at or above this are sent at night")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f"not a time of day: {v!r}; write it like 23:00")
        return f"{int(m.group(1)):02d}:{m.group(2)}"


class SilenceConfig(_Section):
    """A standing silence from the config (silences can also be added at run time: ``monitor silences add``)."""

    watch: str | None = None
    source: str | None = None
    keyword: str | None = None
    until: str | None = Field(default=None, description="ISO 8601 date-time; none = until removed from the config")
    comment: str = ""

    @model_validator(mode="after")
    def _something(self) -> SilenceConfig:
        if not (self.watch or self.source or self.keyword):
            raise ValueError("a silence needs at least one of watch, source or keyword")
        return self


class AlertsConfig(_Section):
    """Notification policy, in the spirit of Alertmanager: group, then notify on escalation or repeat, never more."""

    console_url: str = Field(default="http://127.0.0.1:8080",
                             description="base URL of the web console, for links in messages")
    group_wait: Duration = Field(default=30.0, description="wait after an incident opens, to group what follows")
    group_interval: Duration = Field(default=300.0, description="at least this long between two messages about "
                                                                "one incident")
    repeat_interval: Duration = Field(default=4 * 3600.0, description="remind about an open incident this often")
    min_severity: Severity = Field(default="blue", description="incidents below this are recorded, not sent")
    routes: list[RouteConfig] = Field(default_factory=list)
    default_channels: list[str] | None = Field(default=None, description="channels for what no route matches; "
                                                                         "default: every enabled channel")
    quiet_hours: QuietHours | None = None
    silences: list[SilenceConfig] = Field(default_factory=list)
    retry_backoff: Duration = Field(default=10.0, description="first retry delay of a failed delivery; doubles")
    retry_backoff_max: Duration = Field(default=600.0, description="longest delay between two retries")
    give_up_after: Duration = Field(default=72 * 3600.0,
                                    description="a message still undelivered after this long is marked failed")


class SlaPolicy(_Section):
    """Time limits for one severity, counted from the ticket's registration."""

    acknowledge: Duration = Field(default=2 * 3600.0, description="受理: someone takes the ticket")
    respond: Duration = Field(default=24 * 3600.0, description="first response to the complainant")
    verify: Duration = Field(default=48 * 3600.0, description="核实 done")
    resolve: Duration = Field(default=72 * 3600.0, description="处理 done: a solution given")


class PortalTickets(_Section):
    """One ticket per complaint-portal item about a watched brand."""

    sources: list[str] = Field(default_factory=list, description="complaint-portal sources (e.g. heimao)")
    watches: list[str] = Field(default_factory=list, description="only items matching these watches; empty = any")


class ExternalQueue(_Section):
    """Push tickets to another ticketing system (generic JSON, signed like the webhook channel)."""

    url: str
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class QueueConfig(_Section):
    """The complaint queue: which incidents become tickets, SLA clocks, reminders and escalation."""

    enabled: bool = True
    min_severity: Severity = Field(default="blue", description="incidents at or above this open a ticket")
    sla: dict[str, SlaPolicy] = Field(default_factory=lambda: {"default": SlaPolicy()},
                                      description="per severity (blue/yellow/orange/red) or 'default'")
    remind_channels: list[str] | None = Field(default=None, description="where overdue reminders go; default: "
                                                                        "the incident's route")
    escalate_after: Duration = Field(default=2 * 3600.0, description="still overdue this long after the reminder:"
                                                                     " escalate")
    escalate_channels: list[str] | None = Field(default=None, description="where escalations go; default: "
                                                                          "remind channels")
    reopen_within: Duration = Field(default=7 * 86400.0, description="a closed ticket reopens if its topic flares "
                                                                     "up within this long")
    portal: PortalTickets = Field(default_factory=PortalTickets)
    public_progress: bool = Field(default=False, description="give each ticket an unguessable public link showing "
                                                             "its stage and promised times to the complainant")
    external: ExternalQueue | None = None

    @field_validator("sla")
    @classmethod
    def _sla_keys(cls, v: dict[str, SlaPolicy]) -> dict[str, SlaPolicy]:
        bad = [k for k in v if k != "default" and k not in SEVERITIES]
        if bad:
            raise ValueError(f"unknown severity {bad[0]!r} in sla; use default, {', '.join(SEVERITIES)}")
        return v

    def policy(self, severity: str) -> SlaPolicy:
        """The SLA for ``severity``: its own entry, else ``default``, else the team's standard limits."""
        return self.sla.get(severity) or self.sla.get("default") or SlaPolicy()
