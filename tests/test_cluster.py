"""Topic clustering: events grouped, different complaints kept apart, readable labels, expiry, determinism."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from monitor.analysis.cluster import TopicClusterer, headline, readable_keywords

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT.parent / "shared" / "data" / "topics" / "weibo2018"
HOUR = 3600.0

BATTERY = [
    "鲸帆手机充电时电池鼓包，后盖都被顶开了，太危险了",
    "我的鲸帆手机电池也鼓包了，才买了三个月，售后让我自己承担",
    "鲸帆手机电池鼓包的人越来越多了，官方能不能出来回应一下",
    "刚看到新闻说鲸帆手机电池鼓包还冒烟，吓得我赶紧把手机关机了",
    "鲸帆手机电池鼓包这事闹大了，好几个博主都在说",
    "家里两台鲸帆手机，电池都鼓包了，这质量也太差了吧",
    "鲸帆手机电池鼓包召回了吗？我的那台也开始鼓了",
    "朋友的鲸帆手机充着电电池突然鼓包，屏幕都裂开了",
    "请问鲸帆手机电池鼓包去哪里换电池，官方售后排队好久",
    "鲸帆手机又爆出电池鼓包，上次的问题根本没解决",
]
RIDER = [
    "蜂鸟外卖的骑手把汤洒了一地，还让我给好评，什么态度",
    "蜂鸟外卖骑手超时一个小时才送到，打电话还凶我",
    "今天蜂鸟外卖骑手又超时了，饭都凉透了，投诉也没人管",
    "蜂鸟外卖的骑手直接把外卖扔在楼下，打电话也不接",
    "蜂鸟外卖骑手态度太差，超时还骂人，已经投诉了",
    "第三次遇到蜂鸟外卖骑手超时了，平台能不能管管",
    "蜂鸟外卖骑手送错了单还不承认，客服也不处理",
    "吐槽一下蜂鸟外卖的骑手，超时不说还把餐撒了",
    "蜂鸟外卖骑手偷吃我的外卖被我抓到了，气死",
    "蜂鸟外卖骑手超时半小时，还说是我地址写错了",
]
UNRELATED = [
    "今天天气不错，下午去公园散步，看到好多樱花开了",
    "周末在家追剧，这部古装剧的服装真好看",
    "终于考完试了，晚上和室友去吃火锅庆祝一下",
    "新买的跑鞋很舒服，明天早上开始晨跑计划",
    "楼下新开了一家咖啡店，拿铁味道很一般",
    "读完了一本关于宋朝历史的书，推荐给大家",
    "小猫今天学会了开柜门，把零食全翻出来了",
    "地铁上看到一个小朋友在认真背古诗，好可爱",
]


def _stream(seed: int = 7) -> list[tuple[str, str, str]]:
    posts = [(f"b{i}", "battery", t) for i, t in enumerate(BATTERY)]
    posts += [(f"r{i}", "rider", t) for i, t in enumerate(RIDER)]
    posts += [(f"u{i}", "unrelated", t) for i, t in enumerate(UNRELATED)]
    random.Random(seed).shuffle(posts)
    return posts


def _run(clusterer: TopicClusterer, posts: list[tuple[str, str, str]], start: float = 0.0) -> dict[str, str]:
    for i, (pid, _, text) in enumerate(posts):
        clusterer.add(pid, text, start + 60.0 * i)
    return {pid: clusterer.cluster_of(pid) or "" for pid, _, _ in posts}


def test_events_are_grouped_and_different_complaints_kept_apart() -> None:
    clusterer = TopicClusterer(window_seconds=24 * HOUR)
    assigned = _run(clusterer, _stream())
    battery = Counter(assigned[f"b{i}"] for i in range(len(BATTERY)))
    rider = Counter(assigned[f"r{i}"] for i in range(len(RIDER)))
    main_b, n_b = battery.most_common(1)[0]
    main_r, n_r = rider.most_common(1)[0]
    assert n_b >= 8 and n_r >= 8
    assert main_b != main_r
    assert not set(battery) & set(rider)  # no cluster mixes the two complaints
    assert all(assigned[f"u{i}"] not in (main_b, main_r) for i in range(len(UNRELATED)))
    assert clusterer.clusters(min_size=5)[:2] in ([main_b, main_r], [main_r, main_b])
    assert sorted(clusterer.members(main_b)) == sorted(p for p, c in assigned.items() if c == main_b)


def test_labels_are_readable() -> None:
    clusterer = TopicClusterer()
    assigned = _run(clusterer, _stream())
    main_b = Counter(assigned[f"b{i}"] for i in range(len(BATTERY))).most_common(1)[0][0]
    label = clusterer.label(main_b)
    assert 1 <= len(label.keywords) <= 5
    assert any(k in ("鲸帆手机电池鼓包", "鲸帆手机", "电池鼓包") for k in label.keywords), label.keywords
    assert label.representative_post_id in clusterer.members(main_b)
    assert label.size == len(clusterer.members(main_b))
    main_r = Counter(assigned[f"r{i}"] for i in range(len(RIDER))).most_common(1)[0][0]
    assert any("蜂鸟外卖" in k or "骑手" in k for k in clusterer.label(main_r).keywords)


def test_readable_keywords_join_bigrams_that_run_together() -> None:
    texts = ["人工智能改变世界", "人工智能和机器人", "未来的人工智能"]
    assert readable_keywords(["人工", "工智", "智能", "机器"], texts) == ["人工智能", "机器"]
    # 坞电 straddles the end of 好莱坞 (好莱坞电影): not a keyword of its own.
    assert readable_keywords(["好莱", "莱坞", "坞电", "电影"], ["好莱坞电影", "好莱坞明星", "好莱坞大片"]) == [
        "好莱坞", "电影"]
    # A term weighing under a tenth of the first is left out.
    assert readable_keywords(["特朗", "取消", "天气"], ["特朗普取消会谈"], weights=[2.0, 0.5, 0.1]) == ["特朗", "取消"]


def test_headline_takes_whole_leading_clauses() -> None:
    # Cleaning made punctuation spaces: between CJK they read as "，"; beside latin words and numbers they stay spaces.
    assert headline("连着买了两次同一家的 饭菜量相差很多") == "连着买了两次同一家的，饭菜量相差很多"
    long_one = "承诺60分钟送到 从来没有做到过 汉堡和薯条都凉了 还能有什么味道"
    assert headline(long_one) == "承诺60分钟送到，从来没有做到过…"
    assert headline("iphone x 屏幕 碎了") == "iphone x 屏幕，碎了"
    digits = "一二三四五六七八九十" * 3
    assert headline(digits) == digits[:24] + "…"
    assert headline("") == ""


def test_a_spread_text_gets_a_headline_and_a_subject_does_not() -> None:
    """One complaint reposted with short comments reads as its own first words; many people writing about one
    subject (the battery complaints, each in its own words) keep their keywords only."""
    root = "都说了菜不要加汤里，还加，而且菜也没有写的那么多，汤好油，加了韭菜，满碗的汤都是绿的。"
    comments = ["太过分了", "同感", "这家一直这样", "转发微博", "", "真的假的", "[怒]", "避雷"]
    clusterer = TopicClusterer()
    clusterer.add("root", root, 0.0)
    for i in range(30):
        clusterer.add(f"r{i}", f"{comments[i % len(comments)]}//@楼主:{root}", 60.0 * (i + 1))
    label = clusterer.label(clusterer.cluster_of("root") or "")
    assert label.size >= 25
    assert label.headline == "都说了菜不要加汤里，还加，而且菜也没有写的那么多…", label
    subject = TopicClusterer()
    assigned = _run(subject, _stream())
    main_b = Counter(assigned[f"b{i}"] for i in range(len(BATTERY))).most_common(1)[0][0]
    assert subject.label(main_b).headline == ""
    assert subject.label(main_b).keywords


def test_a_subject_shares_specific_words_and_a_phrase_of_feeling_does_not() -> None:
    """Battery complaints share many specific words; people frightened by different things share only 太可怕
    (``shared_terms`` is what the pipeline's coherence gate counts)."""
    subject = TopicClusterer()
    assigned = _run(subject, _stream())
    main_b = Counter(assigned[f"b{i}"] for i in range(len(BATTERY))).most_common(1)[0][0]
    assert subject.shared_terms(main_b) >= 5
    frights = ["昨晚的雷声太可怕了，一夜没睡好", "看了个恐怖片，太可怕了不敢关灯", "高速上那个车祸现场太可怕了",
               "体检报告出来了，数字太可怕", "楼下装修的电钻声太可怕了", "期末考试的题目太可怕了"]
    feeling = TopicClusterer()
    ids = {feeling.resolve(feeling.add(f"f{i}", t, 60.0 * i)) for i, t in enumerate(frights)}
    main_f = max(ids, key=lambda c: len(feeling.members(c or "")))
    assert main_f and len(feeling.members(main_f)) >= 4, "the phrase does tie them into one cluster"
    assert feeling.shared_terms(main_f) <= 2
    assert feeling.shared_terms("nonsense") == 0


def test_near_duplicates_land_in_the_same_cluster() -> None:
    clusterer = TopicClusterer()
    first = clusterer.add("a", "独家：某某乳业被曝使用过期奶粉生产酸奶，多名消费者出现不适", 0.0)
    assert clusterer.add("b", "//@新闻哥:独家：某某乳业被曝使用过期奶粉生产酸奶，多名消费者出现不适", 10.0) == first
    edited = "太可怕了//@路人:独家:某某乳业被曝使用过期奶粉生产酸奶!多名消费者出现不适[怒]"
    assert clusterer.add("c", edited, 20.0) == first
    assert clusterer.add("d", "今天的晚霞特别好看，拍了好多照片", 30.0) != first
    # Without the internal index, the caller's own duplicate finding decides.
    plain = TopicClusterer(near_duplicates=False)
    cid = plain.add("a", "某某乳业过期奶粉", 0.0)
    assert plain.add("b", "完全不同的文字也行", 1.0, duplicate_of="a") == cid
    assert plain.add("c", "再来一条没有关系的", 2.0, duplicate_of="unknown") != cid


def test_window_expiry_drops_clusters_and_their_memory() -> None:
    clusterer = TopicClusterer(window_seconds=HOUR)
    assigned = _run(clusterer, _stream())  # 28 posts, one a minute: all inside the first hour
    some = next(iter(assigned.values()))
    assert len(clusterer) > 0
    assert clusterer.expire(20 * HOUR) > 0
    assert len(clusterer) == 0 and clusterer.clusters() == []
    assert clusterer.members(some) == [] and clusterer.resolve(some) is None
    assert clusterer.cluster_of("b0") is None
    with pytest.raises(KeyError):
        clusterer.label(some)
    assert clusterer._index == {} and clusterer._post_cluster == {} and clusterer._alias == {}
    assert len(clusterer._order) == 0 and clusterer._dedup is not None and len(clusterer._dedup) == 0
    # Old members leave one by one: half a window later only the second half of a stream is left.
    _run(clusterer, _stream(), start=30 * HOUR)
    clusterer.expire(30 * HOUR + 14 * 60.0 + HOUR)
    held = sum(len(clusterer.members(c)) for c in clusterer.clusters())
    assert held == len(_stream()) - 14  # ts < now - window for the first 14


def test_a_new_cluster_has_keywords_too() -> None:
    clusterer = TopicClusterer()
    cid = clusterer.add("x", "鲸帆手机电池鼓包", 0.0)
    label = clusterer.label(cid)
    assert label.size == 1 and label.representative_post_id == "x"
    assert label.keywords and all(k in "鲸帆手机电池鼓包" for k in label.keywords)


def test_unknown_ids() -> None:
    clusterer = TopicClusterer()
    assert clusterer.resolve("c999") is None and clusterer.resolve("nonsense") is None
    assert clusterer.members("x") == []
    with pytest.raises(KeyError):
        clusterer.label("c0")


def test_same_stream_same_clusters_in_every_process() -> None:
    code = ("import json; from tests.test_cluster import TopicClusterer, _stream, _run\n"
            "print(json.dumps(_run(TopicClusterer(), _stream(3)), sort_keys=True))")
    outs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                             check=True)
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1]
    assert outs[0] == _run(TopicClusterer(), _stream(3))


@pytest.mark.skipif(not GOLD.is_dir(), reason=f"topic gold set not found at {GOLD} (../shared/data is absent)")
def test_gold_topics_v_measure_floor() -> None:
    """Six Weibo topics (weibo2018 gold set), one shuffled order: V-measure at least 0.8 (bench/topics.py: ~0.89)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_topics", ROOT / "bench" / "topics.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    gold = bench.load_gold(GOLD)
    assert len(gold) >= 590
    _, pred = bench.run_order(gold, 0)
    _, _, v = bench.v_measure([t for _, t, _ in gold], pred)
    assert v >= 0.8, v
    assert bench.adjusted_rand_index([t for _, t, _ in gold], pred) >= 0.75
