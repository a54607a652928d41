"""Periods per year of a calendar, for the interop contract ml4t-diagnostic's bridge
imports (``from ml4t.backtest.analytics.annualization import get_annualization_factor``).

The bridge annualises a run's daily returns with ``get_annualization_factor(calendar)``.
It gives the number our metrics use (``metrics.json``'s ``periods_per_year`` with a
calendar): the calendar's sessions in a typical year,
:meth:`~ml4t.backtest.data.calendar.SessionCalendar.sessions_per_year` (the mean of the
last 20 calendar years, rounded: 252 for NYSE, 253 for XLON, 365 for ``24/7``), here for
the years up to today. A calendar whose holidays changed since the run could differ by
one from the run's own figure; ``metrics.json`` has the run's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from ml4t.backtest._time import to_ns
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.errors import ConfigError

__all__ = ["get_annualization_factor"]


@lru_cache(maxsize=32)
def _typical_year(calendar: str, year: int) -> int:
    """Sessions of ``calendar`` in a typical year of the 20 ending with ``year``."""
    return SessionCalendar(calendar).sessions_per_year(to_ns(datetime(year, 7, 1, tzinfo=UTC)))


def get_annualization_factor(calendar: str | None) -> int:
    """Daily returns per year for ``calendar`` (a pandas_market_calendars name).

    ``None`` (no calendar: days are dates) has no such number: a :class:`ConfigError`
    says to pass ``periods_per_year`` (``metrics.json`` has the one the run observed).
    """
    if calendar is None:
        raise ConfigError(
            "no calendar, no sessions per year: pass periods_per_year (an integer; "
            "metrics.json's periods_per_year is the one the run used)"
        )
    return _typical_year(calendar, datetime.now(UTC).year)
