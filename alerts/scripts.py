"""The reply-script library (标准话术库): standard replies to complainants per complaint category and stage, with
placeholders filled from the ticket, versioned, and ranked for a ticket by how well they fit it.

A script is identified by its ``key``; every edit is a new row with the next ``version`` (the old wording stays
for the record of what was sent), and the newest active version is the one offered. Deactivating a key retires
every version of it; saving a new version brings it back. The default library (``alerts/data/reply_scripts.yaml``)
is seeded into an empty table the first time the library is used.

Suggestions for a ticket are the active scripts of its category (or of any category) and of the stage its state
implies, ranked by (a) the character-bigram overlap of the ticket's text and the script, and (b) how often handlers
chose that script for tickets of the same category before (``script_uses``). What a handler sends is recorded with
:meth:`ScriptLibrary.record_use`, which also writes the reply into the ticket's history and counts it as the first
response (through :meth:`alerts.queue.TicketQueue.respond`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.exc import IntegrityError

from alerts import tickets as tk
from monitor.analysis.category import CATEGORIES
from monitor.clock import Clock, SystemClock
from monitor.db.schema import reply_scripts, script_uses

if TYPE_CHECKING:
    from alerts.queue import Ticket
    from monitor.config import Config

#: The default library, shipped as package data.
DEFAULT_LIBRARY = Path(__file__).parent / "data" / "reply_scripts.yaml"
#: Stages of a reply, in the order a complaint goes through them.
STAGES = ("acknowledge", "apology", "solution", "followup")
STAGE_LABELS: dict[str, tuple[str, str]] = {
    "acknowledge": ("受理", "acknowledge"), "apology": ("致歉", "apology"), "solution": ("处理方案", "solution"),
    "followup": ("回访", "follow-up")}
#: Which stages fit a ticket in each state (first = most fitting).
STATE_STAGES: dict[str, tuple[str, ...]] = {
    tk.ACCEPTED: ("acknowledge", "apology"), tk.VERIFYING: ("apology",), tk.HANDLING: ("solution",),
    tk.FOLLOW_UP: ("followup",), tk.CLOSED: ("followup",)}
#: The placeholders a script may use.
PLACEHOLDERS = ("name", "ticket", "deadline", "brand", "handler")
#: Weights of the two ranking signals (each normalised to 0..1 over the candidates), and the small preference for
#: a script written for the ticket's own category over a general one when the signals tie. Past choices weigh a
#: little more than wording: they are what handlers found works for this kind of complaint, whereas two short
#: texts share few bigrams by chance.
SIMILARITY_WEIGHT = 0.4
USE_WEIGHT = 0.6
CATEGORY_BONUS = 0.05
#: Suggestions returned by default.
SUGGESTIONS = 5
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELD = re.compile(r"\{(\w*)\}")
_PUNCT = re.compile(r"[^\w]+")


class ScriptError(tk.TicketError):
    """A script that cannot be saved or used (bilingual message)."""


@dataclass(frozen=True)
class Script:
    """One version of a reply script."""

    id: int
    key: str
    version: int
    category: str | None
    stage: str
    title: str
    body: str
    active: bool
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (time as ISO 8601 UTC)."""
        return {"id": self.id, "key": self.key, "version": self.version, "category": self.category,
                "stage": self.stage, "stage_label": STAGE_LABELS[self.stage][0] if self.stage in STAGE_LABELS
                else self.stage, "title": self.title, "body": self.body, "active": self.active,
                "created_by": self.created_by, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Suggestion:
    """A script offered for a ticket: its filled-in text and why it ranks where it does."""

    script: Script
    text: str
    score: float
    similarity: float
    uses: int

    def to_json(self) -> dict[str, Any]:
        """The script's JSON plus ``text`` (filled in), ``score``, ``similarity`` and ``uses``."""
        out = self.script.to_json()
        out.update(text=self.text, score=round(self.score, 4), similarity=round(self.similarity, 4), uses=self.uses)
        return out


def bigrams(text: str) -> set[str]:
    """The character bigrams of ``text`` inside runs of letters, digits and CJK characters (punctuation and spaces
    split runs; placeholders are dropped first, so ``{ticket}`` does not count as the word "ticket")."""
    out: set[str] = set()
    for run in _PUNCT.split(_FIELD.sub(" ", text.lower())):
        out.update(run[i:i + 2] for i in range(len(run) - 1))
    return out


def similarity(a: set[str], b: set[str]) -> float:
    """Dice coefficient of two bigram sets (0 when either is empty)."""
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def check_placeholders(body: str) -> None:
    """Raise :class:`ScriptError` for an unknown or empty ``{placeholder}`` (a typo would reach the complainant)."""
    bad = sorted({m for m in _FIELD.findall(body) if m not in PLACEHOLDERS})
    if bad:
        raise ScriptError(f"未知的占位符 {{{bad[0]}}}，可用：{', '.join('{' + p + '}' for p in PLACEHOLDERS)} / "
                          f"unknown placeholder {{{bad[0]}}}; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")


def fill(body: str, values: dict[str, str]) -> str:
    """``body`` with each known placeholder replaced (by text: a value holding braces is not expanded again)."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def load_defaults(path: Path = DEFAULT_LIBRARY) -> list[dict[str, Any]]:
    """The default library's entries (key, category, stage, title, body), checked; line breaks inside a body are
    joined without a space (Chinese text has none between sentences)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    out = []
    for e in entries:
        body = "".join(line.strip() for line in str(e["body"]).splitlines())
        _check(str(e["key"]), e.get("category"), str(e["stage"]), str(e["title"]), body)
        out.append({"key": str(e["key"]), "category": e.get("category"), "stage": str(e["stage"]),
                    "title": str(e["title"]), "body": body})
    return out


def _check(key: str, category: str | None, stage: str, title: str, body: str) -> None:
    if not _KEY.match(key):
        raise ScriptError(f"话术编号 {key!r} 只能用小写字母、数字、- 和 _ / a script key is lowercase letters, digits, "
                          "- and _ (at most 64)")
    if category is not None and category not in CATEGORIES:
        raise ScriptError(f"未知的类别 {category!r} / unknown category; use {', '.join(CATEGORIES)} or none (any)")
    if stage not in STAGES:
        raise ScriptError(f"未知的阶段 {stage!r} / unknown stage; use {', '.join(STAGES)}")
    if not title.strip() or not body.strip():
        raise ScriptError("话术的标题和正文不能为空 / a script needs a title and a body")
    check_placeholders(body)


def _script(r: Any) -> Script:
    return Script(int(r.id), r.key, int(r.version), r.category, r.stage, r.title, r.body, bool(r.active),
                  r.created_by, r.created_at)


class ScriptLibrary:
    """The library over one engine and config; ``clock`` gives ``now`` where the caller does not."""

    def __init__(self, engine: Engine, config: Config, clock: Clock | None = None) -> None:
        self.engine = engine
        self.config = config
        self.clock: Clock = clock or SystemClock()

    # -- the library -----------------------------------------------------------------------------------------------
    def ensure_seeded(self, now: datetime | None = None) -> int:
        """Write the default library into an empty table; returns how many scripts were written (0: not empty)."""
        now = now or self.clock.now()
        with self.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(reply_scripts)).scalar_one():
                return 0
        rows = [dict(e, version=1, active=True, created_by="system", created_at=now) for e in load_defaults()]
        try:
            with self.engine.begin() as conn:
                conn.execute(reply_scripts.insert(), rows)
        except IntegrityError:  # another process seeded it at the same moment: theirs stands
            return 0
        return len(rows)

    def scripts(self, *, include_inactive: bool = False, all_versions: bool = False) -> list[Script]:
        """The newest version of each script (active ones only unless ``include_inactive``), or with
        ``all_versions`` every row; by category (general last), stage order, key, newest version first."""
        self.ensure_seeded()
        with self.engine.connect() as conn:
            rows = [_script(r) for r in conn.execute(select(reply_scripts))]
        if not all_versions:
            newest: dict[str, Script] = {}
            for s in rows:
                if s.key not in newest or s.version > newest[s.key].version:
                    newest[s.key] = s
            rows = list(newest.values())
        if not include_inactive:
            rows = [s for s in rows if s.active]
        order = {c: i for i, c in enumerate(CATEGORIES)}
        rows.sort(key=lambda s: (order.get(s.category or "", len(order)), STAGES.index(s.stage)
                                 if s.stage in STAGES else 9, s.key, -s.version))
        return rows

    def get(self, key: str, version: int | None = None) -> Script | None:
        """A script's ``version``, or its newest version (active or not); None if there is none."""
        self.ensure_seeded()
        query = select(reply_scripts).where(reply_scripts.c.key == key)
        query = query.where(reply_scripts.c.version == version) if version is not None else query.order_by(
            reply_scripts.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _script(row) if row is not None else None

    def save(self, *, key: str | None, category: str | None, stage: str, title: str, body: str, actor: str,
             now: datetime | None = None) -> Script:
        """A new script (``key`` new or None: one is made from the category and stage) or a new version of an
        existing one. The new row is active; earlier versions stay as they were, for the record."""
        now = now or self.clock.now()
        self.ensure_seeded(now)
        category = category or None
        if key is None or not key.strip():
            key = f"{(category or 'any').split('_')[0][:8]}-{stage}-{now:%Y%m%d%H%M%S}".lower()
        key = key.strip()
        _check(key, category, stage, title.strip(), body.strip())
        for _attempt in range(3):  # two admins saving one key at once: the unique (key, version) makes one retry
            try:
                with self.engine.begin() as conn:
                    last = conn.execute(select(func.max(reply_scripts.c.version))
                                        .where(reply_scripts.c.key == key)).scalar()
                    version = int(last or 0) + 1
                    new_id = conn.execute(reply_scripts.insert().values(
                        key=key, version=version, category=category, stage=stage, title=title.strip()[:200],
                        body=body.strip(), active=True, created_by=actor[:64], created_at=now,
                    ).returning(reply_scripts.c.id)).scalar_one()
                    row = conn.execute(select(reply_scripts).where(reply_scripts.c.id == new_id)).one()
                return _script(row)
            except IntegrityError:
                continue
        raise ScriptError(f"话术 {key} 正在被同时修改，请重试 / script {key} is being edited concurrently; retry")

    def deactivate(self, key: str) -> Script:
        """Retire a script: no version of it is offered any more (saving a new version brings it back)."""
        self.ensure_seeded()
        with self.engine.begin() as conn:
            done = conn.execute(update(reply_scripts).where(reply_scripts.c.key == key).values(active=False))
        if not done.rowcount:
            raise ScriptError(f"没有话术 {key} / no script {key}")
        got = self.get(key)
        assert got is not None
        return got

    # -- for a ticket ------------------------------------------------------------------------------------------------
    def values(self, ticket: Ticket, *, handler: str = "") -> dict[str, str]:
        """The placeholder values for ``ticket``: complainant, number, next SLA deadline (display time), brand and
        handler (the assignee, else ``handler``: the person asking)."""
        tz = self.config.tz
        pending = sorted(m.deadline for m in ticket.milestones if m.met_at is None and not m.waived)
        local = pending[0].astimezone(tz) if pending else None
        deadline = f"{local.month}月{local.day}日 {local:%H:%M}" if local else "近期"
        # A ticket from an incident names several people ("张三、李四 等5人"): address them together instead.
        who = ticket.complainant.strip()
        name = who if who and "、" not in who and "等" not in who else "尊敬的用户"
        watches = [w.name for w in self.config.watches]
        brand = next((t for t in ticket.tags if t in watches), watches[0] if watches else "我们")
        return {"name": name, "ticket": ticket.number, "deadline": deadline, "brand": brand,
                "handler": (ticket.assignee or handler or "客服").strip()}

    def suggest(self, ticket: Ticket, *, handler: str = "", limit: int = SUGGESTIONS) -> list[Suggestion]:
        """The scripts that fit ``ticket`` (its category or any; the stages its state implies), best first, each
        with its filled-in text."""
        stages = STATE_STAGES.get(ticket.state, STAGES)
        category = ticket.category if ticket.category in CATEGORIES else None
        candidates = [s for s in self.scripts() if s.stage in stages and s.category in (None, category)]
        if not candidates:
            return []
        uses = self._uses(ticket.category, [s.key for s in candidates])
        text = bigrams(" ".join((ticket.title, ticket.content, ticket.demand)))
        sims = {s.key: similarity(text, bigrams(f"{s.title} {s.body}")) for s in candidates}
        top_sim, top_use = max(sims.values()) or 1.0, max(uses.values(), default=0) or 1
        values = self.values(ticket, handler=handler)
        ranked = []
        for s in candidates:
            score = (SIMILARITY_WEIGHT * sims[s.key] / top_sim + USE_WEIGHT * uses.get(s.key, 0) / top_use
                     + (CATEGORY_BONUS if s.category is not None else 0.0))
            ranked.append(Suggestion(s, fill(s.body, values), score, sims[s.key], uses.get(s.key, 0)))
        ranked.sort(key=lambda g: (-g.score, stages.index(g.script.stage), g.script.key))
        return ranked[:limit]

    def record_use(self, ticket: int | str, script_key: str | None, version: int | None, text: str, *, actor: str,
                   now: datetime | None = None) -> Ticket:
        """Record what was sent to the complainant (from a script, possibly edited, or written from scratch):
        a ``script_uses`` row, and a 回复 in the ticket's history that meets the first-response milestone if
        none was recorded yet. Returns the ticket after it."""
        from alerts.queue import TicketQueue

        if not text.strip():
            raise ScriptError("回复内容不能为空 / write what was sent to the complainant")
        now = now or self.clock.now()
        script = None
        if script_key:
            script = self.get(script_key, version)
            if script is None:
                raise ScriptError(f"没有话术 {script_key}" + (f" 第 {version} 版" if version else "")
                                  + f" / no script {script_key}" + (f" version {version}" if version else ""))
        queue = TicketQueue(self.engine, self.config, self.clock)
        # The reply goes into the history first (it is what matters: it was sent); the use row, which only
        # feeds the ranking, follows. Both need the ticket, which respond() checks.
        after = queue.respond(ticket, f"已回复：{text.strip()}", actor=actor, now=now)
        with self.engine.begin() as conn:
            conn.execute(script_uses.insert().values(
                ticket_id=after.id, script_key=script.key if script else None,
                script_version=script.version if script else None, category=after.category,
                stage=script.stage if script else None, text=text.strip(), actor=actor[:64], at=now))
        return after

    def _uses(self, category: str | None, keys: list[str]) -> Counter[str]:
        """How often each script was chosen for tickets of ``category`` (None: of no known category)."""
        cond = script_uses.c.category == category if category is not None else script_uses.c.category.is_(None)
        with self.engine.connect() as conn:
            rows = conn.execute(select(script_uses.c.script_key, func.count())
                                .where(and_(cond, script_uses.c.script_key.in_(keys)))
                                .group_by(script_uses.c.script_key))
            return Counter({str(k): int(n) for k, n in rows})


__all__ = ["DEFAULT_LIBRARY", "PLACEHOLDERS", "STAGES", "STATE_STAGES", "Script", "ScriptError", "ScriptLibrary",
           "Suggestion", "bigrams", "check_placeholders", "fill", "load_defaults", "similarity"]
