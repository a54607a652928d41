"""Whole engine runs of three bars: portfolio rows and MFE/MAE under each fill timing.

Bars of X (open, high, low, close), one a day; no costs, 1 share:
  b0 (100, 100, 100, 100)
  b1 (100, 101,  99, 100)
  b2 (100, 120,  80, 100)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from ml4t.backtest import Strategy
from ml4t.backtest.config import load_config
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.record import RecorderResults

BARS = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 120, 80, 100)]
T0 = datetime(2024, 1, 2, 21, tzinfo=UTC)


def asset() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(days=i) for i in range(len(BARS))],
            "symbol": ["X"] * len(BARS),
            "open": [float(b[0]) for b in BARS],
            "high": [float(b[1]) for b in BARS],
            "low": [float(b[2]) for b in BARS],
            "close": [float(b[3]) for b in BARS],
            "volume": [1e6] * len(BARS),
        }
    ).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))


class BuyThenSell(Strategy):
    """Buys 1 on the first bar; closes on bar ``sell_on`` (None: holds to the end)."""

    def __init__(self, name: str, sell_on: int | None) -> None:
        super().__init__(name)
        self.sell_on = sell_on
        self.bars = 0

    def on_bar(self, bar: Any) -> None:
        if self.bars == 0:
            self.buy(bar.symbol, 1)
        elif self.bars == self.sell_on:
            self.close_position(bar.symbol)
        self.bars += 1


def run(fill_timing: str, sell_on: int | None) -> RecorderResults:
    config = load_config(
        {
            "execution": {"fill_timing": fill_timing},
            "reporting": {"output_dir": None, "portfolio_frequency": "bar"},
        }
    )
    engine = BacktestEngine(config, strategy=BuyThenSell("s", sell_on), asset=asset())
    engine.run()
    assert engine.recorder.results is not None
    return engine.recorder.results


def test_same_close_run_writes_one_portfolio_row_per_timestamp_and_exposure_one() -> None:
    # bought at b0's close and held: invested at all 3 timestamps. The portfolio also
    # marks b0 before the fill; counted, that state gave 4 rows and exposure 3/4
    results = run("same_close", sell_on=None)
    table = results.portfolio
    assert table.height == 3
    assert table["timestamp"].n_unique() == 3
    assert table["num_positions"].to_list() == [1, 1, 1]
    assert results.metrics["exposure"] == 1.0


def test_same_close_exit_at_the_exit_bars_close_counts_the_exit_bar() -> None:
    # entry at b0's close (100), exit at b2's close (100): b1 and b2 were held whole
    (trade,) = results_rows(run("same_close", sell_on=2))
    assert (trade["entry_price"], trade["exit_price"]) == (100.0, 100.0)
    assert trade["max_favorable_excursion"] == 20.0  # b2's high 120 (1 without b2)
    assert trade["max_adverse_excursion"] == 20.0  # b2's low 80
    assert trade["holding_period_bars"] == 2


@pytest.mark.parametrize(
    ("fill_timing", "bars", "mfe", "mae"),
    [
        # entry at b1's open, end of data at b2's close: b1 and b2 count
        ("next_open", 2, 20.0, 20.0),
        # entry at b1's close, end of data at b2's close: b2 counts
        ("next_close", 1, 20.0, 20.0),
    ],
)
def test_a_trade_held_to_the_end_counts_the_bars_held_whole(
    fill_timing: str, bars: int, mfe: float, mae: float
) -> None:
    (trade,) = results_rows(run(fill_timing, sell_on=None))
    assert trade["exit_reason"] == "end_of_backtest"
    assert trade["holding_period_bars"] == bars
    assert (trade["max_favorable_excursion"], trade["max_adverse_excursion"]) == (mfe, mae)


def results_rows(results: RecorderResults) -> list[dict[str, Any]]:
    return results.trades.to_dicts()
