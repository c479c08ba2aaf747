"""Incident grouping over time: posts between signals, topics merged in mid-surge, a quiet incident flaring up again
(the tracker, its rows in the database, and the message it causes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from alerts.incidents import REFLARE_SECONDS, IncidentTracker
from monitor.analysis.pipeline import Annotation
from monitor.analysis.surge import Reason, Signal
from monitor.config import parse_config
from monitor.db import Store, make_engine, upgrade
from monitor.db.schema import incident_events, incident_points, incident_posts, incidents, notifications, posts
from monitor.normalize import Post, content_hash

T0 = 1_763_600_000.0


def signal(key: str, at: float, post_ids: tuple[str, ...], **kw: object) -> Signal:
    """A surge signal as the detector raises it."""
    n = len(post_ids)
    volume = Reason("volume", (("negatives", n), ("authors", n), ("sources", 1), ("minutes", 40)))
    return Signal(key=key, at=at, severity="yellow", score=5.0, negatives=n, authors=n, posts=n, sources=("weibo",),
                  expected=1.0, engagement=0, cue_counts=(), post_ids=post_ids, reasons=(volume,),
                  **kw)  # type: ignore[arg-type]


def note(uid: str, topic: str, counted: bool = True, watches: tuple[str, ...] = ("*",)) -> Annotation:
    """The analysis of one post."""
    return Annotation(uid, 0.9 if counted else 0.2, "negative" if counted else "positive", watches, topic, None, None,
                      (), counted)


def tracker(**kw: object) -> IncidentTracker:
    """A tracker where post ``pN`` is by ``uN`` on weibo."""
    def info(pid: str) -> tuple[str, str]:
        return (f"u{pid[1:]}", "weibo")
    return IncidentTracker(info, lambda topic: ([f"词{topic}"], None, ""), **kw)  # type: ignore[arg-type]


FIRST = tuple(f"p{i}" for i in range(6))


def test_counted_posts_of_an_open_topic_are_attached_between_signals() -> None:
    t = tracker()
    [opened] = t.apply([signal("topic:c1", T0, FIRST)])
    incident = opened.incident
    later = [note("p10", "c1"), note("p11", "c1", counted=False), note("p12", "c2"), note("p13", "c1"),
             note("p6", "c1")]
    changes = t.apply([], later, T0 + 300)
    [change] = changes
    assert change.signal is None and not change.opened and not change.escalated
    assert change.new_posts == ("p10", "p13", "p6") and change.at == T0 + 300
    assert list(incident.post_ids)[-3:] == ["p10", "p13", "p6"] and incident.post_ids["p10"] == "u10"
    assert incident.updated_at == T0 + 300
    # Already attached posts are not attached twice; nothing new is no change.
    assert t.apply([], [note("p10", "c1")], T0 + 400) == []


def test_a_whole_stream_watch_incident_does_not_sweep_in_posts_between_its_signals() -> None:
    """A watch's signals bring its window's negative posts; in between, every negative post of the stream would be
    background."""
    t = tracker()
    [opened] = t.apply([signal("watch:*", T0, FIRST)])
    assert t.apply([], [note("p20", "c9"), note("p21", "c9")], T0 + 60) == []
    assert list(opened.incident.post_ids) == list(FIRST)


def test_a_topic_merged_into_another_goes_on_as_the_same_incident() -> None:
    t = tracker()
    [opened] = t.apply([signal("topic:c5", T0, FIRST)])
    # Clustering absorbed c5 into the older c2: the event's posts now come as c2.
    merged = signal("topic:c2", T0 + 600, ("p7", "p8", "p9", "p10", "p11"), aliases=("topic:c5",))
    [joined] = t.apply([merged])
    assert not joined.opened and joined.incident is opened.incident
    assert opened.incident.keys == ["topic:c5", "topic:c2"] and len(t.open) == 1
    assert t.apply([], [note("p12", "c2")], T0 + 700)[0].incident is opened.incident
    # Without the alias it would have been a second incident.
    assert tracker().apply([replace(merged, aliases=())])[0].opened


def test_a_quiet_incident_reopens_when_its_key_flares_up_again_within_a_day() -> None:
    t = tracker()
    [opened] = t.apply([signal("topic:c1", T0, FIRST)])
    incident = opened.incident
    assert t.close_keys(["topic:c1"]) == [incident] and incident.status == "quiet" and not t.open
    again = signal("topic:c1", T0 + 6 * 3600, ("p30", "p31", "p32", "p33", "p34"))
    [change] = t.apply([again])
    assert change.reopened and not change.opened and change.incident is incident
    assert incident.status == "open" and t.open == {incident.id: incident}
    assert change.new_posts == ("p30", "p31", "p32", "p33", "p34")
    # Topics merged in before it went quiet (its signals said so) are the incident's own.
    t.apply([replace(again, at=again.at + 60, post_ids=("p36",), aliases=("topic:c3",))])
    t.close_keys(["topic:c1"])
    back = t.apply([replace(again, at=again.at + 3600, post_ids=("p37",), aliases=("topic:c3",))])
    assert back[0].reopened and back[0].incident is incident
    # Quiet again: a surge of the topic after it took in another topic may be that other topic's: a new incident.
    t.close_keys(["topic:c1"])
    merged = t.apply([replace(again, post_ids=("p35", "p36", "p37", "p38", "p39"), aliases=("topic:c7",))])
    assert merged[0].opened and not merged[0].reopened
    # A flare-up of a topic merged into another reopens the incident opened under it.
    t2 = tracker()
    [first] = t2.apply([signal("topic:c5", T0, FIRST)])
    t2.close_keys(["topic:c5"])
    assert t2.apply([signal("topic:c2", T0 + 3600, ("p50", "p51", "p52", "p53", "p54"), aliases=("topic:c5",))])[0] \
        .incident is first.incident
    # Quiet again, and a flare-up more than a day later is a new incident.
    incident = merged[0].incident
    t.close_keys(["topic:c1"])
    late = signal("topic:c1", incident.updated_at + REFLARE_SECONDS + 1, ("p40", "p41", "p42", "p43", "p44"))
    [new] = t.apply([late])
    assert new.opened and not new.reopened and new.incident.id == incident.id + 1


def test_a_topic_spreading_an_incident_s_posts_joins_or_reopens_it() -> None:
    """A cascade outliving the topic window comes back under a new topic id; what its posts spread (their origin)
    ties it to the incident that holds the original."""
    origins = {f"p{i}": "p0" for i in range(6)} | {f"q{i}": "p0" for i in range(5)}  # r0..r4 spread nothing
    t = tracker(post_origin=lambda uid: origins.get(uid, uid))
    [opened] = t.apply([signal("topic:c1", T0, FIRST)])
    spread = signal("topic:c9", T0 + 600, tuple(f"q{i}" for i in range(5)))
    [joined] = t.apply([spread])
    assert not joined.opened and joined.incident is opened.incident and "topic:c9" in opened.incident.keys
    t.close_keys(["topic:c1", "topic:c9"])
    assert opened.incident.status == "quiet"
    again = t.apply([replace(spread, key="topic:c20", at=T0 + 8 * 3600, post_ids=("q0", "q1", "q2", "q3"))])
    assert again[0].reopened and again[0].incident is opened.incident and "topic:c20" in opened.incident.keys
    # Posts that spread nothing the incident holds are news of their own.
    other = t.apply([signal("topic:c30", T0 + 8 * 3600, tuple(f"r{i}" for i in range(5)))])
    assert other[0].opened


def test_the_first_topic_spreading_a_watch_incident_s_posts_names_it() -> None:
    """The watch crossed its bar first; its topic's signal comes with reposts made since the watch's last signal,
    which spread the posts the watch incident holds."""
    origins = {f"q{i}": "p0" for i in range(5)}
    t = tracker(post_origin=lambda uid: origins.get(uid, uid))
    [watch] = t.apply([signal("watch:鲸帆", T0, FIRST)])
    [topic] = t.apply([signal("topic:c4", T0 + 300, tuple(f"q{i}" for i in range(5)))])
    assert topic.incident is watch.incident and watch.incident.keys == ["watch:鲸帆", "topic:c4"]
    assert tracker().apply([signal("watch:鲸帆", T0, FIRST)])[0].opened
    plain = tracker()
    plain.apply([signal("watch:鲸帆", T0, FIRST)])
    assert plain.apply([signal("topic:c4", T0 + 300, tuple(f"q{i}" for i in range(5)))])[0].opened, \
        "without knowing what the posts spread, they are not the watch incident's"


def test_an_incident_the_team_resolved_is_not_reopened() -> None:
    resolved: set[int] = set()
    t = tracker(reopenable=lambda iid: iid not in resolved)
    [opened] = t.apply([signal("topic:c1", T0, FIRST)])
    t.close_keys(["topic:c1"])
    resolved.add(opened.incident.id)
    [change] = t.apply([signal("topic:c1", T0 + 3600, ("p30", "p31", "p32", "p33", "p34"))])
    assert change.opened and change.incident.id != opened.incident.id


def _store(db_url: str) -> Store:
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine)
    when = datetime.fromtimestamp(T0, UTC)
    store.sync_sources([("weibo", "rss", "x")], when)
    batch = [Post(source="weibo", native_id=str(i), url="", title="", text=f"鲸帆退款被拒 {i}", author=f"u{i}",
                  author_id="", published_at=when, fetched_at=when, content_hash=content_hash("", f"{i}"))
             for i in range(40)]
    store.commit_run("weibo", batch, {}, started_at=when, finished_at=when, pages=1)
    return store


def test_attached_posts_and_reopening_are_stored_without_new_timeline_points(db_url: str) -> None:
    store = _store(db_url)
    status = {}

    def reopenable(iid: int) -> bool:
        status[iid] = store.incident_status(iid)
        return status[iid] == "quiet"

    t = IncidentTracker(lambda pid: (f"u{pid}", "weibo"), lambda topic: (["退款"], None, ""), reopenable=reopenable)
    now = datetime.fromtimestamp(T0, UTC)
    first = tuple(f"weibo:{i}" for i in range(6))
    store.save_analysis([], t.apply([signal("topic:c1", T0, first)]), now)
    store.save_analysis([], t.apply([], [note("weibo:6", "c1"), note("weibo:7", "c1")], T0 + 120), now)
    engine = store.engine
    with engine.connect() as conn:
        row = conn.execute(select(incidents)).one()
        assert row.posts == 8 and row.status == "open"
        attached = dict(conn.execute(select(incident_posts.c.post_uid, incident_posts.c.added_at)).all())
        assert set(attached) == {f"weibo:{i}" for i in range(8)}
        assert attached["weibo:7"].replace(tzinfo=UTC).timestamp() == T0 + 120
        assert attached["weibo:0"].replace(tzinfo=UTC).timestamp() == T0
        assert conn.execute(select(incident_points)).all().__len__() == 1, "attaching adds no timeline point"
    # Quiet, then the same topic surges again: the row is open again with the new posts.
    store.mark_quiet([i.id for i in t.close_keys(["topic:c1"])], now)
    changes = t.apply([signal("topic:c1", T0 + 3600, tuple(f"weibo:{i}" for i in range(10, 16)))])
    assert changes[0].reopened and status == {row.id: "quiet"}
    store.save_analysis([], changes, now)
    with engine.connect() as conn:
        row = conn.execute(select(incidents)).one()
        assert row.status == "open" and row.posts == 14
        [ev] = conn.execute(select(incident_events)).all()
        assert (ev.actor, ev.action) == ("monitor", "reflared") and "再次升温" in ev.note
    # A flare-up of an incident the team resolved in the meantime leaves it resolved (the store's guard).
    store.mark_quiet([i.id for i in t.close_keys(["topic:c1"])], now)
    with engine.begin() as conn:
        conn.execute(incidents.update().values(status="resolved"))
    again = t.apply([signal("topic:c1", T0 + 7200, tuple(f"weibo:{i}" for i in range(20, 26)))])
    assert again[0].opened, "the tracker asks the database and opens a new incident instead"
    engine.dispose()


def test_a_flare_up_is_news_even_when_acknowledged(db_url: str) -> None:
    from alerts import actions
    from alerts.notify import Notifier

    cfg = parse_config("timezone: Asia/Shanghai\nsources: []\nchannels:\n"
                       "  - {name: ops, type: webhook, url: 'http://127.0.0.1:9/ops'}\n")
    store = _store(db_url)
    t = IncidentTracker(lambda pid: (f"u{pid}", "weibo"), lambda topic: (["退款"], None, ""))
    now = datetime.fromtimestamp(T0, UTC)
    store.save_analysis([], t.apply([signal("topic:c1", T0, tuple(f"weibo:{i}" for i in range(6)))]), now)
    notifier = Notifier(cfg)
    engine = store.engine
    with engine.begin() as conn:
        assert notifier.on_incident(conn, 1, now) == 1
        conn.execute(notifications.update().values(status="sent", attempts=1))  # delivered
    actions.acknowledge(engine, 1, "wang", now + timedelta(minutes=1), "在跟进")
    store.mark_quiet([i.id for i in t.close_keys(["topic:c1"])], now)
    later = now + timedelta(hours=3)
    changes = t.apply([signal("topic:c1", T0 + 3 * 3600, tuple(f"weibo:{i}" for i in range(10, 13)))])
    store.save_analysis([], changes, later)
    with engine.begin() as conn:
        assert notifier.on_incident(conn, 1, later) == 0, "acknowledged, nothing new: no message"
        assert notifier.on_incident(conn, 1, later, reflared=True) == 1
        last = conn.execute(select(notifications).order_by(notifications.c.id.desc())).first()
    assert last is not None and last.kind == "incident.reflared" and "再次升温" in last.message["title"]
    engine.dispose()


GRIEVANCE = ["鲸帆手机充电发烫还自动关机，申请退款被客服拒绝了，太坑了",
             "鲸帆手机充电发烫自动关机，客服拒绝退款，气死了",
             "鲸帆手机也是充电发烫关机！客服不给退款，建了维权群一起去12315投诉",
             "鲸帆手机充电发烫关机，退款被拒，售后太恶心了"]
EVERYDAY = ["今天天气不错，出去走走", "周末去看了电影，还挺好看的", "晚饭吃了火锅，开心", "新买的书到了，准备开始读"]
STAGE_CONFIG = ("timezone: Asia/Shanghai\nsources: []\nwatches:\n  - {name: 鲸帆, keywords: [鲸帆]}\n"
                "channels:\n  - {name: ops, type: webhook, url: 'http://127.0.0.1:9/ops'}\n"
                "detection: {warmup: 0s}\n")
START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def stage_store(db_url: str) -> Store:
    """A migrated database with two sources."""
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine)
    store.sync_sources([("weibo", "rss", "x"), ("tieba", "rss", "y")], START)
    return store


def poll(stage: Any, store: Store, first: int, texts: list[str], at: datetime, gap: float) -> list[Any]:
    """Posts ``first``, ``first + 1``, ... from ``at``, one every ``gap`` s, stored as polls and analysed by the
    stage; its incident changes."""
    batch = []
    for k, body in enumerate(texts):
        i = first + k
        when = at + timedelta(seconds=gap * k)
        batch.append(Post(source=("weibo", "tieba")[i % 2], native_id=str(i), url="", title="", text=f"{body} 第{i}位",
                          author=f"user{i}", author_id="", published_at=when, fetched_at=when,
                          content_hash=content_hash("", f"{body}{i}")))
    new: list[Post] = []
    for source in ("weibo", "tieba"):
        mine = [p for p in batch if p.source == source]
        new += store.commit_run(source, mine, {}, started_at=at, finished_at=at, pages=1).new_posts
    return stage.process(new, batch[-1].published_at)


def test_the_daemon_stage_reopens_a_quiet_incident_and_says_so(db_url: str) -> None:
    """Through the analysis stage the daemon runs: a wave opens an incident (message, ticket); two quiet hours later
    it goes quiet; the same grievance surging again an hour after that reopens it, with an "incident.reflared"
    message, a timeline event, and its ticket kept (not a second one)."""
    from monitor.analysis.stage import AnalysisStage
    from monitor.db.schema import tickets

    store = stage_store(db_url)
    engine = store.engine
    stage = AnalysisStage(parse_config(STAGE_CONFIG), store)
    stage.start(START)
    opened = poll(stage, store, 0, [GRIEVANCE[i % 4] for i in range(20)], START, 90)
    assert any(ch.opened for ch in opened)
    with engine.begin() as conn:  # as if the deliverer had sent the first message
        conn.execute(notifications.update().values(status="sent", attempts=1))
    # Everyday posts carry stream time on past quiet_after (2 h): the surge ends, the incident is quiet.
    poll(stage, store, 100, EVERYDAY * 3, START + timedelta(hours=2, minutes=40), 60)
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.status)).scalars().all() == ["quiet"]
    again = poll(stage, store, 200, [GRIEVANCE[i % 4] for i in range(20)], START + timedelta(hours=3, minutes=30), 90)
    assert any(ch.reopened for ch in again) and not any(ch.opened for ch in again)
    with engine.connect() as conn:
        [row] = conn.execute(select(incidents)).all()
        assert row.status == "open" and row.posts >= 30
        kinds = [r.kind for r in conn.execute(select(notifications).order_by(notifications.c.id))]
        assert kinds[0] == "incident.opened" and "incident.reflared" in kinds
        assert [e.action for e in conn.execute(select(incident_events))].count("reflared") == 1
        assert len(conn.execute(select(tickets)).all()) == 1
    engine.dispose()


def test_a_quiet_incident_is_reopened_after_a_restart_not_opened_again(db_url: str) -> None:
    """The daemon restarts between a wave going quiet and the same grievance flaring up: the new process knows the
    quiet incident (with its posts' topic ids in this process) and reopens it, so the team gets 再次升温 on the
    ticket they already have, not a second incident and ticket."""
    from monitor.analysis.stage import AnalysisStage
    from monitor.db.schema import tickets

    store = stage_store(db_url)
    engine = store.engine
    cfg = parse_config(STAGE_CONFIG)
    first = AnalysisStage(cfg, store)
    first.start(START)
    assert any(ch.opened for ch in poll(first, store, 0, [GRIEVANCE[i % 4] for i in range(20)], START, 90))
    poll(first, store, 100, EVERYDAY * 3, START + timedelta(hours=2, minutes=40), 60)
    with engine.connect() as conn:
        [old_id] = conn.execute(select(incidents.c.id).where(incidents.c.status == "quiet")).scalars().all()
    second = AnalysisStage(cfg, store)
    second.start(START + timedelta(hours=3, minutes=20))
    assert not second.tracker.open
    [kept] = [i for i in second.tracker._quiet.values() if i.id == old_id]
    topics = [k for k in kept.keys if k.startswith("topic:")]
    assert topics and set(topics) <= {second.analyzer.topic_of(p) for p in kept.post_ids}, "this process's ids"
    again = poll(second, store, 200, [GRIEVANCE[i % 4] for i in range(20)], START + timedelta(hours=3, minutes=30),
                 90)
    assert any(ch.reopened for ch in again) and not any(ch.opened for ch in again)
    assert {ch.incident.id for ch in again} == {old_id}
    with engine.connect() as conn:
        [row] = conn.execute(select(incidents)).all()
        assert row.status == "open" and row.posts >= 30
        assert [e.action for e in conn.execute(select(incident_events))].count("reflared") == 1
        assert len(conn.execute(select(tickets)).all()) == 1
    # A day and more after it went quiet, a new wave is news of its own: a new incident.
    third = AnalysisStage(cfg, store)
    poll(second, store, 300, EVERYDAY * 3, START + timedelta(hours=7), 60)
    third.start(START + timedelta(days=2))
    later = poll(third, store, 400, [GRIEVANCE[i % 4] for i in range(20)], START + timedelta(days=2), 90)
    assert any(ch.opened for ch in later) and not any(ch.reopened for ch in later)
    engine.dispose()


def test_a_post_stored_but_not_analysed_before_a_crash_is_analysed_at_the_next_start(db_url: str) -> None:
    """A crash between storing a poll and analysing it: at the next start the post is analysed once, even when it is
    older than the newest analysed post (a slow source), so it lies inside the window the start re-reads."""
    from monitor.analysis.stage import AnalysisStage

    store = stage_store(db_url)
    engine = store.engine
    cfg = parse_config(STAGE_CONFIG)
    first = AnalysisStage(cfg, store)
    first.start(START)
    poll(first, store, 0, EVERYDAY * 2, START, 60)
    when = START + timedelta(minutes=3)  # between the analysed posts
    late = Post(source="tieba", native_id="late", url="", title="", text="鲸帆手机充电发烫自动关机，退款被拒",
                author="slow", author_id="", published_at=when, fetched_at=START + timedelta(minutes=30),
                content_hash=content_hash("", "late"))
    store.commit_run("tieba", [late], {}, started_at=when, finished_at=when, pages=1)  # then the crash
    second = AnalysisStage(cfg, store)
    assert second.start(START + timedelta(minutes=40)) == 1
    with engine.connect() as conn:
        assert conn.execute(select(posts.c.sentiment).where(posts.c.native_id == "late")).scalar() == "negative"
        assert conn.execute(select(func.count()).select_from(posts).where(posts.c.analysed_at.is_(None))).scalar() == 0
    engine.dispose()


def test_after_a_restart_incidents_take_the_new_topic_ids_and_end_with_the_stream(db_url: str) -> None:
    """Topic ids are one process's: a restored incident must not keep the old ids (the new process gives them to
    other topics). Restarted mid-surge, the incident follows its topic under the new id; restarted hours later, it
    goes quiet with the first new posts."""
    from monitor.analysis.stage import AnalysisStage

    store = stage_store(db_url)
    engine = store.engine
    cfg = parse_config(STAGE_CONFIG)
    first = AnalysisStage(cfg, store)
    first.start(START)
    # Other topics come first, outside the window a restart re-reads: the processes number the wave differently.
    poll(first, store, 0, EVERYDAY * 2, START - timedelta(hours=2), 60)
    poll(first, store, 100, [GRIEVANCE[i % 4] for i in range(12)], START, 90)
    [old] = first.tracker.open.values()
    old_topics = [k for k in old.keys if k.startswith("topic:")]
    assert old_topics
    # Restart mid-surge: the new process clusters the window afresh, from where the stream stood.
    end = store.stream_end(START + timedelta(minutes=20))
    assert end is not None and end.tzinfo is not None and end == START + timedelta(seconds=90 * 11)
    second = AnalysisStage(cfg, store)
    second.start(START + timedelta(minutes=20))
    [resumed] = second.tracker.open.values()
    new_topics = [k for k in resumed.keys if k.startswith("topic:")]
    post_topics = {second.analyzer.topic_of(p) for p in resumed.post_ids} - {None}
    assert resumed.id == old.id and new_topics and set(new_topics) <= post_topics
    assert resumed.watch_names == ["鲸帆"] and resumed.title.startswith("鲸帆")  # not stored: worked out again
    changes = poll(second, store, 200, [GRIEVANCE[i % 4] for i in range(10)], START + timedelta(minutes=20), 90)
    assert changes and not any(ch.opened for ch in changes) and {ch.incident.id for ch in changes} == {old.id}
    # Restart hours later: windows are the stream's, so the incident is taken back as it stood, and the first new
    # posts, hours on, end it.
    third = AnalysisStage(cfg, store)
    third.start(START + timedelta(hours=4))
    assert list(third.tracker.open) == [old.id]
    poll(third, store, 300, EVERYDAY, START + timedelta(hours=4), 60)
    assert not third.tracker.open
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.status)).scalars().all() == ["quiet"]
    engine.dispose()
