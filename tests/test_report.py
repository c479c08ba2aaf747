"""The daily / weekly report: every figure checked against a seeded database whose answers are worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from alerts.queue import TicketQueue
from alerts.report import build_report, collect, day_window, week_window
from monitor.config import Config
from monitor.db.schema import incidents, posts, sources
from tests.test_queue_store import T0, add_incident, add_posts, complaint_posts, make_config, new_engine

HOSTILE = '<script>alert("x")</script>'


def h(hours: float) -> datetime:
    """T0 (Monday 2026-11-23 09:00 Shanghai) + hours."""
    return T0 + timedelta(hours=hours)


@pytest.fixture
def config() -> Config:
    """Default SLA limits, Shanghai time."""
    return make_config(portal={"sources": ["heimao"]})


@pytest.fixture
def engine(tmp_path: Path, config: Config) -> Iterator[Engine]:
    """Posts, incidents and four tickets with known histories (see the module's figures in each test)."""
    eng = new_engine(f"sqlite:///{tmp_path / 'r.db'}")
    weibo = add_posts(eng, "weibo", complaint_posts())  # 5 negative, Monday 09:00
    add_posts(eng, "weibo", [{"id": 10, "text": "澄星新品发布", "sentiment": "neutral"},
                             {"id": 11, "text": "澄星还行", "sentiment": "positive"}], at=h(24))  # Tuesday
    add_posts(eng, "weibo", [{"id": 12, "text": "上周的帖子"}], at=h(-10))  # Sunday 23:00: outside the week
    add_posts(eng, "heimao", [{"id": 77, "title": "澄星拒不退款", "text": "商家拒不退款", "author": "消费者",
                               "extra": {"demand": "退款"}, "category": "contract_performance"}], at=h(24))
    inc1 = add_incident(eng, 1, weibo, severity="orange", title="澄星 · 漏水")
    inc2 = add_incident(eng, 2, weibo[3:4], severity="red", title=HOSTILE, keys=("topic:t2",), opened_at=h(1))
    add_incident(eng, 3, [], severity="yellow", title="上周的事件", keys=("topic:old",), opened_at=h(-72))
    with eng.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == 1).values(resolved_at=h(70), updated_at=h(70)))
        conn.execute(update(incidents).where(incidents.c.id == 2).values(updated_at=h(5)))
    inc4 = add_incident(eng, 4, weibo[:1], keys=("topic:t4",), opened_at=h(3))
    q = TicketQueue(eng, config)
    with eng.begin() as conn:
        a = q.open_for_incident(conn, inc1, T0)
        b = q.open_for_incident(conn, inc2, h(1))
        portal = conn.execute(select(posts, sources.c.name.label("source_name"))
                              .join(sources, posts.c.source_id == sources.c.id)
                              .where(sources.c.name == "heimao")).one()
        c = q.open_for_post(conn, portal, h(2))
        d = q.open_for_incident(conn, inc4, h(3))
    assert None not in (a, b, c, d)
    # A: acknowledged, responded late (30 h > 24 h), verified and resolved in time, satisfaction 4.
    q.assign(a, "amy", actor="amy", now=h(1))  # type: ignore[arg-type]
    q.move(a, "verifying", actor="amy", now=h(2))  # type: ignore[arg-type]
    q.respond(a, "已联系", actor="amy", now=h(30))  # type: ignore[arg-type]
    q.move(a, "handling", actor="amy", now=h(40))  # type: ignore[arg-type]
    q.move(a, "follow_up", actor="amy", now=h(60))  # type: ignore[arg-type]
    q.followup(a, 4, actor="amy", now=h(70))  # type: ignore[arg-type]
    # B: nothing done: every milestone missed, overdue at report time.
    # C: acknowledged, verified as unfounded and closed: respond and resolve waived.
    q.assign(c, "bob", actor="bob", now=h(2.5))  # type: ignore[arg-type]
    q.move(c, "verifying", actor="bob", now=h(3))  # type: ignore[arg-type]
    q.move(c, "closed", actor="bob", note="不属实", now=h(5))  # type: ignore[arg-type]
    # D: everything in time, resolved 17 h after registration, satisfaction 2.
    q.assign(d, "amy", actor="amy", now=h(3.2))  # type: ignore[arg-type]
    q.move(d, "verifying", actor="amy", now=h(3.5))  # type: ignore[arg-type]
    q.respond(d, "已回复", actor="amy", now=h(4))  # type: ignore[arg-type]
    q.move(d, "handling", actor="amy", now=h(10))  # type: ignore[arg-type]
    q.move(d, "follow_up", actor="amy", now=h(20))  # type: ignore[arg-type]
    q.followup(d, 2, actor="amy", now=h(30))  # type: ignore[arg-type]
    yield eng
    eng.dispose()


def test_windows_are_local_days_and_weeks(config: Config) -> None:
    """A day is midnight to midnight in the display timezone; a week is Monday to Monday."""
    start, end = day_window(date(2026, 11, 23), config.tz)
    assert (start, end) == (h(-9), h(15))
    start, end = week_window(date(2026, 11, 26), config.tz)
    assert (start, end) == (h(-9), h(-9 + 7 * 24))


def test_weekly_figures(engine: Engine, config: Config) -> None:
    """Volumes, incidents, SLA compliance, resolution times, categories, overdue and satisfaction of the week."""
    start, end = week_window(date(2026, 11, 23), config.tz)
    d = collect(engine, config, start=start, end=end)
    assert [(v.label, v.posts, v.negative) for v in d.by_source] == [("weibo", 7, 5), ("heimao", 1, 1)]
    assert [(v.label, v.posts, v.negative) for v in d.by_day[:3]] == [
        ("2026-11-23", 5, 5), ("2026-11-24", 3, 1), ("2026-11-25", 0, 0)]
    assert len(d.by_day) == 7
    assert [(t.id, t.posts_in_period) for t in d.top] == [(1, 5), (2, 1), (4, 1)]
    assert (d.incidents_opened, d.incidents_resolved) == (3, 1)
    assert {r.milestone: (r.due, r.met) for r in d.sla} == {
        "acknowledge": (4, 3), "respond": (3, 1), "verify": (4, 3), "resolve": (3, 2)}
    assert sorted(d.resolution_hours) == [17.0, 60.0]
    assert (d.resolution_median, d.resolution_p90) == (38.5, 60.0)
    assert d.by_category_state == {"产品质量": {"closed": 2}, "服务体验": {"accepted": 1},
                                   "合同履约": {"closed": 1}}
    assert [(o.number, o.milestone) for o in d.overdue] == [("T20261123-0002", "acknowledge")]
    assert (d.tickets_created, d.tickets_closed) == (4, 3)
    assert d.satisfaction_average == 3.0


def test_markdown_report(engine: Engine, config: Config) -> None:
    """The Markdown shows the figures in Chinese tables."""
    start, end = week_window(date(2026, 11, 23), config.tz)
    text = build_report(engine, config, start=start, end=end)
    assert text.startswith("# 舆情周报 2026-11-23 至 2026-11-29\n")
    for line in ("| weibo | 7 | 5 | 71.4% |", "| heimao | 1 | 1 | 100.0% |", "| 合计 | 8 | 6 | 75.0% |",
                 "| 2026-11-24 | 3 | 1 | 33.3% |", "| 2026-11-25 | 0 | 0 | — |",
                 "| 受理 | 4 | 3 | 75.0% |", "| 首次回复 | 3 | 1 | 33.3% |", "| 核实 | 4 | 3 | 75.0% |",
                 "| 解决 | 3 | 2 | 66.7% |", "| #1 | 橙色 | 澄星 · 漏水 | 5 | 5 | 进行中 |",
                 "新增事件 3 起（红色 1，橙色 2），已解决 1 起。", "新登记工单 4 件，关闭 3 件。",
                 "中位数 38.5 小时，P90 2.5 天", "平均 3.00 / 5（2 份回访；4分 1，2分 1）。",
                 "| 产品质量 | 0 | 0 | 0 | 0 | 2 | 2 |", "截至生成时共 1 件工单超时未完成。"):
        assert line in text, line
    assert "上周的事件" not in text
    # A title from posts cannot inject HTML, links or table columns into the rendered Markdown.
    assert HOSTILE not in text
    assert '| #2 | 红色 | \\<script\\>alert("x")\\</script\\> | 1 | 1 | 进行中 |' in text


def test_daily_report_counts_only_that_day(engine: Engine, config: Config) -> None:
    """Monday's report: Monday's posts, and only the deadlines that fell on Monday and had passed by then."""
    start, end = day_window(date(2026, 11, 23), config.tz)
    d = collect(engine, config, start=start, end=end, now=h(4))
    assert [(v.label, v.posts, v.negative) for v in d.by_source] == [("weibo", 5, 5)]
    # Deadlines passed by 13:00 (h(4)): A's acknowledge (h2, met), B's (h3, missed), C's (h4, met at h2.5);
    # D's (h5) is not judged yet.
    assert {r.milestone: (r.due, r.met) for r in d.sla}["acknowledge"] == (3, 2)
    assert [(o.number, o.milestone) for o in d.overdue] == [("T20261123-0002", "acknowledge")]
    assert build_report(engine, config, start=start, end=end).startswith("# 舆情日报 2026-11-23\n")


def test_html_escapes_what_came_from_posts(engine: Engine, config: Config) -> None:
    """The HTML report is one printable page, and a hostile incident title is shown as text, never run."""
    start, end = week_window(date(2026, 11, 23), config.tz)
    page = build_report(engine, config, start=start, end=end, fmt="html")
    assert page.startswith("<!DOCTYPE html>") and "@media print" in page
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<h2>五、工单时限达成率</h2>" in page and '<td class="n">75.0%</td>' in page
    with pytest.raises(ValueError, match="markdown or html"):
        build_report(engine, config, start=start, end=end, fmt="pdf")


def test_followup_compensation_and_outcome_figures(engine: Engine, config: Config) -> None:
    """Sections 十 and 十一, worked out by hand. Closed in the week: A (产品质量, amy, satisfaction 4, NPS 10: a
    promoter), D (moved here to 服务体验 and bob; satisfaction 2, NPS 5: a detractor) and C (closed as unfounded,
    no 回访: incomplete). Compensation in the week: refunds 100.50 + 20 and a voucher of 50 (a refund of the week
    before is left out). Withdrawn: A stays withdrawn; D was marked, then unmarked."""
    from alerts.outcomes import Outcomes
    from monitor.db.schema import tickets

    out = Outcomes(engine, config)
    with engine.begin() as conn:
        conn.execute(update(tickets).where(tickets.c.number == "T20261123-0001").values(nps=10, followup_at=h(70)))
        conn.execute(update(tickets).where(tickets.c.number == "T20261123-0004").values(
            nps=5, followup_at=h(30), category="service_experience", assignee="bob"))
    out.compensation("T20261123-0001", "refund", amount="100.5", actor="amy", now=h(10))
    out.compensation("T20261123-0001", "voucher", amount=50, actor="amy", now=h(11))
    out.compensation("T20261123-0004", "refund", amount="20", actor="bob", now=h(12))
    out.compensation("T20261123-0004", "refund", amount="999", actor="bob", now=h(-20))  # the week before
    out.outcome("T20261123-0001", withdrawn=True, note="已撤下", actor="amy", now=h(20))
    out.outcome("T20261123-0004", withdrawn=True, actor="bob", now=h(21))
    out.outcome("T20261123-0004", withdrawn=False, actor="bob", now=h(22))
    start, end = week_window(date(2026, 11, 23), config.tz)
    d = collect(engine, config, start=start, end=end)
    assert [(r.label, r.scores, r.nps_answers, r.nps) for r in d.satisfaction_by_category] == [
        ("产品质量", (4,), (10,), 100.0), ("服务体验", (2,), (5,), -100.0)]
    assert [(r.label, r.average) for r in d.satisfaction_by_handler] == [("amy", 4.0), ("bob", 2.0)]
    assert [(r.label, r.average, r.nps) for r in d.satisfaction_by_month] == [("2026-11", 3.0, 0.0)]
    assert d.closed_without_followup == 1
    assert {k: (n, str(v)) for k, (n, v) in d.compensation_totals.items()} == {
        "refund": (2, "120.50"), "voucher": (1, "50.00")}
    assert d.withdrawn == 1
    text = build_report(engine, config, start=start, end=end)
    for line in ("## 十、满意度与 NPS 明细", "本期关闭但未回访的工单 1 件。", "| 产品质量 | 1 | 4.00 | 1 | +100.0 |",
                 "| 服务体验 | 1 | 2.00 | 1 | -100.0 |", "| bob | 1 | 2.00 | 1 | -100.0 |",
                 "| 2026-11 | 2 | 3.00 | 2 | 0 |", "## 十一、补偿与结果", "本期投诉人撤诉（撤下公开投诉）1 件。",
                 "| 退款 | 2 | 120.50 |", "| 代金券 | 1 | 50.00 |"):
        assert line in text, line
    # The sections before are unchanged.
    assert "平均 3.00 / 5（2 份回访；4分 1，2分 1）。" in text


def test_outcome_sections_when_empty(engine: Engine, config: Config) -> None:
    """A day without follow-ups or compensation says so."""
    start, end = day_window(date(2026, 11, 30), config.tz)
    text = build_report(engine, config, start=start, end=end)
    assert "本期关闭但未回访的工单 0 件。" in text and "本期没有补偿记录。" in text
    assert "本期投诉人撤诉（撤下公开投诉）0 件。" in text
