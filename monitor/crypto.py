"""Field-level encryption at rest for tickets' personal fields (complainant, content, demand, evidence).

AES-256-GCM (the ``cryptography`` package) with a 32-byte key read from the environment variable named by
``privacy.key_env`` (default ``MONITOR_DATA_KEY``, base64). A value is stored as ``enc1:`` + base64(nonce ‖
ciphertext+tag) in the column it always lived in, with the column's name as associated data: a ciphertext copied
into another column does not decrypt there. ``enc1`` names the format, so a later one can sit beside it.

Why this shape:

* **No schema change**: ciphertext is text, so the Text/String columns keep their types; the JSON column
  ``evidence`` holds a one-element list ``["enc1:..."]`` (valid JSON on SQLite and PostgreSQL, and a naive reader
  still sees a list of strings).
* **Plaintext keeps working**: a value without the prefix is plaintext (rows written before a key was set, or by a
  process without one) and is read as it is; ``monitor privacy encrypt-existing`` encrypts them in place.
* **A page never crashes on a wrong key**: a value that does not decrypt reads as :data:`UNREADABLE` (logged once
  per column per process, never with the value).

``complainant`` is ``VARCHAR(255)``: PostgreSQL enforces the length, so its plaintext is cut to
:data:`COMPLAINANT_PLAIN_BYTES` UTF-8 bytes before encryption (about 52 Chinese characters: three handles and
"等N人" fit). Widening the column would lift that limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import threading
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from monitor.errors import MonitorError
from monitor.logs import event

if TYPE_CHECKING:
    from monitor.config import Config

log = logging.getLogger("monitor.privacy")

PREFIX = "enc1:"
NONCE_BYTES = 12
KEY_BYTES = 32
#: The tickets columns holding personal data, encrypted when a key is set.
TICKET_FIELDS = ("complainant", "content", "demand", "evidence")
#: The most plaintext bytes of ``complainant`` whose ciphertext fits its VARCHAR(255).
COMPLAINANT_PLAIN_BYTES = (255 - len(PREFIX)) // 4 * 3 - NONCE_BYTES - 16
#: Shown instead of a value that does not decrypt (a wrong or missing key); ``{env}`` is the key's variable.
UNREADABLE = "[无法解密：检查 {env}]"

_lock = threading.Lock()
_warned_no_key: set[str] = set()
_logged_failures: set[str] = set()


class DataKeyError(MonitorError):
    """The key variable is set but is not base64 of 32 bytes."""


def new_key() -> str:
    """A fresh random key, base64 (what ``monitor privacy new-key`` prints)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_key(text: str, env: str = "MONITOR_DATA_KEY") -> bytes:
    """The 32 key bytes from their base64 text; :class:`DataKeyError` saying what is wrong otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{env} is not valid base64; make a key with `monitor privacy new-key`") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(f"{env} holds {len(raw)} bytes, not {KEY_BYTES}; make a key with `monitor privacy new-key`")
    return raw


def is_encrypted(value: Any) -> bool:
    """Whether a stored value (text, or the evidence list) is in the encrypted format."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return isinstance(value, str) and value.startswith(PREFIX)


class FieldCipher:
    """Encrypts and decrypts column values with one key (or passes them through when there is none)."""

    def __init__(self, key: bytes | None, env: str = "MONITOR_DATA_KEY") -> None:
        self.key = key
        self.env = env
        self._aead = AESGCM(key) if key is not None else None

    @property
    def enabled(self) -> bool:
        """Whether values are encrypted on write."""
        return self._aead is not None

    @property
    def unreadable(self) -> str:
        """What an undecryptable value reads as."""
        return UNREADABLE.format(env=self.env)

    # -- text columns ------------------------------------------------------------------------------------------------
    def encrypt(self, column: str, value: str | None) -> str | None:
        """``value`` encrypted for ``column`` (None and "" stay as they are: there is nothing to protect)."""
        if self._aead is None or not value or value.startswith(PREFIX):
            return value
        if column == "complainant":
            value = _cut_bytes(value, COMPLAINANT_PLAIN_BYTES)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), column.encode("utf-8"))
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, column: str, value: str | None) -> str | None:
        """The plaintext of a stored value (plaintext passes through; a failure reads as :attr:`unreadable`)."""
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return value
        if self._aead is None:
            self._failed(column, "no key")
            return self.unreadable
        try:
            raw = base64.b64decode(value[len(PREFIX):], validate=True)
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode("utf-8"))
            return plain.decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            self._failed(column, "wrong key or damaged value")
            return self.unreadable

    # -- the JSON column (evidence: a list of links) ----------------------------------------------------------------
    def encrypt_json(self, column: str, value: list[str] | None) -> list[str] | None:
        """A list encrypted as a one-element list holding the ciphertext of its JSON text."""
        if self._aead is None or not value or is_encrypted(value):
            return value
        sealed = self.encrypt(column, json.dumps(list(value), ensure_ascii=False))
        return [sealed] if sealed is not None else None

    def decrypt_json(self, column: str, value: Any) -> list[str] | None:
        """The list back (plaintext lists pass through; a failure reads as ``[unreadable]``)."""
        if not is_encrypted(value):
            return list(value) if isinstance(value, list | tuple) else value
        text = self.decrypt(column, value[0] if isinstance(value, list) else value)
        if text is None or text == self.unreadable:
            return [self.unreadable]
        try:
            got = json.loads(text)
        except ValueError:
            self._failed(column, "not JSON after decryption")
            return [self.unreadable]
        return [str(x) for x in got] if isinstance(got, list) else [str(got)]

    # -- rows ----------------------------------------------------------------------------------------------------------
    def encrypt_ticket(self, values: dict[str, Any]) -> dict[str, Any]:
        """Insert/update ``values`` of a tickets row with its personal fields encrypted (others untouched)."""
        out = dict(values)
        for name in ("complainant", "content", "demand"):
            if name in out:
                out[name] = self.encrypt(name, out[name])
        if "evidence" in out:
            out["evidence"] = self.encrypt_json("evidence", out["evidence"])
        return out

    def decrypt_ticket(self, row: Any) -> dict[str, Any]:
        """A tickets row (Row or mapping) as a dict with its personal fields in plaintext."""
        data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
        for name in ("complainant", "content", "demand"):
            if name in data:
                data[name] = self.decrypt(name, data[name])
        if "evidence" in data:
            data["evidence"] = self.decrypt_json("evidence", data["evidence"])
        return data

    def _failed(self, column: str, why: str) -> None:
        with _lock:
            if column in _logged_failures:
                return
            _logged_failures.add(column)
        event(log, "privacy.decrypt_failed", logging.ERROR, column=column, reason=why,
              hint=f"the value is shown as {self.unreadable}; set {self.env} to the key the data was written with")


def cipher_for(config: Config | None) -> FieldCipher:
    """The cipher for ``config.privacy.key_env`` as the environment holds it now (no key: pass-through, with the
    ``privacy.no_key`` warning logged once per process). A malformed key raises :class:`DataKeyError`."""
    env = config.privacy.key_env if config is not None else "MONITOR_DATA_KEY"
    text = os.environ.get(env, "").strip()
    if not text:
        warn_no_key(env)
        return FieldCipher(None, env)
    return _cipher(env, text)


_cache: dict[tuple[str, str], FieldCipher] = {}


def _cipher(env: str, text: str) -> FieldCipher:
    with _lock:
        got = _cache.get((env, text))
        if got is None:
            got = _cache[(env, text)] = FieldCipher(parse_key(text, env), env)
        return got


def warn_no_key(env: str) -> None:
    """Log ``privacy.no_key`` once per process (tickets are then stored in plaintext)."""
    with _lock:
        if env in _warned_no_key:
            return
        _warned_no_key.add(env)
    event(log, "privacy.no_key", logging.WARNING, env=env,
          hint=f"tickets' personal fields are stored in plaintext; set {env} to the output of "
               "`monitor privacy new-key` (keep it out of the config file) and run "
               "`monitor privacy encrypt-existing`")


def check_key(config: Config) -> str | None:
    """At start: the problem with the key that must stop the process (malformed, or missing while
    ``privacy.require_key``), else None (a missing key is warned about once)."""
    env = config.privacy.key_env
    text = os.environ.get(env, "").strip()
    if not text:
        if config.privacy.require_key:
            return (f"privacy.require_key is set but {env} is empty: tickets' personal data would be stored "
                    f"unencrypted. Set {env} to the key (make one with `monitor privacy new-key`).")
        warn_no_key(env)
        return None
    try:
        _cipher(env, text)
    except DataKeyError as exc:
        return str(exc)
    return None


def _cut_bytes(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", errors="ignore")
