"""Poll footprint: CPU and memory of ``monitor run`` polling N RSS feeds every minute on loopback.

A feed server (a separate process, so its CPU is not counted) serves N distinct feeds of 20 items each. Every feed
answers conditional GETs and gains a new item every 3-7 minutes, so most polls get 304 and about one in five parses
a changed feed, as with real sites. The daemon runs as ``monitor run`` on a temporary SQLite database with the
default http settings; its CPU time (utime+stime from /proc/PID/stat) and memory (VmRSS/VmHWM from /proc/PID/status)
are sampled every second; after ``--duration`` seconds it gets SIGTERM and the figures are printed. The target to
compare with is at most 15 % of one core and 200 MB for 500 sources at 1 minute over 5 minutes. Nothing is asserted.

Per-host limits: the daemon spaces requests to one host (``per_host_interval``, default 1 s) and caps requests in
flight per host (``per_host_concurrency``, default 2). 500 feeds on the single host 127.0.0.1 would be queued behind
one another at 1 s each, 500 s per round for a 60 s interval, and the benchmark would measure the politeness gate,
not the daemon. Lowering the gate to 0 instead would let 500 requests start at once, which no production setup sees.
So each feed gets its own host, as in production, where 500 sources are spread over many sites: all of 127.0.0.0/8
is loopback on Linux, feed i is served on 127.1.x.y (one listening socket per address, one port), and the daemon
keeps the defaults. ``--one-host`` serves everything on 127.0.0.1 instead, with ``per_host_interval: 0`` and
``per_host_concurrency: 8``, for systems where only 127.0.0.1 answers.

Run:  python bench/poll_footprint.py [--sources 500] [--duration 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 20  # items per feed document
NEW_ITEM_EVERY = (180.0, 420.0)  # seconds between new items of one feed: "every few minutes"
TARGET_CPU, TARGET_MB = 15.0, 200.0
#: Loopback traffic must not go through a proxy set in the environment.
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def host_for(i: int, one_host: bool) -> str:
    """The loopback address feed ``i`` is served on."""
    return "127.0.0.1" if one_host else f"127.1.{i // 250}.{i % 250 + 1}"


# -- the feed server (child process) -------------------------------------------------------------------------------
@dataclass
class FeedServer:
    """N feeds with ETags; a feed's document is rebuilt only when it gains an item."""

    n: int
    texts: list[tuple[str, str, str]]
    t0: float = field(default_factory=time.time)
    stats: dict[str, int] = field(default_factory=lambda: {"200": 0, "304": 0, "robots": 0, "other": 0})

    def __post_init__(self) -> None:
        rng = random.Random(42)
        self.period = [rng.uniform(*NEW_ITEM_EVERY) for _ in range(self.n)]
        self.phase = [rng.uniform(0, p) for p in self.period]
        self.cache: dict[int, tuple[int, bytes]] = {}

    def seq(self, i: int, now: float) -> int:
        """Number of the newest item of feed ``i`` at ``now`` (20 items exist at start)."""
        return ITEMS + int((now - self.t0 + self.phase[i]) // self.period[i])

    def published(self, i: int, k: int) -> float:
        """When item ``k`` of feed ``i`` appeared."""
        return self.t0 - self.phase[i] + (k - ITEMS) * self.period[i]

    def document(self, i: int, seq: int) -> bytes:
        """The RSS document of feed ``i`` whose newest item is ``seq``."""
        cached = self.cache.get(i)
        if cached and cached[0] == seq:
            return cached[1]
        rows = []
        for k in range(seq, seq - ITEMS, -1):
            author, title, text = self.texts[(i * 7 + k) % len(self.texts)]
            date = email.utils.formatdate(self.published(i, k), localtime=False, usegmt=True)
            rows.append(f"<item><title>{escape(title)}</title><link>http://feeds.example/{i}/{k}</link>"
                        f"<guid isPermaLink=\"false\">feed{i}-{k}</guid><dc:creator>{escape(author)}</dc:creator>"
                        f"<pubDate>{date}</pubDate><description>{escape(text)}</description></item>")
        body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
                f"<title>Feed {i}</title><link>http://feeds.example/{i}</link><description>bench</description>"
                + "\n".join(rows) + "</channel></rss>").encode()
        self.cache[i] = (seq, body)
        return body

    def respond(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Answer one GET."""
        path = target.split("?", 1)[0]
        if path == "/robots.txt":
            self.stats["robots"] += 1
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"
        if path == "/__stats":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.stats).encode()
        if path.startswith("/feed/") and path.endswith(".xml") and path[6:-4].isdigit() and int(path[6:-4]) < self.n:
            i = int(path[6:-4])
            seq = self.seq(i, time.time())
            etag = f'"f{i}-{seq}"'
            validators = {"ETag": etag, "Last-Modified": email.utils.formatdate(self.published(i, seq), usegmt=True)}
            if headers.get("if-none-match") == etag:
                self.stats["304"] += 1
                return 304, validators, b""
            self.stats["200"] += 1
            return 200, {"Content-Type": "application/rss+xml; charset=utf-8", **validators}, self.document(i, seq)
        self.stats["other"] += 1
        return 404, {"Content-Type": "text/plain"}, b"not found"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection."""
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                status, extra, body = self.respond(target, headers)
                reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
                out = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


async def serve(n: int, one_host: bool, port_file: Path) -> None:
    """Serve until SIGTERM; write the port to ``port_file`` once listening."""
    texts = []
    for line in (ROOT / "monitor" / "demo" / "posts.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            texts.append((d["author"], d["title"], d["text"]))
    server = FeedServer(n, texts)
    hosts = sorted({host_for(i, one_host) for i in range(n)})
    for _attempt in range(10):  # find a port free on every address
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            srv = await asyncio.start_server(server.handle, host=hosts, port=port, backlog=1024)
            break
        except OSError:
            continue
    else:
        raise SystemExit("no port free on every loopback address")
    port_file.write_text(str(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with srv:
        await stop.wait()


# -- the measurement -----------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and Threads of ``pid``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def write_config(path: Path, db: Path, n: int, port: int, one_host: bool) -> None:
    """A config with ``n`` rss sources at 1 minute, default http settings (per-host ones only with --one-host)."""
    lines = ["timezone: Asia/Shanghai", f"database: {{url: {json.dumps('sqlite:///' + str(db))}}}",
             "log: {level: info, format: text}"]
    if one_host:
        lines.append("http: {per_host_interval: 0s, per_host_concurrency: 8}")
    lines.append("sources:")
    lines += [f"  - {{name: feed-{i:04d}, type: rss, url: 'http://{host_for(i, one_host)}:{port}/feed/{i}.xml', "
              f"interval: 1m}}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure(args: argparse.Namespace) -> None:
    """Start the feed server and the daemon, sample, stop, print."""
    work = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    port_file = work / "port"
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--sources", str(args.sources),
                               "--port-file", str(port_file)] + (["--one-host"] if args.one_host else []))
    daemon: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the feed server did not start (exit status {server.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text())
        db, config = work / "bench.db", work / "config.yaml"
        write_config(config, db, args.sources, port, args.one_host)
        log = open(work / "daemon.log", "wb")  # noqa: SIM115 - closed in finally
        started = time.monotonic()
        daemon = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)], cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT, env=NO_PROXY_ENV)
        samples: list[tuple[float, float, int]] = []  # (elapsed, cpu seconds, rss kB)
        peak = {"VmHWM": 0, "Threads": 0}
        while time.monotonic() - started < args.duration and daemon.poll() is None:
            try:
                user, system = cpu_seconds(daemon.pid)
                mem = memory_kb(daemon.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            samples.append((time.monotonic() - started, user + system, mem.get("VmRSS", 0)))
            peak = {k: max(peak[k], mem.get(k, 0)) for k in peak}
            time.sleep(1.0)
        if daemon.poll() is not None:
            raise SystemExit(f"monitor run exited early with status {daemon.returncode}; see {work / 'daemon.log'}")
        user, system = cpu_seconds(daemon.pid)
        elapsed = time.monotonic() - started
        stop_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
        stop_s = time.monotonic() - stop_at
        log.close()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{host_for(0, args.one_host)}:{port}/__stats", timeout=5) as resp:
            served = json.loads(resp.read())
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=10)
        if server.poll() is None:
            server.kill()

    with contextlib.closing(sqlite3.connect(db)) as conn:
        runs = dict(conn.execute("SELECT status, count(*) FROM source_runs GROUP BY status").fetchall())
        posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        failing = conn.execute("SELECT count(*) FROM sources WHERE status NOT IN ('ok', 'new')").fetchone()[0]
        errors = conn.execute("SELECT error, count(*) FROM source_runs WHERE status != 'ok' GROUP BY error "
                              "ORDER BY 2 DESC LIMIT 3").fetchall()
        per_source = [r[0] for r in conn.execute("SELECT count(*) FROM source_runs GROUP BY source_id")]
    log_text = (work / "daemon.log").read_text(encoding="utf-8", errors="replace")
    warnings = sum(1 for line in log_text.splitlines() if "level=warning" in line or "level=error" in line)
    skipped = log_text.count("source.still_running")

    cpu = user + system
    share = 100 * cpu / elapsed
    after = [s for s in samples if s[0] >= 60]
    steady = 100 * (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0]) if len(after) > 1 else float("nan")
    total_polls = sum(runs.values())
    print(f"poll_footprint: {args.sources} rss sources, interval 1m (default jitter 6s), {elapsed:.0f} s, "
          f"{'one host 127.0.0.1' if args.one_host else 'each feed on its own loopback host (127.1.x.y)'}")
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} cores; feed server in a separate process")
    print(f"  polls completed:   {total_polls} ({', '.join(f'{k} {v}' for k, v in sorted(runs.items()))}); "
          f"per source min/median/max {min(per_source, default=0)}/{statistics.median(per_source or [0]):.0f}/"
          f"{max(per_source, default=0)}")
    print(f"  server answered:   200 x{served['200']}, 304 x{served['304']}, robots.txt x{served['robots']}, "
          f"other x{served['other']}")
    print(f"  posts stored:      {posts}")
    print(f"  failures:          {total_polls - runs.get('ok', 0)} failed runs, {failing} sources not ok at the end, "
          f"{warnings} warning/error log lines, {skipped} skipped (still running)")
    for error, count in errors:
        print(f"    {count} x {error[:150]}")
    print(f"  CPU:               {cpu:.1f} s (user {user:.1f}, system {system:.1f}) over {elapsed:.0f} s = "
          f"{share:.1f} % of one core")
    print(f"  CPU after 60 s:    {steady:.1f} % of one core (start-up and the first full parse excluded)")
    print(f"  memory:            peak RSS (VmHWM) {peak['VmHWM'] / 1024:.1f} MB, RSS at end "
          f"{samples[-1][2] / 1024:.1f} MB, threads {peak['Threads']}")
    minutes = []
    for m in range(1, int(elapsed // 60) + 1):
        window = [s for s in samples if m * 60 - 60 <= s[0] <= m * 60]
        if len(window) > 1:
            minutes.append(f"{100 * (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]):.1f}%/"
                           f"{window[-1][2] / 1024:.0f}MB")
    print(f"  per minute:        {'  '.join(minutes)}  (CPU share / RSS)")
    print(f"  SIGTERM:           exit status {code} after {stop_s:.1f} s")
    verdict = "met" if share <= TARGET_CPU and peak["VmHWM"] / 1024 <= TARGET_MB else "MISSED"
    print(f"  target ≤ {TARGET_CPU:g} % of a core and ≤ {TARGET_MB:g} MB: {verdict}")
    if args.keep:
        print(f"  (database, config and daemon log kept in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds to sample the daemon")
    parser.add_argument("--one-host", action="store_true", help="serve every feed on 127.0.0.1 (see the docstring)")
    parser.add_argument("--keep", action="store_true", help="keep the database, config and daemon log")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.sources, args.one_host, args.port_file))
    else:
        measure(args)


if __name__ == "__main__":
    main()
