"""The sentiment stage: the shipped Weibo model, the backends' contract, the CLI and the training script.

Texts here are written for these tests (complaint language, emoticons, negation, repost chains). The tests that read
the labelled sets in ../shared/data/sentiment (datasets cited in docs/sentiment.md) skip with the reason when that
folder is absent; the training tests also need the [train] extra (scikit-learn).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.analysis import sentiment
from monitor.analysis.sentiment import (
    EMPTY_SCORE,
    SentimentBackend,
    WeiboBackend,
    WeiboModel,
    analyse_text,
    backend_names,
    clean_weibo_text,
    get_backend,
    label_for,
    split_repost,
)
from monitor.analysis.sentiment_cli import sentiment_command

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sentiment"
MODEL_PATH = ROOT / "monitor" / "analysis" / sentiment.MODEL_FILE

NEGATIVE_TEXTS = [
    "外卖送了两个小时，饭全凉了，客服还不给退款，我要去12315投诉！",
    "被骗了，这家店就是骗子，已经找律师准备起诉，大家千万别买",
    "气死我了[怒][怒]，排队三个小时说没货了",
    "垃圾服务，态度恶劣，再也不会买了",
    "买到假货，商家拒绝退款，必须曝光这种黑心商家！维权到底",
    "真是棒极了，第三次坏了[怒]",
    "手机用了一个月就黑屏，售后一直推诿，太失望了[泪]",
    "又涨价了，呵呵",
    "心疼一线的医生，太难过了[悲伤][悲伤]",
    "这菜一点都不新鲜，难吃死了，差评",
]
POSITIVE_TEXTS = [
    "今天天气真好，和朋友去吃火锅，开心[哈哈]",
    "谢谢外卖小哥，送餐很快，态度特别好[赞]",
    "武汉加油！中国加油！我们一定会赢[心][心]",
    "收到礼物了，超级喜欢，谢谢亲爱的[爱你]",
    "新买的耳机音质很棒，性价比超高，推荐给大家",
    "祝大家新年快乐，万事如意，身体健康！",
    "终于考完试了，放假啦，好幸福[太开心]",
    "味道很好，分量足，会再来的",
]


@pytest.fixture(scope="module")
def weibo() -> SentimentBackend:
    return get_backend("weibo")


# --- the shipped model ------------------------------------------------------------------------------------------------


def test_shipped_model_is_small_versioned_and_loads() -> None:
    assert MODEL_PATH.name == "sentiment-v3.tsv.gz"
    assert MODEL_PATH.stat().st_size < 5_000_000, "the shipped model should stay a few MB at most"
    model = WeiboModel.load()
    assert model.header["format"] == "monitor-sentiment-v1"
    assert model.header["version"] == 1
    assert model.header["feature_fingerprint"] == sentiment.feature_fingerprint(), (
        "the shipped model was trained on other features than analyse_text now makes: rebuild it with "
        "python tools/train_sentiment.py (and give it a new file name, docs/sentiment.md)")
    assert model.header["features"] == len(model.weights) > 10_000
    assert model.chain_weight == sentiment.CHAIN_WEIGHT
    # The Weibo-specific features were learned, with the sign one expects.
    w = model.weights
    assert w[sentiment.SPECIAL + "G:EMO_NEG"] > 0 > w[sentiment.SPECIAL + "G:EMO_POS"]
    assert w[sentiment.SPECIAL + "G:COMPLAINT"] > 0
    assert w[sentiment.SPECIAL + "E:怒"] > 0 > w[sentiment.SPECIAL + "E:哈哈"]


def test_model_file_is_rejected_when_it_is_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "m.tsv"
    bad.write_text('{"format": "something-else"}\nx\t1\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not a monitor sentiment model"):
        WeiboModel.load(str(bad))
    truncated = tmp_path / "t.tsv"
    truncated.write_text('{"format": "monitor-sentiment-v1", "bias": 0, "scale": 0.001, "features": 3}\na\t1\n',
                         encoding="utf-8")
    with pytest.raises(ValueError, match="truncated"):
        WeiboModel.load(str(truncated))


@pytest.mark.parametrize("text", NEGATIVE_TEXTS)
def test_clearly_negative_weibo_texts(weibo: SentimentBackend, text: str) -> None:
    (p,) = weibo.score([text])
    assert p > sentiment.NEGATIVE_THRESHOLD, (text, p)
    assert label_for(p) == "negative"


@pytest.mark.parametrize("text", POSITIVE_TEXTS)
def test_clearly_positive_weibo_texts(weibo: SentimentBackend, text: str) -> None:
    (p,) = weibo.score([text])
    assert p < sentiment.POSITIVE_THRESHOLD, (text, p)
    assert label_for(p) == "positive"


def test_negation_flips_the_word(weibo: SentimentBackend) -> None:
    good, bad, not_very_good = weibo.score(["好吃", "不好吃", "不太好吃"])
    assert label_for(good) == "positive"
    assert label_for(bad) == "negative"
    assert bad - good > 0.4
    assert not_very_good > 0.5  # a degree word between the negator and the word does not hide the negation
    liked, not_liked = weibo.score(["这次的服务我很满意", "这次的服务我很不满意"])
    assert liked < 0.5 < not_liked


def test_negation_features_skip_words_that_only_look_negative() -> None:
    # 特别 and 非常 contain 别 and 非 but negate nothing; 不过 is "but".
    assert not [s for s in analyse_text("特别好吃，非常满意").specials if s.startswith(sentiment.SPECIAL + "N:")]
    assert sentiment.SPECIAL + "N:好吃" in analyse_text("一点都不好吃").specials
    assert sentiment.SPECIAL + "N:新鲜" in analyse_text("菜不太新鲜").specials
    assert sentiment.SPECIAL + "G:NEG_POS" in analyse_text("不好吃").specials
    assert sentiment.SPECIAL + "G:NEG_NEG" in analyse_text("别担心").specials


def test_complaint_language_raises_the_score(weibo: SentimentBackend) -> None:
    plain, complaint = weibo.score(["我昨天在这家店买了一台冰箱",
                                    "我昨天在这家店买了一台冰箱，要求退款，已投诉到12315"])
    assert complaint > plain + 0.2
    assert label_for(complaint) == "negative"
    assert sentiment.SPECIAL + "G:COMPLAINT" in analyse_text("已向消费者协会投诉").specials


def test_emoticons_are_features_and_move_the_score(weibo: SentimentBackend) -> None:
    f = analyse_text("今天又加班[怒][泪]")
    assert f.own == "今天又加班"  # emoticon codes leave the text ...
    assert {sentiment.SPECIAL + "E:怒", sentiment.SPECIAL + "E:泪", sentiment.SPECIAL + "G:EMO_NEG"} <= set(f.specials)
    angry, happy = weibo.score(["今天又加班[怒][抓狂]", "今天又加班[哈哈][太开心]"])
    assert angry > 0.5 > happy
    crying, smiling = weibo.score(["今天又加班😭😭", "今天又加班😄👍"])
    assert crying > smiling


def test_sarcasm_praise_beside_an_angry_face(weibo: SentimentBackend) -> None:
    assert sentiment.SPECIAL + "G:SARC_MIX" in analyse_text("真是棒极了[怒]").specials
    praise, sarcasm = weibo.score(["真是棒极了[哈哈]", "真是棒极了[怒]"])
    assert praise < 0.5 < sarcasm


def test_repost_chain_weighs_the_authors_own_words(weibo: SentimentBackend) -> None:
    own, chain = split_repost("太恶心了[怒]//@张三:今天的奶茶很好喝[哈哈]//@李四: 同意")
    assert own == "太恶心了[怒]"
    assert chain == ["今天的奶茶很好喝[哈哈]", " 同意"]
    angry_author, happy_author = weibo.score([
        "太恶心了，必须曝光[怒]//@张三:今天的奶茶很好喝，开心[哈哈]",
        "今天的奶茶很好喝，开心[哈哈]//@张三:太恶心了，必须曝光[怒]",
    ])
    assert angry_author > 0.5 > happy_author
    # A bare repost takes the quoted post as the author's words.
    f = analyse_text("转发微博//@王五:退款三天了还没到账，骗子公司")
    assert f.own.startswith("退款三天了") and f.chain == ""
    (p,) = weibo.score(["//@王五:退款三天了还没到账，骗子公司[怒]"])
    assert label_for(p) == "negative"


def test_urls_mentions_and_topics_are_cleaned() -> None:
    text = "回复@小明:#双十一#买的东西到了，质量不错 http://t.cn/A6PqoMKY ​ {%小明的秒拍视频%}"
    assert clean_weibo_text(text) == "双十一 买的东西到了,质量不错 小明的秒拍视频"
    assert clean_weibo_text("") == ""
    assert clean_weibo_text("转发微博//@某人:原文内容[心]") == "原文内容"


@pytest.mark.parametrize("text", ["", " ", "\n\t ", "\u3000", "http://t.cn/xyz", "@某人", "//@某人:"])
def test_empty_texts_are_neutral(weibo: SentimentBackend, text: str) -> None:
    assert weibo.score([text]) == [EMPTY_SCORE]
    assert label_for(EMPTY_SCORE) == "neutral"


def test_odd_input_never_raises(weibo: SentimentBackend) -> None:
    texts = ["\x00\x01", "[" * 5000, "哈" * 100_000, "\ud800", "👍" * 50, "a" * 10, "[]", "//@//@//@", None]
    scores = weibo.score(texts)  # type: ignore[arg-type]
    assert len(scores) == len(texts)
    assert all(0.0 <= p <= 1.0 for p in scores)
    assert scores[-1] == EMPTY_SCORE


def test_scores_are_probabilities_in_input_order_and_deterministic(weibo: SentimentBackend) -> None:
    texts = NEGATIVE_TEXTS + POSITIVE_TEXTS + ["", "普通的一天"]
    scores = weibo.score(texts)
    assert len(scores) == len(texts)
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 and not math.isnan(p) for p in scores)
    assert weibo.score(list(reversed(texts))) == list(reversed(scores))
    assert [weibo.score([t])[0] for t in texts] == scores  # batching changes nothing
    assert weibo.score(texts) == scores
    assert weibo.score([]) == []


def test_scores_do_not_depend_on_the_hash_seed(weibo: SentimentBackend) -> None:
    texts = NEGATIVE_TEXTS[:3] + POSITIVE_TEXTS[:3]
    code = ("import json, sys; from monitor.analysis.sentiment import get_backend; "
            "print(json.dumps(get_backend().score(json.loads(sys.argv[1]))))")
    for seed in ("1", "12345"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed}, cwd=ROOT)
        assert json.loads(out.stdout) == weibo.score(texts)


def test_label_for_thresholds() -> None:
    assert sentiment.POSITIVE_THRESHOLD < sentiment.NEGATIVE_THRESHOLD
    assert label_for(1.0) == label_for(sentiment.NEGATIVE_THRESHOLD + 1e-9) == "negative"
    assert label_for(0.0) == label_for(sentiment.POSITIVE_THRESHOLD - 1e-9) == "positive"
    assert label_for(sentiment.NEGATIVE_THRESHOLD) == label_for(sentiment.POSITIVE_THRESHOLD) == "neutral"
    assert label_for((sentiment.POSITIVE_THRESHOLD + sentiment.NEGATIVE_THRESHOLD) / 2) == "neutral"
    assert label_for(EMPTY_SCORE) == "neutral"
    assert label_for(float("nan")) == "neutral"


# --- backends -------------------------------------------------------------------------------------------------------


def test_get_backend_default_is_weibo_and_cached() -> None:
    backend = get_backend()
    assert isinstance(backend, WeiboBackend)
    assert isinstance(backend, SentimentBackend)
    assert backend.name == "weibo"
    assert get_backend("weibo") is backend
    assert backend_names()[0] == "weibo" and "snownlp" in backend_names()


def test_get_backend_is_loaded_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentiment, "_LOADED", {})
    got: list[SentimentBackend] = []
    threads = [threading.Thread(target=lambda: got.append(get_backend("weibo"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in got}) == 1


def test_unknown_backend_lists_the_names() -> None:
    with pytest.raises(ValueError, match=r"unknown sentiment backend 'bert'.*weibo, snownlp"):
        get_backend("bert")


def test_importing_the_stage_does_not_import_snownlp_or_training_libraries() -> None:
    # numpy is imported by the weibo backend when it loads (for batch scoring), never by the import of the module.
    code = ("import sys; import monitor.analysis.sentiment as s, monitor.analysis.sentiment_cli; "
            "print(sorted(m for m in ('snownlp', 'sklearn', 'numpy', 'scipy') if m in sys.modules)); "
            "s.get_backend('weibo').score(['测试一下'] * 100); "
            "print(sorted(m for m in ('snownlp', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["[]", "[]"]


# Texts that exercise every path of the feature extraction: repost chains, bare reposts, emoticons only, emoji,
# negation, lexicon words at text ends, full-width letters, URLs, control and odd characters, long texts.
EDGE_TEXTS = [
    *NEGATIVE_TEXTS, *POSITIVE_TEXTS, "[怒]", "[怒][哈哈]", "😭", "转发微博", "转发微博//@a:[泪]", "//@a: 好吃//@b:骗",
    "太恶心了[怒]//@张三:今天的奶茶很好喝[哈哈]//@李四: 同意", "不好吃", "别担心", "不太好吃，呵呵", "又涨价了，呵呵",
    "ＡＢＣ１２３好评", "http://t.cn/x 退款 #维权#", "\x00\x01骗", "\ud800差", "哈" * 3000, "好" * 2, "x", "香",
    "消费者协会投诉12315", "a b  c", "🙂👍💔", "[" * 50, "已向消费者协会投诉，态度恶劣",
]


@pytest.fixture()
def numpy_always(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numpy")
    monkeypatch.setattr(sentiment, "NUMPY_MIN_CHARS", 0)  # even a one-text batch goes through numpy


@pytest.mark.usefixtures("numpy_always")
def test_numpy_batches_give_the_same_bits_as_pure_python(weibo: SentimentBackend) -> None:
    assert isinstance(weibo, WeiboBackend) and weibo.model.table() is not None
    plain = WeiboBackend(weibo.model, use_numpy=False)
    expected = [weibo.model.probability(t) for t in EDGE_TEXTS]  # analyse_text + logit, one text at a time
    assert weibo.score(EDGE_TEXTS) == plain.score(EDGE_TEXTS) == expected
    assert [weibo.score([t])[0] for t in EDGE_TEXTS] == expected
    assert weibo.score(EDGE_TEXTS[::-1] * 3) == expected[::-1] * 3  # repeated texts in a batch are scored once


@pytest.mark.usefixtures("numpy_always")
def test_long_batches_are_scored_in_pieces(weibo: SentimentBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(weibo, WeiboBackend)
    expected = [weibo.model.probability(t) for t in EDGE_TEXTS]
    monkeypatch.setattr(sentiment, "CHUNK_CHARS", 50)
    assert weibo.score(EDGE_TEXTS) == expected


@pytest.mark.usefixtures("numpy_always")
def test_numpy_table_overflow_and_probing(weibo: SentimentBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    # No probing at all: every key not at home is in the overflow array; the scores must not change.
    assert isinstance(weibo, WeiboBackend)
    monkeypatch.setattr(sentiment._GramTable, "MAX_PROBE", 0)
    model = WeiboModel(weibo.model.header, weibo.model.weights)
    table = model.table()
    assert table is not None and len(table.overflow) > 1000
    assert model.scores(EDGE_TEXTS) == [weibo.model.probability(t) for t in EDGE_TEXTS]
    # A table with no overflow at all.
    monkeypatch.setattr(sentiment._GramTable, "MAX_PROBE", 64)
    model = WeiboModel(weibo.model.header, weibo.model.weights)
    table = model.table()
    assert table is not None and len(table.overflow) == 0
    assert model.scores(EDGE_TEXTS) == [weibo.model.probability(t) for t in EDGE_TEXTS]


def test_batch_normalisation_is_the_per_text_one() -> None:
    # Final sigma (ΑΣ -> ας) depends on the neighbours: the separator between texts must look like a text's end.
    texts = [*EDGE_TEXTS, "ΑΣ", "Σ abc", "ΑΣ\u0345", "'ΣΑ", "ＡＢＣ，ｘ", "HTTPſ://x.cn/ıſ 好", "", "o", "网页链接"]
    assert sentiment._normalise_batch(texts) == [sentiment._normalise(t) for t in texts]
    with_separator = [*texts, "a" + sentiment._TEXT_SEPARATOR + "b"]  # done one by one
    assert sentiment._normalise_batch(with_separator) == [sentiment._normalise(t) for t in with_separator]


def test_scoring_without_numpy(weibo: SentimentBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(weibo, WeiboBackend)
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy raises ImportError
    backend = WeiboBackend(WeiboModel(weibo.model.header, weibo.model.weights))
    assert backend.model.table() is None
    assert backend.score(EDGE_TEXTS * 10) == [weibo.model.probability(t) for t in EDGE_TEXTS] * 10


def test_snownlp_backend() -> None:
    if importlib.util.find_spec("snownlp") is None:
        with pytest.raises(ValueError, match=r"pip install 'monitor\[snownlp\]'"):
            get_backend("snownlp")
        return
    backend = get_backend("snownlp")
    assert backend.name == "snownlp"
    scores = backend.score(["", "   ", "这个东西太差了，非常失望", "非常好，很喜欢"])
    assert scores[:2] == [EMPTY_SCORE, EMPTY_SCORE]  # SnowNLP('') raises ZeroDivisionError: guarded
    assert all(0.0 <= p <= 1.0 for p in scores)
    assert scores[2] > scores[3]


# --- the CLI --------------------------------------------------------------------------------------------------------


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def test_cli_scores_stdin_in_order() -> None:
    texts = ["不好吃，差评[怒]", "", "好吃，下次还来[哈哈]", "退款申请被拒，准备投诉"]
    result = CliRunner().invoke(sentiment_command, ["--batch-size", "3"], input="\n".join(texts) + "\n")
    assert result.exit_code == 0, result.output
    rows = _json_lines(result.stdout)
    assert [r["text"] for r in rows] == texts
    assert [r["label"] for r in rows] == ["negative", "neutral", "positive", "negative"]
    assert rows[1]["negative"] == EMPTY_SCORE
    assert all(set(r) == {"text", "negative", "label"} for r in rows)
    assert rows == _json_lines(CliRunner().invoke(sentiment_command, [], input="\n".join(texts)).stdout)


def test_cli_reads_a_file_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "posts.txt"
    path.write_bytes("\ufeff太坑了，骗子[怒]\r\n谢谢，很满意\r\n".encode())
    result = CliRunner().invoke(sentiment_command, ["--input", str(path)])
    assert result.exit_code == 0, result.output
    rows = _json_lines(result.stdout)
    assert [r["text"] for r in rows] == ["太坑了，骗子[怒]", "谢谢，很满意"]
    assert rows[0]["label"] == "negative" and rows[1]["label"] == "positive"
    assert "太坑了" in result.stdout  # ensure_ascii=False: Chinese stays readable


def test_cli_errors_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(sentiment_command, ["--backend", "nope"], input="x\n")
    assert result.exit_code == 2
    assert "unknown sentiment backend 'nope'" in result.stderr and "weibo" in result.stderr
    result = CliRunner().invoke(sentiment_command, ["--input", str(tmp_path / "missing.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr and "missing.txt" in result.stderr
    result = CliRunner().invoke(sentiment_command, ["--input", str(tmp_path)])
    assert result.exit_code == 2


CLI = [sys.executable, "-c", "from monitor.analysis.sentiment_cli import sentiment_command; sentiment_command()"]


def test_cli_as_a_process() -> None:
    texts = ["气死了，又被骗了[怒]", "今天很开心[哈哈]"]
    proc = subprocess.run(CLI, input="\n".join(texts) + "\n", capture_output=True, text=True, encoding="utf-8",
                          cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = _json_lines(proc.stdout)
    assert [(r["text"], r["label"]) for r in rows] == [(texts[0], "negative"), (texts[1], "positive")]
    proc = subprocess.run([*CLI, "--backend", "nope"], input="", capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)
    assert proc.returncode == 2 and "unknown sentiment backend" in proc.stderr


def test_cli_streams_batches_before_the_input_ends() -> None:
    proc = subprocess.Popen([*CLI, "--batch-size", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for text in ["第一条，太差了", "第二条，很好"]:
            proc.stdin.write((text + "\n").encode())
            proc.stdin.flush()
            line = proc.stdout.readline()  # answered while stdin is still open
            assert json.loads(line)["text"] == text
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


# --- held-out data and the training script (need ../shared/data; training needs the [train] extra) -----------------


def _trainer() -> Any:
    spec = importlib.util.spec_from_file_location("train_sentiment", ROOT / "tools" / "train_sentiment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_sentiment"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def splits() -> Any:
    if not DATA.is_dir():
        pytest.skip(f"labelled sentiment sets not found at {DATA} (../shared/data/sentiment is absent)")
    trainer = _trainer()
    return trainer, *trainer.load_splits(DATA)


def test_held_out_split_is_disjoint_stratified_and_fixed(splits: Any) -> None:
    trainer, trains, tests = splits
    assert set(trains) == set(tests) == set(trainer.SETS)
    for name in trainer.SETS:
        train_texts = {r.text for r in trains[name]}
        assert not train_texts & {r.text for r in tests[name]}
        n = len(trains[name]) + len(tests[name])
        assert 0.15 * n <= len(tests[name]) <= 0.25 * n
        assert {r.y for r in tests[name]} >= {0, 1}
    again = trainer.split_set(trainer.load_set("weibo2018", DATA))[1]
    assert [r.index for r in again] == [r.index for r in tests["weibo2018"]]


def test_shipped_model_on_held_out_data(splits: Any, weibo: SentimentBackend) -> None:
    """A floor well under the measured figures (docs/sentiment.md): catches a broken or mismatched model."""
    trainer, _, tests = splits
    for name in ("weibo2018", "waimai_10k", "smp_usual"):
        rows = [r for r in tests[name] if r.y is not None]
        ps = weibo.score([r.text for r in rows])
        f1 = trainer.neg_f1([r.y for r in rows], ps, sentiment.NEGATIVE_THRESHOLD)[2]
        assert f1 > 0.75, (name, f1)


@pytest.mark.usefixtures("numpy_always")
def test_numpy_and_pure_python_agree_on_held_out_data(splits: Any, weibo: SentimentBackend) -> None:
    _, _, tests = splits
    texts = [r.text for rows in tests.values() for r in rows]
    assert isinstance(weibo, WeiboBackend)
    assert weibo.score(texts) == WeiboBackend(weibo.model, use_numpy=False).score(texts)


def test_training_is_deterministic_on_a_subset(splits: Any, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the [train] extra: pip install -e '.[train]'")
    trainer, trains, _ = splits
    small = {name: rows[:150] for name, rows in trains.items()}
    first = trainer.train(small, trainer.PARAMS)
    second = trainer.train({name: list(rows) for name, rows in small.items()}, trainer.PARAMS)
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    path = tmp_path / "tiny.tsv.gz"
    path.write_bytes(first)
    model = WeiboModel.load(str(path))
    backend = WeiboBackend(model)
    scores = backend.score(["太差了，退款！[怒]", "很好吃，谢谢[哈哈]"])
    assert scores[0] > scores[1]
    assert model.header["trained_on"] == {name: len(rows) for name, rows in small.items()}


def test_the_clause_after_a_contrast_word_has_features_of_its_own() -> None:
    """卷还不错，但粥就太一般了: the verdict after 但 gets its own bigrams (T:) and a marker; no contrast, none."""
    f = analyse_text("卷还不错，但粥就太一般了。下次不点了")
    assert "\x1fG:BUT" in f.specials
    tails = {s[3:] for s in f.specials if s.startswith("\x1fT:")}
    assert {"一般", "太一"} <= tails and "不错" not in tails and "下次" not in tails  # only up to the clause end
    assert not any(s.startswith(("\x1fT:", "\x1fG:BUT")) for s in analyse_text("卷不错，粥也好喝").specials)


def test_product_and_food_faults_are_a_group() -> None:
    assert "\x1fG:FAULT" in analyse_text("吃完就拉肚子，还有一根头发").specials
    assert "\x1fG:FAULT" not in analyse_text("今天吃得很开心").specials


def test_the_last_sentence_of_several_is_marked_as_the_verdict() -> None:
    """关东煮味道不错。一餐之后拉了肚子: the fault in the last sentence gets an L: feature; one sentence gets none."""
    late = analyse_text("关东煮味道不错。一餐之后拉了肚子，可见菜品卫生有问题。").specials
    assert {"\x1fL:FAULT", "\x1fG:FAULT", "\x1fG:POS"} <= set(late) and "\x1fL:POS" not in late
    assert not any(f.startswith("\x1fL:") for f in analyse_text("一餐之后拉了肚子，菜品卫生有问题").specials)
    backend = get_backend("weibo")
    assert backend.score(["关东煮味道不错。一餐之后拉了肚子，可见菜品卫生有问题。"])[0] > 0.5


def test_praise_pushed_to_the_extreme_is_fan_talk() -> None:
    """萌死了, 帅惨了: words of harm after praise are a group of their own, and the model reads them as positive."""
    assert "\x1fG:POS_INT" in analyse_text("被萌死了").specials
    assert "\x1fG:POS_INT" not in analyse_text("气死了").specials
    backend = get_backend("weibo")
    fan, angry = backend.score(["被萌死了哈哈", "被气死了"])
    assert fan < 0.3 < 0.5 < angry


def test_a_verdict_after_but_outweighs_the_politeness_before_it() -> None:
    backend = get_backend("weibo")
    polite, verdict = backend.score(["卷还不错，粥也还行", "卷还不错，但粥就太一般了"])
    assert verdict > polite + 0.2
