"""Login, sessions, cookies, CSRF, roles and the login rate limit, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from monitor.clock import ManualClock
from monitor.config import Config, parse_config
from monitor.db import make_engine, upgrade
from monitor.web.app import create_app
from monitor.web.auth import hash_password, verify_password
from monitor.web.ops import bind, refuse_reason, server_config
from tests.test_web_api import NOW, PASSWORD, TOKENS, bearer, make_config, seed

MONITOR = [sys.executable, "-m", "monitor.cli"]


class ServerThread:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(server_config(app))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        for _ in range(500):  # wait for start-up (not a timing assertion: it fails only if it never starts)
            if self.server.started:
                return self
            self.thread.join(0.02)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[ServerThread, ManualClock, Config]]:
    """A served console over a replayed SQLite database, login pause after 3 failures for 15 minutes."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    seed(url, tmp_path)
    config = make_config(url, "")
    web = config.web.model_copy(update={"login_attempts": 3, "login_lockout": 900.0, "session_ttl": 3600.0})
    config = config.model_copy(update={"web": web})
    engine = make_engine(url)
    clock = ManualClock(NOW)
    with ServerThread(create_app(config, engine, clock=clock)) as srv:
        yield srv, clock, config
    engine.dispose()


def login(client: httpx.Client, name: str = "handler-user", password: str = PASSWORD) -> httpx.Response:
    """POST /api/login."""
    return client.post("/api/login", json={"name": name, "password": password})


def test_login_sets_a_strict_httponly_cookie(console: tuple[ServerThread, ManualClock, Config]) -> None:
    srv, _clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/api/me").json()["code"] == "login_required"
        r = login(c)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"] == {"name": "handler-user", "role": "handler"} and len(body["csrf"]) >= 32
        cookie = r.headers["set-cookie"]
        token = cookie.split(";")[0].split("=", 1)[1]
        assert cookie.startswith("monitor_session=") and len(token) >= 43  # 32 random bytes, base64url
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
        me = c.get("/api/me").json()
        assert me == {"name": "handler-user", "role": "handler", "csrf": body["csrf"], "language": "zh"}
        assert token not in c.get("/api/me").text, "the cookie's token is never echoed"


def test_secure_cookie_when_the_console_is_https(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = make_config(url, "alerts: {console_url: 'https://yq.example.com'}\n")
    engine = make_engine(url)
    upgrade(engine)
    with ServerThread(create_app(config, engine)) as srv, httpx.Client(base_url=srv.url) as c:
        cookie = login(c).headers["set-cookie"].lower()
        assert "; secure" in cookie and "samesite=strict" in cookie
    engine.dispose()


def test_bad_credentials_look_the_same(console: tuple[ServerThread, ManualClock, Config]) -> None:
    srv, _clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        wrong = login(c, password="nope")
        unknown = login(c, name="nobody")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() == {"error": "用户名或密码错误 / wrong name or password",
                                                  "code": "bad_credentials"}
        assert "set-cookie" not in wrong.headers
        assert login(c, name="").status_code == 422


def test_login_is_paused_after_repeated_failures(console: tuple[ServerThread, ManualClock, Config]) -> None:
    srv, clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        for _ in range(3):
            assert login(c, password="guess").status_code == 401
        locked = login(c)  # even the right password waits
        assert locked.status_code == 429 and locked.json()["code"] == "rate_limited"
        assert 1 <= int(locked.headers["retry-after"]) <= 900
        assert login(c, name="viewer-user").status_code == 200, "the pause is per (name, address)"
        clock.advance(901)
        assert login(c).status_code == 200
        # A good login clears the count.
        assert login(c, password="guess").status_code == 401
        assert login(c).status_code == 200


def test_csrf_is_required_for_cookie_writes_not_for_tokens(console: tuple[ServerThread, ManualClock, Config]) -> None:
    srv, _clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        csrf = login(c).json()["csrf"]
        no_header = c.post("/api/incidents/1/ack", json={})
        assert no_header.status_code == 403 and no_header.json()["code"] == "csrf"
        wrong = c.post("/api/incidents/1/ack", json={}, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        ok = c.post("/api/incidents/1/ack", json={"note": "收到"}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["incident"]["acked_by"] == "handler-user"
        assert c.delete("/api/silences/1").status_code == 403, "DELETE needs it too"
    with httpx.Client(base_url=srv.url) as bot:
        r = bot.post("/api/incidents/1/ack", json={}, headers=bearer("handler"))
        assert r.status_code == 200
        bad = bot.get("/api/me", headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401 and bad.json()["code"] == "bad_token"


def test_roles(console: tuple[ServerThread, ManualClock, Config]) -> None:
    srv, _clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        csrf = login(c, name="viewer-user").json()["csrf"]
        assert c.get("/api/incidents/1").status_code == 200
        denied = c.post("/api/incidents/1/ack", json={}, headers={"X-CSRF-Token": csrf})
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
        assert c.post("/api/sources/heimao/test", headers={"X-CSRF-Token": csrf}).status_code == 403
    with httpx.Client(base_url=srv.url) as admin:
        csrf = login(admin, name="admin-user").json()["csrf"]
        assert admin.post("/api/incidents/1/feedback", json={"verdict": "noise"},
                          headers={"X-CSRF-Token": csrf}).status_code == 200


def test_logout_and_session_expiry(console: tuple[ServerThread, ManualClock, Config]) -> None:
    srv, clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        csrf = login(c).json()["csrf"]
        assert c.post("/api/logout").status_code == 403, "logging out a live session needs the CSRF header"
        out = c.post("/api/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200 and "monitor_session=" in out.headers["set-cookie"]
        assert c.get("/api/me").status_code == 401
    with httpx.Client(base_url=srv.url) as c:
        login(c)
        clock.advance(3000)
        assert c.get("/api/me").status_code == 200, "activity extends the session"
        clock.advance(3000)
        assert c.get("/api/me").status_code == 200
        clock.advance(3601)
        assert c.get("/api/me").json()["code"] == "login_required"


def test_without_users_the_api_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = parse_config(f"database: {{url: '{url}'}}\nsources: []\n")
    engine = make_engine(url)
    upgrade(engine)
    with ServerThread(create_app(config, engine)) as srv, httpx.Client(base_url=srv.url) as c:
        for r in (c.get("/api/me"), login(c, name="admin"), c.get("/api/incidents", headers=bearer("admin"))):
            assert r.status_code == 401 and r.json()["code"] == "no_users"
            assert "monitor web hash-password" in r.json()["error"]
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").status_code == 200 and c.get("/metrics").status_code == 200
    engine.dispose()
    exposed = config.model_copy(update={"web": config.web.model_copy(update={"listen": "0.0.0.0:8080"})})
    assert refuse_reason(config) is None
    assert "no web.users" in (refuse_reason(exposed) or "")


def test_hash_password_command() -> None:
    out = subprocess.run([*MONITOR, "web", "hash-password", "--stdin"], input="s3cret-密码\n", capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    encoded = out.stdout.strip()
    assert encoded.startswith("scrypt$16384$8$1$") and "s3cret" not in out.stdout + out.stderr
    assert verify_password("s3cret-密码", encoded) and not verify_password("s3cret", encoded)
    assert not verify_password("x", "scrypt$16384$8$1$bad") and not verify_password("x", "plain")
    assert hash_password("x") != hash_password("x"), "salted"
    empty = subprocess.run([*MONITOR, "web", "hash-password", "--stdin"], input="\n", capture_output=True, text=True,
                           timeout=60)
    assert empty.returncode == 2 and "empty" in empty.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command(tmp_path: Path) -> None:
    """`monitor serve` serves the console alone; it refuses a network address without users."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'm.db'}'}}\nsources: []\n"
                   f"web: {{tokens: [{{name: bot, role: viewer, token_hash: '{hash_password(TOKENS['viewer'])}'}}], "
                   f"users: [{{name: wang, role: admin, password_hash: '{hash_password(PASSWORD)}'}}]}}\n",
                   encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen([*MONITOR, "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "console on" not in line:
            line = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}/" in line
        r = httpx.get(f"http://127.0.0.1:{port}/api/incidents", headers=bearer("viewer"), timeout=10)
        assert r.status_code == 200 and r.json() == {"items": []}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(30) in (0, -15)
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'm.db'}'}}\nsources: []\n", encoding="utf-8")
    refused = subprocess.run([*MONITOR, "serve", "--config", str(bare), "--listen", f"0.0.0.0:{port}"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "no web.users" in refused.stderr


def test_login_brute_force_gets_no_closer(console: tuple[ServerThread, ManualClock, Config]) -> None:
    """Attempts during the pause are not even checked (so they cannot be used to guess)."""
    srv, clock, _config = console
    with httpx.Client(base_url=srv.url) as c:
        for _ in range(3):
            login(c, name="admin-user", password="guess")
        assert login(c, name="admin-user").status_code == 429
        clock.advance(timedelta(minutes=15).total_seconds() + 1)
        assert login(c, name="admin-user").json()["user"]["role"] == "admin"
