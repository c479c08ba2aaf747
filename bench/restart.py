"""Restart time of the analysis: how long ``AnalysisStage.start`` takes on a database holding a busy stream.

A start re-learns baselines from 14 days of history, takes back open and lately quiet incidents and re-reads the
topic window (6 h, at most ``REREAD_POSTS`` posts) through the analysis. This script replays ``--hours`` of real
Weibo posts (the labelled sets in ../shared/data/sentiment, ``--per-hour`` an hour, with a complaint cascade in
the last hours so there are incidents to take back) into a temporary SQLite database with ``monitor replay``'s
code, then times a fresh ``AnalysisStage.start`` on it, ``--repeat`` times. Nothing is asserted.

Run:  python bench/restart.py [--hours 12] [--per-hour 5000] [--repeat 3]
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CST = timezone(timedelta(hours=8))
START = datetime(2026, 9, 7, 0, 0, tzinfo=CST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=12)
    parser.add_argument("--per-hour", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from detection import background_texts, roots

    from monitor.analysis.stage import REREAD_POSTS, AnalysisStage
    from monitor.config import parse_config
    from monitor.db import Store, make_engine
    from monitor.replay import replay

    rnd = random.Random(5)
    texts = background_texts()
    complaints = roots()[0]
    rows = []
    for i in range(args.hours * args.per_hour):
        when = START + timedelta(seconds=rnd.uniform(0, args.hours * 3600))
        rows.append({"id": f"b{i}", "source": rnd.choice(["weibo", "tieba"]), "author": f"a{rnd.randrange(50_000)}",
                     "text": rnd.choice(texts), "published_at": when.isoformat()})
    root = rnd.choice(complaints)
    wave = START + timedelta(hours=args.hours - 3)
    rows += [{"id": f"w{i}", "source": "weibo", "author": f"w{i}", "text": f"同样遇到了//@楼主:{root}",
              "published_at": (wave + timedelta(seconds=20 * i)).isoformat()} for i in range(300)]
    config = parse_config("sources: []\n")
    with tempfile.TemporaryDirectory(prefix="monitor-restart-") as tmp:
        stream = Path(tmp) / "in.jsonl"
        stream.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        db = f"sqlite:///{Path(tmp) / 'm.db'}"
        result = replay(config, stream, Path(tmp) / "out.jsonl", db_url=db, progress=io.StringIO())
        print(f"restart: {result.posts:,} posts over {args.hours} h replayed into SQLite, {result.incidents} "
              f"incidents; the topic window re-read at start holds at most {REREAD_POSTS:,} posts")
        now = START + timedelta(hours=args.hours, minutes=5)
        times = []
        for _ in range(args.repeat):
            engine = make_engine(db)
            stage = AnalysisStage(config, Store(engine))
            t = time.perf_counter()
            stage.start(now)
            times.append(time.perf_counter() - t)
            kept = len(stage.tracker.open) + len(stage.tracker._quiet)
            engine.dispose()
        print(f"  AnalysisStage.start: median {statistics.median(times):.2f} s (min {min(times):.2f}, max "
              f"{max(times):.2f}) over {args.repeat} starts; {kept} incidents taken back")


if __name__ == "__main__":
    main()
