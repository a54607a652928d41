"""Columnar buffers: rows go into Python lists of scalars, leave as Arrow row groups.

Appending a row costs one ``list.append`` per column; every ``row_group_size`` rows the
lists become one Arrow record batch (built by pyarrow in C) that goes to the table's sink:
a :class:`~ml4t.backtest.record.outputs.ParquetStream` writing the row group to disk, or
an in-memory list when the run keeps its results in memory only. Nothing per row is a
DataFrame, and memory holds at most one row group per table.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import polars as pl
import pyarrow as pa

from ml4t.backtest.record.outputs import ParquetStream

__all__ = [
    "CASH_FLOWS_SCHEMA",
    "FILLS_SCHEMA",
    "ORDERS_SCHEMA",
    "ORDER_HISTORY_SCHEMA",
    "PORTFOLIO_SCHEMA",
    "TIMESTAMP",
    "MemorySink",
    "Sink",
    "TableBuffer",
    "trades_schema",
]

TIMESTAMP = pa.timestamp("ns", tz="UTC")
F64 = pa.float64()
STR = pa.string()

FILLS_SCHEMA = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("fill_id", STR),
        ("order_id", STR),
        ("strategy_id", STR),
        ("symbol", STR),
        ("side", STR),
        ("quantity", F64),
        ("price", F64),
        ("notional", F64),
        ("commission", F64),
        ("slippage", F64),
        ("remaining_quantity", F64),
        ("reason", STR),
    ]
)

ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", STR),
        ("parent_id", STR),
        ("strategy_id", STR),
        ("symbol", STR),
        ("side", STR),
        ("order_type", STR),
        ("time_in_force", STR),
        ("quantity", F64),
        ("limit_price", F64),
        ("stop_price", F64),
        ("trail_amount", F64),
        ("trail_percent", F64),
        ("stop_loss", F64),
        ("take_profit", F64),
        ("reason", STR),
        ("status", STR),
        ("filled_quantity", F64),
        ("avg_fill_price", F64),
        ("commission", F64),
        ("slippage", F64),
        ("submitted_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
        ("reject_rule", STR),
        ("reject_reason", STR),
    ]
)

ORDER_HISTORY_SCHEMA = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("order_id", STR),
        ("strategy_id", STR),
        ("symbol", STR),
        ("event", STR),
        ("status", STR),
        ("quantity", F64),
        ("filled_quantity", F64),
        ("limit_price", F64),
        ("stop_price", F64),
        ("fill_price", F64),
        ("fill_quantity", F64),
        ("detail", STR),
    ]
)

PORTFOLIO_SCHEMA = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("equity", F64),
        ("cash", F64),
        ("positions_value", F64),
        ("gross_exposure", F64),
        ("net_exposure", F64),
        ("num_positions", pa.int64()),
        ("gross_leverage", F64),
        ("net_leverage", F64),
        ("realized_pnl", F64),
        ("unrealized_pnl", F64),
        ("income", F64),
        ("borrow_fees", F64),
        ("period_return", F64),
        ("cumulative_return", F64),
        ("drawdown", F64),
    ]
)


CASH_FLOWS_SCHEMA = pa.schema(
    [
        ("timestamp", TIMESTAMP),
        ("symbol", STR),
        ("kind", STR),
        ("amount", F64),
        ("quantity", F64),
        ("rate", F64),
    ]
)


def trades_schema(signals: dict[str, pa.DataType], context: Iterable[str]) -> pa.Schema:
    """The trades table's columns for the captured ``signals`` (name → type) and context."""
    f64, s = F64, STR
    context = list(context)

    def captured(prefix: str) -> list[tuple[str, pa.DataType]]:
        cols = [(f"{prefix}_{name}", typ) for name, typ in signals.items()]
        cols += [(f"{prefix}_{name}", f64) for name in context]
        return [*cols, (f"{prefix}_context_json", s)]

    return pa.schema(
        [
            ("trade_id", s),
            ("lot_id", s),
            ("strategy_id", s),
            ("symbol", s),
            ("entry_symbol", s),
            ("side", s),
            ("quantity", f64),
            ("lot_quantity", f64),
            ("split_ratio", f64),
            ("entry_order_id", s),
            ("entry_timestamp", TIMESTAMP),
            ("entry_price", f64),
            ("entry_quantity", f64),
            ("entry_commission", f64),
            ("entry_slippage", f64),
            *captured("entry"),
            ("exit_order_id", s),
            ("exit_timestamp", TIMESTAMP),
            ("exit_price", f64),
            ("exit_quantity", f64),
            ("exit_commission", f64),
            ("exit_slippage", f64),
            ("exit_reason", s),
            *captured("exit"),
            ("pnl_gross", f64),
            ("pnl_net", f64),
            ("pnl_percent", f64),
            ("total_cost", f64),
            ("holding_period_bars", pa.int64()),
            ("holding_period_days", f64),
            ("stop_loss_level", f64),
            ("take_profit_level", f64),
            ("max_favorable_excursion", f64),
            ("max_adverse_excursion", f64),
            ("max_favorable_pct", f64),
            ("max_adverse_pct", f64),
        ]
    )


class Sink(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> Path | None: ...

    def abort(self) -> None: ...


class MemorySink:
    """Keeps the row groups in memory (runs without an output directory)."""

    __slots__ = ("batches", "schema")

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.batches: list[pa.RecordBatch] = []

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        return None

    def abort(self) -> None:
        return None

    def frame(self) -> pl.DataFrame:
        table = pa.Table.from_batches(self.batches, schema=self.schema)
        return pl.from_arrow(table)  # type: ignore[return-value]


class TableBuffer:
    """Append rows; flush a row group every ``row_group_size`` rows (the rows are turned
    into columns once per row group, not value by value)."""

    __slots__ = (
        "_rows",
        "_width",
        "closed",
        "name",
        "path",
        "row_group_size",
        "rows",
        "schema",
        "sink",
    )

    def __init__(
        self,
        name: str,
        schema: pa.Schema,
        *,
        output_dir: Path | None,
        row_group_size: int,
        compression: str = "zstd",
        run_id: str | None = None,
    ) -> None:
        self.name = name
        self.schema = schema
        self.row_group_size = row_group_size
        self.rows = 0
        self.closed = False
        self.path = output_dir / f"{name}.parquet" if output_dir is not None else None
        self.sink: ParquetStream | MemorySink
        if self.path is not None:
            codec = "none" if compression == "none" else compression
            self.sink = ParquetStream(self.path, schema, compression=codec, run_id=run_id)
        else:
            self.sink = MemorySink(schema)
        self._rows: list[tuple[object, ...]] = []

    @property
    def pending(self) -> int:
        return len(self._rows)

    def append(self, row: tuple[object, ...]) -> None:
        """One row, a value per column of the schema, in its order (a row of another
        width fails the flush of its row group)."""
        rows = self._rows
        rows.append(row)
        if len(rows) >= self.row_group_size:
            self.flush()

    def flush(self) -> None:
        rows = self._rows
        if not rows:
            return
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(zip(*rows, strict=True), self.schema, strict=True)
        ]
        self.sink.write(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.rows += len(rows)
        rows.clear()

    def write_table(self, table: pa.Table) -> None:
        """Append a whole Arrow table (a table built at the end, such as
        ``daily_returns``) in row groups of ``row_group_size``."""
        self.flush()
        for batch in table.cast(self.schema).to_batches(max_chunksize=self.row_group_size):
            if batch.num_rows:
                self.sink.write(batch)
                self.rows += batch.num_rows

    def close(self) -> Path | None:
        """Flush what is left and finish the file (atomically renamed into place)."""
        if self.closed:
            return self.path
        self.flush()
        self.closed = True
        self.sink.close()
        return self.path

    def abort(self) -> None:
        self.closed = True
        self.sink.abort()

    def frame(self) -> pl.DataFrame:
        """The whole table (closing the buffer first if it is still open)."""
        self.close()
        if isinstance(self.sink, MemorySink):
            return self.sink.frame()
        assert self.path is not None
        return pl.read_parquet(self.path)
