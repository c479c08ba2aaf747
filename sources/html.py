"""``type: html``: a list-page crawler driven entirely by config (CSS selectors per field), for forums and portals.

Pages are decoded from bytes (header, meta tag, detection: GBK/GB18030 forums are common) and parsed with lxml's
HTML parser; CSS selectors are compiled once by cssselect (the translator Scrapy's parsel uses; ``:contains("text")``
works, soupsieve's ``:has()`` does not). beautifulsoup4 was the first choice, but ``bench/html_parse.py`` showed its
tree building took all of the parse time (about 300 ms for a 200 KB forum page against 15 ms for lxml).

An empty list on a 200 page is never "no new posts": it is a login wall / captcha (``blocked``) or a changed layout
(``layout``), unless the page shows the configured ``empty_marker``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Any, ClassVar, TypeAlias
from urllib.parse import urljoin, urlsplit

import lxml.html
from cssselect import HTMLTranslator, SelectorError
from lxml import etree
from pydantic import Field, field_validator

from monitor.encoding import decode
from monitor.errors import BlockedPageError, LayoutError
from monitor.source import Page, ParseResult
from sources.listing import (
    DetailSpec,
    FieldSpec,
    ListingConfig,
    ListingSource,
    apply_transforms,
    looks_like_wall,
    to_raw_post,
)

Node: TypeAlias = lxml.html.HtmlElement  # lxml ships no type hints: an alias for readers


class HtmlConfig(ListingConfig):
    """Options of an html source."""

    items: str = Field(description="CSS selector matching each item (post, thread, complaint) on a list page")
    uncomment: bool = Field(default=False, description="also read markup hidden in <!-- comments --> (Tieba "
                                                        "ships its thread list inside one)")

    @field_validator("items")
    @classmethod
    def _items_selector(cls, v: str) -> str:
        _check_selector(v)
        return v

    @field_validator("fields")
    @classmethod
    def _field_selectors(cls, v: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for spec in v.values():
            if spec.selector:
                _check_selector(spec.selector)
        return v

    @field_validator("detail")
    @classmethod
    def _detail_selectors(cls, v: DetailSpec | None) -> DetailSpec | None:
        if v is not None:
            for selector in [v.root, *(s.selector for s in v.fields.values())]:
                if selector:
                    _check_selector(selector)
        return v


class HtmlSource(ListingSource):
    """A list of posts on HTML pages, read with CSS selectors from the config."""

    kind = "html"
    config_model = HtmlConfig
    config: HtmlConfig
    example: ClassVar[dict[str, Any]] = {
        "url": "{base}/forum.php?page={page}", "items": "li.thread", "max_pages": 2,
        "fields": {"id": {"selector": "a.title", "attr": "href"}, "title": "a.title",
                   "url": {"selector": "a.title", "attr": "href"}},
    }

    def _soup(self, page: Page) -> Node:
        text, _ = decode(page.content, page.content_type)
        if self.config.uncomment:
            text = _COMMENT_MARK.sub("", text)
        # lxml refuses str input that declares its encoding (<?xml encoding=...?>): the text is decoded already.
        text = _XML_DECL.sub("", text, count=1)
        if not text.strip():
            text = "<html></html>"
        try:
            doc = lxml.html.document_fromstring(text, parser=_PARSER)
        except (etree.ParserError, ValueError):  # nothing parseable (NUL bytes, binary junk): an empty document
            return lxml.html.document_fromstring("<html></html>")
        # Script and style text is never a field value and would pollute text fields and the wall check.
        etree.strip_elements(doc, "script", "style", "noscript", "template", with_tail=False)
        return doc

    def parse_list(self, page: Page) -> ParseResult:
        """Every item on a list page."""
        soup = self._soup(page)
        nodes = _select(soup, self.config.items)
        result = ParseResult()
        if not nodes:
            self._explain_empty(soup, page)
            return result
        based = _based(page, soup)
        for i, node in enumerate(nodes):
            values = {name: self._field(node, name, spec, based) for name, spec in self.config.fields.items()}
            post = to_raw_post(values)
            if post is None:
                result.problems.append(f"item {i + 1} on {page.url}: the id field found nothing; item skipped")
                continue
            result.posts.append(post)
        if not result.posts:
            raise LayoutError(f"{self.name}: selector {self.config.items!r} matched {len(nodes)} items on {page.url} "
                              f"but none had an id: the layout may have changed; check fields.id with "
                              f"`monitor try-source {self.name}`")
        return result

    def parse_detail(self, page: Page) -> ParseResult:
        """The detail fields of one item (its id comes from the list page)."""
        assert self.config.detail is not None
        soup = self._soup(page)
        root: Node | None = _select_one(soup, self.config.detail.root) if self.config.detail.root else soup
        if root is None:
            wall = _wall(soup)
            why = f"it looks like a login or captcha page ('{wall}')" if wall else "the layout may have changed"
            return ParseResult(problems=[f"detail page {page.url}: {self.config.detail.root!r} matched nothing; {why}"])
        based = _based(page, soup)
        values = {name: self._field(root, name, spec, based) for name, spec in self.config.detail.fields.items()}
        values["id"] = page.meta.get("id")
        post = to_raw_post(values)
        return ParseResult(posts=[post] if post else [])

    def _explain_empty(self, soup: Node, page: Page) -> None:
        text = _text(soup)
        if self.config.empty_marker and self.config.empty_marker in text:
            return
        # Checked on later pages too: a captcha on page 2 is worth a problem line, the end of a list is not.
        wall = _wall(soup)
        if wall:
            raise BlockedPageError(f"{self.name}: {page.url} looks like a login wall or captcha page ('{wall}'), "
                                   f"not a list; the site may need cookies (headers: {{Cookie: ${{...}}}}) or a "
                                   f"slower interval")
        raise LayoutError(f"{self.name}: selector {self.config.items!r} matched 0 items on a {page.status} page "
                          f"({page.url}): the layout may have changed; run `monitor try-source {self.name} "
                          f"--save-fixture DIR` and adjust items:")

    def _field(self, node: Node, name: str, spec: FieldSpec, page: Page) -> Any:
        if spec.value is not None:
            raw: Any = spec.value
        else:
            if not spec.selector:
                targets: list[Node] = [node]
            elif spec.all:
                targets = _select(node, spec.selector)
            else:
                found = _select_one(node, spec.selector)
                targets = [found] if found is not None else []
            values = [v for v in (_read(t, spec.attr) for t in targets) if v]
            raw = (spec.joiner.join(values) if spec.all else values[0]) if values else None
        return apply_transforms(raw, name, spec, page, self.tz)


_COMMENT_MARK = re.compile(r"<!--|-->")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
# Comments and processing instructions are never field values; huge_tree lifts lxml's depth/size guards, which
# would otherwise cut a long (but size-capped by the HTTP client) forum page short.
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True)


_TRANSLATOR = HTMLTranslator()


@lru_cache(maxsize=1024)
def _compiled(selector: str) -> etree.XPath:
    # cssselect's own translator, compiled by lxml: plain XPath 1.0 (lxml.cssselect's variant calls an extension
    # function for :contains() that fails to resolve on some documents).
    return etree.XPath(_TRANSLATOR.css_to_xpath(selector))


def _check_selector(selector: str) -> None:
    try:
        _compiled(selector)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None


def _select(node: Node, selector: str) -> list[Node]:
    return [n for n in _compiled(selector)(node) if isinstance(n, etree.ElementBase)]


def _select_one(node: Node, selector: str) -> Node | None:
    found = _select(node, selector)
    return found[0] if found else None


def _text(node: Node) -> str:
    """Visible text of a node, pieces joined by spaces (scripts and styles were dropped when parsing)."""
    return " ".join(_itertext(node))


def _itertext(node: Node) -> list[str]:
    # lxml's itertext walks in C without recursion: a hostile page nested 100,000 deep is read like any other.
    return [t for t in node.itertext() if isinstance(t, str)]
#: A page with less visible text than this that names a login or captcha is a wall; a full page that merely
#: mentions one (Discuz prints 您需要登录后才可以发帖 under every board) is a changed layout.
WALL_TEXT_LIMIT = 3000


def _wall(soup: Node) -> str | None:
    """The login/captcha phrase of a page that is a wall: in its <title>, or on a page with little else on it."""
    title_node = _select_one(soup, "title")
    title = _text(title_node) if title_node is not None else ""
    found = looks_like_wall(title)
    if found:
        return found
    text = " ".join(_text(soup).split())
    return looks_like_wall(text) if len(text) < WALL_TEXT_LIMIT else None


def _based(page: Page, soup: Node) -> Page:
    """The page as its links resolve: a ``<base href>`` (every Discuz page has one) moves them, as in a browser."""
    tag = _select_one(soup, "base[href]")
    href = tag.get("href") if tag is not None else None
    if not isinstance(href, str) or not href.strip():
        return page
    url = urljoin(page.url, href.strip())
    return replace(page, url=url) if urlsplit(url).scheme in ("http", "https") else page


def _read(tag: Node, attr: str) -> str | None:
    if attr == "text":
        # Like BeautifulSoup's get_text(" ", strip=True): each text piece stripped, empty ones dropped.
        return " ".join(p.strip() for p in _itertext(tag) if p.strip())
    if attr == "html":
        inner = tag.text or ""
        return inner + "".join(etree.tostring(c, encoding="unicode", method="html") for c in tag)
    value = tag.get(attr)
    return value if isinstance(value, str) else None
