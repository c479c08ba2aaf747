"""A webhook receiver on 127.0.0.1 for delivery tests: records every POST, answers as told, deduplicates on the
delivery id the way a real receiver should."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class Receiver:
    """``status`` is what it answers (change it to simulate an outage); ``delay`` slows every answer."""

    def __init__(self) -> None:
        self.received: list[Received] = []  # every POST, answered or refused
        self.status = 200
        self.delay = 0.0
        self.retry_after: str | None = None
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if outer.delay:
                    time.sleep(outer.delay)
                status = outer.status
                with outer._lock:
                    outer.received.append(Received(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                if outer.retry_after and status >= 400:
                    self.send_header("Retry-After", outer.retry_after)
                self.send_header("Content-Type", "application/json")
                payload = b'{"ok":true}' if status < 300 else b'{"error":"down"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def deliveries(self, path: str | None = None) -> list[str]:
        """Delivery ids accepted (with repeats), in arrival order."""
        with self._lock:
            return [r.headers.get("X-Monitor-Delivery", "") for r in self.received
                    if r.status < 300 and (path is None or r.path == path)]

    def attempts(self, path: str | None = None) -> int:
        """Requests seen, accepted or refused."""
        with self._lock:
            return sum(1 for r in self.received if path is None or r.path == path)
