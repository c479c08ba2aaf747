"""Feishu (飞书) and Lark custom bots: ``type: feishu`` and ``type: lark``.

One POST of an interactive card: a header coloured by severity with the severity-first title, the body in lark_md
and a button to the web console. Feishu (``open.feishu.cn``) and Lark (``open.larksuite.com``) run the same bot API;
the two kinds differ only in the address their webhooks have.

With a ``secret`` (the bot's "签名校验") the body gets ``timestamp`` (seconds, a string) and ``sign`` =
base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")) -- the key is the string to sign and the message is
empty, as in Feishu's own examples. The answer is ``{"code": 0, ...}`` (older deployments: ``{"StatusCode": 0}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from alerts.channels import render
from alerts.channels import webhook as wh
from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError
from alerts.channels.webhook import WebhookUrl

if TYPE_CHECKING:
    import httpx

    from alerts.message import Message

#: Card bodies are bounded (about 30 KB of JSON); the lark_md text stays far inside that.
MAX_CHARS = 8000
_TEMPLATE = {"blue": "blue", "yellow": "yellow", "orange": "orange", "red": "red"}
_SIGN_FAILED = 19021  # signature mismatch, or the timestamp is more than an hour off
_IP_REFUSED = 19022  # the caller's IP is not on the bot's allow-list
_KEYWORD = 19024  # the custom keyword is missing from the message
# "too many request" / "frequency limited" (custom bots: 100 a minute, 5 a second, and 11232 under system load at
# busy times such as on the hour), and the open platform's own limit code, which comes with HTTP 429 (or 400 from
# older endpoints) and an ``x-ogw-ratelimit-reset`` header: seconds until the limit resets (open.feishu.cn,
# "Rate limits" / 频控策略).
_RATE_LIMITED = (9499, 11232, 99991400)
#: Seconds to wait after a rate limit that does not say how long.
_RATE_WAIT = 60.0


def sign(secret: str, timestamp: int) -> str:
    """The body's ``sign`` value for ``timestamp`` (unix seconds), per Feishu's custom bot docs."""
    string_to_sign = f"{timestamp}\n{secret}"
    mac = hmac.new(string_to_sign.encode("utf-8"), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


class FeishuConfig(ChannelConfig):
    """Options of ``type: feishu`` and ``type: lark``."""

    webhook: WebhookUrl = Field(description="The bot's webhook URL (https://open.feishu.cn/open-apis/bot/v2/hook/...)")
    secret: str | None = Field(default=None, description="The bot's signing secret (签名校验), if signing is on.")


class FeishuChannel(Channel):
    """Interactive card to a Feishu group bot, signed when a secret is set."""

    kind: ClassVar[str] = "feishu"
    config_model: ClassVar[type[ChannelConfig]] = FeishuConfig
    config: FeishuConfig

    def card(self, message: Message) -> dict[str, Any]:
        """The interactive card: coloured header, lark_md body, console button."""
        elements: list[dict[str, Any]] = []
        body = render.markdown(message, "lark", max_chars=MAX_CHARS, with_headline=False, with_link=False)
        if body:
            elements.append({"tag": "div", "text": {"tag": "lark_md", "content": body}})
        link = render.safe_url(message.link)
        if link:
            elements.append({"tag": "action", "actions": [{
                "tag": "button", "type": "primary", "url": link,
                "text": {"tag": "plain_text", "content": render.CONSOLE_LINK_TEXT}}]})
        elements.append({"tag": "note", "elements": [
            {"tag": "plain_text", "content": f"舆情监控 · {render.kind_label(message.kind)}"}]})
        return {"config": {"wide_screen_mode": True},
                "header": {"template": _TEMPLATE.get(message.severity, "grey"),
                           "title": {"tag": "plain_text", "content": render.truncate(render.headline(message), 100)}},
                "elements": elements}

    def payload(self, message: Message) -> dict[str, Any]:
        """The JSON body, with ``timestamp`` and ``sign`` when signing is on."""
        body: dict[str, Any] = {}
        if self.config.secret:
            timestamp = int(self.clock.now().timestamp())
            body.update({"timestamp": str(timestamp), "sign": sign(self.config.secret, timestamp)})
        body.update({"msg_type": "interactive", "card": self.card(message)})
        return body

    async def send(self, message: Message, delivery: Delivery) -> None:
        """POST the card once and read the bot's answer code."""
        url = self.config.webhook
        response = await wh.post(self, url, wh.dumps(self.payload(message)),
                                 {"Content-Type": "application/json; charset=utf-8"})
        reset = _reset_seconds(response)
        if response.status_code == 429:
            wait = reset or _RATE_WAIT
            raise DeliveryError(f"{wh.where(self, url)}: HTTP 429, rate limited; will retry in {wait:g} s",
                                channel=self.name, retryable=True, retry_after=wait, status=429)
        wh.transient_status(self, response, url)
        data = wh.json_answer(self, response, url)
        status = response.status_code
        code = data.get("code", data.get("StatusCode"))
        if code == 0 and status < 400:
            return
        if not isinstance(code, int):
            raise DeliveryError(f"{wh.where(self, url)}: HTTP {status} answer without a code; will retry",
                                channel=self.name, retryable=True, status=status)
        msg = wh.scrub(str(data.get("msg", data.get("StatusMessage", ""))), self.config.secret,
                       *wh.url_secrets(url))[:200]
        head = f"{wh.where(self, url)}: code {code} ({msg})"
        if code in _RATE_LIMITED:
            raise DeliveryError(f"{head}: rate limited (100 messages a minute, 5 a second per bot); will retry",
                                channel=self.name, retryable=True, retry_after=reset or _RATE_WAIT, status=status)
        if code == _SIGN_FAILED:
            raise DeliveryError(f"{head}: signature check failed; check the `secret` is the bot's 签名校验 secret "
                                f"and this host's clock is right (the timestamp must be within an hour)",
                                channel=self.name, retryable=False, status=status)
        if code == _KEYWORD:
            raise DeliveryError(f"{head}: keyword check failed; the bot's custom keyword (自定义关键词) must "
                                f"appear in the message, e.g. in a watch name", channel=self.name,
                                retryable=False, status=status)
        if code == _IP_REFUSED:
            raise DeliveryError(f"{head}: this machine's IP is not on the bot's allow-list (IP 白名单)",
                                channel=self.name, retryable=False, status=status)
        raise DeliveryError(f"{head}; check the webhook URL and the bot's security settings",
                            channel=self.name, retryable=False, status=status)


class LarkChannel(FeishuChannel):
    """The same bot on Lark (``https://open.larksuite.com/open-apis/bot/v2/hook/...``)."""

    kind: ClassVar[str] = "lark"


def _reset_seconds(response: httpx.Response) -> float | None:
    """``x-ogw-ratelimit-reset``: whole seconds until Feishu's limit resets (None when absent or not a number)."""
    value = response.headers.get("x-ogw-ratelimit-reset", "").strip()
    return float(value) if value.isdigit() and 0 < int(value) <= 3600 else None
