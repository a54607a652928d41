"""The HTML report: one self-contained file that a researcher keeps open.

``write_report(results_dir)`` reads the results a run wrote (``portfolio``, ``trades``
and ``orders`` tables, ``metrics.json``, ``manifest.json``, ``config.yaml`` and, when the
run had one, ``benchmark_returns.parquet``) and writes ``report.html`` beside them:

- the metrics, grouped; equity with the benchmark overlaid; drawdown; rolling Sharpe
  ratio and volatility; gross and net exposure: time charts with hover read-outs and a
  shared zoom (drag to zoom all of them, double-click to reset);
- the five worst drawdowns, monthly returns, the trade P&L distribution, MFE against
  MAE, P&L by symbol and rejected orders by rule;
- every trade in a table sorted and filtered in the page (virtual scrolling: tens of
  thousands of trades stay fluid).

The page embeds everything it uses: uPlot (``assets/vendor``, 51 KB, MIT) draws the
charts on canvas, and our own script (``assets/report.js``) the tables. It fetches
nothing, so it opens offline and can be mailed. Why uPlot and not Plotly: Plotly's bundle
is 4.8 MB, in every report of every sweep run; uPlot gives what a time-series report
needs (hover, drag zoom, synced cursors, bars, points, time zones) in 1 % of that.
Numbers and layout are computed in Python (``_panels``, ``_page``) and tested without a
browser; what the browser draws is tested in headless Chromium (``tests/report``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record.outputs import atomic_write_bytes
from ml4t.backtest.report._inputs import BENCHMARK_FILE, ReportInputs, load_inputs
from ml4t.backtest.report._page import render_page

__all__ = [
    "BENCHMARK_FILE",
    "ReportInputs",
    "add_cli",
    "load_inputs",
    "render_page",
    "write_report",
]

ROLLING_WINDOW = 63  # sessions: a quarter of daily returns


def write_report(
    results_dir: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    manifest: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
    day_timezone: str | None = None,
    risk_free_rate: float | None = None,
    rolling_window: int = ROLLING_WINDOW,
) -> Path:
    """Write ``report.html`` (or ``path``) for the results in ``results_dir``; return it.

    ``metrics`` and ``manifest`` default to the directory's files (the recorder passes
    its own, which it writes after the report); ``day_timezone`` and ``risk_free_rate``
    to the run's ``config.yaml`` (``reporting.day_timezone``, ``reporting.risk_free_rate``),
    else UTC and 0. ``rolling_window`` is the number of daily returns behind each
    rolling Sharpe ratio and volatility.
    """
    if rolling_window < 2:
        raise ConfigError(
            f"rolling_window is {rolling_window}; a rolling Sharpe ratio or volatility "
            "needs at least 2 daily returns (the default is 63)"
        )
    inputs = load_inputs(
        results_dir,
        metrics=dict(metrics) if metrics is not None else None,
        manifest=dict(manifest) if manifest is not None else None,
        day_timezone=day_timezone,
        risk_free_rate=risk_free_rate,
    )
    page = render_page(inputs, rolling_window=rolling_window)
    target = Path(path) if path is not None else Path(results_dir) / "report.html"
    return atomic_write_bytes(target, page.encode())


# --------------------------------------------------------------------------- command line


def add_cli(commands: Any) -> None:
    """Add ``report`` to the ``ml4t`` command."""
    report = commands.add_parser("report", help="write the HTML report of a results directory")
    report.add_argument("results", help="a results directory (reporting.output_dir)")
    report.add_argument("--output", help="where to write the report (default: RESULTS/report.html)")
    report.add_argument(
        "--rolling-window",
        type=int,
        default=ROLLING_WINDOW,
        help=f"daily returns per rolling Sharpe/volatility point (default {ROLLING_WINDOW})",
    )
    report.set_defaults(func=_cli_report)


def _cli_report(args: Any) -> int:
    print(write_report(args.results, path=args.output, rolling_window=args.rolling_window))
    return 0
