"""The targets table of docs/performance.md (DESIGN §9, issue 19), from the figures the
other benchmarks stored in benchmarks/results.json: it measures nothing itself.

Each target is stated as a ratio or a bound; the table puts the measured figure, its
ratio to the bound and the section (and date) it comes from side by side. A target whose
benchmark has not run yet says so. Every benchmark that feeds a row rewrites this table
when it finishes; ``python -m benchmarks.targets`` rewrites it alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from ._harness import RESULTS, write_section


class Target(NamedTuple):
    name: str
    bound: float
    at_most: bool  # the figure must be <= bound (else >=)
    unit: str
    read: Callable[[dict[str, Any]], tuple[float, str, str] | None]
    """(figure, what it is made of, source) from results.json, or None if not measured."""


def _date(section: dict[str, Any]) -> str:
    return str(section.get("machine", {}).get("date", "?"))


def _vectorbt(key: str, detail: Callable[[dict[str, Any]], str]) -> Any:
    def read(results: dict[str, Any]) -> tuple[float, str, str] | None:
        section = results.get("vs-vectorbt", {})
        stats = section.get("summary")
        if not stats or key not in stats:
            return None
        return stats[key], detail(stats), f"vs-vectorbt, {_date(section)}"

    return read


def _engine(row: str, key: str, detail: Callable[[dict[str, Any]], str]) -> Any:
    def read(results: dict[str, Any]) -> tuple[float, str, str] | None:
        section = results.get("engine", {})
        r = section.get("rows", {}).get(row)
        if r is None or r.get(key) is None:
            return None
        return float(r[key]), detail(r), f"engine `{row}`, {_date(section)}"

    return read


def _scale(key: str, detail: Callable[[dict[str, Any]], str], symbols: int = 3000) -> Any:
    def read(results: dict[str, Any]) -> tuple[float, str, str] | None:
        section = results.get("scale", {})
        r = section.get("rows", {}).get(f"s{symbols}_m12")
        if r is None:
            return None
        if key == "growth":
            check = next((c for c in section.get("flat", []) if c["symbols"] == symbols), None)
            if check is None:
                return None
            return check["growth"] * 100, detail(check), f"scale, {r['date']}"
        return float(r[key]), detail(r), f"scale `s{symbols}_m12`, {r['date']}"

    return read


def _sweep_shared(results: dict[str, Any]) -> tuple[float, str, str] | None:
    """The 16-point shared sweep's wall time over one run's (benchmarks.sweep --shared)."""
    return _sweep_ratio(results, "")


def _sweep_shared_wake(results: dict[str, Any]) -> tuple[float, str, str] | None:
    """The same for the ``wake = "signal"`` form of the strategy."""
    return _sweep_ratio(results, "-wake")


def _sweep_ratio(results: dict[str, Any], suffix: str) -> tuple[float, str, str] | None:
    section = results.get("sweep-shared", {})
    rows = {r["variant"]: r for r in section.get("rows", [])}
    one, shared = rows.get(f"one{suffix}"), rows.get(f"shared-16{suffix}")
    if one is None or shared is None:
        return None
    detail = f"{shared['wall_s']} s vs one run {one['wall_s']} s"
    return shared["wall_s"] / one["wall_s"], detail, f"sweep-shared, {_date(section)}"


def _flat_250(results: dict[str, Any]) -> tuple[float, str, str] | None:
    section = results.get("engine", {})
    rows = section.get("rows", {})
    quarter, year = rows.get("scale_m3"), rows.get("scale_m12")
    if quarter is None or year is None:
        return None
    growth = (year["peak_rss_mb"] / quarter["peak_rss_mb"] - 1) * 100
    detail = f"{quarter['peak_rss_mb']} MiB (3 months) -> {year['peak_rss_mb']} MiB (12)"
    return growth, detail, f"engine `scale_m3`, `scale_m12`, {_date(section)}"


TARGETS = [
    Target(
        "batch signal strategy, end to end, vs vectorbt load + simulate",
        0.7,
        True,
        "x",
        _vectorbt(
            "time_ratio",
            lambda s: f"{s['signal_batch']['wall_s']} s vs {s['vectorbt']['wall_s']} s",
        ),
    ),
    Target(
        "... its peak RSS vs vectorbt's",
        1 / 3,
        True,
        "x",
        _vectorbt(
            "memory_ratio",
            lambda s: (
                f"{s['signal_batch']['peak_rss_mb']:.0f} MiB vs "
                f"{s['vectorbt']['peak_rss_mb']:.0f} MiB"
            ),
        ),
    ),
    Target(
        "the same rule through `Strategy.on_bar` vs the batch API",
        2.0,
        True,
        "x",
        _vectorbt(
            "per_bar_ratio",
            lambda s: f"{s['signal_per_bar']['wall_s']} s vs {s['signal_batch']['wall_s']} s",
        ),
    ),
    Target(
        'batch signal strategy with `wake = "signal"`, vs vectorbt load + simulate',
        0.7,
        True,
        "x",
        _vectorbt(
            "wake_time_ratio",
            lambda s: f"{s['signal_batch_wake']['wall_s']} s vs {s['vectorbt']['wall_s']} s",
        ),
    ),
    Target(
        '`Strategy.on_bar` vs the batch API, both `wake = "signal"`',
        2.0,
        True,
        "x",
        _vectorbt(
            "wake_per_bar_ratio",
            lambda s: (
                f"{s['signal_per_bar_wake']['wall_s']} s vs {s['signal_batch_wake']['wall_s']} s"
            ),
        ),
    ),
    Target(
        "framework overhead: run loop, bar-events/s (M)",
        10.0,
        False,
        "M/s",
        lambda r: _scaled(
            _engine("overhead", "loop_events_per_s", lambda x: "do-nothing batch strategy")(r)
        ),
    ),
    Target(
        "framework overhead: the headline year end to end",
        3.0,
        True,
        "s",
        _engine(
            "overhead", "wall_s", lambda r: f"{r['bar_events']:,} bar-events, validation cached"
        ),
    ),
    Target(
        "... the same, first run (every row validated)",
        3.0,
        True,
        "s",
        _engine("overhead_cold", "wall_s", lambda r: "empty validation cache"),
    ),
    Target(
        'framework overhead, the do-nothing strategy `wake = "signal"`: bar-events/s (M)',
        10.0,
        False,
        "M/s",
        lambda r: _scaled(
            _engine("overhead_wake", "loop_events_per_s", lambda x: "quiet spans, every role")(r)
        ),
    ),
    Target(
        "... the same, the headline year end to end",
        3.0,
        True,
        "s",
        _engine(
            "overhead_wake",
            "wall_s",
            lambda r: f"{r['bar_events']:,} bar-events, validation cached",
        ),
    ),
    Target(
        "framework overhead: first event after start",
        1.0,
        True,
        "s",
        _engine(
            "overhead",
            "first_event_s",
            lambda r: "engine built to first batch recorded, validation cached",
        ),
    ),
    Target(
        "... the same, first run (every row validated)",
        1.0,
        True,
        "s",
        _engine("overhead_cold", "first_event_s", lambda r: "empty validation cache"),
    ),
    Target(
        "the proposal's top-25 strategy as written, end to end",
        15.0,
        True,
        "s",
        _engine("headline", "wall_s", lambda r: f"{r['trades']:,} trades, costs, HTML report"),
    ),
    Target(
        "... the same rule as polars expressions (`MLTop25Expr`)",
        15.0,
        True,
        "s",
        _engine("headline_expr", "wall_s", lambda r: f"{r['trades']:,} trades, as above"),
    ),
    Target(
        "peak RSS, 250 symbols, 12 months vs 3 (flat in days), growth %",
        20.0,
        True,
        "%",
        _flat_250,
    ),
    Target(
        "sweep: 16 points of the signal strategy, shared data pass, 2 cores, vs one run",
        4.0,
        True,
        "x",
        _sweep_shared,
    ),
    Target(
        '... the same, the strategy `wake = "signal"`',
        4.0,
        True,
        "x",
        _sweep_shared_wake,
    ),
    Target(
        "scale: 3,000 symbols x 252 sessions, peak RSS",
        2048.0,
        True,
        "MiB",
        _scale("peak_rss_mb", lambda r: f"{r['bar_events']:,} bar-events in {r['wall_s']} s"),
    ),
    Target(
        "scale: 3,000 symbols, 12 months vs 3 (flat in days), growth %",
        20.0,
        True,
        "%",
        _scale("growth", lambda c: "peak RSS"),
    ),
]


def _scaled(found: tuple[float, str, str] | None) -> tuple[float, str, str] | None:
    if found is None:
        return None
    value, detail, source = found
    return round(value / 1e6, 2), detail, source


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if unit == "%":
        return f"{value:+.1f} %"
    return f"{value:g} {unit}"


def render(results: dict[str, Any]) -> str:
    lines = [
        "## Targets (DESIGN §9, issue 19) against the figures below",
        "",
        "Written by `python -m benchmarks.targets` from `benchmarks/results.json` (every",
        "benchmark that feeds a row rewrites it when it finishes). *Ratio to bound* is the",
        "figure over the bound for an upper bound (<= 1 is met) and the bound over the",
        "figure for a lower bound. The sweep target (16 points in <= 4x one run) comes",
        "from `benchmarks.sweep --shared`, in its own section.",
        "",
        "| target | bound | measured | ratio to bound | status | from |",
        "|---|---:|---:|---:|---|---|",
    ]
    for t in TARGETS:
        found = t.read(results)
        sign = "<=" if t.at_most else ">="
        bound = f"{sign} {_fmt(t.bound, t.unit)}"
        if found is None:
            lines.append(f"| {t.name} | {bound} | not measured yet | | | |")
            continue
        value, detail, source = found
        ratio = value / t.bound if t.at_most else t.bound / value if value else float("inf")
        met = value <= t.bound if t.at_most else value >= t.bound
        lines.append(
            f"| {t.name} | {bound} | {_fmt(value, t.unit)} ({detail}) | {ratio:.2f} | "
            f"{'met' if met else 'not met'} | {source} |"
        )
    return "\n".join(lines)


def write() -> str:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    text = render(results)
    write_section("targets", text, {"rows": [t.name for t in TARGETS]})
    return text


if __name__ == "__main__":
    print(write())
