"""Trading days for DAY orders: which day an order was accepted on, which day a bar is of.

A DAY order may fill on the bars of the trading day it was accepted on and on no later
one. Both sides are keyed by the instant that ends their day (an int, ns UTC):

- with a market calendar, a day is a session. An order accepted inside a session
  (open < t < close) belongs to it; one accepted at or after a close, or while the
  market is shut, to the next session (as a broker queues an order sent after hours).
  A bar known inside a session or exactly at its close belongs to that session; a bar
  known while the market is shut (a daily bar stamped at midnight, after the close it
  summarises) belongs to the session that closed last.
- without one, a day is a calendar date in the data's timezone (UTC by default). A bar
  known at ``t`` belongs to the date of the instant just before ``t``, so a bar known at
  exactly midnight — a daily bar labelled by its end — belongs to the day that just
  ended. Sessions are unknown, so an order belongs to the day of the first bar after its
  acceptance (the first it may fill on): an order sent at the last bar of a day is for
  the next one, as with a calendar.

Examples (no calendar, UTC): daily bars known at 00:00. An order accepted at
2024-01-02 00:00 (after the bar of Jan 1) is of the next bar's day: the bar known at
2024-01-03 00:00 is the bar of Jan 2, so it may fill there; the bar known at
2024-01-04 00:00 is of Jan 3 and the order has expired before it. Daily bars known at
21:00 UTC: an order accepted at the Jan 2 bar is of Jan 3 (the next bar's date), may fill
on the Jan 3 bar and has expired before the Jan 4 bar. With the NYSE calendar and the
midnight bars, the order (accepted while the market is shut) is of the Jan 2 session,
the bar known at Jan 3 00:00 is of the Jan 2 session (closed at 21:00 UTC), and the same
holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from ml4t.backtest._time import NS_PER_DAY, from_ns, to_ns

__all__ = ["CalendarDays", "DateDays", "TradingDays"]


class _Sessions(Protocol):
    def arrays(
        self, start_ns: int, end_ns: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...


class TradingDays(Protocol):
    """The two keys DAY expiry compares (see the module docstring)."""

    def order_day_end(self, accepted_ns: int) -> int | None:
        """The end of the trading day an order accepted at ``accepted_ns`` belongs to
        (None: that of the first bar after it)."""
        ...

    def bar_day_end(self, ts_ns: int) -> int | None:
        """The end of the trading day a bar known at ``ts_ns`` belongs to."""
        ...


class DateDays:
    """Calendar dates in ``timezone`` (an IANA name; UTC by default)."""

    __slots__ = ("_cache", "_tz", "_utc")

    def __init__(self, timezone: str | None = None) -> None:
        self._utc = timezone in (None, "UTC", "Etc/UTC")
        self._tz = ZoneInfo(timezone or "UTC")
        self._cache: tuple[int, int, int] = (0, -1, 0)  # [start, end) -> end

    def _end_of_date(self, ts_ns: int) -> int:
        """The next local midnight strictly after ``ts_ns``."""
        start, end, _ = self._cache
        if start <= ts_ns < end:
            return end
        if self._utc:
            end = (ts_ns // NS_PER_DAY + 1) * NS_PER_DAY
            start = end - NS_PER_DAY
        else:
            local = from_ns(ts_ns).astimezone(self._tz)
            day = local.date()
            first = datetime(day.year, day.month, day.day, tzinfo=self._tz)
            start = to_ns(first)
            nxt = day + timedelta(days=1)
            end = to_ns(datetime(nxt.year, nxt.month, nxt.day, tzinfo=self._tz))
        self._cache = (start, end, end)
        return end

    def order_day_end(self, accepted_ns: int) -> int | None:
        return None  # dated by the first bar after it (bar_day_end of that bar)

    def bar_day_end(self, ts_ns: int) -> int | None:
        return self._end_of_date(ts_ns - 1)


class CalendarDays:
    """Sessions of a market calendar (anything with ``arrays(start, end)`` giving
    ``(days, opens, closes, early)`` as sorted ns arrays, as
    :class:`~ml4t.backtest.data.calendar.SessionCalendar` does)."""

    __slots__ = ("_bar", "_calendar", "_closes", "_opens", "_span")

    _BEHIND = 15 * NS_PER_DAY  # sessions kept before a time: the last close before it
    _AHEAD = 60 * NS_PER_DAY  # and after it: the next close

    def __init__(self, calendar: _Sessions) -> None:
        self._calendar = calendar
        self._span = (0, -1)
        self._opens = np.empty(0, dtype=np.int64)
        self._closes = np.empty(0, dtype=np.int64)
        self._bar: tuple[int, int, int | None] = (0, -1, None)  # (lo, hi] -> day end

    def _load(self, ts_ns: int) -> None:
        lo, hi = self._span
        if lo + self._BEHIND <= ts_ns <= hi - self._AHEAD // 2:
            return
        # a window of a few weeks: the calendar computes (and keeps) only the years it
        # touches, so a reload as the run moves on costs a lookup, not a schedule
        start, end = ts_ns - 2 * self._BEHIND, ts_ns + self._AHEAD
        _, opens, closes, _ = self._calendar.arrays(start, end)
        self._opens = np.asarray(opens, dtype=np.int64)
        self._closes = np.asarray(closes, dtype=np.int64)
        self._span = (start, end)

    def order_day_end(self, accepted_ns: int) -> int | None:
        """The first close strictly after ``accepted_ns``."""
        self._load(accepted_ns)
        i = int(np.searchsorted(self._closes, accepted_ns, side="right"))
        return int(self._closes[i]) if i < len(self._closes) else None

    def bar_day_end(self, ts_ns: int) -> int | None:
        """The close of the session containing ``ts_ns`` (open < ts <= close), else the
        last close before it. Consecutive bars of one session (or of one closed spell)
        are answered from the last answer's interval, without a search."""
        lo, hi, answer = self._bar
        if lo < ts_ns <= hi:
            return answer
        self._load(ts_ns)
        closes, opens = self._closes, self._opens
        i = int(np.searchsorted(closes, ts_ns, side="left"))  # first close >= ts
        if i < len(closes) and opens[i] < ts_ns:
            self._bar = (int(opens[i]), int(closes[i]), int(closes[i]))
            return int(closes[i])
        previous = int(closes[i - 1]) if i > 0 else None
        upper = int(opens[i]) if i < len(opens) else ts_ns
        self._bar = (previous if previous is not None else ts_ns - 1, upper, previous)
        return previous
