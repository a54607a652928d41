"""ParquetFeed: streams long-format parquet bars as one MarketBatch per timestamp.

Start-up (:meth:`ParquetFeed.prepare`, run by ``on_start`` unless done before): check
the schemas, learn the symbol universe and the timestamps, plan memory-sized chunks and,
unless a :class:`ValidationReport` says it already ran, validate every row. Then the feed
schedules an alarm (priority ``DATA``) at its first timestamp; each alarm publishes one
:class:`~ml4t.backtest.MarketBatch` on ``MARKET`` and schedules the next timestamp, so
the same feed runs on a simulated clock (backtest) and a wall clock (paper replay).

Per timestamp the work is a zero-copy ``DataFrame.slice`` of the current chunk, a
context dict computed in bulk for the chunk, and one publish: it never depends on the
history so far. Chunks are read ahead on a worker thread.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import partial
from pathlib import Path

import anyio.to_thread
import msgspec
import numpy as np
import polars as pl

from ml4t.backtest._span import MARKET_SPAN, MarketSpan, SpanGate
from ml4t.backtest.clock import Alarm, AlarmPriority
from ml4t.backtest.component import Component
from ml4t.backtest.data._assets import AssetData
from ml4t.backtest.data._between import Between
from ml4t.backtest.data._chunks import ChunkReader
from ml4t.backtest.data._context import ContextCursor, coverage_violations, open_context
from ml4t.backtest.data._repair import OHLCV
from ml4t.backtest.data._signals import SlowSignals
from ml4t.backtest.data._source import TS, data_fingerprint
from ml4t.backtest.data._vcache import Entry, cache_key, load_entry, save_entry
from ml4t.backtest.data._wakes import SignalWakes
from ml4t.backtest.data.actions import ActionSchedule, load_corporate_actions
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.data.config import FeedConfig
from ml4t.backtest.data.membership import Membership, load_universe
from ml4t.backtest.data.validation import (
    ValidationReport,
    Violation,
    raise_violations,
)
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.events import (
    ChunkColumns,
    CorporateAction,
    MarketBatch,
    SessionStarted,
)
from ml4t.backtest.topics import CORPORATE_ACTIONS, MARKET, SESSION

__all__ = ["ParquetFeed"]

Where = str | Path | pl.LazyFrame | pl.DataFrame | None


class _Chunk:
    """One chunk ready to publish: its columns (frame, per-timestamp offsets, lengths and
    contexts, as every batch cut from it is bound to them), timestamps and codes."""

    __slots__ = ("codes", "columns", "ts")

    def __init__(self, frame: pl.DataFrame, row_ts: np.ndarray) -> None:
        starts = np.flatnonzero(np.diff(row_ts)) + 1
        starts = np.concatenate(([0], starts)) if len(row_ts) else starts
        # one buffer per column, so every batch is a zero-copy slice of it and so are
        # the numpy columns every role reads (MarketBatch.numpy)
        frame = frame.rechunk()
        lengths: list[int] = np.diff(np.append(starts, len(row_ts))).tolist()
        self.columns = columns = ChunkColumns(frame, starts.tolist(), lengths)
        # symbol codes of every row, once per chunk (here, on the read-ahead thread):
        # each batch carries its slice, as int32 bytes on the wire and as intp in process
        self.codes = columns.codes().data.cast("B")
        self.ts: list[int] = row_ts[starts].tolist()


def market_batch(chunk: _Chunk, i: int) -> MarketBatch:
    """The batch of ``chunk``'s ``i``-th timestamp: zero-copy slices, bound to the chunk."""
    ts = chunk.ts[i]
    columns = chunk.columns
    n = columns.lengths[i]
    offset = columns.offsets[i]
    contexts = columns.contexts
    batch = MarketBatch(
        ts_event=ts,
        ts_init=ts,
        frame=columns.frame.slice(offset, n),
        context=contexts[i] if contexts is not None else {},
        codes=bytes(chunk.codes[4 * offset : 4 * (offset + n)]),
    )
    batch.bind_chunk(columns, i)
    return batch


class ParquetFeed(Component):
    """Asset bars (+ slower signals, + context) from parquet, one batch per timestamp.

    ``asset``, ``signal_data`` and ``context`` override the paths in ``config`` with a
    path, glob, directory, LazyFrame or DataFrame. ``validated`` is the report of an
    earlier validation of the same data and config; the row rules are then not re-run.
    ``calendar`` is the run's :class:`~ml4t.backtest.data.calendar.SessionCalendar`
    (the engine's, the one every component gets in its context): used for the data's
    sessions when it is the calendar ``config.calendar`` names, so its schedules are
    computed once per run, not once per holder.

    Before its first batch the feed publishes the session handshake,
    :class:`~ml4t.backtest.events.SessionStarted` on ``SESSION``: the universe in code
    order, each column's role, the data's time span, calendar and timezone, and the
    run's facts given in ``session`` (run id, config hash, starting cash: the engine
    gives them), so every role builds its per-symbol state from one event.

    With ``fast_forward`` (the default) a run of timestamps in which nothing but bars
    can happen is published as one :class:`~ml4t.backtest._span.MarketSpan` when every
    role hearing the market knows spans; the results are the same to the bit as with
    ``fast_forward=False``, which publishes every batch on its own.
    """

    def __init__(
        self,
        config: FeedConfig | None = None,
        *,
        asset: Where = None,
        signal_data: Where = None,
        context: Where = None,
        validated: ValidationReport | None = None,
        session: SessionStarted | None = None,
        calendar: SessionCalendar | None = None,
        fast_forward: bool = True,
        name: str = "feed",
    ) -> None:
        super().__init__(name)
        self.fast_forward = fast_forward
        self._gate: SpanGate | None = None
        self._calendar = calendar
        self.config = config or FeedConfig()
        self._session = session if session is not None else SessionStarted(ts_event=0)
        self._where = (asset, signal_data, context)
        self._check_names()
        self.report: ValidationReport | None = validated
        self._skip_validation = validated is not None or not self.config.validate
        # validated by this feed's own prepare: every chunk it reads again was checked
        self._validated_here = False
        # with validate: false nothing counted the repairs up front: count them as they stream
        self._count_while_streaming = validated is None and not self.config.validate
        self.symbols: tuple[str, ...] = ()
        self.symbol_dtype: pl.Enum = pl.Enum([])
        self.signal_columns: tuple[str, ...] = ()
        self.indicator_columns: tuple[str, ...] = tuple(self.config.asset.indicators)
        self.context_fields: tuple[str, ...] = (
            tuple(self.config.context.fields) if self.config.context else ()
        )
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.batches_published = 0
        self.rows_published = 0
        self.spans_published = 0  # quiet spans (their batches count in batches_published)
        self._assets: AssetData | None = None
        self._signals: SlowSignals | None = None
        self._context: ContextCursor | None = None
        self._reader: ChunkReader[_Chunk] | None = None
        self._alarm: Alarm | None = None
        self._chunk: _Chunk | None = None
        self._i = 0
        self.actions: ActionSchedule | None = None
        self.membership: Membership | None = None
        self._between: Between | None = None  # actions and universe changes, when any
        self._wakes: SignalWakes | None = None  # where signals change, chunk by chunk

    @property
    def repairs(self) -> dict[str, int]:
        """Rows each repair dropped or changed (empty before validation or without repairs)."""
        return dict(self.report.repairs) if self.report is not None else {}

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of every batch frame, in order."""
        return ("symbol", *OHLCV, *self.signal_columns, *self.indicator_columns)

    def _check_names(self) -> None:
        cfg = self.config
        names = [
            *cfg.asset.signals,
            *cfg.asset.indicators,
            *(cfg.signal_data.columns if cfg.signal_data else []),
        ]
        reserved = {"symbol", *OHLCV}
        clash = sorted({n for n in names if n in reserved or names.count(n) > 1})
        if clash:
            raise ConfigError(
                f"signal/indicator column(s) {clash} are named twice or clash with symbol/OHLCV; "
                "each batch column needs a unique name"
            )

    # ------------------------------------------------------------ preparation

    def prepare(self) -> ValidationReport:
        """Open sources, check schemas, plan chunks and validate; idempotent.

        Raises :class:`~ml4t.backtest.data.validation.DataRuleViolation` (a
        ``DataValidationError``) listing every broken rule.
        """
        if self._assets is not None and self.report is not None:
            return self.report
        asset_where, signal_where, context_where = self._where
        assets = AssetData(self.config, asset_where, self._calendar)
        violations = self._open_side_sources(signal_where, context_where)
        raise_violations(violations)
        key = self._cache_key(assets)
        known = load_entry(key) if key is not None else None
        violations = assets.plan_chunks(known)
        if self._context is not None:
            violations += coverage_violations(self._context, assets.first_ts, assets.last_ts)
        if self._signals is not None and assets.symbols:
            violations += self._signals.load(assets.enum, assets.hi)
        if self._skip_validation:
            raise_violations(violations)
            self.report = self.report or ValidationReport(
                rows=assets.rows,
                timestamps=assets.n_timestamps,
                symbols=len(assets.symbols),
                first_ts=assets.first_ts,
                last_ts=assets.last_ts,
                chunks=len(assets.plan),
            )
        elif known is not None and not violations:
            # the same files passed every rule under the same config and code before
            self.report = msgspec.structs.replace(known.report, repairs=dict(known.report.repairs))
            assets.log_repairs(self.report)
            self._validated_here = True
        else:
            self.report = assets.validate(violations)
            self._validated_here = True
            if key is not None and assets.counted is not None:
                by_symbol, by_ts = assets.counted
                save_entry(
                    key,
                    Entry(by_symbol, by_ts, assets.file_spans, self.report),
                    assets.source.opened.files,
                )
        self._assets = assets
        self.symbols = assets.symbols
        self.symbol_dtype = assets.enum
        self.first_ts, self.last_ts = assets.first_ts, assets.last_ts
        extra = tuple(self.config.signal_data.columns) if self.config.signal_data else ()
        self.signal_columns = (*self.config.asset.signals, *extra)
        if self.signal_columns:
            self._wakes = SignalWakes(self.signal_columns, len(self.symbols))
        self._load_session_files()
        return self.report

    def _cache_key(self, assets: AssetData) -> str | None:
        """The validation cache's key for these asset files (None: not cached; see
        :mod:`ml4t.backtest.data._vcache`)."""
        opened = assets.source.opened
        if not self.config.validation_cache or not opened.files:
            return None
        return cache_key(self.config, opened.files)

    def _load_session_files(self) -> None:
        """The corporate-action and universe files, checked against the data's symbols."""
        cfg = self.config
        tz = cfg.asset.timezone or "UTC"
        symbols = set(self.symbols)
        if cfg.corporate_actions is not None:
            self.actions = load_corporate_actions(
                cfg.corporate_actions, symbols=symbols, timezone=tz
            )
        if cfg.universe is not None and self.first_ts is not None:
            self.membership = load_universe(
                cfg.universe, symbols=symbols, timezone=tz, start_ns=self.first_ts
            )

    def _open_side_sources(self, signal_where: Where, context_where: Where) -> list[Violation]:
        cfg = self.config
        violations: list[Violation] = []
        if cfg.signal_data is not None:
            self._signals = SlowSignals(cfg.signal_data, signal_where)
            violations += self._signals.schema_violations()
        if cfg.context is not None:
            self._context, problems = open_context(cfg.context, context_where)
            violations += problems
        return violations

    def layouts(self) -> dict[str, str]:
        """Each source (known after :meth:`prepare`) as ``name (layout)``, by role, e.g.
        ``{"asset": "data/bars (csv, 250 files, symbol from the file name)"}``."""
        sources = {
            "asset": self._assets.source if self._assets is not None else None,
            "signal_data": self._signals.source if self._signals is not None else None,
            "context": self._context.source if self._context is not None else None,
        }
        return {
            role: f"{src.name} ({src.opened.describe()})"
            for role, src in sources.items()
            if src is not None
        }

    # ------------------------------------------------------------ lifecycle

    async def on_start(self) -> None:
        if self._assets is None or self.report is None:
            await anyio.to_thread.run_sync(self.prepare)
        assert self._assets is not None
        self._publish = self.context.bus.publish
        self._schedule = self.context.clock.schedule
        if self.fast_forward:
            self._gate = SpanGate(self.context.bus, self.context.clock)
        self._reader = ChunkReader(self._assets.plan, self._load)
        self.log.info(
            "feed_started",
            symbols=len(self.symbols),
            rows=self.report.rows if self.report else None,
            chunks=len(self._assets.plan),
            source=self._assets.source.name,
        )
        self._publish(SESSION, self.session_started())
        if self.actions is not None or self.membership is not None:
            between = Between(
                self.actions,
                self.membership,
                self.symbols,
                adjusted=self.config.asset.prices == "adjusted",
            )
            self._between = between if between.active else None
        first = self._next_chunk()
        if first is not None:
            self._alarm = self._schedule(first.ts[0], self._emit, priority=AlarmPriority.DATA)

    def session_started(self) -> SessionStarted:
        """The handshake this feed publishes (known once the data is prepared)."""
        roles = {"symbol": "symbol", **dict.fromkeys(OHLCV, "ohlcv")}
        roles.update(dict.fromkeys(self.signal_columns, "signal"))
        roles.update(dict.fromkeys(self.indicator_columns, "indicator"))
        first = self.first_ts or 0
        calendar = self._assets.calendar if self._assets is not None else None
        return msgspec.structs.replace(
            self._session,
            ts_event=first,
            ts_init=first,
            data_fingerprint=self._session.data_fingerprint or self._fingerprint(),
            sessions_per_year=calendar.sessions_per_year(first) if calendar is not None else 0,
            calendar=self.config.calendar or self._session.calendar,
            timezone=self.config.asset.timezone or self._session.timezone,
            start_ns=first,
            end_ns=self.last_ts or 0,
            symbols=list(self.symbols),
            columns=roles,
            context=list(self.context_fields),
            members=self.membership.initial if self.membership is not None else None,
            universe_exit=self.config.universe.on_exit if self.config.universe else "hold",
        )

    def _fingerprint(self) -> str:
        """The data fingerprint of the files this feed reads (frames count as in memory)."""
        cfg = self.config
        sections = (cfg.asset, cfg.signal_data, cfg.context)
        sources: dict[str, str | None] = {}
        formats: dict[str, str] = {}
        for role, given, section in zip(
            ("asset", "signal_data", "context"), self._where, sections, strict=True
        ):
            path = section.path if section is not None else None
            if given is None:
                sources[role] = path
            else:
                sources[role] = str(given) if isinstance(given, str | Path) else None
            formats[role] = section.format if section is not None else "auto"
        return data_fingerprint(sources, formats)

    def on_stop(self) -> None:
        report = self.report
        if self._count_while_streaming and report is not None and any(report.repairs.values()):
            self.log.warning("data_repaired", repairs=report.repairs, while_streaming=True)
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._chunk = None

    def _load(self, lo: int, hi: int) -> _Chunk:
        """Read, check and enrich chunk [lo, hi) (runs on the read-ahead thread)."""
        assert self._assets is not None
        df, counts = self._assets.checked(lo, hi, ordered=self._validated_here)
        if self._count_while_streaming and self.report is not None:
            for key, n in counts.items():
                self.report.repairs[key] = self.report.repairs.get(key, 0) + n
        if self._signals is not None:
            df = self._signals.join(df)
        chunk = _Chunk(df.select(self.columns), df[TS].to_numpy())
        if self._context is not None:
            times = np.asarray(chunk.ts, dtype=np.int64)
            chunk.columns.contexts = self._context.values(times, lo, hi)
        self._find_wakes(chunk)
        return chunk

    def _find_wakes(self, chunk: _Chunk) -> None:
        """The chunk's wakes (where signal values change), for ``wake = "signal"``
        strategies; every timestamp counts when a signal column is not numeric."""
        wakes = self._wakes
        if wakes is None:
            return
        columns = chunk.columns
        try:
            values = {name: columns.array(name) for name in wakes.columns}
            found = wakes.of_chunk(columns.codes(), values, columns.lengths)
        except (TypeError, ValueError):
            self._wakes = None
            return
        columns.wakes = found

    def _next_chunk(self) -> _Chunk | None:
        """Move to the next non-empty chunk and return it; None when the data is exhausted."""
        assert self._reader is not None
        while True:
            chunk = self._reader.next_chunk()
            if chunk is None:
                self._chunk = None
                return None
            if chunk.ts:
                self._chunk, self._i = chunk, 0
                return chunk

    def _emit(self) -> None:
        """Publish the batch at the current timestamp and schedule the next one (or,
        when the timestamps from here on are quiet, schedule their span)."""
        chunk = self._chunk
        assert chunk is not None
        i = self._i
        if self._gate is not None and i + 1 < len(chunk.ts):
            last = self._quiet_through(chunk, i)
            if last > i:
                self._alarm = self._schedule(
                    chunk.ts[last],
                    partial(self._emit_span, chunk, i, last),
                    priority=AlarmPriority.DATA,
                    owner=self.name,
                )
                return
        ts = chunk.ts[i]
        batch = self._batch_at(chunk, i)
        n = chunk.columns.lengths[i]
        between = self._between
        if between is not None:
            self._publish_between(between, ts)
            if between.needs_closes:
                between.observe(batch.symbol_codes(), batch.numpy("close"))
        self._publish(MARKET, batch)
        self.batches_published += 1
        self.rows_published += n
        self._advance(chunk, i + 1, ts)

    def _quiet_through(self, chunk: _Chunk, first: int) -> int:
        """The last index of ``chunk`` through which, from ``first``, nothing but bars
        happens: before the next alarm and the next action or universe change, and as
        far as every role hearing the market says it stays quiet (``first``: no span)."""
        gate = self._gate
        assert gate is not None
        owners = gate.owners()
        if owners is None:
            return first
        times = chunk.ts
        last = len(times) - 1
        due = self.context.clock.next_alarm_ns()
        if due is not None:
            last = min(last, bisect_left(times, due) - 1)
        between = self._between
        if between is not None:
            due = between.next_due()
            if due is not None:
                last = min(last, bisect_left(times, due) - 1)
        columns = chunk.columns
        for index, owner in enumerate(owners):  # the one that said no last time first
            if last <= first:
                return first
            try:
                last = owner.quiet_until(columns, first, last)
            except Exception:  # no span: the batch raises it again, in its owner's name
                last = first
            if last <= first:
                gate.ask_first(index)
                return first
        return last

    def _emit_span(self, chunk: _Chunk, first: int, last: int) -> None:
        """Publish timestamps ``first`` to ``last`` as one span (at the last of them)."""
        times = chunk.ts[first : last + 1]
        span = MarketSpan(
            ts_event=times[-1],
            ts_init=times[-1],
            first=first,
            times=times,
            batch=self._batch_at(chunk, last),
        )
        between = self._between
        if between is not None and between.needs_closes:
            codes, rows = span.last_rows()
            between.observe(codes, span.column("close")[rows])
        self._publish(MARKET_SPAN, span)
        self.spans_published += 1
        self.batches_published += len(times)
        self.rows_published += span.height
        self._advance(chunk, last + 1, times[-1])

    def _advance(self, chunk: _Chunk, i: int, ts: int) -> None:
        """Schedule timestamp ``i`` of ``chunk`` (the next chunk's first past its end;
        what is due after the data's last bar, ``ts``, when there is none)."""
        if i == len(chunk.ts):
            following = self._next_chunk()
            if following is None:
                self._alarm = None
                self._after_last_bar(ts)
                return
            chunk, i = following, 0
        self._i = i
        self._alarm = self._schedule(
            chunk.ts[i], self._emit, priority=AlarmPriority.DATA, owner=self.name
        )

    def _batch_at(self, chunk: _Chunk, i: int) -> MarketBatch:
        """The batch of the chunk's ``i``-th timestamp (a feed sharing its data pass
        returns the one batch object every run of the pass receives)."""
        return market_batch(chunk, i)

    def _publish_between(self, between: Between, ts: int) -> None:
        for event in between.due(ts):
            if isinstance(event, CorporateAction):
                self._publish(CORPORATE_ACTIONS, event)
            else:
                self._publish(SESSION, event)

    def _after_last_bar(self, last_ts: int) -> None:
        """Actions that take effect after the data's last bar (a delisting announced
        past it) are published when they take effect, so no holding is left marked at
        a price that no longer trades."""
        between = self._between
        if between is None or not between.active:
            return
        due = between.next_due()
        assert due is not None
        at = max(due + 1, last_ts + 1)
        self._alarm = self._schedule(at, self._flush_between, priority=AlarmPriority.DATA)

    def _flush_between(self) -> None:
        assert self._between is not None
        at = self.now_ns()
        self._publish_between(self._between, at)
        self._after_last_bar(at)
