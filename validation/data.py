"""Deterministic bars and signals for the parity scenarios.

Each scenario asks for a panel: ``n_symbols`` x ``n_bars`` bars from a seeded random
walk with overnight gaps, and boolean entry/exit signals drawn with given rates. The
same arguments always give the same data (numpy's PCG64 with the scenario's seed), so
every framework trades exactly the same prices.

Bars are consistent (``low <= open, close <= high``) and unrounded: a price grid would
make exact touches of stop levels common, and two frameworks computing a level with
different float formulas (``c * (1 - p)`` against ``c - c * p``) could then disagree
on a touch; the comparison is about semantics, not the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

__all__ = ["Panel", "bar_times", "make_panel", "symbols"]

DAY_NS = 86_400_000_000_000
MINUTE_NS = 60_000_000_000
SIGNALS = ("long_entry", "long_exit", "short_entry", "short_exit")


def symbols(n: int) -> list[str]:
    """``n`` sorted tickers: S000, S001, ..."""
    return [f"S{i:03d}" for i in range(n)]


def bar_times(n: int, frequency: str = "1d") -> np.ndarray:
    """``n`` bar times (ns UTC, labelled at the bar's close): weekdays at 21:00 from
    2021-01-04, or 390 one-minute bars a weekday from 14:31."""
    if frequency == "1d":
        days = pd.bdate_range("2021-01-04", periods=n, tz="UTC") + pd.Timedelta(hours=21)
        return days.as_unit("ns").asi8.astype(np.int64)
    sessions = -(-n // 390)
    days = pd.bdate_range("2021-01-04", periods=sessions, tz="UTC").as_unit("ns").asi8
    days = days.astype(np.int64)
    minutes = (14 * 60 + 31 + np.arange(390)) * MINUTE_NS
    return (days[:, None] + minutes[None, :]).ravel()[:n]


@dataclass(frozen=True)
class Panel:
    """Bars and signals, one row per (timestamp, symbol), sorted; ``frame`` is long
    format with ``timestamp`` (ns UTC datetime), ``symbol``, OHLCV and the signals."""

    frame: pl.DataFrame
    symbols: list[str]
    times: np.ndarray

    def wide(self, column: str) -> np.ndarray:
        """``column`` as an array of shape (bars, symbols)."""
        values = self.frame.get_column(column).to_numpy()
        return values.reshape(len(self.times), len(self.symbols))

    def pandas(self, column: str) -> pd.DataFrame:
        """``column`` as a pandas frame indexed by naive-UTC timestamps, one column per
        symbol (the shape vectorbt takes)."""
        index = pd.to_datetime(self.times, unit="ns", utc=True).tz_localize(None)
        return pd.DataFrame(self.wide(column), index=index, columns=self.symbols)


def make_panel(
    *,
    seed: int,
    n_bars: int,
    n_symbols: int = 1,
    frequency: str = "1d",
    vol: float = 0.02,
    gap_vol: float = 0.005,
    entry_rate: float = 0.08,
    exit_rate: float = 0.08,
    short_rate: float = 0.0,
    regime_gaps: float = 0.0,
    signal_every: int = 1,
) -> Panel:
    """A panel of random-walk bars with signals.

    ``vol`` is the close-to-close volatility, ``gap_vol`` the open's gap from the
    previous close; ``regime_gaps`` is the probability per bar of a ±10 % overnight gap
    and of a change of drift regime (the stress scenario). Long entries and exits fire
    with ``entry_rate``/``exit_rate``, short entries and exits with ``short_rate``; a bar
    never carries two signals, so "entry and exit on one bar" never needs resolving.
    ``signal_every`` > 1 keeps signals only on every n-th bar (daily signals on minute
    bars: the first bar of each 390-bar session).
    """
    rng = np.random.default_rng(seed)
    shape = (n_bars, n_symbols)
    drift = np.zeros(shape)
    if regime_gaps:
        regime = np.cumsum(rng.random(shape) < regime_gaps, axis=0) % 3
        drift = np.choose(regime, [0.0, 0.004, -0.004])
    ret = drift + vol * rng.standard_normal(shape)
    gap = gap_vol * rng.standard_normal(shape)
    if regime_gaps:
        jumps = rng.random(shape) < regime_gaps
        gap = np.where(jumps, rng.choice([-0.10, 0.10], size=shape), gap)
    start = rng.uniform(20.0, 200.0, n_symbols)
    close = start * np.exp(np.cumsum(ret, axis=0))
    prev = np.vstack([start, close[:-1]])
    open_ = prev * np.exp(gap)
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    high = body_hi * (1.0 + np.abs(rng.normal(0.0, vol / 2, shape)))
    low = body_lo * (1.0 - np.abs(rng.normal(0.0, vol / 2, shape)))
    volume = np.full(shape, 1e9)
    draw = rng.random(shape)
    cuts = np.cumsum([entry_rate, exit_rate, short_rate, short_rate])
    signal = np.searchsorted(cuts, draw, side="right")  # 0..3 a signal, 4 none
    if signal_every > 1:
        signal[np.arange(n_bars) % signal_every != 0] = len(SIGNALS)
    times = bar_times(n_bars, frequency)
    names = symbols(n_symbols)
    columns = {
        "timestamp": pl.Series(np.repeat(times, n_symbols)).cast(pl.Datetime("ns", "UTC")),
        "symbol": pl.Series(names * n_bars, dtype=pl.Enum(names)),
        "open": open_.ravel(),
        "high": high.ravel(),
        "low": low.ravel(),
        "close": close.ravel(),
        "volume": volume.ravel(),
    }
    for k, name in enumerate(SIGNALS):
        columns[name] = (signal == k).ravel()
    return Panel(pl.DataFrame(columns), names, times)
