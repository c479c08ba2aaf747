"""Load and validate ``config.yaml`` into typed, frozen objects.

Pydantic v2 models, because they give every problem with its location in one pass, coerce ``"30"`` from an
environment variable into a number, and let each source kind bring its own model (``SourceConfig`` subclasses)
that is validated here, at load time. Every problem is reported at once, with its path and a hint.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from alerts.channels.base import ChannelConfig
from alerts.config import AlertsConfig, QueueConfig
from monitor.analysis.surge import DetectionConfig
from monitor.analysis.watch import WatchConfig
from monitor.durations import Duration, parse_duration
from monitor.errors import ConfigError, PluginError
from monitor.privacy_config import PrivacyConfig
from monitor.source import SourceConfig
from monitor.web.config import WebConfig

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    """Where posts and state live. SQLite (embedded, WAL) by default; PostgreSQL by URL."""

    url: str = Field(default="sqlite:///monitor.db",
                     description="sqlite:///path.db (relative to the config file) or postgresql://user@host/db")

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
            # Name the scheme only: the rest of the URL may hold a password.
            m = re.match(r"^([A-Za-z][\w+.\-]*)://", v)
            what = f"unsupported database scheme {m.group(1)!r}" if m else "not a database URL"
            raise ValueError(f"{what}; use sqlite:///monitor.db or postgresql://user:${{PGPASSWORD}}@host:5432/db")
        return v


class LogConfig(_Section):
    """Logging: level and line format."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = Field(default="text",
                                            description="text: key=value lines; json: one object a line")


class HttpConfig(_Section):
    """The shared HTTP client: politeness and robustness for every source."""

    user_agent: str = "monitor/0.1 (public-opinion monitor; +https://github.com/)"
    timeout: float = Field(default=20.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    max_bytes: int = Field(default=10_000_000, ge=1024, description="Responses larger than this are refused")
    per_host_concurrency: int = Field(default=2, ge=1, le=64)
    per_host_interval: float = Field(default=1.0, ge=0, description="Minimum seconds between requests to one host")
    retries: int = Field(default=3, ge=0, le=10, description="Retries on 429/5xx/timeouts within one poll")
    backoff: float = Field(default=1.0, ge=0, description="First retry delay; doubles each retry, with jitter")
    backoff_max: float = Field(default=30.0, ge=0)
    max_retry_after: float = Field(default=120.0, ge=0,
                                   description="Longer Retry-After values end the poll and delay the next one")
    max_redirects: int = Field(default=5, ge=0, le=30)
    proxy: str | None = Field(default=None,
                              description="http://host:port; HTTP(S)_PROXY from the environment also work")
    respect_robots: bool = True
    robots_ttl: float = Field(default=21600.0, ge=0, description="Seconds a robots.txt is cached")

    @field_validator("timeout", "connect_timeout", "per_host_interval", "backoff", "backoff_max", "max_retry_after",
                     "robots_ttl", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


class AnalysisConfig(_Section):
    """The ``analysis:`` section: sentiment backend, extra complaint categories, clustering windows."""

    sentiment: str = Field(default="weibo", description="sentiment backend: weibo (built in) or snownlp")
    categories: dict[str, list[str]] = Field(default_factory=dict, description="extra complaint categories: name -> "
                                                                               "keywords")
    topic_window: Duration = Field(default=6 * 3600, description="how long a topic stays open without new posts")
    duplicate_window: Duration = Field(default=24 * 3600, description="how far back near-duplicates are looked for")

    @field_validator("sentiment")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in SENTIMENT_BACKENDS:
            raise ValueError(f"unknown sentiment backend {v!r}; use one of {', '.join(SENTIMENT_BACKENDS)}")
        return v


#: Names `analysis.sentiment` accepts (checked here so a typo fails at load time, not on the first post).
SENTIMENT_BACKENDS = ("weibo", "snownlp")


class Config(_Section):
    """The whole configuration."""

    timezone: str = Field(default="Asia/Shanghai", description="Display timezone; everything is stored in UTC")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    watches: list[WatchConfig] = Field(default_factory=list)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    channels: list[ChannelConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

    _path: Path | None = PrivateAttr(default=None)
    _secrets: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}; use an IANA name such as Asia/Shanghai") from exc
        return v

    @field_validator("watches")
    @classmethod
    def _unique_watches(cls, v: list[WatchConfig]) -> list[WatchConfig]:
        names = [w.name for w in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"watch names must be unique; repeated: {', '.join(dupes)}")
        return v

    @property
    def path(self) -> Path | None:
        """The file this config was loaded from."""
        return self._path

    @property
    def secrets(self) -> frozenset[str]:
        """Values substituted from the environment; never logged."""
        return self._secrets

    @property
    def tz(self) -> ZoneInfo:
        """The display timezone."""
        return ZoneInfo(self.timezone)

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``; KeyError listing the names otherwise."""
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source named {name!r}; configured: {', '.join(s.name for s in self.sources) or 'none'}")

    def channel(self, name: str) -> ChannelConfig:
        """The channel called ``name``; KeyError listing the names otherwise."""
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(f"no channel named {name!r}; configured: {', '.join(c.name for c in self.channels) or 'none'}")

    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the config file's folder."""
        url = self.database.url
        m = re.match(r"^(sqlite(?:\+\w+)?:///)(.*)$", url)
        if m and m.group(2) and m.group(2) != ":memory:" and not m.group(2).startswith("/") and self._path:
            return m.group(1) + str((self._path.parent / m.group(2)).resolve())
        return url


def source_digest(source: SourceConfig) -> str:
    """A stable hash of a source's config, to tell when an edit changed it."""
    blob = json.dumps(source.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Config:
    """Read, substitute ``${VAR}``, and validate ``path``; raise ConfigError listing every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {p}; copy the example config.yaml from the project and edit it"],
                          str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"],
                          str(p)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read {p}: {exc.strerror}"], str(p)) from None
    return parse_config(text, source=str(p), env=env, path=p)


def parse_config(text: str, *, source: str = "config", env: dict[str, str] | None = None,
                 path: Path | None = None) -> Config:
    """Validate YAML text into a Config; raise ConfigError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML: {problem}; check indentation and quoting"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"the top level must be a mapping of sections (sources:, database:, ...), "
                           f"not {type(data).__name__}"], source)
    problems: list[str] = []
    secrets: dict[str, str] = {}
    data = _substitute(data, os.environ if env is None else env, "", problems, secrets)

    raw_sources = _pop_list(data, "sources", "source", problems)
    raw_channels = _pop_list(data, "channels", "channel", problems)
    try:
        base = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_format_errors(exc, "", Config))
        base = None

    sources: list[SourceConfig] = _validate_list(raw_sources, "sources", "source", _source_kind, problems)
    channels: list[ChannelConfig] = _validate_list(raw_channels, "channels", "channel", _channel_kind, problems)
    if base is not None:
        _check_references(base, [c.name for c in channels], raw_channels, [s.name for s in sources], problems)

    kept = {value: name for value, name in secrets.items() if len(value) >= 4}
    if problems or base is None:
        raise ConfigError([_redact(p, kept) for p in problems], source)
    # A source without its own timezone reads offset-less times in the global one (parsers need it, not just display).
    sources = [s if s.timezone else s.model_copy(update={"timezone": base.timezone}) for s in sources]
    config = base.model_copy(update={"sources": sources, "channels": channels})
    config._path = path.resolve() if path else None
    config._secrets = frozenset(kept)
    return config


def _redact(problem: str, secrets: dict[str, str]) -> str:
    """Show ``${VAR}`` instead of a value taken from the environment: problem lines are printed and logged."""
    for value in sorted(secrets, key=len, reverse=True):
        problem = problem.replace(value, f"${{{secrets[value]}}}")
    return problem


def _pop_list(data: dict[str, Any], section: str, noun: str, problems: list[str]) -> list[Any]:
    """Take the ``section`` list (sources, channels) out of the top level; validated kind by kind later."""
    raw = data.pop(section, None)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{section}: must be a list of {noun}s (each item starts with '- name: ...')")
        return []
    return raw


# Each list's plugin lookup: a kind name -> its config model, with what to say when an item is not a mapping.
def _source_kind(kind: str) -> type[BaseModel]:
    from monitor.registry import get_kind  # late: keeps `import monitor.config` light

    return get_kind(kind).config_model


def _channel_kind(kind: str) -> type[BaseModel]:
    from alerts.channels import get_channel_kind  # late: channel modules load only when channels are configured

    return get_channel_kind(kind).config_model


_NEEDS = {"source": ("name, type and url", "rss"), "channel": ("name and type", "dingtalk")}


def _validate_list(raw: list[Any], section: str, noun: str, model_for: Callable[[str], type[BaseModel]],
                   problems: list[str]) -> list[Any]:
    """Validate each item of a plugin list with its kind's own model; names must be unique."""
    out: list[Any] = []
    seen: dict[str, int] = {}
    needs, example = _NEEDS[noun]
    for i, item in enumerate(raw):
        where = f"{section}[{i}]"
        parsed = _validate_item(item, where, noun, needs, example, model_for, problems)
        # Duplicates are checked on the raw name, so one is reported even when the other item has problems too.
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in seen:
            problems.append(f"{where}.name: duplicate {noun} name {name!r} (also {section}[{seen[name]}]); "
                            f"names must be unique")
            continue
        if isinstance(name, str):
            seen[name] = i
        if parsed is not None:
            out.append(parsed)
    return out


def _validate_item(item: object, where: str, noun: str, needs: str, example: str,
                   model_for: Callable[[str], type[BaseModel]], problems: list[str]) -> BaseModel | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: each {noun} must be a mapping with at least {needs}")
        return None
    kind = item.get("type")
    if kind is None:
        problems.append(f"{where}.type: missing; say which kind of {noun} this is (e.g. type: {example})")
        return None
    try:
        model = model_for(str(kind))
    except PluginError as exc:
        problems.append(f"{where}.type: {exc}")
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        problems.extend(_format_errors(exc, where, model))
        return None


def _check_references(config: Config, channels: list[str], raw_channels: list[Any], source_names: list[str],
                      problems: list[str]) -> None:
    """Routes and the queue must name channels, watches and sources that exist."""
    # A channel that failed its own validation is still a known name: report its problem once, not at every route.
    known = set(channels) | {c.get("name") for c in raw_channels if isinstance(c, dict)}
    watches = {w.name for w in config.watches}

    def check_channels(names: list[str] | None, where: str) -> None:
        for j, name in enumerate(names or []):
            if name not in known:
                guess = difflib.get_close_matches(name, [str(k) for k in known], n=1)
                hint = f"did you mean {guess[0]!r}?" if guess else \
                    f"configured channels: {', '.join(sorted(str(k) for k in known)) or 'none (add a channels: list)'}"
                problems.append(f"{where}[{j}]: unknown channel {name!r}; {hint}")

    for i, route in enumerate(config.alerts.routes):
        check_channels(route.channels, f"alerts.routes[{i}].channels")
        for j, w in enumerate(route.match.watches):
            if w not in watches:
                problems.append(f"alerts.routes[{i}].match.watches[{j}]: unknown watch {w!r}; "
                                f"watches: {', '.join(sorted(watches)) or 'none'}")
        for j, s in enumerate(route.match.sources):
            if s not in source_names:
                problems.append(f"alerts.routes[{i}].match.sources[{j}]: unknown source {s!r}")
    check_channels(config.alerts.default_channels, "alerts.default_channels")
    check_channels(config.queue.remind_channels, "queue.remind_channels")
    check_channels(config.queue.escalate_channels, "queue.escalate_channels")
    for j, s in enumerate(config.queue.portal.sources):
        if s not in source_names:
            problems.append(f"queue.portal.sources[{j}]: unknown source {s!r}")
    ext = config.queue.external
    if ext is not None:  # the adapter is a webhook channel: its URL and headers obey the same rules
        from alerts.channels import get_channel_kind

        model = get_channel_kind("webhook").config_model
        try:
            model.model_validate({"name": "external", "type": "webhook", "url": ext.url, "secret": ext.secret,
                                  "headers": dict(ext.headers)})
        except ValidationError as exc:
            problems.extend(p.replace("queue.external.name", "queue.external")
                            for p in _format_errors(exc, "queue.external", model))
    for j, w in enumerate(config.queue.portal.watches):
        if w not in watches:
            problems.append(f"queue.portal.watches[{j}]: unknown watch {w!r}")


def _substitute(value: Any, env: Any, path: str, problems: list[str], secrets: dict[str, str]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value; ``$$`` is a literal ``$``."""
    if isinstance(value, dict):
        return {k: _substitute(v, env, f"{path}.{k}" if path else str(k), problems, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, f"{path}[{i}]", problems, secrets) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            secrets[str(env[name])] = name
            return str(env[name])
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set; export it "
                        f"(e.g. in the service's environment file) or write ${{{name}:-default}}")
        return ""

    return _ENV.sub(repl, value)


def _format_errors(exc: ValidationError, prefix: str, model: type[BaseModel]) -> list[str]:
    out = []
    for err in exc.errors():
        loc = err["loc"]
        path = prefix
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        kind = err["type"]
        if kind == "extra_forbidden":
            known = _field_names(model, loc[:-1])
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(sorted(known))}"
            out.append(f"{path}: unknown key; {hint}")
        elif kind == "missing":
            out.append(f"{path}: missing; this key is required")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = f" (got {got!r})" if isinstance(got, str | int | float) and kind != "value_error" else ""
            out.append(f"{path}: {msg}{shown}")
    return out


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))
