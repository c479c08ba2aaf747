"""The data-key guard in front of `monitor run`/`serve` reads the config once and hands it to the command."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import monitor.config as config_module
from monitor.cli_common import _load, config_option
from monitor.privacy_cli import guard_key


def test_guarded_command_reads_the_config_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path}/m.db'}}\nsources: []\n", encoding="utf-8")
    reads: list[str] = []
    real = config_module.load_config

    def counting(path: str) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(config_module, "load_config", counting)
    seen: list[object] = []

    @click.group()
    def group() -> None:
        """A stand-in for the monitor command group."""

    @group.command("run")
    @config_option
    def run(config_path: str) -> None:
        seen.append(_load(config_path))
        seen.append(_load(config_path))  # a second load in the same command reads the file again

    guard_key(group, ("run",))
    result = CliRunner().invoke(group, ["run", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert len(reads) == 2, "the guard's load is handed over; only the command's own second load reads again"
    assert seen[0] is not seen[1]
    # Nothing is left over for the next command.
    result = CliRunner().invoke(group, ["run", "--config", str(cfg)])
    assert result.exit_code == 0 and len(reads) == 4
