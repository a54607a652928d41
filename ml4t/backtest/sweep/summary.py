"""A sweep's summary: the best runs by a metric, and a heatmap for a two-key grid.

``summary.html`` is one self-contained file (no scripts, no external assets): counts,
the top runs, the failed runs with their errors, and, when the sweep varied exactly two
keys, an SVG heatmap of the metric over them (the mean over walk-forward test windows,
if any).
"""

from __future__ import annotations

import html
import itertools
import math
from pathlib import Path
from typing import Any

import polars as pl

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record.outputs import atomic_write_bytes

__all__ = ["best_runs", "heatmap_svg", "param_columns", "write_summary"]

_CELL_W, _CELL_H, _TOP, _CHAR_W = 96, 40, 56, 7.5


def param_columns(table: pl.DataFrame) -> list[str]:
    """The swept keys: sweep parameters are the dotted column names."""
    return [c for c in table.columns if "." in c]


def best_runs(
    table: pl.DataFrame, metric: str, *, maximize: bool = True, n: int = 10
) -> pl.DataFrame:
    """The ``n`` successful runs with the best ``metric`` (test runs only, in walk-forward)."""
    if metric not in table.columns:
        raise ConfigError(
            f"no metric {metric!r} in the table; metrics: "
            f"{[c for c in table.columns if c not in _FIXED and '.' not in c]}"
        )
    ok = table.filter((pl.col("status") == "ok") & pl.col(metric).is_not_null())
    if "role" in ok.columns:
        ok = ok.filter(pl.col("role") == "test")
    return ok.sort(metric, descending=maximize, maintain_order=True).head(n)


_FIXED = {
    "run_id",
    "status",
    "error",
    "duration_s",
    "path",
    "config_hash",
    "resumed",
    "window",
    "role",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
}


def heatmap_svg(table: pl.DataFrame, metric: str, *, maximize: bool = True) -> str | None:
    """An SVG heatmap of ``metric`` over the two swept keys (None unless exactly two)."""
    keys = param_columns(table)
    if len(keys) != 2 or metric not in table.columns:
        return None
    x_key, y_key = keys[1], keys[0]
    runs = table.filter(pl.col("status") == "ok")
    if "role" in runs.columns:
        runs = runs.filter(pl.col("role") == "test")
    cells = runs.group_by(y_key, x_key).agg(pl.col(metric).cast(pl.Float64).mean())
    values = {(row[0], row[1]): row[2] for row in cells.iter_rows()}
    xs = table[x_key].unique(maintain_order=True).to_list()
    ys = table[y_key].unique(maintain_order=True).to_list()
    finite = [v for v in values.values() if v is not None and math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    labels = [f"{y_key} ->", *(str(y) for y in ys)]
    left_margin = round(max(len(label) for label in labels) * _CHAR_W) + 16
    titles = max(len(metric) + 22, len(x_key) + 2) * _CHAR_W
    width = round(left_margin + max(_CELL_W * len(xs), titles)) + 10
    height = _TOP + _CELL_H * len(ys) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left_margin}" y="16" font-weight="bold">{_esc(metric)} '
        f"({'higher' if maximize else 'lower'} is better)</text>",
        f'<text x="{left_margin}" y="34">{_esc(x_key)} &#8594;</text>',
        f'<text x="4" y="{_TOP - 6}">{_esc(y_key)} &#8595;</text>',
    ]
    for i, x in enumerate(xs):
        cx = left_margin + i * _CELL_W + _CELL_W / 2
        parts.append(f'<text x="{cx}" y="{_TOP - 6}" text-anchor="middle">{_esc(x)}</text>')
    for j, y in enumerate(ys):
        top = _TOP + j * _CELL_H
        parts.append(f'<text x="4" y="{top + _CELL_H / 2 + 4}">{_esc(y)}</text>')
        for i, x in enumerate(xs):
            value = values.get((y, x))
            if value is not None and math.isfinite(value):
                share = (value - low) / (high - low) if high > low else 0.5
                fill = _colour(share if maximize else 1 - share)
                label = f"{value:.4g}"
            else:
                fill, label = "#dddddd", "n/a"
            left = left_margin + i * _CELL_W
            parts.append(
                f'<rect x="{left}" y="{top}" width="{_CELL_W - 2}" height="{_CELL_H - 2}" '
                f'fill="{fill}"><title>{_esc(y_key)}={_esc(y)}, {_esc(x_key)}={_esc(x)}: '
                f"{label}</title></rect>"
            )
            parts.append(
                f'<text x="{left + _CELL_W / 2}" y="{top + _CELL_H / 2 + 4}" '
                f'text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _colour(share: float) -> str:
    """Red (worst) through pale yellow to green (best)."""
    stops = ((0.0, (215, 48, 39)), (0.5, (255, 255, 191)), (1.0, (26, 152, 80)))
    for (s0, c0), (s1, c1) in itertools.pairwise(stops):
        if share <= s1:
            t = (share - s0) / (s1 - s0)
            r, g, b = (round(a + (b_ - a) * t) for a, b_ in zip(c0, c1, strict=True))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#1a9850"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _html_table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = "".join(f"<td>{_esc(_fmt(v))}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_summary(
    path: Path, table: pl.DataFrame, *, metric: str, maximize: bool = True, top: int = 10
) -> Path:
    """Write ``summary.html`` for a sweep's results table."""
    keys = param_columns(table)
    counts = table["status"].value_counts().sort("status").iter_rows() if table.height else []
    summary = ", ".join(f"{n} {s}" for s, n in counts) or "no runs"
    shown = [c for c in ("run_id", *keys, "window", "role", metric) if c in table.columns]
    extra = [c for c in ("total_return", "max_drawdown", "num_trades") if c in table.columns]
    body = [
        f"<h1>Sweep: {table.height} runs</h1>",
        f"<p>{_esc(summary)}. Ranked by <b>{_esc(metric)}</b> "
        f"({'highest' if maximize else 'lowest'} first).</p>",
    ]
    if metric in table.columns:
        best = best_runs(table, metric, maximize=maximize, n=top)
        columns = list(dict.fromkeys([*shown, *extra, "path"]))
        body += [f"<h2>Best {best.height} runs</h2>", _html_table(best.select(columns))]
        svg = heatmap_svg(table, metric, maximize=maximize)
        if svg is not None:
            body += ["<h2>Heatmap</h2>", svg]
    else:
        body.append(f"<p>No run produced the metric {_esc(metric)}.</p>")
    failed = table.filter(pl.col("status") == "failed") if table.height else table
    if failed.height:
        cols = [c for c in ("run_id", *keys, "window", "role", "error") if c in failed.columns]
        body += [f"<h2>Failed runs ({failed.height})</h2>", _html_table(failed.select(cols))]
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}"
        "th{background:#f3f3f3}"
    )
    text = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>ml4t sweep</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return atomic_write_bytes(path, text.encode())
