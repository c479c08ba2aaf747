"""The ``web:`` section: where the console listens, who may log in, machine tokens, session settings."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.durations import Duration

Role = Literal["viewer", "handler", "admin"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebUser(_Section):
    """A person who may log in. ``password_hash`` comes from ``monitor web hash-password`` (scrypt)."""

    name: str = Field(min_length=1, max_length=64)
    role: Role = "viewer"
    password_hash: str = Field(description="scrypt$... from `monitor web hash-password`; use ${ENV}")


class ApiToken(_Section):
    """A machine's bearer token for the JSON API (stored hashed, like passwords)."""

    name: str = Field(min_length=1, max_length=64)
    role: Role = "viewer"
    token_hash: str = Field(description="scrypt$... from `monitor web hash-password`")


class WebConfig(_Section):
    """The web console and JSON API."""

    enabled: bool = Field(default=True, description="serve the console inside `monitor run`")
    listen: str = Field(default="127.0.0.1:8080", description="host:port")
    users: list[WebUser] = Field(default_factory=list)
    tokens: list[ApiToken] = Field(default_factory=list)
    session_ttl: Duration = Field(default=12 * 3600.0, description="a login lasts this long without activity")
    secure_cookies: bool | None = Field(default=None, description="Secure flag on cookies; default: when "
                                                                  "console_url is https")
    language: Literal["zh", "en"] = Field(default="zh", description="default UI language")
    login_attempts: int = Field(default=5, ge=1, description="failed logins per user and address before a pause")
    login_lockout: Duration = Field(default=900.0, description="how long that pause lasts")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})", v.strip())
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ValueError(f"not host:port: {v!r}; write it like 127.0.0.1:8080")
        return v.strip()

    @property
    def host(self) -> str:
        """The host part of ``listen``."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return int(self.listen.rsplit(":", 1)[1])
