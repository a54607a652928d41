"""A run's results in memory: the tables as polars frames, the metrics and the manifest.

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

from ml4t.backtest.errors import UnknownNameError
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
}


class RecorderResults:
    """A run's results: tables as polars frames (read lazily from disk), metrics, manifest."""

    TABLES = ("trades", "fills", "orders", "order_history", "portfolio", "cash_flows")

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
