"""``BacktestResult``: a run as ml4t-diagnostic's bridge reads one (the interop contract).

``ml4t-diagnostic`` analyses backtests of the proposal's published engine, whose result
object it imports by module path (``from ml4t.backtest import BacktestConfig,
BacktestResult``, ``from ml4t.backtest.result import enrich_trades_with_signals``). With
our package installed beside it those names are ours, so this module gives them: the
result its bridge builds when it reads ``results/diagnostic/`` (what
:mod:`ml4t.backtest.record.diagnostic` writes), and the methods its profile and tearsheet
call on it. It is a view for that package, not our result object:
:class:`~ml4t.backtest.BacktestResults` (what ``engine.run()`` returns) and
:class:`~ml4t.backtest.RecorderResults` hold a run's tables;
``BacktestResult.from_results(results)`` makes this view of them in memory.

What the numbers are (so that its metrics equal ours on the same days):

- ``equity_curve`` holds ``(time, equity)``: the initial equity at the run's first
  state, then each day's closing equity at the instant that ends the day (the artifact
  ``equity.parquet``); ``initial_capital`` (else the config's ``initial_cash``, else the
  first point's equity) is the equity returns start from;
- :meth:`to_daily_returns` and :meth:`to_daily_pnl` group the curve into the days of a
  calendar (its sessions, as the recorder's ``daily_returns`` does) and take each day's
  last equity over the previous day's, the first over ``initial_capital``: with the
  artifact curve these are ``daily_returns.parquet``'s returns, to the bit;
- ``calendar=None`` keeps one return per point (:meth:`to_returns_series`), the first
  point's (the start) being 0: without a calendar ml4t-diagnostic counts one more
  return than there are days (``docs/results.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
import yaml

from ml4t.backtest._time import to_ns
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record.daily import RunDays, date_of
from ml4t.backtest.record.diagnostic import BacktestConfig, artifact_tables, backtest_config
from ml4t.backtest.types import Fill, OrderSide, Trade

__all__ = ["BacktestConfig", "BacktestResult", "enrich_trades_with_signals"]

_UTC = pl.Datetime("us", "UTC")
_CONFIGURED: Any = object()
"""``to_daily_returns``' default: the config's calendar (as is any non-string, such as
ml4t-diagnostic's own "calendar not given" marker)."""

_QUOTES = ("quote_mid_price", "bid_price", "ask_price", "spread", "available_size")


@dataclass(frozen=True, kw_only=True)
class BacktestResult:
    """A run in ml4t-diagnostic's terms (module docstring). Build it from a results
    directory's ``diagnostic/`` folder (ml4t-diagnostic does) or with
    :meth:`from_results`."""

    trades: list[Trade]
    equity_curve: list[tuple[datetime, float]]
    fills: list[Fill]
    metrics: dict[str, Any]
    config: BacktestConfig | None = None
    portfolio_state: list[tuple[datetime, float, float, float, float, int]] = field(
        default_factory=list
    )
    initial_capital: float | None = None
    predictions: pl.DataFrame | None = None
    trade_analyzer: Any = None  # the published engine's; ours are in ``metrics``

    # ------------------------------------------------------------ building

    @classmethod
    def from_results(
        cls, results: Any, run_config: Mapping[str, Any] | None = None
    ) -> BacktestResult:
        """This view of a run's results (``engine.run()``'s, or
        ``RecorderResults.load(dir)``), for ``generate_tearsheet_from_result`` and the
        other ``*_from_result`` functions of ml4t-diagnostic. ``run_config`` (the
        resolved config as builtins; by default the results directory's
        ``config.yaml``) names the run and its costs in the tearsheet."""
        metrics = dict(results.metrics)
        saved = results.output_dir / "config.yaml" if results.output_dir is not None else None
        if run_config is None and saved is not None and saved.is_file():
            run_config = yaml.safe_load(saved.read_text())
        calendar = metrics.get("calendar")
        days = (
            RunDays(SessionCalendar(calendar))
            if calendar
            else RunDays(None, metrics.get("day_timezone") or "UTC")
        )
        tables = {
            "trades": results.trades,
            "fills": results.fills,
            "portfolio": results.portfolio,
            "daily_returns": results.daily_returns,
            "daily_positions": results.daily_positions,
        }
        frames = artifact_tables(tables, days, metrics)
        quantities = results.fills.get_column("quantity")
        config = backtest_config(
            run_config,
            days=days,
            initial_cash=metrics.get("initial_equity"),
            periods_per_year=metrics.get("periods_per_year"),
            fill_timing=(run_config or {}).get("execution", {}).get("fill_timing", "next_open"),
            fractional=bool((quantities % 1.0 != 0.0).any()),
        )
        return cls.from_frames(frames, config=config, metrics=metrics)

    @classmethod
    def from_frames(
        cls,
        frames: Mapping[str, pl.DataFrame],
        *,
        config: BacktestConfig | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> BacktestResult:
        """From the artifact tables by file name (``trades.parquet``, ``equity.parquet``,
        and ``fills.parquet``/``portfolio_state.parquet`` when present)."""
        trades = [
            Trade(
                symbol=row["symbol"],
                entry_time=row["entry_time"],
                exit_time=row["exit_time"],
                entry_price=row["entry_price"],
                exit_price=row["exit_price"],
                quantity=row["quantity"],
                pnl=row["pnl"],
                pnl_percent=row["pnl_percent"],
                bars_held=row["bars_held"],
                fees=row["fees"],
                exit_slippage=row["exit_slippage"],
                exit_reason=row["exit_reason"],
                status=row["status"],
                mfe=row["mfe"],
                mae=row["mae"],
                entry_slippage=row["entry_slippage"],
            )
            for row in frames["trades.parquet"].iter_rows(named=True)
        ]
        fills_frame = frames.get("fills.parquet")
        fills = [
            Fill(
                order_id=row["order_id"],
                asset=row["asset"],
                side=OrderSide(row["side"]),
                quantity=row["quantity"],
                price=row["price"],
                timestamp=row["timestamp"],
                commission=row["commission"],
                slippage=row["slippage"],
            )
            for row in (fills_frame.iter_rows(named=True) if fills_frame is not None else ())
        ]
        state = frames.get("portfolio_state.parquet")
        columns = ("timestamp", "equity", "cash", "gross_exposure", "net_exposure")
        return cls(
            trades=trades,
            equity_curve=list(frames["equity.parquet"].select("timestamp", "equity").iter_rows()),
            fills=fills,
            metrics=dict(metrics or {}),
            config=config,
            portfolio_state=list(state.select(*columns, "open_positions").iter_rows())
            if state is not None
            else [],
            initial_capital=config.initial_cash if config is not None else None,
        )

    # ------------------------------------------------------------ equity and returns

    @property
    def starting_equity(self) -> float:
        """The equity before the first point: ``initial_capital``, else the config's
        ``initial_cash``, else the first point's."""
        if self.initial_capital is not None:
            return float(self.initial_capital)
        if self.config is not None and self.config.initial_cash is not None:
            return float(self.config.initial_cash)
        return float(self.equity_curve[0][1]) if self.equity_curve else math.nan

    def to_equity_dataframe(self) -> pl.DataFrame:
        """``timestamp``, ``equity``, ``return`` (over the point before; the first over
        :attr:`starting_equity`), ``cumulative_return``, ``high_water_mark``,
        ``drawdown``, one row per point in time order."""
        frame = pl.DataFrame(
            {
                "timestamp": pl.Series([t for t, _ in self.equity_curve], dtype=_UTC),
                "equity": pl.Series([float(e) for _, e in self.equity_curve], dtype=pl.Float64),
            }
        ).sort("timestamp", maintain_order=True)
        start = self.starting_equity
        previous = pl.col("equity").shift(1).fill_null(start)
        peak = pl.max_horizontal(pl.col("equity").cum_max(), pl.lit(start))
        return frame.with_columns(
            (pl.col("equity") / previous - 1.0).alias("return"),
            (pl.col("equity") / start - 1.0).alias("cumulative_return"),
            peak.alias("high_water_mark"),
        ).with_columns(
            (pl.col("equity") / pl.col("high_water_mark") - 1.0).alias("drawdown"),
            pl.col("equity").alias("performance_equity"),
        )

    def to_returns_series(self) -> pl.Series:
        """One return per point of the curve (see :meth:`to_equity_dataframe`)."""
        return self.to_equity_dataframe().get_column("return")

    def _days(self, calendar: str | None) -> RunDays:
        if calendar is not None:
            return RunDays(SessionCalendar(calendar))
        return RunDays(None, self.config.timezone if self.config is not None else "UTC")

    def _auto_session_aligned(self, calendar: Any = _CONFIGURED) -> bool:
        """Whether days are sessions: with a calendar, always."""
        return self._calendar(calendar) is not None

    def _calendar(self, calendar: Any) -> str | None:
        if not (calendar is None or isinstance(calendar, str)):
            return self.config.resolved_calendar if self.config is not None else "NYSE"
        return calendar

    def to_daily_pnl(self, session_aligned: bool = False) -> pl.DataFrame:
        """One row per day: ``date``, ``open_equity`` (the previous day's close; the
        first: :attr:`starting_equity`), ``close_equity``, ``high_equity``,
        ``low_equity``, ``pnl``, ``return_pct``, ``cumulative_return``, ``num_bars``.

        Days are the config's calendar's sessions with ``session_aligned`` (what the
        bridge asks for when there is a calendar), else dates in its timezone."""
        calendar = self.config.resolved_calendar if self.config is not None else None
        return self._daily(self._days(calendar if session_aligned else None))

    def _daily(self, days: RunDays) -> pl.DataFrame:
        equity = self.to_equity_dataframe()
        stamps = equity.get_column("timestamp").to_list()
        labels = [days.label(days.day_end(to_ns(t))) for t in stamps]
        daily = (
            equity.select("equity")
            .with_columns(pl.Series("date", [date_of(d) for d in labels], dtype=pl.Date))
            .group_by("date", maintain_order=True)
            .agg(
                pl.col("equity").last().alias("close_equity"),
                pl.col("equity").max().alias("high_equity"),
                pl.col("equity").min().alias("low_equity"),
                pl.len().cast(pl.Int32).alias("num_bars"),
            )
        )
        start = self.starting_equity
        opening = pl.col("close_equity").shift(1).fill_null(start)
        return daily.select(
            "date",
            opening.alias("open_equity"),
            "close_equity",
            "high_equity",
            "low_equity",
            (pl.col("close_equity") - opening).alias("pnl"),
            (pl.col("close_equity") / opening - 1.0).alias("return_pct"),
            (pl.col("close_equity") / start - 1.0).alias("cumulative_return"),
            "num_bars",
        )

    def to_daily_returns(
        self, calendar: Any = _CONFIGURED, session_aligned: bool | None = None
    ) -> pl.Series:
        """Daily returns (``daily_return``) over the sessions of ``calendar`` (the
        config's by default); ``None`` keeps one return per point of the curve."""
        name = self._calendar(calendar)
        if name is None:
            if session_aligned:
                raise ConfigError("session_aligned=True needs a calendar, and calendar is None")
            return self.to_returns_series().alias("daily_return")
        days = self._days(name if session_aligned is not False else None)
        return self._daily(days).get_column("return_pct").alias("daily_return")

    # ------------------------------------------------------------ tables

    def to_trades_dataframe(self) -> pl.DataFrame:
        """One row per trade in the contract's columns (:class:`~ml4t.backtest.types.Trade`
        fields and its derived ``direction``, ``gross_pnl``, ``net_return``,
        ``total_slippage_cost``, ``cost_drag``)."""
        floats = (
            "entry_price",
            "exit_price",
            "quantity",
            "pnl",
            "pnl_percent",
            "fees",
            "exit_slippage",
            "mfe",
            "mae",
            "entry_slippage",
            "multiplier",
            *(f"{side}_{q}" for side in ("entry", "exit") for q in _QUOTES),
            "gross_pnl",
            "net_return",
            "total_slippage_cost",
            "cost_drag",
        )
        schema: dict[str, Any] = {
            "symbol": pl.String,
            "entry_time": _UTC,
            "exit_time": _UTC,
            "direction": pl.String,
            "bars_held": pl.Int64,
            "exit_reason": pl.String,
            "status": pl.String,
        } | dict.fromkeys(floats, pl.Float64)
        rows = [{name: getattr(trade, name) for name in schema} for trade in self.trades]
        return pl.DataFrame(rows, schema=schema)

    def to_fills_dataframe(self) -> pl.DataFrame:
        """One row per fill: ``order_id``, ``fill_sequence``, ``asset``, ``side``,
        ``quantity``, ``signed_quantity``, ``price``, ``timestamp``, ``commission``,
        ``slippage`` (per unit), ``multiplier`` and the contract's order and quote
        fields (null: bar fills have no quotes)."""
        strings = ("order_id", "rebalance_id", "asset", "side", "order_type", "price_source")
        floats = (
            "quantity",
            "signed_quantity",
            "multiplier",
            "price",
            "commission",
            "slippage",
            "limit_price",
            "stop_price",
            "reference_price",
            *_QUOTES[:4],
            "bid_size",
            "ask_size",
            "available_size",
        )
        schema: dict[str, Any] = (
            {"fill_sequence": pl.Int64, "timestamp": _UTC}
            | dict.fromkeys(strings, pl.String)
            | dict.fromkeys(floats, pl.Float64)
        )
        rows = []
        for sequence, fill in enumerate(self.fills):
            row = {name: getattr(fill, name, None) for name in schema}
            row["fill_sequence"] = sequence
            row["side"] = fill.side.value
            row["signed_quantity"] = fill.quantity * fill.side.sign
            rows.append(row)
        return pl.DataFrame(rows, schema=schema)

    def to_portfolio_state_dataframe(self) -> pl.DataFrame:
        """The account states: ``observation_id``, ``timestamp``, ``equity``, ``cash``,
        ``gross_exposure``, ``net_exposure``, ``open_positions``."""
        schema: dict[str, Any] = {
            "timestamp": _UTC,
            "equity": pl.Float64,
            "cash": pl.Float64,
            "gross_exposure": pl.Float64,
            "net_exposure": pl.Float64,
            "open_positions": pl.Int64,
        }
        frame = pl.DataFrame(self.portfolio_state, schema=schema, orient="row")
        return frame.sort("timestamp", maintain_order=True).with_row_index("observation_id")

    def to_predictions_dataframe(self) -> pl.DataFrame:
        return self.predictions if self.predictions is not None else pl.DataFrame()


def enrich_trades_with_signals(
    trades_df: pl.DataFrame,
    signals_df: pl.DataFrame,
    signal_columns: Sequence[str] | None = None,
    timestamp_col: str = "timestamp",
    asset_col: str | None = None,
    trades_asset_col: str | None = None,
) -> pl.DataFrame:
    """``trades_df`` with each signal's value known at each trade's entry and exit.

    For every column of ``signal_columns`` (default: the numeric columns of
    ``signals_df`` other than its time and asset columns) it adds ``entry_<column>`` and
    ``exit_<column>``: the last value at or before ``entry_time`` and ``exit_time``
    (an as-of join, never a later value), of the trade's asset when ``asset_col`` names
    the signals' asset column (matched to ``trades_asset_col``, by default ``symbol``).
    """
    by = asset_col
    trade_by = trades_asset_col or "symbol"
    keys = {timestamp_col, *([by] if by else [])}
    if signal_columns is None:
        signal_columns = [
            c for c, t in signals_df.schema.items() if c not in keys and t.is_numeric()
        ]
    if not signal_columns or trades_df.is_empty():
        return trades_df
    signals = signals_df.select(*keys, *signal_columns).sort(timestamp_col)
    zone = getattr(trades_df.schema["entry_time"], "time_zone", None)
    stamp = signals.schema[timestamp_col]
    if isinstance(stamp, pl.Datetime) and stamp.time_zone != zone:
        signals = signals.with_columns(
            pl.col(timestamp_col).dt.replace_time_zone(None).dt.replace_time_zone(zone)
            if stamp.time_zone is None
            else pl.col(timestamp_col).dt.convert_time_zone(zone or "UTC")
        )
    out = trades_df.with_row_index("_row")
    for when in ("entry", "exit"):
        time_col = f"{when}_time"
        side = signals.rename(
            {timestamp_col: time_col, **{c: f"{when}_{c}" for c in signal_columns}}
            | ({by: trade_by} if by else {})
        ).with_columns(pl.col(time_col).cast(out.schema[time_col]))
        joined = out.sort(time_col).join_asof(
            side, on=time_col, by=trade_by if by else None, strategy="backward"
        )
        out = joined.sort("_row")
    return out.drop("_row")
