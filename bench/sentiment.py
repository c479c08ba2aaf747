"""Sentiment backends on held-out Weibo data: negative-class F1 per set, speed, load time and memory.

The held-out part is the one ``tools/train_sentiment.py`` never trains on: a fixed, stratified 20 % of each set in
../shared/data/sentiment (reduced to distinct texts; see docs/sentiment.md). Per set and backend it prints the
negative-class precision, recall and F1 (a text counts as negative when ``label_for(p) == "negative"``, i.e.
p > NEGATIVE_THRESHOLD) on the texts with a polarity, ROC AUC, and the share of the set's neutral/surprise texts
labelled negative. Then, for each backend (and the weibo backend as it runs where numpy is not installed, "weibo (no
numpy)"): posts per second scoring in batches of 1,000 on one core, by the wall clock and per CPU-second, and, in a
fresh process, the time to import and load it and the resident memory after scoring a batch; and whether the weibo
backend's numpy and pure-Python paths give the same probabilities, bit for bit, on every held-out text.

snownlp (if installed: pip install 'monitor[snownlp]') scores about 100 posts/s, so it is measured on a fixed
sample of ``--snownlp-sample`` texts per set (the first ones in the held-out order, which is a SHA-256 order); the
weibo backend is also reported on that same sample so that the two are compared on the same texts. Targets to compare
with: negative F1 >= 0.90, >= 20,000 posts/s, load <= 1 s, <= 100 MB resident. Nothing is asserted.

Run:  python bench/sentiment.py [--snownlp-sample 1000] [--data ../shared/data/sentiment] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import timeit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.analysis.sentiment import (  # noqa: E402
    NEGATIVE_THRESHOLD,
    SentimentBackend,
    WeiboBackend,
    get_backend,
    label_for,
)


def _trainer() -> Any:
    spec = importlib.util.spec_from_file_location("train_sentiment", ROOT / "tools" / "train_sentiment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_sentiment"] = module
    spec.loader.exec_module(module)
    return module


def f1_negative(ys: Sequence[int], ps: Sequence[float]) -> tuple[float, float, float]:
    """(precision, recall, F1) of the negative class with the labels ``label_for`` gives."""
    pred = [label_for(p) == "negative" for p in ps]
    tp = sum(1 for y, n in zip(ys, pred, strict=True) if y == 1 and n)
    fp = sum(1 for y, n in zip(ys, pred, strict=True) if y == 0 and n)
    fn = sum(1 for y, n in zip(ys, pred, strict=True) if y == 1 and not n)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return prec, rec, 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def auc(ys: Sequence[int], ps: Sequence[float]) -> float:
    """ROC AUC of ``ps`` for the negative class (ties count half)."""
    pairs = sorted(zip(ps, ys, strict=True))
    pos = sum(ys)
    neg = len(ys) - pos
    if not pos or not neg:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j + 1) / 2
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1] == 1)
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


_FOOTPRINT = r"""
import json, sys, time
if sys.argv[1] == NO_NUMPY:
    sys.modules["numpy"] = None  # as if numpy were not installed
t0 = time.perf_counter()
from monitor.analysis.sentiment import get_backend
b = get_backend(sys.argv[1].split()[0])
b.score(["加载"])
load = time.perf_counter() - t0
texts = json.loads(sys.stdin.read())
b.score(texts)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"load_s": load, "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                  "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
                  "snownlp_imported": "snownlp" in sys.modules}))
"""


#: The weibo backend without numpy (pure Python; what runs where numpy is not installed).
NO_NUMPY = "weibo (no numpy)"


def footprint(name: str, texts: list[str]) -> dict[str, Any]:
    """Load time and resident memory of backend ``name`` in a fresh interpreter, after scoring ``texts``."""
    code = _FOOTPRINT.replace("NO_NUMPY", repr(NO_NUMPY))
    proc = subprocess.run([sys.executable, "-c", code, name], input=json.dumps(texts, ensure_ascii=False),
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def throughput(name: str, texts: list[str], batch: int = 1000, min_seconds: float = 3.0) -> tuple[float, float]:
    """Posts per second scoring ``texts`` in batches of ``batch`` (repeated until ``min_seconds`` have passed): by the
    wall clock, and per second of this process's CPU time (what one core does when other processes share it)."""
    if name == NO_NUMPY:
        weibo = get_backend("weibo")
        assert isinstance(weibo, WeiboBackend)
        backend: SentimentBackend = WeiboBackend(weibo.model, use_numpy=False)
    else:
        backend = get_backend(name)
    backend.score(texts[:batch])  # warm up
    done = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    while True:
        for i in range(0, len(texts), batch):
            done += len(backend.score(texts[i : i + batch]))
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return done / elapsed, done / max(time.process_time() - c0, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trainer = _trainer()
    parser.add_argument("--data", type=Path, default=trainer.DEFAULT_DATA)
    parser.add_argument("--snownlp-sample", type=int, default=1000, help="texts per set scored by snownlp")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no data folder {args.data}: nothing to measure", file=sys.stderr)
        return 2

    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    _, tests = trainer.load_splits(args.data)
    backends = ["weibo"]
    try:
        get_backend("snownlp")
        backends.append("snownlp")
    except ValueError as exc:
        print(f"snownlp not measured: {exc}")

    results: dict[str, Any] = {"threshold": NEGATIVE_THRESHOLD, "sets": {}, "speed": {}}
    print(f"held-out data: {args.data} (20 % of each set, never trained on); negative when p > {NEGATIVE_THRESHOLD}")
    header = (f"{'set':<16} {'backend':<16} {'texts':>6} {'neg':>5} {'P':>6} {'R':>6} {'F1':>6} {'AUC':>6} "
              f"{'neutral->neg':>12}")
    print(header)
    print("-" * len(header))
    all_texts: list[str] = []
    for set_name, rows in tests.items():
        all_texts += [r.text for r in rows]
        sample = sorted(rows, key=trainer._key)[: args.snownlp_sample]  # a fixed pseudo-random sample
        runs = [("weibo", "weibo", rows)]
        if "snownlp" in backends:
            if len(sample) < len(rows):
                runs.append(("weibo", f"weibo@{len(sample)}", sample))
            runs.append(("snownlp", f"snownlp@{len(sample)}" if len(sample) < len(rows) else "snownlp", sample))
        for backend_name, shown, subset in runs:
            ps = get_backend(backend_name).score([r.text for r in subset])
            ys = [r.y for r in subset if r.y is not None]
            pol = [p for r, p in zip(subset, ps, strict=True) if r.y is not None]
            neutral = [p for r, p in zip(subset, ps, strict=True) if r.y is None]
            prec, rec, f1 = f1_negative(ys, pol)
            a = auc(ys, pol)
            nn = (f"{sum(1 for p in neutral if label_for(p) == 'negative') / len(neutral):12.2f}" if neutral
                  else f"{'-':>12}")
            print(f"{set_name:<16} {shown:<16} {len(ys):>6} {sum(ys):>5} {prec:6.3f} {rec:6.3f} {f1:6.3f} {a:6.3f} "
                  f"{nn}")
            results["sets"].setdefault(set_name, {})[shown] = {
                "texts": len(ys), "negative": sum(ys), "precision": prec, "recall": rec, "f1": f1, "auc": a,
                "neutral_texts": len(neutral),
                "neutral_labelled_negative": (sum(1 for p in neutral if label_for(p) == "negative") / len(neutral)
                                              if neutral else None),
            }
    weibo = get_backend("weibo")
    if isinstance(weibo, WeiboBackend):
        plain = WeiboBackend(weibo.model, use_numpy=False).score(all_texts)
        same = weibo.score(all_texts) == plain
        results["numpy_equals_pure_python"] = same
        print(f"\nweibo: numpy and pure-Python probabilities identical on all {len(all_texts):,} held-out texts: "
              f"{'yes' if same else 'NO'}")
    print()
    header = (f"{'backend':<17} {'posts/s (1 core, batches of 1000)':>34} {'per CPU-s':>10} {'load s':>8} "
              f"{'RSS MB':>8} {'peak MB':>8}")
    print(header)
    print("-" * len(header))
    for name in [backends[0], NO_NUMPY, *backends[1:]]:
        texts = all_texts if name.startswith("weibo") else all_texts[:: max(1, len(all_texts) // 300)][:300]
        rate, cpu_rate = throughput(name, texts, min_seconds=3.0 if name.startswith("weibo") else 0.0)
        fp = footprint(name, all_texts[:1000])
        results["speed"][name] = {"posts_per_s": rate, "posts_per_cpu_s": cpu_rate, "speed_texts": len(texts), **fp}
        if "error" in fp:
            print(f"{name:<17} {rate:>34,.0f} {cpu_rate:>10,.0f} {'error: ' + fp['error']}")
        else:
            print(f"{name:<17} {rate:>34,.0f} {cpu_rate:>10,.0f} {fp['load_s']:>8.2f} {fp['rss_mb']:>8.0f} "
                  f"{fp['peak_mb']:>8.0f}")
    print(f"\n(snownlp speed on {min(300, len(all_texts))} texts; load = import + load + first text, in a fresh "
          "process; RSS after scoring 1,000 held-out texts; 'no numpy': the weibo backend where numpy is not "
          "installed)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    reference = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f}; reference loop sum(range(1000)) = "
          f"{reference:.1f} µs (to compare machines)")
    results["machine"] = {"cores": os.cpu_count(), "load_avg_1m": load, "sum_range_1000_us": reference}
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
