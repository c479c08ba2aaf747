"""Sentiment of Chinese social-media posts: the probability that a post is negative, and a three-way label.

Backends share one interface (:class:`SentimentBackend`): ``score(texts)`` returns, for each text in input order, the
probability that it is negative, in [0, 1]. Empty or whitespace-only texts score :data:`EMPTY_SCORE` (0.5, neutral).
A backend never raises on odd input; a text it cannot read scores 0.5.

* ``weibo`` (the default) -- a logistic-regression model over character n-grams and Weibo-specific features,
  trained by ``tools/train_sentiment.py`` on labelled Weibo sets and shipped in this package as
  ``models/sentiment-v3.tsv.gz``. The model is a dict from feature to weight. With numpy installed (imported when the
  backend loads, never on import of this module), a batch's n-grams are looked up and added up at once in a numpy
  hash table, about 4 times faster than the pure-Python path used without numpy and for small batches; both give the
  same probabilities to the last bit.
* ``snownlp`` -- SnowNLP's own sentiment model (book and shopping reviews). Optional:
  ``pip install 'monitor[snownlp]'``. Imported only when this backend is asked for: the import costs about 420 MB
  and seconds of start-up.

Weibo text is understood as follows (see :func:`analyse_text`): URLs, ``@mentions``, zero-width characters and
``{%...%}`` markers are stripped; the repost chain ``//@user: ...`` is split off so that the author's own words count
fully and the quoted chain at :data:`CHAIN_WEIGHT` (when the author wrote nothing, the first quoted post counts as
theirs); ``[表情]`` codes and emoji become features of their own, plus group features for negative and positive ones;
``#话题#`` keeps its words; negators (不/没/别/非/无/未/勿) mark the next one or two words, skipping degree words
(不太好吃 -> negated 好吃); complaint language (退款, 维权, 投诉, 骗, 曝光, 12315, 律师, 起诉...) and sarcasm markers
(呵呵, 醉了, positive words next to a negative emoticon: 真是棒极了[怒]) are group features.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from operator import add
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "EMPTY_SCORE",
    "MODEL_FILE",
    "NEGATIVE_THRESHOLD",
    "POSITIVE_THRESHOLD",
    "SentimentBackend",
    "SnowNLPBackend",
    "TextFeatures",
    "WeiboBackend",
    "analyse_text",
    "backend_names",
    "clean_weibo_text",
    "get_backend",
    "label_for",
    "split_repost",
]

#: The shipped model, inside this package.
MODEL_FILE = "models/sentiment-v3.tsv.gz"
#: The score of an empty or unreadable text: neither negative nor positive.
EMPTY_SCORE = 0.5
#: ``label_for``: above this probability of negative a post is "negative". 0.5 is where the training folds'
#: negative-class F1, averaged over the sets, peaks (5-fold cross-validation; leave-one-set-out peaks at 0.45 but gains
#: only 0.001 there, and a lower cut sends more neutral posts to "negative"). Exclusive, so that an empty text (0.5) is
#: neutral.
NEGATIVE_THRESHOLD = 0.5
#: ``label_for``: below this probability of negative a post is "positive"; from it up to NEGATIVE_THRESHOLD it is
#: "neutral". The model leans negative on neutral posts (news, statements), so the neutral band lies on the positive
#: side of 0.5: a text needs clear positive evidence to be called positive.
POSITIVE_THRESHOLD = 0.3
#: Weight of the quoted repost chain relative to the author's own words (written into the model header too).
CHAIN_WEIGHT = 0.5
#: Characters longer texts are cut to (after cleaning): a 2,000-character post says what it means by then.
MAX_CHARS = 2000
#: ``WeiboBackend.score``: batches of at least this many characters are scored with numpy when it is installed
#: (same result, to the last bit; about 4 times faster on batches of Weibo posts); smaller ones in pure Python.
NUMPY_MIN_CHARS = 300
#: ... and in pieces of at most this many characters (a batch of 1,000 Weibo posts has about 45,000), so that the
#: memory a batch takes stays under some 10 MB however long its texts.
CHUNK_CHARS = 1 << 16


@runtime_checkable
class SentimentBackend(Protocol):
    """A sentiment scorer: ``score`` gives the probability that each text is negative, in input order."""

    name: str

    def score(self, texts: Sequence[str]) -> list[float]:
        """Probability of negative for each text, in [0, 1]; 0.5 for empty or unreadable texts. Never raises."""
        ...


def label_for(p: float) -> str:
    """``"negative"``, ``"neutral"`` or ``"positive"`` for a probability of negative ``p``.

    negative when ``p > NEGATIVE_THRESHOLD`` (0.5), positive when ``p < POSITIVE_THRESHOLD`` (0.3), neutral from 0.3
    to 0.5 inclusive (so an empty text, 0.5, is neutral) and for anything that is not a number.
    """
    if not isinstance(p, int | float) or math.isnan(p):
        return "neutral"
    if p > NEGATIVE_THRESHOLD:
        return "negative"
    if p < POSITIVE_THRESHOLD:
        return "positive"
    return "neutral"


# --------------------------------------------------------------------------------------------------------------------
# Weibo text: cleaning and features
# --------------------------------------------------------------------------------------------------------------------

#: Prefix of the non-n-gram features. Control characters are removed from texts, so no n-gram can start with it.
SPECIAL = "\x1f"

#: The characters ``\s`` matches.
_SPACES = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
           + "\u2028\u2029\u202f\u205f\u3000")


def _literal_branches(alternatives: Iterable[str]) -> str:
    """``a|b|...`` where every alternative starts with a literal character: ``re`` then scans a text for the first
    characters only (a tight loop in C) instead of trying the whole pattern at every position, several times faster
    on texts with few matches. The alternatives must start with different characters, or be in the order wanted."""
    return "|".join(alternatives)


#: URLs, ``{%...%}`` markers, ``#`` of topics, control and zero-width characters: replaced by a space. Applied to
#: lower-cased text; written without re.IGNORECASE (which disables the fast scan) but matching what it would: ``ſ``
#: and ``ı`` are what IGNORECASE adds to ``s`` and ``[!-~]`` in a lower-cased text.
_URL_TAIL = "[!-~\u0131\u017f]*"
_CLEAN_RE = re.compile(_literal_branches([
    f"http[sſ]?://{_URL_TAIL}", f"www\\.{_URL_TAIL}", "o网页链接", "网页链接", "\\{%", "%\\}",
    *(re.escape(c) for c in "#＃\x7f\u200b\u200c\u200d\u2060\ufeff\ufe0e\ufe0f\u3000" + "".join(map(chr, range(0x20)))),
]))
#: Full-width letters and digits: a text with any goes through NFKC. The common full-width punctuation is mapped by
#: _PUNCT (str.replace is far cheaper than NFKC on every text).
_WIDE_RE = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_PUNCT = (("，", ","), ("！", "!"), ("？", "?"), ("：", ":"), ("；", ";"), ("（", "("), ("）", ")"), ("～", "~"))
#: The start of each quoted post of a repost chain, with its user name: ``//@name:``.
_REPOST_RE = re.compile(r"//\s*@[\w\-·.]{0,30}\s*[:：]?")
#: Within a post: mentions (回复@name:), emoticon codes and runs of white space, each replaced by one space.
_SQUASH_RE = re.compile(_literal_branches([
    r"回复@[\w\-·]{1,30}[:：]?", r"@[\w\-·]{1,30}[:：]?", r"\[[^\[\]\s]{1,10}\]",
    *(re.escape(c) + r"\s*" for c in _SPACES),  # \s+
]))
_EMOTICON_RE = re.compile(r"\[([^\[\]\s]{1,10})\]")
#: Four or more of one character: 哈哈哈哈哈哈 -> 哈哈哈, !!!!!! -> !!!.
_RUN_RE = re.compile(r"(.)\1\1\1+")
_REPOST_ONLY = frozenset({"转发微博", "轉發微博", "repost", "转发", "轉發", "forward"})



def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Weibo emoticon codes ([name]) whose meaning is clearly negative or positive. Ambiguous ones ([微笑], which on Weibo is
# often passive-aggressive, [允悲], [doge], [二哈], [笑cry], [跪了]) are left to the learned per-emoticon weights.
_EMO_NEG = _words(
    "怒 怒骂 愤怒 生气 抓狂 泪 泪流满面 悲伤 伤心 失望 衰 哼 左哼哼 右哼哼 鄙视 吐 委屈 可怜 生病 感冒 晕 汗 黑线 白眼 "
    "打脸 惊恐 蜡烛 崩溃 弱 心碎 悲催 囧 摊手 费解 哭 大哭 流泪 怒吼 不高兴 撇嘴 难过 呕吐 闭嘴 困 吐血 疑问 "
    "作死 骂 怒火 nonono 拜拜 再见"
)
_EMO_POS = _words(
    "哈哈 嘻嘻 爱你 心 good 赞 鼓掌 太开心 开心 可爱 偷笑 亲亲 耶 酷 给力 威武 鲜花 加油 中国赞 憧憬 好喜欢 赞啊 "
    "笑哈哈 馋嘴 色 害羞 羞嗒嗒 抱抱 给你小心心 作揖 ok 握手 礼物 蛋糕 花心 太阳 拳头 得意地笑 爱心 顶 棒 强 胜利 "
    "干杯 星星眼 送花花 好爱哦 互粉 围观 嘘 挤眼 兔子 喵喵 熊猫 求关注 月亮 微风 音乐 话筒 ye 亲 good棒 心动 "
    "哇 鞠躬 抱拳 祈祷 许愿 感动 好棒 赞赞 爱你哟"
)
_EMOJI_NEG = frozenset("😡😠🤬😤😭😢😞😔😟😩😫😖😣💔👎🙄😒🤮🤢😱😰😨😓😥😿😾🕯😪😕☹🙁😧😦")
_EMOJI_POS = frozenset("😀😃😄😁😆😊☺😍🥰😘😗😙😚🤗👍👏🙌💪🎉🎊❤♥💕💖💗💓💞😋😎🌹💐🌸✌👌🥳🤩💯🌟✨🍻🥂")

# Word lists for group features (2 or 3 characters, looked up among the text's n-grams; longer phrases in _LONG_*).
_LEX_POS = _words(
    "好吃 喜欢 开心 快乐 感谢 谢谢 满意 推荐 加油 幸福 美好 温暖 感动 支持 期待 好看 漂亮 优秀 厉害 可爱 好评 给力 "
    "点赞 完美 舒服 好用 划算 实惠 新鲜 干净 热情 贴心 准时 及时 很快 超快 美味 好喝 祝福 希望 感恩 致敬 骄傲 自豪 "
    "平安 健康 顺利 成功 胜利 开森 好棒 太棒 棒棒 好人 温馨 靠谱 专业 值得 惊喜 耐心 周到 喜爱 爱你 哈哈 嘻嘻 赞赞 "
    "真棒 很棒 很好 好好 美丽 帅气 可口 香 赞 棒 爽 甜 nice 么么哒 棒极了 好极了 太好了 很满意 非常好 超级棒 "
    "超好吃 不错 挺好 还好 放心 安心 牛逼 666 感激 鼓励 相信 坚强 勇敢 团结 战胜 必胜 英雄 天使 暖心 治愈"
)
_LEX_NEG = _words(
    "垃圾 恶心 失望 生气 愤怒 难过 伤心 讨厌 糟糕 骗子 无语 崩溃 可怕 害怕 担心 痛苦 难受 后悔 难吃 太慢 很慢 冷了 "
    "凉了 变质 漏了 洒了 悲哀 心疼 可恶 混蛋 傻逼 妈的 气死 焦虑 恐惧 绝望 郁闷 委屈 心累 无奈 悲剧 倒霉 烦死 吐了 "
    "恶劣 过分 离谱 无耻 卑鄙 差劲 太差 最差 奇葩 弱智 脑残 有病 受够 坑爹 难以 不行 不好 没用 失败 错误 问题 麻烦 "
    "可惜 遗憾 痛心 悲伤 哭了 泪目 心酸 心寒 寒心 愤慨 气愤 恼火 烦躁 烦人 抓狂 痛恨 憎恨 恨死 鄙视 丢人 丢脸 "
    "耻辱 滚 操 艹 靠 呸 惨 烂 差 慢 贵 贵了 咸 淡 腻 少了 不够 臭 脏 坑 骗 怒 烦 慌 怕 哭 痛 累 "
    "惨了 完了 死了 疼 病了 担忧 恐慌 不安 害怕 不满 吐槽 骂 批评 谴责 指责 抗议 抵制 愤怒 心痛"
)
# Complaint language: what a customer writes when they want their money back, a regulator or a lawyer.
_LEX_COMPLAINT = _words(
    "退款 退钱 退费 维权 投诉 骗 骗子 被骗 诈骗 欺诈 曝光 律师 起诉 举报 消协 315 报警 赔偿 索赔 退货 不退 欺骗 "
    "上当 坑人 黑心 无良 敷衍 推诿 扯皮 拖延 霸王 虚假 假货 差评 追责 坑钱 骗钱 欺负 态度差 立案 仲裁 法院 "
    "不理 拒绝 不给 赔钱 退一赔 骗局 坑爹 差价 扣款 乱收 乱扣 套路 陷阱 霸凌 "
    "告你 告他 告到 退订 拉黑 避雷 踩雷 翻车 割韭菜"
)
_LONG_COMPLAINT = _words("12315 12345 消费者协会 霸王条款 虚假宣传 态度恶劣 讨说法 讨个说法 黑猫投诉 集体投诉 市场监管")
# Product and food-safety faults: what a complaint says went wrong (a group of its own, so that words such as 卫生
# or 头发, harmless elsewhere, do not water down the complaint group).
_LEX_FAULT = _words(
    "拉肚子 腹泻 食物中毒 吃坏 不卫生 卫生问题 异物 头发 虫子 苍蝇 蟑螂 发霉 过期 质量问题 故障 坏了 召回 自燃 漏电 "
    "发烫 死机 黑屏 断货 缺斤少两 以次充好 货不对板 太一般 很一般 一般般 没味道 不新鲜 "
    "拉了肚子 闹肚子 肚子疼 吃出 卫生有问题 质量有问题"
)
# Sarcasm and exasperation markers.
_LEX_SARCASM = _words(
    "呵呵 呵呵哒 真行 好棒棒 醉了 服了 无语 厉害了 真有你 高级黑 够了 我谢谢 谢谢你 真是棒 真是好 可真 太棒了 "
    "真棒啊 好样的 666 牛逼 佩服 真会 真能 绝了 好家伙 哦豁 笑死 呵 "
)
_LEXICON: dict[str, tuple[str, ...]] = {}
for _group, _members in (("POS", _LEX_POS), ("NEG", _LEX_NEG), ("COMPLAINT", _LEX_COMPLAINT | _LONG_COMPLAINT),
                         ("FAULT", _LEX_FAULT), ("SARC", _LEX_SARCASM)):
    for _word in _members:
        _LEXICON[_word] = (*_LEXICON.get(_word, ()), _group)

# Negation: a negator (not part of a word such as 不过, 特别, 非常, 无论), up to two degree or filler words, then the
# negated word's first one or two characters. A clause boundary (punctuation, space) ends the scope: \w never crosses
# it. Every alternative starts with the negator itself (the look-behinds come after it), so that ``re`` scans a text
# for the negators only.
_NEGATION_RE = re.compile(
    r"(?:不(?!过|仅|但|管|论|断|少|久|同|禁|然|得不|停|住|妨|知不觉|一定)|没有?|木有|"
    r"别(?<![特区分告级类性差个识辨离鉴派]别)(?![人的墅致])|非(?<![除是莫]非)(?!常|得|洲|法|典|遗)|"
    r"无(?!论|数|限|比|疑|关|人|线|锡|意|法)|未(?!来|免|必|知|成年)|勿|甭)"
    r"(?:太|很|是|怎么|那么|这么|够|算|再|会|能|一点|也|都|还|特别|真|被|有|像|大|那|怎|咋|多|够|要|得|想|再)?"
    r"(?:太|很|是|怎么|那么|这么|够|算|再|会|能|一点|也|都|还|特别|真|被|有|像|大|那|怎|咋|多|够|要|得|想|再)?"
    r"(\w)(\w)?"
)
_NEGATABLE_POS = _LEX_POS | _words("好 喜 爱 行 对 香 甜 鲜 热 快 准 够 值 满 帅 美 乐 爽 赞 棒 喜欢 满意 开心")
_NEGATABLE_NEG = _LEX_NEG | _words("怕 难 慌 哭 烦 累 错 怪 恨 苦 疼 痛 坏 差 丑 贵 怒 气 慢 晚 冷 担心 用担")


def _normalise(text: str) -> str:
    """Full-width to half-width, lower case, URLs, control and zero-width characters to spaces."""
    text = text[: MAX_CHARS * 2]
    if _WIDE_RE.search(text):
        text = unicodedata.normalize("NFKC", text)
    for wide, narrow in _PUNCT:
        text = text.replace(wide, narrow)
    return _CLEAN_RE.sub(" ", text.lower())


#: Between the texts of a batch in ``_normalise_batch``: a non-character, which none of the steps changes or matches,
#: and which is neither cased nor case-ignorable (so str.lower treats it as the end of a word, as the end of a text).
_TEXT_SEPARATOR = "\uffff"


def _normalise_batch(texts: list[str]) -> list[str]:
    """``[_normalise(t) for t in texts]`` in a few calls on all the texts at once."""
    limit = MAX_CHARS * 2
    texts = [t[:limit] for t in texts]
    joined = _TEXT_SEPARATOR.join(texts)
    if joined.count(_TEXT_SEPARATOR) != len(texts) - 1:  # a text with the separator in it: one at a time
        return list(map(_normalise, texts))
    if _WIDE_RE.search(joined):
        joined = _TEXT_SEPARATOR.join(
            [unicodedata.normalize("NFKC", t) if _WIDE_RE.search(t) else t for t in texts])
    for wide, narrow in _PUNCT:
        joined = joined.replace(wide, narrow)
    out = _CLEAN_RE.sub(" ", joined.lower()).split(_TEXT_SEPARATOR)
    if len(out) != len(texts):  # pragma: no cover - NFKC never makes the separator
        return list(map(_normalise, texts))
    return out


def split_repost(text: str) -> tuple[str, list[str]]:
    """Split a Weibo post into the author's own words and the quoted repost chain ``//@user: ...`` (newest first).

    The user names of the chain are removed. Nothing else is cleaned.
    """
    parts = _REPOST_RE.split(text)
    return parts[0], parts[1:]


def _squash(text: str) -> str:
    """Drop mentions and emoticon codes, shorten runs of one character to three, collapse white space."""
    text = _SQUASH_RE.sub(" ", text).strip()
    if len(text) > 3 and _RUN_RE.search(text):
        text = _RUN_RE.sub(r"\1\1\1", text)
    return text[:MAX_CHARS]


def clean_weibo_text(text: str) -> str:
    """The author's own words of a Weibo post, readable: no URL, @mention, repost chain, ``[表情]`` code or ``#``.

    When the author wrote nothing of their own (a bare repost), the first quoted post is returned instead.
    """
    own, chain = split_repost(_normalise(text or ""))
    own = _squash(own)
    if own in _REPOST_ONLY:
        own = ""
    if not own:
        for quoted in chain:
            own = _squash(quoted)
            if own:
                break
    return own


class TextFeatures:
    """What the model sees of one text: the author's text and its n-grams, the quoted chain's, and the specials."""

    __slots__ = ("chain", "chain_grams", "own", "own_grams", "specials")

    def __init__(self, own: str, chain: str, specials: list[str]) -> None:
        self.own = own
        self.chain = chain
        self.specials = specials
        self.own_grams = _grams(own) if own else []
        self.chain_grams = _grams(chain) if chain else []

    def __repr__(self) -> str:
        return f"TextFeatures(own={self.own!r}, chain={self.chain!r}, specials={self.specials!r})"


def _grams(s: str) -> list[str]:
    """Character 1-, 2- and 3-grams of ``s`` (spaces mark boundaries). ``map(add, ...)`` keeps the loop in C."""
    bigrams = list(map(add, s, s[1:]))
    return [*s, *bigrams, *map(add, bigrams, s[2:])]


def _trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, longest first, factored as a trie (fast in ``re``)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        end = "" in node
        branches = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            body = "(?:" + body + ")?" if len(branches) > 1 or len(branches[0]) > 1 else body + "?"
        return body

    return pattern(trie)


#: Groups whose words in the last sentence of a text of several get a feature of their own (L:): a review's last
#: sentence is its verdict (关东煮味道不错。一餐之后拉了肚子).
_LATE_GROUPS = ("POS", "NEG", "FAULT", "COMPLAINT")
_LEXICON_SHORT = frozenset(w for w in _LEXICON if len(w) <= 3)  # found among the text's 1-3-grams
_LEXICON_LONG_RE = re.compile(_trie_pattern(w for w in _LEXICON if len(w) > 3))
#: word -> its group features, for the author's words and for the quoted chain.
_OWN_GROUPS = {w: tuple(SPECIAL + "G:" + g for g in gs) for w, gs in _LEXICON.items()}
_CHAIN_GROUPS = {w: tuple(SPECIAL + "cG:" + g for g in gs) for w, gs in _LEXICON.items()}
_LATE_GROUPS_OF = {w: tuple(SPECIAL + "L:" + g for g in gs if g in _LATE_GROUPS) for w, gs in _LEXICON.items()}
_EMOJI_CHARS = _EMOJI_NEG | _EMOJI_POS
#: Where the listed emoji are (ranges: ``re`` tests a class of non-BMP characters one by one).
_EMOJI_RE = re.compile("[\u2600-\u27bf\U00010000-\U0010ffff]")
assert all(_EMOJI_RE.match(c) for c in _EMOJI_CHARS)
_NO_EMOJI: frozenset[str] = frozenset()
#: Any negator: most texts have none, and skip _NEGATION_RE.
_NEGATOR_RE = re.compile("[不没别非无未勿甭]")
#: Contrast words: in "卷还不错，但粥就太一般了" the clause after 但 is the verdict.
_CONTRAST_RE = re.compile("但是|但|可是|不过|然而|只是|却")
_CLAUSE_END_RE = re.compile("[。.!?！？~]")
#: The most characters of the clause after a contrast word that get features of their own.
CONTRAST_CHARS = 24
#: Praise pushed to the extreme with a word of harm (萌死了, 帅惨了, 好吃哭了, 美炸): fan talk, not a complaint.
_POS_INTENSE_RE = re.compile("(?:萌|帅|美|甜|好吃|好看|可爱|好笑|开心|笑|爽|香|暖|感动|燃)"
                             "(?:死|惨|哭|炸|爆|疯|翻|晕|化)")


def _emojis(s: str) -> frozenset[str]:
    """The listed emoji in ``s`` (cheap when there are none: one scan for the blocks they are in)."""
    if _EMOJI_RE.search(s):
        return _EMOJI_CHARS.intersection(s)
    return _NO_EMOJI


def _emoticon_groups(names: list[str], emojis: frozenset[str]) -> tuple[bool, bool]:
    """Whether the emoticon codes and emoji include clearly negative ones, and clearly positive ones."""
    neg = not _EMO_NEG.isdisjoint(names) or not _EMOJI_NEG.isdisjoint(emojis)
    pos = not _EMO_POS.isdisjoint(names) or not _EMOJI_POS.isdisjoint(emojis)
    return neg, pos


#: What ``_prepare`` finds in a text before its n-grams are looked at: (own, chain, specials so far, negative and
#: positive emoticon in the author's words, negated words or None, long lexicon words of the author's text).
_Prepared = tuple[str, str, set[str], bool, bool, set[str] | None, list[str]]


def _prepare(text: str) -> _Prepared:
    """Cleaning and every feature that does not need the n-grams (the first half of ``analyse_text``)."""
    return _prepare_normalised(_normalise(text))


def _prepare_normalised(text: str) -> _Prepared:
    """``_prepare`` of a text already through ``_normalise``."""
    if "//" in text:
        own_raw, *chain_parts = _REPOST_RE.split(text)
    else:
        own_raw, chain_parts = text, []
    own_emo = _EMOTICON_RE.findall(own_raw) if "[" in own_raw else []
    own = _squash(own_raw)
    if own in _REPOST_ONLY:
        own = ""
    if not own and not own_emo and chain_parts:
        # A bare repost: the first quoted post is what the author chose to spread; it counts as their words.
        own_raw = chain_parts[0]
        own_emo = _EMOTICON_RE.findall(own_raw) if "[" in own_raw else []
        own = _squash(own_raw)
        chain_parts = chain_parts[1:]
    specials = {SPECIAL + "E:" + name for name in own_emo} if own_emo else set()
    emojis = _emojis(own)
    emo_neg = emo_pos = False
    if own_emo or emojis:
        emo_neg, emo_pos = _emoticon_groups(own_emo, emojis)
        if emo_neg:
            specials.add(SPECIAL + "G:EMO_NEG")
        if emo_pos:
            specials.add(SPECIAL + "G:EMO_POS")

    chain = ""
    if chain_parts:
        joined = " ".join(chain_parts)
        chain = _squash(joined)
        chain_emo = _EMOTICON_RE.findall(joined) if "[" in joined else []
        emojis = _emojis(chain)
        if chain_emo or emojis:
            c_neg, c_pos = _emoticon_groups(chain_emo, emojis)
            if c_neg:
                specials.add(SPECIAL + "cG:EMO_NEG")
            if c_pos:
                specials.add(SPECIAL + "cG:EMO_POS")

    negated: set[str] | None = None
    long_hits: list[str] = []
    if own:
        contrast = _contrast_tail(own)
        if contrast:
            # The clause after the last contrast word weighs twice: its bigrams are also features of their own,
            # so the model learns that 但…太一般 outweighs the polite 还不错 before it.
            specials.add(SPECIAL + "G:BUT")
            specials.update(SPECIAL + "T:" + b for b in map(add, contrast, contrast[1:]))
        if len(own) > 3:
            long_hits = _LEXICON_LONG_RE.findall(own)
        if _POS_INTENSE_RE.search(own):
            specials.add(SPECIAL + "G:POS_INT")
        if _NEGATOR_RE.search(own):
            negated = set()
            for m in _NEGATION_RE.finditer(own):
                c1, c2 = m.group(1), m.group(2)
                specials.add(SPECIAL + "N:" + c1)
                negated.add(c1)
                word = c1
                if c2:
                    word = c1 + c2
                    specials.add(SPECIAL + "N:" + word)
                    negated.add(word)
                if word in _NEGATABLE_POS or c1 in _NEGATABLE_POS:
                    specials.add(SPECIAL + "G:NEG_POS")
                elif word in _NEGATABLE_NEG or c1 in _NEGATABLE_NEG:
                    specials.add(SPECIAL + "G:NEG_NEG")
    return own, chain, specials, emo_neg, emo_pos, negated, long_hits


def _contrast_tail(own: str) -> str:
    """The clause after the last contrast word of ``own`` (at most CONTRAST_CHARS characters), or ''."""
    if not _CONTRAST_RE.search(own):
        return ""
    *_, last = _CONTRAST_RE.finditer(own)
    tail = own[last.end():last.end() + CONTRAST_CHARS]
    end = _CLAUSE_END_RE.search(tail)
    return (tail[:end.start()] if end else tail).strip()


def _last_sentence(own: str) -> str:
    """The last sentence of a text of several ('' for one sentence)."""
    if not _CLAUSE_END_RE.search(own):
        return ""
    parts = [part for part in _CLAUSE_END_RE.split(own) if part.strip()]
    return parts[-1] if len(parts) > 1 else ""


def _finish(prepared: _Prepared, own_hits: Iterable[str], chain_hits: Iterable[str]) -> list[str]:
    """The sorted special features, given the short lexicon words found among the own and the chain n-grams."""
    own, _chain, specials, emo_neg, emo_pos, negated, long_hits = prepared
    for word in chain_hits:
        specials.update(_CHAIN_GROUPS[word])
    if own:
        hits = set(own_hits)
        if long_hits:
            hits.update(long_hits)
        if negated:
            # A negated word does not count for its own group: 不好吃 is no praise, 不担心 no worry.
            hits = {w for w in hits if w not in negated and w[:2] not in negated}
        if hits:
            if "呵呵" in hits and own.rstrip(" .!。~").endswith("呵呵"):
                # A trailing 呵呵 is the classic Weibo brush-off.
                specials.add(SPECIAL + "G:HEHE_END")
            groups = {g for word in hits for g in _OWN_GROUPS[word]}
            specials.update(groups)
            last = _last_sentence(own)
            if last:
                specials.update(g for word in hits if word in last for g in _LATE_GROUPS_OF[word])
            if emo_neg and (SPECIAL + "G:POS" in groups or emo_pos):
                # Praise words beside an angry or crying face: 真是棒极了[怒].
                specials.add(SPECIAL + "G:SARC_MIX")
        elif emo_neg and emo_pos:
            specials.add(SPECIAL + "G:SARC_MIX")
    return sorted(specials)


def analyse_text(text: str) -> TextFeatures:
    """Clean a post and compute the features the ``weibo`` model reads (see the module docstring)."""
    prepared = _prepare(text)
    f = TextFeatures(prepared[0], prepared[1], [])
    f.specials = _finish(prepared, _LEXICON_SHORT.intersection(f.own_grams) if f.own else (),
                         _LEXICON_SHORT.intersection(f.chain_grams) if f.chain else ())
    return f


# --------------------------------------------------------------------------------------------------------------------
# The weibo backend
# --------------------------------------------------------------------------------------------------------------------


#: Texts that between them touch every feature ``analyse_text`` makes (written for this purpose). Their features,
#: hashed, are recorded in the model file by the training script: a model trained on other features than the code
#: now makes (a word list or a rule changed, the model not rebuilt) is caught by a test.
FEATURE_PROBES = (
    "鲸帆手机充电发烫还自动关机，申请退款被客服拒绝了，太坑了[怒]",
    "卷还不错，但粥就太一般了。下次不点了",
    "关东煮味道不错。一餐之后拉了肚子，可见菜品卫生有问题。",
    "被萌死了哈哈[哈哈]😍",
    "真是棒极了[怒]",
    "又涨价了，呵呵",
    "不好吃，不担心，没有问题",
    "求中奖 @朋友//@小王:这家店骗钱，已经打了12315投诉[怒骂]//@楼主:集体投诉！维权群见 http://t.cn/abc",
    "转发微博//@楼主:外卖送了两个小时，汤都洒了😡",
    "#话题# 【新闻】某地发布通知 Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "",
)


def feature_fingerprint() -> str:
    """SHA-256 of the features ``analyse_text`` makes of ``FEATURE_PROBES``: which feature code a model was trained
    for."""
    import hashlib
    import json

    feats = [[f.own, f.chain, f.specials] for f in map(analyse_text, FEATURE_PROBES)]
    return hashlib.sha256(json.dumps(feats, ensure_ascii=False).encode("utf-8")).hexdigest()


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class WeiboModel:
    """The weights of the shipped model: ``logit = bias + (Σ own grams + w_c·Σ chain grams) / √n + Σ specials``.

    ``n`` is the number of own n-grams plus ``w_c`` times the number of chain n-grams (at least 1). The file is gzip'd
    text: a JSON header line, then one ``feature<TAB>weight`` line per feature, weights as integers in units of
    ``header["scale"]``.

    The sums run in the order of ``TextFeatures.own_grams`` (1-grams, 2-grams, 3-grams, left to right), so that every
    way of scoring a text (``probability``, ``scores`` with or without numpy, ``logit`` of ``analyse_text``) gives the
    same bits.
    """

    def __init__(self, header: dict[str, Any], weights: dict[str, float]) -> None:
        self.header = header
        self.bias = float(header["bias"])
        self.chain_weight = float(header.get("chain_weight", CHAIN_WEIGHT))
        self.weights = weights
        self._table: _GramTable | None = None
        self._table_tried = False

    @classmethod
    def load(cls, path: str | None = None) -> WeiboModel:
        """Load the shipped model (or the file at ``path``)."""
        if path is None:
            data = resources.files("monitor.analysis").joinpath(MODEL_FILE).read_bytes()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
        return cls.from_bytes(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> WeiboModel:
        """Parse a model file's bytes (gzip'd or plain)."""
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        text = data.decode("utf-8")
        first, _, body = text.partition("\n")
        header = json.loads(first)
        if header.get("format") != "monitor-sentiment-v1":
            raise ValueError(f"not a monitor sentiment model (format {header.get('format')!r})")
        scale = float(header["scale"])
        values: dict[int, float] = {}
        weights: dict[str, float] = {}
        for line in body.split("\n"):
            if not line:
                continue
            key, _, raw = line.rpartition("\t")
            q = int(raw)
            value = values.get(q)
            if value is None:
                value = values[q] = q * scale
            weights[key] = value
        if len(weights) != header.get("features", len(weights)):
            raise ValueError(f"model file truncated: {len(weights)} features, header says {header['features']}")
        return cls(header, weights)

    def logit(self, f: TextFeatures) -> float:
        """The model's log-odds that the text is negative."""
        get = self.weights.get
        # filter(None, ...) drops the misses (None): faster than get(g, 0.0), and the sum is the same.
        total = sum(filter(None, map(get, f.own_grams)))
        n = float(len(f.own_grams))
        if f.chain_grams:
            total += self.chain_weight * sum(filter(None, map(get, f.chain_grams)))
            n += self.chain_weight * len(f.chain_grams)
        return self.bias + total / math.sqrt(max(n, 1.0)) + sum(filter(None, map(get, f.specials)))

    def probability(self, text: str) -> float:
        """Probability that ``text`` is negative."""
        f = analyse_text(text)
        if not f.own and not f.chain and not f.specials:
            return EMPTY_SCORE
        return _sigmoid(self.logit(f))

    def table(self) -> _GramTable | None:
        """The n-gram weights as a numpy hash table (built on first use), or None without numpy."""
        if not self._table_tried:
            self._table_tried = True
            try:
                self._table = _GramTable(self.weights)
            except (ImportError, _NoTableError):
                self._table = None
        return self._table

    def scores(self, texts: Sequence[str], use_numpy: bool = True) -> list[float]:
        """Probability of negative for each of ``texts`` (strings, not empty, not only white space).

        With numpy (``use_numpy`` and importable) the n-grams of the whole batch are looked up at once; the result is
        the same, bit for bit, as ``probability`` of each text.
        """
        # Below some 300 characters a batch is quicker in pure Python (numpy costs ~0.2 ms a call).
        table = self.table() if use_numpy and sum(map(len, texts)) >= NUMPY_MIN_CHARS else None
        if table is None:
            return [self.probability(text) for text in texts]
        out: list[float] = []
        first = size = 0
        for k, length in enumerate(map(len, texts)):
            if size and size + length > CHUNK_CHARS:
                out += self._scores(table, texts[first:k])
                first, size = k, 0
            size += length
        out += self._scores(table, texts[first:])
        return out

    def _scores(self, table: _GramTable, texts: Sequence[str]) -> list[float]:
        prepared = list(map(_prepare_normalised, _normalise_batch(list(texts))))
        strings: list[str] = []
        for p in prepared:
            if p[0]:
                strings.append(p[0])
            if p[1]:
                strings.append(p[1])
        sums, hits = table.sums_and_hits(strings)
        get = self.weights.get
        cw = self.chain_weight
        bias = self.bias
        exp = math.exp
        sqrt = math.sqrt
        sarcasm = SPECIAL + "G:SARC_MIX"
        out = []
        i = 0
        for p in prepared:
            own, chain = p[0], p[1]
            own_hits = chain_hits = None
            if own:
                size = len(own)
                n = float(size if size < 2 else 3 * size - 3)  # len(_grams(own))
                total = sums[i]
                own_hits = hits.get(i)
                i += 1
            else:
                n = total = 0.0
            if chain:
                size = len(chain)
                total += cw * sums[i]
                n += cw * (size if size < 2 else 3 * size - 3)
                chain_hits = hits.get(i)
                i += 1
            if own_hits or chain_hits or p[6]:
                specials = _finish(p, own_hits or (), chain_hits or ())
            else:  # _finish without lexicon words
                found = p[2]
                if own and p[3] and p[4]:
                    found.add(sarcasm)
                specials = sorted(found) if found else []
            if not own and not chain and not specials:
                out.append(EMPTY_SCORE)
                continue
            z = bias + total / sqrt(max(n, 1.0)) + sum(filter(None, map(get, specials)))
            if z >= 0:  # _sigmoid
                out.append(1.0 / (1.0 + exp(-z)))
            else:
                e = exp(z)
                out.append(e / (1.0 + e))
        return out


#: Between the texts of a batch in ``_GramTable.sums_and_hits``: the last code point, in no key of the model.
_SEPARATOR = "\U0010ffff"


class _NoTableError(Exception):
    """The model cannot be put in a ``_GramTable``."""


class _GramTable:
    """The model's 1-3-gram weights in an open-addressing hash table of numpy arrays, for whole batches at once.

    An n-gram is keyed by its code points, 21 bits each (``a``, ``a·2²¹ + b``, ``a·2⁴² + b·2²¹ + c``); its home slot
    is the top bits of the key times a 64-bit odd constant. A slot is 16 bytes, key and weight, so that a look-up
    reads one cache line. Bit 63 of a key (never part of a code) marks the short lexicon words, which are in the table
    even without a weight. Key 0 (the character U+0000, in no key) marks an empty slot. Linear probing, at most
    ``MAX_PROBE`` slots past home: the few keys that find no room there go to a sorted overflow array, so that a batch
    is looked up in at most ``MAX_PROBE + 2`` vectorised passes. Keys go in shortest first (1-grams are the most
    frequent look-ups: they all sit at home).
    """

    MULTIPLIER = 0x9E3779B97F4A7C15
    LEX_BIT = 1 << 63
    MAX_PROBE = 3

    def __init__(self, weights: dict[str, float]) -> None:
        import numpy as np

        self.np = np
        names = list(weights)
        lengths = np.fromiter(map(len, names), dtype=np.intp, count=len(names))
        cps = self._code_points("".join(names))
        starts = np.cumsum(lengths) - lengths
        grams = np.flatnonzero((lengths >= 1) & (lengths <= 3))
        grams = grams[cps[starts[grams]] != ord(SPECIAL)]
        # Shortest first (1-grams are the most frequent look-ups), file order within a length.
        grams = np.concatenate([grams[lengths[grams] == n] for n in (1, 2, 3)])
        extra = [w for w in sorted(_LEXICON_SHORT) if w not in weights]  # lexicon words without a weight
        codes = np.concatenate((self._codes_at(cps, starts[grams], lengths[grams]), self._codes(extra)))
        values = np.concatenate((np.fromiter(weights.values(), dtype=np.float64, count=len(names))[grams],
                                 np.zeros(len(extra))))
        del names, cps
        sep = np.uint64(ord(_SEPARATOR))
        part = np.uint64((1 << 21) - 1)
        if ((codes & part == sep) | ((codes >> np.uint64(21)) & part == sep) | (codes >> np.uint64(42) == sep)).any():
            raise _NoTableError(f"a model key contains U+{ord(_SEPARATOR):X}, the batch separator")
        bits = max(10, (codes.size * 5 // 2).bit_length())  # load factor 0.2-0.4
        size = 1 << bits
        self.shift = np.uint64(64 - bits)
        self.multiplier = np.uint64(self.MULTIPLIER)
        self.mask = size - 1
        self.low = np.uint64(self.LEX_BIT - 1)
        # One row more than the table, never written: the row of every miss (key 0, weight 0.0).
        self.rows = np.zeros((size + 1, 2), dtype=np.uint64)
        key_col = self.rows[:, 0]
        weight_col = self.rows[:, 1].view(np.float64)
        slot = self._home(codes)
        pending = np.arange(codes.size)
        claim = np.full(size, codes.size, dtype=np.intp)
        for _ in range(self.MAX_PROBE + 1):
            free = np.flatnonzero(key_col[slot] == 0)
            # Of the keys that want the same free slot, the first takes it; the others probe on.
            wanted = slot[free]
            np.minimum.at(claim, wanted, free)
            placed = np.zeros(pending.size, dtype=bool)
            placed[free[claim[wanted] == free]] = True
            claim[wanted] = codes.size
            key_col[slot[placed]] = codes[pending[placed]]
            weight_col[slot[placed]] = values[pending[placed]]
            pending = pending[~placed]
            slot = (slot[~placed] + 1) & self.mask
        order = np.argsort(codes[pending])
        self.overflow = np.stack((codes[pending][order], values[pending][order].view(np.uint64)), axis=1)
        words = sorted(_LEXICON_SHORT)
        word_codes = self._codes(words)
        lexical = np.uint64(self.LEX_BIT)
        self._find(word_codes, lambda rows: rows.__setitem__((slice(None), 0), rows[:, 0] | lexical))
        self.word_of_code = dict(zip(word_codes.tolist(), words, strict=True))

    def _code_points(self, s: str) -> Any:
        """The code points of ``s`` (uint32)."""
        return self.np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=self.np.uint32)

    def _codes(self, keys: list[str]) -> Any:
        """The key of each of ``keys`` (1 to 3 characters)."""
        np = self.np
        lengths = np.fromiter(map(len, keys), dtype=np.intp, count=len(keys))
        return self._codes_at(self._code_points("".join(keys)), np.cumsum(lengths) - lengths, lengths)

    def _codes_at(self, cps: Any, starts: Any, lengths: Any) -> Any:
        """The keys of the strings of ``lengths`` (1 to 3) code points at ``starts`` in ``cps``."""
        np = self.np
        codes = cps[starts].astype(np.uint64)
        for n in (2, 3):
            at = np.flatnonzero(lengths >= n)
            codes[at] = (codes[at] << np.uint64(21)) | cps[starts[at] + n - 1]
        return codes

    def _home(self, codes: Any) -> Any:
        return ((codes * self.multiplier) >> self.shift).astype(self.np.intp)

    def _find(self, codes: Any, mark: Callable[[Any], None]) -> None:
        """Apply ``mark`` to the rows (table or overflow) that hold ``codes`` (all present)."""
        np = self.np
        slot = self._home(codes)
        for _ in range(self.MAX_PROBE + 1):
            here = (self.rows[slot, 0] & self.low) == codes
            rows = self.rows[slot[here]]
            mark(rows)
            self.rows[slot[here]] = rows
            codes, slot = codes[~here], (slot[~here] + 1) & self.mask
        at = np.searchsorted(self.overflow[:, 0] & self.low, codes)
        rows = self.overflow[at]
        mark(rows)
        self.overflow[at] = rows

    def lookup(self, codes: Any) -> Any:
        """The table row (key with the lexicon bit, weight) of each of ``codes``; a zero row for a miss."""
        np = self.np
        slot = self._home(codes)
        rows = np.take(self.rows, slot, axis=0)  # several times faster than self.rows[slot] on a 2-d array
        found = rows[:, 0] & self.low
        # A different key at home: look further (an empty home row is already the right answer, zeros).
        todo = np.flatnonzero((found != codes) & (found != 0))
        if not todo.size:
            return rows
        rows[todo] = 0
        slot = slot[todo]
        codes = codes[todo]
        for _ in range(self.MAX_PROBE):
            slot = (slot + 1) & self.mask
            row = np.take(self.rows, slot, axis=0)
            found = row[:, 0] & self.low
            hit = found == codes
            rows[todo[hit]] = row[hit]
            more = ~hit & (found != 0)
            todo, slot, codes = todo[more], slot[more], codes[more]
            if not todo.size:
                return rows
        # Every slot up to MAX_PROBE past home taken by other keys: the key, if any, is in the overflow array.
        keys = self.overflow[:, 0] & self.low
        if not keys.size:
            return rows
        at = np.minimum(np.searchsorted(keys, codes), keys.size - 1)
        hit = keys[at] == codes
        rows[todo[hit]] = self.overflow[at[hit]]
        return rows

    def sums_and_hits(self, strings: list[str]) -> tuple[list[float], dict[int, list[str]]]:
        """For each of ``strings`` (not empty): the sum of its n-gram weights, added in the order of ``_grams``, and
        the short lexicon words among its n-grams (only strings with some appear in the dict)."""
        np = self.np
        m = len(strings)
        if not m:
            return [], {}
        lengths = np.fromiter(map(len, strings), dtype=np.intp, count=m)
        # The strings one after the other, with a separator that no key contains: the n-grams across two strings
        # weigh 0 and are no lexicon word.
        cp = self._code_points(_SEPARATOR.join(strings)).astype(np.uint64)
        total = cp.size
        bi = (cp[:-1] << np.uint64(21)) | cp[1:]
        tri = (bi[:-1] << np.uint64(21)) | cp[2:]
        codes = np.concatenate((cp, bi, tri))
        rows = self.lookup(codes)
        weights = rows[:, 1].view(np.float64)

        # Each string's weights go into one column of a zero-padded matrix, row = place in the order of _grams
        # (1-grams, then 2-grams, then 3-grams); strings of similar length share a matrix; a cumulative sum down
        # the columns adds them up one after the other, as sum() does, so the result is the same to the last bit.
        # An n-gram across strings lands in its first string's column, at a row that a later n-gram kind of that
        # string overwrites (1-grams, then 2-grams, then 3-grams are written) or in the 3 spare rows at the bottom.
        grams = np.where(lengths < 2, lengths, 3 * lengths - 3)
        order = np.argsort(grams, kind="stable")
        sorted_grams = grams[order]
        size_class = np.floor(np.log2(sorted_grams) * 2).astype(np.intp)
        group_start = np.concatenate(([0], np.flatnonzero(np.diff(size_class)) + 1))
        group_end = np.append(group_start[1:], m)
        heights = sorted_grams[group_end - 1] + 3
        widths = group_end - group_start
        offsets = np.zeros(len(heights) + 1, dtype=np.intp)
        np.cumsum(heights * widths, out=offsets[1:])
        column = np.empty(m, dtype=np.intp)
        column[order] = np.repeat(offsets[:-1] - group_start, widths) + np.arange(m)
        width = np.empty(m, dtype=np.intp)
        width[order] = np.repeat(widths, widths)
        starts = np.zeros(m, dtype=np.intp)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        spans = lengths + 1  # a string and the separator after it
        # Position p of string s (starting at starts[s]): its 1-gram goes to row p - starts[s] of column s, its
        # 2-gram lengths[s] rows further down, its 3-gram lengths[s] - 1 rows further still.
        target = (np.repeat(width, spans)[:total] * np.arange(total)
                  + np.repeat(column - width * starts, spans)[:total])
        padded = np.zeros(int(offsets[-1]), dtype=np.float64)
        padded[target] = weights[:total]
        n_bi = bi.size
        target = target[:n_bi] + np.repeat(width * lengths, spans)[:n_bi]
        padded[target] = weights[total : total + n_bi]
        target = target[: tri.size] + np.repeat(width * (lengths - 1), spans)[: tri.size]
        padded[target] = weights[total + n_bi :]
        sums = np.empty(m, dtype=np.float64)
        sorted_sums = np.empty(m, dtype=np.float64)
        for a, b, h, w, off in zip(group_start.tolist(), group_end.tolist(), heights.tolist(), widths.tolist(),
                                   offsets[:-1].tolist(), strict=True):
            sorted_sums[a:b] = np.cumsum(padded[off : off + h * w].reshape(h, w), axis=0)[-1]
        sums[order] = sorted_sums

        hits: dict[int, list[str]] = {}
        at = np.flatnonzero(rows[:, 0] > self.low)
        if at.size:
            position = at - np.where(at >= total, np.where(at >= total + n_bi, total + n_bi, total), 0)
            owner = np.searchsorted(starts, position, side="right") - 1
            word_of_code = self.word_of_code
            for s, code in zip(owner.tolist(), codes[at].tolist(), strict=True):
                hits.setdefault(s, []).append(word_of_code[code])
        return sums.tolist(), hits


class WeiboBackend:
    """The default backend: the shipped Weibo model (see :class:`WeiboModel`)."""

    name = "weibo"

    def __init__(self, model: WeiboModel | None = None, use_numpy: bool = True) -> None:
        self.model = model or WeiboModel.load()
        self.use_numpy = use_numpy
        if use_numpy:
            self.model.table()  # import numpy and build the table now (~0.3 s), not on the first big batch

    def score(self, texts: Sequence[str]) -> list[float]:
        """Probability of negative for each text, in input order."""
        if not isinstance(texts, list | tuple):
            texts = list(texts)
        valid = [text for text in texts if isinstance(text, str) and text and not text.isspace()]
        if not valid:
            return [EMPTY_SCORE] * len(texts)
        unique = list(dict.fromkeys(valid))  # a text repeated in the batch (reposts) is scored once
        try:
            scores = self.model.scores(unique, self.use_numpy)
        except Exception:  # one strange text must not cost the batch its scores: score them one by one
            scores = [self._one(text) for text in unique]
        by_text = dict(zip(unique, scores, strict=True))
        return [by_text.get(text, EMPTY_SCORE) if isinstance(text, str) else EMPTY_SCORE for text in texts]

    def _one(self, text: str) -> float:
        try:
            return self.model.probability(text)
        except Exception:  # a backend never raises on a strange text: it has no opinion on it
            return EMPTY_SCORE


class SnowNLPBackend:
    """SnowNLP's sentiment model (trained on book and shopping reviews), for comparison. Needs ``monitor[snownlp]``."""

    name = "snownlp"

    def __init__(self) -> None:
        try:
            from snownlp import SnowNLP
        except ImportError as exc:
            raise ValueError("the snownlp backend needs the snownlp package: pip install 'monitor[snownlp]'") from exc
        self._snownlp: Callable[[str], Any] = SnowNLP

    def score(self, texts: Sequence[str]) -> list[float]:
        """1 - SnowNLP(text).sentiments for each text; 0.5 for empty texts (SnowNLP divides by zero on them)."""
        out = []
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                out.append(EMPTY_SCORE)
                continue
            try:
                out.append(min(1.0, max(0.0, 1.0 - float(self._snownlp(text).sentiments))))
            except Exception:  # ZeroDivisionError on texts with no word it knows, among others
                out.append(EMPTY_SCORE)
        return out


_BACKENDS: dict[str, Callable[[], SentimentBackend]] = {"weibo": WeiboBackend, "snownlp": SnowNLPBackend}
_LOADED: dict[str, SentimentBackend] = {}
_LOCK = threading.Lock()


def backend_names() -> list[str]:
    """The names ``get_backend`` accepts, the default first."""
    return list(_BACKENDS)


def get_backend(name: str = "weibo") -> SentimentBackend:
    """The backend called ``name``, loaded once per process and then cached.

    Raises ValueError for an unknown name (the message lists the known ones) or a backend whose package is missing.
    """
    backend = _LOADED.get(name)
    if backend is not None:
        return backend
    factory = _BACKENDS.get(name)
    if factory is None:
        raise ValueError(f"unknown sentiment backend {name!r}; choose one of: {', '.join(_BACKENDS)}")
    with _LOCK:
        backend = _LOADED.get(name)
        if backend is None:
            backend = _LOADED[name] = factory()
    return backend
