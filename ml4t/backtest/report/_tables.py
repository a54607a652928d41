"""The report's static tables: worst drawdowns, monthly returns, rejections by rule.

Small, fixed-size tables are plain HTML, written here from the numbers of ``_panels``:
readable without scripts, and checked by the tests as text. Times are shown in the day
timezone, to the minute.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from ml4t.backtest.report import _panels as panels

__all__ = [
    "NO_PORTFOLIO",
    "NO_TRADES",
    "drawdowns_table",
    "empty",
    "heatmap",
    "rejections_table",
    "time_text",
]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NO_PORTFOLIO = "portfolio.parquet is not in the results (reporting.tables)"
NO_TRADES = "trades.parquet is not in the results (reporting.tables)"


def time_text(column: str, tz: str, fmt: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(tz).dt.strftime(fmt)


def empty(ok: bool, text: str) -> str:
    """An empty-panel note, or nothing when the panel has its data."""
    return "" if ok else f'<p class="empty">{html.escape(text)}</p>'


def _when(ns: int | None, tz: str) -> str:
    if ns is None:
        return "not recovered"
    moment = datetime.fromtimestamp(ns / 1e9, UTC).astimezone(ZoneInfo(tz))
    return moment.strftime("%Y-%m-%d %H:%M")


def _no_states(frame: pl.DataFrame | None) -> str:
    """The note of a panel drawn from the portfolio states, which are absent or empty."""
    return empty(False, NO_PORTFOLIO if frame is None else "no portfolio states recorded")


def drawdowns_table(portfolio: pl.DataFrame | None, tz: str) -> str:
    if portfolio is None or portfolio.height == 0:
        return _no_states(portfolio)
    episodes = panels.worst_drawdowns(
        portfolio.get_column("timestamp").dt.epoch("ns").to_numpy(),
        portfolio.get_column("drawdown").to_numpy(),
    )
    if not episodes:
        return '<p class="empty">the equity never fell below its high-water mark</p>'
    rows = "".join(
        f"<tr><td>{i}</td><td>{_when(d.start, tz)}</td><td>{_when(d.trough, tz)}</td>"
        f"<td>{_when(d.recovery, tz)}</td><td class=neg>{d.depth * 100:.2f}%</td>"
        f"<td>{d.days:,.1f}</td></tr>"
        for i, d in enumerate(episodes, 1)
    )
    return (
        '<table class="grid"><thead><tr><th>#</th><th>Start (peak)</th><th>Trough</th>'
        "<th>Recovery</th><th>Depth</th><th>Length (days)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _percent(value: float) -> str:
    """One decimal, and no "-0.0%" for a loss that rounds to nothing."""
    text = f"{value * 100:.1f}"
    return ("0.0" if text == "-0.0" else text) + "%"


def _heat(value: float, scale: float) -> str:
    t = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    r, g, b = (26, 152, 80) if value >= 0 else (215, 48, 39)

    def mix(c: int) -> int:
        return int(255 + (c - 255) * (0.12 + 0.78 * t))

    ink = "#fff" if t > 0.6 else "#1a202c"
    return f"background:rgb({mix(r)},{mix(g)},{mix(b)});color:{ink}"


def heatmap(days: pl.DataFrame | None, initial: float) -> str:
    if days is None or days.height == 0:
        return _no_states(days)
    months = panels.monthly_returns(days, initial)
    values = months.get_column("return").to_numpy()
    scale = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    cells: dict[tuple[int, int], float] = {}
    totals: dict[int, float] = {}
    for year, month, value in months.iter_rows():
        cells[(year, month)] = value
        totals[year] = (1 + totals.get(year, 0.0)) * (1 + value) - 1
    head = "".join(f"<th>{m}</th>" for m in (*MONTHS, "Year"))
    body = []
    for year in sorted(totals):
        row = [f"<th>{year}</th>"]
        for month in range(1, 13):
            value = cells.get((year, month))
            if value is None or not math.isfinite(value):
                row.append('<td class="cell none"></td>')
            else:
                row.append(
                    f'<td class="cell" style="{_heat(value, scale)}" '
                    f'title="{year}-{month:02d}: {value * 100:.2f}%">{_percent(value)}</td>'
                )
        total = totals[year]
        row.append(
            f'<td class="cell year" style="{_heat(total, max(scale, abs(total)))}" '
            f'title="{year}: {total * 100:.2f}%">{_percent(total)}</td>'
        )
        body.append(f"<tr>{''.join(row)}</tr>")
    return (
        f'<table class="heat"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def rejections_table(orders: pl.DataFrame | None, tz: str) -> str:
    if orders is None:
        return '<p class="empty">orders.parquet is not in the results (reporting.tables)</p>'
    by_rule = panels.rejections(orders)
    if by_rule.height == 0:
        return f'<p class="empty">no order was rejected (of {orders.height:,})</p>'
    total = int(by_rule.get_column("orders").sum())
    by_rule = by_rule.with_columns(time_text(c, tz, "%Y-%m-%d %H:%M") for c in ("first", "last"))
    rows = []
    for r in by_rule.iter_rows(named=True):
        first, last = r["first"] or "", r["last"] or ""
        example = html.escape(r["example"] or "")
        rows.append(
            f'<tr class="first"><td>{html.escape(r["rule"])}</td><td>{r["orders"]:,}</td>'
            f"<td>{r['share']:.1f}%</td><td>{r['symbols']:,}</td><td>{first}</td>"
            f'<td>{last}</td></tr><tr><td class="reason" colspan="6" title="{example}">'
            f"<span>e.g. {example}</span></td></tr>"
        )
    return (
        f'<p class="note">{total:,} of {orders.height:,} orders rejected</p>'
        '<table class="grid"><thead><tr><th>Rule</th><th>Orders</th><th>Share</th>'
        "<th>Symbols</th><th>First</th><th>Last</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
