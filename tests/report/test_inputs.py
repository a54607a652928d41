"""What the report reads from a results directory, and the errors for what it cannot use."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest.errors import ConfigError, DataValidationError, ResultsNotFoundError
from ml4t.backtest.report import BENCHMARK_FILE, load_inputs, write_report
from tests.report._results import hand_trades


def _benchmark(tmp_path: Path, frame: pl.DataFrame) -> Path:
    frame.write_parquet(tmp_path / BENCHMARK_FILE)
    return tmp_path


def test_a_missing_results_directory_is_named() -> None:
    with pytest.raises(ResultsNotFoundError, match="no results directory at /nowhere/run"):
        write_report("/nowhere/run")


def test_tables_the_run_did_not_keep_are_none_and_config_gives_the_day_timezone(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.yaml").write_text(
        "reporting:\n  day_timezone: America/New_York\n  risk_free_rate: 0.02\n"
    )
    inputs = load_inputs(tmp_path)
    assert (inputs.portfolio, inputs.trades, inputs.orders, inputs.benchmark) == (None,) * 4
    assert (inputs.day_timezone, inputs.risk_free_rate) == ("America/New_York", 0.02)
    assert inputs.periods_per_year == 252.0 and inputs.initial_equity is None
    # what the caller passes wins over the file
    assert load_inputs(tmp_path, day_timezone="UTC").day_timezone == "UTC"


def test_an_unknown_day_timezone_fails_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("reporting:\n  day_timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match=r"'Mars/Olympus' \(reporting.day_timezone in .*config"):
        load_inputs(tmp_path)


def test_a_trades_table_without_a_needed_column_is_named(tmp_path: Path) -> None:
    hand_trades(pnl_net=[1.0]).drop("max_adverse_pct").write_parquet(tmp_path / "trades.parquet")
    with pytest.raises(
        DataValidationError, match=r"trades.parquet has no column 'max_adverse_pct'"
    ):
        load_inputs(tmp_path)


def test_a_benchmark_date_may_be_a_timestamp(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "date": pl.datetime_range(
                pl.datetime(2024, 1, 3), pl.datetime(2024, 1, 5), "1d", eager=True
            ).dt.replace_time_zone("UTC"),
            "return": [0.01, -0.02, 0.03],
        }
    ).reverse()
    benchmark = load_inputs(_benchmark(tmp_path, frame)).benchmark
    assert benchmark is not None
    assert benchmark.get_column("date").to_list() == [date(2024, 1, d) for d in (3, 4, 5)]
    assert benchmark.get_column("return").to_list() == [0.01, -0.02, 0.03]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"day": [date(2024, 1, 2)], "return": [0.1]}), r"no column 'date'"),
        (pl.DataFrame({"date": [date(2024, 1, 2)], "ret": [0.1]}), r"no column 'return'"),
        (pl.DataFrame({"date": ["2024-01-02"], "return": [0.1]}), r"'date' is String, not a date"),
        (pl.DataFrame({"date": [date(2024, 1, 2)], "return": ["1%"]}), r"'return' is String"),
        (
            pl.DataFrame(
                {
                    "date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)],
                    "return": [0.1, 0.2, None],
                }
            ),
            r"1 row\(s\) with a null or non-finite 'return', first at row 2 \(date 2024-01-04",
        ),
        (
            pl.DataFrame(
                {"date": [date(2024, 1, 2), date(2024, 1, 3)], "return": [float("inf"), 0.1]}
            ),
            r"non-finite 'return', first at row 0",
        ),
        (
            pl.DataFrame(
                {
                    "date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 3)],
                    "return": [0.1, 0.2, 0.3],
                }
            ),
            r"date 2024-01-03 appears 2 times \(first at row 1\) in column 'date'",
        ),
    ],
)
def test_a_bad_benchmark_file_is_refused_with_the_row_and_column(
    tmp_path: Path, frame: pl.DataFrame, message: str
) -> None:
    with pytest.raises(DataValidationError, match=BENCHMARK_FILE + ".*" + message):
        load_inputs(_benchmark(tmp_path, frame))
