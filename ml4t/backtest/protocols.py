"""The published contracts of the graph's replaceable roles: Feed, Broker and RecorderRole.

The engine and the plugin loader (``ml4t.backtest.plugins``) rely on these and on nothing
else: a third-party feed, execution venue or recorder that has the members below runs in
the standard graph exactly as the built-ins do (:class:`~ml4t.backtest.ParquetFeed`,
:class:`~ml4t.backtest.SimulatedBroker`, :class:`~ml4t.backtest.Recorder`). Each role is
a :class:`~ml4t.backtest.Component`; the protocols name what the engine reads from it
besides the bus. ``isinstance(obj, Feed)`` checks that the members exist (not their
types); :func:`missing` lists the ones that do not, for an error message.

What travels on the bus is part of the contract too, and written down here because a
type cannot say it:

- a **feed** publishes one :class:`~ml4t.backtest.MarketBatch` per timestamp on
  ``MARKET``, in time order, each scheduled on the injected clock (alarm priority
  ``DATA``). Its frame has one row per symbol: ``symbol`` as a ``pl.Enum`` of the whole
  universe (the same categories in every batch: a symbol's code is its index), then
  ``open, high, low, close, volume`` (Float64) and the signal and indicator columns;
- a **broker** (execution venue) handles ``ORDERS_APPROVED`` (submits, cancels,
  modifies) and answers each request on ``ORDER_EVENTS`` (accepted, rejected, updated,
  cancelled, expired) and with :class:`~ml4t.backtest.OrderFilled` on ``FILLS``; it
  reads prices from ``MARKET``;
- a **recorder** observes everything it wants and, when the run stops, leaves its
  results in ``results``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from ml4t.backtest.component import Component
from ml4t.backtest.topics import MARKET, ORDERS_APPROVED

__all__ = ["Broker", "Feed", "RecorderRole", "missing"]


@runtime_checkable
class Feed(Protocol):
    """A component that publishes the market data: one ``MarketBatch`` per timestamp."""

    name: str
    first_ts: int | None
    """The first timestamp (UTC ns) it will publish, once prepared; the simulated clock
    starts there. None: unknown (the run's start date is used)."""
    last_ts: int | None
    """The last timestamp (UTC ns), once prepared; the progress bar's end. None: unknown."""

    @property
    def symbols(self) -> tuple[str, ...]:
        """The universe in code order (the categories of the frames' ``symbol`` Enum)."""
        ...

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of every batch frame, in order (``symbol`` and OHLCV first)."""
        ...

    def prepare(self) -> Any:
        """Open and check the data before the first event (the engine calls it in
        :meth:`~ml4t.backtest.BacktestEngine.build`, so bad data fails before anything
        runs); idempotent. Returns a report (the built-in returns a ``ValidationReport``)
        or None; raises a ``DataValidationError`` naming what is wrong."""
        ...


@runtime_checkable
class Broker(Protocol):
    """An execution venue: takes approved order requests, publishes order events and fills.

    The engine reads nothing from a broker besides its name; what makes a component a
    broker is what it handles (``ORDERS_APPROVED`` and ``MARKET``), which
    :func:`missing` checks from its declared handlers.
    """

    name: str


@runtime_checkable
class RecorderRole(Protocol):
    """What the engine and the results read from the run's recorder (the built-in is
    :class:`~ml4t.backtest.Recorder`, hence the name)."""

    name: str
    output_dir: Path | None
    """Where the run's files go (None: kept in memory only)."""
    results: Any
    """None until the run stops, then a :class:`~ml4t.backtest.RecorderResults` (or an
    object with its members: ``trades``, ``fills``, ``orders``, ``order_history``,
    ``portfolio`` frames, ``metrics``, ``manifest``, ``output_dir``, ``complete``)."""
    data_fingerprint: str | None
    """A digest of the input data for the manifest; the engine fills it when None."""
    periods_per_year: float | None
    """For annualised metrics; the engine fills it from the calendar when None."""

    def mark_incomplete(self, reason: str) -> None:
        """Mark the results of a run that did not finish (paper session ended early, a
        journal cut short), with the reason, before or after it stops."""
        ...


_MEMBERS: Mapping[type, tuple[str, ...]] = MappingProxyType(
    {
        Feed: ("name", "first_ts", "last_ts", "symbols", "columns", "prepare"),
        Broker: ("name",),
        RecorderRole: (
            "name",
            "output_dir",
            "results",
            "data_fingerprint",
            "periods_per_year",
            "mark_incomplete",
        ),
    }
)
_HANDLES: Mapping[type, tuple[str, ...]] = MappingProxyType(
    {Broker: (ORDERS_APPROVED.name, MARKET.name)}
)


def missing(obj: object, protocol: type) -> list[str]:
    """What ``obj`` lacks to be a ``protocol`` (Feed, Broker or RecorderRole): members, the
    Component base, topics it must handle. Empty when it conforms."""
    lacks = [f"attribute {m!r}" for m in _MEMBERS[protocol] if not hasattr(obj, m)]
    if not isinstance(obj, Component):
        lacks.append("the Component base class (ml4t.backtest.Component)")
        return lacks
    handled = {spec.topic.name for spec in type(obj)._handler_specs}
    lacks += [
        f"a handler of topic {t!r} (@on)" for t in _HANDLES.get(protocol, ()) if t not in handled
    ]
    return lacks
