"""The documentation stays true: every config key is documented, and the README's commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from monitor.config import Config
from monitor.registry import get_kind, known_kinds

ROOT = Path(__file__).resolve().parents[1]


def _keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _keys(ann)
    return keys


def test_every_config_key_is_documented() -> None:
    """Each key of the config models, and of every source kind, appears in docs/configuration.md."""
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    keys = _keys(Config)
    for kind in known_kinds():
        keys |= _keys(get_kind(kind).config_model)
        assert f"type: {kind}" in doc, f"source kind {kind} has no section in docs/configuration.md"
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert missing == [], f"undocumented config keys: {missing}"


def test_every_channel_key_is_documented() -> None:
    """Each key of every channel kind appears in docs/channels.md, under a section naming the kind."""
    from alerts.channels import BUILTIN_CHANNELS, get_channel_kind

    doc = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
    missing = []
    for kind in BUILTIN_CHANNELS:
        assert f"type: {kind}" in doc, f"channel kind {kind} has no section in docs/channels.md"
        missing += [f"{kind}.{k}" for k in _keys(get_channel_kind(kind).config_model) if f"`{k}`" not in doc]
    assert missing == [], f"undocumented channel keys: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    """The test command in .ci/run is written in the README."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    line = next(ln for ln in ci.splitlines() if ln.startswith("TEST_CMD="))
    command = line.split("=", 1)[1].strip('"')
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
