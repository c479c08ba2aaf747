"""Near-duplicate detection over a sliding time window: reposts, copy-paste campaigns, cross-posts and light edits.

Method. Each post is cleaned (:func:`monitor.analysis.textfeat.clean`: repost chains, URLs, ``[表情]`` codes, emoji
and punctuation go, full-width folds to half-width) and cut into character bigrams with spaces removed. Two posts are
near duplicates when the Jaccard similarity of their bigram sets reaches ``threshold``. Candidates come from MinHash
LSH: one-permutation MinHash (one hash per bigram into ``bands * rows`` bins, empty bins filled by optimal
densification) cut into ``bands`` bands of ``rows`` bins; posts that agree on a whole band share a bucket. Every
candidate is then checked with the Jaccard similarity of the stored bigram hashes, so the LSH only decides recall,
not precision. Posts shorter than ``min_chars`` word characters after cleaning are matched only when identical after
cleaning.

Exact copies. Reposts, cross-posts and copy-paste campaigns repeat a text exactly (after cleaning): a quarter or
more of a busy stream. A long text is remembered by a 64-bit digest of its cleaned characters together with its
first filed post and that post's answer; an exact copy gets the same answer (the earliest near-duplicate still in
the window) without a sketch or a bucket lookup, and is kept for the window without being filed. When the filed
copy leaves the window, the oldest copy left is filed in its place (with the same sketch), so later copies and
edited copies still find one; an answer that has left the window is looked up afresh.

Memory. Buckets live in one open-addressing table of two flat arrays (a 32-bit key and a 32-bit post number per
slot) rather than a dict of lists, and a post keeps only its bucket keys and 16-bit bigram hashes; a bucket holds
at most ``bucket_cap`` posts (a campaign of ten thousand copies is represented by its earliest ones). About 0.6 KB
per post held (``python bench/dedup.py``).

The window is event time: the newest timestamp seen (or passed to :meth:`NearDuplicateIndex.evict`) is "now", and
posts older than ``now - window_seconds`` are dropped, so memory is bounded by the number of posts in one window.
Everything is a pure function of the calls made: no clock is read and hashing uses fixed constants, so the same
stream gives the same answers in every process.

Native core. When the C extension ``monitor.analysis._dedup_c`` is built (``setup.py``; it needs a C compiler), the
index runs everything after cleaning in C: bigram hashes, sketch, bucket table, verification, the digest, the copies'
bookkeeping and eviction, in flat C structures (``add`` of a cleaned post: about 15x faster than the code below, and
0.45 KB per post held instead of 0.75). The Python code below stays the reference: the C core reproduces it step by
step (CPython's int and tuple hashes, the same table layout, the same candidate order and rounding, BLAKE2b), and
tests/test_native_dedup.py checks that both give the same answer to every call. ``native=False`` or
``MONITOR_NATIVE=0`` selects the Python code.
"""

from __future__ import annotations

import random
import sys
from array import array
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

from monitor.analysis import native as _native
from monitor.analysis.textfeat import clean, meaningful_length, shingles

__all__ = ["DuplicateMatch", "NearDuplicateIndex", "jaccard"]

_EMPTY, _TOMBSTONE = 0, 1
_TWO, _LOW32, _LOW16 = 2, 0xFFFFFFFF, 0xFFFF
_LITTLE = sys.byteorder == "little"


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the cleaned character-bigram sets of two raw texts (1.0 for two empty texts)."""
    sa, sb = set(shingles(clean(a))), set(shingles(clean(b)))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def _load_core() -> Any:
    """The C core when it is built and computes hashes and digests as this Python does; else None (whether it is
    used is :func:`monitor.analysis.native.choose`'s call, at each construction)."""
    core = _native.built("_dedup_c")
    if core is None or getattr(core, "VERSION", None) != 1:
        return None
    # The core reproduces CPython 3.11's int and tuple hashes and hashlib's BLAKE2b: check them before trusting it.
    probes = [(0x4E2D, 0x6587), (0x1F600, 0), (-(2**63), 2**61 - 1, -1, 7), (3, -(2**62) - 5, 2**63 - 1)]
    if any(core._tuple_hash(t) != hash(t) for t in probes):
        return None
    data = "鲸帆手机 abc 😀".encode() * 20
    if any(core._digest(data[:n]) != int.from_bytes(blake2b(data[:n], digest_size=8).digest(), "little")
           for n in (0, 1, 127, 128, 129, 256, len(data))):
        return None
    return core


_core = _load_core()


def _probe_sequences(bins: int) -> list[list[int]]:
    """For each bin, a fixed pseudo-random order of bins to borrow from when it is empty.

    Shrivastava's optimal densification (ICML 2017): empty bins borrow along independent random sequences, which
    keeps the probability that two sketches agree on a bin equal to their Jaccard similarity. Every bin ends each
    sequence, so a text with at least one bigram always finds a donor.
    """
    seqs = []
    for i in range(bins):
        rng = random.Random(0x5EED + i)
        seqs.append([rng.randrange(bins) for _ in range(4 * bins)] + list(range(bins)))
    return seqs


class _Buckets:
    """A multimap from 32-bit keys (>= 2) to 32-bit post numbers: open addressing, linear probing, two arrays."""

    def __init__(self) -> None:
        self._alloc(1 << 12)

    def _alloc(self, size: int) -> None:
        self._keys = array("I", bytes(4 * size))
        self._vals = array("I", bytes(4 * size))
        self._mask = size - 1
        self._live = 0
        self._filled = 0  # live slots and tombstones

    def __len__(self) -> int:
        return self._live

    def get(self, key: int, limit: int) -> list[int]:
        """Up to ``limit`` posts filed under ``key``."""
        keys, mask = self._keys, self._mask
        i = key & mask
        out = []
        while (k := keys[i]) != _EMPTY:
            if k == key:
                out.append(self._vals[i])
                if len(out) >= limit:
                    break
            i = (i + 1) & mask
        return out

    def put(self, key: int, val: int) -> None:
        """File ``val`` under ``key``."""
        if (self._filled + 1) * 10 > (self._mask + 1) * 6:
            self._rehash()
        keys, mask = self._keys, self._mask
        i = key & mask
        while keys[i] > _TOMBSTONE:
            i = (i + 1) & mask
        if keys[i] == _EMPTY:
            self._filled += 1
        keys[i] = key
        self._vals[i] = val
        self._live += 1

    def remove(self, key: int, val: int) -> None:
        """Unfile ``val`` from ``key`` (nothing happens when it is not there)."""
        keys, vals, mask = self._keys, self._vals, self._mask
        i = key & mask
        while (k := keys[i]) != _EMPTY:
            if k == key and vals[i] == val:
                keys[i] = _TOMBSTONE
                self._live -= 1
                return
            i = (i + 1) & mask

    def _rehash(self) -> None:
        """Rebuild without tombstones at the smallest power-of-two size with a load under 0.3 (it is rebuilt at 0.6)."""
        old_keys, old_vals = self._keys, self._vals
        size = 1 << 12
        while size * 3 < self._live * 10:
            size <<= 1
        self._alloc(size)
        for k, v in zip(old_keys, old_vals, strict=True):
            if k > _TOMBSTONE:
                self.put(k, v)

    def nbytes(self) -> int:
        """Bytes held by the two arrays."""
        return self._keys.buffer_info()[1] * 8


def _check_parameters(window_seconds: float, threshold: float, bands: int, rows: int, bucket_cap: int) -> None:
    """Refuse parameters the index cannot work with (the same check for the Python code and the C core)."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    if bands < 1 or rows < 1 or bucket_cap < 1:
        raise ValueError("bands, rows and bucket_cap must be at least 1")


@dataclass(frozen=True)
class DuplicateMatch:
    """The earliest near-duplicate of a post still in the window."""

    post_id: str
    #: Jaccard similarity of the cleaned bigram sets; 1.0 for identical cleaned texts.
    similarity: float
    ts: float


class NearDuplicateIndex:
    """Find, for each new post, the earliest post within the window that says nearly the same thing.

    ``window_seconds``: how far back a duplicate is looked for, and how long a post is kept. ``threshold``: the
    Jaccard similarity of cleaned character-bigram sets from which two posts are duplicates; 0.5 keeps copies with
    a few characters edited in a 20-character post, while distinct posts, even on one topic, rarely pass 0.3.
    ``bands`` x ``rows``: the LSH layout (10 x 2 finds 99 % of pairs at similarity 0.5). ``min_chars``: shorter
    cleaned texts match only identical ones. ``bucket_cap``: most posts one bucket keeps.

    Post ids are expected to be unique; an id added again is never reported as a duplicate of itself.

    ``native``: None runs the C core when it is built and ``MONITOR_NATIVE`` is not ``0``; False runs the Python
    code; True the C core, or raises RuntimeError when it is not there. The answers are the same either way.
    """

    def __new__(cls, *args: Any, native: bool | None = None, **kwargs: Any) -> NearDuplicateIndex:
        if cls is NearDuplicateIndex and _native.choose(_core, native, "NearDuplicateIndex") is not None:
            return _NativeIndex.__new__(_NativeIndex)
        return super().__new__(cls)

    def __init__(self, window_seconds: float = 86_400.0, threshold: float = 0.5, *, bands: int = 10, rows: int = 2,
                 min_chars: int = 8, bucket_cap: int = 8, native: bool | None = None) -> None:
        _check_parameters(window_seconds, threshold, bands, rows, bucket_cap)
        self.window_seconds = float(window_seconds)
        self.threshold = float(threshold)
        self.bands = bands
        self.rows = rows
        self.min_chars = min_chars
        self.bucket_cap = bucket_cap
        self._bins = bands * rows
        self._probes = _probe_sequences(self._bins)
        self._buckets = _Buckets()
        self._exact: dict[str, list[int]] = {}  # short cleaned texts -> posts
        # post number -> (post id, ts, data). data: for a long text, one array of 16-bit halves of the bucket keys
        # it is filed under (0 = not filed) followed by its 16-bit bigram hashes; for a short text, the text, or
        # None when it was not filed.
        self._entries: dict[int, tuple[str, float, array | str | None]] = {}
        # Long texts by a digest of their cleaned characters: [post number of the filed copy, post number of its
        # earliest near-duplicate (-1: none, -2: not known), their similarity, unfiled copies since, oldest first].
        self._copies: dict[int, list[Any]] = {}
        self._first: dict[int, int] = {}  # post number of a filed copy -> its text's digest, for when it leaves
        self._seq = 0
        self._oldest = 0
        self._now = float("-inf")

    def __len__(self) -> int:
        """Number of posts held."""
        return len(self._entries)

    @property
    def now(self) -> float:
        """The newest timestamp seen so far (``-inf`` before the first)."""
        return self._now

    def add(self, post_id: str, text: str, ts: float, *, cleaned: str | None = None) -> str | None:
        """Record a post; return the id of the earliest near-duplicate still in the window, or None.

        ``cleaned``: ``textfeat.clean(text)`` when the caller has it already (the analysis stage cleans each post
        once for every stage).
        """
        match = self.add_match(post_id, text, ts, cleaned=cleaned)
        return match.post_id if match else None

    def add_match(self, post_id: str, text: str, ts: float, *, cleaned: str | None = None) -> DuplicateMatch | None:
        """Like :meth:`add`, with the similarity and timestamp of the match."""
        self.evict(ts)
        if cleaned is None:
            cleaned = clean(text)
        if meaningful_length(cleaned) < self.min_chars:
            return self._add_short(post_id, cleaned.replace(" ", ""), ts)
        # A 64-bit digest of the text stands for it (a third of the memory of the text itself; a collision between
        # two texts in a window has odds of about 1e-9 in a century of 100k-post days), fixed in every process.
        flat = int.from_bytes(blake2b(cleaned.replace(" ", "").encode(), digest_size=8).digest(), "little")
        keep = ts >= self._now - self.window_seconds  # a post already outside the window is checked, not kept
        copy = self._copies.get(flat)
        if copy is not None:
            # An exact copy of a long text in the window (reposts, cross-posts, copy-paste campaigns) gets its first
            # copy's answer without a sketch: the earliest near-duplicate of the first copy when that is still in the
            # window, else the first copy. It is recorded for the window, not filed.
            match = self._copy_match(post_id, copy)
            if match is not None:
                if keep:
                    seq = self._take_seq()
                    self._entries[seq] = (post_id, ts, None)
                    copy[3].append(seq)
                return match
        hashes, keys = self._sketch(cleaned)
        found = self._candidates(keys)
        hit = self._verify(post_id, hashes, found)
        match = None if hit is None else hit[1]
        if keep:
            seq = self._take_seq()
            if copy is not None:  # its filed copy is in the window (copies' answer unknown, or gone): now known
                copy[1], copy[2] = (-1, 1.0) if hit is None else (hit[0], hit[1].similarity)
                self._entries[seq] = (post_id, ts, None)
                copy[3].append(seq)
                return match
            self._copies[flat] = [seq, -1, 1.0, []] if hit is None else [seq, hit[0], hit[1].similarity, []]
            self._first[seq] = flat
            put, cap = self._buckets.put, self.bucket_cap
            full = False
            for band, key in enumerate(keys):
                if len(found[band]) < cap:
                    put(key, seq)
                else:
                    full = True
            if full:  # a key not filed under is stored as 0
                keys = array("I", [0 if len(f) >= cap else k for k, f in zip(keys, found, strict=True)])
            # Each 32-bit key as its low and high 16-bit halves, as its bytes give them on a little-endian machine.
            data = array("H", keys.tobytes()) if _LITTLE else array("H", [h for k in keys for h in (k & 0xFFFF,
                                                                                                    k >> 16)])
            data.extend(hashes)
            self._entries[seq] = (post_id, ts, data)
        return match

    def find(self, text: str, ts: float | None = None) -> DuplicateMatch | None:
        """The earliest near-duplicate of ``text`` in the window, without recording it (``ts`` advances the window)."""
        if ts is not None:
            self.evict(ts)
        cleaned = clean(text)
        if meaningful_length(cleaned) < self.min_chars:
            return self._best(None, self._exact.get(cleaned.replace(" ", ""), []), 1.0)
        hashes, keys = self._sketch(cleaned)
        hit = self._verify(None, hashes, self._candidates(keys))
        return None if hit is None else hit[1]

    def evict(self, now: float) -> int:
        """Advance the window to ``now`` (never backwards) and drop posts older than it; return how many went.

        Posts leave in the order they were added; one added late with an older timestamp leaves when the posts added
        before it have left, and is never reported once it is outside the window.
        """
        if now > self._now:
            self._now = now
        cutoff = self._now - self.window_seconds
        entries = self._entries
        dropped = 0
        while self._oldest != self._seq:
            seq = self._oldest
            entry = entries.get(seq)
            if entry is not None:
                if entry[1] >= cutoff:
                    break
                del entries[seq]
                data = entry[2]
                if isinstance(data, str):
                    posts = self._exact[data]
                    posts.remove(seq)
                    if not posts:
                        del self._exact[data]
                elif data is not None:
                    flat = self._first.pop(seq, None)
                    if flat is not None and (copy := self._copies.get(flat)) is not None and copy[0] == seq:
                        self._promote(flat, copy, data)
                    for band in range(self.bands):
                        key = data[2 * band] | data[2 * band + 1] << 16
                        if key:
                            self._buckets.remove(key, seq)
                dropped += 1
            self._oldest = (seq + 1) & _LOW32
        return dropped

    # -- internals ---------------------------------------------------------------------------------------------

    def _add_short(self, post_id: str, text: str, ts: float) -> DuplicateMatch | None:
        if not text:
            return None
        posts = self._exact.get(text)
        match = self._best(post_id, posts or [], 1.0)
        if ts >= self._now - self.window_seconds:
            seq = self._take_seq()
            if posts is None:
                self._exact[text] = [seq]
            elif len(posts) < self.bucket_cap:
                posts.append(seq)
            else:  # not filed: the bucket already holds the earliest copies; recorded only for the window
                self._entries[seq] = (post_id, ts, None)
                return match
            self._entries[seq] = (post_id, ts, text)
        return match

    def _take_seq(self) -> int:
        """The next post number; numbers wrap at 2**32 (a window never holds that many posts)."""
        seq = self._seq
        self._seq = (seq + 1) & _LOW32
        return seq

    def _sketch(self, cleaned: str) -> tuple[array, array]:
        """16-bit bigram hashes and the bucket keys of a cleaned text."""
        full = set(shingles(cleaned))
        desc = sorted(full, reverse=True)
        bins = self._bins
        # One-permutation MinHash: the bin from the hash, the smallest hash within each bin (later writes win).
        smallest = dict(zip(map(bins.__rmod__, desc), desc, strict=True))
        if len(smallest) < bins:  # optimal densification: an empty bin copies the first filled bin of its sequence
            # (most posts are short enough to leave a few bins empty; ``filter`` walks the sequence in C)
            filled, probes = smallest.__contains__, self._probes
            sig = [smallest[i if filled(i) else next(filter(filled, probes[i]))] for i in range(bins)]
        else:
            sig = list(map(smallest.__getitem__, range(bins)))
        r = self.rows
        # Tuple hashes of ints are the same in every process; fold to 32 bits and keep clear of _EMPTY/_TOMBSTONE.
        bands = map(hash, zip(range(self.bands), *(sig[i::r] for i in range(r)), strict=True))
        keys = array("I", map(_TWO.__or__, map(_LOW32.__and__, bands)))
        return array("H", set(map(_LOW16.__and__, full))), keys

    def _candidates(self, keys: array) -> list[list[int]]:
        get, cap = self._buckets.get, self.bucket_cap
        return [get(key, cap) for key in keys]

    def _promote(self, flat: int, copy: list[Any], data: array) -> None:
        """The filed first copy of a text leaves: its oldest unfiled copy left in the window is filed in its place
        (same sketch), so near-duplicates arriving later still find one; with none left the text is forgotten."""
        later: list[int] = copy[3]
        while later:
            seq = later.pop(0)
            entry = self._entries.get(seq)
            if entry is None:
                continue
            for band in range(self.bands):
                key = data[2 * band] | data[2 * band + 1] << 16
                if key:
                    self._buckets.put(key, seq)
            self._entries[seq] = (entry[0], entry[1], data)
            self._first[seq] = flat
            copy[0], copy[1] = seq, -2
            return
        del self._copies[flat]

    def _copy_match(self, post_id: str, copy: list[Any]) -> DuplicateMatch | None:
        """The answer for an exact copy of a filed text (``_copies`` entry), or None to look it up afresh."""
        first, prior, sim, _ = copy
        cutoff = self._now - self.window_seconds
        if prior == -2:  # a promoted copy (see evict): its earliest near-duplicate is not known
            return None
        if prior >= 0:
            entry = self._entries.get(prior)
            if entry is None or entry[1] < cutoff or entry[0] == post_id:
                return None  # the first copy's duplicate has gone: a post after it may now be the earliest
            return DuplicateMatch(entry[0], sim, entry[1])
        entry = self._entries.get(first)
        if entry is None or entry[1] < cutoff or entry[0] == post_id:
            return None
        return DuplicateMatch(entry[0], 1.0, entry[1])

    def _verify(self, post_id: str | None, hashes: array,
                found: list[list[int]]) -> tuple[int, DuplicateMatch] | None:
        seqs = {s for band in found for s in band}
        if not seqs:
            return None
        entries = self._entries
        cutoff = self._now - self.window_seconds
        mine = set(hashes)
        n = len(mine)
        # Earliest first: the first candidate that passes is the answer.
        skip = 2 * self.bands
        for seq in sorted(seqs, key=lambda s: (entries[s][1], s)):
            other_id, ts, data = entries[seq]
            if other_id == post_id or ts < cutoff or not isinstance(data, array):
                continue
            theirs = memoryview(data)[skip:]
            m = len(theirs)
            if min(n, m) < self.threshold * max(n, m):
                continue
            inter = len(mine.intersection(theirs))
            sim = inter / (n + m - inter)
            if sim >= self.threshold:
                return seq, DuplicateMatch(other_id, round(sim, 4), ts)
        return None

    def _best(self, post_id: str | None, seqs: list[int], sim: float) -> DuplicateMatch | None:
        cutoff = self._now - self.window_seconds
        live = [self._entries[s] for s in seqs]
        live = [e for e in live if e[0] != post_id and e[1] >= cutoff]
        if not live:
            return None
        first = min(live, key=lambda e: e[1])
        return DuplicateMatch(first[0], sim, first[1])


if _core is not None:
    _CoreIndex: Any = _core.Index

    class _NativeIndex(_CoreIndex, NearDuplicateIndex):
        """:class:`NearDuplicateIndex` on the C core: ``add``, ``add_match``, ``find``, ``evict``, ``len()`` and
        ``now`` are the core's; the parameters are read-only. ``_exact``, ``_copies`` and ``_first`` are copies of the
        core's state in the shapes the Python code keeps, ``_buckets`` the live (key, post number) slots (for tests)."""

        def __init__(self, window_seconds: float = 86_400.0, threshold: float = 0.5, *, bands: int = 10,
                     rows: int = 2, min_chars: int = 8, bucket_cap: int = 8, native: bool | None = None) -> None:
            _check_parameters(window_seconds, threshold, bands, rows, bucket_cap)
            self._setup(float(window_seconds), float(threshold), bands, rows, min_chars, bucket_cap,
                        _probe_sequences(bands * rows), clean, DuplicateMatch)
