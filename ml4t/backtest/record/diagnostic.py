"""``results/diagnostic/``: a run in the artifact layout ml4t-diagnostic reads.

``ml4t-diagnostic`` (the proposal's evaluation package) reads a backtest from a
directory of files with its own names and units. The recorder writes that directory
beside our tables, built from them when the run ends, so that::

    from ml4t.diagnostic.integration import generate_tearsheet_from_run_artifacts
    generate_tearsheet_from_run_artifacts("results/diagnostic", output_path="tearsheet.html")

works with no adapter code. Our own tables keep their names and meaning; these are
copies in the other package's units (``docs/results.md``, *ml4t-diagnostic*):

- ``trades.parquet``: one row per trade (ours, closed ones only), ``symbol``,
  ``entry_time``, ``exit_time``, ``entry_price``, ``exit_price``, signed ``quantity``
  (< 0 short), ``direction``, ``pnl`` (our ``pnl_net``), ``pnl_percent`` (the price
  return, direction-aware, a fraction), ``bars_held``, ``fees`` (commissions),
  ``entry_slippage``/``exit_slippage`` **per unit**, ``mfe``/``mae`` (fractions, ``mae``
  <= 0), ``exit_reason``, ``status``, ``multiplier``, ``duration_days``, ``trade_id``;
- ``trade_records.parquet``: the same trades with exactly the fields of its
  ``TradeRecord`` (``TradeRecord(**row)``): ``timestamp`` (the exit), ``entry_timestamp``,
  ``duration``, ``direction``, positive ``quantity``, prices, ``pnl``, ``fees``; no
  ``slippage`` field, because our prices already include it and ``TradeRecord`` would
  subtract it a second time;
- ``daily_returns.parquet``: our ``daily_returns`` table (``date``, ``return``, ...);
- ``equity.parquet``: ``timestamp``, ``equity`` at the end of each day (the session's
  close, or the midnight that ends the date), so its daily returns are ours;
- ``portfolio_state.parquet``: the ``portfolio`` table's ``timestamp``, ``equity``,
  ``cash``, ``gross_exposure``, ``net_exposure`` and ``open_positions``;
- ``fills.parquet``: ``timestamp``, ``order_id``, ``asset``, ``side``, ``quantity``,
  ``price``, ``commission``, ``slippage`` **per unit**, ``multiplier``;
- ``positions.parquet``: ``date``, ``asset``, signed ``quantity``, ``price``, ``value``
  held at each day's end;
- ``spec.json``: the run's name and ``backtest_config`` (:class:`BacktestConfig`: the
  calendar, the initial cash, the execution settings).

The directory is built under a temporary name and renamed into place, so it appears
whole or not at all. It needs the ``trades`` and ``daily_returns`` tables; the
portfolio, fills and positions files come with their tables.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import msgspec
import polars as pl

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record.daily import RunDays

__all__ = [
    "DIRECTORY",
    "FILES",
    "NEEDS",
    "BacktestConfig",
    "artifact_tables",
    "backtest_config",
    "read_tables",
    "write_directory",
    "write_run",
]

DIRECTORY = "diagnostic"
"""The folder of the results directory the artifacts go into."""

NEEDS = ("trades", "daily_returns")
"""Tables without which there is nothing to write."""

SOURCES = ("trades", "fills", "portfolio", "daily_returns", "daily_positions")
"""The tables the artifacts are built from."""

FILES = (
    "trades.parquet",
    "trade_records.parquet",
    "daily_returns.parquet",
    "equity.parquet",
    "portfolio_state.parquet",
    "fills.parquet",
    "positions.parquet",
    "spec.json",
)
"""Every file of the folder, when every table was recorded."""

_UTC = pl.Datetime("ns", "UTC")

Compression = Literal["zstd", "snappy", "lz4", "uncompressed"]
_COMPRESSION: Mapping[str, Compression] = MappingProxyType(
    {"zstd": "zstd", "snappy": "snappy", "lz4": "lz4", "none": "uncompressed"}
)


class Setting(NamedTuple):
    """A named choice as ml4t-diagnostic reads one (``config.execution_mode.value``)."""

    value: str


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The run's settings as ``spec.json`` carries them to ml4t-diagnostic.

    Its bridge builds one with ``BacktestConfig.from_dict(spec["backtest_config"])``
    (``ml4t.backtest.BacktestConfig`` is this class) and reads from it the calendar
    (``resolved_calendar``, ``resolved_feed_spec``), which annualises and groups the
    returns into sessions, and a one-line summary of the execution for its tearsheet.
    The run's own config is ``config.yaml``; this is the part the other package reads.
    """

    name: str
    calendar: str | None  # a pandas_market_calendars name; None: dates in ``timezone``
    timezone: str
    initial_cash: float | None
    periods_per_year: float | None
    preset: str | None = None
    account: str = "unknown"
    fill_timing: str = "next_open"
    shares: str = "integer"
    commission: str = "unknown"
    slippage: str = "unknown"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BacktestConfig:
        """The config ``spec.json`` holds (a :class:`ConfigError` names what is wrong)."""
        try:
            return msgspec.convert(dict(data), cls)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"spec.json backtest_config: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    @property
    def resolved_calendar(self) -> str | None:
        return self.calendar

    @property
    def resolved_feed_spec(self) -> dict[str, Any]:
        """The calendar declaration ml4t-diagnostic resolves (a ``FeedSpec`` mapping)."""
        return {"calendar": self.calendar, "timezone": self.timezone, "time_contract_version": 2}

    @property
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name}

    @property
    def preset_name(self) -> str | None:
        return self.preset

    def get_effective_account_type(self) -> str:
        return self.account

    @property
    def share_type(self) -> Setting:
        """``integer`` or ``fractional``: the quantities the run's fills had."""
        return Setting(self.shares)

    @property
    def execution_mode(self) -> Setting:
        return Setting(self.fill_timing)

    @property
    def execution_price(self) -> Setting:
        """The price a market order fills at."""
        return Setting("close" if self.fill_timing.endswith("close") else "open")

    @property
    def rebalance_mode(self) -> Setting:
        """``Strategy.rebalance`` sizes every order against the equity when it is called."""
        return Setting("snapshot")

    @property
    def fill_ordering(self) -> Setting:
        """The broker matches a symbol's open orders in the order they were submitted."""
        return Setting("sequential")

    @property
    def commission_type(self) -> Setting:
        return Setting(self.commission)

    @property
    def slippage_type(self) -> Setting:
        return Setting(self.slippage)


def _model(section: Any) -> str:
    """``name(k=v, ...)`` of a cost model section of the run config (a builtins dict)."""
    if not isinstance(section, Mapping):
        return "unknown"
    name = str(section.get("model", "none"))
    params = section.get("params") or {}
    if name == "none" and not params:
        return name
    return f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})"


def backtest_config(
    run_config: Mapping[str, Any] | None,
    *,
    days: RunDays,
    initial_cash: float | None,
    periods_per_year: float | None,
    fill_timing: str,
    fractional: bool,
) -> BacktestConfig:
    """The :class:`BacktestConfig` of a run from its resolved config (builtins, or None
    for a recorder built in Python), its days and what its fills were."""
    config = run_config or {}
    run = config.get("backtest") or {}
    execution = config.get("execution") or {}
    risk = config.get("risk") or {}
    calendar = days.calendar
    return BacktestConfig(
        name=str(run.get("name", "backtest")),
        calendar=getattr(calendar, "name", None) if calendar is not None else None,
        timezone=days.timezone,
        initial_cash=initial_cash,
        periods_per_year=periods_per_year,
        preset=config.get("preset"),
        account=str(risk.get("account", "unknown")),
        fill_timing=fill_timing,
        shares="fractional" if fractional else "integer",
        commission=_model(execution.get("commission")) if execution else "unknown",
        slippage=_model(execution.get("slippage")) if execution else "unknown",
    )


# --------------------------------------------------------------------------- tables


def _trades(trades: pl.DataFrame) -> pl.DataFrame:
    """The closed trades (a ``leave_open`` lot has no exit), with a signed direction."""
    closed = trades.filter(pl.col("exit_timestamp").is_not_null())
    return closed.with_columns(
        pl.when(pl.col("side") == "short").then(-1.0).otherwise(1.0).alias("_sign")
    )


def trade_table(trades: pl.DataFrame) -> pl.DataFrame:
    """``trades.parquet`` of the artifact layout (module docstring)."""
    closed = _trades(trades)
    qty, sign = pl.col("quantity"), pl.col("_sign")
    entry, exit_ = pl.col("entry_price"), pl.col("exit_price")
    move = pl.when(entry != 0).then((exit_ - entry) / entry * sign).otherwise(0.0)
    return closed.select(
        "trade_id",
        "symbol",
        pl.col("entry_timestamp").alias("entry_time"),
        pl.col("exit_timestamp").alias("exit_time"),
        "entry_price",
        "exit_price",
        (qty * sign).alias("quantity"),
        pl.col("side").alias("direction"),
        pl.col("pnl_net").alias("pnl"),
        move.alias("pnl_percent"),
        pl.col("holding_period_bars").alias("bars_held"),
        (pl.col("entry_commission") + pl.col("exit_commission")).alias("fees"),
        (pl.col("entry_slippage") / qty).alias("entry_slippage"),
        (pl.col("exit_slippage") / qty).alias("exit_slippage"),
        (pl.col("max_favorable_pct") / 100.0).alias("mfe"),
        (pl.col("max_adverse_pct") / -100.0).alias("mae"),
        "exit_reason",
        pl.lit("closed").alias("status"),
        pl.lit(1.0).alias("multiplier"),
        pl.col("holding_period_days").alias("duration_days"),
    )


def trade_records(trades: pl.DataFrame) -> pl.DataFrame:
    """``trade_records.parquet``: one ``TradeRecord`` per row (module docstring)."""
    closed = _trades(trades)
    return closed.select(
        "trade_id",
        "symbol",
        "entry_timestamp",
        pl.col("exit_timestamp").alias("timestamp"),
        (pl.col("exit_timestamp") - pl.col("entry_timestamp")).alias("duration"),
        pl.col("holding_period_days").alias("duration_days"),
        pl.col("side").alias("direction"),
        "quantity",
        "entry_price",
        "exit_price",
        pl.col("pnl_net").alias("pnl"),
        (pl.col("entry_commission") + pl.col("exit_commission")).alias("fees"),
        "exit_reason",
    )


def fill_table(fills: pl.DataFrame) -> pl.DataFrame:
    """``fills.parquet`` of the artifact layout: per-unit slippage, ``asset``."""
    qty = pl.col("quantity")
    return fills.select(
        "timestamp",
        "order_id",
        "fill_id",
        pl.col("symbol").alias("asset"),
        "side",
        "quantity",
        "price",
        "commission",
        pl.when(qty != 0).then(pl.col("slippage") / qty).otherwise(0.0).alias("slippage"),
        pl.lit(1.0).alias("multiplier"),
    )


def equity_table(
    daily: pl.DataFrame, days: RunDays, *, start: str | None, initial: float | None
) -> pl.DataFrame:
    """``equity.parquet``: the initial equity at the run's first state (``start``, ISO),
    then each day's closing equity at the instant that ends the day."""
    labels = daily.get_column("date").cast(pl.Int32).to_numpy()
    ends = pl.Series(days.ends(labels), dtype=pl.Int64).cast(_UTC)
    equity = daily.get_column("equity")
    if start is not None and initial is not None and daily.height:
        first = pl.Series([start]).str.to_datetime(time_unit="ns", time_zone="UTC")
        ends = pl.concat([first, ends])
        equity = pl.concat([pl.Series([float(initial)]), equity])
    return pl.DataFrame({"timestamp": ends, "equity": equity})


def portfolio_state_table(portfolio: pl.DataFrame) -> pl.DataFrame:
    return portfolio.select(
        "timestamp",
        "equity",
        "cash",
        "gross_exposure",
        "net_exposure",
        pl.col("num_positions").alias("open_positions"),
    )


def positions_table(positions: pl.DataFrame) -> pl.DataFrame:
    return positions.select("date", pl.col("symbol").alias("asset"), "quantity", "price", "value")


def artifact_tables(
    tables: Mapping[str, pl.DataFrame], days: RunDays, metrics: Mapping[str, Any]
) -> dict[str, pl.DataFrame]:
    """The artifact files' tables from ours (``trades`` and ``daily_returns`` at least;
    ``fills``, ``portfolio`` and ``daily_positions`` when given) and the run's metrics
    (its ``start`` and ``initial_equity``), by file name."""
    daily = tables["daily_returns"]
    start, initial = metrics.get("start"), _finite(metrics.get("initial_equity"))
    out = {
        "trades.parquet": trade_table(tables["trades"]),
        "trade_records.parquet": trade_records(tables["trades"]),
        "daily_returns.parquet": daily,
        "equity.parquet": equity_table(daily, days, start=start, initial=initial),
    }
    if "portfolio" in tables:
        out["portfolio_state.parquet"] = portfolio_state_table(tables["portfolio"])
    if "fills" in tables:
        out["fills.parquet"] = fill_table(tables["fills"])
    if "daily_positions" in tables:
        out["positions.parquet"] = positions_table(tables["daily_positions"])
    return out


def read_tables(paths: Mapping[str, Path | None]) -> dict[str, pl.DataFrame]:
    """Our tables the artifacts are built from, read from the files a run wrote
    (``name -> path``; a table that was not written is left out)."""
    return {
        name: pl.read_parquet(path)
        for name, path in paths.items()
        if name in SOURCES and path is not None
    }


# --------------------------------------------------------------------------- writing


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_directory(
    out: Path,
    tables: Mapping[str, pl.DataFrame],
    config: BacktestConfig,
    *,
    temp: Path,
    compression: Compression = "zstd",
) -> dict[str, Path]:
    """Write ``out/diagnostic/`` from the artifact ``tables`` and ``config``; return
    ``"diagnostic/<file>" -> path`` for the manifest.

    Every file is written into ``temp`` (a fresh directory beside ``out/diagnostic``)
    and fsynced; ``temp`` is then renamed to ``out/diagnostic`` in one step, so the
    folder is complete or absent. An earlier run's folder was moved away when this run
    claimed ``out``; one that appeared since (not this run's) is an error.
    """
    final = out / DIRECTORY
    if final.exists():
        raise ConfigError(
            f"{final} appeared while the run was writing to {out}; it is not this run's "
            "(the recorder moves an earlier run's away when it starts)"
        )
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        names = []
        for name, frame in tables.items():
            frame.write_parquet(temp / name, compression=compression, statistics=True)
            names.append(name)
        spec = {"preset_id": config.name, "backtest_config": config.to_dict()}
        (temp / "spec.json").write_text(json.dumps(spec, indent=2, allow_nan=False) + "\n")
        names.append("spec.json")
        for name in names:
            with open(temp / name, "rb+") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(temp)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(temp)
        raise
    _fsync_dir(out)
    return {f"{DIRECTORY}/{name}": final / name for name in names}


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def write_run(
    out: Path,
    files: Mapping[str, Path],
    *,
    days: RunDays,
    run_config: Mapping[str, Any] | None,
    metrics: Mapping[str, Any],
    fill_timing: str,
    temp: Path,
    compression: str,
) -> dict[str, Path]:
    """The recorder's hook: ``out/diagnostic/`` from the tables a run just wrote
    (``files``: ``"<table>.parquet" -> path``), or nothing when :data:`NEEDS` were not
    recorded. Returns the files written, for the manifest."""
    paths = {name: files.get(f"{name}.parquet") for name in SOURCES}
    if any(paths[name] is None for name in NEEDS):
        return {}
    tables = read_tables(paths)
    fills = tables.get("fills")
    fractional = fills is not None and bool((fills.get_column("quantity") % 1.0 != 0.0).any())
    config = backtest_config(
        run_config,
        days=days,
        initial_cash=_finite(metrics.get("initial_equity")),
        periods_per_year=_finite(metrics.get("periods_per_year")),
        fill_timing=fill_timing,
        fractional=fractional,
    )
    level = _COMPRESSION[compression]  # the reporting config's names, polars' names
    frames = artifact_tables(tables, days, metrics)
    return write_directory(out, frames, config, temp=temp, compression=level)
