"""A real HTTP server on 127.0.0.1 for tests: routes serve saved pages, slow bodies, errors, redirects.

Each route is a function ``(request) -> Response``; every request is recorded so tests can assert on headers.
"""

from __future__ import annotations

import gzip as gzip_module
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""  # a POST's body (empty for GET)


@dataclass
class Response:
    """What a route answers. ``chunks`` streams a body slowly (delay seconds between chunks)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunks: Iterable[bytes] | None = None
    chunk_delay: float = 0.0
    gzip: bool = False


Route = Callable[[Request], Response]


class LoopbackServer:
    """Serves registered routes on an ephemeral port of 127.0.0.1."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self._serve("GET", b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._serve("POST", self.rfile.read(length) if length else b"")

            def _serve(self, method: str, body: bytes) -> None:
                req = Request(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(req)
                    route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                resp = route(req) if route else Response(404, b"not found")
                if resp.delay:
                    time.sleep(resp.delay)
                body = resp.body
                headers = dict(resp.headers)
                if resp.gzip:
                    body = gzip_module.compress(body)
                    headers["Content-Encoding"] = "gzip"
                try:
                    self.send_response(resp.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if resp.chunks is not None:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in resp.chunks:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                            if resp.chunk_delay:
                                time.sleep(resp.chunk_delay)
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path``."""
        return self.base + path

    def route(self, path: str, handler: Route | Response) -> None:
        """Serve ``handler`` (a Response, or a function of the request) at ``path``."""
        with self._lock:
            if isinstance(handler, Response):
                fixed: Response = handler
                self.routes[path] = lambda _r: fixed
            else:
                self.routes[path] = handler

    def serve_file(self, path: str, file: Path, content_type: str) -> None:
        """Serve a saved page."""
        self.route(path, Response(200, file.read_bytes(), {"Content-Type": content_type}))

    def hits(self, path: str) -> list[Request]:
        """Requests received for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def start(self) -> LoopbackServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
