"""The report page: static HTML for the tables, one JSON payload for the charts.

Tables whose size is known and small (metrics, worst drawdowns, monthly returns,
rejections) are HTML (``_metrics``, ``_tables``), readable even with scripts off. The
charts and the two large tables (per-symbol P&L, every trade) are drawn in the browser by
``assets/report.js`` from the payload in ``<script id="report-data">``: charts with the
vendored uPlot, tables with a small virtual-scrolling table of our own. Every script and
style is inlined, so the file opens offline and fetches nothing.
"""

from __future__ import annotations

import html
import math
from functools import cache
from importlib import resources
from typing import Any

import msgspec
import numpy as np
import polars as pl

from ml4t.backtest.report import _panels as panels
from ml4t.backtest.report._inputs import BENCHMARK_FILE, ReportInputs
from ml4t.backtest.report._metrics import metrics_panel
from ml4t.backtest.report._tables import (
    NO_PORTFOLIO,
    NO_TRADES,
    drawdowns_table,
    empty,
    heatmap,
    rejections_table,
    time_text,
)

__all__ = ["UPLOT_VERSION", "render_page"]

UPLOT_VERSION = "1.6.32"  # assets/vendor: npm's uplot, as published (see its README)
TIMELINE_BUCKETS = 1500  # each keeps every plotted column's min and max: dips stay visible
SCATTER_POINTS = 10_000
PLOTTED = ("equity", "drawdown", "gross_leverage", "net_leverage")  # portfolio columns


@cache
def asset(name: str) -> str:
    return resources.files("ml4t.backtest.report").joinpath("assets", name).read_text("utf-8")


def render_page(inputs: ReportInputs, *, rolling_window: int = 63) -> str:
    """The whole HTML document for ``inputs``."""
    tz = inputs.day_timezone
    portfolio = inputs.portfolio
    initial = inputs.initial_equity or 1.0
    days = panels.daily_closes(portfolio, tz) if portfolio is not None else None
    payload: dict[str, Any] = {"tz": tz, "rolling_window": rolling_window}
    payload["timeline"] = _timeline(portfolio, days, inputs.benchmark, initial)
    payload["rolling"] = _rolling(inputs, days, payload["timeline"], rolling_window)
    closed = _closed(inputs.trades)
    payload["histogram"] = _histogram(closed)
    payload["scatter"] = _scatter(closed)
    payload["symbols"] = _symbols_table(closed)
    payload["trades"] = _trades_table(inputs.trades, tz)
    data = msgspec.json.encode(payload).replace(b"<", b"\\u003c").decode()
    return _TEMPLATE.format(
        title=html.escape(_title(inputs.metrics)),
        meta=_meta(inputs, closed),
        status=_status(inputs.manifest),
        metrics=metrics_panel(inputs.metrics),
        benchmark_note=_benchmark_note(inputs),
        rolling_window=rolling_window,
        no_portfolio=empty(payload["timeline"] is not None, _no_timeline(portfolio)),
        no_rolling=empty(payload["rolling"] is not None, _no_rolling(days, rolling_window)),
        no_trades=empty(inputs.trades is not None, NO_TRADES),
        no_closed=empty(closed is not None and closed.height > 0, _no_closed(inputs.trades)),
        drawdowns=drawdowns_table(portfolio, tz),
        heatmap=heatmap(days, initial),
        rejections=rejections_table(inputs.orders, tz),
        data=data,
        styles=asset("vendor/uPlot.min.css") + asset("report.css"),
        uplot_version=UPLOT_VERSION,
        license=asset("vendor/uPlot.LICENSE").replace("*/", "* /"),
        uplot=asset("vendor/uPlot.iife.min.js"),
        script=asset("report.js"),
    )


# ------------------------------------------------------------------------ payload


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    out = np.round(np.asarray(values, dtype=np.float64), digits)
    return [None if not math.isfinite(v) else v for v in out.tolist()]


def _seconds(ns: np.ndarray) -> list[float]:
    return np.round(np.asarray(ns, dtype=np.int64) / 1e9, 3).tolist()


def _timeline(
    portfolio: pl.DataFrame | None,
    days: pl.DataFrame | None,
    benchmark: pl.DataFrame | None,
    initial: float,
) -> dict[str, Any] | None:
    if portfolio is None or days is None or portfolio.height < 2:
        return None
    columns = [portfolio.get_column(c).to_numpy() for c in PLOTTED]
    day_rows = days.get_column("row").to_numpy()
    idx = panels.thin(columns, TIMELINE_BUCKETS, keep=day_rows)
    ts = portfolio.get_column("timestamp").dt.epoch("ns").to_numpy()
    out: dict[str, Any] = {"t": _seconds(ts[idx])}
    for name, column, digits in zip(PLOTTED, columns, (2, 6, 4, 4), strict=True):
        out[name] = _rounded(column[idx], digits)
    if benchmark is not None:
        values = panels.benchmark_equity(benchmark, days.get_column("date"), initial)
        series: list[float | None] = [None] * idx.size
        for pos, value in zip(np.searchsorted(idx, day_rows), values.tolist(), strict=True):
            series[int(pos)] = round(value, 2)
        out["benchmark"] = series
    return out


def _rolling(
    inputs: ReportInputs,
    days: pl.DataFrame | None,
    timeline: dict[str, Any] | None,
    window: int,
) -> dict[str, Any] | None:
    if days is None or timeline is None or days.height < window:
        return None
    returns = panels.daily_returns(
        days.get_column("equity").to_numpy(), inputs.initial_equity or 1.0
    )
    sharpe, vol = panels.rolling_stats(
        returns, window, inputs.periods_per_year, inputs.risk_free_rate
    )
    t = _seconds(days.get_column("timestamp").dt.epoch("ns").to_numpy())
    head = [timeline["t"][0]] if timeline["t"][0] < t[0] else []  # the same time axis
    pad: list[float | None] = [None] * len(head)
    return {
        "t": head + t,
        "sharpe": pad + _rounded(sharpe, 4),
        "volatility": pad + _rounded(vol, 6),
    }


def _closed(trades: pl.DataFrame | None) -> pl.DataFrame | None:
    return trades.filter(pl.col("pnl_net").is_not_null()) if trades is not None else None


def _histogram(closed: pl.DataFrame | None) -> dict[str, Any] | None:
    if closed is None or closed.height == 0:
        return None
    counts, edges = panels.histogram(closed.get_column("pnl_net").to_numpy())
    if counts.size == 0:
        return None
    centers = (edges[:-1] + edges[1:]) / 2
    wins = np.where(centers >= 0, counts, 0)
    return {
        "edges": _rounded(edges, 2),
        "centers": _rounded(centers, 2),
        "wins": [int(c) if c else None for c in wins.tolist()],
        "losses": [int(c) if c and w == 0 else None for c, w in zip(counts, wins, strict=True)],
    }


def _scatter(closed: pl.DataFrame | None) -> dict[str, Any] | None:
    if closed is None or closed.height == 0:
        return None
    step = closed.height // SCATTER_POINTS + 1
    sample = closed.gather_every(step).sort("max_adverse_pct", maintain_order=True)
    win = (sample.get_column("pnl_net") > 0).to_numpy()
    mfe = sample.get_column("max_favorable_pct").to_numpy()
    return {
        "step": step,
        "mae": _rounded(sample.get_column("max_adverse_pct").to_numpy(), 3),
        "winners": _rounded(np.where(win, mfe, np.nan), 3),
        "losers": _rounded(np.where(win, np.nan, mfe), 3),
        "trade": sample.get_column("trade_id").to_list(),
        "symbol": sample.get_column("symbol").cast(pl.String).to_list(),
        "pnl": _rounded(sample.get_column("pnl_net").to_numpy(), 2),
    }


def _spec(frame: pl.DataFrame, columns: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    data: dict[str, list[Any]] = {}
    for key, _, kind in columns:
        series = frame.get_column(key)
        if kind in ("text", "time"):
            data[key] = series.cast(pl.String).to_list()
        else:
            digits = {"money": 2, "price": 4, "pct": 2, "qty": 4, "int": 0}[kind]  # as shown
            data[key] = _rounded(series.cast(pl.Float64).to_numpy(), digits)
    return {
        "rows": frame.height,
        "columns": [{"key": k, "label": label, "kind": kind} for k, label, kind in columns],
        "data": data,
    }


TRADE_TABLE = (
    ("trade_id", "Trade", "text"),
    ("symbol", "Symbol", "text"),
    ("side", "Side", "text"),
    ("entry_timestamp", "Entry", "time"),
    ("exit_timestamp", "Exit", "time"),
    ("quantity", "Qty", "qty"),
    ("entry_price", "Entry price", "price"),
    ("exit_price", "Exit price", "price"),
    ("pnl_net", "Net P&L", "money"),
    ("pnl_percent", "Net %", "pct"),
    ("total_cost", "Costs", "money"),
    ("holding_period_bars", "Bars", "int"),
    ("exit_reason", "Exit reason", "text"),
    ("max_favorable_pct", "MFE %", "pct"),
    ("max_adverse_pct", "MAE %", "pct"),
)
SYMBOL_TABLE = (
    ("symbol", "Symbol", "text"),
    ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("pnl_net", "Net P&L", "money"),
    ("pnl_gross", "Gross P&L", "money"),
    ("costs", "Costs", "money"),
    ("average_pnl", "Avg net P&L", "money"),
    ("best", "Best", "money"),
    ("worst", "Worst", "money"),
)


def _time_format(frame: pl.DataFrame, columns: tuple[str, ...]) -> str:
    """Minutes, or seconds when any time in ``columns`` has them."""
    seconds = frame.select(
        pl.any_horizontal((pl.col(c).dt.second() != 0).any() for c in columns)
    ).item()
    return "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"


def _trades_table(trades: pl.DataFrame | None, tz: str) -> dict[str, Any] | None:
    if trades is None:
        return None
    times = ("entry_timestamp", "exit_timestamp")
    fmt = _time_format(trades, times) if trades.height else "%Y-%m-%d %H:%M"
    frame = trades.with_columns(time_text(c, tz, fmt) for c in times)
    return _spec(frame, TRADE_TABLE)


def _symbols_table(closed: pl.DataFrame | None) -> dict[str, Any] | None:
    if closed is None or closed.height == 0:
        return None
    return _spec(panels.symbol_breakdown(closed), SYMBOL_TABLE)


# ------------------------------------------------------------------------ static HTML


def _title(metrics: dict[str, Any]) -> str:
    def day(value: Any) -> str:
        return str(value)[:10] if value else "?"

    return f"ml4t backtest report: {day(metrics.get('start'))} to {day(metrics.get('end'))}"


def _meta(inputs: ReportInputs, closed: pl.DataFrame | None) -> str:
    manifest = inputs.manifest
    parts = [f"ml4t {html.escape(str(manifest.get('ml4t_version', '')))}"]
    if manifest.get("config_hash"):
        parts.append(f"config {html.escape(str(manifest['config_hash']))[:23]}")
    parts.append(f"{closed.height if closed is not None else 0:,} trades")
    parts.append(f"times in {html.escape(inputs.day_timezone)}")
    parts.append("benchmark: " + (BENCHMARK_FILE if inputs.benchmark is not None else "none"))
    return " · ".join(parts)


def _status(manifest: dict[str, Any]) -> str:
    if manifest.get("complete", True):
        return ""
    why = html.escape(str(manifest.get("incomplete_reason")))
    return f'<p class="warn">Incomplete run: {why}</p>'


def _benchmark_note(inputs: ReportInputs) -> str:
    if inputs.benchmark is None:
        return "no benchmark in the results (benchmark_returns.parquet)"
    return "the benchmark (dashed) grows the initial equity by its daily returns"


def _no_timeline(portfolio: pl.DataFrame | None) -> str:
    if portfolio is None:
        return NO_PORTFOLIO
    return f"a time chart needs two portfolio states; the run recorded {portfolio.height}"


def _no_rolling(days: pl.DataFrame | None, window: int) -> str:
    have = days.height if days is not None else 0
    return f"needs {window} daily returns; the run has {have}"


def _no_closed(trades: pl.DataFrame | None) -> str:
    return NO_TRADES if trades is None else "no closed trades"


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{styles}</style></head>
<body><main>
<header><h1>{title}</h1><p class="meta">{meta}</p>{status}
<noscript><p class="warn">The charts and the trade tables need JavaScript; the other
tables are plain HTML.</p></noscript></header>
<section class="panel" id="metrics-table"><h2>Metrics</h2><div class="kvs">{metrics}</div>
</section>
<section class="panel" id="equity-chart"><h2>Equity</h2>
<p class="note">{benchmark_note}; hover for values, drag to zoom every time chart,
double-click to reset</p>{no_portfolio}<div class="plot" data-chart="equity"></div></section>
<section class="panel" id="drawdown-chart"><h2>Drawdown</h2>{no_portfolio}
<div class="plot" data-chart="drawdown"></div></section>
<div class="pair">
<section class="panel" id="rolling-sharpe-chart"><h2>Rolling Sharpe ratio</h2>
<p class="note">{rolling_window} daily returns, annualised</p>{no_rolling}
<div class="plot" data-chart="sharpe"></div></section>
<section class="panel" id="rolling-volatility-chart"><h2>Rolling volatility</h2>
<p class="note">{rolling_window} daily returns, annualised</p>{no_rolling}
<div class="plot" data-chart="volatility"></div></section>
</div>
<section class="panel" id="exposure-chart"><h2>Exposure</h2>
<p class="note">gross and net position value over equity</p>{no_portfolio}
<div class="plot" data-chart="exposure"></div></section>
<div class="pair">
<section class="panel" id="worst-drawdowns"><h2>Worst drawdowns</h2>{drawdowns}</section>
<section class="panel" id="rejected-orders"><h2>Rejected orders by rule</h2>{rejections}
</section>
</div>
<section class="panel" id="monthly-heatmap"><h2>Monthly returns</h2>{heatmap}</section>
<div class="pair">
<section class="panel" id="pnl-histogram"><h2>Trade P&amp;L distribution (net)</h2>
{no_closed}<div class="plot" data-chart="histogram"></div></section>
<section class="panel" id="mfe-mae-scatter"><h2>MFE against MAE per trade</h2>
<p class="note">green: winners, red: losers; hover for the trade</p>{no_closed}
<div class="plot" data-chart="scatter"></div></section>
</div>
<section class="panel" id="symbol-pnl"><h2>P&amp;L by symbol</h2>
<p class="note">closed trades, by the symbol at exit</p>{no_closed}
<div class="table" data-table="symbols"></div></section>
<section class="panel" id="trade-table"><h2>Trades</h2>
<p class="note">click a heading to sort; filter a column with text, or with &gt;x, &lt;x,
&gt;=x, &lt;=x, =x or a..b</p>{no_trades}<div class="table" data-table="trades"></div>
</section>
</main>
<script type="application/json" id="report-data">{data}</script>
<script>/*
uPlot {uplot_version} is embedded below under its license:
{license}*/
{uplot}</script>
<script>{script}</script>
</body></html>
"""
