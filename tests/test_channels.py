"""The HTTP notification channels against a real server on 127.0.0.1: exact requests, signatures, failure classes.

Signatures are recomputed here from the service docs' recipe and the test's ManualClock, not with the channel's own
helper, so a wrong recipe fails. Hostile post text must come out inert in every dialect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest

from alerts.channels import BUILTIN_CHANNELS, Channel, ChannelConfig, Delivery, DeliveryError, get_channel_kind, render
from alerts.channels.webhook import SCHEMA, sign, verify
from alerts.message import Message, PostRef
from monitor.clock import ManualClock
from monitor.config import parse_config
from monitor.errors import ConfigError
from tests.loopback import LoopbackServer, Request, Response

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
NOW = datetime(2026, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
NOW_MS = 1772353815250  # NOW as unix milliseconds
DT_TOKEN = "dt0123456789abcdeftoken"
DT_SECRET = "SECd1f2e3a4b5c6d7e8f9"
HOSTILE = ("[点我领退款](http://evil.example/phish) <script>alert(1)</script> **全部** _x_ `code` "
           "![img](http://evil.example/i.png)\n# 大标题\n<at user_id=\"all\"></at> <!channel> @all")
POSTS = (
    PostRef(HOSTILE, "https://weibo.example/status/1", "张三<b>", "weibo", "2026-03-01T16:20:00+08:00"),
    PostRef("退款三个月还没到账，客服电话一直打不通。" * 20, "javascript:alert(1)", "李四", "tieba",
            "2026-03-01T16:25:00+08:00"),
    PostRef("第三条帖子", "https://bbs.example/t/3?a=1&b=(2)", "王五", "bbs", "not a time"),
    PostRef("第四条帖子不应出现", "https://bbs.example/t/4", "赵六", "bbs", ""),
)
MSG = Message(kind="incident.opened", severity="red", title="某银行 · 退款",
              summary="过去 1 小时关于退款的负面帖子激增。", facts=(("负面帖子", "35"), ("独立作者", "21")),
              reasons=("负面帖子数是过去 14 天同时段的 4.2 倍",), posts=POSTS,
              link="https://console.example/incidents/12", data={"incident": {"id": 12}})
DELIVERY = Delivery(id="4b0c2f0e-8a8e-4a55-9d41-1f0c1a2b3c4d", key="incident:12#1>ops", attempt=1)
MD_LINK = re.compile(r"\]\(([^)]*)\)")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh loop (pytest-asyncio is deliberately not used)."""
    return asyncio.run(coro)


def make(kind: str, options: dict[str, Any], http: httpx.AsyncClient, clock: ManualClock) -> Channel:
    """A channel of ``kind`` built the way the daemon builds it: validated config, shared client, clock."""
    cls = get_channel_kind(kind)
    config = cls.config_model.model_validate({"name": "ops", "type": kind, **options})
    return cls(config, http, clock)


def send(kind: str, options: dict[str, Any], message: Message = MSG, delivery: Delivery = DELIVERY,
         clock: ManualClock | None = None) -> DeliveryError | None:
    """One delivery attempt; the DeliveryError it raised, or None on success."""
    async def go() -> DeliveryError | None:
        async with httpx.AsyncClient() as http:
            channel = make(kind, options, http, clock or ManualClock(NOW))
            try:
                await channel.send(message, delivery)
            except DeliveryError as exc:
                return exc
            return None
    return run(go())


def answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


def body_of(req: Request) -> Any:
    """The JSON body of a recorded request."""
    return json.loads(req.body.decode("utf-8"))


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_inert_markdown(text: str, allowed_links: set[str]) -> None:
    """No link, image, tag or heading from outside text; only our own http(s) links."""
    assert "<script" not in text and "</script>" not in text
    assert "evil.example" not in {urlsplit(u).hostname for u in MD_LINK.findall(text)}
    assert set(MD_LINK.findall(text)) <= allowed_links
    assert "javascript:" not in text
    assert "![" not in text and "\n# " not in text and "<at " not in text and "<!channel>" not in text
    assert "**全部**" not in text and "`code`" not in text


# ---------------------------------------------------------------------------------------------------- rendering


def test_headline_puts_the_severity_first_and_never_twice() -> None:
    assert render.headline(MSG) == "🔴【红色预警】某银行 · 退款"
    cases = [("orange", "🟠【橙色预警·新预警】鲸帆 · 退款", "🟠【橙色预警·新预警】鲸帆 · 退款"),
             ("red", "【红色】工单 T-1 受理超时", "🔴【红色】工单 T-1 受理超时"),
             ("blue", "【测试】通道", "🔵【蓝色预警】【测试】通道"),
             ("blue", "a\nb", "🔵【蓝色预警】a b"),
             ("yellow", "", "🟡【黄色预警】")]
    for severity, title, expected in cases:
        assert render.headline(Message(kind="test", severity=severity, title=title)) == expected


@pytest.mark.parametrize("dialect", ["dingtalk", "wecom", "lark"])
def test_markdown_has_every_part_in_order_and_neutralises_posts(dialect: render.Dialect) -> None:
    text = render.markdown(MSG, dialect)
    order = ["🔴【红色预警】某银行 · 退款", "过去 1 小时", "负面帖子", "35", "为什么", "4.2 倍", "代表性帖子（3/4）",
             "张三", "weibo", "2026-03-01 16:20", "李四", "王五", "在控制台查看"]
    positions = [text.index(x) for x in order]
    assert positions == sorted(positions), text
    assert "第四条帖子" not in text  # at most three posts
    assert_inert_markdown(text, {"https://weibo.example/status/1", "https://bbs.example/t/3?a=1&b=%282%29",
                                 "https://console.example/incidents/12"})
    # The hostile text is still readable, in full-width characters.
    assert "［点我领退款］（http://evil.example/phish）" in text and "＜script＞" in text
    # The long quote is cut to about 120 characters.
    quote = next(line for line in text.splitlines() if "退款三个月" in line)
    assert "…" in quote and len(quote) < 140
    # The javascript: post is quoted but never linked.
    assert text.count("[原文]") == 2


def test_slack_mrkdwn_escapes_and_links_its_own_way() -> None:
    text = render.markdown(MSG, "slack")
    links = re.findall(r"<([^|>]+)\|([^>]+)>", text)
    assert links == [("https://weibo.example/status/1", "原文"), ("https://bbs.example/t/3?a=1&b=%282%29", "原文"),
                     ("https://console.example/incidents/12", "在控制台查看")]
    assert "<!channel>" not in text and "<script" not in text and "*全部*" not in text
    assert "?a=1&b=" in text  # a link's URL is not entity-escaped
    assert "*为什么*" in text


def test_plain_text_and_html() -> None:
    text = render.plain_text(MSG)
    assert text.startswith("🔴【红色预警】某银行 · 退款\n")
    assert "在控制台查看：https://console.example/incidents/12" in text
    assert "javascript:" not in text
    page = render.html_document(MSG)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "张三&lt;b&gt;" in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == ["https://weibo.example/status/1", "https://bbs.example/t/3?a=1&amp;b=%282%29",
                     "https://console.example/incidents/12"]


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.example/x?y=1", "https://a.example/x?y=1"),
    ("HTTP://a.example/(x)", "http://a.example/%28x%29"),
    ("https://a.example/a b", ""),
    ("javascript:alert(1)", ""),
    ("data:text/html,<b>", ""),
    ("/relative/path", ""),
    ("https://", ""),
    ("https://a.example)/x", ""),
    ("https://例子.example/路径", "https://xn--fsqu00a.example/%E8%B7%AF%E5%BE%84"),
])
def test_safe_url(url: str, expected: str) -> None:
    assert render.safe_url(url) == expected


def test_truncate_bytes_never_cuts_a_character() -> None:
    text = "舆情" * 100  # 3 bytes a character
    for limit in range(1, 40):
        cut = render.truncate_bytes(text, limit)
        assert len(cut.encode("utf-8")) <= limit
        cut.encode("utf-8").decode("utf-8")  # valid
    assert render.truncate_bytes("abc", 3) == "abc"


def big_message(n_posts: int = 3, post_chars: int = 2000) -> Message:
    """A message whose posts alone overflow every service's limit."""
    posts = tuple(PostRef("很长的帖子" * (post_chars // 5), f"https://p.example/{i}", f"作者{i}", "weibo",
                          "2026-03-01T16:20:00+08:00") for i in range(n_posts))
    return Message(kind="incident.repeat", severity="orange", title="标题", summary="摘要" * 200,
                   facts=(("负面帖子", "35"),), reasons=("原因" * 300,) * 5, posts=posts,
                   link="https://console.example/incidents/1")


def test_size_limits_drop_posts_before_the_numbers() -> None:
    message = big_message()
    content = render.markdown(message, "wecom", max_bytes=4096)
    assert len(content.encode("utf-8")) <= 4096
    assert content.startswith("### <font") and "负面帖子：**35**" in content
    assert len(render.markdown(message, "dingtalk", max_chars=5000)) <= 5000
    small = Message(kind="test", severity="blue", title="t", facts=(("负面帖子", "35"),),
                    posts=tuple(PostRef("帖子内容" * 200, f"https://p.example/{i}") for i in range(3)))
    fitted = render.markdown(small, "wecom", max_bytes=600)
    assert len(fitted.encode("utf-8")) <= 600 and "负面帖子" in fitted and "帖子内容" in fitted  # shortened, kept


# ---------------------------------------------------------------------------------------------------- DingTalk


def dingtalk_options(server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    """A signed DingTalk channel pointed at the loopback server."""
    return {"webhook": server.url(f"/robot/send?access_token={DT_TOKEN}"), "secret": DT_SECRET, **extra}


def test_dingtalk_signed_markdown_request(server: LoopbackServer) -> None:
    server.route("/robot/send", answer({"errcode": 0, "errmsg": "ok"}))
    err = send("dingtalk", dingtalk_options(server, at_mobiles=["13800000000"], at_all_min_severity="red"))
    assert err is None
    (req,) = server.hits("/robot/send")
    assert req.method == "POST"
    assert req.headers["content-type"].startswith("application/json")
    query = parse_qs(urlsplit(req.path).query, strict_parsing=True)
    assert query["access_token"] == [DT_TOKEN]
    assert query["timestamp"] == [str(NOW_MS)]
    expected = base64.b64encode(hmac.new(DT_SECRET.encode(), f"{NOW_MS}\n{DT_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]  # parse_qs undid the URL-encoding
    assert f"&sign={quote_plus(expected)}" in req.path  # URL-encoded, so '+', '/' and '=' survive
    body = body_of(req)
    assert set(body) == {"msgtype", "markdown", "at"} and body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "🔴【红色预警】某银行 · 退款"
    text = body["markdown"]["text"]
    assert text.startswith("### 🔴【红色预警】某银行 · 退款") and text.endswith("@13800000000")
    assert len(text) <= 5000
    assert_inert_markdown(text, {"https://weibo.example/status/1", "https://bbs.example/t/3?a=1&b=%282%29",
                                 "https://console.example/incidents/12"})
    assert body["at"] == {"atMobiles": ["13800000000"], "isAtAll": True}


def test_dingtalk_at_all_only_from_its_severity_and_no_sign_without_secret(server: LoopbackServer) -> None:
    server.route("/robot/send", answer({"errcode": 0, "errmsg": "ok"}))
    orange = Message(kind="incident.opened", severity="orange", title="t")
    options = {"webhook": server.url(f"/robot/send?access_token={DT_TOKEN}"), "at_all_min_severity": "red"}
    assert send("dingtalk", options, message=orange) is None
    (req,) = server.hits("/robot/send")
    assert parse_qs(urlsplit(req.path).query) == {"access_token": [DT_TOKEN]}
    assert body_of(req)["at"] == {"atMobiles": [], "isAtAll": False}


def assert_no_secret(err: DeliveryError, *secrets: str) -> None:
    """Neither the token, the secret nor the full URL appears in the error."""
    for s in secrets:
        assert s not in str(err), str(err)


@pytest.mark.parametrize(("reply", "retryable", "retry_after", "words"), [
    ({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, True, 60.0, ["too fast"]),
    ({"errcode": 310000, "errmsg": "sign not match"}, False, None, ["310000", "secret", "keyword", "IP"]),
    ({"errcode": 300001, "errmsg": "token is not exist"}, False, None, ["300001", "token is not exist"]),
])
def test_dingtalk_errcodes(server: LoopbackServer, reply: dict[str, Any], retryable: bool,
                           retry_after: float | None, words: list[str]) -> None:
    server.route("/robot/send", answer(reply))
    err = send("dingtalk", dingtalk_options(server))
    assert err is not None
    assert (err.retryable, err.retry_after, err.channel) == (retryable, retry_after, "ops")
    for word in words:
        assert word in str(err)
    assert "dingtalk channel 'ops' (127.0.0.1:" in str(err)
    assert_no_secret(err, DT_TOKEN, DT_SECRET)


# ---------------------------------------------------------------------------------------------------- WeCom


def test_wecom_markdown_within_4096_bytes_and_a_mention(server: LoopbackServer) -> None:
    server.route("/cgi-bin/webhook/send", answer({"errcode": 0, "errmsg": "ok"}))
    options = {"webhook": server.url("/cgi-bin/webhook/send?key=wecomkey-1234"),
               "mentioned_mobile_list": ["13800000000", "@all"]}
    assert send("wecom", options, message=big_message()) is None
    first, second = server.hits("/cgi-bin/webhook/send")
    assert parse_qs(urlsplit(first.path).query) == {"key": ["wecomkey-1234"]}
    body = body_of(first)
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"content"}
    content = body["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096
    assert content.startswith('### <font color="warning">🟠【橙色预警】标题</font>')
    assert body_of(second) == {"msgtype": "text", "text": {"content": "请关注：🟠【橙色预警】标题",
                                                           "mentioned_mobile_list": ["13800000000", "@all"]}}


def test_wecom_neutralises_posts(server: LoopbackServer) -> None:
    server.route("/cgi-bin/webhook/send", answer({"errcode": 0, "errmsg": "ok"}))
    assert send("wecom", {"webhook": server.url("/cgi-bin/webhook/send?key=k")}) is None
    (req,) = server.hits("/cgi-bin/webhook/send")  # no mention list: one request
    assert_inert_markdown(body_of(req)["markdown"]["content"],
                          {"https://weibo.example/status/1", "https://bbs.example/t/3?a=1&b=%282%29",
                           "https://console.example/incidents/12"})


@pytest.mark.parametrize(("reply", "retryable", "retry_after", "word"), [
    ({"errcode": 45009, "errmsg": "api freq out of limit"}, True, 60.0, "frequency"),
    ({"errcode": 93000, "errmsg": "invalid webhook url"}, False, None, "key"),
    ({"errcode": 40008, "errmsg": "invalid message type"}, False, None, "40008"),
    ({"errcode": -1, "errmsg": "system busy"}, True, None, "busy"),
])
def test_wecom_errcodes(server: LoopbackServer, reply: dict[str, Any], retryable: bool,
                        retry_after: float | None, word: str) -> None:
    server.route("/cgi-bin/webhook/send", answer(reply))
    err = send("wecom", {"webhook": server.url("/cgi-bin/webhook/send?key=wecomkey-1234")})
    assert err is not None and (err.retryable, err.retry_after) == (retryable, retry_after)
    assert word in str(err)
    assert_no_secret(err, "wecomkey-1234")


def test_wecom_failed_mention_does_not_fail_the_delivery(server: LoopbackServer) -> None:
    replies = iter([{"errcode": 0, "errmsg": "ok"}, {"errcode": 45009, "errmsg": "api freq out of limit"}])
    server.route("/cgi-bin/webhook/send", lambda _r: answer(next(replies)))
    options = {"webhook": server.url("/cgi-bin/webhook/send?key=k"), "mentioned_mobile_list": ["13800000000"]}
    assert send("wecom", options) is None  # the alert arrived; a retry would send it twice
    assert len(server.hits("/cgi-bin/webhook/send")) == 2


# ---------------------------------------------------------------------------------------------------- Feishu / Lark


FS_SECRET = "feishu-secret-abc"


@pytest.mark.parametrize("kind", ["feishu", "lark"])
def test_feishu_signed_card(server: LoopbackServer, kind: str) -> None:
    server.route("/open-apis/bot/v2/hook/hook-id-1", answer({"code": 0, "data": {}, "msg": "success"}))
    options = {"webhook": server.url("/open-apis/bot/v2/hook/hook-id-1"), "secret": FS_SECRET}
    assert send(kind, options) is None
    (req,) = server.hits("/open-apis/bot/v2/hook/hook-id-1")
    assert req.method == "POST" and req.path == "/open-apis/bot/v2/hook/hook-id-1"
    body = body_of(req)
    seconds = NOW_MS // 1000
    assert body["timestamp"] == str(seconds)
    key = f"{seconds}\n{FS_SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["msg_type"] == "interactive"
    card = body["card"]
    title = {"tag": "plain_text", "content": "🔴【红色预警】某银行 · 退款"}
    assert card["header"] == {"template": "red", "title": title}
    div, action, note = card["elements"]
    assert div["text"]["tag"] == "lark_md"
    content = div["text"]["content"]
    assert content.startswith("过去 1 小时") and "在控制台查看" not in content  # the button carries the link
    assert_inert_markdown(content, {"https://weibo.example/status/1", "https://bbs.example/t/3?a=1&b=%282%29"})
    (button,) = action["actions"]
    assert button["url"] == "https://console.example/incidents/12"
    assert button["text"] == {"tag": "plain_text", "content": "在控制台查看"}
    assert note["tag"] == "note"


def test_feishu_legacy_answer_and_no_sign_without_secret(server: LoopbackServer) -> None:
    server.route("/hook", answer({"StatusCode": 0, "StatusMessage": "success"}))
    yellow = Message(kind="test", severity="yellow", title="测试")
    assert send("feishu", {"webhook": server.url("/hook")}, message=yellow) is None
    body = body_of(server.hits("/hook")[0])
    assert "sign" not in body and "timestamp" not in body
    assert body["card"]["header"]["template"] == "yellow"
    assert [e["tag"] for e in body["card"]["elements"]] == ["note"]  # no text, no link: no empty elements


@pytest.mark.parametrize(("reply", "status", "retryable", "word"), [
    ({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}, 200, False,
     "secret"),
    ({"code": 19024, "msg": "Key Words Not Found"}, 200, False, "keyword"),
    ({"code": 9499, "msg": "too many request"}, 200, True, "rate limited"),
    ({"code": 11232, "msg": "frequency limited"}, 200, True, "rate limited"),
    ({"code": 19021, "msg": "sign match fail"}, 400, False, "clock"),
    ({"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}, 400, False, "19001"),
])
def test_feishu_codes(server: LoopbackServer, reply: dict[str, Any], status: int, retryable: bool,
                      word: str) -> None:
    server.route("/open-apis/bot/v2/hook/hook-id-1", answer(reply, status))
    options = {"webhook": server.url("/open-apis/bot/v2/hook/hook-id-1"), "secret": FS_SECRET}
    err = send("feishu", options)
    assert err is not None and err.retryable is retryable and err.status == status
    assert word in str(err)
    assert_no_secret(err, "hook-id-1", FS_SECRET)


@pytest.mark.parametrize(("status", "headers", "wait"), [
    (429, {"x-ogw-ratelimit-reset": "52"}, 52.0),  # the open platform's limit, with its reset time
    (400, {"x-ogw-ratelimit-reset": "7"}, 7.0),  # older endpoints answer 400 with the same code
    (429, {}, 60.0),  # no reset header: the usual wait
    (200, {"x-ogw-ratelimit-reset": "soon"}, 60.0),  # a header that is not whole seconds is ignored
])
def test_feishu_rate_limit_waits_as_told(server: LoopbackServer, status: int, headers: dict[str, str],
                                         wait: float) -> None:
    server.route("/open-apis/bot/v2/hook/hook-id-1",
                 answer({"code": 99991400, "msg": "request trigger frequency limit"}, status, headers))
    err = send("feishu", {"webhook": server.url("/open-apis/bot/v2/hook/hook-id-1"), "secret": FS_SECRET})
    assert err is not None and err.retryable and err.retry_after == wait
    assert "rate limited" in str(err)
    assert_no_secret(err, "hook-id-1", FS_SECRET)


# ---------------------------------------------------------------------------------------------------- Slack


def test_slack_blocks(server: LoopbackServer) -> None:
    server.route("/services/T000/B000/XXXX", Response(200, b"ok", {"Content-Type": "text/html"}))
    assert send("slack", {"webhook": server.url("/services/T000/B000/XXXX")}) is None
    (req,) = server.hits("/services/T000/B000/XXXX")
    body = body_of(req)
    assert body["text"].startswith("🔴【红色预警】某银行 · 退款 过去 1 小时")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context", "actions"]
    header, section, context, actions = body["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "🔴【红色预警】某银行 · 退款", "emoji": True}
    assert section["text"]["type"] == "mrkdwn" and len(section["text"]["text"]) <= 3000
    assert "<!channel>" not in section["text"]["text"] and "<script" not in section["text"]["text"]
    assert "事件" in context["elements"][0]["text"]
    (button,) = actions["elements"]
    assert button["url"] == "https://console.example/incidents/12" and button["style"] == "danger"


def test_slack_section_limit() -> None:
    text = render.markdown(big_message(post_chars=5000), "slack", max_chars=3000, with_headline=False)
    assert len(text) <= 3000


@pytest.mark.parametrize(("response", "retryable", "retry_after", "word"), [
    (Response(429, b"rate_limited", {"Retry-After": "30"}), True, 30.0, "rate limited"),
    (Response(500, b"internal error"), True, None, "500"),
    (Response(503, b"", {"Retry-After": "7"}), True, 7.0, "503"),
    (Response(400, b"invalid_payload"), False, None, "invalid_payload"),
    (Response(404, b"no_service"), False, None, "no_service"),
    (Response(404, b"channel_not_found"), False, None, "channel_not_found"),
    (Response(403, b"x" * 5000), False, None, "403"),
    (Response(200, b"<html>proxy login</html>"), True, None, "instead of 'ok'"),
])
def test_slack_failures(server: LoopbackServer, response: Response, retryable: bool, retry_after: float | None,
                        word: str) -> None:
    server.route("/services/T000/B000/XXXX", response)
    err = send("slack", {"webhook": server.url("/services/T000/B000/XXXX")})
    assert err is not None and (err.retryable, err.retry_after) == (retryable, retry_after)
    assert word in str(err) and len(str(err)) < 500
    assert_no_secret(err, "T000/B000/XXXX")


# ---------------------------------------------------------------------------------------------------- webhook


WH_SECRET = "whsec-0123456789"


def test_webhook_body_headers_and_signature(server: LoopbackServer) -> None:
    server.route("/hooks/monitor", Response(204))
    options = {"url": server.url("/hooks/monitor"), "secret": WH_SECRET,
               "headers": {"Authorization": "Bearer abc", "X-Team": "pr"}}
    clock = ManualClock(NOW)
    assert send("webhook", options, clock=clock) is None
    clock.advance(90)
    assert send("webhook", options, delivery=Delivery(DELIVERY.id, DELIVERY.key, 2), clock=clock) is None
    first, second = server.hits("/hooks/monitor")
    for req, attempt, offset in ((first, 1, 0), (second, 2, 90)):
        ts = NOW_MS // 1000 + offset
        assert req.method == "POST"
        h = req.headers
        assert h["content-type"].startswith("application/json")
        assert h["x-monitor-delivery"] == DELIVERY.id  # stable across retries
        assert h["x-monitor-timestamp"] == str(ts)
        assert h["authorization"] == "Bearer abc" and h["x-team"] == "pr"
        mac = hmac.new(WH_SECRET.encode(), f"{ts}.".encode() + req.body, hashlib.sha256).hexdigest()
        assert h["x-monitor-signature"] == "sha256=" + mac
        assert verify(WH_SECRET, h["x-monitor-timestamp"], req.body, h["x-monitor-signature"], now=ts + 10)
        body = json.loads(req.body)
        assert body == {"schema": SCHEMA, "delivery_id": DELIVERY.id, "key": DELIVERY.key, "attempt": attempt,
                        "kind": "incident.opened",
                        "sent_at": (NOW + timedelta(seconds=offset)).isoformat(),
                        "message": MSG.to_json()}
        assert Message.from_json(body["message"]) == MSG
    assert SCHEMA == "monitor.notification/1"


def test_webhook_without_secret_is_unsigned(server: LoopbackServer) -> None:
    server.route("/h", Response(200, b"{}"))
    assert send("webhook", {"url": server.url("/h")}) is None
    assert "x-monitor-signature" not in server.hits("/h")[0].headers


def test_sign_and_verify() -> None:
    body = b'{"a":1}'
    sig = sign("s3cret", 1700000000, body)
    assert sig == "sha256=" + hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert verify("s3cret", "1700000000", body, sig)
    assert not verify("s3cret", 1700000000, body + b" ", sig)
    assert not verify("other", 1700000000, body, sig)
    assert not verify("s3cret", 1700000001, body, sig)
    assert not verify("s3cret", 1700000000, body, sig, now=1700000000 + 301)
    assert not verify("s3cret", "x", body, sig)


@pytest.mark.parametrize(("response", "retryable", "retry_after"), [
    (Response(503, b"down", {"Retry-After": "120"}), True, 120.0),
    (Response(429, b"", {"Retry-After": format_datetime(datetime(2026, 3, 1, 8, 31, 15, tzinfo=UTC), usegmt=True)}),
     True, 59.75),
    (Response(408, b""), True, None),
    (Response(502, b"bad gateway"), True, None),
    (Response(410, b"gone"), False, None),
    (Response(401, b"unauthorized"), False, None),
    (Response(302, b"", {"Location": "/elsewhere"}), False, None),
])
def test_webhook_status_classes(server: LoopbackServer, response: Response, retryable: bool,
                                retry_after: float | None) -> None:
    server.route("/h", response)
    err = send("webhook", {"url": server.url("/h?token=wh-token-999"), "secret": WH_SECRET})
    assert err is not None and (err.retryable, err.retry_after, err.status) == (retryable, retry_after,
                                                                                 response.status)
    assert_no_secret(err, "wh-token-999", WH_SECRET)


# ---------------------------------------------------------------------------------------------------- all HTTP kinds


def options_for(kind: str, url: str) -> dict[str, Any]:
    """Minimal options of an HTTP kind pointed at ``url``."""
    return {"url": url} if kind == "webhook" else {"webhook": url}


HTTP_KINDS = ["dingtalk", "wecom", "feishu", "lark", "slack", "webhook"]


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_slow_server_hits_the_timeout(server: LoopbackServer, kind: str) -> None:
    server.route("/slow", Response(200, b'{"errcode":0,"code":0}', delay=1.5))
    err = send(kind, {**options_for(kind, server.url("/slow?key=tok-slow-1")), "timeout": 0.2})
    assert err is not None and err.retryable and "no answer within 0.2s" in str(err)
    assert_no_secret(err, "tok-slow-1")


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_connection_refused_is_retryable(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/x?key=tok-refused-1"
    err = send(kind, options_for(kind, url))
    assert err is not None and err.retryable and "ConnectError" in str(err)
    assert f"{kind} channel 'ops' (127.0.0.1:" in str(err)
    assert_no_secret(err, "tok-refused-1")


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu", "lark"])
@pytest.mark.parametrize("response", [Response(200, b"<html>gateway</html>"), Response(502, b"bad gateway"),
                                      Response(200, b"[1, 2]")])
def test_chat_services_not_answering_json_are_retried(server: LoopbackServer, kind: str,
                                                      response: Response) -> None:
    server.route("/x", response)
    err = send(kind, options_for(kind, server.url("/x?key=tok-json-1")))
    assert err is not None and err.retryable
    assert_no_secret(err, "tok-json-1")


# ---------------------------------------------------------------------------------------------------- config


def problems(yaml_text: str, env: dict[str, str] | None = None) -> list[str]:
    """The problems parse_config reports for ``yaml_text``."""
    with pytest.raises(ConfigError) as info:
        parse_config(yaml_text, env=env or {})
    return info.value.problems


def test_config_bad_url_is_reported_without_the_token() -> None:
    got = problems("channels:\n  - name: ops\n    type: dingtalk\n"
                   "    webhook: ftp://oapi.dingtalk.com/robot/send?access_token=TOPSECRET\n"
                   "  - name: ww\n    type: wecom\n    webhook: qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1234\n"
                   "  - name: hook\n    type: webhook\n    url: 'https:///nohost'\n")
    assert got == [
        "channels[0].webhook: must be an http(s) URL (got ftp:); write the full https://... address",
        "channels[1].webhook: must be an http(s) URL (got no scheme); write the full https://... address",
        "channels[2].url: has no host; write the full https://host/path address the service gave you",
    ]


def test_config_unknown_and_missing_keys() -> None:
    got = problems("channels:\n  - name: ops\n    type: dingtalk\n    webhook: https://oapi.dingtalk.com/robot/send\n"
                   "    secrte: x\n  - name: fs\n    type: feishu\n"
                   "  - name: mail\n    type: email\n    host: smtp.example.com\n    sender: a@example.com\n"
                   "    to: []\n    security: tls\n")
    assert got[0] == "channels[0].secrte: unknown key; did you mean 'secret'?"
    assert "channels[1].webhook: missing; this key is required" in got
    assert any(p.startswith("channels[2].to: List should have at least 1 item") for p in got)
    assert any(p.startswith("channels[2].security: Input should be 'starttls', 'ssl' or 'none'") for p in got)


def test_config_secrets_come_from_the_environment() -> None:
    text = ("channels:\n  - name: ops\n    type: dingtalk\n    webhook: ${DINGTALK_WEBHOOK}\n"
            "    secret: ${DINGTALK_SECRET}\n    at_all_min_severity: orange\n"
            "  - name: hook\n    type: webhook\n    url: https://hooks.example/x\n    secret: ${HOOK_SECRET}\n"
            "    headers:\n      Authorization: Bearer ${HOOK_TOKEN}\n")
    config = parse_config(text, env={"DINGTALK_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=t1",
                                     "DINGTALK_SECRET": "SECabc123", "HOOK_SECRET": "hs-1", "HOOK_TOKEN": "tok"})
    ding, hook = config.channels
    assert type(ding).__name__ == "DingTalkConfig" and ding.secret == "SECabc123"
    assert hook.headers == {"Authorization": "Bearer tok"}


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("webhook", {"url": "https://h.example/x", "headers": {"X-Monitor-Signature": "x"}}, "set by monitor itself"),
    ("webhook", {"url": "https://h.example/x", "headers": {"Bad Header": "x"}}, "not a valid header name"),
    ("webhook", {"url": "https://h.example/x", "headers": {"X-Team": "舆情"}}, "not ASCII"),
    ("webhook", {"url": "https://h.example/x", "headers": {"X-Team": "a\r\nX-Evil: 1"}}, "line break"),
    ("dingtalk", {"webhook": "https://h.example/x", "at_mobiles": ["张三"]}, "not a mobile number"),
    ("dingtalk", {"webhook": "https://h.example/x", "at_all_min_severity": "purple"}, "'blue', 'yellow'"),
    ("slack", {"webhook": "https://h.example/x y"}, "contains spaces"),
    ("slack", {"webhook": "https://h.example/x", "timeout": 0}, "greater than 0"),
])
def test_config_option_checks(kind: str, options: dict[str, Any], message: str) -> None:
    cls = get_channel_kind(kind)
    with pytest.raises(ValueError, match=re.escape(message)):
        cls.config_model.model_validate({"name": "ops", "type": kind, **options})


# ---------------------------------------------------------------------------------------------------- contract


@pytest.mark.parametrize("kind", sorted(BUILTIN_CHANNELS))
def test_every_kind_follows_the_contract_and_is_documented(kind: str) -> None:
    cls = get_channel_kind(kind)
    assert cls.kind == kind and cls.__doc__ and cls.send.__doc__
    assert issubclass(cls.config_model, ChannelConfig) and cls.config_model is not ChannelConfig
    assert cls.config_model.model_config.get("extra") == "forbid"
    doc = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
    assert f"type: {kind}" in doc
    missing = [k for k in cls.config_model.model_fields if f"`{k}`" not in doc]
    assert missing == [], f"{kind}: undocumented keys {missing}"
