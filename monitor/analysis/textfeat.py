"""Text features for Chinese Weibo and forum posts, shared by near-duplicate detection, clustering and categories.

Everything here is a pure function of the text. No word segmenter: jieba takes about a second to import and load its
dictionary, and character bigrams of CJK runs serve clustering and duplicate detection as well on short posts.

* :func:`clean` keeps what the author wrote: a ``//@user:`` repost chain is cut off (its content is kept only when the
  author added nothing of substance, as in a bare 转发微博), and URLs, ``[表情]`` codes, ``{%…%}`` card markers,
  punctuation, emoji and invisible characters go; ``#话题#`` markers lose their ``#`` but keep their words; text is
  folded to half-width (NFKC) and lower case. Runs of word characters are separated by single spaces.
* :func:`tokens` turns text into features: character bigrams of each CJK run and whole latin/number words, minus a
  small stop list of function words.
* :func:`shingles` gives the integer character-bigram codes of the cleaned text with spaces removed, so punctuation
  edits do not change them; :func:`meaningful_length` counts the characters they come from.

Throughput on one core (``python bench/topics.py`` prints it): ``tokens(text)`` handles about 50k posts/s of 40
characters and 25-35k/s of 80 (the mean Weibo post); :func:`clean` alone about 70k/s of 80 characters.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from itertools import filterfalse, pairwise, repeat
from operator import add, lshift, or_

__all__ = [
    "COMMON_WORDS",
    "FILLER_PHRASES",
    "FUNCTION_CHARS",
    "LATIN_FLAG",
    "SHORT_OWN_WORDS",
    "STOP_CHARS",
    "STOP_WORDS",
    "TAG_FLAG",
    "clean",
    "hashtags",
    "meaningful_length",
    "own_words",
    "shingles",
    "split_repost",
    "term_code",
    "token_codes",
    "tokens",
]

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A repost chain link: //@name: (the colon may be full-width; NFKC has not run yet when this is applied).
_CHAIN = re.compile(r"//\s*[@＠]")
_CHAIN_NAME = re.compile(r"[^\s:：]{1,30}[:：]")
_URL = re.compile(r"(?:https?://|www\.)[\x21-\x7e]+|\bt\.cn/[0-9A-Za-z]+|O?网页链接", re.I)
# Weibo emoticons are short names in ASCII brackets: [允悲] [doge] [小黄人无奈]. Full-width ［…］ is ordinary text.
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,8}\]")
_CARD = re.compile(r"\{%|%\}")
_NONWORD = re.compile(r"[\W_]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
# Characters NFKC changes into different word characters: full-width letters and digits, half-width katakana and
# hangul, circled and parenthesised numbers and letters, Kangxi radicals, squared CJK, compatibility ideographs,
# ligatures, mathematical letters. Full-width punctuation is left alone: it becomes a space like ASCII punctuation.
# Running NFKC only on texts that hold one of these is 10x faster than on every text.
_COMPAT = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff61-\uffdc\u2150-\u218f\u2460-\u24ff"
                     "\u2e80-\u2fdf\u3200-\u33ff\uf900-\ufaff\ufb00-\ufb4f\U0001d400-\U0001d7ff\u00aa-\u00be]")


def _words(text: str) -> list[str]:
    return text.split()


#: A repost whose own words are only these (after cleaning) adds nothing: the chain's content is used instead.
FILLER_PHRASES: frozenset[str] = frozenset({
    "", "转发微博", "转发", "转", "轉發微博", "轉發", "repost", "rt", "转发一下", "转需", "马", "马克", "mark", "回复",
})
#: Own words shorter than this (in word characters) are a comment on the repost chain, which is kept after them.
SHORT_OWN_WORDS = 8
#: Characters that are function words almost wherever they occur: bigrams containing them are dropped.
STOP_CHARS: frozenset[str] = frozenset("的了吗呢啊呀哦嘛么哟呃吖噢")
#: Function-word bigrams, pronouns, filler and Weibo boilerplate, dropped from :func:`tokens`.
STOP_WORDS: frozenset[str] = frozenset(_words("""
我们 你们 他们 她们 它们 咱们 大家 自己 这个 那个 这些 那些 这样 那样 这种 那种 这是 那是 就是
还是 不是 也是 都是 但是 可是 而且 因为 所以 如果 虽然 然后 而是 或者 还有 只是 不过 只有 已经
一个 一下 一些 一样 一直 一起 一定 一次 没有 有没 可以 不能 能够 需要 应该 觉得 知道 感觉 现在
时候 今天 真的 其实 还要 这里 那里 哪里 怎样 为啥 为何 有点 有些 非常 特别 比较 太多 很多 不要
不会 不用 就要 就会 才是 还在 也有 都有 这边 那边 之后 之前 以后 以前 这次 那次 他的 我的 你的
回复 转发 微博 哈哈 嘿嘿 呵呵 嘻嘻 全文 展开 收起 链接 网页 视频 图片 秒拍 拍视 我是 你是 他是
她是 是我 是你 是他 我就 我也 我都 我在 你在 在这 在那 不知 不到 不了 不得 得到 这么 那么 什么
怎么 多么 要么 the a an to of and or is are was be in on at for
it this that with as by from i you he she we they my your
http https www com cn
"""))


#: Everyday words that say nothing about what a post is about (time, feelings, family, daily life, Weibo actions),
#: as bigrams. They stay in :func:`tokens`; topic clustering gives them a small weight.
COMMON_WORDS: frozenset[str] = frozenset(_words("""
时间 生活 喜欢 希望 感觉 朋友 开心 快乐 幸福 努力 世界 梦想 一起 明天 昨天 晚上 早上 中午 下午
以后 一天 每天 可能 终于 一点 好像 看到 看看 发现 想要 认为 记得 忘记 相信 期待 等待 谢谢 感谢
真是 为什 别人 人家 东西 事情 问题 地方 机会 方式 方法 结果 原因 意思 样子 心情 心里 身体 眼睛
声音 故事 人生 青春 回忆 未来 过去 感情 爱情 孩子 妈妈 爸爸 家人 同学 女生 男生 女人 男人 小时
时光 岁月 日子 周末 今年 去年 明年 最近 刚刚 马上 突然 好久 很久 永远 总是 还有 真正 重要 简单
美好 美丽 漂亮 可爱 温柔 舒服 难过 伤心 生气 害怕 担心 无聊 辛苦 加油 晚安 早安 好看 好听 好玩
开始 结束 继续 出来 起来 回来 回家 出去 上班 下班 工作 学习 睡觉 吃饭 分享 评论 点赞 关注 一切
所有 很好 太好 不好 好好 好的 那天 今晚 一年 两个 几个 第一 第二 之间 中国 这一 一位 一种 那些
大概 至少 或许 也许 居然 竟然 果然 当然 虽然 不管 只要 还会 必须 一般 其他 别的 身边 心中 心动
爱你 想你 我爱 想要 不想 不能 不会 能不 会不 要不 是不 好不 对不
"""))

#: Pronouns, auxiliaries and adverbs that glue onto any word: a bigram holding one (我不, 就好, 是这) is mostly a
#: seam between two words. Topic clustering gives such bigrams a small weight.
FUNCTION_CHARS: frozenset[str] = frozenset("我你他她它们咱是也都就很又还在有这那和与及或被把给让对将会要说去来到着过得地")  # noqa: E501


def _cjk_class_without(chars: frozenset[str]) -> str:
    """A regex character class body for CJK ideographs minus ``chars``."""
    out = []
    for lo, hi in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)):
        start = lo
        for cp in sorted(ord(c) for c in chars if lo <= ord(c) <= hi):
            if cp > start:
                out.append(f"{chr(start)}-{chr(cp - 1)}")
            start = cp + 1
        if start <= hi:
            out.append(f"{chr(start)}-{chr(hi)}")
    return "".join(out)


# Runs of CJK (stop characters split them) or of other word characters.
_RUNS = re.compile(f"[{_cjk_class_without(STOP_CHARS)}]+|[^\\W_{_CJK}]+")


def split_repost(text: str) -> tuple[str, list[str]]:
    """The author's own words and the texts of the ``//@user:`` chain links after them, in chain order.

    ``"好//@甲:说得对//@乙:原文"`` gives ``("好", ["说得对", "原文"])``. A link without a ``name:`` keeps its whole
    text. Nothing else is changed.
    """
    parts = _CHAIN.split(text)
    own = parts[0]
    chain = []
    for part in parts[1:]:
        m = _CHAIN_NAME.match(part)
        chain.append(part[m.end():] if m else part)
    return own, chain


def _scrub(text: str) -> str:
    if "[" in text:
        text = _EMOTICON.sub(" ", text)
    if _COMPAT.search(text):
        text = unicodedata.normalize("NFKC", text)
    if "http" in text or "www." in text or "t.cn" in text or "网页链接" in text:
        text = _URL.sub(" ", text)
    if "{%" in text:
        text = _CARD.sub(" ", text)
    return _NONWORD.sub(" ", text.lower()).strip()


def _is_filler(cleaned: str) -> bool:
    return cleaned.replace(" ", "") in FILLER_PHRASES or meaningful_length(cleaned) < 2


def own_words(text: str) -> str:
    """The cleaned words the author wrote, without any repost chain (possibly empty)."""
    own, _ = split_repost(text) if "//" in text else (text, [])
    return _scrub(own)


def clean(text: str) -> str:
    """Normalised text of what a post says: the author's words, and the reposted words when the author added little.

    A repost chain is cut off when the author wrote at least :data:`SHORT_OWN_WORDS` word characters. A shorter
    comment (说得对) is followed by the first link of the chain with words of substance; a filler (转发微博, a lone
    emoticon, nothing) is replaced by it. Then URLs, ``[表情]`` codes and card markers
    are removed, the text is folded to half-width and lower case, and every run of punctuation, emoji or space becomes
    one space. ``#话题#`` keeps its words.
    """
    if not text:
        return ""
    if "//" not in text:
        return _scrub(text)
    own, chain = split_repost(text)
    cleaned = _scrub(own)
    if not chain or meaningful_length(cleaned) >= SHORT_OWN_WORDS:
        return cleaned
    filler = _is_filler(cleaned)
    for link in chain:
        linked = _scrub(link)
        if not _is_filler(linked):
            return linked if filler else f"{cleaned} {linked}"
    return cleaned


def hashtags(text: str) -> list[str]:
    """The ``#话题#`` tags of a raw text, cleaned (``#小米8 发布#`` gives ``小米8 发布``), in order, without repeats."""
    if "#" not in text and "＃" not in text:
        return []
    found: list[str] = []
    norm = unicodedata.normalize("NFKC", text)
    for raw in re.findall(r"#([^#\n]{1,40})#", norm):
        tag = _NONWORD.sub(" ", raw.lower()).strip()
        if tag and tag not in found:
            found.append(tag)
    return found


def tokens(text: str, *, cleaned: bool = False) -> list[str]:
    """Feature tokens of a text, in order of occurrence, repeats kept.

    CJK runs give their character bigrams, other runs of letters and digits give the whole lower-cased word; words of
    :data:`STOP_WORDS`, bigrams with a character of :data:`STOP_CHARS` and one-character runs (mostly the particle
    or pronoun left between punctuation and a stop character) are dropped. ``cleaned=True`` says ``text`` is already the
    output of :func:`clean`.
    """
    if not cleaned:
        text = clean(text)
    out: list[str] = []
    for run in _RUNS.findall(text):
        if len(run) > 1:
            if _CJK_CHAR.match(run):
                out += map(add, run, run[1:])
            else:
                out.append(run)
    return list(filterfalse(STOP_WORDS.__contains__, out))


#: Flag bits of :func:`term_code` for a latin/number word and for a ``#话题#`` tag (CJK bigrams stay below both).
LATIN_FLAG = 1 << 62
TAG_FLAG = 1 << 61


def term_code(term: str) -> int:
    """An integer for a term: a CJK bigram ``ab`` is ``ord(a) << 21 | ord(b)``; another word, and a tag written
    ``#tag``, the CRC-32 of its UTF-8 with :data:`LATIN_FLAG` (:data:`TAG_FLAG` for a tag)."""
    if term[0] == "#":
        return TAG_FLAG | zlib.crc32(term.encode())
    if len(term) == 2 and term[0] >= "\u3400":
        return ord(term[0]) << 21 | ord(term[1])
    return LATIN_FLAG | zlib.crc32(term.encode())


_STOP_CODES = frozenset(map(term_code, STOP_WORDS))


def token_codes(cleaned: str) -> dict[int, str | None]:
    """The distinct :func:`tokens` of cleaned text as :func:`term_code` integers, in order of first occurrence.

    A latin word maps to its text (labels need it back), a CJK bigram to None: its code holds its characters. Same
    result as coding ``tokens(cleaned, cleaned=True)``, about three times faster, because CJK bigram codes are built
    from the code points without making a string per bigram (most of a post's terms are bigrams).
    """
    out: dict[int, str | None] = {}
    for run in _RUNS.findall(cleaned):
        if len(run) > 1:
            if _CJK_CHAR.match(run):
                points = list(map(ord, run))
                out.update(dict.fromkeys(map(or_, map(lshift, points, repeat(21)), points[1:])))
            elif run not in STOP_WORDS:
                out.setdefault(term_code(run), run)
    for code in _STOP_CODES.intersection(out):
        del out[code]
    return out


def shingles(cleaned: str) -> list[int]:
    """Hashes of the character bigrams of cleaned text with its spaces removed, in order, repeats kept.

    Removing spaces makes them blind to punctuation and emoji edits. The hash of a bigram is the hash of its pair of
    code points, which Python computes the same way in every process (int and tuple hashes are not salted). A text of
    one character gives one hash, an empty text none.
    """
    codes = list(map(ord, cleaned.replace(" ", "")))
    if len(codes) < 2:
        return [hash((c, 0)) for c in codes]
    return list(map(hash, pairwise(codes)))


def meaningful_length(cleaned: str) -> int:
    """Number of word characters (CJK, letters, digits) in cleaned text."""
    return len(cleaned) - cleaned.count(" ")
