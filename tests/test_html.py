"""The html kind through the real path (HTTP on 127.0.0.1 -> fetch -> parse -> store), on SQLite and PostgreSQL.

Fields and transforms (attr, regex, all/joiner, template, value, numbers, Chinese times in the source's timezone,
absolute URLs), paging over keywords x pages (stopping at the first item stored and at a repeated last page), GBK
pages, layout changes, login walls and captchas, empty results, 429, timeouts, oversized pages, detail pages and
GBK keywords in the URL. The presets (discuz, phpbb, tieba, heimao) are tested in test_presets_html.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
import yaml

from monitor.config import parse_config, source_digest
from monitor.db import Store, make_engine, upgrade
from monitor.db.store import BLOCKED, FAILING, LAYOUT, OK, StoredPost
from monitor.registry import get_kind
from monitor.source import Source
from tests import test_json as base
from tests.loopback import LoopbackServer, Request, Response
from tests.test_json import T0, Rig, query, sequence

# One loopback server per module (from the json tests), reset for each test.
shared_server, server = base.shared_server, base.server

HTML = "text/html; charset=utf-8"
Route = Callable[[Request], Response]


@dataclass
class HtmlRig(Rig):
    """The json tests' Rig (store, loopback server, manual clock, recorded sleeps) for ``type: html`` sources."""

    def source(self, options: dict[str, Any], name: str = "forum") -> Source:
        """Validate a source the way the daemon does (YAML, ${ENV}, presets) and register it in the store."""
        options = json.loads(json.dumps(options, ensure_ascii=False).replace("{base}", self.server.base))
        text = yaml.safe_dump({"http": self.http,
                               "sources": [{"name": name, "type": "html", "interval": 60, **options}]},
                              allow_unicode=True)
        self.config = parse_config(text, env=self.env)
        src = get_kind("html")(self.config.sources[0])
        self.store.sync_sources([(src.name, src.kind, source_digest(src.config))], self.clock.now())
        return src

    def posts(self, name: str = "forum") -> dict[str, StoredPost]:
        """Stored posts of a source by native id."""
        return super().posts(name)


@pytest.fixture
def rig(db_url: str, server: LoopbackServer) -> Iterator[HtmlRig]:
    """An HtmlRig on each database backend; robots.txt is absent on the server."""
    engine = make_engine(db_url)
    upgrade(engine)
    server.route("/robots.txt", Response(404))
    yield HtmlRig(Store(engine), server)
    engine.dispose()


# -- a small forum written for these tests ---------------------------------------------------------------------------

def thread(tid: int, title: str, *, author: str = "网友", uid: int = 1000, time: str = "2026-11-20 10:00",
           replies: str = "0", href: str | None = None, more: str = "") -> str:
    """One thread of the test forum's list."""
    link = f"/t/{tid}.html" if href is None else href
    return (f'<li class="thread" data-tid="{tid}">\n  <a class="title" href="{link}" title="{title}">{title}</a>\n'
            f'  <a class="user" href="/u/home?uid={uid}">{author}</a>\n  <span class="time">{time}</span>\n'
            f'  <span class="replies">回复 {replies}</span>{more}\n</li>\n')


def page(*items: str, title: str = "投诉与建议 - 澄川社区", head: str = "", body: str = "") -> str:
    """A list page of the test forum holding ``items`` (none: an empty list)."""
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{head}<title>{title}</title>\n</head>\n<body>\n'
            f'<div class="nav"><a href="/">首页</a> &gt; <a href="/forum/list">投诉与建议</a></div>\n{body}'
            f'<ul class="threads">\n{"".join(items)}</ul>\n<div class="footer">澄川社区 &copy; 2026</div>\n'
            f'</body>\n</html>\n')


def ok(text: str, content_type: str = HTML) -> Response:
    """A 200 HTML response (UTF-8)."""
    return Response(200, text.encode("utf-8"), {"Content-Type": content_type})


def by_page(pages: dict[str, str], param: str = "page", default: str | None = None) -> Route:
    """A route answering ``pages[query[param]]`` (or ``default``, or an empty list)."""
    def route(req: Request) -> Response:
        return ok(pages.get(query(req).get(param, ""), default if default is not None else page()))
    return route


FIELDS: dict[str, Any] = {
    "id": {"selector": "", "attr": "data-tid"},
    "title": "a.title",
    "url": {"selector": "a.title", "attr": "href"},
    "author": "a.user",
    "author_id": {"selector": "a.user", "attr": "href", "regex": r"uid=(\d+)"},
    "published_at": "span.time",
    "comments": "span.replies",
}
LIST = "/forum/list"


def generic(**over: Any) -> dict[str, Any]:
    """A pure-config html source over the test forum's list."""
    return {"url": "{base}/forum/list?page={page}", "items": "li.thread", "fields": dict(FIELDS), **over}


def pages_asked(rig: Rig, path: str = LIST, param: str = "page") -> list[str]:
    """The {page} values requested at ``path`` so far, in order."""
    return [query(r)[param] for r in rig.server.hits(path)]


# -- fields and transforms --------------------------------------------------------------------------------------------

def test_fields_attr_regex_all_template_value_and_absolute_urls(rig: HtmlRig) -> None:
    """Each kind of field spec reads what it says; every URL ends absolute (against <base href> when the page has
    one), an empty href is no URL, and fields that are not post fields land in ``extra``."""
    tags = '\n  <span class="tag">退款</span><span class="tag">客服</span><span class="tag">E3</span>'
    items = [
        thread(101, "澄川洗衣机E3故障", author="青柠", uid=20431, replies="3,456", more=tags +
               '\n  <span class="likes">赞 1.2万</span><span class="views">阅读 10万+</span>'
               '\n  <span class="level">VIP3</span>'),
        thread(102, "空调外机噪音大", href="t/102.html", more='\n  <span class="likes">赞 87</span>'),
        thread(103, "冰箱门封条开胶", href="//cdn.example.com/t/103"),
        thread(104, "发票抬头开错", href="https://bbs.example.org/t/104?from=list"),
        thread(105, "没有链接的帖子", href=""),
    ]
    rig.server.route(LIST, ok(page(*items)))
    fields = {**FIELDS,
              "likes": {"selector": "span.likes", "regex": r"赞\s*(\S+)"},
              "tags": {"selector": "span.tag", "all": True, "joiner": ","},
              "full_title": {"selector": "a.title", "attr": "title"},
              "mobile": {"selector": "", "attr": "data-tid", "template": "https://m.example.com/t/{value}"},
              "views": {"selector": "span.views", "transforms": ["number"]},
              "level": {"selector": "span.level", "transforms": ["lower"]},
              "channel": {"value": "bbs"}}
    out = rig.poll(rig.source(generic(fields=fields)))
    assert out.status == OK, out.error
    assert (out.new, out.problems) == (5, [])
    posts = rig.posts()
    base_url = rig.server.base
    first = posts["101"]
    assert (first.title, first.author, first.author_id) == ("澄川洗衣机E3故障", "青柠", "20431")
    assert (first.comments, first.likes, first.reposts) == (3456, 12_000, None)
    assert first.url == f"{base_url}/t/101.html"
    assert first.extra == {"tags": "退款,客服,E3", "full_title": "澄川洗衣机E3故障", "views": 100_000, "level": "vip3",
                           "mobile": "https://m.example.com/t/101", "channel": "bbs"}
    assert posts["102"].url == f"{base_url}/forum/t/102.html"  # relative to /forum/list
    assert posts["102"].likes == 87 and "tags" not in posts["102"].extra
    assert posts["103"].url == "http://cdn.example.com/t/103"
    assert posts["104"].url == "https://bbs.example.org/t/104?from=list"
    assert posts["105"].url == ""

    # The same list on a page that says <base href>: relative links resolve against it, as in a browser.
    rig.server.route(LIST, ok(page(thread(201, "新帖", href="t/201.html"), thread(202, "旧帖", href="/t/202.html"),
                                   head='<base href="https://bbs.example.net/sub/" />\n')))
    assert rig.poll(rig.source(generic(), name="based")).status == OK
    based = rig.posts("based")
    assert (based["201"].url, based["202"].url) == ("https://bbs.example.net/sub/t/201.html",
                                                    "https://bbs.example.net/t/202.html")


TIMES = {  # what the page says -> the UTC time it means when the source's timezone is Asia/Shanghai (T0 = 12:00 there)
    "刚刚": T0,
    "5分钟前": T0 - timedelta(minutes=5),
    "半小时前": T0 - timedelta(minutes=30),
    "3小时前": T0 - timedelta(hours=3),
    "昨天 12:30": datetime(2026, 11, 19, 4, 30, tzinfo=UTC),
    "前天 08:15": datetime(2026, 11, 18, 0, 15, tzinfo=UTC),
    "3天前": T0 - timedelta(days=3),
    "11-18 08:00": datetime(2026, 11, 18, 0, 0, tzinfo=UTC),
    "08:30": datetime(2026, 11, 20, 0, 30, tzinfo=UTC),
    "2026年11月01日 09:15": datetime(2026, 11, 1, 1, 15, tzinfo=UTC),
    "发表于 2026-11-02 09:15": datetime(2026, 11, 2, 1, 15, tzinfo=UTC),
    "2026-11-05T10:00:00+09:00": datetime(2026, 11, 5, 1, 0, tzinfo=UTC),
}
TOKYO = {  # the same words on a source in Asia/Tokyo (T0 = 13:00 there); explicit offsets and "ago" do not move
    "5分钟前": T0 - timedelta(minutes=5),
    "昨天 12:30": datetime(2026, 11, 19, 3, 30, tzinfo=UTC),
    "11-18 08:00": datetime(2026, 11, 17, 23, 0, tzinfo=UTC),
    "08:30": datetime(2026, 11, 19, 23, 30, tzinfo=UTC),
    "2026-11-05T10:00:00+09:00": datetime(2026, 11, 5, 1, 0, tzinfo=UTC),
}


@pytest.mark.parametrize(("zone", "expected"), [(None, TIMES), ("Asia/Tokyo", TOKYO)], ids=["shanghai", "tokyo"])
def test_chinese_times_are_read_in_the_source_timezone_and_stored_in_utc(
        rig: HtmlRig, zone: str | None, expected: dict[str, datetime]) -> None:
    """Relative and partial Chinese times are anchored at the fetch time in the source's timezone and stored in UTC;
    a time in an extra field (``transforms: [time]``) is stored in UTC too."""
    words = list(expected)
    items = [thread(300 + i, f"帖子{i}", time=w, more=f'\n  <span class="edited">{w}</span>')
             for i, w in enumerate(words)]
    rig.server.route(LIST, ok(page(*items)))
    fields = {**FIELDS, "edited_at": {"selector": "span.edited", "transforms": ["time"]}}
    options = generic(fields=fields, **({"timezone": zone} if zone else {}))
    out = rig.poll(rig.source(options))
    assert out.status == OK and out.new == len(words)
    posts = rig.posts()
    got = {w: posts[str(300 + i)].published_at for i, w in enumerate(words)}
    assert got == expected
    assert all(p.published_at.utcoffset() == timedelta(0) for p in posts.values())
    edited = {w: posts[str(300 + i)].extra["edited_at"] for i, w in enumerate(words)}
    assert edited == {w: t.isoformat() for w, t in expected.items()}


# -- paging -----------------------------------------------------------------------------------------------------------

def test_paging_stops_at_the_first_item_already_stored(rig: HtmlRig) -> None:
    """First poll: pages 1..3, and page 4 (no items) ends the list without a problem. Next poll: a new thread on top
    of page 1; page 1 holds threads already stored, so page 2 is not asked for."""
    pages = {str(n): page(*(thread(100 - 10 * n - i, f"第{n}页第{i}帖") for i in range(2))) for n in (1, 2, 3)}
    rig.server.route(LIST, by_page(pages))
    src = rig.source(generic(max_pages=5))
    out = rig.poll(src)
    assert (out.status, out.new, out.problems) == (OK, 6, [])
    assert pages_asked(rig) == ["1", "2", "3", "4"]

    pages["1"] = page(thread(95, "新帖：退款还没到"), *(thread(90 - i, f"第1页第{i}帖") for i in range(2)))
    again = rig.poll(src)
    assert (again.status, again.new, again.updated) == (OK, 1, 0)
    assert pages_asked(rig)[4:] == ["1"]
    assert rig.posts()["95"].title == "新帖：退款还没到" and len(rig.posts()) == 7


def test_an_unchanged_first_page_costs_a_304(rig: HtmlRig) -> None:
    """The first page's ETag is kept per URL; an unchanged list answers 304 and stores nothing; a change is read."""
    state = {"etag": '"v1"', "body": page(thread(2, "旧帖"), thread(1, "更旧的帖"))}

    def route(req: Request) -> Response:
        if req.headers.get("if-none-match") == state["etag"]:
            return Response(304, b"", {"ETag": state["etag"]})
        return Response(200, state["body"].encode(), {"Content-Type": HTML, "ETag": state["etag"]})

    rig.server.route(LIST, route)
    src = rig.source(generic())
    assert (rig.poll(src).status, len(rig.posts())) == (OK, 2)
    again = rig.poll(src)
    assert (again.status, again.new, again.pages) == (OK, 0, 0)
    asked = rig.server.hits(LIST)
    assert asked[-1].headers.get("if-none-match") == '"v1"'
    state.update(etag='"v2"', body=page(thread(3, "新帖"), thread(2, "旧帖")))
    third = rig.poll(src)
    assert (third.status, third.new) == (OK, 1) and "3" in rig.posts()


def test_paging_stops_at_a_repeated_last_page(rig: HtmlRig) -> None:
    """A forum that answers any page past the last with the last page again (Discuz, phpBB) ends paging there."""
    last = page(thread(12, "第二页甲"), thread(11, "第二页乙"))
    rig.server.route(LIST, by_page({"1": page(thread(14, "第一页甲"), thread(13, "第一页乙"))}, default=last))
    out = rig.poll(rig.source(generic(max_pages=10)))
    assert (out.status, out.new, out.problems) == (OK, 4, [])
    assert pages_asked(rig) == ["1", "2", "3"]


def test_keywords_are_url_encoded_as_configured(rig: HtmlRig) -> None:
    """``keyword_encoding: gbk`` puts GBK bytes into {keyword} (old Discuz search wants them); each keyword has its own
    pages; utf-8 is the default."""
    def route(req: Request) -> Response:
        return ok(page(thread(500 + int(query(req)["page"]), "搜索结果")) if query(req)["page"] == "1"
                  else page())
    rig.server.route("/search.php", route)
    keywords = ["澄川 退款", "朱镕基"]  # 镕 is in GBK but not in GB2312
    src = rig.source(generic(url="{base}/search.php?mod=forum&kw={keyword}&page={page}", keywords=keywords,
                             keyword_encoding="gbk", max_pages=2))
    assert rig.poll(src).status == OK
    hits = rig.server.hits("/search.php")
    raw = [dict(p.split("=", 1) for p in urlsplit(r.path).query.split("&")) for r in hits]
    # 镕 is E9 46 in GBK, and 0x46 is "F", which percent-encoding leaves as it is.
    one, two = "%B3%CE%B4%A8%20%CD%CB%BF%EE", "%D6%EC%E9F%BB%F9"
    assert [(r["kw"], r["page"]) for r in raw] == [(one, "1"), (one, "2"), (two, "1"), (two, "2")]
    assert [unquote_to_bytes(r["kw"]).decode("gbk") for r in raw[::2]] == keywords

    rig.server.requests.clear()
    assert rig.poll(rig.source(generic(url="{base}/search.php?kw={keyword}&page={page}", keywords=["澄川"]),
                               name="utf8")).status == OK
    (first, *_) = rig.server.hits("/search.php")
    assert query(first)["kw"] == "澄川" and "%E6%BE%84%E5%B7%9D" in first.path


# -- encodings --------------------------------------------------------------------------------------------------------

GBK_TITLE = "澄川热水器漏电，朱镕基路门店拒绝退换"  # 镕 is GBK-only: a GB2312 decoder would fail on it
GBK_AUTHOR = "龙岗小王"


def gbk_page(meta: str) -> bytes:
    """A list page in GBK with a few threads and enough prose for charset detection; ``meta`` in <head>."""
    items = [thread(701, GBK_TITLE, author=GBK_AUTHOR, uid=27715),
             thread(702, "空调外机噪音大，售后说是正常现象", author="老街的猫", uid=18822),
             thread(703, "以旧换新补贴迟迟不到账，客服只会说在走流程", author="阿May", uid=30077)]
    intro = ('<p class="rules">投诉请写明产品型号、购买渠道、订单号后四位与诉求；请勿公开手机号与住址。'
             '官方客服工作日二十四小时内回复，节假日顺延。恶意灌水、广告与人身攻击的帖子将被删除。</p>\n')
    text = page(*items, head=meta, body=intro).replace('<meta charset="utf-8">\n', "")
    return text.encode("gbk")


GBK_CASES = {  # name -> (Content-Type, what <head> says)
    "header": ("text/html; charset=gbk", ""),
    "meta-http-equiv": ("text/html", '<meta http-equiv="Content-Type" content="text/html; charset=gbk" />\n'),
    "meta-gb2312-label": ("text/html", "<meta charset=gb2312>\n"),
    "undeclared": ("text/html", ""),
    "latin1-header-gbk-meta": ("text/html; charset=iso-8859-1", '<meta charset="gbk">\n'),
}


def test_gbk_pages_are_decoded(rig: HtmlRig) -> None:
    """GBK pages read right whether the charset is in the header, in a <meta> (even labelled gb2312 while holding
    GBK-only characters), nowhere at all, or wrongly in the header (a server default of ISO-8859-1)."""
    for name, (content_type, meta) in GBK_CASES.items():
        content = gbk_page(meta)
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")
        rig.server.route(f"/{name}/list", Response(200, content, {"Content-Type": content_type}))
        out = rig.poll(rig.source(generic(url=f"{{base}}/{name}/list?page={{page}}"), name=name))
        assert (out.status, out.new) == (OK, 3), (name, out.error)
        posts = rig.posts(name)
        assert (posts["701"].title, posts["701"].author) == (GBK_TITLE, GBK_AUTHOR), name
        assert (posts["702"].title, posts["703"].author) == ("空调外机噪音大，售后说是正常现象", "阿May"), name


# -- the page is not a list -------------------------------------------------------------------------------------------

def test_changed_layout_is_a_layout_alert_then_recovers(rig: HtmlRig) -> None:
    """A 200 page where ``items`` matches nothing is ``layout`` with a message naming the selector (no crash, nothing
    stored); items without an id are ``layout`` too; once the page fits again the source is ``ok``."""
    redesigned = page().replace('<ul class="threads">\n</ul>', '<div class="post-list">\n<div class="post-card" '
                                'data-id="1"><h3>改版后的帖子</h3></div>\n</div>')
    rig.server.route(LIST, ok(redesigned))
    src = rig.source(generic())
    out = rig.poll(src)
    assert out.status == LAYOUT
    assert out.error and "'li.thread' matched 0 items on a 200 page" in out.error
    assert "layout may have changed" in out.error
    assert "try-source" in out.error
    assert rig.store.source_state("forum").status == LAYOUT and rig.store.count_posts("forum") == 0

    rig.server.route(LIST, ok(page(thread(1, "甲").replace('data-tid="1"', 'data-id="1"'))))
    no_ids = rig.poll(src)
    assert no_ids.status == LAYOUT and no_ids.error and "none had an id" in no_ids.error

    rig.server.route(LIST, ok(page(thread(1, "修好了"))))
    back = rig.poll(src)
    assert (back.status, back.new) == (OK, 1)
    (health,) = rig.store.health()
    assert health.status == OK and health.consecutive_failures == 0


def test_a_full_page_that_mentions_logging_in_to_post_is_a_layout_change(rig: HtmlRig) -> None:
    """Discuz prints "您需要登录后才可以发帖" under every board for guests: a board page whose threads the selector no
    longer finds is a changed layout, not a login wall."""
    board = page(body='<div class="pt hm">您需要登录后才可以发帖 <a href="member.php?mod=logging">登录</a> | '
                      '<a href="member.php?mod=register">立即注册</a></div>\n'
                      '<table id="threadlisttableid"><tbody id="thread_1"><tr><th>改版后的帖子</th></tr>'
                      '</tbody></table>\n')
    rig.server.route(LIST, ok(board))
    out = rig.poll(rig.source(generic()))
    assert out.status == LAYOUT, out.error


WALLS = {
    "login-title": page(title="登录 - 澄川社区", body='<form action="/login"><input name="user"><input type="password" '
                        'name="pass"><button>登录</button></form><p>请先登录后再查看</p>\n'),
    "slider-captcha": page(title="安全验证", body='<div class="verify"><p>请拖动滑块完成验证</p>'
                           '<div id="nc_1_wrapper"></div></div>\n'),
    "too-frequent": page(title="提示", body="<p>您的访问过于频繁，请稍后再试</p>\n"),
    "discuz-no-permission": page(title="提示信息 - 澄川社区 - Powered by Discuz!",
                                 body='<div id="messagetext" class="alert_info"><p>抱歉，您尚未登录，没有权限访问该版块'
                                      '</p></div>\n<div id="messagelogin"></div>\n'),
    "phpbb-english": page(title="Login - Chengchuan Community",
                          body='<div class="error">The board requires you to be registered and logged in to view this '
                               'forum.</div>\n<label>Username:</label><input name="username"><label>Password:</label>'
                               '<input type="password" name="password">\n'),
}


def test_login_walls_captchas_and_anti_bot_statuses_are_blocked(rig: HtmlRig) -> None:
    """A 200 page that is a login wall, a captcha or an anti-bot notice is ``blocked`` with advice, not "no posts"
    and not a layout change; so is an anti-bot HTTP status."""
    for name, wall in WALLS.items():
        rig.server.route(f"/{name}/list", ok(wall))
        out = rig.poll(rig.source(generic(url=f"{{base}}/{name}/list?page={{page}}"), name=name))
        assert out.status == BLOCKED, (name, out.error)
        assert out.error and "login wall or captcha" in out.error and "Cookie" in out.error
        assert rig.store.source_state(name).status == BLOCKED
    rig.server.route(LIST, Response(412, b"<html><body>Precondition Failed</body></html>", {"Content-Type": HTML}))
    out = rig.poll(rig.source(generic()))
    assert out.status == BLOCKED and out.error and "HTTP 412" in out.error


def test_empty_result_with_the_configured_marker_is_ok(rig: HtmlRig) -> None:
    """A search without results, saying the configured ``empty_marker``, is a good poll with nothing new; the same
    page without the marker configured is a layout alert."""
    empty = page(body='<div class="empty">抱歉，没有找到与“澄川 退款”相关的帖子</div>\n')
    rig.server.route(LIST, ok(empty))
    out = rig.poll(rig.source(generic(empty_marker="没有找到与")))
    assert (out.status, out.new, out.problems) == (OK, 0, [])
    assert rig.store.source_state("forum").status == OK
    assert rig.poll(rig.source(generic(), name="nomarker")).status == LAYOUT


# -- HTTP trouble -----------------------------------------------------------------------------------------------------

def test_429_retry_after_is_honoured(rig: HtmlRig) -> None:
    """A short Retry-After is waited (recorded, not slept) and retried; a long one ends the poll and the next poll is
    put off until after it."""
    rig.http["retries"] = 2
    rig.server.route(LIST, sequence(Response(429, b"slow down", {"Retry-After": "7"}), ok(page(thread(7, "好了")))))
    src = rig.source(generic())
    out = rig.poll(src)
    assert (out.status, out.new) == (OK, 1)
    assert len(rig.sleeps) == 1 and rig.sleeps[0] >= 7
    assert len(rig.server.hits(LIST)) == 2

    rig.server.route(LIST, Response(429, b"slow down", {"Retry-After": "900"}))
    failed = rig.poll(src)
    assert failed.status == FAILING and failed.error and "HTTP 429" in failed.error
    assert len(rig.sleeps) == 1  # not waited within the poll
    state = rig.store.source_state("forum")
    assert state.next_attempt_at is not None
    assert state.next_attempt_at - rig.clock.now() >= timedelta(seconds=890)


def test_timeout_is_failing(rig: HtmlRig) -> None:
    """A server slower than the source's timeout fails the poll with "timed out"."""
    rig.server.route(LIST, Response(200, page(thread(1, "慢")).encode(), {"Content-Type": HTML}, delay=1.5))
    out = rig.poll(rig.source(generic(timeout="0.3s")))
    assert out.status == FAILING and out.error and "timed out" in out.error
    assert rig.store.count_posts("forum") == 0


def test_oversized_page_is_failing(rig: HtmlRig) -> None:
    """A page over the source's max_bytes is refused, not parsed, also when it is streamed without a length."""
    big = page(*(thread(i, "很长的标题" * 20) for i in range(60))).encode()
    assert len(big) > 8192
    rig.server.route(LIST, Response(200, big, {"Content-Type": HTML}))
    out = rig.poll(rig.source(generic(max_bytes=8192)))
    assert out.status == FAILING and out.error and "cap" in out.error
    rig.server.route(LIST, Response(200, headers={"Content-Type": HTML},
                                    chunks=[big[i:i + 4096] for i in range(0, len(big), 4096)]))
    streamed = rig.poll(rig.source(generic(max_bytes=8192), name="streamed"))
    assert streamed.status == FAILING and streamed.error and "cap" in streamed.error
    assert rig.store.count_posts() == 0


# -- detail pages -----------------------------------------------------------------------------------------------------

def detail_page(tid: int, text: str, *, when: str = "2026-11-20 09:00", status: str = "处理中") -> str:
    """The page of one thread: its full text, exact time and a status only shown there."""
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>帖子 {tid} - 澄川社区</title></head><body>'
            f'<div class="nav"><a href="/">首页</a></div><div class="post" id="post-{tid}">'
            f'<div class="meta"><span class="posted">发表于 {when}</span><em class="status">{status}</em></div>'
            f'<div class="content">{text}</div></div></body></html>')


DETAIL = {"root": "div.post", "fields": {"text": {"selector": "div.content", "attr": "html"},
                                         "published_at": "span.posted", "status": "em.status"}}


def serve_details(rig: HtmlRig, tids: list[int]) -> None:
    """A detail page at /t/<tid>.html for each thread."""
    for tid in tids:
        rig.server.route(f"/t/{tid}.html", ok(detail_page(tid, f"<p>第{tid}帖的全文。</p><p>第二段。</p>")))


def test_detail_pages_add_the_full_text_within_max_pages(rig: HtmlRig) -> None:
    """New items get their detail page (full text, exact time, a status only shown there), at most detail.max_pages
    per poll: the rest are kept from the list and the poll says so. The next poll reads no detail page again and
    changes nothing."""
    tids = [804, 803, 802, 801]
    rig.server.route(LIST, ok(page(*(thread(t, f"帖子{t}", time="3小时前", more='\n  <p class="abs">摘要……</p>')
                                     for t in tids))))
    serve_details(rig, tids)
    fields = {**FIELDS, "text": "p.abs"}
    src = rig.source(generic(fields=fields, detail={**DETAIL, "max_pages": 2}))
    out = rig.poll(src)
    assert (out.status, out.new) == (OK, 4), out.error
    assert [r.path for r in rig.server.requests if r.path.startswith("/t/")] == ["/t/804.html", "/t/803.html"]
    assert out.problems == ["2 new item(s) kept without their detail page (detail.max_pages=2); raise it if the "
                            "full text matters"]
    posts = rig.posts()
    full = posts["804"]
    assert full.text == "第804帖的全文。\n\n第二段。"
    assert full.published_at == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # the detail page's exact time
    assert full.extra == {"status": "处理中"} and full.title == "帖子804"  # the list's fields stay
    kept = posts["801"]
    assert kept.text == "摘要……" and kept.published_at == T0 - timedelta(hours=3) and kept.extra == {}

    before = len(rig.server.requests)
    again = rig.poll(src)
    assert (again.status, again.new, again.updated, again.problems) == (OK, 0, 0, [])
    assert [r.path for r in rig.server.requests[before:] if r.path != "/robots.txt"] == ["/forum/list?page=1"]
    assert rig.posts()["804"].text == "第804帖的全文。\n\n第二段。"


def test_failed_detail_pages_keep_their_items(rig: HtmlRig) -> None:
    """A detail page that fails (500, 404) or is a captcha costs only the detail: the item is stored from the list,
    the others get their full text, and the poll names each failure."""
    rig.server.route(LIST, ok(page(thread(904, "甲"), thread(903, "乙", replies="5"), thread(902, "丙"),
                                   thread(901, "丁"))))
    serve_details(rig, [904, 901])
    rig.server.route("/t/903.html", Response(500, b"Internal Server Error"))
    rig.server.route("/t/902.html", ok(page(title="安全验证", body="<p>请完成安全验证</p>")))
    out = rig.poll(rig.source(generic(detail=DETAIL)))
    assert (out.status, out.new) == (OK, 4), out.error
    assert any("detail page of 903 not read: HTTP 500" in p for p in out.problems), out.problems
    assert any("/t/902.html: 'div.post' matched nothing; it looks like a login or captcha page ('安全验证')" in p
               for p in out.problems), out.problems
    posts = rig.posts()
    assert (posts["903"].title, posts["903"].comments, posts["903"].text, posts["903"].extra) == ("乙", 5, "", {})
    assert (posts["902"].title, posts["902"].text, posts["902"].extra) == ("丙", "", {})
    assert posts["904"].text.startswith("第904帖的全文") and posts["901"].extra == {"status": "处理中"}
    assert rig.store.source_state("forum").status == OK

    rig.server.route("/t/905.html", Response(404, b"not found"))
    rig.server.route(LIST, ok(page(thread(905, "戊"), thread(904, "甲"))))
    again = rig.poll(rig.source(generic(detail=DETAIL)))
    assert (again.status, again.new) == (OK, 1)
    assert again.problems and "detail page of 905 not read: HTTP 404" in again.problems[0]
    assert rig.posts()["905"].title == "戊"
