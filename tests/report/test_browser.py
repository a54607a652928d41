"""The report in headless Chromium: every panel drawn, hover and zoom, the trade table's
sorting, filtering and scrolling, and screenshots at 1400x2400 and 1024x768.

A copy of the report gets ``probe.js`` after its own scripts (and an error catcher
before them); the probe drives the page and writes what it saw into the DOM that
``--dump-dom`` prints. The screenshots are of the report itself, unchanged. With
``ML4T_REPORT_SCREENSHOTS=DIR`` set, they are also copied there (how docs/img was made).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from PIL import Image

PROBE = Path(__file__).with_name("probe.js")
CATCH_ERRORS = (
    "<script>window.__probeErrors = []; window.addEventListener('error', "
    "(e) => window.__probeErrors.push(e.message + ' at line ' + e.lineno));</script>"
)
CHARTS = {
    "equity": "equity-chart",
    "drawdown": "drawdown-chart",
    "sharpe": "rolling-sharpe-chart",
    "volatility": "rolling-volatility-chart",
    "exposure": "exposure-chart",
    "histogram": "pnl-histogram",
    "scatter": "mfe-mae-scatter",
}
PANELS = (
    "metrics-table",
    *CHARTS.values(),
    "worst-drawdowns",
    "rejected-orders",
    "monthly-heatmap",
    "symbol-pnl",
    "trade-table",
)


def run_chromium(binary: str, profile: Path, *args: str) -> str:
    done = subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return done.stdout


def probe(chromium: str, report: Path, work: Path, width: int, height: int) -> dict[str, Any]:
    page = report.read_text().replace("<head>", "<head>" + CATCH_ERRORS, 1)
    page = page.replace("</body>", f"<script>{PROBE.read_text()}</script></body>")
    copy = work / f"probe-{width}.html"
    copy.write_text(page)
    dom = run_chromium(
        chromium,
        work / "profile",
        f"--window-size={width},{height}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        copy.as_uri(),
    )
    tail = dom[dom.rindex('<pre id="probe-out">') :]
    match = re.match(r'<pre id="probe-out">(.*?)</pre>', tail, re.S)
    assert match is not None, tail[:500]
    seen = json.loads(html.unescape(match.group(1)))
    assert "crashed" not in seen, seen.get("crashed")
    return seen


@pytest.fixture(scope="module")
def wide(chromium: str, results: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return probe(chromium, results / "report.html", tmp_path_factory.mktemp("wide"), 1400, 2400)


@pytest.fixture(scope="module")
def laptop(chromium: str, results: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return probe(chromium, results / "report.html", tmp_path_factory.mktemp("laptop"), 1024, 768)


@pytest.mark.parametrize("view", ["wide", "laptop"])
def test_every_panel_is_drawn_with_its_legend_below_the_plot(
    view: str, request: pytest.FixtureRequest
) -> None:
    seen = request.getfixturevalue(view)
    width = 1400 if view == "wide" else 1024
    assert seen["errors"] == []
    assert set(seen["panels"]) == set(PANELS)
    assert seen["page"][0] == width  # nothing wider than the window: no sideways scrolling
    assert {name: c["panel"] for name, c in seen["charts"].items()} == CHARTS
    for name, chart in seen["charts"].items():
        assert chart["ink"] > 0.01, name  # the canvas has a drawing on it
        # the legend is under the plot, never over the data
        _, plot_top, _, plot_height = chart["plot"]
        assert chart["legend"][1] >= plot_top + plot_height, name
        panel = seen["panels"][chart["panel"]]
        assert chart["root"][0] >= panel[0] and chart["root"][2] <= panel[2], name
    # two panels a row when they fit, one under the other on a laptop
    sharpe, vol = seen["panels"]["rolling-sharpe-chart"], seen["panels"]["rolling-volatility-chart"]
    assert (sharpe[1] == vol[1]) if view == "wide" else (sharpe[0] == vol[0])


def test_hover_reads_out_values_and_a_drag_zooms_every_time_chart(wide: dict) -> None:
    hover = wide["steps"]["hover"]
    assert hover["index"] is not None and "(last)" not in hover["values"]
    assert hover["equity"] == hover["drawdown"]  # the cursors are synced
    # the benchmark has a point a day; between them it reads out the day's last one
    assert re.search(r"equity[\d,.]+benchmark[\d,.]+$", hover["values"]), hover["values"]
    lo, hi = wide["steps"]["zoom"]["full"]
    spans = wide["steps"]["zoom"]["spans"]
    assert set(spans) == {"equity", "drawdown", "exposure", "sharpe", "volatility"}
    for name, (a, b) in spans.items():
        # dragged from a quarter to a half of the plot's width
        assert a == pytest.approx(lo + (hi - lo) * 0.25, abs=(hi - lo) * 0.01), name
        assert b == pytest.approx(lo + (hi - lo) * 0.50, abs=(hi - lo) * 0.01), name
    assert all(span == [lo, hi] for span in wide["steps"]["reset"].values())


def test_the_trade_table_sorts_filters_and_scrolls(wide: dict, results: Path) -> None:
    trades = pl.read_parquet(results / "trades.parquet")
    steps, n = wide["steps"], trades.height
    shown = lambda k: f"showing {k:,} of {n:,} trades"  # noqa: E731
    assert steps["table"]["count"] == shown(n)
    assert steps["table"]["first"][0] == "T1" and steps["table"]["rendered"] < 60 < n
    pnl = trades.get_column("pnl_net").round(2)
    assert (
        steps["sortDesc"][0] == f"{pnl.max():,.2f}" and steps["sortAsc"][0] == f"{pnl.min():,.2f}"
    )
    assert steps["sortIds"] == [f"T{i}" for i in range(1, 13)]  # natural order: T2 before T10
    s01 = trades.filter(pl.col("symbol") == "S01")
    assert steps["symbol"] == {"count": shown(s01.height), "symbols": ["S01"]}
    assert steps["symbolWinners"] == shown(s01.filter(pl.col("pnl_net").round(2) > 0).height)
    inside = pnl.is_between(-50, 50)
    assert steps["range"]["count"] == shown(int(inside.sum()))
    assert all(-50 <= float(v.replace(",", "")) <= 50 for v in steps["range"]["values"])
    exits = trades.get_column("exit_timestamp").dt.strftime("%Y-%m-%d %H:%M")
    assert steps["month"] == {
        "count": shown(int(exits.str.starts_with("2024-03").sum())),
        "values": ["2024-03"],
    }
    assert steps["after"] == shown(int((exits >= "2024-06-01").sum()))
    assert steps["bad"] == {"count": shown(n), "bad": True}  # refused, not applied
    assert steps["scrolled"]["last"] == f"T{n}" and steps["scrolled"]["rendered"] < 60


def _ink(region: np.ndarray) -> float:
    """Share of pixels that are not (near) white."""
    return float((np.abs(region.astype(int) - 255).max(axis=-1) > 30).mean())


def _share(region: np.ndarray, color: str, tolerance: int = 40) -> float:
    target = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(region.astype(int) - target).max(axis=-1) <= tolerance).mean())


@pytest.mark.parametrize(("width", "height"), [(1400, 2400), (1024, 768)])
def test_a_screenshot_shows_every_panel_in_view_drawn(
    chromium: str, results: Path, tmp_path: Path, width: int, height: int, request
) -> None:
    shot = tmp_path / f"report-{width}.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={width},{height}",
        (results / "report.html").as_uri(),
    )
    if os.environ.get("ML4T_REPORT_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["ML4T_REPORT_SCREENSHOTS"]) / shot.name)
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (height, width, 3) and shot.stat().st_size > 40_000
    layout = request.getfixturevalue("wide" if width == 1400 else "laptop")["panels"]
    in_view = {k: v for k, v in layout.items() if v[1] + 60 < height}
    expected = set(PANELS[:10]) if width == 1400 else {"metrics-table", "equity-chart"}
    assert expected <= set(in_view)
    colors = {
        "equity-chart": "#2b6cb0",
        "drawdown-chart": "#d73027",
        "rolling-sharpe-chart": "#6b46c1",
        "rolling-volatility-chart": "#dd6b20",
        "exposure-chart": "#1a9850",
        "pnl-histogram": "#1a9850",
    }
    for ident, (x, y, w, h) in in_view.items():
        top, bottom = int(y) + 30, min(int(y + h), height)  # below the panel's title
        region = image[top:bottom, int(x) : int(x + w)]
        assert _ink(region) > 0.01, ident
        if ident in colors and bottom - top >= 200:  # enough of the plot is in view
            assert _share(region, colors[ident]) > 0.001, ident
    if width == 1400:  # the heatmap's cells: shades of green and red
        x, y, w, h = (int(v) for v in layout["monthly-heatmap"])
        cells = image[y + 30 : y + h, x : x + w].reshape(-1, 3)
        greenish = cells[(cells[:, 1] > cells[:, 0] + 20) & (cells[:, 1] > cells[:, 2] + 20)]
        assert len(np.unique(greenish, axis=0)) > 5
