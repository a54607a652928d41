"""Back-adjusted prices from raw bars and their corporate actions.

:func:`adjusted` rescales every bar *before* an action so that each symbol's series is
continuous in the units of its last bar (the convention of "adjusted close" columns):

- a split of ratio ``r`` (effective ``e``): bars known at or before ``e`` get their
  prices divided by ``r`` and their volume multiplied by ``r``;
- a dividend of amount ``a`` (with ``dividends=True``): bars known at or before ``e``
  get their prices multiplied by ``1 - a / c``, where ``c`` is the close of the
  symbol's last bar at or before ``e`` (the close the dividend comes off); volume is
  unchanged. A dividend before the symbol's first bar adjusts nothing.

Factors multiply, so a bar's factor is the product over every later action of its
symbol. With splits only, adjusted returns equal the raw returns with the splits undone;
with dividends too, they are total returns (dividends reinvested). Symbol changes and
delistings are ignored: rows keep the symbol they have in the data.

>>> import polars as pl
>>> from ml4t.backtest.data.actions import ActionKind, ActionSchedule, CorporateActionRow
>>> bars = pl.DataFrame({"timestamp": pl.Series([1, 2, 3]).cast(pl.Datetime("ns", "UTC")),
...     "symbol": ["A"] * 3, "open": [100.0, 102.0, 26.0], "high": [101.0, 104.0, 27.0],
...     "low": [99.0, 101.0, 25.0], "close": [100.0, 104.0, 26.5], "volume": [10.0] * 3})
>>> split = CorporateActionRow(symbol="A", action=ActionKind.SPLIT, effective_ns=2, ratio=4.0)
>>> out = adjusted(bars, ActionSchedule(rows=(split,)))
>>> out["close"].to_list(), out["volume"].to_list()
([25.0, 26.0, 26.5], [40.0, 40.0, 10.0])
"""

from __future__ import annotations

import polars as pl

from ml4t.backtest.data.actions import ActionSchedule
from ml4t.backtest.errors import DataValidationError

__all__ = ["PRICE_COLUMNS", "adjusted"]

PRICE_COLUMNS = ("open", "high", "low", "close")
_TS, _ROW = "__ts", "__row"


def adjusted(
    asset: pl.DataFrame,
    schedule: ActionSchedule,
    *,
    dividends: bool = True,
    timestamp_column: str = "timestamp",
    symbol_column: str = "symbol",
) -> pl.DataFrame:
    """``asset`` (long format, timezone-aware timestamps) with back-adjusted prices and
    volume; rows, their order and every other column are unchanged."""
    kinds = ["split", "dividend"] if dividends else ["split"]
    actions = schedule.frame().filter(pl.col("action").is_in(kinds))
    if actions.height == 0:
        return asset.clone()
    ts = (
        pl.col(timestamp_column)
        .dt.convert_time_zone("UTC")
        .dt.cast_time_unit("ns")
        .to_physical()
        .alias(_TS)
    )
    bars = asset.with_row_index(_ROW).with_columns(
        ts, pl.col(symbol_column).cast(pl.String).alias("__symbol")
    )
    factors = _factors(actions, bars.select(_TS, "__symbol", "close").sort(_TS))
    joined = bars.sort(_TS).join_asof(
        factors,
        left_on=_TS,
        right_on="effective_ns",
        by_left="__symbol",
        by_right="symbol",
        strategy="forward",  # the first action at or after the bar: the bar is before it
        check_sortedness=False,
    )
    price = pl.col("__price").fill_null(1.0)
    volume = pl.col("__volume").fill_null(1.0)
    columns = [c for c in PRICE_COLUMNS if c in asset.columns]
    out = joined.with_columns(
        *(pl.col(c) * price for c in columns),
        *([pl.col("volume") * volume] if "volume" in asset.columns else []),
    )
    return out.sort(_ROW).select(asset.columns)


def _factors(actions: pl.DataFrame, closes: pl.DataFrame) -> pl.DataFrame:
    """Per (symbol, instant): the cumulative price and volume factor of every action of
    the symbol at or after that instant."""
    with_close = actions.sort("effective_ns").join_asof(
        closes.rename({"__symbol": "symbol", "close": "__close"}),
        left_on="effective_ns",
        right_on=_TS,
        by="symbol",
        strategy="backward",  # the last bar at or before the action
        check_sortedness=False,
    )
    each = with_close.with_columns(
        __price=pl.when(pl.col("action") == "split")
        .then(1.0 / pl.col("ratio"))
        .when(pl.col("__close").is_null())
        .then(1.0)
        .otherwise(1.0 - pl.col("amount") / pl.col("__close")),
        __volume=pl.when(pl.col("action") == "split").then(pl.col("ratio")).otherwise(1.0),
    )
    bad = each.filter(pl.col("__price") <= 0)
    if bad.height:
        row = bad.row(0, named=True)
        raise DataValidationError(
            f"cannot back-adjust: the dividend of {row['symbol']} (row {row['source_row']}) "
            f"pays {row['amount']}, not less than the close it comes off ({row['__close']}); "
            "check the amount"
        )
    per_instant = (
        each.group_by("symbol", "effective_ns")
        .agg(pl.col("__price").product(), pl.col("__volume").product())
        .sort("symbol", "effective_ns")
    )
    return per_instant.with_columns(
        pl.col("__price", "__volume").cum_prod(reverse=True).over("symbol")
    ).sort("effective_ns")
