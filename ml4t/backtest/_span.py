"""Quiet spans: consecutive timestamps of one chunk in which nothing but bars happens.

In most minutes of a backtest nothing happens: the strategy sleeps until its signals
change (``wake = "signal"``), the broker holds no working order, no timer, corporate
action or universe change is due. Every role still hears every batch and the portfolio
still marks and publishes a snapshot, so the recorder keeps one state per timestamp.

A feed that sees such a run of timestamps ahead (``ParquetFeed(fast_forward=True)``,
the default on a simulated clock) publishes one :class:`MarketSpan` for the run instead
of one :class:`~ml4t.backtest.events.MarketBatch` per timestamp, and the portfolio
answers with one :class:`PortfolioSpan` holding the state of every timestamp in it
(arrays of the marked values, computed with the same arithmetic; the roles that keep
statistics of every state take a span's at once where it lies in one day). Every state
and table comes out equal to the bit to what the batches one by one give;
``tests/engine/test_spans.py`` plays random worlds both ways.

**Who decides.** A span is only published when every subscriber of ``MARKET`` and
``PORTFOLIO`` is a component that knows spans (:class:`SpanAware`): it names, in
``span_handlers``, every handler through which it hears those topics, it subscribes the
span topics, and its :meth:`SpanAware.quiet_until` says how far it stays quiet. Any
other subscriber (a journal, a kill switch, a user's own ``@on(MARKET)`` handler) turns
spans off, and the batches flow one by one as before. So does a strict bus, a wall
clock, or a dispatcher other than the sequenced one.

**What quiet means.** Between the span's first and last timestamp no role may publish
anything but the portfolio's snapshots: no order, no fill, no timer, no session event.
Each role answers from its own state (the strategy: asleep until its next wake; the
broker: no working order; the risk manager: no kill switch) and the feed from the clock
(the next alarm) and its own schedule (the next corporate action or universe change).

The span topics are in-process only: they are not standard topics, never journaled and
never sent on a wire (a span's batch is bound to its chunk, see
:meth:`~ml4t.backtest.events.MarketBatch.bind_chunk`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec
import numpy as np

from ml4t.backtest._dispatch import SequencedDispatcher
from ml4t.backtest.bus import Bus, Subscription, Topic
from ml4t.backtest.clock import Clock, SimulatedClock
from ml4t.backtest.events import ChunkColumns, Event, MarketBatch, PortfolioSnapshot
from ml4t.backtest.topics import MARKET, PORTFOLIO

__all__ = [
    "MARKET_SPAN",
    "PORTFOLIO_SPAN",
    "MarketSpan",
    "PortfolioSpan",
    "SpanAware",
    "SpanGate",
    "span_owner",
]


class MarketSpan(Event, frozen=True, kw_only=True, dict=True):
    """Timestamps ``first`` to ``last`` of ``batch``'s chunk (``batch`` is the last of
    them, bound to its chunk); ``times`` are their timestamps, ``ts_event`` the last."""

    first: int
    times: list[int]
    batch: MarketBatch

    @property
    def chunk(self) -> ChunkColumns:
        bound = self.batch.chunk()
        assert bound is not None  # a span is cut from a chunk
        return bound[0]

    @property
    def last(self) -> int:
        return self.first + len(self.times) - 1

    @property
    def steps(self) -> int:
        """Number of timestamps."""
        return len(self.times)

    def rows(self) -> tuple[int, int]:
        """The span's rows of the chunk, ``[r0, r1)``."""
        chunk = self.chunk
        last = self.last
        return chunk.offsets[self.first], chunk.offsets[last] + chunk.lengths[last]

    @property
    def height(self) -> int:
        """Number of rows (bars) in the span."""
        r0, r1 = self.rows()
        return r1 - r0

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` over the span's rows (a read-only view of the chunk's)."""
        r0, r1 = self.rows()
        return self.chunk.array(name)[r0:r1]

    def codes(self) -> np.ndarray:
        """The symbol codes of the span's rows."""
        r0, r1 = self.rows()
        return self.chunk.codes()[r0:r1]

    def grid_width(self) -> int | None:
        """The number of rows per timestamp when every timestamp of the span has the
        same symbols in the same rows (a complete grid), else None."""
        state = self.__dict__
        if "_grid" not in state:
            chunk = self.chunk
            lengths = chunk.lengths[self.first : self.last + 1]
            width = lengths[0]
            grid = width > 0 and min(lengths) == max(lengths)
            if grid:
                rows = self.codes().reshape(len(lengths), width)
                grid = bool((rows == rows[0]).all())
            state["_grid"] = width if grid else None
        return state["_grid"]

    def last_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, rows)``: every symbol of the span once, with the row (into the span's
        columns) of its last bar, so ``values[codes] = column[rows]`` leaves ``values``
        as the bars one by one (each overwriting the one before) would."""
        state = self.__dict__
        found = state.get("_last_rows")
        if found is None:
            codes = self.codes()
            width = self.grid_width()
            if width is not None:  # the last timestamp has every symbol
                start = codes.size - width
                found = (codes[start:].astype(np.intp), np.arange(start, codes.size))
            else:
                back = codes[::-1]
                unique, first_back = np.unique(back, return_index=True)
                found = (unique.astype(np.intp), codes.size - 1 - first_back)
            state["_last_rows"] = found
        return found

    def scatter_last(self, target: np.ndarray, name: str) -> None:
        """``target[code] =`` each symbol's last value of column ``name`` in the span."""
        codes, rows = self.last_rows()
        if codes.size:
            target[codes] = self.column(name)[rows]

    def filled(self, name: str, codes: np.ndarray, before: np.ndarray) -> np.ndarray:
        """A ``(steps, len(codes))`` matrix: at each timestamp, the last value of column
        ``name`` known for each of ``codes`` (its latest bar so far in the span, else
        ``before``), as a table updated bar by bar holds it after that timestamp.

        Read-only, and shared: roles asking with the same codes and the same values
        before the span get the same matrix."""
        key = (name, codes.tobytes(), before.tobytes())
        cache = self.__dict__.setdefault("_filled_by", {})
        found = cache.get(key)
        if found is None:
            found = cache[key] = self._fill(name, codes, before)
            found.flags.writeable = False
        return found

    def _fill(self, name: str, codes: np.ndarray, before: np.ndarray) -> np.ndarray:
        steps = self.steps
        width = codes.size
        out = np.empty((steps, width))
        row_codes = self.codes()
        if not width or not row_codes.size:
            out[:] = before
            return out
        size = max(int(row_codes.max()), int(codes.max())) + 1
        slot = np.full(size, -1, dtype=np.intp)
        values = self.column(name)
        grid = self.grid_width()
        if grid is not None:  # each code is in the same column at every timestamp
            slot[row_codes[:grid]] = np.arange(grid)
            column = slot[codes]
            seen = column >= 0
            out[:, seen] = values.reshape(steps, grid)[:, column[seen]]
            out[:, ~seen] = before[~seen]
            return out
        slot[codes] = np.arange(width)
        column_of = slot[row_codes]
        picked = np.flatnonzero(column_of >= 0)
        lengths = self.chunk.lengths[self.first : self.last + 1]
        step_of = np.repeat(np.arange(steps), lengths)
        latest = np.full((steps, width), -1, dtype=np.intp)
        latest[step_of[picked], column_of[picked]] = picked
        np.maximum.accumulate(latest, axis=0, out=latest)
        np.copyto(out, values[np.maximum(latest, 0)])
        unseen = latest < 0
        if unseen.any():
            out[unseen] = np.broadcast_to(before, out.shape)[unseen]
        return out


class PortfolioSpan(Event, frozen=True, kw_only=True, dict=True):
    """The portfolio's state at every timestamp of a :class:`MarketSpan`, in order.

    Inside a span only prices move: cash, the positions and their count, realized P&L
    and costs stay as in ``last``, the snapshot of the last timestamp. ``values`` and
    ``gross`` are the positions value (the net exposure) and the gross exposure at
    each of ``times``, ``cost`` what the positions cost (unrealized P&L is value less
    cost); both None when nothing is held. :meth:`snapshot` gives the snapshot of any
    step, equal to the bit to what the portfolio publishes for a batch on its own."""

    times: list[int]
    last: PortfolioSnapshot
    values: list[float] | None = None
    gross: list[float] | None = None
    cost: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.times)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(equity, values, gross)`` at each timestamp, read-only, made once; equity
        is cash plus the positions value, as each snapshot adds them (zeros for the
        values and gross of a flat span)."""
        state = self.__dict__
        found = state.get("_arrays")
        if found is None:
            n = len(self.times)
            if self.values is None or self.gross is None:
                values = np.full(n, self.last.positions_value)
                gross = np.full(n, self.last.gross_exposure)
                equity = np.full(n, self.last.equity)
            else:
                values = np.array(self.values, dtype=np.float64)
                gross = np.array(self.gross, dtype=np.float64)
                equity = self.last.cash + values
            for array in (equity, values, gross):
                array.flags.writeable = False
            found = state["_arrays"] = (equity, values, gross)
        return found

    def equity(self) -> np.ndarray:
        """Equity at each timestamp (see :meth:`arrays`)."""
        return self.arrays()[0]

    def snapshot(self, step: int) -> PortfolioSnapshot:
        """The snapshot of timestamp ``step`` of the span."""
        last = self.last
        if step == len(self.times) - 1 or step == -1:
            return last
        ts = self.times[step]
        if self.values is None or self.gross is None:
            return msgspec.structs.replace(last, ts_event=ts, ts_init=ts)
        value = self.values[step]
        return msgspec.structs.replace(
            last,
            ts_event=ts,
            ts_init=ts,
            equity=float(self.equity()[step]),
            positions_value=value,
            gross_exposure=self.gross[step],
            net_exposure=value,
            unrealized_pnl=value - self.cost,
        )

    @property
    def snapshots(self) -> list[PortfolioSnapshot]:
        """Every step's snapshot, in order (built on first use)."""
        state = self.__dict__
        found = state.get("_snapshots")
        if found is None:
            found = state["_snapshots"] = [self.snapshot(i) for i in range(len(self.times))]
        return found


MARKET_SPAN: Topic[MarketSpan] = Topic("market.span", MarketSpan)
PORTFOLIO_SPAN: Topic[PortfolioSpan] = Topic("portfolio.span", PortfolioSpan)


@runtime_checkable
class SpanAware(Protocol):
    """A component that hears quiet spans in place of their batches and snapshots."""

    span_handlers: frozenset[str]
    """The names of its methods that handle ``MARKET`` and ``PORTFOLIO``; a subscription
    to those topics through any other handler turns spans off."""

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        """The last timestamp index ``<= last`` of ``chunk`` through which, from
        ``first`` on, nothing but bars would reach or leave this component; ``first - 1``
        when even ``first`` needs its batch.

        A component that will say ``first - 1`` to every question may say so once: a
        true ``never_quiet`` attribute turns spans off for its graph without the feed
        asking it at each timestamp."""
        ...


def span_owner(handler: Any) -> SpanAware | None:
    """The span-aware component whose declared handler ``handler`` is, else None.

    A subclass that overrides one of the declared handlers below the class that last
    vouched for spans (the most derived one defining ``span_handlers`` or
    ``quiet_until`` itself) is not span-aware: its override would not hear the
    batches of a span, so its subscriptions turn spans off until it vouches again."""
    owner = getattr(handler, "__self__", None)
    func = getattr(handler, "__func__", None)
    if owner is None or func is None or not isinstance(owner, SpanAware):
        return None
    names = owner.span_handlers
    if func.__name__ not in names:
        return None
    mro = type(owner).__mro__
    vouched = next(
        i for i, c in enumerate(mro) if {"span_handlers", "quiet_until"} & c.__dict__.keys()
    )
    for name in names:
        defined = next((i for i, c in enumerate(mro) if name in c.__dict__), len(mro))
        if defined < vouched:
            return None
    return owner


class SpanGate:
    """Whether a graph may hear spans, and which components then answer for it.

    Spans need the sequenced dispatcher on a simulated clock and a bus that is not
    strict (a span never crosses a wire); then every ``MARKET`` and ``PORTFOLIO``
    subscription must be a declared handler of a :class:`SpanAware` component that also
    subscribes the matching span topic. The answer is kept until the subscriptions
    change (a component added while running)."""

    __slots__ = ("_bus", "_enabled", "_generation", "_owners")

    def __init__(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._enabled = isinstance(clock, SimulatedClock) and isinstance(
            bus.dispatcher, SequencedDispatcher
        )
        self._generation = -1
        self._owners: list[SpanAware] | None = None

    def owners(self) -> list[SpanAware] | None:
        """The components to ask, or None when spans are off for this graph now (the
        one that said no last is asked first: :meth:`ask_first`)."""
        bus = self._bus
        if not self._enabled or bus.strict:
            return None
        if bus.generation != self._generation:
            self._generation = bus.generation
            self._owners = _owners(
                tuple(
                    bus.subscriptions(t) for t in (MARKET, PORTFOLIO, MARKET_SPAN, PORTFOLIO_SPAN)
                )
            )
        return self._owners

    def ask_first(self, index: int) -> None:
        """Ask owner ``index`` first from now on (it just said no; the answers are the
        same in any order, so only the cost of asking changes)."""
        owners = self._owners
        if owners is not None and index:
            owners.insert(0, owners.pop(index))


def _owners(key: tuple[tuple[Subscription, ...], ...]) -> list[SpanAware] | None:
    market, portfolio, market_span, portfolio_span = key
    found: dict[int, SpanAware] = {}
    for subs, span_subs in ((market, market_span), (portfolio, portfolio_span)):
        hearing = {id(getattr(s.handler, "__self__", None)) for s in span_subs}
        for sub in subs:
            owner = span_owner(sub.handler)
            if owner is None or id(owner) not in hearing or getattr(owner, "never_quiet", False):
                return None
            found[id(owner)] = owner
    return list(found.values()) if found else None
