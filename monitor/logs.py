"""Structured log lines (``key=value`` text or JSON), with secrets scrubbed from every line.

Call :func:`event` for machine-readable events: ``event(log, "source.failed", source="x", error="...")``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

_handler: logging.Handler | None = None
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log event ``name`` with structured ``fields``."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool, secrets: Iterable[str]) -> None:
        super().__init__()
        self.as_json = as_json
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        fields: dict[str, Any] = dict(getattr(record, "fields", {}) or {})
        msg = record.getMessage()
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.as_json:
            line = json.dumps({"ts": ts, "level": record.levelname.lower(), "logger": record.name, "event": msg,
                               **fields}, ensure_ascii=False, default=str)
        else:
            parts = [ts, f"level={record.levelname.lower()}", f"logger={record.name}", f"event={_value(msg)}"]
            parts += [f"{k}={_value(v)}" for k, v in fields.items()]
            line = " ".join(parts)
        for secret in self.secrets:  # a token that slipped into an error message never reaches the log
            line = line.replace(secret, "***")
        return line


def setup_logging(level: str = "info", fmt: str = "text", secrets: Iterable[str] = (), stream: Any = None) -> None:
    """Configure the root logger once (called again on reload with the new level and secrets)."""
    global _handler
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json", secrets))
    root = logging.getLogger()
    if _handler is not None:  # replace only our own handler: others (pytest's, an embedding app's) stay
        root.removeHandler(_handler)
    _handler = handler
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # Libraries stay quiet unless something is wrong; their per-request lines would flood a 500-source daemon.
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic", "charset_normalizer", "tzlocal", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
