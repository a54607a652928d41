"""The idle-time rule of a paper replay: what the view says while the replay waits, and
when ``--skip-closed`` jumps the wall clock (hand-computed on the NYSE calendar)."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import pytest
from rich.console import Console

from ml4t.backtest._time import NS_PER_SECOND, to_ns
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.events import OrderFilled, OrderSide
from ml4t.backtest.live import PaperMonitor, ReplayClock
from ml4t.backtest.live._idle import IdleTime, duration
from ml4t.backtest.live.monitor import fill_line
from ml4t.backtest.testing import Script, run_components
from ml4t.backtest.topics import FILLS

NYSE = SessionCalendar("NYSE")
CLOSE_JAN3 = to_ns("2023-01-03T21:00:00+00:00")  # 16:00 EST
OPEN_JAN4 = to_ns("2023-01-04T14:30:00+00:00")  # 09:30 EST
BAR_JAN4 = to_ns("2023-01-04T14:31:00+00:00")  # the first minute bar's known-at time
TEN_MINUTES = 600 * NS_PER_SECOND  # one wall second at x600


def test_overnight_wait_says_market_closed_until_the_open_and_how_long_at_this_speed():
    idle = IdleTime(speed=600, calendar=NYSE).status(CLOSE_JAN3, BAR_JAN4)
    assert idle is not None and idle.closed
    assert idle.opens_ns == OPEN_JAN4
    assert idle.wait_s == pytest.approx((17 * 3600 + 31 * 60) / 600)  # 105.1 s
    assert idle.text == (
        "market closed until 2023-01-04 09:30 EST (next bar in 105 s at x600; "
        "--skip-closed skips it)"
    )
    # with skipping on, the hint goes and the jump lands one wall second before the open
    skipping = IdleTime(speed=600, calendar=NYSE, skip=True)
    assert skipping.status(CLOSE_JAN3, BAR_JAN4).text == (
        "market closed until 2023-01-04 09:30 EST (next bar in 105 s at x600)"
    )
    assert skipping.skip_to(CLOSE_JAN3, BAR_JAN4) == OPEN_JAN4 - TEN_MINUTES  # 09:20 EST
    assert IdleTime(speed=600, calendar=NYSE).skip_to(CLOSE_JAN3, BAR_JAN4) is None  # off


def test_waits_of_two_wall_seconds_or_less_are_the_normal_pace_not_idle_time():
    rule = IdleTime(speed=600, calendar=NYSE, skip=True)
    two_s = CLOSE_JAN3 + 2 * TEN_MINUTES  # 20 minutes of market time = 2.0 s at x600
    assert rule.status(CLOSE_JAN3, two_s) is None and rule.skip_to(CLOSE_JAN3, two_s) is None
    assert rule.status(CLOSE_JAN3, two_s + 1) is not None
    assert rule.status(CLOSE_JAN3, None) is None  # nothing scheduled: the run is ending
    fastest = IdleTime(speed=math.inf, calendar=NYSE, skip=True)
    assert fastest.status(CLOSE_JAN3, BAR_JAN4) is None  # at max there is no waiting
    assert fastest.skip_to(CLOSE_JAN3, BAR_JAN4) is None


def test_an_idle_wait_while_the_market_is_open_is_shown_but_never_skipped():
    ten_am, eleven_am = to_ns("2023-01-04T15:00:00+00:00"), to_ns("2023-01-04T16:00:00+00:00")
    rule = IdleTime(speed=600, calendar=NYSE, skip=True)
    idle = rule.status(ten_am, eleven_am)
    assert idle is not None and not idle.closed and idle.opens_ns is None
    assert idle.text == "market open, next bar at 2023-01-04 11:00 EST (in 6 s at x600)"
    assert rule.skip_to(ten_am, eleven_am) is None


def test_a_skip_over_a_long_weekend_lands_before_the_tuesday_open():
    friday_close = to_ns("2023-01-13T21:00:00+00:00")  # Monday 2023-01-16 is MLK day
    tuesday_open = to_ns("2023-01-17T14:30:00+00:00")
    rule = IdleTime(speed=600, calendar=NYSE, skip=True)
    assert rule.reopens(friday_close) == tuesday_open
    assert rule.skip_to(friday_close, tuesday_open + 60 * NS_PER_SECOND) == (
        tuesday_open - TEN_MINUTES
    )


def test_a_bar_before_the_open_ends_the_skip_at_that_bar():
    premarket = to_ns("2023-01-04T13:00:00+00:00")  # 08:00 EST, before the 09:30 open
    rule = IdleTime(speed=600, calendar=NYSE, skip=True)
    assert rule.skip_to(CLOSE_JAN3, premarket) == premarket - TEN_MINUTES


def test_without_a_calendar_every_idle_wait_counts_as_closed():
    rule = IdleTime(speed=600, skip=False)
    idle = rule.status(CLOSE_JAN3, BAR_JAN4)
    assert idle is not None and idle.closed and idle.opens_ns is None
    assert idle.text == (
        "no bars until 2023-01-04 14:31 UTC (in 105 s at x600; --skip-closed skips it)"
    )
    skipping = IdleTime(speed=600, skip=True)
    assert skipping.skip_to(CLOSE_JAN3, BAR_JAN4) == BAR_JAN4 - TEN_MINUTES


def test_the_calendar_says_open_inside_a_session_and_closed_after_its_close():
    rule = IdleTime(speed=1, calendar=NYSE)
    assert rule.reopens(to_ns("2023-01-04T15:00:00+00:00")) is None  # 10:00 EST
    assert rule.reopens(CLOSE_JAN3) == OPEN_JAN4  # at the close: the bar of 16:00 is in
    assert rule.reopens(to_ns("2023-01-04T12:00:00+00:00")) == OPEN_JAN4  # 07:00 EST
    assert IdleTime(speed=1).reopens(CLOSE_JAN3) is None  # no calendar, no hours


def test_replay_clock_jumps_over_idle_time_once_and_keeps_market_time():
    rule = IdleTime(speed=600, calendar=NYSE, skip=True)
    clock = ReplayClock(speed=600, origin_ns=CLOSE_JAN3, skip=rule.skip_to)
    clock.schedule(BAR_JAN4, lambda: None)
    wait = clock.seconds_until(BAR_JAN4)
    assert clock.skips == 1
    assert clock.wall_ns() >= OPEN_JAN4 - TEN_MINUTES  # the wall is at 09:20 EST (or past)
    assert clock.skipped_ns <= OPEN_JAN4 - TEN_MINUTES - CLOSE_JAN3
    assert 0.0 < wait <= 1.1  # the 11 minutes left: one wall second to the open, 0.1 after
    assert clock.seconds_until(BAR_JAN4) <= wait and clock.skips == 1  # no second jump
    assert clock.now_ns() == CLOSE_JAN3  # market time moves only with alarms
    assert clock.pop_alarm() is not None and clock.now_ns() == BAR_JAN4


def test_durations_read_as_hours_and_minutes():
    assert duration((17 * 3600 + 19 * 60 + 40) * NS_PER_SECOND) == "17 h 19 m"
    assert duration((4 * 60 + 10) * NS_PER_SECOND) == "4 m 10 s"
    assert duration(12 * NS_PER_SECOND) == "12 s"


def test_a_fill_prints_as_one_line_and_the_panel_shows_the_idle_line():
    ts = int(datetime(2023, 1, 3, 20, 52, tzinfo=UTC).timestamp()) * NS_PER_SECOND
    fill = OrderFilled(
        ts_event=ts,
        ts_init=ts,
        fill_id="f1",
        order_id="o1",
        strategy_id="h",
        symbol="AAA",
        side=OrderSide.BUY,
        quantity=10.0,
        price=22.161022,
        commission=0.05,
        slippage=0.044313,
        remaining_quantity=5.0,
    )
    assert fill_line(fill) == (
        "fill 2023-01-03T20:52:00+00:00 h buy 10 AAA @ 22.1610 commission 0.05 "
        "slippage 0.0443 (5 left)"
    )
    echo = io.StringIO()
    monitor = PaperMonitor(echo=echo)
    run_components(Script([(ts, FILLS, fill)]), monitor, start_ns=ts)
    assert echo.getvalue() == fill_line(fill) + "\n"
    monitor.note = "skipped closed market 2023-01-03 16:00 EST to 2023-01-04 09:20 EST"
    console = Console(file=io.StringIO(), width=120)
    console.print(monitor.render(status="market closed until 2023-01-04 09:30 EST"))
    panel = console.file.getvalue()
    assert "market closed until 2023-01-04 09:30 EST" in panel
    assert "skipped closed market 2023-01-03 16:00 EST to 2023-01-04 09:20 EST" in panel
    assert "last fills (1 in all)" in panel
