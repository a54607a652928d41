"""The HTML report: one self-contained file that works offline.

``write_report(results_dir)`` reads the results a run wrote (``portfolio.parquet``,
``trades.parquet``, ``metrics.json``, ``manifest.json``) and writes ``report.html``
beside them: equity and drawdown curves, monthly returns heatmap, trade P&L distribution,
MFE/MAE scatter, exposure over time and the metrics table. Every chart is inline SVG
drawn here; there is no script, stylesheet or font to fetch.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

from ml4t.backtest.errors import ResultsNotFoundError
from ml4t.backtest.record.outputs import atomic_write_bytes

__all__ = ["write_report"]

WIDTH, HEIGHT = 1200, 240
PAD_L, PAD_R, PAD_T, PAD_B = 70, 20, 16, 30
MAX_POINTS = 1500
GREEN, RED, BLUE, GREY = "#1a9850", "#d73027", "#2b6cb0", "#718096"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# metric key, label, format
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("annual_return", "Annual return (CAGR)", "pct"),
    ("annual_volatility", "Annual volatility", "pct"),
    ("sharpe_ratio", "Sharpe ratio", "num"),
    ("sortino_ratio", "Sortino ratio", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration_days", "Max drawdown duration (days)", "days"),
    ("calmar_ratio", "Calmar ratio", "num"),
    ("num_trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("average_win", "Average win", "money"),
    ("average_loss", "Average loss", "money"),
    ("expectancy", "Expectancy per trade", "money"),
    ("turnover", "Turnover (x mean equity)", "num"),
    ("exposure", "Time in market", "pct"),
    ("average_gross_leverage", "Average gross leverage", "num"),
    ("total_commission", "Total commission", "money"),
    ("total_slippage", "Total slippage", "money"),
    ("dividend_income", "Dividend income (net)", "money"),
    ("borrow_fees", "Borrow fees", "money"),
    ("initial_equity", "Initial equity", "money"),
    ("final_equity", "Final equity", "money"),
    ("periods_per_year", "Periods per year", "num"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "days":
        return f"{value:,.1f}"
    return f"{value:,.3f}"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _downsample(x: np.ndarray, ys: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """At most ``MAX_POINTS`` points, keeping each bucket's min and max (drawdowns stay)."""
    n = x.size
    if n <= MAX_POINTS:
        return x, list(ys)
    buckets = MAX_POINTS // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    main = ys[0]
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = main[a:b]
        i, j = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        keep.extend(sorted({i, j}))
    idx = np.array(sorted(set(keep)), dtype=np.int64)
    return x[idx], [y[idx] for y in ys]


def _svg(ident: str, body: str, height: int = HEIGHT) -> str:
    return (
        f'<svg id="{ident}" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _empty(ident: str, message: str) -> str:
    return _svg(
        ident,
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{GREY}">'
        f"{html.escape(message)}</text>",
    )


def _axes(
    x_lo: float,
    x_hi: float,
    y_lo: float,
    y_hi: float,
    x_label: Callable[[float], str],
    y_label: Callable[[float], str],
    height: int = HEIGHT,
    *,
    time_axis: bool = False,
) -> tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, height - PAD_T - PAD_B
    x_span = (x_hi - x_lo) or 1.0
    y_span = (y_hi - y_lo) or 1.0

    def sx(v: np.ndarray) -> np.ndarray:
        return PAD_L + (np.asarray(v, dtype=np.float64) - x_lo) / x_span * plot_w

    def sy(v: np.ndarray) -> np.ndarray:
        return PAD_T + (y_hi - np.asarray(v, dtype=np.float64)) / y_span * plot_h

    parts = [
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" '
        'fill="#fafafa" stroke="#ddd"/>'
    ]
    for tick in _nice_ticks(y_lo, y_hi):
        y = float(sy(np.array(tick)))
        parts.append(
            f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{html.escape(y_label(tick))}</text>"
        )
    x_ticks = list(np.linspace(x_lo, x_hi, 6)) if time_axis else _nice_ticks(x_lo, x_hi, 8)
    for i, tick in enumerate(x_ticks):
        x = float(sx(np.array(tick)))
        anchor = "middle"
        if time_axis and i in (0, len(x_ticks) - 1):
            anchor = "start" if i == 0 else "end"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{height - PAD_B}" y2="{height - PAD_B + 4}" '
            f'stroke="#999"/><text x="{x:.1f}" y="{height - 12}" text-anchor="{anchor}" '
            f'class="tick">{html.escape(x_label(float(tick)))}</text>'
        )
    return "".join(parts), sx, sy


def _date_label(span_ns: float) -> Callable[[float], str]:
    fmt = "%Y-%m-%d" if span_ns > 3 * 86_400e9 else "%m-%d %H:%M"
    return lambda ns: datetime.fromtimestamp(ns / 1e9, UTC).strftime(fmt)


def _line_chart(
    ident: str,
    x: np.ndarray,
    series: Sequence[tuple[str, np.ndarray, str]],
    y_label: Callable[[float], str],
    *,
    fill: bool = False,
) -> str:
    x, ys = _downsample(x, [s[1] for s in series])
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.array([])
    if x.size < 2 or finite.size == 0:
        return _empty(ident, "not enough data to draw")
    y_lo, y_hi = float(finite.min()), float(finite.max())
    if fill:
        y_hi = max(y_hi, 0.0)
    margin = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - (0 if fill and y_hi == 0 else margin), y_hi + (0 if fill else margin)
    x0, x1 = float(x[0]), float(x[-1])
    frame, sx, sy = _axes(x0, x1, y_lo, y_hi, _date_label(x1 - x0), y_label, time_axis=True)
    parts = [frame]
    px = sx(x)
    for k, ((name, _, color), y) in enumerate(zip(series, ys, strict=True)):
        py = sy(np.nan_to_num(y, nan=y_lo))
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
        if fill:
            base = float(sy(np.array(0.0)))
            parts.append(
                f'<polygon points="{px[0]:.1f},{base:.1f} {points} {px[-1]:.1f},{base:.1f}" '
                f'fill="{color}" fill-opacity="0.35" stroke="none"/>'
            )
        dash = ' stroke-dasharray="6 3"' if k else ""
        parts.append(
            f'<polyline class="series" points="{points}" fill="none" stroke="{color}" '
            f'stroke-width="{2.2 if k == 0 else 1.4}"{dash}><title>{html.escape(name)}</title>'
            "</polyline>"
        )
    legend = "".join(
        f'<rect x="{PAD_L + 10 + i * 140}" y="{PAD_T + 8}" width="12" height="12" '
        f'fill="{color}"/><text x="{PAD_L + 28 + i * 140}" y="{PAD_T + 18}" class="tick" '
        f'text-anchor="start">{html.escape(name)}</text>'
        for i, (name, _, color) in enumerate(series)
    )
    return _svg(ident, "".join(parts) + legend)


def _heat_color(value: float, scale: float) -> str:
    if not math.isfinite(value):
        return "#eeeeee"
    t = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    r, g, b = (26, 152, 80) if value >= 0 else (215, 48, 39)
    mix = lambda c: int(255 + (c - 255) * (0.15 + 0.85 * t))  # noqa: E731
    return f"rgb({mix(r)},{mix(g)},{mix(b)})"


def monthly_returns(portfolio: pl.DataFrame, initial_equity: float | None) -> pl.DataFrame:
    """year, month, return: month-end equity over the previous month-end (or the start)."""
    if portfolio.height == 0:
        return pl.DataFrame(schema={"year": pl.Int32, "month": pl.Int8, "return": pl.Float64})
    ends = (
        portfolio.sort("timestamp")
        .group_by(
            pl.col("timestamp").dt.year().alias("year"),
            pl.col("timestamp").dt.month().alias("month"),
            maintain_order=True,
        )
        .agg(pl.col("equity").last())
    )
    start = initial_equity or float(portfolio.get_column("equity")[0])
    return ends.with_columns(
        (pl.col("equity") / pl.col("equity").shift(1, fill_value=start) - 1.0).alias("return")
    ).select("year", "month", "return")


def _heatmap(months: pl.DataFrame) -> str:
    if months.height == 0:
        return _empty("monthly-heatmap", "no portfolio states recorded")
    years = sorted(set(months.get_column("year").to_list()))
    cell_w, cell_h, left, top = (WIDTH - 100) / 13, 28, 70, 24
    height = top + cell_h * len(years) + 10
    values = months.get_column("return").to_numpy()
    scale = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    parts = [
        f'<text x="{left + (i + 0.5) * cell_w:.1f}" y="16" text-anchor="middle" class="tick">'
        f"{name}</text>"
        for i, name in enumerate((*_MONTHS, "Year"))
    ]
    by_year: dict[int, float] = {}
    for row in months.iter_rows(named=True):
        by_year[row["year"]] = (1 + by_year.get(row["year"], 0.0)) * (1 + row["return"]) - 1
        x = left + (row["month"] - 1) * cell_w
        y = top + years.index(row["year"]) * cell_h
        parts.append(_cell(x, y, cell_w, cell_h, row["return"], scale))
    for i, year in enumerate(years):
        y = top + i * cell_h
        parts.append(
            f'<text x="{left - 8}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end" '
            f'class="tick">{year}</text>'
        )
        parts.append(_cell(left + 12 * cell_w, y, cell_w, cell_h, by_year[year], scale))
    return _svg("monthly-heatmap", "".join(parts), int(height))


def _cell(x: float, y: float, w: float, h: float, value: float, scale: float) -> str:
    text = f"{value * 100:.1f}%" if math.isfinite(value) else ""
    return (
        f'<rect class="cell" x="{x + 1:.1f}" y="{y + 1:.1f}" width="{w - 2:.1f}" '
        f'height="{h - 2:.1f}" fill="{_heat_color(value, scale)}"><title>{text}</title></rect>'
        f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" '
        f'class="cellText">{text}</text>'
    )


def _histogram(pnl: np.ndarray) -> str:
    pnl = pnl[np.isfinite(pnl)]
    if pnl.size == 0:
        return _empty("pnl-histogram", "no closed trades")
    lo, hi = float(pnl.min()), float(pnl.max())
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    bins = int(min(40, max(5, math.sqrt(pnl.size) * 2)))
    counts, edges = np.histogram(pnl, bins=bins, range=(lo, hi))
    frame, sx, sy = _axes(lo, hi, 0.0, float(counts.max()) * 1.1, _money, lambda v: f"{v:.0f}")
    parts = [frame]
    for count, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        if count == 0:
            continue
        x0, x1 = float(sx(np.array(a))), float(sx(np.array(b)))
        y0, y1 = float(sy(np.array(count))), float(sy(np.array(0.0)))
        color = GREEN if (a + b) / 2 >= 0 else RED
        parts.append(
            f'<rect class="bar" x="{x0 + 0.5:.1f}" y="{y0:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{y1 - y0:.1f}" fill="{color}"><title>{count} trades in '
            f"[{a:,.2f}, {b:,.2f})</title></rect>"
        )
    return _svg("pnl-histogram", "".join(parts))


def _day(iso: Any) -> str:
    return str(iso)[:10] if iso else "?"


def _money(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def _scatter(trades: pl.DataFrame) -> str:
    closed = trades.filter(pl.col("pnl_net").is_not_null()) if trades.height else trades
    if closed.height == 0:
        return _empty("mfe-mae-scatter", "no closed trades")
    mae = closed.get_column("max_adverse_pct").to_numpy()
    mfe = closed.get_column("max_favorable_pct").to_numpy()
    win = closed.get_column("pnl_net").to_numpy() > 0
    if closed.height > 4000:  # a readable cloud: every k-th trade
        step = closed.height // 4000 + 1
        mae, mfe, win = mae[::step], mfe[::step], win[::step]
    top = float(max(np.nanmax(mae), np.nanmax(mfe), 0.01)) * 1.05
    frame, sx, sy = _axes(0.0, top, 0.0, top, lambda v: f"{v:.1f}%", lambda v: f"{v:.1f}%")
    parts = [frame]
    for a, f, w in zip(sx(mae), sy(mfe), win, strict=True):
        color = GREEN if w else RED
        parts.append(
            f'<circle class="point" cx="{a:.1f}" cy="{f:.1f}" r="3" fill="{color}" '
            'fill-opacity="0.6"/>'
        )
    parts.append(
        f'<text x="{WIDTH - PAD_R - 4}" y="{HEIGHT - PAD_B - 6}" text-anchor="end" '
        'class="axis">MAE, % of entry →</text>'
        f'<text x="{PAD_L + 6}" y="{PAD_T + 14}" class="axis">↑ MFE, % of entry</text>'
    )
    return _svg("mfe-mae-scatter", "".join(parts))


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><th>{html.escape(label)}</th><td>{_fmt(metrics.get(key), kind)}</td></tr>"
        for key, label, kind in _METRICS
        if key in metrics
    ]
    per = math.ceil(len(rows) / 3) or 1
    tables = "".join(
        f"<table>{''.join(rows[i : i + per])}</table>" for i in range(0, len(rows), per)
    )
    return f'<div id="metrics-table" class="metrics">{tables}</div>'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#1a202c;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px}
.meta{color:#4a5568;font-size:13px}.warn{color:#c53030;font-weight:600}
.chart{display:block;max-width:1200px;border:1px solid #eee;background:#fff}
.tick{font-size:11px;fill:#4a5568}.axis{font-size:12px;fill:#2d3748}.cellText{font-size:11px;fill:#1a202c}
table{border-collapse:collapse;font-size:13px}
th{text-align:left;font-weight:500;padding:3px 18px 3px 0;color:#4a5568}
td{text-align:right;padding:3px 0;font-variant-numeric:tabular-nums}
.metrics{display:flex;gap:48px;flex-wrap:wrap;align-items:flex-start}
"""


def render_report(
    portfolio: pl.DataFrame,
    trades: pl.DataFrame,
    metrics: Mapping[str, Any],
    manifest: Mapping[str, Any] | None = None,
) -> str:
    """The report's HTML for already-loaded results."""
    manifest = manifest or {}
    if portfolio.height:
        ts = portfolio.get_column("timestamp").dt.epoch("ns").to_numpy().astype(np.float64)
        equity = _line_chart(
            "equity-chart", ts, [("equity", portfolio["equity"].to_numpy(), BLUE)], _money
        )
        drawdown = _line_chart(
            "drawdown-chart",
            ts,
            [("drawdown", portfolio["drawdown"].to_numpy(), RED)],
            lambda v: f"{v * 100:.1f}%",
            fill=True,
        )
        exposure = _line_chart(
            "exposure-chart",
            ts,
            [
                ("gross leverage", portfolio["gross_leverage"].to_numpy(), BLUE),
                ("net leverage", portfolio["net_leverage"].to_numpy(), GREEN),
            ],
            lambda v: f"{v:.2f}x",
        )
    else:
        equity = _empty("equity-chart", "no portfolio states recorded")
        drawdown = _empty("drawdown-chart", "no portfolio states recorded")
        exposure = _empty("exposure-chart", "no portfolio states recorded")
    heatmap = _heatmap(monthly_returns(portfolio, metrics.get("initial_equity")))
    pnl = trades.get_column("pnl_net").to_numpy() if trades.height else np.array([])
    status = ""
    if not manifest.get("complete", True):
        why = html.escape(str(manifest.get("incomplete_reason")))
        status = f'<p class="warn">Incomplete run: {why}</p>'

    title = f"ml4t backtest report: {_day(metrics.get('start'))} to {_day(metrics.get('end'))}"
    version = html.escape(str(manifest.get("ml4t_version", "")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">ml4t {version} · config {html.escape(str(manifest.get("config_hash", "")))[:23]}
 · {len(pnl):,} trades</p>{status}
<h2>Metrics</h2>{_metrics_table(metrics)}
<h2>Equity</h2>{equity}
<h2>Drawdown</h2>{drawdown}
<h2>Monthly returns</h2>{heatmap}
<h2>Trade P&amp;L distribution (net)</h2>{_histogram(pnl)}
<h2>MFE / MAE per trade (green: winners, red: losers)</h2>{_scatter(trades)}
<h2>Exposure</h2>{exposure}
</body></html>
"""


def write_report(
    results_dir: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    manifest: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
) -> Path:
    """Write ``report.html`` (or ``path``) for the results in ``results_dir``; returns it."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsNotFoundError(
            f"no results directory at {root}; give the reporting.output_dir of a run"
        )

    def read(name: str) -> pl.DataFrame:
        file = root / f"{name}.parquet"
        return pl.read_parquet(file) if file.exists() else pl.DataFrame()

    if metrics is None:
        file = root / "metrics.json"
        metrics = msgspec.json.decode(file.read_bytes()) if file.exists() else {}
    manifest_file = root / "manifest.json"
    if manifest is None and manifest_file.exists():
        manifest = msgspec.json.decode(manifest_file.read_bytes())
    portfolio, trades = read("portfolio"), read("trades")
    page = render_report(portfolio, trades, metrics, manifest)
    target = Path(path) if path is not None else root / "report.html"
    return atomic_write_bytes(target, page.encode())


# --------------------------------------------------------------------------- command line


def add_cli(commands: Any) -> None:
    """Add ``report`` to the ``ml4t`` command."""
    report = commands.add_parser("report", help="write the HTML report of a results directory")
    report.add_argument("results", help="a results directory (reporting.output_dir)")
    report.add_argument("--output", help="where to write the report (default: RESULTS/report.html)")
    report.set_defaults(func=_cli_report)


def _cli_report(args: Any) -> int:
    print(write_report(args.results, path=args.output))
    return 0
