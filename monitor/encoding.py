"""Decode fetched bytes to text the way Chinese sites need.

httpx (and many crawlers) decode a page without a charset as UTF-8, and GB2312-labelled pages often hold GBK-only
characters (朱镕基's 镕 is not in GB2312). So: BOM, then strict UTF-8 (GBK text is almost never valid UTF-8, while
GB18030 decodes nearly any bytes, so trying GB first would turn UTF-8 pages into mojibake), then the declared charsets
(HTTP header, XML declaration, HTML meta) widened to their supersets, then detection, then GB18030 with replacement.
"""

from __future__ import annotations

import codecs
import re

# Labels sites use -> the codec that decodes everything the label is used for in practice (WHATWG does the same).
_SUPERSET = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "cp936": "gb18030",
    "euc-cn": "gb18030", "hz-gb-2312": "hz", "big5": "big5hkscs", "big5-hkscs": "big5hkscs", "x-big5": "big5hkscs",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:\-]+)", re.I)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:\-]+)[\"']", re.I)
_META = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.I)


def declared_charsets(content: bytes, content_type: str = "") -> list[str]:
    """Charsets the response claims, in order of authority: header, XML declaration, HTML meta."""
    found: list[str] = []
    m = _HEADER_CHARSET.search(content_type or "")
    if m:
        found.append(m.group(1))
    head = content[:4096]
    for pattern in (_XML_DECL, _META):
        m2 = pattern.search(head)
        if m2:
            found.append(m2.group(1).decode("ascii", "ignore"))
    return found


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    label = _SUPERSET.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode(content: bytes, content_type: str = "") -> tuple[str, str]:
    """Return ``(text, codec_name)`` for fetched bytes; never raises."""
    for bom, name in _BOMS:
        if content.startswith(bom):
            return content.decode(name, errors="replace"), name
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    labels = declared_charsets(content, content_type)
    if len(labels) > 1 and _codec(labels[0]) == "cp1252":
        # Servers label everything ISO-8859-1 by default (Tomcat, old Apache), and cp1252 decodes nearly any bytes:
        # a charset the document declares itself (a GBK feed's XML declaration) is the better witness then.
        labels = labels[1:] + labels[:1]
    for label in labels:
        codec = _codec(label)
        if codec and codec not in ("utf-8",):
            try:
                return content.decode(codec), codec
            except (UnicodeError, LookupError):  # LookupError: a label naming a bytes codec (charset=base64)
                continue
    guess = _detect(content)
    if guess:
        try:
            return content.decode(guess), guess
        except UnicodeDecodeError:
            pass
    return content.decode("gb18030", errors="replace"), "gb18030"


def _detect(content: bytes) -> str | None:
    from charset_normalizer import from_bytes  # imported on demand: only undeclared, non-UTF-8 pages need it

    candidates = ["gb18030", "big5", "utf_8", "cp1252", "shift_jis", "euc_kr"]
    best = from_bytes(content[:65536], cp_isolation=candidates).best()
    if best is None:
        return None
    return _codec(best.encoding)


def to_utf8_xml(content: bytes, content_type: str = "") -> bytes:
    """Decode an XML document and re-encode it as UTF-8 with a matching declaration (for feedparser)."""
    text, _ = decode(content, content_type)
    text = re.sub(r"^(\s*<\?xml[^>]*?encoding\s*=\s*)[\"'][^\"']*[\"']", r'\1"utf-8"', text, count=1)
    return text.encode("utf-8")
