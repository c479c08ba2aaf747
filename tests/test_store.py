"""Storage on SQLite and PostgreSQL: migrations match the schema, runs are atomic, sources sync with the config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from monitor.db import Store, make_engine, upgrade
from monitor.db.migrate import HEAD, current_revision, head_revision
from monitor.db.schema import metadata, posts
from monitor.db.store import BLOCKED, FAILING, NEW, OK, REMOVED
from monitor.errors import StorageError
from monitor.normalize import Post, content_hash

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _post(native_id: str, text_: str = "内容", source: str = "a", at: datetime = T0) -> Post:
    return Post(source=source, native_id=native_id, text=text_, fetched_at=at, published_at=at,
                title="标题", content_hash=content_hash("标题", text_), extra={"k": "值"})


@pytest.fixture
def store(db_url: str) -> Store:
    """A migrated, empty store on each backend."""
    engine = make_engine(db_url)
    upgrade(engine)
    return Store(engine)


def test_migrations_match_schema(db_url: str) -> None:
    """The Alembic migrations create exactly the tables the code declares (no drift between schema.py and them)."""
    engine = make_engine(db_url)
    upgrade(engine, fast=False)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []
    assert current_revision(engine) == head_revision() == HEAD
    assert {"sources", "posts", "source_runs", "incidents"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_fast_path_stamps_head_without_migrating(store: Store) -> None:
    """An empty database gets schema.py's tables stamped at the head; Alembic then sees nothing to do."""
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


def test_upgrade_from_first_revision_keeps_data(db_url: str) -> None:
    """A database at 0001 with posts in it is migrated to the head by Alembic, its rows intact."""
    engine = make_engine(db_url)
    upgrade(engine, "0001", fast=False)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sources (name, type, created_at, updated_at) VALUES ('a', 'rss', :t, :t)"),
                     {"t": T0.replace(tzinfo=None)})
        conn.execute(text("INSERT INTO posts (source_id, native_id, published_at, fetched_at, content_hash) "
                          "VALUES (1, 'x', :t, :t, 'h')"), {"t": T0.replace(tzinfo=None)})
    upgrade(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        row = conn.execute(text("SELECT native_id, analysed_at FROM posts")).one()
    assert tuple(row) == ("x", None)
    engine.dispose()


def test_upgrade_is_idempotent(store: Store) -> None:
    """Running migrations again on an up-to-date database changes nothing."""
    upgrade(store.engine)
    assert current_revision(store.engine) == head_revision()


def test_a_failed_create_leaves_no_half_schema(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first start that dies after some CREATE TABLEs (here: an error before the stamp) leaves no tables behind."""
    engine = make_engine(db_url)

    def die(*_a: object, **_k: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(metadata, "create_all", lambda conn: (metadata.tables["sources"].create(conn), die()))
    with pytest.raises(RuntimeError, match="killed"):
        upgrade(engine)
    assert inspect(engine).get_table_names() == []
    monkeypatch.undo()
    upgrade(engine)
    assert current_revision(engine) == HEAD
    engine.dispose()


def test_an_unstamped_empty_half_schema_is_rebuilt(db_url: str) -> None:
    """Tables an older monitor left half-created (empty, no alembic_version) are dropped and made afresh."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        metadata.tables["sources"].create(conn)
        metadata.tables["source_runs"].create(conn)
    upgrade(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    engine.dispose()


def test_an_unstamped_database_with_rows_is_refused(db_url: str) -> None:
    """Rows in tables without a schema revision are never dropped: the error says what to do."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        metadata.tables["sources"].create(conn)
        conn.execute(text("INSERT INTO sources (name, type, created_at, updated_at) VALUES ('a', 'rss', :t, :t)"),
                     {"t": T0.replace(tzinfo=None)})
    with pytest.raises(StorageError, match=r"no schema revision.*rows in sources.*database\.url"):
        upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sources")).scalar() == 1
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    """The embedded default uses WAL so readers never block the daemon."""
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_missing_sqlite_folder_is_a_clear_error(tmp_path: object) -> None:
    """A database path in a folder that does not exist says so."""
    with pytest.raises(StorageError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path}/nope/monitor.db")


def test_commit_run_stores_each_post_once_with_cursor(store: Store) -> None:
    """New posts are stored once; repeats in a batch and across runs are not; the cursor moves with them."""
    store.sync_sources([("a", "rss", "d1")], T0)
    first = store.commit_run("a", [_post("1"), _post("2"), _post("1")], {"etag": "v1"}, started_at=T0,
                             finished_at=T0, pages=1)
    assert (first.new, first.updated) == (2, 0)
    assert [p.native_id for p in first.new_posts] == ["1", "2"]
    again = store.commit_run("a", [_post("2"), _post("3")], {"etag": "v2"}, started_at=T0, finished_at=T0, pages=1)
    assert (again.new, again.updated) == (1, 0)
    assert store.count_posts("a") == 3
    state = store.source_state("a")
    assert state.cursor == {"etag": "v2"} and state.status == OK
    health = {h.name: h for h in store.health()}
    assert health["a"].posts_total == 3


def test_edited_post_is_updated_not_duplicated(store: Store) -> None:
    """A post whose text changed (a complaint marked 已完成) is updated in place and counted as updated."""
    store.sync_sources([("a", "rss", "d1")], T0)
    store.commit_run("a", [_post("1", "处理中")], {}, started_at=T0, finished_at=T0, pages=1)
    later = T0 + timedelta(hours=1)
    summary = store.commit_run("a", [_post("1", "已完成")], {}, started_at=later, finished_at=later, pages=1)
    assert (summary.new, summary.updated) == (0, 1)
    [stored] = store.recent_posts(source="a")
    assert stored.text == "已完成" and stored.fetched_at == T0 and stored.extra == {"k": "值"}


def test_same_native_id_in_two_sources_is_two_posts(store: Store) -> None:
    """Uniqueness is per source and native id."""
    store.sync_sources([("a", "rss", "d"), ("b", "rss", "d")], T0)
    store.commit_run("a", [_post("1")], {}, started_at=T0, finished_at=T0, pages=1)
    store.commit_run("b", [_post("1", source="b")], {}, started_at=T0, finished_at=T0, pages=1)
    assert store.count_posts() == 2
    assert {p.uid for p in store.recent_posts()} == {"a:1", "b:1"}


def test_failed_commit_stores_nothing(store: Store) -> None:
    """Posts and cursor are one transaction: a failure half-way leaves neither."""
    store.sync_sources([("a", "rss", "d")], T0)
    bad = Post(source="a", native_id="x", text="t", fetched_at=T0, published_at=T0.replace(tzinfo=None),
               content_hash="h")  # naive time: the UTC column type refuses it mid-transaction
    with pytest.raises(Exception, match="naive datetime"):
        store.commit_run("a", [_post("ok"), bad], {"etag": "new"}, started_at=T0, finished_at=T0, pages=1)
    assert store.count_posts() == 0
    assert store.source_state("a").cursor == {}


def test_failures_count_up_and_success_resets(store: Store) -> None:
    """Health records consecutive failures, the error and the next attempt; a success clears them."""
    store.sync_sources([("a", "rss", "d")], T0)
    nxt = T0 + timedelta(minutes=10)
    assert store.record_failure("a", "HTTP 500", status=FAILING, started_at=T0, finished_at=T0,
                                next_attempt_at=None) == 1
    assert store.record_failure("a", "HTTP 403", status=BLOCKED, started_at=T0, finished_at=T0,
                                next_attempt_at=nxt) == 2
    state = store.source_state("a")
    assert (state.status, state.consecutive_failures, state.next_attempt_at) == (BLOCKED, 2, nxt)
    assert store.health()[0].last_error == "HTTP 403"
    store.commit_run("a", [], {}, started_at=T0, finished_at=T0, pages=1)
    state = store.source_state("a")
    assert (state.status, state.consecutive_failures, state.next_attempt_at) == (OK, 0, None)


def test_sync_sources_adds_marks_removed_and_revives(store: Store) -> None:
    """Sources follow the config: new ones appear, dropped ones are marked removed (posts kept), re-added revive."""
    store.sync_sources([("a", "rss", "d"), ("b", "rss", "d")], T0)
    store.commit_run("b", [_post("1", source="b")], {"etag": "x"}, started_at=T0, finished_at=T0, pages=1)
    store.sync_sources([("a", "rss", "d")], T0)
    assert [h.name for h in store.health()] == ["a"]
    assert {h.name: h.status for h in store.health(include_removed=True)} == {"a": NEW, "b": REMOVED}
    assert store.count_posts("b") == 1
    store.sync_sources([("a", "rss", "d"), ("b", "rss", "d2")], T0)
    state = store.source_state("b")
    assert state.status == NEW and state.cursor == {"etag": "x"}


def test_type_change_resets_cursor(store: Store) -> None:
    """A source whose kind changed starts with an empty cursor (kinds read cursors differently)."""
    store.sync_sources([("a", "rss", "d")], T0)
    store.commit_run("a", [], {"etag": "x"}, started_at=T0, finished_at=T0, pages=1)
    store.sync_sources([("a", "other", "d")], T0)
    assert store.source_state("a").cursor == {}


def test_times_round_trip_as_aware_utc(store: Store) -> None:
    """Times go in aware and come back aware UTC on both backends."""
    store.sync_sources([("a", "rss", "d")], T0)
    local = datetime(2026, 11, 20, 16, 0, tzinfo=UTC).astimezone()
    store.commit_run("a", [_post("1", at=local)], {}, started_at=T0, finished_at=T0, pages=1)
    [p] = store.recent_posts()
    assert p.published_at == local and p.published_at.tzinfo == UTC
    with store.engine.connect() as conn:
        assert conn.execute(select(posts.c.published_at)).scalar_one() == local


def test_recent_posts_filters(store: Store) -> None:
    """recent_posts filters by source and time and is newest first."""
    store.sync_sources([("a", "rss", "d"), ("b", "rss", "d")], T0)
    store.commit_run("a", [_post(str(i), at=T0 + timedelta(hours=i)) for i in range(5)], {}, started_at=T0,
                     finished_at=T0, pages=1)
    store.commit_run("b", [_post("9", source="b", at=T0)], {}, started_at=T0, finished_at=T0, pages=1)
    assert [p.native_id for p in store.recent_posts(source="a", limit=3)] == ["4", "3", "2"]
    assert {p.native_id for p in store.recent_posts(since=T0 + timedelta(hours=3))} == {"3", "4"}


def test_unknown_source_is_a_storage_error(store: Store) -> None:
    """Writing for a source that was never synced names it."""
    with pytest.raises(StorageError, match="'ghost'"):
        store.commit_run("ghost", [], {}, started_at=T0, finished_at=T0, pages=0)


def test_prune_runs(store: Store) -> None:
    """The run log is pruned by age."""
    store.sync_sources([("a", "rss", "d")], T0)
    store.commit_run("a", [], {}, started_at=T0, finished_at=T0, pages=1)
    store.commit_run("a", [], {}, started_at=T0 + timedelta(days=10), finished_at=T0, pages=1)
    assert store.prune_runs(T0 + timedelta(days=1)) == 1


def test_annotations_round_trip(store: Store) -> None:
    """save_analysis stores each annotation on its post (SQLite takes a faster path: same values, same storage);
    annotations of unknown sources are skipped."""
    from monitor.analysis.pipeline import Annotation

    store.sync_sources([("a", "rss", "d")], T0)
    store.commit_run("a", [_post(str(i)) for i in range(3)], {}, started_at=T0, finished_at=T0, pages=1)
    later = T0 + timedelta(minutes=5, microseconds=7)
    store.save_analysis([Annotation("a:0", 0.91, "negative", ("*",), "c1", None, "服务", ("维权", "12315")),
                         Annotation("a:1", 0.1, "positive", ("鲸帆", "w2"), "c2", "a:0", None, ()),
                         Annotation("ghost:1", 0.5, "neutral", (), "c3", None, None, ())], [], later)
    cols = (posts.c.native_id, posts.c.negative, posts.c.sentiment, posts.c.watches, posts.c.topic, posts.c.dup_of,
            posts.c.category, posts.c.cues, posts.c.analysed_at)
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*cols).order_by(posts.c.native_id))]
    assert rows == [("0", 0.91, "negative", ["*"], "c1", None, "服务", ["维权", "12315"], later),
                    ("1", 0.1, "positive", ["鲸帆", "w2"], "c2", "a:0", None, None, later),
                    ("2", None, None, None, None, None, None, None, None)]
    assert [p.native_id for p in store.unanalysed_posts()] == ["2"]
    if store.engine.dialect.name == "sqlite":  # stored as the generic path stores them
        with store.engine.connect() as conn:
            raw = conn.execute(text("SELECT watches, cues, analysed_at FROM posts WHERE native_id = '1'")).one()
        assert tuple(raw) == ('["\\u9cb8\\u5e06", "w2"]', "null", "2026-11-20 08:05:00.000007")


def test_new_posts_are_stored_alike_on_every_path(store: Store) -> None:
    """commit_run stores each field of a new post (SQLite takes a faster path: the very bytes the generic insert
    writes, checked against it); a post listed twice, or already stored, is stored once."""
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from monitor.db.store import _post_row

    store.sync_sources([("a", "rss", "d")], T0)
    later = T0 + timedelta(seconds=3, microseconds=250)
    full = Post(source="a", native_id="x", text="正文 <b>", fetched_at=later, published_at=T0 - timedelta(hours=1),
                title="标题", url="https://e.example/x", author="作者", author_id="u1", reposts=3, comments=0,
                likes=None, content_hash="h1", extra={"merchant": "某店", "n": [1, 2]})
    bare = Post(source="a", native_id="y", text="", fetched_at=later, published_at=T0, content_hash="h2")
    store.commit_run("a", [full, bare, full], {}, started_at=T0, finished_at=later, pages=1)
    store.commit_run("a", [full], {}, started_at=T0, finished_at=later, pages=1)
    cols = [posts.c[c] for c in ("native_id", "url", "title", "text", "author", "author_id", "published_at",
                                 "fetched_at", "reposts", "comments", "likes", "content_hash", "extra")]
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*cols).order_by(posts.c.native_id))]
    assert rows == [("x", "https://e.example/x", "标题", "正文 <b>", "作者", "u1", T0 - timedelta(hours=1), later, 3, 0,
                     None, "h1", {"merchant": "某店", "n": [1, 2]}),
                    ("y", "", "", "", "", "", T0, later, None, None, None, "h2", None)]
    if store.engine.dialect.name == "sqlite":
        raw_sql = text("SELECT url, title, text, author, author_id, published_at, fetched_at, reposts, comments, "
                       "likes, content_hash, extra FROM posts WHERE native_id = :n")
        with store.engine.begin() as conn:
            sid = conn.execute(select(posts.c.source_id).limit(1)).scalar_one()
            for p in (full, bare):
                generic = Post(**{**p.__dict__, "native_id": p.native_id + "-generic"})
                conn.execute(sqlite_insert(posts), [_post_row(sid, generic)])
            for n in ("x", "y"):
                fast = tuple(conn.execute(raw_sql, {"n": n}).one())
                assert fast == tuple(conn.execute(raw_sql, {"n": n + "-generic"}).one())


def test_sqlite_stamp_matches_the_column_processor(tmp_path: Path) -> None:
    """The insert's fast time text equals what UTCDateTime and SQLite's DATETIME processor write, for times in any
    offset, with and without microseconds, across years; and refuses a naive time the same way."""
    import random
    from datetime import timezone

    from monitor.db.store import _sqlite_stamp

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    dialect = engine.dialect
    when = posts.c.published_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert when is not None
    rnd = random.Random(5)
    base = datetime(1970, 1, 2, tzinfo=UTC)
    for _ in range(2000):
        tz = timezone(timedelta(minutes=rnd.randrange(-12 * 60, 14 * 60)))
        value = (base + timedelta(seconds=rnd.randrange(0, 4_000_000_000),
                                  microseconds=rnd.choice([0, rnd.randrange(1_000_000)]))).astimezone(tz)
        assert _sqlite_stamp(value) == when(value)
    with pytest.raises(ValueError, match="naive"):
        _sqlite_stamp(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        when(datetime(2026, 1, 1))
