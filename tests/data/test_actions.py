"""The corporate-action file: reading CSV and parquet, the time rule, every validation
rule (one error naming file, row and column), the order of application, the cursor."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import polars as pl
import pytest

from ml4t.backtest._time import to_ns
from ml4t.backtest.data._tabular import TableRuleViolation
from ml4t.backtest.data.actions import (
    ActionKind,
    ActionSchedule,
    CorporateActionRow,
    load_corporate_actions,
    parse_corporate_actions,
)
from ml4t.backtest.data.config import ActionsSourceConfig, decode_feed_config
from ml4t.backtest.errors import ConfigError, DataValidationError

HEADER = "symbol,ex_date,action,ratio,amount,pay_date,price,new_symbol"
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
UTC_MIDNIGHT = {d: to_ns(f"{d}T00:00:00+00:00") for d in ("2023-01-04", "2023-03-13")}


def csv_file(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "actions.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def load(path: Path, timezone: str = "UTC", symbols: tuple[str, ...] | None = SYMBOLS):
    return load_corporate_actions(
        ActionsSourceConfig(path=str(path)), symbols=symbols, timezone=timezone
    )


def problems_of(path: Path, **kwargs: object) -> TableRuleViolation:
    with pytest.raises(TableRuleViolation) as info:
        load(path, **kwargs)  # type: ignore[arg-type]
    return info.value


# --------------------------------------------------------------------------- reading


def test_csv_and_parquet_of_the_same_actions_give_equal_schedules(tmp_path: Path) -> None:
    csv = csv_file(
        tmp_path,
        "AAA,2023-03-13,split,4,,,,",
        "BBB,2023-01-04,dividend,,0.25,2023-01-20,,",
        "CCC,2023-03-13,delisting,,,,12.5,",
        "DDD,2023-03-13,delisting,,,,,",
        "BBB,2023-03-14,symbol_change,,,,,DDD",
    )
    frame = pl.DataFrame(
        {
            "symbol": ["AAA", "BBB", "CCC", "DDD", "BBB"],
            "ex_date": [
                date(2023, 3, 13),
                date(2023, 1, 4),
                date(2023, 3, 13),
                date(2023, 3, 13),
                date(2023, 3, 14),
            ],
            "action": ["split", "dividend", "delisting", "delisting", "symbol_change"],
            "ratio": [4.0, None, None, None, None],
            "amount": [None, 0.25, None, None, None],
            "pay_date": [None, date(2023, 1, 20), None, None, None],
            "price": [None, None, 12.5, None, None],
            "new_symbol": [None, None, None, None, "DDD"],
        }
    )
    parquet = tmp_path / "actions.parquet"
    frame.write_parquet(parquet)
    from_csv, from_parquet = load(csv), load(parquet)
    assert from_csv.rows == from_parquet.rows
    assert from_csv.rows[0] == CorporateActionRow(
        symbol="BBB",
        action=ActionKind.DIVIDEND,
        effective_ns=UTC_MIDNIGHT["2023-01-04"],
        pay_ns=to_ns("2023-01-20T00:00:00+00:00"),
        amount=0.25,
        source_row=2,
    )
    delisted = [r for r in from_csv.rows if r.action is ActionKind.DELISTING]
    assert [(r.symbol, r.price) for r in delisted] == [("CCC", 12.5), ("DDD", None)]


def test_an_empty_file_gives_an_empty_schedule(tmp_path: Path) -> None:
    schedule = load(csv_file(tmp_path))
    assert schedule.rows == () and schedule.cursor().due(2**62) == ()


def test_only_the_required_columns_are_needed(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-03-13,delisting", header="symbol,ex_date,action")
    (row,) = load(path).rows
    assert row.action is ActionKind.DELISTING and row.price is None


def test_the_schedule_round_trips_through_msgpack(tmp_path: Path) -> None:
    schedule = load(csv_file(tmp_path, "AAA,2023-03-13,split,4,,,,"))
    encoded = msgspec.msgpack.encode(schedule)
    assert msgspec.msgpack.decode(encoded, type=ActionSchedule) == schedule


# --------------------------------------------------------------------------- time rule


def test_dates_are_local_midnight_of_the_zone_on_both_sides_of_the_dst_switch(
    tmp_path: Path,
) -> None:
    path = csv_file(
        tmp_path,
        "AAA,2023-01-04,split,2,,,,",  # EST: UTC-5
        "BBB,2023-03-13,split,2,,,,",  # the day after the switch: EDT, UTC-4
        "CCC,2023-03-13T09:30:00-04:00,split,2,,,,",  # a timestamp is itself
        "DDD,2023-03-13 09:30:00,split,2,,,,",  # a naive one is a New York wall-clock time
    )
    rows = {r.symbol: r.effective_ns for r in load(path, "America/New_York").rows}
    assert rows == {
        "AAA": to_ns("2023-01-04T05:00:00+00:00"),
        "BBB": to_ns("2023-03-13T04:00:00+00:00"),
        "CCC": to_ns("2023-03-13T13:30:00+00:00"),
        "DDD": to_ns("2023-03-13T13:30:00+00:00"),
    }


def test_parquet_dates_and_zoned_timestamps_follow_the_same_rule(tmp_path: Path) -> None:
    ny = ZoneInfo("America/New_York")
    pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "ex_date": [date(2023, 1, 4), date(2023, 3, 13)],
            "action": ["split", "split"],
            "ratio": [2.0, 2.0],
        }
    ).write_parquet(tmp_path / "dates.parquet")
    pl.DataFrame(
        {
            "symbol": ["AAA"],
            "ex_date": pl.Series([datetime(2023, 3, 13, 9, 30, tzinfo=ny)]).dt.convert_time_zone(
                "America/New_York"
            ),
            "action": ["split"],
            "ratio": [2.0],
        }
    ).write_parquet(tmp_path / "zoned.parquet")
    dates = load(tmp_path / "dates.parquet", "America/New_York").rows
    assert [r.effective_ns for r in dates] == [
        to_ns("2023-01-04T05:00:00+00:00"),
        to_ns("2023-03-13T04:00:00+00:00"),
    ]
    (zoned,) = load(tmp_path / "zoned.parquet", "UTC").rows  # the zone of the data wins
    assert zoned.effective_ns == to_ns("2023-03-13T13:30:00+00:00")


def test_the_files_own_timezone_overrides_the_default(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-01-04,split,2,,,,")
    config = ActionsSourceConfig(path=str(path), timezone="America/New_York")
    schedule = load_corporate_actions(config, symbols=SYMBOLS, timezone="UTC")
    assert schedule.rows[0].effective_ns == to_ns("2023-01-04T05:00:00+00:00")


def test_a_naive_time_inside_the_dst_gap_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-03-12 02:30:00,split,2,,,,")
    error = problems_of(path, timezone="America/New_York")
    assert f"{path}: row 1, column ex_date: '2023-03-12 02:30:00' is not a single" in str(error)


# --------------------------------------------------------------------------- rules

CASES = [
    ("unknown action", ["AAA,2023-03-13,merger,,,,,"], 1, "action", "unknown action 'merger'"),
    ("symbol not in data", ["ZZZ,2023-03-13,split,2,,,,"], 1, "symbol", "'ZZZ' is not a symbol"),
    ("empty symbol", [",2023-03-13,split,2,,,,"], 1, "symbol", "is empty"),
    ("empty action", ["AAA,2023-03-13,,2,,,,"], 1, "action", "is empty"),
    ("empty ex_date", ["AAA,,split,2,,,,"], 1, "ex_date", "is empty"),
    ("bad ex_date", ["AAA,2023-13-01,split,2,,,,"], 1, "ex_date", "is not a date"),
    ("split without ratio", ["AAA,2023-03-13,split,,,,,"], 1, "ratio", "a split needs a ratio"),
    ("ratio text", ["AAA,2023-03-13,split,4:1,,,,"], 1, "ratio", "'4:1' is not a number"),
    ("ratio negative", ["AAA,2023-03-13,split,-2,,,,"], 1, "ratio", "-2.0 is not a finite"),
    ("ratio zero", ["AAA,2023-03-13,split,0,,,,"], 1, "ratio", "0.0 is not a finite"),
    ("ratio inf", ["AAA,2023-03-13,split,inf,,,,"], 1, "ratio", "inf is not a finite"),
    ("ratio one", ["AAA,2023-03-13,split,1,,,,"], 1, "ratio", "ratio 1 changes nothing"),
    ("no amount", ["AAA,2023-03-13,dividend,,,,,"], 1, "amount", "a dividend needs an amount"),
    ("amount zero", ["AAA,2023-03-13,dividend,,0,,,"], 1, "amount", "0.0 is not a finite"),
    ("amount nan", ["AAA,2023-03-13,dividend,,nan,,,"], 1, "amount", "nan is not a finite"),
    ("price negative", ["AAA,2023-03-13,delisting,,,,-1,"], 1, "price", "-1.0 is not a finite"),
    ("price inf", ["AAA,2023-03-13,delisting,,,,inf,"], 1, "price", "inf is not a finite"),
    ("no new_symbol", ["AAA,2023-03-13,symbol_change,,,,,"], 1, "new_symbol", "needs a new_sym"),
    (
        "new_symbol not in data",
        ["AAA,2023-03-13,symbol_change,,,,,ZZZ"],
        1,
        "new_symbol",
        "'ZZZ' is not a symbol of the market data",
    ),
    (
        "new_symbol is the symbol",
        ["AAA,2023-03-13,symbol_change,,,,,AAA"],
        1,
        "new_symbol",
        "is the row's own symbol",
    ),
    ("amount on a split", ["AAA,2023-03-13,split,2,1,,,"], 1, "amount", "set on a split row"),
    ("price on a dividend", ["AAA,2023-03-13,dividend,,1,,3,"], 1, "price", "on a dividend row"),
    (
        "pay_date on a delisting",
        ["AAA,2023-03-13,delisting,,,2023-03-20,,"],
        1,
        "pay_date",
        "set on a delisting row",
    ),
    (
        "ratio on a symbol_change",
        ["AAA,2023-03-13,symbol_change,2,,,,BBB"],
        1,
        "ratio",
        "set on a symbol_change row",
    ),
    (
        "pay before ex",
        ["AAA,2023-03-13,dividend,,1,2023-03-10,,"],
        1,
        "pay_date",
        "2023-03-10 is before the ex_date 2023-03-13",
    ),
    (
        "duplicate",
        ["AAA,2023-03-13,split,2,,,,", "AAA,2023-03-13,split,3,,,,"],
        2,
        "ex_date",
        "repeats row 1",
    ),
    (
        "after the delisting",
        ["AAA,2023-02-01,delisting,,,,,", "AAA,2023-02-02,dividend,,1,,,"],
        2,
        "ex_date",
        "AAA was delisted before (row 1)",
    ),
    (
        "renamed and delisted at once",
        ["AAA,2023-03-13,symbol_change,,,,,BBB", "AAA,2023-03-13,delisting,,,,,"],
        2,
        "action",
        "also has a symbol_change or delisting at this instant (row 1)",
    ),
    (
        "two symbols take one name",
        ["AAA,2023-03-13,symbol_change,,,,,CCC", "BBB,2023-03-13,symbol_change,,,,,CCC"],
        2,
        "new_symbol",
        "row 1 renames another symbol to 'CCC'",
    ),
    (
        "chained renames at once",
        ["AAA,2023-03-13,symbol_change,,,,,BBB", "BBB,2023-03-13,symbol_change,,,,,CCC"],
        1,
        "new_symbol",
        "'BBB' is itself renamed at this instant (row 2)",
    ),
]


@pytest.mark.parametrize(
    ("case", "rows", "row", "column", "what"), CASES, ids=[c[0] for c in CASES]
)
def test_each_broken_rule_names_file_row_and_column(
    tmp_path: Path, case: str, rows: list[str], row: int, column: str, what: str
) -> None:
    path = csv_file(tmp_path, *rows)
    error = problems_of(path)
    assert isinstance(error, DataValidationError)
    found = [p for p in error.problems if (p.row, p.column) == (row, column) and what in p.what]
    assert found, f"{case}: no problem at row {row}, column {column} with {what!r}:\n{error}"
    assert f"{path}: row {row}, column {column}: " in str(error)
    assert len(error.problems) == 1, f"{case}: reported more than once:\n{error}"


@pytest.mark.parametrize(
    ("case", "rows", "row", "column", "what"), CASES, ids=[c[0] for c in CASES]
)
def test_each_broken_rule_is_found_in_a_typed_parquet_file_too(
    tmp_path: Path, case: str, rows: list[str], row: int, column: str, what: str
) -> None:
    # the CSV read with types inferred (numbers as numbers, dates as Date), then stored
    frame = pl.read_csv(csv_file(tmp_path, *rows), try_parse_dates=True)
    path = tmp_path / "actions.parquet"
    frame.write_parquet(path)
    error = problems_of(path)
    where = (None, column) if case == "ratio text" else (row, column)  # '4:1' reads as a Time
    assert [(p.row, p.column) for p in error.problems] == [where], f"{case}:\n{error}"


def test_allowed_combinations_load(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "AAA,2023-03-13,split,2,,,,",
        "AAA,2023-03-13,symbol_change,,,,,DDD",  # a split and a rename at one instant
        "AAA,2023-03-13,dividend,,0.5,,,",
        "BBB,2023-03-13,dividend,,0.5,,,",
        "BBB,2023-03-13,delisting,,,,0,",  # worthless, after its last dividend
    )
    assert len(load(path).rows) == 5


def test_within_an_instant_dividends_come_first_and_delistings_last(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "BBB,2023-03-13,delisting,,,,,",
        "AAA,2023-03-13,symbol_change,,,,,DDD",
        "AAA,2023-03-13,split,2,,,,",
        "CCC,2023-03-13,split,3,,,,",
        "AAA,2023-03-13,dividend,,0.5,,,",
        "CCC,2023-01-04,split,2,,,,",
    )
    order = [(r.symbol, str(r.action)) for r in load(path).rows]
    assert order == [
        ("CCC", "split"),  # an earlier instant
        ("AAA", "dividend"),
        ("AAA", "split"),
        ("CCC", "split"),
        ("AAA", "symbol_change"),
        ("BBB", "delisting"),
    ]


def test_every_problem_is_reported_in_one_error_capped_at_twenty_lines(tmp_path: Path) -> None:
    rows = [f"AAA,2023-03-{day:02d},split,1,,,," for day in range(1, 26)]  # 25 ratios of 1
    error = problems_of(csv_file(tmp_path, *rows))
    assert len(error.problems) == 25
    text = str(error)
    assert "25 problem(s)" in text and "... and 5 more problem(s)" in text
    assert text.count("a split of ratio 1 changes nothing") == 20


def test_several_kinds_of_problem_in_one_file_are_all_listed(tmp_path: Path) -> None:
    error = problems_of(
        csv_file(
            tmp_path,
            "ZZZ,2023-03-13,split,2,,,,",
            "AAA,2023-03-13,dividend,,-1,,,",
            "BBB,yesterday,delisting,,,,,",
        )
    )
    assert [(p.row, p.column) for p in error.problems] == [
        (1, "symbol"),
        (2, "amount"),
        (3, "ex_date"),
    ]


def test_a_missing_required_column_is_named_with_the_columns_present(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-03-13", header="symbol,ex_date")
    error = problems_of(path)
    assert f"{path}: column action: required column is missing (columns: symbol, ex_date)" in str(
        error
    )


def test_an_unknown_column_is_refused_so_a_misspelling_is_caught(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-03-13,split,2", header="symbol,ex_date,action,ratoi")
    error = problems_of(path)
    assert "column ratoi: is not a corporate-action column" in str(error)
    assert "a split needs a ratio" in str(error)  # and the split's rule still runs


def test_parquet_columns_of_the_wrong_type_are_named(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    pl.DataFrame(
        {
            "symbol": [1, 2],
            "ex_date": [20230313, 20230314],
            "action": ["split", "split"],
            "ratio": ["2", "two"],
        }
    ).write_parquet(path)
    text = str(problems_of(path))
    assert f"{path}: column symbol: is Int64, expected text" in text
    assert f"{path}: column ex_date: is Int64, expected dates or timestamps" in text
    assert f"{path}: row 2, column ratio: 'two' is not a number" in text


def test_symbols_are_not_checked_when_none_are_given(tmp_path: Path) -> None:
    schedule = load(csv_file(tmp_path, "ZZZ,2023-03-13,split,2,,,,"), symbols=None)
    assert schedule.rows[0].symbol == "ZZZ"


def test_a_missing_file_and_a_file_of_another_type_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        load(tmp_path / "nowhere.csv")
    with pytest.raises(ConfigError, match=r"corporate_actions.path: .* neither parquet nor CSV"):
        ActionsSourceConfig(path="actions.xlsx")


def test_a_frame_is_validated_like_a_file() -> None:
    frame = pl.DataFrame({"symbol": ["AAA"], "ex_date": ["2023-03-13"], "action": ["split"]})
    with pytest.raises(TableRuleViolation, match=r"<corporate actions frame>: row 1, column ratio"):
        parse_corporate_actions(frame, symbols=SYMBOLS, timezone="UTC")


# --------------------------------------------------------------------------- config


def test_feed_config_decodes_the_new_sections_with_their_defaults() -> None:
    config = decode_feed_config(
        {
            "asset": {"path": "bars/"},
            "corporate_actions": {"path": "actions.csv"},
            "universe": {"path": "universe.parquet", "timezone": "America/New_York"},
        }
    )
    assert config.asset.prices == "raw"
    assert config.corporate_actions == ActionsSourceConfig(path="actions.csv")
    assert config.universe is not None and config.universe.on_exit == "hold"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"universe": {"path": "u.csv", "on_exit": "sell"}}, r"\$\.universe\.on_exit"),
        ({"corporate_actions": {"path": "a.csv", "timezone": "Mars/Olympus"}}, "Mars/Olympus"),
        ({"corporate_actions": {"path": "a.csv", "ratio": 2}}, r"\$\.corporate_actions"),
        ({"asset": {"prices": "split_adjusted"}}, r"\$\.asset\.prices"),
    ],
)
def test_bad_values_in_the_new_sections_fail_with_their_path(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode_feed_config(section)


# --------------------------------------------------------------------------- cursor


def _schedule_at(*times: int) -> ActionSchedule:
    rows = tuple(
        CorporateActionRow(symbol=f"S{i}", action=ActionKind.DELISTING, effective_ns=t)
        for i, t in enumerate(times)
    )
    return ActionSchedule(rows=rows)


def test_the_cursor_hands_out_each_action_once_before_the_first_later_bar() -> None:
    schedule = _schedule_at(100, 100, 250)
    cursor = schedule.cursor()
    assert cursor.due(50) == ()
    assert cursor.due(100) == ()  # an action at t applies before the first bar *after* t
    assert [r.symbol for r in cursor.due(101)] == ["S0", "S1"]
    assert cursor.due(200) == () and cursor.pending == 1
    assert [r.symbol for r in cursor.due(10_000)] == ["S2"]
    assert cursor.due(10**18) == () and cursor.pending == 0


def test_between_bisects_a_half_open_range() -> None:
    schedule = _schedule_at(100, 100, 250, 400)
    assert [r.effective_ns for r in schedule.between(100, 250)] == [100, 100]
    assert [r.effective_ns for r in schedule.between(101, 401)] == [250, 400]
    assert schedule.between(401, 10**9) == ()


def test_frame_lists_the_rows_with_nulls_for_unused_fields(tmp_path: Path) -> None:
    frame = load(csv_file(tmp_path, "AAA,2023-03-13,split,4,,,,")).frame()
    assert frame.row(0, named=True) == {
        "symbol": "AAA",
        "action": "split",
        "effective_ns": UTC_MIDNIGHT["2023-03-13"],
        "pay_ns": None,
        "ratio": 4.0,
        "amount": None,
        "price": None,
        "new_symbol": None,
        "source_row": 1,
    }
    assert not math.isnan(frame["ratio"][0])
