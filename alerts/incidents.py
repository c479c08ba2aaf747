"""Incidents: surge signals grouped into the events a team works on.

A signal for a key (``watch:NAME`` or ``topic:ID``) that already has an open incident updates it. A signal for a new
key joins an open incident when most of its posts are already attached there (a watch-level surge made of one
topic's posts is that topic's incident, not a second one), when it is a topic that an incident's topic was merged
into, or when its posts mostly copy or repost posts an incident holds (a cascade outliving the topic window); a key
that surges again within a day of its incident going quiet, on the same terms, reopens that incident; otherwise it
opens a new incident. Every change is kept as a timeline point (severity, score, volume at that moment), and the
reasons of the latest signal are the incident's reasons. Between signals, an open incident takes in each new counted
post of its topics (the detector only speaks at a start, an escalation, a doubling or every ``update_every``; the
posts in between are the incident's too). After a restart, :meth:`IncidentTracker.resume` gives the restored
incidents the new process's topic ids. Pure: the caller persists the changes and gives the time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.analysis.surge import SEVERITIES, Reason, Signal

if TYPE_CHECKING:
    from monitor.analysis.pipeline import Annotation

#: A new key joins an open incident holding at least this share of its posts.
JOIN_SHARE = 0.5
#: A watch signal joins a topic incident when that topic makes up this share of the watch's negative posts.
WATCH_JOIN_SHARE = 0.3
#: A key that surges again within this long of its incident going quiet reopens that incident (the same grievance
#: flaring up again is news about it, not a new event); the latest ``_QUIET_KEPT`` quiet incidents are remembered.
REFLARE_SECONDS = 24 * 3600
_QUIET_KEPT = 4096
#: Posts whose incident is remembered, for ties through what they copy or spread (the latest kept).
_ORIGINS_KEPT = 200_000


@dataclass
class Incident:
    """One incident as the tracker holds it."""

    id: int
    opened_at: float
    updated_at: float
    severity: str
    score: float
    keys: list[str]
    title: str = ""
    keywords: list[str] = field(default_factory=list)
    post_ids: dict[str, str] = field(default_factory=dict)  # attached posts in order -> their author ("" unknown)
    sources: set[str] = field(default_factory=set)
    reasons: tuple[Reason, ...] = ()
    representative: str | None = None
    status: str = "open"
    watch_names: list[str] = field(default_factory=list)  # watches it is about: its watch keys, or its posts' watches
    merged: set[str] = field(default_factory=set)  # topic keys its signals said were merged into its topics

    @property
    def authors(self) -> set[str]:
        """Distinct authors of the attached posts."""
        return {a for a in self.post_ids.values() if a}

    @property
    def watches(self) -> list[str]:
        """Watch names among the keys."""
        return [k.split(":", 1)[1] for k in self.keys if k.startswith("watch:")]


@dataclass(frozen=True)
class Change:
    """What a signal did: opened or updated an incident, and whether it escalated (worth notifying).

    ``signal`` is None for posts taken in between signals (``new_posts``, at stream time ``attached_at``).
    ``reopened``: a quiet incident flared up again (its status is ``open`` again).
    """

    incident: Incident
    signal: Signal | None
    opened: bool
    escalated: bool
    new_posts: tuple[str, ...]
    attached_at: float | None = None
    reopened: bool = False

    @property
    def at(self) -> float:
        """Stream time of the change."""
        if self.signal is not None:
            return self.signal.at
        return self.attached_at if self.attached_at is not None else self.incident.updated_at


PostInfo = Callable[[str], "tuple[str, str] | None"]  # post uid -> (author, source)
#: topic id -> (keywords, representative post, headline: the spread text's leading clauses, or "")
TopicLabel = Callable[[str], "tuple[list[str], str | None, str]"]


class IncidentTracker:
    """Open incidents by key; ``apply`` turns signals into changes."""

    def __init__(self, post_info: PostInfo, topic_label: TopicLabel, *, next_id: int = 1,
                 post_topic: Callable[[str], str | None] | None = None,
                 post_watches: Callable[[str], tuple[str, ...]] | None = None,
                 reopenable: Callable[[int], bool] | None = None,
                 post_origin: Callable[[str], str] | None = None) -> None:
        self._post_info = post_info
        self._reopenable = reopenable
        self._post_origin = post_origin
        self._quiet: dict[int, Incident] = {}  # incidents gone quiet, by id, latest last (at most _QUIET_KEPT)
        self._origin_owner: dict[str, int] = {}  # origin post uid -> the first incident holding a copy of it
        self._post_watches = post_watches
        self._topic_label = topic_label
        self._post_topic = post_topic
        self._next_id = next_id
        self.by_key: dict[str, Incident] = {}
        self.open: dict[int, Incident] = {}
        self._post_owner: dict[str, int] = {}

    def restore(self, incident: Incident) -> None:
        """Take back an open or quiet incident from the database after a restart (quiet ones in the order they
        went quiet: the latest is the one a flare-up reopens)."""
        self._next_id = max(self._next_id, incident.id + 1)
        if incident.status == "quiet":
            self._go_quiet(incident)
            return
        self.open[incident.id] = incident
        for key in incident.keys:
            self.by_key[key] = incident
        for pid in incident.post_ids:
            self._post_owner[pid] = incident.id
        self._next_id = max(self._next_id, incident.id + 1)

    def resume(self, topic_of: Callable[[str], str | None], active: Collection[str]) -> list[Incident]:
        """After a restart: give the restored incidents the topics their posts have now, and end what is over.

        Topic ids are numbers of one process's clusterer, so a restored incident's topic keys name nothing (or, worse,
        an unrelated topic of the new process). Once the analyser has re-read the recent window, each restored
        incident takes the topic keys of its posts in it (``topic_of``: post uid -> ``topic:ID``; a topic holding a
        fifth of the posts found, or the most common one). Keys the detector has no surge for (``active``) are
        closed as after a quiet spell: an incident whose surge ended while the daemon was down goes quiet. Returns
        the incidents that went quiet.
        """
        for incident in list(self.open.values()):
            topics = self._topics_now(incident, topic_of)
            for key in incident.keys:
                if key.startswith("topic:") and self.by_key.get(key) is incident:
                    del self.by_key[key]
            incident.keys = [k for k in incident.keys if not k.startswith("topic:")]
            for key in topics:
                if self.by_key.setdefault(key, incident) is incident:
                    incident.keys.append(key)
            self._own_origins(incident, incident.post_ids)
            self._label(incident)  # the stored row has no watch names; the new topics give the keywords
        for incident in self._quiet.values():
            # A quiet incident is reopened by a flare-up of its keys or of what its posts spread: both must be this
            # process's (its watch keys are; its topic keys are those its re-read posts have now).
            incident.keys = [k for k in incident.keys if not k.startswith("topic:")]
            incident.keys += [t for t in self._topics_now(incident, topic_of) if t not in incident.keys]
            self._own_origins(incident, incident.post_ids)
        quieted = self.close_keys([k for k in self.by_key if k not in active])
        for incident in list(self.open.values()):
            if not any(self.by_key.get(k) is incident for k in incident.keys):  # none of its posts in the window
                self._go_quiet(incident)
                quieted.append(incident)
        return quieted

    @staticmethod
    def _topics_now(incident: Incident, topic_of: Callable[[str], str | None]) -> list[str]:
        """The topic keys an incident's posts have in this process: each holding a fifth of the posts found, or the
        most common one; none when none of its posts was re-read."""
        found = Counter(t for pid in incident.post_ids if (t := topic_of(pid)))
        total = sum(found.values())
        return [t for t, n in found.most_common() if 5 * n >= total] or [t for t, _ in found.most_common(1)]

    def apply(self, signals: Iterable[Signal], notes: Sequence[Annotation] = (),
              at: float | None = None) -> list[Change]:
        """Open or update incidents for each signal, in order; then attach the batch's other counted posts
        (``notes``, from the analysis of the same batch) to the open incidents of their keys, as of stream time
        ``at``."""
        changes = self._signals(signals)
        if notes:
            changes += self._attach(notes, at)
        return changes

    def _signals(self, signals: Iterable[Signal]) -> list[Change]:
        changes = []
        for sig in signals:
            incident = self.by_key.get(sig.key)
            opened = reopened = False
            if incident is None:
                incident = self._joinable(sig)
                if incident is None:
                    incident = self._reflare(sig)
                    reopened = incident is not None
                if incident is None:
                    incident = Incident(self._next_id, sig.at, sig.at, sig.severity, sig.score, [sig.key])
                    self._next_id += 1
                    self.open[incident.id] = incident
                    opened = True
                elif sig.key not in incident.keys:  # joined, or reopened through an alias or what it spreads
                    incident.keys.append(sig.key)
                self.by_key[sig.key] = incident
            before = SEVERITIES.index(incident.severity)
            now = SEVERITIES.index(sig.severity)
            escalated = not opened and now > before
            if now > before or opened:
                incident.severity = sig.severity
            incident.score = max(incident.score, sig.score) if not opened else sig.score
            incident.updated_at = sig.at
            incident.reasons = sig.reasons
            incident.merged.update(sig.aliases)
            members = sig.post_ids
            if not opened and sig.key.startswith("watch:") and self._post_topic is not None and \
                    incident.keys[0].startswith("topic:"):
                # A watch surge that joined a topic's incident brings that topic's posts, not the whole window
                # (an incident that began as the watch's own keeps taking the watch's negative posts).
                post_topic = self._post_topic
                members = tuple(p for p in sig.post_ids if self.by_key.get(post_topic(p) or "") is incident)
            new = tuple(pid for pid in members if pid not in incident.post_ids)
            self._take(incident, new)
            if sig.key.startswith("topic:"):
                self._own_origins(incident, new)
                for pid in members:  # the topic's posts belong to this incident (also those it already held)
                    self._post_owner.setdefault(pid, incident.id)
            self._label(incident)
            changes.append(Change(incident, sig, opened, escalated, new, reopened=reopened))
        return changes

    def _reflare(self, sig: Signal) -> Incident | None:
        """The quiet incident a surging key (or a topic merged into it, or a topic spreading the same posts) had,
        reopened; None when there is none, it went quiet over ``REFLARE_SECONDS`` ago or the team resolved it."""
        for key in (sig.key, *sig.aliases):
            # The latest incident that held the key (a few thousand at most, and only for a key new to the tracker).
            incident = next((i for i in reversed(self._quiet.values()) if key in i.keys), None)
            if incident is None or not self._can_reopen(incident, sig):
                continue
            if key == sig.key and any(a not in incident.keys and a not in incident.merged for a in sig.aliases):
                # The topic has taken in other topics since its incident last heard of it: the new surge may well be
                # theirs (two complaints about one brand's deliveries can merge), so it is news of its own.
                continue
            return self._reopen(incident)
        incident = self._by_origin(sig)
        if incident is not None and incident.status == "quiet" and self._can_reopen(incident, sig):
            return self._reopen(incident)
        return None

    def _can_reopen(self, incident: Incident, sig: Signal) -> bool:
        if incident.status != "quiet" or sig.at - incident.updated_at > REFLARE_SECONDS:
            return False
        return self._reopenable is None or self._reopenable(incident.id)

    def _reopen(self, incident: Incident) -> Incident:
        self._quiet.pop(incident.id, None)
        incident.status = "open"
        self.open[incident.id] = incident
        for pid in incident.post_ids:
            self._post_owner.setdefault(pid, incident.id)
        return incident

    def _take(self, incident: Incident, uids: Iterable[str]) -> None:
        """Attach posts (not attached yet) to an incident, with their authors and platforms."""
        for pid in uids:
            info = self._post_info(pid)
            incident.post_ids[pid] = info[0] if info is not None else ""
            if info is not None:
                incident.sources.add(info[1])

    def _by_origin(self, sig: Signal) -> Incident | None:
        """The incident (open or quiet) whose posts the signal's posts mostly copy or spread, for a topic signal.

        A cascade that outlives the topic window comes back as a new topic (its original has left the window), and
        copies of one post can land in several topics; the post they spread ties them to the same event.
        """
        if self._post_origin is None or not sig.key.startswith("topic:") or not sig.post_ids:
            return None
        counts: Counter[int] = Counter()
        for pid in sig.post_ids:
            owner = self._origin_owner.get(self._post_origin(pid))
            if owner is not None:
                counts[owner] += 1
        if not counts:
            return None
        best, n = counts.most_common(1)[0]
        if n < JOIN_SHARE * len(sig.post_ids):
            return None
        return self.open.get(best) or self._quiet.get(best)

    def _own_origins(self, incident: Incident, uids: Iterable[str]) -> None:
        """Remember which incident first held the posts these posts copy or spread (bounded, oldest dropped)."""
        if self._post_origin is None:
            return
        owners = self._origin_owner
        for uid in uids:
            owners.setdefault(self._post_origin(uid), incident.id)
        while len(owners) > _ORIGINS_KEPT:
            del owners[next(iter(owners))]

    def _attach(self, notes: Sequence[Annotation], at: float | None) -> list[Change]:
        """Counted posts of keys with an open incident that no signal brought: one change per incident."""
        taken: dict[int, list[str]] = {}
        for note in notes:
            if not note.counted:
                continue
            # Topics only: a watch's surge is about its volume, and its signals bring the window's negative posts;
            # attaching every negative post of a whole-stream watch in between would sweep in the background.
            holder = self.by_key.get(f"topic:{note.topic}")
            if holder is None or holder.id not in self.open or note.uid in holder.post_ids:
                continue
            self._take(holder, (note.uid,))
            self._post_owner.setdefault(note.uid, holder.id)
            self._own_origins(holder, (note.uid,))
            taken.setdefault(holder.id, []).append(note.uid)
        changes = []
        for incident_id, uids in taken.items():
            incident = self.open[incident_id]
            if at is not None:
                incident.updated_at = max(incident.updated_at, at)
            self._label(incident)
            changes.append(Change(incident, None, False, False, tuple(uids), attached_at=at))
        return changes

    def close_keys(self, keys: Iterable[str]) -> list[Incident]:
        """Surges over for these keys: an incident whose keys are all quiet is ``quiet`` (the team resolves it)."""
        quieted = []
        for key in keys:
            incident = self.by_key.pop(key, None)
            if incident is None:
                continue
            if not any(k in self.by_key and self.by_key[k] is incident for k in incident.keys):
                self._go_quiet(incident)
                quieted.append(incident)
        return quieted

    def _go_quiet(self, incident: Incident) -> None:
        incident.status = "quiet"
        self.open.pop(incident.id, None)
        self._quiet[incident.id] = incident
        while len(self._quiet) > _QUIET_KEPT:  # latest last: the oldest are dropped first
            del self._quiet[next(iter(self._quiet))]
        for pid in incident.post_ids:  # keep the owner map to open incidents: it must not grow forever
            if self._post_owner.get(pid) == incident.id:
                del self._post_owner[pid]

    def _joinable(self, sig: Signal) -> Incident | None:
        if sig.key.startswith("watch:") and self._post_topic is not None:
            # A watch surge carried by a topic that already has an incident is that incident: join when the topic
            # brings a third of the watch's negative posts (the rest is the watch's ordinary background).
            by_incident: Counter[int] = Counter()
            for pid in sig.post_ids:
                topic = self._post_topic(pid)
                holder = self.by_key.get(topic) if topic else None
                if holder is not None and holder.id in self.open:
                    by_incident[holder.id] += 1
            if by_incident:
                best, count = by_incident.most_common(1)[0]
                if count >= WATCH_JOIN_SHARE * len(sig.post_ids):
                    return self.open[best]
            return None
        for alias in sig.aliases:
            # The same topic under the id it was merged into (clustering merges a grown cluster with its neighbour
            # and the older id survives, so an event can go on under another id in mid-surge).
            holder = self.by_key.get(alias)
            if holder is not None and holder.id in self.open:
                return holder
        # Topic incidents take in other keys whose posts they already own.
        owners: dict[int, int] = {}
        for pid in sig.post_ids:
            owner = self._post_owner.get(pid)
            if owner is not None and owner in self.open and any(k.startswith("topic:") for k in self.open[owner].keys):
                owners[owner] = owners.get(owner, 0) + 1
        if owners:
            best, count = max(owners.items(), key=lambda kv: kv[1])
            return self.open[best] if count >= JOIN_SHARE * len(sig.post_ids) else None
        holder = self._by_origin(sig)
        if holder is not None and holder.id in self.open:
            return holder
        if sig.key.startswith("topic:"):
            # The watch's window often crosses its bar a few minutes before the grievance's topic does: the first
            # topic made mostly of a watch-only incident's posts is that incident (it names it), not a second one.
            # A watch incident that already has a topic keeps it: the next grievance is a separate incident. A post
            # counts as the incident's when it is attached there or spreads a post that is (the topic's reposts
            # since the watch's last signal).
            origin = self._post_origin or (lambda uid: uid)
            for incident in self.open.values():
                if any(k.startswith("topic:") for k in incident.keys):
                    continue
                held = incident.post_ids
                inside = sum(1 for pid in sig.post_ids if pid in held or origin(pid) in held)
                if inside and inside >= JOIN_SHARE * len(sig.post_ids):
                    return incident
        return None

    def _label(self, incident: Incident) -> None:
        topics = [k.split(":", 1)[1] for k in incident.keys if k.startswith("topic:")]
        keywords: list[str] = []
        representative = None
        line = ""
        for topic in topics:
            words, rep, head = self._topic_label(topic)
            keywords += [w for w in words if w not in keywords]
            representative = representative or rep
            line = line or head
        incident.keywords = keywords[:8]
        incident.representative = representative or next(iter(incident.post_ids), None)
        names = [w for w in incident.watches if w != "*"]  # "*" is the implicit whole-stream watch
        if self._post_watches is not None:
            # A topic incident is about the watches its posts mention most (the brand in a grievance): the first
            # when a fifth of the posts name it (an emerging issue: the rest say 这家), a second from half.
            counts = Counter(w for pid in incident.post_ids for w in self._post_watches(pid))
            size = len(incident.post_ids)
            for rank, (w, n) in enumerate(counts.most_common(2)):
                if w not in names and n * (5 if rank == 0 else 2) >= size:
                    names.append(w)
        incident.watch_names = names
        watch = "、".join(names)
        # One complaint copied or reposted around reads best as its own first words; keywords cut from one text are
        # fragments of it (且菜也没 要加汤里 汤好油).
        top = line or " ".join(incident.keywords[:3])
        incident.title = " · ".join(x for x in (watch, top) if x) or "负面舆情"
