"""Days of a run, and the run's state at the end of each: the series daily returns use.

**What a day is.** With a market calendar a day is a **session**, as for DAY orders
(:mod:`ml4t.backtest._days`): a state known inside a session or exactly at its close
belongs to that session; one known while the market is shut (after-hours, a daily bar
stamped at midnight) to the session that closed last. A session is labelled by its date
in the calendar's timezone. Without a calendar (or with ``reporting.day_timezone`` set) a
day is a calendar date in that timezone, and a state known at exactly midnight belongs to
the date that just ended (a daily bar labelled by its end).

**The end of a day** is its last state: :class:`DailySeries` keeps, per day, the
timestamp, equity and cash of that state, the benchmark level as of it, and the positions
held then (symbol, signed quantity, price marked), so the ``daily_returns``,
``daily_positions`` and ``benchmark_returns`` tables are built once, at the end, from
O(days) memory.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from ml4t.backtest._days import CalendarDays, DateDays
from ml4t.backtest._time import NS_PER_DAY, from_ns, to_ns
from ml4t.backtest.errors import ConfigError

__all__ = [
    "BENCHMARK_RETURNS_SCHEMA",
    "DAILY_POSITIONS_SCHEMA",
    "DAILY_RETURNS_SCHEMA",
    "DailySeries",
    "Holdings",
    "RunDays",
]

DAILY_RETURNS_SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("return", pa.float64()),
        ("equity", pa.float64()),
        ("cash", pa.float64()),
    ]
)
DAILY_POSITIONS_SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("symbol", pa.string()),
        ("quantity", pa.float64()),
        ("price", pa.float64()),
        ("value", pa.float64()),
    ]
)
BENCHMARK_RETURNS_SCHEMA = pa.schema([("date", pa.date32()), ("return", pa.float64())])

_EPOCH = date(1970, 1, 1)

# positions held at a state: (symbols, signed quantities, prices marked), or None when flat
Holdings = tuple[tuple[str, ...], np.ndarray, np.ndarray] | None


class RunDays:
    """Which day a state belongs to (a key: the instant that ends it) and its date.

    ``calendar`` is the run's trading calendar as components get it in their context (a
    :class:`~ml4t.backtest.data.calendar.SessionCalendar`: ``name``, ``tz`` and
    ``arrays(start, end)``), or None for calendar dates in ``timezone``."""

    __slots__ = ("_days", "_label", "calendar", "timezone")

    def __init__(self, calendar: Any = None, timezone: str = "UTC") -> None:
        self.calendar = calendar
        self.timezone = calendar.tz if calendar is not None else timezone
        self._days: CalendarDays | DateDays = (
            CalendarDays(calendar) if calendar is not None else DateDays(timezone)
        )
        self._label: tuple[int, int] = (-1, 0)  # (day end, its date as days since epoch)

    def day_end(self, ts: int) -> int:
        """The key of the day ``ts`` belongs to: its session's close, or the midnight
        that ends its date (a state before a calendar's first session: that session)."""
        end = self._days.bar_day_end(ts)
        if end is None:  # before the calendar's first session in reach
            end = self._days.order_day_end(ts)
        return end if end is not None else ts

    def label(self, day_end: int) -> int:
        """The date (days since 1970-01-01) of the day that ends at ``day_end``: the
        session's date (that of its close in the calendar's timezone) or the date ended."""
        cached, value = self._label
        if cached == day_end:
            return value
        instant = day_end if self.calendar is not None else day_end - 1
        local = from_ns(instant).astimezone(ZoneInfo(self.timezone)).date()
        value = (local - _EPOCH).days
        self._label = (day_end, value)
        return value

    def ends(self, labels: np.ndarray) -> np.ndarray:
        """The instants (ns UTC) that end the days labelled ``labels`` (days since
        1970-01-01, sorted): each session's close, or the midnight after each date in
        the timezone; the inverse of :meth:`label`."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size == 0:
            return np.zeros(0, dtype=np.int64)
        if self.calendar is not None:
            first, last = int(labels[0]) * NS_PER_DAY, int(labels[-1]) * NS_PER_DAY
            days, _, closes, _ = self.calendar.arrays(first - NS_PER_DAY, last + 2 * NS_PER_DAY)
            days = np.asarray(days, dtype=np.int64)
            at = np.searchsorted(days, labels)
            missing = (at >= days.size) | (days[np.minimum(at, days.size - 1)] != labels)
            if missing.any():
                day = date_of(int(labels[np.argmax(missing)]))
                raise ConfigError(
                    f"{day} is not a session of the {self.calendar.name} calendar; were "
                    "these daily tables written with another calendar?"
                )
            return np.asarray(closes, dtype=np.int64)[at]
        zone = ZoneInfo(self.timezone)
        return np.array(
            [to_ns(datetime.combine(date_of(int(d) + 1), time(), tzinfo=zone)) for d in labels],
            dtype=np.int64,
        )


class DailySeries:
    """The last state of each day: appended as states arrive, the last one replaced."""

    __slots__ = ("benchmark", "cash", "dates", "equity", "holdings", "ts")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.dates: list[int] = []
        self.equity: list[float] = []
        self.cash: list[float] = []
        self.benchmark: list[float] = []
        self.holdings: list[Holdings] = []

    def __len__(self) -> int:
        return len(self.ts)

    def add(
        self,
        *,
        new_day: bool,
        label: int,
        ts: int,
        equity: float,
        cash: float,
        benchmark: float,
        holdings: Holdings,
    ) -> None:
        """A state: the first of a new day (``new_day``) or a later one of the current."""
        if new_day or not self.ts:
            self.ts.append(ts)
            self.dates.append(label)
            self.equity.append(equity)
            self.cash.append(cash)
            self.benchmark.append(benchmark)
            self.holdings.append(holdings)
            return
        self.replace_last(ts, equity, cash, benchmark, holdings)

    def replace_last(
        self, ts: int, equity: float, cash: float, benchmark: float, holdings: Holdings
    ) -> None:
        """A later state of the current day: it is the day's last so far."""
        self.ts[-1] = ts
        self.equity[-1] = equity
        self.cash[-1] = cash
        self.benchmark[-1] = benchmark
        self.holdings[-1] = holdings

    def returns(self, initial: float | None) -> np.ndarray:
        """Daily simple returns, the first against ``initial``."""
        equity = np.asarray(self.equity, dtype=np.float64)
        if equity.size == 0 or not initial:
            return np.zeros(0)
        previous = np.concatenate([[initial], equity[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            return equity / previous - 1.0

    def date_array(self) -> pa.Array:
        return pa.array(self.dates, type=pa.int32()).cast(pa.date32())

    def returns_table(self, initial: float | None) -> pa.Table:
        """``daily_returns``: date, return, equity, cash."""
        return pa.table(
            {
                "date": self.date_array(),
                "return": pa.array(self.returns(initial), type=pa.float64()),
                "equity": pa.array(self.equity, type=pa.float64()),
                "cash": pa.array(self.cash, type=pa.float64()),
            },
            schema=DAILY_RETURNS_SCHEMA,
        )

    def positions_table(self) -> pa.Table:
        """``daily_positions``: one row per (day, symbol held at its end), symbols sorted."""
        dates: list[int] = []
        symbols: list[str] = []
        quantities: list[float] = []
        prices: list[float] = []
        for day, held in zip(self.dates, self.holdings, strict=True):
            if held is None:
                continue
            names, qty, price = held
            for i in sorted(range(len(names)), key=names.__getitem__):
                dates.append(day)
                symbols.append(names[i])
                quantities.append(float(qty[i]))
                prices.append(float(price[i]))
        value = np.asarray(quantities, dtype=np.float64) * np.asarray(prices, dtype=np.float64)
        return pa.table(
            {
                "date": pa.array(dates, type=pa.int32()).cast(pa.date32()),
                "symbol": pa.array(symbols, type=pa.string()),
                "quantity": pa.array(quantities, type=pa.float64()),
                "price": pa.array(prices, type=pa.float64()),
                "value": pa.array(value, type=pa.float64()),
            },
            schema=DAILY_POSITIONS_SCHEMA,
        )

    def benchmark_table(self, levels: np.ndarray, base: float) -> pa.Table:
        """``benchmark_returns``: the level's return each day, the first against ``base``
        (NaN where the level is not known yet)."""
        previous = np.concatenate([[base], levels[:-1]]) if levels.size else levels
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = levels / previous - 1.0
        return pa.table(
            {"date": self.date_array(), "return": pa.array(returns, type=pa.float64())},
            schema=BENCHMARK_RETURNS_SCHEMA,
        )


def first_known(levels: np.ndarray) -> float:
    """The first finite level (NaN if none)."""
    finite = np.flatnonzero(np.isfinite(levels))
    return float(levels[finite[0]]) if finite.size else math.nan


def date_of(days: int) -> date:
    return _EPOCH + timedelta(days=days)
