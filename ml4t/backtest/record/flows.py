"""Cash that moved without a trade: the ``cash_flows`` table and its totals.

The portfolio publishes a :class:`~ml4t.backtest.events.CashFlow` when it books a
dividend (paid to longs, charged to shorts, on the pay date) or a borrow fee (per
session and short symbol). Each is one row of ``cash_flows``; the totals are the metrics
``dividend_income`` (net: received less paid on shorts) and ``borrow_fees`` (positive:
what shorts cost). Cash in lieu of the fraction a split left is a fill (reason
``cash_in_lieu``, in the fills table); ``cash_in_lieu`` totals the cash those fills
paid.
"""

from __future__ import annotations

from ml4t.backtest.events import CashFlow, CashFlowKind, OrderFilled
from ml4t.backtest.record.tables import TableBuffer

__all__ = ["CashFlowLog"]


class CashFlowLog:
    """Appends a row per cash flow (when the table is recorded) and keeps the sums."""

    __slots__ = ("borrow_fees", "cash_in_lieu", "dividend_income", "flows", "table")

    def __init__(self, table: TableBuffer | None) -> None:
        self.table = table
        self.flows = 0
        self.dividend_income = 0.0
        self.borrow_fees = 0.0
        self.cash_in_lieu = 0.0

    def on_cash_flow(self, flow: CashFlow) -> None:
        self.flows += 1
        kind = flow.kind
        if kind is CashFlowKind.DIVIDEND:
            self.dividend_income += flow.amount
        elif kind is CashFlowKind.BORROW_FEE:
            self.borrow_fees -= flow.amount  # a fee is cash out (amount < 0)
        if self.table is not None:
            self.table.append(
                (flow.ts_event, flow.symbol, kind.value, flow.amount, flow.quantity, flow.rate)
            )

    def on_cash_in_lieu(self, fill: OrderFilled) -> None:
        """A fill that paid out (or, for a short, bought in) a split's fraction."""
        self.cash_in_lieu -= fill.side.sign * fill.quantity * fill.price

    def metrics(self) -> dict[str, float]:
        """The totals as ``metrics.json`` keys."""
        return {
            "dividend_income": self.dividend_income,
            "borrow_fees": self.borrow_fees,
            "cash_in_lieu": self.cash_in_lieu,
        }
