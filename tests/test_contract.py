"""The source plugin contract, checked for every registered kind, and the registry that finds kinds.

Every kind: a documented Source subclass whose ``kind`` is its registry key, a SourceConfig model, and a non-empty
``example`` that validates; ``parse`` is total (a ParseResult or a ParseError, for any bytes) and deterministic.
The registry: unknown kinds and broken plugins are loud PluginErrors; third-party kinds come from entry points.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path
from typing import Any

import pytest
import yaml

import monitor.registry as registry
from monitor.config import parse_config
from monitor.errors import ParseError, PluginError
from monitor.registry import ENTRY_POINT_GROUP, get_kind, known_kinds
from monitor.source import Page, ParseResult, Source, SourceConfig

BASE = "http://127.0.0.1:8765"
KINDS = known_kinds()
FETCHED_AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LOGIN_PAGE = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录 - 澄川电器用户之家</title>
</head><body><form action="/login" method="post"><input name="user"><input type="password" name="pass">
<img src="/captcha.jpg"><button>登录</button></form><p>请先登录后再查看</p></body></html>"""


def _fill(value: Any, base: str) -> Any:
    """``value`` with every ``{base}`` in its strings replaced."""
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, dict):
        return {k: _fill(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, base) for v in value]
    return value


def example_config(kind: str, base: str = BASE) -> SourceConfig:
    """The kind's example, with ``{base}`` filled in, validated together with a name and the type."""
    cls = get_kind(kind)
    return cls.config_model.model_validate({"name": f"example-{kind}", "type": kind, **_fill(cls.example, base)})


def example_source(kind: str) -> Source:
    """A source of ``kind`` built from its example."""
    return get_kind(kind)(example_config(kind))


def _junk() -> list[tuple[str, bytes, str]]:
    rng = random.Random(20261122)
    pages = [(f"random-{i}", rng.randbytes(n), "application/octet-stream") for i, n in enumerate((1, 64, 4096))]
    pages += [
        ("random-as-html", rng.randbytes(2048), "text/html; charset=gbk"),
        ("empty", b"", ""),
        ("blank", b" \r\n\t ", "text/plain"),
        ("nul-bytes", b"\0" * 512, "application/xml"),
        ("login-html", LOGIN_PAGE.encode(), "text/html; charset=utf-8"),
        ("login-html-gbk-as-json", LOGIN_PAGE.encode("gbk"), "application/json"),
        ("html-fragment", b"<div><p>unclosed <b>tags", "text/html"),
        ("plain-text", "服务暂时不可用，请稍后再试".encode(), "text/plain; charset=utf-8"),
        ("json-null", b"null", "application/json"),
        ("json-empty-object", b"{}", "application/json"),
        ("json-list-of-numbers", b"[1, 2, 3]", "application/json"),
        ("json-wrong-shapes", json.dumps({"data": {"items": "not a list"}, "items": {"a": 1}}).encode(),
         "application/json"),
        ("json-truncated", b'{"data": {"items": [{"id": 1, "text": "\xe5\x8f', "application/json"),
        ("json-deep", b"[" * 5000 + b"]" * 5000, "application/json"),
        ("xml-deep", b'<?xml version="1.0"?><rss version="2.0"><channel>' + b"<item>" * 5000, "application/xml"),
        ("xml-not-a-feed", b'<?xml version="1.0"?><urlset><url><loc>x</loc></url></urlset>', "application/xml"),
        ("xml-truncated", b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>\xe6\xb5',
         "application/rss+xml"),
        ("xml-entity-expansion", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
         b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel><item><title>&b;</title>'
         b"</item></channel></rss>", "application/rss+xml"),
        ("utf16-bom", "\ufeff<html><body>登录</body></html>".encode("utf-16-le"), "text/html"),
        ("gzip-bytes-undecoded", gzip.compress(b"<rss/>"), "application/rss+xml"),
        ("png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(256), "image/png"),
    ]
    return pages


JUNK = _junk()
#: Contract breaches found here in kinds outside this test's remit, reported to their owners. Strict: a fix turns the
#: xfail into a failure, and the entry must then go.
KNOWN_BUGS: dict[tuple[str, str], tuple[type[BaseException], str]] = {
}


def junk_page(body: bytes, content_type: str, role: str | None) -> Page:
    """A fetched page of junk; ``role`` is the meta listing kinds dispatch on."""
    headers = {"content-type": content_type} if content_type else {}
    return Page(f"{BASE}/junk", 200, headers, body, FETCHED_AT, meta={"role": role} if role else {})


# -- every kind --------------------------------------------------------------------------------------------------

def test_builtin_kinds_are_known() -> None:
    assert "rss" in KINDS
    assert set(registry.BUILTIN_KINDS) <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_kind_class_shape(kind: str) -> None:
    cls = get_kind(kind)
    assert isinstance(cls, type) and issubclass(cls, Source)
    assert cls.kind == kind
    assert isinstance(cls.config_model, type) and issubclass(cls.config_model, SourceConfig)
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring: it is the kind's help text"
    assert cls.config_model.__doc__ and cls.config_model.__doc__.strip()
    assert isinstance(cls.example, dict) and cls.example, f"{kind} needs an example config"
    assert not {"name", "type"} & set(cls.example), "the example leaves name and type to the caller"


@pytest.mark.parametrize("kind", KINDS)
def test_example_validates_with_base_url(kind: str) -> None:
    config = example_config(kind)
    assert config.name == f"example-{kind}" and config.type == kind
    dumped = json.dumps(config.model_dump(mode="json"), ensure_ascii=False)
    assert "{base}" not in dumped
    if "{base}" in json.dumps(get_kind(kind).example):
        assert BASE in dumped
    source = get_kind(kind)(config)
    assert source.name == f"example-{kind}" and source.kind == kind


@pytest.mark.parametrize("kind", KINDS)
def test_example_loads_through_the_config_file(kind: str) -> None:
    text = yaml.safe_dump({"sources": [{"name": "from-yaml", "type": kind, **_fill(get_kind(kind).example, BASE)}]},
                          allow_unicode=True)
    config = parse_config(text, env={})
    (source,) = config.sources
    assert isinstance(source, get_kind(kind).config_model)
    assert source.name == "from-yaml"


@pytest.mark.parametrize("kind", KINDS)
def test_example_rejects_unknown_keys(kind: str) -> None:
    cls = get_kind(kind)
    with pytest.raises(ValueError, match="surely_not_an_option"):
        cls.config_model.model_validate({"name": "x", "type": kind, "surely_not_an_option": 1,
                                         **_fill(cls.example, BASE)})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("label", "body", "content_type"), JUNK, ids=[j[0] for j in JUNK])
def test_parse_of_junk_is_a_result_or_a_parse_error(request: pytest.FixtureRequest, kind: str, label: str,
                                                    body: bytes, content_type: str) -> None:
    if (kind, label) in KNOWN_BUGS:
        request.applymarker(pytest.mark.xfail(raises=KNOWN_BUGS[kind, label][0], strict=True,
                                              reason=KNOWN_BUGS[kind, label][1]))
    source = example_source(kind)
    for role in (None, "list"):  # "detail" pages come only from a config with detail selectors, not the example's
        try:
            result = source.parse(junk_page(body, content_type, role))
        except ParseError as exc:
            assert str(exc), f"{kind}/{label}: a ParseError must say what is wrong"
            continue
        assert isinstance(result, ParseResult), f"{kind}/{label}: parse returned {type(result).__name__}"
        assert all(isinstance(p, str) for p in result.problems)
        for post in result.posts:
            assert str(post.native_id).strip(), f"{kind}/{label}: a post without an id"


def _outcome(source: Source, page: Page) -> ParseResult | str:
    try:
        return source.parse(page)
    except Exception as exc:  # totality is the test above; here only sameness counts
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("kind", KINDS)
def test_parse_is_deterministic(kind: str) -> None:
    pages = [junk_page(body, ct, None) for _, body, ct in JUNK]
    feed = Path(__file__).parent / "fixtures" / "rss" / "rss20_complaints.xml"
    if feed.is_file():
        pages.append(Page(f"{BASE}/feed.xml", 200, {"content-type": "application/rss+xml"}, feed.read_bytes(),
                          FETCHED_AT))
    first = [_outcome(example_source(kind), p) for p in pages]
    again = [_outcome(example_source(kind), p) for p in pages]  # a fresh instance: no memo to lean on
    same_instance = example_source(kind)
    twice = [(_outcome(same_instance, p), _outcome(same_instance, p)) for p in pages]
    assert first == again
    assert all(a == b for a, b in twice)


def test_rss_parses_a_real_feed_deterministically() -> None:
    """The determinism test above must see posts for rss, not only errors."""
    source = example_source("rss")
    feed = (Path(__file__).parent / "fixtures" / "rss" / "rss20_complaints.xml").read_bytes()
    page = Page(f"{BASE}/feed.xml", 200, {"content-type": "application/rss+xml"}, feed, FETCHED_AT)
    result = source.parse(page)
    assert len(result.posts) == 3
    assert source.parse(page) == result


# -- the registry ------------------------------------------------------------------------------------------------

def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(PluginError) as info:
        get_kind("weibo-typo")
    message = str(info.value)
    assert "'weibo-typo'" in message
    for kind in KINDS:
        assert kind in message


def test_unknown_kind_in_config_is_reported_with_its_path() -> None:
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config("sources:\n  - name: a\n    type: nosuchkind\n    url: http://127.0.0.1/\n", env={})
    assert any("sources[0].type" in p and "nosuchkind" in p and "rss" in p for p in info.value.problems)


PLUGIN = '''
"""A third-party source kind for the registry tests."""

from typing import Any, ClassVar

from monitor.source import FetchResult, Page, ParseResult, RawPost, Source, SourceConfig


class AcmeConfig(SourceConfig):
    """Options of the acme kind."""

    board: str


class AcmeSource(Source):
    """Posts of an imaginary board."""

    kind = "acme"
    config_model = AcmeConfig
    example: ClassVar[dict[str, Any]] = {"board": "{base}/board"}

    async def fetch(self, http: Any, cursor: dict[str, Any]) -> FetchResult:
        return FetchResult([], cursor)

    def parse(self, page: Page) -> ParseResult:
        return ParseResult([RawPost(native_id="1", text=page.content.decode("utf-8", "replace"))])


class WrongKind(AcmeSource):
    """Declares another kind than its entry point's name."""

    kind = "not-acme"


class NotASource:
    """Not a Source at all."""
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    """Entry points of the ``monitor.sources`` group that the test fills in, with the registry's caches cleared."""
    (tmp_path / "acme_monitor_plugin.py").write_text(textwrap.dedent(PLUGIN), "utf-8")
    (tmp_path / "broken_monitor_plugin.py").write_text(
        "import surely_not_an_installed_dependency_of_this_plugin\n", "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps: list[EntryPoint] = []

    def fake_entry_points(**params: Any) -> EntryPoints:
        return EntryPoints(eps if params.get("group") == ENTRY_POINT_GROUP else [])

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    registry._third_party.cache_clear()
    get_kind.cache_clear()
    try:
        yield eps
    finally:
        registry._third_party.cache_clear()
        get_kind.cache_clear()
        for name in ("acme_monitor_plugin", "broken_monitor_plugin"):
            sys.modules.pop(name, None)


def _ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_third_party_kind_from_entry_point(plugins: list[EntryPoint]) -> None:
    plugins.append(_ep("acme", "acme_monitor_plugin:AcmeSource"))
    assert "acme" in known_kinds() and "rss" in known_kinds()
    cls = get_kind("acme")
    assert cls.__name__ == "AcmeSource" and cls.kind == "acme"
    config = parse_config(f"sources:\n  - name: board\n    type: acme\n    board: {BASE}/b\n", env={})
    assert type(config.sources[0]).__name__ == "AcmeConfig"
    source = cls(example_config("acme"))
    assert source.parse(junk_page(b"hi", "text/plain", None)).posts[0].text == "hi"


def test_third_party_kind_cannot_replace_a_builtin(plugins: list[EntryPoint]) -> None:
    plugins.append(_ep("rss", "acme_monitor_plugin:AcmeSource"))
    assert get_kind("rss").__module__ == "sources.rss"


def test_plugin_that_fails_to_import(plugins: list[EntryPoint]) -> None:
    plugins.append(_ep("broken", "broken_monitor_plugin:BrokenSource"))
    assert "broken" in known_kinds()
    with pytest.raises(PluginError) as info:
        get_kind("broken")
    message = str(info.value)
    assert "'broken'" in message and "failed to import" in message
    assert "surely_not_an_installed_dependency_of_this_plugin" in message
    assert isinstance(info.value.__cause__, ImportError)


def test_plugin_module_missing(plugins: list[EntryPoint]) -> None:
    plugins.append(_ep("ghost", "no_such_module_anywhere:Ghost"))
    with pytest.raises(PluginError, match=r"'ghost'.*failed to import"):
        get_kind("ghost")


def test_plugin_attribute_missing(plugins: list[EntryPoint]) -> None:
    plugins.append(_ep("acme", "acme_monitor_plugin:NoSuchClass"))
    with pytest.raises(PluginError, match="failed to import"):
        get_kind("acme")


@pytest.mark.parametrize(("target", "message"), [
    ("acme_monitor_plugin:NotASource", "not a monitor.source.Source subclass"),
    ("acme_monitor_plugin:WrongKind", "declares kind='not-acme'"),
])
def test_plugin_of_the_wrong_shape(plugins: list[EntryPoint], target: str, message: str) -> None:
    plugins.append(_ep("acme", target))
    with pytest.raises(PluginError, match=message):
        get_kind("acme")


def test_registry_caches_are_cleared_after_plugin_tests() -> None:
    """No fake kind leaks out of the tests above."""
    assert "acme" not in known_kinds()
    with pytest.raises(PluginError):
        get_kind("acme")
