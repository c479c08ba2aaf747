"""The console's API under data: how long the pages' requests take on a database holding a week of posts.

A week of everyday posts (``--per-day`` a day on two sources) and, in the last hour, a complaint surge about the
watched brand are replayed through the real pipeline into a SQLite file; the real app is served by uvicorn on
127.0.0.1 and each request a page makes is timed ``--repeat`` times with a bearer token (what a page does every
10 s during a crisis). Nothing is asserted.

Run:  python bench/web.py [--per-day 10000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from monitor.config import parse_config  # noqa: E402
from monitor.db import make_engine  # noqa: E402
from monitor.replay import replay  # noqa: E402
from monitor.web.app import create_app  # noqa: E402
from monitor.web.auth import hash_password  # noqa: E402
from tests.web_helpers import EVERYDAY, GRIEVANCE, serve  # noqa: E402

TOKEN = "bench-token-0123456789"


def stream(per_day: int, now: datetime) -> list[dict[str, object]]:
    """A week of background and a one-hour surge at the end."""
    rnd = random.Random(7)
    start = now - timedelta(days=7)
    rows: list[dict[str, object]] = []
    total = per_day * 7
    for i in range(total):
        at = start + timedelta(seconds=i * 7 * 86400 / total)
        rows.append({"id": f"bg{i}", "source": rnd.choice(["weibo", "tieba"]), "author": f"路人{rnd.randrange(5000)}",
                     "text": f"{rnd.choice(EVERYDAY)} {i}", "published_at": at.isoformat()})
    for i in range(60):
        rows.append({"id": f"w{i}", "source": ["weibo", "tieba"][i % 2], "author": f"买家{i}",
                     "text": f"{rnd.choice(GRIEVANCE)} #{i}", "url": f"https://example.com/p/{i}",
                     "published_at": (now - timedelta(minutes=58) + timedelta(seconds=55 * i)).isoformat()})
    return rows


def main() -> None:
    """Print median and 90th-percentile latency per request."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-day", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'web.db'}"
        config = parse_config(
            f"database: {{url: '{db}'}}\ntimezone: Asia/Shanghai\n"
            "sources:\n  - {name: weibo, type: rss, url: 'http://127.0.0.1:9/w.xml'}\n"
            "  - {name: tieba, type: rss, url: 'http://127.0.0.1:9/t.xml'}\n"
            "watches:\n  - {name: 鲸帆, keywords: [鲸帆]}\n"
            f"web: {{users: [{{name: bench, role: admin, password_hash: '{hash_password('x')}'}}], "
            f"tokens: [{{name: bench, role: admin, token_hash: '{hash_password(TOKEN)}'}}]}}\n")
        rows = stream(args.per_day, datetime.now(UTC))
        src = Path(tmp) / "stream.jsonl"
        src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        t = time.perf_counter()
        replay(config, src, Path(tmp) / "incidents.jsonl", db_url=db, progress=io.StringIO())
        print(f"database: {len(rows):,} posts replayed in {time.perf_counter() - t:.0f} s")
        engine = make_engine(db)
        app = create_app(config, engine)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with serve(app) as base, httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            incidents = client.get("/api/incidents", params={"status": "all"}).json()["items"]
            tickets = client.get("/api/tickets").json()["items"]
            paths = ["/api/dashboard?range=24h", "/api/dashboard?range=7d", "/api/incidents?status=all",
                     "/api/tickets", "/api/sources"]
            if incidents:
                paths.append(f"/api/incidents/{incidents[0]['id']}")
            if tickets:
                paths.append(f"/api/tickets/{tickets[0]['id']}")
            print(f"{len(incidents)} incident(s), {len(tickets)} ticket(s); {args.repeat} requests each")
            for path in paths:
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    r = client.get(path)
                    times.append(time.perf_counter() - t)
                    r.raise_for_status()
                q = statistics.quantiles(times, n=10)
                print(f"  {path:<34} median {statistics.median(times) * 1000:7.1f} ms   p90 {q[8] * 1000:7.1f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
