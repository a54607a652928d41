"""Row order checks and the opt-in repairs of a normalised chunk.

A chunk here has the normalised layout: ``__ts`` (Int64 UTC ns), ``symbol`` (the
universe's Enum when read for streaming; the source's strings when read for validation,
whose order is the Enum's, since the universe is sorted), OHLCV as Float64, then signal
and indicator columns. Every repair returns how many rows it dropped or changed, so
nothing is fixed silently.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from ml4t.backtest.data._source import TS
from ml4t.backtest.data.config import Repair

__all__ = [
    "OHLCV",
    "PRICES",
    "chunk_order_masks",
    "order_counts",
    "order_masks",
    "order_problems",
    "repair_chunk",
    "symbol_order",
]

OHLCV = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")


def order_masks(ts: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows out of (timestamp, symbol) order, and rows repeating the previous (timestamp, symbol).

    Both masks flag the later row of an offending adjacent pair.
    """
    n = len(ts)
    if n < 2:
        empty = np.zeros(n, dtype=bool)
        return empty, empty
    dts = np.diff(ts)
    dcode = np.diff(codes.astype(np.int64))
    same_ts = dts == 0
    unsorted = np.concatenate(([False], (dts < 0) | (same_ts & (dcode < 0))))
    dup = np.concatenate(([False], same_ts & (dcode == 0)))
    return unsorted, dup


def symbol_order(dtype: pl.DataType) -> pl.Expr:
    """The ``symbol`` column as a key in universe order: an Enum's codes, or the strings
    themselves (the universe is sorted, so string order is code order); a null symbol
    (rule ``null_key``) sorts first."""
    if isinstance(dtype, pl.Enum):
        return pl.col("symbol").to_physical().cast(pl.Int64).fill_null(-1)
    return pl.col("symbol").cast(pl.String).rank("dense").cast(pl.Int64).fill_null(-1)


def order_counts(dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr]:
    """Expressions counting the rows :func:`order_masks` flags (unsorted, repeated), for
    a chunk whose ``symbol`` column has ``dtype``: one pass in polars, no masks made."""
    ts = pl.col(TS).fill_null(np.iinfo(np.int64).min)
    if isinstance(dtype, pl.Enum):
        key = symbol_order(dtype)
    else:  # strings compare in universe order as they are
        key = pl.col("symbol").cast(pl.String).fill_null("")
    back = ts < ts.shift(1)
    same = ts == ts.shift(1)
    unsorted = (back | (same & (key < key.shift(1)))).fill_null(False).sum()
    repeated = (same & (key == key.shift(1))).fill_null(False).sum()
    return unsorted.alias("__unsorted"), repeated.alias("__repeated")


def chunk_order_masks(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ts = df[TS].fill_null(np.iinfo(np.int64).min).to_numpy()
    codes = df.select(symbol_order(df.schema["symbol"])).to_series().to_numpy()
    return order_masks(ts, codes)


def order_problems(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows out of order, and rows repeating an earlier (timestamp, symbol) of the chunk.

    In an ordered chunk every repeat is adjacent, so the cheap adjacent test is exact.
    Otherwise (two files holding the same bars, say) repeats are found by hash and the
    order is judged without them: overlapping files are duplicates, not disorder.
    """
    unsorted, dup = chunk_order_masks(df)
    if not unsorted.any():
        return unsorted, dup
    dup = ~df.select(pl.struct(TS, "symbol").is_first_distinct()).to_series().to_numpy()
    kept = np.flatnonzero(~dup)
    unsorted_kept, _ = chunk_order_masks(df[kept])
    unsorted = np.zeros(df.height, dtype=bool)
    unsorted[kept] = unsorted_kept
    return unsorted, dup


def repair_chunk(
    df: pl.DataFrame, repairs: Iterable[Repair]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Apply the chosen repairs in a fixed order; return the frame and per-repair counts.

    Order: sort, drop_null_ohlcv, drop_non_finite, drop_duplicates, drop_negative,
    drop_zero_price, clip_ohlc.
    """
    chosen = set(repairs)
    counts: dict[str, int] = {}
    if Repair.SORT in chosen:
        unsorted, _ = chunk_order_masks(df)
        moved = int(unsorted.sum())
        if moved:
            df = df.sort([TS, "symbol"], maintain_order=True)
        counts[Repair.SORT.value] = moved
    if Repair.DROP_NULL_OHLCV in chosen:
        bad = pl.any_horizontal([pl.col(c).is_null() | pl.col(c).is_nan() for c in OHLCV])
        df, counts[Repair.DROP_NULL_OHLCV.value] = _drop(df, bad)
    if Repair.DROP_NON_FINITE in chosen:
        df, counts[Repair.DROP_NON_FINITE.value] = _drop(
            df, pl.any_horizontal([pl.col(c).is_infinite() for c in OHLCV])
        )
    if Repair.DROP_DUPLICATES in chosen:
        df, counts[Repair.DROP_DUPLICATES.value] = _drop(
            df, ~pl.struct(TS, "symbol").is_first_distinct()
        )
    if Repair.DROP_NEGATIVE in chosen:
        df, counts[Repair.DROP_NEGATIVE.value] = _drop(
            df, pl.any_horizontal([pl.col(c) < 0 for c in OHLCV])
        )
    if Repair.DROP_ZERO_PRICE in chosen:
        df, counts[Repair.DROP_ZERO_PRICE.value] = _drop(
            df, pl.any_horizontal([pl.col(c) == 0 for c in PRICES])
        )
    if Repair.CLIP_OHLC in chosen:
        df, counts[Repair.CLIP_OHLC.value] = _clip_ohlc(df)
    return df, counts


def _drop(df: pl.DataFrame, bad: pl.Expr) -> tuple[pl.DataFrame, int]:
    n = df.height
    kept = df.filter(~bad.fill_null(False))
    return kept, n - kept.height


def _clip_ohlc(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Swap high and low where high < low, then clip open and close into [low, high]."""
    h, lo, o, c = pl.col("high"), pl.col("low"), pl.col("open"), pl.col("close")
    swapped = h < lo
    new_high = pl.when(swapped).then(lo).otherwise(h)
    new_low = pl.when(swapped).then(h).otherwise(lo)
    outside = (o < new_low) | (o > new_high) | (c < new_low) | (c > new_high)
    changed = swapped | outside
    n = int(df.select(changed.fill_null(False).sum()).item())
    if not n:
        return df, 0
    df = df.with_columns(high=new_high, low=new_low)
    df = df.with_columns(
        open=pl.col("open").clip(pl.col("low"), pl.col("high")),
        close=pl.col("close").clip(pl.col("low"), pl.col("high")),
    )
    return df, n
