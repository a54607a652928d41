"""pyfolio, quantstats and empyrical consume a run's results with no glue, and their
figures equal ours on the daily returns (to 1e-9), or differ by the documented relation.

One run of the demo (minute bars, NYSE, SPY as the benchmark) from files in a temporary
directory (``demo_run`` in conftest.py); the results are read back from that directory,
as a user's notebook would.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import empyrical
import numpy as np
import pandas as pd
import polars as pl
import pytest

from ml4t.backtest import RecorderResults

REL = 1e-9
# the analysis libraries' own warnings (deprecations under pandas 3 and matplotlib 3.11,
# pyfolio's "zipline not found" on import) are theirs, not ours
pytestmark = [
    pytest.mark.filterwarnings(f"ignore::Warning:{module}")
    for module in ("pyfolio.*", "quantstats.*", "seaborn.*", "matplotlib.*", "empyrical.*")
]


@pytest.fixture(scope="module")
def run(demo_run: tuple[Any, RecorderResults]) -> tuple[Any, RecorderResults]:
    return demo_run  # tests/record/conftest.py


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, float(theirs), rel_tol=REL, abs_tol=1e-12)


def test_the_daily_series_is_on_disk_and_the_same_in_memory(run) -> None:
    results, loaded = run
    on_disk = pl.read_parquet(loaded.output_dir / "daily_returns.parquet")
    assert on_disk.columns == ["date", "return", "equity", "cash"]
    assert on_disk.height == 60 == results.metrics["return_periods"]
    assert results.returns().equals(loaded.returns())
    assert results.daily_positions.equals(loaded.daily_positions)
    assert results.returns("1W").equals(loaded.returns("1W"))
    # positions plus cash are the equity at each day's end
    _, positions, _ = loaded.to_pyfolio()
    np.testing.assert_allclose(positions.sum(axis=1), on_disk["equity"], rtol=1e-12)
    assert results.metrics["periods_per_year"] == 252  # NYSE's typical year, not 2023's 250
    # minute bars: the deepest fall inside a day is deeper than the daily one
    assert results.metrics["max_drawdown_intraday"] < results.metrics["max_drawdown"] < 0


def test_empyrical_equals_our_metrics_on_the_daily_returns(run) -> None:
    _, loaded = run
    m = loaded.metrics
    returns, _, _ = loaded.to_pyfolio()
    assert close(m["sharpe_ratio"], empyrical.sharpe_ratio(returns))
    assert close(m["sortino_ratio"], empyrical.sortino_ratio(returns))
    assert close(m["annual_return"], empyrical.annual_return(returns))
    assert close(m["annual_volatility"], empyrical.annual_volatility(returns))
    assert close(m["max_drawdown"], empyrical.max_drawdown(returns))
    assert close(m["calmar_ratio"], empyrical.calmar_ratio(returns))
    assert close(m["total_return"], empyrical.cum_returns_final(returns))


def _pyfolio_stats(loaded: RecorderResults) -> Any:
    import pyfolio

    returns, positions, transactions = loaded.to_pyfolio()
    return pyfolio.timeseries.perf_stats(returns, positions=positions, transactions=transactions)


def test_pyfolio_perf_stats_equal_ours(run) -> None:
    _, loaded = run
    stats = _pyfolio_stats(loaded)
    m = loaded.metrics
    assert close(m["sharpe_ratio"], stats["Sharpe ratio"])
    assert close(m["sortino_ratio"], stats["Sortino ratio"])
    assert close(m["annual_return"], stats["Annual return"])
    assert close(m["annual_volatility"], stats["Annual volatility"])
    assert close(m["max_drawdown"], stats["Max drawdown"])
    assert close(m["calmar_ratio"], stats["Calmar ratio"])


def test_pyfolio_full_tear_sheet_runs_on_them(run) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyfolio

    _, loaded = run
    returns, positions, transactions = loaded.to_pyfolio()
    bench = loaded.benchmark_returns()
    benchmark = pd.Series(bench["return"].to_numpy(), index=returns.index)
    pyfolio.create_full_tear_sheet(
        returns, positions=positions, transactions=transactions, benchmark_rets=benchmark
    )
    assert plt.get_fignums(), "the tear sheet drew its figures"
    plt.close("all")


def test_quantstats_equals_our_metrics(run, tmp_path: Path) -> None:
    import quantstats as qs

    _, loaded = run
    m = loaded.metrics
    returns = loaded.to_quantstats()
    assert close(m["sharpe_ratio"], qs.stats.sharpe(returns))
    assert close(m["sortino_ratio"], qs.stats.sortino(returns))
    assert close(m["annual_return"], qs.stats.cagr(returns))
    assert close(m["annual_volatility"], qs.stats.volatility(returns))
    assert close(m["max_drawdown"], qs.stats.max_drawdown(returns))
    # quantstats' adjusted Sortino divides by sqrt(2) (Schwager), to compare with Sharpe
    assert close(m["sortino_ratio"] / math.sqrt(2), qs.stats.adjusted_sortino(returns))
    bench = pd.Series(loaded.benchmark_returns()["return"].to_numpy(), index=returns.index)
    greeks = qs.stats.greeks(returns, bench)
    assert close(m["beta"], greeks["beta"])
    # quantstats annualises alpha by simple multiplication; we compound, as empyrical
    assert close(m["alpha"], (1 + greeks["alpha"] / 252) ** 252 - 1)
    # quantstats' information ratio is per period; ours is annualised
    assert close(m["information_ratio"], qs.stats.information_ratio(returns, bench) * 252**0.5)
    out = tmp_path / "tearsheet.html"
    qs.reports.html(returns, benchmark=bench, output=str(out))
    assert out.stat().st_size > 10_000


def test_benchmark_metrics_equal_empyrical(run) -> None:
    _, loaded = run
    m = loaded.metrics
    returns, _, _ = loaded.to_pyfolio()
    bench = pd.Series(loaded.benchmark_returns()["return"].to_numpy(), index=returns.index)
    alpha, beta = empyrical.alpha_beta(returns, bench)
    assert close(m["alpha"], alpha) and close(m["beta"], beta)
    assert close(m["up_capture"], empyrical.up_capture(returns, bench))
    assert close(m["down_capture"], empyrical.down_capture(returns, bench))
    assert close(m["information_ratio"], empyrical.excess_sharpe(returns, bench) * 252**0.5)
    active = (returns - bench).to_numpy()
    assert close(m["tracking_error"], active.std(ddof=1) * 252**0.5)
    assert close(m["benchmark_annual_return"], empyrical.annual_return(bench))
    assert close(m["benchmark_max_drawdown"], empyrical.max_drawdown(bench))
