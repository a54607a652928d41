"""ml4t beside vectorbt on the plain signal strategy, loaded fairly (issue 19, DESIGN §9).

The rule: enter :data:`~benchmarks.engine.SIZE` shares on ``signal_entry``, exit on
``signal_exit``, fills at the next bar's open, no costs, on the headline year (250
symbols x 252 sessions of one-minute bars). Each side runs in a fresh child process, in
one run of this module, and reports its own peak RSS (the child's VmHWM):

- **vectorbt** the way its users load a complete grid: one parquet read (polars) of the
  asset files' timestamp, symbol, open, close and signal columns, sorted by (timestamp,
  symbol), a check that the grid is complete, then a reshape of each column to a T x N
  numpy array (a view of the column), and ``Portfolio.from_signals`` with the signals
  moved one bar later and ``price=open`` (the order of bar t fills at the open of bar
  t+1). Its numba kernels are compiled (or loaded from numba's cache) on a tiny grid
  first: that warm-up, the import and the trade-list extraction are reported beside the
  row, not counted in it. vectorbt's end to end is load + simulate.
- **ml4t** through the batch API (numpy masks and ``batch_positions``) and through
  ``Strategy.on_bar``: the ``signal_batch`` and ``signal_per_bar`` rows of
  :mod:`benchmarks.engine`, the whole graph with the recorder writing parquet, timed from
  building the engine (config, data validation) to the results written. ml4t reads the
  signals from their own daily files, joined as of the time they are known; vectorbt
  reads the same values from the asset files, where the generator put them too.

The benchmark **fails** (exit status 1, the first differing trades printed) unless every
ml4t run and vectorbt produce the same trade list: symbol, quantity, entry and exit time,
entry and exit price to the cent, and the same trades still open at the end (ml4t closes
them at the last close, ``end_of_backtest``; vectorbt values them there, status open).

    python -m benchmarks.vectorbt_signals [--repeat N] [--no-per-bar]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from . import targets
from ._harness import machine, machine_line, peak_rss_mb, run_child, write_section
from .engine import CAPITAL, SIZE, TRADE_COLUMNS, dataset, warm

COLUMNS = ("timestamp", "symbol", "open", "close", "signal_entry", "signal_exit")
CENT = 0.005
"""Half a cent: two prices closer than this are the same to the cent."""


class GridError(ValueError):
    """The long data is not a complete (timestamp x symbol) grid sorted by both."""


class Grid(NamedTuple):
    """The data as vectorbt takes it: T x N arrays, one row per timestamp."""

    times: np.ndarray  # int64 ns, T
    symbols: list[str]  # N, sorted
    open: np.ndarray
    close: np.ndarray
    entries: np.ndarray  # bool: the signal is known at this bar's close
    exits: np.ndarray


# ------------------------------------------------------------------ vectorbt's side


def load_grid(asset: Path) -> Grid:
    """One read of the columns vectorbt needs, then a reshape to T x N.

    Raises :class:`GridError` (naming the first bad row) unless every timestamp has every
    symbol, in the same sorted order, and the timestamps increase.
    """
    frame = pl.read_parquet(asset, columns=list(COLUMNS))
    stamps = frame["timestamp"].dt.epoch("ns").to_numpy()
    if stamps.size == 0:
        raise GridError(f"{asset}: no rows")
    n = int(np.searchsorted(stamps, stamps[0], side="right"))
    if stamps.size % n:
        raise GridError(f"{asset}: {stamps.size:,} rows is not a multiple of {n} symbols")
    t = stamps.size // n
    stamps = stamps.reshape(t, n)
    bad = np.flatnonzero((stamps != stamps[:, :1]).any(axis=1))
    if bad.size:
        raise GridError(f"{asset}: timestamp row {bad[0]} does not have {n} symbols")
    if t > 1 and not (np.diff(stamps[:, 0]) > 0).all():
        raise GridError(f"{asset}: timestamps are not increasing")
    symbol = frame["symbol"]
    names = symbol.head(n)
    if names.n_unique() != n or not names.is_sorted():
        raise GridError(f"{asset}: the symbols of the first timestamp are not sorted and unique")
    same = symbol.slice(n) == symbol.slice(0, symbol.len() - n)
    if not same.all():
        row = int(same.arg_min() or 0) + n
        raise GridError(f"{asset}: row {row} breaks the (timestamp, symbol) order")

    def grid(column: str) -> np.ndarray:
        return frame[column].to_numpy().reshape(t, n)

    return Grid(
        times=stamps[:, 0].copy(),
        symbols=names.to_list(),
        open=grid("open"),
        close=grid("close"),
        entries=grid("signal_entry") == 1.0,
        exits=grid("signal_exit") == 1.0,
    )


def _next_bar(signal: np.ndarray) -> np.ndarray:
    """The signal one bar later: the order of bar t is executed on bar t+1."""
    out = np.zeros_like(signal)
    out[1:] = signal[:-1]
    return out


def simulate(vbt: Any, grid: Grid) -> Any:
    """``from_signals`` with next-open fills, one cash balance shared by every symbol."""
    return vbt.Portfolio.from_signals(
        grid.close,
        _next_bar(grid.entries),
        _next_bar(grid.exits),
        price=grid.open,
        size=float(SIZE),
        init_cash=float(CAPITAL),
        cash_sharing=True,
        group_by=True,
        freq="1min",
    )


def trade_list(portfolio: Any, grid: Grid) -> pl.DataFrame:
    """vectorbt's trades in :data:`~benchmarks.engine.TRADE_COLUMNS`; a trade still open
    at the end is valued at the last close, as ml4t's ``end_of_backtest`` exit."""
    records = portfolio.trades.records_arr
    utc = pl.Datetime("ns", "UTC")
    return pl.DataFrame(
        {
            "symbol": np.asarray(grid.symbols, dtype=object)[records["col"]].tolist(),
            "quantity": records["size"],
            "entry_timestamp": pl.Series(grid.times[records["entry_idx"]]).cast(utc),
            "entry_price": records["entry_price"],
            "exit_timestamp": pl.Series(grid.times[records["exit_idx"]]).cast(utc),
            "exit_price": records["exit_price"],
            "exit_reason": np.where(records["status"] == 1, "signal", "end_of_backtest").tolist(),
        }
    )


def _warm_up(vbt: Any) -> None:
    """Compile (or load from numba's cache) the kernels on a grid of the same dtypes."""
    rng = np.random.default_rng(0)
    t, n = 8, 3
    close = rng.uniform(10.0, 20.0, (t, n))
    tiny = Grid(
        times=np.arange(t, dtype=np.int64),
        symbols=["A", "B", "C"],
        open=close * 0.99,
        close=close,
        entries=rng.random((t, n)) > 0.5,
        exits=rng.random((t, n)) > 0.5,
    )
    trade_list(simulate(vbt, tiny), tiny)


def measure_vectorbt(asset: Path, trades_out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        import vectorbt as vbt
    except ImportError as exc:
        raise SystemExit(
            f"vectorbt is not installed ({exc}): pip install -e '.[validate]' (make bench "
            "installs it)"
        ) from exc
    imported = time.perf_counter()
    _warm_up(vbt)
    warmed = time.perf_counter()
    grid = load_grid(asset)
    loaded = time.perf_counter()
    portfolio = simulate(vbt, grid)
    simulated = time.perf_counter()
    trades = trade_list(portfolio, grid)
    listed = time.perf_counter()
    trades.write_parquet(trades_out)
    return {
        "framework": "vectorbt",
        "version": vbt.__version__,
        "engine": "rust" if vbt._engine.is_rust_available() else "numba",
        "bar_events": int(grid.close.size),
        "import_s": round(imported - t0, 2),
        "jit_s": round(warmed - imported, 2),
        "load_s": round(loaded - warmed, 2),
        "simulate_s": round(simulated - loaded, 2),
        "wall_s": round(simulated - warmed, 2),
        "trade_list_s": round(listed - simulated, 2),
        "trades": trades.height,
        "peak_rss_mb": round(peak_rss_mb()),
    }


# ------------------------------------------------------------------ the check


def compare_trades(mine: pl.DataFrame, vectorbt: pl.DataFrame, name: str = "ml4t") -> str | None:
    """None when both lists hold the same trades (prices to the cent); else what differs,
    with the first differing trades of each side."""
    key = ["symbol", "entry_timestamp"]
    a = mine.select(TRADE_COLUMNS).sort(key)
    b = vectorbt.select(TRADE_COLUMNS).sort(key)
    if a.height != b.height:
        return f"{name} has {a.height:,} trades, vectorbt {b.height:,}" + _first_diff(
            a, b, key, name
        )
    exact = ["symbol", "quantity", "entry_timestamp", "exit_timestamp", "exit_reason"]
    rows = pl.Series([False] * a.height)
    for column in exact:
        rows = rows | (a[column] != b[column])
    for price in ("entry_price", "exit_price"):
        rows = rows | ((a[price] - b[price]).abs() >= CENT)
    if rows.any():
        first = int(rows.arg_max() or 0)
        return (
            f"{int(rows.sum()):,} of {a.height:,} trades differ; the first:\n"
            f"{name:<9}{a.row(first)}\nvectorbt {b.row(first)}"
        )
    return None


def _first_diff(a: pl.DataFrame, b: pl.DataFrame, key: list[str], name: str) -> str:
    only_a = a.join(b, on=key, how="anti").head(3)
    only_b = b.join(a, on=key, how="anti").head(3)
    return f"\nonly in {name}:\n{only_a}\nonly in vectorbt:\n{only_b}"


def max_price_gap(ml4t: pl.DataFrame, vectorbt: pl.DataFrame) -> float:
    key = ["symbol", "entry_timestamp"]
    a, b = ml4t.sort(key), vectorbt.sort(key)
    gaps = [(a[c] - b[c]).abs().max() for c in ("entry_price", "exit_price")]
    return max((float(g) for g in gaps if g is not None), default=0.0)


# ------------------------------------------------------------------ the run


def run(
    root: Path, repeat: int, per_bar: bool, shape: tuple[int, int] = (250, 252)
) -> dict[str, Any]:
    """Interleave the sides ``repeat`` times in fresh children; check every trade list."""
    sides = ["vectorbt", "signal_batch", "signal_batch_wake"]
    sides += ["signal_per_bar", "signal_per_bar_wake"] if per_bar else []
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="ml4t-vbt-") as tmp:
        reference: pl.DataFrame | None = None
        for i in range(repeat):
            for side in sides:
                out = Path(tmp) / f"{side}-{i}.parquet"
                if side == "vectorbt":
                    row = run_child("benchmarks.vectorbt_signals", str(root / "asset"), str(out))
                else:
                    row = run_child(
                        "benchmarks.engine",
                        side,
                        str(shape[0]),
                        str(shape[1]),
                        "12",
                        "--data",
                        str(root),
                        "--trades",
                        str(out),
                    )
                runs[side].append(row)
                print(side, row, flush=True)
                trades = pl.read_parquet(out)
                if reference is None:
                    reference = trades
                    continue
                differs = compare_trades(trades, reference, side)
                if differs:
                    raise TradeMismatch(f"{side} (run {i + 1}) against vectorbt: {differs}")
        assert reference is not None
        ml4t_trades = pl.read_parquet(Path(tmp) / "signal_batch-0.parquet")
        still_open = ml4t_trades.filter(pl.col("exit_reason") == "end_of_backtest").height
        gap = max_price_gap(ml4t_trades, reference)
    return {"runs": runs, "trades": reference.height, "still_open": still_open, "gap": gap}


class TradeMismatch(RuntimeError):
    """ml4t and vectorbt traded different lists: the comparison is void."""


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 2)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Medians per side and the ratios the targets are stated in."""
    runs = result["runs"]
    out: dict[str, Any] = {}
    for side, rows in runs.items():
        keys = ["wall_s", "peak_rss_mb"] + (
            ["load_s", "simulate_s", "jit_s", "import_s", "trade_list_s"]
            if side == "vectorbt"
            else ["first_event_s"]
        )
        out[side] = {k: _median(rows, k) for k in keys}
        out[side]["all_wall_s"] = [r["wall_s"] for r in rows]
    vbt, batch = out["vectorbt"], out["signal_batch"]
    out["time_ratio"] = round(batch["wall_s"] / vbt["wall_s"], 2)
    out["memory_ratio"] = round(batch["peak_rss_mb"] / vbt["peak_rss_mb"], 2)
    woken = out["signal_batch_wake"]
    out["wake_time_ratio"] = round(woken["wall_s"] / vbt["wall_s"], 2)
    out["wake_memory_ratio"] = round(woken["peak_rss_mb"] / vbt["peak_rss_mb"], 2)
    if "signal_per_bar" in out:
        out["per_bar_ratio"] = round(out["signal_per_bar"]["wall_s"] / batch["wall_s"], 2)
        out["wake_per_bar_ratio"] = round(out["signal_per_bar_wake"]["wall_s"] / woken["wall_s"], 2)
    return out


def render(result: dict[str, Any], stats: dict[str, Any], info: dict[str, Any]) -> str:
    runs = result["runs"]
    vbt_row = runs["vectorbt"][0]
    n = len(runs["vectorbt"])
    vbt, batch = stats["vectorbt"], stats["signal_batch"]
    lines = [
        "## ml4t beside vectorbt: the plain signal strategy on the headline year",
        "",
        f"`python -m benchmarks.vectorbt_signals --repeat {n}` (each side {n} time(s) in fresh",
        "child processes, interleaved; medians shown). The rule: enter "
        f"{SIZE} shares on `signal_entry`,",
        "exit on `signal_exit`, next-open fills, no costs, 250 symbols x 252 sessions of",
        "one-minute bars. vectorbt: one parquet read of the columns it needs, a check that",
        "the grid is complete, a reshape to T x N numpy arrays, `Portfolio.from_signals`",
        "with the signals one bar later and `price=open`; its import, numba warm-up and",
        "trade-list extraction are not counted (shown in *notes*). ml4t: engine built",
        "(config, the data's validation answered by the validation cache, as on every",
        "run of the same files after the first: docs/data.md §4) to results written",
        "(trades, fills, orders, portfolio states as parquet). A first run validates",
        "every row before its first event: *overhead_cold* against *overhead* in the",
        "engine section shows what that adds.",
        "",
        "| framework | end to end s | all runs s | peak RSS MiB | trades | ratio | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| vectorbt {vbt_row['version']} ({vbt_row['engine']}) | {vbt['wall_s']} | "
        f"{_runs(vbt)} | {vbt['peak_rss_mb']:.0f} | {result['trades']:,} | 1.00x | "
        f"load {vbt['load_s']} s + simulate {vbt['simulate_s']} s; not counted: import "
        f"{vbt['import_s']} s, JIT warm-up {vbt['jit_s']} s, trade list "
        f"{vbt['trade_list_s']} s |",
        f"| ml4t, batch API | {batch['wall_s']} | {_runs(batch)} | "
        f"{batch['peak_rss_mb']:.0f} | {result['trades']:,} | {stats['time_ratio']:.2f}x | "
        f"memory {stats['memory_ratio']:.2f}x vectorbt's; first event "
        f"{batch['first_event_s']} s |",
    ]
    woken = stats["signal_batch_wake"]
    lines.append(
        f'| ml4t, batch API, `wake = "signal"` | {woken["wall_s"]} | {_runs(woken)} | '
        f"{woken['peak_rss_mb']:.0f} | {result['trades']:,} | "
        f"{stats['wake_time_ratio']:.2f}x | called only where the signals change and "
        "after its fills and order events |"
    )
    if "signal_per_bar" in stats:
        per_bar = stats["signal_per_bar"]
        lines.append(
            f"| ml4t, `Strategy.on_bar` | {per_bar['wall_s']} | {_runs(per_bar)} | "
            f"{per_bar['peak_rss_mb']:.0f} | {result['trades']:,} | "
            f"{per_bar['wall_s'] / vbt['wall_s']:.2f}x | {stats['per_bar_ratio']:.2f}x the "
            "batch API |"
        )
        per_bar = stats["signal_per_bar_wake"]
        lines.append(
            f'| ml4t, `Strategy.on_bar`, `wake = "signal"` | {per_bar["wall_s"]} | '
            f"{_runs(per_bar)} | {per_bar['peak_rss_mb']:.0f} | {result['trades']:,} | "
            f"{per_bar['wall_s'] / vbt['wall_s']:.2f}x | {stats['wake_per_bar_ratio']:.2f}x "
            "the batch API with the same wake |"
        )
    lines += [
        "",
        f"Trade lists checked equal in every run: {result['trades']:,} trades ("
        f"{result['still_open']} still open at the end), same symbol, quantity, entry and "
        "exit time and exit kind, entry and exit prices to the cent (largest difference "
        f"{result['gap']:.1e}).",
        "",
        machine_line(info),
    ]
    return "\n".join(lines)


def _runs(stats: dict[str, Any]) -> str:
    return ", ".join(str(w) for w in stats["all_wall_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("ASSET_DIR", "TRADES_OUT"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-per-bar", action="store_true", help="leave out Strategy.on_bar")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_vectorbt(Path(args.child[0]), Path(args.child[1]))))
        return 0
    root = dataset(250, 252)
    warm(250, 252, 12, data=root)  # ml4t's validation cache holds the answer, as on a re-run
    try:
        result = run(root, max(1, args.repeat), per_bar=not args.no_per_bar)
    except TradeMismatch as exc:
        print(f"FAILED: the trade lists differ, so the timings compare nothing.\n{exc}")
        return 1
    stats = summary(result)
    info = machine()
    text = render(result, stats, info)
    write_section("vs-vectorbt", text, {"machine": info, **result, "summary": stats})
    targets.write()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
