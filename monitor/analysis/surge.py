"""Negative-surge and collective-complaint detection: a pure function of the stream of analysed posts.

Each post arrives as an :class:`Event` (its stream time, author, source, whether it is negative, its engagement, the
collective-action cues it contains and the keys it counts for: ``watch:NAME`` and ``topic:ID``). For every key the
detector keeps the posts of the last ``window`` with running counters, so evaluating a key costs O(1), and compares
the key's negative volume with what is usual for it:

* **watch keys** have a baseline per hour of day, learned as an exponentially weighted mean over days (seasonality);
  with no history yet a key is watched for ``warmup`` before it may raise anything, so start-up is not a surge;
* **topic keys** are new by nature: their baseline is a small prior (``topic_prior_per_hour``).

The count that matters is *distinct authors* among the negative posts (one angry person posting twenty times is one
voice; twenty people are a crowd). Its excess over the baseline is a z-score with over-dispersion (real counts vary
more than Poisson), and a surge must also be *negative*: a topic needs a negative share of at least
``min_negative_share`` (or its posts' mean probability of negative at least ``min_negative_lean``), a watch a share
above its usual one, so a positive viral event never opens an incident.
Cross-source spread, engagement, growth and collective-action cues (集体投诉, 维权群, 12315 ...) add to the score.
The score maps to a severity (blue < yellow < orange < red), and the reasons are kept as numbers so an alert can say
why in either language.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

from pydantic import BaseModel, ConfigDict, Field

from monitor.durations import Duration

#: Words of collective action in Chinese complaint culture: a crowd organising, or taking it to regulators and media.
DEFAULT_CUES = ("集体投诉", "集体维权", "维权群", "维权", "联名", "一起去", "一起投诉", "大家一起", "12315", "12345",
                "曝光", "媒体", "记者", "律师", "起诉", "集体诉讼", "黑猫投诉", "消协", "315", "拉群", "受害者")
SEVERITIES = ("blue", "yellow", "orange", "red")
SEVERITY_ZH = {"blue": "蓝", "yellow": "黄", "orange": "橙", "red": "红"}


class DetectionConfig(BaseModel):
    """The ``detection:`` section: how eager the surge detector is. The defaults were tuned on bench/detection.py."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Duration = Field(default=3600, description="sliding window the volume is counted in")
    negative_threshold: float = Field(default=0.65, ge=0.5, le=1.0, description="probability of negative from which "
                                                                           "a post counts towards a surge")
    min_authors: int = Field(default=6, ge=2, description="distinct authors of negative posts needed at least")
    min_negative_share: float = Field(default=0.5, ge=0, le=1, description="a topic's share of negative posts needed")
    unwatched_topics: bool = Field(default=False, description="with watches configured, a topic none of whose "
                                                                "negative posts matches a watch alerts too")
    min_negative_lean: float = Field(default=0.5, ge=0, le=1, description="... or the mean probability of negative "
                                                                            "of its posts")
    topic_shared_words: int = Field(default=3, ge=0, description="specific words (character bigrams) half of a "
                                                               "topic's posts must share before a small topic surge "
                                                               "is raised (a topic is not 太可怕 said by six people)")
    coherent_authors: int = Field(default=10, ge=2, description="distinct negative authors from which a topic surge "
                                                                "is raised whatever words its posts share")
    topic_prior_per_hour: float = Field(default=0.3, gt=0, description="negative authors an hour a topic usually "
                                                                       "has (topics have no history)")
    warmup: Duration = Field(default=24 * 3600, description="a watch with no history is learned this long before "
                                                            "it may raise a surge (a day: every hour seen once)")
    overdispersion: float = Field(default=0.3, ge=0, description="how much more than Poisson counts vary")
    thresholds: dict[str, float] = Field(default_factory=lambda: {"blue": 5.0, "yellow": 7.0, "orange": 9.0,
                                                                  "red": 13.0},
                                         description="score at which each severity starts")
    update_every: Duration = Field(default=600, description="an active surge is re-reported at most this often "
                                                            "(escalations at once)")
    quiet_after: Duration = Field(default=2 * 3600, description="a surge whose score stayed under blue this long is "
                                                                "over")
    cues: list[str] = Field(default_factory=lambda: list(DEFAULT_CUES), description="collective-action words")


@dataclass(frozen=True)
class Event:
    """One analysed post as the detector sees it."""

    post_id: str
    ts: float  # stream time, epoch seconds
    author: str
    source: str
    negative: bool
    keys: tuple[str, ...]
    engagement: int = 0
    cues: tuple[str, ...] = ()
    followers: int = 0  # the author's following, where the source tells it (Weibo's user.followers_count)
    #: The post's probability of negative (of it, or of what it spreads); None: 1 when ``negative``, else 0.
    lean: float | None = None


#: Followers from which one voice carries more weight, in severity levels: a grievance repeated by an account with
#: 500k followers reaches more people than the whole rest of the window. Used for surges here (grades up, never
#: opens) and for single complaint-portal tickets (alerts/profiles.py).
REACH_LEVELS = ((500_000, 2), (100_000, 1))
#: Score one reach level adds to a surge (about one severity threshold's step).
REACH_POINTS = 2.0


def reach_levels(followers: int | None) -> int:
    """Severity levels an author's following is worth (0, 1 or 2)."""
    return next((levels for floor, levels in REACH_LEVELS if (followers or 0) >= floor), 0)


@dataclass(frozen=True)
class Reason:
    """Why a surge was raised, as numbers; :func:`render_reason` words it."""

    code: str
    values: tuple[tuple[str, float | int | str], ...]

    def get(self, name: str) -> float | int | str:
        """One value by name."""
        return dict(self.values)[name]


@dataclass(frozen=True)
class Signal:
    """A key's surge, raised when it starts, when it escalates and every ``update_every`` while it lasts."""

    key: str
    at: float
    severity: str
    score: float
    negatives: int
    authors: int
    posts: int
    sources: tuple[str, ...]
    expected: float
    engagement: int
    cue_counts: tuple[tuple[str, int], ...]
    post_ids: tuple[str, ...]  # the negative posts of the window, oldest first
    reasons: tuple[Reason, ...]
    escalated: bool = False
    first: bool = False
    #: Other keys that now go by this one (topics absorbed into this topic while their posts are in the window).
    aliases: tuple[str, ...] = ()


@dataclass
class _Window:
    """Posts of one key inside the window, with counters kept as posts come and go."""

    items: deque[Event] = field(default_factory=deque)
    # Plain dicts, not Counters: a window is made for every new topic, and Counter() costs ten times a dict.
    neg_authors: dict[str, int] = field(default_factory=dict)
    neg_sources: dict[str, int] = field(default_factory=dict)
    cue_counts: dict[str, int] = field(default_factory=dict)
    negatives: int = 0
    lean: float = 0.0  # sum of the items' probability of negative
    engagement: int = 0
    reach_posts: int = 0  # negative posts whose author's followers are known (reach is looked for only then)
    total_negatives: int = 0  # ever, for a topic's own rate before the window
    # For the baseline: negative authors per hour slot (EWMA over days), the current hour's distinct authors.
    first_ts: float | None = None
    slots: dict[int, float] = field(default_factory=dict)
    slot_days: dict[int, int] = field(default_factory=dict)
    share: float | None = None  # usual negative share (EWMA over hours)
    hour: int | None = None
    hour_authors: set[str] = field(default_factory=set)
    hour_posts: int = 0
    hour_negatives: int = 0
    # The surge state.
    severity: str | None = None
    last_emit: float = 0.0
    last_hot: float = 0.0
    peak: int = 0

    def push(self, ev: Event) -> None:
        self.items.append(ev)
        self.lean += _lean(ev)
        if ev.negative:
            self.negatives += 1
            self.total_negatives += 1
            self.neg_authors[ev.author] = self.neg_authors.get(ev.author, 0) + 1
            self.neg_sources[ev.source] = self.neg_sources.get(ev.source, 0) + 1
            self.engagement += ev.engagement
            self.reach_posts += ev.followers > 0
            for cue in ev.cues:
                self.cue_counts[cue] = self.cue_counts.get(cue, 0) + 1

    def evict(self, before: float) -> None:
        while self.items and self.items[0].ts < before:
            ev = self.items.popleft()
            self.lean -= _lean(ev)
            if ev.negative:
                self.negatives -= 1
                _dec(self.neg_authors, ev.author)
                _dec(self.neg_sources, ev.source)
                self.engagement -= ev.engagement
                self.reach_posts -= ev.followers > 0
                for cue in ev.cues:
                    _dec(self.cue_counts, cue)


def _lean(ev: Event) -> float:
    return ev.lean if ev.lean is not None else float(ev.negative)


def _most_common(counts: dict[str, int]) -> list[tuple[str, int]]:
    """``Counter.most_common()`` of a dict: largest first, ties in insertion order."""
    return sorted(counts.items(), key=itemgetter(1), reverse=True)


def _dec(counter: dict[str, int], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


#: EWMA weight of a new day in an hour slot's baseline, and of a new hour in the usual negative share.
SLOT_ALPHA = 0.3
SHARE_ALPHA = 0.05
#: A burst does not teach the baseline more than this many times the usual count (plus a little): one crisis must
#: not make the next one look normal.
BASELINE_CAP = 3.0


class SurgeDetector:
    """Per-key sliding windows and baselines; feed it events in time order, collect signals."""

    def __init__(self, config: DetectionConfig | None = None) -> None:
        self.config = config or DetectionConfig()
        self._keys: dict[str, _Window] = {}
        self._order_ts = -math.inf

    # -- history -----------------------------------------------------------------------------------------------------
    def seed_baseline(self, key: str, hourly: Iterable[tuple[float, int, int, int]]) -> None:
        """Teach a watch key its usual volume from stored history: (hour start ts, negative authors, posts, negatives)
        per past hour, oldest first. Restarting the daemon then keeps its baselines."""
        win = self._keys.setdefault(key, _Window())
        for ts, authors, posts, negatives in hourly:
            if win.first_ts is None:
                win.first_ts = ts
            self._learn(win, int(ts // 3600), authors, posts, negatives)

    # -- the stream --------------------------------------------------------------------------------------------------
    def add(self, ev: Event) -> list[Signal]:
        """Count one post for its keys and return the signals it triggers (usually none)."""
        ts = max(ev.ts, self._order_ts)  # posts arrive slightly out of order; time never goes back
        self._order_ts = ts
        signals = []
        for key in ev.keys:
            win = self._keys.get(key)
            if win is None:
                win = self._keys[key] = _Window(first_ts=ts)
            elif win.first_ts is None:
                win.first_ts = ts
            self._roll_hour(win, ts)
            win.hour_posts += 1
            if ev.negative:
                win.hour_negatives += 1
                win.hour_authors.add(ev.author)
            win.push(ev)
            win.evict(ts - self.config.window)
            if ev.negative:
                sig = self._evaluate(key, win, ts)
                if sig is not None:
                    signals.append(sig)
        return signals

    def expire(self, now: float) -> list[str]:
        """Drop keys idle for a day and end surges quiet for ``quiet_after``; returns the keys whose surge ended."""
        ended = []
        for key in list(self._keys):
            win = self._keys[key]
            win.evict(now - self.config.window)
            if win.severity is not None and now - win.last_hot >= self.config.quiet_after:
                win.severity = None
                win.peak = 0
                ended.append(key)
            if not win.items and key.startswith("topic:") and (win.severity is None):
                del self._keys[key]  # topics do not come back under the same id; watches keep their baseline
        return ended

    def active(self) -> dict[str, str]:
        """Keys with a surge in progress and its severity."""
        return {k: w.severity for k, w in self._keys.items() if w.severity is not None}

    # -- inside ------------------------------------------------------------------------------------------------------
    def _roll_hour(self, win: _Window, ts: float) -> None:
        hour = int(ts // 3600)
        if win.hour is None:
            win.hour = hour
            return
        if hour == win.hour:
            return
        self._learn(win, win.hour, len(win.hour_authors), win.hour_posts, win.hour_negatives)
        # Hours without any post are zeros in the baseline, at most a day of them (a longer gap is downtime).
        for empty in range(win.hour + 1, min(hour, win.hour + 25)):
            self._learn(win, empty, 0, 0, 0)
        win.hour = hour
        win.hour_authors = set()
        win.hour_posts = win.hour_negatives = 0

    def _learn(self, win: _Window, hour: int, authors: int, posts: int, negatives: int) -> None:
        slot = hour % 24
        win.slot_days[slot] = win.slot_days.get(slot, 0) + 1
        old = win.slots.get(slot)
        if old is None:
            win.slots[slot] = float(authors)
        else:
            capped = min(float(authors), old * BASELINE_CAP + 3)
            win.slots[slot] = old + SLOT_ALPHA * (capped - old)
        if posts:
            share = negatives / posts
            win.share = share if win.share is None else win.share + SHARE_ALPHA * (share - win.share)

    def _expected(self, key: str, win: _Window, ts: float) -> float | None:
        """Negative authors usually seen in one window for this key at this time; None while still learning."""
        hours = self.config.window / 3600
        if key.startswith("topic:"):
            # A topic that has been simmering for hours (a standing complaint, a news story) is measured against
            # its own rate before the window; a new one against the prior.
            before = win.total_negatives - win.negatives
            age = (ts - self.config.window - win.first_ts) / 3600 if win.first_ts is not None else 0.0
            rate = before / max(age, 1.0) if age > 0 else 0.0
            return max(self.config.topic_prior_per_hour, rate) * hours
        if win.first_ts is None or ts - win.first_ts < self.config.warmup or not win.slots:
            return None
        slot = int(ts // 3600) % 24
        # An hour of day seen on fewer than two days is not known yet: take the busiest hour seen (a quiet night
        # followed by an ordinary morning is not a surge).
        known = win.slot_days.get(slot, 0) >= 2
        rate = win.slots[slot] if known else max(win.slots.values())
        # Never below the topic prior: a quiet watch still has the odd complaint.
        return max(rate, self.config.topic_prior_per_hour) * hours

    def _evaluate(self, key: str, win: _Window, ts: float) -> Signal | None:
        cfg = self.config
        authors = len(win.neg_authors)
        if authors < cfg.min_authors:
            return self._cool(win, ts)
        expected = self._expected(key, win, ts)
        if expected is None:
            return self._cool(win, ts)
        posts = len(win.items)
        share = win.negatives / posts if posts else 0.0
        if key.startswith("topic:"):
            # Half its posts over the bar, or its posts leaning negative on average: a mild complaint spread by
            # hundreds of reposts (凉了而且味道不太好, 0.62 each) is a wave of one grievance, not a positive event.
            if share < cfg.min_negative_share and win.lean < cfg.min_negative_lean * posts:
                return self._cool(win, ts)
        elif win.share is not None and share < win.share + 0.05:
            return self._cool(win, ts)  # more volume but not more negative: a viral event, not a complaint wave
        sd = math.sqrt(expected + (cfg.overdispersion * expected) ** 2 + 1.0)
        z = (authors - expected) / sd
        cue_posts = sum(win.cue_counts.values())
        topic = key.startswith("topic:")
        if not topic and z < cfg.thresholds["blue"]:
            return self._cool(win, ts)  # a watch's volume alone must be unusual; bonuses only grade it
        score = z
        # A topic on several platforms is a grievance spreading (a platform counts with two voices or more: single
        # stray posts land anywhere); a watch spans platforms every day.
        if topic:
            spread = sum(1 for n in win.neg_sources.values() if n >= 2)
            score += min(1.5, 0.75 * (spread - 1)) if spread > 1 else 0.0
        score += min(2.0, 0.5 * cue_posts)
        score += min(1.5, 0.5 * math.log10(1 + win.engagement / max(win.negatives, 1)))
        # Growth walks the window, so it is only worked out when its half point could change the outcome.
        growth = self._growth(win, ts) if score + 0.5 >= cfg.thresholds["blue"] else 0.0
        score += 0.5 if growth >= 2 else 0.0
        severity = None
        for name in SEVERITIES:
            if score >= cfg.thresholds[name]:
                severity = name
        if severity is None:
            return self._cool(win, ts)
        # Reach grades a surge that stands on its own; a single big account never opens one.
        reach = max((e.followers for e in win.items if e.negative), default=0) if win.reach_posts else 0
        bump = REACH_POINTS * reach_levels(reach)
        if bump:
            score += bump
            for name in SEVERITIES:
                if score >= cfg.thresholds[name]:
                    severity = name
        win.last_hot = ts
        rank = SEVERITIES.index(severity)
        first = win.severity is None
        escalated = not first and rank > SEVERITIES.index(win.severity or "blue")
        doubled = win.peak and authors >= 2 * win.peak
        if not (first or escalated or doubled or ts - win.last_emit >= cfg.update_every):
            return None
        if first or escalated:
            win.severity = severity
        win.peak = max(win.peak, authors)
        win.last_emit = ts
        sources = tuple(sorted(win.neg_sources))
        reasons = [Reason("volume", (("negatives", win.negatives), ("authors", authors),
                                     ("sources", len(sources)), ("minutes", round(cfg.window / 60)))),
                   Reason("rate", (("ratio", round(authors / max(expected, 0.1), 1)),
                                   ("expected", round(expected, 1)),
                                   ("baseline", "prior" if key.startswith("topic:") else "history")))]
        if growth >= 2:
            reasons.append(Reason("growth", (("growth", round(growth, 1)),)))
        if len(sources) > 1:
            reasons.append(Reason("spread", (("sources", ", ".join(sources)),)))
        if cue_posts:
            top = ", ".join(f"{c}×{n}" for c, n in _most_common(win.cue_counts)[:3])
            reasons.append(Reason("cues", (("posts", cue_posts), ("words", top))))
        if win.engagement >= 100:
            reasons.append(Reason("engagement", (("engagement", win.engagement),)))
        if bump:
            reasons.append(Reason("reach", (("followers", reach),)))
        neg_ids = tuple(e.post_id for e in win.items if e.negative)
        return Signal(key=key, at=ts, severity=win.severity or severity, score=round(score, 2),
                      negatives=win.negatives, authors=authors, posts=posts, sources=sources,
                      expected=round(expected, 2), engagement=win.engagement,
                      cue_counts=tuple(_most_common(win.cue_counts)), post_ids=neg_ids, reasons=tuple(reasons),
                      escalated=escalated, first=first)

    def _growth(self, win: _Window, ts: float) -> float:
        """Negative posts in the second half of the window over those in the first."""
        half = ts - self.config.window / 2
        recent = sum(1 for e in win.items if e.negative and e.ts >= half)
        return recent / max(win.negatives - recent, 1)

    def _cool(self, win: _Window, ts: float) -> Signal | None:
        # Not hot now. Ending the surge is expire()'s job, so that whoever holds an incident for it hears of it.
        return None


@functools.lru_cache(maxsize=64)
def _longest_first(cues: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct cue words, longest first (ties alphabetical); memoised, as the same list is asked for every post."""
    return tuple(sorted(set(cues), key=lambda c: (-len(c), c)))


def find_cues(text: str, cues: Iterable[str]) -> tuple[str, ...]:
    """The collective-action words in ``text`` (longest first, a word inside a longer found one not repeated)."""
    found: list[str] = []
    for cue in _longest_first(cues if isinstance(cues, tuple) else tuple(cues)):
        if cue in text and not any(cue in f for f in found):
            found.append(cue)
    return tuple(found)


def render_reason(reason: Reason, lang: str = "zh") -> str:
    """One reason in words, Chinese by default."""
    v = dict(reason.values)
    if lang == "zh":
        texts = {
            "volume": "{minutes} 分钟内 {authors} 位用户发布 {negatives} 条负面内容，涉及 {sources} 个平台",
            "rate": "是平时的 {ratio} 倍（通常约 {expected}）",
            "growth": "后半段增速为前半段的 {growth} 倍",
            "spread": "跨平台：{sources}",
            "cues": "{posts} 条提及集体维权信号（{words}）",
            "engagement": "转发评论合计 {engagement}",
            "reach": "含大V发声：粉丝 {followers:,}",
        }
    else:
        texts = {
            "volume": "{negatives} negative posts by {authors} authors on {sources} platforms in {minutes} min",
            "rate": "{ratio}× the usual rate (usually about {expected})",
            "growth": "growing {growth}× from the first half of the window to the second",
            "spread": "across sources: {sources}",
            "cues": "{posts} mention collective action ({words})",
            "engagement": "{engagement} reposts and comments",
            "reach": "an author with {followers:,} followers among them",
        }
    return texts.get(reason.code, reason.code).format(**v)


def to_epoch(dt: datetime) -> float:
    """Stream time of an aware datetime."""
    return dt.timestamp()


def from_epoch(ts: float) -> datetime:
    """An aware UTC datetime from stream time."""
    from datetime import UTC

    return datetime.fromtimestamp(ts, UTC)


__all__ = ["DEFAULT_CUES", "SEVERITIES", "SEVERITY_ZH", "DetectionConfig", "Event", "Reason", "Signal",
           "SurgeDetector", "find_cues", "from_epoch", "render_reason", "to_epoch"]
