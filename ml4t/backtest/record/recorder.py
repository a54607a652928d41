"""The Recorder: the component that keeps what a run did and writes it down.

It listens at :attr:`~ml4t.backtest.bus.Phase.RECORD`, the last phase of a timestamp, so
it sees the state at t after everything else at t, and every subscription shares that
phase, so it sees all its events in publish order. Handlers only append to columnar
buffers and update O(1) running state; per-bar work is numpy over the open lots, and
nothing at all when no position is open.

``on_start`` claims the output directory: it takes a lock on it (a second run into a
directory in use is an error), moves the result files an earlier run left there out of
the way, deletes that run's temporary files (never a partial journal), and writes a
``"running"`` manifest with the new run's id. ``on_stop`` finalises: open trades closed
as ``end_of_backtest`` (or left open), every table renamed into place, ``metrics.json``,
``config.yaml``, the optional ``report.html``, and ``manifest.json`` last, listing only
the files this run wrote, with their sha256. If the run failed, was cancelled or
terminated, or stopped before the end of its data, every file is still complete and the
manifest says ``"complete": false``, ``"status": "failed"`` or ``"incomplete"``, and why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ml4t.backtest._span import MARKET_SPAN, PORTFOLIO_SPAN, MarketSpan, PortfolioSpan
from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.events import (
    ActionKind,
    CancelOrder,
    CashFlow,
    ChunkColumns,
    ComponentFailed,
    ComponentState,
    CorporateAction,
    MarketBatch,
    ModifyOrder,
    OrderFilled,
    PortfolioSnapshot,
    PositionChanged,
    SessionStarted,
    SubmitOrder,
    UniverseChanged,
)
from ml4t.backtest.record import diagnostic, outputs
from ml4t.backtest.record.benchmark import BenchmarkLevels
from ml4t.backtest.record.config import ReportingConfig
from ml4t.backtest.record.daily import (
    BENCHMARK_RETURNS_SCHEMA,
    DAILY_POSITIONS_SCHEMA,
    DAILY_RETURNS_SCHEMA,
    RunDays,
)
from ml4t.backtest.record.flows import CashFlowLog
from ml4t.backtest.record.journal import JOURNAL_FILE, STANDARD_TOPICS, JournalWriter
from ml4t.backtest.record.orders import OrderLog
from ml4t.backtest.record.positions import PositionBook
from ml4t.backtest.record.results import RecorderResults
from ml4t.backtest.record.states import PortfolioStates
from ml4t.backtest.record.summary import CostTotals, build_metrics
from ml4t.backtest.record.tables import (
    CASH_FLOWS_SCHEMA,
    FILLS_SCHEMA,
    ORDER_HISTORY_SCHEMA,
    ORDERS_SCHEMA,
    PORTFOLIO_SCHEMA,
    TableBuffer,
)
from ml4t.backtest.record.trades import TradeBuilder, check_fill_rules
from ml4t.backtest.topics import (
    CASH_FLOWS,
    CORPORATE_ACTIONS,
    ERRORS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
    POSITIONS,
    SESSION,
)

__all__ = ["JOURNAL_FILE", "Recorder", "RecorderResults", "fill_params", "outcome_of"]

# every file a recorder may write: what a new run clears from its output directory
RESULT_FILES = (
    *(f"{name}.parquet" for name in RecorderResults.TABLES),
    "metrics.json",
    "config.yaml",
    "report.html",
    diagnostic.DIRECTORY,  # a folder: ml4t-diagnostic's artifact layout
    JOURNAL_FILE,
    outputs.MANIFEST_FILE,
)


def fill_params(params: Mapping[str, Any]) -> dict[str, str]:
    """``fill_timing`` and ``intrabar`` from a run's execution section (or an old
    journal's recorder parameters).

    Journals written before these were recorded carry ``excursion_from_entry_bar``
    instead (False meant same-close fills).
    """
    timing = params.get("fill_timing")
    if timing is None:
        timing = "next_open" if params.get("excursion_from_entry_bar", True) else "same_close"
    return {"fill_timing": timing, "intrabar": params.get("intrabar") or "ohlc"}


class _RunParts:
    """What a started run records into, made together in ``on_start``: the fills table
    (None when not wanted), the order log, the portfolio states, the trade builder, the
    cash flows, the positions held and the benchmark (None without one)."""

    __slots__ = ("benchmark", "book", "builder", "fills", "flows", "orders", "states")

    def __init__(
        self,
        fills: TableBuffer | None,
        orders: OrderLog,
        states: PortfolioStates,
        builder: TradeBuilder,
        flows: CashFlowLog,
        benchmark: BenchmarkLevels | None = None,
    ) -> None:
        self.fills = fills
        self.orders = orders
        self.states = states
        self.builder = builder
        self.flows = flows
        self.book = PositionBook()
        self.benchmark = benchmark


class Recorder(Component):
    """Records trades, fills, orders, portfolio states, cash flows and metrics (see
    ``docs/results.md``).

    The engine passes what the events do not carry: ``run_config`` (the resolved config,
    written to ``config.yaml``, hashed, and the journal's header) and the broker's
    ``fill_timing`` and ``intrabar`` (which fills are at their bar's close: the bars
    MFE/MAE count). ``data_fingerprint``, ``initial_equity`` and ``periods_per_year``
    come from the session's ``SessionStarted`` unless given (a graph without a feed).
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
        self.run_id: str | None = None
        self._incomplete: str | None = None
        self._failed = False
        self._stopped = False  # on_stop has written the final manifest
        self._lock: outputs.DirectoryLock | None = None
        self._written: dict[str, Path] = {}  # the files this run committed, by name
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self._tables: dict[str, TableBuffer] = {}
        self._watch: outputs.Stopwatch | None = None
        self._costs = CostTotals()
        self._parts: _RunParts | None = None  # made in on_start
        self._journal: Any = None

    # ------------------------------------------------------------ public

    def mark_incomplete(self, reason: str) -> None:
        """Say the run did not finish (the first reason given is kept)."""
        if self._incomplete is None:
            self._incomplete = reason

    @classmethod
    def for_replay(
        cls,
        header: Mapping[str, Any],
        *,
        output_dir: str | Path | None,
        reporting: ReportingConfig | None = None,
        name: str = "recorder",
    ) -> Recorder:
        """The recorder a journaled run had, rebuilt from its journal header alone.

        The header holds the run's config (``config``, as written to ``config.yaml``):
        its ``reporting`` section and the broker's fill rules come from it; everything
        else (initial cash, data fingerprint, sessions per year, the universe) arrives
        with the journaled ``SessionStarted``, as in the run. ``reporting`` overrides
        the journaled section. Journals written before the session handshake carry the
        recorder's parameters under ``recorder`` and are read too.
        """
        run_config = header.get("config")
        legacy = header.get("recorder")
        if isinstance(legacy, Mapping):
            section: Any = legacy.get("reporting")
            execution: Mapping[str, Any] = legacy
            run_config = legacy.get("run_config", run_config)
            known: dict[str, Any] = {
                "data_fingerprint": legacy.get("data_fingerprint"),
                "initial_equity": legacy.get("initial_equity"),
                "periods_per_year": legacy.get("periods_per_year"),
            }
        else:
            config = run_config if isinstance(run_config, Mapping) else {}
            section, execution, known = config.get("reporting"), config.get("execution") or {}, {}
        if reporting is None:
            reporting = msgspec.convert(dict(section or {}), ReportingConfig)
        out = output_dir if output_dir is not None else reporting.output_dir
        reporting = msgspec.structs.replace(
            reporting,
            output_dir=str(out) if out is not None else None,
            journal=False,
            html_report=False,
        )
        fills = fill_params(execution)
        return cls(
            reporting,
            name=name,
            run_config=run_config,
            data_fingerprint=known.get("data_fingerprint"),
            initial_equity=known.get("initial_equity"),
            periods_per_year=known.get("periods_per_year"),
            fill_timing=fills["fill_timing"],
            intrabar=fills["intrabar"],
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
            run_id=self.run_id,
        )
        self._tables[name] = table
        return table

    def on_start(self) -> None:
        self._watch = outputs.Stopwatch()
        self.run_id = outputs.new_run_id()
        config = self.config
        if self.output_dir is not None:
            self._claim(self.output_dir)
        wanted = set(config.tables)
        self._parts = _RunParts(
            self._table("fills", FILLS_SCHEMA) if "fills" in wanted else None,
            OrderLog(
                self._table("orders", ORDERS_SCHEMA) if "orders" in wanted else None,
                self._table("order_history", ORDER_HISTORY_SCHEMA)
                if "order_history" in wanted
                else None,
            ),
            PortfolioStates(
                self._table("portfolio", PORTFOLIO_SCHEMA) if "portfolio" in wanted else None,
                frequency_ns=config.frequency_ns(),
                days=RunDays(None, config.day_timezone or "UTC"),
                initial_equity=self.initial_equity,
            ),
            TradeBuilder(
                signals=config.signals,
                context=config.context,
                fill_timing=self.fill_timing,
                intrabar=self.intrabar,
                make_table=lambda schema: self._table("trades", schema),
            ),
            CashFlowLog(
                self._table("cash_flows", CASH_FLOWS_SCHEMA) if "cash_flows" in wanted else None
            ),
            BenchmarkLevels(config.benchmark) if config.benchmark is not None else None,
        )
        if config.journal and self.output_dir is not None:
            self._open_journal()

    def _claim(self, out: Path) -> None:
        """Make ``out`` this run's: lock it, clear an earlier run's results, write the
        ``running`` manifest."""
        assert self.run_id is not None
        out.mkdir(parents=True, exist_ok=True)
        lock = outputs.DirectoryLock(out)
        if not lock.acquire():
            raise ConfigError(
                f"$.reporting.output_dir: {str(out)!r} is in use by another run "
                f"({_describe_run(out)}); give each run its own output_dir"
            )
        self._lock = lock
        if self.config.journal:
            _keep_partial_journal(out)
        outputs.clear_previous_outputs(out, RESULT_FILES, run_id=self.run_id)
        temps = [name for name in RESULT_FILES if name != JOURNAL_FILE]
        outputs.remove_stale_temps(out, temps, run_id=self.run_id)
        self._write_manifest(status="running", reason=None)
        outputs.remove_cleared_outputs(out)

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # ------------------------------------------------------------ journal

    def subscriptions(self) -> Iterable[tuple[Any, Any, int]]:
        """With ``journal: true``, every standard topic also goes to the journal."""
        if not (self.config.journal and self.output_dir is not None):
            return

        for index, topic in enumerate(STANDARD_TOPICS):

            def write(event: Any, _index: int = index) -> None:
                if self._journal is not None:
                    self._journal.write(_index, self.context.clock.now_ns(), event)

            yield topic, write, Phase.RECORD

    def _open_journal(self) -> None:

        assert self.output_dir is not None
        self._journal = JournalWriter(
            self.output_dir / JOURNAL_FILE,
            [topic.name for topic in STANDARD_TOPICS],
            header={"config": self.run_config, "run_id": self.run_id},
            codec=self.bus.codec,
        )

    # ------------------------------------------------------------ handlers

    def _seen(self, ts: int) -> None:
        self.events += 1
        if self._first_ns is None:
            self._first_ns = ts
        self._last_ns = ts

    @on(SESSION, phase=Phase.SESSION)
    def _on_session(self, event: SessionStarted | UniverseChanged) -> None:
        """The run's facts the recorder was not given: the data fingerprint and the
        calendar's sessions per year (the metrics' annualisation), and the universe."""
        parts = self._parts
        assert parts is not None  # handlers run only after on_start
        parts.builder.on_session(event)
        parts.book.on_session(event)
        if not isinstance(event, SessionStarted):
            return
        if parts.states.first_ts is None:
            parts.states.days = self._run_days(event)
        if parts.benchmark is not None:
            parts.benchmark.check_field(event.context)
        if self.initial_equity is None and event.initial_cash > 0:
            self.initial_equity = event.initial_cash
            if parts.states.initial_equity is None:
                parts.states.initial_equity = event.initial_cash
        if self.data_fingerprint is None and event.data_fingerprint:
            self.data_fingerprint = event.data_fingerprint
        if self.periods_per_year is None and event.sessions_per_year:
            self.periods_per_year = float(event.sessions_per_year)

    @on(MARKET, phase=Phase.RECORD)
    def _on_market(self, batch: MarketBatch) -> None:
        self._seen(batch.ts_event)
        self.batches += 1
        self.bar_events += batch.frame.height
        parts = self._parts
        assert parts is not None  # handlers run only after on_start
        parts.builder.on_market(batch)
        parts.book.on_market(batch)
        if parts.benchmark is not None:
            parts.benchmark.on_market(batch)

    # quiet spans (see ml4t.backtest._span): their bars, then their snapshots
    span_handlers = frozenset({"_on_market", "_on_snapshot", "_on_span", "_on_snapshots"})

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        parts = self._parts
        quiet = parts is not None and parts.benchmark is None and parts.builder.span_ready()
        return last if quiet else first - 1

    @on(MARKET_SPAN, phase=Phase.RECORD)
    def _on_span(self, span: MarketSpan) -> None:
        times = span.times
        self._seen(times[0])
        self.events += len(times) - 1
        self._last_ns = times[-1]
        self.batches += len(times)
        self.bar_events += span.height
        parts = self._parts
        assert parts is not None
        parts.builder.on_span(span)
        parts.book.on_span(span)

    @on(PORTFOLIO_SPAN, phase=Phase.RECORD)
    def _on_snapshots(self, span: PortfolioSpan) -> None:
        parts = self._parts
        assert parts is not None
        times = span.times
        self.events += len(times) - 1  # each state counts as the event it stands for
        self._seen(times[0])
        self._last_ns = times[-1]
        parts.states.on_span(span, parts.book.holdings_at)

    @on(CORPORATE_ACTIONS, phase=Phase.RECORD)
    def _on_action(self, action: CorporateAction) -> None:
        """A corporate action, seen (like every event but the session's) at RECORD, in
        publish order: before the batch it precedes and before the other roles'
        reactions to it (order updates, cash in lieu, delisting fills)."""
        self._seen(action.ts_event)
        parts = self._parts
        assert parts is not None
        parts.builder.on_action(action)
        parts.book.on_action(action)
        if action.action is ActionKind.SPLIT:
            parts.orders.on_split(action.symbol, action.ratio)

    @on(CASH_FLOWS, phase=Phase.RECORD)
    def _on_cash_flow(self, flow: CashFlow) -> None:
        self._seen(flow.ts_event)
        parts = self._parts
        assert parts is not None
        parts.flows.on_cash_flow(flow)

    @on(ORDER_REQUESTS, phase=Phase.RECORD)
    def _on_request(self, event: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        self._seen(event.ts_event)
        parts = self._parts
        assert parts is not None
        parts.orders.on_request(event, approved=False)
        if isinstance(event, SubmitOrder):
            parts.builder.on_order(event)

    @on(ORDERS_APPROVED, phase=Phase.RECORD)
    def _on_approved(self, event: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        self._seen(event.ts_event)
        parts = self._parts
        assert parts is not None
        parts.orders.on_request(event, approved=True)
        if isinstance(event, SubmitOrder):
            parts.builder.on_order(event)

    @on(ORDER_EVENTS, phase=Phase.RECORD)
    def _on_order_event(self, event: Any) -> None:
        self._seen(event.ts_event)
        parts = self._parts
        assert parts is not None
        parts.orders.on_event(event)
        parts.builder.on_order_event(event)

    @on(FILLS, phase=Phase.RECORD)
    def _on_fill(self, fill: OrderFilled) -> None:
        self._seen(fill.ts_event)
        self._costs.add(fill.quantity, fill.price, fill.commission, fill.slippage)
        parts = self._parts
        assert parts is not None
        if fill.reason == "cash_in_lieu":
            parts.flows.on_cash_in_lieu(fill)
        if parts.fills is not None:
            parts.fills.append(
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
        parts.orders.on_fill(fill)
        parts.builder.on_fill(fill)

    @on(PORTFOLIO, phase=Phase.RECORD)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._seen(snapshot.ts_event)
        parts = self._parts
        assert parts is not None
        bench = parts.benchmark
        level = bench.current if bench is not None else math.nan
        parts.states.on_snapshot(snapshot, level, parts.book.holdings())

    @on(POSITIONS, phase=Phase.RECORD)
    def _on_position(self, event: PositionChanged) -> None:
        self._seen(event.ts_event)
        parts = self._parts
        assert parts is not None
        parts.book.on_position(event)

    @on(ERRORS, phase=Phase.RECORD)
    def _on_error(self, event: ComponentFailed) -> None:
        self.events += 1
        self._failed = True
        self.mark_incomplete(f"component {event.component!r} failed: {event.message}")
        if self._stopped:  # a component that stops after the recorder failed in on_stop
            self._amend_failed()

    # ------------------------------------------------------------ finalising

    def _outcome(self) -> tuple[str, str | None]:
        """The manifest's status (``complete``, ``incomplete`` or ``failed``) and why."""
        failed = self._failed or self.state is ComponentState.FAILED
        if self._incomplete is not None:
            return ("failed" if failed else "incomplete"), self._incomplete
        if self.state is ComponentState.FAILED:
            return "failed", f"the recorder {self.name!r} failed"
        return outcome_of(self.context.stop_reason)  # set by the runtime before on_stop

    def on_stop(self) -> None:
        if self.output_dir is not None and self._lock is None:
            return  # the directory was never this run's (in use by another): touch nothing
        status, reason = self._outcome()
        journal, self._journal = self._journal, None
        try:
            if journal is not None:
                self._written[JOURNAL_FILE] = journal.close(complete=reason is None, reason=reason)
            self._finalise(reason)
        except BaseException as exc:
            for table in self._tables.values():
                table.abort()
            reason = reason or f"writing the results failed: {type(exc).__name__}: {exc}"
            if self.output_dir is not None:
                self._write_manifest(status="failed", reason=reason)
            self._release()
            raise
        manifest = self._write_manifest(status=status, reason=reason)
        self._release()
        self._stopped = True
        assert self.results is not None
        self.results.manifest = manifest

    def _amend_failed(self) -> None:
        """Rewrite the final manifest as failed: a component stopped after the recorder
        and failed in its ``on_stop`` (the files stay as written; only their status
        changes)."""
        assert self.results is not None
        if self.output_dir is not None:
            lock = outputs.DirectoryLock(self.output_dir)
            if not lock.acquire():  # another run has the directory now: leave it alone
                self.log.warning("manifest_not_amended", reason=self._incomplete)
                return
            self._lock = lock
        self.results.manifest = self._write_manifest(status="failed", reason=self._incomplete)
        self._release()

    def _finalise(self, reason: str | None) -> None:
        parts = self._parts
        if parts is None:  # never started
            parts = _RunParts(
                None,
                OrderLog(None, None),
                PortfolioStates(None, frequency_ns=0),
                TradeBuilder(),
                CashFlowLog(None),
            )
        builder, orders, states = parts.builder, parts.orders, parts.states
        trades_table = builder.finish(
            close_open=self.config.end_of_backtest == "close",
            exit_reason="end_of_backtest" if reason is None else "open_at_stop",
        )
        orders.finish()
        states.finish()
        benchmark = self._daily_tables(states, parts.benchmark)
        files = self._written
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
            cash_flows=parts.flows.metrics(),
            benchmark=benchmark,
            benchmark_name=self.config.benchmark.label if self.config.benchmark else None,
        )
        metrics["calendar"] = states.days.calendar.name if states.days.calendar else None
        metrics["day_timezone"] = states.days.timezone
        self.results = RecorderResults(
            output_dir=self.output_dir,
            metrics=metrics,
            manifest={},
            frames=frames,
            schemas={name: table.schema for name, table in self._tables.items()},
        )
        out, run_id = self.output_dir, self.run_id
        if out is None:
            return
        files["metrics.json"] = outputs.atomic_write_json(
            out / "metrics.json", metrics, run_id=run_id
        )
        config = outputs.to_builtins(self.run_config) if self.run_config is not None else None
        if config is not None:
            files["config.yaml"] = outputs.atomic_write_yaml(
                out / "config.yaml", config, run_id=run_id
            )
        if self.config.diagnostic:  # ml4t-diagnostic's artifact layout, from the tables
            files.update(
                diagnostic.write_run(
                    out,
                    files,
                    days=states.days,
                    run_config=config,
                    metrics=metrics,
                    fill_timing=self.fill_timing,
                    temp=outputs.temp_path(out / diagnostic.DIRECTORY, run_id),
                    compression=self.config.compression,
                )
            )
        if self.config.html_report:
            from ml4t.backtest.report import write_report  # report sits beside record

            summary = {
                "complete": reason is None,
                "incomplete_reason": reason,
                "ml4t_version": outputs.dependency_versions()["ml4t-backtest"],
                "config_hash": self._config_hash(),
            }
            files["report.html"] = write_report(
                out,
                metrics=metrics,
                manifest=summary,
                day_timezone=self.config.day_timezone,
                risk_free_rate=self.config.risk_free_rate,
            )

    def _run_days(self, event: SessionStarted) -> RunDays:
        """What a day is for this run: the sessions of the graph's calendar (the one the
        session names), unless ``day_timezone`` names a zone (then its dates); without a
        calendar, dates in the data's zone."""
        zone = self.config.day_timezone
        calendar = self.context.calendar  # the run's (the engine gives the graph one)
        if zone is None and event.calendar and calendar is not None:
            if getattr(calendar, "name", event.calendar) != event.calendar:
                raise ConfigError(
                    f"the data's calendar {event.calendar!r} is not the run's "
                    f"({calendar.name!r}); set one calendar in backtest.calendar"
                )
            return RunDays(calendar)
        if zone is None and event.calendar:
            self.log.warning(
                "days_without_sessions",
                calendar=event.calendar,
                reason="the graph has no calendar; days are dates in the data's timezone",
            )
        return RunDays(None, zone or event.timezone or "UTC")

    def _daily_tables(
        self, states: PortfolioStates, benchmark: BenchmarkLevels | None
    ) -> np.ndarray | None:
        """Write ``daily_returns``, ``daily_positions`` and (with a benchmark)
        ``benchmark_returns``; return the benchmark's daily returns."""
        daily = states.daily
        self._table("daily_returns", DAILY_RETURNS_SCHEMA).write_table(
            daily.returns_table(states.initial_equity)
        )
        self._table("daily_positions", DAILY_POSITIONS_SCHEMA).write_table(daily.positions_table())
        if benchmark is None:
            return None
        if benchmark.field is not None:
            levels, base = np.asarray(daily.benchmark, dtype=np.float64), states.first_benchmark
        else:
            levels = benchmark.at(daily.ts)
            base = float(benchmark.at([states.first_ts or 0])[0]) if len(daily) else math.nan
        table = daily.benchmark_table(levels, base)
        self._table("benchmark_returns", BENCHMARK_RETURNS_SCHEMA).write_table(table)
        return table.column("return").to_numpy(zero_copy_only=False)

    def _config_hash(self) -> str:
        return outputs.config_hash(self.run_config if self.run_config is not None else self.config)

    def _write_manifest(self, *, status: str, reason: str | None) -> dict[str, Any]:
        """Write ``manifest.json``, listing only the files this run committed."""
        watch = self._watch or outputs.Stopwatch()
        complete = status == "complete"
        out = self.output_dir
        if out is not None and status != "running" and (out / JOURNAL_FILE).is_file():
            # the directory was cleared when this run started: a journal there now was
            # written during this run (by a JournalRecorder beside this recorder)
            self._written.setdefault(JOURNAL_FILE, out / JOURNAL_FILE)
        manifest: dict[str, Any] = {
            "complete": complete,
            "status": status,
            "run_id": self.run_id,
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
                    **(
                        {"rows": pq.read_metadata(path).num_rows}
                        if name.endswith(".parquet")
                        else {}
                    ),
                }
                for name, path in sorted(self._written.items())
            },
            **self.manifest_extra,
        }
        if self.output_dir is not None:
            target = self.output_dir / outputs.MANIFEST_FILE
            outputs.atomic_write_json(target, manifest, run_id=self.run_id)
        safe: dict[str, Any] = outputs.json_safe(manifest)
        return safe


_CANCELLED = "the run was cancelled (interrupted, e.g. by Ctrl-C) before it finished"


def outcome_of(stop_reason: str) -> tuple[str, str | None]:
    """A run's status (``complete``, ``incomplete`` or ``failed``) and why, from
    :attr:`~ml4t.backtest.component.Context.stop_reason` alone: the one rule the recorder's
    manifest and every journal writer follow."""
    if stop_reason == "completed":
        return "complete", None
    if stop_reason == "stopped":
        return "incomplete", "the run was stopped before the end of its data"
    if stop_reason == "terminated":
        return "incomplete", "the run was terminated (SIGTERM) before it finished"
    if stop_reason == "cancelled":
        return "incomplete", _CANCELLED
    if stop_reason == "failed":
        return "failed", "a component failed and the run stopped before the end of its data"
    return "incomplete", f"the run ended without a stop reason from the runtime ({stop_reason!r})"


def _describe_run(out: Path) -> str:
    """Who holds ``out``, from its manifest: run id, start time, status."""
    try:
        manifest = msgspec.json.decode((out / outputs.MANIFEST_FILE).read_bytes())
    except (OSError, msgspec.DecodeError):
        return "its manifest is not readable yet"
    if not isinstance(manifest, dict):
        return "its manifest is not a JSON object"
    return (
        f"run {manifest.get('run_id')}, started at {manifest.get('started_at')}, "
        f"status {manifest.get('status')!r}"
    )


def _keep_partial_journal(out: Path) -> None:
    """Give a killed run's partial journal a name no writer in this process will reuse.

    A journal is written under a name that carries its writer's pid (``journal.ml4tj.
    <pid>.partial``; ``.journal.ml4tj.<pid>.tmp`` before that). A killed run whose pid
    this process now has (pids are reused; in a container every run may be pid 1) would
    have its partial journal truncated when this run opens its own, so it gets a fresh
    run id in its name, keeping its suffix, and stays where it is for
    ``ml4t journal recover``.
    """
    pid = os.getpid()
    for name, suffix in (
        (f"{JOURNAL_FILE}.{pid}.partial", ".partial"),
        (f".{JOURNAL_FILE}.{pid}{outputs.TMP_SUFFIX}", outputs.TMP_SUFFIX),
    ):
        partial = out / name
        if partial.exists():
            kept = name.removesuffix(suffix) + f".{outputs.new_run_id()}{suffix}"
            os.replace(partial, out / kept)
