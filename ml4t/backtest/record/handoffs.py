"""A run's results in the shapes pyfolio, quantstats and empyrical take, with no glue.

- :func:`pyfolio_frames`: ``(returns, positions, transactions)`` as
  ``pyfolio.create_full_tear_sheet(returns, positions=..., transactions=...)`` takes
  them: daily returns on a tz-aware (UTC) midnight index, one per day (session); the
  value of each position at each day's end, one column per symbol and ``cash``; one row
  per fill, indexed by its time (``dt``), with ``amount`` (signed shares: a buy > 0),
  ``price`` and ``symbol``.
- :func:`quantstats_returns`: the same daily returns on a tz-naive index, as quantstats
  expects of a price history (``qs.reports.html(returns)``); empyrical takes either.

Built from the ``daily_returns``, ``daily_positions`` and ``fills`` tables, so they work
as well on results loaded from a directory as on a run in memory.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["pyfolio_frames", "quantstats_returns"]


def _index(ns: Any, *, utc: bool, name: str | None = None) -> Any:
    """A nanosecond DatetimeIndex; every index made here has the same unit and the same
    UTC zone, so pandas aligns them (pyfolio divides transactions by positions)."""
    import pandas as pd

    index = pd.DatetimeIndex(ns.astype("datetime64[ns]"), name=name)
    return index.tz_localize("UTC") if utc else index


def _dates(frame: pl.DataFrame, *, utc: bool) -> Any:
    return _index(frame.get_column("date").to_numpy(), utc=utc)


def returns_series(daily: pl.DataFrame, *, utc: bool, name: str = "returns") -> Any:
    """A ``pd.Series`` of the ``return`` column of ``daily`` on its dates."""
    import pandas as pd

    values = daily.get_column("return").to_numpy()
    return pd.Series(values, index=_dates(daily, utc=utc), name=name, dtype="float64")


def pyfolio_frames(
    daily: pl.DataFrame, positions: pl.DataFrame, fills: pl.DataFrame
) -> tuple[Any, Any, Any]:
    """``(returns, positions, transactions)`` in pyfolio's shapes (module docstring)."""
    import pandas as pd

    returns = returns_series(daily, utc=True)
    index = returns.index
    if positions.height:
        wide = positions.pivot(on="symbol", index="date", values="value", aggregate_function="sum")
        wide = daily.select("date").join(wide, on="date", how="left").fill_null(0.0)
        symbols = sorted(c for c in wide.columns if c != "date")
        held = pd.DataFrame(
            {s: wide.get_column(s).to_numpy() for s in symbols}, index=index, dtype="float64"
        )
    else:
        held = pd.DataFrame(index=index, dtype="float64")
    held["cash"] = daily.get_column("cash").to_numpy()
    held.columns.name = None
    sign = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    trades = fills.sort("timestamp", maintain_order=True).select(
        "timestamp", (pl.col("quantity") * sign).alias("amount"), "price", "symbol"
    )
    ns = trades.get_column("timestamp").dt.replace_time_zone(None).to_numpy()
    stamps = _index(ns, utc=True, name="dt")
    transactions = pd.DataFrame(
        {
            "amount": trades.get_column("amount").to_numpy(),
            "price": trades.get_column("price").to_numpy(),
            "symbol": trades.get_column("symbol").to_list(),
        },
        index=stamps,
    )
    return returns, held, transactions


def quantstats_returns(daily: pl.DataFrame) -> Any:
    """Daily returns for quantstats: a ``pd.Series`` on a tz-naive midnight index."""
    return returns_series(daily, utc=False)
