"""Text features: cleaning of Weibo conventions, tokens, shingles, and that they are the same in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from monitor.analysis.textfeat import (
    STOP_WORDS,
    clean,
    hashtags,
    meaningful_length,
    own_words,
    shingles,
    split_repost,
    tokens,
)

ROOT = Path(__file__).resolve().parents[1]


def test_repost_chain_is_cut_keeping_the_authors_words() -> None:
    text = "这家店的客服完全不理人，投诉三次没结果//@张三:我也遇到过//@李四:原帖内容在这里"
    assert clean(text) == "这家店的客服完全不理人 投诉三次没结果"
    assert split_repost(text) == ("这家店的客服完全不理人，投诉三次没结果", ["我也遇到过", "原帖内容在这里"])
    assert own_words(text) == "这家店的客服完全不理人 投诉三次没结果"


def test_short_comment_keeps_the_reposted_words_and_filler_is_replaced_by_them() -> None:
    assert clean("说得对//@甲：外卖里吃出了头发，商家还不承认") == "说得对 外卖里吃出了头发 商家还不承认"
    assert clean("顶//@甲：外卖里吃出了头发") == "外卖里吃出了头发"  # one character is a filler
    assert clean("转发微博//@甲:外卖里吃出了头发，商家还不承认") == "外卖里吃出了头发 商家还不承认"
    assert clean("[心]//@甲:外卖里吃出了头发") == "外卖里吃出了头发"
    assert clean("//@甲:外卖里吃出了头发") == "外卖里吃出了头发"


def test_urls_emoticons_cards_and_punctuation_go() -> None:
    text = "手机发烫严重[怒][doge]😡！！详情 http://t.cn/A6xYz9Qk 还有https://example.com/a?b=1 网页链接 {%北京·朝阳%}"
    assert clean(text) == "手机发烫严重 详情 还有 北京 朝阳"


def test_full_width_folds_to_half_width_and_lower_case() -> None:
    assert clean("ＪＦ手机ＰＲＯ　１２８Ｇ") == "jf手机pro 128g"
    assert clean("iPhone15 Pro Max") == "iphone15 pro max"
    # Full-width brackets are ordinary punctuation, not an emoticon code: their words stay.
    assert clean("［特朗普这波表演我给满分］") == "特朗普这波表演我给满分"


def test_hashtags_keep_their_words() -> None:
    text = "#鲸帆手机爆炸# 太吓人了 #315晚会#"
    assert clean(text) == "鲸帆手机爆炸 太吓人了 315晚会"
    assert hashtags(text) == ["鲸帆手机爆炸", "315晚会"]
    assert hashtags("＃全角话题＃ 和 #全角话题#") == ["全角话题"]
    assert hashtags("no tags here") == []


def test_empty_and_symbol_only_texts() -> None:
    assert clean("") == ""
    assert clean("[心][心]！！！") == ""
    assert tokens("") == []
    assert shingles("") == []
    assert meaningful_length(clean("  好 的 ")) == 2


def test_tokens_are_cjk_bigrams_and_words_minus_stop_words() -> None:
    assert tokens("鲸帆手机电池鼓包") == ["鲸帆", "帆手", "手机", "机电", "电池", "池鼓", "鼓包"]
    toks = tokens("我们觉得这个iPhone15的电池真的不行")
    assert "iphone15" in toks and "电池" in toks
    assert not STOP_WORDS & set(toks)
    assert not any("的" in t for t in toks)  # stop characters split runs
    assert all(len(t) > 1 for t in toks)  # lone characters carry nothing
    assert tokens("a b c 1 2") == []


def test_shingles_ignore_punctuation_and_spacing() -> None:
    assert shingles(clean("外卖，超时了！！")) == shingles(clean("外卖超时了"))
    assert len(shingles(clean("外卖超时了"))) == 4
    assert len(shingles("外")) == 1


def test_features_are_the_same_in_every_process() -> None:
    """Hashes come from ints and tuples, which Python does not salt: another hash seed gives the same shingles."""
    code = ("import json; from monitor.analysis.textfeat import shingles, tokens, clean; "
            "t = '鲸帆手机电池鼓包，客服不理人 http://t.cn/x'; "
            "print(json.dumps([shingles(clean(t)), tokens(t)]))")
    outs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                             check=True)
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1]
    assert outs[0][0] == shingles(clean("鲸帆手机电池鼓包，客服不理人 http://t.cn/x"))


def test_token_codes_are_the_coded_tokens() -> None:
    """token_codes gives the same terms, in the same order, as coding tokens() one by one."""
    from monitor.analysis.textfeat import term_code, token_codes

    texts = ["人工智能的发展让我们的生活更美好 AI is here, the 2024 plan", "我们都是好朋友//@甲:转发微博",
             "#小米8 发布# 小米8发布会 今天 开始 mark", "", "ＡＢＣ 全角 字符 abc abc", "한국 word 的的 了吗"]
    for text in texts:
        cleaned = clean(text)
        expected = {term_code(t): t for t in dict.fromkeys(tokens(cleaned, cleaned=True))}
        got = token_codes(cleaned)
        assert list(got) == list(expected)
        assert all(got[c] == t for c, t in expected.items() if got[c] is not None)
