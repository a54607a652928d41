"""Run a scenario in vectorbt (``Portfolio.from_signals``, ``from_orders`` for rebalancing).

The translation of :mod:`validation.spec`:

- signals are vectorbt's ``entries``/``exits``/``short_entries``/``short_exits`` at the
  signal bar, executed at ``price=close`` (vectorbt's default) with the bar's OHLC given
  for the stops; reversal is ``upon_opposite_entry`` (default, reverse);
- ``size`` in shares (``size_type="amount"``), ``sizing="value"`` as a per-bar share
  array ``floor(value / close)``;
- ``sl_stop``, ``tp_stop`` and ``sl_trail`` (vectorbt has one stop-loss, fixed or
  trailing; a fixed stop-loss and a trailing stop together cannot be expressed);
- ``fees`` (percent of notional) and ``slippage`` (percent of price); vectorbt has no
  per-share commission and no fixed-amount slippage;
- all symbols share one cash balance (``cash_sharing=True``, one group), called in
  column (symbol) order.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from validation.compare import RunOutput, trades_from_fills
from validation.data import Panel
from validation.spec import Scenario

__all__ = ["run_vectorbt", "warm_up"]


def _vbt() -> Any:
    import vectorbt as vbt

    return vbt


def _kwargs(scenario: Scenario, panel: Panel) -> dict[str, Any]:
    sc = scenario
    close = panel.pandas("close")
    kw: dict[str, Any] = {
        "close": close,
        "open": panel.pandas("open"),
        "high": panel.pandas("high"),
        "low": panel.pandas("low"),
        "init_cash": sc.initial_cash,
        "cash_sharing": True,
        "group_by": True,
        "freq": "1D",
        "fees": sc.costs.commission_percent,
        "slippage": sc.costs.slippage_percent,
    }
    if sc.sizing == "value":
        kw["size"] = np.floor(sc.value / close)
    else:
        kw["size"] = sc.size
    kw["size_type"] = "amount"
    false = pd.DataFrame(False, index=close.index, columns=close.columns)
    kw["entries"] = panel.pandas("long_entry") if sc.long else false
    kw["exits"] = panel.pandas("long_exit") if sc.long else false
    kw["short_entries"] = panel.pandas("short_entry") if sc.short else false
    kw["short_exits"] = panel.pandas("short_exit") if sc.short else false
    stops = sc.stops
    if stops.sl is not None and stops.tsl is not None:
        raise ValueError("vectorbt has a single stop-loss: fixed or trailing, not both")
    if stops.sl is not None:
        kw["sl_stop"] = stops.sl
    if stops.tsl is not None:
        kw["sl_stop"] = stops.tsl
        kw["sl_trail"] = True
    if stops.tp is not None:
        kw["tp_stop"] = stops.tp
    return kw


def run_vectorbt(scenario: Scenario, panel: Panel) -> RunOutput:
    vbt = _vbt()
    if scenario.sizing == "rebalance":
        kw = _rebalance_kwargs(scenario, panel)
        start = time.perf_counter()
        pf = vbt.Portfolio.from_orders(**kw)
    else:
        kw = _kwargs(scenario, panel)
        start = time.perf_counter()
        pf = vbt.Portfolio.from_signals(**kw)
    seconds = time.perf_counter() - start
    out = _canonical(pf, panel, seconds)
    if scenario.sizing == "rebalance":
        # positions are scaled in and out: vectorbt's exit trades average the entry over
        # lots, ml4t records FIFO lots; rebuild FIFO lots from vectorbt's own orders
        out = replace(out, trades=trades_from_fills(out.fills))
        out.notes.append("trades rebuilt from vectorbt's orders as FIFO lots")
    return out


def _rebalance_kwargs(scenario: Scenario, panel: Panel) -> dict[str, Any]:
    """Target weights on rebalance bars (NaN elsewhere: no order), executed at the close
    with sells first (``call_seq="auto"``) from one shared cash balance."""
    assert scenario.weights is not None
    close = panel.pandas("close")
    size = np.full(close.shape, np.nan)
    for i in range(0, len(panel.times), scenario.rebalance_every):
        weights = scenario.weights(panel, i)
        size[i] = [weights.get(s, 0.0) for s in panel.symbols]
    return {
        "close": close,
        "size": pd.DataFrame(size, index=close.index, columns=close.columns),
        "size_type": "targetpercent",
        "init_cash": scenario.initial_cash,
        "cash_sharing": True,
        "group_by": True,
        "call_seq": "auto",
        "fees": scenario.costs.commission_percent,
        "freq": "1D",
    }


def _canonical(pf: Any, panel: Panel, seconds: float) -> RunOutput:
    times = panel.times
    names = panel.symbols
    rec = pf.orders.records
    orders = pl.DataFrame(
        {
            "timestamp": times[rec["idx"]],
            "symbol": [names[c] for c in rec["col"]],
            "side": np.where(rec["side"] == 0, "buy", "sell"),
            "quantity": rec["size"],
            "price": rec["price"],
            "commission": rec["fees"],
        },
        schema_overrides={"side": pl.String},
    )
    tr = pf.trades.records
    tr = tr[tr["status"] == 1]
    trades = pl.DataFrame(
        {
            "symbol": [names[c] for c in tr["col"]],
            "side": np.where(tr["direction"] == 0, "long", "short"),
            "quantity": tr["size"],
            "entry_timestamp": times[tr["entry_idx"]],
            "entry_price": tr["entry_price"],
            "entry_commission": tr["entry_fees"],
            "exit_timestamp": times[tr["exit_idx"]],
            "exit_price": tr["exit_price"],
            "exit_commission": tr["exit_fees"],
        },
        schema_overrides={"side": pl.String},
    )
    cash = np.asarray(pf.cash()).reshape(-1)
    value = np.asarray(pf.value()).reshape(-1)
    equity = pl.DataFrame({"timestamp": times, "cash": cash, "equity": value})
    final_cash = float(cash[-1]) if cash.size else math.nan
    return RunOutput("vectorbt", orders, orders.clone(), trades, equity, final_cash, seconds)


def warm_up() -> None:
    """Compile vectorbt's numba kernels once, so runtimes measure the simulation."""
    from validation.data import make_panel
    from validation.spec import Scenario, Stops

    panel = make_panel(seed=0, n_bars=30, n_symbols=2)
    for stops in (Stops(), Stops(sl=0.05, tp=0.05), Stops(tsl=0.05)):
        sc = Scenario(id="w", name="warm", description="", data=lambda s: panel, stops=stops)
        run_vectorbt(sc, panel)
