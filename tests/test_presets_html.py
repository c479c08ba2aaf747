"""The html presets (discuz, phpbb, tieba, heimao) on their saved pages, through the real path on SQLite and PostgreSQL.

Each preset folder under tests/fixtures/html/ holds pages written for these tests in the sites' real markup (made-up
content about made-up brands) and ``expected.json``: every post the first poll must store, worked out by reading the
pages (``{base}`` stands for the loopback server; times are read at T0 = 2026-11-20 12:00 in Beijing). The Discuz pages
are GBK-encoded and declare it only in <meta charset>.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import parse_config
from monitor.db.store import BLOCKED, LAYOUT, OK
from tests import test_html as base
from tests.loopback import LoopbackServer, Request, Response
from tests.test_html import HtmlRig
from tests.test_json import query
from tests.test_presets_json import rows

# The html tests' fixtures: an HtmlRig (store on each backend, loopback server, manual clock) on one server per module.
shared_server, server, rig = base.shared_server, base.server, base.rig

FIXTURES = Path(__file__).parent / "fixtures" / "html"
UTF8 = {"Content-Type": "text/html; charset=utf-8"}


def _file(folder: Path, name: str, headers: dict[str, str] | None = None) -> Response:
    return Response(200, (folder / name).read_bytes(), dict(headers or UTF8))


def serve_discuz(srv: LoopbackServer, folder: Path) -> None:
    """forum.php?mod=forumdisplay&fid=36: page 1, then page 2 for page 2 and any page past it (as Discuz does).
    Served as bare text/html: the pages say GBK only in their <meta>."""
    def route(req: Request) -> Response:
        q = query(req)
        if (q.get("mod"), q.get("fid")) != ("forumdisplay", "36"):
            return Response(404, b"not found")
        name = "page1.html" if q.get("page", "1") == "1" else "page2.html"
        return _file(folder, name, {"Content-Type": "text/html"})
    srv.route("/forum.php", route)


def serve_phpbb(srv: LoopbackServer, folder: Path) -> None:
    """viewforum.php?f=5: start=0 is page 1; any later start is the last page (phpBB clamps start to it)."""
    def route(req: Request) -> Response:
        q = query(req)
        if q.get("f") != "5":
            return Response(404, b"not found")
        return _file(folder, "start0.html" if int(q.get("start", "0")) == 0 else "start25.html")
    srv.route("/viewforum.php", route)


def serve_tieba(srv: LoopbackServer, folder: Path) -> None:
    """f?kw=澄星: pn=0 and pn=50 hold threads; a later pn is a page with an empty thread list."""
    def route(req: Request) -> Response:
        q = query(req)
        if (q.get("kw"), q.get("ie")) != ("澄星", "utf-8"):
            return Response(404, b"not found")
        return _file(folder, {"0": "pn0.html", "50": "pn50.html"}.get(q.get("pn", ""), "pn100.html"))
    srv.route("/f", route)


def serve_heimao(srv: LoopbackServer, folder: Path) -> None:
    """The search for 澄星 (pages 1 and 2, then "没有找到相关的投诉"), and each complaint's page."""
    def route(req: Request) -> Response:
        q = query(req)
        if q.get("keywords") != "澄星":
            return Response(404, b"not found")
        return _file(folder, {"1": "list1.html", "2": "list2.html"}.get(q.get("page", ""), "list3.html"))
    srv.route("/index/search/", route)
    for file in folder.glob("complaint_*.html"):
        srv.route(f"/complaint/view/{file.stem.split('_')[1]}/", _file(folder, file.name))


@dataclass(frozen=True)
class Case:
    """One preset: what the user writes besides ``preset:``, how its saved pages are served, the list's path, the
    query parameter that pages, the values it takes on a first poll, and the list page to break for a layout change."""

    preset: str
    options: dict[str, Any]
    serve: Callable[[LoopbackServer, Path], None]
    list_path: str
    page_param: str
    first_poll_pages: list[str]
    wall: str


CASES = [
    Case("discuz", {"url": "{base}/forum.php?mod=forumdisplay&fid=36&page={page}", "max_pages": 5}, serve_discuz,
         "/forum.php", "page", ["1", "2", "3"], "nologin.html"),
    Case("phpbb", {"url": "{base}/viewforum.php?f=5&start={page}", "max_pages": 5}, serve_phpbb,
         "/viewforum.php", "start", ["0", "25", "50"], "login.html"),
    Case("tieba", {"url": "{base}/f?kw={keyword}&ie=utf-8&pn={page}", "keywords": ["澄星"], "max_pages": 5},
         serve_tieba, "/f", "pn", ["0", "50", "100"], "security.html"),
    Case("heimao", {"url": "{base}/index/search/?keywords={keyword}&page={page}", "keywords": ["澄星"],
                    "max_pages": 5}, serve_heimao, "/index/search/", "page", ["1", "2", "3"], "captcha.html"),
]
BY_NAME = {c.preset: c for c in CASES}


def run(rigged: HtmlRig, case: Case, **over: Any) -> Any:
    """Serve the case's pages and poll a source of its preset (with ``over`` written beside ``preset:``)."""
    case.serve(rigged.server, FIXTURES / case.preset)
    return rigged.poll(rigged.source({"preset": case.preset, **case.options, **over}, name=case.preset))


def list_pages(rigged: HtmlRig, case: Case) -> list[str]:
    """The paging parameter of every list request so far."""
    return [query(r)[case.page_param] for r in rigged.server.hits(case.list_path)]


@pytest.mark.parametrize("case", CASES, ids=[c.preset for c in CASES])
def test_preset_stores_the_expected_posts_then_nothing_new(rig: HtmlRig, case: Case) -> None:
    """First poll: the list pages until the list ends (a repeated last page, an empty list, "no results") and each
    new item's detail page; exactly the expected posts. Second poll: the first list page only, nothing new, nothing
    updated, no detail page."""
    folder = FIXTURES / case.preset
    out = run(rig, case)
    assert out.status == OK, out.error
    assert out.problems == []
    assert list_pages(rig, case) == case.first_poll_pages
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    assert rows(rig, case.preset) == expected
    assert out.new == len(expected)

    before = len(rig.server.requests)
    again = rig.poll(rig.source({"preset": case.preset, **case.options}, name=case.preset))
    assert (again.status, again.new, again.updated, again.problems) == (OK, 0, 0, [])
    later = [r for r in rig.server.requests[before:] if r.path != "/robots.txt"]
    assert len(later) == 1 and later[0].path.startswith(case.list_path)
    assert query(later[0])[case.page_param] == case.first_poll_pages[0]


def test_discuz_pages_are_gbk_declared_only_in_meta() -> None:
    """The saved Discuz pages are what an old board sends: GBK bytes, declared by <meta charset=gbk>."""
    for name in ("page1.html", "page2.html", "nologin.html"):
        content = (FIXTURES / "discuz" / name).read_bytes()
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")
        assert b'<meta charset="gbk" />' in content[:300]
        assert "澄川电器用户之家".encode("gbk") in content


def test_heimao_reads_complaint_pages(rig: HtmlRig) -> None:
    """Each new complaint's page is read once; a complaint page that is a captcha or fails keeps the complaint with
    the list's fields and says why."""
    case = BY_NAME["heimao"]
    folder = FIXTURES / "heimao"
    serve_heimao(rig.server, folder)
    rig.server.route("/complaint/view/17351229987/", _file(folder, "captcha.html"))
    rig.server.route("/complaint/view/17351218890/", Response(503, b"busy"))
    out = rig.poll(rig.source({"preset": "heimao", **case.options}, name="heimao"))
    assert (out.status, out.new) == (OK, 6), out.error
    detail_hits = [r.path for r in rig.server.requests if r.path.startswith("/complaint/view/")]
    assert sorted(detail_hits) == sorted(f"/complaint/view/{n}/" for n in (
        "17351230041", "17351229987", "17351228813", "17351227002", "17351220518", "17351218890"))
    assert any("complaint/view/17351229987/: 'div.ts-detail' matched nothing; it looks like a login or captcha "
               "page ('访问过于频繁')" in p for p in out.problems), out.problems
    assert any("detail page of 17351218890 not read: HTTP 503" in p for p in out.problems), out.problems
    posts = rig.posts("heimao")
    captcha = posts["17351229987"]
    assert captcha.text == "师傅上门安装空调，铜管加长、支架、打孔共收费680元，没有出示任何价目表……"
    assert captcha.extra == {"merchant": "星漫电器", "demand": "退还辅材费,道歉", "amount": 680, "status": "已回复"}
    assert captcha.published_at == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # "3小时前" on the list
    failed = posts["17351218890"]
    assert failed.extra == {"merchant": "澄心健身", "demand": "退款", "amount": 12000, "status": "已回复"}
    assert posts["17351230041"].extra["issue"] == "退款拖延"


@pytest.mark.parametrize("case", CASES, ids=[c.preset for c in CASES])
def test_preset_on_a_login_wall_or_captcha_is_blocked(rig: HtmlRig, case: Case) -> None:
    """The site's own login / no-permission / security-check page, answered with 200, is ``blocked``."""
    content = (FIXTURES / case.preset / case.wall).read_bytes()
    rig.server.route(case.list_path, Response(200, content, {"Content-Type": "text/html"}))
    out = rig.poll(rig.source({"preset": case.preset, **case.options}, name=case.preset))
    assert out.status == BLOCKED, out.error
    assert out.error and "login wall or captcha" in out.error
    assert rig.store.count_posts(case.preset) == 0


BREAK = {  # a redesign each site might do: the item markup the preset looks for is gone
    "discuz": ("page1.html", "normalthread_", "thread_"),
    "phpbb": ("start0.html", "topiclist topics", "topic-list"),
    "tieba": ("pn0.html", "j_thread_list", "thread-card"),
    "heimao": ("list1.html", "blackcat-con", "complaint-card"),
}


@pytest.mark.parametrize("case", CASES, ids=[c.preset for c in CASES])
def test_preset_on_a_changed_layout_is_a_layout_alert(rig: HtmlRig, case: Case) -> None:
    """A real list page whose items the preset no longer finds is ``layout`` naming the selector (not ``blocked``,
    although these pages offer a login and Discuz says "您需要登录后才可以发帖"), and nothing is stored."""
    name, old, new = BREAK[case.preset]
    encoding = "gbk" if case.preset == "discuz" else "utf-8"
    text = (FIXTURES / case.preset / name).read_bytes().decode(encoding)
    assert old in text
    rig.server.route(case.list_path, Response(200, text.replace(old, new).encode(encoding),
                                              {"Content-Type": "text/html"}))
    out = rig.poll(rig.source({"preset": case.preset, **case.options}, name=case.preset))
    assert out.status == LAYOUT, out.error
    assert out.error and "matched 0 items on a 200 page" in out.error
    assert rig.store.count_posts(case.preset) == 0


# -- a user's keys win over the preset's -------------------------------------------------------------------------------

def test_discuz_override_items_to_include_pinned_threads(rig: HtmlRig) -> None:
    """``items:`` written by the user replaces the preset's (pinned threads too); the preset's fields still apply."""
    out = run(rig, BY_NAME["discuz"], max_pages=1,
              items="tbody[id^=normalthread_], tbody[id^=stickthread_]")
    assert (out.status, out.new) == (OK, 7), out.error
    assert list_pages(rig, BY_NAME["discuz"]) == ["1"]
    pinned = rig.posts("discuz")["41002"]
    assert (pinned.title, pinned.author, pinned.author_id) == ("【版规】投诉发帖须知，发帖前请先阅读", "澄川客服", "1")
    assert pinned.extra == {"views": 58213, "category": "公告"}
    assert pinned.published_at == datetime(2025, 5, 31, 16, 0, tzinfo=UTC)


def test_phpbb_override_page_step(rig: HtmlRig) -> None:
    """A board showing 20 topics per page sets ``page_step: 20``: start=0, 20, 40."""
    out = run(rig, BY_NAME["phpbb"], page_step=20)
    assert (out.status, out.new) == (OK, 8), out.error
    assert list_pages(rig, BY_NAME["phpbb"]) == ["0", "20", "40"]


def test_tieba_override_one_field(rig: HtmlRig) -> None:
    """``fields:`` merge key by key: dating threads by their last reply replaces only published_at."""
    out = run(rig, BY_NAME["tieba"], fields={"published_at": ".threadlist_reply_date"})
    assert (out.status, out.new) == (OK, 8), out.error
    post = rig.posts("tieba")["9287654321"]
    assert post.published_at == datetime(2026, 11, 20, 3, 48, tzinfo=UTC)  # "11:48" instead of created "11-19"
    assert (post.author, post.comments) == ("小周爱吃鱼", 23)


def test_heimao_override_detail_max_pages(rig: HtmlRig) -> None:
    """``detail: {max_pages: 0}`` keeps the preset's detail fields but reads no complaint page: the list's abstract
    is the text, and the list's fields are all there is."""
    out = run(rig, BY_NAME["heimao"], detail={"max_pages": 0})
    assert (out.status, out.new) == (OK, 6), out.error
    assert not [r for r in rig.server.requests if r.path.startswith("/complaint/")]
    post = rig.posts("heimao")["17351228813"]
    assert post.text == "收到的手机外包装有拆封痕迹，激活时间显示是半年前……"
    assert post.extra == {"merchant": "橙子数码专营店", "demand": "退一赔三", "amount": 3499, "status": "已完成"}
    assert post.published_at == datetime(2026, 11, 19, 8, 20, tzinfo=UTC)  # the list's "昨天 16:20"


# -- the preset files -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [c.preset for c in CASES])
def test_preset_file_describes_itself_with_a_valid_example(name: str) -> None:
    """Each preset starts with a description saying what it reads and what to give; its example config loads."""
    text = resources.files("sources.presets").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("description:")
    data = yaml.safe_load(text)
    assert data["type"] == "html" and "You give:" in data["description"]
    example = textwrap.dedent(data["description"].split("Example:\n", 1)[1])
    config = parse_config(yaml.safe_dump({"sources": yaml.safe_load(example)}, allow_unicode=True))
    (source,) = config.sources
    assert source.type == "html" and source.preset == name  # type: ignore[attr-defined]
    assert source.fields["id"]  # type: ignore[attr-defined]
