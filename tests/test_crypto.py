"""Encryption at rest of tickets' personal fields (monitor/crypto.py): the cipher itself, tickets in the database
(raw columns hold no phone number, the queue and the CLI read plaintext), old plaintext rows, encrypting them in
place, and the start-up checks of ``monitor run`` / ``monitor serve``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update

from alerts.queue import TicketQueue
from monitor import crypto
from monitor.cli import main
from monitor.crypto import PREFIX, DataKeyError, FieldCipher, cipher_for, new_key, parse_key
from monitor.db.schema import tickets
from tests.test_queue_store import T0, add_posts, make_config, new_engine

KEY = new_key()
OTHER_KEY = new_key()
PHONE = "13812345678"


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    """The once-per-process log marks start empty in every test."""
    crypto._warned_no_key.clear()
    crypto._logged_failures.clear()
    yield
    crypto._warned_no_key.clear()
    crypto._logged_failures.clear()


def cipher(key: str = KEY) -> FieldCipher:
    return FieldCipher(parse_key(key))


# -- the cipher ----------------------------------------------------------------------------------------------------

def test_round_trip_and_format() -> None:
    """enc1: + base64(12-byte nonce ‖ ciphertext ‖ 16-byte tag); a fresh nonce each time; decrypts back."""
    c = cipher()
    sealed = c.encrypt("content", f"电话{PHONE}，要求退款")
    assert sealed is not None and sealed.startswith(PREFIX) and PHONE not in sealed
    raw = base64.b64decode(sealed[len(PREFIX):])
    assert len(raw) == 12 + len(f"电话{PHONE}，要求退款".encode()) + 16
    assert c.encrypt("content", "x") != c.encrypt("content", "x")
    assert c.decrypt("content", sealed) == f"电话{PHONE}，要求退款"
    assert c.encrypt("content", "") == "" and c.encrypt("content", None) is None


def test_wrong_key_reads_as_a_placeholder_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Never an exception: the value reads as the hint, logged once per column, without the value."""
    sealed = cipher().encrypt("demand", "退款")
    assert sealed is not None
    wrong = cipher(OTHER_KEY)
    with caplog.at_level(logging.ERROR, logger="monitor.privacy"):
        assert wrong.decrypt("demand", sealed) == "[无法解密：检查 MONITOR_DATA_KEY]"
        assert wrong.decrypt("demand", sealed) == "[无法解密：检查 MONITOR_DATA_KEY]"
    failures = [r for r in caplog.records if r.getMessage() == "privacy.decrypt_failed"]
    assert len(failures) == 1 and sealed not in caplog.text
    assert FieldCipher(None).decrypt("demand", sealed) == "[无法解密：检查 MONITOR_DATA_KEY]"  # no key at all
    assert wrong.decrypt("demand", PREFIX + "!!not base64!!") == "[无法解密：检查 MONITOR_DATA_KEY]"


def test_associated_data_binds_the_column() -> None:
    """A ciphertext copied into another column does not decrypt there."""
    c = cipher()
    sealed = c.encrypt("complainant", "张三")
    assert c.decrypt("complainant", sealed) == "张三"
    assert c.decrypt("content", sealed) == c.unreadable


def test_plaintext_passes_through() -> None:
    """Rows written before the key (no prefix) read as they are, with or without a key."""
    for c in (cipher(), FieldCipher(None)):
        assert c.decrypt("content", "明文内容") == "明文内容"
        assert c.decrypt_json("evidence", ["https://a.example/1"]) == ["https://a.example/1"]
        assert c.decrypt_json("evidence", None) is None
    assert FieldCipher(None).encrypt("content", "明文") == "明文"


def test_evidence_list_is_one_encrypted_element() -> None:
    """The JSON column holds ["enc1:..."]: valid JSON everywhere, a list for naive readers."""
    c = cipher()
    links = ["https://weibo.example/1?phone=13812345678", "https://tieba.example/2"]
    sealed = c.encrypt_json("evidence", links)
    assert isinstance(sealed, list) and len(sealed) == 1 and sealed[0].startswith(PREFIX)
    assert c.decrypt_json("evidence", sealed) == links
    assert cipher(OTHER_KEY).decrypt_json("evidence", sealed) == ["[无法解密：检查 MONITOR_DATA_KEY]"]


def test_complainant_ciphertext_fits_its_column() -> None:
    """VARCHAR(255): the plaintext is cut (at a character) so the ciphertext fits."""
    c = cipher()
    long_name = "很长的用户名" * 30
    sealed = c.encrypt("complainant", long_name)
    assert sealed is not None and len(sealed) <= 255
    back = c.decrypt("complainant", sealed)
    assert back is not None and long_name.startswith(back) and len(back.encode()) <= crypto.COMPLAINANT_PLAIN_BYTES


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_key_is_an_error(bad: str) -> None:
    with pytest.raises(DataKeyError, match="new-key"):
        parse_key(bad)


def test_no_key_warns_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Without a key: pass-through and one privacy.no_key warning with a hint."""
    monkeypatch.delenv("MONITOR_DATA_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="monitor.privacy"):
        assert not cipher_for(make_config()).enabled
        assert not cipher_for(make_config()).enabled
    warned = [r for r in caplog.records if r.getMessage() == "privacy.no_key"]
    assert len(warned) == 1 and "new-key" in str(warned[0].__dict__.get("fields"))


# -- tickets in the database ---------------------------------------------------------------------------------------

def portal_ticket(engine: Engine, author: str = "消费者A", text: str = f"澄星热水器漏水，电话{PHONE}，要求退款") -> int:
    """One complaint-portal ticket whose content, demand and evidence carry a phone number."""
    add_posts(engine, "heimao", [{"id": "17", "title": "澄星热水器漏水", "text": text, "author": author,
                                  "url": f"https://heimao.example/17?tel={PHONE}",
                                  "extra": {"demand": f"退款，回电{PHONE}"}}])
    queue = TicketQueue(engine, make_config(portal={"sources": ["heimao"], "watches": ["acme"]}))
    with engine.begin() as conn:
        row = conn.execute(select(tickets.c.id)).first()
        assert row is None
        from monitor.db.schema import posts, sources

        post = conn.execute(select(posts, sources.c.name.label("source_name"))
                            .join(sources, posts.c.source_id == sources.c.id)).one()
        got = queue.open_for_post(conn, post, T0)
    assert got is not None
    return got


def raw_row(engine: Engine, ticket_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(tickets).where(tickets.c.id == ticket_id)).one()._mapping)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = new_engine(db_url)
    yield eng
    eng.dispose()


def test_tickets_are_encrypted_in_the_database_and_plaintext_in_the_queue(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a key: the raw columns hold no phone number, on both backends; Ticket fields are plaintext."""
    monkeypatch.setenv("MONITOR_DATA_KEY", KEY)
    tid = portal_ticket(engine, author="很长的消费者昵称" * 20)
    raw = raw_row(engine, tid)
    for name in ("complainant", "content", "demand"):
        assert str(raw[name]).startswith(PREFIX), name
    assert isinstance(raw["evidence"], list) and raw["evidence"][0].startswith(PREFIX)
    assert PHONE not in repr(raw) and "消费者" not in repr(raw)
    t = TicketQueue(engine, make_config()).get(tid, now=T0)
    assert t is not None
    assert PHONE in t.content and PHONE in t.demand and t.evidence == (f"https://heimao.example/17?tel={PHONE}",)
    assert t.complainant.startswith("很长的消费者昵称")
    # Another key: the page still renders, with the hint in place of each field.
    monkeypatch.setenv("MONITOR_DATA_KEY", OTHER_KEY)
    t = TicketQueue(engine, make_config()).get(tid, now=T0)
    assert t is not None and t.content == "[无法解密：检查 MONITOR_DATA_KEY]"
    assert t.evidence == ("[无法解密：检查 MONITOR_DATA_KEY]",)


def test_without_a_key_tickets_are_plaintext_and_keep_working_after_one_is_set(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old rows (no prefix) read as they are once a key is set; new rows beside them are encrypted."""
    monkeypatch.delenv("MONITOR_DATA_KEY", raising=False)
    tid = portal_ticket(engine)
    assert PHONE in raw_row(engine, tid)["content"]
    monkeypatch.setenv("MONITOR_DATA_KEY", KEY)
    t = TicketQueue(engine, make_config()).get(tid, now=T0)
    assert t is not None and PHONE in t.content and t.complainant == "消费者A"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    db = tmp_path / "m.db"
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {{url: 'sqlite:///{db}'}}\nalerts: {{console_url: 'https://c.example'}}\n"
                    + extra, encoding="utf-8")
    return path


def test_encrypt_existing_and_the_cli_reads_plaintext(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`monitor privacy encrypt-existing` encrypts old rows in place (idempotent); `monitor tickets show` shows
    them decrypted."""
    monkeypatch.delenv("MONITOR_DATA_KEY", raising=False)
    path = write_config(tmp_path)
    engine = new_engine(f"sqlite:///{tmp_path / 'm.db'}")
    tid = portal_ticket(engine)
    runner = CliRunner()
    refused = runner.invoke(main, ["privacy", "encrypt-existing", "--config", str(path)], env={"MONITOR_DATA_KEY": ""})
    assert refused.exit_code == 2 and "new-key" in refused.output
    done = runner.invoke(main, ["privacy", "encrypt-existing", "--config", str(path)], env={"MONITOR_DATA_KEY": KEY})
    assert done.exit_code == 0, done.output
    assert "1 ticket(s)" in done.output
    raw = raw_row(engine, tid)
    assert PHONE not in repr(raw) and raw["content"].startswith(PREFIX)
    again = runner.invoke(main, ["privacy", "encrypt-existing", "--config", str(path)], env={"MONITOR_DATA_KEY": KEY})
    assert "encrypted the personal fields of 0 ticket(s)" in again.output
    assert raw_row(engine, tid)["content"] == raw["content"]
    shown = runner.invoke(main, ["tickets", "show", str(tid), "--config", str(path)],
                          env={"MONITOR_DATA_KEY": KEY, "USER": "t"})
    assert shown.exit_code == 0, shown.output
    assert PHONE in shown.output and "消费者A" in shown.output
    engine.dispose()


def test_a_ticket_written_with_a_key_is_not_reencrypted_by_an_update(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Actions (move, note ...) leave the personal columns as they are."""
    monkeypatch.setenv("MONITOR_DATA_KEY", KEY)
    tid = portal_ticket(engine)
    before = raw_row(engine, tid)
    TicketQueue(engine, make_config()).note(tid, f"已回电 {PHONE}", actor="amy", now=T0)
    after = raw_row(engine, tid)
    assert {k: after[k] for k in crypto.TICKET_FIELDS} == {k: before[k] for k in crypto.TICKET_FIELDS}
    with engine.begin() as conn:  # a raw column still reads, whatever else wrote it
        conn.execute(update(tickets).where(tickets.c.id == tid).values(demand="明文诉求"))
    t = TicketQueue(engine, make_config()).get(tid, now=T0)
    assert t is not None and t.demand == "明文诉求"


@pytest.mark.parametrize("command", ["run", "serve"])
def test_require_key_stops_run_and_serve(tmp_path: Path, command: str) -> None:
    """privacy.require_key without the key, or a malformed key: exit 2 with what to do; nothing starts."""
    path = write_config(tmp_path, "privacy: {require_key: true}\n")
    got = CliRunner().invoke(main, [command, "--config", str(path)], env={"MONITOR_DATA_KEY": ""})
    assert got.exit_code == 2
    assert "require_key" in got.output and "MONITOR_DATA_KEY" in got.output and "new-key" in got.output
    path = write_config(tmp_path)
    got = CliRunner().invoke(main, [command, "--config", str(path)], env={"MONITOR_DATA_KEY": "c2hvcnQ="})
    assert got.exit_code == 2 and "not 32" in got.output


def test_new_key_prints_32_bytes() -> None:
    got = CliRunner().invoke(main, ["privacy", "new-key"])
    assert got.exit_code == 0 and len(base64.b64decode(got.output.strip())) == 32
