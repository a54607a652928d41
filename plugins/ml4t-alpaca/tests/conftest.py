"""Fixtures: scripted minute bars written by hand, and a stand-in Alpaca server per test.

The bars are ml4t-shaped (``timestamp`` known at each bar's end, UTC; ``symbol``; OHLCV):
exactly what a backtest on the same data reads, so a test can compare the two. The
stand-in (``tests/alpaca_standin.py``) serves them on a free loopback port.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from alpaca_fakes import FIRST, KEY_ID, SECRET, SYMBOLS
from alpaca_standin import AlpacaStandIn, start_standin
from ml4t_alpaca import Credentials


def minute_bars(
    symbols: tuple[str, ...] = SYMBOLS, minutes: int = 40, seed: int = 5
) -> pl.DataFrame:
    """A seeded random walk per symbol, one bar a minute, OHLC consistent."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, symbol in enumerate(symbols):
        price = 50.0 + 25.0 * k
        for i in range(minutes):
            step = rng.normal(0, 0.002) * price
            open_ = price
            close = max(1.0, price + step)
            high = max(open_, close) * (1 + abs(rng.normal(0, 0.001)))
            low = min(open_, close) * (1 - abs(rng.normal(0, 0.001)))
            rows.append(
                {
                    "timestamp": FIRST + timedelta(minutes=i),
                    "symbol": symbol,
                    "open": round(open_, 4),
                    "high": round(high, 4),
                    "low": round(low, 4),
                    "close": round(close, 4),
                    "volume": float(rng.integers(1_000, 50_000)),
                }
            )
            price = close
    frame = pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    return frame.sort("timestamp", "symbol")


@pytest.fixture
def bars() -> pl.DataFrame:
    return minute_bars()


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(KEY_ID, SECRET)


@pytest.fixture
def standin(bars: pl.DataFrame) -> Iterator[AlpacaStandIn]:
    server = start_standin(bars, key_id=KEY_ID, secret_key=SECRET)
    try:
        yield server
    finally:
        server.stop()
