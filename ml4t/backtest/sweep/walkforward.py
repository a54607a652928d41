"""Walk-forward windows: train on the past, test on what follows, slide, repeat.

The date range ``[start, end]`` becomes a list of periods: every calendar day, or the
trading sessions of ``calendar``. Window ``k`` takes ``train`` periods, skips ``purge``
periods (so nothing a model learned from the end of its training data leaks into the
test through overlapping labels), then tests on ``test`` periods:

    rolling:    |--train--|purge|--test--|
                     step |--train--|purge|--test--|          (train start slides)
    expanding:  |--train--|purge|--test--|
                |--train-------|purge|--test--|               (train start fixed)

``step`` defaults to ``test``, so test windows tile the range without overlap. Only
whole test windows are made; periods left over at the end are not tested.

Each window's *test* period becomes the run's ``backtest.start_date``/``end_date``
(the whole of the first and last day, in ``timezone``: the calendar's own by default,
UTC without one). With ``train_runs: true`` each window also gets a *train* run over
its training period, so :func:`select_out_of_sample` can pick each window's parameters
on the train run and report the test run: walk-forward optimisation.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import polars as pl
from msgspec import Meta

from ml4t.backtest._time import to_ns
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.errors import ConfigError

__all__ = ["WalkForward", "Window", "select_out_of_sample", "window_bounds", "windows"]

Periods = Annotated[int, Meta(ge=1)]


class WalkForward(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Walk-forward splits over ``[start, end]`` (both included), counted in periods."""

    start: date
    end: date
    train: Periods
    test: Periods
    purge: Annotated[int, Meta(ge=0)] = 0
    step: Periods | None = None
    mode: Literal["rolling", "expanding"] = "rolling"
    calendar: str | None = None
    timezone: str | None = None
    train_runs: bool = False

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ConfigError(f"end {self.end} is before start {self.start}")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ConfigError(
                    f"unknown timezone {self.timezone!r}; use an IANA name such as 'UTC' or "
                    "'America/New_York'"
                ) from exc


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """One split; every date is included in its period."""

    index: int
    train_start: date
    train_end: date
    test_start: date
    test_end: date


def periods(spec: WalkForward) -> list[date]:
    """The dates windows are counted in: sessions of the calendar, or every day."""
    if spec.calendar is None:
        return [spec.start + timedelta(days=i) for i in range((spec.end - spec.start).days + 1)]
    first = to_ns(datetime.combine(spec.start, time(0), UTC))
    last = to_ns(datetime.combine(spec.end + timedelta(days=1), time(0), UTC)) - 1
    dates = SessionCalendar(spec.calendar).sessions(first, last)["date"].to_list()
    return [d for d in dates if spec.start <= d <= spec.end]


def windows(spec: WalkForward) -> list[Window]:
    """Every whole window, in order; ConfigError if the range holds none."""
    days = periods(spec)
    step = spec.step or spec.test
    found: list[Window] = []
    k = 0
    while True:
        train_start = k * step if spec.mode == "rolling" else 0
        train_stop = (k * step + spec.train) if spec.mode == "rolling" else spec.train + k * step
        test_start = train_stop + spec.purge
        test_stop = test_start + spec.test
        if test_stop > len(days):
            break
        found.append(
            Window(
                index=k,
                train_start=days[train_start],
                train_end=days[train_stop - 1],
                test_start=days[test_start],
                test_end=days[test_stop - 1],
            )
        )
        k += 1
    if not found:
        unit = f"{spec.calendar} sessions" if spec.calendar else "days"
        raise ConfigError(
            f"walk_forward: {len(days)} {unit} from {spec.start} to {spec.end} hold no window "
            f"of train {spec.train} + purge {spec.purge} + test {spec.test}; widen the range "
            "or shorten the windows"
        )
    return found


def window_bounds(spec: WalkForward, first: date, last: date) -> tuple[str, str]:
    """``start_date``/``end_date`` covering the whole of ``first`` to ``last``."""
    zone = spec.timezone or (_calendar_zone(spec.calendar) if spec.calendar else "UTC")
    if zone == "UTC":
        return first.isoformat(), last.isoformat()  # a bare end date includes its whole day
    tz = ZoneInfo(zone)
    begin = datetime.combine(first, time(0), tz)
    end = datetime.combine(last, time(23, 59, 59, 999_999), tz)
    return begin.isoformat(), end.isoformat()


@functools.cache
def _calendar_zone(name: str) -> str:
    return SessionCalendar(name).tz


def select_out_of_sample(
    table: pl.DataFrame, metric: str, *, maximize: bool = True, params: list[str] | None = None
) -> pl.DataFrame:
    """Walk-forward optimisation: per window, the test run of the best train run's point.

    Needs a sweep with ``train_runs: true``. ``params`` are the parameter columns
    (default: every column with a dot in its name, as sweep parameters are named).
    """
    if "role" not in table.columns:
        raise ConfigError("the table has no walk-forward columns (role, window)")
    keys = params if params is not None else [c for c in table.columns if "." in c]
    ok = table.filter(pl.col("status") == "ok")
    train = ok.filter(pl.col("role") == "train")
    if train.is_empty():
        raise ConfigError("no successful train runs: set walk_forward.train_runs: true")
    ranked = train.filter(pl.col(metric).is_not_null()).sort(
        ["window", metric], descending=[False, maximize], nulls_last=True, maintain_order=True
    )
    best = ranked.group_by("window", maintain_order=True).first().select("window", *keys)
    test = ok.filter(pl.col("role") == "test")
    return test.join(best, on=["window", *keys], how="semi").sort("window")
