"""E-mail over SMTP: ``type: email``.

One message per delivery, ``multipart/alternative`` with a plain-text and an HTML part (every piece of outside
text HTML-escaped), UTF-8 headers. The ``Message-ID`` is derived from the delivery id, so a retry after a lost
answer carries the same id and a receiving system can drop the repeat. smtplib is blocking: it runs in a worker
thread (``asyncio.to_thread``) with the channel's ``timeout`` on every socket operation.

Failures are classified for the outbox: no connection, timeouts and 4xx SMTP answers are worth retrying; a refused
login, a 5xx answer and TLS problems are not (the message names ``host:port`` and what to check).
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from alerts.channels import render
from alerts.channels.base import Channel, ChannelConfig, Delivery, DeliveryError
from monitor.logs import event

if TYPE_CHECKING:
    from alerts.message import Message

log = logging.getLogger("monitor.alerts.channels")

#: The port each security mode usually listens on, used when ``port`` is not given.
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")
_ID_CHARS = re.compile(r"[^A-Za-z0-9.\-]")


def _check_address(value: str, key: str) -> str:
    value = value.strip()
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{key} contains a line break")
    _, addr = parseaddr(value)
    if not _ADDRESS.match(addr):
        raise ValueError(f"not an e-mail address: {value!r}; write it like alerts@example.com")
    return value


class EmailConfig(ChannelConfig):
    """Options of ``type: email``."""

    host: str = Field(description="SMTP server host name.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Defaults to 587 / 465 / 25 by security.")
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (upgrade a plain connection), ssl (TLS from the start) or none.")
    username: str | None = Field(default=None, description="SMTP login; no login when unset.")
    password: str | None = Field(default=None, description="SMTP password (from ${ENV}).")
    sender: str = Field(description="The From address, e.g. 舆情监控 <alerts@example.com>.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    subject_prefix: str = Field(default="[舆情]", description="Put before every subject.")
    ca_file: str | None = Field(default=None, description="PEM file of the CA that signed the server certificate "
                                                          "(a company-internal relay); the system CAs otherwise.")

    @field_validator("host")
    @classmethod
    def _check_host(cls, v: str) -> str:
        v = v.strip()
        if not v or not _HOST.match(v):
            raise ValueError("write the SMTP server's host name only, like smtp.example.com (no scheme, no port)")
        return v

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, v: str) -> str:
        return _check_address(v, "sender")

    @field_validator("to")
    @classmethod
    def _check_to(cls, v: list[str]) -> list[str]:
        return [_check_address(x, "to") for x in v]

    @field_validator("subject_prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if any(c in v for c in "\r\n\0"):
            raise ValueError("subject_prefix contains a line break")
        return v

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).is_file():
            raise ValueError(f"no such file: {v}; give the path of a PEM CA certificate")
        return v

    @model_validator(mode="after")
    def _check_login(self) -> EmailConfig:
        if self.password and not self.username:
            raise ValueError("password is set but username is not; set both, or neither for no login")
        return self

    @property
    def effective_port(self) -> int:
        """``port``, or the usual port of ``security``."""
        return self.port or DEFAULT_PORTS[self.security]


class EmailChannel(Channel):
    """Plain-text + HTML e-mail over SMTP (STARTTLS, implicit TLS or plain)."""

    kind: ClassVar[str] = "email"
    config_model: ClassVar[type[ChannelConfig]] = EmailConfig
    config: EmailConfig

    def build(self, message: Message, delivery: Delivery) -> EmailMessage:
        """The e-mail for one attempt; identical ``Message-ID`` for every attempt of one delivery."""
        cfg = self.config
        msg = EmailMessage(policy=email.policy.SMTP)
        # one_line: nothing from outside can add a header line (the policy would refuse it, the alert would be lost).
        msg["Subject"] = render.one_line(f"{cfg.subject_prefix} {render.headline(message)}")
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(cfg.to)
        msg["Date"] = format_datetime(self.clock.now())
        msg["Message-ID"] = message_id(delivery.id, cfg.sender)
        msg["X-Monitor-Delivery"] = delivery.id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to an alert sender
        msg.set_content(render.plain_text(message), subtype="plain", charset="utf-8")
        msg.add_alternative(render.html_document(message), subtype="html", charset="utf-8")
        return msg

    async def send(self, message: Message, delivery: Delivery) -> None:
        """Send once through the SMTP server, in a worker thread."""
        msg = self.build(message, delivery)
        try:
            refused = await asyncio.to_thread(self._deliver, msg)
        except Exception as exc:
            raise self._classify(exc) from None
        if refused:
            # Some recipients were accepted: a retry would send them the alert twice, so report and carry on.
            event(log, "channel.recipients_refused", logging.WARNING, channel=self.name,
                  refused={addr: f"{code} {_text(reply)}" for addr, (code, reply) in refused.items()})

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _deliver(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        cfg = self.config
        port = cfg.effective_port
        smtp: smtplib.SMTP
        if cfg.security == "ssl":
            smtp = smtplib.SMTP_SSL(cfg.host, port, timeout=cfg.timeout, context=self._tls())
        else:
            smtp = smtplib.SMTP(cfg.host, port, timeout=cfg.timeout)
        try:
            smtp.ehlo()
            if cfg.security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
            sender = parseaddr(cfg.sender)[1]
            recipients = [addr for _, addr in getaddresses(cfg.to)]
            return smtp.send_message(msg, from_addr=sender, to_addrs=recipients)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _classify(self, exc: Exception) -> DeliveryError:
        """Turn an smtplib / socket / TLS failure into a DeliveryError saying whether to retry and what to check."""
        cfg = self.config
        head = f"email channel {self.name!r} ({cfg.host}:{cfg.effective_port})"

        def fail(text: str, retryable: bool, status: int | None = None) -> DeliveryError:
            if cfg.password and len(cfg.password) >= 4:
                text = text.replace(cfg.password, "…")
            return DeliveryError(f"{head}: {text}", channel=self.name, retryable=retryable, status=status)

        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return fail(f"login refused ({exc.smtp_code} {_text(exc.smtp_error)}); check `username` and "
                        f"`password` (many providers want an app password / 授权码)", False, exc.smtp_code)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return fail(f"{exc}; check `security` (465 is usually ssl, 587 starttls) and that the server offers "
                        f"login on this port", False)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            answers = {addr: code for addr, (code, _) in exc.recipients.items()}
            listed = ", ".join(f"{addr} ({code} {_text(exc.recipients[addr][1])})" for addr, code in answers.items())
            temporary = all(400 <= code < 500 for code in answers.values())
            what = "will retry" if temporary else "check the `to` addresses and that the server relays for them"
            return fail(f"all recipients refused: {listed}; {what}", temporary, min(answers.values(), default=None))
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            said = f"{code} {_text(exc.smtp_error)}"
            if 400 <= code < 500:
                return fail(f"temporary refusal ({said}); will retry", True, code)
            hint = "check `sender` may send through this server" if isinstance(exc, smtplib.SMTPSenderRefused) \
                else "the server refused the message"
            return fail(f"refused ({said}); {hint}", code < 400 or code >= 600, code)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if isinstance(exc.__context__, TimeoutError):  # smtplib reports a read timeout as a disconnect
                return fail(f"no answer within {cfg.timeout:g}s; will retry", True)
            return fail(f"the server closed the connection ({exc}); will retry", True)
        if isinstance(exc, smtplib.SMTPException):
            return fail(f"{type(exc).__name__}: {exc}; check the server's settings", False)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return fail(f"TLS certificate check failed ({exc.verify_message}); check `host` is the name on the "
                        f"certificate, or set `ca_file` to the CA that signed it", False)
        if isinstance(exc, ssl.SSLError):
            return fail(f"TLS failed ({exc.reason or exc}); check `security` matches the port (465 is usually "
                        f"ssl, 587 starttls)", False)
        if isinstance(exc, TimeoutError):
            return fail(f"no answer within {cfg.timeout:g}s; will retry", True)
        if isinstance(exc, OSError):
            return fail(f"cannot connect ({exc.strerror or exc}); check `host` and `port` and that this machine "
                        f"may reach it (firewall); will retry", True)
        return fail(f"{type(exc).__name__}: {exc}", True)


def message_id(delivery_id: str, sender: str) -> str:
    """``<monitor.<delivery id>@<sender's domain>>``: the same for every attempt of one delivery."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "monitor.invalid"
    return f"<monitor.{_ID_CHARS.sub('-', delivery_id)}@{_ID_CHARS.sub('-', domain)}>"


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return render.truncate(render.one_line(text), 200)
