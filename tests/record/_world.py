"""Scripted market worlds for the results tests.

:class:`Tape` builds the ``(ts, topic, event)`` steps a :class:`~ml4t.backtest.testing.Script`
publishes, in the order a real graph publishes them within one timestamp: the bar, the
fills matched on it, the portfolio snapshot, then the orders strategies submit, their
approval and acceptance. :func:`random_world` drives a tape with a toy strategy and a toy
account so the snapshots are consistent with the fills.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from ml4t.backtest import (
    ActionKind,
    CashFlow,
    CashFlowKind,
    CorporateAction,
    MarketBatch,
    OrderAccepted,
    OrderFilled,
    OrderSide,
    PortfolioSnapshot,
    SubmitOrder,
    to_ns,
)
from ml4t.backtest.bus import Topic
from ml4t.backtest.events import Event
from ml4t.backtest.topics import (
    CASH_FLOWS,
    CORPORATE_ACTIONS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
)

DAY = 86_400 * 10**9
T0 = to_ns("2024-01-02T21:00:00+00:00")  # a Tuesday, after the US close


def day(i: int) -> int:
    return T0 + i * DAY


class Tape:
    """Collects scripted steps and makes the events with consistent ids."""

    def __init__(self, symbols: list[str], signals: tuple[str, ...] = ("signal",)) -> None:
        self.symbols = symbols
        self.dtype = pl.Enum(symbols)
        self.signals = signals
        self.steps: list[tuple[int, Topic[Any], Event]] = []
        self._fills = 0

    def bar(
        self,
        ts: int,
        rows: dict[str, tuple[float, float, float, float]],
        *,
        signal: dict[str, float] | None = None,
        context: dict[str, float | None] | None = None,
    ) -> MarketBatch:
        names = [s for s in self.symbols if s in rows]
        data: dict[str, Any] = {"symbol": pl.Series(names, dtype=self.dtype)}
        for i, col in enumerate(("open", "high", "low", "close")):
            data[col] = pl.Series([float(rows[s][i]) for s in names], dtype=pl.Float64)
        data["volume"] = pl.Series([1e6] * len(names), dtype=pl.Float64)
        for name in self.signals:
            values = signal or {}
            data[name] = pl.Series([values.get(s, 0.0) for s in names], dtype=pl.Float64)
        batch = MarketBatch(
            ts_event=ts, ts_init=ts, frame=pl.DataFrame(data), context=dict(context or {})
        )
        self.steps.append((ts, MARKET, batch))
        return batch

    def order(
        self,
        ts: int,
        order_id: str,
        symbol: str,
        side: OrderSide,
        quantity: float,
        *,
        strategy: str = "s",
        reason: str = "",
        stop_loss: float | None = None,
        take_profit: float | None = None,
        accept: bool = True,
    ) -> SubmitOrder:
        order = SubmitOrder(
            ts_event=ts,
            ts_init=ts,
            order_id=order_id,
            strategy_id=strategy,
            symbol=symbol,
            side=side,
            quantity=float(quantity),
            stop_loss=stop_loss,
            take_profit=take_profit,
            reason=reason,
        )
        self.steps.append((ts, ORDER_REQUESTS, order))
        self.steps.append((ts, ORDERS_APPROVED, order))
        if accept:
            self.steps.append(
                (
                    ts,
                    ORDER_EVENTS,
                    OrderAccepted(
                        ts_event=ts, order_id=order_id, strategy_id=strategy, symbol=symbol
                    ),
                )
            )
        return order

    def fill(
        self,
        ts: int,
        order_id: str,
        symbol: str,
        side: OrderSide,
        quantity: float,
        price: float,
        *,
        strategy: str = "s",
        commission: float = 0.0,
        slippage: float = 0.0,
        remaining: float = 0.0,
        reason: str = "",
    ) -> OrderFilled:
        self._fills += 1
        fill = OrderFilled(
            ts_event=ts,
            ts_init=ts,
            fill_id=f"f{self._fills}",
            order_id=order_id,
            strategy_id=strategy,
            symbol=symbol,
            side=side,
            quantity=float(quantity),
            price=float(price),
            commission=commission,
            slippage=slippage,
            remaining_quantity=remaining,
            reason=reason,
        )
        self.steps.append((ts, FILLS, fill))
        return fill

    def snapshot(
        self,
        ts: int,
        equity: float,
        cash: float,
        positions: dict[str, float],
        marks,
        **totals: float,
    ) -> PortfolioSnapshot:
        """The account at ``ts``; ``totals`` are the snapshot's cumulative fields
        (``income``, ``borrow_fees``, ``commission``...)."""
        values = {s: q * marks[s] for s, q in positions.items() if q}
        snap = PortfolioSnapshot(
            ts_event=ts,
            ts_init=ts,
            equity=equity,
            cash=cash,
            positions_value=sum(values.values()),
            gross_exposure=sum(abs(v) for v in values.values()),
            net_exposure=sum(values.values()),
            num_positions=len(values),
            **totals,
        )
        self.steps.append((ts, PORTFOLIO, snap))
        return snap

    def action(self, ts: int, symbol: str, action: ActionKind, **fields: Any) -> CorporateAction:
        """A corporate action the feed publishes before the batch at ``ts``."""
        event = CorporateAction(ts_event=ts, ts_init=ts, symbol=symbol, action=action, **fields)
        self.steps.append((ts, CORPORATE_ACTIONS, event))
        return event

    def cash_flow(
        self,
        ts: int,
        symbol: str,
        kind: CashFlowKind,
        amount: float,
        *,
        quantity: float = 0.0,
        rate: float = 0.0,
    ) -> CashFlow:
        """Cash the portfolio books without a trade (a dividend, a fee, cash in lieu)."""
        event = CashFlow(
            ts_event=ts,
            ts_init=ts,
            symbol=symbol,
            kind=kind,
            amount=amount,
            quantity=quantity,
            rate=rate,
        )
        self.steps.append((ts, CASH_FLOWS, event))
        return event


def random_world(
    *,
    days: int = 120,
    symbols: int = 4,
    seed: int = 0,
    initial: float = 100_000.0,
    bars_per_day: int = 1,
    start: int = T0,
) -> Tape:
    """A toy strategy on random-walk bars: enter on a signal, exit on its reversal or a
    stop; next-open market fills with commission and slippage; consistent snapshots."""
    rng = np.random.default_rng(seed)
    names = [f"S{i:02d}" for i in range(symbols)]
    tape = Tape(names)
    price = {s: 50.0 + 10 * i for i, s in enumerate(names)}
    cash, position = initial, dict.fromkeys(names, 0.0)
    stops: dict[str, tuple[float, str]] = {}
    pending: list[SubmitOrder] = []
    n_orders = 0
    step = DAY // (bars_per_day + 1)
    times = [
        start + d * DAY - (bars_per_day - 1 - k) * step
        for d in range(days * 7 // 5 + 7)
        if (3 + (start + d * DAY) // DAY) % 7 < 5  # Monday..Friday (1970-01-01 was a Thursday)
        for k in range(bars_per_day)
    ][: days * bars_per_day]
    for ts in times:
        rows, sig = {}, {}
        for s in names:
            o = price[s] * math.exp(rng.normal(0, 0.004))
            c = o * math.exp(rng.normal(0.0003, 0.015))
            h = max(o, c) * math.exp(abs(rng.normal(0, 0.006)))
            lo = min(o, c) * math.exp(-abs(rng.normal(0, 0.006)))
            rows[s] = (o, h, lo, c)
            price[s] = c
            sig[s] = float(rng.normal())
        tape.bar(ts, rows, signal=sig, context={"vix": float(15 + 5 * rng.random())})
        # orders from the previous bar fill at this bar's open
        for order in pending:
            o = rows[order.symbol][0]
            px = o * (1 + 0.0005 * order.side.sign)
            qty = order.quantity
            commission = max(1.0, 0.005 * qty)
            tape.fill(
                ts,
                order.order_id,
                order.symbol,
                order.side,
                qty,
                px,
                commission=commission,
                slippage=abs(px - o) * qty,
            )
            position[order.symbol] += qty * order.side.sign
            cash -= qty * px * order.side.sign + commission
            if order.stop_loss is not None:
                stops[order.symbol] = (order.stop_loss, f"{order.order_id}.sl")
        pending = []
        # stops trigger intrabar
        for s, (level, stop_id) in list(stops.items()):
            if position[s] > 0 and rows[s][2] <= level:
                px = min(level, rows[s][0])
                qty = position[s]
                tape.fill(ts, stop_id, s, OrderSide.SELL, qty, px, reason="stop_loss")
                position[s] = 0.0
                cash += qty * px
                del stops[s]
        marks = {s: rows[s][3] for s in names}
        equity = cash + sum(position[s] * marks[s] for s in names)
        tape.snapshot(ts, equity, cash, position, marks)
        # the strategy decides on this bar
        for s in names:
            held = position[s]
            n_orders += 1
            oid = f"o{n_orders}"
            if held == 0 and sig[s] > 1.0:
                qty = float(int(0.1 * equity / marks[s]))
                stop = marks[s] * 0.95
                pending.append(
                    tape.order(ts, oid, s, OrderSide.BUY, qty, reason="signal", stop_loss=stop)
                )
                stops.pop(s, None)
            elif held > 0 and sig[s] < -0.5:
                pending.append(tape.order(ts, oid, s, OrderSide.SELL, held, reason="signal"))
                stops.pop(s, None)
            elif held > 0 and sig[s] > 1.8:  # scale in
                qty = float(int(0.05 * equity / marks[s]))
                pending.append(tape.order(ts, oid, s, OrderSide.BUY, qty, reason="signal"))
    return tape
