"""Near-duplicate index: edited copies are found, different complaints are not, the window bounds memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.analysis.dedup import NearDuplicateIndex, jaccard

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0

ORIGINAL = "鲸帆手机充电的时候电池鼓包还发烫，差点起火，售后说是人为损坏不给保修，大家千万别买"
COPIES = {
    "repost": "//@吃瓜群众:" + ORIGINAL,
    "repost with comment": "太可怕了//@路人甲：" + ORIGINAL,
    "edited": "鲸帆手机充电的时侯电池鼓包还发烫，差点就起火，售后说是人为损坏不给保修，大家千万别买！",
    "emoticons": "鲸帆手机充电的时候电池鼓包还发烫[怒][怒]，差点起火😱，售后说是人为损坏不给保修，大家千万别买[拜拜]",
    "punctuation": "鲸帆手机充电的时候电池鼓包还发烫!!差点起火。。。售后说是人为损坏不给保修 大家千万别买~~~",
    "url": ORIGINAL + " http://t.cn/A6abcdEf",
    "full width": "鲸帆手机充电的时候电池鼓包还发烫，差点起火，售后说是人为损坏不给保修，大家千万别买！！ＪＦ",
}
DIFFERENT = [
    "鲸帆手机的屏幕用了三个月就出现绿线，去售后检测说要自费换屏，太坑了",
    "外卖骑手把汤洒了一半还不道歉，打电话给客服一直占线，再也不点这家了",
    "银行信用卡莫名其妙被扣了年费，客服说是系统自动收取的，拒绝退还",
    "鲸帆手机新品发布会定在下周三，据说会有新的快充技术和更大的电池",
]


def test_edited_copies_are_found() -> None:
    for kind, copy in COPIES.items():
        index = NearDuplicateIndex(window_seconds=24 * HOUR)
        assert index.add("orig", ORIGINAL, 0.0) is None
        assert index.add("copy", copy, 60.0) == "orig", kind
        assert jaccard(ORIGINAL, copy) >= index.threshold, kind


def test_different_complaints_are_not_duplicates() -> None:
    index = NearDuplicateIndex()
    assert index.add("orig", ORIGINAL, 0.0) is None
    for i, text in enumerate(DIFFERENT):
        assert index.add(f"d{i}", text, 10.0 + i) is None, text
    assert len(index) == 1 + len(DIFFERENT)


def test_the_earliest_duplicate_in_the_window_is_reported() -> None:
    index = NearDuplicateIndex(window_seconds=HOUR)
    index.add("a", ORIGINAL, 0.0)
    assert index.add("b", COPIES["edited"], 100.0) == "a"
    assert index.add("c", COPIES["repost"], 200.0) == "a"
    match = index.add_match("d", COPIES["url"], 300.0)
    assert match is not None and match.post_id == "a" and match.ts == 0.0 and 0.5 <= match.similarity <= 1.0
    # Once "a" is out of the window, the earliest copy left is the answer.
    assert index.add("e", ORIGINAL, HOUR + 50.0) == "b"


def test_short_texts_match_only_when_identical_after_cleaning() -> None:
    index = NearDuplicateIndex()
    assert index.add("s1", "太差了", 0.0) is None
    assert index.add("s2", "太差了！！[怒]", 1.0) == "s1"
    assert index.add("s3", "太烂了", 2.0) is None
    assert index.add("s4", "真差劲", 3.0) is None
    assert index.add("s5", "[心]", 4.0) is None  # nothing left after cleaning: never a duplicate
    assert index.add("s6", "[心][心]", 5.0) is None


def test_find_does_not_record() -> None:
    index = NearDuplicateIndex()
    index.add("a", ORIGINAL, 0.0)
    hit = index.find(COPIES["edited"])
    assert hit is not None and hit.post_id == "a"
    assert index.find(DIFFERENT[0]) is None
    assert len(index) == 1


def test_a_post_is_never_its_own_duplicate() -> None:
    index = NearDuplicateIndex()
    assert index.add("a", ORIGINAL, 0.0) is None
    assert index.add("a", ORIGINAL, 1.0) is None
    assert index.add("b", ORIGINAL, 2.0) == "a"


def test_window_expiry_frees_memory() -> None:
    index = NearDuplicateIndex(window_seconds=HOUR)
    for i in range(300):
        index.add(f"p{i}", f"第{i}号投诉：{DIFFERENT[i % 4]}，编号{i * 7919}", float(i))
    for i in range(50):
        index.add(f"s{i}", f"差评{i}", 300.0 + i)
    assert len(index) == 350
    assert index.evict(300.0 + HOUR) == 300  # the long posts are older than the window now
    assert len(index) == 50
    assert index.evict(10 * HOUR) == 50
    assert len(index) == 0
    assert len(index._buckets) == 0 and index._exact == {}
    assert index._copies == {} and index._first == {}
    # A post older than the window is checked but not kept.
    assert index.add("late", ORIGINAL, 0.0) is None
    assert len(index) == 0


def test_a_campaign_of_copies_keeps_buckets_small() -> None:
    index = NearDuplicateIndex(bucket_cap=4)
    for i in range(200):
        assert index.add(f"c{i}", ORIGINAL, float(i)) == (None if i == 0 else "c0")
    assert len(index._buckets) <= 4 * index.bands


def test_an_exact_copy_gets_the_answer_of_its_first_copy() -> None:
    """Copies of a filed text skip the sketch but answer as a lookup would: the earliest near-duplicate."""
    index = NearDuplicateIndex(window_seconds=HOUR)
    index.add("a", ORIGINAL, 0.0)
    assert index.add("b", COPIES["edited"], 100.0) == "a"
    match = index.add_match("c", COPIES["edited"], 200.0)  # an exact copy of b: still a's
    assert match is not None and match.post_id == "a" and match.similarity < 1.0
    # a leaves: b's copies are looked up afresh and find b, the earliest left.
    assert index.add("d", COPIES["edited"], HOUR + 50.0) == "b"
    assert index.add("e", COPIES["edited"], HOUR + 60.0) == "b"


def test_copies_outlive_their_first_copy() -> None:
    """When the filed copy of a text leaves the window, an unfiled copy still in it takes its place, so later copies
    and edited copies still find one."""
    index = NearDuplicateIndex(window_seconds=HOUR)
    assert index.add("a", ORIGINAL, 0.0) is None
    assert index.add("b", ORIGINAL, 600.0) == "a"
    assert index.add("c", ORIGINAL, 1200.0) == "a"
    assert index.add("d", ORIGINAL, HOUR + 100.0) == "b"
    assert index.add("e", COPIES["edited"], HOUR + 200.0) == "b"
    assert index.add("f", ORIGINAL, HOUR + 700.0) == "c"
    assert index.add("g", COPIES["edited"], HOUR + 800.0) == "c"
    index.evict(10 * HOUR)
    assert len(index) == 0 and len(index._buckets) == 0 and index._copies == {} and index._first == {}


def test_answers_are_the_same_in_every_process() -> None:
    code = ("import json; from monitor.analysis.dedup import NearDuplicateIndex\n"
            "from tests.test_dedup import ORIGINAL, COPIES, DIFFERENT\n"
            "ix = NearDuplicateIndex()\n"
            "texts = [ORIGINAL, *COPIES.values(), *DIFFERENT] * 2\n"
            "print(json.dumps([ix.add(str(i), t, float(i)) for i, t in enumerate(texts)]))")
    outs = []
    for seed in ("0", "999"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                             check=True)
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1]
    assert outs[0][1:1 + len(COPIES)] == ["0"] * len(COPIES)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        NearDuplicateIndex(window_seconds=0)
    with pytest.raises(ValueError):
        NearDuplicateIndex(threshold=1.5)
