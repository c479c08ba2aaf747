"""The surge detector, watch rules and incident grouping as pure functions of a stream."""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import pairwise

import pytest

from alerts.incidents import IncidentTracker
from monitor.analysis.surge import (
    SEVERITIES,
    DetectionConfig,
    Event,
    Signal,
    SurgeDetector,
    find_cues,
    render_reason,
)
from monitor.analysis.watch import WatchConfig, WatchMatcher

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC


def neg(i: int, ts: float, author: str, keys: tuple[str, ...], source: str = "weibo", **kw: object) -> Event:
    """A negative post."""
    return Event(f"p{i}", ts, author, source, True, keys, **kw)  # type: ignore[arg-type]


def run(det: SurgeDetector, events: list[Event]) -> list[Signal]:
    """Feed events in order and collect the signals."""
    out: list[Signal] = []
    for ev in sorted(events, key=lambda e: e.ts):
        out += det.add(ev)
    return out


def burst(n: int, start: float, minutes: float, key: str = "topic:t1", authors: int | None = None,
          sources: tuple[str, ...] = ("weibo",), seed: int = 1, **kw: object) -> list[Event]:
    """``n`` negative posts on one topic spread over ``minutes``, by ``authors`` distinct people."""
    rnd = random.Random(seed)
    authors = authors or n
    return [neg(1000 + i, start + rnd.uniform(0, minutes * 60), f"u{i % authors}", (key,),
                sources[i % len(sources)], **kw) for i in range(n)]


def test_one_angry_post_or_a_few_unrelated_ones_raise_nothing() -> None:
    det = SurgeDetector()
    assert run(det, [neg(1, T0, "a", ("topic:x",))]) == []
    unrelated = [neg(i, T0 + i * 300, f"u{i}", (f"topic:t{i}",)) for i in range(10)]
    assert run(det, unrelated) == []


def test_a_crowd_repeating_one_grievance_is_a_surge_with_reasons() -> None:
    det = SurgeDetector()
    signals = run(det, burst(30, T0, 20, sources=("weibo", "tieba", "heimao")))
    assert signals, "30 people on one grievance in 20 minutes must raise a surge"
    first = signals[0]
    assert first.first and first.key == "topic:t1"
    assert first.authors >= 5 and first.at <= T0 + 20 * 60
    last = signals[-1]
    assert SEVERITIES.index(last.severity) >= SEVERITIES.index("yellow")
    codes = {r.code for r in last.reasons}
    assert {"volume", "rate", "spread"} <= codes
    text = render_reason(next(r for r in last.reasons if r.code == "volume"), "en")
    assert f"by {last.authors} authors on 3 platforms" in text
    assert "位用户" in render_reason(last.reasons[0], "zh")


def test_one_person_posting_twenty_times_is_one_voice() -> None:
    det = SurgeDetector()
    assert run(det, burst(20, T0, 10, authors=1)) == []
    assert run(SurgeDetector(), burst(20, T0, 10, authors=4)) == []


def test_a_positive_viral_topic_never_alerts() -> None:
    """300 posts on one topic, 10 % misread as negative by many authors: the share gate holds."""
    rnd = random.Random(3)
    events = [Event(f"p{i}", T0 + rnd.uniform(0, 1800), f"u{i}", "weibo", rnd.random() < 0.1, ("topic:v",))
              for i in range(300)]
    assert run(SurgeDetector(), events) == []


def test_cues_and_engagement_raise_the_score() -> None:
    plain = run(SurgeDetector(), burst(12, T0, 30))
    loud = run(SurgeDetector(), burst(12, T0, 30, cues=("维权群",), engagement=500))
    assert plain and loud
    assert max(s.score for s in loud) > max(s.score for s in plain) + 2
    assert any(r.code == "cues" for r in loud[-1].reasons)


def test_signals_are_deterministic_and_rate_limited() -> None:
    events = burst(200, T0, 60)
    a = run(SurgeDetector(), events)
    b = run(SurgeDetector(), list(reversed(events)))
    assert [(s.at, s.severity, s.score) for s in a] == [(s.at, s.severity, s.score) for s in b]
    cfg = DetectionConfig()
    assert a[0].first and not any(s.first for s in a[1:])
    # After the first signal, others come on escalation, a doubling of authors, or update_every apart.
    peak = a[0].authors
    for prev, cur in pairwise(a):
        assert cur.escalated or cur.authors >= 2 * peak or cur.at - prev.at >= cfg.update_every
        peak = max(peak, cur.authors)
    assert len(a) < 20


def _steady(det: SurgeDetector, hours: int, per_hour: int, key: str = "watch:*", seed: int = 5,
            negative_share: float = 0.4) -> list[Signal]:
    """A whole-stream watch with a steady mix of posts, ``per_hour`` of them negative, each by another author."""
    rnd = random.Random(seed)
    out: list[Signal] = []
    n = 0
    total = int(per_hour / negative_share)
    for h in range(hours):
        times = sorted(T0 + h * 3600 + rnd.uniform(0, 3600) for _ in range(total))
        for ts in times:
            n += 1
            out += det.add(Event(f"s{n}", ts, f"a{n}", "weibo", rnd.random() < negative_share, (key,)))
    return out


def test_a_watch_learns_its_usual_volume_and_flags_a_rise() -> None:
    det = SurgeDetector()
    assert _steady(det, 48, 30) == [], "a steady stream is not a surge, however large"
    start = T0 + 48 * 3600
    extra = [Event(f"x{i}", start + 60 * (i / 4), f"angry{i}", "weibo", True, ("watch:*",)) for i in range(160)]
    signals = run(det, extra)
    assert signals and signals[0].key == "watch:*"
    assert signals[0].at - start <= 30 * 60
    assert any(r.code == "rate" and r.get("baseline") == "history" for r in signals[0].reasons)


def test_a_new_watch_is_learned_before_it_can_alert_unless_seeded() -> None:
    det = SurgeDetector()
    fast = [Event(f"x{i}", T0 + i * 20, f"u{i}", "weibo", True, ("watch:brand",)) for i in range(60)]
    assert run(det, fast) == [], "with no history the first hours are learning, not a surge"
    seeded = SurgeDetector()
    seeded.seed_baseline("watch:brand", [(T0 - 3600 * (48 - h), 1, 10, 1) for h in range(48)])
    assert run(seeded, fast), "with two days of quiet history the same burst is a surge"


def test_an_ended_surge_goes_quiet() -> None:
    det = SurgeDetector(DetectionConfig(quiet_after=3600))
    assert run(det, burst(30, T0, 20))
    assert det.active() == {"topic:t1": det.active()["topic:t1"]}
    assert det.expire(T0 + 20 * 60 + 1800) == []
    assert det.expire(T0 + 4 * 3600) == ["topic:t1"]
    assert det.active() == {}


def test_find_cues_prefers_the_longest_words() -> None:
    assert find_cues("大家一起去12315集体投诉，已经建了维权群", ["投诉", "集体投诉", "12315", "维权群", "维权"]) == \
        ("12315", "集体投诉", "维权群")
    assert find_cues("挺好用的", ["投诉"]) == ()


def test_watch_rules_any_all_none_and_sources() -> None:
    m = WatchMatcher([
        WatchConfig(name="brand", keywords=["鲸帆", "JF手机"], none=["招聘"]),
        WatchConfig(name="refund", all=["鲸帆", ["退款", "退货"]]),
        WatchConfig(name="weibo-only", keywords=["鲸帆"], sources=["weibo"]),
    ])
    assert m.match("ＪＦ手机又发热了", "tieba") == ["brand"]  # full-width folded
    assert m.match("鲸帆不给退款", "weibo") == ["brand", "refund", "weibo-only"]
    assert m.match("鲸帆招聘客服", "tieba") == []
    assert m.match("退款太慢", "weibo") == []
    assert m.hits("鲸帆不给退款", "refund") == ["鲸帆", "退款"]


def test_incidents_group_a_watch_surge_into_its_topic_incident() -> None:
    det = SurgeDetector()
    info = {f"p{1000 + i}": (f"u{i}", "weibo") for i in range(60)}
    tracker = IncidentTracker(info.get, lambda topic: (["退款", "电池"], "p1000", ""))
    events = [replace(e, keys=("topic:t1",)) for e in burst(30, T0, 20)]
    changes = tracker.apply(run(det, events))
    assert changes[0].opened and len(tracker.open) == 1
    incident = changes[-1].incident
    assert incident.title == "退款 电池" and incident.representative == "p1000"
    assert len(incident.authors) >= 5 and incident.sources == {"weibo"}
    # A watch-level signal made of the same posts joins that incident instead of opening another.
    watch_signal = replace(changes[-1].signal, key="watch:brand")
    joined = tracker.apply([watch_signal])
    assert not joined[0].opened and joined[0].incident.id == incident.id
    assert incident.watches == ["brand"] and incident.title.startswith("brand · ")
    # Another topic's signal with other posts is another incident.
    other = replace(changes[-1].signal, key="topic:t2", post_ids=("q1", "q2", "q3", "q4", "q5"))
    assert tracker.apply([other])[0].opened and len(tracker.open) == 2
    assert [i.id for i in tracker.close_keys(["topic:t2"])] == [incident.id + 1]


def test_a_topic_surge_joins_the_watch_incident_that_already_holds_its_posts() -> None:
    """The watch window often crosses its bar first; the grievance's topic then names that incident instead of
    opening a second one for the same posts. A second topic in the same watch incident is a new incident."""
    info = {f"p{1000 + i}": (f"u{i}", "weibo") for i in range(60)}
    tracker = IncidentTracker(info.get, lambda topic: (["退款", "电池"], "p1000", ""))
    signal = run(SurgeDetector(), burst(30, T0, 20))[-1]
    others = ("q1", "q2", "q3", "q4", "q5", "q6")  # the brand's other negative posts in the same window
    opened = tracker.apply([replace(signal, key="watch:brand", post_ids=signal.post_ids + others)])
    assert opened[0].opened and len(tracker.open) == 1
    incident = opened[0].incident
    assert incident.title == "brand"
    joined = tracker.apply([signal])  # the topic's own signal over the same posts
    assert not joined[0].opened and joined[0].incident.id == incident.id and len(tracker.open) == 1
    assert incident.keys == ["watch:brand", "topic:t1"] and incident.title == "brand · 退款 电池"
    second = replace(signal, key="topic:t2", post_ids=others)  # another grievance inside the brand's window
    assert tracker.apply([second])[0].opened and len(tracker.open) == 2


def test_a_spread_text_titles_its_incident_by_its_first_words() -> None:
    """A topic that is one complaint copied around has a headline: the title reads it instead of keywords."""
    info = {f"p{1000 + i}": (f"u{i}", "weibo") for i in range(60)}
    heads = {"t1": "套餐不值，上面写的土豆泥", "t2": ""}
    tracker = IncidentTracker(info.get, lambda topic: (["套餐不值", "结果送", "上面写"], "p1000", heads[topic]))
    signal = run(SurgeDetector(), burst(30, T0, 20))[-1]
    incident = tracker.apply([replace(signal, key="topic:t1")])[0].incident
    assert incident.title == "套餐不值，上面写的土豆泥" and incident.keywords[0] == "套餐不值"
    incident = tracker.apply([replace(signal, key="watch:brand", post_ids=signal.post_ids)])[0].incident
    assert incident.title == "brand · 套餐不值，上面写的土豆泥"
    other = tracker.apply([replace(signal, key="topic:t2", post_ids=("q1", "q2", "q3", "q4", "q5"))])[0].incident
    assert other.title == "套餐不值 结果送 上面写"


def test_an_author_with_a_large_following_grades_a_surge_up_but_never_opens_one() -> None:
    """The same surge is graded two thresholds' worth higher when one of its voices has 500k followers; a single post
    by that account alone raises nothing."""
    plain = run(SurgeDetector(), burst(14, T0, 30))
    big = run(SurgeDetector(), [replace(e, followers=520_000) if e.post_id == "p1003" else e
                                for e in burst(14, T0, 30)])
    assert plain and big
    assert big[-1].score == pytest.approx(plain[-1].score + 4.0)
    assert SEVERITIES.index(big[-1].severity) > SEVERITIES.index(plain[-1].severity)
    [reach] = [r for r in big[-1].reasons if r.code == "reach"]
    assert render_reason(reach) == "含大V发声：粉丝 520,000"
    assert run(SurgeDetector(), [replace(neg(1, T0, "star", ("topic:x",)), followers=2_000_000)]) == []


def test_followers_are_read_from_what_weibo_like_sources_store() -> None:
    from monitor.normalize import followers_of

    assert followers_of({"followers": 1200}) == 1200
    assert followers_of({"user": {"followers_count": "520000"}}) == 520_000
    assert followers_of({"followers_count": True}) is None and followers_of(None) is None and followers_of({}) is None


def test_a_topic_leaning_negative_alerts_though_few_posts_pass_the_bar() -> None:
    """A mild complaint spread by many reposts: a fifth of the posts over the bar, all leaning negative (0.6), is a
    wave; the same counts on posts leaning positive (0.2) are not (the share and lean gates)."""
    def events(lean: float) -> list[Event]:
        return [Event(f"p{i}", T0 + 30 * i, f"u{i}", "weibo", i % 5 == 0, ("topic:m",), lean=lean if i % 5 else 0.7)
                for i in range(60)]

    leaning = run(SurgeDetector(), events(0.6))
    assert leaning and leaning[0].key == "topic:m" and leaning[0].authors >= 6
    assert run(SurgeDetector(), events(0.2)) == []
    assert run(SurgeDetector(DetectionConfig(min_negative_lean=0.65)), events(0.6)) == []
