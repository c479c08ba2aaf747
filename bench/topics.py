"""Topic clustering against a gold set: adjusted Rand index, V-measure, number of clusters, throughput.

Data: ../shared/data/topics/weibo2018/ (dengxiuqi/weibo2018 @ 4c6145e): six topics (人工智能, 同济大学, 周杰伦, 好莱坞,
毕业, 特朗普), about 100 real Weibo posts each, one ``mid,label,text`` line per post. The posts are streamed in a
shuffled order (fixed seeds) with timestamps one minute apart, all inside one window, through
``TopicClusterer.add``. The figures are averaged over ``--orders`` shuffles, since single-pass clustering depends on
the order. Then the clusters of at least 5 posts are printed with their labels.

Over-merging check ("background"): the first 2,000 posts of ../shared/data/sentiment/weibo2018/train.txt, which
share no topic, are clustered the same way; a threshold that glues unrelated posts together shows up as big
clusters there. (That set is not topic-free: it holds real copy-paste campaigns, 打榜 templates and the like.)

Throughput is measured separately on the 10,000 posts of ../shared/data/sentiment/weibo2018/train.txt streamed
over one day (the clusterer's cost grows with the posts sharing words, so a bigger stream is the fairer figure).

Metrics are implemented here (no scikit-learn): ARI as in Hubert & Arabie (1985), V-measure as in Rosenberg &
Hirschberg (2007) with beta = 1. Nothing is asserted.

Run:  python bench/topics.py [--threshold 0.2] [--orders 5] [--sweep] [--memory 100000]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.analysis.cluster import TopicClusterer  # noqa: E402
from monitor.analysis.textfeat import tokens  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
GOLD = DATA / "topics" / "weibo2018"


def load_gold(folder: Path = GOLD) -> list[tuple[str, str, str]]:
    """``(post id, topic, text)`` for every post of the gold set, topics in file-name order."""
    out = []
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split(",", 2)
            if len(parts) == 3 and parts[2].strip():
                out.append((parts[0], path.stem, parts[2]))
    return out


def _comb2(n: int) -> float:
    return n * (n - 1) / 2


def adjusted_rand_index(truth: Sequence[str], pred: Sequence[str]) -> float:
    """Adjusted Rand index of two labelings of the same items (1 = identical partitions, ~0 = chance)."""
    pairs = Counter(zip(truth, pred, strict=True))
    a, b = Counter(truth), Counter(pred)
    index = sum(_comb2(n) for n in pairs.values())
    sum_a, sum_b = sum(_comb2(n) for n in a.values()), sum(_comb2(n) for n in b.values())
    expected = sum_a * sum_b / _comb2(len(truth))
    top = (sum_a + sum_b) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def _entropy(counts: Counter[str], n: int) -> float:
    return -sum(c / n * math.log(c / n) for c in counts.values() if c)


def v_measure(truth: Sequence[str], pred: Sequence[str]) -> tuple[float, float, float]:
    """(homogeneity, completeness, V-measure) of a predicted clustering against gold classes."""
    n = len(truth)
    pairs = Counter(zip(truth, pred, strict=True))
    a, b = Counter(truth), Counter(pred)
    h_c, h_k = _entropy(a, n), _entropy(b, n)
    h_c_given_k = -sum(c / n * math.log(c / b[k]) for (_, k), c in pairs.items())
    h_k_given_c = -sum(c / n * math.log(c / a[t]) for (t, _), c in pairs.items())
    hom = 1.0 if h_c == 0 else 1 - h_c_given_k / h_c
    com = 1.0 if h_k == 0 else 1 - h_k_given_c / h_k
    v = 0.0 if hom + com == 0 else 2 * hom * com / (hom + com)
    return hom, com, v


def run_order(gold: list[tuple[str, str, str]], seed: int, **kwargs: float) -> tuple[TopicClusterer, list[str]]:
    """Stream the gold posts in one shuffled order; return the clusterer and each post's final cluster id."""
    posts = gold[:]
    random.Random(seed).shuffle(posts)
    clusterer = TopicClusterer(window_seconds=86_400, **kwargs)  # type: ignore[arg-type]
    for i, (pid, _, text) in enumerate(posts):
        clusterer.add(pid, text, 1_000_000.0 + 60.0 * i)
    ids = {pid: clusterer.cluster_of(pid) or f"?{pid}" for pid, _, _ in posts}
    return clusterer, [ids[pid] for pid, _, _ in gold]


def evaluate(gold: list[tuple[str, str, str]], orders: int, **kwargs: float) -> dict[str, float]:
    """Mean ARI, homogeneity, completeness, V-measure and cluster counts over ``orders`` shuffles."""
    truth = [topic for _, topic, _ in gold]
    rows = []
    for seed in range(orders):
        _, pred = run_order(gold, seed, **kwargs)
        hom, com, v = v_measure(truth, pred)
        sizes = Counter(pred)
        rows.append({"ari": adjusted_rand_index(truth, pred), "hom": hom, "com": com, "v": v,
                     "clusters": len(sizes), "clusters5": sum(1 for s in sizes.values() if s >= 5),
                     "in5": sum(s for s in sizes.values() if s >= 5) / len(pred)})
    return {k: statistics.mean(r[k] for r in rows) for k in rows[0]} | {
        "v_min": min(r["v"] for r in rows), "v_max": max(r["v"] for r in rows)}


def weibo_texts() -> list[str]:
    """The text column of sentiment/weibo2018/train.txt: 10,000 posts on no common topic."""
    lines = (DATA / "sentiment" / "weibo2018" / "train.txt").read_text(encoding="utf-8").splitlines()
    return [ln.split(",", 2)[2] for ln in lines if ln.count(",") >= 2]


def background(n: int = 2000, **kwargs: float) -> dict[str, float]:
    """Over-merging check: cluster ``n`` unrelated posts; few should end in big clusters."""
    clusterer = TopicClusterer(window_seconds=86_400, **kwargs)  # type: ignore[arg-type]
    for i, text in enumerate(weibo_texts()[:n]):
        clusterer.add(str(i), text, 10.0 * i)
    sizes = sorted((len(clusterer.members(c)) for c in clusterer.clusters()), reverse=True)
    return {"clusters": len(sizes), "largest": sizes[0], "in5": sum(s for s in sizes if s >= 5) / n,
            "top3": sizes[:3]}  # type: ignore[dict-item]


def throughput(threshold: float) -> None:
    """Posts per second of add() on 10,000 real Weibo posts spread over one day, and of tokens() alone."""
    texts = weibo_texts()
    t0 = time.perf_counter()
    for text in texts:
        tokens(text)
    tok = time.perf_counter() - t0
    short = [t[:40] for t in texts]
    t0 = time.perf_counter()
    for text in short:
        tokens(text)
    tok_short = time.perf_counter() - t0
    clusterer = TopicClusterer(window_seconds=86_400, threshold=threshold)
    t0 = time.perf_counter()
    for i, text in enumerate(texts):
        clusterer.add(str(i), text, 8.64 * i)
    elapsed = time.perf_counter() - t0
    sizes = sorted((len(clusterer.members(c)) for c in clusterer.clusters()), reverse=True)
    mean_len = statistics.mean(map(len, texts))
    print(f"throughput: add() {len(texts) / elapsed:,.0f} posts/s on {len(texts):,} weibo2018 posts "
          f"(mean {mean_len:.0f} chars) over one day; {len(sizes):,} clusters, largest {sizes[:5]}")
    print(f"            tokens() {len(texts) / tok:,.0f} posts/s; on the first 40 chars {len(texts) / tok_short:,.0f}"
          f" posts/s")


def memory(per_day: int) -> None:
    """Clusterer memory (tracemalloc) for a one-day window of ``per_day`` posts, then a second day."""
    import importlib.util
    import tracemalloc

    spec = importlib.util.spec_from_file_location("bench_dedup", Path(__file__).with_name("dedup.py"))
    assert spec is not None and spec.loader is not None
    dedup_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dedup_bench)
    pool = [t for t in weibo_texts() + dedup_bench.more_texts() if t.strip()]
    rng = random.Random(11)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    clusterer = TopicClusterer(window_seconds=86_400, near_duplicates=False)
    fixed = tracemalloc.get_traced_memory()[0] - base
    t0 = time.perf_counter()
    for day in range(2):
        for k in range(per_day):
            clusterer.add(f"{day}-{k}", rng.choice(pool), day * 86_400 + k * 86_400 / per_day)
        used = tracemalloc.get_traced_memory()[0] - base
        held = sum(len(clusterer.members(c)) for c in clusterer.clusters())
        print(f"memory after day {day + 1}: {held:,} posts in {len(clusterer):,} clusters, {used / 2**20:.1f} MiB "
              f"({fixed / 2**20:.1f} MiB of it the fixed document-frequency table; "
              f"{(used - fixed) / held:.0f} B/post besides)")
    rate = 2 * per_day / (time.perf_counter() - t0)
    tracemalloc.stop()
    print(f"  ({2 * per_day:,} posts drawn from {len(pool):,} real texts, near_duplicates=False; {rate:,.0f} posts/s "
          f"under tracemalloc)")


def main() -> None:
    """Evaluate at the given threshold (or a sweep), print labels of one run, then throughput."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=None, help="default: the clusterer's default")
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--sweep", action="store_true", help="evaluate a range of thresholds")
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="also measure memory for a one-day window of N posts (slow: try 100000)")
    args = parser.parse_args()
    if not GOLD.is_dir():
        sys.exit(f"no gold set at {GOLD}")
    gold = load_gold()
    default = TopicClusterer().threshold
    threshold = args.threshold if args.threshold is not None else default
    print(f"gold set: {len(gold)} posts, {len(set(t for _, t, _ in gold))} topics; {args.orders} shuffled orders")
    grid = [0.08, 0.1, 0.12, 0.15, 0.18, 0.2, 0.25, 0.3, 0.35] if args.sweep else [threshold]
    for th in grid:
        r = evaluate(gold, args.orders, threshold=th)
        b = background(threshold=th)
        print(f"threshold={th:.2f}  ARI={r['ari']:.3f}  V={r['v']:.3f} (min {r['v_min']:.3f}, max {r['v_max']:.3f}) "
              f"hom={r['hom']:.3f} com={r['com']:.3f}  clusters={r['clusters']:.1f} "
              f"(>=5 posts: {r['clusters5']:.1f}, holding {r['in5']:.0%} of posts)")
        print(f"      background: 2000 unrelated posts -> {b['clusters']} clusters, largest {b['top3']}, "
              f"{b['in5']:.0%} of posts in clusters of >= 5")
    clusterer, _ = run_order(gold, 0, threshold=threshold)
    topic_of = {pid: topic for pid, topic, _ in gold}
    print(f"\nclusters of >= 5 posts, order 0, threshold {threshold}:")
    for cid in clusterer.clusters(min_size=5):
        label = clusterer.label(cid)
        mix = Counter(topic_of[p] for p in clusterer.members(cid)).most_common(3)
        print(f"  {cid:6s} size {label.size:3d}  {' / '.join(label.keywords):40s}  gold: {mix}")
        if label.headline:
            print(f"         one text spread: {label.headline}")
    throughput(threshold)
    if args.memory:
        memory(args.memory)


if __name__ == "__main__":
    main()
