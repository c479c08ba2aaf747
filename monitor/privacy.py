"""Personal fields in free text from Chinese posts and tickets: find them, and mask them for people who need the
gist but not the person.

What is found (``Found.kind``):

=========== ============================================================ ==========================
kind        what                                                         masked as
=========== ============================================================ ==========================
mobile      mainland mobile ``1[3-9]`` + 9 digits; spaces/dashes 3-4-4;  ``138****5678``
            ``+86`` / ``0086`` / ``86`` prefix
landline    ``0`` + 2-3 digit area code, separated (``010-12345678``,    ``010-****5678``
            ``(0755) 1234567``) or run together, extension allowed
id_card     18-digit resident ID with a valid province, date and         ``110101********1234``
            ISO 7064 MOD 11-2 check digit; 15-digit old IDs with a valid
            province and date
bank_card   13-19 digits passing Luhn, AND a card-like shape: UnionPay   ``6222 **** **** 1234``
            prefix 62, written in groups of four, or after 卡号/银行卡/…
email       ``name@domain.tld``                                          ``a***@example.com``
order       a run of >= 12 letters/digits (with digits) after            ``订单号 2024******7890``
            订单号/订单编号/单号/运单号/order no …
name        2-3 Chinese characters after 姓名/联系人/收件人/收货人 + ``：`` ``张**``
=========== ============================================================ ==========================

Ordinary numbers are left alone on purpose: prices, dates (``2024-05-06``, ``20240506``), times, counts, ticket
numbers (``T20261123-0001``) and post ids. That is why a bare 16-digit number needs a card shape as well as Luhn
(one random number in ten passes Luhn; Weibo post ids are 16 digits), and why order numbers need their label.

Digits are delimited by ASCII letters/digits only: ``\\b`` does not work here because Chinese characters count as
word characters, so ``电话13812345678`` has no word boundary before the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Kinds, strongest claim first: where two matches overlap, the earlier kind wins.
KINDS = ("email", "order", "id_card", "bank_card", "mobile", "landline", "name")

# Province codes (the first two digits of a resident ID): a cheap filter against random 15/18-digit numbers.
_PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51,
                        52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 91})
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_NB = r"(?<![0-9A-Za-z])"  # not preceded by an ASCII letter or digit
_NA = r"(?![0-9A-Za-z])"  # not followed by one
_MONTH_DAY = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]*"
                    r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}"
                    r"(?![A-Za-z0-9-])")
_ORDER = re.compile(r"(?:订单编号|订单号码|订单号|运单号|快递单号|物流单号|单号|order\s*(?:no\.?|number|id|#)?)"
                    r"\s*(?:是|为)?\s*[:：#]?\s*(?P<v>[A-Za-z0-9]{12,40})" + _NA, re.IGNORECASE)
_ID18 = re.compile(_NB + r"[1-9]\d{5}(?:18|19|20)\d{2}" + _MONTH_DAY + r"\d{3}[\dXx]" + _NA)
_ID15 = re.compile(_NB + r"[1-9]\d{5}\d{2}" + _MONTH_DAY + r"\d{3}" + _NA)
# Contiguous 13-19 digits, or groups of four with one kind of separator (6222 0212 3456 7890 123).
_CARD = re.compile(_NB + r"(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4}(?:(?P=sep)\d{4}){1,2}(?:(?P=sep)\d{1,4})?)" + _NA)
_CARD_CONTEXT = re.compile(r"(?:卡号|银行卡|信用卡|储蓄卡|借记卡|card)[^0-9\n]{0,8}$", re.IGNORECASE)
_MOBILE = re.compile(_NB + r"(?P<cc>(?:\+|00)?86[ -]?)?1[3-9]\d(?:(?P<s>[ -]?)\d{4}(?P=s)\d{4})" + _NA)
_LANDLINE = re.compile(_NB + r"(?:\(0[1-9]\d{1,2}\)\s?|0[1-9]\d{1,2}[ -])[2-9]\d{6,7}(?:(?:-|转|ext\.?)\d{1,6})?"
                       + _NA + r"|" + _NB + r"0(?:10|2\d|[3-9]\d{2})[2-9]\d{6,7}" + _NA)
_NAME = re.compile(r"(?:姓名|联系人|收件人|收货人)\s*[:：]\s*(?P<v>[\u4e00-\u9fff·]{2,4})")
#: Words that end a name caught by the cheap 2-4 character grab (联系人：张三电话 -> 张三).
_NAME_STOP = re.compile(r"电话|手机|联系|地址|身份|先生|女士|小姐|的|是|在|说")


@dataclass(frozen=True)
class Found:
    """One personal field in a text: its kind, where it is (``text[start:end] == value``) and the value."""

    kind: str
    start: int
    end: int
    value: str


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-digit resident ID from its first 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def valid_id18(value: str) -> bool:
    """An 18-character resident ID with a known province and a correct check digit (the date is checked by the
    pattern that found it)."""
    return (len(value) == 18 and value[:17].isdigit() and int(value[:2]) in _PROVINCES
            and id_check_digit(value[:17]) == value[17].upper())


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (bank cards)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_personal(text: str) -> list[Found]:
    """Every personal field in ``text``, in order of position; overlapping matches resolved by kind strength."""
    if not text:
        return []
    candidates: list[Found] = []
    for m in _EMAIL.finditer(text):
        candidates.append(Found("email", m.start(), m.end(), m.group(0)))
    for m in _ORDER.finditer(text):
        if sum(c.isdigit() for c in m.group("v")) >= 6:  # "order confirmation" is a word, not a number
            candidates.append(Found("order", m.start("v"), m.end("v"), m.group("v")))
    for m in _ID18.finditer(text):
        if valid_id18(m.group(0)):
            candidates.append(Found("id_card", m.start(), m.end(), m.group(0)))
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
            continue
        # Luhn alone passes one number in ten: require the shape or the words of a card.
        if digits.startswith("62") or m.group("sep") or _CARD_CONTEXT.search(text, 0, m.start()):
            candidates.append(Found("bank_card", m.start(), m.end(), m.group(0)))
    for m in _ID15.finditer(text):
        if int(m.group(0)[:2]) in _PROVINCES:
            candidates.append(Found("id_card", m.start(), m.end(), m.group(0)))
    for m in _MOBILE.finditer(text):
        candidates.append(Found("mobile", m.start(), m.end(), m.group(0)))
    for m in _LANDLINE.finditer(text):
        candidates.append(Found("landline", m.start(), m.end(), m.group(0)))
    for m in _NAME.finditer(text):
        name = m.group("v")
        stop = _NAME_STOP.search(name)
        if stop:
            name = name[:stop.start()]
        if 2 <= len(name) <= 4:
            candidates.append(Found("name", m.start("v"), m.start("v") + len(name), name))
    rank = {k: i for i, k in enumerate(KINDS)}
    candidates.sort(key=lambda f: (rank[f.kind], f.start))
    chosen: list[Found] = []
    for f in candidates:
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def _keep_ends(value: str, head: int, tail: int) -> str:
    """Digits/letters after the first ``head`` and before the last ``tail`` starred; separators kept."""
    idx = [i for i, c in enumerate(value) if c.isalnum()]
    hidden = set(idx[head:len(idx) - tail]) if len(idx) > head + tail else set(idx[1:])
    return "".join("*" if i in hidden else c for i, c in enumerate(value))


def mask_value(kind: str, value: str) -> str:
    """``value`` (a field of ``kind``) masked: enough left to recognise it, not enough to use it."""
    if kind == "mobile":
        m = _MOBILE.fullmatch(value)
        prefix = (m.group("cc") or "") if m else ""
        digits = re.sub(r"\D", "", value[len(prefix):])
        return f"{prefix}{digits[:3]}****{digits[-4:]}" if len(digits) == 11 else _keep_ends(value, 3, 4)
    if kind == "id_card":
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    if kind == "bank_card":
        return _keep_ends(value, 4, 4)
    if kind == "landline":
        ext = re.search(r"(?:-|转|ext\.?)\d{1,6}$", value)
        if ext and ext.start() > 8:  # an extension is the switchboard's, not the person's: shown as it is
            return mask_value(kind, value[:ext.start()]) + value[ext.start():]
        sep = re.search(r"[ )-]", value)
        # The area code is what comes before the first separator; run together, 010 and 02x are three digits
        # and the others four.
        area = sum(c.isdigit() for c in value[:sep.start()]) if sep else (3 if value[1] in "12" else 4)
        return _keep_ends(value, area, 4)
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "order":
        return _keep_ends(value, 4, 4)
    if kind == "name":
        return value[:1] + "*" * (len(value) - 1)
    return "*" * len(value)


def mask_text(text: str) -> str:
    """``text`` with every personal field found by :func:`find_personal` masked in place (idempotent)."""
    if not text:
        return text
    found = find_personal(text)
    if not found:
        return text
    out, last = [], 0
    for f in found:
        out.append(text[last:f.start])
        out.append(mask_value(f.kind, f.value))
        last = f.end
    out.append(text[last:])
    return "".join(out)


def mask_url(url: str) -> str:
    """A link with its query values starred and personal fields in its path masked (host and path stay, so the
    reader still sees where it points)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if not parts.scheme or not parts.netloc:
        return mask_text(url)
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, parts.netloc, mask_text(parts.path), query, mask_text(parts.fragment)))
