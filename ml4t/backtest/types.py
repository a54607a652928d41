"""The trade and fill records of the interop contract ml4t-diagnostic's bridge imports.

``ml4t-diagnostic`` (the proposal's evaluation package) analyses backtests through a
bridge module that imports, by module path, ``from ml4t.backtest.types import Fill,
OrderSide, Trade``: the names of the proposal's published engine, which resolve to this
package when both are installed side by side. This module gives those three names with
the keyword fields the bridge passes when it reads a run-artifact directory (what
:mod:`ml4t.backtest.record.diagnostic` writes into ``results/diagnostic/``), in that
contract's units:

- :class:`Trade`: one of our trades (a closed lot portion, ``trades.parquet``) with a
  **signed** ``quantity`` (> 0 long, < 0 short), ``pnl`` net of commissions,
  ``pnl_percent`` the direction-aware price return as a fraction, ``fees`` the
  commissions, slippage **per unit** (our tables keep it in money), ``mfe``/``mae`` the
  best and worst unrealised return as fractions (``mae`` <= 0).
- :class:`Fill`: one fill, ``asset`` its symbol, ``slippage`` per unit.
- :class:`OrderSide`: ours (``ml4t.backtest.events.OrderSide``: ``BUY``/``SELL``, values
  ``"buy"``/``"sell"``), which is what the contract needs.

Fill prices include slippage in both packages, so ``pnl`` is the price move less
commissions. The quote fields (bid, ask, spread, sizes) exist because the bridge passes
them; our simulated broker fills on bars and leaves them ``None``. Nothing in ml4t uses
these classes: they are built by ``ml4t-diagnostic`` (or by
:meth:`ml4t.backtest.result.BacktestResult.from_results`) and read back through
:class:`~ml4t.backtest.result.BacktestResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ml4t.backtest.events import OrderSide

__all__ = ["Fill", "OrderSide", "Trade"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """A closed trade in ml4t-diagnostic's units (module docstring)."""

    symbol: str
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float  # signed: > 0 long, < 0 short
    pnl: float  # net of fees; slippage is in the prices
    pnl_percent: float  # direction-aware price return, a fraction
    bars_held: int
    fees: float = 0.0
    exit_slippage: float = 0.0  # per unit
    exit_reason: str = "signal"
    status: str = "closed"
    mfe: float = 0.0  # best unrealised return, a fraction >= 0
    mae: float = 0.0  # worst unrealised return, a fraction <= 0
    entry_slippage: float = 0.0  # per unit
    multiplier: float = 1.0
    entry_quote_mid_price: float | None = None
    entry_bid_price: float | None = None
    entry_ask_price: float | None = None
    entry_spread: float | None = None
    entry_available_size: float | None = None
    exit_quote_mid_price: float | None = None
    exit_bid_price: float | None = None
    exit_ask_price: float | None = None
    exit_spread: float | None = None
    exit_available_size: float | None = None

    @property
    def direction(self) -> str:
        return "long" if self.quantity > 0 else "short"

    @property
    def notional(self) -> float:
        """Money committed at entry: ``entry_price * |quantity| * multiplier``."""
        return self.entry_price * abs(self.quantity) * self.multiplier

    @property
    def gross_pnl(self) -> float:
        """The price move on the position, before fees: ``(exit - entry) * quantity``."""
        return (self.exit_price - self.entry_price) * self.quantity * self.multiplier

    @property
    def net_return(self) -> float:
        """``pnl`` over the notional (0 when the notional is 0)."""
        return self.pnl / self.notional if self.notional else 0.0

    @property
    def total_slippage_cost(self) -> float:
        """Entry and exit slippage in money."""
        return (self.entry_slippage + self.exit_slippage) * abs(self.quantity) * self.multiplier

    @property
    def cost_drag(self) -> float:
        """Fees and slippage over the notional (0 when the notional is 0)."""
        return (self.fees + self.total_slippage_cost) / self.notional if self.notional else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """A fill in ml4t-diagnostic's units (module docstring)."""

    order_id: str
    asset: str
    side: OrderSide
    quantity: float  # > 0; the direction is ``side``
    price: float  # includes slippage
    timestamp: datetime
    rebalance_id: str | None = None
    commission: float = 0.0
    slippage: float = 0.0  # per unit
    order_type: str = ""
    limit_price: float | None = None
    stop_price: float | None = None
    price_source: str = ""
    reference_price: float | None = None
    quote_mid_price: float | None = None
    bid_price: float | None = None
    ask_price: float | None = None
    spread: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    available_size: float | None = None
    multiplier: float = 1.0
