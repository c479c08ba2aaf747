"""Replay throughput: ``monitor replay``'s own code on the detection benchmark's stream, with and without the
compiled cores, several runs each.

The stream is bench/detection.py's (real Weibo background with a daily rhythm and real CED cascades as bursts; same
``--weeks``, ``--per-day`` and ``--seed``), written once. Each run is a fresh process (so the compiled cores can be
turned off with ``MONITOR_NATIVE=0`` and no run inherits another's warm state) replaying it into a temporary SQLite
database, runs of the two kinds alternating so that a machine slowing down or speeding up meets both alike. Printed:
posts/s of every run (wall clock of the replay itself, as ``monitor replay`` reports it, and the process's CPU
seconds), the median and best of each kind, and whether every run wrote the same incidents (it must: the cores
reproduce the Python step by step). Nothing is asserted.

Run:  python bench/replay.py [--weeks 2] [--per-day 3000] [--seed 7] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from detection import DATA, build_stream  # noqa: E402

#: One replay in a child process: prints posts, replay seconds, CPU seconds and a digest of the incidents written.
CHILD = """
import hashlib, json, os, sys, time
from pathlib import Path
from monitor.analysis.native import missing
from monitor.config import parse_config
from monitor.replay import replay
stream, out = Path(sys.argv[1]), Path(sys.argv[2])
cpu = time.process_time()
result = replay(parse_config("sources: []\\n"), stream, out, progress=open(os.devnull, "w"))
print(json.dumps({"posts": result.posts, "seconds": result.seconds, "cpu": time.process_time() - cpu,
                  "incidents": result.incidents, "missing": missing(),
                  "digest": hashlib.sha256(out.read_bytes()).hexdigest()[:16]}))
"""


def run_once(stream: Path, out: Path, native: bool) -> dict[str, Any]:
    """One replay in a fresh interpreter, with the compiled cores on or off."""
    env = {**os.environ, "MONITOR_NATIVE": "1" if native else "0"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(stream), str(out)], env=env, check=True,
                          capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=2)
    parser.add_argument("--per-day", type=int, default=3000)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--viral", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind")
    args = parser.parse_args()
    if not (DATA / "events/ced").is_dir():
        sys.exit(f"replay: {DATA} not found (set MONITOR_SHARED_DATA to the shared data folder)")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-replay-") as tmp:
        stream = Path(tmp) / "stream.jsonl"
        built = build_stream(argparse.Namespace(weeks=args.weeks, per_day=args.per_day, bursts=args.bursts,
                                                viral=args.viral, seed=args.seed), stream)
        print(f"replay: {built['posts']:,} posts over {args.weeks} weeks (bench/detection.py's stream, seed "
              f"{args.seed}), {args.runs} runs each, alternating; SQLite, one process, one core")
        rates: dict[bool, list[float]] = {True: [], False: []}
        digests = set()
        for i in range(args.runs):
            for native in (True, False):
                r = run_once(stream, Path(tmp) / f"incidents-{i}-{native}.jsonl", native)
                if native and r["missing"]:
                    sys.exit(f"replay: the compiled cores are not built ({r['missing']}): pip install needs a C "
                             "compiler")
                rate = r["posts"] / r["seconds"]
                rates[native].append(rate)
                digests.add(r["digest"])
                print(f"  run {i + 1} {'compiled cores' if native else 'pure Python   '}  {rate:7,.0f} posts/s  "
                      f"({r['seconds']:.1f} s replay, {r['cpu']:.1f} s CPU; "
                      f"{r['incidents']} incidents, output {r['digest']})")
    for native, label in ((True, "compiled cores"), (False, "pure Python")):
        print(f"  {label:<15} median {statistics.median(rates[native]):7,.0f} posts/s, best "
              f"{max(rates[native]):7,.0f}")
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(f"  speed-up {ratio:.2f}x; incidents identical in every run: {'yes' if len(digests) == 1 else 'NO'}")
    print("  target: ≥ 5,000 posts/s end to end on one core with SQLite")


if __name__ == "__main__":
    main()
