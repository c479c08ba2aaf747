"""``type: json``: a JSON API crawler driven by config (dotted paths per field), for Weibo-style feeds and searches.

Items are found by a path with ``[*]`` (``data.cards[*].mblog``); each field by a path inside the item. Embedded items
(a repost's original post) are stored as posts of their own, linked by ``extra.repost_of``; they do not count for
"stop at the first item already seen". HTML inside text fields is stripped on normalisation; Weibo's
``Sat Jan 28 00:00:59 +0800 2017`` and relative times are understood. Pages go by ``{page}`` (a number), or by a
cursor read from each response (``next_page``: max_id, a next-page URL); ``since_param`` asks for newer ids only.
"""

from __future__ import annotations

import json as jsonlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.encoding import decode
from monitor.errors import BlockedPageError, LayoutError, ParseError
from monitor.extract import get_path, iter_path, split_path
from monitor.source import Page, ParseResult, RawPost
from sources.listing import FieldSpec, ListingConfig, ListingSource, apply_transforms, looks_like_wall, to_raw_post

# An API that wants a login answers with (or redirects to) a sign-in URL: {"ok":-100,"url":"https://passport...."}.
_LOGIN_URL = re.compile(r"https?://[^\s\"'<>]*(passport|signin|sign_in|sign-in|login)", re.I)
# m.weibo.cn writes emoticons as <img alt=[怒] src=...> with the alt unquoted; normalisation keeps quoted alts only.
_UNQUOTED_ALT = re.compile(r"(<img\b[^>]*?\balt=)([^\s\"'>/]+)", re.I)
# JSONP: callback({...}); or /**/callback({...})
_JSONP = re.compile(r"^\s*(?:/\*\*/\s*)?[A-Za-z_$][\w$.]*\s*\((.*)\)\s*;?\s*$", re.S)


class OkCheck(BaseModel):
    """How the API says a response is good (Weibo: ``ok: 1``); otherwise its message is reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="path of the status in a response, e.g. ok")
    equals: Any = Field(default=1, description="the value meaning success")
    message: str | None = Field(default=None, description="path of the API's error message")

    @field_validator("path", "message")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None:
            split_path(v)
        return v


class JsonConfig(ListingConfig):
    """Options of a json source."""

    shorthand_key: ClassVar[str] = "path"

    items: list[str] = Field(description="path(s) to the items, e.g. data.cards[*].mblog")
    params: dict[str, str] = Field(default_factory=dict, description="query parameters; may hold {keyword}/{page}")
    nested: list[str] = Field(default_factory=list, description="paths inside an item to embedded items to store too "
                                                                "(a repost's original), linked by extra.repost_of")
    ok: OkCheck | None = None
    next_page: FieldSpec | None = Field(default=None, description="where a response gives the next page's {page}: a "
                                                                  "path (data.max_id) or {path, regex}")
    since_param: str | None = Field(default=None, description="query parameter that asks only for ids above the "
                                                              "largest one seen (since_id)")

    @field_validator("items", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("items", "nested")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for path in v:
            split_path(path)
        return v

    @field_validator("params", mode="before")
    @classmethod
    def _param_text(cls, v: Any) -> Any:
        # YAML reads `count: 20` as a number and `fresh: true` as a bool; a query string holds text.
        def text(x: Any) -> Any:
            if x is None:
                return ""
            if isinstance(x, bool):
                return str(x).lower()
            return str(x) if isinstance(x, int | float) else x

        return {str(k): text(x) for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("next_page", mode="before")
    @classmethod
    def _next_page_path(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str) else v

    @field_validator("next_page")
    @classmethod
    def _next_page_has_path(cls, v: FieldSpec | None) -> FieldSpec | None:
        if v is not None:
            if not v.path:
                raise ValueError("needs a path, e.g. next_page: data.cardlistInfo.since_id")
            split_path(v.path)
        return v

    @model_validator(mode="after")
    def _keywords_for_params(self) -> JsonConfig:
        if any("{keyword}" in v for v in self.params.values()) and not self.keywords:
            raise ValueError("params have {keyword} but no keywords are given; add keywords: [...]")
        return self

    @property
    def cursor_paged(self) -> bool:
        """Paged by a cursor from each response: a response without one is the last page."""
        return self.next_page is not None

    def render_url(self, keyword: str | None, page: int | str, since: str | None = None) -> str:
        """The URL with {keyword}/{page} filled in, the params appended, and since_id when asked for."""
        url = super().render_url(keyword, page)
        params = {k: v.replace("{keyword}", keyword or "").replace("{page}", str(page)) for k, v in self.params.items()}
        if self.since_param and since:
            params[self.since_param] = since
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, encoding=self.keyword_encoding)
        return url


@dataclass
class JsonParseResult(ParseResult):
    """A list page's items, plus the items embedded in them (stored too, but not counted for paging)."""

    embedded: list[RawPost] = field(default_factory=list)


@dataclass
class _Tally:
    """What went wrong with single items of one page, reported once per page."""

    no_id: int = 0
    bad_times: list[str] = field(default_factory=list)


class JsonSource(ListingSource):
    """A JSON API listing posts."""

    kind = "json"
    config_model = JsonConfig
    config: JsonConfig
    example: ClassVar[dict[str, Any]] = {
        "url": "{base}/api/search?page={page}", "items": "data.items[*]",
        "fields": {"id": "id", "text": "text", "author": "user.name", "published_at": "created_at"},
    }

    def parse(self, page: Page) -> ParseResult:
        """Every post of a page: a list page's items and their embedded items, or a detail page's fields."""
        result = super().parse(page)
        if not isinstance(result, JsonParseResult) or not result.embedded:
            return result
        # Embedded copies first: where an original is also an item of its own, the item's fields win the merge.
        return ParseResult(posts=[*result.embedded, *result.posts], problems=list(result.problems),
                           next_page=result.next_page)

    def _load(self, page: Page) -> Any:
        text, _ = decode(page.content, page.content_type)
        try:
            return jsonlib.loads(text)
        except RecursionError:
            # Thousands of nested brackets: hostile or broken, never an API answer worth reading.
            raise ParseError(f"{self.name}: {page.url} returned JSON nested too deeply to read; "
                             f"check the URL with `monitor try-source {self.name}`") from None
        except ValueError as exc:
            jsonp = _JSONP.match(text)
            if jsonp:
                try:
                    return jsonlib.loads(jsonp.group(1))
                except (ValueError, RecursionError):
                    pass
            wall = looks_like_wall(text)
            if wall is None and _LOGIN_URL.search(page.url):
                wall = "redirected to a login URL"
            if wall:
                raise BlockedPageError(f"{self.name}: {page.url} answered a login or captcha page ('{wall}') instead "
                                       f"of JSON; the API may need cookies (headers: {{Cookie: ${{...}}}})") from None
            start = text.lstrip()[:60].replace("\n", " ")
            raise ParseError(f"{self.name}: {page.url} did not return JSON ({exc}); it starts with {start!r}") from None

    def parse_list(self, page: Page) -> JsonParseResult:
        """Every item (and embedded item) of one API response."""
        data = self._load(page)
        result = JsonParseResult()
        if not self._ok(data, page):
            return result  # the API's own "no results" answer (empty_marker)
        tally = _Tally()
        found = 0
        for path in self.config.items:
            for item in iter_path(data, path):
                if isinstance(item, dict):
                    found += 1
                    self._add(item, page, result, tally)
        if not found:
            self._explain_empty(data, page)
        elif not result.posts:
            raise LayoutError(f"{self.name}: {found} item(s) at {', '.join(self.config.items)} in the response from "
                              f"{page.url} but none had an id at fields.id: the API may have changed; check fields.id "
                              f"with `monitor try-source {self.name}`")
        if tally.no_id:
            result.problems.append(f"{tally.no_id} item(s) on {page.url} have no id at fields.id; skipped")
        if tally.bad_times:
            result.problems.append(f"{len(tally.bad_times)} item(s) on {page.url} have a time that cannot be read "
                                   f"(e.g. {tally.bad_times[0]!r}); they are dated by the fetch time")
        if self.config.next_page:
            nxt = self._field(data, "next_page", self.config.next_page, page)
            result.next_page = str(nxt) if nxt not in (None, "", 0, "0") else None
        return result

    def parse_detail(self, page: Page) -> ParseResult:
        """Fields of an item's own API response."""
        assert self.config.detail is not None
        data = self._load(page)
        tally = _Tally()
        values = {name: self._field(data, name, spec, page, tally) for name, spec in self.config.detail.fields.items()}
        if values and all(v in (None, "") for v in values.values()):
            return ParseResult(problems=[f"detail {page.url} of {page.meta.get('id')}: no detail field found anything; "
                                         f"the API may have changed (check detail.fields)"])
        values["id"] = page.meta.get("id")
        post = to_raw_post(values)
        return ParseResult(posts=[post] if post else [])

    def _add(self, item: dict[str, Any], page: Page, result: JsonParseResult, tally: _Tally) -> None:
        post = self._post(item, page, tally)
        if post is None:
            tally.no_id += 1
            return
        for path in self.config.nested:
            for inner in iter_path(item, path):
                if not isinstance(inner, dict):
                    continue
                original = self._post(inner, page, tally)
                if original is not None and original.native_id != post.native_id:
                    post.extra.setdefault("repost_of", original.native_id)
                    result.embedded.append(original)
        result.posts.append(post)

    def _post(self, item: dict[str, Any], page: Page, tally: _Tally) -> RawPost | None:
        values = {name: self._field(item, name, spec, page, tally) for name, spec in self.config.fields.items()}
        return to_raw_post(values)

    def _field(self, item: Any, name: str, spec: FieldSpec, page: Page, tally: _Tally | None = None) -> Any:
        if spec.value is not None:
            raw: Any = spec.value
        elif spec.path:
            values = [v for v in iter_path(item, spec.path) if v not in (None, "")]
            if spec.all:
                raw = spec.joiner.join(str(v) for v in values) if values else None
            else:
                raw = values[0] if values else None
        else:
            raw = None
        if isinstance(raw, dict | list):
            raw = jsonlib.dumps(raw, ensure_ascii=False)
        elif isinstance(raw, str) and "<img" in raw:
            raw = _UNQUOTED_ALT.sub(r'\1"\2"', raw)
        value = apply_transforms(raw, name, spec, page, self.tz)
        if name == "published_at" and value is None and raw not in (None, "") and tally is not None:
            tally.bad_times.append(str(raw)[:40])
        return value

    def _ok(self, data: Any, page: Page) -> bool:
        """True when the response is good, False when it is the API's "no results"; raise otherwise."""
        ok = self.config.ok
        if ok is None:
            return True
        got = get_path(data, ok.path)
        if got == ok.equals or str(got) == str(ok.equals):
            return True
        raw_message = get_path(data, ok.message) if ok.message else None
        message = "" if raw_message in (None, "") else str(raw_message)
        blob = jsonlib.dumps(data, ensure_ascii=False)[:20_000]
        marker = self.config.empty_marker
        if marker and (marker in message or marker in blob):
            return False
        said = f" ({message})" if message else ""
        if (message and looks_like_wall(message)) or _LOGIN_URL.search(blob):
            raise BlockedPageError(f"{self.name}: the API at {page.url} answered {ok.path}={got!r}{said}: it wants a "
                                   f"login; set cookies (headers: {{Cookie: ${{...}}}}) or slow down")
        raise ParseError(f"{self.name}: the API at {page.url} answered {ok.path}={got!r}{said}; check the URL, "
                         f"parameters and cookies")

    def _explain_empty(self, data: Any, page: Page) -> None:
        """No item at all: fine when the list is there but empty (no results), an error when it is missing."""
        if self._list_exists(data):
            return
        blob = jsonlib.dumps(data, ensure_ascii=False)[:200_000]
        if self.config.empty_marker and self.config.empty_marker in blob:
            return
        wall = looks_like_wall(blob)
        if wall:
            raise BlockedPageError(f"{self.name}: {page.url} answered JSON without items that mentions '{wall}'; the "
                                   f"API may need cookies (headers: {{Cookie: ${{...}}}})")
        raise LayoutError(f"{self.name}: items path {', '.join(self.config.items)} found nothing in the response "
                          f"from {page.url}: the API may have changed; check items: with "
                          f"`monitor try-source {self.name}`")

    def _list_exists(self, data: Any) -> bool:
        """True when an items path's list is there but empty (no results), not missing (the API changed)."""
        for path in self.config.items:
            parts = split_path(path)
            if "*" not in parts:
                continue
            if any(isinstance(v, list) for v in iter_path(data, parts[: parts.index("*")])):
                return True
        return False
