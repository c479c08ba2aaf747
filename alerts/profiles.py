"""Complainant and author profiles: one person across platforms, how often they complain, how far they reach.

A profile is computed on demand from the tables that already exist (posts, incident_posts, tickets); nothing new is
stored, so there is nothing extra to purge or to encrypt. Starting from one account (source, handle), other accounts
are linked to it, each link with the evidence for it:

* **同名账号** — the same handle on another source;
* **同一联系方式** — the same phone number, order number or e-mail address in both accounts' texts (found with
  :func:`monitor.privacy.find_personal`; the evidence shows it masked, always);
* **相似投诉** — near-identical texts: character-bigram Jaccard >= :data:`SIMILAR_TEXT` (the evidence names the two
  post uids).

Linking is one hop from the account asked about: a link of a link is not followed, so one shared phone number cannot
chain half the platform into one "person".

Every query is bounded: the last :data:`WINDOW` of posts (``ix_posts_published_at``), the person's own handles, and
at most :data:`SCAN_LIMIT` rows per scan.

Reach grades single complaints: :func:`reach_bump` / :func:`graded_severity` raise a portal complaint from an author
with a large following (a complaint from someone with 500k followers is a bigger risk than one from 50 followers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.engine import Connection

from alerts.message import SEVERITY_ZH
from monitor.analysis.surge import SEVERITIES, reach_levels
from monitor.clock import SystemClock
from monitor.crypto import cipher_for
from monitor.db.schema import incident_posts, posts, sources
from monitor.db.schema import tickets as tickets_t
from monitor.normalize import followers_of
from monitor.privacy import find_personal, mask_value

if TYPE_CHECKING:
    from monitor.config import Config

#: How far back a profile looks.
WINDOW = timedelta(days=90)
#: The window of the repeat-complainant flag.
RECENT = timedelta(days=30)
#: Rows read per scan at most (posts of the person, candidates for a link, tickets).
SCAN_LIMIT = 2000
#: Character-bigram Jaccard at or above which two texts are "near-identical".
SIMILAR_TEXT = 0.8
#: Texts shorter than this are not compared: "退款！" matches every other "退款！".
MIN_SIMILAR_CHARS = 10
#: Personal-field kinds that identify a person when they recur (a name alone does not: 张** is half the country).
LINK_KINDS = ("mobile", "landline", "order", "email", "id_card")

#: Flag thresholds.
REPEAT_TICKETS = 2
REPEAT_NEGATIVES = 3
LARGE_FOLLOWERS = 100_000
LARGE_ENGAGEMENT = 1_000
MULTI_INCIDENTS = 2

#: Link kinds and their labels.
LINK_LABELS = {"same_handle": "同名账号", "same_contact": "同一联系方式", "similar_text": "相似投诉"}
FLAG_LABELS = {"repeat_complainant": "重复投诉", "large_reach": "大V", "multi_incident": "多次事件"}
_KIND_ZH = {"mobile": "手机号", "landline": "电话", "order": "订单号", "email": "邮箱", "id_card": "证件号"}


@dataclass(frozen=True)
class Link:
    """Why an account is taken for the same person: ``kind`` (see :data:`LINK_LABELS`), the evidence in words
    (personal values masked) and the post uids it rests on."""

    kind: str
    evidence: str
    posts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form, with the kind's Chinese label."""
        return {"kind": self.kind, "label": LINK_LABELS[self.kind], "evidence": self.evidence,
                "posts": list(self.posts)}


@dataclass
class Account:
    """One account (source, handle) of the person; ``links`` is empty for the account the profile started from."""

    source: str
    handle: str
    links: list[Link] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"source": self.source, "handle": self.handle, "seed": not self.links,
                "links": [x.to_json() for x in self.links]}


@dataclass
class Profile:
    """A person as seen over :data:`WINDOW`: their accounts, counts, reach and flags."""

    source: str
    handle: str
    accounts: list[Account]
    posts: int = 0
    negative_posts: int = 0
    negative_recent: int = 0  # negative posts about a watched brand within RECENT
    incidents: list[int] = field(default_factory=list)
    tickets: list[int] = field(default_factory=list)
    tickets_recent: int = 0
    max_followers: int | None = None
    engagement: int = 0  # reposts + comments
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON form (what GET /api/profiles returns before masking)."""
        return {
            "source": self.source, "handle": self.handle, "window_days": WINDOW.days,
            "accounts": [a.to_json() for a in self.accounts],
            "counts": {"posts": self.posts, "negative_posts": self.negative_posts,
                       "negative_recent": self.negative_recent, "incidents": len(self.incidents),
                       "tickets": len(self.tickets), "tickets_recent": self.tickets_recent},
            "incidents": self.incidents, "tickets": self.tickets,
            "reach": {"max_followers": self.max_followers, "engagement": self.engagement},
            "flags": [{"code": f, "label": FLAG_LABELS[f]} for f in self.flags],
        }


# -- reach ---------------------------------------------------------------------------------------------------------

def reach_bump(followers: int | None) -> int:
    """How many severity levels a single complaint is raised for its author's following (the detector's
    :data:`~monitor.analysis.surge.REACH_LEVELS`: >= 500,000 -> 2, >= 100,000 -> 1, else 0)."""
    return reach_levels(followers)


def graded_severity(base: str, followers: int | None) -> str:
    """``base`` (blue < yellow < orange < red) raised by :func:`reach_bump`, never above red. An unknown ``base``
    comes back as it is."""
    if base not in SEVERITIES:
        return base
    return SEVERITIES[min(len(SEVERITIES) - 1, SEVERITIES.index(base) + reach_bump(followers))]


def followers_text(followers: int) -> str:
    """A follower count the way the team says it: 52 万, 3.5 万, 8000."""
    if followers < 10_000:
        return str(followers)
    return f"{followers / 10_000:.1f}".rstrip("0").rstrip(".") + " 万"


def reach_note(followers: int, before: str, after: str) -> str:
    """The ticket-history note saying why a complaint was graded up."""
    return (f"大V投诉：粉丝 {followers_text(followers)}，等级上调"
            f"（{SEVERITY_ZH.get(before, before)} → {SEVERITY_ZH.get(after, after)}）")


# -- text helpers --------------------------------------------------------------------------------------------------

def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of ``text`` with whitespace and punctuation dropped (a re-post adds a "！" or a space)."""
    s = re.sub(r"[\W_]+", "", text or "")
    return frozenset(s[i:i + 2] for i in range(len(s) - 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two bigram sets (0 when either is empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _norm_value(kind: str, value: str) -> str:
    """A personal value in one spelling, so 138-1234-5678 and 13812345678 are the same number."""
    if kind in ("mobile", "landline", "id_card"):
        digits = re.sub(r"[^0-9Xx]", "", value).upper()
        return digits[-11:] if kind == "mobile" else digits
    return value.lower()


def _spellings(kind: str, value: str, norm: str) -> set[str]:
    """The ways a value is commonly written, for LIKE (which cannot ignore separators): a mobile number plain,
    3-4-4 with dashes and with spaces."""
    out = {value}
    if kind == "mobile" and len(norm) == 11:
        out |= {norm, f"{norm[:3]}-{norm[3:7]}-{norm[7:]}", f"{norm[:3]} {norm[3:7]} {norm[7:]}"}
    elif kind != "email":
        out.add(norm)
    return out


def contacts_in(text: str) -> dict[str, tuple[str, str]]:
    """The identifying personal fields of ``text``: normalized value -> (kind, value as written)."""
    return {_norm_value(f.kind, f.value): (f.kind, f.value) for f in find_personal(text) if f.kind in LINK_KINDS}


def mask_handle(handle: str) -> str:
    """A handle partly hidden for roles that see personal data masked: first character + ``***``."""
    return handle[:1] + "***" if handle else handle


# -- the profile -----------------------------------------------------------------------------------------------------

def build_profile(engine: Engine, config: Config | None, *, source: str, author: str,
                  now: datetime | None = None) -> Profile:
    """The profile of the person posting as ``author`` on ``source`` (see the module docstring)."""
    now = now or SystemClock().now()
    since = now - WINDOW
    with engine.connect() as conn:
        own = _account_posts(conn, [(source, author)], since)
        accounts: dict[tuple[str, str], Account] = {(source, author): Account(source, author)}
        _link_same_handle(conn, accounts, author, source, since)
        _link_contacts(conn, accounts, own, since)
        _link_similar(conn, accounts, own, since)
        rows = _account_posts(conn, list(accounts), since)
        profile = Profile(source=source, handle=author, accounts=list(accounts.values()))
        _count_posts(profile, rows, now - RECENT)
        profile.incidents = _incidents(conn, list(accounts))
        profile.tickets, profile.tickets_recent = _tickets(conn, config, list(accounts), rows, since, now - RECENT)
    profile.flags = flags_for(profile)
    return profile


def flags_for(profile: Profile) -> list[str]:
    """The flags a profile earns (codes of :data:`FLAG_LABELS`, in that order)."""
    out = []
    if profile.tickets_recent >= REPEAT_TICKETS or profile.negative_recent >= REPEAT_NEGATIVES:
        out.append("repeat_complainant")
    if (profile.max_followers or 0) >= LARGE_FOLLOWERS or profile.engagement >= LARGE_ENGAGEMENT:
        out.append("large_reach")
    if len(profile.incidents) >= MULTI_INCIDENTS:
        out.append("multi_incident")
    return out


def ticket_person(engine: Engine, ticket: Any) -> tuple[str, str] | None:
    """Whose profile a ticket shows: the author of its post (portal tickets), or the author with the most posts in
    its incident (incident tickets); None when neither is known. ``ticket`` has ``post_uid`` and ``incident_id``."""
    with engine.connect() as conn:
        uid = getattr(ticket, "post_uid", None)
        if uid:
            src, _, native = str(uid).partition(":")
            row = conn.execute(select(posts.c.author, posts.c.author_id)
                               .join(sources, posts.c.source_id == sources.c.id)
                               .where(sources.c.name == src, posts.c.native_id == native)).first()
            if row is not None and (row.author or row.author_id):
                return src, row.author or row.author_id
        incident_id = getattr(ticket, "incident_id", None)
        if incident_id is not None:
            counts: dict[tuple[str, str], int] = {}
            for r in conn.execute(select(incident_posts.c.source, incident_posts.c.author)
                                  .where(incident_posts.c.incident_id == incident_id).limit(SCAN_LIMIT)):
                if r.author:
                    counts[(r.source, r.author)] = counts.get((r.source, r.author), 0) + 1
            if counts:
                # Most posts first; ties by name so the answer does not change between two views.
                return min(counts, key=lambda k: (-counts[k], k))
    return None


# -- internals -------------------------------------------------------------------------------------------------------

_POST_COLS = (sources.c.name.label("source"), posts.c.native_id, posts.c.author, posts.c.author_id, posts.c.title,
              posts.c.text, posts.c.reposts, posts.c.comments, posts.c.extra, posts.c.sentiment, posts.c.watches,
              posts.c.published_at)


def _uid(r: Any) -> str:
    return f"{r.source}:{r.native_id}"


def _handle(r: Any) -> str:
    return str(r.author or r.author_id or "")


def _account_posts(conn: Connection, accounts: Sequence[tuple[str, str]], since: datetime) -> list[Any]:
    """The posts of these accounts in the window (author or author_id equal to the handle), newest first."""
    handles = sorted({h for _, h in accounts})
    wanted = set(accounts)
    rows = conn.execute(select(*_POST_COLS).join(sources, posts.c.source_id == sources.c.id)
                        .where(posts.c.published_at >= since,
                               or_(posts.c.author.in_(handles), posts.c.author_id.in_(handles)),
                               sources.c.name.in_(sorted({s for s, _ in accounts})))
                        .order_by(posts.c.published_at.desc()).limit(SCAN_LIMIT)).all()
    return [r for r in rows if (r.source, r.author) in wanted or (r.source, r.author_id) in wanted]


def _add(accounts: dict[tuple[str, str], Account], source: str, handle: str, link: Link) -> None:
    """Link (source, handle) with ``link`` (once per evidence); the seed account (the first key) is never linked."""
    key = (source, handle)
    if key == next(iter(accounts)):
        return
    acct = accounts.setdefault(key, Account(source, handle))
    if all((x.kind, x.evidence) != (link.kind, link.evidence) for x in acct.links):
        acct.links.append(link)


def _link_same_handle(conn: Connection, accounts: dict[tuple[str, str], Account], handle: str, source: str,
                      since: datetime) -> None:
    if not handle:
        return
    rows = conn.execute(select(sources.c.name, posts.c.native_id).join(sources, posts.c.source_id == sources.c.id)
                        .where(posts.c.published_at >= since, posts.c.author == handle, sources.c.name != source)
                        .order_by(posts.c.published_at.desc()).limit(SCAN_LIMIT)).all()
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r.name, []).append(f"{r.name}:{r.native_id}")
    for src, uids in sorted(by_source.items()):
        _add(accounts, src, handle, Link("same_handle", f"同名账号：{src} 上也有「{handle}」",
                                         tuple(uids[:3])))


def _link_contacts(conn: Connection, accounts: dict[tuple[str, str], Account], own: Sequence[Any],
                   since: datetime) -> None:
    seed = next(iter(accounts))
    found: dict[str, tuple[str, str, str]] = {}  # normalized -> (kind, as written, uid)
    for r in own:
        for norm, (kind, value) in contacts_in(f"{r.title or ''} {r.text or ''}").items():
            found.setdefault(norm, (kind, value, _uid(r)))
    for norm, (kind, value, uid) in list(found.items())[:20]:
        # LIKE on the value as written and in its plain spelling; find_personal confirms it on each candidate.
        needles = _spellings(kind, value, norm)
        rows = conn.execute(select(*_POST_COLS).join(sources, posts.c.source_id == sources.c.id)
                            .where(posts.c.published_at >= since,
                                   or_(*[posts.c.text.contains(n, autoescape=True) for n in needles],
                                       *[posts.c.title.contains(n, autoescape=True) for n in needles]))
                            .order_by(posts.c.published_at.desc()).limit(SCAN_LIMIT)).all()
        for r in rows:
            key = (r.source, _handle(r))
            if not key[1] or key == seed:
                continue
            if norm not in contacts_in(f"{r.title or ''} {r.text or ''}"):
                continue
            evidence = f"同一{_KIND_ZH.get(kind, kind)} {mask_value(kind, value)}"
            _add(accounts, key[0], key[1], Link("same_contact", evidence, (uid, _uid(r))))


def _link_similar(conn: Connection, accounts: dict[tuple[str, str], Account], own: Sequence[Any],
                  since: datetime) -> None:
    seed = next(iter(accounts))
    mine = [(_uid(r), bigrams(r.text or "")) for r in own[:50] if len(r.text or "") >= MIN_SIMILAR_CHARS]
    if not mine:
        return
    # Near-identical complaints are negative: the newest negative posts of the window are the candidates.
    rows = conn.execute(select(*_POST_COLS).join(sources, posts.c.source_id == sources.c.id)
                        .where(posts.c.published_at >= since, posts.c.sentiment == "negative")
                        .order_by(posts.c.published_at.desc()).limit(SCAN_LIMIT)).all()
    for r in rows:
        key = (r.source, _handle(r))
        if not key[1] or key == seed or len(r.text or "") < MIN_SIMILAR_CHARS:
            continue
        theirs = bigrams(r.text or "")
        for uid, grams in mine:
            score = jaccard(grams, theirs)
            if score >= SIMILAR_TEXT:
                _add(accounts, key[0], key[1],
                     Link("similar_text", f"相似投诉 {score:.2f}：{uid} ≈ {_uid(r)}", (uid, _uid(r))))
                break


def _count_posts(profile: Profile, rows: Iterable[Any], recent: datetime) -> None:
    for r in rows:
        profile.posts += 1
        negative = r.sentiment == "negative"
        profile.negative_posts += negative
        published = r.published_at
        if negative and r.watches and published is not None and published >= recent:
            profile.negative_recent += 1
        profile.engagement += (r.reposts or 0) + (r.comments or 0)
        got = followers_of(r.extra)
        if got is not None and (profile.max_followers is None or got > profile.max_followers):
            profile.max_followers = got


def _incidents(conn: Connection, accounts: Sequence[tuple[str, str]]) -> list[int]:
    handles = sorted({h for _, h in accounts})
    wanted = set(accounts)
    rows = conn.execute(select(incident_posts.c.incident_id, incident_posts.c.source, incident_posts.c.author)
                        .where(incident_posts.c.author.in_(handles)).limit(SCAN_LIMIT))
    return sorted({int(r.incident_id) for r in rows if (r.source, r.author) in wanted})


def _tickets(conn: Connection, config: Config | None, accounts: Sequence[tuple[str, str]], rows: Sequence[Any],
             since: datetime, recent: datetime) -> tuple[list[int], int]:
    """Tickets of the window naming the person: their post is the ticket's, or a handle of theirs is among its
    complainants (decrypted: the column may be encrypted at rest, so it cannot be matched in SQL)."""
    uids = {_uid(r) for r in rows}
    handles = {h for _, h in accounts}
    cipher = cipher_for(config)
    found: dict[int, datetime] = {}
    for t in conn.execute(select(tickets_t.c.id, tickets_t.c.complainant, tickets_t.c.post_uid,
                                 tickets_t.c.created_at).where(tickets_t.c.created_at >= since)
                          .order_by(tickets_t.c.created_at.desc()).limit(SCAN_LIMIT)):
        names = re.sub(r"\s*等\d+人$", "", cipher.decrypt("complainant", t.complainant) or "")
        if t.post_uid in uids or handles & {n.strip() for n in names.split("、")}:
            found[int(t.id)] = t.created_at
    return sorted(found), sum(1 for at in found.values() if at >= recent)
