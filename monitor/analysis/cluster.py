"""Online topic clustering: recent posts grouped into events, with readable labels.

Method (single pass, one post at a time, no clock read):

* Terms are :func:`monitor.analysis.textfeat.tokens` (CJK character bigrams, latin words) plus the post's
  ``#话题#`` tags as whole terms, each counted once per post. Document frequencies are counted over the stream with
  exponential decay (time constant ``window_seconds``) in a fixed-size hashed table, so their memory is constant.
* In a post, a term weighs its IDF, ``log((N + 1) / (df + 0.5))``, or 0 while fewer than ``min_df`` posts used it (a
  word only one or two posts used ties nothing together and only dilutes the similarity). Everyday words and bigrams
  holding a pronoun or auxiliary weigh ``common_weight`` times less; a whole ``#话题#`` tag ``hashtag_weight`` more.
* A cluster keeps a time-decayed count of its members' terms. In its centroid a term weighs ``p * log(p / p0)``:
  ``p`` the share of members using it, ``p0`` its share of all posts. Words a cluster uses no more than everybody
  weigh nothing, so a cluster does not snowball through everyday words. Weights are computed when a similarity is,
  so a word that turns out to be shared (the name at the heart of a new event) gains weight in the clusters that
  already hold it.
* A post joins the cluster of highest cosine similarity when that reaches ``threshold`` and they share at least
  ``min_shared`` weighted terms; otherwise it starts a cluster. A near-duplicate of a post still in the window
  (:class:`monitor.analysis.dedup.NearDuplicateIndex`, or ``duplicate_of`` from the caller) joins that post's cluster.
* Candidates come from an inverted index term -> clusters (the ``posting_cap`` that used the term last), probed with
  the post's ``probe_terms`` heaviest terms, and the best ``score_clusters`` are scored exactly: the work per post
  does not grow with the number of clusters. Terms of the latest ``recent_posts`` posts are all indexed; older ones
  only once another post has used them, which keeps the index small without losing the start of an event.
* When a cluster grows to 2, 4, 8, … members it absorbs neighbours whose centroid similarity reaches
  ``merge_threshold`` (the older id survives; an absorbed id keeps resolving to it while posts that joined under it
  are in the window). This gathers the first posts of an event, which came before its words were known to be
  shared. The check looks with the centroid's ``merge_terms`` heaviest terms (48: most of its weight).
* A member leaves when it is older than ``window_seconds`` before the newest timestamp seen; a cluster with no
  member left is dropped with its index entries.

Labels: the centroid's heaviest bigrams are joined into longer words where they run together in member texts
(人工 + 工智 + 智能 → 人工智能); the representative post is the kept member text closest to the centroid. A topic
that is one text spread around (reposts, copies) also gets a headline, the text's leading clauses.

Cost (``python bench/topics.py``): about 1 ms a post on a 10,000-post day; memory about 1.1-1.3 KB per post in the
window plus a fixed 8 MiB document-frequency table (``df_slots``), and the internal near-duplicate index's 0.6 KB a
post when on.

Native core: when the C extension ``monitor.analysis._cluster_c`` is built (``setup.py``; ``native`` in the
constructor, ``MONITOR_NATIVE=0`` turns it off) all of :meth:`TopicClusterer.add` after cleaning is one C call, and
:meth:`TopicClusterer.expire` is C too: the document-frequency table, the inverted index, each cluster's term
counts, mass, norm, names, members and kept samples, the recent posts, the post -> cluster map, the arrival order,
absorbed ids and their expiry, the kept texts' terms (tags through :func:`textfeat.hashtags`), and the inner loops
(counting, the query, the nearest-cluster search, centroids, pruning, posting, merging). Labels are made here from
what the core hands back. The pure-Python code below is the reference: the C core repeats its arithmetic operation
for operation and its orders (dict insertion, ``heapq.nlargest``'s ties, stable sorts), so every result is the same
(tests/test_native_cluster.py).
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from operator import mul, neg
from typing import Any

import numpy as np

from monitor.analysis.dedup import NearDuplicateIndex
from monitor.analysis.native import built, choose
from monitor.analysis.textfeat import (
    COMMON_WORDS,
    FUNCTION_CHARS,
    LATIN_FLAG,
    STOP_CHARS,
    STOP_WORDS,
    TAG_FLAG,
    clean,
    hashtags,
    term_code,
    token_codes,
)

__all__ = ["TopicClusterer", "TopicLabel", "headline", "readable_keywords"]

_LATIN = LATIN_FLAG
_TAG = TAG_FLAG
_MIX = 0x9E3779B97F4A7C15  # multiply-shift hashing of term codes into the document-frequency table
_MASK64 = (1 << 64) - 1
_NP_MIX = np.uint64(_MIX)
_NP_40 = np.uint64(40)
#: From this many terms, document frequencies are looked up with numpy (a centroid); fewer go through Python.
_NP_DFS = 48
_SAMPLES = 16  # member texts a cluster keeps for its label
_CODES_KEPT = 2048  # texts whose terms are kept for their copies (about 2 KB each)
# A topic is "one text" (its label gets a headline) when _HEADLINE_COPIES of its kept member texts hold
# _HEADLINE_COVER of the terms of its representative post, which has _HEADLINE_MIN_TERMS terms or more.
_HEADLINE_MIN_TERMS = 5
_HEADLINE_COVER = 0.6
_HEADLINE_COPIES = 0.6


@dataclass(frozen=True)
class TopicLabel:
    """What a cluster is about."""

    #: Up to five readable keywords, the most characteristic first.
    keywords: list[str]
    #: The member closest to the cluster's centroid, among the member texts the cluster keeps.
    representative_post_id: str
    #: Members in the window.
    size: int
    #: When the topic is one text spread around (a copied complaint, a repost cascade: the representative post holds
    #: nearly all of the centroid's heaviest terms), that text's leading clauses, which read better than keywords cut
    #: from it; otherwise empty.
    headline: str = ""


_term_code = term_code


def _term_text(code: int, names: dict[int, str]) -> str:
    if code >= _TAG:
        return names.get(code, "")
    return chr(code >> 21) + chr(code & 0x1FFFFF)


_COMMON = frozenset(_term_code(w) for w in COMMON_WORDS)
_FUNCTION = frozenset(ord(c) for c in FUNCTION_CHARS)
_STOP_CODES = frozenset(map(_term_code, STOP_WORDS))  # as textfeat.token_codes drops them, for the C core's copy


def _second(kv: tuple[int, float]) -> float:
    return kv[1]


class _Cluster:
    __slots__ = ("codes", "counts", "mass", "members", "names", "norm", "norm_docs", "norm_mass", "num", "samples",
                 "scale_t")

    def __init__(self, num: int, t: float) -> None:
        self.num = num
        # A cluster of one post keeps its terms in ``codes`` (each counted ``mass``); a bigger one in ``counts``:
        # term -> decayed number of members using it, times exp((t - scale_t) / tau), like ``mass``.
        self.codes: array | None = None
        self.counts: dict[int, float] = {}
        self.scale_t = t
        self.mass = 0.0
        self.members: list[tuple[str, float]] = []  # (post id, ts), in order of joining
        self.samples: list[tuple[str, float, str]] = []  # (post id, ts, cleaned text)
        self.names: dict[int, str] = {}  # text of latin-word and hashtag terms
        self.norm = 0.0  # centroid norm, as of norm_docs and norm_mass
        self.norm_docs = -1.0
        self.norm_mass = -1.0

    def terms(self) -> dict[int, float]:
        """Term counts (a fresh dict for a one-post cluster)."""
        return self.counts if self.codes is None else dict.fromkeys(self.codes, self.mass)


class TopicClusterer:
    """Group a stream of posts into topics (events) within a sliding time window.

    ``window_seconds``: how long a post counts for its cluster; also the decay time of term statistics.
    ``threshold``: cosine similarity between a post and a cluster centroid from which the post joins the cluster.
    ``merge_threshold``: centroid similarity from which a growing cluster absorbs a neighbour; ``merge_terms``: the
    centroid's heaviest terms that check looks with.
    ``min_shared``: weighted terms a post must share with a cluster to join it (one shared word is weak evidence).
    ``min_df``: posts a term must have been seen in before it carries weight. ``common_weight``: weight factor of
    everyday words and of bigrams holding a pronoun or auxiliary (``textfeat.COMMON_WORDS``,
    ``textfeat.FUNCTION_CHARS``); ``hashtag_weight``: of a whole ``#话题#`` tag. ``near_duplicates``: look up each
    post in an internal :class:`~monitor.analysis.dedup.NearDuplicateIndex` and put a near-duplicate in its
    original's cluster (turn it off when the caller runs its own index and passes ``duplicate_of``). The other
    parameters bound the work per post and the memory (module docstring); ``df_slots`` is a power of two from 1024
    to 2**24. ``native``: None uses the C core when it is built and ``MONITOR_NATIVE`` is not ``0`` (module
    docstring), False the pure-Python code, True the C core or RuntimeError; the results are the same.

    The defaults were tuned on a six-topic Weibo gold set (``python bench/topics.py``) and checked against 2,000
    unrelated posts for over-merging.
    """

    def __init__(self, window_seconds: float = 86_400.0, threshold: float = 0.2, *,
                 merge_threshold: float = 0.15, min_shared: int = 2, min_df: int = 3, common_weight: float = 0.25,
                 hashtag_weight: float = 2.0, near_duplicates: bool = True, post_terms: int = 48,
                 probe_terms: int = 16, score_clusters: int = 8, centroid_terms: int = 96, posting_cap: int = 64,
                 recent_posts: int = 2000, df_slots: int = 1 << 21, merge_terms: int = 48,
                 native: bool | None = None) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if not 0.0 < threshold <= 1.0 or not merge_threshold > 0.0:
            raise ValueError("threshold must be in (0, 1] and merge_threshold positive")
        if df_slots < 1024 or df_slots > 1 << 24 or df_slots & (df_slots - 1):
            # At most 2**24 slots: a slot is bits 40..63 of code * _MIX, the same in Python and in numpy's uint64.
            raise ValueError("df_slots must be a power of two from 1024 to 2**24")
        self.window_seconds = float(window_seconds)
        self.threshold = float(threshold)
        self.merge_threshold = float(merge_threshold)
        self.min_shared = min_shared
        self.min_df = min_df
        self.common_weight = common_weight
        self.hashtag_weight = hashtag_weight
        self.post_terms = post_terms
        self.probe_terms = probe_terms
        self.score_clusters = score_clusters
        self.centroid_terms = centroid_terms
        self.posting_cap = posting_cap
        self.recent_posts = recent_posts
        self.merge_terms = merge_terms
        self._dedup = NearDuplicateIndex(self.window_seconds) if near_duplicates else None
        self._tau = self.window_seconds
        self._core = self._native_core(native, df_slots)
        # textfeat.token_codes, or the C core's exact copy of it
        self._token_codes = token_codes if self._core is None else self._core.token_codes
        # With the C core the table lives there: this one stays empty.
        self._df = array("f", bytes(4 * df_slots) if self._core is None else b"")
        self._df_mask = df_slots - 1
        self._df_np = np.frombuffer(self._df, dtype=np.float32)  # the same memory, for lookups of many terms at once
        self._np_mask = np.uint64(df_slots - 1)
        self._docs = 0.0
        self._df_t: float | None = None  # df values and _docs are stored multiplied by _grow
        self._grow = 1.0
        self._factors: dict[int, float] = {}
        self._codes: dict[str, dict[int, str | None]] = {}  # cleaned text -> token_codes, the latest _CODES_KEPT
        self._clusters: dict[int, _Cluster] = {}
        self._index: dict[int, int | list[int]] = {}  # term -> cluster number, or several, latest last
        self._recent: deque[tuple[int, array]] = deque()
        self._alias: dict[int, int] = {}
        self._absorbed: dict[int, list[int]] = {}
        # An absorbed id resolves while posts that joined under it may still be in the window: until this time.
        self._alias_until: dict[int, float] = {}
        self._alias_heap: list[tuple[float, int]] = []
        self._post_cluster: dict[str, int] = {}
        self._order: deque[tuple[float, int]] = deque()  # (ts, cluster number at joining), in arrival order
        self._next = 0
        self._now = float("-inf")

    def _native_core(self, native: bool | None, df_slots: int) -> Any:
        """The C core (``_cluster_c.Core``) holding the numeric state, or None for the pure-Python code."""
        module = choose(built("_cluster_c"), native, "TopicClusterer")
        if module is None:
            return None
        try:
            return module.Core(df_slots, self.window_seconds, self.threshold, self.merge_threshold, self.min_shared,
                               self.min_df, self.common_weight, self.hashtag_weight, self.post_terms,
                               self.probe_terms, self.score_clusters, self.centroid_terms, self.posting_cap,
                               self.recent_posts, self.merge_terms, tuple(_COMMON), tuple(_FUNCTION),
                               tuple(ord(c) for c in STOP_CHARS), frozenset(STOP_WORDS), tuple(_STOP_CODES),
                               _SAMPLES, _CODES_KEPT, hashtags)
        except (TypeError, ValueError, OverflowError):
            if native:
                raise
            return None  # parameters the C core does not take (posting_cap < 2, floats for counts): Python

    # -- public API ---------------------------------------------------------------------------------------------

    def add(self, post_id: str, text: str, ts: float, *, duplicate_of: str | None = None,
            cleaned: str | None = None) -> str:
        """Assign a post to a cluster (a new one if none is similar enough) and return the cluster's id.

        ``duplicate_of``: the id of an earlier post this one nearly duplicates (from the caller's own
        :class:`~monitor.analysis.dedup.NearDuplicateIndex`); while that post is in the window, this one joins its
        cluster. ``cleaned``: ``textfeat.clean(text)`` when the caller has it already (it is not computed twice).
        """
        core = self._core
        if core is not None:  # all of it in C, expiry included, after the duplicate index and cleaning
            if self._dedup is not None:
                self.expire(ts)
                match = self._dedup.add(post_id, text, ts, cleaned=cleaned)
                duplicate_of = duplicate_of or match
            return core.add_post(post_id, text, clean(text) if cleaned is None else cleaned, ts,
                                 duplicate_of)
        self.expire(ts)
        if self._dedup is not None:
            match = self._dedup.add(post_id, text, ts, cleaned=cleaned)
            duplicate_of = duplicate_of or match
        if cleaned is None:
            cleaned = clean(text)
        codes = self._codes.get(cleaned)
        if codes is None:
            codes = self._token_codes(cleaned)
            # Reposts and copies say the same thing within minutes: recent texts' terms are kept (first in, first out).
            self._codes[cleaned] = codes
            if len(self._codes) > _CODES_KEPT:
                del self._codes[next(iter(self._codes))]
        if "#" in text or "＃" in text:
            codes = dict(codes)  # the kept terms are shared: tags go into a copy
            for tag in hashtags(text):
                codes[_term_code("#" + tag)] = "#" + tag
        slots = self._count(codes)
        home = self._post_cluster.get(duplicate_of) if duplicate_of is not None else None
        target = self._follow(home) if home is not None else None
        if target is None:
            inv = 1.0 / self._grow
            df = dict(zip(codes, [self._df[i] * inv for i in slots], strict=True))
            query, raw = self._query(df)
            target, sim = self._nearest(query, df, exclude=-1, bar=self.threshold, raw=raw)
            if sim < self.threshold:
                target = None
        cluster = self._new_cluster(ts) if target is None else self._clusters[target]
        self._join(cluster, post_id, ts, codes, cleaned)
        size = len(cluster.members)
        if size >= 2 and size & (size - 1) == 0:
            cluster = self._merge_neighbours(cluster)
        return f"c{cluster.num}"

    def resolve(self, cluster_id: str) -> str | None:
        """The id a cluster now goes by (after merges), or None when it is unknown or has expired."""
        num = self._resolve_num(cluster_id)
        return None if num is None else f"c{num}"

    def absorbed(self, cluster_id: str) -> list[str]:
        """Ids of clusters merged into this one that still resolve to it (posts that joined under them are in the
        window), oldest merge first; empty for an unknown or expired id."""
        num = self._resolve_num(cluster_id)
        if num is None:
            return []
        if self._core is not None:
            return [f"c{n}" for n in self._core.absorbed(num)]
        return [f"c{n}" for n in self._absorbed.get(num, ())]

    def members(self, cluster_id: str) -> list[str]:
        """Ids of the cluster's posts still in the window, oldest first (empty for an unknown or expired id)."""
        num = self._resolve_num(cluster_id)
        if num is None:
            return []
        members = self._clusters[num].members if self._core is None else self._core.members(num)
        return [pid for pid, _ in sorted(members, key=lambda m: m[1])]

    def label(self, cluster_id: str) -> TopicLabel:
        """Keywords, representative post and size of a cluster; KeyError for an unknown or expired id."""
        num = self._resolve_num(cluster_id)
        if num is None:
            raise KeyError(cluster_id)
        core = self._core
        # A young cluster may hold no word seen in ``min_df`` posts yet: then rank all its words.
        if core is None:
            cluster = self._clusters[num]
            weights = self._centroid(cluster) or self._centroid(cluster, min_df=0)
            names = cluster.names
            members, samples, now = cluster.members, cluster.samples, self._now
        else:
            weights = core.centroid(num) or core.centroid(num, 0)
            names = core.names(num)
            members, samples, now = core.members(num), core.samples(num), core.clock()
        ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
        keywords = readable_keywords([_term_text(c, names) for c, _ in ranked], (s[2] for s in samples),
                                     weights=[w for _, w in ranked])
        rep, text = self._representative(members[0][0], samples, now, weights)
        return TopicLabel(keywords, rep, len(members), headline(text) if self._one_text(samples, now, text) else "")

    def shared_terms(self, cluster_id: str, share: float = 0.5) -> int:
        """How many specific terms (not everyday words or bigrams holding a function character) at least
        ``share`` of the cluster's members use, time-decayed like its centroid; 0 for an unknown or expired id.

        A topic about something shares its words (鲸帆 帆手 手机 电池 池鼓 鼓包); posts tied together by one phrase of
        feeling (太可怕, 以为) share one or two.
        """
        num = self._resolve_num(cluster_id)
        if num is None:
            return 0
        if self._core is not None:
            return int(self._core.shared_terms(num, share))
        cluster = self._clusters[num]
        factor = self._factor
        if cluster.codes is not None:
            return sum(1 for c in cluster.codes if factor(c) >= 1.0)
        floor = share * cluster.mass
        return sum(1 for c, n in cluster.counts.items() if n >= floor and factor(c) >= 1.0)

    def clusters(self, min_size: int = 1) -> list[str]:
        """Ids of live clusters with at least ``min_size`` members, largest first (ties: oldest first)."""
        if self._core is not None:
            live = [(-size, num) for size, num in self._core.sizes(min_size)]
        else:
            live = [(-len(c.members), num) for num, c in self._clusters.items() if len(c.members) >= min_size]
        return [f"c{num}" for _, num in sorted(live)]

    def cluster_of(self, post_id: str) -> str | None:
        """The cluster id of a post still in the window, or None."""
        if self._core is not None:
            num = self._core.cluster_of(post_id)
            return None if num < 0 else f"c{num}"
        num = self._post_cluster.get(post_id)
        return None if num is None else self.resolve(f"c{num}")

    def expire(self, now: float) -> int:
        """Advance the window to ``now`` (never backwards); drop members and clusters older than it.

        Returns the number of clusters dropped. Members leave in the order they joined their cluster.
        """
        if self._core is not None:
            dropped = self._core.expire(now)
            if self._dedup is not None:
                self._dedup.evict(self._core.clock())
            return dropped
        if now > self._now:
            self._now = now
        if self._dedup is not None:
            self._dedup.evict(self._now)
        cutoff = self._now - self.window_seconds
        # Called before every post: mostly one member or none leaves, so the loops are inlined.
        order = self._order
        dropped = 0
        if order and order[0][0] < cutoff:
            alias, clusters, post_cluster = self._alias, self._clusters, self._post_cluster
            touched: set[int] = set()
            while order and order[0][0] < cutoff:
                num = order.popleft()[1]
                num = alias.get(num, num)  # _follow, inlined
                if num in clusters:
                    touched.add(num)
            for num in sorted(touched) if len(touched) > 1 else touched:
                cluster = clusters[num]
                members = cluster.members
                k, n = 0, len(members)
                while k < n and members[k][1] < cutoff:
                    pid = members[k][0]
                    home = post_cluster.get(pid, -1)
                    resolved = alias.get(home, home)
                    # Its cluster's entry goes; so does one naming a cluster that is gone (the post joined an
                    # absorbed cluster whose alias expired first): it would never be asked about nor dropped again.
                    if resolved == num or (home >= 0 and resolved not in clusters):
                        del post_cluster[pid]
                    k += 1
                del members[:k]
                cluster.samples = [s for s in cluster.samples if s[1] >= cutoff]
                if not members:
                    self._drop(cluster)
                    dropped += 1
        # Absorbed ids no post of the window joined under any more stop resolving.
        heap = self._alias_heap
        while heap and heap[0][0] < cutoff:
            until, num = heapq.heappop(heap)
            if self._alias_until.get(num) == until:
                del self._alias_until[num]
                target = self._alias.pop(num, None)
                if target is not None and num in self._absorbed.get(target, ()):
                    self._absorbed[target].remove(num)
        return dropped

    def __len__(self) -> int:
        """Number of live clusters."""
        return len(self._clusters) if self._core is None else self._core.count()

    # -- term statistics ----------------------------------------------------------------------------------------

    def _count(self, codes: Iterable[int]) -> list[int]:
        """Count a post's terms into the decayed document frequencies (at the newest time seen); their slots."""
        if self._df_t is None:
            self._df_t = self._now
        grow = math.exp(min((self._now - self._df_t) / self._tau, 700.0))
        if grow > 1e6:  # bring the stored counts back to scale before float32 runs out of precision
            # In place through the numpy view of the same memory: a Python loop over 2M slots took a third of a second.
            self._df_np *= np.float32(1.0 / grow)
            self._docs /= grow
            self._df_t = self._now
            grow = 1.0
        self._grow = grow
        df, mask = self._df, self._df_mask
        slots = [(code * _MIX >> 40) & mask for code in codes]
        for i in slots:
            df[i] += grow
        self._docs += grow
        return slots

    def _dfs(self, codes: Iterable[int]) -> dict[int, float]:
        """Current (decayed) document frequency of each term."""
        inv = 1.0 / self._grow
        if not isinstance(codes, dict | array) or len(codes) < _NP_DFS:
            df, mask = self._df, self._df_mask
            return {c: df[(c * _MIX >> 40) & mask] * inv for c in codes}
        # A centroid's hundred-odd terms: hashing and lookup in numpy, float64 products as in Python.
        keys = list(codes)
        slots = (np.array(keys, dtype=np.uint64) * _NP_MIX >> _NP_40) & self._np_mask
        return dict(zip(keys, (self._df_np[slots].astype(np.float64) * inv).tolist(), strict=True))

    def _factor(self, code: int) -> float:
        """Weight factor of a term (everyday word, function-character bigram, tag); memoised, it is asked often."""
        f = self._factors.get(code)
        if f is None:
            if code >= _TAG:
                f = self.hashtag_weight if code < _LATIN else 1.0
            elif code in _COMMON or code >> 21 in _FUNCTION or code & 0x1FFFFF in _FUNCTION:
                f = self.common_weight
            else:
                f = 1.0
            if len(self._factors) >= 1 << 20:  # bounded: the vocabulary of a long stream keeps growing
                self._factors.clear()
            self._factors[code] = f
        return f

    def _query(self, df: dict[int, float]) -> tuple[dict[int, float], dict[int, float]]:
        """Unit vector of a post: IDF weights of its terms seen in ``min_df`` posts, cut to the ``post_terms`` best;
        and the same weights before normalising."""
        docs = self._docs / self._grow + 1.0
        floor = self.min_df - 0.5
        factor = self._factor
        q = {}
        for c, d in df.items():
            if d >= floor and (idf := math.log(docs / (d + 0.5))) > 0.0:
                q[c] = idf * factor(c)
        if len(q) > self.post_terms:
            q = dict(heapq.nlargest(self.post_terms, q.items(), key=_second))
        norm = math.sqrt(sum(w * w for w in q.values()))
        return ({c: w / norm for c, w in q.items()}, q) if norm else ({}, {})

    def _centroid(self, cluster: _Cluster, min_df: int | None = None) -> dict[int, float]:
        """Centroid weights of a cluster's terms: ``p * log(p / p0)`` (module docstring)."""
        return self._centroid_df(cluster, min_df)[0]

    def _centroid_df(self, cluster: _Cluster,
                     min_df: int | None = None) -> tuple[dict[int, float], dict[int, float]]:
        """Centroid weights, and the document frequency of each weighted term (merge checks need both)."""
        counts = cluster.terms()
        docs = self._docs / self._grow + 1.0
        floor = (self.min_df if min_df is None else min_df) - 0.5
        inv_mass = 1.0 / cluster.mass
        factor = self._factor
        log = math.log
        out = {}
        dfs = {}
        for code, d in self._dfs(counts).items():
            if d < floor:
                continue
            p = counts[code] * inv_mass
            lift = p * docs / (d + 0.5)
            if lift > 1.0:
                out[code] = p * log(lift) * factor(code)
                dfs[code] = d
        return out, dfs

    def _norm(self, cluster: _Cluster) -> float:
        """Centroid norm, recomputed when the cluster's mass has moved 10 % or the collection 5 % since."""
        docs = self._docs / self._grow
        if (cluster.norm_docs < 0 or abs(cluster.mass - cluster.norm_mass) > 0.1 * cluster.norm_mass
                or abs(docs - cluster.norm_docs) > 0.05 * cluster.norm_docs):
            self._set_norm(cluster, math.sqrt(sum(w * w for w in self._centroid(cluster).values())))
        return cluster.norm

    def _set_norm(self, cluster: _Cluster, norm: float) -> None:
        cluster.norm = norm
        cluster.norm_docs = self._docs / self._grow
        cluster.norm_mass = cluster.mass

    # -- clusters -----------------------------------------------------------------------------------------------

    def _nearest(self, query: dict[int, float], df: dict[int, float], exclude: int, bar: float,
                 raw: dict[int, float] | None = None) -> tuple[int | None, float]:
        """The most similar live cluster to a unit query vector, probing the inverted index with its best terms.

        A one-post cluster's centroid weight of a term is its IDF times its factor (``p = 1`` in
        ``p * log(p / p0) * factor``), the same for every one-post cluster: it is computed once per query, and those
        clusters are scored without a logarithm. ``raw``: these weights when the caller has them (a post's query
        before normalising, ``_query``).
        """
        if not query:
            return None, 0.0
        clusters, index = self._clusters, self._index
        # Candidates: clusters holding the query's heaviest terms, ranked by those terms' weight times their share in
        # the cluster (a one-post cluster holds each of its terms fully).
        partial: dict[int, float] = {}
        get = partial.get
        for code, w in heapq.nlargest(self.probe_terms, query.items(), key=_second):
            posting = index.get(code)
            if posting is None:
                continue
            for num in (posting,) if isinstance(posting, int) else posting:
                cluster = clusters[num]
                if cluster.codes is None:
                    partial[num] = get(num, 0.0) + w * (cluster.counts.get(code, 0.0) / cluster.mass)
                else:
                    partial[num] = get(num, 0.0) + w
        partial.pop(exclude, None)
        if not partial:
            return None, 0.0
        # Rank by the probe terms' share in each cluster; score the best few exactly. Only the terms a cluster shares
        # with the query count, and the query's terms all passed ``min_df`` (``_query``, ``_centroid``), so the
        # shared terms are found by a set intersection in C and only they are weighed.
        docs = self._docs / self._grow + 1.0
        factor = self._factor
        log = math.log
        min_shared = self.min_shared
        best, best_sim = None, 0.0
        for num in heapq.nlargest(self.score_clusters, partial, key=partial.__getitem__):
            cluster = clusters[num]
            mass = cluster.mass
            if cluster.codes is None:
                counts = cluster.counts
                shared = query.keys() & counts.keys()
            else:  # a one-post cluster
                if raw is None:  # only terms with a positive IDF weigh (lift > 1)
                    raw = {c: idf * factor(c) for c in query if (idf := log(docs / (df[c] + 0.5))) > 0.0}
                shared = raw.keys() & set(cluster.codes)
                if len(shared) < min_shared:
                    continue
                dot = math.fsum(map(mul, map(query.__getitem__, shared), map(raw.__getitem__, shared)))
                if (cluster.norm > 0.0 and dot / cluster.norm < 0.7 * max(bar, best_sim)) or not self._norm(cluster):
                    continue
                sim = dot / cluster.norm
                if sim > best_sim + 1e-12 or (best is not None and abs(sim - best_sim) <= 1e-12 and num < best):
                    best, best_sim = num, sim
                continue
            if len(shared) < min_shared:
                continue
            parts = []
            for c in shared:
                if (lift := (n := counts[c]) * docs / (mass * (df[c] + 0.5))) > 1.0:
                    parts.append(query[c] * n / mass * log(lift) * factor(c))
            if len(parts) < min_shared:
                continue
            dot = math.fsum(parts)  # exactly rounded: the same whatever order the set gave the terms in
            # A stale norm is refreshed only when the similarity it gives is near the bar: norms drift slowly.
            if (cluster.norm > 0.0 and dot / cluster.norm < 0.7 * max(bar, best_sim)) or not self._norm(cluster):
                continue
            sim = dot / cluster.norm
            if sim > best_sim + 1e-12 or (best is not None and abs(sim - best_sim) <= 1e-12 and num < best):
                best, best_sim = num, sim
        return best, best_sim

    def _new_cluster(self, ts: float) -> _Cluster:
        cluster = _Cluster(self._next, ts)
        self._clusters[self._next] = cluster
        self._next += 1
        return cluster

    def _join(self, cluster: _Cluster, post_id: str, ts: float, codes: dict[int, str | None],
              cleaned: str) -> None:
        if not cluster.members:  # a new cluster: its post's terms, compactly
            cluster.codes = array("q", codes)
            cluster.mass = 1.0
        else:
            self._add_counts(cluster, dict.fromkeys(codes, 1.0), ts)
        for code, term in codes.items():
            if code >= _TAG and term:  # a word or tag; a CJK bigram's code holds its characters
                cluster.names[code] = term[1:] if code < _LATIN else term
        cluster.members.append((post_id, ts))
        if len(cluster.samples) < _SAMPLES:
            cluster.samples.append((post_id, ts, cleaned))
        else:  # keep the first half, rotate the rest through the latest members
            cluster.samples[_SAMPLES // 2 + len(cluster.members) % (_SAMPLES // 2)] = (post_id, ts, cleaned)
        self._post_cluster[post_id] = cluster.num
        self._order.append((ts, cluster.num))
        # Index every term of the post; terms of the latest ``recent_posts`` posts stay, older ones only once another
        # post has used them. A posting keeps the ``posting_cap`` clusters that used the term last.
        if cluster.codes is None:
            self._post_all(cluster.counts.keys() & codes.keys(), cluster.num)  # others were pruned away at once
        else:
            self._post_all(codes, cluster.num)
        self._recent.append((cluster.num, array("q", codes)))
        if len(self._recent) > self.recent_posts:
            old, old_codes = self._recent.popleft()
            # A cluster that is gone (expired or absorbed) took its index entries with it: nothing to look up.
            if old in self._clusters:
                self._unpost_all([code for code, d in self._dfs(old_codes).items() if d < 1.5], old)

    def _post(self, code: int, num: int) -> None:
        index = self._index
        posting = index.get(code)
        if posting is None:
            index[code] = num
        elif isinstance(posting, int):
            if posting != num:
                index[code] = [posting, num]
        elif posting[-1] != num:
            if num in posting:
                posting.remove(num)
            posting.append(num)
            if len(posting) > self.posting_cap:
                del posting[0]

    def _post_all(self, codes: Iterable[int], num: int) -> None:
        """:meth:`_post` for many terms: those in no posting yet (most terms of a new post) in one dict update."""
        index = self._index
        add = dict.fromkeys(codes, num)
        for code in index.keys() & add.keys():
            del add[code]
            posting = index[code]
            # Already the latest user of the term (a post joining a cluster that holds its words): nothing to do.
            if posting == num or (not isinstance(posting, int) and posting[-1] == num):
                continue
            self._post(code, num)
        index.update(add)

    def _unpost_all(self, codes: Iterable[int], num: int) -> None:
        """:meth:`_unpost` for many terms."""
        index = self._index
        for code in index.keys() & codes:
            posting = index[code]
            if isinstance(posting, int):
                if posting == num:
                    del index[code]
            elif num in posting:
                posting.remove(num)
                if len(posting) == 1:
                    index[code] = posting[0]

    def _add_counts(self, cluster: _Cluster, counts: dict[int, float], ts: float, mass: float = 1.0) -> None:
        if cluster.codes is not None:
            cluster.counts = dict.fromkeys(cluster.codes, cluster.mass)
            cluster.codes = None
        factor = math.exp(min((ts - cluster.scale_t) / self._tau, 700.0))
        if factor > 1e9:
            shrink = 1.0 / factor
            cluster.counts = {c: n * shrink for c, n in cluster.counts.items()}
            cluster.mass *= shrink
            cluster.scale_t = ts
            factor = 1.0
        mine = cluster.counts
        for code, n in counts.items():
            mine[code] = mine.get(code, 0.0) + n * factor
        cluster.mass += mass * factor
        if len(mine) > 2 * self.centroid_terms:
            self._prune(cluster)

    def _prune(self, cluster: _Cluster) -> None:
        """Keep the ``centroid_terms`` terms with the most members (ties: the rarer term)."""
        counts = cluster.counts
        df = self._dfs(counts)
        # Plain tuples compared in C: a key function per term was most of the cost.
        ranked = sorted(zip(map(neg, counts.values()), map(df.__getitem__, counts), counts, strict=True))
        keep = self.centroid_terms
        cluster.counts = {code: -n for n, _, code in ranked[:keep]}
        gone = [code for _, _, code in ranked[keep:]]
        self._unpost_all(gone, cluster.num)
        for code in gone:
            cluster.names.pop(code, None)
        cluster.norm_docs = -1.0

    def _merge_neighbours(self, cluster: _Cluster) -> _Cluster:
        while True:
            # One centroid computation gives the query, its document frequencies and a fresh norm.
            weights, dfs = self._centroid_df(cluster)
            norm = math.sqrt(sum(w * w for w in weights.values()))
            self._set_norm(cluster, norm)
            if not norm:
                return cluster
            # The query is the centroid's ``merge_terms`` heaviest terms (still divided by the full norm): they hold
            # most of its weight, and scoring a neighbour on a hundred-odd shared terms cost more than the posts did.
            top = heapq.nlargest(self.merge_terms, weights.items(), key=_second) \
                if len(weights) > self.merge_terms else weights.items()
            query = {c: w / norm for c, w in top}
            other, sim = self._nearest(query, dfs, exclude=cluster.num, bar=self.merge_threshold)
            if other is None or sim < self.merge_threshold:
                return cluster
            a, b = self._clusters[other], cluster
            keep, gone = (a, b) if a.num < b.num else (b, a)
            self._absorb(keep, gone)
            cluster = keep

    def _absorb(self, keep: _Cluster, gone: _Cluster) -> None:
        """Move ``gone``'s counts and members into ``keep``; ``gone``'s id resolves to ``keep`` for a window."""
        gone_terms = gone.terms()
        self._add_counts(keep, gone_terms, gone.scale_t, gone.mass)
        keep.norm_docs = -1.0
        keep.names.update(gone.names)
        keep.members = sorted(keep.members + gone.members, key=lambda m: m[1])
        keep.samples = (keep.samples + gone.samples)[:_SAMPLES]
        self._unpost_all(gone_terms, gone.num)
        self._post_all(keep.counts.keys() & gone_terms.keys(), keep.num)
        gone.codes, gone.counts = None, {}
        moved = [gone.num, *self._absorbed.pop(gone.num, [])]
        until = max((m[1] for m in gone.members), default=self._now)
        self._drop(gone, in_index=False)
        for num in moved:
            self._alias[num] = keep.num
            until_num = max(until, self._alias_until.get(num, until))
            self._alias_until[num] = until_num
            heapq.heappush(self._alias_heap, (until_num, num))
        self._absorbed.setdefault(keep.num, []).extend(moved)

    def _drop(self, cluster: _Cluster, in_index: bool = True) -> None:
        """Forget a cluster: its index entries (``in_index``: it still has some), and the ids of clusters it had
        absorbed."""
        if in_index:
            self._unpost_all(cluster.terms() if cluster.codes is None else cluster.codes, cluster.num)
        del self._clusters[cluster.num]
        for num in self._absorbed.pop(cluster.num, []):
            self._alias.pop(num, None)
            self._alias_until.pop(num, None)

    def _follow(self, num: int) -> int | None:
        num = self._alias.get(num, num)
        return num if num in self._clusters else None

    def _resolve_num(self, cluster_id: str) -> int | None:
        if not cluster_id.startswith("c") or not cluster_id[1:].isdigit():
            return None
        num = int(cluster_id[1:])
        if self._core is not None:
            num = self._core.follow(num) if num < 1 << 62 else -1
            return None if num < 0 else num
        return self._follow(num)

    def _one_text(self, samples: list[tuple[str, float, str]], now: float, text: str) -> bool:
        """Whether a topic is one text spread around (a cascade of reposts or copies): most kept member texts hold
        most of the representative's terms. Many people writing on one subject share a few words, not a text."""
        own = set(self._token_codes(text))
        if len(own) < _HEADLINE_MIN_TERMS:
            return False
        cutoff = now - self.window_seconds
        texts = [s[2] for s in samples if s[1] >= cutoff]
        copies = sum(1 for t in texts if len(own.intersection(self._token_codes(t))) >= _HEADLINE_COVER * len(own))
        return copies >= _HEADLINE_COPIES * len(texts)

    def _representative(self, first: str, samples: list[tuple[str, float, str]], now: float,
                        weights: dict[int, float]) -> tuple[str, str]:
        """The kept member (of ``samples``; ``first``: the first member) with the most centroid weight per square
        root of its number of terms: its id and cleaned text (empty when no kept text is in the window)."""
        best, best_text, best_sim = first, "", -1.0
        cutoff = now - self.window_seconds
        for pid, ts, text in samples:
            if ts < cutoff:
                continue
            codes = set(self._token_codes(text))
            sim = sum(weights.get(c, 0.0) for c in codes) / math.sqrt(len(codes) or 1)
            if sim > best_sim:
                best, best_text, best_sim = pid, text, sim
        return best, best_text


def headline(cleaned: str, limit: int = 24) -> str:
    """The leading clauses of a cleaned text (``textfeat.clean``), up to about ``limit`` characters.

    Cleaning turned punctuation into spaces: a space between two CJK characters is a clause break and reads as
    "，"; one beside a latin word or a number stays a space. Clauses are taken whole while they fit; a first clause
    longer than ``limit`` is cut. "…" marks a cut.
    """
    pieces = cleaned.split()
    out = ""
    for i, piece in enumerate(pieces):
        joint = "" if not out else ("，" if _is_cjk(out[-1]) and _is_cjk(piece[0]) else " ")
        if len(out) + len(joint) + len(piece) > limit:
            if not out:
                return piece[:limit] + "…"
            return out + "…"
        out += joint + piece
        if i == len(pieces) - 1:
            return out
    return out


def _is_cjk(ch: str) -> bool:
    return ch >= "\u3400"


def readable_keywords(ranked_terms: list[str], texts: Iterable[str], n: int = 5,
                      weights: list[float] | None = None) -> list[str]:
    """Up to ``n`` readable keywords from terms ranked by weight, joining bigrams that run together in ``texts``.

    Each CJK bigram grows into the longest string (up to 8 characters) of the cleaned ``texts`` that contains it, is
    made of ranked bigrams only, and occurs in at least 60 % of the texts holding the bigram and in two (unless there
    is one text): 人工 becomes 人工智能 when it is nearly always followed by 智能. Other terms are kept as they are.
    Skipped: a keyword inside a better-ranked one or holding one, a bigram straddling the edge of a keyword already
    taken (坞电 after 好莱坞 in 好莱坞电影), and with ``weights`` (parallel to ``ranked_terms``) a term weighing less
    than a tenth of the first.
    """
    texts = list(texts)
    top = {t for t in ranked_terms if len(t) == 2}
    out: list[str] = []
    floor = weights[0] * 0.1 if weights else 0.0
    for i, term in enumerate(ranked_terms):
        if not term or (weights and weights[i] < floor):
            continue
        if len(term) == 2 and any(_straddles(term, kept, texts) for kept in out):
            continue
        word = _extend(term, top, texts)
        if any(word in kept or kept in word for kept in out):
            continue
        out.append(word)
        if len(out) >= n:
            break
    return out


def _straddles(bigram: str, word: str, texts: list[str]) -> bool:
    """Whether ``bigram`` overlaps one end of ``word`` by a character where the texts run them together."""
    if word.endswith(bigram[0]) and any(word + bigram[1] in t for t in texts):
        return True
    return word.startswith(bigram[1]) and any(bigram[0] + word in t for t in texts)


def _extend(term: str, top: set[str], texts: list[str]) -> str:
    holders = [t for t in texts if term in t]
    if len(term) != 2 or term[0] < "\u3400" or not holders:
        return term
    # A topic spread by reposts keeps many copies of one text: each distinct text is read once, counted as often
    # as it is held.
    copies = Counter(holders)
    runs: set[str] = set()
    for text in copies:
        start = text.find(term)
        while start >= 0:
            lo, hi = start, start + 2
            while lo > 0 and text[lo - 1:lo + 1] in top:
                lo -= 1
            while hi < len(text) and text[hi - 1:hi + 1] in top:
                hi += 1
            for i in range(lo, start + 1):  # every piece of the run that contains the term
                for j in range(start + 2, min(hi, i + 8) + 1):
                    runs.add(text[i:j])
            start = text.find(term, start + 1)
    need = max(2.0 if len(texts) > 1 else 1.0, 0.6 * len(holders))
    best = term
    for cand in sorted(runs, key=lambda s: (-len(s), s)):
        if len(cand) <= len(best):
            break
        if sum(n for t, n in copies.items() if cand in t) >= need:
            best = cand
            break
    return best
