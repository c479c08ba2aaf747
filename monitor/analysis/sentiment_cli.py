"""``monitor sentiment``: score texts from stdin or a file, one JSON object per line on stdout."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import IO

import click

from monitor.cli_common import _fail


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """Decoded lines without their line ending; a UTF-8 BOM at the start and undecodable bytes are tolerated."""
    first = True
    for raw in stream:
        line = raw.decode("utf-8", errors="replace")
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line.rstrip("\r\n")


def _batches(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@click.command("sentiment")
@click.option("--input", "-i", "input_path", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="File with one text per line (UTF-8); '-' reads standard input.")
@click.option("--backend", "-b", "backend_name", default="weibo", show_default=True,
              help="Sentiment backend: weibo (the shipped Weibo model) or snownlp (needs monitor[snownlp]).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Texts scored at a time; output is written after each batch.")
def sentiment_command(input_path: str, backend_name: str, batch_size: int) -> None:
    """Score the sentiment of texts: one text per input line, one JSON object per output line, in input order.

    Each output line is {"text": ..., "negative": P, "label": ...}, where P is the probability that the text is
    negative (0-1) and label is negative, neutral or positive. Empty lines score 0.5 (neutral).
    """
    from monitor.analysis.sentiment import get_backend, label_for

    try:
        backend = get_backend(backend_name)
    except ValueError as exc:
        _fail(f"error: {exc}")

    if input_path == "-":
        stream: IO[bytes] = sys.stdin.buffer
        close = False
    else:
        try:
            stream = open(input_path, "rb")  # noqa: SIM115 - closed in the finally below
        except OSError as exc:
            _fail(f"error: cannot read {input_path}: {exc.strerror or exc}")
        close = True
    out = sys.stdout.buffer  # UTF-8 whatever the locale says
    try:
        for batch in _batches(_lines(stream), batch_size):
            scores = backend.score(batch)
            out.write("".join(
                json.dumps({"text": text, "negative": round(p, 4), "label": label_for(p)}, ensure_ascii=False) + "\n"
                for text, p in zip(batch, scores, strict=True)
            ).encode("utf-8", errors="surrogateescape"))
            out.flush()
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        _quiet_stdout()
        sys.exit(0)
    except OSError as exc:
        _fail(f"error: cannot read {input_path}: {exc.strerror or exc}")
    finally:
        if close:
            stream.close()
