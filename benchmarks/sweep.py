"""Speed-up of a parameter sweep on the local process pool (and Ray) against serial runs.

The workload is the demo (``ml4t demo``: the proposal's top-25 ML strategy, 50 symbols x
21 sessions of one-minute bars, volume-share slippage, full recording) swept over a 2x2x2
grid of its parameters: 8 backtests. Variants, each in a fresh child process:

- ``serial``: the 8 tasks one after another in one process (``run_task``, no pool);
- ``local-1`` / ``local-2``: ``run_sweep`` on a process pool of 1 or 2 workers (spawn
  start-up, planning and the results table included);
- ``ray-2``: ``run_sweep`` on a local Ray with 2 CPUs; Ray's start-up is timed apart.

The issue-19 row (``--shared``, its own section): a 16-point grid of the signal strategy
(``signal_batch`` of :mod:`benchmarks.engine`, here :mod:`benchmarks._signal`) over the
headline year (250 symbols x 252 sessions of one-minute bars), 4 sizes x 4 slippages:

- ``one``: one point of the grid alone (``run_task`` in a fresh process, no pool);
- ``shared-16``: ``run_sweep(share_data=True)`` on 2 workers: two processes, each one
  data pass shared by 8 points;
- ``separate-16``: ``run_sweep`` on 2 workers, each point reading the data itself;
- ``one-wake``, ``shared-16-wake``, ``separate-16-wake``: the same three with the same rule
  declared ``wake = "signal"`` (``SignalBatchOnSignal``: called where the signals change
  and after its own fills and order events; the same trades).

    python -m benchmarks.sweep            # every variant, figures into docs/performance.md
    python -m benchmarks.sweep --shared   # the issue-19 row (--symbols/--days/--months:
                                          # a smaller data set, not written to the docs)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ._harness import (
    RESULTS,
    ROOT,
    machine,
    machine_line,
    peak_rss_mb,
    run_child,
    write_section,
)

CACHE = ROOT / "benchmarks" / ".cache" / "sweep"
SIZE = {"n_symbols": 50, "n_days": 21}
GRID = {
    "params": {
        "strategy.params.max_positions": [10, 25],
        "strategy.params.position_size_pct": [0.02, 0.04],
        "strategy.params.vix_threshold": [25, 30],
    },
    "metric": "sharpe_ratio",
}
VARIANTS = ("serial", "local-1", "local-2", "ray-2")


def _config() -> Path:
    from ml4t.backtest.demo import prepare_demo

    return prepare_demo(CACHE / "demo", html_report=False, **SIZE)


def measure(variant: str) -> dict[str, Any]:
    from ml4t.backtest.sweep import LocalExecutor, run_sweep

    config = _config()
    out = CACHE / f"out-{variant}"
    shutil.rmtree(out, ignore_errors=True)
    result: dict[str, Any] = {"variant": variant, "runs": 8}
    start = time.perf_counter()
    if variant == "serial":
        durations = _serial(config, out)
    elif variant.startswith("local-"):
        workers = int(variant.split("-")[1])
        table = run_sweep(config, GRID, out_dir=out, executor=LocalExecutor(workers))
        assert table["status"].to_list() == ["ok"] * 8, table["error"].to_list()
        durations = table["duration_s"].to_list()
    else:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
        result["ray_start_s"] = round(time.perf_counter() - start, 2)
        sweep_start = time.perf_counter()
        table = run_sweep(config, GRID, out_dir=out, executor="ray")
        result["sweep_s"] = round(time.perf_counter() - sweep_start, 2)
        assert table["status"].to_list() == ["ok"] * 8, table["error"].to_list()
        durations = table["duration_s"].to_list()
        ray.shutdown()
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["run_s"] = round(sum(durations) / len(durations), 2)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return result


def _peak_rss_mb() -> float:
    """The largest of this process and its waited-for children (the pool's workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _medians(repeat: int) -> list[dict[str, Any]]:
    """Per variant, the run with the median wall time; rounds interleave the variants so
    that a change in the machine's load touches them all alike."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for _ in range(repeat):
        for name in VARIANTS:
            row = run_child("benchmarks.sweep", name)
            row["load_1m"] = round(os.getloadavg()[0], 1)
            runs[name].append(row)
    rows = []
    for name in VARIANTS:
        ordered = sorted(runs[name], key=lambda r: r["wall_s"])
        middle = ordered[len(ordered) // 2]
        middle["all_wall_s"] = [r["wall_s"] for r in runs[name]]
        rows.append(middle)
    return rows


def _serial(config: Path, out: Path) -> list[float]:
    from ml4t.backtest.config import load_config
    from ml4t.backtest.sweep import load_spec, plan_tasks, run_task
    from ml4t.backtest.sweep.plan import base_text

    base = load_config(config)
    text = base_text(base)
    durations = []
    for task in plan_tasks(base, load_spec(GRID)):
        result = run_task(task.payload(text, out / "runs", "warning"))
        assert result["status"] == "ok", result["error"]
        durations.append(result["duration_s"])
    return durations


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The markdown section for measured ``rows`` (one per variant, serial first)."""
    repeat = len(rows[0]["all_wall_s"])
    serial = rows[0]["wall_s"]
    lines = [
        "## Sweeps: local process pool and Ray against serial runs",
        "",
        f"`python -m benchmarks.sweep --repeat {repeat}` (each variant {repeat} times in fresh",
        "child processes, interleaved; the median wall time is shown). Eight backtests",
        f"of the demo ({SIZE['n_symbols']} symbols x {SIZE['n_days']} sessions of one-minute "
        "bars, the",
        "top-25 ML strategy, full recording): a 2x2x2 grid over `max_positions`,",
        "`position_size_pct` and `vix_threshold`. *serial* runs the eight tasks in one",
        "process; the others are `run_sweep` end to end (planning, worker start-up,",
        "results table).",
        "",
        "| variant | runs | wall s (median) | all wall s | wall s / run | mean run s "
        "| speed-up vs serial | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        note = ""
        if "sweep_s" in r:
            note = f" (Ray start {r['ray_start_s']} s + sweep {r['sweep_s']} s)"
        lines.append(
            f"| {r['variant']} | {r['runs']} | {r['wall_s']}{note} | "
            f"{', '.join(str(w) for w in r['all_wall_s'])} | "
            f"{r['wall_s'] / r['runs']:.2f} | {r['run_s']:.2f} | {serial / r['wall_s']:.2f}x | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    loads = ", ".join(f"{r['variant']} {r['load_1m']}" for r in rows)
    lines += [
        "",
        "*mean run s* is one backtest's own wall time (inside its worker), averaged over",
        "the eight. The grid's first four points hold up to 10 positions, the last four",
        "up to 25, which takes about twice as long.",
        "",
        "A speed-up above 2 on 2 cores is this machine, not the pool: here one backtest",
        "running alone is slower than each of two running side by side (compare *mean",
        "run s* of serial and local-2; two plain serial processes started together show",
        "the same). On a machine without that effect expect at most 2x, less the",
        "workers' start-up (a spawned worker imports ml4t and polars: about 2 s).",
        "",
        "The machine is shared: the 1-minute load average when each median run",
        f"finished was {loads} (2 cores), so the figures carry noise.",
        "",
        "Peak RSS is the largest single process: the driver or a pool worker (Ray's",
        "workers are not the driver's children and are not counted).",
        "",
        machine_line(info),
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ issue 19: shared pass

SIGNAL = ROOT / "benchmarks" / "_signal.py"
SHARED_GRID = {
    "params": {
        "strategy.params.size": [50, 100, 150, 200],
        "execution.slippage.params.bps": [0.5, 1.0, 2.0, 4.0],
    },
    "metric": "sharpe_ratio",
}
SHARED_VARIANTS = (
    "one",
    "shared-16",
    "separate-16",
    "one-wake",
    "shared-16-wake",
    "separate-16-wake",
)
HEADLINE = (250, 252, 12)


def _signal_config(
    n_symbols: int, n_days: int, months: int, *, wake: bool = False
) -> dict[str, Any]:
    """The signal_batch row's config (benchmarks.engine) with the strategy by path and a
    fixed-bps slippage for the grid to vary; ``wake``: its ``wake = "signal"`` form."""
    import msgspec

    from .engine import _config, dataset

    config = msgspec.to_builtins(_config(dataset(n_symbols, n_days), CACHE, months, False))
    config["reporting"]["output_dir"] = None
    config["execution"]["slippage"] = {"model": "fixed_bps", "params": {"bps": 1.0}}
    strategy = "SignalBatchOnSignal" if wake else "SignalBatch"
    config["strategy"] = {"path": str(SIGNAL), "class": strategy, "params": {}}
    return dict(config)


def measure_shared(variant: str, n_symbols: int, n_days: int, months: int) -> dict[str, Any]:
    from ml4t.backtest.config import load_config
    from ml4t.backtest.sweep import LocalExecutor, load_spec, plan_tasks, run_sweep, run_task
    from ml4t.backtest.sweep.plan import base_text

    config = _signal_config(n_symbols, n_days, months, wake=variant.endswith("-wake"))
    out = CACHE / f"out-{variant}"
    shutil.rmtree(out, ignore_errors=True)
    result: dict[str, Any] = {"variant": variant, "symbols": n_symbols, "months": months}
    start = time.perf_counter()
    if variant.startswith("one"):
        base = load_config(config)
        task = plan_tasks(base, load_spec(SHARED_GRID))[0]
        row = run_task(task.payload(base_text(base), out / "runs", "warning"))
        assert row["status"] == "ok", row["error"]
        result.update(runs=1, trades=row["metrics"]["num_trades"])
    else:
        table = run_sweep(
            config,
            SHARED_GRID,
            out_dir=out,
            executor=LocalExecutor(2),
            share_data=variant.startswith("shared"),
        )
        assert table["status"].to_list() == ["ok"] * 16, table["error"].to_list()
        result.update(runs=16, run_s=round(float(table["duration_s"].mean()), 2))
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mb"] = round(_peak_rss_own_or_workers_mb(), 1)
    result["load_1m"] = round(os.getloadavg()[0], 1)
    return result


def _peak_rss_own_or_workers_mb() -> float:
    """The largest of this process (its own high-water mark: ``ru_maxrss`` would carry
    the parent's over the fork) and the pool's workers."""
    import resource

    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(peak_rss_mb(), workers)


def render_shared(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The markdown section of the issue-19 row (``rows``: one per variant; each is set
    beside the ``one`` row of its strategy form)."""
    ones = {
        r["variant"].removeprefix("one"): r["wall_s"]
        for r in rows
        if r["variant"].startswith("one")
    }
    lines = [
        "## Sweeps sharing the data pass: 16 points of the signal strategy (issue 19)",
        "",
        "`python -m benchmarks.sweep --shared` (each variant once, in a fresh child",
        "process). The signal strategy (`signal_batch` of the engine benchmark) over the",
        "headline year (250 symbols x 252 sessions of one-minute bars, 24.5 M bar-events),",
        "a 4x4 grid of entry size x fixed-bps slippage. *one* is one point of the grid",
        "alone (no pool); *shared-16* is `run_sweep(share_data=True)` on 2 workers (two",
        "processes, each reading and validating the data once for its 8 points);",
        "*separate-16* is `run_sweep` on 2 workers, each point reading the data itself.",
        'The *-wake* variants run the same rule declared `wake = "signal"`',
        "(`SignalBatchOnSignal`, the same trades), each set beside *one-wake*. The target",
        "is *shared-16* in at most 4x *one*. Every variant starts with the data's",
        "validation answer in the validation cache (docs/data.md §4).",
        "",
        "| variant | runs | wall s | x one run | mean run s | peak RSS MiB | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        one = ones["-wake" if r["variant"].endswith("-wake") else ""]
        lines.append(
            f"| {r['variant']} | {r['runs']} | {r['wall_s']} | {r['wall_s'] / one:.2f}x | "
            f"{r.get('run_s', r['wall_s'])} | {r['peak_rss_mb']:.0f} | {r['load_1m']} |"
        )
    lines += [
        "",
        "*mean run s* of a shared sweep is each point's own wall time, from its thread's",
        "start to its results written: the points of a pass run side by side in one",
        "process, so each takes about as long as the whole pass. Peak RSS is the largest",
        "single process (a worker holding 8 runs' state beside one data pass). *load* is",
        "the 1-minute load average when the variant finished (2 cores: the figures carry",
        "that noise).",
        "",
        machine_line(info),
    ]
    return "\n".join(lines)


def main_shared(args: argparse.Namespace) -> None:
    size = (args.symbols, args.days, args.months)
    if args.rewrite:
        stored = json.loads(RESULTS.read_text())["sweep-shared"]
        rows, info = stored["rows"], stored["machine"]
    else:
        from .engine import dataset, warm

        dataset(args.symbols, args.days)  # the data once, before any timing
        # every variant finds the data's validation answer cached, as a re-run does
        warm(args.symbols, args.days, args.months)
        rows = []
        for variant in SHARED_VARIANTS:
            rows.append(run_child("benchmarks.sweep", variant, "--shared", *_size_args(size)))
            print(rows[-1], flush=True)
        info = machine()
    text = render_shared(rows, info)
    if size == HEADLINE:
        write_section("sweep-shared", text, {"machine": info, "rows": rows})
        from . import targets

        targets.write()
    print(text)


def _size_args(size: tuple[int, int, int]) -> list[str]:
    return ["--symbols", str(size[0]), "--days", str(size[1]), "--months", str(size[2])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", metavar="VARIANT", choices=VARIANTS + SHARED_VARIANTS)
    parser.add_argument("--shared", action="store_true", help="the issue-19 row")
    parser.add_argument("--symbols", type=int, default=HEADLINE[0], help="with --shared")
    parser.add_argument("--days", type=int, default=HEADLINE[1], help="with --shared")
    parser.add_argument("--months", type=int, default=HEADLINE[2], help="with --shared")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (median)")
    parser.add_argument(
        "--rewrite", action="store_true", help="re-render the section from results.json"
    )
    args = parser.parse_args()
    if args.child and args.shared:
        print(json.dumps(measure_shared(args.child, args.symbols, args.days, args.months)))
        return
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    if args.shared:
        main_shared(args)
        return
    if args.rewrite:
        stored = json.loads(RESULTS.read_text())["sweep"]
        rows, info = stored["rows"], stored["machine"]
    else:
        _config()  # the data once, before any timing
        rows, info = _medians(args.repeat), machine()
    text = render(rows, info)
    write_section("sweep", text, {"machine": info, "rows": rows})
    print(text)


if __name__ == "__main__":
    main()
