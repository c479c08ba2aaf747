"""Detection and masking of personal fields in Chinese posts and tickets (monitor/privacy.py), and masking in what
the channels send (a phone number in a quoted post reaches a loopback DingTalk robot masked).

Check digits and Luhn are recomputed here from their published recipes, not with the module's own helpers.
"""

from __future__ import annotations

import json

import pytest

from alerts.channels import render
from alerts.message import Message, PostRef
from monitor.privacy import find_personal, mask_text, mask_url, mask_value
from tests.loopback import LoopbackServer
from tests.test_channels import answer, body_of, send


def id_check(first17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2, written out from the standard: weights 2^(17-i) mod 11."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(first17))
    return "10X98765432"[total % 11]


def luhn_complete(prefix: str) -> str:
    """``prefix`` + the Luhn check digit."""
    digits = [int(d) for d in prefix + "0"]
    for i in range(len(digits) - 2, -1, -2):
        digits[i] = digits[i] * 2 - 9 if digits[i] > 4 else digits[i] * 2
    return prefix + str((10 - sum(digits) % 10) % 10)


ID18 = "11010519491231002" + id_check("11010519491231002")  # the standard's own example: ...002X
ID18_BAD = ID18[:17] + ("0" if ID18[17] != "0" else "1")
ID18_B = "44030619900307123" + id_check("44030619900307123")
CARD_UNIONPAY = luhn_complete("622202123456789012")  # 19 digits, UnionPay prefix 62
CARD_16 = luhn_complete("622848001234567")
VISA = luhn_complete("453201511283036")
VISA_BAD = VISA[:-1] + str((int(VISA[-1]) + 1) % 10)


def test_recipes_agree_with_known_values() -> None:
    """The standard's example ID ends in X; a well-known Luhn test number passes."""
    assert ID18 == "11010519491231002X"
    assert luhn_complete("7992739871") == "79927398713"


POSITIVE = [
    # (text, kind, the value found)
    ("我的电话13812345678，请回电", "mobile", "13812345678"),
    ("手机 138 1234 5678 联系", "mobile", "138 1234 5678"),
    ("手机：138-1234-5678", "mobile", "138-1234-5678"),
    ("请拨+86 13912345678", "mobile", "+86 13912345678"),
    ("+86-199-1234-5678", "mobile", "+86-199-1234-5678"),
    ("0086 17712345678", "mobile", "0086 17712345678"),
    ("座机010-62345678找我", "landline", "010-62345678"),
    ("电话 (0755) 22345678转123", "landline", "(0755) 22345678转123"),
    ("客服 021 62345678", "landline", "021 62345678"),
    ("号码02162345678", "landline", "02162345678"),
    (f"身份证号{ID18}，", "id_card", ID18),
    (f"身份证 {ID18_B.lower()}", "id_card", ID18_B.lower()),
    ("老身份证 110101900307123", "id_card", "110101900307123"),
    (f"卡号{CARD_UNIONPAY}", "bank_card", CARD_UNIONPAY),
    (f"转到 {CARD_16[:4]} {CARD_16[4:8]} {CARD_16[8:12]} {CARD_16[12:]} 了", "bank_card",
     f"{CARD_16[:4]} {CARD_16[4:8]} {CARD_16[8:12]} {CARD_16[12:]}"),
    (f"信用卡号码：{VISA}", "bank_card", VISA),
    (f"银行卡{CARD_16}还没退", "bank_card", CARD_16),
    ("邮箱 alice.wang@example.com.cn 谢谢", "email", "alice.wang@example.com.cn"),
    ("发到zhang_san+vip@qq.com吧", "email", "zhang_san+vip@qq.com"),
    ("订单号：202405061234567890，", "order", "202405061234567890"),
    ("订单编号 E20240506123456 退款", "order", "E20240506123456"),
    ("运单号SF1234567890123", "order", "SF1234567890123"),
    ("单号是 JD0123456789012", "order", "JD0123456789012"),
    ("Order No. AB12345678901234", "order", "AB12345678901234"),
    ("order #998877665544", "order", "998877665544"),
    ("姓名：王小明，电话", "name", "王小明"),
    ("联系人：张三电话138", "name", "张三"),
    ("收货人: 欧阳娜娜", "name", "欧阳娜娜"),
]


@pytest.mark.parametrize(("text", "kind", "value"), POSITIVE)
def test_finds_personal_fields(text: str, kind: str, value: str) -> None:
    """Each example yields exactly its one field, at the right place."""
    found = find_personal(text)
    assert [(f.kind, f.value) for f in found] == [(kind, value)]
    (f,) = found
    assert text[f.start:f.end] == value


NEGATIVE = [
    "价格 2999 元，优惠后 ¥1399.00，省了 1600",
    "2024-05-06 14:30 发的帖子，20240506 到货",
    "2026-01-05T14:03:00+08:00",
    "工单 T20261123-0001 已关闭",
    "已有 36 人投诉，转发 1.38 万，阅读 1.2亿",
    "帖子 4987654321098765 被删了",  # a 16-digit post id
    f"帖子 {VISA} 被删了",  # passes Luhn but has no card shape or card words: a post id
    f"卡号{VISA_BAD}",  # card words, fails Luhn
    f"身份证 {ID18_BAD}",  # wrong check digit
    "编号 991301199003071234",  # province 99 does not exist
    "时间戳 1712345678901，版本 v1.2.3，IP 192.168.1.1",
    "12345678901 和 138123456789",  # 11 digits not starting 1[3-9]; 12 digits
    "第 13812345 楼",  # 8 digits
    "010-12345678",  # local numbers never start with 1
    "订单 confirmation 已发送",  # an order word followed by letters
    "单号 12345678901",  # 11 characters: too short to be an order number
    "https://weibo.com/1234567890/NxYz8Abc",
    "ISBN 978-7-111-12345-6",
    "姓名未知，联系人不详",  # no colon: not a field
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_leaves_ordinary_numbers_alone(text: str) -> None:
    """Prices, dates, counts, ids, versions: nothing is found and nothing changes."""
    assert find_personal(text) == []
    assert mask_text(text) == text


@pytest.mark.parametrize(("text", "masked"), [
    ("电话13812345678", "电话138****5678"),
    ("手机 138 1234 5678 联系", "手机 138****5678 联系"),
    ("+86 13912345678", "+86 139****5678"),
    ("身份证110101199003071233", "身份证110101********1233"),
    (f"身份证 {ID18}", "身份证 110105********002X"),
    ("老身份证 110101900307123", "老身份证 110101*****7123"),
    (f"{CARD_16[:4]} {CARD_16[4:8]} {CARD_16[8:12]} {CARD_16[12:]}", f"6228 **** **** {CARD_16[12:]}"),
    (f"卡号{CARD_UNIONPAY}", f"卡号6222***********{CARD_UNIONPAY[-4:]}"),
    ("alice@example.com", "a***@example.com"),
    ("订单号 20240506127890", "订单号 2024******7890"),
    ("座机010-62345678", "座机010-****5678"),
    ("(0755) 22345678转123", "(0755) ****5678转123"),
    ("姓名：王小明，", "姓名：王**，"),
    ("联系人：张三，手机13812345678，订单号202405061234567890",
     "联系人：张*，手机138****5678，订单号2024**********7890"),
])
def test_masking(text: str, masked: str) -> None:
    """Enough is left to recognise the field, not to use it; the text around it is untouched; masking twice
    changes nothing more."""
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


def test_mask_value_by_kind() -> None:
    """The same masks through mask_value."""
    assert mask_value("mobile", "13812345678") == "138****5678"
    assert mask_value("id_card", "110101199003071233") == "110101********1233"
    assert mask_value("bank_card", "6222 0212 3456 1234") == "6222 **** **** 1234"
    assert mask_value("email", "a@example.com") == "a***@example.com"
    assert mask_value("order", "20240506127890") == "2024******7890"
    assert mask_value("name", "张三") == "张*"


def test_mask_url_keeps_the_place_not_the_query() -> None:
    """Evidence links: host and path stay, query values go, a phone in the path is masked."""
    assert mask_url("https://weibo.example/p/1?phone=13812345678&id=9") == "https://weibo.example/p/1?phone=***&id=***"
    assert mask_url("https://x.example/u/13812345678") == "https://x.example/u/138****5678"
    assert mask_url("https://x.example/p/1") == "https://x.example/p/1"


def test_every_rendering_masks_quoted_posts_titles_and_summary() -> None:
    """Markdown of each dialect, plain text, HTML and the headline: no phone, ID or card number survives."""
    message = Message(kind="ticket.created", severity="red", title="用户13812345678投诉",
                      summary=f"身份证 {ID18}，卡号 {CARD_UNIONPAY}",
                      facts=(("投诉人", "张三"), ("联系方式", "alice@example.com")),
                      posts=(PostRef("打了13912345678没人接，订单号202405061234567890", "https://x.example/1",
                                     "李四", "weibo", "2026-03-01T16:20:00+08:00"),))
    outputs = [render.markdown(message, d) for d in ("dingtalk", "wecom", "lark", "slack")]
    outputs += [render.plain_text(message), render.html_document(message), render.headline(message)]
    for out in outputs:
        for secret in ("13812345678", "13912345678", ID18, CARD_UNIONPAY, "alice@", "202405061234567890"):
            assert secret not in out
    # Markdown dialects show the stars as their full-width twins (＊), like every syntax character from outside.
    assert "138＊＊＊＊5678" in outputs[0] and "139＊＊＊＊5678" in outputs[0] and "2026-03-01 16:20" in outputs[0]
    assert "139****5678" in render.plain_text(message)


def test_dingtalk_receives_a_quoted_phone_number_masked(server: LoopbackServer) -> None:
    """End to end over HTTP: the robot gets 139****5678, never the number; the request keeps its shape."""
    server.route("/robot/send", answer({"errcode": 0, "errmsg": "ok"}))
    message = Message(kind="incident.opened", severity="orange", title="退款投诉 联系13812345678",
                      summary="有人留了电话",
                      posts=(PostRef("客服不接电话，我的手机 139-1234-5678，速回", "https://weibo.example/1", "买家",
                                     "weibo", "2026-03-01T16:20:00+08:00"),),
                      link="https://console.example/incidents/3")
    assert send("dingtalk", {"webhook": server.url("/robot/send?access_token=t0k")}, message=message) is None
    (req,) = server.hits("/robot/send")
    raw = req.body.decode("utf-8")
    assert "1391234" not in raw and "13812345678" not in raw and "5678" in raw
    body = body_of(req)
    assert set(body) == {"msgtype", "markdown", "at"}
    assert "139＊＊＊＊5678" in body["markdown"]["text"] and body["markdown"]["title"].endswith("138****5678")


def test_webhook_structured_data_is_not_masked(server: LoopbackServer) -> None:
    """The generic webhook carries the message as data for a machine (docs/privacy.md says so): unchanged."""
    server.route("/hook", answer({"ok": True}))
    message = Message(kind="ticket.sync", severity="blue", title="T1", data={"complainant": "13812345678"})
    assert send("webhook", {"url": server.url("/hook")}, message=message) is None
    (req,) = server.hits("/hook")
    assert json.loads(req.body)["message"]["data"]["complainant"] == "13812345678"
