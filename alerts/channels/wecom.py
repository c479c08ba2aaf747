"""WeCom (企业微信) group robot: ``type: wecom``.

One POST of a markdown message (content at most 4096 bytes of UTF-8) to the robot's webhook
(``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``). WeCom's markdown message cannot @ people by mobile
number (only its text message can), so with ``mentioned_mobile_list`` a short text message naming the alert follows
the markdown one. The answer is HTTP 200 with ``errcode``: 0 is success.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator

from alerts.channels import render
from alerts.channels import webhook as wh
from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError
from alerts.channels.webhook import WebhookUrl
from monitor.logs import event

if TYPE_CHECKING:
    from alerts.message import Message

log = logging.getLogger("monitor.alerts.channels")

#: WeCom refuses markdown content above 4096 bytes (UTF-8).
MAX_BYTES = 4096
_MOBILE = re.compile(r"^(@all|\+?[0-9][0-9-]{4,19})$")
_BUSY = -1  # "system busy, try again later"
_TOO_FAST = 45009  # frequency limit: 20 messages a minute per robot
_BAD_WEBHOOK = 93000  # invalid webhook URL (wrong key, robot removed)
_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class WeComConfig(ChannelConfig):
    """Options of ``type: wecom``."""

    webhook: WebhookUrl = Field(description="The robot's webhook URL, key included.")
    mentioned_mobile_list: list[str] = Field(default_factory=list,
                                             description="Mobiles to @ (\"@all\" for everyone) after each alert.")

    @field_validator("mentioned_mobile_list")
    @classmethod
    def _check_mobiles(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not _MOBILE.match(m)]
        if bad:
            raise ValueError(f"not a mobile number: {bad[0]!r}; write digits only (13800000000) or \"@all\"")
        return v


class WeComChannel(Channel):
    """Markdown message to a WeCom group robot (plus a text @-mention when configured)."""

    kind: ClassVar[str] = "wecom"
    config_model: ClassVar[type[ChannelConfig]] = WeComConfig
    config: WeComConfig

    def payload(self, message: Message) -> dict[str, object]:
        """The markdown message body."""
        return {"msgtype": "markdown",
                "markdown": {"content": render.markdown(message, "wecom", max_bytes=MAX_BYTES)}}

    def mention_payload(self, message: Message) -> dict[str, object]:
        """The text message that @-mentions ``mentioned_mobile_list``."""
        return {"msgtype": "text", "text": {"content": f"请关注：{render.headline(message)}",
                                            "mentioned_mobile_list": list(self.config.mentioned_mobile_list)}}

    async def send(self, message: Message, delivery: Delivery) -> None:
        """POST the markdown message, then (if configured) the mention."""
        await self._post(self.payload(message))
        if self.config.mentioned_mobile_list:
            try:
                await self._post(self.mention_payload(message))
            except DeliveryError as exc:
                # The alert itself arrived: raising would make the outbox send it again for a lost @.
                event(log, "channel.mention_failed", logging.WARNING, channel=self.name, error=str(exc))

    async def _post(self, payload: dict[str, object]) -> None:
        url = self.config.webhook
        response = await wh.post(self, url, wh.dumps(payload), _HEADERS)
        wh.transient_status(self, response, url)
        data = wh.json_answer(self, response, url)
        errcode = data.get("errcode")
        if errcode == 0 and response.status_code < 400:
            return
        status = response.status_code
        if not isinstance(errcode, int):
            raise DeliveryError(f"{wh.where(self, url)}: HTTP {status} answer without an errcode; will retry",
                                channel=self.name, retryable=True, status=status)
        errmsg = wh.scrub(str(data.get("errmsg", "")), *wh.url_secrets(url))[:200]
        head = f"{wh.where(self, url)}: errcode {errcode} ({errmsg})"
        if errcode == _TOO_FAST:
            raise DeliveryError(f"{head}: frequency limit (20 messages a minute per robot); will retry",
                                channel=self.name, retryable=True, retry_after=60.0, status=status)
        if errcode == _BUSY:
            raise DeliveryError(f"{head}: WeCom is busy; will retry", channel=self.name, retryable=True,
                                status=status)
        if errcode == _BAD_WEBHOOK:
            raise DeliveryError(f"{head}: invalid webhook; check the key in the webhook URL, the robot may have "
                                f"been removed from the group", channel=self.name, retryable=False, status=status)
        raise DeliveryError(f"{head}; check the webhook URL and the robot's settings",
                            channel=self.name, retryable=False, status=status)
