"""Pure rendering of a :class:`~alerts.message.Message` for people reading on a phone, in each channel's dialect.

Every rendering says the severity first (``🔴【红色预警】`` + title), then the summary, the numbers, why (the
reasons), up to three representative posts (author, source, time, a short quote and its link) and the console link.

Post text, authors, topic words (and so titles) come from the outside world. Before they reach a markdown dialect,
the characters that would make links, emphasis, headings, mentions or HTML (``[]()*_`<>#!~|``) are replaced by
their full-width twins, which read the same to a Chinese reader and mean nothing to the renderer; newlines inside
one item are folded into spaces. HTML is escaped throughout. Only http(s) URLs are ever emitted as links.

Personal fields (phone, ID, bank-card, order numbers, e-mail addresses, names after 姓名/联系人) are masked
(:func:`monitor.privacy.mask_text`) in every piece of text a rendering takes from the message — title, summary,
facts, reasons, quoted posts — because chat groups and mailboxes are read by more people than the console's
roles allow, and kept forever. All of it passes through :func:`one_line`, so that is the one place it happens, before
any cut (a cut phone number must not leave its digits). The generic webhook's ``message`` JSON is data for a
machine (an external ticketing system needs the complainant's contact) and is sent as it is.

Size limits are met by shortening, then dropping, the quoted posts before anything else is cut; the last resort cuts
the whole text at a character (never inside a UTF-8 sequence).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from alerts.message import SEVERITY_EMOJI, SEVERITY_ZH, Message, PostRef
from monitor.privacy import mask_text

#: The detector's severities, lowest first (the order ``at_all_min_severity`` and colours use).
SEVERITY_ORDER: tuple[str, ...] = ("blue", "yellow", "orange", "red")
Severity = Literal["blue", "yellow", "orange", "red"]
Dialect = Literal["dingtalk", "wecom", "lark", "slack"]

#: How each event kind is named in a message.
KIND_ZH = {
    "incident.opened": "新舆情事件", "incident.escalated": "事件升级", "incident.repeat": "事件持续",
    "incident.reflared": "事件再次升温",
    "ticket.created": "工单已创建", "ticket.overdue": "工单超时", "ticket.escalated": "工单升级",
    "ticket.sync": "工单同步", "test": "测试消息",
}

CONSOLE_LINK_TEXT = "在控制台查看"
MAX_POSTS = 3
QUOTE_CHARS = 120
ELLIPSIS = "…"

# Full-width twins of the characters a markdown dialect could read as syntax. Replacing (not backslash-escaping)
# works the same in all four dialects: DingTalk's and WeCom's renderers document no escape character at all.
_MD_NEUTRAL = str.maketrans({
    "[": "［", "]": "］", "(": "（", ")": "）", "*": "＊", "_": "＿", "`": "｀", "<": "＜", ">": "＞",
    "#": "＃", "!": "！", "~": "～", "|": "｜", "\\": "＼",
})
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")
# Characters kept as they are when a URL is written into a markdown link or an attribute; everything else that
# could close the link ("(", ")", "<", ">", "|", spaces, quotes) is percent-encoded.
_URL_SAFE = "/:?#&=%+@;,.~-_!$'*"
_NETLOC_BAD = set("()<>\"'`|\\{}^*! ")


def severity_label(severity: str) -> str:
    """``🔴【红色预警】`` for red, and so on; an unknown severity is shown as it is."""
    emoji = SEVERITY_EMOJI.get(severity, "⚪")
    return f"{emoji}【{SEVERITY_ZH.get(severity, severity)}预警】"


def headline(message: Message) -> str:
    """Severity first, then the title, as plain text (one line).

    Message builders may already start the title with the severity (``🔴【红色预警·新预警】...``,
    ``【红色】工单 ...``): such a title is kept, at most given its emoji, so the severity is never said twice.
    """
    title = one_line(message.title)
    emoji = SEVERITY_EMOJI.get(message.severity, "⚪")
    if title.startswith(tuple(SEVERITY_EMOJI.values())):
        return title
    if title.startswith("【") and "】" in title:
        bracket = title[1:title.index("】")]
        if SEVERITY_ZH.get(message.severity, message.severity)[:1] in bracket:
            return emoji + title
    label = severity_label(message.severity)
    return f"{label}{title}" if title else label


def one_line(text: str) -> str:
    """Control characters removed, all whitespace (newlines included) folded to single spaces, and personal fields
    masked (``138****5678``): every text a channel shows passes through here."""
    return mask_text(_SPACES.sub(" ", _CONTROL.sub(" ", text or "")).strip())


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with "…" when cut."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def truncate_bytes(text: str, max_bytes: int, encoding: str = "utf-8") -> str:
    """``text`` cut to at most ``max_bytes`` once encoded, at a character boundary, ending with "…" when cut."""
    raw = text.encode(encoding)
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(ELLIPSIS.encode(encoding))
    if room <= 0:
        return ""
    # errors="ignore" drops the partial sequence at the cut: the result is always valid text.
    return raw[:room].decode(encoding, errors="ignore") + ELLIPSIS


def safe_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL (made safe to put in a link), else "".

    ``javascript:``, ``data:``, relative and malformed URLs are refused; characters that could end a markdown
    link, a Slack link or an HTML attribute are percent-encoded.
    """
    url = (url or "").strip()
    if not url or _CONTROL.search(url) or any(c.isspace() for c in url):
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return ""
    netloc = parts.netloc
    if not netloc.isascii():
        try:  # an internationalised host name is written in its ASCII (punycode) form
            netloc = netloc.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    if any(c in _NETLOC_BAD for c in netloc):
        return ""
    rest = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return f"{scheme}://{netloc}{quote(rest, safe=_URL_SAFE)}"


def format_time(value: str) -> str:
    """An ISO 8601 time as ``2026-01-05 14:03`` (in its own offset); anything else shown as given, shortened."""
    value = one_line(value)
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return truncate(value, 32)


def neutralize_md(text: str) -> str:
    """One line of outside text made inert in the markdown dialects (full-width twins for syntax characters)."""
    return one_line(text).translate(_MD_NEUTRAL)


def _neutralize_slack(text: str) -> str:
    # Slack asks for &, < and > as entities; the rest of its mrkdwn syntax has no escape, so full-width twins.
    return one_line(text).replace("&", "&amp;").translate(_MD_NEUTRAL)


@dataclass(frozen=True)
class _Style:
    """How one markdown dialect writes the few constructs a message uses."""

    escape: Callable[[str], str]
    heading: Callable[[str], str]
    bold: Callable[[str], str]
    link: Callable[[str, str], str]
    quote: Callable[[str], str]
    bullet: str
    nl: str  # between the lines of one block
    gap: str  # between blocks


def _md_link(text: str, url: str) -> str:
    return f"[{text}]({url})"


_STYLES: dict[str, _Style] = {
    # DingTalk joins single newlines of a paragraph on some clients: lines end with a hard break (two spaces)
    # and blocks are separated by a blank line.
    "dingtalk": _Style(neutralize_md, lambda s: f"### {s}", lambda s: f"**{s}**", _md_link, lambda s: f"> {s}",
                       "- ", "  \n", "\n\n"),
    "wecom": _Style(neutralize_md, lambda s: f"### {s}", lambda s: f"**{s}**", _md_link, lambda s: f"> {s}",
                    "- ", "\n", "\n\n"),
    # lark_md has no headings or block quotes: bold and a bar stand in for them.
    "lark": _Style(neutralize_md, lambda s: f"**{s}**", lambda s: f"**{s}**", _md_link, lambda s: f"┃ {s}",
                   "• ", "\n", "\n\n"),
    "slack": _Style(_neutralize_slack, lambda s: f"*{s}*", lambda s: f"*{s}*", lambda t, u: f"<{u}|{t}>",
                    lambda s: f"> {s}", "• ", "\n", "\n\n"),
}


def _post_meta(post: PostRef) -> list[str]:
    return [x for x in (one_line(post.author), one_line(post.source), format_time(post.published_at)) if x]


def _md_post(post: PostRef, style: _Style, quote_chars: int) -> list[str]:
    text = truncate(one_line(post.text), quote_chars)
    lines = [style.quote(f"「{style.escape(text)}」")] if text else []
    meta = " · ".join(style.escape(truncate(x, 40)) for x in _post_meta(post))
    url = safe_url(post.url)
    tail = " ".join(x for x in (f"—— {meta}" if meta else "", style.link("原文", url) if url else "") if x)
    if tail:
        lines.append(style.quote(tail))
    return lines


def _md_body(message: Message, style: _Style, *, posts: int, quote_chars: int, with_headline: bool,
             with_link: bool, wecom_colour: bool = False) -> str:
    blocks: list[str] = []
    if with_headline:
        head = style.escape(headline(message))
        if wecom_colour and message.severity in ("orange", "red"):
            # WeCom's markdown has three colours; "warning" (orange-red) marks the serious levels.
            head = f'<font color="warning">{head}</font>'
        blocks.append(style.heading(head))
    for line in (message.summary or "").splitlines():
        if one_line(line):
            blocks.append(style.escape(line))
    if message.facts:
        blocks.append(style.nl.join(f"{style.bullet}{style.escape(k)}：{style.bold(style.escape(v))}"
                                for k, v in message.facts))
    reasons = [r for r in message.reasons if one_line(r)]
    if reasons:
        lines = [style.bold("为什么")] + [f"{style.bullet}{style.escape(r)}" for r in reasons]
        blocks.append(style.nl.join(lines))
    shown = [p for p in message.posts if one_line(p.text) or safe_url(p.url)][:posts]
    if shown:
        parts = [style.bold(f"代表性帖子（{len(shown)}/{len(message.posts)}）")]
        for post in shown:
            parts.extend(_md_post(post, style, quote_chars))
        blocks.append(style.nl.join(parts))
    link = safe_url(message.link)
    if with_link and link:
        blocks.append(style.link(CONSOLE_LINK_TEXT, link))
    return style.gap.join(blocks)


# Ever shorter renderings tried in turn until one fits: shorter quotes first, then fewer posts, then none.
_STEPS: tuple[tuple[int, int], ...] = ((MAX_POSTS, QUOTE_CHARS), (MAX_POSTS, 60), (2, 60), (1, 40), (0, 0))


def _fit(build: Callable[[int, int], str], max_chars: int | None, max_bytes: int | None) -> str:
    def fits(text: str) -> bool:
        return (max_chars is None or len(text) <= max_chars) and \
            (max_bytes is None or len(text.encode("utf-8")) <= max_bytes)

    text = ""
    for posts, quote_chars in _STEPS:
        text = build(posts, quote_chars)
        if fits(text):
            return text
    # Still too long without any post (huge reasons or facts): cut at a character boundary as a last resort.
    if max_chars is not None:
        text = truncate(text, max_chars)
    if max_bytes is not None:
        text = truncate_bytes(text, max_bytes)
    return text


def markdown(message: Message, dialect: Dialect, *, max_chars: int | None = None, max_bytes: int | None = None,
             with_headline: bool = True, with_link: bool = True) -> str:
    """``message`` in one markdown dialect: ``dingtalk``, ``wecom``, ``lark`` (Feishu lark_md) or ``slack`` (mrkdwn).

    ``max_chars`` / ``max_bytes`` (UTF-8) bound the result. ``with_headline=False`` leaves out the severity line
    (a card header shows it), ``with_link=False`` the console link (a button carries it).
    """
    style = _STYLES[dialect]

    def build(posts: int, quote_chars: int) -> str:
        return _md_body(message, style, posts=posts, quote_chars=quote_chars, with_headline=with_headline,
                        with_link=with_link, wecom_colour=dialect == "wecom")

    return _fit(build, max_chars, max_bytes)


def plain_text(message: Message, *, with_headline: bool = True) -> str:
    """``message`` as plain text (the e-mail text part, notification fallbacks): nothing is markup."""
    lines: list[str] = [headline(message), ""] if with_headline else []
    lines += [one_line(x) for x in (message.summary or "").splitlines() if one_line(x)]
    if message.facts:
        lines += [""] + [f"- {one_line(k)}：{one_line(v)}" for k, v in message.facts]
    reasons = [one_line(r) for r in message.reasons if one_line(r)]
    if reasons:
        lines += ["", "为什么："] + [f"- {r}" for r in reasons]
    shown = list(message.posts[:MAX_POSTS])
    if shown:
        lines += ["", f"代表性帖子（{len(shown)}/{len(message.posts)}）："]
        for post in shown:
            lines.append(f"「{truncate(one_line(post.text), QUOTE_CHARS)}」")
            meta = " · ".join(_post_meta(post))
            if meta:
                lines.append(f"  —— {meta}")
            if safe_url(post.url):
                lines.append(f"  {safe_url(post.url)}")
    if safe_url(message.link):
        lines += ["", f"{CONSOLE_LINK_TEXT}：{safe_url(message.link)}"]
    return "\n".join(lines).strip() + "\n"


#: Colours of the HTML headline bar, by severity.
_HTML_COLOUR = {"blue": "#1677ff", "yellow": "#d4a106", "orange": "#fa8c16", "red": "#f5222d"}


def html_document(message: Message) -> str:
    """``message`` as a small HTML e-mail body; every piece of text is escaped, links are http(s) only."""
    e = html.escape
    colour = _HTML_COLOUR.get(message.severity, "#595959")
    out = [
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>',
        '<body style="font-family:-apple-system,\'PingFang SC\',\'Microsoft YaHei\',sans-serif;line-height:1.6">',
        f'<h2 style="color:{colour};margin:0 0 8px">{e(headline(message))}</h2>',
    ]
    out += [f"<p>{e(one_line(x))}</p>" for x in (message.summary or "").splitlines() if one_line(x)]
    if message.facts:
        out.append("<ul>" + "".join(f"<li>{e(one_line(k))}：<b>{e(one_line(v))}</b></li>"
                                    for k, v in message.facts) + "</ul>")
    reasons = [one_line(r) for r in message.reasons if one_line(r)]
    if reasons:
        out.append("<p><b>为什么</b></p><ul>" + "".join(f"<li>{e(r)}</li>" for r in reasons) + "</ul>")
    shown = list(message.posts[:MAX_POSTS])
    if shown:
        out.append(f"<p><b>代表性帖子（{len(shown)}/{len(message.posts)}）</b></p>")
        for post in shown:
            quote_html = e(truncate(one_line(post.text), QUOTE_CHARS))
            meta = e(" · ".join(_post_meta(post)))
            url = safe_url(post.url)
            link = f' <a href="{e(url, quote=True)}">原文</a>' if url else ""
            out.append('<blockquote style="margin:4px 0 12px;padding-left:8px;border-left:3px solid #ccc">'
                       f"「{quote_html}」<br><small>{'—— ' + meta if meta else ''}{link}</small></blockquote>")
    link = safe_url(message.link)
    if link:
        out.append(f'<p><a href="{e(link, quote=True)}">{e(CONSOLE_LINK_TEXT)}</a></p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def kind_label(kind: str) -> str:
    """The Chinese name of an event kind (``incident.opened`` -> 新舆情事件), else the kind itself."""
    return KIND_ZH.get(kind, kind)
