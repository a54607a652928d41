"""How corporate actions reshape the trade builder's lots (``docs/results.md``,
*Corporate actions*), as small rules on the objects they change.

- A **split** of ratio ``r`` keeps every trade continuous in current shares: open
  quantities times ``r``, entry prices, bracket levels and the excursion window's
  high, low and close divided by ``r`` (:func:`split_lot`, :func:`split_record`, and
  :meth:`~ml4t.backtest.record._lots.OpenLots.scale` for the arrays). P&L, costs,
  percentages and holding periods do not change.
- **Cash in lieu** of a fractional share is the broker's fill (reason
  ``cash_in_lieu``, per strategy): it closes that fraction of the strategy's lots like
  any fill, at the action's time, before the instant's bar.
- A **symbol change** moves the open lots to the new symbol. Events that react to an
  earlier action of the same instant (the portfolio's cash in lieu of a split, the
  broker's order updates) may still name the old symbol after it; :class:`Instant`
  sends them to the new one until the instant is over.
"""

from __future__ import annotations

import math

from ml4t.backtest._time import from_ns
from ml4t.backtest.errors import DataValidationError
from ml4t.backtest.events import CorporateAction
from ml4t.backtest.record._lots import CapturedValues
from ml4t.backtest.record._rows import ExitRecord, Lot

__all__ = [
    "Instant",
    "check_split",
    "scaled",
    "split_lot",
    "split_record",
]

_TOL = 1e-9


def check_split(action: CorporateAction) -> float:
    """The split's ratio, refused unless it is a positive finite number."""
    ratio = action.ratio
    if not (math.isfinite(ratio) and ratio > 0.0):
        raise DataValidationError(
            f"a split of {action.symbol!r} at {from_ns(action.ts_event).isoformat()} has "
            f"ratio {ratio!r}; a ratio is new shares per old share, a positive number "
            "(4.0 for 4:1, 0.1 for 1:10): fix the corporate actions file"
        )
    return ratio


def scaled(level: float | None, ratio: float) -> float | None:
    """A price level (a stop, a limit, a bracket's) after a split of ``ratio``."""
    return None if level is None else level / ratio


def split_lot(lot: Lot, ratio: float) -> None:
    """``lot`` in post-split shares: ``ratio`` times the shares at ``1/ratio`` the price.

    >>> from ml4t.backtest.record._rows import Lot
    >>> lot = Lot()
    >>> lot.open = lot.filled = 10.0; lot.price = 400.0; lot.split_ratio = 1.0
    >>> lot.stop_loss, lot.take_profit = 360.0, None
    >>> split_lot(lot, 4.0)
    >>> lot.open, lot.price, lot.stop_loss, lot.split_ratio
    (40.0, 100.0, 90.0, 4.0)
    """
    lot.open *= ratio
    lot.filled *= ratio
    lot.price /= ratio
    lot.split_ratio *= ratio
    lot.stop_loss = scaled(lot.stop_loss, ratio)
    lot.take_profit = scaled(lot.take_profit, ratio)


def split_record(record: ExitRecord, ratio: float) -> None:
    """A trade record still being assembled, of a lot just split: its exit quantity in
    post-split shares (its notional, money, is unchanged, so its VWAP is divided by
    ``ratio``), and its window's extremes in post-split prices."""
    record.quantity *= ratio
    record.hi /= ratio
    record.lo /= ratio


class Instant:
    """What the builder remembers of the actions of the current instant, for the events
    that react to them (which may reach it before or after the instant's batch).

    - ``resolve(old)`` is the new symbol of a symbol renamed at this instant (the cash
      in lieu of a split and a rename at one ex date still names the old one);
    - ``capture(symbol)`` is the symbol's signal values in the batch before the action,
      the exit values of the trades an action closes (cash in lieu, delisting), whether
      the instant's own batch has arrived yet or not.

    An instant's reactions all arrive before the batch after the instant's own, so what
    is kept is forgotten at the second :meth:`on_batch` after it: a symbol retired by a
    rename may be listed again later and is then itself.
    """

    __slots__ = ("_age", "_captures", "_to")

    def __init__(self) -> None:
        self._to: dict[str, str] = {}
        self._captures: dict[str, CapturedValues] = {}
        self._age: dict[str, int] = {}  # batches seen since the symbol's last action

    def acted(self, symbol: str, capture: CapturedValues) -> None:
        """An action on ``symbol``, with its values in the batch before it."""
        self._captures[symbol] = capture
        self._age[symbol] = 0

    def rename(self, old: str, new: str) -> None:
        self._to[old] = new
        self._to.pop(new, None)  # ``new`` names itself, even if it was renamed before
        capture = self._captures.get(old)
        if capture is not None:
            self._captures[new] = capture
        self._age[new] = 0

    def resolve(self, symbol: str) -> str:
        if not self._to:
            return symbol
        hops = 0
        while symbol in self._to and hops < len(self._to):
            symbol = self._to[symbol]
            hops += 1
        return symbol

    def capture(self, symbol: str) -> CapturedValues | None:
        return self._captures.get(symbol)

    def on_batch(self) -> None:
        if not self._age:
            return
        for symbol in list(self._age):
            self._age[symbol] += 1
            if self._age[symbol] > 1:
                del self._age[symbol]
                self._to.pop(symbol, None)
                self._captures.pop(symbol, None)
