"""Structured log lines, and secrets scrubbed from every line."""

from __future__ import annotations

import io
import json
import logging

from monitor.logs import event, setup_logging


def _capture(fmt: str, secrets: tuple[str, ...] = ()) -> io.StringIO:
    stream = io.StringIO()
    setup_logging("debug", fmt, secrets, stream=stream)
    return stream


def test_text_lines_are_key_value() -> None:
    """Text format: timestamp, level, logger, event, then key=value fields (quoted when they contain spaces)."""
    out = _capture("text")
    event(logging.getLogger("monitor.t"), "source.failed", logging.WARNING, source="bbs", error="HTTP 500 from x")
    line = out.getvalue().strip()
    assert " level=warning logger=monitor.t event=source.failed source=bbs error=\"HTTP 500 from x\"" in line
    assert line[:4].isdigit() and line.split(" ")[0].endswith("Z")


def test_json_lines_parse() -> None:
    """JSON format: one object per line with the fields at the top level."""
    out = _capture("json")
    event(logging.getLogger("monitor.t"), "source.polled", source="bbs", new=3, problems=["a", "b"])
    record = json.loads(out.getvalue())
    assert record["event"] == "source.polled" and record["new"] == 3 and record["problems"] == ["a", "b"]
    assert record["level"] == "info" and record["logger"] == "monitor.t"


def test_secrets_never_reach_the_log() -> None:
    """A token substituted from the environment is replaced by *** wherever it appears, in both formats."""
    for fmt in ("text", "json"):
        out = _capture(fmt, ("s3cr3t-cookie-value",))
        log = logging.getLogger("monitor.t")
        event(log, "source.failed", error="GET https://x/?token=s3cr3t-cookie-value failed")
        log.warning("cookie s3cr3t-cookie-value rejected")
        text = out.getvalue()
        assert "s3cr3t" not in text and text.count("***") == 2


def teardown_module() -> None:
    """Leave the root logger as pytest expects it."""
    setup_logging("warning")
