"""Decoding fetched bytes: GBK/GB2312/Big5 pages, lying headers, BOMs, XML re-encoding and garbage input."""

from __future__ import annotations

import codecs
import random

import pytest

from monitor.encoding import declared_charsets, decode, to_utf8_xml

# 镕 (in 朱镕基) is in GBK but not in GB2312; pages labelled gb2312 hold it all the time.
GBK_ONLY = "朱镕基总理到访"
# Long enough for detection; negative consumer complaints, the kind of text monitor reads.
COMPLAINT = ("这家公司的产品质量太差了，用了不到一个月就坏了，客服态度也很恶劣，打了三次电话都没有人处理。"
             "大家千万不要购买，我已经向消费者协会投诉，希望有关部门能够尽快调查处理这件事情。")
BIG5_TEXT = "繁體中文測試：臺灣消費者對這家公司的服務品質非常不滿意，許多網友在論壇上發文抱怨。"


def html_page(body: str, meta: str = "") -> str:
    """A small HTML page with an optional charset <meta> tag."""
    head = f'<meta http-equiv="Content-Type" content="text/html; charset={meta}">' if meta else ""
    return f"<html><head>{head}<title>測試</title></head><body><p>{body}</p></body></html>"


def test_gb2312_really_lacks_the_character() -> None:
    with pytest.raises(UnicodeEncodeError):
        GBK_ONLY.encode("gb2312")


def test_gbk_with_charset_header() -> None:
    content = html_page(COMPLAINT).encode("gbk")
    text, codec = decode(content, "text/html; charset=gbk")
    assert text == html_page(COMPLAINT)
    assert codec == "gb18030"


@pytest.mark.parametrize("header", ["", "text/html", "text/html; charset=gb2312", "text/html; charset=GB2312"])
def test_gb2312_label_with_gbk_only_character(header: str) -> None:
    page = html_page(GBK_ONLY, meta="gb2312")
    content = page.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        content.decode("gb2312")  # what a decoder that trusts the label does
    text, codec = decode(content, header)
    assert text == page
    assert "镕" in text and "\ufffd" not in text
    assert codec == "gb18030"


@pytest.mark.parametrize("snippet", ["朱镕基", "镕", "吕镕"])
def test_short_gb2312_label_is_honoured(snippet: str) -> None:
    # Too short for detection (it guesses Big5 for these bytes): the declared label must decide.
    assert decode(snippet.encode("gbk"), "text/html; charset=gb2312") == (snippet, "gb18030")


def test_big5_with_meta() -> None:
    page = html_page(BIG5_TEXT, meta="big5")
    text, codec = decode(page.encode("big5"))
    assert text == page
    assert codec == "big5hkscs"


def test_big5_with_header() -> None:
    text, _ = decode(BIG5_TEXT.encode("big5"), "text/html; charset=Big5")
    assert text == BIG5_TEXT


def test_big5_undeclared_is_detected() -> None:
    content = (BIG5_TEXT * 3).encode("big5")
    text, codec = decode(content)
    assert text == BIG5_TEXT * 3  # the GB18030 fallback would give mojibake here
    assert codec.startswith("big5")


def test_utf8_without_any_charset() -> None:
    page = html_page(COMPLAINT + GBK_ONLY + BIG5_TEXT)
    assert decode(page.encode("utf-8")) == (page, "utf-8")


def test_utf8_wins_over_a_wrong_gbk_label() -> None:
    page = html_page(COMPLAINT, meta="gbk")
    assert decode(page.encode("utf-8"), "text/html; charset=gbk") == (page, "utf-8")


@pytest.mark.parametrize("header", ["text/html; charset=utf-8", "text/html; charset=UTF-8",
                                    'text/html; charset="utf-8"'])
def test_header_says_utf8_but_bytes_are_gbk(header: str) -> None:
    page = html_page(COMPLAINT)
    text, codec = decode(page.encode("gbk"), header)
    assert text == page
    assert codec == "gb18030"


def test_header_lies_but_meta_tells_the_truth() -> None:
    page = html_page(GBK_ONLY + COMPLAINT, meta="gbk")
    text, _ = decode(page.encode("gbk"), "text/html; charset=utf-8")
    assert text == page


def test_utf8_bom() -> None:
    text, codec = decode(codecs.BOM_UTF8 + COMPLAINT.encode("utf-8"), "text/html; charset=gbk")
    assert text == COMPLAINT  # the BOM is removed, and it outranks the header
    assert codec == "utf-8-sig"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_bom(codec: str) -> None:
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    text, used = decode(bom + COMPLAINT.encode(codec))
    assert text == COMPLAINT
    assert used == "utf-16"


def test_undeclared_gbk_is_detected() -> None:
    text, codec = decode(COMPLAINT.encode("gbk"))
    assert text == COMPLAINT
    assert codec == "gb18030"


def test_unknown_label_falls_through_to_detection() -> None:
    text, _ = decode(html_page(COMPLAINT, meta="x-no-such-charset").encode("gbk"), "text/html; charset=bogus")
    assert text == html_page(COMPLAINT, meta="x-no-such-charset")


@pytest.mark.parametrize("label", ["base64", "hex", "zlib", "rot13", "undefined", "idna", "utf-32"])
def test_labels_of_odd_codecs_never_raise(label: str) -> None:
    content = html_page(COMPLAINT, meta=label).encode("gbk")
    text, codec = decode(content, f"text/html; charset={label}")
    assert isinstance(text, str) and codec
    assert text == html_page(COMPLAINT, meta=label)


# --- declared_charsets ----------------------------------------------------------------------------------------------


def test_declared_charsets_order_is_header_xml_meta() -> None:
    content = b'<?xml version="1.0" encoding="gb2312"?><html><meta charset="big5"></html>'
    assert declared_charsets(content, "text/xml; charset=GBK") == ["GBK", "gb2312", "big5"]


@pytest.mark.parametrize(("content", "content_type", "expected"), [
    (b"<html></html>", "", []),
    (b"<html></html>", "text/html", []),
    (b"<html></html>", "text/html; charset='gbk'", ["gbk"]),
    (b'<meta charset="utf-8">', "", ["utf-8"]),
    (b"<meta charset=gbk>", "", ["gbk"]),
    (b'<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=GB2312">', "", ["GB2312"]),
    (b"  \n<?xml version='1.0' encoding='big5'?><rss/>", "", ["big5"]),
    (b"<rss/><?xml version='1.0' encoding='big5'?>", "", []),  # a declaration only counts at the start
    (b"x" * 5000 + b'<meta charset="gbk">', "", []),  # only the head is searched
])
def test_declared_charsets(content: bytes, content_type: str, expected: list[str]) -> None:
    assert declared_charsets(content, content_type) == expected


# --- to_utf8_xml ----------------------------------------------------------------------------------------------------


FEED = """<?xml version="1.0" encoding="{enc}"?>
<rss version="2.0"><channel><title>輿情</title><item><title>{title}</title></item></channel></rss>"""


def test_xml_gb2312_declaration_is_rewritten() -> None:
    source = FEED.format(enc="gb2312", title=GBK_ONLY)
    out = to_utf8_xml(source.encode("gbk"))
    assert out == FEED.format(enc="utf-8", title=GBK_ONLY).encode("utf-8")
    assert out.decode("utf-8").count("encoding=") == 1


def test_xml_single_quoted_declaration_is_rewritten() -> None:
    source = FEED.format(enc="big5", title=BIG5_TEXT).replace('encoding="big5"', "encoding='big5'")
    out = to_utf8_xml(source.encode("big5")).decode("utf-8")
    assert out.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert BIG5_TEXT in out


def test_xml_utf16_with_bom_becomes_utf8() -> None:
    source = FEED.format(enc="utf-16", title=COMPLAINT)
    out = to_utf8_xml(codecs.BOM_UTF16_LE + source.encode("utf-16-le"))
    assert out == FEED.format(enc="utf-8", title=COMPLAINT).encode("utf-8")


def test_xml_without_declaration_is_only_reencoded() -> None:
    source = "<rss><channel><title>" + COMPLAINT + "</title></channel></rss>"
    assert to_utf8_xml(source.encode("gbk"), "application/rss+xml; charset=gbk") == source.encode("utf-8")


def test_xml_utf8_bom_is_dropped() -> None:
    source = FEED.format(enc="UTF-8", title=GBK_ONLY)
    assert to_utf8_xml(codecs.BOM_UTF8 + source.encode()) == FEED.format(enc="utf-8", title=GBK_ONLY).encode()


def test_xml_encoding_word_in_content_is_untouched() -> None:
    source = '<rss><title>encoding="gbk" 是什么</title></rss>'
    assert to_utf8_xml(source.encode("utf-8")) == source.encode("utf-8")


def test_xml_declaration_quoted_inside_content_is_untouched() -> None:
    source = '<rss><description><![CDATA[<?xml version="1.0" encoding="gbk"?>]]></description></rss>'
    assert to_utf8_xml(source.encode("utf-8")) == source.encode("utf-8")


# --- garbage ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["", "text/html; charset=utf-8", "text/html; charset=gbk",
                                          "text/html; charset=big5", "charset=", "text/html; charset=\x00"])
def test_garbage_never_raises(content_type: str) -> None:
    rng = random.Random(20240601)  # fixed seed: the same bytes every run
    samples = [b"", b"\x00", b"\xff" * 7, bytes(range(256)), b"\x81", b'<meta charset="gbk">\xff\xfe\xfd']
    samples += [rng.randbytes(n) for n in (1, 2, 3, 17, 256, 4096)]
    for content in samples:
        text, codec = decode(content, content_type)
        assert isinstance(text, str)
        assert codecs.lookup(codec)
        assert isinstance(to_utf8_xml(content, content_type), bytes)


def test_empty_input() -> None:
    assert decode(b"") == ("", "utf-8")
    assert to_utf8_xml(b"") == b""
