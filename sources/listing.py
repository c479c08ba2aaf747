"""Shared machinery of the config-driven list kinds (``html``, ``json``): keywords x pages, stop at the first item
already seen, optional detail pages, field specs with transforms, presets.

A kind subclasses :class:`ListingSource` and implements ``parse_list`` (items of a list page) and ``parse_detail``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.errors import FetchError, ParseError
from monitor.extract import parse_count, parse_time
from monitor.http import HttpClient, RequestOptions
from monitor.source import Cursor, FetchResult, Page, ParseResult, RawPost, Source, SourceConfig, _check_url

#: The fields every post has; any other key under ``fields:`` is kept in the post's ``extra``.
POST_FIELDS = ("id", "url", "title", "text", "author", "author_id", "published_at", "reposts", "comments", "likes")
Transform = Literal["strip", "absolute", "number", "time", "lower", "first_line", "collapse"]
#: What a post field needs at the end: applied after the field's own transforms unless it lists them already.
DEFAULT_TRANSFORMS: dict[str, list[Transform]] = {
    "url": ["absolute"], "published_at": ["time"], "reposts": ["number"], "comments": ["number"],
    "likes": ["number"],
}
# Words of login walls, captcha and anti-bot pages on Chinese and English sites. "登录后才可以发帖/回帖" is not
# one: Discuz prints it under every board and thread for guests. Discuz's wall says "您尚未登录", phpBB's
# "registered and logged in to view this forum".
_WALL = re.compile(r"验证码|安全验证|人机验证|滑动验证|请先登录|尚未登录|需要先登录|"
                   r"登录后(?!才(?:可以|能)(?:发帖|回帖|发表|回复|评论|发言))|访问过于频繁|异常访问|captcha|geetest|"
                   r"please log ?in|sign in to continue|logged in to view|must be logged in|access denied|"
                   r"are you a robot", re.I)
DEFAULT_TZ = "Asia/Shanghai"


class FieldSpec(BaseModel):
    """How to read one field of an item: where (CSS selector or JSON path), what, and how to clean it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    selector: str | None = Field(default=None, description="html: CSS selector inside the item ('' = the item)")
    path: str | None = Field(default=None, description="json: dotted path inside the item, e.g. user.screen_name")
    attr: str = Field(default="text", description="html: text | html | an attribute name such as href or title")
    regex: str | None = Field(default=None, description="keep the first group that matched (or the whole match)")
    all: bool = Field(default=False, description="join every match instead of taking the first")
    joiner: str = Field(default=" ", description="what `all` joins with")
    value: Any = Field(default=None, description="a constant instead of a lookup")
    template: str | None = Field(default=None, description="put the value into this text at {value}, e.g. "
                                                           "https://m.weibo.cn/detail/{value} (after regex)")
    transforms: list[Transform] = Field(default_factory=list)

    @field_validator("template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None and "{value}" not in v:
            raise ValueError(f"template {v!r} has no {{value}}; write it like https://example.com/t/{{value}}")
        return v

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regex {v!r}: {exc}") from exc
        return v


class DetailSpec(BaseModel):
    """Follow each new item's own page to read more (the full text, the complaint's demand ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_field: str = Field(default="url", description="the item field holding the detail page's URL")
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    max_pages: int = Field(default=10, ge=0, le=500, description="detail pages fetched per poll at most")
    root: str | None = Field(default=None, description="html: selector of the post's block on the detail page")


class ListingConfig(SourceConfig):
    """Options shared by the html and json kinds."""

    preset: str | None = Field(default=None, description="start from a ready config (discuz, phpbb, weibo, ...)")
    url: str = Field(description="list page URL; may hold {keyword} and {page}")
    keywords: list[str] = Field(default_factory=list, description="one list per keyword, put into {keyword}")
    keyword_encoding: str = Field(default="utf-8", description="how {keyword} is URL-encoded (gbk for old forums)")
    max_pages: int = Field(default=1, ge=1, le=50, description="list pages per keyword per poll at most")
    first_page: int = Field(default=1, description="the value of {page} on the first page")
    page_step: int = Field(default=1, ge=1, description="how {page} grows (25 for offset-style paging)")
    fields: dict[str, FieldSpec] = Field(description="field name -> how to read it; `id` is required")
    detail: DetailSpec | None = None
    empty_marker: str | None = Field(default=None, description="text of the site's 'no results' page")
    seen_limit: int = Field(default=2000, ge=10, le=100_000, description="ids remembered to stop paging")

    presets_package: ClassVar[str] = "sources.presets"

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("preset"):
            data = _deep_merge(load_preset(str(data["preset"]), str(data.get("type", ""))), data)
        return cls._shorthand(data)

    #: What a bare string under ``fields:`` means: a CSS ``selector`` (html) or a JSON ``path`` (json).
    shorthand_key: ClassVar[str] = "selector"

    @classmethod
    def _shorthand(cls, data: dict[str, Any]) -> dict[str, Any]:
        def expand(fields: Any) -> Any:
            if not isinstance(fields, dict):
                return fields
            return {k: ({cls.shorthand_key: v} if isinstance(v, str) else v) for k, v in fields.items()}

        data = dict(data)
        data["fields"] = expand(data.get("fields"))
        if isinstance(data.get("detail"), dict):
            data["detail"] = {**data["detail"], "fields": expand(data["detail"].get("fields", {}))}
        return data

    @field_validator("fields")
    @classmethod
    def _needs_id(cls, v: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        if "id" not in v:
            raise ValueError("needs an `id` field (a stable id of each item: its URL, a tid, a complaint number)")
        return v

    @field_validator("keyword_encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        try:
            "测试".encode(v)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {v!r}; use utf-8, gbk or gb18030") from exc
        return v

    @model_validator(mode="after")
    def _check_urls(self) -> ListingConfig:
        if "{keyword}" in self.url and not self.keywords:
            raise ValueError("url has {keyword} but no keywords are given; add keywords: [...]")
        _check_url(self.render_url(self.keywords[0] if self.keywords else None, self.first_page))
        return self

    @property
    def cursor_paged(self) -> bool:
        """Whether {page} comes from each response (a json source's next_page): no cursor then means the end."""
        return False

    def render_url(self, keyword: str | None, page: int | str, since: str | None = None) -> str:
        """The list URL for one keyword and page."""
        kw = quote(keyword.encode(self.keyword_encoding), safe="") if keyword is not None else ""
        return self.url.replace("{keyword}", kw).replace("{page}", quote(str(page), safe=""))


def load_preset(name: str, kind: str) -> dict[str, Any]:
    """The preset ``name`` for ``kind`` from sources/presets/; ValueError listing the presets otherwise."""
    folder = resources.files("sources.presets")
    available = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
    if name not in available:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(available)}")
    data = yaml.safe_load(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8"))
    if kind and data.get("type") != kind:
        raise ValueError(f"preset {name!r} is for type {data.get('type')!r}, not {kind!r}")
    data.pop("description", None)
    return dict(data)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_transforms(value: Any, name: str, spec: FieldSpec, page: Page, tz: ZoneInfo) -> Any:
    """Regex, then the field's transforms, then what its kind of field needs (a time, a number, an absolute URL)."""
    if value is None:
        return None
    if spec.regex is not None and not isinstance(value, int | float):
        m = re.search(spec.regex, str(value))
        if not m:
            return None
        # The first group that took part: `title="(.+?)"|>(.+?)<` reads whichever alternative matched.
        value = next((g for g in m.groups() if g is not None), m.group(0))
    if spec.template is not None:
        value = spec.template.replace("{value}", str(value))
    # A field that lists its own transforms (`[collapse]` on published_at) still ends as a time: a string there
    # would be dropped and the post dated by its fetch time.
    steps = [*spec.transforms, *(s for s in DEFAULT_TRANSFORMS.get(name, []) if s not in spec.transforms)]
    for step in steps:
        if value is None:
            break
        if step == "strip":
            value = str(value).strip()
        elif step == "absolute":
            # urljoin(base, "") is the base itself: an empty href must not become the list page's URL.
            value = urljoin(page.url, str(value).strip()) if str(value).strip() else None
        elif step == "number":
            value = parse_count(value)
        elif step == "time":
            value = parse_time(value, page.fetched_at, tz)
        elif step == "lower":
            value = str(value).lower()
        elif step == "first_line":
            value = str(value).strip().split("\n", 1)[0]
        elif step == "collapse":
            value = re.sub(r"\s+", " ", str(value)).strip()
    return value


def to_raw_post(values: dict[str, Any]) -> RawPost | None:
    """A RawPost from extracted field values (None without an id); unknown fields go to ``extra``."""
    native = values.get("id")
    if native in (None, ""):
        return None
    extra = {k: v for k, v in values.items() if k not in POST_FIELDS and v not in (None, "")}
    published = values.get("published_at")

    def text(key: str) -> str:
        v = values.get(key)
        return "" if v is None else str(v)

    def count(key: str) -> int | None:
        v = values.get(key)
        return parse_count(v) if v is not None else None

    return RawPost(native_id=str(native).strip(), url=text("url"), title=text("title"), text=text("text"),
                   author=text("author"), author_id=text("author_id"),
                   published_at=published if hasattr(published, "tzinfo") else None,
                   reposts=count("reposts"), comments=count("comments"), likes=count("likes"),
                   extra={k: _plain(v) for k, v in extra.items()})


def _plain(value: Any) -> Any:
    """A value for ``extra`` (stored as JSON): times as ISO text in UTC, like every stored time."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else value


def looks_like_wall(text: str) -> str | None:
    """The login/captcha/anti-bot phrase found in a page, if any."""
    m = _WALL.search(text[:200_000])
    return m.group(0) if m else None


class ListingSource(Source):
    """Keywords x pages of a list, stopping at the first item already stored, plus detail pages for new items."""

    config: ListingConfig

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self.tz = ZoneInfo(config.timezone or DEFAULT_TZ)
        self._memo: dict[int, tuple[Page, ParseResult]] = {}

    # -- what a kind implements ----------------------------------------------------------------------------------
    def parse_list(self, page: Page) -> ParseResult:
        """Items of one list page; raise LayoutError / BlockedPageError when the page holds none for a reason."""
        raise NotImplementedError

    def parse_detail(self, page: Page) -> ParseResult:
        """The fields of one item's detail page, as a RawPost with the item's id."""
        raise NotImplementedError

    # -- the contract --------------------------------------------------------------------------------------------
    def parse(self, page: Page) -> ParseResult:
        """Dispatch on the page's role; a list page parsed during fetch is not parsed again."""
        memo = self._memo.pop(id(page), None)  # popped: the memo must not keep a poll's pages alive until the next
        if memo is not None and memo[0] is page:
            return memo[1]
        if page.meta.get("role") == "detail":
            return self.parse_detail(page)
        return self.parse_list(page)

    def _options(self, validators: dict[str, Any] | None = None) -> RequestOptions:
        cfg = self.config
        v = validators or {}
        return RequestOptions(headers=dict(cfg.headers), timeout=cfg.timeout, max_bytes=cfg.max_bytes,
                              robots=cfg.robots, proxy=cfg.proxy, etag=v.get("etag"),
                              last_modified=v.get("last_modified"))

    async def fetch(self, http: HttpClient, cursor: Cursor) -> FetchResult:
        """List pages per keyword until an item already seen (or max_pages), then detail pages of new items."""
        cfg = self.config
        self._memo.clear()
        seen = set(cursor.get("seen") or [])
        pages: list[Page] = []
        problems: list[str] = []
        new_items: list[RawPost] = []
        since = cursor.get("since")
        top: str | None = since
        collected: set[str] = set()  # ids read in this poll
        # A URL without {keyword} is one list whatever the keywords: fetch it once, not once per keyword.
        keywords: list[str | None] = list(cfg.keywords) if cfg.keywords and _varies(cfg, "keyword") else [None]
        paged = _varies(cfg, "page")
        # Conditional GET of each keyword's first page: a list that answers 304 has nothing new (ETag/Last-Modified
        # per first-page URL, kept in the cursor).
        old_validators: dict[str, Any] = dict(cursor.get("validators") or {})
        validators: dict[str, Any] = {}
        for keyword in keywords:
            page_value: int | str = cfg.first_page
            for index in range(cfg.max_pages):
                url = cfg.render_url(keyword, page_value, since if index == 0 else None)
                try:
                    page = await http.get(url, self._options(old_validators.get(url) if index == 0 else None))
                except FetchError as exc:
                    if not pages or index == 0:
                        raise
                    problems.append(f"stopped paging at {url}: {exc}")
                    break
                if index == 0:
                    if page.not_modified:
                        if url in old_validators:
                            validators[url] = old_validators[url]
                        break
                    tags = {"etag": page.headers.get("etag"), "last_modified": page.headers.get("last-modified")}
                    if any(tags.values()):
                        validators[url] = tags
                page = replace(page, meta={"role": "list", "keyword": keyword, "index": index})
                result = self.parse_list(page) if index == 0 else self._parse_later(page, problems)
                # With detail pages, an item stored before got its full text from its detail page: the list's
                # shorter version must not be stored again over it (as an "edit").
                stored = result if cfg.detail is None else replace(
                    result, posts=[p for p in result.posts if p.native_id not in seen])
                self._memo[id(page)] = (page, stored)
                pages.append(page)
                fresh = [p for p in result.posts if p.native_id not in seen]
                repeated = bool(result.posts) and all(p.native_id in collected for p in result.posts)
                for post in fresh:  # one item on two pages (or under two keywords) is one new item, one detail page
                    if post.native_id not in collected:
                        new_items.append(post)
                    collected.add(post.native_id)
                collected.update(p.native_id for p in result.posts)
                top = _max_id([top, *(p.native_id for p in result.posts)])
                if not result.posts or len(fresh) < len(result.posts) or not paged:
                    break  # an item we already have: the rest of the list is older
                if repeated and index > 0:
                    break  # Discuz and phpBB answer a page past the end with the last page again
                if result.next_page is not None:
                    page_value = result.next_page
                elif isinstance(page_value, int) and not cfg.cursor_paged:
                    page_value += cfg.page_step
                else:
                    break  # a cursor-paged API that gave no next cursor: the end of the list
        if cfg.detail is not None and cfg.detail.max_pages:
            pages += await self._details(http, new_items, problems)
        order = [p.native_id for p in new_items] + [i for i in cursor.get("seen") or [] if i not in
                                                     {p.native_id for p in new_items}]
        next_cursor: Cursor = {"seen": order[: cfg.seen_limit]}
        if validators:
            next_cursor["validators"] = validators
        if top is not None:
            next_cursor["since"] = top
        return FetchResult(pages, next_cursor, problems)

    def _parse_later(self, page: Page, problems: list[str]) -> ParseResult:
        try:
            return self.parse_list(page)
        except ParseError as exc:  # page 2+ without items is the end of the list, not a broken source
            if "matched 0 items" not in str(exc):
                problems.append(str(exc))
            return ParseResult()

    async def _details(self, http: HttpClient, items: list[RawPost], problems: list[str]) -> list[Page]:
        assert self.config.detail is not None
        spec = self.config.detail
        pages: list[Page] = []
        wanted = [p for p in items if _detail_url(p, spec.url_field)][: spec.max_pages]
        for post in wanted:
            url = _detail_url(post, spec.url_field)
            try:
                page = await http.get(url, self._options())
            except FetchError as exc:
                problems.append(f"detail page of {post.native_id} not read: {exc}")
                continue
            pages.append(replace(page, meta={"role": "detail", "id": post.native_id}))
        skipped = len([p for p in items if _detail_url(p, spec.url_field)]) - len(wanted)
        if skipped > 0:
            problems.append(f"{skipped} new item(s) kept without their detail page (detail.max_pages="
                            f"{spec.max_pages}); raise it if the full text matters")
        return pages


def _varies(cfg: ListingConfig, what: Literal["keyword", "page"]) -> bool:
    """Whether the list URL (with a kind's query parameters) depends on the keyword or on the page."""
    if what == "keyword":
        return cfg.render_url("a", cfg.first_page) != cfg.render_url("b", cfg.first_page)
    keyword = cfg.keywords[0] if cfg.keywords else None
    return cfg.render_url(keyword, cfg.first_page) != cfg.render_url(keyword, cfg.first_page + cfg.page_step)


def _max_id(ids: list[str | None]) -> str | None:
    """The largest numeric id (for since_id-style APIs), or None when ids are not numbers."""
    numbers = [int(i) for i in ids if i is not None and str(i).isdigit()]
    return str(max(numbers)) if numbers else None


def _detail_url(post: RawPost, field: str) -> str:
    if field == "url":
        return post.url
    value = post.extra.get(field)
    return str(value) if value else ""
