"""Watch rules: a brand, a product line or an executive, as keywords with any / all / none combinations.

A post matches a watch when its title or text contains one of ``any`` (when given), every group of ``all`` (a group is
one keyword or a list of alternatives) and none of ``none``; ``sources`` limits a watch to some sources. Matching is
case-insensitive on text folded to half-width (``ＪＦ手机`` matches ``jf手机``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class WatchConfig(BaseModel):
    """One watch from config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="shown in alerts, e.g. 鲸帆手机")
    any: list[str] = Field(default_factory=list, description="the post mentions at least one of these (aliases)")
    all: list[str | list[str]] = Field(default_factory=list, description="the post mentions each of these; a list "
                                                                         "inside means one of its words")
    none: list[str] = Field(default_factory=list, description="the post mentions none of these (exclusions)")
    sources: list[str] = Field(default_factory=list, description="only posts of these sources (default: all)")

    @model_validator(mode="before")
    @classmethod
    def _keywords_alias(cls, data: object) -> object:
        # `keywords:` reads more naturally for the common case and means the same as `any:`.
        if isinstance(data, dict) and "keywords" in data:
            data = dict(data)
            kw = data.pop("keywords")
            data["any"] = [*(kw if isinstance(kw, list) else [kw]), *data.get("any", [])]
        return data

    @field_validator("any", "none")
    @classmethod
    def _no_empty(cls, v: list[str]) -> list[str]:
        if any(not str(k).strip() for k in v):
            raise ValueError("an empty keyword would match every post; remove it")
        return v

    @model_validator(mode="after")
    def _needs_a_rule(self) -> WatchConfig:
        if not self.any and not self.all:
            raise ValueError(f"watch {self.name!r} needs keywords (any:) or all: groups; "
                             f"without them it would match every post")
        return self


def fold(text: str) -> str:
    """Half-width, lower-case text for matching."""
    return unicodedata.normalize("NFKC", text).lower()


@dataclass(frozen=True)
class _Compiled:
    name: str
    any: tuple[str, ...]
    all: tuple[tuple[str, ...], ...]
    none: tuple[str, ...]
    sources: frozenset[str]


class WatchMatcher:
    """Every watch compiled once; ``match`` gives the names of the watches a post matches."""

    def __init__(self, watches: Sequence[WatchConfig]) -> None:
        self._watches = [
            _Compiled(w.name, tuple(fold(k) for k in w.any),
                      tuple(tuple(fold(k) for k in (g if isinstance(g, list) else [g])) for g in w.all),
                      tuple(fold(k) for k in w.none), frozenset(w.sources))
            for w in watches
        ]

    @property
    def names(self) -> list[str]:
        """The configured watch names, in config order."""
        return [w.name for w in self._watches]

    def match(self, text: str, source: str = "") -> list[str]:
        """Names of the watches ``text`` (title and body) matches."""
        folded = fold(text)
        out = []
        for w in self._watches:
            if w.sources and source not in w.sources:
                continue
            if w.any and not any(k in folded for k in w.any):
                continue
            if not all(any(k in folded for k in group) for group in w.all):
                continue
            if any(k in folded for k in w.none):
                continue
            out.append(w.name)
        return out

    def hits(self, text: str, name: str) -> list[str]:
        """The keywords of watch ``name`` found in ``text`` (for highlighting and reasons)."""
        folded = fold(text)
        for w in self._watches:
            if w.name == name:
                words = [*w.any, *(k for g in w.all for k in g)]
                return [k for k in dict.fromkeys(words) if k in folded]
        return []
