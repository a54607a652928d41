"""Time helpers: every timestamp inside ml4t is an ``int`` of nanoseconds since the epoch, UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ml4t.backtest.errors import TimeFormatError

__all__ = [
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "NS_PER_MINUTE",
    "NS_PER_SECOND",
    "from_ns",
    "parse_duration",
    "to_ns",
]

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": NS_PER_MINUTE,
    "min": NS_PER_MINUTE,
    "h": NS_PER_HOUR,
    "d": NS_PER_DAY,
    "w": 7 * NS_PER_DAY,
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|min|s|m|h|d|w)\s*")


def to_ns(value: datetime | str | int) -> int:
    """Convert an aware datetime, an ISO-8601 string or nanoseconds to UTC nanoseconds.

    Naive datetimes are refused: ml4t never guesses a timezone.
    """
    if isinstance(value, bool):
        raise TimeFormatError("a bool is not a timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise TimeFormatError(
                f"cannot parse timestamp {value!r} ({exc}); expected ISO-8601 with a "
                "timezone, e.g. '2024-03-01T14:30:00+00:00'"
            ) from None
    if not isinstance(value, datetime):
        raise TimeFormatError(f"cannot convert {type(value).__name__} to a timestamp")
    if value.tzinfo is None or value.utcoffset() is None:
        raise TimeFormatError(
            f"naive datetime {value.isoformat()} has no timezone; attach one "
            "(e.g. datetime(..., tzinfo=UTC)) so ml4t knows which instant it means"
        )
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """UTC-aware datetime for nanoseconds since the epoch (sub-microsecond digits dropped)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)


def parse_duration(value: str | int | timedelta) -> int:
    """Parse ``"5m"``, ``"16h"``, ``"1d 2h"``, ``"250ms"``, a timedelta or ns into nanoseconds."""
    if isinstance(value, bool):
        raise TimeFormatError("a bool is not a duration")
    if isinstance(value, int):
        return value
    if isinstance(value, timedelta):
        return (value.days * 86_400 + value.seconds) * NS_PER_SECOND + value.microseconds * 1_000
    if not isinstance(value, str):
        raise TimeFormatError(
            f"cannot convert {type(value).__name__} to a duration; give e.g. '5m', a "
            "timedelta or integer nanoseconds"
        )
    pos = 0
    total = 0
    text = value.strip()
    if not text:
        raise TimeFormatError("empty duration; expected e.g. '5m', '16h' or '1d'")
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            raise TimeFormatError(
                f"cannot parse duration {value!r}; expected a number and a unit "
                f"({', '.join(_UNITS)}), e.g. '5m', '16h', '1d 2h'"
            )
        total += round(float(match.group(1)) * _UNITS[match.group(2)])
        pos = match.end()
    return total
