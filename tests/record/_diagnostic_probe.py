"""Run inside a Python 3.12 environment with ml4t-diagnostic and ml4t side by side
(``tests/record/test_diagnostic.py`` builds it): call ml4t-diagnostic's entry points on
a run's results exactly as a user would, with no adapter code, and print their figures
as one JSON object.

    python _diagnostic_probe.py RESULTS_DIR OUT_DIR [PERIODS_PER_YEAR]

``PERIODS_PER_YEAR`` is given only for a run without a calendar (its bridge then needs
it). Warnings that ml4t-diagnostic's own modules emit (a fallback it had to take, a
surface it could not read) are collected into ``"warnings"``.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import polars as pl
from ml4t.diagnostic.evaluation import PortfolioAnalysis
from ml4t.diagnostic.evaluation.trade_analysis import TradeAnalysis, TradeStatistics
from ml4t.diagnostic.integration import (
    TradeRecord,
    compute_metrics_from_result,
    generate_tearsheet_from_result,
    generate_tearsheet_from_run_artifacts,
    portfolio_analysis_from_result,
    profile_from_run_artifacts,
)

from ml4t.backtest import BacktestResult, RecorderResults

PERFORMANCE = ("sharpe_ratio", "sortino_ratio", "cagr", "annualized_volatility", "max_drawdown")
EDGE = ("num_trades", "win_rate", "profit_factor", "total_fees")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("ml4t"):
            self.seen.append(f"{record.name}: {record.getMessage()}")


def statistics(stats: TradeStatistics) -> dict:
    return {
        "n_trades": stats.n_trades,
        "win_rate": stats.win_rate,
        "total_pnl": stats.total_pnl,
        "profit_factor": stats.profit_factor,
        "avg_duration_days": stats.avg_duration_days,
    }


def portfolio(analysis: PortfolioAnalysis) -> dict:
    m = analysis.compute_summary_stats()
    return {
        "sharpe_ratio": m.sharpe_ratio,
        "sortino_ratio": m.sortino_ratio,
        "annual_return": m.annual_return,
        "annual_volatility": m.annual_volatility,
        "max_drawdown": m.max_drawdown,
        "total_return": m.total_return,
    }


def main(results: Path, out: Path, periods: int | None) -> dict:
    diagnostic = results / "diagnostic"
    metrics = json.loads((results / "metrics.json").read_text())
    ppy = periods or metrics["periods_per_year"]
    # a run without a calendar says so (its days are dates, not NYSE sessions)
    dates = {"calendar": None} if metrics["calendar"] is None else {}
    report: dict = {}

    # trade analysis: TradeRecord(**row) and the frame statistics on our files
    records = pl.read_parquet(diagnostic / "trade_records.parquet")
    analysis = TradeAnalysis([TradeRecord(**row) for row in records.iter_rows(named=True)])
    report["trade_analysis"] = statistics(analysis.compute_statistics())
    report["trade_analysis"]["worst"] = [t.pnl for t in analysis.worst_trades(n=3)]
    result = analysis.analyze(n_worst=3, n_best=3)
    report["trade_analysis"]["analyzed"] = result.n_total_trades
    report["trade_analysis"]["best"] = [t.pnl for t in result.best_trades]
    report["trade_statistics"] = statistics(TradeStatistics.from_frame(records))
    trades = pl.read_parquet(diagnostic / "trades.parquet")
    report["trade_statistics_artifact"] = statistics(TradeStatistics.from_frame(trades))

    # portfolio analysis: our daily returns as they are, then with holdings and fills
    daily = pl.read_parquet(results / "daily_returns.parquet")
    report["portfolio"] = portfolio(
        PortfolioAnalysis.from_frames(daily, timestamp_col="date", periods_per_year=ppy, **dates)
    )
    full = PortfolioAnalysis.from_frames(
        pl.read_parquet(diagnostic / "daily_returns.parquet"),
        valuations=pl.read_parquet(diagnostic / "daily_returns.parquet"),
        positions=pl.read_parquet(diagnostic / "positions.parquet"),
        transactions=pl.read_parquet(diagnostic / "fills.parquet"),
        timestamp_col="date",
        transaction_timestamp_col="timestamp",
        periods_per_year=ppy,
        **dates,
    )
    report["portfolio_full"] = portfolio(full)
    if not dates:  # with calendar=None it matches fills to return dates by equal keys only
        costs = full.compute_transaction_analysis().metrics
        report["portfolio_full"]["total_implementation_cost"] = costs["total_implementation_cost"]
        report["portfolio_full"]["num_fills"] = costs["num_fills"]

    # the run-artifact profile and tearsheet on the folder
    profile = profile_from_run_artifacts(diagnostic, periods_per_year=periods)
    report["profile"] = {
        "calendar": profile.resolved_calendar,
        "periods_per_year": profile.periods_per_year,
        "days": len(profile.daily_returns),
        **{k: profile.performance["metrics"][k] for k in (*PERFORMANCE, "total_return")},
        **{k: profile.edge["metrics"][k] for k in EDGE},
        "total_implementation_cost": profile.activity["metrics"].get("total_implementation_cost"),
        "surfaces": {k: v.status.value for k, v in profile.availability.surfaces.items()},
        "strategy_name": profile.strategy_metadata.get("strategy_name"),
    }
    page = out / "tearsheet.html"
    generate_tearsheet_from_run_artifacts(diagnostic, output_path=page, periods_per_year=periods)
    report["tearsheet"] = {"path": str(page), "bytes": page.stat().st_size}

    # the in-memory result: BacktestResult.from_results(RecorderResults.load(dir))
    view = BacktestResult.from_results(RecorderResults.load(results))
    computed = compute_metrics_from_result(view, periods_per_year=periods)
    report["from_result"] = {k: computed[k] for k in (*PERFORMANCE, "num_trades", "win_rate")}
    kept = portfolio_analysis_from_result(view, periods_per_year=periods)
    report["from_result"]["portfolio"] = portfolio(kept)
    second = out / "tearsheet_from_result.html"
    generate_tearsheet_from_result(view, output_path=second, periods_per_year=periods)
    report["from_result"]["tearsheet_bytes"] = second.stat().st_size
    return report


if __name__ == "__main__":
    handler = Collect()
    logging.getLogger().addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if sys.argv[3:] else None)
    ours = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if "ml4t" in w.filename and issubclass(w.category, UserWarning)
    ]
    out["warnings"] = handler.seen + ours
    print(json.dumps(out))
