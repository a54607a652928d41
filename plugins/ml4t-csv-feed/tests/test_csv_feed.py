"""CsvFeed: batches per timestamp with an Enum of the universe; bad files are named."""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl
import pytest
from ml4t_csv_feed import CsvFeed

from ml4t.backtest import ConfigError, DataValidationError, FeedConfig, MarketBatch, to_ns
from ml4t.backtest.testing import Capture, run_components
from ml4t.backtest.topics import MARKET

ROWS = """timestamp,symbol,open,high,low,close,volume
2024-01-02T14:31:00+00:00,BBB,20,21,19,20.5,100
2024-01-02T14:31:00+00:00,AAA,10,11,9,10.5,200
2024-01-02T14:32:00+00:00,AAA,10.5,12,10,11,300
"""


def _config(path: Path, **asset: object) -> FeedConfig:
    return msgspec.convert({"asset": {"path": str(path), **asset}}, FeedConfig)


def test_prepare_reports_universe_span_and_columns(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(ROWS)
    feed = CsvFeed(_config(tmp_path))
    assert feed.prepare() == {"rows": 3, "timestamps": 2, "symbols": 2}
    assert feed.symbols == ("AAA", "BBB")
    assert feed.first_ts == to_ns("2024-01-02T14:31:00+00:00")
    assert feed.last_ts == to_ns("2024-01-02T14:32:00+00:00")
    assert feed.columns == ("symbol", "open", "high", "low", "close", "volume")


def test_duplicate_rows_are_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(ROWS + "2024-01-02T14:32:00+00:00,AAA,1,1,1,1,1\n")
    with pytest.raises(
        DataValidationError, match=r"asset data at .*: 2 rows repeat a \(timestamp, symbol\) pair"
    ):
        CsvFeed(_config(tmp_path)).prepare()


def test_missing_column_and_unsupported_key_are_named(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(ROWS)
    with pytest.raises(DataValidationError, match=r"no column\(s\) \['rsi'\]"):
        CsvFeed(_config(tmp_path, indicators=["rsi"])).prepare()
    config = msgspec.structs.replace(_config(tmp_path), outside_session="drop", calendar="NYSE")
    with pytest.raises(ConfigError, match=r"\$\.data\.outside_session"):
        CsvFeed(config)
    with pytest.raises(DataValidationError, match="no CSV file"):
        CsvFeed(_config(tmp_path / "nowhere")).prepare()


def test_batches_carry_each_timestamps_rows_with_enum_codes(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(ROWS)
    capture = Capture(MARKET)
    run_components(CsvFeed(_config(tmp_path)), capture)
    batches = capture.of_type(MarketBatch)
    assert [b.frame.height for b in batches] == [2, 1]
    first = batches[0]
    assert first.frame["symbol"].dtype == pl.Enum(["AAA", "BBB"])
    assert first.symbol_codes().tolist() == [0, 1]  # sorted by symbol within a timestamp
    assert first.frame["close"].to_list() == [10.5, 20.5]
    assert batches[1].symbol_codes().tolist() == [0]
