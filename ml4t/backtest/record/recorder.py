"""The Recorder: the component that keeps what a run did and writes it down.

It listens at :attr:`~ml4t.backtest.bus.Phase.RECORD`, the last phase of a timestamp, so
it sees the state at t after everything else at t, and every subscription shares that
phase, so it sees all its events in publish order. Handlers only append to columnar
buffers and update O(1) running state; per-bar work is numpy over the open lots, and
nothing at all when no position is open.

``on_stop`` finalises: open trades closed as ``end_of_backtest`` (or left open), every
table renamed into place, ``metrics.json``, ``config.yaml``, the optional
``report.html``, and ``manifest.json`` last. If the run failed, was cancelled, or stopped
before the end of its data, every file is still complete and the manifest says
``"complete": false`` with the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
import polars as pl
import pyarrow as pa

from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ComponentError
from ml4t.backtest.events import (
    CancelOrder,
    ComponentFailed,
    ComponentState,
    MarketBatch,
    ModifyOrder,
    OrderFilled,
    PortfolioSnapshot,
    SubmitOrder,
)
from ml4t.backtest.record import outputs
from ml4t.backtest.record.config import ReportingConfig
from ml4t.backtest.record.orders import OrderLog
from ml4t.backtest.record.results import RecorderResults
from ml4t.backtest.record.states import PortfolioStates
from ml4t.backtest.record.summary import CostTotals, build_metrics
from ml4t.backtest.record.tables import (
    FILLS_SCHEMA,
    ORDER_HISTORY_SCHEMA,
    ORDERS_SCHEMA,
    PORTFOLIO_SCHEMA,
    TableBuffer,
)
from ml4t.backtest.record.trades import TradeBuilder, check_fill_rules
from ml4t.backtest.topics import (
    ERRORS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
)

__all__ = ["JOURNAL_FILE", "Recorder", "RecorderResults", "fill_params"]

JOURNAL_FILE = "journal.ml4tj"


def fill_params(params: Mapping[str, Any]) -> dict[str, str]:
    """``fill_timing`` and ``intrabar`` from a journal's recorder parameters.

    Journals written before these were recorded carry ``excursion_from_entry_bar``
    instead (False meant same-close fills).
    """
    timing = params.get("fill_timing")
    if timing is None:
        timing = "next_open" if params.get("excursion_from_entry_bar", True) else "same_close"
    return {"fill_timing": timing, "intrabar": params.get("intrabar") or "ohlc"}


class Recorder(Component):
    """Records trades, fills, orders, portfolio states and metrics (see ``docs/results.md``).

    The engine passes what the events do not carry: ``run_config`` (the resolved config,
    written to ``config.yaml`` and hashed), ``data_fingerprint``, ``initial_equity``,
    ``periods_per_year`` (from the trading calendar), and the broker's ``fill_timing``
    and ``intrabar`` (which fills are at their bar's close: the bars MFE/MAE count).
    ``mark_incomplete(reason)`` marks the results of a run the engine knows did not finish.
    """

    def __init__(
        self,
        config: ReportingConfig | None = None,
        *,
        name: str = "recorder",
        run_config: Any = None,
        data_fingerprint: str | None = None,
        initial_equity: float | None = None,
        periods_per_year: float | None = None,
        fill_timing: str = "next_open",
        intrabar: str = "ohlc",
        manifest_extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        self.config = config or ReportingConfig()
        self.run_config = run_config
        self.data_fingerprint = data_fingerprint
        self.initial_equity = initial_equity
        self.periods_per_year = periods_per_year
        check_fill_rules(fill_timing, intrabar)
        self.fill_timing = fill_timing
        self.intrabar = intrabar
        self.manifest_extra = dict(manifest_extra or {})
        self.output_dir = Path(self.config.output_dir) if self.config.output_dir else None
        self.results: RecorderResults | None = None
        self.events = 0
        self.bar_events = 0
        self.batches = 0
        self._incomplete: str | None = None
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self._tables: dict[str, TableBuffer] = {}
        self._watch: outputs.Stopwatch | None = None
        self._costs = CostTotals()
        self._fills: TableBuffer | None = None
        self._builder: TradeBuilder | None = None
        self._orders: OrderLog | None = None
        self._states: PortfolioStates | None = None
        self._journal: Any = None

    # ------------------------------------------------------------ public

    def mark_incomplete(self, reason: str) -> None:
        """Say the run did not finish (the first reason given is kept)."""
        if self._incomplete is None:
            self._incomplete = reason

    def replay_params(self) -> dict[str, Any]:
        """Everything needed to build an identical recorder for a replay (journal header)."""
        return {
            "reporting": outputs.to_builtins(self.config),
            "initial_equity": self.initial_equity,
            "periods_per_year": self.periods_per_year,
            "fill_timing": self.fill_timing,
            "intrabar": self.intrabar,
            "data_fingerprint": self.data_fingerprint,
            "run_config": outputs.to_builtins(self.run_config),
        }

    @classmethod
    def from_replay_params(
        cls, params: Mapping[str, Any], *, output_dir: str | Path | None, name: str = "recorder"
    ) -> Recorder:
        reporting = dict(params.get("reporting") or {})
        reporting.update(output_dir=str(output_dir) if output_dir is not None else None)
        reporting.update(journal=False, html_report=False)
        config = msgspec.convert(reporting, ReportingConfig)
        return cls(
            config,
            name=name,
            run_config=params.get("run_config"),
            data_fingerprint=params.get("data_fingerprint"),
            initial_equity=params.get("initial_equity"),
            periods_per_year=params.get("periods_per_year"),
            **fill_params(params),
            manifest_extra={"replayed": True},
        )

    # ------------------------------------------------------------ lifecycle

    def _table(self, name: str, schema: pa.Schema) -> TableBuffer:
        config = self.config
        written = name in config.tables and self.output_dir is not None
        table = TableBuffer(
            name,
            schema,
            output_dir=self.output_dir if written else None,
            row_group_size=config.row_group_size,
            compression=config.compression,
        )
        self._tables[name] = table
        return table

    def on_start(self) -> None:
        self._watch = outputs.Stopwatch()
        config = self.config
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            outputs.remove_stale_temps(self.output_dir)
            self._write_manifest(status="running", files={})
        wanted = set(config.tables)
        self._fills = self._table("fills", FILLS_SCHEMA) if "fills" in wanted else None
        self._orders = OrderLog(
            self._table("orders", ORDERS_SCHEMA) if "orders" in wanted else None,
            self._table("order_history", ORDER_HISTORY_SCHEMA)
            if "order_history" in wanted
            else None,
        )
        self._states = PortfolioStates(
            self._table("portfolio", PORTFOLIO_SCHEMA) if "portfolio" in wanted else None,
            frequency_ns=config.frequency_ns(),
            day_timezone=config.day_timezone,
            initial_equity=self.initial_equity,
        )
        self._builder = TradeBuilder(
            signals=config.signals,
            context=config.context,
            fill_timing=self.fill_timing,
            intrabar=self.intrabar,
            make_table=lambda schema: self._table("trades", schema),
        )
        if config.journal and self.output_dir is not None:
            self._open_journal()

    # ------------------------------------------------------------ journal

    def subscriptions(self) -> Iterable[tuple[Any, Any, int]]:
        """With ``journal: true``, every standard topic also goes to the journal."""
        if not (self.config.journal and self.output_dir is not None):
            return
        from ml4t.backtest.journal import STANDARD_TOPICS  # journal sits beside record

        for index, topic in enumerate(STANDARD_TOPICS):

            def write(event: Any, _index: int = index) -> None:
                if self._journal is not None:
                    self._journal.write(_index, self.context.clock.now_ns(), event)

            yield topic, write, Phase.RECORD

    def _open_journal(self) -> None:
        from ml4t.backtest.journal import STANDARD_TOPICS, JournalWriter

        assert self.output_dir is not None
        self._journal = JournalWriter(
            self.output_dir / JOURNAL_FILE,
            [topic.name for topic in STANDARD_TOPICS],
            header={"config": self.run_config, "recorder": self.replay_params()},
            codec=self.bus.codec,
        )

    # ------------------------------------------------------------ handlers

    def _seen(self, ts: int) -> None:
        self.events += 1
        if self._first_ns is None:
            self._first_ns = ts
        self._last_ns = ts

    @on(MARKET, phase=Phase.RECORD)
    def _on_market(self, batch: MarketBatch) -> None:
        self._seen(batch.ts_event)
        self.batches += 1
        self.bar_events += batch.frame.height
        self._builder.on_market(batch)  # type: ignore[union-attr]

    @on(ORDER_REQUESTS, phase=Phase.RECORD)
    def _on_request(self, event: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        self._seen(event.ts_event)
        self._orders.on_request(event, approved=False)  # type: ignore[union-attr]
        if isinstance(event, SubmitOrder):
            self._builder.on_order(event)  # type: ignore[union-attr]

    @on(ORDERS_APPROVED, phase=Phase.RECORD)
    def _on_approved(self, event: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        self._seen(event.ts_event)
        self._orders.on_request(event, approved=True)  # type: ignore[union-attr]
        if isinstance(event, SubmitOrder):
            self._builder.on_order(event)  # type: ignore[union-attr]

    @on(ORDER_EVENTS, phase=Phase.RECORD)
    def _on_order_event(self, event: Any) -> None:
        self._seen(event.ts_event)
        self._orders.on_event(event)  # type: ignore[union-attr]
        self._builder.on_order_event(event)  # type: ignore[union-attr]

    @on(FILLS, phase=Phase.RECORD)
    def _on_fill(self, fill: OrderFilled) -> None:
        self._seen(fill.ts_event)
        self._costs.add(fill.quantity, fill.price, fill.commission, fill.slippage)
        if self._fills is not None:
            self._fills.append(
                (
                    fill.ts_event,
                    fill.fill_id,
                    fill.order_id,
                    fill.strategy_id,
                    fill.symbol,
                    fill.side.value,
                    fill.quantity,
                    fill.price,
                    fill.quantity * fill.price,
                    fill.commission,
                    fill.slippage,
                    fill.remaining_quantity,
                    fill.reason,
                )
            )
        self._orders.on_fill(fill)  # type: ignore[union-attr]
        self._builder.on_fill(fill)  # type: ignore[union-attr]

    @on(PORTFOLIO, phase=Phase.RECORD)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._seen(snapshot.ts_event)
        self._states.on_snapshot(snapshot)  # type: ignore[union-attr]

    @on(ERRORS, phase=Phase.RECORD)
    def _on_error(self, event: ComponentFailed) -> None:
        self.events += 1
        self.mark_incomplete(f"component {event.component!r} failed: {event.message}")

    # ------------------------------------------------------------ finalising

    def _detect_incomplete(self) -> str | None:
        if self._incomplete is not None:
            return self._incomplete
        if self.state is ComponentState.FAILED:
            return f"the recorder {self.name!r} failed"
        stop_reason = self.context.stop_reason  # set by the runtime before on_stop
        if stop_reason == "cancelled":
            return "the run was cancelled (interrupted, e.g. by Ctrl-C) before it finished"
        if stop_reason == "failed":
            return "a component failed and the run stopped before the end of its data"
        in_flight = sys.exc_info()[1]
        if in_flight is not None:
            if isinstance(in_flight, anyio.get_cancelled_exc_class() | KeyboardInterrupt):
                return "the run was cancelled (interrupted, e.g. by Ctrl-C) before it finished"
            if isinstance(in_flight, ComponentError):
                return str(in_flight)
            return f"the run stopped on {type(in_flight).__name__}: {in_flight}"
        clock = self.clock
        if clock.is_simulated and clock.next_alarm_ns() is not None:
            return "the run was stopped before the end of its data"
        return None

    def on_stop(self) -> None:
        reason = self._detect_incomplete()
        journal, self._journal = self._journal, None
        try:
            if journal is not None:
                journal.close(complete=reason is None, reason=reason)
            files = self._finalise(reason)
        except BaseException as exc:
            if journal is not None:
                journal.abort()
            for table in self._tables.values():
                table.abort()
            reason = reason or f"writing the results failed: {type(exc).__name__}: {exc}"
            if self.output_dir is not None:
                self._write_manifest(status="incomplete", files={}, reason=reason)
            raise
        status = "complete" if reason is None else "incomplete"
        manifest = self._write_manifest(status=status, files=files, reason=reason)
        assert self.results is not None
        self.results.manifest = manifest

    def _finalise(self, reason: str | None) -> dict[str, Path]:
        builder, orders, states = self._builder, self._orders, self._states
        if builder is None or orders is None or states is None:  # never started
            builder = TradeBuilder()
            orders, states = OrderLog(None, None), PortfolioStates(None, frequency_ns=0)
        trades_table = builder.finish(close_open=self.config.end_of_backtest == "close")
        orders.finish()
        states.finish()
        files: dict[str, Path] = {}
        frames: dict[str, pl.DataFrame] = {}
        for name, table in self._tables.items():
            path = table.close()
            if path is not None:
                files[f"{name}.parquet"] = path
            else:
                frames[name] = table.frame()
        trades = frames.get("trades")
        if trades is None:
            trades = frames["trades"] = trades_table.frame()
        periods, source = self.periods_per_year, "calendar"
        if self.config.periods_per_year is not None:
            periods, source = self.config.periods_per_year, "config"
        metrics = build_metrics(
            states,
            trades,
            self._costs,
            orders=orders.submitted,
            rejected=orders.rejected,
            periods_per_year=periods,
            periods_source=source,
            risk_free_rate=self.config.risk_free_rate,
        )
        self.results = RecorderResults(
            output_dir=self.output_dir,
            metrics=metrics,
            manifest={},
            frames=frames,
            schemas={name: table.schema for name, table in self._tables.items()},
        )
        if self.output_dir is None:
            return files
        files["metrics.json"] = outputs.atomic_write_json(self.output_dir / "metrics.json", metrics)
        if self.run_config is not None:
            files["config.yaml"] = outputs.atomic_write_yaml(
                self.output_dir / "config.yaml", outputs.to_builtins(self.run_config)
            )
        if self.config.html_report:
            from ml4t.backtest.report import write_report  # report sits beside record

            summary = {
                "complete": reason is None,
                "incomplete_reason": reason,
                "ml4t_version": outputs.dependency_versions()["ml4t-backtest"],
                "config_hash": self._config_hash(),
            }
            files["report.html"] = write_report(self.output_dir, metrics=metrics, manifest=summary)
        return files

    def _config_hash(self) -> str:
        return outputs.config_hash(self.run_config if self.run_config is not None else self.config)

    def _write_manifest(
        self, *, status: str, files: Mapping[str, Path], reason: str | None = None
    ) -> dict[str, Any]:
        watch = self._watch or outputs.Stopwatch()
        complete = status == "complete"
        listed = dict(files)
        journal = self.output_dir / JOURNAL_FILE if self.output_dir is not None else None
        if journal is not None and journal.exists() and status != "running":
            listed[JOURNAL_FILE] = journal
        manifest: dict[str, Any] = {
            "complete": complete,
            "status": status,
            "incomplete_reason": None if complete else (reason or "the run has not finished"),
            "ml4t_version": outputs.dependency_versions()["ml4t-backtest"],
            "versions": outputs.dependency_versions(),
            "config_hash": self._config_hash(),
            "data_fingerprint": self.data_fingerprint,
            "started_at": watch.started_at,
            "finished_at": None if status == "running" else watch.now_iso(),
            "wall_time_seconds": watch.seconds(),
            "events_processed": self.events,
            "bar_events": self.bar_events,
            "market_batches": self.batches,
            "first_event": from_ns(self._first_ns).isoformat() if self._first_ns else None,
            "last_event": from_ns(self._last_ns).isoformat() if self._last_ns else None,
            "peak_memory_mb": outputs.peak_memory_mb(),
            "files": {
                name: {
                    "bytes": path.stat().st_size,
                    "sha256": outputs.file_digest(path),
                    **({"rows": self._tables[name[:-8]].rows} if name.endswith(".parquet") else {}),
                }
                for name, path in sorted(listed.items())
            },
            **self.manifest_extra,
        }
        if self.output_dir is not None:
            outputs.atomic_write_json(self.output_dir / "manifest.json", manifest)
        return outputs.json_safe(manifest)  # type: ignore[no-any-return]
