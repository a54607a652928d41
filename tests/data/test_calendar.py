"""Exchange sessions, early closes, outside-session bars and session timers."""

from __future__ import annotations

import polars as pl

from ml4t.backtest import Component, Runtime, SimulatedClock, TimerFired, to_ns
from ml4t.backtest.data import SessionCalendar, session_close_rule, session_open_rule


def ns(text: str) -> int:
    return to_ns(text)


def test_sessions_include_early_closes() -> None:
    cal = SessionCalendar("NYSE")
    sessions = cal.sessions(ns("2023-11-22T00:00:00+00:00"), ns("2023-11-28T00:00:00+00:00"))
    assert sessions["date"].cast(pl.String).to_list() == [
        "2023-11-22",
        "2023-11-24",
        "2023-11-27",
    ]  # Thanksgiving (23rd) is closed
    friday = sessions.row(1, named=True)
    assert friday["early_close"] and friday["close"].hour == 18  # 13:00 New York
    assert not sessions.row(0, named=True)["early_close"]


def test_next_open_and_close_step_through_sessions_and_years() -> None:
    cal = SessionCalendar("NYSE")
    assert cal.next_open(ns("2023-12-29T22:00:00+00:00")) == ns("2024-01-02T14:30:00+00:00")
    assert cal.next_close(ns("2023-11-24T17:59:00+00:00")) == ns("2023-11-24T18:00:00+00:00")
    assert cal.next_close(ns("2023-11-24T18:00:00+00:00")) == ns("2023-11-27T21:00:00+00:00")


def test_outside_mask_uses_open_exclusive_close_inclusive() -> None:
    cal = SessionCalendar("NYSE")
    times = [
        "2023-01-03T14:30:00+00:00",  # the open itself: no bar can be known yet
        "2023-01-03T14:31:00+00:00",  # first one-minute bar
        "2023-01-03T21:00:00+00:00",  # last bar, at the close
        "2023-01-03T21:01:00+00:00",  # after the close
    ]
    mask = cal.outside_mask(pl.Series([ns(t) for t in times]).to_numpy())
    assert mask.tolist() == [True, False, False, True]


class Clocked(Component):
    def __init__(self, cal: SessionCalendar) -> None:
        super().__init__("timers")
        self.cal = cal
        self.fired: list[tuple[str, int]] = []

    def on_start(self) -> None:
        self.set_timer("open", next_time=session_open_rule(self.cal))
        self.set_timer("close", next_time=session_close_rule(self.cal, before="5m"))

    def on_timer(self, event: TimerFired) -> None:
        self.fired.append((event.name, event.ts_event))
        if len(self.fired) >= 6:
            self.cancel_timer("open")
            self.cancel_timer("close")


def test_session_timers_fire_at_opens_and_before_early_closes() -> None:
    cal = SessionCalendar("NYSE")
    runtime = Runtime(clock=SimulatedClock(ns("2023-11-22T12:00:00+00:00")))
    comp = runtime.add(Clocked(cal))
    runtime.run_sync()
    assert comp.fired == [
        ("open", ns("2023-11-22T14:30:00+00:00")),
        ("close", ns("2023-11-22T20:55:00+00:00")),
        ("open", ns("2023-11-24T14:30:00+00:00")),
        ("close", ns("2023-11-24T17:55:00+00:00")),  # early close at 13:00 New York
        ("open", ns("2023-11-27T14:30:00+00:00")),
        ("close", ns("2023-11-27T20:55:00+00:00")),
    ]
