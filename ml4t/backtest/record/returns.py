"""Returns and equity at any frequency, from a run's daily series and portfolio states.

A frequency is a polars duration (``1d``, ``1w``, ``1mo``, ``1q``, ``1y``, ``4h``,
``30m``) or a pandas alias (``D``, ``B``, ``W``, ``W-FRI``, ``M``/``ME``/``MS``, ``Q``,
``Y``/``A``, ``h``, ``min``/``T``, ``s``). Case decides where the two disagree: ``M`` is
a month (pandas), ``m`` a minute (polars); ``MS`` a month, ``ms`` a millisecond.

- **A day or longer** (``1D``, ``1W``, ``1M``...): from the daily series, so periods are
  made of whole days (sessions with a calendar). ``1D`` is the daily series itself (one
  row per day, labelled by its date); a longer period holds the days whose date falls in
  it (weeks start on Monday unless anchored, ``W-FRI``: weeks ending on Friday) and is
  labelled by its **last day's date**, the day its return is known. ``MS`` and ``ME`` give
  the same rows.
- **Shorter than a day** (``1h``, ``30m``...): from ``portfolio.parquet``, windows aligned
  in the days' timezone, labelled by the window's last state's timestamp (UTC). They can
  be no finer than the rows ``portfolio_frequency`` recorded: a finer frequency gives one
  row per recorded state.

Every period's equity is its last one; its return is that equity over the previous
period's, the first against the initial equity.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Literal, cast

import polars as pl

from ml4t.backtest.errors import ConfigError

__all__ = ["Frequency", "parse_frequency", "resample"]

# pandas aliases, by exact case
_PANDAS = MappingProxyType(
    {
        "D": "d",
        "B": "d",
        "C": "d",
        "W": "w",
        "M": "mo",
        "ME": "mo",
        "MS": "mo",
        "BM": "mo",
        "BME": "mo",
        "BMS": "mo",
        "Q": "q",
        "QE": "q",
        "QS": "q",
        "BQ": "q",
        "BQE": "q",
        "BQS": "q",
        "Y": "y",
        "YE": "y",
        "YS": "y",
        "A": "y",
        "AS": "y",
        "BA": "y",
        "BY": "y",
        "BYE": "y",
        "H": "h",
        "T": "m",
        "MIN": "m",
        "S": "s",
        "L": "ms",
        "U": "us",
        "N": "ns",
    }
)
# polars units (and pandas' lower-case ones)
_POLARS = MappingProxyType(
    {
        "d": "d",
        "b": "d",
        "w": "w",
        "mo": "mo",
        "q": "q",
        "y": "y",
        "h": "h",
        "m": "m",
        "min": "m",
        "t": "m",
        "s": "s",
        "ms": "ms",
        "us": "us",
        "ns": "ns",
    }
)
_DAYS = ("d", "w", "mo", "q", "y")
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_START_BY = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_StartBy = Literal[
    "window", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
]
_FREQ = re.compile(r"^\s*(\d*)\s*([A-Za-z]+)(?:-([A-Za-z]{3}))?\s*$")


class Frequency:
    """A parsed frequency: the polars duration, whether it is made of days, and for an
    anchored week the weekday its windows start on."""

    __slots__ = ("daily", "every", "start_by", "text")

    def __init__(self, text: str, every: str, start_by: str = "window") -> None:
        self.text = text
        self.every = every
        self.daily = every.lstrip("0123456789") in _DAYS
        self.start_by = start_by

    @property
    def one_day(self) -> bool:
        return self.every == "1d"

    def __repr__(self) -> str:
        return f"Frequency({self.text!r} -> {self.every!r})"


def parse_frequency(text: str) -> Frequency:
    """``text`` as a :class:`Frequency`; a :class:`ConfigError` names what is accepted."""
    found = _FREQ.match(text) if isinstance(text, str) else None
    unit = None
    if found is not None:
        count, name, anchor = found.group(1) or "1", found.group(2), found.group(3)
        unit = _PANDAS.get(name) or _POLARS.get(name)
        if unit is not None and int(count) > 0:
            start_by = "window"
            if anchor is not None:
                anchor = anchor.upper()
                if unit == "w" and anchor in _WEEKDAYS:
                    # W-FRI: weeks that end on Friday, so they start on Saturday
                    start_by = _START_BY[(_WEEKDAYS.index(anchor) + 1) % 7]
                elif not (unit in ("q", "y") and anchor == "DEC"):
                    unit = None
            if unit is not None:
                return Frequency(text, f"{int(count)}{unit}", start_by)
    raise ConfigError(
        f"frequency {text!r} is not understood; use a polars duration (1d, 1w, 1mo, 1q, 1y, "
        "4h, 30m) or a pandas alias (D, B, W, W-FRI, M, ME, MS, Q, Y, h, min, s)"
    )


def resample(
    frame: pl.DataFrame,
    index: str,
    freq: Frequency,
    initial: float,
    timezone: str | None = None,
) -> pl.DataFrame:
    """``frame`` (``index`` sorted, ``equity``) as one row per period of ``freq``: the
    period's last ``index`` value and ``equity``, and its ``return``. Windows of a
    timestamp ``index`` are aligned in ``timezone``."""
    if frame.height == 0 or (freq.one_day and index == "date"):
        grouped = frame.select(index, "equity")
    else:
        window = pl.col(index)
        if timezone is not None and index != "date":
            window = window.dt.convert_time_zone(timezone)
        grouped = (
            frame.with_columns(window.alias("_window"))
            .group_by_dynamic("_window", every=freq.every, start_by=cast(_StartBy, freq.start_by))
            .agg(pl.col(index).last(), pl.col("equity").last())
            .drop("_window")
        )
    previous = pl.col("equity").shift(1).fill_null(initial)
    return grouped.with_columns((pl.col("equity") / previous - 1.0).alias("return")).select(
        index, "return", "equity"
    )
