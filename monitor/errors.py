"""The one exception tree of monitor.

Every message names the thing that failed (source, channel, URL, config path) and says what to do.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid; ``problems`` holds one line per problem, each with its path."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: {len(self.problems)} problem(s)"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in self.problems))


class FetchError(MonitorError):
    """A fetch failed. ``retryable`` says whether trying again later can help."""

    def __init__(self, message: str, *, url: str = "", retryable: bool = True, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.url = url
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class BlockedError(FetchError):
    """The site refused us: robots.txt, a login wall, captcha or an anti-bot status (403/412/418/432)."""


class TooLargeError(FetchError):
    """The response exceeded the configured size cap."""


class ParseError(MonitorError):
    """A page could not be parsed at all (a page that parsed in part reports problems instead)."""


class LayoutError(ParseError):
    """A page arrived (HTTP 200) but the configured selectors found nothing: the site's layout may have changed."""


class BlockedPageError(ParseError):
    """A page arrived but is a login wall, captcha or anti-bot page instead of content."""


class StorageError(MonitorError):
    """The database could not be reached or written."""


class PluginError(MonitorError):
    """A source kind is unknown or its plugin failed to import."""
