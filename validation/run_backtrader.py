"""Run a scenario in backtrader: ``Cerebro`` with one ``PandasData`` feed per symbol.

The translation of :mod:`validation.spec`:

- the strategy's ``next`` reads the signals of the bar it is on and sends market
  orders, which ``BackBroker`` fills at the next bar's open (its default);
- protective exits are children of the entry (``parent=``, ``transmit``): a ``Stop`` at
  the stop-loss, a ``StopTrail`` with ``trailpercent``, a ``Limit`` at the take-profit,
  sent in that order; backtrader activates them the bar after the entry fills and
  cancels the others when one executes; a signal exit cancels them;
- ``setcommission`` (``COMM_PERC`` with ``percabs=True``, or ``COMM_FIXED`` per share),
  ``set_slippage_perc`` / ``set_slippage_fixed`` with their defaults (slip at the open,
  never beyond the bar's high/low);
- backtrader keeps no trade table with exit prices, so its round trips are rebuilt from
  its executed orders (:func:`validation.compare.trades_from_fills`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from validation.compare import RunOutput, trades_from_fills
from validation.data import Panel
from validation.spec import Scenario

__all__ = ["run_backtrader"]


def _strategy_class() -> Any:
    import backtrader as bt

    class Parity(bt.Strategy):
        params = (("sc", None), ("signals", None), ("sizes", None))

        def __init__(self) -> None:
            self.children: dict[int, list[Any]] = {}
            self.fills: list[tuple[float, int, float, float, float]] = []
            self.equity: list[tuple[int, float, float]] = []
            self.refused = 0  # orders backtrader refused for want of cash (Margin)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                k = self.datas.index(order.data)
                ex = order.executed
                self.fills.append((ex.dt, k, ex.size, ex.price, ex.comm))
                if order.parent is not None:  # a protective exit: position closed
                    self.children.pop(k, None)
            elif order.status in (order.Margin, order.Rejected):
                self.refused += 1

        def next(self) -> None:
            sc = self.p.sc
            i = len(self) - 1
            long_entry, long_exit, short_entry, short_exit = self.p.signals
            for k, d in enumerate(self.datas):
                p = self.getposition(d).size
                qty = float(self.p.sizes[i, k])
                if p == 0:
                    if sc.long and long_entry[i, k]:
                        self._enter(d, k, +1, qty)
                    elif sc.short and short_entry[i, k]:
                        self._enter(d, k, -1, qty)
                elif p > 0:
                    if sc.short and short_entry[i, k]:
                        self._cancel_children(k)
                        self.sell(data=d, size=p + qty)
                    elif long_exit[i, k]:
                        self._cancel_children(k)
                        self.sell(data=d, size=p)
                elif sc.long and long_entry[i, k]:
                    self._cancel_children(k)
                    self.buy(data=d, size=-p + qty)
                elif short_exit[i, k]:
                    self._cancel_children(k)
                    self.buy(data=d, size=-p)
            self.equity.append((i, self.broker.getcash(), self.broker.getvalue()))

        def _enter(self, d: Any, k: int, sign: int, qty: float) -> None:
            if qty <= 0:
                return
            stops = self.p.sc.stops
            c = d.close[0]
            send = self.buy if sign > 0 else self.sell
            close = self.sell if sign > 0 else self.buy
            if not stops.any:
                send(data=d, size=qty)
                return
            entry = send(data=d, size=qty, transmit=False)
            specs: list[dict[str, Any]] = []
            if stops.sl is not None:
                level = c * (1 - stops.sl) if sign > 0 else c * (1 + stops.sl)
                specs.append({"exectype": bt.Order.Stop, "price": level})
            if stops.tsl is not None:
                specs.append({"exectype": bt.Order.StopTrail, "trailpercent": stops.tsl})
            if stops.tp is not None:
                level = c * (1 + stops.tp) if sign > 0 else c * (1 - stops.tp)
                specs.append({"exectype": bt.Order.Limit, "price": level})
            children = []
            for n, spec in enumerate(specs):
                last = n == len(specs) - 1
                children.append(close(data=d, size=qty, parent=entry, transmit=last, **spec))
            self.children[k] = children

        def _cancel_children(self, k: int) -> None:
            for child in self.children.pop(k, ()):
                if child.alive():
                    self.cancel(child)

    class Rebalance(Parity):
        """Scenario 20: ``order_target_percent`` every ``rebalance_every`` bars, sells
        first, each group in symbol order."""

        params = (("panel", None),)

        def next(self) -> None:
            sc = self.p.sc
            i = len(self) - 1
            if i % sc.rebalance_every == 0:
                weights = sc.weights(self.p.panel, i)
                value = self.broker.getvalue()
                sells, buys = [], []
                for k, d in enumerate(self.datas):
                    w = weights.get(self.p.panel.symbols[k], 0.0)
                    held = self.getposition(d).size * d.close[0]
                    (buys if w * value > held else sells).append((d, w))
                for d, w in sells + buys:
                    self.order_target_percent(data=d, target=w)
            self.equity.append((i, self.broker.getcash(), self.broker.getvalue()))

    return Parity, Rebalance


def run_backtrader(scenario: Scenario, panel: Panel) -> RunOutput:
    import backtrader as bt

    sc = scenario
    cerebro = bt.Cerebro(stdstats=False)
    index = pd.to_datetime(panel.times, unit="ns", utc=True).tz_localize(None)
    for k, symbol in enumerate(panel.symbols):
        frame = pd.DataFrame(
            {c: panel.wide(c)[:, k] for c in ("open", "high", "low", "close", "volume")},
            index=index,
        )
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None), name=symbol)
    cerebro.broker.setcash(sc.initial_cash)
    costs = sc.costs
    if costs.commission_percent:
        cerebro.broker.setcommission(
            commission=costs.commission_percent,
            commtype=bt.CommInfoBase.COMM_PERC,
            percabs=True,
            stocklike=True,
        )
    elif costs.commission_per_share:
        cerebro.broker.setcommission(
            commission=costs.commission_per_share,
            commtype=bt.CommInfoBase.COMM_FIXED,
            stocklike=True,
        )
    if costs.slippage_percent:
        cerebro.broker.set_slippage_perc(costs.slippage_percent)
    elif costs.slippage_fixed:
        cerebro.broker.set_slippage_fixed(costs.slippage_fixed)
    close = panel.wide("close")
    sizes = np.floor(sc.value / close) if sc.sizing == "value" else np.full(close.shape, sc.size)
    signals = tuple(panel.wide(c) for c in ("long_entry", "long_exit", "short_entry", "short_exit"))
    parity, rebalance = _strategy_class()
    if sc.sizing == "rebalance":
        cerebro.addstrategy(rebalance, sc=sc, signals=signals, sizes=sizes, panel=panel)
    else:
        cerebro.addstrategy(parity, sc=sc, signals=signals, sizes=sizes)
    start = time.perf_counter()
    strategy = cerebro.run()[0]
    seconds = time.perf_counter() - start
    return _canonical(strategy, panel, seconds)


def _canonical(strategy: Any, panel: Panel, seconds: float) -> RunOutput:
    import backtrader as bt

    index = {
        bt.date2num(t.to_pydatetime()): n
        for n, t in enumerate(pd.to_datetime(panel.times, unit="ns", utc=True).tz_localize(None))
    }
    rows = strategy.fills
    fills = pl.DataFrame(
        {
            "timestamp": [int(panel.times[index[dt]]) for dt, *_ in rows],
            "symbol": [panel.symbols[k] for _, k, *_ in rows],
            "side": ["buy" if size > 0 else "sell" for _, _, size, _, _ in rows],
            "quantity": [abs(size) for _, _, size, _, _ in rows],
            "price": [price for *_, price, _ in rows],
            "commission": [comm for *_, comm in rows],
        },
        schema={
            "timestamp": pl.Int64,
            "symbol": pl.String,
            "side": pl.String,
            "quantity": pl.Float64,
            "price": pl.Float64,
            "commission": pl.Float64,
        },
    )
    equity = pl.DataFrame(
        {
            "timestamp": [int(panel.times[i]) for i, _, _ in strategy.equity],
            "cash": [c for _, c, _ in strategy.equity],
            "equity": [v for _, _, v in strategy.equity],
        }
    )
    final_cash = float(equity["cash"][-1]) if equity.height else math.nan
    return RunOutput(
        "backtrader",
        fills,
        fills.clone(),
        trades_from_fills(fills),
        equity,
        final_cash,
        seconds,
        notes=[f"{strategy.refused} orders refused for want of cash (Margin)"]
        if strategy.refused
        else [],
    )
