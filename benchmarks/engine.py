"""The headline workload and the engine benchmarks (DESIGN §9), each in a fresh process.

1. framework overhead: a batch strategy that does nothing, with broker, portfolio, risk
   and recorder (writing parquet) all live;
2. a signal strategy (enter on signal_entry, exit on signal_exit, fixed size) in the
   batch API and in the per-symbol API, and a trivial per-symbol ``on_bar``;
3. the headline run: the proposal's top-25 ML strategy with VIX filter and ATR sizing,
   per-share commission and volume-share slippage, full recording and the HTML report;
4. memory flat in days: 3, 6 and 12 months of 250 symbols (the symbol counts of a
   whole year are :mod:`benchmarks.scale`).

Each reports wall time (engine built to results returned, data validation included),
bar-events per second, peak RSS and time to first event. A child can also write the
trade list it produced (``--trades PATH``) for :mod:`benchmarks.vectorbt_signals` to
compare, and run on another data set (``--data ROOT``).

    python -m benchmarks.engine [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from . import targets
from ._harness import ROOT, machine, machine_line, peak_rss_mb, run_child, write_section

CACHE = ROOT / "benchmarks" / ".cache"
# the 252 sessions from 2023-01-03 run to 2024-01-03: 12 months means all of it
MONTH_END: dict[int, str | None] = {1: "2023-01-31", 3: "2023-03-31", 6: "2023-06-30", 12: None}


SIZE = 100
"""Shares per entry of the signal strategies (and of vectorbt's side of the comparison)."""
CAPITAL = 10_000_000
"""Initial capital of a run of up to 250 symbols: large enough that no entry of the signal
rule is refused for cash, so vectorbt, which never refuses one, trades the same list.
Wider universes get it per 250 symbols (:func:`capital`)."""


def capital(n_symbols: int) -> int:
    """:data:`CAPITAL` per 250 symbols: 3,000 symbols of 100 shares each outgrow 10 M, and
    every refused entry would be sent again on every bar of its day."""
    return CAPITAL * max(1, -(-n_symbols // 250))


TRADE_COLUMNS = (
    "symbol",
    "quantity",
    "entry_timestamp",
    "entry_price",
    "exit_timestamp",
    "exit_price",
    "exit_reason",
)
"""The trade columns :mod:`benchmarks.vectorbt_signals` compares across frameworks."""

ACTIONS = {"splits": 100, "dividends": 400}
"""The corporate actions of the headline year's ``actions`` variant: 500 in all."""


def dataset(n_symbols: int, n_days: int, actions: bool = False) -> Path:
    """A cached synthetic data set (the headline one is 250 x 252, seed 42); with
    ``actions``, the same shape with :data:`ACTIONS` (raw bars consistent with them and an
    ``actions.parquet`` beside them)."""
    from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset

    name = "headline" if (n_symbols, n_days) == (250, 252) else f"s{n_symbols}_d{n_days}"
    if actions:
        name += "_actions"
    root = CACHE / name
    marker = root / "DONE"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        extra = ACTIONS if actions else {}
        config = SyntheticConfig(n_symbols=n_symbols, n_days=n_days, seed=42, **extra)
        info = write_dataset(root, config)
        marker.write_text(json.dumps({"rows": info.rows, "seconds": time.perf_counter() - t0}))
    return root


# ------------------------------------------------------------------ strategies


def _strategies() -> dict[str, Any]:
    from ml4t.backtest import BatchStrategy, Strategy
    from ml4t.backtest.demo.ml_top25 import MLTop25Expr, MLTop25Strategy

    class Nothing(BatchStrategy):
        def on_timestamp(self, timestamp, batch, context) -> None:
            return None

    class NothingPerBar(Strategy):
        def on_bar(self, bar) -> None:
            return None

    class NothingOnSignal(Nothing):
        wake = "signal"

    # the sweep imports it by path, so it lives in a module of its own
    from ._signal import SignalBatch, SignalBatchOnSignal

    assert SignalBatch.Params().size == SIZE

    class SignalPerBar(Strategy):
        def on_bar(self, bar) -> None:
            symbol = bar.symbol
            held = self.position(symbol) + self.pending_quantity(symbol)
            if held == 0 and bar.signal_entry == 1:
                self.buy(symbol, SIZE, reason="signal")
            elif held > 0 and bar.signal_exit == 1:
                self.close_position(symbol, reason="signal")

    class SignalPerBarOnSignal(SignalPerBar):
        wake = "signal"

    return {
        "nothing": Nothing,
        "nothing_per_bar": NothingPerBar,
        "signal_batch": SignalBatch,
        "signal_per_bar": SignalPerBar,
        "nothing_wake": NothingOnSignal,
        "signal_batch_wake": SignalBatchOnSignal,
        "signal_per_bar_wake": SignalPerBarOnSignal,
        "top25": MLTop25Strategy,
        "top25_expr": MLTop25Expr,
    }


def _config(
    root: Path, out: Path, months: int, headline: bool, actions: bool = False, n_symbols: int = 250
) -> Any:
    from ml4t.backtest import load_config

    execution: dict[str, Any] = {}
    if headline:
        execution = {
            "slippage": {
                "model": "VolumeShareSlippage",
                "params": {"volume_limit": 0.1, "price_impact": 0.1},
            },
            "commission": {
                "model": "PerShareCommission",
                "params": {"cost_per_share": 0.005, "minimum": 1.0},
            },
        }
    return load_config(
        {
            "backtest": {
                "initial_capital": capital(n_symbols),
                "calendar": "NYSE",
                "end_date": MONTH_END[months],
            },
            "data": {
                "asset": {"path": str(root / "asset"), "indicators": ["rsi", "atr", "macd"]},
                "signal_data": {
                    "path": str(root / "signals"),
                    "columns": ["signal_entry", "signal_exit", "confidence"],
                    "available_lag": "16h",
                },
                "context": {"path": str(root / "context"), "fields": ["vix", "spy"]},
                **(
                    {"corporate_actions": {"path": str(root / "actions.parquet")}}
                    if actions
                    else {}
                ),
            },
            "execution": execution,
            "reporting": {
                "output_dir": str(out),
                "portfolio_frequency": "5m",
                "html_report": headline,
            },
        }
    )


def measure(
    strategy: str,
    n_symbols: int,
    n_days: int,
    months: int,
    actions: bool = False,
    *,
    cold: bool = False,
    data: Path | None = None,
    trades_out: Path | None = None,
) -> dict[str, Any]:
    """Run one row; ``data`` replaces the cached data set of that shape, ``trades_out``
    receives the trade list (:data:`TRADE_COLUMNS`) after the clock stopped. ``cold``
    runs with an empty validation cache (every row validated before the first event);
    otherwise the cache holds the data set's answer (:func:`warm`), as for a user who
    runs the same files again."""
    from ml4t.backtest import BacktestEngine, Component, on
    from ml4t.backtest._span import MARKET_SPAN
    from ml4t.backtest.bus import Phase
    from ml4t.backtest.topics import MARKET

    root = data if data is not None else dataset(n_symbols, n_days, actions)
    if cold:  # a cache of this process's own: the run validates every row, as a first run does
        os.environ["ML4T_CACHE_DIR"] = tempfile.mkdtemp(prefix="ml4t-bench-cold-")
    first_event: list[float] = []

    class FirstEvent(Component):
        """The wall time of the first market data (a batch, or a quiet span of them)."""

        span_handlers = frozenset({"seen"})

        def quiet_until(self, chunk, first: int, last: int) -> int:
            return last

        @on(MARKET, phase=Phase.RECORD)
        @on(MARKET_SPAN, phase=Phase.RECORD)
        def seen(self, event) -> None:
            if not first_event:
                first_event.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="ml4t-bench-") as tmp:
        start = time.perf_counter()
        config = _config(
            root,
            Path(tmp) / "results",
            months,
            headline=strategy.startswith("top25"),
            actions=actions,
            n_symbols=n_symbols,
        )
        engine = BacktestEngine(config, strategy=_strategies()[strategy]("strategy"))
        engine.add(FirstEvent("first_event"))
        results = engine.run()
        wall = time.perf_counter() - start
        if trades_out is not None:
            results.trades.select(TRADE_COLUMNS).write_parquet(trades_out)
        return {
            "strategy": strategy,
            "symbols": n_symbols,
            "months": months,
            "bar_events": results.bar_events,
            "wall_s": round(wall, 2),
            "events_per_s": round(results.bar_events / wall),
            "loop_events_per_s": round(results.events_per_second),
            "first_event_s": round(first_event[0] - start, 2) if first_event else None,
            "peak_rss_mb": round(peak_rss_mb()),
            "trades": results.trades.height,
            "actions": sum(ACTIONS.values()) if actions else 0,
            "outcome": results.outcome.value,
        }


def warm(
    n_symbols: int, n_days: int, months: int, *, actions: bool = False, data: Path | None = None
) -> None:
    """Fill the validation cache for a data set and window, in a child of its own (so
    that no timed child inherits anything but the cache entry)."""
    root = data if data is not None else dataset(n_symbols, n_days, actions)
    run_child(
        "benchmarks.engine", "warm", str(n_symbols), str(n_days), str(months), "--data", str(root)
    )


def _warm(n_symbols: int, n_days: int, months: int, data: Path | None) -> dict[str, Any]:
    from ml4t.backtest import BacktestEngine

    root = data if data is not None else dataset(n_symbols, n_days)
    with tempfile.TemporaryDirectory(prefix="ml4t-bench-") as tmp:
        config = _config(
            root, Path(tmp), months, headline=False, actions=(root / "actions.parquet").exists()
        )
        engine = BacktestEngine(config, strategy=_strategies()["nothing"]("strategy"))
        start = time.perf_counter()
        engine.feed.prepare()  # type: ignore[attr-defined]
        return {"prepare_s": round(time.perf_counter() - start, 2)}


RUNS: dict[str, tuple[str, int, int, int]] = {
    "overhead": ("nothing", 250, 252, 12),
    "overhead_cold": ("nothing+cold", 250, 252, 12),
    "trivial_on_bar": ("nothing_per_bar", 250, 252, 12),
    "signal_batch": ("signal_batch", 250, 252, 12),
    "signal_per_bar": ("signal_per_bar", 250, 252, 12),
    "overhead_wake": ("nothing_wake", 250, 252, 12),
    "signal_batch_wake": ("signal_batch_wake", 250, 252, 12),
    "signal_per_bar_wake": ("signal_per_bar_wake", 250, 252, 12),
    "headline": ("top25", 250, 252, 12),
    "headline_actions": ("top25+actions", 250, 252, 12),
    "headline_expr": ("top25_expr", 250, 252, 12),
    "scale_m3": ("signal_batch", 250, 252, 3),
    "scale_m6": ("signal_batch", 250, 252, 6),
    "scale_m12": ("signal_batch", 250, 252, 12),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=4, metavar=("STRATEGY", "SYMBOLS", "DAYS", "MONTHS"))
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS))
    parser.add_argument("--data", type=Path, help="with --child: this data set's root")
    parser.add_argument("--trades", type=Path, help="with --child: write the trade list here")
    args = parser.parse_args()
    if args.child:
        strategy, symbols, days, months = args.child
        name, *flags = strategy.split("+")
        if name == "warm":
            print(json.dumps(_warm(int(symbols), int(days), int(months), args.data)))
            return
        row = measure(
            name,
            int(symbols),
            int(days),
            int(months),
            "actions" in flags,
            cold="cold" in flags,
            data=args.data,
            trades_out=args.trades,
        )
        print(json.dumps(row))
        return
    for spec in {(s, d, "+actions" in n) for n, s, d, _ in RUNS.values()}:
        dataset(*spec)  # generate outside the timed children
    for strategy, symbols, days, months in RUNS.values():
        warm(symbols, days, months, actions="+actions" in strategy)
    rows = {}
    for name in args.only or RUNS:
        strategy, symbols, days, months = RUNS[name]
        rows[name] = run_child("benchmarks.engine", strategy, str(symbols), str(days), str(months))
        print(name, rows[name], flush=True)
    info = machine()
    lines = [
        "## Engine: the headline workload (DESIGN §9)",
        "",
        "`python -m benchmarks.engine` (each row in a fresh child process; data generated",
        "once and cached). *Wall* runs from building the engine (config, data validation)",
        "to the results returned, with the recorder writing parquet; *loop/s* counts only",
        "the run itself. Every row but *overhead_cold* runs with the validation cache",
        "holding the data's answer (a repeat run of the same files, docs/data.md §4);",
        "*overhead_cold* validates every row before its first event, as a first run does.",
        "250 symbols x 252 NYSE sessions of one-minute bars = 24.3 M",
        "bar-events, 3 signal, 3 indicator and 2 context columns. *headline_actions* is",
        "the headline run on the same shape of data with 500 corporate actions (100",
        "splits, 400 dividends; raw bars consistent with them) applied by every role.",
        "*headline_expr* is the same rule as polars expressions (`MLTop25Expr`, an",
        "`ExprStrategy` evaluated once per chunk): the same orders as *headline*.",
        "",
        "| run | strategy | symbols | months | bar-events | wall s | events/s | loop events/s "
        "| first event s | peak RSS MiB | trades |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['strategy']} | {r['symbols']} | {r['months']} | "
            f"{r['bar_events']:,} | {r['wall_s']} | {r['events_per_s']:,} | "
            f"{r['loop_events_per_s']:,} | {r['first_event_s']} | {r['peak_rss_mb']} | "
            f"{r['trades']:,} |"
        )
    lines += ["", machine_line(info)]
    write_section("engine", "\n".join(lines), {"machine": info, "rows": rows})
    targets.write()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
