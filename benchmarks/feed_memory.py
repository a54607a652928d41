"""Peak memory of ParquetFeed is flat in the number of days: 3 months vs 1 year.

Each range streams the headline universe (250 symbols, 1m bars, 3 signals, 3
indicators, 2 context fields) through a validating feed to a no-op subscriber in a fresh
child process, which reports its own peak RSS (VmHWM). The two peaks must differ by
less than 20%.

    .venv/bin/python -m benchmarks.feed_memory [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from benchmarks._feeddata import (
    headline_dataset,
    machine,
    peak_rss_mb,
    run_child,
    today,
    write_section,
)

COMMAND = ".venv/bin/python -m benchmarks.feed_memory --write-docs"
RANGES = {"3 months": ("2023-01-03", "2023-03-31"), "1 year": ("2023-01-03", "2024-01-04")}


def child(start: str, end: str) -> None:
    from ml4t.backtest import Component, MarketBatch, Runtime, on
    from ml4t.backtest.data import AssetSourceConfig, ContextSourceConfig, FeedConfig, ParquetFeed
    from ml4t.backtest.data.synthetic import CONTEXT, INDICATORS, SIGNALS
    from ml4t.backtest.topics import MARKET

    class Sink(Component):
        @on(MARKET)
        def bar(self, batch: MarketBatch) -> None:
            pass

    root, _ = headline_dataset()
    cfg = FeedConfig(
        asset=AssetSourceConfig(
            path=str(root / "asset"), signals=list(SIGNALS), indicators=list(INDICATORS)
        ),
        context=ContextSourceConfig(path=str(root / "context"), fields=list(CONTEXT)),
        start=start,
        end=end,
    )
    t0 = time.perf_counter()
    runtime = Runtime()
    feed = runtime.add(ParquetFeed(cfg))
    runtime.add(Sink())
    runtime.run_sync()
    print(
        json.dumps(
            {
                "rows": feed.rows_published,
                "seconds": time.perf_counter() - t0,
                "peak_rss_mb": peak_rss_mb(),
                "chunks": feed.report.chunks if feed.report else 0,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("START", "END"), help=argparse.SUPPRESS)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    headline_dataset()
    results = {name: run_child("benchmarks.feed_memory", *rng) for name, rng in RANGES.items()}
    small, big = results["3 months"]["peak_rss_mb"], results["1 year"]["peak_rss_mb"]
    growth = (big - small) / small  # type: ignore[operator]
    rows = [
        f"| {name} | {r['rows']:,} | {r['chunks']} | {r['seconds']:.1f} s "
        f"| {r['peak_rss_mb']:.0f} MiB |"
        for name, r in results.items()
    ]
    verdict = "PASS" if abs(growth) < 0.20 else "FAIL"
    body = "\n".join(
        [
            f"`{COMMAND}`, {today()}, {machine()}.",
            "",
            "Validating feed (default config, `chunk_memory_mb: 256`) over the headline "
            "universe, one fresh child process per range; peak RSS is the child's own VmHWM "
            "(whole process: "
            "interpreter, polars, pandas_market_calendars and the feed).",
            "",
            "| range | rows | chunks | wall time | peak RSS |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"1 year vs 3 months: {growth:+.1%} ({verdict}: must differ by less than 20%).",
        ]
    )
    if args.write_docs:
        write_section("Memory is flat in the number of days (benchmarks/feed_memory.py)", body)
    print(body)
    if verdict == "FAIL":
        sys.exit(1)


if __name__ == "__main__":
    main()
