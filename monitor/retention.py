"""What is kept and for how long, and a person's right to see and erase what is held about them.

* :func:`purge` (the daemon's maintenance job every 6 h, and ``monitor privacy purge``): raw posts published more
  than ``privacy.retention_posts_days`` ago are deleted — except posts of incidents still open or quiet and of
  tickets not yet closed — and the personal fields of tickets closed more than ``privacy.retention_personal_days``
  ago are erased (complainant, content, demand, evidence; the ticket, its numbers, times, state and history stay).
* :func:`export_person` / :func:`delete_person` (``monitor privacy export|delete``, ``/api/privacy/...``): everything
  held about one author handle, and its erasure.

Every purge, export and deletion writes an ``audit_log`` row in the same transaction as its last change.

**Reports and purged posts.** No daily aggregate is written (no existing table fits one and the schema stays as it
is): the volume sections of a report (posts per source and per day) count the posts still held, so they are complete
only for days inside the posts retention window. Incidents, tickets, SLA figures and satisfaction are not affected.
docs/privacy.md says so.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine

from alerts import tickets as tk
from monitor import audit
from monitor.crypto import cipher_for
from monitor.db.schema import incident_posts, incidents, posts, sources
from monitor.db.schema import tickets as tickets_t

if TYPE_CHECKING:
    from monitor.config import Config

#: Posts read (and deleted) per transaction: bounds memory and lock time on a first purge of a big table.
BATCH = 2000
#: What an erased complainant name becomes in a ticket naming several people.
ERASED_NAME = "[已删除]"
_NAMES = re.compile(r"\s*[、,，]\s*")
_MORE = re.compile(r"\s*等\s*\d+\s*人$")


def _empty(value: Any) -> bool:
    return value in (None, "", [], ())


def protected_uids(conn: Connection) -> set[str]:
    """Post uids that must stay whatever their age: members of incidents still open or quiet, of the incidents of
    tickets not yet closed, and the portal items of tickets not yet closed."""
    open_tickets = conn.execute(select(tickets_t.c.id, tickets_t.c.incident_id, tickets_t.c.post_uid)
                                .where(tickets_t.c.state != tk.CLOSED)).all()
    keep = {str(t.post_uid) for t in open_tickets if t.post_uid}
    incident_ids = {int(t.incident_id) for t in open_tickets if t.incident_id is not None}
    ticket_ids = [int(t.id) for t in open_tickets]
    incident_ids.update(int(i) for i in conn.execute(select(incidents.c.id).where(
        incidents.c.status != "resolved")).scalars())
    for i in range(0, len(ticket_ids), 500):
        incident_ids.update(int(x) for x in conn.execute(select(incidents.c.id).where(
            incidents.c.ticket_id.in_(ticket_ids[i:i + 500]))).scalars())
    ids = sorted(incident_ids)
    for i in range(0, len(ids), 500):
        keep.update(conn.execute(select(incident_posts.c.post_uid).where(
            incident_posts.c.incident_id.in_(ids[i:i + 500]))).scalars())
    return keep


def purge(engine: Engine, config: Config, now: datetime, *, dry_run: bool = False, actor: str = "retention",
          role: str = "system") -> dict[str, Any]:
    """Apply the retention settings at ``now``; returns the counts (nothing configured: ``{}``).

    ``dry_run`` counts what would go and changes nothing (no audit row either).
    """
    p = config.privacy
    if p.retention_posts_days is None and p.retention_personal_days is None:
        return {}
    out: dict[str, Any] = {"dry_run": dry_run}
    if p.retention_posts_days is not None:
        cutoff = now - timedelta(days=p.retention_posts_days)
        deleted, kept = _purge_posts(engine, cutoff, dry_run)
        out.update(posts_before=cutoff.isoformat(), posts_deleted=deleted, posts_kept=kept)
    if p.retention_personal_days is not None:
        cutoff = now - timedelta(days=p.retention_personal_days)
        out.update(tickets_closed_before=cutoff.isoformat(),
                   tickets_erased=_erase_closed_tickets(engine, config, cutoff, dry_run))
    if not dry_run:
        with engine.begin() as conn:
            audit.record(conn, actor, role, "purge", "retention", json.dumps(out, ensure_ascii=False), now=now)
    return out


def _purge_posts(engine: Engine, cutoff: datetime, dry_run: bool) -> tuple[int, int]:
    deleted = kept = 0
    last_id = 0
    with engine.connect() as conn:
        keep = protected_uids(conn)
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(posts.c.id, sources.c.name, posts.c.native_id)
                                .join(sources, posts.c.source_id == sources.c.id)
                                .where(posts.c.published_at < cutoff, posts.c.id > last_id)
                                .order_by(posts.c.id).limit(BATCH)).all()
            if not rows:
                break
            last_id = int(rows[-1].id)
            doomed = [int(r.id) for r in rows if f"{r.name}:{r.native_id}" not in keep]
            kept += len(rows) - len(doomed)
            deleted += len(doomed)
            if doomed and not dry_run:
                for i in range(0, len(doomed), 500):  # SQLite's bound-parameter limit
                    conn.execute(delete(posts).where(posts.c.id.in_(doomed[i:i + 500])))
    return deleted, kept


def _erase_closed_tickets(engine: Engine, config: Config, cutoff: datetime, dry_run: bool) -> int:
    with engine.begin() as conn:
        rows = conn.execute(select(tickets_t.c.id, tickets_t.c.complainant, tickets_t.c.content,
                                   tickets_t.c.demand, tickets_t.c.evidence)
                            .where(tickets_t.c.state == tk.CLOSED, tickets_t.c.closed_at < cutoff)).all()
        ids = [int(r.id) for r in rows
               if not all(_empty(v) for v in (r.complainant, r.content, r.demand, r.evidence))]
        if not dry_run:
            for i in range(0, len(ids), 500):
                conn.execute(update(tickets_t).where(tickets_t.c.id.in_(ids[i:i + 500]))
                             .values(**erased_values()))
    return len(ids)


def erased_values() -> dict[str, Any]:
    """The personal fields of a tickets row, erased (the ticket and its history stay)."""
    from sqlalchemy import null

    return {"complainant": "", "content": "", "demand": "", "evidence": null()}


# -- a person's data -------------------------------------------------------------------------------------------------

def _person_posts(conn: Connection, person: str, source: str | None) -> list[dict[str, Any]]:
    query = (select(posts, sources.c.name.label("source_name")).join(sources, posts.c.source_id == sources.c.id)
             .where((posts.c.author == person) | (posts.c.author_id == person)).order_by(posts.c.published_at))
    if source:
        query = query.where(sources.c.name == source)
    return [dict(r._mapping) for r in conn.execute(query)]


def complainant_names(text: str) -> list[str]:
    """The names in a ticket's complainant field (``张三、李四、王五 等12人`` -> three names)."""
    return [n for n in _NAMES.split(_MORE.sub("", text or "").strip()) if n]


def _person_tickets(conn: Connection, config: Config, person: str, uids: set[str],
                    representatives: dict[int, str]) -> list[tuple[dict[str, Any], bool]]:
    """(decrypted ticket row, whether it is wholly theirs) for every ticket naming ``person`` or holding one of
    their posts. Complainants are encrypted, so this reads every ticket: fine for a request handled by hand."""
    cipher = cipher_for(config)
    found = []
    for row in conn.execute(select(tickets_t)):
        t = cipher.decrypt_ticket(row)
        names = complainant_names(t["complainant"] or "")
        rep = representatives.get(int(t["incident_id"])) if t["incident_id"] is not None else None
        own = (t["post_uid"] in uids) or names == [person] or (rep is not None and rep in uids)
        if own or person in names:
            found.append((t, own))
    return found


def _incident_refs(conn: Connection, person: str, source: str | None, uids: set[str]) -> dict[int, list[str]]:
    query = select(incident_posts.c.incident_id, incident_posts.c.post_uid).where(
        incident_posts.c.author == person)
    if source:
        query = query.where(incident_posts.c.source == source)
    refs: dict[int, list[str]] = {}
    for iid, uid in conn.execute(query):
        refs.setdefault(int(iid), []).append(str(uid))
    listed = sorted(uids)
    for i in range(0, len(listed), 500):
        for iid, uid in conn.execute(select(incident_posts.c.incident_id, incident_posts.c.post_uid)
                                     .where(incident_posts.c.post_uid.in_(listed[i:i + 500]))):
            if uid not in refs.setdefault(int(iid), []):
                refs[int(iid)].append(str(uid))
    return refs


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_person(engine: Engine, config: Config, person: str, source: str | None, now: datetime, *,
                  actor: str, role: str, address: str = "") -> dict[str, Any]:
    """Everything held about the author ``person`` (optionally on one source): their posts in full, tickets where
    they are a complainant (personal fields decrypted), and the incidents they appear in (as references).
    Writes an "export" audit row."""
    person = person.strip()
    with engine.begin() as conn:
        found = _person_posts(conn, person, source)
        uids = {f"{p['source_name']}:{p['native_id']}" for p in found}
        refs = _incident_refs(conn, person, source, uids)
        tickets = _person_tickets(conn, config, person, uids, _all_representatives(conn))
        titles = {int(r.id): r for r in conn.execute(select(incidents.c.id, incidents.c.title, incidents.c.status,
                                                            incidents.c.opened_at)
                                                     .where(incidents.c.id.in_(sorted(refs) or [-1])))}
        doc: dict[str, Any] = {
            "person": person, "source": source, "exported_at": now.isoformat(),
            "posts": [{"uid": f"{p['source_name']}:{p['native_id']}", "source": p["source_name"],
                       "author": p["author"], "author_id": p["author_id"], "title": p["title"], "text": p["text"],
                       "url": p["url"], "published_at": _iso(p["published_at"]), "fetched_at": _iso(p["fetched_at"]),
                       "reposts": p["reposts"], "comments": p["comments"], "likes": p["likes"],
                       "extra": p["extra"], "sentiment": p["sentiment"], "category": p["category"]} for p in found],
            "tickets": [{"id": t["id"], "number": t["number"], "state": t["state"], "title": t["title"],
                         "complainant": t["complainant"], "platform": t["platform"], "content": t["content"],
                         "demand": t["demand"], "evidence": list(t["evidence"] or []),
                         "created_at": _iso(t["created_at"]), "closed_at": _iso(t["closed_at"]),
                         "sole_complainant": own} for t, own in tickets],
            "incidents": [{"id": iid, "title": titles[iid].title if iid in titles else None,
                           "status": titles[iid].status if iid in titles else None,
                           "opened_at": _iso(titles[iid].opened_at) if iid in titles else None,
                           "posts": sorted(u)} for iid, u in sorted(refs.items())],
        }
        audit.record(conn, actor, role, "export", f"person:{person}",
                     json.dumps({"source": source, "posts": len(doc["posts"]), "tickets": len(doc["tickets"]),
                                 "incidents": len(doc["incidents"])}, ensure_ascii=False), address, now=now)
    return doc


def _all_representatives(conn: Connection) -> dict[int, str]:
    return {int(i): str(r) for i, r in conn.execute(select(incidents.c.id, incidents.c.representative)
                                                    .where(incidents.c.representative.is_not(None)))}


def delete_person(engine: Engine, config: Config, person: str, source: str | None, now: datetime, *,
                  actor: str, role: str, address: str = "") -> dict[str, Any]:
    """Erase the author ``person`` (optionally on one source): their posts are deleted, their handle is blanked in
    incident memberships, and tickets lose their personal data — wholly when the ticket is theirs alone, else their
    name (→ ``[已删除]``) and the links to their posts. Tickets, their events and incidents stay. One transaction,
    with a "delete" audit row."""
    person = person.strip()
    if not person:
        raise ValueError("give the person's handle (author name or id as collected)")
    cipher = cipher_for(config)
    with engine.begin() as conn:
        found = _person_posts(conn, person, source)
        uids = {f"{p['source_name']}:{p['native_id']}" for p in found}
        urls = {p["url"] for p in found if p["url"]}
        tickets = _person_tickets(conn, config, person, uids, _all_representatives(conn))
        ids = [int(p["id"]) for p in found]
        for i in range(0, len(ids), 500):
            conn.execute(delete(posts).where(posts.c.id.in_(ids[i:i + 500])))
        blank = update(incident_posts).where(incident_posts.c.author == person)
        if source:
            blank = blank.where(incident_posts.c.source == source)
        members = conn.execute(blank.values(author="")).rowcount
        erased = partial = 0
        for t, own in tickets:
            if own:
                values = erased_values()
                erased += 1
            else:
                names = [ERASED_NAME if n == person else n for n in complainant_names(t["complainant"])]
                more = _MORE.search(t["complainant"] or "")
                values = cipher.encrypt_ticket({
                    "complainant": "、".join(names) + (more.group(0) if more else ""),
                    "evidence": [u for u in (t["evidence"] or []) if u not in urls] or None})
                partial += 1
            conn.execute(update(tickets_t).where(tickets_t.c.id == t["id"]).values(**values))
        result = {"person": person, "source": source, "posts_deleted": len(ids), "memberships_blanked": members,
                  "tickets_erased": erased, "tickets_name_removed": partial,
                  "tickets": [t["number"] for t, _ in tickets]}
        audit.record(conn, actor, role, "delete", f"person:{person}", json.dumps(result, ensure_ascii=False),
                     address, now=now)
    return result
