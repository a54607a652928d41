"""The topics of the standard graph, each declared with the event type it carries.

```
 feed ──SESSION──▶ everyone (first, before any other event)
 feed ──CORPORATE_ACTIONS──▶ everyone (SESSION phase, before the bar they precede)
 feed ──MARKET──▶ broker, portfolio, strategies, recorder
 strategy ──ORDER_REQUESTS──▶ risk ──ORDERS_APPROVED──▶ broker
 risk, broker ──ORDER_EVENTS──▶ strategies, recorder
 broker ──FILLS──▶ portfolio, strategies, recorder
 portfolio ──POSITIONS, PORTFOLIO──▶ strategies, risk, recorder
 portfolio ──CASH_FLOWS──▶ recorder (dividends, borrow fees, cash in lieu)
 runtime ──LIFECYCLE, ERRORS──▶ anyone
 live adapters ──VENUE──▶ portfolio, recorder, monitors (account reconciled, link state)
 operator, session ──TRADING_CONTROL──▶ risk ──TRADING_STOPPED──▶ anyone (kill switch, halt)
 live session ──RESUMES──▶ anyone (a restart from the journal)
```
"""

from __future__ import annotations

from ml4t.backtest.bus import Topic
from ml4t.backtest.events import (
    AccountReconciled,
    CancelOrder,
    CashFlow,
    ComponentFailed,
    ComponentStateChanged,
    CorporateAction,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
    PortfolioSnapshot,
    PositionChanged,
    SessionResumed,
    SessionStarted,
    StopTrading,
    SubmitOrder,
    TradingStopped,
    UniverseChanged,
    VenueConnection,
)

__all__ = [
    "CASH_FLOWS",
    "CORPORATE_ACTIONS",
    "ERRORS",
    "FILLS",
    "LIFECYCLE",
    "MARKET",
    "ORDERS_APPROVED",
    "ORDER_EVENTS",
    "ORDER_REQUESTS",
    "PORTFOLIO",
    "POSITIONS",
    "RESUMES",
    "SESSION",
    "TRADING_CONTROL",
    "TRADING_STOPPED",
    "VENUE",
]

SESSION: Topic[SessionStarted | UniverseChanged] = Topic(
    "session", SessionStarted | UniverseChanged, retained=True
)

CORPORATE_ACTIONS: Topic[CorporateAction] = Topic("corporate_actions", CorporateAction)

MARKET: Topic[MarketBatch] = Topic("market", MarketBatch)
ORDER_REQUESTS = Topic(
    "orders.requested", SubmitOrder | CancelOrder | ModifyOrder, sender_field="strategy_id"
)
ORDERS_APPROVED = Topic("orders.approved", SubmitOrder | CancelOrder | ModifyOrder)
ORDER_EVENTS = Topic(
    "orders.events", OrderAccepted | OrderRejected | OrderUpdated | OrderCancelled | OrderExpired
)
FILLS: Topic[OrderFilled] = Topic("fills", OrderFilled)
POSITIONS: Topic[PositionChanged] = Topic("positions", PositionChanged)
PORTFOLIO: Topic[PortfolioSnapshot] = Topic("portfolio", PortfolioSnapshot)
CASH_FLOWS: Topic[CashFlow] = Topic("cash_flows", CashFlow)
LIFECYCLE: Topic[ComponentStateChanged] = Topic("lifecycle", ComponentStateChanged)
ERRORS: Topic[ComponentFailed] = Topic("errors", ComponentFailed)
VENUE: Topic[AccountReconciled | VenueConnection] = Topic(
    "venue", AccountReconciled | VenueConnection
)
"""What a live venue's adapters learn about the account and their connections (handled
at the SESSION phase: an adopted starting state reaches the portfolio before fills)."""
TRADING_CONTROL: Topic[StopTrading] = Topic("trading.control", StopTrading)
TRADING_STOPPED: Topic[TradingStopped] = Topic("trading.stopped", TradingStopped)
RESUMES: Topic[SessionResumed] = Topic("session.resumed", SessionResumed)
