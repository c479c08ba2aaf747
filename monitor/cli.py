"""The ``monitor`` command line. Heavy modules are imported inside commands so start-up stays fast."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from monitor.config import Config

from monitor.cli_common import CONFIG_HELP, _fail, _load, _store, config_option  # noqa: F401


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="monitor")
def main() -> None:
    """monitor: watch forums, feeds and complaint portals for surges of negative posts about your brand."""


@main.command()
@config_option
def run(config_path: str) -> None:
    """Run the daemon: poll every source on its schedule until SIGTERM/SIGINT (SIGHUP or saving the file reloads)."""
    from monitor.daemon import run_daemon
    from monitor.errors import StorageError

    config = _load(config_path, check_data_key=True)
    try:
        run_daemon(config)
    except StorageError as exc:
        _fail(f"error: {exc}")
    except KeyboardInterrupt:
        pass


@main.command()
@config_option
def check(config_path: str) -> None:
    """Validate the config and print every problem (exit 0 when valid, 2 otherwise)."""
    from monitor.config import load_config
    from monitor.errors import ConfigError

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))
    enabled = sum(1 for s in config.sources if s.enabled)
    click.echo(f"{config_path}: OK ({len(config.sources)} sources, {enabled} enabled; database {config.database.url})")


@main.command("try-source")
@click.argument("name")
@config_option
@click.option("--raw", is_flag=True, help="Print every field as the parser read it from each page, before "
                                          "normalisation and merging (one JSON line per item per page).")
@click.option("--save-fixture", "fixture_dir", type=click.Path(file_okay=False),
              help="Save the fetched pages and the parsed posts in this folder, for a regression test.")
def try_source(name: str, config_path: str, raw: bool, fixture_dir: str | None) -> None:
    """Fetch and parse source NAME once and print its posts as JSON lines; store nothing."""
    from zoneinfo import ZoneInfo

    from monitor.errors import FetchError, ParseError
    from monitor.http import HttpClient
    from monitor.registry import get_kind
    from monitor.runner import parse_pages

    config = _load(config_path)
    try:
        spec = config.source(name)
    except KeyError as exc:
        _fail(f"error: {exc.args[0]}")
    source = get_kind(spec.type)(spec)

    async def go() -> Any:
        async with HttpClient(config.http) as http:
            return await source.fetch(http, {})

    try:
        fetched = asyncio.run(go())
    except FetchError as exc:
        _fail(f"error: {name}: {exc}", 1)
    if raw:
        for page in fetched.pages:
            try:
                result = get_kind(spec.type)(spec).parse(page)
            except ParseError as exc:
                click.echo(json.dumps({"page": page.url, "error": str(exc)}, ensure_ascii=False))
                continue
            for item in result.posts:
                click.echo(json.dumps({"page": page.url, **_raw_json(item)}, ensure_ascii=False))
    posts: list[Any] = []
    problems: list[str] = []
    error: ParseError | None = None
    try:
        posts, problems = parse_pages(source, fetched.pages, ZoneInfo(spec.timezone or config.timezone))
    except ParseError as exc:
        error = exc
    if fixture_dir:
        saved = _save_fixture(Path(fixture_dir), fetched.pages, posts, problems, error)
        click.echo(f"saved {len(fetched.pages)} page(s) and {saved.name} in {fixture_dir}", err=True)
    if error is not None:
        _fail(f"error: {name}: {error}", 1)
    if not raw:
        for post in posts:
            click.echo(json.dumps(_post_json(post), ensure_ascii=False))
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo(f"{name}: {len(fetched.pages)} page(s), {len(posts)} post(s), {len(problems)} problem(s)", err=True)


def _raw_json(item: Any) -> dict[str, Any]:
    """A RawPost as JSON: what each field extracted, before normalisation."""
    from dataclasses import asdict

    data = asdict(item)
    if data.get("published_at") is not None:
        data["published_at"] = data["published_at"].isoformat()
    return data


#: Response headers kept with a saved page: what decoding and caching need, never cookies.
_FIXTURE_HEADERS = ("content-type", "content-encoding", "etag", "last-modified")


def _save_fixture(folder: Path, pages: list[Any], posts: list[Any], problems: list[str],
                  error: Exception | None) -> Path:
    """Write each page's bytes, a manifest (URL, status, headers, role) and the parsed result; returns the result."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for i, page in enumerate(pages):
        ctype = page.content_type.lower()
        ext = ".json" if "json" in ctype else ".xml" if "xml" in ctype else ".html"
        file = f"page{i:03d}{ext}"
        (folder / file).write_bytes(page.content)
        manifest.append({"file": file, "url": page.url, "status": page.status,
                         "fetched_at": page.fetched_at.isoformat(),
                         "headers": {k: v for k, v in page.headers.items() if k.lower() in _FIXTURE_HEADERS},
                         "meta": {k: v for k, v in page.meta.items() if isinstance(v, str | int | float | None)}})
    (folder / "pages.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    out = folder / "expected.json"
    result = {"posts": [_post_json(p) for p in posts], "problems": problems,
              "error": str(error) if error is not None else None}
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


@main.command("sources")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
def sources_cmd(config_path: str, as_json: bool) -> None:
    """List configured sources with their health."""
    config = _load(config_path)
    store = _store(config)
    health = {h.name: h for h in store.health(include_removed=True)}
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for spec in config.sources:
        h = health.get(spec.name)
        rows.append({
            "name": spec.name, "type": spec.type,
            "status": ("disabled" if not spec.enabled else (h.status if h else "new")),
            "last_success": h.last_success_at.isoformat() if h and h.last_success_at else None,
            "failures": h.consecutive_failures if h else 0, "posts": h.posts_total if h else 0,
            "last_error": h.last_error if h else None,
            "next_attempt": h.next_attempt_at.isoformat() if h and h.next_attempt_at else None,
        })
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    click.echo(f"{'NAME':<24} {'TYPE':<6} {'STATUS':<9} {'LAST SUCCESS':<14} {'FAILS':>5} {'POSTS':>7}  LAST ERROR")
    for row in rows:
        h = health.get(str(row["name"]))
        ago = _ago(now - h.last_success_at) if h and h.last_success_at else "never"
        err = str(row["last_error"] or "")[:80] if row["status"] != "ok" else ""
        click.echo(f"{row['name']:<24} {row['type']:<6} {row['status']:<9} {ago:<14} {row['failures']:>5} "
                   f"{row['posts']:>7}  {err}")


@main.command("posts")
@config_option
@click.option("--source", "source_name", help="Only this source.")
@click.option("--since", help="Only posts published within this long, e.g. 30m, 2h, 7d.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per post.")
def posts_cmd(config_path: str, source_name: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Show recent stored posts, newest first."""
    from monitor.durations import parse_duration

    config = _load(config_path)
    if source_name:
        try:
            config.source(source_name)
        except KeyError as exc:
            _fail(f"error: {exc.args[0]}")
    cutoff = None
    if since:
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
        except ValueError as exc:
            _fail(f"error: --since: {exc}")
    store = _store(config)
    for post in store.recent_posts(source=source_name, since=cutoff, limit=limit):
        if as_json:
            click.echo(json.dumps(_post_json(post), ensure_ascii=False))
        else:
            local = post.published_at.astimezone(config.tz).strftime("%m-%d %H:%M")
            body = (post.title or post.text).replace("\n", " ")[:70]
            click.echo(f"{local}  {post.source:<16} {post.author[:12]:<12} {body}")


@main.command()
@config_option
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Recorded stream: one JSON object per line with id, source, author, text, published_at.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the incidents, one JSON object per line.")
@click.option("--db", "db_url", help="Database URL to replay into (default: a temporary SQLite file).")
def replay(config_path: str, input_path: str, output_path: str, db_url: str | None) -> None:
    """Push a recorded stream through the real pipeline on a simulated clock and write the incidents it raises."""
    import os

    from monitor.replay import ReplayInputError
    from monitor.replay import replay as run_replay

    config = _load(config_path) if os.path.exists(config_path) or config_path != "config.yaml" else _default()
    try:
        result = run_replay(config, Path(input_path), Path(output_path), db_url=db_url)
    except ReplayInputError as exc:
        _fail(f"error: {exc}")
    for problem in result.problems[:20]:
        click.echo(f"problem: {problem}", err=True)
    rate = result.posts / result.seconds if result.seconds else 0.0
    from monitor.analysis.native import MISSING_HINT, missing

    if absent := missing():
        click.echo(f"note: {MISSING_HINT} (missing: {', '.join(absent)})", err=True)
    click.echo(f"replayed {result.posts:,} posts in {result.seconds:.1f} s ({rate:,.0f} posts/s); "
               f"{result.skipped} line(s) skipped; {result.incidents} incident(s) written to {output_path}", err=True)


def _default() -> Config:
    from monitor.config import parse_config

    return parse_config("sources: []\n")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str) -> None:
    """Apply database migrations (``monitor run`` does this on start too)."""
    from monitor.db.migrate import current_revision

    config = _load(config_path)
    store = _store(config)
    click.echo(f"database at revision {current_revision(store.engine)}")


def _post_json(post: Any) -> dict[str, Any]:
    return {
        "id": post.uid, "source": post.source, "native_id": post.native_id, "url": post.url, "title": post.title,
        "text": post.text, "author": post.author, "author_id": post.author_id,
        "published_at": post.published_at.isoformat(), "fetched_at": post.fetched_at.isoformat(),
        "reposts": post.reposts, "comments": post.comments, "likes": post.likes, "extra": post.extra,
    }


def _ago(delta: timedelta) -> str:
    from monitor.durations import format_duration

    return format_duration(max(0, int(delta.total_seconds()))) + " ago"


@main.command()
@click.option("--duration", help="Stop after this long (seconds, or 90s, 5m...); default: until Ctrl-C.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="Keep the posts in this SQLite file (default: a temporary one, deleted at exit).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the demo site on 127.0.0.1 (0: any free port).")
def demo(duration: str | None, db_path: str | None, port: int) -> None:
    """Watch a built-in demo site (no internet needed): posts appear within seconds, more every 30 s."""
    from pathlib import Path

    from monitor.demo import run_demo
    from monitor.durations import parse_duration

    seconds = None
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            _fail(f"error: --duration: {exc}")
    sys.exit(run_demo(duration=seconds, db=Path(db_path) if db_path else None, port=port))


def _register_lazy_commands() -> None:
    # The sentiment command module imports only click; its model loads when the command runs.
    from monitor.analysis.sentiment_cli import sentiment_command

    main.add_command(sentiment_command, "sentiment")
    # The queue's commands: tickets and reports (alerts/queue_cli.py); incidents, silences and the outbox
    # (alerts/incidents_cli.py). Each module imports only click at import time.
    from alerts.incidents_cli import incidents_command, outbox_command, silences_command
    from alerts.queue_cli import report_command, tickets_command

    main.add_command(incidents_command, "incidents")
    main.add_command(silences_command, "silences")
    main.add_command(outbox_command, "outbox")
    main.add_command(tickets_command, "tickets")
    main.add_command(report_command, "report")
    # The web console: `monitor serve` (console alone) and `monitor web ...` (password hashes for the config).
    from monitor.web.cli import serve_command, web_command

    main.add_command(serve_command, "serve")
    main.add_command(web_command, "web")
    # Personal data: `monitor privacy ...` (run and serve check the data key as they load the config).
    from monitor.privacy_cli import privacy_command

    main.add_command(privacy_command, "privacy")


_register_lazy_commands()

if __name__ == "__main__":
    main()
