"""The report page without a browser: one self-contained file, its payload and its tables
checked against the results files."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.metrics import sharpe_ratio
from ml4t.backtest.report import BENCHMARK_FILE, write_report
from ml4t.backtest.report._page import UPLOT_VERSION
from tests.report._results import REJECTIONS, hand_trades

ASSETS = Path(__file__).resolve().parents[2] / "ml4t" / "backtest" / "report" / "assets"
# uPlot 1.6.32 as the npm package publishes it (assets/vendor/README.md)
VENDORED = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    "uPlot.LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
}
# the one URL in the page: uPlot's banner comment names its home; nothing refers to it
NAMED_URLS = {"https://github.com/leeoniya/uPlot"}
FETCHING_JS = (
    r"\bfetch\s*\(",
    r"XMLHttpRequest",
    r"WebSocket",
    r"EventSource",
    r"sendBeacon",
    r"importScripts",
    r"\bimport\s*\(",
    r"\bWorker\s*\(",
    r"serviceWorker",
    r"\.src\s*=",
    r"window\.open",
    r"\blocation\b",
)
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None
        if tag == "script" and dict(attrs).get("type") == "application/json":
            self._in = "data"  # the payload: parsed by JSON.parse, never run

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)


def _page(results: Path) -> str:
    return (results / "report.html").read_text()


def payload(page: str) -> dict[str, Any]:
    text = page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    assert "<" not in text  # escaped: no text in the data can close the script
    return json.loads(text)


def section(page: str, ident: str) -> str:
    start = page.index(f'id="{ident}"')
    return page[start : page.index("</section>", start)]


def test_the_report_is_one_file_that_names_nothing_to_fetch(results: Path) -> None:
    page = _page(results)
    parsed = _Tags()
    parsed.feed(page)
    names = {tag for tag, _ in parsed.tags}
    assert not names & {"img", "iframe", "object", "embed", "audio", "video", "source", "base"}
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES:
                assert (value or "").startswith(("data:", "#")), (tag, name, value)
        if tag == "script":
            assert "src" not in attrs
        if tag == "link":  # only the icon, inline, so a browser asks no server for one
            assert attrs == {"rel": "icon", "href": "data:,"}
    css = "".join(parsed.styles) + "".join(a.get("style") or "" for _, a in parsed.tags)
    assert "url(" not in css and "@import" not in css
    scripts = "".join(parsed.scripts)
    assert len(parsed.scripts) == 2  # uPlot, ours (and the JSON payload, not code)
    for pattern in FETCHING_JS:
        assert not re.search(pattern, scripts), pattern
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == NAMED_URLS


def test_the_vendored_uplot_is_the_published_release_and_is_inlined(results: Path) -> None:
    for name, digest in VENDORED.items():
        assert hashlib.sha256((ASSETS / "vendor" / name).read_bytes()).hexdigest() == digest
    bundle = (ASSETS / "vendor" / "uPlot.iife.min.js").read_text()
    assert f"(v{UPLOT_VERSION})" in bundle.splitlines()[0]
    page = _page(results)
    assert bundle in page and (ASSETS / "report.js").read_text() in page
    assert "Copyright (c) 2022 Leon Sorokin" in page  # its license travels with it
    assert len(page.encode()) < 1_000_000  # 212 trades, 300 days


def test_the_payload_carries_every_trade_and_state_the_charts_need(results: Path) -> None:
    data = payload(_page(results))
    trades = pl.read_parquet(results / "trades.parquet")
    table = data["trades"]
    assert table["rows"] == trades.height > 150
    assert table["data"]["trade_id"] == trades.get_column("trade_id").to_list()
    assert table["data"]["pnl_net"] == pytest.approx(
        trades.get_column("pnl_net").to_list(), abs=0.006
    )
    assert table["data"]["entry_timestamp"][0] == trades.item(0, "entry_timestamp").strftime(
        "%Y-%m-%d %H:%M"
    )
    portfolio = pl.read_parquet(results / "portfolio.parquet")
    timeline = data["timeline"]
    # 600 states (two a day): fewer than 4 per bucket, so every state is drawn
    assert timeline["t"] == [ts.timestamp() for ts in portfolio.get_column("timestamp")]
    assert timeline["equity"][-1] == round(portfolio.item(-1, "equity"), 2)
    assert min(timeline["drawdown"]) == pytest.approx(portfolio["drawdown"].min(), abs=1e-6)
    # a day is its last state (the 21:00 one)
    closes = portfolio.group_by(
        pl.col("timestamp").dt.date().alias("day"), maintain_order=True
    ).last()
    assert portfolio.height == 2 * closes.height == 600
    # the benchmark: the initial equity grown by each day's return, at each day's close
    bench = pl.read_parquet(results / BENCHMARK_FILE)
    points = {t: v for t, v in zip(timeline["t"], timeline["benchmark"], strict=True) if v}
    assert list(points) == [ts.timestamp() for ts in closes.get_column("timestamp")]
    growth = 100_000.0 * np.cumprod(1 + bench.get_column("return").to_numpy())
    assert list(points.values()) == pytest.approx(growth.tolist(), abs=0.006)
    # rolling: the 63 daily returns to the last day, as metrics.json defines a Sharpe ratio
    equity = closes.get_column("equity").to_numpy()
    returns = equity / np.concatenate(([100_000.0], equity[:-1])) - 1
    metrics = msgspec.json.decode((results / "metrics.json").read_bytes())
    expected = sharpe_ratio(returns[-63:], periods_per_year=metrics["periods_per_year"])
    rolling = data["rolling"]
    assert rolling["sharpe"][-1] == pytest.approx(expected, abs=1e-4)
    assert metrics["return_periods"] == len(returns) == 300  # the metrics' days are ours
    assert rolling["t"][0] == timeline["t"][0] and rolling["t"][-1] == timeline["t"][-1]
    assert rolling["t"][1:] == [ts.timestamp() for ts in closes.get_column("timestamp")]
    assert sum(v is not None for v in rolling["sharpe"]) == closes.height - 62
    # trade distributions and the per-symbol table cover every closed trade
    closed = trades.filter(pl.col("pnl_net").is_not_null())
    histogram = data["histogram"]
    assert sum(v or 0 for v in histogram["wins"] + histogram["losses"]) == closed.height
    scatter = data["scatter"]
    assert scatter["step"] == 1 and len(scatter["mae"]) == closed.height
    assert scatter["mae"] == sorted(scatter["mae"])
    symbols = data["symbols"]
    assert symbols["rows"] == closed.get_column("symbol").n_unique()
    assert sum(symbols["data"]["trades"]) == closed.height
    assert sum(symbols["data"]["pnl_net"]) == pytest.approx(closed["pnl_net"].sum(), abs=0.05)


def test_the_worst_drawdowns_and_rejections_tables(results: Path) -> None:
    page = _page(results)
    worst = section(page, "worst-drawdowns")
    depths = re.findall(r"<td class=neg>(-[\d.]+)%</td>", worst)
    portfolio = pl.read_parquet(results / "portfolio.parquet")
    assert len(depths) == 5 and depths == sorted(depths, key=float)
    assert float(depths[0]) == round(portfolio["drawdown"].min() * 100, 2)
    rejected = section(page, "rejected-orders")
    orders = pl.read_parquet(results / "orders.parquet")
    total = sum(count for _, count, _ in REJECTIONS)
    assert f"{total} of {orders.height} orders rejected" in rejected
    for rule, count, reason in REJECTIONS:
        share = f"{count / total * 100:.1f}%"
        assert f"<td>{rule}</td><td>{count}</td><td>{share}</td>" in rejected
        assert f"e.g. {reason}" in rejected


def test_the_monthly_heatmap_compounds_each_year(results: Path) -> None:
    heat = section(_page(results), "monthly-heatmap")
    portfolio = pl.read_parquet(results / "portfolio.parquet")
    ends = portfolio.group_by(
        pl.col("timestamp").dt.year().alias("y"),
        pl.col("timestamp").dt.month().alias("m"),
        maintain_order=True,
    ).agg(pl.col("equity").last())
    assert heat.count('<td class="cell" ') == ends.height
    first_year = ends.filter(pl.col("y") == ends.item(0, "y"))
    total = first_year.item(-1, "equity") / 100_000.0 - 1
    assert f'title="{ends.item(0, "y")}: {total * 100:.2f}%"' in heat


def test_metrics_are_grouped_and_unknown_ones_still_shown(results: Path, tmp_path: Path) -> None:
    metrics = msgspec.json.decode((results / "metrics.json").read_bytes())
    metrics |= {"alpha": 0.031, "beta": 0.8, "omega_ratio": 1.234, "sharpe_ratio": math.nan}
    page = write_report(results, metrics=metrics, path=tmp_path / "r.html").read_text()
    panel = section(page, "metrics-table")
    captions = re.findall(r"<caption>([^<]+)</caption>", panel)
    assert captions == ["Returns", "Benchmark", "Trades", "Exposure and costs", "Run", "More"]
    assert '<tr data-key="alpha"><th>Alpha (annual)</th><td>3.10%</td></tr>' in panel
    assert '<tr data-key="omega_ratio"><th>Omega ratio</th><td>1.234</td></tr>' in panel
    assert '<tr data-key="sharpe_ratio"><th>Sharpe ratio</th><td>n/a</td></tr>' in panel


def test_without_a_benchmark_file_there_is_no_overlay(results: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(results, copy)
    (copy / BENCHMARK_FILE).unlink()
    page = write_report(copy).read_text()
    assert "benchmark" not in payload(page)["timeline"]
    assert "benchmark: none" in page and "no benchmark in the results" in page


def test_a_directory_with_metrics_only_says_what_each_panel_lacks(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text('{"total_return": 0.1}')
    page = write_report(tmp_path, manifest={"complete": False, "incomplete_reason": "Ctrl-C"})
    text = page.read_text()
    data = payload(text)
    for key in ("timeline", "rolling", "histogram", "scatter", "symbols", "trades"):
        assert data[key] is None, key
    assert "Incomplete run: Ctrl-C" in text
    assert text.count("portfolio.parquet is not in the results") >= 4
    assert "trades.parquet is not in the results" in section(text, "trade-table")
    assert "orders.parquet is not in the results" in section(text, "rejected-orders")
    assert "needs 63 daily returns; the run has 0" in section(text, "rolling-sharpe-chart")


def test_text_from_the_data_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    hostile = "</script><script>alert(1)</script>"
    hand_trades(symbol=[hostile, "B"], exit_reason=["<img src=x>", "signal"]).write_parquet(
        tmp_path / "trades.parquet"
    )
    page = write_report(tmp_path).read_text()
    assert hostile not in page and "<img src=x>" not in page
    data = payload(page)
    assert data["trades"]["data"]["symbol"] == [hostile, "B"]
    assert data["symbols"]["data"]["symbol"] == sorted([hostile, "B"])


def test_a_rolling_window_can_be_chosen_and_must_be_two_or_more(
    results: Path, tmp_path: Path
) -> None:
    page = write_report(results, path=tmp_path / "r.html", rolling_window=20).read_text()
    data = payload(page)
    assert data["rolling_window"] == 20 and "20 daily returns, annualised" in page
    assert sum(v is not None for v in data["rolling"]["volatility"]) == 300 - 19  # days
    with pytest.raises(ConfigError, match="rolling_window is 1"):
        write_report(results, path=tmp_path / "r.html", rolling_window=1)


def test_the_recorder_wrote_its_own_report_and_lists_it(results: Path) -> None:
    manifest = msgspec.json.decode((results / "manifest.json").read_bytes())
    assert "report.html" in manifest["files"]


def test_a_run_with_one_portfolio_state_says_so(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 2, 21, tzinfo=UTC)],
            "equity": [100.0],
            "drawdown": [0.0],
            "gross_leverage": [0.0],
            "net_leverage": [0.0],
        }
    ).write_parquet(tmp_path / "portfolio.parquet")
    page = write_report(tmp_path).read_text()
    assert "a time chart needs two portfolio states; the run recorded 1" in page
    assert "the equity never fell below its high-water mark" in section(page, "worst-drawdowns")
    assert section(page, "monthly-heatmap").count('<td class="cell" ') == 1
    pl.DataFrame(schema=pl.read_parquet_schema(tmp_path / "portfolio.parquet")).write_parquet(
        tmp_path / "portfolio.parquet"
    )
    page = write_report(tmp_path).read_text()
    assert "the run recorded 0" in page
    assert "no portfolio states recorded" in section(page, "monthly-heatmap")


def test_beyond_ten_thousand_trades_the_scatter_draws_one_in_k(tmp_path: Path) -> None:
    n = 10_001
    hand_trades(
        pnl_net=[float(i % 7 - 3) for i in range(n)],
        max_adverse_pct=[float((i * 37) % 101) / 10 for i in range(n)],
    ).write_parquet(tmp_path / "trades.parquet")
    data = payload(write_report(tmp_path).read_text())
    scatter = data["scatter"]
    # every 2nd trade (T1, T3, ...), sorted by MAE for the chart
    assert scatter["step"] == 2 and len(scatter["mae"]) == 5_001
    assert sorted(scatter["trade"], key=lambda t: int(t[1:])) == [
        f"T{i}" for i in range(1, n + 1, 2)
    ]
    assert scatter["mae"] == sorted(scatter["mae"])
    assert data["trades"]["rows"] == n  # the table keeps every trade
    assert sum(v or 0 for v in data["histogram"]["wins"] + data["histogram"]["losses"]) == n
