"""The topic clusterer's C core (monitor/analysis/_cluster_c.c) gives the pure-Python clusterer's results, call by call.

Streams are real Weibo posts (../shared/data/sentiment/weibo2018, dengxiuqi/weibo2018 @ 4c6145e) and real repost
cascades (../shared/data/events/ced, thunlp/Chinese_Rumor_Dataset @ c1178d8) written as reposts
(``comment//@user:original``) and lightly edited copies, spread over several windows so that members, clusters and
absorbed ids expire, with merges along the way. Both clusterers get the same calls; every answer must be equal.
"""

from __future__ import annotations

import importlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from monitor.analysis import native
from monitor.analysis.cluster import TopicClusterer
from monitor.analysis.dedup import NearDuplicateIndex
from monitor.analysis.textfeat import clean, token_codes

try:
    importlib.import_module("monitor.analysis._cluster_c")
    BUILT = True
except ImportError:
    BUILT = False

needs_core = pytest.mark.skipif(not BUILT, reason="monitor.analysis._cluster_c is not built (no C compiler at install: "
                                                  "python setup.py build_ext --inplace)")
HOUR = 3600.0

Post = tuple[str, str, float]  # (post id, text, ts)


def _background(shared: Path, n: int) -> list[str]:
    out = []
    for line in (shared / "sentiment" / "weibo2018" / "train.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split(",", 2)
        if len(parts) == 3 and parts[2].strip():
            out.append(parts[2])
        if len(out) >= n:
            break
    return out


def _cascades(shared: Path, events: int, per_event: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """(original text, [(reposter, own words)]) of the first CED events of each kind."""
    out = []
    for kind in ("rumor", "non-rumor"):
        for folder in sorted((shared / "events" / "ced" / kind).iterdir())[:events // 2]:
            original = json.loads((folder / "original.json").read_text(encoding="utf-8"))["text"]
            reposts = json.loads((folder / "reposts.json").read_text(encoding="utf-8"))[:per_event]
            out.append((original, [(str(r["uid"]), r.get("text") or "") for r in reposts]))
    return out


def _edit(rnd: random.Random, text: str) -> str:
    """A light edit of a copy: a character dropped, a word added, or punctuation changed."""
    if len(text) > 4 and rnd.random() < 0.4:
        i = rnd.randrange(len(text))
        return text[:i] + text[i + 1:]
    return rnd.choice(["转发：", "", "哈哈 "]) + text + rnd.choice(["！", "。。", " 太离谱了", ""])


def _stream(shared: Path, *, background: int, events: int, per_event: int, hours: float, seed: int) -> list[Post]:
    rnd = random.Random(seed)
    posts: list[Post] = []
    texts = _background(shared, background)
    for i, text in enumerate(texts):
        posts.append((f"b{i}", text, rnd.uniform(0, hours * HOUR)))
        if rnd.random() < 0.05:  # a copied post, minutes later
            posts.append((f"b{i}-copy", _edit(rnd, text), posts[-1][2] + rnd.uniform(30, 900)))
    for e, (original, reposts) in enumerate(_cascades(shared, events, per_event)):
        start = rnd.uniform(0, hours * HOUR)
        posts.append((f"e{e}", original, start))
        t = start
        for k, (uid, own) in enumerate(reposts):
            t += rnd.expovariate(1 / 90.0)
            text = f"{own}//@{uid}:{original}" if rnd.random() < 0.8 else _edit(rnd, original)
            posts.append((f"e{e}-{k}", text, t))
    posts.sort(key=lambda p: p[2])
    # A few posts arrive late (a slow source): time never goes back in the clusterer, but their own ts does.
    for i in range(5, len(posts), 97):
        posts[i - 3], posts[i] = posts[i], posts[i - 3]
    return posts


def _check(a: TopicClusterer, b: TopicClusterer, cid: str) -> None:
    assert a.resolve(cid) == b.resolve(cid), cid
    assert a.absorbed(cid) == b.absorbed(cid), cid
    assert a.members(cid) == b.members(cid), cid
    assert a.shared_terms(cid) == b.shared_terms(cid), cid
    assert a.shared_terms(cid, 0.3) == b.shared_terms(cid, 0.3), cid
    if a.resolve(cid) is None:
        with pytest.raises(KeyError):
            b.label(cid)
    else:
        assert a.label(cid) == b.label(cid), cid


def _twins(posts: list[Post], *, dedup: bool = True, every: int = 25, **params: Any) -> tuple[int, int]:
    """Run both clusterers over ``posts`` (duplicates from a caller's index, like the pipeline, when ``dedup``) and
    assert every answer is equal; return the number of clusters made and of merges seen."""
    a = TopicClusterer(native=False, **params)
    b = TopicClusterer(native=True, **params)
    index = NearDuplicateIndex(window_seconds=a.window_seconds) if dedup else None
    ids: list[str] = []
    merged = 0
    for i, (pid, text, ts) in enumerate(posts):
        cleaned = clean(text)
        dup = index.add(pid, text, ts, cleaned=cleaned) if index is not None else None
        got = a.add(pid, text, ts, duplicate_of=dup, cleaned=cleaned)
        assert b.add(pid, text, ts, duplicate_of=dup, cleaned=cleaned) == got, (i, pid, text)
        ids.append(got)
        merged += bool(a.absorbed(got))
        if i % every == 0:
            for cid in {got, ids[i // 2], ids[max(0, i - 200)]}:
                _check(a, b, cid)
        if i % (20 * every) == 0:
            assert a.clusters() == b.clusters()
            assert a.clusters(3) == b.clusters(3)
            assert len(a) == len(b)
            for pid2, _, _ in posts[max(0, i - 300):i + 1:7]:
                assert a.cluster_of(pid2) == b.cluster_of(pid2), pid2
    for cid in a.clusters():
        _check(a, b, cid)
    last = max(ts for _, _, ts in posts)
    for step in (0.5, 1.0, 3.0):  # the window slides past everything
        assert a.expire(last + step * a.window_seconds) == b.expire(last + step * b.window_seconds)
        assert a.clusters() == b.clusters() and len(a) == len(b)
    assert len(b) == 0
    return len(set(ids)), merged


@needs_core
def test_the_replay_settings_give_the_same_topics(shared_data: Path) -> None:
    """The pipeline's use: its own duplicate index passes ``duplicate_of``; a 6-hour window over 3 days."""
    posts = _stream(shared_data, background=3000, events=10, per_event=150, hours=72, seed=3)
    made, merged = _twins(posts, window_seconds=6 * HOUR, near_duplicates=False)
    assert len(posts) > 4000 and made > 500 and merged > 20  # a stream with merges and expiry, not a trivial one


@needs_core
def test_the_internal_duplicate_index_gives_the_same_topics(shared_data: Path) -> None:
    posts = _stream(shared_data, background=1200, events=6, per_event=100, hours=30, seed=5)
    _twins(posts, dedup=False, window_seconds=12 * HOUR, near_duplicates=True)


@needs_core
def test_small_tables_and_caps_give_the_same_topics(shared_data: Path) -> None:
    """Colliding document-frequency slots, short posting lists, heavy pruning, few probes and candidates."""
    posts = _stream(shared_data, background=1500, events=6, per_event=120, hours=20, seed=11)
    _twins(posts, window_seconds=8 * HOUR, near_duplicates=False, df_slots=1024, recent_posts=40, centroid_terms=8,
           posting_cap=2, probe_terms=4, score_clusters=2, merge_terms=5, post_terms=10, min_shared=1, min_df=1,
           threshold=0.12, merge_threshold=0.1, every=10)


@needs_core
def test_a_topic_alive_for_many_windows_rescales_the_same(shared_data: Path) -> None:
    """A topic posted on for 30 windows: the document frequencies (after 13.8 windows) and the cluster's counts
    (after 20.7) are brought back to scale, in C as in Python."""
    rnd = random.Random(17)
    texts = _background(shared_data, 400)
    topic = ["鲸帆手机电池鼓包，售后不管", "鲸帆手机电池又鼓包了", "鲸帆手机电池鼓包召回了吗", "鲸帆电池鼓包冒烟"]
    posts: list[Post] = []
    window = 2 * HOUR
    t = 0.0
    for k in range(30 * 12):  # a topic post every 10 minutes, and background posts between
        t += window / 12
        posts.append((f"t{k}", rnd.choice(topic) + rnd.choice(["", "！", "，气死", " 第二次了"]), t))
        posts.append((f"b{k}", rnd.choice(texts), t + rnd.uniform(0, window / 12)))
    posts.sort(key=lambda p: p[2])
    _twins(posts, window_seconds=window, near_duplicates=False, every=5)


@needs_core
def test_odd_texts_give_the_same_answers() -> None:
    texts = ["", " ", "。", "好", "好的", "aa", "a b c", "#鲸帆手机# 电池鼓包", "＃鲸帆手机＃电池鼓包了", "#  #", "###",
             "𠀀𠀁𠀂𠀃 𠀀𠀁 电池鼓包 😀😀😀", "😀", "\U0010ffff\U0010fffe", "ＡＢＣ１２３ 全角 abc123",
             "iPhone 15 电池 鼓包",
             "转发微博", "//@甲:", "好//@甲:说得对//@乙:鲸帆手机电池鼓包", "鲸帆手机电池鼓包" * 6,
             "电池鼓包 #电池# #鼓包# #电池#", "http://t.cn/abc 电池鼓包 [允悲]", "_ __ ___", "١٢٣ ٤٥٦ 数字"]
    rnd = random.Random(2)
    posts: list[Post] = []
    for k in range(600):
        posts.append((f"p{k % 550}", rnd.choice(texts), k * 40.0 + rnd.uniform(-200, 200)))
    for kwargs in ({"near_duplicates": True}, {"near_duplicates": False, "min_df": 1, "min_shared": 1}):
        _twins(posts, dedup=False, window_seconds=2 * HOUR, every=5, **kwargs)  # type: ignore[arg-type]


@needs_core
def test_a_duplicate_of_an_unknown_or_expired_post_is_handled_the_same() -> None:
    a, b = TopicClusterer(native=False, window_seconds=HOUR), TopicClusterer(native=True, window_seconds=HOUR)
    calls = [("x1", "鲸帆手机电池鼓包", 0.0, None), ("x2", "鲸帆手机电池鼓包了", 10.0, "x1"),
             ("x3", "蜂鸟外卖骑手超时", 20.0, "nobody"), ("x4", "鲸帆手机电池鼓包", 5000.0, "x1"),
             ("x5", "别的事情", 5001.0, "x4"), ("x5", "又是别的事情", 5002.0, "x5")]
    for pid, text, ts, dup in calls:
        assert a.add(pid, text, ts, duplicate_of=dup) == b.add(pid, text, ts, duplicate_of=dup)
        for cid in a.clusters():
            _check(a, b, cid)


def test_native_true_without_the_extension_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("monitor.analysis.cluster.load", lambda name: None)

    def missing(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr("monitor.analysis.cluster.importlib.import_module", missing)
    with pytest.raises(RuntimeError, match="not built"):
        TopicClusterer(native=True)
    assert TopicClusterer()._core is None  # the default falls back to Python


def test_monitor_native_0_turns_the_core_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_NATIVE", "0")
    assert native.load("_cluster_c") is None
    assert TopicClusterer()._core is None


@needs_core
def test_the_core_is_used_by_default_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_NATIVE", raising=False)
    assert TopicClusterer()._core is not None
    # Parameters the C core does not take fall back to Python, unless the core was asked for.
    assert TopicClusterer(posting_cap=1)._core is None
    with pytest.raises(ValueError):
        TopicClusterer(posting_cap=1, native=True)


@needs_core
def test_many_clusterers_free_their_memory() -> None:
    """Building, using and dropping clusterers leaves no memory behind (the C core allocates through PyMem, which
    tracemalloc sees)."""
    import gc
    import tracemalloc

    def run() -> None:
        c = TopicClusterer(native=True, window_seconds=HOUR, df_slots=1 << 16, recent_posts=50)
        for k in range(400):
            c.add(f"p{k}", f"鲸帆手机电池鼓包第{k % 17}次 型号{k % 5} #话题{k % 3}#", k * 30.0)
        for cid in c.clusters():
            c.label(cid)
        c.expire(1e9)
        gc.collect()

    run()
    tracemalloc.start()
    try:
        run()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            run()
        assert tracemalloc.get_traced_memory()[0] - before < 50_000
    finally:
        tracemalloc.stop()


@needs_core
def test_token_codes_in_c_are_textfeats(shared_data: Path) -> None:
    """The C core's copy of textfeat.token_codes: the same codes, texts and order, on real posts (raw and cleaned)
    and on random strings of CJK, stop characters, full-width forms, Hangul, digits of other scripts, astral
    characters and lone surrogates."""
    core = TopicClusterer(native=True)._core
    texts = _background(shared_data, 3000)
    texts += [original for original, _ in _cascades(shared_data, 20, 0)]
    rnd = random.Random(9)
    pool = [chr(c) for c in [*range(32, 0x250), *range(0x3000, 0x3440), *range(0x4E00, 0x4E80), *range(0xAC00, 0xAC10),
                             *range(0xF8F0, 0xFB10), *range(0xFF00, 0xFF70), 0x20000, 0x20001, 0x1F600, 0x10FFFF,
                             0xD800, 0x2160, 0x2460, 0x0660, 0x00B2, 0x00BD]]
    pool += list("的了吗我们是这个 _#abc")
    texts += ["".join(rnd.choice(pool) for _ in range(rnd.randint(0, 14))) for _ in range(20_000)]
    for text in texts:
        for x in (text, clean(text)):
            assert list(core.token_codes(x).items()) == list(token_codes(x).items()), x
