"""Who may use the console: password and token hashes, sessions, the login rate limit, roles.

Plain Python, no web framework: ``monitor.web.api`` turns these into request checks. Nothing here logs a password,
a token or a cookie. Sessions live in memory (a restart logs everyone out, which is acceptable for a small team's
console and keeps session secrets off the disk); the cookie holds a random 32-byte token and the server keeps only
its SHA-256, so a memory dump of the session table cannot be replayed as cookies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.web.config import ApiToken, WebConfig, WebUser

#: scrypt cost: n=2**14, r=8, p=1 takes ~50 ms and 16 MiB per check; slow for a guesser, fine for a login.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
#: Roles from least to most trusted; a role may do everything the ones before it may.
ROLES = ("viewer", "handler", "admin")
#: Sessions kept at most (the oldest are dropped): a bound on memory if someone logs in in a loop.
MAX_SESSIONS = 10_000
#: Tracked (name, address) pairs of failed logins at most, so a name-spraying attacker cannot grow memory forever.
MAX_LIMITER_KEYS = 50_000


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt_b64$hash_b64`` for ``password`` (also used for API tokens)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=HASH_BYTES)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant-time compare; False for a malformed hash)."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        n_i, r_i, p_i = int(n), int(r), int(p)
        if not (2 <= n_i <= 2 ** 20 and 1 <= r_i <= 32 and 1 <= p_i <= 16):  # refuse absurd costs from a bad config
            return False
        salt, expected = _unb64(salt_b64), _unb64(hash_b64)
        got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n_i, r=r_i, p=p_i,
                             maxmem=128 * r_i * n_i * 2 + 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def is_password_hash(encoded: str) -> bool:
    """Whether ``encoded`` looks like our scrypt hash (for a startup warning on a pasted plain password)."""
    parts = encoded.split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(x.isdigit() for x in parts[1:4])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def role_at_least(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return ROLES.index(role) >= ROLES.index(needed) if role in ROLES and needed in ROLES else False


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a logged-in person (with the session's CSRF token) or a machine token."""

    name: str
    role: str
    via: str  # "session" | "token"
    csrf: str | None = None

    @property
    def actor(self) -> str:
        """The name written in incident and ticket histories (tokens are marked as such)."""
        return self.name if self.via == "session" else f"token:{self.name}"


@dataclass
class Session:
    """One login: who, the CSRF token the browser must echo, when it lapses without activity."""

    name: str
    role: str
    csrf: str
    expires_at: datetime


class SessionStore:
    """Sessions by SHA-256 of their cookie token; ``ttl`` seconds of inactivity end one."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()  # handlers may run on worker threads

    def create(self, name: str, role: str, now: datetime) -> tuple[str, Session]:
        """A new session; returns the cookie token (shown once, never stored) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(name, role, secrets.token_urlsafe(32), now + timedelta(seconds=self.ttl))
        with self._lock:
            self._sessions[_digest(token)] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str, now: datetime) -> Session | None:
        """The live session of a cookie token (its lapse moved forward), or None."""
        key = _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if session.expires_at <= now:
                del self._sessions[key]
                return None
            session.expires_at = now + timedelta(seconds=self.ttl)
            self._sessions.move_to_end(key)
            return session

    def drop(self, token: str) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(_digest(token), None)

    def drop_user(self, name: str, role: str | None = None) -> None:
        """End the sessions of a user removed from the config (or whose role changed)."""
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.name == name and (role is None or s.role != role)]:
                del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class LoginLimiter:
    """At most ``attempts`` failed logins per (name, address) within ``window`` seconds; then a pause."""

    attempts: int
    window: float
    _failures: OrderedDict[tuple[str, str], deque[datetime]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, key: tuple[str, str], now: datetime) -> float | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        with self._lock:
            seen = self._trim(key, now)
            if len(seen) < self.attempts:
                return None
            return max(1.0, (seen[0] + timedelta(seconds=self.window) - now).total_seconds())

    def failed(self, key: tuple[str, str], now: datetime) -> None:
        """Count a failed attempt."""
        with self._lock:
            self._trim(key, now).append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_LIMITER_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        """A good login clears the count."""
        with self._lock:
            self._failures.pop(key, None)

    def _trim(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        seen = self._failures.setdefault(key, deque())
        cutoff = now - timedelta(seconds=self.window)
        while seen and seen[0] <= cutoff:
            seen.popleft()
        return seen


class Credentials:
    """The users and tokens of the config, checked in constant time per candidate."""

    def __init__(self, web: WebConfig) -> None:
        self.users: dict[str, WebUser] = {u.name: u for u in web.users}
        self.tokens: list[ApiToken] = list(web.tokens)
        # Verifying a bearer token costs one scrypt per configured token; remember the outcome by the token's
        # SHA-256 so a machine polling every few seconds does not pay it each time (bounded, newest kept).
        self._known: OrderedDict[str, ApiToken | None] = OrderedDict()
        self._lock = threading.Lock()
        self._dummy = hash_password(secrets.token_urlsafe(16))

    def check_password(self, name: str, password: str) -> WebUser | None:
        """The user when ``password`` is theirs; None otherwise (an unknown name costs the same scrypt)."""
        user = self.users.get(name)
        ok = verify_password(password, user.password_hash if user else self._dummy)
        return user if ok and user is not None else None

    def check_token(self, token: str) -> ApiToken | None:
        """The configured token matching ``token``, or None (blocking: run it off the event loop)."""
        key = _digest(token)
        with self._lock:
            if key in self._known:
                return self._known[key]
        found = None
        for candidate in self.tokens:
            if verify_password(token, candidate.token_hash):
                found = candidate
        with self._lock:
            self._known[key] = found
            while len(self._known) > 1024:
                self._known.popitem(last=False)
        return found
