"""The e-mail channel against a real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS, implicit TLS, AUTH.

Certificates are made at test time with trustme; the channel trusts them through its ``ca_file`` option.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from alerts.channels import Delivery, DeliveryError, get_channel_kind
from alerts.message import Message, PostRef
from monitor.clock import ManualClock
from tests.test_channels import DELIVERY, MSG, NOW, free_port

SENDER = "舆情监控 <alerts@example.com>"
TO = ["pr-team@example.com", "王经理 <wang@example.com>"]


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: bytes | None


@dataclass
class Recorder:
    """An aiosmtpd handler that records messages, or answers RCPT / DATA with a chosen reply."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: dict[str, str] = field(default_factory=dict)  # recipient -> reply
    data_reply: str | None = None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        """Accept a recipient unless told otherwise."""
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message (or refuse it)."""
        if self.data_reply:
            return self.data_reply
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, login))
        return "250 Message accepted for delivery"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    """Only user / pa55word gets in."""
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"user" and auth_data.password == b"pa55word"
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class Smtp:
    """A running loopback SMTP server and what a channel needs to reach it."""

    handler: Recorder
    port: int
    ca_file: Path


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A throw-away CA and its certificate as a PEM file."""
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


def server_tls(authority: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 signed by ``authority``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


def start(ca: tuple[trustme.CA, Path], mode: str, **smtp_kwargs: Any) -> Iterator[Smtp]:
    """Run an aiosmtpd server in ``mode`` (plain, starttls, ssl) for one test."""
    authority, ca_path = ca
    handler = Recorder()
    port = free_port()
    kwargs: dict[str, Any] = dict(smtp_kwargs)
    if mode == "starttls":
        kwargs["tls_context"] = server_tls(authority)
        kwargs["require_starttls"] = True
    if mode == "ssl":
        kwargs["ssl_context"] = server_tls(authority)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Smtp(handler, port, ca_path)
    finally:
        controller.stop()


@pytest.fixture
def plain(ca: tuple[trustme.CA, Path]) -> Iterator[Smtp]:
    """A plain SMTP server with AUTH allowed without TLS."""
    yield from start(ca, "plain", authenticator=authenticator, auth_require_tls=False)


@pytest.fixture
def starttls(ca: tuple[trustme.CA, Path]) -> Iterator[Smtp]:
    """A server that requires STARTTLS, then AUTH."""
    yield from start(ca, "starttls", authenticator=authenticator, auth_require_tls=True, auth_required=True)


@pytest.fixture
def implicit_tls(ca: tuple[trustme.CA, Path]) -> Iterator[Smtp]:
    """A server speaking TLS from the first byte (port 465 style)."""
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; this connection is TLS from the start anyway.
    yield from start(ca, "ssl", authenticator=authenticator, auth_require_tls=False)


def send(options: dict[str, Any], message: Message = MSG, delivery: Delivery = DELIVERY) -> DeliveryError | None:
    """One delivery attempt through an email channel; the DeliveryError, or None on success."""
    cls = get_channel_kind("email")
    config = cls.config_model.model_validate({"name": "mail", "type": "email", "host": "127.0.0.1",
                                              "sender": SENDER, "to": TO, "timeout": 5, **options})

    async def go() -> DeliveryError | None:
        async with httpx.AsyncClient() as http:
            try:
                await cls(config, http, ManualClock(NOW)).send(message, delivery)
            except DeliveryError as exc:
                return exc
            return None
    return asyncio.run(go())


def parts(msg: EmailMessage) -> dict[str, str]:
    """content type -> decoded text of each leaf part."""
    out = {}
    for part in msg.walk():
        if not part.is_multipart():
            assert isinstance(part, EmailMessage)
            out[part.get_content_type()] = part.get_content()
    return out


def test_plain_smtp_sends_both_parts_to_every_recipient(plain: Smtp) -> None:
    assert send({"port": plain.port, "security": "none"}) is None
    (got,) = plain.handler.received
    assert got.mail_from == "alerts@example.com"
    assert got.rcpt_tos == ["pr-team@example.com", "wang@example.com"]
    msg = got.message
    assert msg["Subject"] == "[舆情] 🔴【红色预警】某银行 · 退款"
    assert msg["From"] == SENDER and msg["To"] == "pr-team@example.com, 王经理 <wang@example.com>"
    assert msg["Message-ID"] == f"<monitor.{DELIVERY.id}@example.com>"
    assert msg["X-Monitor-Delivery"] == DELIVERY.id and msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Sun, 01 Mar 2026 08:30:15 +0000"
    assert msg.get_content_type() == "multipart/alternative"
    texts = parts(msg)
    assert list(texts) == ["text/plain", "text/html"]
    assert texts["text/plain"].startswith("🔴【红色预警】某银行 · 退款")
    assert "在控制台查看：https://console.example/incidents/12" in texts["text/plain"]
    html = texts["text/html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html and '<a href="https://console.example/incidents/12">在控制台查看</a>' in html
    assert got.login is None


def test_message_id_is_stable_across_attempts(plain: Smtp) -> None:
    options = {"port": plain.port, "security": "none"}
    assert send(options) is None
    assert send(options, delivery=Delivery(DELIVERY.id, DELIVERY.key, 2)) is None
    assert send(options, delivery=Delivery("other-delivery", "k2", 1)) is None
    ids = [r.message["Message-ID"] for r in plain.handler.received]
    assert ids[0] == ids[1] != ids[2]


def test_plain_auth(plain: Smtp) -> None:
    assert send({"port": plain.port, "security": "none", "username": "user", "password": "pa55word"}) is None
    assert plain.handler.received[0].login == b"user"


def test_starttls_with_auth(starttls: Smtp) -> None:
    options = {"port": starttls.port, "username": "user", "password": "pa55word", "ca_file": str(starttls.ca_file)}
    assert send(options) is None  # security defaults to starttls
    (got,) = starttls.handler.received
    assert got.login == b"user" and got.message["Subject"].startswith("[舆情] ")


def test_implicit_tls_with_auth(implicit_tls: Smtp) -> None:
    options = {"port": implicit_tls.port, "security": "ssl", "username": "user", "password": "pa55word",
               "ca_file": str(implicit_tls.ca_file), "subject_prefix": "[监控]"}
    assert send(options) is None
    (got,) = implicit_tls.handler.received
    assert got.message["Subject"] == "[监控] 🔴【红色预警】某银行 · 退款"


def test_wrong_password_is_not_retried_and_not_shown(starttls: Smtp) -> None:
    options = {"port": starttls.port, "username": "user", "password": "wrong-pass", "ca_file": str(starttls.ca_file)}
    err = send(options)
    assert err is not None and not err.retryable and err.status == 535
    assert f"email channel 'mail' (127.0.0.1:{starttls.port}): login refused (535" in str(err)
    assert "`password`" in str(err) and "wrong-pass" not in str(err)
    assert starttls.handler.received == []


def test_untrusted_certificate_is_not_retried(starttls: Smtp) -> None:
    err = send({"port": starttls.port, "username": "user", "password": "pa55word"})  # no ca_file: system CAs
    assert err is not None and not err.retryable
    assert "certificate" in str(err) and "`ca_file`" in str(err)


def test_starttls_not_offered_is_not_retried(plain: Smtp) -> None:
    err = send({"port": plain.port, "security": "starttls"})
    assert err is not None and not err.retryable and "STARTTLS" in str(err) and "`security`" in str(err)


def test_tls_against_a_plain_port_is_not_retried(plain: Smtp) -> None:
    err = send({"port": plain.port, "security": "ssl", "ca_file": str(plain.ca_file)})
    assert err is not None and not err.retryable and "TLS failed" in str(err)


@pytest.mark.parametrize(("reply", "retryable", "status"), [
    ("550 5.1.1 No such user", False, 550),
    ("451 4.3.0 Try again later", True, 451),
])
def test_recipients_refused(plain: Smtp, reply: str, retryable: bool, status: int) -> None:
    plain.handler.rcpt_reply = {"pr-team@example.com": reply, "wang@example.com": reply}
    err = send({"port": plain.port, "security": "none"})
    assert err is not None and (err.retryable, err.status) == (retryable, status)
    assert "pr-team@example.com" in str(err) and reply.split()[0] in str(err)


def test_one_recipient_refused_still_delivers(plain: Smtp, caplog: pytest.LogCaptureFixture) -> None:
    plain.handler.rcpt_reply = {"wang@example.com": "550 5.1.1 No such user"}
    with caplog.at_level(logging.WARNING, logger="monitor.alerts.channels"):
        assert send({"port": plain.port, "security": "none"}) is None
    assert plain.handler.received[0].rcpt_tos == ["pr-team@example.com"]
    assert [r.getMessage() for r in caplog.records] == ["channel.recipients_refused"]


@pytest.mark.parametrize(("reply", "retryable", "status"), [
    ("554 5.7.1 Message rejected as spam", False, 554),
    ("452 4.3.1 Insufficient system storage", True, 452),
])
def test_data_refused(plain: Smtp, reply: str, retryable: bool, status: int) -> None:
    plain.handler.data_reply = reply
    err = send({"port": plain.port, "security": "none"})
    assert err is not None and (err.retryable, err.status) == (retryable, status)
    assert reply.split(" ", 1)[1] in str(err)


def test_connection_refused_is_retryable() -> None:
    port = free_port()
    err = send({"port": port, "security": "none"})
    assert err is not None and err.retryable
    assert f"(127.0.0.1:{port}): cannot connect" in str(err)


def test_silent_server_hits_the_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never says hello
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        err = send({"port": listener.getsockname()[1], "security": "none", "timeout": 0.3})
    assert err is not None and err.retryable and "no answer within 0.3s" in str(err)


def test_header_injection_from_outside_text_is_folded(plain: Smtp) -> None:
    hostile = Message(kind="incident.opened", severity="yellow", title="标题\r\nBcc: victim@example.com",
                      posts=(PostRef("<img src=x onerror=alert(1)>", "https://p.example/1"),))
    assert send({"port": plain.port, "security": "none"}, message=hostile) is None
    (got,) = plain.handler.received
    assert got.message["Bcc"] is None and got.rcpt_tos == ["pr-team@example.com", "wang@example.com"]
    # Folded onto one line (and the address masked, as every personal field in a message is: docs/privacy.md).
    assert got.message["Subject"] == "[舆情] 🟡【黄色预警】标题 Bcc: v***@example.com"
    assert "<img" not in parts(got.message)["text/html"]


@pytest.mark.parametrize(("options", "message"), [
    ({"to": []}, "at least 1 item"),
    ({"to": ["not-an-address"]}, "not an e-mail address"),
    ({"sender": "a@b.example\r\nBcc: x@y"}, "line break"),
    ({"host": "smtp://mail.example.com"}, "host name only"),
    ({"password": "x"}, "username is not"),
    ({"ca_file": "/nonexistent/ca.pem"}, "no such file"),
    ({"security": "tls"}, "'starttls', 'ssl' or 'none'"),
])
def test_config_checks(options: dict[str, Any], message: str) -> None:
    cls = get_channel_kind("email")
    with pytest.raises(ValueError, match=message):
        cls.config_model.model_validate({"name": "mail", "type": "email", "host": "smtp.example.com",
                                         "sender": SENDER, "to": TO, **options})


def test_default_ports() -> None:
    cls = get_channel_kind("email")
    ports = [cls.config_model.model_validate({"name": "m", "type": "email", "host": "h", "sender": SENDER,
                                                      "to": TO, "security": s}).effective_port
             for s in ("starttls", "ssl", "none")]
    assert ports == [587, 465, 25]
