"""The daily and weekly report (舆情日报 / 周报): volumes, top incidents, the complaint queue's SLA record.

``build_report`` reads the database once into a :class:`ReportData` and renders it as Markdown (for chat and
e-mail) or as a self-contained printable HTML page. Everything that came from a post (titles, names, sources) is
escaped in HTML. Days are calendar days in the display timezone (``config.timezone``).
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, or_, select

from alerts import tickets as tk
from alerts.config import SlaPolicy
from alerts.message import SEVERITY_ZH
from alerts.outcomes import COMPENSATION_KINDS, incomplete, nps_score
from alerts.queue import resolve_restarts, ticket_times
from monitor.analysis.category import DISPLAY_NAMES
from monitor.analysis.surge import SEVERITIES
from monitor.db.schema import incident_posts, incidents, posts, sources, ticket_events
from monitor.db.schema import tickets as tickets_t

if TYPE_CHECKING:
    from monitor.config import Config

#: How many incidents the top list shows.
TOP_INCIDENTS = 10
#: How many overdue tickets are listed (the count is always complete).
OVERDUE_ROWS = 30
_STATUS_ZH = {"open": "进行中", "quiet": "已平息", "resolved": "已解决"}


def day_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of one calendar day in ``tz``, as aware datetimes."""
    start = datetime.combine(day, time(0), tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tz)


def week_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the Monday-to-Sunday week holding ``day`` in ``tz``."""
    monday = day - timedelta(days=day.weekday())
    return datetime.combine(monday, time(0), tz), datetime.combine(monday + timedelta(days=7), time(0), tz)


@dataclass(frozen=True)
class Volume:
    """Posts and negative posts of one source or one day."""

    label: str
    posts: int
    negative: int

    @property
    def negative_share(self) -> float | None:
        """Negative posts / posts (None when there are no posts)."""
        return self.negative / self.posts if self.posts else None


@dataclass(frozen=True)
class TopIncident:
    """An incident active in the period, with its posts in the period and in all."""

    id: int
    severity: str
    title: str
    status: str
    posts_in_period: int
    posts_total: int
    opened_at: datetime


@dataclass(frozen=True)
class SlaRow:
    """One milestone's record over tickets due in the period: how many were due (decided) and met in time."""

    milestone: str
    due: int
    met: int

    @property
    def rate(self) -> float | None:
        """Share met in time (None when nothing fell due)."""
        return self.met / self.due if self.due else None


@dataclass(frozen=True)
class OverdueRow:
    """An open ticket past a deadline at report time."""

    number: str
    severity: str
    title: str
    state: str
    milestone: str
    overdue: timedelta
    assignee: str | None


@dataclass(frozen=True)
class SatisfactionRow:
    """Follow-up results of one group (category, handler or month): satisfaction scores and NPS answers."""

    label: str
    scores: tuple[int, ...]
    nps_answers: tuple[int, ...]

    @property
    def average(self) -> float | None:
        """Mean satisfaction (1-5)."""
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def nps(self) -> float | None:
        """NPS: % promoters (9-10) minus % detractors (0-6) of the answers."""
        return nps_score(self.nps_answers)


@dataclass
class ReportData:
    """Every figure of one report."""

    start: datetime
    end: datetime
    now: datetime
    tz: ZoneInfo
    by_source: list[Volume] = field(default_factory=list)
    by_day: list[Volume] = field(default_factory=list)
    top: list[TopIncident] = field(default_factory=list)
    incidents_opened: int = 0
    incidents_resolved: int = 0
    opened_by_severity: dict[str, int] = field(default_factory=dict)
    tickets_created: int = 0
    tickets_closed: int = 0
    sla: list[SlaRow] = field(default_factory=list)
    resolution_hours: list[float] = field(default_factory=list)
    by_category_state: dict[str, dict[str, int]] = field(default_factory=dict)
    overdue: list[OverdueRow] = field(default_factory=list)
    overdue_total: int = 0
    satisfaction: list[int] = field(default_factory=list)
    limits: SlaPolicy = field(default_factory=SlaPolicy)  # the default policy, quoted in the SLA section
    # 回访 and outcomes (see _collect_outcomes): tickets closed in the period, grouped three ways.
    satisfaction_by_category: list[SatisfactionRow] = field(default_factory=list)
    satisfaction_by_handler: list[SatisfactionRow] = field(default_factory=list)
    satisfaction_by_month: list[SatisfactionRow] = field(default_factory=list)
    closed_without_followup: int = 0
    compensation_totals: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # kind -> (offers, yuan)
    withdrawn: int = 0

    @property
    def total(self) -> Volume:
        """All posts of the period."""
        return Volume("合计", sum(v.posts for v in self.by_source), sum(v.negative for v in self.by_source))

    @property
    def resolution_median(self) -> float | None:
        """Median hours from registration to solution, over tickets resolved in the period."""
        return statistics.median(self.resolution_hours) if self.resolution_hours else None

    @property
    def resolution_p90(self) -> float | None:
        """90th percentile (nearest rank) of the same."""
        if not self.resolution_hours:
            return None
        ordered = sorted(self.resolution_hours)
        return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]

    @property
    def satisfaction_average(self) -> float | None:
        """Mean satisfaction (1-5) of tickets closed in the period after a follow-up visit."""
        return statistics.fmean(self.satisfaction) if self.satisfaction else None


def collect(engine: Engine, config: Config, *, start: datetime, end: datetime,
            now: datetime | None = None) -> ReportData:
    """Read the figures of [start, end) from the database. ``now`` (default ``end``) decides what is overdue and
    which deadlines have passed: a deadline after ``now`` is not counted yet."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("report windows need aware datetimes")
    now = now or end
    tz = config.tz
    data = ReportData(start, end, now, tz, limits=config.queue.policy("default"))
    with engine.connect() as conn:
        # -- volumes: per source and per local day (bucketing in Python keeps one query for both backends)
        per_source: Counter[str] = Counter()
        neg_source: Counter[str] = Counter()
        per_day: Counter[date] = Counter()
        neg_day: Counter[date] = Counter()
        rows = conn.execute(select(sources.c.name, posts.c.published_at, posts.c.sentiment)
                            .join(sources, posts.c.source_id == sources.c.id)
                            .where(posts.c.published_at >= start, posts.c.published_at < end))
        for name, published, sentiment in rows:
            day = published.astimezone(tz).date()
            per_source[name] += 1
            per_day[day] += 1
            if sentiment == "negative":
                neg_source[name] += 1
                neg_day[day] += 1
        data.by_source = [Volume(n, c, neg_source[n]) for n, c in sorted(per_source.items(), key=lambda kv: -kv[1])]
        day = start.astimezone(tz).date()
        while datetime.combine(day, time(0), tz) < end:
            data.by_day.append(Volume(day.isoformat(), per_day[day], neg_day[day]))
            day += timedelta(days=1)

        # -- incidents
        added: dict[int, int] = {int(i): int(n) for i, n in conn.execute(
            select(incident_posts.c.incident_id, func.count())
            .where(incident_posts.c.added_at >= start, incident_posts.c.added_at < end)
            .group_by(incident_posts.c.incident_id))}
        active = conn.execute(select(incidents.c.id, incidents.c.severity, incidents.c.title, incidents.c.status,
                                     incidents.c.posts, incidents.c.opened_at, incidents.c.resolved_at)
                              .where(incidents.c.opened_at < end, incidents.c.updated_at >= start)).all()
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        top = [TopIncident(r.id, r.severity, r.title, r.status, int(added.get(r.id, 0)), r.posts, r.opened_at)
               for r in active]
        top.sort(key=lambda t: (-t.posts_in_period, -rank.get(t.severity, 0), -t.posts_total, t.id))
        data.top = top[:TOP_INCIDENTS]
        opened = conn.execute(select(incidents.c.severity).where(incidents.c.opened_at >= start,
                                                                 incidents.c.opened_at < end)).scalars().all()
        data.incidents_opened = len(opened)
        data.opened_by_severity = dict(Counter(opened))
        data.incidents_resolved = int(conn.execute(select(func.count()).select_from(incidents).where(
            incidents.c.resolved_at >= start, incidents.c.resolved_at < end)).scalar_one())

        # -- tickets: those alive in the period, and those whose deadlines could fall in it
        q = config.queue
        longest = max(float(max(p.acknowledge, p.respond, p.verify, p.resolve))
                      for p in [*q.sla.values(), SlaPolicy()])
        horizon = start - timedelta(seconds=longest)
        trows = conn.execute(select(tickets_t).where(
            tickets_t.c.created_at < end,
            or_(tickets_t.c.created_at >= horizon, tickets_t.c.closed_at.is_(None), tickets_t.c.closed_at >= start,
                tickets_t.c.resolved_at >= start))).all()
        restarts = resolve_restarts(conn, [r.id for r in trows])

    sla_due: Counter[str] = Counter()
    sla_met: Counter[str] = Counter()
    overdue: list[OverdueRow] = []
    for r in trows:
        times = ticket_times(r, restarts.get(r.id))
        policy = q.policy(r.severity)
        for m in tk.status(times, policy, now):
            if start <= m.deadline < end and m.deadline <= now:
                verdict = m.met_in_time
                if verdict is not None:
                    sla_due[m.milestone] += 1
                    sla_met[m.milestone] += int(verdict)
        if start <= r.created_at < end:
            data.tickets_created += 1
            cat = DISPLAY_NAMES.get(r.category or "", r.category or "未分类")
            row = data.by_category_state.setdefault(cat, {})
            row[r.state] = row.get(r.state, 0) + 1
        if r.closed_at is not None and start <= r.closed_at < end:
            data.tickets_closed += 1
            if r.satisfaction is not None:
                data.satisfaction.append(int(r.satisfaction))
        if r.resolved_at is not None and start <= r.resolved_at < end:
            data.resolution_hours.append((r.resolved_at - r.created_at).total_seconds() / 3600)
        late = tk.overdue(times, policy, now)
        if late:
            worst = max(late, key=lambda s: s.overdue_by)
            overdue.append(OverdueRow(r.number, r.severity, r.title, r.state, worst.milestone, worst.overdue_by,
                                      r.assignee))
    data.sla = [SlaRow(m, sla_due[m], sla_met[m]) for m in tk.MILESTONES]
    overdue.sort(key=lambda o: (-rank.get(o.severity, 0), -o.overdue.total_seconds()))
    data.overdue_total = len(overdue)
    data.overdue = overdue[:OVERDUE_ROWS]
    _collect_outcomes(engine, data)
    return data


def _collect_outcomes(engine: Engine, data: ReportData) -> None:
    """回访 by category, handler and month; closed without 回访; compensation by kind; withdrawn complaints.

    The follow-up figures cover tickets closed in the period (like section 九); compensation counts the offers
    recorded in the period; withdrawn counts tickets marked withdrawn in the period and still withdrawn.
    """
    start, end, tz = data.start, data.end, data.tz
    cols = [tickets_t.c.id, tickets_t.c.state, tickets_t.c.category, tickets_t.c.assignee,
            tickets_t.c.closed_at, tickets_t.c.satisfaction, tickets_t.c.nps, tickets_t.c.followup_at]
    with engine.connect() as conn:
        closed = conn.execute(select(*cols).where(tickets_t.c.closed_at >= start, tickets_t.c.closed_at < end)
                              .order_by(tickets_t.c.id)).all()
        offered = conn.execute(select(tickets_t.c.compensation).where(
            tickets_t.c.compensation.is_not(None), tickets_t.c.updated_at >= start)).scalars().all()
        marked = set(conn.execute(select(ticket_events.c.ticket_id).where(
            ticket_events.c.action == "outcome", ticket_events.c.at >= start, ticket_events.c.at < end)).scalars())
        withdrawn = set(conn.execute(select(tickets_t.c.id).where(tickets_t.c.withdrawn.is_(True))).scalars())
    groups: dict[str, dict[str, tuple[list[int], list[int]]]] = {"category": {}, "handler": {}, "month": {}}
    for r in closed:
        if incomplete(r):
            data.closed_without_followup += 1
        if r.satisfaction is None:
            continue
        for name, label in (("category", DISPLAY_NAMES.get(r.category or "", r.category or "未分类")),
                            ("handler", r.assignee or "未分配"),
                            ("month", f"{r.closed_at.astimezone(tz):%Y-%m}")):
            scores, answers = groups[name].setdefault(label, ([], []))
            scores.append(int(r.satisfaction))
            if r.nps is not None:
                answers.append(int(r.nps))

    def rows(name: str) -> list[SatisfactionRow]:
        made = [SatisfactionRow(k, tuple(v[0]), tuple(v[1])) for k, v in groups[name].items()]
        return sorted(made, key=lambda x: x.label) if name == "month" else sorted(
            made, key=lambda x: (-len(x.scores), x.label))
    data.satisfaction_by_category, data.satisfaction_by_handler = rows("category"), rows("handler")
    data.satisfaction_by_month = rows("month")
    totals: dict[str, tuple[int, Decimal]] = {}
    for listed in offered:
        for entry in listed or []:
            try:
                at = datetime.fromisoformat(str(entry.get("at")))
                amount = Decimal(str(entry.get("amount") or 0))
            except (ValueError, InvalidOperation):  # a hand-edited entry: skip it rather than fail the report
                continue
            if start <= at < end:
                n, total = totals.get(entry.get("kind", "other"), (0, Decimal(0)))
                totals[entry.get("kind", "other")] = (n + 1, total + amount)
    data.compensation_totals = {k: totals[k] for k in [*COMPENSATION_KINDS, *sorted(totals)] if k in totals}
    data.withdrawn = len(marked & withdrawn)


def build_report(engine: Engine, config: Config, *, start: datetime, end: datetime, fmt: str = "markdown",
                 now: datetime | None = None) -> str:
    """The report of [start, end) as Markdown (``fmt="markdown"``) or printable HTML (``fmt="html"``).

    A period of one day is a 日报, longer a 周报. ``now`` (default ``end``) is when the report is made: deadlines
    after it are not judged yet and overdue tickets are those overdue at that moment.
    """
    if fmt not in ("markdown", "html"):
        raise ValueError(f"unknown report format {fmt!r}; use markdown or html")
    data = collect(engine, config, start=start, end=end, now=now)
    sections = _sections(data)
    return _html(_title(data), _subtitle(data), sections) if fmt == "html" else _markdown(
        _title(data), _subtitle(data), sections)


# -- layout: a list of sections, each paragraphs and tables of plain strings, rendered by either format ----------

Table = tuple[list[str], list[list[str]]]


@dataclass
class _Section:
    heading: str
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    empty: str = ""


def _title(d: ReportData) -> str:
    first = d.start.astimezone(d.tz).date()
    last = (d.end.astimezone(d.tz) - timedelta(microseconds=1)).date()
    if first == last:
        return f"舆情日报 {first.isoformat()}"
    return f"舆情周报 {first.isoformat()} 至 {last.isoformat()}" if (last - first).days == 6 else \
        f"舆情报告 {first.isoformat()} 至 {last.isoformat()}"


def _subtitle(d: ReportData) -> str:
    fmt = "%Y-%m-%d %H:%M"
    return (f"统计区间 {d.start.astimezone(d.tz):{fmt}} — {d.end.astimezone(d.tz):{fmt}}（{d.tz.key}），"
            f"生成于 {d.now.astimezone(d.tz):{fmt}}")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _hours(h: float | None) -> str:
    if h is None:
        return "—"
    return f"{h:.1f} 小时" if h < 48 else f"{h / 24:.1f} 天"


def _sev(code: str) -> str:
    return SEVERITY_ZH.get(code, code)


def _sections(d: ReportData) -> list[_Section]:
    out = []
    total = d.total
    s = _Section("一、信息量概览", [f"共采集 {total.posts} 条，其中负面 {total.negative} 条，"
                                  f"负面占比 {_pct(total.negative_share)}。"])
    if d.by_source:
        s.tables.append((["来源", "帖子数", "负面数", "负面占比"],
                         [[v.label, str(v.posts), str(v.negative), _pct(v.negative_share)] for v in d.by_source]
                         + [["合计", str(total.posts), str(total.negative), _pct(total.negative_share)]]))
    out.append(s)
    out.append(_Section("二、每日走势", tables=[(["日期", "帖子数", "负面数", "负面占比"],
                                            [[v.label, str(v.posts), str(v.negative), _pct(v.negative_share)]
                                             for v in d.by_day])]))
    s = _Section(f"三、热点事件 Top {TOP_INCIDENTS}", empty="本期没有活跃事件。")
    if d.top:
        s.tables.append((["事件", "级别", "标题", "本期帖子", "累计帖子", "状态"],
                         [[f"#{t.id}", _sev(t.severity), t.title, str(t.posts_in_period), str(t.posts_total),
                           _STATUS_ZH.get(t.status, t.status)] for t in d.top]))
    out.append(s)
    by_sev = "，".join(f"{_sev(k)} {d.opened_by_severity[k]}" for k in reversed(SEVERITIES)
                      if d.opened_by_severity.get(k))
    out.append(_Section("四、事件处置", [f"新增事件 {d.incidents_opened} 起" + (f"（{by_sev}）" if by_sev else "")
                                    + f"，已解决 {d.incidents_resolved} 起。",
                                    f"新登记工单 {d.tickets_created} 件，关闭 {d.tickets_closed} 件。"]))
    limits = "、".join(f"{tk.MILESTONE_LABELS[m][0]} {tk.format_span(getattr(d.limits, m))}" for m in tk.MILESTONES)
    out.append(_Section("五、工单时限达成率", [
        f"统计截止时间落在本期的时限（默认：{limits}；各级别可另行配置），已结案而无需该环节的不计。"],
        [(["环节", "本期到期", "按时完成", "达成率"],
          [[tk.MILESTONE_LABELS[r.milestone][0], str(r.due), str(r.met), _pct(r.rate)] for r in d.sla])]))
    out.append(_Section("六、处理时长", [
        f"本期给出解决方案 {len(d.resolution_hours)} 件；从登记到解决的中位数 {_hours(d.resolution_median)}，"
        f"P90 {_hours(d.resolution_p90)}。"]))
    s = _Section("七、工单分类与状态", empty="本期没有新登记的工单。")
    if d.by_category_state:
        header = ["类别", *(tk.STATE_LABELS[st][0] for st in tk.STATES), "合计"]
        rows = [[cat, *(str(counts.get(st, 0)) for st in tk.STATES), str(sum(counts.values()))]
                for cat, counts in sorted(d.by_category_state.items(), key=lambda kv: -sum(kv[1].values()))]
        s.tables.append((header, rows))
    out.append(s)
    s = _Section("八、超时工单", [f"截至生成时共 {d.overdue_total} 件工单超时未完成。"] if d.overdue_total else [],
                 empty="没有超时工单。")
    if d.overdue:
        s.tables.append((["工单号", "级别", "标题", "状态", "超时环节", "超时", "负责人"],
                         [[o.number, _sev(o.severity), o.title, tk.STATE_LABELS[o.state][0],
                           tk.MILESTONE_LABELS[o.milestone][0], tk.format_span(o.overdue), o.assignee or "未分配"]
                          for o in d.overdue]))
    out.append(s)
    avg = d.satisfaction_average
    dist = Counter(d.satisfaction)
    out.append(_Section("九、回访满意度", [
        f"平均 {avg:.2f} / 5（{len(d.satisfaction)} 份回访；" + "，".join(f"{k}分 {dist[k]}" for k in range(5, 0, -1)
                                                                 if dist[k]) + "）。"
        if avg is not None else "本期没有回访记录。"]))
    out += _outcome_sections(d)
    return out


def _nps(x: float | None) -> str:
    return "—" if x is None else f"{x:+.1f}" if x else "0"


def _outcome_sections(d: ReportData) -> list[_Section]:
    """十、回访满意度分布 and 十一、补偿与结果 (after the existing sections; numbering continues)."""
    header = ["回访数", "平均满意度", "NPS 答复", "NPS"]

    def table(first: str, rows: list[SatisfactionRow]) -> Table:
        return ([first, *header], [[r.label, str(len(r.scores)), f"{r.average:.2f}" if r.average is not None
                                    else "—", str(len(r.nps_answers)), _nps(r.nps)] for r in rows])
    s = _Section("十、满意度与 NPS 明细", [
        "本期关闭且有回访的工单，按类别、处理人和月份；NPS = 推荐者（9–10 分）占比 − 贬损者（0–6 分）占比。",
        f"本期关闭但未回访的工单 {d.closed_without_followup} 件。"])
    if d.satisfaction_by_category:
        s.tables += [table("类别", d.satisfaction_by_category), table("处理人", d.satisfaction_by_handler),
                     table("月份", d.satisfaction_by_month)]
    s2 = _Section("十一、补偿与结果", [f"本期投诉人撤诉（撤下公开投诉）{d.withdrawn} 件。"])
    if d.compensation_totals:
        s2.tables.append((["补偿方式", "次数", "金额（元）"],
                          [[COMPENSATION_KINDS.get(k, k), str(n), f"{total:.2f}"]
                           for k, (n, total) in d.compensation_totals.items()]))
    else:
        s2.lines.append("本期没有补偿记录。")
    return [s, s2]


#: Markdown characters escaped in cells: a post's title must not become a link, emphasis, HTML or a table column.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|"})


def _md_cell(text: str) -> str:
    return " ".join(text.split()).translate(_MD_SPECIAL)


def _markdown(title: str, subtitle: str, sections: list[_Section]) -> str:
    lines = [f"# {_md_cell(title)}", "", subtitle, ""]
    for s in sections:
        lines += [f"## {s.heading}", ""]
        for line in s.lines:
            lines += [line, ""]
        for header, rows in s.tables:
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        if not s.lines and not s.tables and s.empty:
            lines += [s.empty, ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; color: #222; margin: 2em auto;
       max-width: 60em; line-height: 1.5; }
h1 { font-size: 1.6em; border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #999; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; }
.sub { color: #555; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } tr { page-break-inside: avoid; } }
"""


def _html(title: str, subtitle: str, sections: list[_Section]) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>", f'<p class="sub">{e(subtitle)}</p>']
    for s in sections:
        parts.append(f"<h2>{e(s.heading)}</h2>")
        parts += [f"<p>{e(line)}</p>" for line in s.lines]
        for header, rows in s.tables:
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
            for row in rows:
                cells = "".join(f'<td class="n">{e(c)}</td>' if _numeric(c) else f"<td>{e(c)}</td>" for c in row)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</tbody></table>")
        if not s.tables and not s.lines and s.empty:
            parts.append(f"<p>{e(s.empty)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).rstrip("%").isdigit()


__all__ = ["OverdueRow", "ReportData", "SlaRow", "TopIncident", "Volume", "build_report", "collect", "day_window",
           "week_window"]
