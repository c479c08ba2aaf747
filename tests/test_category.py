"""Complaint categories: clear cases, negation, ties, custom categories, display names."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.analysis.category import (
    CATEGORIES,
    DISPLAY_NAMES,
    OTHER,
    CategoryClassifier,
    classify,
)

CLEAR = {
    "product_quality": [
        "新买的鲸帆洗衣机用了两周就漏水，还有一股烧焦的异味",
        "这批酸奶已经变质了，喝起来是酸臭的，生产日期还没过期",
        "手机充电发烫严重，玩一会儿就死机闪退",
        "外卖里吃出了头发，菜也不新鲜",
    ],
    "service_experience": [
        "客服态度恶劣，问了三遍都爱答不理，最后直接挂电话",
        "配送慢得离谱，骑手超时一个多小时才送到",
        "售后互相推诿踢皮球，一个问题拖了一个月没人管",
    ],
    "contract_performance": [
        "申请退款半个月了还是不退款，商家一直拖着",
        "会员到期被自动续费扣了98元，根本没有提醒",
        "付款一周了还不发货，说好的48小时内发货呢",
        "押金说好随时可退，现在申请了三次都不退押金",
        "点的套餐少送了一份饮料，汤也没给",
    ],
    "ethics_compliance": [
        "虚假宣传，广告说的功能根本没有，这是欺骗消费者",
        "刚注册就接到推销电话，我的个人信息被泄露了",
        "合同里全是霸王条款，还歧视外地用户",
        "这不是诈骗吗？收了钱就拉黑",
    ],
    OTHER: [
        "不开心",
        "唉，真是够了",
        "一言难尽",
    ],
}


@pytest.mark.parametrize("category, text", [(c, t) for c, texts in CLEAR.items() for t in texts])
def test_clear_cases(category: str, text: str) -> None:
    result = classify(text)
    assert result.category == category, result
    assert result.display_name == DISPLAY_NAMES[category]
    if category != OTHER:
        assert result.matched[category], result
        assert result.scores[category] == max(result.scores.values())


def test_scores_and_evidence() -> None:
    result = classify("客服不理人，退款也不给退款")
    assert set(result.scores) == set(CATEGORIES)
    assert list(result.scores.values()) == sorted(result.scores.values(), reverse=True)
    assert "客服" in result.matched["service_experience"]
    assert "不给退款" in result.matched["contract_performance"]  # the longest keyword wins at a position


def test_negated_problem_words_do_not_count() -> None:
    assert classify("没有异味，也没有漏水，质量挺好").category == OTHER
    assert classify("送餐不慢，味道也还行").category == OTHER
    # ... but a missing thing one is owed is the complaint itself.
    assert classify("等了一周都没有退款").category == "contract_performance"


def test_the_first_clause_weighs_more() -> None:
    lead = classify("菜太咸了").scores["product_quality"]
    assert classify("说实话，菜太咸了").scores["product_quality"] == pytest.approx(lead / 1.5)
    assert classify("汤洒了，而且迟到了").category == "product_quality"
    assert classify("迟到了，而且汤洒了").category == "service_experience"


def test_display_names_are_chinese() -> None:
    assert DISPLAY_NAMES == {"product_quality": "产品质量", "service_experience": "服务体验",
                             "contract_performance": "合同履约", "ethics_compliance": "道德合规", OTHER: "其他"}


def test_custom_categories() -> None:
    clf = CategoryClassifier({"logistics": ["快递", "物流", "包裹"], "privacy": {"人脸": 3.0, "摄像头": 2.0}},
                              display_names={"logistics": "物流", "privacy": "隐私安全"})
    assert clf.categories[-2:] == ("logistics", "privacy")
    result = clf.classify("包裹在物流站压了五天，快递员电话也打不通")
    assert result.category == "logistics" and result.display_name == "物流"
    assert result.matched["logistics"] == ["包裹", "物流"]  # 快递员 is a longer built-in keyword
    assert clf.classify("小区门禁强制人脸识别").category == "privacy"
    # Extra keywords can extend a built-in category; keywords fold to half-width lower case.
    clf2 = CategoryClassifier({"product_quality": ["ＡＢ胶"]})
    assert clf2.classify("ab胶").category == "product_quality"
    # Only custom categories.
    only = CategoryClassifier({"price": ["涨价", "太贵"]}, builtin=False)
    assert only.categories == ("price",)
    assert only.classify("又涨价了").category == "price"
    assert only.classify("客服态度很差").category == OTHER
    assert classify("又涨价了", extra={"price": ["涨价"]}).category == "price"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        CategoryClassifier({OTHER: ["x"]})
    with pytest.raises(ValueError):
        CategoryClassifier({"x": ["  "]})
    with pytest.raises(ValueError):
        CategoryClassifier(builtin=False)


def test_empty_text() -> None:
    result = classify("")
    assert result.category == OTHER and result.matched == {}


def test_category_is_classify_without_the_details(shared_data: Path) -> None:
    """``category(text)`` (the pipeline's fast path) names the same category as ``classify(text).category`` on real
    Weibo and delivery-review texts, with built-in and configured categories (negative weights and a min_score of 0
    included, where an unmatched category can win)."""
    import csv

    texts = ["", "。", "不是很好吃", "这不是欺骗吗？"]
    with (shared_data / "sentiment" / "waimai_10k" / "waimai_10k.csv").open(encoding="utf-8") as f:
        texts += [row[1] for row in csv.reader(f)][1:3001]
    with (shared_data / "sentiment" / "weibo2018" / "train.txt").open(encoding="utf-8") as f:
        texts += [line.rstrip("\n").split(",", 2)[-1] for line in f][:3000]
    classifiers = [CategoryClassifier(),
                   CategoryClassifier({"配送": ["骑手", "送餐"], "product_quality": {"难吃": 2.0, "还行": -1.0}}),
                   CategoryClassifier({"食安": {"拉肚子": 3.0, "好吃": -2.0}}, builtin=False, min_score=0.0)]
    named = 0
    for classifier in classifiers:
        for text in texts:
            expected = classifier.classify(text).category
            assert classifier.category(text) == expected, text
            named += expected != "other"
    assert named > 1000  # the texts exercise real matches, not only the fallback
