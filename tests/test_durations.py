"""parse_duration / format_duration: units, combinations, numbers, bad input and the round trip."""

from __future__ import annotations

import pytest

from monitor.durations import format_duration, parse_duration


@pytest.mark.parametrize(("value", "seconds"), [
    (0, 0.0),
    (90, 90.0),
    (2.5, 2.5),
    ("90", 90.0),
    ("2.5", 2.5),
    ("500ms", 0.5),
    ("30s", 30.0),
    ("5m", 300.0),
    ("2h", 7200.0),
    ("2d", 172800.0),
    ("1w", 604800.0),
    ("1.5h", 5400.0),
    ("1h30m", 5400.0),
    ("1d2h3m4s", 93784.0),
    ("1m500ms", 60.5),
    ("5M", 300.0),
    ("  10m  ", 600.0),
    ("1h 30m", 5400.0),
    ("1 h 30 m", 5400.0),
    ("0s", 0.0),
])
def test_parse(value: object, seconds: float) -> None:
    result = parse_duration(value)
    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize("value", [
    True, False, None, [], {}, b"5m", -1, -0.5, float("nan"), float("inf"), float("-inf"),
    "", "   ", "5 minutes", "5min", "five", "m5", "1m30", "-5s", "-5", "5x", "h", "1h-30m", "1e3", "5s!",
])
def test_parse_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(value)


def test_parse_error_says_how_to_write_it() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("5 minutes")
    assert str(info.value) == "cannot read duration '5 minutes'; write it like 30s, 5m, 1h30m or 2d"


def test_bool_is_not_a_number_of_seconds() -> None:
    # bool is an int subclass: True must not silently mean one second.
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(True)


def test_negative_number_message() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(-30)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"),
    (0.4, "0s"),
    (1, "1s"),
    (59.6, "1m"),
    (60, "1m"),
    (90, "1m30s"),
    (3600, "1h"),
    (3723, "1h2m3s"),
    (86400, "1d"),
    (90061, "1d1h1m1s"),
    (604800, "7d"),
    (86400 + 5, "1d5s"),
    (-90, "-1m30s"),
])
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [*range(0, 200), 3599, 3600, 3601, 86399, 86400, 90061, 10**7])
def test_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
