"""Registering a ticket: who, what, where, when, the demand and the evidence, read from an incident's posts or
from one complaint-portal item (the team's registration fields). Pure reads on the caller's connection;
:class:`alerts.queue.TicketQueue` writes the ticket.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.analysis.surge import from_epoch
from monitor.db.schema import incident_posts, posts, sources
from monitor.db.store import posts_by_uid

#: Posts of an incident read to register its ticket (author, demand, evidence): the earliest ones say it all.
REGISTER_POSTS = 500
#: Evidence links kept per ticket.
EVIDENCE_LINKS = 20
#: Words that mark a sentence as the complainant's demand when the source has no demand field.
_DEMAND = re.compile(r"要求|希望|诉求|退款|退钱|退货|退费|赔偿|补偿|赔付|道歉|说法|召回|换货|维修|返还|索赔|解决")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+")


@dataclass(frozen=True)
class Registration:
    """What a new ticket is registered with: who, what, where, when, the demand and the evidence."""

    title: str
    severity: str
    category: str | None
    tags: list[str]
    complainant: str
    platform: str
    occurred_at: datetime | None
    content: str
    demand: str
    evidence: list[str]
    incident_id: int | None = None
    post_uid: str | None = None


@dataclass(frozen=True)
class IncidentInfo:
    """The parts of an incident (the tracker's, or a stored row) a ticket is registered from."""

    id: int
    severity: str
    title: str
    keys: list[str]
    keywords: list[str]
    sources: list[str]
    watches: list[str]
    representative: str | None
    opened_at: datetime
    post_uids: list[str]
    category: str | None


def incident_info(conn: Connection, incident: Any, with_posts: bool = True) -> IncidentInfo:
    """An incident as :class:`IncidentInfo`: the tracker's Incident, or an incidents row (its posts read when
    ``with_posts``)."""
    if hasattr(incident, "post_ids"):  # the tracker's Incident
        return IncidentInfo(incident.id, incident.severity, incident.title, list(incident.keys),
                            list(incident.keywords), sorted(incident.sources), list(incident.watch_names),
                            incident.representative, from_epoch(incident.opened_at), list(incident.post_ids),
                            None)
    r = incident._mapping if hasattr(incident, "_mapping") else incident
    uids: list[str] = []
    if with_posts:
        uids = list(conn.execute(select(incident_posts.c.post_uid).where(incident_posts.c.incident_id == r["id"])
                                 .order_by(incident_posts.c.added_at, incident_posts.c.post_uid)).scalars())
    return IncidentInfo(r["id"], r["severity"], r.get("title") or "", list(r.get("keys") or []),
                        list(r.get("keywords") or []), list(r.get("sources") or []),
                        list(r.get("watches") or []), r.get("representative"), r["opened_at"], uids,
                        r.get("category"))


def register_incident(conn: Connection, info: IncidentInfo) -> Registration:
    """The registration of an incident's ticket from its earliest posts: the main authors, the representative
    post, stated or found demands, the most common category and the evidence links."""
    found = posts_for(conn, info.post_uids[:REGISTER_POSTS])
    ordered = [found[u] for u in info.post_uids if u in found]
    authors = Counter(p["author"] or p["author_id"] for p in ordered if p["author"] or p["author_id"])
    main = [a for a, _ in authors.most_common(3)]
    complainant = "、".join(main) + (f" 等{len(authors)}人" if len(authors) > len(main) else "")
    rep = found.get(info.representative or "") or (ordered[0] if ordered else None)
    content = post_text(rep) if rep else info.title
    demands = [str((p["extra"] or {}).get("demand") or "").strip() for p in ordered]
    stated = [d for d, _ in Counter(d for d in demands if d).most_common(3)]
    demand = "；".join(stated) or demand_from([post_text(p) for p in ordered])
    categories = Counter(p["category"] for p in ordered if p["category"] and p["category"] != "other")
    category = categories.most_common(1)[0][0] if categories else (info.category or (
        "other" if any(p["category"] for p in ordered) else None))
    evidence = unique([p["url"] for p in ordered if p["url"]])[:EVIDENCE_LINKS]
    return Registration(
        title=info.title or "负面舆情", severity=info.severity, category=category,
        tags=unique(list(info.keywords) + [w for w in info.watches if w != "*"]),
        complainant=complainant[:255], platform=", ".join(info.sources)[:255], occurred_at=info.opened_at,
        content=content, demand=demand, evidence=evidence, incident_id=info.id)


def post_item(conn: Connection, post: Any, watches: Sequence[str] | None,
              category: str | None) -> dict[str, Any] | None:
    """One complaint-portal item as a plain dict (a Post, a posts row or a mapping); None without a source."""
    if hasattr(post, "uid") and hasattr(post, "native_id") and not hasattr(post, "_mapping"):  # a Post
        return {"uid": post.uid, "source": post.source, "title": post.title, "text": post.text,
                "author": post.author or post.author_id, "url": post.url, "published_at": post.published_at,
                "extra": dict(post.extra or {}), "watches": list(watches or ()), "category": category}
    r: Mapping[str, Any] = post._mapping if hasattr(post, "_mapping") else post
    source = r.get("source_name") or r.get("source")
    if not source and r.get("source_id") is not None:
        source = conn.execute(select(sources.c.name).where(sources.c.id == r["source_id"])).scalar()
    if not source:
        return None
    return {"uid": f"{source}:{r['native_id']}", "source": source, "title": r.get("title") or "",
            "text": r.get("text") or "", "author": r.get("author") or r.get("author_id") or "",
            "url": r.get("url") or "", "published_at": r.get("published_at"), "extra": dict(r.get("extra") or {}),
            "watches": list(watches if watches is not None else (r.get("watches") or [])),
            "category": category or r.get("category")}


def posts_for(conn: Connection, uids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """Stored posts by uid, with what registration reads of them."""
    rows = posts_by_uid(conn, uids, posts.c.title, posts.c.text, posts.c.url, posts.c.author, posts.c.author_id,
                        posts.c.extra, posts.c.category)
    return {f"{r.source_name}:{r.native_id}": dict(r._mapping) for r in rows}


def post_text(p: Mapping[str, Any]) -> str:
    """A post's title and text, the title left out when the text repeats it."""
    title, text = p.get("title") or "", p.get("text") or ""
    return f"{title} {text}".strip() if title and title not in text else text


def demand_from(texts: Sequence[str]) -> str:
    """The sentences stating a demand (要求, 退款, 赔偿 ...), most repeated first, at most three."""
    found: Counter[str] = Counter()
    for text in texts:
        for m in _SENTENCE.finditer(text):
            sentence = m.group(0).strip(" ，,、")
            if _DEMAND.search(sentence):
                found[sentence[:80]] += 1
    return "；".join(s for s, _ in found.most_common(3))


def unique(items: Sequence[str]) -> list[str]:
    """``items`` without empties and repeats, in first-seen order."""
    seen: list[str] = []
    for x in items:
        if x and x not in seen:
            seen.append(x)
    return seen
