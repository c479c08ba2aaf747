"""``type: html``: a list-page crawler driven entirely by config (CSS selectors per field), for forums and portals.

Pages are decoded from bytes (header, meta tag, detection: GBK/GB18030 forums are common) and parsed with
beautifulsoup4 on lxml. An empty list on a 200 page is never "no new posts": it is a login wall / captcha
(``blocked``) or a changed layout (``layout``), unless the page shows the configured ``empty_marker``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag, XMLParsedAsHTMLWarning
from pydantic import Field

from monitor.encoding import decode
from monitor.errors import BlockedPageError, LayoutError
from monitor.source import Page, ParseResult
from sources.listing import FieldSpec, ListingConfig, ListingSource, apply_transforms, looks_like_wall, to_raw_post


class HtmlConfig(ListingConfig):
    """Options of an html source."""

    items: str = Field(description="CSS selector matching each item (post, thread, complaint) on a list page")
    uncomment: bool = Field(default=False, description="also read markup hidden in <!-- comments --> (Tieba "
                                                        "ships its thread list inside one)")


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

    def _soup(self, page: Page) -> BeautifulSoup:
        text, _ = decode(page.content, page.content_type)
        if self.config.uncomment:
            text = _COMMENT_MARK.sub("", text)
        with warnings.catch_warnings():
            # A site that answers XML where HTML was expected is reported by the empty-list check, not a warning.
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            return BeautifulSoup(text, "lxml")

    def parse_list(self, page: Page) -> ParseResult:
        """Every item on a list page."""
        soup = self._soup(page)
        nodes = soup.select(self.config.items)
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
        root: Tag | None = soup.select_one(self.config.detail.root) if self.config.detail.root else soup
        if root is None:
            wall = _wall(soup)
            why = f"it looks like a login or captcha page ('{wall}')" if wall else "the layout may have changed"
            return ParseResult(problems=[f"detail page {page.url}: {self.config.detail.root!r} matched nothing; {why}"])
        based = _based(page, soup)
        values = {name: self._field(root, name, spec, based) for name, spec in self.config.detail.fields.items()}
        values["id"] = page.meta.get("id")
        post = to_raw_post(values)
        return ParseResult(posts=[post] if post else [])

    def _explain_empty(self, soup: BeautifulSoup, page: Page) -> None:
        text = soup.get_text(" ")
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

    def _field(self, node: Tag, name: str, spec: FieldSpec, page: Page) -> Any:
        if spec.value is not None:
            raw: Any = spec.value
        else:
            if not spec.selector:
                targets: list[Tag] = [node]
            elif spec.all:
                targets = node.select(spec.selector)
            else:
                found = node.select_one(spec.selector)
                targets = [found] if found is not None else []
            values = [v for v in (_read(t, spec.attr) for t in targets) if v]
            raw = (spec.joiner.join(values) if spec.all else values[0]) if values else None
        return apply_transforms(raw, name, spec, page, self.tz)


_COMMENT_MARK = re.compile(r"<!--|-->")
#: A page with less visible text than this that names a login or captcha is a wall; a full page that merely
#: mentions one (Discuz prints 您需要登录后才可以发帖 under every board) is a changed layout.
WALL_TEXT_LIMIT = 3000


def _wall(soup: BeautifulSoup) -> str | None:
    """The login/captcha phrase of a page that is a wall: in its <title>, or on a page with little else on it."""
    title = soup.title.get_text(" ") if soup.title else ""
    found = looks_like_wall(title)
    if found:
        return found
    text = " ".join(soup.get_text(" ").split())
    return looks_like_wall(text) if len(text) < WALL_TEXT_LIMIT else None


def _based(page: Page, soup: BeautifulSoup) -> Page:
    """The page as its links resolve: a ``<base href>`` (every Discuz page has one) moves them, as in a browser."""
    tag = soup.find("base", href=True)
    href = tag.get("href") if isinstance(tag, Tag) else None
    if not isinstance(href, str) or not href.strip():
        return page
    url = urljoin(page.url, href.strip())
    return replace(page, url=url) if urlsplit(url).scheme in ("http", "https") else page


def _read(tag: Tag, attr: str) -> str | None:
    if attr == "text":
        return tag.get_text(" ", strip=True)
    if attr == "html":
        return tag.decode_contents()
    value = tag.get(attr)
    if isinstance(value, list):
        return " ".join(value)
    return value
