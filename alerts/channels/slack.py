"""Slack incoming webhook: ``type: slack``.

One POST of Block Kit blocks (header, a mrkdwn section, a context line, a console button) with a plain ``text``
fallback for notifications. Slack answers ``200 ok``; errors are plain-text reasons (``invalid_payload``,
``no_service``, ``channel_not_found``...) with a 4xx status, ``429`` with ``Retry-After`` when rate limited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from alerts.channels import render
from alerts.channels import webhook as wh
from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError
from alerts.channels.webhook import WebhookUrl

if TYPE_CHECKING:
    from alerts.message import Message

#: Slack's limits: a section's text 3000 characters, a header's 150, the fallback text is cut well before 40000.
SECTION_CHARS = 3000
HEADER_CHARS = 150
FALLBACK_CHARS = 1000


class SlackConfig(ChannelConfig):
    """Options of ``type: slack``."""

    webhook: WebhookUrl = Field(description="The incoming webhook URL (https://hooks.slack.com/services/...).")


class SlackChannel(Channel):
    """Block Kit message to a Slack incoming webhook."""

    kind: ClassVar[str] = "slack"
    config_model: ClassVar[type[ChannelConfig]] = SlackConfig
    config: SlackConfig

    def payload(self, message: Message) -> dict[str, Any]:
        """``text`` fallback plus blocks."""
        head = render.headline(message)
        blocks: list[dict[str, Any]] = [
            # plain_text: nothing from the title is read as markup here; emoji=True keeps 🔴 as it is.
            {"type": "header", "text": {"type": "plain_text", "text": render.truncate(head, HEADER_CHARS),
                                        "emoji": True}},
        ]
        body = render.markdown(message, "slack", max_chars=SECTION_CHARS, with_headline=False, with_link=False)
        if body:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"舆情监控 · {render.kind_label(message.kind)} · "
                                       f"{render.severity_label(message.severity)}"}]})
        link = render.safe_url(message.link)
        if link:
            button: dict[str, Any] = {"type": "button", "url": link,
                                      "text": {"type": "plain_text", "text": render.CONSOLE_LINK_TEXT}}
            if message.severity in ("orange", "red"):
                button["style"] = "danger"  # Slack has no "style": null; leave the key out otherwise
            blocks.append({"type": "actions", "elements": [button]})
        fallback = head
        summary = render.one_line(message.summary)
        if summary:
            fallback += " " + summary
        # The fallback is shown in notifications as plain text, but Slack still parses <...> and & in it.
        fallback = render.truncate(fallback, FALLBACK_CHARS).replace("&", "&amp;").replace("<", "&lt;") \
            .replace(">", "&gt;")
        return {"text": fallback, "blocks": blocks}

    async def send(self, message: Message, delivery: Delivery) -> None:
        """POST once; Slack's success answer is the text ``ok``."""
        url = self.config.webhook
        response = await wh.post(self, url, wh.dumps(self.payload(message)),
                                 {"Content-Type": "application/json; charset=utf-8"})
        wh.check_status(self, response, url)
        answer = response.text.strip()
        if answer and answer != "ok":
            # 200 with something else than "ok": not Slack answering (a proxy page?), so worth another try.
            raise DeliveryError(f"{wh.where(self, url)}: HTTP {response.status_code} answer "
                                f"{wh.answer_excerpt(response, url)!r} instead of 'ok'; will retry",
                                channel=self.name, retryable=True, status=response.status_code)
