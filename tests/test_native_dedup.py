"""The C core of the near-duplicate index gives the same answer as the Python code to every call, on real streams.

Each test runs a pure-Python index (``native=False``) and a C one (``native=True``) side by side, compares every return
value, and now and then their whole state (entries, the bucket table slot for slot, exact texts, copies), so that a
difference is caught where it starts rather than when it changes an answer.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import random
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from typing import Any

import pytest

from monitor.analysis import dedup
from monitor.analysis.dedup import NearDuplicateIndex
from monitor.analysis.textfeat import clean

pytestmark = pytest.mark.skipif(dedup._core is None, reason="the C core monitor.analysis._dedup_c is not built "
                                "(no C compiler at install)")

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
CJK = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"


def pair(**kwargs: Any) -> tuple[NearDuplicateIndex, NearDuplicateIndex]:
    py = NearDuplicateIndex(native=False, **kwargs)
    c = NearDuplicateIndex(native=True, **kwargs)
    assert type(py) is NearDuplicateIndex and type(c) is not NearDuplicateIndex and isinstance(c, NearDuplicateIndex)
    return py, c


def py_state(ix: NearDuplicateIndex) -> dict[str, Any]:
    """The Python index's state in the shapes the C core's views give."""
    entries = {}
    for seq, (post_id, ts, data) in ix._entries.items():
        if data is not None and not isinstance(data, str):
            keys = tuple(data[2 * b] | data[2 * b + 1] << 16 for b in range(ix.bands))
            data = (keys, tuple(sorted(data[2 * ix.bands:])))
        entries[seq] = (post_id, ts, data)
    return {"entries": entries, "table": (ix._buckets._keys.tobytes(), ix._buckets._vals.tobytes()),
            "exact": ix._exact, "copies": ix._copies, "first": ix._first, "seqs": (ix._oldest, ix._seq),
            "now": ix.now, "len": len(ix), "buckets": len(ix._buckets)}


def c_state(ix: Any) -> dict[str, Any]:
    return {"entries": ix._entries, "table": ix._table, "exact": ix._exact, "copies": ix._copies,
            "first": ix._first, "seqs": ix._seqs, "now": ix.now, "len": len(ix), "buckets": len(ix._buckets)}


def same_state(py: NearDuplicateIndex, c: NearDuplicateIndex) -> None:
    a, b = py_state(py), c_state(c)
    for key in a:
        assert a[key] == b[key], key


def weibo_texts(shared_data: Path) -> list[str]:
    lines = (shared_data / "sentiment" / "weibo2018" / "train.txt").read_text(encoding="utf-8").splitlines()
    return [ln.split(",", 2)[2] for ln in lines if ln.count(",") >= 2]


def edit(text: str, rng: random.Random) -> str:
    """A light edit: characters changed, a repost chain, emoticons, punctuation or a link."""
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice(CJK) + text[i + 1:]
        return text
    if kind == 1:
        return f"{rng.choice(['', '转发微博', '说得对', '太可怕了吧这也'])}//@{rng.choice(['路人甲', 'Sunny'])}:{text}"
    if kind == 2:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(["[允悲]", "[doge]", "😂", "👍"]) + text[i:]
    if kind == 3:
        return text.replace("，", rng.choice([",", " ", ""])) + rng.choice(["！！", "...", "~"])
    if kind == 4:
        return f"{text} http://t.cn/A{rng.randrange(10**6)}"
    return text[: max(1, len(text) * 3 // 4)]


def run_stream(py: NearDuplicateIndex, c: NearDuplicateIndex, calls: list[tuple[Any, ...]], *,
               check_every: int = 500) -> dict[str, int]:
    """Make the same calls on both, comparing every result (exceptions included) and, now and then, the state."""
    outcomes = {"match": 0, "none": 0, "raised": 0}
    for n, (method, *args) in enumerate(calls):
        results = []
        for ix in (py, c):
            try:
                if method == "add":
                    out: Any = ix.add(args[0], args[1], args[2], cleaned=args[3])
                elif method == "add_match":
                    out = ix.add_match(args[0], args[1], args[2], cleaned=args[3])
                elif method == "find":
                    out = ix.find(args[0], args[1])
                else:
                    out = ix.evict(args[0])
            except Exception as exc:  # the same exception is expected from both
                out = ("raised", type(exc))
            results.append(out)
        assert results[0] == results[1], (n, method, args, results)
        assert type(results[0]) is type(results[1])
        outcomes["raised" if isinstance(results[0], tuple) else "none" if results[0] is None else "match"] += 1
        if n % check_every == 0:
            same_state(py, c)
    same_state(py, c)
    return outcomes


def weibo_stream(texts: list[str], n: int, seed: int, *, span: float) -> list[tuple[Any, ...]]:
    """``n`` calls over ``span`` seconds: new posts, exact copies, edited copies, a few late posts, finds, evicts."""
    rng = random.Random(seed)
    calls: list[tuple[Any, ...]] = []
    posted: list[str] = []
    ts = 0.0
    for i in range(n):
        ts += rng.expovariate(n / span)
        r = rng.random()
        if posted and r < 0.2:
            text = rng.choice(posted[-300:])  # an exact copy (or a repost of one)
        elif posted and r < 0.45:
            text = edit(rng.choice(posted[-300:]), rng)
        else:
            text = rng.choice(texts)
        posted.append(text)
        when = ts - rng.uniform(0, 3 * HOUR) if rng.random() < 0.03 else ts  # a late post
        if rng.random() < 0.03:
            calls.append(("find", edit(text, rng), None if rng.random() < 0.5 else when))
        if rng.random() < 0.01:
            calls.append(("evict", ts + rng.uniform(-HOUR, HOUR)))
        method = "add_match" if rng.random() < 0.5 else "add"
        cleaned = clean(text) if rng.random() < 0.8 else None
        calls.append((method, f"p{i}", text, when, cleaned))
    return calls


def test_same_answers_on_a_weibo_stream(shared_data: Path) -> None:
    """Several thousand real posts with copies and edits, over several windows (eviction, promotion of copies)."""
    texts = weibo_texts(shared_data)
    py, c = pair(window_seconds=4 * HOUR)
    outcomes = run_stream(py, c, weibo_stream(texts, 6000, 1, span=20 * HOUR))
    assert outcomes["match"] > 1000 and outcomes["none"] > 1000  # both kinds of answer were compared


@pytest.mark.parametrize("kwargs", [
    {"window_seconds": 2 * HOUR, "bucket_cap": 2},
    {"window_seconds": 3 * HOUR, "threshold": 0.3, "bands": 4, "rows": 3},
    {"window_seconds": 3 * HOUR, "threshold": 0.8, "bands": 16, "rows": 1, "min_chars": 3},
    {"window_seconds": HOUR, "threshold": 1.0, "min_chars": 1, "bucket_cap": 1},
    {"window_seconds": 5 * HOUR, "bands": 20, "rows": 2, "min_chars": 20, "bucket_cap": 50},
])
def test_same_answers_with_other_parameters(shared_data: Path, kwargs: dict[str, Any]) -> None:
    texts = weibo_texts(shared_data)
    py, c = pair(**kwargs)
    run_stream(py, c, weibo_stream(texts, 2500, 7, span=12 * HOUR))


def ced_stream(root: Path) -> list[tuple[Any, ...]]:
    """The CED cascades: each original and its reposts (``comment//@user:original``) at their own times."""
    posts: list[tuple[float, str, str]] = []
    for folder in sorted(p for kind in ("rumor", "non-rumor") for p in (root / kind).iterdir()):
        original = json.loads((folder / "original.json").read_text(encoding="utf-8"))
        start = original["time"]
        if isinstance(start, str):  # a few are written out: "Fri Apr 05 14:39:30 +0800 2013"
            start = datetime.strptime(start, "%a %b %d %H:%M:%S %z %Y").timestamp()
        posts.append((float(start), folder.name, original["text"]))
        for r in json.loads((folder / "reposts.json").read_text(encoding="utf-8"))[:150]:
            try:
                when = datetime.strptime(r["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
            except ValueError:  # a few dates are relative ("09月16日 13:48"): left out
                continue
            posts.append((when, f"{folder.name}/{r['mid']}", f"{r['text']}//@{r['uid']}:{original['text']}"))
    posts.sort()
    return [("add_match", pid, text, ts, None) for ts, pid, text in posts]


def test_same_answers_on_the_ced_cascades(shared_data: Path) -> None:
    """Real repost cascades with their own timestamps (days of them, so most of the index is evicted)."""
    calls = ced_stream(shared_data / "events" / "ced")
    assert len(calls) > 5000
    py, c = pair(window_seconds=6 * HOUR)
    outcomes = run_stream(py, c, calls)
    assert outcomes["match"] > 1000


def test_edge_cases() -> None:
    py, c = pair(window_seconds=HOUR)
    calls: list[tuple[Any, ...]] = [
        ("add", "e0", "", 0.0, None),                         # empty
        ("add", "e1", "", 1.0, ""),
        ("add", "e2", "[心]", 2.0, None),                      # nothing left after cleaning
        ("add", "e3", "好", 3.0, None),                        # one character
        ("add", "e4", "好", 4.0, None),
        ("add", "e5", "x", 5.0, "   "),                        # only spaces
        ("add_match", "e6", "", 6.0, "𠀀𠀁𠀂𠀃𠀄𠀅𠀆𠀇𠀈𠀉"),  # beyond the BMP (CJK extension B)
        ("add_match", "e7", "", 7.0, "𠀀𠀁𠀂𠀃 𠀄𠀅𠀆𠀇𠀈𠀉"),
        ("add_match", "e8", "", 8.0, "ab\ud800cdefghijk"),     # a lone surrogate cannot be encoded: both raise
        ("add_match", "e9", "", 9.0, 12345),                   # not a str: both raise
        ("add", "e10", "鲸帆手机充电的时候电池鼓包还发烫", 10.0, None),
        ("add", "e10", "鲸帆手机充电的时候电池鼓包还发烫", 11.0, None),   # the same id again: not its own duplicate
        ("add", "e11", "鲸帆手机充电的时候电池鼓包还发烫", 12.0, None),
        ("add_match", "e12", "鲸帆手机充电的时候电池鼓包还发烫了", 13.0, None),
        ("add", "e13", "鲸帆手机充电的时候电池鼓包还发烫", math.nan, None),  # NaN: checked, never kept
        ("add", "e14", "鲸帆手机充电的时候电池鼓包还发烫", -math.inf, None),
        ("find", "鲸帆手机充电的时候电池鼓包还发烫", None),
        ("find", "好", 20.0),
        ("find", "", None),
        ("evict", 100.0),
        ("evict", 50.0),                                         # never backwards
        ("add", "e15", "鲸帆手机充电的时候电池鼓包还发烫", 30.0, None),  # late, but in the window
        ("evict", HOUR + 11.5),
        ("add", "e16", "鲸帆手机充电的时候电池鼓包还发烫", HOUR + 12.0, None),
        ("add", "e17", "鲸帆手机充电的时候电池鼓包还发烫", 0.0, None),  # outside the window: checked, not kept
        ("add", "e18", "a" * 5000, HOUR + 13.0, None),
        ("add", "e19", "".join(chr(0x4E00 + i) for i in range(3000)), HOUR + 14.0, None),
        ("add", "e20", "".join(chr(0x4E00 + i) for i in range(3000)) + "了", HOUR + 15.0, None),
        ("add", "e21", "鲸帆手机充电的时候电池鼓包还发烫", math.inf, None),
        ("add", "e22", "鲸帆手机充电的时候电池鼓包还发烫", math.inf, None),
        ("evict", math.inf),
    ]
    run_stream(py, c, calls, check_every=1)
    assert len(py) == len(c) == 2


def test_arguments_bind_as_in_python() -> None:
    """Keywords for every parameter, and the same TypeError for a bad call."""
    py, c = pair()
    for ix in (py, c):
        assert ix.add(post_id="a", text="鲸帆手机充电的时候电池鼓包还发烫", ts=0.0) is None
    calls = [lambda ix: ix.add_match("b", text="鲸帆手机充电的时候电池鼓包还发烫了", ts=1.0, cleaned=None),
             lambda ix: ix.find(text="鲸帆手机充电的时候电池鼓包还发烫", ts=2.0),
             lambda ix: ix.evict(now=3.0)]
    for call in calls:
        assert call(py) == call(c)
    for bad in (lambda ix: ix.add("a", "x"), lambda ix: ix.add("a", "x", 1.0, "x"),
                lambda ix: ix.add("a", "x", 1.0, cleand="x"), lambda ix: ix.evict(), lambda ix: ix.find()):
        for ix in (py, c):
            with pytest.raises(TypeError):
                bad(ix)


def test_no_bigram_and_no_minimum_raises_like_python() -> None:
    """With min_chars=0 an empty text reaches the sketch, which has nothing to sample: both raise StopIteration."""
    py, c = pair(min_chars=0)
    run_stream(py, c, [("add", "a", "", 0.0, None), ("find", "", None), ("add", "b", "好", 1.0, None),
                       ("add", "c", "好", 2.0, None)], check_every=1)


def test_campaigns_fill_buckets_and_copies_are_promoted() -> None:
    """Thousands of copies and near copies of a few texts: full buckets, unfiled copies, promotion as they leave."""
    rng = random.Random(3)
    bases = ["鲸帆手机充电的时候电池鼓包还发烫，差点起火，售后说是人为损坏不给保修",
             "外卖骑手把汤洒了一半还不道歉，打电话给客服一直占线，再也不点这家了",
             "银行信用卡莫名其妙被扣了年费，客服说是系统自动收取的，拒绝退还"]
    calls: list[tuple[Any, ...]] = []
    for i in range(4000):
        text = rng.choice(bases)
        if rng.random() < 0.3:
            text = edit(text, rng)
        calls.append(("add_match", f"c{i}", text, i * 7.0, None))
    py, c = pair(window_seconds=HOUR, bucket_cap=3)
    run_stream(py, c, calls, check_every=97)


def test_many_posts_in_one_window_rehash_the_table(shared_data: Path) -> None:
    """20,000 distinct posts in one window: the bucket table grows through several rehashes, then all leave."""
    texts = weibo_texts(shared_data)
    calls: list[tuple[Any, ...]] = [("add", f"r{i}", t, float(i), clean(t)) for i, t in enumerate(texts * 2)]
    calls.append(("evict", 10.0**9))
    py, c = pair(window_seconds=10.0**6)
    run_stream(py, c, calls, check_every=5000)
    assert len(c) == 0 and len(c._buckets) == 0 and c._copies == {} and c._exact == {}


def test_hashes_digests_and_rounding_match_python() -> None:
    core = dedup._core
    rng = random.Random(5)
    for _ in range(2000):
        t = tuple(rng.choice([rng.randrange(-(2**63), 2**63), rng.randrange(-5, 5), rng.randrange(0x110000)])
                  for _ in range(rng.randint(0, 5)))
        assert core._tuple_hash(t) == hash(t), t
    for n in range(300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert core._digest(data) == int.from_bytes(blake2b(data, digest_size=8).digest(), "little"), n
    for union in range(1, 301):
        for inter in range(union + 1):
            x = inter / union
            assert core._round4(x) == round(x, 4), (inter, union)


def test_parameters_are_read_only_on_the_core() -> None:
    _, c = pair(window_seconds=HOUR, threshold=0.6, bands=5, rows=3, min_chars=4, bucket_cap=2)
    assert (c.window_seconds, c.threshold, c.bands, c.rows, c.min_chars, c.bucket_cap) == (HOUR, 0.6, 5, 3, 4, 2)
    with pytest.raises(AttributeError):
        c.threshold = 0.3  # type: ignore[misc]
    with pytest.raises(ValueError):
        NearDuplicateIndex(native=True, threshold=0.0)


def test_choosing_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_NATIVE", raising=False)
    assert type(NearDuplicateIndex()) is not NearDuplicateIndex  # the core is the default when built
    monkeypatch.setenv("MONITOR_NATIVE", "0")
    assert type(NearDuplicateIndex()) is NearDuplicateIndex  # turned off by default
    assert type(NearDuplicateIndex(native=True)) is not NearDuplicateIndex  # unless asked for
    monkeypatch.delenv("MONITOR_NATIVE")
    assert type(NearDuplicateIndex(native=False)) is NearDuplicateIndex
    monkeypatch.setattr(dedup, "_core", None)  # as when it is not built
    assert type(NearDuplicateIndex()) is NearDuplicateIndex
    with pytest.raises(RuntimeError, match="not built"):
        NearDuplicateIndex(native=True)


@pytest.mark.parametrize(("env", "blocked", "expected"), [("0", False, "NearDuplicateIndex"),
                                                          ("1", True, "NearDuplicateIndex"),
                                                          ("1", False, "_NativeIndex")])
def test_environment_switch_and_a_missing_extension(env: str, blocked: bool, expected: str) -> None:
    """MONITOR_NATIVE=0 turns the core off; without the compiled module the Python code runs (no error)."""
    code = ("import sys\n"
            + ("sys.modules['monitor.analysis._dedup_c'] = None\n" if blocked else "")
            + "from monitor.analysis.dedup import NearDuplicateIndex\n"
            "ix = NearDuplicateIndex()\n"
            "assert ix.add('a', '鲸帆手机充电的时候电池鼓包还发烫', 0.0) is None\n"
            "print(type(ix).__name__, ix.add('b', '鲸帆手机充电的时候电池鼓包还发烫了', 1.0))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "MONITOR_NATIVE": env})
    assert res.stdout.split() == [expected, "a"]


def test_references_and_memory_are_released(shared_data: Path) -> None:
    """Post ids and texts held by the core are released when they leave; repeated windows do not grow memory."""
    texts = weibo_texts(shared_data)[:1500]
    ids = [f"m{i}" for i in range(len(texts))]
    before = [sys.getrefcount(x) for x in ids]
    c = NearDuplicateIndex(native=True, window_seconds=100.0)
    for i, t in enumerate(texts):
        c.add(ids[i], t, float(i % 50))
    c.evict(10.0**6)
    assert len(c) == 0 and [sys.getrefcount(x) for x in ids] == before

    def one_round(base: float) -> None:
        for i, t in enumerate(texts):
            c.add_match(f"x{i}", t, base + i)
        c.evict(base + 10.0**5)

    one_round(2e6)
    gc.collect()
    tracemalloc.start()
    one_round(3e6)
    gc.collect()
    first = tracemalloc.get_traced_memory()[0]
    for k in range(4, 8):
        one_round(k * 1e6)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - first
    tracemalloc.stop()
    assert grown < 64 * 1024, grown


def test_a_reentrant_call_is_refused() -> None:
    """A post id whose == calls back into the index gets an error instead of corrupting the core's state."""
    c = NearDuplicateIndex(native=True)

    class Sneaky(str):
        def __eq__(self, other: object) -> bool:
            c.add("z", "另一段完全不同的文字内容在这里", 1.0)
            return False

        __hash__ = str.__hash__

    c.add(Sneaky("a"), "鲸帆手机充电的时候电池鼓包还发烫", 0.0)
    with pytest.raises(RuntimeError, match="called again"):
        c.add("b", "鲸帆手机充电的时候电池鼓包还发烫了", 0.5)
    assert len(c) == 1


def test_waimai_reviews_stream(shared_data: Path) -> None:
    """Short reviews (many under min_chars) in a tight window: the exact-text path and its lists."""
    with (shared_data / "sentiment" / "waimai_10k" / "waimai_10k.csv").open(encoding="utf-8", newline="") as f:
        reviews = [row[1] for row in csv.reader(f)][1:4001]
    rng = random.Random(11)
    calls: list[tuple[Any, ...]] = []
    for i, text in enumerate(reviews):
        if rng.random() < 0.3:
            text = rng.choice(["好吃", "太慢了", "不错", "难吃", "好评", "送餐快"]) + rng.choice(["", "！", "[赞]"])
        calls.append(("add_match", f"w{i}", text, i * 3.0, None))
    py, c = pair(window_seconds=HOUR, bucket_cap=4)
    run_stream(py, c, calls, check_every=250)
