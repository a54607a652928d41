"""A run's results in memory: the tables as polars frames, the metrics and the manifest,
and the views built on them: returns and equity at any frequency, the benchmark's
returns, and the hand-offs to pyfolio, quantstats and empyrical.

Loaded from a directory, a table is read only if the run's manifest lists it: a file the
manifest does not list is not this run's (see ``docs/results.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pyarrow as pa

from ml4t.backtest.errors import ConfigError, UnknownNameError
from ml4t.backtest.record import handoffs
from ml4t.backtest.record.config import TABLES
from ml4t.backtest.record.daily import (
    BENCHMARK_RETURNS_SCHEMA,
    DAILY_POSITIONS_SCHEMA,
    DAILY_RETURNS_SCHEMA,
)
from ml4t.backtest.record.returns import parse_frequency, resample
from ml4t.backtest.record.tables import (
    CASH_FLOWS_SCHEMA,
    FILLS_SCHEMA,
    ORDER_HISTORY_SCHEMA,
    ORDERS_SCHEMA,
    PORTFOLIO_SCHEMA,
)

__all__ = ["RecorderResults"]

_SCHEMAS = {
    "fills": FILLS_SCHEMA,
    "orders": ORDERS_SCHEMA,
    "order_history": ORDER_HISTORY_SCHEMA,
    "portfolio": PORTFOLIO_SCHEMA,
    "cash_flows": CASH_FLOWS_SCHEMA,
    "daily_returns": DAILY_RETURNS_SCHEMA,
    "daily_positions": DAILY_POSITIONS_SCHEMA,
    "benchmark_returns": BENCHMARK_RETURNS_SCHEMA,
}


class RecorderResults:
    """A run's results: tables as polars frames (read lazily from disk), metrics, manifest."""

    TABLES = TABLES  # the tables a run may record (record.config)

    def __init__(
        self,
        *,
        output_dir: Path | None,
        metrics: dict[str, Any],
        manifest: dict[str, Any],
        frames: Mapping[str, pl.DataFrame] | None = None,
        schemas: Mapping[str, pa.Schema] | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.metrics = metrics
        self.manifest = manifest
        self._frames: dict[str, pl.DataFrame] = dict(frames or {})
        self._schemas = dict(schemas or {})

    @classmethod
    def load(cls, results_dir: str | Path) -> RecorderResults:
        """The results a run wrote to ``results_dir``."""
        path = Path(results_dir)
        manifest = msgspec.json.decode((path / "manifest.json").read_bytes())
        results = cls(output_dir=path, metrics={}, manifest=manifest)
        metrics_file = path / "metrics.json"
        if metrics_file.exists() and results._listed(metrics_file.name):
            results.metrics = msgspec.json.decode(metrics_file.read_bytes())
        return results

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def run_id(self) -> str | None:
        """The id of the run that wrote these results (``None`` before they were written)."""
        return self.manifest.get("run_id")

    def _listed(self, file: str) -> bool:
        """Whether ``file`` is this run's: listed in its manifest, once there is one."""
        files = self.manifest.get("files")
        return not isinstance(files, Mapping) or file in files

    def table(self, name: str) -> pl.DataFrame:
        """One table by name (an empty frame if it was not recorded)."""
        if name not in self.TABLES:
            raise UnknownNameError(f"no table {name!r}; tables are {', '.join(self.TABLES)}")
        frame = self._frames.get(name)
        if frame is None:
            file = f"{name}.parquet"
            path = self.output_dir / file if self.output_dir is not None else None
            if path is not None and path.exists() and self._listed(file):
                frame = pl.read_parquet(path)
            else:
                schema = self._schemas.get(name) or _SCHEMAS.get(name)
                frame = pl.DataFrame()
                if schema is not None:
                    empty = pl.from_arrow(schema.empty_table())
                    assert isinstance(empty, pl.DataFrame)  # a table converts to a frame
                    frame = empty
            self._frames[name] = frame
        return frame

    @property
    def trades(self) -> pl.DataFrame:
        return self.table("trades")

    @property
    def fills(self) -> pl.DataFrame:
        return self.table("fills")

    @property
    def orders(self) -> pl.DataFrame:
        return self.table("orders")

    @property
    def order_history(self) -> pl.DataFrame:
        return self.table("order_history")

    @property
    def portfolio(self) -> pl.DataFrame:
        return self.table("portfolio")

    @property
    def cash_flows(self) -> pl.DataFrame:
        """Dividends, borrow fees and cash in lieu, one row per ``CashFlow``."""
        return self.table("cash_flows")

    @property
    def daily_returns(self) -> pl.DataFrame:
        """One row per day (session): ``date``, ``return``, ``equity``, ``cash``."""
        return self.table("daily_returns")

    @property
    def daily_positions(self) -> pl.DataFrame:
        """One row per (day, symbol held at its end): ``date``, ``symbol``, ``quantity``,
        ``price``, ``value``."""
        return self.table("daily_positions")

    # ------------------------------------------------------------ returns

    @property
    def _initial(self) -> float:
        initial = self.metrics.get("initial_equity")
        if initial is None:
            raise ConfigError("these results have no initial equity (metrics.json lacks it)")
        return float(initial)

    def equity(self, freq: str = "1D") -> pl.DataFrame:
        """The equity at the end of each period of ``freq``: ``date`` (or ``timestamp``
        below a day) and ``equity``. Frequencies as for :meth:`returns`."""
        return self.returns(freq).select(pl.exclude("return"))

    def returns(self, freq: str = "1D") -> pl.DataFrame:
        """Simple returns per period of ``freq``: ``date``, ``return``, ``equity``.

        ``1D`` (the default) is one return per day, a session of the run's calendar,
        labelled by its date; ``1W``, ``1M``, ``1Q``, ``1Y`` (any pandas alias or polars
        duration of a day or more) compound those days, labelled by each period's last
        day. Below a day (``1h``, ``30m``) the periods come from the portfolio table and
        are labelled by ``timestamp``. The first return is against the initial equity.
        See ``docs/results.md`` (*Returns at any frequency*)."""
        frequency = parse_frequency(freq)
        if frequency.daily:
            daily = self.daily_returns.select("date", "equity")
            return resample(daily, "date", frequency, self._initial)
        states = self.portfolio
        if states.height == 0 and self.daily_returns.height > 0:
            raise ConfigError(
                f"returns({freq!r}) needs portfolio.parquet, which this run did not record; "
                "add portfolio to reporting.tables, or ask for a day or longer"
            )
        frame = states.select("timestamp", "equity")
        zone = self.metrics.get("day_timezone") or "UTC"
        return resample(frame, "timestamp", frequency, self._initial, timezone=zone)

    def benchmark_returns(self, freq: str = "1D") -> pl.DataFrame:
        """The benchmark's returns over the same periods as :meth:`returns` (``date``,
        ``return``; a day or longer). Empty without ``reporting.benchmark``."""
        frequency = parse_frequency(freq)
        if not frequency.daily:
            raise ConfigError(
                f"benchmark_returns({freq!r}): the benchmark is kept per day; ask for a day "
                "or longer (1D, 1W, 1M)"
            )
        daily = self.table("benchmark_returns")
        if frequency.one_day or daily.height == 0:
            return daily.select("date", "return")
        level = (pl.col("return").fill_nan(None).fill_null(0.0) + 1.0).cum_prod()
        frame = daily.select("date", level.alias("equity"))
        return resample(frame, "date", frequency, 1.0).select("date", "return")

    # ------------------------------------------------------------ hand-offs

    def to_pyfolio(self) -> tuple[Any, Any, Any]:
        """``(returns, positions, transactions)`` for ``pyfolio.create_full_tear_sheet``:
        daily returns (pd.Series, tz-aware UTC dates), each day's position values per
        symbol plus ``cash`` (pd.DataFrame), and the fills (``amount``, ``price``,
        ``symbol``, indexed by ``dt``)."""
        return handoffs.pyfolio_frames(self.daily_returns, self.daily_positions, self.fills)

    def to_quantstats(self) -> Any:
        """Daily returns as the pd.Series quantstats takes (tz-naive dates)."""
        return handoffs.quantstats_returns(self.daily_returns)
