"""The point-in-time universe: half-open intervals on known-at bar times, the initial
members and changes, every validation rule, and two properties (replay equals the
interval definition; later times never change earlier membership)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest._time import to_ns
from ml4t.backtest.data._tabular import TableRuleViolation
from ml4t.backtest.data.config import UniverseSourceConfig
from ml4t.backtest.data.membership import (
    Membership,
    MembershipChange,
    load_universe,
    parse_universe,
)

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
NY = "America/New_York"


def csv_file(tmp_path: Path, *rows: str, header: str = "symbol,start,end") -> Path:
    path = tmp_path / "universe.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def load(path: Path, start_ns: int = 0, timezone: str = "UTC") -> Membership:
    return load_universe(
        UniverseSourceConfig(path=str(path)), symbols=SYMBOLS, timezone=timezone, start_ns=start_ns
    )


def problems_of(path: Path) -> TableRuleViolation:
    with pytest.raises(TableRuleViolation) as info:
        load(path)
    return info.value


def ny(text: str) -> int:
    """UTC ns of a New York wall-clock time in March 2023 (EDT from the 12th: UTC-4)."""
    offset = "-05:00" if text < "2023-03-12" else "-04:00"
    return to_ns(f"{text}{offset}")


# --------------------------------------------------------------------------- semantics


def test_an_interval_covers_the_bars_known_after_its_start_up_to_its_end(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-03-01,2023-03-15", "BBB,2023-03-10,")
    members = load(path, start_ns=ny("2023-02-28T16:00:00"), timezone=NY)
    assert members.initial == []
    at = members.members_at
    # daily bars known at the 16:00 close
    assert at(ny("2023-02-28T16:00:00")) == []
    assert at(ny("2023-03-01T16:00:00")) == ["AAA"]
    assert at(ny("2023-03-14T16:00:00")) == ["AAA", "BBB"]
    assert at(ny("2023-03-15T16:00:00")) == ["BBB"]
    # daily bars labelled end-of-day: the bar of March 14th is known at 00:00 of the 15th
    assert at(ny("2023-03-15T00:00:00")) == ["AAA", "BBB"]
    assert at(ny("2023-03-16T00:00:00")) == ["BBB"]
    # minute bars: the first bar of March 1st (09:30-09:31) is in, the last of Feb 28th out
    assert at(ny("2023-03-01T09:31:00")) == ["AAA"]
    assert at(ny("2023-02-28T16:00:00")) == []


def test_initial_members_and_changes_after_the_first_bar(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "AAA,2023-01-01,2023-03-01",
        "AAA,2023-04-01,",  # re-added
        "BBB,2023-01-01,",
        "CCC,2023-03-01,2023-05-01",
        "DDD,2022-01-01,2022-06-01",  # over before the data starts
    )
    first_bar = to_ns("2023-01-03T21:00:00+00:00")
    members = load(path, start_ns=first_bar)
    midnight = {d: to_ns(f"{d}T00:00:00+00:00") for d in ("2023-03-01", "2023-04-01", "2023-05-01")}
    assert members.initial == ["AAA", "BBB"]
    assert members.changes == (
        MembershipChange(effective_ns=midnight["2023-03-01"], added=["CCC"], removed=["AAA"]),
        MembershipChange(effective_ns=midnight["2023-04-01"], added=["AAA"], removed=[]),
        MembershipChange(effective_ns=midnight["2023-05-01"], added=[], removed=["CCC"]),
    )


def test_an_interval_starting_at_the_first_bar_begins_with_the_next_bar() -> None:
    frame = pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "start": pl.Series([100, 50]).cast(pl.Datetime("ns", "UTC")),
            "end": pl.Series([None, 100]).cast(pl.Datetime("ns", "UTC")),
        }
    )
    members = parse_universe(frame, symbols=SYMBOLS, timezone="UTC", start_ns=100)
    assert members.initial == ["BBB"]  # 50 < 100 <= 100
    assert members.changes == (MembershipChange(effective_ns=100, added=["AAA"], removed=["BBB"]),)
    cursor = members.cursor()
    assert cursor.due(100) == ()
    assert cursor.due(101) == members.changes and cursor.due(102) == ()


def test_symbols_the_file_never_names_are_never_members(tmp_path: Path) -> None:
    members = load(csv_file(tmp_path, "AAA,2023-01-01,"), start_ns=0)
    for t in (0, to_ns("2023-06-01T00:00:00+00:00"), 2**62):
        assert set(members.members_at(t)) <= {"AAA"}


def test_csv_and_parquet_give_the_same_membership(tmp_path: Path) -> None:
    csv = csv_file(tmp_path, "AAA,2023-01-02,2023-02-01", "BBB,2023-01-05,")
    parquet = tmp_path / "universe.parquet"
    pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "start": [date(2023, 1, 2), date(2023, 1, 5)],
            "end": [date(2023, 2, 1), None],
        }
    ).write_parquet(parquet)
    a, b = load(csv, timezone=NY), load(parquet, timezone=NY)
    assert (a.initial, a.changes) == (b.initial, b.changes)
    assert a.changes[0].effective_ns == to_ns("2023-01-02T05:00:00+00:00")


# --------------------------------------------------------------------------- rules

CASES = [
    ("symbol not in data", ["ZZZ,2023-01-01,"], 1, "symbol", "'ZZZ' is not a symbol"),
    ("empty symbol", [",2023-01-01,"], 1, "symbol", "is empty"),
    ("empty start", ["AAA,,2023-02-01"], 1, "start", "is empty"),
    ("bad start", ["AAA,soon,"], 1, "start", "is not a date"),
    ("end before start", ["AAA,2023-02-01,2023-01-01"], 1, "end", "is not after the start"),
    ("end at start", ["AAA,2023-02-01,2023-02-01"], 1, "end", "is not after the start"),
    (
        "overlap",
        ["AAA,2023-01-01,2023-03-01", "AAA,2023-02-01,2023-04-01"],
        2,
        "start",
        "inside the interval of row 1, which ends 2023-03-01",
    ),
    (
        "overlap with an open interval",
        ["AAA,2023-01-01,", "AAA,2023-06-01,2023-07-01"],
        2,
        "start",
        "inside the interval of row 1, which has no end",
    ),
    (
        "overlap found by start, whatever the row order",
        ["AAA,2023-02-01,2023-02-15", "AAA,2023-01-01,2023-03-01"],
        1,
        "start",
        "inside the interval of row 2",
    ),
    (
        "touching",
        ["AAA,2023-01-01,2023-02-01", "AAA,2023-02-01,2023-03-01"],
        2,
        "start",
        "where the interval of row 1 ends",
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
    assert [(p.row, p.column) for p in error.problems] == [(row, column)], str(error)
    assert what in error.problems[0].what
    assert f"{path}: row {row}, column {column}: " in str(error)


@pytest.mark.parametrize(
    ("case", "rows", "row", "column", "what"), CASES, ids=[c[0] for c in CASES]
)
def test_each_broken_rule_is_found_in_a_typed_parquet_file_too(
    tmp_path: Path, case: str, rows: list[str], row: int, column: str, what: str
) -> None:
    frame = pl.read_csv(csv_file(tmp_path, *rows), try_parse_dates=True)
    path = tmp_path / "universe.parquet"
    frame.write_parquet(path)
    error = problems_of(path)
    assert [(p.row, p.column) for p in error.problems] == [(row, column)], f"{case}:\n{error}"
    assert what in error.problems[0].what


def test_touching_intervals_are_told_to_merge(tmp_path: Path) -> None:
    error = problems_of(csv_file(tmp_path, "AAA,2023-01-01,2023-02-01", "AAA,2023-02-01,"))
    assert "merge them: one row from row 1's start to this row's end" in str(error)


def test_the_same_intervals_for_two_symbols_are_fine(tmp_path: Path) -> None:
    members = load(csv_file(tmp_path, "AAA,2023-01-01,2023-02-01", "BBB,2023-01-01,2023-02-01"))
    assert len(members.changes) == 2


def test_missing_and_unknown_columns_are_named(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "AAA,2023-01-01,x", header="symbol,start,until")
    text = str(problems_of(path))
    assert f"{path}: column end: required column is missing" in text
    assert f"{path}: column until: is not a universe column" in text


def test_all_problems_come_in_one_error(tmp_path: Path) -> None:
    error = problems_of(
        csv_file(tmp_path, "ZZZ,2023-01-01,", "AAA,2023-02-01,2023-01-01", ",2023-01-01,")
    )
    assert [(p.row, p.column) for p in error.problems] == [
        (1, "symbol"),
        (2, "end"),
        (3, "symbol"),
    ]
    assert "3 problem(s)" in str(error)


# --------------------------------------------------------------------------- properties

Interval = tuple[str, int, int | None]


@st.composite
def intervals(draw: st.DrawFn) -> list[Interval]:
    """Valid intervals: per symbol, distinct sorted breakpoints paired up (no touching),
    the last one possibly open."""
    out: list[Interval] = []
    for symbol in SYMBOLS:
        points = sorted(draw(st.sets(st.integers(0, 400), max_size=6)))
        if len(points) % 2 and draw(st.booleans()):
            points = points[:-1]
        pairs = [points[i : i + 2] for i in range(0, len(points), 2)]
        out += [(symbol, p[0], p[1] if len(p) == 2 else None) for p in pairs]
    return out


def _frame(rows: list[Interval]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": pl.Series([r[0] for r in rows], dtype=pl.String),
            "start": pl.Series([r[1] for r in rows], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "end": pl.Series([r[2] for r in rows], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        }
    )


def _direct(rows: list[Interval], t: int) -> list[str]:
    return sorted({s for s, a, b in rows if a < t and (b is None or t <= b)})


def _membership(rows: list[Interval], start_ns: int) -> Membership:
    return parse_universe(_frame(rows), symbols=SYMBOLS, timezone="UTC", start_ns=start_ns)


@settings(max_examples=200, deadline=None)
@given(rows=intervals(), start=st.integers(0, 400), times=st.lists(st.integers(0, 450)))
def test_replaying_initial_and_changes_gives_the_interval_definition(
    rows: list[Interval], start: int, times: list[int]
) -> None:
    members = _membership(rows, start)
    assert members.initial == _direct(rows, start)
    cursor, current = members.cursor(), set(members.initial)
    for t in sorted({start, *(t for t in times if t >= start)}):
        assert members.members_at(t) == _direct(rows, t)
        for change in cursor.due(t):  # as the feed will: once per bar, in time order
            assert not set(change.added) & set(change.removed)
            current = (current - set(change.removed)) | set(change.added)
        assert sorted(current) == _direct(rows, t)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), rows=intervals(), horizon=st.integers(0, 400))
def test_changing_times_after_t_changes_nothing_at_or_before_t(
    data: st.DataObject, rows: list[Interval], horizon: int
) -> None:
    shift = data.draw(st.integers(0, 100), label="shift")

    def later(x: int) -> int:
        return x if x <= horizon else x + shift

    perturbed: list[Interval] = []
    for symbol, a, b in rows:
        if a > horizon and data.draw(st.booleans(), label="drop"):
            continue  # an interval that starts after the horizon may go altogether
        end = later(b) if b is not None else None
        if (b is None or b > horizon) and not any(s == symbol and x > a for s, x, _ in rows):
            # the symbol's last interval may end anywhere after the horizon, or never
            end = data.draw(st.one_of(st.none(), st.integers(max(horizon, later(a)) + 1, 900)))
        perturbed.append((symbol, later(a), end))
    start = data.draw(st.integers(0, horizon), label="start")
    original, changed = _membership(rows, start), _membership(perturbed, start)
    assert original.initial == changed.initial
    for t in range(start, horizon + 1):
        assert original.members_at(t) == changed.members_at(t)
