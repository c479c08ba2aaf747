"""Start-up time: from spawning ``monitor run`` to the first request reaching a loopback feed server.

Each repetition starts the daemon on a fresh temporary SQLite database (so the time includes creating the schema,
the first start of a real install) with one rss source whose jitter is 0, so the first poll is due at once and the
figure measures the process, not the random spread of first polls. The first request is robots.txt; the feed
request follows it. The target to compare with is at most 2 s. Nothing is asserted. Then the heaviest imports of
the daemon's modules, as ``python -X importtime`` reports them.

Run:  python bench/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEED = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b'<item><guid>1</guid><title>\xe7\xac\xac\xe4\xb8\x80\xe6\x9d\xa1</title></item></channel></rss>')
#: Loopback traffic must not go through a proxy set in the environment.
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


class Server:
    """A loopback server that records when the first request and the first feed request arrive."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.first_feed: float | None = None
        self.feed_seen = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                now = time.monotonic()
                if server.first is None:
                    server.first = now
                if self.path == "/feed.xml":
                    body, kind = FEED, "application/rss+xml"
                    if server.first_feed is None:
                        server.first_feed = now
                        server.feed_seen.set()
                else:
                    body, kind = b"User-agent: *\nAllow: /\n", "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self) -> None:
        """Forget the previous repetition."""
        self.first = self.first_feed = None
        self.feed_seen.clear()


def once(server: Server, work: Path) -> tuple[float, float]:
    """Seconds from spawn to the first request and to the first feed request."""
    for stale in work.glob("m.db*"):
        stale.unlink()
    config = work / "config.yaml"
    config.write_text(f"database: {{url: {json.dumps('sqlite:///' + str(work / 'm.db'))}}}\n"
                      f"sources:\n  - {{name: one, type: rss, url: 'http://127.0.0.1:{server.httpd.server_port}"
                      f"/feed.xml', interval: 30s, jitter: 0s}}\n"
                      # More config to compare with, e.g. STARTUP_EXTRA='web: {enabled: false}' (the console off).
                      + os.environ.get("STARTUP_EXTRA", ""), encoding="utf-8")
    server.reset()
    spawned = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=NO_PROXY_ENV)
    try:
        if not server.feed_seen.wait(30):
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"no feed request within 30 s: {stderr}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert server.first is not None and server.first_feed is not None
    return server.first - spawned, server.first_feed - spawned


def import_costs(top: int) -> tuple[float, list[tuple[float, str]]]:
    """Total and top cumulative import times (ms) of the modules ``monitor run`` loads, from -X importtime."""
    code = "import monitor.cli, monitor.daemon, sources.rss"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if m and not m.group(3):  # a top-level import, not one nested inside another
            rows.append((int(m.group(2)) / 1000, m.group(4)))
    total = sum(ms for ms, _ in rows)
    return total, sorted(rows, reverse=True)[:top]


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="how many imports to list")
    args = parser.parse_args()
    server = Server()
    work = Path(tempfile.mkdtemp(prefix="monitor-startup-"))
    firsts, feeds = [], []
    try:
        for _ in range(args.repeat):
            first, feed = once(server, work)
            firsts.append(first)
            feeds.append(feed)
    finally:
        server.httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"startup: spawn of `monitor run` (fresh SQLite database, one rss source, jitter 0) to first request, "
          f"{args.repeat} runs, python {sys.version.split()[0]}")
    for label, values in (("first request (robots.txt)", firsts), ("first feed request", feeds)):
        print(f"  {label:<27} min {min(values):.2f} s  median {statistics.median(values):.2f} s  "
              f"max {max(values):.2f} s")
    verdict = "met" if statistics.median(feeds) <= 2.0 and max(feeds) <= 2.0 else "MISSED"
    print(f"  target ≤ 2 s to the first feed request: {verdict}")

    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "monitor.cli", "--version"], cwd=ROOT, capture_output=True, check=True)
    print(f"  `monitor --version` (CLI start-up alone): {time.monotonic() - started:.2f} s")
    total, heaviest = import_costs(args.top)
    print(f"imports of monitor.cli + monitor.daemon + sources.rss: {total:.0f} ms in all (-X importtime, one run); "
          f"heaviest top-level imports (cumulative):")
    for ms, name in heaviest:
        print(f"  {ms:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
