"""The notification policy: group wait, updates of a waiting message, escalation, repeat, silences, quiet hours and
routing, written into the outbox on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from alerts import actions
from alerts.config import AlertsConfig, RouteConfig, RouteMatch
from alerts.notify import Notifier, quiet_until
from alerts.routing import route
from monitor.config import Config, parse_config
from monitor.db import Store, make_engine, upgrade
from monitor.db.schema import incident_events, incident_posts, incidents, notifications
from monitor.errors import ConfigError
from monitor.normalize import Post, content_hash

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
CONFIG = """
timezone: Asia/Shanghai
watches:
  - {name: 鲸帆, keywords: [鲸帆]}
sources:
  - {name: forum, type: rss, url: 'http://127.0.0.1:9/forum.xml'}
  - {name: portal, type: rss, url: 'http://127.0.0.1:9/portal.xml'}
channels:
  - {name: ops, type: webhook, url: 'http://127.0.0.1:9/ops'}
  - {name: boss, type: webhook, url: 'http://127.0.0.1:9/boss'}
alerts:
  console_url: https://monitor.example.com
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - match: {min_severity: orange}
      channels: [ops, boss]
    - channels: [ops]
"""


def config(extra: str = "") -> Config:
    """The test config, with ``extra`` YAML appended under alerts:."""
    return parse_config(CONFIG + extra)


@pytest.fixture
def engine(db_url: str) -> Engine:
    """A migrated database with two sources and five posts of one grievance."""
    eng = make_engine(db_url)
    upgrade(eng)
    store = Store(eng)
    store.sync_sources([("forum", "rss", "x"), ("portal", "rss", "y")], T0)
    for source in ("forum", "portal"):
        batch = []
        for i in range(5):
            text = f"鲸帆手机充电发烫关机，客服拒绝退款 {source}{i} [看看](javascript:alert(1))"
            batch.append(Post(source=source, native_id=str(i), url=f"https://{source}.example.com/t/{i}", title="",
                              text=text, author=f"{source}-user{i}", author_id="", published_at=T0,
                              fetched_at=T0, content_hash=content_hash("", text), reposts=i * 10))
        store.commit_run(source, batch, {}, started_at=T0, finished_at=T0, pages=1)
    return eng


def add_incident(engine: Engine, incident_id: int = 1, *, severity: str = "yellow", posts: int = 10,
                 watches: tuple[str, ...] = ("鲸帆",)) -> None:
    """An incident row as the analysis stage writes it, with the ten posts attached."""
    with engine.begin() as conn:
        conn.execute(incidents.insert().values(
            id=incident_id, opened_at=T0, updated_at=T0, status="open", severity=severity, score=6.0,
            title="鲸帆 · 发烫 退款", keys=["topic:1"], keywords=["发烫", "退款", "关机"], sources=["forum", "portal"],
            authors=10, posts=posts, representative="portal:3", watches=list(watches), category="product_quality",
            reasons=[["volume", [["minutes", 40], ["authors", 10], ["negatives", 10], ["sources", 2]]],
                     ["cues", [["posts", 3], ["words", "维权群、12315"]]]]))
        conn.execute(incident_posts.insert(), [
            {"incident_id": incident_id, "post_uid": f"{s}:{i}", "author": f"{s}-user{i}", "source": s,
             "added_at": T0} for s in ("forum", "portal") for i in range(5)])


def set_incident(engine: Engine, incident_id: int = 1, **values: Any) -> None:
    """Change an incident as a later signal would."""
    with engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def notify(engine: Engine, cfg: Config, now: datetime, incident_id: int = 1) -> int:
    """One call of the policy in its own transaction, as the analysis stage makes it."""
    with engine.begin() as conn:
        return Notifier(cfg).on_incident(conn, incident_id, now)


def rows(engine: Engine) -> list[Any]:
    """The outbox, oldest first."""
    with engine.connect() as conn:
        return conn.execute(select(notifications).order_by(notifications.c.id)).all()


def mark_sent(engine: Engine) -> None:
    """As if the deliverer had sent everything waiting."""
    with engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.status == "pending")
                     .values(status="sent", attempts=1))


def test_a_new_incident_waits_to_group_and_is_routed_by_severity(engine: Engine) -> None:
    add_incident(engine, 1, severity="yellow")
    add_incident(engine, 2, severity="orange")
    cfg = config()
    assert notify(engine, cfg, T0, 1) == 1
    assert notify(engine, cfg, T0, 2) == 2
    out = rows(engine)
    assert [(r.subject, r.channel, r.status) for r in out] == [
        ("incident:1", "ops", "pending"), ("incident:2", "ops", "pending"), ("incident:2", "boss", "pending")]
    assert all(r.not_before == T0 + timedelta(seconds=30) for r in out)
    assert len({r.delivery_id for r in out}) == 3
    msg = out[0].message
    assert msg["title"].startswith("🟡【黄色预警·新预警】鲸帆 · 发烫 退款")
    assert ["相关帖子", "10"] in msg["facts"] and ["投诉类别", "产品质量"] in msg["facts"]
    assert msg["reasons"][0] == "40 分钟内 10 位用户发布 10 条负面内容，涉及 2 个平台"
    assert msg["link"] == "https://monitor.example.com/incidents/1"
    quoted = msg["posts"]
    assert len(quoted) == 3
    assert quoted[0]["url"] == "https://portal.example.com/t/3"  # the topic's representative post comes first
    assert len({q["author"] for q in quoted}) == 3 and {q["source"] for q in quoted} == {"forum", "portal"}
    assert quoted[0]["published_at"].endswith("+08:00")


def test_changes_while_a_message_waits_update_it_instead_of_queueing_another(engine: Engine) -> None:
    add_incident(engine, severity="yellow")
    cfg = config()
    notify(engine, cfg, T0)
    set_incident(engine, severity="orange", posts=30)
    notify(engine, cfg, T0 + timedelta(seconds=10))
    out = rows(engine)
    # ops: the waiting row now says orange with 30 posts; boss (orange route) joins the same notification.
    assert [(r.channel, r.key) for r in out] == [("ops", "incident:1#1>ops"), ("boss", "incident:1#1>boss")]
    assert out[0].message["severity"] == "orange" and ["相关帖子", "30"] in out[0].message["facts"]
    # Still the news of an opening: the team has not heard of this incident yet.
    assert out[0].message["kind"] == out[1].message["kind"] == "incident.opened"
    assert out[0].message["title"].startswith("🟠【橙色预警·新预警】")
    assert out[0].not_before == T0 + timedelta(seconds=30)


def test_after_a_message_went_out_only_escalation_notifies_and_never_within_group_interval(engine: Engine) -> None:
    add_incident(engine, severity="yellow", posts=10)
    cfg = config()
    notify(engine, cfg, T0)
    mark_sent(engine)
    set_incident(engine, posts=19)  # grew, but not doubled: no news
    assert notify(engine, cfg, T0 + timedelta(minutes=1)) == 0
    set_incident(engine, posts=20)  # doubled since the last message
    assert notify(engine, cfg, T0 + timedelta(minutes=2)) == 1
    second = rows(engine)[-1]
    assert second.key == "incident:1#2>ops" and second.kind == "incident.escalated"
    assert second.not_before == T0 + timedelta(minutes=5)  # group_interval after the first message
    assert second.message["title"].startswith("🟡【黄色预警·预警升级】")
    mark_sent(engine)
    set_incident(engine, severity="red")
    assert notify(engine, cfg, T0 + timedelta(minutes=10)) == 2  # red also goes to boss
    assert [r.channel for r in rows(engine)[-2:]] == ["ops", "boss"]


def test_open_incidents_are_repeated_after_repeat_interval_unless_acknowledged(engine: Engine) -> None:
    add_incident(engine, 1)
    add_incident(engine, 2)
    cfg = config()
    notify(engine, cfg, T0, 1)
    notify(engine, cfg, T0, 2)
    mark_sent(engine)
    actions.acknowledge(engine, 2, "wang", T0 + timedelta(minutes=1), "在跟进")
    notifier = Notifier(cfg)
    assert notifier.repeat_due(engine, T0 + timedelta(hours=3)) == 0
    assert notifier.repeat_due(engine, T0 + timedelta(hours=4)) == 1
    last = rows(engine)[-1]
    assert (last.subject, last.kind) == ("incident:1", "incident.repeat")
    assert last.message["title"].startswith("🟡【黄色预警·持续中】")
    # Acknowledged incident 2 still notifies when its severity goes up.
    set_incident(engine, 2, severity="red")
    assert notify(engine, cfg, T0 + timedelta(hours=5), 2) == 2


def test_a_silence_records_the_message_instead_of_sending_it(engine: Engine) -> None:
    add_incident(engine, 1)
    add_incident(engine, 2, watches=("别的品牌",))
    actions.add_silence(engine, watch="鲸帆", until=T0 + timedelta(hours=2), now=T0 - timedelta(minutes=1),
                        actor="li", comment="已知问题，公关已回应")
    cfg = config()
    notify(engine, cfg, T0, 1)
    notify(engine, cfg, T0, 2)
    assert [(r.subject, r.status) for r in rows(engine)] == [("incident:1", "silenced"), ("incident:2", "pending")]
    with engine.connect() as conn:
        assert conn.execute(select(incident_events.c.action).where(incident_events.c.incident_id == 1)
                            ).scalars().all() == ["silenced"]
    # A config silence by keyword works the same way; one that does not match lets the message through.
    cfg2 = config("  silences:\n    - {keyword: 发烫}\n")
    add_incident(engine, 3)
    add_incident(engine, 4, watches=("别的品牌",))
    set_incident(engine, 4, title="别的品牌 · 物流", keywords=["物流"])
    notify(engine, cfg2, T0, 3)
    notify(engine, cfg2, T0, 4)
    assert [r.status for r in rows(engine)[-2:]] == ["silenced", "pending"]


def test_quiet_hours_hold_all_but_the_top_severity_until_morning(engine: Engine) -> None:
    cfg = config("  quiet_hours: {start: '23:00', end: '08:00', min_severity: red}\n")
    night = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # 00:30 in Shanghai
    assert quiet_until(cfg, night, "orange") == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)  # 08:00 local
    assert quiet_until(cfg, night, "red") is None
    assert quiet_until(cfg, T0, "blue") is None  # 10:00 local is not quiet
    add_incident(engine, 1, severity="yellow")
    notify(engine, cfg, night, 1)
    waiting = rows(engine)[0]
    assert waiting.not_before == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    # The incident turns red in the night: the waiting message goes out now, to the red route.
    set_incident(engine, 1, severity="red")
    notify(engine, cfg, night + timedelta(minutes=20), 1)
    out = rows(engine)
    assert out[0].not_before == night + timedelta(minutes=20, seconds=30) and out[0].severity == "red"
    assert [r.channel for r in out] == ["ops", "boss"]


def test_resolving_drops_waiting_messages_and_stops_notifications(engine: Engine) -> None:
    add_incident(engine)
    cfg = config()
    notify(engine, cfg, T0)
    assert actions.resolve(engine, 1, "zhao", T0 + timedelta(seconds=5), "已回应") == 1
    assert [r.status for r in rows(engine)] == ["cancelled"]
    set_incident(engine, severity="red")
    assert notify(engine, cfg, T0 + timedelta(minutes=10)) == 0


def test_below_min_severity_nothing_is_sent_and_without_channels_nothing_is_queued(engine: Engine) -> None:
    add_incident(engine, 1, severity="blue")
    assert notify(engine, config("  min_severity: yellow\n"), T0, 1) == 0
    bare = parse_config("sources: []\n")
    add_incident(engine, 2, severity="red")
    assert notify(engine, bare, T0, 2) == 0
    assert rows(engine) == []


def test_routes_first_match_wins_unless_continue_and_disabled_channels_are_dropped() -> None:
    alerts = AlertsConfig(routes=[
        RouteConfig(match=RouteMatch(watches=["A"], min_severity="orange"), channels=["a-boss"],
                    **{"continue": True}),
        RouteConfig(match=RouteMatch(watches=["A"]), channels=["a-team"]),
        RouteConfig(match=RouteMatch(categories=["ethics_compliance"]), channels=["legal"]),
    ], default_channels=["ops"])
    enabled = ["a-boss", "a-team", "legal", "ops"]
    assert route(alerts, enabled, watches=["A"], severity="red") == ["a-boss", "a-team"]
    assert route(alerts, enabled, watches=["A"], severity="yellow") == ["a-team"]
    assert route(alerts, enabled, watches=["B"], category="ethics_compliance") == ["legal"]
    assert route(alerts, enabled, watches=["B"]) == ["ops"]
    assert route(alerts, ["a-team", "ops"], watches=["A"], severity="red") == ["a-team"]
    assert route(AlertsConfig(), ["x", "y"]) == ["x", "y"]


def test_routes_naming_unknown_channels_watches_or_sources_fail_at_load(tmp_path: Path) -> None:
    bad = CONFIG.replace("channels: [ops, boss]", "channels: [ops, bos]").replace(
        "    - channels: [ops]", "    - {match: {watches: [鲸凡], sources: [forun]}, channels: [ops]}")
    with pytest.raises(ConfigError) as info:
        parse_config(bad + "queue:\n  remind_channels: [pager]\n")
    assert info.value.problems == [
        "alerts.routes[0].channels[1]: unknown channel 'bos'; did you mean 'boss'?",
        "alerts.routes[1].match.watches[0]: unknown watch '鲸凡'; watches: 鲸帆",
        "alerts.routes[1].match.sources[0]: unknown source 'forun'",
        "queue.remind_channels[0]: unknown channel 'pager'; configured channels: boss, ops",
    ]
