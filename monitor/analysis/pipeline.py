"""The analysis stage: every new post gets its sentiment, watches, near-duplicate, topic, category and cues, and the
surge detector sees it. One :class:`Analyzer` lives as long as the daemon (or a replay); it holds the stream's state
(duplicate index, topics, windows) and is fed posts in batches, in time order.

Stream time is the posts' own time (``published_at``), never the wall clock, so replaying a recorded stream gives
the same result as living through it. A post published long before the newest one seen (an old thread found late)
is annotated but does not count for a surge: it is not news.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from monitor.analysis.surge import DetectionConfig, Event, Signal, SurgeDetector, find_cues
from monitor.analysis.textfeat import clean
from monitor.analysis.watch import WatchConfig, WatchMatcher
from monitor.normalize import followers_of

if TYPE_CHECKING:
    from monitor.analysis.sentiment import SentimentBackend
    from monitor.config import AnalysisConfig
    from monitor.normalize import Post

#: The watch every post counts for when no ``watches:`` are configured.
ALL_POSTS = "*"
_CATEGORIES_KEPT = 4096
_SCORES_KEPT = 4096
_UNKNOWN = object()


@dataclass(frozen=True)
class Annotation:
    """What analysis found in one post."""

    uid: str
    negative: float
    sentiment: str
    watches: tuple[str, ...]
    topic: str
    dup_of: str | None
    category: str | None
    cues: tuple[str, ...]
    #: Counted for a surge of its watches and topic (clearly negative, or spreading a clearly negative post, and
    #: not old news): an open incident of those keys takes it in even between signals.
    counted: bool = False


#: Labels of topics that surged, kept for incidents that ask after the topic expired.
_LABELS_KEPT = 2048
#: Quoted texts whose original post is remembered (a cascade quotes one text many times).
_QUOTED_KEPT = 4096
#: A repost scoring below this is taking a positive line on what it quotes (the ``positive`` label's cut).
SPREAD_FLOOR = 0.3


def analysis_text(title: str, text: str) -> str:
    """What a post says: its title (unless the text repeats it) and its text, repost chain included.

    The chain is left to each stage: the sentiment model weighs the reposter's own words above the quoted ones, and
    text features (duplicates, topics) fall back to the reposted text when the comment is only 转发微博.
    """
    return f"{title} {text}".strip() if title and title not in text else text


class Analyzer:
    """Sentiment, watches, duplicates, topics, categories and the surge detector, over one stream."""

    def __init__(self, watches: Sequence[WatchConfig] = (), detection: DetectionConfig | None = None,
                 analysis: AnalysisConfig | None = None, *, sentiment: SentimentBackend | None = None) -> None:
        from monitor.analysis.category import CategoryClassifier
        from monitor.analysis.cluster import TopicClusterer
        from monitor.analysis.dedup import NearDuplicateIndex
        from monitor.analysis.sentiment import get_backend, label_for, split_repost

        self.matcher = WatchMatcher(watches)
        self.detection = detection or DetectionConfig()
        self.detector = SurgeDetector(self.detection)
        topic_window = analysis.topic_window if analysis else 6 * 3600
        dup_window = analysis.duplicate_window if analysis else 24 * 3600
        self.sentiment = sentiment or get_backend(analysis.sentiment if analysis else "weibo")
        self._label = label_for
        self._split_repost = split_repost
        self.duplicates = NearDuplicateIndex(window_seconds=dup_window)
        # The clusterer's own near-duplicate pass is off: the index above already found them (done once, not twice).
        self.topics = TopicClusterer(window_seconds=topic_window, near_duplicates=False)
        self.categories = CategoryClassifier(analysis.categories if analysis else None)
        self.stream_time = float("-inf")
        self._cues = tuple(self.detection.cues)
        self._post_topics: dict[str, str] = {}  # recent post uid -> its topic key, for incident grouping
        self._post_watches: dict[str, tuple[str, ...]] = {}
        # Recent post uid -> the post it copies or spreads, followed back to the first (itself when neither).
        self._origins: dict[str, str] = {}
        self._categories: dict[str, str | None] = {}  # text -> category, the latest _CATEGORIES_KEPT texts
        self._kept_scores: dict[str, float] = {}  # text -> probability of negative, the latest _SCORES_KEPT texts
        self._quoted: dict[str, str] = {}  # quoted text -> the post in the window it is a copy of
        self._labels: dict[str, tuple[list[str], str | None, str]] = {}  # topic -> its label when it last surged

    def process(self, posts: Sequence[Post]) -> tuple[list[Annotation], list[Signal]]:
        """Annotate a batch of new posts (sorted here by time) and collect the surge signals they raise."""
        ordered = sorted(posts, key=lambda p: (p.published_at, p.uid))
        texts = [analysis_text(p.title, p.text) for p in ordered]
        scores = self._scores(texts)
        # What each repost spreads: the oldest post of its chain (split once, for both uses below).
        quotes = [self._quote_of(t) if "//" in t else None for t in texts]
        quoted = self._quoted_scores(quotes, scores)
        notes: list[Annotation] = []
        signals: list[Signal] = []
        for i, (post, text, neg) in enumerate(zip(ordered, texts, scores, strict=True)):
            ts = post.published_at.timestamp()
            label = self._label(neg)
            watches = tuple(self.matcher.match(f"{post.title} {post.text}", post.source)) if self.matcher.names \
                else (ALL_POSTS,)
            cleaned = clean(text)  # once, for both the duplicate index and the topics
            dup_of = self.duplicates.add(post.uid, text, ts, cleaned=cleaned)
            quote = quotes[i]
            joins = dup_of or (self._quoted_post(quote) if quote else None)
            topic = self.topics.add(post.uid, text, ts, duplicate_of=joins, cleaned=cleaned)
            # A surge counts clearly negative posts only: the model leans negative on plain statements and news.
            # A repost that spreads a clearly negative post without taking a positive line counts too.
            counts = neg >= self.detection.negative_threshold or quoted.get(i, 0.0) >= self.detection.negative_threshold
            category = self._category(text) if label == "negative" else None
            cues = find_cues(text, self._cues) if counts else ()
            fresh = ts >= self.stream_time - self.detection.window
            notes.append(Annotation(post.uid, round(neg, 4), label, watches, topic, dup_of, category, cues,
                                    counts and fresh))
            self._post_topics[post.uid] = f"topic:{topic}"
            if joins is not None:
                self._origins[post.uid] = self._origins.get(joins, joins)
            if watches != (ALL_POSTS,):
                self._post_watches[post.uid] = watches
            self.stream_time = max(self.stream_time, ts)
            if not fresh:
                continue
            keys = (*(f"watch:{w}" for w in watches), f"topic:{topic}")
            engagement = (post.reposts or 0) + (post.comments or 0)
            raised = self.detector.add(Event(post.uid, ts, post.author or post.author_id or post.uid, post.source,
                                             counts, keys, engagement, cues, followers_of(post.extra) or 0,
                                             max(neg, quoted.get(i, 0.0))))
            if any(sig.authors < self.detection.coherent_authors and sig.key.startswith("topic:") for sig in raised) \
                    and self.topics.shared_terms(topic) < self.detection.topic_shared_words:
                # A few people each saying 太可怕 about different things are tied into a topic by that phrase alone;
                # that is not a grievance. A topic says something once half its posts share a few specific words.
                raised = [sig for sig in raised
                          if not sig.key.startswith("topic:") or sig.authors >= self.detection.coherent_authors]
            for k, sig in enumerate(raised):
                if sig.key.startswith("topic:"):
                    # Labelled now, while the topic is surely alive: a batch spanning hours (a replay, a catch-up
                    # poll) may see it expire before the incident asks for its name.
                    self._remember_label(sig.key.split(":", 1)[1])
                    # Likewise the topics merged into it: an incident opened under one of them is this one's.
                    absorbed = self.topics.absorbed(topic)
                    if absorbed:
                        raised[k] = replace(sig, aliases=tuple(f"topic:{a}" for a in absorbed))
            signals += raised
        if self.matcher.names and not self.detection.unwatched_topics:
            # Alerts are per watch: a topic surge counts when some of its negative posts name a watch (an emerging
            # issue often starts without the brand name, and the posts that do name it bring the rest along).
            watched = self._post_watches
            signals = [s for s in signals if not s.key.startswith("topic:") or any(watched.get(p) for p in s.post_ids)]
        if len(self._post_topics) > 200_000:  # only posts inside the detection window are asked about
            for uid in list(self._post_topics)[:100_000]:
                del self._post_topics[uid]
                self._post_watches.pop(uid, None)
                self._origins.pop(uid, None)
        return notes, signals

    def _quote_of(self, text: str) -> str | None:
        """The oldest post quoted in a repost chain ``own//@a: ...//@b: original`` (the one it spreads), or None."""
        chain = self._split_repost(text)[1]
        return chain[-1] if chain and chain[-1].strip() else None

    def _quoted_post(self, quoted: str) -> str | None:
        """The post in the window that a repost's quoted text copies, if any.

        A repost's own words are often about something else entirely (求中奖 @friends), so by its text alone it lands
        in a topic of its own; by what it spreads it belongs with the original and the other reposts of it. Found
        originals are remembered by text (a cascade quotes one text hundreds of times); misses are not, since the
        original may still arrive.
        """
        found = self._quoted.get(quoted)
        if found is not None:
            return found
        match = self.duplicates.find(quoted)
        if match is None:
            return None
        self._quoted[quoted] = match.post_id
        if len(self._quoted) > _QUOTED_KEPT:
            del self._quoted[next(iter(self._quoted))]
        return match.post_id

    def _quoted_scores(self, quotes: list[str | None], scores: Sequence[float]) -> dict[int, float]:
        """For reposts not clearly negative themselves: the sentiment of the post they quote (index -> score).

        The sentiment of a repost weighs the reposter's own words fully and the quoted chain at half, which is right
        for the post's label. For a surge it is the grievance being spread that matters: 2013年运气怎么样//@楼主:披萨
        里有头发 spreads a complaint. So a repost whose own score is not positive (at least ``SPREAD_FLOOR``) also
        counts when the oldest post in its chain, the one being spread, is clearly negative on its own.
        """
        threshold = self.detection.negative_threshold
        picked = [(i, q) for i, (q, score) in enumerate(zip(quotes, scores, strict=True))
                  if q is not None and SPREAD_FLOOR <= score < threshold]
        if not picked:
            return {}
        return dict(zip((i for i, _ in picked), self._scores([q for _, q in picked]), strict=True))

    def _scores(self, texts: list[str]) -> list[float]:
        """The sentiment of each text. A cascade repeats its text exactly (a bare repost, a copy-paste campaign):
        the latest ``_SCORES_KEPT`` texts' scores are kept, and a batch's texts are scored once each (the
        backend's score of a text does not depend on the rest of its batch)."""
        kept = self._kept_scores
        new = [t for t in dict.fromkeys(texts) if t not in kept]
        if new:
            kept.update(zip(new, self.sentiment.score(new), strict=True))
        out = [kept[t] for t in texts]
        for _ in range(len(kept) - _SCORES_KEPT):
            del kept[next(iter(kept))]
        return out

    def _category(self, text: str) -> str | None:
        """The complaint category of a text; the latest texts' are kept, since reposts repeat a text many times."""
        kept = self._categories
        category = kept.get(text, _UNKNOWN)
        if category is _UNKNOWN:
            category = kept[text] = self.categories.category(text)
            if len(kept) > _CATEGORIES_KEPT:
                del kept[next(iter(kept))]
        return category  # type: ignore[return-value]

    def topic_of(self, uid: str) -> str | None:
        """The topic key (``topic:ID``) a recent post was counted under by the surge detector."""
        return self._post_topics.get(uid)

    def origin_of(self, uid: str) -> str:
        """The post a recent post copies or spreads (a near-duplicate's original, a repost's quoted post), followed
        back to the first one; the post itself when it is neither (or is no longer remembered)."""
        return self._origins.get(uid, uid)

    def watches_of(self, uid: str) -> tuple[str, ...]:
        """The watches a recent post matched (empty without watches configured)."""
        return self._post_watches.get(uid, ())

    def topic_label(self, topic: str) -> tuple[list[str], str | None, str]:
        """Top keywords, the representative post and the headline (``TopicLabel.headline``, often empty) of a topic:
        its last label when it has expired; empty when it was never labelled."""
        try:
            label = self.topics.label(self.topics.resolve(topic) or topic)
        except KeyError:  # expired
            return self._labels.get(topic, ([], None, ""))
        return list(label.keywords), label.representative_post_id, label.headline

    def _remember_label(self, topic: str) -> None:
        got = self.topic_label(topic)
        if got[0] or got[1]:
            self._labels[topic] = got
            if len(self._labels) > _LABELS_KEPT:
                del self._labels[next(iter(self._labels))]
