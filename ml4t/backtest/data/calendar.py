"""Exchange sessions via ``pandas_market_calendars``: opens, closes, early closes, timers.

A :class:`SessionCalendar` answers, in UTC nanoseconds, when each session opens and
closes (early closes included), whether a bar's known-at time lies inside a session
(``open < t <= close``: a one-minute bar for 09:30-09:31 is known at 09:31 and the last
one at the close), and the next open or close after any time. Schedules are fetched
one calendar year at a time and cached, so a timer can run for years.

``session_open_rule`` and ``session_close_rule`` make ``next_time`` functions for
:meth:`~ml4t.backtest.Component.set_timer`::

    cal = SessionCalendar("NYSE")
    self.set_timer("close", next_time=session_close_rule(cal, before="5m"))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal
import polars as pl

from ml4t.backtest._time import from_ns, parse_duration
from ml4t.backtest.errors import ConfigError

__all__ = ["SessionCalendar", "session_close_rule", "session_open_rule"]

_HORIZON_YEARS = 3  # how far ahead next_open/next_close look before giving up
SESSIONS_WINDOW_YEARS = 20
"""The years :meth:`SessionCalendar.sessions_per_year` averages over."""


def _ns(series: pd.Series) -> np.ndarray:
    """UTC nanoseconds of a tz-aware pandas datetime Series (any resolution)."""
    return (
        series.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[ns]")
        .view(np.int64)
    )


class SessionCalendar:
    """Sessions of one exchange calendar (``"NYSE"``, ``"XLON"``, ``"CME_Equity"``...)."""

    def __init__(self, name: str = "NYSE") -> None:
        try:
            self._cal = mcal.get_calendar(name)
        except RuntimeError as exc:
            raise ConfigError(f"unknown market calendar {name!r}: {exc}") from exc
        self.name = name
        self._years: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._typical: dict[int, int] = {}  # sessions_per_year by last year

    def __repr__(self) -> str:
        return f"SessionCalendar({self.name!r})"

    @cached_property
    def tz(self) -> str:
        return str(self._cal.tz)

    def _year(self, year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(session dates as days since epoch, opens, closes, early-close flags) of ``year``."""
        got = self._years.get(year)
        if got is None:
            self._fetch(year, year)
            got = self._years[year]
        return got

    def _fetch(self, first: int, last: int) -> None:
        """Fetch the schedules of the years ``first..last`` in one call (most of a call's
        cost is fixed: the holiday rules are evaluated once per call) and cache each year."""
        with warnings.catch_warnings():
            # pandas_market_calendars still uses pandas APIs that pandas 3.1 deprecates
            # (Series.dt.weekday); the warnings are attributed to its modules only.
            warnings.filterwarnings("ignore", module=r"pandas_market_calendars(\..*)?")
            sched = self._cal.schedule(f"{first}-01-01", f"{last}-12-31")
            early = self._cal.early_closes(sched).index if len(sched) else sched.index
        days = sched.index.to_numpy().astype("datetime64[D]").view(np.int64)
        opens, closes = _ns(sched["market_open"]), _ns(sched["market_close"])
        flags = np.asarray(sched.index.isin(early))
        years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        for year in range(first, last + 1):
            keep = years == year
            self._years[year] = (days[keep], opens[keep], closes[keep], flags[keep])

    def arrays(
        self, start_ns: int, end_ns: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(dates, opens, closes, early) of the sessions that close in [start_ns, end_ns]."""
        years = range(from_ns(start_ns).year, from_ns(end_ns).year + 1)
        missing = [y for y in years if y not in self._years]
        if missing:
            self._fetch(missing[0], missing[-1])
        parts = [self._year(y) for y in years]
        days, opens, closes, early = (np.concatenate(p) for p in zip(*parts, strict=True))
        keep = (closes >= start_ns) & (opens <= end_ns)
        return days[keep], opens[keep], closes[keep], early[keep]

    def sessions(self, start_ns: int, end_ns: int) -> pl.DataFrame:
        """``date``, ``open``, ``close`` (UTC Datetime ns) and ``early_close`` per session."""
        days, opens, closes, early = self.arrays(start_ns, end_ns)
        return pl.DataFrame(
            {
                "date": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
                "open": pl.Series(opens).cast(pl.Datetime("ns", "UTC")),
                "close": pl.Series(closes).cast(pl.Datetime("ns", "UTC")),
                "early_close": early,
            }
        )

    def sessions_in_year(self, around_ns: int) -> int:
        """Trading sessions in the calendar year of ``around_ns`` (250 for NYSE 2023)."""
        year = from_ns(max(around_ns, 0)).year
        return len(self._year(year)[0])

    def sessions_per_year(self, around_ns: int) -> int:
        """The calendar's sessions in a typical year: the mean over the
        :data:`SESSIONS_WINDOW_YEARS` calendar years ending with the year of ``around_ns``,
        rounded (252 for NYSE, 253 for XLON, 365 for 24/7).

        One year's count swings with its holidays and one-off closures (NYSE: 250 in
        2023, 252 in 2024, 253 in 2020), which would make the same returns annualise
        differently by start year; the mean of the years before it is stable and known
        when the data starts. Years before the calendar has sessions are left out.
        """
        last = from_ns(max(around_ns, 0)).year
        known = self._typical.get(last)
        if known is not None:
            return known
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pandas_market_calendars(\..*)?")
            sched = self._cal.schedule(f"{last - SESSIONS_WINDOW_YEARS + 1}-01-01", f"{last}-12-31")
        years = sched.index.year
        counts = np.bincount(years - years.min()) if len(years) else np.zeros(0, dtype=int)
        counts = counts[counts > 0]
        typical = round(float(counts.mean())) if counts.size else len(self._year(last)[0])
        self._typical[last] = typical
        return typical

    def outside_mask(self, ts: np.ndarray) -> np.ndarray:
        """True where a known-at time (sorted int64 ns) is outside every (open, close]."""
        if len(ts) == 0:
            return np.zeros(0, dtype=bool)
        _, opens, closes, _ = self.arrays(int(ts.min()) - 86_400 * 10**9, int(ts.max()))
        i = np.searchsorted(closes, ts, side="left")
        inside = np.zeros(len(ts), dtype=bool)
        ok = i < len(closes)
        inside[ok] = opens[i[ok]] < ts[ok]
        return ~inside

    def next_open(self, after_ns: int) -> int | None:
        """The first session open strictly after ``after_ns``, or None within the horizon."""
        return self._next(after_ns, 1)

    def next_close(self, after_ns: int) -> int | None:
        """The first session close strictly after ``after_ns``, or None within the horizon."""
        return self._next(after_ns, 2)

    def _next(self, after_ns: int, which: int) -> int | None:
        year = from_ns(max(after_ns, 0)).year
        for y in range(year, year + _HORIZON_YEARS + 1):
            times = self._year(y)[which]
            i = int(np.searchsorted(times, after_ns, side="right"))
            if i < len(times):
                return int(times[i])
        return None


NextTime = Callable[[int], "int | None"]


def _rule(pick: Callable[[int], int | None], offset_ns: int) -> NextTime:
    def next_time(after_ns: int) -> int | None:
        event = pick(after_ns - offset_ns)
        return None if event is None else event + offset_ns

    return next_time


def session_open_rule(calendar: SessionCalendar, *, after: str | timedelta | int = 0) -> NextTime:
    """``next_time`` for a timer at each session open (plus ``after``, e.g. ``"5m"``)."""
    return _rule(calendar.next_open, parse_duration(after))


def session_close_rule(calendar: SessionCalendar, *, before: str | timedelta | int = 0) -> NextTime:
    """``next_time`` for a timer at each session close (minus ``before``), early closes included."""
    return _rule(calendar.next_close, -parse_duration(before))
