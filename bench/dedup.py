"""Near-duplicate detection: recall on edited copies of real Weibo posts, false positives, speed, memory.

Data: the text column of ../shared/data/sentiment/weibo2018/train.txt (dengxiuqi/weibo2018 @ 4c6145e, 10,000 real
Weibo posts). Each of ``--originals`` posts (fixed seed) gets one copy carrying one to three edits drawn from:
a repost-chain prefix (``//@某某:`` with an empty, 转发微博 or short comment), one to three CJK characters inserted,
deleted or replaced, ``[表情]`` codes or emoji added, punctuation changed, a different URL, a ``#话题#`` added.

Stream: all originals in random order, then all copies in random order, timestamps one second apart (one window).
* recall: copies whose reported duplicate is their original (or an earlier copy of it), by edit kind and by length;
* false positives: originals reported as duplicates of another original. Some of the 10,000 posts really are
  near-duplicates of each other; the bench prints the pairs so they can be judged by eye;
* throughput of ``add`` (posts/s), and index memory (tracemalloc) for a 24 h window of 100,000 posts, streamed over
  48 h so that the second day shows eviction keeping the size flat.

Nothing is asserted. Run:  python bench/dedup.py [--originals 4000] [--threshold 0.5] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.analysis.dedup import NearDuplicateIndex, jaccard  # noqa: E402
from monitor.analysis.textfeat import clean, meaningful_length  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sentiment"
CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
EMOTICONS = ["[允悲]", "[心]", "[泪]", "[微笑]", "[二哈]", "[doge]", "[笑cry]", "😂", "👍", "🙏", "❤️"]
COMMENTS = ["", "转发微博", "说得对", "[心]", "顶", "唉"]
NAMES = ["某某", "小王同学", "吃瓜群众123", "路人甲", "Sunny_Day"]


def weibo_texts() -> list[str]:
    """The text column of weibo2018/train.txt (``mid,label,text`` lines)."""
    lines = (DATA / "weibo2018" / "train.txt").read_text(encoding="utf-8").splitlines()
    return [ln.split(",", 2)[2] for ln in lines if ln.count(",") >= 2]


def more_texts() -> list[str]:
    """Other real short posts for the memory run: SMP2020-EWECT, COVID-19 Weibo, waimai reviews."""
    out: list[str] = []
    for name in ("virus_train.json", "usual_eval_labeled.json", "virus_eval_labeled.json"):
        out += [r["content"] for r in json.loads((DATA / "smp2020_ewect" / name).read_text(encoding="utf-8-sig"))]
    import csv
    with (DATA / "covid19_weibo_emotions" / "labeledData.csv").open(encoding="utf-8-sig", newline="") as f:
        out += [row[0] for row in csv.reader(f)][1:]
    with (DATA / "waimai_10k" / "waimai_10k.csv").open(encoding="utf-8", newline="") as f:
        out += [row[1] for row in csv.reader(f)][1:]
    return out


def _cjk_positions(text: str) -> list[int]:
    return [i for i, c in enumerate(text) if "\u4e00" <= c <= "\u9fff"]


def edit_chars(text: str, rng: random.Random) -> str:
    """One to three CJK characters inserted, deleted or replaced at random places."""
    for _ in range(rng.randint(1, 3)):
        pos = _cjk_positions(text) or [len(text) - 1]
        i = rng.choice(pos)
        op = rng.choice("idr")
        if op == "i":
            text = text[:i] + rng.choice(CJK) + text[i:]
        elif op == "d" and len(text) > 1:
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + rng.choice(CJK) + text[i + 1:]
    return text


def add_emoticons(text: str, rng: random.Random) -> str:
    """One to three emoticon codes or emoji at random places."""
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(text))
        text = text[:i] + rng.choice(EMOTICONS) + text[i:]
    return text


def change_punct(text: str, rng: random.Random) -> str:
    """Full-width punctuation swapped, dropped or added."""
    table = {"，": rng.choice([",", " ", "", "。"]), "。": rng.choice(["!", "！", "", "~"]), "！": "!", "？": "?"}
    text = "".join(table.get(c, c) for c in text)
    return text + rng.choice(["！！！", "...", "？？", "~"])


def change_url(text: str, rng: random.Random) -> str:
    """A short link appended (or a different one, when the text had one)."""
    link = "http://t.cn/" + "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGH23456789") for _ in range(7))
    return text + " " + link


def repost_prefix(text: str, rng: random.Random) -> str:
    """The post as the quoted link of a repost chain: ``comment//@name:text``."""
    return f"{rng.choice(COMMENTS)}//@{rng.choice(NAMES)}:{text}"


def add_topic(text: str, rng: random.Random) -> str:
    """A ``#话题#`` tag in front."""
    return f"#{rng.choice(['热点', '今日话题', '吐槽'])}# {text}"


EDITS = {"chars": edit_chars, "emoticons": add_emoticons, "punct": change_punct, "url": change_url,
         "repost": repost_prefix, "topic": add_topic}


def make_copy(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """A copy of ``text`` with one to three different edits; the link and the repost-chain wrapping come last."""
    kinds = rng.sample(sorted(EDITS), rng.randint(1, 3))
    kinds.sort(key=lambda k: (k == "repost", k == "url"))
    for kind in kinds:
        text = EDITS[kind](text, rng)
    return text, kinds


def length_bucket(n: int) -> str:
    """Cleaned-length bucket of a post."""
    return "<8" if n < 8 else "8-19" if n < 20 else "20-49" if n < 50 else "50+"


def quality(args: argparse.Namespace) -> None:
    """Recall on copies, false positives among originals, throughput."""
    rng = random.Random(20240601)
    texts = [t for t in weibo_texts() if clean(t)]
    originals = rng.sample(texts, min(args.originals, len(texts)))
    copies = [(i, *make_copy(t, rng)) for i, t in enumerate(originals)]
    rng.shuffle(copies)
    index = NearDuplicateIndex(window_seconds=86_400, threshold=args.threshold)
    t0 = time.perf_counter()
    ts = 0.0
    fp: list[tuple[int, str]] = []
    for i, text in enumerate(originals):
        first = index.add_match(f"o{i}", text, ts)
        ts += 1
        if first:
            fp.append((i, f"{first.post_id} sim={first.similarity}"))
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    other_dup = unrelated = 0
    texts_by_id = {f"o{i}": t for i, t in enumerate(originals)} | {f"c{i}": t for i, t, _ in copies}
    for i, text, kinds in copies:
        hit = index.add(f"c{i}", text, ts)
        ts += 1
        bucket = length_bucket(meaningful_length(clean(originals[i])))
        keys = [*(f"edit:{k}" for k in kinds), f"len:{bucket}", "all"]
        for k in keys:
            total[k] += 1
        if hit in (f"o{i}", f"c{i}"):
            for k in keys:
                found[k] += 1
        elif hit is not None:
            # An earlier post that is itself a near-duplicate of this copy's original (template campaigns) is a right
            # answer too: it is the earliest of the group.
            if jaccard(originals[i], texts_by_id[hit]) >= args.threshold:
                other_dup += 1
                for k in keys:
                    found[k] += 1
            else:
                unrelated += 1
    elapsed = time.perf_counter() - t0
    n = len(originals) + len(copies)
    print(f"threshold={args.threshold} bands={index.bands} rows={index.rows} posts={n}")
    print(f"recall (copy -> its original): {found['all']}/{total['all']} = {found['all'] / total['all']:.3f}")
    long_total = total["all"] - total["len:<8"]
    long_found = found["all"] - found["len:<8"]
    print(f"recall, originals with >= 8 cleaned chars: {long_found}/{long_total} = {long_found / long_total:.3f}")
    for k in sorted(total):
        if k != "all":
            print(f"  {k:16s} {found[k]:5d}/{total[k]:5d} = {found[k] / total[k]:.3f}")
    print(f"copies matched to an earlier near-duplicate of their original (counted as found): {other_dup}; "
          f"to a post not similar to their original: {unrelated}")
    print(f"originals flagged as duplicates of another original: {len(fp)}/{len(originals)} "
          f"= {len(fp) / len(originals):.4f}")
    groups = defaultdict(list)
    for i, desc in fp:
        groups["identical" if desc.endswith("sim=1.0") else "near"].append((i, desc))
    print(f"  identical after cleaning: {len(groups['identical'])}, near: {len(groups['near'])}")
    for i, desc in groups["near"][: args.show]:
        j = int(desc.split()[0][1:])
        print(f"  {desc}\n    A: {originals[j][:70]!r}\n    B: {originals[i][:70]!r}")
    print(f"throughput: {n / elapsed:,.0f} posts/s ({elapsed:.2f} s)")


def memory(args: argparse.Namespace) -> None:
    """Index memory for a 24 h window of 100k posts; then another day to show eviction keeps it flat."""
    rng = random.Random(7)
    pool = [t for t in weibo_texts() + more_texts() if t.strip()]
    per_day = args.per_day
    index = NearDuplicateIndex(window_seconds=86_400, threshold=args.threshold)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    dups = 0
    for day in range(2):
        for k in range(per_day):
            text = rng.choice(pool)
            if rng.random() < 0.3:
                text = make_copy(text, rng)[0]
            dups += index.add(f"{day}-{k}", text, day * 86_400 + k * 86_400 / per_day) is not None
        current = tracemalloc.get_traced_memory()[0] - base
        print(f"after day {day + 1}: {len(index):,} posts held, index memory {current / 2**20:.1f} MiB "
              f"({current / len(index):.0f} B/post)")
    elapsed = time.perf_counter() - t0
    tracemalloc.stop()
    print(f"  (stream of {2 * per_day:,} posts drawn from {len(pool):,} real texts, 30% edited copies; "
          f"{dups:,} reported duplicates; {2 * per_day / elapsed:,.0f} posts/s under tracemalloc)")


def main() -> None:
    """Run the quality part, then the memory part."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--originals", type=int, default=4000)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--show", type=int, default=5, help="near-duplicate original pairs to print")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no data folder at {DATA}")
    quality(args)
    if not args.skip_memory:
        memory(args)


if __name__ == "__main__":
    main()
