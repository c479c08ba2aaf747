"""``monitor demo``: a local site publishing made-up posts, watched by the real daemon, new posts printed live.

Nothing leaves 127.0.0.1. The demo writes an ordinary config file pointing at the site (printed at start, so it
doubles as an example), runs the same :class:`~monitor.daemon.Daemon` as ``monitor run``, and prints every post the
daemon stores, as it stores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from monitor.demo.site import FEEDS, DemoSite

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.runner import RunOutcome

#: How often the demo polls each feed: the smallest interval monitor allows.
DEMO_INTERVAL = "30s"
SNIPPET = 44  # characters of a post shown on its line (CJK characters are two columns wide)


def write_config(path: Path, site_base: str, db: Path) -> None:
    """Write the demo's config file: one rss source per demo feed, polled every 30 s."""
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever the path holds
    lines = [
        "# Written by `monitor demo`: the demo site's feeds. A starting point for your own config.yaml.",
        "timezone: Asia/Shanghai",
        "database:",
        f"  url: {q('sqlite:///' + str(db))}",
        "log:",
        "  level: warning      # the demo prints the posts itself; only problems go to stderr",
        "http:",
        "  # Every demo feed is on one local host; a real site keeps the default 1s between requests.",
        "  per_host_interval: 0.2s",
        "  timeout: 10s",
        "sources:",
    ]
    for feed in FEEDS:
        lines += [f"  - name: {feed.name}      # {feed.label}", "    type: rss",
                  f"    url: {q(site_base + feed.path)}", f"    interval: {DEMO_INTERVAL}"]
        if feed.dates == "naive":
            lines.append("    timezone: Asia/Shanghai   # its dates carry no UTC offset, as on many Chinese forums")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _snippet(title: str, text: str, width: int = SNIPPET) -> str:
    body = title if not text or text.startswith(title) else f"{title} | {text}" if title else text
    body = " ".join(body.split())
    return body if len(body) <= width else body[: width - 1] + "…"


class _Printer:
    """Prints each run's new posts, oldest first, and counts them per source."""

    def __init__(self, config: Config, out: TextIO) -> None:
        self.tz = config.tz
        self.out = out
        self.width = max(len(feed.name) for feed in FEEDS)
        self.stored: Counter[str] = Counter()
        self.not_modified = 0

    def show(self, outcome: RunOutcome) -> None:
        """Print one run's outcome."""
        name = outcome.source.ljust(self.width)
        if outcome.status == "ok":
            self.stored[outcome.source] += len(outcome.new_posts)
            if outcome.pages == 0:  # the conditional GET got 304: the feed did not change since the last poll
                self.not_modified += 1
                self._line(f"[{datetime.now(self.tz):%H:%M:%S}] {name}  (no change: 304 Not Modified)")
            for post in sorted(outcome.new_posts, key=lambda p: p.published_at):
                when = post.published_at.astimezone(self.tz)
                self._line(f"[{when:%H:%M:%S}] {name}  {post.author or '匿名'}: {_snippet(post.title, post.text)}")
        elif outcome.status != "skipped":
            self._line(f"[{datetime.now(self.tz):%H:%M:%S}] {name}  ! {outcome.status}: {outcome.error}")

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)  # flushed per line: the demo is often piped into tee or less


async def _watch(config: Config, printer: _Printer, duration: float | None) -> None:
    from monitor.daemon import Daemon

    daemon = Daemon(config, first_run_spread=0)  # the first poll of every feed right away
    daemon.outcomes = asyncio.Queue()
    loop = asyncio.get_running_loop()
    # The daemon installs its own SIGINT/SIGTERM handlers once started; these cover the second before that.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.stop)
    if duration is not None:
        loop.call_later(duration, daemon.stop)

    async def show() -> None:
        assert daemon.outcomes is not None
        while True:
            printer.show(await daemon.outcomes.get())

    shower = asyncio.create_task(show())
    try:
        await daemon.run()
    finally:
        shower.cancel()
        while not daemon.outcomes.empty():  # runs that finished while shutting down
            printer.show(daemon.outcomes.get_nowait())


def run_demo(*, duration: float | None = None, db: Path | None = None, port: int = 0,
             out: TextIO | None = None) -> int:
    """Run the demo until ``duration`` seconds pass or SIGINT/SIGTERM; return the exit status."""
    from monitor.config import load_config
    from monitor.logs import setup_logging

    out = out or sys.stdout
    try:
        site = DemoSite(port).start()
    except OSError as exc:
        print(f"error: cannot serve the demo site on 127.0.0.1:{port} ({exc.strerror}); try another --port",
              file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="monitor-demo-"))
    started = time.monotonic()
    printer: _Printer | None = None
    try:
        database = db.expanduser().resolve() if db else folder / "demo.db"
        config_path = folder / "config.yaml"
        write_config(config_path, site.base, database)
        config = load_config(config_path)
        setup_logging(config.log.level, config.log.format, config.secrets)
        printer = _Printer(config, out)
        print(f"monitor demo: made-up posts about 鲸帆, a fictional phone brand, on {site.base}/\n"
              f"  feeds: {', '.join(f'{f.name} ({f.label})' for f in FEEDS)}\n"
              f"  each feed is polled every {DEMO_INTERVAL}; the site adds a post every few seconds\n"
              f"  config: {config_path}\n  database: {database}\n"
              f"  new posts are printed as they are stored; "
              f"{'stopping after ' + format(duration, 'g') + ' s' if duration else 'Ctrl-C to stop'}\n",
              file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the loop's handlers were installed
            asyncio.run(_watch(config, printer, duration))
    finally:
        site.stop()
        if printer is not None:
            total = sum(printer.stored.values())
            served = sum(v for k, v in site.stats.items() if k.endswith((" 200", " 304")))
            print(f"\nstopped after {time.monotonic() - started:.0f} s: {total} posts stored from "
                  f"{len(+printer.stored)} feeds; the site answered {served} feed requests, "
                  f"{sum(v for k, v in site.stats.items() if k.endswith(' 304'))} of them 304 Not Modified"
                  + (f"\nposts kept in {database}" if db else ""), file=out, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


__all__ = ["FEEDS", "DemoSite", "run_demo", "write_config"]
