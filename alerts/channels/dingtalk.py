"""DingTalk (钉钉) custom group robot: ``type: dingtalk``.

One POST of a markdown message to the robot's webhook. With a ``secret`` (the robot's "加签" security setting)
the URL gets ``timestamp`` (milliseconds) and ``sign`` = urlencode(base64(HMAC-SHA256(key=secret,
msg=f"{timestamp}\\n{secret}"))). DingTalk answers HTTP 200 with ``errcode``: 0 is success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote_plus

from pydantic import Field, field_validator

from alerts.channels import render
from alerts.channels import webhook as wh
from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError
from alerts.channels.webhook import WebhookUrl

if TYPE_CHECKING:
    from alerts.message import Message

#: DingTalk drops or cuts long markdown; stay well inside it (posts are shortened first).
MAX_CHARS = 5000
_MOBILE = re.compile(r"^\+?[0-9][0-9-]{4,19}$")
_TOO_FAST = 130101  # "send too fast": at most 20 messages a minute per robot
_SECURITY = 310000  # signature, keyword or IP allow-list check failed


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value for ``timestamp_ms`` (already URL-encoded), per DingTalk's custom robot docs."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    mac = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac).decode("ascii"))


class DingTalkConfig(ChannelConfig):
    """Options of ``type: dingtalk``."""

    webhook: WebhookUrl = Field(description="The robot's full webhook URL, access_token included.")
    secret: str | None = Field(default=None, description="The robot's 加签 secret (SEC...), if signing is on.")
    at_mobiles: list[str] = Field(default_factory=list, description="Mobile numbers to @ in every message.")
    at_all_min_severity: render.Severity | None = Field(
        default=None, description="From this severity on, @all (isAtAll) as well.")

    @field_validator("at_mobiles")
    @classmethod
    def _check_mobiles(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if not _MOBILE.match(m)]
        if bad:
            raise ValueError(f"not a mobile number: {bad[0]!r}; write digits only, like 13800000000")
        return v


class DingTalkChannel(Channel):
    """Markdown message to a DingTalk group robot, signed when a secret is set."""

    kind: ClassVar[str] = "dingtalk"
    config_model: ClassVar[type[ChannelConfig]] = DingTalkConfig
    config: DingTalkConfig

    def url(self) -> str:
        """The webhook URL for this attempt (with timestamp and sign when signing is on)."""
        cfg = self.config
        if not cfg.secret:
            return cfg.webhook
        timestamp = int(self.clock.now().timestamp() * 1000)
        joiner = "&" if "?" in cfg.webhook else "?"
        return f"{cfg.webhook}{joiner}timestamp={timestamp}&sign={sign(cfg.secret, timestamp)}"

    def payload(self, message: Message) -> dict[str, object]:
        """The JSON body: markdown message plus who to @."""
        cfg = self.config
        at_all = cfg.at_all_min_severity is not None and message.severity in render.SEVERITY_ORDER and \
            render.SEVERITY_ORDER.index(message.severity) >= render.SEVERITY_ORDER.index(cfg.at_all_min_severity)
        # A mobile is highlighted only when "@<mobile>" also appears in the text.
        mentions = " ".join(f"@{m}" for m in cfg.at_mobiles)
        room = MAX_CHARS - (len(mentions) + 2 if mentions else 0)
        text = render.markdown(message, "dingtalk", max_chars=room)
        if mentions:
            text += "\n\n" + mentions
        return {"msgtype": "markdown",
                "markdown": {"title": render.truncate(render.headline(message), 64), "text": text},
                "at": {"atMobiles": list(cfg.at_mobiles), "isAtAll": at_all}}

    async def send(self, message: Message, delivery: Delivery) -> None:
        """POST once and read DingTalk's errcode."""
        url = self.url()
        response = await wh.post(self, url, wh.dumps(self.payload(message)),
                              {"Content-Type": "application/json; charset=utf-8"})
        wh.transient_status(self, response, url)
        data = wh.json_answer(self, response, url)
        self._check(data, url, response.status_code)

    def _check(self, data: dict[str, object], url: str, status: int) -> None:
        errcode = data.get("errcode")
        if errcode == 0 and status < 400:
            return
        errmsg = wh.scrub(str(data.get("errmsg", "")), self.config.secret, *wh.url_secrets(url))[:200]
        if not isinstance(errcode, int):
            # No errcode at all: not DingTalk speaking (a proxy or gateway); worth another try.
            raise DeliveryError(f"{wh.where(self, url)}: HTTP {status} answer without an errcode; will retry",
                                channel=self.name, retryable=True, status=status)
        head = f"{wh.where(self, url)}: errcode {errcode} ({errmsg})"
        if errcode == _TOO_FAST:
            raise DeliveryError(f"{head}: sending too fast (the robot takes 20 messages a minute); will retry",
                                channel=self.name, retryable=True, retry_after=60.0, status=status)
        if errcode == _SECURITY:
            raise DeliveryError(f"{head}: the robot's security check failed; check the robot's security settings: "
                                f"the `secret` matches its 加签 secret, a custom keyword (自定义关键词) appears in "
                                f"the message, or this machine's IP is on its allow-list, and the host clock is right",
                                channel=self.name, retryable=False, status=status)
        raise DeliveryError(f"{head}; check the webhook's access_token and the robot's settings",
                            channel=self.name, retryable=False, status=status)
