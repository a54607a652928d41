"""Daily returns by session, returns at any frequency, the daily and intraday drawdowns,
the positions held each day and the benchmark, on scripted worlds computed by hand."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import (
    ComponentError,
    ConfigError,
    DataValidationError,
    OrderSide,
    PositionChanged,
    Runtime,
    SessionStarted,
    SimulatedClock,
    to_ns,
)
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.record import Recorder, RecorderResults, ReportingConfig
from ml4t.backtest.record.config import BenchmarkConfig
from ml4t.backtest.record.returns import parse_frequency
from ml4t.backtest.testing import Script
from ml4t.backtest.topics import POSITIONS, SESSION

from ._world import Tape


def utc(text: str) -> int:
    return to_ns(f"{text}+00:00")


# NYSE sessions in January 2024 are 14:30-21:00 UTC: Jan 2, 3, 4, 5 (Fri), 8 (Mon).
# (time, equity, X's close, SPY as of then); X: 2 shares from the first state on.
STATES = [
    ("2024-01-02T15:00", 105.0, 10.0, 400.0),
    ("2024-01-02T21:00", 110.0, 12.0, 404.0),  # the close
    ("2024-01-02T23:00", 108.0, 11.0, 402.0),  # after hours: still the Jan 2 session
    ("2024-01-03T14:00", 104.0, 9.0, 401.0),  # pre-market: the session that closed last
    ("2024-01-03T16:00", 90.0, 2.0, 390.0),  # the intraday trough
    ("2024-01-03T21:00", 99.0, 6.5, 396.0),
    ("2024-01-04T21:00", 115.0, 14.5, 410.0),
    ("2024-01-05T21:00", 112.0, 13.0, 405.0),
    ("2024-01-08T21:00", 100.8, 7.4, 390.0),
]
# the last state of each session: Jan 2 (pre-market of Jan 3), 3, 4, 5, 8
SESSION_EQUITY = [104.0, 99.0, 115.0, 112.0, 100.8]
SESSION_DATES = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]


def world(*, calendar: str = "NYSE", timezone: str = "UTC", spy: bool = True) -> Tape:
    tape = Tape(["X"])
    first = utc(STATES[0][0])
    session = SessionStarted(
        ts_event=first,
        ts_init=first,
        calendar=calendar,
        timezone=timezone,
        initial_cash=100.0,
        sessions_per_year=252 if calendar else 0,
        symbols=["X"],
        context=["spy"] if spy else [],
    )
    tape.steps.append((first, SESSION, session))
    for i, (when, equity, close, level) in enumerate(STATES):
        ts = utc(when)
        context = {"spy": level} if spy else {}
        tape.bar(ts, {"X": (close, close, close, close)}, context=context)
        if i == 0:
            tape.order(ts, "A", "X", OrderSide.BUY, 2)
            tape.fill(ts, "A", "X", OrderSide.BUY, 2, close)
            changed = PositionChanged(
                ts_event=ts, ts_init=ts, symbol="X", quantity=2.0, avg_price=close, realized_pnl=0
            )
            tape.steps.append((ts, POSITIONS, changed))
        tape.snapshot(ts, equity, equity - 2 * close, {"X": 2.0}, {"X": close})
    return tape


def run(
    tape: Tape, out: Path | None = None, *, calendar: str | None = "NYSE", **config: Any
) -> RecorderResults:
    """Run the tape into a recorder on a graph with ``calendar`` (as the engine gives it)."""
    if isinstance(config.get("benchmark"), dict):
        config["benchmark"] = BenchmarkConfig(**config["benchmark"])
    recorder = Recorder(ReportingConfig(output_dir=str(out) if out else None, **config))
    cal = SessionCalendar(calendar) if calendar else None
    runtime = Runtime(clock=SimulatedClock(), strict=True, calendar=cal)
    runtime.add(Script(tape.steps))
    runtime.add(recorder)
    runtime.run_sync()
    assert recorder.results is not None
    return recorder.results


def expected_returns(equity: list[float], initial: float = 100.0) -> list[float]:
    previous = [initial, *equity[:-1]]
    return [e / p - 1.0 for e, p in zip(equity, previous, strict=True)]


def test_one_return_per_session_labelled_by_its_date() -> None:
    results = run(world())
    daily = results.returns()
    assert [str(d) for d in daily["date"]] == SESSION_DATES
    assert daily["equity"].to_list() == SESSION_EQUITY
    np.testing.assert_allclose(daily["return"], expected_returns(SESSION_EQUITY), rtol=1e-15)
    assert results.daily_returns["cash"].to_list() == [
        104.0 - 18,
        99 - 13,
        115 - 29,
        112 - 26,
        100.8 - 14.8,
    ]
    assert results.equity("1D").columns == ["date", "equity"]
    metrics = results.metrics
    assert metrics["return_periods"] == 5 and metrics["periods_per_year"] == 252
    assert metrics["calendar"] == "NYSE" and metrics["day_timezone"] == "America/New_York"


def test_days_without_a_calendar_are_dates_in_the_data_timezone() -> None:
    # in New York, 23:00 UTC is 18:00 of Jan 2 and 14:00 UTC is 09:00 of Jan 3
    results = run(world(calendar="", timezone="America/New_York"), calendar=None)
    assert results.returns()["equity"].to_list() == [108.0, 99.0, 115.0, 112.0, 100.8]
    # an explicit day_timezone wins over the calendar's sessions
    utc_days = run(world(), day_timezone="UTC")
    assert utc_days.returns()["equity"].to_list() == [108.0, 99.0, 115.0, 112.0, 100.8]
    assert utc_days.metrics["day_timezone"] == "UTC" and utc_days.metrics["calendar"] is None
    # a session that names a calendar the graph was not given: dates (a warning says so)
    no_graph_calendar = run(world(), calendar=None)
    assert no_graph_calendar.returns()["equity"].to_list() == [108.0, 99.0, 115.0, 112.0, 100.8]


def test_longer_periods_compound_the_days_and_are_labelled_by_their_last_day() -> None:
    results = run(world())
    weekly = results.returns("1W")  # weeks from Monday: Jan 2-5, Jan 8
    assert [str(d) for d in weekly["date"]] == ["2024-01-05", "2024-01-08"]
    np.testing.assert_allclose(weekly["return"], [112 / 100 - 1, 100.8 / 112 - 1], rtol=1e-15)
    # weeks ending on Wednesday: Jan 2-3, then Jan 4-8
    wednesday = results.returns("W-WED")
    assert [str(d) for d in wednesday["date"]] == ["2024-01-03", "2024-01-08"]
    np.testing.assert_allclose(wednesday["return"], [99 / 100 - 1, 100.8 / 99 - 1], rtol=1e-15)
    for alias in ("1M", "ME", "MS", "1mo", "Q", "1y", "A"):
        period = results.returns(alias)
        assert period["equity"].to_list() == [100.8], alias
        assert period["return"][0] == pytest.approx(0.008, rel=1e-12)
    # the product of a period's daily growth is its growth
    assert (results.returns()["return"] + 1).product() == pytest.approx(1.008, rel=1e-12)


def test_periods_below_a_day_come_from_the_portfolio_states() -> None:
    results = run(world())
    hourly = results.returns("1h")  # every state is in an hour of its own
    assert hourly.columns == ["timestamp", "return", "equity"]
    assert hourly["equity"].to_list() == [s[1] for s in STATES]
    assert hourly["return"][0] == pytest.approx(0.05)
    assert hourly["return"][1] == pytest.approx(110 / 105 - 1)
    # 12h windows in New York (the calendar's zone): 00-12 and 12-24 local time; Jan 2
    # 10:00 | 16:00, 18:00 | Jan 3 09:00, 11:00 | 16:00 | Jan 4, 5, 8 at 16:00
    halves = results.equity("12h")
    assert halves["equity"].to_list() == [105.0, 108.0, 90.0, 99.0, 115.0, 112.0, 100.8]
    without = run(world(), tables=("trades",))
    with pytest.raises(ConfigError, match=r"needs portfolio\.parquet"):
        without.returns("1h")


def test_drawdown_metrics_use_daily_returns_and_the_intraday_ones_every_state() -> None:
    metrics = run(world()).metrics
    # daily: peak 115 (Jan 4) -> 100.8 (Jan 8), never recovered
    assert metrics["max_drawdown"] == pytest.approx(100.8 / 115 - 1, rel=1e-12)
    assert metrics["max_drawdown_start"] == "2024-01-04"
    assert metrics["max_drawdown_trough"] == "2024-01-08"
    assert metrics["max_drawdown_end"] is None
    # under water from Jan 2 (104) to Jan 4 (115): 2 days; from Jan 4 to the end: 4 days
    assert metrics["max_drawdown_duration_days"] == 4.0
    # every state: 110 at the Jan 2 close down to 90 at Jan 3 16:00, back above on Jan 4
    assert metrics["max_drawdown_intraday"] == pytest.approx(90 / 110 - 1, rel=1e-12)
    assert metrics["max_drawdown_intraday_start"].startswith("2024-01-02T21:00")
    assert metrics["max_drawdown_intraday_trough"].startswith("2024-01-03T16:00")
    assert metrics["max_drawdown_intraday_end"].startswith("2024-01-04T21:00")
    r = np.array(expected_returns(SESSION_EQUITY))
    cagr = 1.008 ** (252 / 5) - 1
    assert metrics["annual_return"] == pytest.approx(cagr, rel=1e-12)
    assert metrics["calmar_ratio"] == pytest.approx(cagr / (1 - 100.8 / 115), rel=1e-12)
    sharpe = r.mean() / r.std(ddof=1) * math.sqrt(252)
    assert metrics["sharpe_ratio"] == pytest.approx(sharpe, rel=1e-12)


def test_the_positions_held_at_each_days_end() -> None:
    results = run(world())
    held = results.daily_positions
    assert held.columns == ["date", "symbol", "quantity", "price", "value"]
    assert held["quantity"].to_list() == [2.0] * 5
    assert held["price"].to_list() == [9.0, 6.5, 14.5, 13.0, 7.4]
    joined = results.daily_returns.join(held, on="date")
    np.testing.assert_allclose(joined["cash"] + joined["value"], joined["equity"], rtol=1e-15)


def test_to_pyfolio_and_to_quantstats_shapes() -> None:
    returns, positions, transactions = run(world()).to_pyfolio()
    assert str(returns.index.tz) == "UTC"
    assert [d.isoformat() for d in returns.index] == [f"{d}T00:00:00+00:00" for d in SESSION_DATES]
    np.testing.assert_allclose(returns.to_numpy(), expected_returns(SESSION_EQUITY))
    assert list(positions.columns) == ["X", "cash"]
    assert positions.index.equals(returns.index)
    np.testing.assert_allclose(positions.sum(axis=1).to_numpy(), SESSION_EQUITY)
    assert transactions.index.name == "dt" and list(transactions.columns) == [
        "amount",
        "price",
        "symbol",
    ]
    assert transactions.iloc[0].to_dict() == {"amount": 2.0, "price": 10.0, "symbol": "X"}
    quantstats = run(world()).to_quantstats()
    assert quantstats.index.tz is None and quantstats.to_list() == returns.to_list()


def test_a_context_field_benchmark_is_taken_with_our_equity() -> None:
    results = run(world(), benchmark={"field": "spy"})
    bench = results.benchmark_returns()
    # the base: SPY as of the first state (400); then as of each session's last state
    levels = [401.0, 396.0, 410.0, 405.0, 390.0]
    np.testing.assert_allclose(bench["return"], expected_returns(levels, 400.0), rtol=1e-15)
    assert bench["date"].to_list() == results.returns()["date"].to_list()
    weekly = results.benchmark_returns("1W")
    np.testing.assert_allclose(weekly["return"], [405 / 400 - 1, 390 / 405 - 1], rtol=1e-12)
    metrics = results.metrics
    assert metrics["benchmark"] == "spy" and metrics["benchmark_return_periods"] == 5
    assert metrics["benchmark_total_return"] == pytest.approx(390 / 400 - 1, rel=1e-12)
    r, b = np.array(expected_returns(SESSION_EQUITY)), np.array(expected_returns(levels, 400.0))
    beta = np.cov(r, b)[0, 1] / np.var(b, ddof=1)
    alpha = (1 + np.mean(r - beta * b)) ** 252 - 1
    assert metrics["beta"] == pytest.approx(beta, rel=1e-12)
    assert metrics["alpha"] == pytest.approx(alpha, rel=1e-12)
    active = r - b
    te = active.std(ddof=1) * math.sqrt(252)
    assert metrics["tracking_error"] == pytest.approx(te, rel=1e-12)
    assert metrics["information_ratio"] == pytest.approx(active.mean() * 252 / te, rel=1e-12)
    up, down = b > 0, b < 0
    assert metrics["up_capture"] == pytest.approx(
        ((1 + r[up]).prod() ** (252 / up.sum()) - 1) / ((1 + b[up]).prod() ** (252 / up.sum()) - 1)
    )
    assert metrics["down_capture"] == pytest.approx(
        ((1 + r[down]).prod() ** (252 / down.sum()) - 1)
        / ((1 + b[down]).prod() ** (252 / down.sum()) - 1)
    )


def test_a_file_benchmark_is_joined_as_of_the_same_states(tmp_path: Path) -> None:
    # closes known at each session's close (21:00 UTC), and one before the run
    closes = pl.DataFrame(
        {
            "time": [
                "2023-12-29 21:00",
                "2024-01-02 21:00",
                "2024-01-03 21:00",
                "2024-01-04 21:00",
                "2024-01-05 21:00",
                "2024-01-08 21:00",
            ],
            "close": [470.0, 472.0, 468.0, 475.0, 474.0, 480.0],
        }
    ).with_columns(pl.col("time").str.to_datetime())
    closes.write_parquet(tmp_path / "spy.parquet")
    benchmark = {
        "path": str(tmp_path / "spy.parquet"),
        "column": "close",
        "timestamp_column": "time",
        "timezone": "UTC",
        "name": "SPY",
    }
    results = run(world(spy=False), tmp_path / "out", benchmark=benchmark)
    # base: as of Jan 2 15:00 (the Dec 29 close); Jan 2's session ends at Jan 3 14:00
    levels = [472.0, 468.0, 475.0, 474.0, 480.0]
    expected = expected_returns(levels, 470.0)
    np.testing.assert_allclose(results.benchmark_returns()["return"], expected, rtol=1e-15)
    on_disk = pl.read_parquet(tmp_path / "out" / "benchmark_returns.parquet")
    assert on_disk.columns == ["date", "return"] and on_disk["return"].to_list() == expected
    loaded = RecorderResults.load(tmp_path / "out")
    assert loaded.benchmark_returns().equals(results.benchmark_returns())
    assert loaded.metrics["benchmark"] == "SPY"
    # the same file as CSV with naive times and their zone
    closes.write_csv(tmp_path / "spy.csv")
    as_csv = run(world(spy=False), benchmark={**benchmark, "path": str(tmp_path / "spy.csv")})
    assert as_csv.benchmark_returns()["return"].to_list() == expected


def test_without_a_benchmark_its_metrics_are_null(tmp_path: Path) -> None:
    results = run(world(), tmp_path)
    assert results.metrics["benchmark"] is None and math.isnan(results.metrics["beta"])
    assert results.benchmark_returns().height == 0
    assert not (tmp_path / "benchmark_returns.parquet").exists()


def test_bad_benchmarks_fail_with_the_file_row_or_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either field"):
        BenchmarkConfig(field="spy", path="x.parquet", column="close")
    with pytest.raises(ConfigError, match="needs column"):
        BenchmarkConfig(path="x.parquet")
    with pytest.raises(ConfigError, match=r"unknown benchmark\.timezone"):
        BenchmarkConfig(path="x.parquet", column="c", timezone="Mars/Olympus")
    with fails(ConfigError, "'vix' is not a context field of this run \\(spy\\)"):
        run(world(), benchmark={"field": "vix"})
    with fails(ConfigError, "does not exist"):
        run(world(), benchmark={"path": str(tmp_path / "none.parquet"), "column": "c"})
    frame = pl.DataFrame(
        {
            "timestamp": ["2024-01-02T21:00:00Z", "2024-01-03T21:00:00Z", "2024-01-03T21:00:00Z"],
            "close": [470.0, -1.0, 3.0],
        }
    ).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    path = tmp_path / "bad.parquet"
    frame.write_parquet(path)
    with fails(ConfigError, "has no column 'px'.*timestamp, close"):
        run(world(), benchmark={"path": str(path), "column": "px"})
    with fails(DataValidationError, r"'close': 1 rows are missing or not > 0, first row 1"):
        run(world(), benchmark={"path": str(path), "column": "close"})
    frame.with_columns(pl.col("close").abs()).write_parquet(path)
    with fails(DataValidationError, "1 duplicate timestamps, first 2024-01-03 21:00"):
        run(world(), benchmark={"path": str(path), "column": "close"})
    frame.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).write_parquet(path)
    with fails(DataValidationError, "no timezone.*set benchmark.timezone"):
        run(world(), benchmark={"path": str(path), "column": "close"})
    tape = world()
    tape.bar(utc("2024-01-09T21:00"), {"X": (7, 7, 7, 7)}, context={"spy": 0.0})
    with fails(DataValidationError, "benchmark field 'spy' is 0.0"):
        run(tape, benchmark={"field": "spy"})


@contextlib.contextmanager
def fails(cls: type[Exception], match: str) -> Iterator[None]:
    """The run fails (a ComponentError naming the recorder) because of a ``cls``."""
    with pytest.raises(ComponentError, match=match) as raised:
        yield
    assert isinstance(raised.value.__cause__, cls), raised.value.__cause__


@pytest.mark.parametrize(
    ("text", "every", "daily"),
    [
        ("1D", "1d", True),
        ("D", "1d", True),
        ("B", "1d", True),
        ("1d", "1d", True),
        ("W", "1w", True),
        ("2W", "2w", True),
        ("1M", "1mo", True),
        ("ME", "1mo", True),
        ("1mo", "1mo", True),
        ("QE-DEC", "1q", True),
        ("Y", "1y", True),
        ("h", "1h", False),
        ("4h", "4h", False),
        ("30min", "30m", False),
        ("30m", "30m", False),
        ("15T", "15m", False),
        ("10s", "10s", False),
        ("ms", "1ms", False),
    ],
)
def test_frequencies_polars_and_pandas(text: str, every: str, daily: bool) -> None:
    freq = parse_frequency(text)
    assert (freq.every, freq.daily) == (every, daily)


@pytest.mark.parametrize("text", ["", "fortnight", "0D", "W-XYZ", "M-JAN", "1i"])
def test_a_frequency_not_understood_says_what_is(text: str) -> None:
    with pytest.raises(ConfigError, match=r"polars duration .* pandas alias"):
        parse_frequency(text)


def test_sessions_per_year_is_the_calendars_typical_year() -> None:
    start_2023 = utc("2023-01-03T00:00")
    assert SessionCalendar("NYSE").sessions_in_year(start_2023) == 250  # that one year
    assert SessionCalendar("NYSE").sessions_per_year(start_2023) == 252
    assert SessionCalendar("XLON").sessions_per_year(start_2023) == 253
    assert SessionCalendar("24/7").sessions_per_year(start_2023) == 365
