"""What the feed publishes between bars: corporate actions and universe changes.

Before the batch at ``t`` the feed publishes, in the SESSION phase, every corporate
action and every membership change that took effect before ``t`` and was not published
yet (:class:`~ml4t.backtest.data._timeline.Due` cursors: one comparison per timestamp
when nothing is due), each stamped ``t``. A split's ``price`` is the symbol's last close
before it (the broker pays cash in lieu at that price divided by the ratio); a
delisting without a price is paid the last close. With ``data.asset.prices: adjusted``
the prices already contain splits and dividends, so only delistings and symbol changes
are published.
"""

from __future__ import annotations

import math

import numpy as np

from ml4t.backtest.data._timeline import Due
from ml4t.backtest.data.actions import ActionSchedule, CorporateActionRow
from ml4t.backtest.data.membership import Membership
from ml4t.backtest.events import ActionKind, CorporateAction, UniverseChanged

__all__ = ["Between"]

_IN_PRICES = (ActionKind.SPLIT, ActionKind.DIVIDEND)


def _effective(row: CorporateActionRow) -> int:
    return row.effective_ns


class Between:
    """The actions and membership changes of a run, handed out per timestamp."""

    __slots__ = ("_actions", "_changes", "_code", "_last_close", "needs_closes")

    def __init__(
        self,
        schedule: ActionSchedule | None,
        membership: Membership | None,
        symbols: tuple[str, ...],
        *,
        adjusted: bool,
    ) -> None:
        rows = schedule.rows if schedule is not None else ()
        if adjusted:
            rows = tuple(r for r in rows if r.action not in _IN_PRICES)
        self._actions = Due(rows, time=_effective)
        self._changes = membership.cursor() if membership is not None else None
        self._code = {s: i for i, s in enumerate(symbols)}
        self.needs_closes = any(r.action in (ActionKind.SPLIT, ActionKind.DELISTING) for r in rows)
        self._last_close = np.full(len(symbols), math.nan)

    @property
    def active(self) -> bool:
        return self._actions.pending > 0 or (
            self._changes is not None and self._changes.pending > 0
        )

    def observe(self, codes: np.ndarray, closes: np.ndarray) -> None:
        """The closes of a published batch (the price of a later split or delisting)."""
        self._last_close[codes] = closes

    def due(self, ts: int) -> list[CorporateAction | UniverseChanged]:
        """The events to publish before the batch at ``ts``, in order."""
        out: list[CorporateAction | UniverseChanged] = [
            self._action(row, ts) for row in self._actions.due(ts)
        ]
        if self._changes is not None:
            for change in self._changes.due(ts):
                out.append(
                    UniverseChanged(
                        ts_event=ts, ts_init=ts, added=change.added, removed=change.removed
                    )
                )
        return out

    def next_due(self) -> int | None:
        """When the next unpublished action takes effect (None: all published)."""
        upcoming = [
            cursor.next_time()
            for cursor in (self._actions, self._changes)
            if cursor is not None and cursor.pending
        ]
        return min(upcoming) if upcoming else None

    def _action(self, row: CorporateActionRow, ts: int) -> CorporateAction:
        price = row.price
        if price is None and row.action in (ActionKind.SPLIT, ActionKind.DELISTING):
            price = float(self._last_close[self._code[row.symbol]])
        return CorporateAction(
            ts_event=ts,
            ts_init=ts,
            symbol=row.symbol,
            action=row.action,
            ratio=row.ratio if row.ratio is not None else 1.0,
            amount=row.amount if row.amount is not None else 0.0,
            price=price,
            new_symbol=row.new_symbol or "",
            pay_ns=row.pay_ns if row.pay_ns is not None else ts,
        )
