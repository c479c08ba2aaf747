"""The json presets (weibo, discourse) on their saved API answers, through the real path on SQLite and PostgreSQL.

Each preset folder under tests/fixtures/json/ holds API answers written for these tests in the real shapes, and
``expected.json``: every post the first poll must store (``{base}`` stands for the loopback server).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import parse_config
from monitor.db.store import BLOCKED, FAILING, LAYOUT, OK
from tests import test_json as base
from tests.loopback import LoopbackServer, Request, Response
from tests.test_json import JSON_TYPE, Rig, query

# The json tests' fixtures: a Rig (store on each backend, loopback server, manual clock) on one server per module.
shared_server, server, rig = base.shared_server, base.server, base.rig

FIXTURES = Path(__file__).parent / "fixtures" / "json"
WEIBO_URL = "{base}/api/container/getIndex?containerid=100103type%3D1%26q%3D{keyword}&page_type=searchall&page={page}"


def serve_weibo(srv: LoopbackServer, folder: Path) -> None:
    """getIndex answers page1.json, page2.json, then the API's "nothing here" (page3.json) for any later page."""
    def route(req: Request) -> Response:
        file = folder / f"page{query(req).get('page')}.json"
        return Response(200, (file if file.exists() else folder / "page3.json").read_bytes(), dict(JSON_TYPE))
    srv.route("/api/container/getIndex", route)


def serve_discourse(srv: LoopbackServer, folder: Path) -> None:
    """The category's pages 0 and 1, and each topic's /t/<id>.json."""
    srv.route("/c/complaints/5.json", lambda req: Response(
        200, (folder / f"page{query(req)['page']}.json").read_bytes(), dict(JSON_TYPE)))
    for file in folder.glob("t*.json"):
        srv.route(f"/t/{file.stem[1:]}.json", Response(200, file.read_bytes(), dict(JSON_TYPE)))


@dataclass(frozen=True)
class Case:
    """One preset: what the user writes besides ``preset:``, how its saved pages are served, its list path."""

    preset: str
    options: dict[str, Any]
    serve: Callable[[LoopbackServer, Path], None]
    list_path: str


CASES = [
    Case("weibo", {"url": WEIBO_URL, "keywords": ["澄星退款"], "headers": {"Cookie": "SUB=test"}}, serve_weibo,
         "/api/container/getIndex"),
    Case("discourse", {"url": "{base}/c/complaints/5.json?page={page}", "max_pages": 3}, serve_discourse,
         "/c/complaints/5.json"),
]


def rows(rigged: Rig, name: str) -> list[dict[str, Any]]:
    """Stored posts as expected.json writes them, sorted by id, with the server's address as {base}."""
    out = []
    for p in sorted(rigged.posts(name).values(), key=lambda p: p.native_id):
        row = {"native_id": p.native_id, "url": p.url, "title": p.title, "text": p.text, "author": p.author,
               "author_id": p.author_id, "published_at": p.published_at.isoformat(), "reposts": p.reposts,
               "comments": p.comments, "likes": p.likes, "extra": p.extra}
        out.append(json.loads(json.dumps(row, ensure_ascii=False).replace(rigged.server.base, "{base}")))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.preset for c in CASES])
def test_preset_stores_the_expected_posts_then_nothing_new(rig: Rig, case: Case) -> None:
    """First poll: every page and detail page, exactly the expected posts. Second poll: the first list page only,
    nothing new, nothing updated."""
    folder = FIXTURES / case.preset
    case.serve(rig.server, folder)
    src = rig.source({"preset": case.preset, **case.options}, name=case.preset)
    out = rig.poll(src)
    assert out.status == OK, out.error
    assert out.problems == []
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    assert rows(rig, case.preset) == expected
    assert out.new == len(expected)

    before = len(rig.server.requests)
    again = rig.poll(src)
    assert (again.status, again.new, again.updated, again.problems) == (OK, 0, 0, [])
    later = [r.path for r in rig.server.requests[before:] if r.path != "/robots.txt"]
    assert len(later) == 1 and later[0].startswith(case.list_path)


def test_weibo_preset_requests_and_headers(rig: Rig) -> None:
    """The search URL carries the keyword once-encoded inside containerid; the preset's headers and the user's
    cookie are both sent; paging ends at the API's "这里还没有内容"."""
    serve_weibo(rig.server, FIXTURES / "weibo")
    rig.poll(rig.source({"preset": "weibo", **CASES[0].options}, name="weibo"))
    hits = rig.server.hits("/api/container/getIndex")
    assert [query(r)["page"] for r in hits] == ["1", "2", "3"]
    assert query(hits[0])["containerid"] == "100103type=1&q=澄星退款"
    assert hits[0].headers["cookie"] == "SUB=test" and hits[0].headers["x-requested-with"] == "XMLHttpRequest"
    assert hits[0].headers["mweibo-pwa"] == "1"


@pytest.mark.parametrize(("file", "status", "words"), [
    ("error.json", FAILING, "请求参数错误，containerid 无效"),
    ("login.json", BLOCKED, "login"),
    ("empty.json", OK, None),
], ids=["ok-0-with-msg", "ok-minus-100-login", "no-results"])
def test_weibo_preset_on_the_apis_own_answers(rig: Rig, file: str, status: str, words: str | None) -> None:
    """ok=0 fails with the API's message, ok=-100 is blocked, an empty card list is a good poll with no posts."""
    rig.server.route("/api/container/getIndex",
                     Response(200, (FIXTURES / "weibo" / file).read_bytes(), dict(JSON_TYPE)))
    out = rig.poll(rig.source({"preset": "weibo", **CASES[0].options}, name="weibo"))
    assert out.status == status, out.error
    if words:
        assert out.error and words in out.error
    else:
        assert (out.new, out.problems) == (0, [])


def test_weibo_preset_layout_change_is_an_alert(rig: Rig) -> None:
    """If the API renamed ``cards``, the source goes to ``layout`` with a hint instead of reporting zero posts."""
    changed = json.loads((FIXTURES / "weibo" / "page1.json").read_text(encoding="utf-8"))
    changed["data"]["items"] = changed["data"].pop("cards")
    rig.server.route("/api/container/getIndex", Response(200, json.dumps(changed).encode(), dict(JSON_TYPE)))
    out = rig.poll(rig.source({"preset": "weibo", **CASES[0].options}, name="weibo"))
    assert out.status == LAYOUT and out.error and "data.cards[*].mblog" in out.error


def test_preset_fields_can_be_overridden(rig: Rig) -> None:
    """A user's keys win over the preset's, key by key: here the post URL by bid, no originals, one page."""
    serve_weibo(rig.server, FIXTURES / "weibo")
    override = {"preset": "weibo", **CASES[0].options, "max_pages": 1, "nested": [],
                "fields": {"url": {"path": "bid", "template": "https://m.weibo.cn/status/{value}"}}}
    out = rig.poll(rig.source(override, name="weibo"))
    assert out.status == OK and out.new == 4
    posts = rig.posts("weibo")
    assert posts["5101874412340001"].url == "https://m.weibo.cn/status/PxQw3aBcD"
    assert posts["5101874412340001"].author == "柠檬不酸的小周"  # the preset's other fields stay
    assert "5101700000000001" not in posts and "repost_of" not in posts["5101870000000002"].extra
    assert [query(r)["page"] for r in rig.server.hits("/api/container/getIndex")] == ["1"]


def test_discourse_detail_failure_keeps_the_topic(rig: Rig) -> None:
    """A topic whose /t/<id>.json fails is stored from the list (title, counts) and the failure is reported."""
    serve_discourse(rig.server, FIXTURES / "discourse")
    rig.server.route("/t/1201.json", Response(404, b"not found"))
    out = rig.poll(rig.source({"preset": "discourse", **CASES[1].options}, name="discourse"))
    assert out.status == OK and out.new == 6
    assert any("1201" in p and "404" in p for p in out.problems)
    post = rig.posts("discourse")["1201"]
    assert (post.title, post.comments, post.likes, post.text, post.author) == (
        "澄星S7扫地机退款申请一个月无人处理", 6, 9, "", "")


@pytest.mark.parametrize("name", ["weibo", "discourse"])
def test_preset_file_describes_itself_with_a_valid_example(name: str) -> None:
    """Each preset starts with a description saying what it reads and what to give; its example config loads."""
    text = resources.files("sources.presets").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("description:")
    data = yaml.safe_load(text)
    assert data["type"] == "json" and "You give:" in data["description"]
    example = textwrap.dedent(data["description"].split("Example:\n", 1)[1])
    config = parse_config(yaml.safe_dump({"sources": yaml.safe_load(example)}, allow_unicode=True),
                          env={"WEIBO_COOKIE": "SUB=example"})
    (source,) = config.sources
    assert source.type == "json" and source.preset == name  # type: ignore[attr-defined]
