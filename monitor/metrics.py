"""Prometheus metrics: what the daemon counts while it runs, and the gauges read from the database at scrape time.

One registry of our own (``REGISTRY``) rather than prometheus_client's global one, so importing a library that
registers its own collectors never changes what ``/metrics`` shows. Counters live for the process: a restart starts
them at zero, which Prometheus' ``rate()`` handles. The ``record_*`` helpers never raise (metrics must not break a
poll or a delivery).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: The registry ``/metrics`` serves (plus the scrape-time gauges of :func:`render`).
REGISTRY = CollectorRegistry(auto_describe=True)

POLLS = Counter("monitor_polls", "Polls of a source by outcome (ok, failing, blocked, layout).",
                ["source", "status"], registry=REGISTRY)
POLL_SECONDS = Histogram("monitor_poll_seconds", "Duration of one poll of a source (fetch, parse, store).",
                         ["source"], registry=REGISTRY,
                         buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
POSTS_INGESTED = Counter("monitor_posts_ingested", "New posts stored, by source.", ["source"], registry=REGISTRY)
INCIDENTS_OPENED = Counter("monitor_incidents_opened", "Incidents opened by the detector, by severity.",
                           ["severity"], registry=REGISTRY)
NOTIFICATIONS = Counter("monitor_notifications", "Delivery attempts by channel: sent, or failed (one per failed "
                        "attempt; the row is retried).", ["channel", "status"], registry=REGISTRY)


def record_poll(source: str, status: str, seconds: float, new_posts: int = 0) -> None:
    """One finished poll (skipped polls are not counted)."""
    with contextlib.suppress(Exception):  # a metric must never fail the poll it describes
        POLLS.labels(source=source, status=status).inc()
        POLL_SECONDS.labels(source=source).observe(max(0.0, seconds))
        if new_posts:
            POSTS_INGESTED.labels(source=source).inc(new_posts)


def record_incident_opened(severity: str) -> None:
    """The detector opened an incident."""
    with contextlib.suppress(Exception):
        INCIDENTS_OPENED.labels(severity=severity).inc()


def record_notification(channel: str, status: str) -> None:
    """A delivery attempt ended: ``sent`` or ``failed``."""
    with contextlib.suppress(Exception):
        NOTIFICATIONS.labels(channel=channel, status=status).inc()


class _Snapshot(Collector):
    """Gauges computed from the database at scrape time (so they are right whichever process wrote the rows)."""

    def __init__(self, backlog: Mapping[str, int], source_status: Mapping[str, str]) -> None:
        self.backlog = backlog
        self.source_status = source_status

    def collect(self) -> Iterable[Metric]:
        """The outbox backlog by status and whether each source's last poll was ok."""
        backlog = GaugeMetricFamily("monitor_outbox_backlog", "Outbox rows by status (pending, sending, failed...).",
                                    labels=["status"])
        for status in sorted(set(self.backlog) | {"pending", "failed"}):
            backlog.add_metric([status], float(self.backlog.get(status, 0)))
        yield backlog
        up = GaugeMetricFamily("monitor_source_up", "1 when the source's last poll was ok, else 0.",
                               labels=["source"])
        for name, status in sorted(self.source_status.items()):
            up.add_metric([name], 1.0 if status == "ok" else 0.0)
        yield up


def render(backlog: Mapping[str, int], source_status: Mapping[str, str]) -> bytes:
    """The Prometheus text exposition: the process's counters and the database gauges given."""
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(backlog, source_status))
    return generate_latest(REGISTRY) + generate_latest(snapshot)
