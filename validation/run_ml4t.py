"""Run a scenario in ml4t: BacktestEngine with the peer's preset, the rules of
:mod:`validation.spec` as a per-symbol strategy, results reduced to canonical tables.

The strategy is written once; two conventions differ by peer and are the peers' own
documented behaviour, not knobs of the broker:

- vectorbt executes at most one order per symbol and bar and a stop exit takes
  precedence over that bar's signals, so after a protective exit fills on a bar the
  strategy ignores that bar's signals (``one_order_per_bar``);
- vectorbt places its stops with the entry (they are live from the next bar, the entry
  filling at the signal bar's close), backtrader activates bracket children on the bar
  after the entry fills; with ml4t's bracket orders both are the same thing (children
  are placed when the entry fills and trade from the next bar). The trailing stop is a
  separate order joined to the bracket's one-cancels-other group through its
  ``parent_id``: under vectorbt it is sent with the entry, under backtrader when the
  entry fills (backtrader's ``StopTrail`` child likewise starts from the signal bar's
  close and only begins to trail once active).
"""

from __future__ import annotations

import math
import time
from typing import Any

import polars as pl

from ml4t.backtest import BacktestEngine, BatchStrategy, Strategy
from ml4t.backtest.config import load_config
from ml4t.backtest.events import OrderFilled, OrderSide, OrderType, SubmitOrder
from ml4t.backtest.topics import ORDER_REQUESTS
from validation.compare import RunOutput
from validation.data import Panel
from validation.spec import Scenario

__all__ = ["ParityStrategy", "RebalanceStrategy", "config_for", "run_ml4t"]

STOP_REASONS = ("stop_loss", "take_profit", "trailing_stop")


class ParityStrategy(Strategy):
    """The scenario's trading rules (see :mod:`validation.spec`) in the per-symbol API."""

    def __init__(self, scenario: Scenario, peer: str) -> None:
        super().__init__("parity")
        self.sc = scenario
        self.vbt = peer == "vectorbt"
        self._exits: dict[str, list[str]] = {}  # symbol -> ids of its protective exits
        self._trail_for: dict[str, tuple[str, str, int, float]] = {}  # entry id -> trail
        self._stopped: dict[str, int] = {}  # symbol -> ts of its last protective exit
        self._seq = 0

    def on_bar(self, bar: Any) -> None:
        sc = self.sc
        symbol = bar.symbol
        if self.vbt and self._stopped.get(symbol) == bar.ts_ns:
            return
        p = self.position(symbol)
        close = bar.close
        qty = sc.size if sc.sizing == "shares" else float(math.floor(sc.value / close))
        if p == 0.0:
            if sc.long and bar.long_entry:
                self._enter(symbol, OrderSide.BUY, qty, close, bar.ts_ns)
            elif sc.short and bar.short_entry:
                self._enter(symbol, OrderSide.SELL, qty, close, bar.ts_ns)
        elif p > 0.0:
            if sc.short and bar.short_entry:
                self._cancel_exits(symbol)
                self.sell(symbol, p + qty, reason="signal")
            elif bar.long_exit:
                self._cancel_exits(symbol)
                self.sell(symbol, p, reason="signal")
        elif sc.long and bar.long_entry:
            self._cancel_exits(symbol)
            self.buy(symbol, -p + qty, reason="signal")
        elif bar.short_exit:
            self._cancel_exits(symbol)
            self.buy(symbol, -p, reason="signal")

    def _enter(self, symbol: str, side: OrderSide, qty: float, c: float, ts: int) -> None:
        if qty <= 0:
            return
        stops = self.sc.stops
        sign = side.sign
        sl = tp = None
        if stops.sl is not None:
            sl = c * (1 - stops.sl) if sign > 0 else c * (1 + stops.sl)
        if stops.tp is not None:
            tp = c * (1 + stops.tp) if sign > 0 else c * (1 - stops.tp)
        entry = self.submit_order(symbol, side, qty, stop_loss=sl, take_profit=tp, reason="signal")
        exits = self._exits[symbol] = []
        if sl is not None:
            exits.append(f"{entry}.sl")
        if tp is not None:
            exits.append(f"{entry}.tp")
        if stops.tsl is not None:
            if self.vbt:  # vectorbt: c * (1 -/+ p), live from the next bar
                level = c * (1 - stops.tsl) if sign > 0 else c * (1 + stops.tsl)
                self._trail(symbol, entry, -sign, qty, level)
            else:  # backtrader StopTrail: c -/+ c * p, placed when the entry fills
                amount = c * stops.tsl
                level = c - amount if sign > 0 else c + amount
                self._trail_for[entry] = (symbol, entry, -sign, level)

    def _trail(self, symbol: str, parent: str, sign: int, qty: float, level: float) -> None:
        """A trailing stop in the one-cancels-other group of ``parent``'s exits."""
        self._seq += 1
        order_id = f"{self.name}-trail-{self._seq}"
        now = self.now_ns()
        self.publish(
            ORDER_REQUESTS,
            SubmitOrder(
                ts_event=now,
                ts_init=now,
                order_id=order_id,
                strategy_id=self.name,
                symbol=symbol,
                side=OrderSide.BUY if sign > 0 else OrderSide.SELL,
                quantity=qty,
                order_type=OrderType.TRAILING_STOP,
                stop_price=level,
                trail_percent=self.sc.stops.tsl,
                parent_id=parent,
                reason="trailing_stop",
            ),
        )
        self._exits.setdefault(symbol, []).append(order_id)

    def _cancel_exits(self, symbol: str) -> None:
        for order_id in self._exits.pop(symbol, ()):
            self.cancel(order_id)

    def on_fill(self, fill: OrderFilled) -> None:
        if fill.reason in STOP_REASONS:
            self._exits.pop(fill.symbol, None)
            self._stopped[fill.symbol] = fill.ts_event
            return
        pending = self._trail_for.pop(fill.order_id, None)
        if pending is not None:
            symbol, entry, sign, level = pending
            self._trail(symbol, entry, sign, fill.quantity, level)


class RebalanceStrategy(BatchStrategy):
    """Scenario 20: ``rebalance(weights)`` every ``rebalance_every`` bars (sells first);
    fractional shares under vectorbt, whole shares under backtrader."""

    def __init__(self, scenario: Scenario, panel: Panel, peer: str) -> None:
        super().__init__("parity")
        self.sc = scenario
        self.panel = panel
        self.fractional = peer == "vectorbt"  # type: ignore[misc]
        self._bar = 0

    def on_timestamp(self, timestamp: Any, batch: pl.DataFrame, context: Any) -> None:
        i = self._bar
        self._bar += 1
        if i % self.sc.rebalance_every == 0 and self.sc.weights is not None:
            self.rebalance(self.sc.weights(self.panel, i))


def config_for(scenario: Scenario, peer: str) -> dict[str, Any]:
    """The run config (a dict for ``load_config``) of ``scenario`` under ``peer``'s preset."""
    costs = scenario.costs
    execution: dict[str, Any] = {}
    if costs.commission_percent:
        execution["commission"] = {
            "model": "percent",
            "params": {"rate": costs.commission_percent},
        }
    elif costs.commission_per_share:
        execution["commission"] = {
            "model": "per_share",
            "params": {"cost_per_share": costs.commission_per_share},
        }
    if costs.slippage_percent:
        execution["slippage"] = {"model": "percent", "params": {"rate": costs.slippage_percent}}
    elif costs.slippage_fixed:
        execution["slippage"] = {"model": "fixed", "params": {"amount": costs.slippage_fixed}}
    return {
        "preset": peer,
        "backtest": {"initial_capital": scenario.initial_cash, "name": scenario.id},
        "data": {"asset": {"signals": ["long_entry", "long_exit", "short_entry", "short_exit"]}},
        "execution": execution,
        "reporting": {"output_dir": None, "end_of_backtest": "leave_open"},
    }


def run_ml4t(
    scenario: Scenario, panel: Panel, peer: str, strategy: Strategy | BatchStrategy | None = None
) -> RunOutput:
    """Run ``scenario`` on ``panel`` under ``peer``'s preset; canonical tables."""
    config = load_config(config_for(scenario, peer))
    if strategy is None:
        if scenario.sizing == "rebalance":
            strategy = RebalanceStrategy(scenario, panel, peer)
        else:
            strategy = ParityStrategy(scenario, peer)
    start = time.perf_counter()
    results = BacktestEngine(config, strategy=strategy, asset=panel.frame).run()
    seconds = time.perf_counter() - start
    if not results.complete:
        raise RuntimeError(f"ml4t run of {scenario.title} did not complete: {results.outcome}")
    return canonical_output(results, seconds)


def canonical_output(results: Any, seconds: float) -> RunOutput:
    ts = pl.col("timestamp").dt.epoch("ns")
    fills = results.fills.select(
        ts.alias("timestamp"), "symbol", "side", "quantity", "price", "commission"
    )
    orders = results.orders.filter(pl.col("filled_quantity") > 0).select(
        pl.col("updated_at").dt.epoch("ns").alias("timestamp"),
        "symbol",
        "side",
        pl.col("filled_quantity").alias("quantity"),
        pl.col("avg_fill_price").alias("price"),
        "commission",
    )
    trades = results.trades.filter(pl.col("exit_timestamp").is_not_null()).select(
        "symbol",
        pl.col("side").replace({"buy": "long", "sell": "short"}),
        "quantity",
        pl.col("entry_timestamp").dt.epoch("ns"),
        "entry_price",
        "entry_commission",
        pl.col("exit_timestamp").dt.epoch("ns"),
        "exit_price",
        "exit_commission",
    )
    equity = (
        results.portfolio.select(ts.alias("timestamp"), "cash", "equity")
        .group_by("timestamp", maintain_order=True)
        .last()
    )
    final_cash = float(equity["cash"][-1]) if equity.height else math.nan
    return RunOutput("ml4t", orders, fills, trades, equity, final_cash, seconds)
