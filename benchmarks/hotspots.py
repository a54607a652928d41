"""Where the time per timestamp goes: cProfile of an engine row over the headline year.

Runs ``python -m cProfile -o PROF -m benchmarks.engine --child STRATEGY 250 252 12`` in a
fresh child (and the same row without the profiler, for the real wall time), then reads
the profile with :mod:`pstats`:

- the top functions by own time (``tottime``), in microseconds per timestamp (the year
  has 97,920 timestamps of 250 rows);
- the same time by area of the graph. Time spent inside a library (polars, numpy, the
  interpreter's builtins) is charged to the ml4t or benchmark code that called it, split
  over its callers in proportion to the time each call took (cProfile keeps that per
  caller), so "strategy" includes the polars calls the strategy makes.

The profiler slows Python-level calls more than time spent in C, so the *profiled*
microseconds overstate Python work; *scaled* spreads the unprofiled wall time over the
areas in the profile's proportions (an estimate, not a measurement).

    python -m benchmarks.hotspots [--strategy signal_batch nothing]
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from ._harness import ROOT, machine, machine_line, run_child, write_section
from .engine import dataset, warm

Func = tuple[str, int, str]

AREAS: list[tuple[str, str]] = [
    # (path fragment, area): the first match wins
    ("ml4t/backtest/data/validation", "data validation (before the first event)"),
    ("ml4t/backtest/_validation", "data validation (before the first event)"),
    ("ml4t/backtest/data/_timeline", "feed planning (before the first event)"),
    # every parquet read of the feed goes through Source.collect: chunks, signals,
    # context, and the planning scans before the first event
    ("ml4t/backtest/data/_source", "feed: parquet reads (chunks, signals, context, scans)"),
    ("ml4t/backtest/data/", "feed: per-timestamp slices and context"),
    ("ml4t/backtest/_universe", "feed: per-timestamp slices and context"),
    ("ml4t/backtest/execution/", "broker"),
    ("ml4t/backtest/portfolio", "portfolio"),
    ("ml4t/backtest/_accounting", "portfolio"),
    ("ml4t/backtest/risk/", "risk manager"),
    ("ml4t/backtest/record/outputs", "recorder: writing results"),
    ("ml4t/backtest/record/metrics", "recorder: writing results"),
    ("ml4t/backtest/metrics", "recorder: writing results"),
    ("ml4t/backtest/report", "recorder: writing results"),
    ("ml4t/backtest/record/", "recorder: per-timestamp tables, lots"),
    ("ml4t/backtest/strategy", "strategy base (batch_positions, orders)"),
    ("ml4t/backtest/_bar", "strategy base (batch_positions, orders)"),
    ("benchmarks/", "strategy: the user's on_timestamp / on_bar"),
    ("ml4t/backtest/bus", "bus, runtime, dispatch"),
    ("ml4t/backtest/runtime", "bus, runtime, dispatch"),
    ("ml4t/backtest/component", "bus, runtime, dispatch"),
    ("ml4t/backtest/_dispatch", "bus, runtime, dispatch"),
    ("ml4t/backtest/clock", "bus, runtime, dispatch"),
    ("ml4t/backtest/events", "bus, runtime, dispatch"),
    ("ml4t/backtest/", "engine, config, other ml4t"),
]
TOP = 15


def area_of(func: Func) -> str | None:
    """The area of an ml4t or benchmark function; None for library code."""
    path = func[0].replace("\\", "/")
    if "/site-packages/" in path or path.startswith(("~", "<")):
        return None
    return next((area for fragment, area in AREAS if fragment in path), None)


def short(func: Func) -> str:
    path, line, name = func
    if path == "~":
        return name
    path = path.replace("\\", "/")
    for cut in ("/site-packages/", "/wt-bench/", str(ROOT) + "/"):
        if cut in path:
            path = path.split(cut, 1)[1]
    return f"{path}:{line}({name})"


UNCHARGED = "library, no ml4t caller (interpreter, imports, threads)"


def by_area(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per area, library time charged to its ml4t callers."""
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    owners: dict[Func, dict[str, float]] = {}  # library function -> area -> fraction
    busy: set[Func] = set()

    def split(func: Func) -> dict[str, float]:
        area = area_of(func)
        if area is not None:
            return {area: 1.0}
        if func in owners:
            return owners[func]
        if func in busy:  # a cycle of library calls: leave it uncharged
            return {UNCHARGED: 1.0}
        busy.add(func)
        callers = table[func][4] if func in table else {}
        total = sum(c[3] for c in callers.values())
        out: dict[str, float] = defaultdict(float)
        if not callers or total <= 0:
            out[UNCHARGED] = 1.0
            callers = {}
        for caller, c in callers.items():
            for name, fraction in split(caller).items():
                out[name] += fraction * c[3] / total
        busy.discard(func)
        owners[func] = dict(out)
        return owners[func]

    seconds: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tottime, _ct, _callers) in table.items():
        for name, fraction in split(func).items():
            seconds[name] += tottime * fraction
    return dict(seconds)


def profile(strategy: str) -> dict[str, Any]:
    """Profile one engine row over the headline year, and run it once without."""
    dataset(250, 252)
    warm(250, 252, 12)
    plain = run_child("benchmarks.engine", strategy, "250", "252", "12")
    with tempfile.TemporaryDirectory(prefix="ml4t-prof-") as tmp:
        out = Path(tmp) / "run.prof"
        child = ["--child", strategy, "250", "252", "12"]
        proc = subprocess.run(
            [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "benchmarks.engine", *child],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"profiled run of {strategy} failed:\n{proc.stderr[-4000:]}")
        stats = pstats.Stats(str(out))
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    timestamps = plain["bar_events"] / plain["symbols"]
    profiled_s = float(stats.total_tt)  # type: ignore[attr-defined]
    top = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP]
    return {
        "strategy": strategy,
        "timestamps": int(timestamps),
        "wall_s": plain["wall_s"],
        "profiled_s": round(profiled_s, 2),
        "top": [
            {
                "function": short(func),
                "calls": nc,
                "calls_per_timestamp": round(nc / timestamps, 2),
                "tottime_s": round(tt, 2),
                "us_per_timestamp": round(tt / timestamps * 1e6, 2),
            }
            for func, (_cc, nc, tt, _ct, _callers) in top
        ],
        "areas": {
            area: round(s, 3) for area, s in sorted(by_area(stats).items(), key=lambda x: -x[1])
        },
    }


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    names = " ".join(r["strategy"] for r in rows)
    lines = [
        "## Where the time goes: cProfile of the headline year",
        "",
        f"`python -m benchmarks.hotspots --strategy {names}` (each run a fresh child under",
        "`python -m cProfile`, plus one without it for the real wall time; 97,920",
        "timestamps of 250 symbols). *Profiled* is microseconds per timestamp under the",
        "profiler; *scaled* spreads the unprofiled wall time over the areas in the",
        "profile's proportions. Library time (polars, numpy, builtins) is charged to the",
        "ml4t code that called it.",
    ]
    for r in rows:
        n, wall, prof = r["timestamps"], r["wall_s"], r["profiled_s"]
        lines += [
            "",
            f"### `{r['strategy']}`: {wall} s without the profiler "
            f"({wall / n * 1e6:.0f} us per timestamp), {prof} s under it",
            "",
            "| area | profiled s | profiled us / timestamp | share | scaled us / timestamp |",
            "|---|---:|---:|---:|---:|",
        ]
        for area, s in r["areas"].items():
            share = s / prof if prof else 0.0
            lines.append(
                f"| {area} | {s:.2f} | {s / n * 1e6:.1f} | {share:.1%} | "
                f"{share * wall / n * 1e6:.1f} |"
            )
        lines += [
            "",
            f"Top {TOP} functions by own time (profiled):",
            "",
            "| function | calls | calls / timestamp | own s | us / timestamp |",
            "|---|---:|---:|---:|---:|",
        ]
        for f in r["top"]:
            lines.append(
                f"| `{f['function']}` | {f['calls']:,} | {f['calls_per_timestamp']} | "
                f"{f['tottime_s']} | {f['us_per_timestamp']} |"
            )
    lines += ["", machine_line(info)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", nargs="+", default=["signal_batch", "nothing"])
    args = parser.parse_args()
    rows = [profile(s) for s in args.strategy]
    info = machine()
    text = render(rows, info)
    write_section("profile", text, {"machine": info, "rows": rows})
    print(text)


if __name__ == "__main__":
    main()
