"""A live venue's account, and how it is compared with what the graph expects.

An execution client that can read its account implements :class:`AccountSource`: one
:class:`AccountState` snapshot of cash, signed positions (with average prices) and the
orders working at the venue. The :class:`~ml4t.backtest.live.BrokerAdapter` reads it at
start and after every reconnect and compares it, with :func:`reconcile_account`, against
what the graph expects: the positions its own fills add up to and the orders it believes
are working. Every difference becomes an
:class:`~ml4t.backtest.events.AccountDifference` in the published
:class:`~ml4t.backtest.events.AccountReconciled`; nothing is overwritten silently.

A client that can pick up orders placed earlier under the same ids (by a previous process
of the same session) implements :class:`Resumable`, so a restart or a reconnect learns
what happened to them meanwhile (fills, cancels) before the account is compared.

>>> state = AccountState(cash=1000.0, positions={"AAA": 5.0})
>>> [d.detail for d in reconcile_account({"AAA": 3.0}, {}, state)]
['AAA: expected 3, venue has 5']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from ml4t.backtest.events import AccountDifference, VenueOrder

__all__ = [
    "QTY_TOLERANCE",
    "AccountSource",
    "AccountState",
    "Resumable",
    "reconcile",
    "reconcile_account",
]

QTY_TOLERANCE = 1e-9
"""Relative tolerance of a position comparison (quantities are float64)."""


class AccountState(msgspec.Struct, frozen=True, kw_only=True):
    """One snapshot of a venue account: ``cash`` and ``equity`` (None when the venue
    does not say), signed ``positions`` by symbol with their ``avg_prices``, and the
    ``open_orders`` working there."""

    cash: float | None = None
    equity: float | None = None
    positions: dict[str, float] = msgspec.field(default_factory=dict)
    avg_prices: dict[str, float] = msgspec.field(default_factory=dict)
    open_orders: list[VenueOrder] = msgspec.field(default_factory=list)


@runtime_checkable
class AccountSource(Protocol):
    """An execution client that reads its account (cash, positions, open orders)."""

    async def account(self) -> AccountState: ...


@runtime_checkable
class Resumable(Protocol):
    """An execution client that picks up orders placed earlier under the same ids."""

    async def resume(self, orders: Sequence[VenueOrder]) -> None:
        """Track ``orders`` from now on, first reporting (through ``on_event``) what
        happened to them that the graph has not heard: fills beyond each order's
        ``filled_quantity``, and a cancel or expiry."""
        ...


def reconcile(
    expected: Mapping[str, float], actual: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """Symbols whose positions differ: ``{symbol: (expected, actual)}``."""
    diff: dict[str, tuple[float, float]] = {}
    for symbol in sorted(set(expected) | set(actual)):
        want, have = float(expected.get(symbol, 0.0)), float(actual.get(symbol, 0.0))
        if abs(want - have) > QTY_TOLERANCE * max(1.0, abs(want)):
            diff[symbol] = (want, have)
    return diff


def reconcile_account(
    positions: Mapping[str, float],
    working: Mapping[str, str],
    state: AccountState,
    *,
    cash: float | None = None,
) -> list[AccountDifference]:
    """Every difference between the graph's view and the venue's ``state``.

    ``positions`` are the signed positions the graph expects, ``working`` the orders it
    believes are working (order id -> symbol), ``cash`` the cash it expects (None: not
    compared). Orders are matched by our order id; a venue order without one (placed
    outside this session's namespace) is always unexpected.
    """
    found = [
        AccountDifference(
            kind="position",
            subject=symbol,
            expected=want,
            actual=have,
            detail=f"{symbol}: expected {want:g}, venue has {have:g}",
        )
        for symbol, (want, have) in reconcile(positions, state.positions).items()
    ]
    at_venue = {o.order_id: o for o in state.open_orders if o.order_id}
    for order_id in sorted(set(working) - set(at_venue)):
        found.append(
            AccountDifference(
                kind="missing_order",
                subject=order_id,
                detail=f"order {order_id} ({working[order_id]}) is not working at the venue",
            )
        )
    for order in state.open_orders:
        if order.order_id in working:
            continue
        subject = order.order_id or order.venue_order_id
        whose = "this session's" if order.order_id else "placed outside this session"
        found.append(
            AccountDifference(
                kind="unexpected_order",
                subject=subject,
                expected=0.0,
                actual=order.quantity - order.filled_quantity,
                detail=f"order {subject} ({whose}: {order.side} {order.quantity:g} "
                f"{order.symbol} {order.order_type}, {order.status or 'open'}) is working at "
                "the venue but not expected",
            )
        )
    if cash is not None and state.cash is not None and abs(cash - state.cash) > 0.005:
        found.append(
            AccountDifference(
                kind="cash",
                subject="cash",
                expected=cash,
                actual=state.cash,
                detail=f"cash: expected {cash:,.2f}, venue has {state.cash:,.2f}",
            )
        )
    return found
