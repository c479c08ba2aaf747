"""Config loading: the bad-config table, ${VAR} substitution, defaults, paths, digests and `monitor check`."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import Config, load_config, parse_config, source_digest
from monitor.errors import ConfigError
from monitor.registry import known_kinds
from sources.rss import RssConfig

REPO = Path(__file__).resolve().parents[1]
BAD_CONFIGS = Path(__file__).parent / "bad_configs"
BAD_CASES = sorted(BAD_CONFIGS.glob("*.yaml"))
ENV_HEADER = "# env:"

GOOD = """\
timezone: Europe/Berlin
database:
  url: sqlite:///data/monitor.db
sources:
  - name: people
    type: rss
    url: https://example.com/people.xml
    interval: 10m
  - name: chinanews
    type: rss
    url: https://example.com/chinanews.xml
    enabled: false
"""


def case_env(path: Path) -> dict[str, str]:
    """The environment a bad-config case runs with: its ``# env: NAME=value`` lines, nothing else."""
    env: dict[str, str] = {}
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if line.startswith(ENV_HEADER):
            name, sep, value = line.removeprefix(ENV_HEADER).strip().partition("=")
            assert sep, f"{path.name}: write the header as '# env: NAME=value'"
            env[name] = value
    return env


def expected_problems(path: Path) -> list[str]:
    """The lines of ``NAME.expected``; ``{known_types}`` stands for the registry's list of kinds."""
    text = path.with_suffix(".expected").read_text(encoding="utf-8")
    return [line.replace("{known_types}", ", ".join(known_kinds())) for line in text.splitlines()]


def rss(config: Config, index: int = 0) -> RssConfig:
    """The source at ``index``, which must have been validated by the rss kind's own model."""
    source = config.sources[index]
    assert isinstance(source, RssConfig)
    return source


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    """Write ``text`` as a config file under ``tmp_path``."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the table of bad configs -------------------------------------------------------------------------------------


def test_bad_config_table_is_complete() -> None:
    yamls = {p.stem for p in BAD_CASES}
    expected = {p.stem for p in BAD_CONFIGS.glob("*.expected")}
    assert len(yamls) >= 20
    assert yamls == expected, f"unpaired cases: {sorted(yamls ^ expected)}"
    for stem in expected:
        assert expected_problems(BAD_CONFIGS / f"{stem}.yaml"), f"{stem}.expected is empty"


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda p: p.stem)
def test_bad_config_reports_exact_problems(case: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(case, env=case_env(case))
    assert info.value.problems == expected_problems(case)
    assert info.value.source == str(case)
    # The exception text (what `monitor check` and the daemon print) carries every problem line.
    message = str(info.value)
    assert message.startswith(f"{case}: {len(info.value.problems)} problem(s)\n")
    for line in info.value.problems:
        assert f"  - {line}" in message


def test_several_problems_are_reported_together() -> None:
    case = BAD_CONFIGS / "several_problems.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(case, env={})
    paths = [p.split(":", 1)[0] for p in info.value.problems]
    for where in ("timezone", "database.url", "log.level", "http.retries", "sources[0].url", "sources[0].intervall",
                  "sources[1].interval", "sources[1].name", "sources[2].type", "sources[3]"):
        assert where in paths


def test_env_header_is_read() -> None:
    assert case_env(BAD_CONFIGS / "env_value_invalid.yaml") == {"MONITOR_TEST_RETRIES": "many"}
    assert case_env(BAD_CONFIGS / "env_empty.yaml") == {"MONITOR_TEST_COOKIE": ""}
    assert case_env(BAD_CONFIGS / "unknown_type.yaml") == {}


def test_unknown_type_lists_the_known_types() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(BAD_CONFIGS / "unknown_type.yaml", env={})
    (line,) = info.value.problems
    assert "'weibo'" in line
    assert "known types: " in line and "rss" in line


def test_secret_from_env_never_appears_in_problems() -> None:
    case = BAD_CONFIGS / "secret_in_bad_url.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(case, env=case_env(case))
    assert "s3cr3t-token-123" not in str(info.value)
    assert "${MONITOR_TEST_FEED_TOKEN}" in info.value.problems[0]


def test_duplicate_is_reported_when_the_first_source_is_also_invalid() -> None:
    text = """\
sources:
  - {name: people, type: rss, url: "not a url"}
  - {name: people, type: rss, url: "https://example.com/feed.xml"}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert [p.split(":", 1)[0] for p in info.value.problems] == ["sources[0].url", "sources[1].name"]
    assert "duplicate source name 'people' (also sources[0])" in info.value.problems[1]


@pytest.mark.parametrize("text", ["sources: 0", "sources: ''", "sources: no", "sources: {}"])
def test_falsy_non_list_sources_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert info.value.problems == ["sources: must be a list of sources (each item starts with '- name: ...')"]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})
    assert info.value.problems == [f"file not found: {missing}; copy the example config.yaml from the project and "
                                   f"edit it"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    (line,) = info.value.problems
    assert line.startswith(f"cannot read {tmp_path}: ")


# --- ${VAR} substitution ------------------------------------------------------------------------------------------


def _feed(url: str, extra: str = "") -> str:
    return f"sources:\n  - name: feed\n    type: rss\n    url: \"{url}\"\n{extra}"


def test_var_is_substituted() -> None:
    config = parse_config(_feed("https://${HOST}/feed.xml"), env={"HOST": "example.org"})
    assert rss(config).url == "https://example.org/feed.xml"


def test_var_inside_nested_mapping() -> None:
    config = parse_config(_feed("https://example.com/f.xml", "    headers:\n      Cookie: sid=${SID}; lang=zh\n"),
                          env={"SID": "abc123"})
    assert config.sources[0].headers == {"Cookie": "sid=abc123; lang=zh"}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "https://fallback.example/feed.xml"),
    ({"HOST": ""}, "https://fallback.example/feed.xml"),  # empty counts as unset, as in the shell
    ({"HOST": "set.example"}, "https://set.example/feed.xml"),
])
def test_var_with_default(env: dict[str, str], expected: str) -> None:
    config = parse_config(_feed("https://${HOST:-fallback.example}/feed.xml"), env=env)
    assert rss(config).url == expected


def test_default_may_contain_colons_and_slashes() -> None:
    config = parse_config("database:\n  url: ${DB:-sqlite:///var/lib/monitor.db}\n", env={})
    assert config.database.url == "sqlite:///var/lib/monitor.db"


@pytest.mark.parametrize(("raw", "expected"), [
    ("pa$$word", "pa$word"),
    ("$${HOME}", "${HOME}"),  # an escaped reference stays literal and is not looked up
    ("$$$${X}", "$${X}"),
    ("costs $5", "costs $5"),  # a lone $ not followed by { is left alone
    ("$${X}-${X}", "${X}-val"),
])
def test_dollar_escaping(raw: str, expected: str) -> None:
    config = parse_config(_feed("https://example.com/f.xml", f"    headers:\n      X-Test: '{raw}'\n"),
                          env={"X": "val", "HOME": "/root"})
    assert config.sources[0].headers["X-Test"] == expected


def test_numbers_from_env_are_coerced() -> None:
    text = "http:\n  retries: ${RETRIES}\n  max_bytes: ${MAX_BYTES}\n" + _feed(
        "https://example.com/f.xml", "    interval: ${INTERVAL}\n    max_items: ${MAX_ITEMS:-50}\n")
    config = parse_config(text, env={"RETRIES": "7", "MAX_BYTES": "2048", "INTERVAL": "2m"})
    assert config.http.retries == 7 and type(config.http.retries) is int
    assert config.http.max_bytes == 2048
    assert config.sources[0].interval == 120.0
    assert rss(config).max_items == 50 and type(rss(config).max_items) is int


def test_unset_var_is_a_problem_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("database:\n  url: postgresql://u:${PGPASS}@h/db\n", env={})
    (line,) = info.value.problems
    assert line.startswith("database.url: environment variable PGPASS is not set; export it")
    assert "${PGPASS:-default}" in line


def test_os_environ_is_the_default_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_TEST_HOST", "from-environ.example")
    config = parse_config(_feed("https://${MONITOR_TEST_HOST}/f.xml"))
    assert rss(config).url == "https://from-environ.example/f.xml"
    assert config.secrets == frozenset({"from-environ.example"})


def test_secrets_hold_substituted_values() -> None:
    text = "database:\n  url: postgresql://monitor:${PGPASSWORD}@db:5432/monitor\n" + _feed(
        "https://example.com/f.xml?key=${SHORT}", "    headers:\n      Cookie: ${COOKIE}\n      X-D: ${UNSET:-dflt1}\n")
    config = parse_config(text, env={"PGPASSWORD": "hunter2-pg", "COOKIE": "SESSION=abcdef", "SHORT": "abc",
                                     "NOT_USED": "never-referenced"})
    assert config.database.url == "postgresql://monitor:hunter2-pg@db:5432/monitor"
    # Defaults are not secrets, unreferenced variables are not, and values under 4 characters are too short to scrub.
    assert config.secrets == frozenset({"hunter2-pg", "SESSION=abcdef"})


def test_no_substitution_means_no_secrets() -> None:
    assert parse_config(GOOD, env={"PGPASSWORD": "x" * 10}).secrets == frozenset()


# --- defaults, paths, lookups -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "sources: []\n", "sources:\n"])
def test_defaults(text: str) -> None:
    config = parse_config(text, env={})
    assert config.database.url == "sqlite:///monitor.db"
    assert config.timezone == "Asia/Shanghai"
    assert config.tz == ZoneInfo("Asia/Shanghai")
    assert config.log.level == "info"
    assert config.log.format == "text"
    assert config.sources == []
    assert config.path is None


def test_source_defaults() -> None:
    source = parse_config(_feed("https://example.com/f.xml"), env={}).sources[0]
    assert source.interval == 300.0
    assert source.effective_jitter == 30.0
    assert source.enabled is True
    assert source.timezone == "Asia/Shanghai"  # filled from the global timezone: parsers read offset-less times in it


def test_relative_sqlite_path_resolves_against_the_config_folder(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD, "etc/monitor/config.yaml")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(os.path.relpath(path, elsewhere), env={})
    assert config.path == path.resolve()
    assert config.database.url == "sqlite:///data/monitor.db"  # as written
    assert config.database_url() == f"sqlite:///{(tmp_path / 'etc' / 'monitor' / 'data' / 'monitor.db').resolve()}"


@pytest.mark.parametrize("url", ["sqlite:////var/lib/monitor.db", "sqlite:///:memory:", "sqlite://",
                                 "postgresql://monitor@127.0.0.1:5432/monitor",
                                 "postgresql+psycopg://monitor@127.0.0.1/monitor"])
def test_other_database_urls_are_kept(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, f"database:\n  url: \"{url}\"\n"), env={})
    assert config.database_url() == url


def test_sqlite_driver_suffix_keeps_the_driver(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "database:\n  url: sqlite+pysqlite:///m.db\n"), env={})
    assert config.database_url() == f"sqlite+pysqlite:///{(tmp_path / 'm.db').resolve()}"


def test_parsed_text_without_a_file_keeps_the_relative_path() -> None:
    assert parse_config("", env={}).database_url() == "sqlite:///monitor.db"


def test_source_lookup() -> None:
    config = parse_config(GOOD, env={})
    assert config.source("chinanews").enabled is False
    with pytest.raises(KeyError, match="no source named 'weibo'; configured: people, chinanews"):
        config.source("weibo")


def test_config_is_frozen() -> None:
    config = parse_config(GOOD, env={})
    with pytest.raises(ValueError, match="frozen"):
        config.timezone = "UTC"


# --- source_digest ------------------------------------------------------------------------------------------------


BASE_SOURCE = {"name": "people", "type": "rss", "url": "https://example.com/a.xml", "interval": "10m"}


def _digest_of(item: dict[str, object]) -> str:
    """The digest of one source written as ``item`` (keys in the given order)."""
    text = yaml.safe_dump({"sources": [item]}, sort_keys=False, allow_unicode=True)
    return source_digest(parse_config(text, env={}).sources[0])


def _digest(**changes: object) -> str:
    return _digest_of({**BASE_SOURCE, **changes})


def test_digest_is_stable() -> None:
    digest = _digest()
    assert digest == _digest()
    assert len(digest) == 16 and int(digest, 16) >= 0


def test_digest_ignores_spelling_that_means_the_same() -> None:
    base = _digest()
    assert _digest(interval="600") == base  # 10m written in seconds
    assert _digest(interval=600) == base
    assert _digest(enabled=True) == base  # the default, written out
    assert _digest(max_items=500) == base  # the default, written out
    assert _digest_of({k: BASE_SOURCE[k] for k in reversed(BASE_SOURCE)}) == base


def test_digest_ignores_the_order_of_headers() -> None:
    assert _digest(headers={"A": "1", "B": "2"}) == _digest(headers={"B": "2", "A": "1"})
    assert _digest(headers={"A": "1", "B": "2"}) != _digest(headers={"A": "1", "B": "3"})
    assert _digest(headers={"A": "1"}) != _digest()


@pytest.mark.parametrize("change", [
    {"url": "https://example.com/b.xml"}, {"interval": "11m"}, {"enabled": False}, {"name": "people2"},
    {"max_items": 10}, {"jitter": "1m"}, {"timezone": "UTC"}, {"robots": False}, {"tags": ["品牌"]},
])
def test_digest_changes_with_the_source(change: dict[str, object]) -> None:
    assert _digest(**change) != _digest()


def test_digest_of_one_source_ignores_the_others(tmp_path: Path) -> None:
    before = load_config(write(tmp_path, GOOD), env={})
    after = load_config(write(tmp_path, GOOD.replace("chinanews.xml", "chinanews2.xml"), "edited.yaml"), env={})
    assert source_digest(before.source("people")) == source_digest(after.source("people"))
    assert source_digest(before.source("chinanews")) != source_digest(after.source("chinanews"))


def test_global_timezone_reaches_sources_without_their_own(tmp_path: Path) -> None:
    """A source without `timezone:` takes the global one, so changing it reschedules the source."""
    before = load_config(write(tmp_path, GOOD), env={})
    after = load_config(write(tmp_path, GOOD.replace("timezone: Europe/Berlin", "timezone: UTC"), "tz.yaml"), env={})
    assert before.source("people").timezone == "Europe/Berlin" and after.source("people").timezone == "UTC"
    assert source_digest(before.source("people")) != source_digest(after.source("people"))


# --- the repo's own config.yaml -----------------------------------------------------------------------------------


def test_repo_config_validates() -> None:
    config = load_config(REPO / "config.yaml", env={})
    assert [s.name for s in config.sources] == ["people-society", "chinanews-society"]
    assert all(s.type == "rss" and s.interval == 600.0 for s in config.sources)
    assert config.timezone == "Asia/Shanghai"
    assert config.http.timeout == 20.0
    assert config.database_url() == f"sqlite:///{REPO / 'monitor.db'}"


# --- monitor check ------------------------------------------------------------------------------------------------


def _check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_check_ok(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    code, out, err = _check("--config", str(path))
    assert (code, err) == (0, "")
    assert out == f"{path}: OK (2 sources, 1 enabled; database sqlite:///data/monitor.db)\n"


def test_check_repo_config() -> None:
    code, out, _ = _check("--config", str(REPO / "config.yaml"))
    assert code == 0
    assert out.startswith(f"{REPO / 'config.yaml'}: OK (2 sources, 2 enabled;")


def test_check_reads_monitor_config_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = CliRunner().invoke(main, ["check"], env={"MONITOR_CONFIG": str(path)})
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{path}: OK")


def test_check_bad_file_prints_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    case = BAD_CONFIGS / "several_problems.yaml"
    monkeypatch.delenv("MONITOR_TEST_COOKIE", raising=False)
    code, out, err = _check("--config", str(case))
    problems = expected_problems(case)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"{case}: {len(problems)} problem(s)", *(f"  - {p}" for p in problems)]


def test_check_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    code, out, err = _check("--config", str(missing))
    assert code == 2
    assert out == ""
    assert f"file not found: {missing}" in err
    assert "copy the example config.yaml" in err
