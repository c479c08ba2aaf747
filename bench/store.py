"""Storing a poll's new posts: ``Store.commit_run`` on SQLite, in microseconds a post.

Each round makes a fresh database file, syncs one source and commits ``--batches`` runs of ``--batch`` new posts
(about 80 Chinese characters each, a URL, an author and a small ``extra``), the shape of a busy poll. The figure is
the time inside ``commit_run`` (select of known ids, insert, source and run-log update, commit) divided by the posts.
Rounds are independent; all are printed so the spread shows. To compare two versions, run this script in each
checkout back to back.

Nothing is asserted. Run:  python bench/store.py [--batch 2000] [--batches 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.db import Store, make_engine, upgrade  # noqa: E402
from monitor.normalize import Post, content_hash  # noqa: E402

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def one_round(batch: int, batches: int) -> float:
    """Microseconds a post inside ``commit_run`` for one fresh database."""
    with tempfile.TemporaryDirectory(prefix="monitor-store-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        store = Store(engine)
        store.sync_sources([("forum", "rss", "digest")], T0)
        spent = 0.0
        for b in range(batches):
            posts = [Post(source="forum", native_id=f"{b}-{i}", text="充电发烫自动关机，客服拒绝退款。" * 5,
                          fetched_at=T0, published_at=T0 + timedelta(seconds=i), url=f"https://bbs.example/t/{b}-{i}",
                          author=f"用户{i % 500}", content_hash=content_hash("", f"{b}-{i}"), extra={"floor": i})
                     for i in range(batch)]
            started = time.perf_counter()
            store.commit_run("forum", posts, {"page": b}, started_at=T0, finished_at=T0, pages=1)
            spent += time.perf_counter() - started
        engine.dispose()
    return spent / (batch * batches) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = [one_round(args.batch, args.batches) for _ in range(args.rounds)]
    print(f"store: commit_run of {args.batches} x {args.batch:,} new posts on SQLite: "
          + ", ".join(f"{f:.1f}" for f in figures) + f" µs a post (best {min(figures):.1f})")


if __name__ == "__main__":
    main()
