"""Per-timestamp cost of the execution roles: broker, portfolio and risk manager.

A feed publishes 250-symbol batches (zero-copy slices of one frame, as the parquet feed
does) from clock alarms. Variants:

- ``feed``: the feed alone (the floor the roles add to);
- ``idle``: + SimulatedBroker, Portfolio, RiskManager, no orders;
- ``held``: + a strategy that buys 25 symbols on the first bar and holds them (the
  portfolio marks 25 positions every timestamp);
- ``resting``: as ``held`` plus 25 resting limit orders and 25 trailing stops the broker
  checks on every bar (50 open orders).

    python -m benchmarks.execution      # every variant in a fresh child process
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import polars as pl

from ml4t.backtest import Component, MarketBatch, OrderSide, OrderType, Phase, Runtime, SubmitOrder
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.execution import SimulatedBroker
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.risk import RiskConfig, RiskManager
from ml4t.backtest.topics import MARKET, ORDER_REQUESTS

from ._harness import machine, machine_line, peak_rss_mb, run_child, write_section

N_SYMBOLS = 250
MINUTE = 60_000_000_000


def make_frame(n_ts: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(N_SYMBOLS)]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, (n_ts, N_SYMBOLS)), axis=0))
    open_ = np.roll(close, 1, axis=0)
    open_[0] = 100.0
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return pl.DataFrame(
        {
            "symbol": pl.Series(symbols * n_ts, dtype=pl.Enum(symbols)),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": np.full(n_ts * N_SYMBOLS, 1e6),
            "signal": rng.random(n_ts * N_SYMBOLS),
        }
    )


class Feed(Component):
    def __init__(self, frame: pl.DataFrame, n_ts: int) -> None:
        super().__init__("feed")
        self.frame = frame
        self.n_ts = n_ts

    def on_start(self) -> None:
        self.i = 0
        self.clock.schedule(MINUTE, self._emit, priority=AlarmPriority.DATA)

    def _emit(self) -> None:
        now = self.now_ns()
        part = self.frame.slice(self.i * N_SYMBOLS, N_SYMBOLS)
        self.bus.publish(MARKET, MarketBatch(ts_event=now, ts_init=now, frame=part))
        self.i += 1
        if self.i < self.n_ts:
            self.clock.schedule(now + MINUTE, self._emit, priority=AlarmPriority.DATA)


class Holder(Component):
    """Buys 25 symbols on the first bar; optionally rests 25 limits and 25 trailing stops."""

    def __init__(self, resting: bool) -> None:
        super().__init__("strategy")
        self.resting = resting
        self.done = False

    def subscriptions(self):
        return [(MARKET, self.on_batch, Phase.STRATEGY)]

    def on_batch(self, batch: MarketBatch) -> None:
        if self.done:
            return
        self.done = True
        now = self.now_ns()
        symbols = batch.frame["symbol"].cast(pl.String).to_list()
        closes = batch.frame["close"].to_list()
        for i in range(25):
            self._send(now, f"buy{i}", symbols[i], OrderSide.BUY, 10.0)
            if self.resting:
                self._send(
                    now,
                    f"trail{i}",
                    symbols[i],
                    OrderSide.SELL,
                    10.0,
                    order_type=OrderType.TRAILING_STOP,
                    trail_percent=0.5,
                )
                self._send(
                    now,
                    f"rest{i}",
                    symbols[100 + i],
                    OrderSide.BUY,
                    1.0,
                    order_type=OrderType.LIMIT,
                    limit_price=closes[100 + i] * 0.5,
                )

    def _send(
        self, now: int, oid: str, symbol: str, side: OrderSide, qty: float, **kw: Any
    ) -> None:
        self.publish(
            ORDER_REQUESTS,
            SubmitOrder(
                ts_event=now,
                order_id=oid,
                strategy_id=self.name,
                symbol=symbol,
                side=side,
                quantity=qty,
                **kw,
            ),
        )


def measure(variant: str, n_ts: int) -> dict[str, Any]:
    frame = make_frame(n_ts)
    runtime = Runtime()
    runtime.add(Feed(frame, n_ts))
    if variant != "feed":
        runtime.add(RiskManager(RiskConfig(account="margin")))
        broker = runtime.add(SimulatedBroker())
        portfolio = runtime.add(Portfolio(PortfolioConfig(initial_cash=1e7)))
    if variant in ("held", "resting"):
        runtime.add(Holder(resting=variant == "resting"))
    start = time.perf_counter()
    runtime.run_sync()
    elapsed = time.perf_counter() - start
    result = {
        "variant": variant,
        "timestamps": n_ts,
        "seconds": round(elapsed, 3),
        "us_per_timestamp": round(elapsed / n_ts * 1e6, 1),
        "bar_events_per_s": round(n_ts * N_SYMBOLS / elapsed),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if variant != "feed":
        result["open_orders"] = sum(len(v) for v in broker.book.open_by_code.values())
        result["positions"] = int(np.count_nonzero(portfolio.quantity))
    return result


VARIANTS = {"feed": 20_000, "idle": 20_000, "held": 20_000, "resting": 20_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "TIMESTAMPS"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    rows = [run_child("benchmarks.execution", name, str(n)) for name, n in VARIANTS.items()]
    floor = rows[0]["us_per_timestamp"]
    info = machine()
    lines = [
        "## Execution roles: broker, portfolio, risk manager",
        "",
        "`python -m benchmarks.execution` (each variant in a fresh child process). A feed",
        f"publishes {N_SYMBOLS}-symbol batches (zero-copy slices of one frame); *added* is the",
        "cost per timestamp over the feed alone. DESIGN §9 budgets about 50 us per",
        "timestamp for every component together.",
        "",
        "| variant | timestamps | us / timestamp | added us | bar-events/s | open orders "
        "| positions | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        added = round(r["us_per_timestamp"] - floor, 1)
        lines.append(
            f"| {r['variant']} | {r['timestamps']:,} | {r['us_per_timestamp']} | {added} | "
            f"{r['bar_events_per_s']:,} | {r.get('open_orders', '-')} | "
            f"{r.get('positions', '-')} | {r['peak_rss_mb']} |"
        )
    lines += ["", machine_line(info)]
    write_section("execution", "\n".join(lines), {"machine": info, "rows": rows})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
