"""Reposts in the analysis pipeline: a repost belongs with the post it spreads, and spreading a clear complaint
counts for a surge unless the reposter takes a positive line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.analysis.pipeline import Analyzer
from monitor.normalize import Post

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
COMPLAINT = "披萨太油了，还发现一根头发在上面，客服还不给退款，气死了"
# What reposters in a lottery cascade write: about something else entirely, and not positive about the pizza.
# Clearly negative alone (about 0.76), but only borderline once chatter is written in front of it.
MILD = "披萨太油了，还发现一根头发在上面。"
CHATTER = ["今年运气怎么样 @小明 @小红", "考虑下？@阿强", "@老王 @老李", "这个可以有", "明天还要上班", "路过看看",
           "在地铁上刷到的", "大家怎么看", "周末见 @小张", "又到周一了"]
CHEERS = ["支持支持！太棒了[威武][給力]", "好开心，转发求好运[哈哈]", "真棒，点赞！", "喜欢，支持一下[鼓掌]"]


def post(i: int, text: str, author: str, minutes: float) -> Post:
    at = T0 + timedelta(minutes=minutes)
    return Post(source="weibo", native_id=str(i), text=text, fetched_at=at, published_at=at, author=author)


def test_reposts_join_the_topic_of_the_post_they_spread() -> None:
    analyzer = Analyzer()
    posts = [post(0, COMPLAINT, "op", 0)]
    posts += [post(i, f"{CHATTER[i % len(CHATTER)]}//@op:{COMPLAINT}", f"u{i}", i) for i in range(1, 21)]
    notes, _ = analyzer.process(posts)
    topics = {n.uid: n.topic for n in notes}
    assert len({topics[p.uid] for p in posts}) == 1, "every repost is in the original's topic"


def test_spreading_a_complaint_counts_unless_the_reposter_is_positive() -> None:
    chatter = [post(0, MILD, "op", 0)]
    chatter += [post(i, f"{CHATTER[i % len(CHATTER)]}//@op:{MILD}", f"u{i}", i) for i in range(1, 21)]
    _, signals = Analyzer().process(chatter)
    topic = [s for s in signals if s.key.startswith("topic:")]
    assert topic, "neutral reposts of a clear complaint make a surge"
    assert max(s.negatives for s in topic) > 12, "the reposts count, not only those scoring high"

    cheers = [post(0, "今天的披萨真好吃，推荐！", "op", 0)]
    cheers += [post(i, f"{CHEERS[i % len(CHEERS)]}//@op:今天的披萨真好吃，推荐！", f"u{i}", i) for i in range(1, 21)]
    _, signals = Analyzer().process(cheers)
    assert signals == []


def test_every_repost_and_copy_is_traced_back_to_the_post_it_spreads() -> None:
    analyzer = Analyzer()
    posts = [post(0, COMPLAINT, "op", 0), post(1, "今天天气不错，出去走走，心情很好", "x", 0.5)]
    posts += [post(i, f"{CHATTER[i % len(CHATTER)]}//@op:{COMPLAINT}", f"u{i}", i) for i in range(2, 12)]
    posts.append(post(20, COMPLAINT + "！", "copier", 15))  # a copy of the original, word for word but the mark
    analyzer.process(posts)
    assert analyzer.origin_of("weibo:0") == "weibo:0" and analyzer.origin_of("weibo:1") == "weibo:1"
    assert {analyzer.origin_of(f"weibo:{i}") for i in (*range(2, 12), 20)} == {"weibo:0"}
    # Reposts of a repost still go back to the first post (the chain's last part is the original).
    later = [post(30, f"同感//@u2:{CHATTER[2]}//@op:{COMPLAINT}", "v", 20)]
    analyzer.process(later)
    assert analyzer.origin_of("weibo:30") == "weibo:0"
    assert analyzer.origin_of("weibo:unknown") == "weibo:unknown"


def test_repeated_texts_are_scored_once_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cascade repeats its texts exactly: each distinct text reaches the sentiment backend once while it is kept,
    and every post gets the score the backend gives it alone; the kept scores stay bounded."""
    from monitor.analysis import pipeline

    monkeypatch.setattr(pipeline, "_SCORES_KEPT", 8)
    analyzer = Analyzer()
    backend = analyzer.sentiment
    asked: list[str] = []
    real = backend.score

    def counting(texts: list[str]) -> list[float]:
        asked.extend(texts)
        return real(texts)

    monkeypatch.setattr(backend, "score", counting)
    texts = [COMPLAINT, MILD, *CHEERS, *CHATTER]
    stream = [texts[(i * 7) % 4] if i % 3 else texts[i % len(texts)] for i in range(60)]
    notes, _ = analyzer.process([post(i, text, f"u{i}", i) for i, text in enumerate(stream)])
    alone = {text: round(real([text])[0], 4) for text in set(stream)}
    assert [n.negative for n in notes] == [alone[t] for t in stream]
    assert len(asked) == len(set(asked))  # one batch: each distinct text scored once
    assert len(analyzer._kept_scores) <= 8
    before = len(asked)
    analyzer.process([post(100 + i, COMPLAINT, f"v{i}", 90 + i) for i in range(5)])
    assert len(asked) - before <= 1  # still kept (it was among the latest texts) or scored once again
