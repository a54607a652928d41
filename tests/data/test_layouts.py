"""Data as users have it: one data set in every layout gives one and the same run.

The same bars (4 symbols x 6 sessions of minute bars across a month end, with signal
columns) are written as one parquet file, one CSV (plain and gzipped), a directory of
per-symbol CSV or parquet files, hive partitions by symbol or by date, and a glob of
monthly CSV files. The same engine config (a signal strategy, next-open fills, costs, a
start/end range pushed down to the reader, chunks of a few hundred rows) runs over
each; every table the run writes must equal the one-parquet-file run's, decoded and
byte for byte. Then the errors a layout can produce, each naming what to fix.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import ConfigError, DataValidationError
from ml4t.backtest.cli import main
from ml4t.backtest.config import load_config
from ml4t.backtest.data import (
    AssetSourceConfig,
    FeedConfig,
    ParquetFeed,
    decode_feed_config,
)
from ml4t.backtest.data._assets import merge_files
from ml4t.backtest.data._source import TS, data_fingerprint
from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticFrames, make_frames
from ml4t.backtest.engine import BacktestEngine
from tests.engine.strategies import SignalBatch

SIGNALS = ["signal_entry", "signal_exit", "confidence"]
TABLES = (
    "trades.parquet",
    "fills.parquet",
    "orders.parquet",
    "order_history.parquet",
    "portfolio.parquet",
    "cash_flows.parquet",
    "daily_returns.parquet",
    "daily_positions.parquet",
)
SAME_IN_MANIFEST = ("bar_events", "market_batches", "events_processed", "first_event")


@pytest.fixture(scope="module")
def synthetic() -> SyntheticFrames:
    return make_frames(SyntheticConfig(n_symbols=4, n_days=6, start="2023-01-26", seed=6))


@pytest.fixture(scope="module")
def bars(synthetic: SyntheticFrames) -> pl.DataFrame:
    """Long-format bars with signals, sorted by (timestamp, symbol); spans Jan and Feb."""
    return synthetic.asset


# --------------------------------------------------------------------------- writers

Layout = Callable[[pl.DataFrame, Path], tuple[str, dict[str, str]]]


def _parts(df: pl.DataFrame, key: pl.Expr) -> Iterator[tuple[str, pl.DataFrame]]:
    for (value,), part in df.with_columns(key.alias("__key")).group_by(
        "__key", maintain_order=True
    ):
        yield str(value), part.drop("__key")


def one_parquet(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    df.write_parquet(root / "bars.parquet")
    return str(root / "bars.parquet"), {}


def one_csv(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    df.write_csv(root / "bars.csv")
    return str(root / "bars.csv"), {}


def one_csv_gz(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    (root / "bars.csv.gz").write_bytes(gzip.compress(df.write_csv().encode()))
    return str(root / "bars.csv.gz"), {}


def per_symbol_csv(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    (root / "bars").mkdir()
    for symbol, part in _parts(df, pl.col("symbol")):
        part.drop("symbol").write_csv(root / "bars" / f"{symbol}.csv")
    return str(root / "bars"), {"symbol_from": "filename"}


def per_symbol_parquet(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    (root / "bars").mkdir()
    for symbol, part in _parts(df, pl.col("symbol")):
        part.drop("symbol").write_parquet(root / "bars" / f"{symbol}.parquet")
    return str(root / "bars"), {"symbol_from": "filename"}


def hive_symbol_parquet(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    for symbol, part in _parts(df, pl.col("symbol")):
        (root / "bars" / f"symbol={symbol}").mkdir(parents=True)
        part.drop("symbol").write_parquet(root / "bars" / f"symbol={symbol}" / "part.parquet")
    return str(root / "bars"), {}


def hive_symbol_csv(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    for symbol, part in _parts(df, pl.col("symbol")):
        (root / "bars" / f"symbol={symbol}").mkdir(parents=True)
        part.drop("symbol").write_csv(root / "bars" / f"symbol={symbol}" / "part.csv")
    return str(root / "bars"), {}


def hive_date_csv(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    for day, part in _parts(df, pl.col("timestamp").dt.date()):
        (root / "bars" / f"date={day}").mkdir(parents=True)
        part.write_csv(root / "bars" / f"date={day}" / "part.csv")
    return str(root / "bars"), {}


def monthly_csv_glob(df: pl.DataFrame, root: Path) -> tuple[str, dict[str, str]]:
    (root / "bars").mkdir()
    months = list(_parts(df, pl.col("timestamp").dt.strftime("%Y-%m")))
    assert [m for m, _ in months] == ["2023-01", "2023-02"]
    for month, part in months:
        part.write_csv(root / "bars" / f"{month}.csv")
    return str(root / "bars" / "*.csv"), {}


LAYOUTS: dict[str, Layout] = {
    "one_csv": one_csv,
    "one_csv_gz": one_csv_gz,
    "per_symbol_csv": per_symbol_csv,
    "per_symbol_parquet": per_symbol_parquet,
    "hive_symbol_parquet": hive_symbol_parquet,
    "hive_symbol_csv": hive_symbol_csv,
    "hive_date_csv": hive_date_csv,
    "monthly_csv_glob": monthly_csv_glob,
}


# --------------------------------------------------------------------------- the same run


def run(out: Path, asset: dict, **data: object) -> BacktestEngine:
    """The one engine config of this module over ``asset`` (a data.asset section)."""
    config = load_config(
        {
            "data": {
                "asset": {"signals": SIGNALS, **asset},
                "start": "2023-01-27",
                "end": "2023-02-02",
                "chunk_memory_mb": 0.2,
                **data,
            },
            "execution": {
                "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
                "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
            },
            "reporting": {"output_dir": str(out)},
        }
    )
    engine = BacktestEngine(config, strategy=SignalBatch("strategy"))
    engine.run()
    return engine


@pytest.fixture(scope="module")
def reference(bars: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results of the run over one parquet file: layout (a)."""
    root = tmp_path_factory.mktemp("reference")
    path, keys = one_parquet(bars, root)
    engine = run(root / "out", {"path": path, **keys})
    trades = pl.read_parquet(root / "out" / "trades.parquet")
    assert trades.height >= 4 and trades["symbol"].n_unique() >= 3, "the scenario must trade"
    assert isinstance(engine.feed, ParquetFeed) and engine.feed.report is not None
    assert engine.feed.report.chunks >= 4, "the scenario must read several chunks"
    assert engine.feed.first_ts is not None
    assert engine.feed.first_ts > int(bars["timestamp"].min().timestamp() * 1e9)  # start
    return root / "out"


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def assert_same_results(out: Path, reference: Path) -> None:
    for name in TABLES:
        got, want = pl.read_parquet(out / name), pl.read_parquet(reference / name)
        assert got.equals(want), name
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert (out / "metrics.json").read_bytes() == (reference / "metrics.json").read_bytes()
    got_m, want_m = manifest(out), manifest(reference)
    for key in SAME_IN_MANIFEST:
        assert got_m[key] == want_m[key], key
    # the table files and their hashes too; config.yaml names another path, and the data
    # fingerprint hashes other files (names, sizes, schemas): both differ, as they should
    files = {k: v for k, v in got_m["files"].items() if k != "config.yaml"}
    assert files == {k: v for k, v in want_m["files"].items() if k != "config.yaml"}
    assert got_m["data_fingerprint"] != want_m["data_fingerprint"]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_results_of_one_parquet_file(
    layout: str, bars: pl.DataFrame, reference: Path, tmp_path: Path
) -> None:
    path, keys = LAYOUTS[layout](bars, tmp_path)
    engine = run(tmp_path / "out", {"path": path, **keys})
    assert isinstance(engine.feed, ParquetFeed) and engine.feed.report is not None
    assert engine.feed.report.chunks >= 4
    assert_same_results(tmp_path / "out", reference)


def test_signal_data_and_context_as_csv_give_the_results_of_parquet(
    synthetic: SyntheticFrames, tmp_path: Path
) -> None:
    # bars without signals; daily signals joined as of available_at; context fields
    bars = synthetic.asset.drop(SIGNALS)
    bars.write_parquet(tmp_path / "bars.parquet")
    synthetic.signals.write_parquet(tmp_path / "signals.parquet")
    synthetic.context.write_parquet(tmp_path / "context.parquet")
    (tmp_path / "signals").mkdir()
    for symbol, part in _parts(synthetic.signals, pl.col("symbol")):
        part.drop("symbol").write_csv(tmp_path / "signals" / f"{symbol}.csv")
    synthetic.context.write_csv(tmp_path / "context.csv")

    def side(signals: dict, context: dict, out: str) -> Path:
        run(
            tmp_path / out,
            {"path": str(tmp_path / "bars.parquet"), "signals": []},
            signal_data={"columns": SIGNALS, "available_at": "available_at", **signals},
            context={"fields": ["vix", "spy"], **context},
        )
        return tmp_path / out

    parquet = side(
        {"path": str(tmp_path / "signals.parquet")},
        {"path": str(tmp_path / "context.parquet")},
        "parquet",
    )
    csv = side(
        {"path": str(tmp_path / "signals"), "symbol_from": "filename"},
        {"path": str(tmp_path / "context.csv")},
        "csv",
    )
    trades = pl.read_parquet(parquet / "trades.parquet")
    assert trades.height >= 2 and trades["entry_vix"].is_not_null().all()
    assert_same_results(csv, parquet)


def test_chunks_of_a_csv_glob_read_only_the_files_their_range_meets(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    # CSV has no row-group statistics: planning learns each file's span instead
    path, _ = monthly_csv_glob(bars, tmp_path)
    feed = ParquetFeed(FeedConfig(asset=AssetSourceConfig(path=path), chunk_memory_mb=0.2))
    feed.prepare()
    assets = feed._assets
    assert assets is not None and len(assets.plan) >= 4
    jan, feb = tmp_path / "bars" / "2023-01.csv", tmp_path / "bars" / "2023-02.csv"
    ns = [int(t.timestamp()) * 10**9 for t in bars["timestamp"]]
    in_jan = bars["timestamp"].dt.month() == 1
    jan_ns = [t for t, j in zip(ns, in_jan, strict=True) if j]
    feb_ns = [t for t, j in zip(ns, in_jan, strict=True) if not j]
    assert assets.file_spans == {
        jan: (min(jan_ns), max(jan_ns)),
        feb: (min(feb_ns), max(feb_ns)),
    }
    first, last = assets.plan.ranges()[0], assets.plan.ranges()[-1]
    scanned = assets._frame_for(*first).select(pl.len()).collect().item()
    assert scanned == len(jan_ns)  # the first chunk scans January only
    assert assets._frame_for(*last).select(pl.len()).collect().item() == len(feb_ns)


# --------------------------------------------------------------------------- the CSV rule


def prepared(path: Path | str, **asset: object) -> ParquetFeed:
    feed = ParquetFeed(FeedConfig(asset=AssetSourceConfig(path=str(path), **asset)))
    feed.prepare()
    return feed


def first_batch(feed: ParquetFeed) -> pl.DataFrame:
    assert feed._assets is not None
    return feed._assets.checked(*feed._assets.plan.ranges()[0])[0]


def test_naive_csv_times_are_utc_or_in_the_configured_timezone(tmp_path: Path) -> None:
    rows = "timestamp,symbol,open,high,low,close,volume\n2023-01-03 09:31:00,AAA,1,2,0.5,1.5,10\n"
    (tmp_path / "bars.csv").write_text(rows)
    utc = prepared(tmp_path / "bars.csv")
    ny = prepared(tmp_path / "bars.csv", timezone="America/New_York")
    nine_31_utc = 1_672_738_260 * 10**9  # 2023-01-03T09:31:00Z
    assert utc.first_ts == nine_31_utc
    assert ny.first_ts == nine_31_utc + 5 * 3600 * 10**9  # EST is UTC-5
    # a value with an offset is that instant, whatever timezone says
    (tmp_path / "aware.csv").write_text(rows.replace("09:31:00", "09:31:00-05:00"))
    assert prepared(tmp_path / "aware.csv").first_ts == nine_31_utc + 5 * 3600 * 10**9


def test_timestamp_format_reads_non_iso_times_and_dates(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(
        "timestamp,symbol,open,high,low,close,volume\n01/03/2023 09:31,AAA,1,2,0.5,1.5,10\n"
    )
    feed = prepared(tmp_path / "bars.csv", timestamp_format="%m/%d/%Y %H:%M")
    assert feed.first_ts == 1_672_738_260 * 10**9
    # a format without a time of day is a Date: a daily bar labelled by its day's start
    (tmp_path / "daily.csv").write_text(
        "date,symbol,open,high,low,close,volume\n2023-01-03,AAA,1,2,0.5,1.5,10\n"
    )
    daily = prepared(
        tmp_path / "daily.csv",
        timestamp_column="date",
        bar_label="start",
        bar_interval="16h",
        timezone="America/New_York",
    )
    assert daily.first_ts == 1_672_779_600 * 10**9  # 2023-01-03T16:00-05:00


def test_csv_numbers_are_float64_booleans_are_booleans_other_columns_are_not_read(
    tmp_path: Path,
) -> None:
    lines = ["timestamp,symbol,open,high,low,close,volume,entry,note"]
    lines += [f"2023-01-03T14:{31 + i}:00Z,AAA,1,2,1,2,{100 + i},{i % 2 == 0},x" for i in range(3)]
    lines.append("2023-01-03T14:34:00Z,AAA,1,2,1,2,103.5,false,not a number either")
    (tmp_path / "bars.csv").write_text("\n".join(lines) + "\n")
    feed = prepared(tmp_path / "bars.csv", signals=["entry"])
    assert feed._assets is not None
    schema = feed._assets.source.schema
    assert schema["volume"] == pl.Float64 and schema["open"] == pl.Float64  # "1" is 1.0
    assert schema["entry"] == pl.Boolean
    assert schema["timestamp"] == pl.Datetime("us", "UTC")
    frame = first_batch(feed)
    assert frame["volume"].to_list() == [100.0, 101.0, 102.0, 103.5]
    assert frame["entry"].to_list() == [1.0, 0.0, 1.0, 0.0]
    assert "note" not in frame.columns


# --------------------------------------------------------------------------- errors


def fails(path: Path | str, **asset: object) -> str:
    with pytest.raises(DataValidationError) as info:
        prepared(path, **asset)
    message = str(info.value)
    assert "Traceback" not in message and "polars" not in message.lower(), message
    return message


def test_directory_mixing_parquet_and_csv_is_rejected_naming_two_files(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    (tmp_path / "bars").mkdir()
    bars.head(100).write_parquet(tmp_path / "bars" / "2023-01.parquet")
    bars.tail(100).write_csv(tmp_path / "bars" / "2023-02.csv")
    msg = fails(tmp_path / "bars")
    assert msg.startswith("rule mixed_formats:"), msg
    assert f"{tmp_path / 'bars' / '2023-01.parquet'} and {tmp_path / 'bars' / '2023-02.csv'}" in msg


def test_csv_given_as_parquet_says_it_looks_like_csv(bars: pl.DataFrame, tmp_path: Path) -> None:
    bars.head(10).write_csv(tmp_path / "bars.csv")
    msg = fails(tmp_path / "bars.csv", format="parquet")
    assert f"asset file {tmp_path / 'bars.csv'} is not a readable parquet file" in msg, msg
    assert "looks like CSV: set data.asset.format: csv" in msg, msg
    # a CSV behind a .parquet name says the same
    (tmp_path / "bars.parquet").write_bytes((tmp_path / "bars.csv").read_bytes())
    assert "looks like CSV: set data.asset.format: csv" in fails(tmp_path / "bars.parquet")


def test_parquet_given_as_csv_says_it_is_parquet(bars: pl.DataFrame, tmp_path: Path) -> None:
    bars.head(10).write_parquet(tmp_path / "bars.parquet")
    msg = fails(tmp_path / "bars.parquet", format="csv")
    assert "is a parquet file, not CSV: set data.asset.format: parquet" in msg, msg


def test_csv_value_that_is_not_a_time_names_file_row_line_and_column(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    monthly_csv_glob(bars, tmp_path)
    feb = tmp_path / "bars" / "2023-02.csv"
    lines = feb.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "02/01/2023 09:36")  # data row 5
    feb.write_text("\n".join(lines) + "\n")
    msg = fails(str(tmp_path / "bars" / "*.csv"))
    assert msg.startswith(
        f"rule bad_timestamp: column 'timestamp' in asset file {feb}, row 5 (line 6): "
        "'02/01/2023 09:36' does not match the time format '%Y-%m-%dT%H:%M:%S%.f%#z' "
        "(ISO-8601, detected from the first value); 1 row(s) of this file in all"
    ), msg
    assert "set data.asset.timestamp_format" in msg


def test_timestamp_format_that_does_not_match_names_the_first_row(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    bars.head(10).write_csv(tmp_path / "bars.csv")
    msg = fails(tmp_path / "bars.csv", timestamp_format="%d.%m.%Y %H:%M")
    assert msg.startswith(
        f"rule bad_timestamp: column 'timestamp' in asset file {tmp_path / 'bars.csv'}, "
        "row 1 (line 2): '2023-01-26T14:31:00.000000000+0000' does not match the time "
        "format '%d.%m.%Y %H:%M'; 10 row(s) of this file in all"
    ), msg


def test_first_time_that_is_not_iso_asks_for_timestamp_format(tmp_path: Path) -> None:
    (tmp_path / "bars.csv").write_text(
        "symbol,timestamp,open,high,low,close,volume\nAAA,01/03/2023 09:31,1,2,0.5,1.5,10\n"
    )
    msg = fails(tmp_path / "bars.csv")
    assert msg.startswith(
        f"rule bad_timestamp: column 'timestamp' in asset file {tmp_path / 'bars.csv'}, "
        "row 1 (line 2): '01/03/2023 09:31' is not an ISO-8601 time; set "
        "data.asset.timestamp_format"
    ), msg


def test_csv_value_that_is_not_a_number_names_file_row_line_and_column(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    per_symbol_csv(bars, tmp_path)
    aab = tmp_path / "bars" / "AAB.csv"
    lines = aab.read_text().splitlines()
    cells = lines[40].split(",")
    cells[4] = "n/a"  # close: timestamp, open, high, low, close
    lines[40] = ",".join(cells)
    aab.write_text("\n".join(lines) + "\n")
    msg = fails(tmp_path / "bars", symbol_from="filename")
    assert msg.startswith(
        f"rule bad_value: column 'close' in asset file {aab}, row 40 (line 41): 'n/a' is not "
        "a number (the column is read as Float64); 1 row(s) of this file in all"
    ), msg


def test_per_symbol_file_with_a_conflicting_symbol_column_is_rejected(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    (tmp_path / "bars").mkdir()
    for symbol, part in _parts(bars, pl.col("symbol")):
        if symbol == "AAB":  # keeps its symbol column, with one wrong value
            wrong = pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("AAC"))
            part = part.with_columns(symbol=wrong.otherwise(pl.col("symbol")))
        elif symbol == "AAA":  # keeps a symbol column that agrees with its name: fine
            pass
        else:
            part = part.drop("symbol")
        part.write_csv(tmp_path / "bars" / f"{symbol}.csv")
    msg = fails(tmp_path / "bars", symbol_from="filename")
    assert msg.startswith(
        f"rule symbol_conflict: asset file {tmp_path / 'bars' / 'AAB.csv'} has a 'symbol' "
        "column that disagrees with its name (data.asset.symbol_from: filename gives 'AAB'): "
        "row 8 (line 9) holds 'AAC', 1 row(s) in all"
    ), msg
    # with the wrong value fixed, files with and without the column read as one source
    part = next(p for s, p in _parts(bars, pl.col("symbol")) if s == "AAB")
    part.write_csv(tmp_path / "bars" / "AAB.csv")
    assert prepared(tmp_path / "bars", symbol_from="filename").symbols == (
        "AAA",
        "AAB",
        "AAC",
        "AAD",
    )


def test_two_files_for_one_symbol_are_rejected(bars: pl.DataFrame, tmp_path: Path) -> None:
    per_symbol_parquet(bars, tmp_path)
    (tmp_path / "bars" / "old").mkdir()
    pl.read_parquet(tmp_path / "bars" / "AAC.parquet").write_parquet(
        tmp_path / "bars" / "old" / "AAC.parquet"
    )
    msg = fails(tmp_path / "bars", symbol_from="filename")
    assert msg.startswith(
        f"rule duplicate_symbol_file: asset files {tmp_path / 'bars' / 'AAC.parquet'} and "
        f"{tmp_path / 'bars' / 'old' / 'AAC.parquet'} both hold symbol 'AAC'"
    ), msg


def test_per_symbol_file_out_of_time_order_is_unsorted_unless_repaired(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    per_symbol_parquet(bars, tmp_path)
    aab = tmp_path / "bars" / "AAB.parquet"
    rows = pl.read_parquet(aab)
    pl.concat([rows[1:3], rows[:1], rows[3:]]).write_parquet(aab)  # bar 0 after bars 1, 2
    msg = fails(tmp_path / "bars", symbol_from="filename")
    assert "[unsorted] column 'timestamp' in " + str(aab) in msg, msg
    assert "1 row(s) are out of time order within their file" in msg, msg
    assert "symbol=AAB" in msg
    feed = ParquetFeed(
        FeedConfig(
            asset=AssetSourceConfig(path=str(tmp_path / "bars"), symbol_from="filename"),
            repair=["sort"],
        )
    )
    assert feed.prepare().repairs == {"sort": 1}
    first = first_batch(feed)
    assert first[TS].is_sorted() and first.height > 4


def test_timestamp_format_with_parquet_is_a_config_error(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"asset\.timestamp_format is set but asset\.format is"):
        FeedConfig(asset=AssetSourceConfig(format="parquet", timestamp_format="%Y-%m-%d"))
    bars.head(10).write_parquet(tmp_path / "bars.parquet")  # format auto, found parquet
    with pytest.raises(
        ConfigError, match=r"data\.asset\.timestamp_format is set, but .* is parquet"
    ):
        prepared(tmp_path / "bars.parquet", timestamp_format="%Y-%m-%d")


def test_missing_symbol_column_suggests_symbol_from_filename(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    per_symbol_csv(bars, tmp_path)
    msg = fails(tmp_path / "bars")
    assert "[missing_column] column 'symbol'" in msg
    assert "one file per symbol? set symbol_from: filename" in msg, msg


# --------------------------------------------------------------------------- merging files


def test_merge_files_orders_rows_and_flags_time_disorder_within_a_file() -> None:
    enum = pl.Enum(["A", "B"])
    df = pl.DataFrame(
        {TS: [2, 1, 3, 1, 1, 2], "symbol": pl.Series(["A", "A", "A", "B", "B", "B"], dtype=enum)}
    )
    merged, disorder = merge_files(df)
    assert merged[TS].to_list() == [1, 1, 1, 2, 2, 3]
    assert merged["symbol"].to_list() == ["A", "B", "B", "A", "B", "A"]
    # A's bar 1 came after its bar 2; B's repeated bar 1 is a duplicate, not disorder
    assert disorder.tolist() == [True, False, False, False, False, False]


# --------------------------------------------------------------------------- fingerprint


def test_csv_fingerprint_is_the_parquet_rule_over_the_files_the_feed_reads(
    bars: pl.DataFrame, tmp_path: Path
) -> None:
    path, _ = per_symbol_csv(bars, tmp_path)
    sources = {"asset": path, "signal_data": None, "context": None}
    formats = {"asset": "auto"}
    before = data_fingerprint(sources, formats)
    feed = ParquetFeed(FeedConfig(asset=AssetSourceConfig(path=path, symbol_from="filename")))
    feed.prepare()
    assert feed.session_started().data_fingerprint == before
    assert data_fingerprint(sources, formats) == before  # stable
    aaa = tmp_path / "bars" / "AAA.csv"
    aaa.write_text("\n".join(aaa.read_text().splitlines()[:-1]) + "\n")  # one row fewer
    assert data_fingerprint(sources, formats) != before


# --------------------------------------------------------------------------- ml4t validate


@pytest.mark.parametrize(
    ("layout", "flags", "described"),
    [
        ("per_symbol_csv", [], "(csv, 4 files, symbol from the file name)"),
        ("per_symbol_parquet", ["--symbol-from", "filename"], "(parquet, 4 files, symbol from"),
        ("hive_symbol_csv", [], "(csv, 4 files, symbol from the hive partition)"),
        ("hive_date_csv", ["--format", "csv"], "(csv, 6 files)"),
        ("monthly_csv_glob", [], "(csv, 2 files)"),
        ("one_csv_gz", [], "(csv, 1 file)"),
    ],
)
def test_validate_command_covers_every_layout_given_as_a_path(
    layout: str,
    flags: list[str],
    described: str,
    bars: pl.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = LAYOUTS[layout](bars, tmp_path)
    assert main(["validate", path, *flags]) == 0
    out = capsys.readouterr().out
    assert f"asset: {path} {described}" in out, out
    assert f"valid: {bars.height:,} rows, 4 symbols" in out, out


def test_validate_command_reads_layouts_from_a_config_and_reports_their_errors(
    bars: pl.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    path, _ = per_symbol_csv(bars, tmp_path)
    config = {"data": {"asset": {"path": path, "symbol_from": "filename", "signals": SIGNALS}}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["validate", str(tmp_path / "run.yaml")]) == 0
    assert "symbol from the file name" in capsys.readouterr().out
    # layout flags belong to a data path; a config says it with --set
    assert main(["validate", str(tmp_path / "run.yaml"), "--format", "csv"]) == 2
    assert "--format applies to a data path" in capsys.readouterr().err
    # the same error as the run: a bad time in one file, named
    aaa = tmp_path / "bars" / "AAA.csv"
    aaa.write_text(aaa.read_text().replace("2023-01-30T15:00:00", "2023-01-30 15h00", 1))
    assert main(["validate", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"rule bad_timestamp: column 'timestamp' in asset file {aaa}, row " in err, err


def test_layout_keys_decode_from_yaml_and_bad_values_name_their_key() -> None:
    config = decode_feed_config(
        {
            "asset": {"format": "csv", "symbol_from": "filename", "timestamp_format": "%Y%m%d"},
            "signal_data": {"columns": ["x"], "format": "parquet", "symbol_from": "filename"},
            "context": {"fields": ["vix"], "format": "auto", "timestamp_format": "%Y-%m-%d"},
        }
    )
    assert (config.asset.format, config.asset.symbol_from) == ("csv", "filename")
    assert config.signal_data is not None and config.signal_data.symbol_from == "filename"
    with pytest.raises(ConfigError, match=r"Invalid enum value 'xlsx' - at `\$\.asset\.format`"):
        decode_feed_config({"asset": {"format": "xlsx"}})
    with pytest.raises(ConfigError, match=r"Object contains unknown field `symbol_from`.*context"):
        decode_feed_config({"context": {"fields": ["vix"], "symbol_from": "filename"}})
    with pytest.raises(ConfigError, match=r"asset.timestamp_format"):
        decode_feed_config({"asset": {"timestamp_format": "YYYY-MM-DD"}})  # no strftime %


def test_the_layouts_example_in_the_docs_decodes() -> None:
    import yaml

    text = (Path(__file__).parents[2] / "docs" / "data.md").read_text()
    section = text[text.index("### Layouts") :]
    block = section[section.index("```yaml") + len("```yaml") : section.index("```\n\n")]
    config = decode_feed_config(yaml.safe_load(block)["data"])
    assert config.asset.symbol_from == "filename" and config.asset.format == "csv"
    assert config.asset.timestamp_format == "%m/%d/%Y %H:%M"
    assert config.signal_data is not None and config.signal_data.symbol_from == "filename"
