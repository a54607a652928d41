"""Time in force: IOC and FOK live for one bar of their symbol, DAY until the session
close, GTC until filled or cancelled."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import OrderCancelled, OrderExpired, OrderFilled
from ml4t.backtest._time import NS_PER_DAY, to_ns
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.topics import MARKET, ORDERS_APPROVED
from tests.execution._market import batch, day, fills_of, flat, order, run, simulate, table

THIN = BrokerConfig(volume_limit=0.1)  # 10 % of each bar's volume

IOC_FOK = [
    # id, tif, order fields, bar 1, expected fills (bar, qty, price), expected cancel reason
    (
        "ioc_market_fills_what_volume_allows",
        "ioc",
        {},
        (101, 102, 100, 101, 1000),
        [(1, 100, 101.0)],
        "immediate or cancel: 400 unfilled after one bar",
    ),
    (
        "ioc_market_enough_volume",
        "ioc",
        {},
        (101, 102, 100, 101, 1e6),
        [(1, 500, 101.0)],
        None,
    ),
    (
        "ioc_limit_not_reached",
        "ioc",
        {"kind": "limit", "limit_price": 99.0},
        (101, 102, 100, 101, 1e6),
        [],
        "immediate or cancel: 500 unfilled after one bar",
    ),
    (
        "fok_insufficient_volume_fills_nothing",
        "fok",
        {},
        (101, 102, 100, 101, 1000),
        [],
        "fill or kill: the bar allows 100 of the 500 remaining",
    ),
    (
        "fok_zero_volume_fills_nothing",
        "fok",
        {},
        (101, 102, 100, 101, 0),
        [],
        "fill or kill: the bar allows 0 of the 500 remaining",
    ),
    ("fok_enough_volume_fills_all", "fok", {}, (101, 102, 100, 101, 5000), [(1, 500, 101.0)], None),
    (
        "fok_limit_not_reached",
        "fok",
        {"kind": "limit", "limit_price": 99.0},
        (101, 102, 100, 101, 1e6),
        [],
        "fill or kill: 500 unfilled after one bar",
    ),
]


@pytest.mark.parametrize(("tif", "fields", "bar1", "expected", "reason"), table(IOC_FOK))
def test_ioc_and_fok_live_for_one_bar(tif, fields, bar1, expected, reason) -> None:
    request = order("o1", "buy", 500, time_in_force=tif, **fields)
    bars = [flat(100), bar1, (99, 100, 98, 99, 1e6)]  # bar 2 would fill anything
    capture, broker = simulate(bars, [request], THIN)
    assert fills_of(capture) == expected
    cancels = [c.reason for c in capture.of_type(OrderCancelled)]
    assert cancels == ([reason] if reason else [])
    assert not broker.book.get("o1").is_open


def test_ioc_waits_for_a_bar_of_its_own_symbol() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDERS_APPROVED, order("o1", "buy", 10, time_in_force="ioc")),
        (day(1), MARKET, batch(day(1), {"BBB": flat(51)})),
        (day(2), MARKET, batch(day(2), {"AAA": flat(102)})),
    ]
    capture = run(steps, SimulatedBroker())
    assert fills_of(capture) == [(2, 10, 102.0)]


# ---------------------------------------------------------------- DAY with a calendar

CLOSE = to_ns("2024-01-02T21:00:00+00:00")  # the session close
BAR_TIMES = [
    to_ns("2024-01-02T20:58:00+00:00"),
    to_ns("2024-01-02T20:59:00+00:00"),
    CLOSE,
    to_ns("2024-01-03T14:31:00+00:00"),
]


class ToyCalendar:
    """Sessions 14:30-21:00 UTC every day: a toy calendar with no holidays, shaped as
    SessionCalendar.arrays() answers (dates, opens, closes, early-close flags)."""

    def arrays(self, start_ns: int, end_ns: int):
        first, last = start_ns // NS_PER_DAY - 1, end_ns // NS_PER_DAY + 1
        days = np.arange(first, last + 1, dtype=np.int64)
        opens = days * NS_PER_DAY + int(14.5 * 3_600_000_000_000)
        closes = days * NS_PER_DAY + 21 * 3_600_000_000_000
        return days, opens, closes, np.zeros(len(days), dtype=bool)


session_close = ToyCalendar()


def at(i: int) -> int:
    return BAR_TIMES[i]


def test_day_order_expires_at_the_session_close() -> None:
    request = order("o1", "buy", 10, kind="limit", limit_price=90.0, time_in_force="day")
    bars = [flat(100), flat(100), flat(100), flat(85)]  # the next session would fill
    capture, broker = simulate(bars, [request], times=at, calendar=session_close)
    assert capture.of_type(OrderFilled) == []
    (expired,) = capture.of_type(OrderExpired)
    assert (expired.order_id, expired.ts_event, expired.filled_quantity) == ("o1", CLOSE, 0.0)
    assert broker.book.get("o1").history[-1] == (CLOSE, "expired")


def test_day_order_can_fill_on_the_closing_bar() -> None:
    request = order("o1", "buy", 10, kind="limit", limit_price=90.0, time_in_force="day")
    bars = [flat(100), flat(100), (95, 96, 89, 95, 1e6), flat(85)]
    capture, _ = simulate(bars, [request], times=at, calendar=session_close)
    assert fills_of(capture, at) == [(2, 10, 90.0)]
    assert capture.of_type(OrderExpired) == []


def test_day_order_submitted_at_the_close_is_for_the_next_session() -> None:
    request = order("o1", "buy", 10, kind="limit", limit_price=90.0, time_in_force="day")
    bars = [flat(100), flat(100), flat(100), flat(85)]
    capture, _ = simulate(bars, [], times=at, calendar=session_close, later=[(2, request)])
    assert fills_of(capture, at) == [(3, 10, 85.0)]
    assert capture.of_type(OrderExpired) == []


def test_partially_filled_day_order_expires_with_its_fills() -> None:
    request = order("o1", "buy", 500, time_in_force="day")
    bars = [flat(100), (100, 100, 100, 100, 1000), (100, 100, 100, 100, 1000), flat(100)]
    capture, _ = simulate(bars, [request], THIN, times=at, calendar=session_close)
    assert [f.quantity for f in capture.of_type(OrderFilled)] == [100.0, 100.0]
    (expired,) = capture.of_type(OrderExpired)
    assert expired.filled_quantity == 200.0


def test_day_order_on_a_symbol_without_a_closing_bar_still_expires() -> None:
    request = order(
        "o1", "buy", 10, symbol="BBB", kind="limit", limit_price=1.0, time_in_force="day"
    )
    steps = [
        (at(0), MARKET, batch(at(0), {"AAA": flat(100), "BBB": flat(50)})),
        (at(0), ORDERS_APPROVED, request),
        (at(2), MARKET, batch(at(2), {"AAA": flat(100)})),
    ]
    capture = run(steps, SimulatedBroker(calendar=session_close))
    (expired,) = capture.of_type(OrderExpired)
    assert expired.ts_event == CLOSE


# ---------------------------------------------------------------- DAY without a calendar


def test_day_order_without_calendar_lives_for_the_utc_day_of_the_next_batch() -> None:
    # daily bars at 21:00 UTC: accepted on day 0, it trades on day 1, expires before day 2
    request = order("o1", "buy", 10, kind="limit", limit_price=90.0, time_in_force="day")
    bars = [flat(100), flat(100), flat(85)]
    capture, _ = simulate(bars, [request])
    assert capture.of_type(OrderFilled) == []
    (expired,) = capture.of_type(OrderExpired)
    assert expired.ts_event == day(2)


def test_day_order_without_calendar_minute_bars_expire_overnight() -> None:
    times = [
        to_ns("2024-01-02T14:31:00+00:00"),
        to_ns("2024-01-02T14:32:00+00:00"),
        to_ns("2024-01-02T20:59:00+00:00"),
        to_ns("2024-01-03T14:31:00+00:00"),
    ]
    request = order("o1", "buy", 10, kind="limit", limit_price=90.0, time_in_force="day")
    capture, _ = simulate(
        [flat(100), flat(100), flat(100), flat(85)], [request], times=times.__getitem__
    )
    assert capture.of_type(OrderFilled) == []
    assert [e.ts_event for e in capture.of_type(OrderExpired)] == [times[3]]


def test_gtc_order_lives_until_it_fills() -> None:
    request = order("o1", "buy", 10, kind="limit", limit_price=90.0)
    bars = [flat(100), flat(99), flat(98), flat(97), flat(96), (95, 95, 89, 91, 1e6)]
    capture, _ = simulate(bars, [request])
    assert fills_of(capture) == [(5, 10, 90.0)]
    assert capture.of_type(OrderExpired) == []
