"""Complaint categories for negative posts: what the complaint is about.

Four categories and ``other``:

======================== ========== ===========================================================================
name                     display    what it covers
======================== ========== ===========================================================================
``product_quality``      产品质量   the goods themselves: defects, breakdowns, leaks, overheating, smell, spoiled
                                    or expired food, bad taste, foreign objects, small
                                    portions, poor workmanship
``service_experience``   服务体验   how people and processes treat the customer: support, attitude, ignoring,
                                    buck-passing, slow delivery, couriers and riders,
                                    unanswered calls
``contract_performance`` 合同履约   the deal not kept: refunds, returns, shipping, missing or wrong items, charges,
                                    auto-renewal, deposits, promises and instructions not honoured
``ethics_compliance``    道德合规   deception, false advertising, fakes, data leaks and privacy, discrimination,
                                    unfair terms, fraud, illegal practice
``other``                其他       a negative post with none of the above
======================== ========== ===========================================================================

Method: a weighted keyword lexicon, matched leftmost-longest on text folded to half-width lower case (so 不退款
wins over 退款 where both start). A keyword preceded by a negator (没, 没有, 不, 无, 未, 并不) does not count unless it
starts with one itself (不退, 没发货) or belongs to a category of things owed (合同履约: 没有退款 is the complaint):
没有异味 is not a smell complaint, but 这不是欺骗吗 (a rhetorical question) is a deception one. Each match adds its
weight to its category, ×1.5 in the first clause (a complaint usually leads with its main issue). The best category
wins when its score reaches ``min_score``; ties go to the category matched first. Extra categories are plain keyword
lists (weight 2 each) passed to :class:`CategoryClassifier`. Pure and fast: one regular-expression pass per text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CATEGORIES",
    "DEFAULT_KEYWORDS",
    "DISPLAY_NAMES",
    "EXTRA_WEIGHT",
    "NEUTRAL_WORDS",
    "OTHER",
    "CategoryClassifier",
    "CategoryResult",
    "classify",
]

OTHER = "other"
#: Weight of each keyword of an extra category given as a plain list: as strong as a specific built-in keyword, so a
#: category someone configured on purpose is not outvoted by generic words (电话, 物流) of the built-in ones.
EXTRA_WEIGHT = 2.0
#: The built-in categories, in tie-break order.
CATEGORIES = ("product_quality", "service_experience", "contract_performance", "ethics_compliance")
#: Chinese display names.
DISPLAY_NAMES: dict[str, str] = {
    "product_quality": "产品质量",
    "service_experience": "服务体验",
    "contract_performance": "合同履约",
    "ethics_compliance": "道德合规",
    OTHER: "其他",
}


def _lexicon(spec: str) -> dict[str, float]:
    """``"3: 违约 违约金 | 2: 退款"`` -> {keyword: weight}."""
    out: dict[str, float] = {}
    for group in spec.split("|"):
        weight, _, words = group.partition(":")
        for word in words.split():
            out[word] = float(weight)
    return out


#: Built-in keywords and weights. General complaint vocabulary (goods, food delivery, telecom, apps, finance).
DEFAULT_KEYWORDS: dict[str, dict[str, float]] = {
    "product_quality": _lexicon("""
        2.5: 质量问题 质量差 质量太差 食物中毒 吃坏肚子 拉肚子 上吐下泻 变质 发霉 过期 异物 虫子 苍蝇 蟑螂 头发
             死机 闪退
             黑屏 自燃 起火 爆炸 次品 残次品 劣质 做工粗糙 充不进电 漏水 漏油 异味 异响 |
        2: 故障 坏了 坏掉 损坏 破损 发热 发烫 过热 卡顿 断电 馊 发臭 酸了 难吃 难喝 难以下咽 恶心 没熟 夹生 生的 缩水
           掉色 起球 开线 开裂 裂了 划痕 瑕疵 不卫生 偷工减料 洒了 撒了 漏了 挤烂 压扁 压坏 变形 耗电 信号差 没信号 |
        1.5: 质量 太咸 咸死 齁 太淡 没味 没有味道 油腻 太油 太甜 太辣 太硬 太软 硬邦邦 糊了 焦了 一坨 腥 膻 凉了
             凉的 冷了
             好凉 量少 份量少 分量少 量太少 太少 少得可怜 肉少 菜少 饭少 料少 馅少 口感差 味道差 臭 脏 噪音 续航
             电池 做工
             太一般 很一般 做的一般 做得一般 味道一般 菜品一般 肥肉 |
        1: 口感 味道 咸 淡 硬 凉 粘 小 很少 一般般
    """) | {f"{neg}{adj}": 2.0 for neg in ("不", "不太", "不大", "不够", "不怎么", "不是很", "不是太", "没那么", "不如")
           for adj in ("好吃", "好喝", "新鲜", "熟", "热", "正宗", "干净", "卫生", "好用", "耐用", "结实", "清楚")},
    "service_experience": _lexicon("""
        3: 态度差 态度恶劣 态度不好 服务差 服务太差 服务态度 爱答不理 推诿 踢皮球 推卸责任 配送慢 送餐慢 送得慢
           送的慢 才送到
           投诉无门 没人管 |
        2.5: 客服 态度 不理 不理人 没人理 推卸 敷衍 不耐烦 骂人 辱骂 超时 迟到 太慢 好慢 很慢 特别慢 慢死 等了好久
             等太久
             不接电话 无人接听 挂电话 挂了电话 不回复 没有回复 没人回复 售后 不处理 没有处理 没处理 |
        2: 慢 晚了 才到 等了 催单 催了 骑手 送餐员 配送员 快递员 外卖员 送货员 服务员 店员 下楼 上楼 送错地方 送错地址
           找错 排队 效率 速度 时间太长 时间长 太久 很久 好久 半天 |
        1.5: 小时 小哥 电话 服务 处理 回复 |
        0.8: 分钟 配送 送餐 送货 物流 快递 商家 老板
    """),
    "contract_performance": _lexicon("""
        3: 不退款 不给退款 拒绝退款 不退钱 不退押金 违约 违约金 乱扣费 自动续费 不发货 没发货 未发货 延迟发货
           不兑现 没有兑现
           不能提现 不保修 漏送 少送 少给 送错 发错 给错 拿错 做错 |
        2.5: 退款 退钱 不退 退货 扣费 扣款 扣钱 多扣 押金 多收 乱收费 被取消 取消订单 没送 没有送 没给 没有给
             忘了放 不符
             理赔 退订 解约 补送 |
        2: 发货 换货 合同 续费 定金 订金 提现 到账 赔偿 保修 三包 发票 备注 承诺 加价 另收 单收费 收费 说了不要 特意 |
        1.5: 少了 少一 缺 漏 餐具 筷子 勺子 吸管 纸巾 优惠券 红包 满减 积分 会员 订单 要求 价格 退 |
        1: 说好的
    """),
    "ethics_compliance": _lexicon("""
        3: 欺骗 诈骗 欺诈 虚假宣传 假货 假冒 三无 泄露 泄漏 隐私 歧视 霸王条款 违法 造假 伪造 篡改 杀熟 大数据杀熟
           强买强卖
           欺骗消费者 货不对板 与描述不符 图片不符 与图片不符 实物不符 刷单 刷好评 好评返现 地沟油 侵权 |
        2.5: 骗子 骗人 虚假 非法 违规 不诚实 误导 夸大 捆绑 黑心 无良 无证 个人信息 骚扰 威胁 垄断 |
        2: 骗 套路 坑人 假的 强制 忽悠
    """),
}

#: Words that contain a keyword but say something else (凉菜 is a dish, 速度快 is praise): they are matched so that
#: the keyword inside them is not, and count for nothing.
NEUTRAL_WORDS: frozenset[str] = frozenset(_lexicon("""0:
凉菜 凉皮 凉面 凉拌 凉粉 小时候 小菜 小吃 一般来说 速度快 送餐快 送得快 送的快 配送快 很快 挺快 蛮快 准时 及时 按时
态度好 态度很好 服务好 服务很好 质量好 质量很好 味道好 味道很好 味道不错 口感好 口感不错 客服很好 客服很耐心
质量挺好 质量不错 质量还行 质量还可以 味道还行 味道还可以 味道可以 服务不错 态度不错
"""))
_NEGATORS = ("没有", "并不", "不是", "没", "不", "无", "未")
_NEGATOR_CHARS = frozenset("没不无未")
_CLAUSE = re.compile(r"[，。！？；,.!?;\n~～]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class CategoryResult:
    """The category of a complaint, with the evidence."""

    #: Winning category (``other`` when nothing matched well enough).
    category: str
    #: Score of every category (``other`` excluded), highest first.
    scores: dict[str, float]
    #: Keywords matched per category, in order of appearance (negated ones left out).
    matched: dict[str, list[str]] = field(default_factory=dict)
    #: Chinese display name of ``category``.
    display_name: str = ""


class CategoryClassifier:
    """Keyword classifier of complaint categories.

    ``extra``: more categories, name -> keywords (each weighing :data:`EXTRA_WEIGHT`), or name -> {keyword: weight};
    a name that is a built-in category adds keywords to it. ``display_names``: Chinese names of the extra
    categories. ``builtin``: False keeps only the extra categories. ``min_score``: the score the best category
    needs, else ``other``.
    ``affirmed``: categories whose keywords name what the customer is owed (退款, 发票, 餐具), so that a negator
    before them (没有退款) is the complaint itself and does not cancel the match.
    """

    def __init__(self, extra: Mapping[str, Iterable[str] | Mapping[str, float]] | None = None, *,
                 display_names: Mapping[str, str] | None = None, builtin: bool = True,
                 min_score: float = 1.5, affirmed: Iterable[str] = ("contract_performance",)) -> None:
        lexicon: dict[str, dict[str, float]] = {}
        if builtin:
            lexicon = {cat: dict(words) for cat, words in DEFAULT_KEYWORDS.items()}
        for name, words in (extra or {}).items():
            if name == OTHER:
                raise ValueError(f"{OTHER!r} is the fallback category and takes no keywords")
            pairs = words.items() if isinstance(words, Mapping) else ((w, EXTRA_WEIGHT) for w in words)
            target = lexicon.setdefault(name, {})
            for word, weight in pairs:
                key = _fold(str(word)).strip()
                if not key:
                    raise ValueError(f"category {name!r} has an empty keyword")
                target[key] = float(weight)
        if not lexicon:
            raise ValueError("no categories: give extra categories or keep the built-in ones")
        self.categories: tuple[str, ...] = tuple(lexicon)
        self.display_names: dict[str, str] = {**DISPLAY_NAMES, **(display_names or {})}
        self.min_score = min_score
        self._affirmed = frozenset(affirmed)
        self._order = {cat: i for i, cat in enumerate(self.categories)}
        # One keyword may sit in several categories: it scores for each.
        self._owners: dict[str, list[tuple[str, float]]] = {}
        for cat, words in lexicon.items():
            for word, weight in words.items():
                self._owners.setdefault(word, []).append((cat, weight))
        for word in NEUTRAL_WORDS:
            self._owners.setdefault(word, [])
        alternation = "|".join(re.escape(w) for w in sorted(self._owners, key=lambda w: (-len(w), w)))
        self._pattern = re.compile(alternation)

    def classify(self, text: str) -> CategoryResult:
        """Category, per-category scores and matched keywords of a text."""
        matched: dict[str, list[str]] = {}
        scores, ranked = self._ranked(text, matched)
        category = ranked[0] if scores.get(ranked[0], 0.0) >= self.min_score else OTHER
        return CategoryResult(category, {c: round(scores.get(c, 0.0), 3) for c in ranked}, matched,
                              self.display_names.get(category, category))

    def category(self, text: str) -> str:
        """``classify(text).category``, without the rounded scores and matched words (the pipeline asks for every
        negative post and needs only the name)."""
        scores, ranked = self._ranked(text, None, whole=False)
        return ranked[0] if scores.get(ranked[0], 0.0) >= self.min_score else OTHER

    def _ranked(self, text: str, matched: dict[str, list[str]] | None,
                whole: bool = True) -> tuple[dict[str, float], list[str]]:
        """Scores of the categories a text matches, and the categories best first (ties: the one matched first,
        then the order of ``categories``); only the best one unless ``whole``. ``matched`` collects the words."""
        folded = _SPACE.sub("", _fold(text))
        first_clause = m.start() if (m := _CLAUSE.search(folded)) else len(folded)
        scores: dict[str, float] = {}
        first_seen: dict[str, int] = {}
        owners, affirmed = self._owners, self._affirmed
        for m in self._pattern.finditer(folded):
            word = m.group()
            negated = word[0] not in _NEGATOR_CHARS and _negated(folded, m.start())
            boost = 1.5 if m.start() < first_clause else 1.0
            for cat, weight in owners[word]:
                if negated and cat not in affirmed:
                    continue
                scores[cat] = scores.get(cat, 0.0) + weight * boost
                if matched is not None:
                    matched.setdefault(cat, []).append(word)
                first_seen.setdefault(cat, m.start())
        order = self._order

        def key(cat: str) -> tuple[float, int, int]:
            return -scores.get(cat, 0.0), first_seen.get(cat, 1 << 30), order[cat]

        return scores, sorted(self.categories, key=key) if whole else [min(self.categories, key=key)]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 2):start]
    neg = next((n for n in _NEGATORS if before.endswith(n)), None)
    if neg is None:
        return False
    if neg in ("不是", "不"):  # 这不是欺骗吗: a rhetorical question affirms
        end = _CLAUSE.search(text, start)
        tail = text[start:end.start() if end else len(text)]
        if tail[-1:] in ("吗", "嘛", "么") or (end is not None and text[end.start()] in "?？"):
            return False
    return True


_DEFAULT: CategoryClassifier | None = None


def classify(text: str, extra: Mapping[str, Iterable[str] | Mapping[str, float]] | None = None) -> CategoryResult:
    """Classify with the built-in categories (plus ``extra``, see :class:`CategoryClassifier`).

    Building a classifier compiles its keyword pattern: with ``extra``, keep a :class:`CategoryClassifier` instead
    of calling this for every post.
    """
    global _DEFAULT
    if extra:
        return CategoryClassifier(extra).classify(text)
    if _DEFAULT is None:
        _DEFAULT = CategoryClassifier()
    return _DEFAULT.classify(text)
