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
import sys
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


def _same_state(a: TopicClusterer, b: TopicClusterer) -> None:
    """The C core's bookkeeping equals the Python clusterer's: every live cluster's members (order and times),
    kept samples and absorbed ids, the post -> cluster map, the order queue, aliases and their heap, the kept terms."""
    core = b._core
    assert sorted(a._clusters) == sorted(num for _, num in core.sizes(1))
    for num, cluster in a._clusters.items():
        assert [(p, float(t)) for p, t in cluster.members] == core.members(num), num
        assert [(p, float(t), x) for p, t, x in cluster.samples] == core.samples(num), num
        assert a._absorbed.get(num, []) == core.absorbed(num), num
    assert a._post_cluster == core.post_clusters()
    stats = core.stats()
    assert (stats["order"], stats["aliases"], stats["heap"], stats["cached"]) == \
        (len(a._order), len(a._alias), len(a._alias_heap), len(a._codes))
    assert len(a._alias_until) == len(a._alias)
    assert a._now == core.clock()


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
            _same_state(a, b)
    for cid in a.clusters():
        _check(a, b, cid)
    _same_state(a, b)
    last = max(ts for _, _, ts in posts)
    for step in (0.5, 1.0, 3.0):  # the window slides past everything
        assert a.expire(last + step * a.window_seconds) == b.expire(last + step * b.window_seconds)
        assert a.clusters() == b.clusters() and len(a) == len(b)
        _same_state(a, b)
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
    monkeypatch.setattr("monitor.analysis.cluster.built", lambda name: None)  # as when it was not built
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

    def run() -> None:  # merges, aliases, duplicates named, tags, more texts than the kept terms, expiry
        c = TopicClusterer(native=True, window_seconds=HOUR, df_slots=1 << 16, recent_posts=50)
        for k in range(2300):
            c.add(f"p{k}", f"鲸帆手机电池鼓包第{k % 17}次 型号{k} #话题{k % 3}#", k * 3.0,
                  duplicate_of=f"p{k // 2}" if k % 5 == 0 else None)
            if k % 500 == 0:
                for cid in c.clusters():
                    c.label(cid)
        c.expire(1e9)
        gc.collect()

    run()
    tracemalloc.start()
    try:
        run()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
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


def _replay_checked(posts: list[Post], *, dup_share: float = 0.0, seed: int = 0, check_every: int = 50,
                    tail_steps: int = 12, **params: Any) -> dict[str, int]:
    """Both clusterers over ``posts``; ``dup_share`` of the posts name a random earlier post as ``duplicate_of``
    (it may have expired, or its cluster been absorbed). Every id ever returned is compared (resolve, absorbed) at
    each check and while the window slides past the end in ``tail_steps`` steps; the internal state too. Returns
    counts of what the stream exercised."""
    rnd = random.Random(seed)
    a = TopicClusterer(native=False, **params)
    b = TopicClusterer(native=True, **params)
    seen: dict[str, None] = {}
    seen_pids: list[str] = []
    found = {"aliased": 0, "alias_expired": 0, "dup_expired": 0, "dup_absorbed": 0, "merges": 0}
    aliased: set[str] = set()

    def check_all() -> None:
        for cid in seen:
            got = a.resolve(cid)
            assert got == b.resolve(cid), cid
            assert a.absorbed(cid) == b.absorbed(cid), cid
            if got is not None and got != cid:
                aliased.add(cid)
            elif got is None and cid in aliased:
                aliased.discard(cid)
                found["alias_expired"] += 1
        found["aliased"] = max(found["aliased"], len(aliased))
        _same_state(a, b)

    for i, (pid, text, ts) in enumerate(posts):
        dup = None
        if seen_pids and rnd.random() < dup_share:
            dup = rnd.choice(seen_pids)
            home = a._post_cluster.get(dup)
            if home is None:
                found["dup_expired"] += 1
            elif a._follow(home) != home:
                found["dup_absorbed"] += 1
        got = a.add(pid, text, ts, duplicate_of=dup)
        assert b.add(pid, text, ts, duplicate_of=dup) == got, (i, pid, text)
        found["merges"] += bool(a.absorbed(got))
        seen[got] = None
        seen_pids.append(pid)
        if i % check_every == 0:
            check_all()
            for cid in (got, *rnd.sample(list(seen), min(3, len(seen)))):
                _check(a, b, cid)
    check_all()
    last = max(ts for _, _, ts in posts)
    for k in range(1, tail_steps + 1):  # members leave a few at a time, then aliases, then everything
        now = last + 1.5 * a.window_seconds * k / tail_steps
        assert a.expire(now) == b.expire(now)
        check_all()
        for cid in a.clusters():
            _check(a, b, cid)
    # Everything has left: no cluster, alias or post entry stays behind (a member stuck behind a later one in its
    # cluster's order may outlive its absorbed cluster's alias; its entry goes all the same).
    assert len(b) == 0 and b._core.stats()["aliases"] == b._core.stats()["heap"] == 0
    assert b._core.post_clusters() == {} and a._post_cluster == {}
    return found


@needs_core
def test_merges_aliases_and_duplicates_expire_the_same_across_windows(shared_data: Path) -> None:
    """A 3-hour window over 30 hours of posts and cascades: clusters merge, absorbed ids resolve to the survivor and
    then stop resolving, and a third of the posts name an earlier post as their original, which may have expired
    or sit in an absorbed cluster."""
    posts = _stream(shared_data, background=1500, events=8, per_event=120, hours=30, seed=21)
    found = _replay_checked(posts, dup_share=0.3, seed=4, window_seconds=3 * HOUR, near_duplicates=False)
    assert found["merges"] > 10 and found["aliased"] > 5 and found["alias_expired"] > 5, found
    assert found["dup_expired"] > 100 and found["dup_absorbed"] > 10, found


@needs_core
def test_the_internal_duplicate_index_and_duplicates_named_by_the_caller(shared_data: Path) -> None:
    posts = _stream(shared_data, background=800, events=4, per_event=100, hours=12, seed=8)
    _replay_checked(posts, dup_share=0.2, seed=6, window_seconds=2 * HOUR, near_duplicates=True)


@needs_core
def test_members_and_samples_rotate_the_same_beyond_16(shared_data: Path) -> None:
    """Two topics with hundreds of members each, posted on for two windows so the oldest members leave while new
    ones join: the kept samples rotate through the latest members (the first half stays) and are filtered as their
    posts leave; the state is compared every third post."""
    rnd = random.Random(3)
    texts = _background(shared_data, 300)
    topics = [["鲸帆手机电池鼓包，售后不管", "鲸帆手机电池又鼓包了", "鲸帆手机电池鼓包召回了吗"],
              ["蜂鸟外卖骑手超时被罚款", "蜂鸟外卖骑手超时扣钱", "蜂鸟外卖又超时了骑手被罚"]]
    posts: list[Post] = []
    for k in range(700):
        t = k * 20.0
        topic = topics[k % 2]
        posts.append((f"t{k}", rnd.choice(topic) + rnd.choice(["", "！", "，气死", f" 第{k % 9}次了"]), t))
        if k % 3 == 0:
            posts.append((f"b{k}", rnd.choice(texts), t + 5.0))
    _replay_checked(posts, check_every=3, tail_steps=30, window_seconds=3 * HOUR, near_duplicates=False)
    a = TopicClusterer(native=False, window_seconds=3 * HOUR, near_duplicates=False)
    for pid, text, ts in posts[:300]:
        a.add(pid, text, ts)
    assert max(len(c.members) for c in a._clusters.values()) > 100  # well past the 16 kept samples


@needs_core
def test_hashtags_give_the_same_terms_and_topics(shared_data: Path) -> None:
    """Real posts with tags added: ASCII and full-width marks, repeated tags, tags with spaces, case and full-width
    letters, tags too long to count, tags only some posts of a topic carry."""
    rnd = random.Random(12)
    tags = ["#鲸帆手机#", "＃鲸帆手机＃", "#鲸帆 手机#", "#KunPeng# ", "#ＫｕｎＰｅｎｇ#", "#电池#",
            "#" + "长" * 45 + "#", "#a#", "# #", "#鲸帆手机##电池#", "#话题#话题#"]
    posts: list[Post] = []
    for k, text in enumerate(_background(shared_data, 1500)):
        if rnd.random() < 0.5:
            text = rnd.choice(tags) + text + rnd.choice(["", *tags])
        posts.append((f"h{k}", text, k * 25.0))
    _replay_checked(posts, dup_share=0.05, seed=1, window_seconds=4 * HOUR, near_duplicates=False, min_shared=1)


@needs_core
def test_repeated_texts_beyond_the_terms_cache_give_the_same_topics(shared_data: Path) -> None:
    """3,000 distinct texts posted twice, 3,000 posts apart (more than the 2,048 texts whose terms are kept: the
    second copy is tokenised again), and some again a few posts later (from the kept terms)."""
    texts = _background(shared_data, 3000)
    posts: list[Post] = []
    for rep in range(2):
        for k, text in enumerate(texts):
            t = (rep * len(texts) + k) * 3.0
            posts.append((f"r{rep}-{k}", text, t))
            if k % 10 == 0:
                posts.append((f"r{rep}-{k}-again", text, t + 1.0))
    _replay_checked(posts, check_every=600, tail_steps=3, window_seconds=2 * HOUR, near_duplicates=False)


@needs_core
def test_post_ids_and_texts_are_released() -> None:
    """The C core holds references to post ids and cleaned texts (members, samples, the post map, the kept terms)
    and gives every one back: when the posts leave the window, and when the clusterer goes."""
    import gc

    def fresh(k: int, kind: str) -> str:
        return "".join([kind, str(k), "x"])  # a new str object each time, not interned

    pids = [fresh(k, "p") for k in range(3000)]
    texts = [f"鲸帆手机电池鼓包第{k % 40}次 型号{k % 7} " + "".join(["话题", str(k % 2500)]) for k in range(3000)]
    cleaned = [clean(t) for t in texts]
    before = [sys.getrefcount(x) for x in pids], [sys.getrefcount(x) for x in cleaned]
    c = TopicClusterer(native=True, window_seconds=HOUR, near_duplicates=False)

    def feed(c: TopicClusterer) -> None:  # (loop variables hold references too)
        merged = 0
        for k, (pid, text, cl) in enumerate(zip(pids, texts, cleaned, strict=True)):
            dup = pids[k - 5] if k >= 5 and k % 4 == 0 else None
            merged += bool(c.absorbed(c.add(pid, text + (" #鲸帆手机#" if k % 3 == 0 else ""), k * 2.0,
                                            duplicate_of=dup, cleaned=cl)))
        assert merged > 0
        for cid in c.clusters():
            c.label(cid)

    feed(c)
    assert all(sys.getrefcount(x) > n for x, n in zip(pids[-100:], before[0][-100:], strict=True))
    assert c._core.stats()["cached"] == 2048
    c.expire(1e9)
    stats = c._core.stats()
    assert (stats["posts"], stats["order"], stats["aliases"], len(c)) == (0, 0, 0, 0)
    # Post ids are all released; the kept terms still hold the latest texts.
    assert [sys.getrefcount(x) for x in pids] == before[0]
    del c
    gc.collect()
    assert ([sys.getrefcount(x) for x in pids], [sys.getrefcount(x) for x in cleaned]) == before
