"""Strategies declared as polars expressions: ``ExprStrategy``.

A rule written as expressions over one timestamp's rows (entry, exit, a rank, a size)
is evaluated vectorised, and execution stays event-driven: orders go through the same
risk manager and broker as any strategy's, fills come back as events.

- **When the feed binds batches to their chunk** (:meth:`MarketBatch.bind_chunk`), the
  entry, exit and rank expressions are evaluated once per chunk, over every row of it,
  each wrapped in ``.over(<timestamp>)``: an aggregation (``rank()``, ``mean()``, a
  ``shift``) sees the rows of its own timestamp and nothing else, exactly as when it is
  evaluated on that timestamp's batch. Otherwise (a feed that does not bind, a batch
  that crossed the wire, a point-in-time universe that filters rows) they are evaluated
  on each batch, with the same result.
- **Look-ahead**: the expressions see the batch's columns (OHLCV, signals, indicators)
  and the context fields as of the timestamp (as columns; a column of the same name
  wins). Nothing in them can reach another timestamp. Time-series features (a moving
  average of a symbol's closes) belong in the data, as indicator columns computed point
  in time.
- **Per timestamp**: every held symbol whose ``exit`` is true is closed
  (``close_position``) and, unless the last entry was refused for buying power and no
  fill has come since, the rows whose ``entry`` is true, whose symbol is neither held
  nor has a working order, are bought, best ``rank`` first (ties: symbol order; a
  null/NaN rank last), at most ``top`` symbols held or working in all. ``size`` is the
  quantity: a number, or an expression evaluated on the entering rows only, which sees
  the row's columns, the context and the strategy's ``equity`` and ``cash`` as columns;
  whole shares (floored) unless the class says ``fractional``; a size that is not a
  positive finite number skips the row. A null ``entry``/``exit`` counts as false.
  With ``top``, all exits go first (they free slots), then the entries in rank order;
  without it, exits and entries go in row (symbol) order, as ``on_bar`` would send them.

The equivalent hand-written rule in either API gives the same orders; see
``tests/strategy/test_strategy_expr.py``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np
import polars as pl

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.events import ChunkColumns, MarketBatch, OrderFilled, OrderRejected
from ml4t.backtest.strategy import StrategyBase

__all__ = ["ExprRules", "ExprStrategy"]

_T = "__ml4t_timestamp"  # the group key of one timestamp's rows in a chunk
_STATE = ("equity", "cash")  # what a size expression sees of the strategy


class ExprRules:
    """The expressions of an :class:`ExprStrategy` (see the module docs)."""

    __slots__ = ("entry", "exit", "rank", "reason", "size", "top")

    def __init__(
        self,
        *,
        entry: pl.Expr,
        exit: pl.Expr | None = None,
        rank: pl.Expr | None = None,
        top: int | None = None,
        size: float | pl.Expr = 1.0,
        reason: str = "signal",
    ) -> None:
        for label, expr in (("entry", entry), ("exit", exit), ("rank", rank)):
            if expr is not None and not isinstance(expr, pl.Expr):
                raise ConfigError(f"ExprRules {label} must be a polars expression, got {expr!r}")
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise ConfigError(f"ExprRules top must be a positive int (or None), got {top!r}")
        if not isinstance(size, pl.Expr):
            if isinstance(size, bool) or not isinstance(size, int | float):
                raise ConfigError(f"ExprRules size must be a number or an expression: {size!r}")
            if not (math.isfinite(size) and size > 0):
                raise ConfigError(f"ExprRules size must be positive and finite, got {size!r}")
        self.entry = entry
        self.exit = exit
        self.rank = rank
        self.top = top
        self.size = size
        self.reason = reason


class ExprStrategy(StrategyBase):
    """A strategy given as polars expressions, evaluated vectorised (module docs).

    Give the rules as keywords (``ExprStrategy(entry=pl.col("signal") > 0.5, ...)``, the
    arguments of :class:`ExprRules`) or, in a subclass a config names, build them from
    the typed parameters in :meth:`rules`. The callbacks and helpers of
    :class:`~ml4t.backtest.strategy.StrategyBase` are there as in any strategy.
    """

    def __init__(self, name: str | None = None, *, params: Any = None, **rules: Any) -> None:
        super().__init__(name, params=params)
        self._rules = ExprRules(**rules) if rules else self.rules()
        if not isinstance(self._rules, ExprRules):
            raise ConfigError(f"{type(self).__name__}.rules() must return ExprRules")
        r = self._rules
        named = (("entry", r.entry), ("exit", r.exit), ("rank", r.rank))
        self._exprs = [(n, e) for n, e in named if e is not None]
        self._chunk: tuple[ChunkColumns | None, dict[str, np.ndarray]] = (None, {})
        self._cash_short = False  # an entry was refused for buying power; no fill since

    def rules(self) -> ExprRules:
        """The rules, when none were given as keywords (override in a subclass)."""
        raise ConfigError(
            f"{type(self).__name__} needs its rules: pass entry=... (and exit, rank, top, "
            "size) or override rules() to return ExprRules"
        )

    # ------------------------------------------------------------ evaluation

    def _evaluate(self, batch: MarketBatch) -> dict[str, np.ndarray]:
        """entry/exit as bool arrays, rank as float, one entry per row of ``batch``."""
        bound = batch.chunk()
        if bound is None:
            return self._columns(_with_context(batch.frame, batch.context), over=False)
        chunk, index = bound
        arrays = self._chunk_values(chunk)
        lo = chunk.offsets[index]
        hi = lo + chunk.lengths[index]
        return {name: values[lo:hi] for name, values in arrays.items()}

    def _columns(self, frame: pl.LazyFrame, *, over: bool) -> dict[str, np.ndarray]:
        """The expressions on ``frame`` in one query (per timestamp group if ``over``)."""
        exprs = []
        for name, expr in self._exprs:
            if over:
                expr = expr.over(_T)
            if name == "rank":
                expr = expr.cast(pl.Float64).fill_null(math.nan)
            else:
                expr = expr.cast(pl.Boolean).fill_null(False)
            exprs.append(expr.alias(f"__{name}"))
        try:
            out = frame.with_columns(exprs).select([e.meta.output_name() for e in exprs]).collect()
        except pl.exceptions.PolarsError as exc:
            raise ConfigError(
                f"strategy {self.name!r}: its expressions cannot be evaluated on the batch "
                f"(columns {frame.collect_schema().names()}): {exc}"
            ) from exc
        return {name: out.get_column(f"__{name}").to_numpy() for name, _ in self._exprs}

    # ------------------------------------------------------------ quiet spans

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        """Quiet while asleep (``wake = "signal"``), and also until the first timestamp
        where some row could act: an ``exit`` of a held symbol, or an ``entry`` of one
        not held while entries are possible (no buying-power refusal since the last
        fill, a free slot under ``top``). The expressions are the chunk's, evaluated once
        per chunk as :meth:`_dispatch` evaluates them; nothing held or working changes
        inside a span, so what the rows say here is what the batches would do."""
        asleep = super().quiet_until(chunk, first, last)
        if asleep >= last or self._members is not None or not self._table.known:
            return asleep
        if self._by_signal and self._woken:  # the next batch is dispatched and wakes it
            return first - 1
        if self._dirty:
            self._refresh_arrays()
        arrays = self._chunk_values(chunk)
        top = self._rules.top
        working = {order.symbol for order in self._open.values()}
        entries = not self._cash_short and (top is None or len(self._held | working) < top)
        # look ahead in growing windows, so a strategy about to act costs little to ask
        begin, width = first, 1
        while True:
            stop = min(last, begin + width - 1)
            acting = self._first_acting(chunk, arrays, begin, stop, entries)
            if acting is not None:
                return max(asleep, acting - 1)
            if stop >= last:
                return last
            begin, width = stop + 1, width * 16

    def _first_acting(
        self,
        chunk: ChunkColumns,
        arrays: dict[str, np.ndarray],
        first: int,
        last: int,
        entries: bool,
    ) -> int | None:
        """The first timestamp of ``first..last`` with a row that could act, if any."""
        r0 = chunk.offsets[first]
        r1 = chunk.offsets[last] + chunk.lengths[last]
        held = self._table["position"][chunk.codes()[r0:r1]] != 0.0
        active = np.zeros(r1 - r0, dtype=bool)
        exits = arrays.get("exit")
        if exits is not None and self._held:
            active |= exits[r0:r1] & held
        if entries:
            active |= arrays["entry"][r0:r1] & ~held
        rows = np.flatnonzero(active)
        if not rows.size:
            return None
        return bisect_right(chunk.offsets, r0 + int(rows[0])) - 1  # the row's timestamp

    def _chunk_values(self, chunk: ChunkColumns) -> dict[str, np.ndarray]:
        """The expressions over every row of ``chunk`` (once per chunk)."""
        seen, arrays = self._chunk
        if seen is not chunk:
            arrays = self._columns(_chunk_frame(chunk).lazy(), over=True)
            self._chunk = (chunk, arrays)
        return arrays

    # ------------------------------------------------------------ per timestamp

    def _dispatch(self, batch: MarketBatch) -> None:
        rules = self._rules
        values = self._evaluate(batch)
        codes = batch.symbol_codes()
        names = self._symbol_names()
        held = self.batch_positions(batch.frame, pending=False) != 0.0
        exits = values.get("exit")
        exiting = held & exits if exits is not None else np.zeros(held.shape, dtype=bool)
        if rules.top is not None:  # exits first: they free the slots entries fill
            for row in np.flatnonzero(exiting).tolist():
                self.close_position(names[codes[row]], reason=rules.reason)
            exiting[:] = False
        entering = self._entries(values, codes, held)
        if not (entering.size or exiting.any()):
            return
        sizes = dict(zip(entering.tolist(), self._sizes(batch, entering), strict=True))
        # with top: entering is in rank order and exits are done; else both in row order
        order = entering if rules.top is not None else np.union1d(np.flatnonzero(exiting), entering)
        for row in order.tolist():
            if exiting[row]:
                self.close_position(names[codes[row]], reason=rules.reason)
                continue
            quantity = sizes[row]
            if quantity > 0.0 and math.isfinite(quantity):
                self.buy(names[codes[row]], quantity, reason=rules.reason)

    def _entries(
        self, values: dict[str, np.ndarray], codes: np.ndarray, held: np.ndarray
    ) -> np.ndarray:
        """The rows to buy, in the order to buy them."""
        none = np.empty(0, dtype=np.intp)
        if self._cash_short:
            return none
        candidates = values["entry"] & ~held
        if not candidates.any():
            return none
        working = {order.symbol for order in self._open.values()}
        if working:
            busy = [self._table.code[s] for s in working if s in self._table]
            candidates &= ~np.isin(codes, busy)
        rows = np.flatnonzero(candidates)
        top = self._rules.top
        if top is None:
            return rows
        slots = top - len(self._held | working)
        if slots <= 0 or rows.size == 0:
            return none
        if "rank" in values:
            rank = values["rank"][rows]
            rows = rows[np.lexsort((codes[rows], -np.nan_to_num(rank, nan=0.0), np.isnan(rank)))]
        return rows[:slots]

    def _sizes(self, batch: MarketBatch, rows: np.ndarray) -> list[float]:
        size = self._rules.size
        if rows.size == 0:
            return []
        if isinstance(size, pl.Expr):
            frame = _with_context(batch.frame[rows], batch.context)
            state = [
                pl.lit(v, dtype=pl.Float64).alias(n)
                for n, v in zip(_STATE, (self._equity, self._cash), strict=True)
            ]
            try:
                out = (
                    frame.with_columns(state)
                    .select(size.cast(pl.Float64).alias("__size"))
                    .collect()
                )
            except pl.exceptions.PolarsError as exc:
                raise ConfigError(
                    f"strategy {self.name!r}: its size expression cannot be evaluated: {exc}"
                ) from exc
            sizes = out.get_column("__size").fill_null(math.nan).to_list()
            if len(sizes) == 1 and rows.size > 1:
                sizes = sizes * rows.size
        else:
            sizes = [float(size)] * rows.size
        if self.fractional:
            return sizes
        return [float(math.floor(q)) if math.isfinite(q) else math.nan for q in sizes]

    def _symbol_names(self) -> list[str]:
        return self._table.symbols

    # ------------------------------------------------------------ refusals
    # (a subclass that overrides on_reject or on_fill calls super() to keep this rule)

    def on_reject(self, rejection: OrderRejected) -> None:
        if rejection.rule == "buying_power":
            self._cash_short = True

    def on_fill(self, fill: OrderFilled) -> None:
        self._cash_short = False


def _with_context(frame: pl.DataFrame, context: dict[str, float | None]) -> pl.LazyFrame:
    """``frame`` with the context fields as columns (a column of the same name wins)."""
    columns = frame.columns
    extra = [
        pl.lit(value, dtype=pl.Float64).alias(name)
        for name, value in context.items()
        if name not in columns
    ]
    return frame.lazy().with_columns(extra) if extra else frame.lazy()


def _chunk_frame(chunk: ChunkColumns) -> pl.DataFrame:
    """The chunk's rows with a timestamp group key and the context as columns."""
    lengths = np.asarray(chunk.lengths, dtype=np.int64)
    group = np.repeat(np.arange(lengths.size, dtype=np.int32), lengths)
    frame = chunk.frame.with_columns(pl.Series(_T, group))
    contexts = chunk.contexts
    if contexts:
        fields = [
            f for f in dict.fromkeys(k for c in contexts for k in c) if f not in frame.columns
        ]
        per_ts = pl.DataFrame(
            {f: [c.get(f) for c in contexts] for f in fields},
            schema=dict.fromkeys(fields, pl.Float64),
        )
        frame = frame.with_columns(per_ts[group].get_columns())
    return frame
