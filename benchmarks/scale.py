"""Scale: the signal strategy over a whole year of 500, 1,000 and (``--big``) 3,000 symbols.

Each data set is 252 NYSE sessions of one-minute bars for that many symbols, generated
to disk once by :func:`ml4t.backtest.data.synthetic.write_dataset` (one lz4 parquet file
per month for each of asset, signals and context; about 6 MB per symbol-year) and cached
under ``benchmarks/.cache/s<N>_d252`` with a ``DONE`` marker: an interrupted generation
starts that set again, a finished one is never redone. The 3,000-symbol set is 295 M rows
(about 18 GB, some 3-6 minutes and 9 GB of memory to generate, one month at a time), so
it only runs with ``--big``.

Every row is the ``signal_batch`` run of :mod:`benchmarks.engine` (batch API, full graph,
recorder writing parquet) in a fresh child process. *Flat in days* runs the widest
universe of the run over 3 months as well: its peak RSS must be within 20 % of the
year's. Rows of sizes not measured this time (3,000 without ``--big``) are kept from the
last run that measured them, with their date.

    python -m benchmarks.scale [--big]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import targets
from ._harness import RESULTS, machine, machine_line, run_child, write_section
from .engine import dataset, warm

SIZES = (500, 1000)
BIG = 3000
DAYS = 252
CHILD_TIMEOUT_S = 7200
"""One row may take this long: the 3,000-symbol year ran over 30 minutes on a busy machine."""
FLAT_LIMIT = 0.20
"""Peak RSS over 12 months may exceed that over 3 months by at most this fraction."""


def disk_gb(root: Path) -> float:
    return round(sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e9, 1)


def generated_s(root: Path) -> float | None:
    seconds = json.loads((root / "DONE").read_text()).get("seconds")
    return round(seconds, 1) if seconds is not None else None


def measure(symbols: int, months: int) -> dict[str, Any]:
    root = dataset(symbols, DAYS)
    row = run_child(
        "benchmarks.engine",
        "signal_batch",
        str(symbols),
        str(DAYS),
        str(months),
        timeout=CHILD_TIMEOUT_S,
    )
    timestamps = row["bar_events"] / symbols
    row.update(
        us_per_timestamp=round(row["wall_s"] / timestamps * 1e6, 1),
        disk_gb=disk_gb(root),
        generate_s=generated_s(root),
        date=machine()["date"],
    )
    return row


def flat(rows: dict[str, dict[str, Any]], symbols: int) -> dict[str, Any] | None:
    year, quarter = rows.get(f"s{symbols}_m12"), rows.get(f"s{symbols}_m3")
    if year is None or quarter is None:
        return None
    growth = year["peak_rss_mb"] / quarter["peak_rss_mb"] - 1.0
    return {"symbols": symbols, "growth": round(growth, 3), "flat": growth < FLAT_LIMIT}


def render(rows: dict[str, dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        "## Scale: the signal strategy over a year of 500 to 3,000 symbols",
        "",
        "`python -m benchmarks.scale` (500 and 1,000 symbols; `--big` adds 3,000: generating",
        "its 295 M rows takes minutes and ~18 GB of disk). Each row is `signal_batch` (batch",
        "API, full graph, recorder writing parquet) in a fresh child process over 252",
        "sessions of one-minute bars read from monthly lz4 parquet files; *wall* runs from",
        "building the engine to the results written, the data's validation answered by",
        "the validation cache (filled by a child run beforehand, as on a re-run).",
        "",
        "| symbols | months | bar-events | wall s | us / timestamp | loop events/s "
        "| first event s | peak RSS MiB | trades | data on disk GB | generated in s | measured |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(rows.values(), key=lambda r: (r["symbols"], r["months"])):
        lines.append(
            f"| {r['symbols']:,} | {r['months']} | {r['bar_events']:,} | {r['wall_s']} | "
            f"{r['us_per_timestamp']} | {r['loop_events_per_s']:,} | {r['first_event_s']} | "
            f"{r['peak_rss_mb']} | {r['trades']:,} | {r['disk_gb']} | {r['generate_s']} | "
            f"{r['date']} |"
        )
    lines.append("")
    for symbols in sorted({r["symbols"] for r in rows.values()}):
        check = flat(rows, symbols)
        if check is not None:
            verdict = "flat" if check["flat"] else "NOT flat"
            lines.append(
                f"Flat in days at {symbols:,} symbols: peak RSS over 12 months is "
                f"{check['growth']:+.1%} of that over 3 months ({verdict}: the limit is "
                f"+{FLAT_LIMIT:.0%})."
            )
    lines += ["", machine_line(info)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", action="store_true", help=f"add {BIG:,} symbols")
    args = parser.parse_args()
    sizes = [*SIZES, BIG] if args.big else list(SIZES)
    for symbols in sizes:
        dataset(symbols, DAYS)  # generated (or found) outside the timed children
    stored = json.loads(RESULTS.read_text()).get("scale", {}) if RESULTS.exists() else {}
    rows: dict[str, dict[str, Any]] = dict(stored.get("rows", {}))
    runs = [(s, 12) for s in sizes] + [(sizes[-1], 3)]
    for symbols, months in runs:
        name = f"s{symbols}_m{months}"
        warm(symbols, DAYS, months)  # the validation cache holds the answer, as on a re-run
        rows[name] = measure(symbols, months)
        print(name, rows[name], flush=True)
        save(rows)  # each row as soon as it is measured: a long run keeps what it did
    print(render(rows, machine()))


def save(rows: dict[str, dict[str, Any]]) -> None:
    info = machine()
    checks = [c for s in sorted({r["symbols"] for r in rows.values()}) if (c := flat(rows, s))]
    write_section("scale", render(rows, info), {"machine": info, "rows": rows, "flat": checks})
    targets.write()


if __name__ == "__main__":
    main()
