"""The topics of the standard graph, each declared with the event type it carries.

```
 feed ──SESSION──▶ everyone (first, before any other event)
 feed ──MARKET──▶ broker, portfolio, strategies, recorder
 strategy ──ORDER_REQUESTS──▶ risk ──ORDERS_APPROVED──▶ broker
 risk, broker ──ORDER_EVENTS──▶ strategies, recorder
 broker ──FILLS──▶ portfolio, strategies, recorder
 portfolio ──POSITIONS, PORTFOLIO──▶ strategies, risk, recorder
 runtime ──LIFECYCLE, ERRORS──▶ anyone
```
"""

from __future__ import annotations

from ml4t.backtest.bus import Topic
from ml4t.backtest.events import (
    CancelOrder,
    ComponentFailed,
    ComponentStateChanged,
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
    SessionStarted,
    SubmitOrder,
    UniverseChanged,
)

__all__ = [
    "ERRORS",
    "FILLS",
    "LIFECYCLE",
    "MARKET",
    "ORDERS_APPROVED",
    "ORDER_EVENTS",
    "ORDER_REQUESTS",
    "PORTFOLIO",
    "POSITIONS",
    "SESSION",
]

SESSION = Topic("session", SessionStarted | UniverseChanged, retained=True)

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
LIFECYCLE: Topic[ComponentStateChanged] = Topic("lifecycle", ComponentStateChanged)
ERRORS: Topic[ComponentFailed] = Topic("errors", ComponentFailed)
