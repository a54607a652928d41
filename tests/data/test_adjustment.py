"""Back-adjustment of raw bars by their splits and dividends, against hand-computed bars."""

from __future__ import annotations

import polars as pl
import pytest

from ml4t.backtest.data.actions import ActionKind, ActionSchedule, CorporateActionRow
from ml4t.backtest.data.adjustment import adjusted
from ml4t.backtest.errors import DataValidationError


def _bars() -> pl.DataFrame:
    """Two symbols, four bars each at t = 1..4 ns, sorted by (timestamp, symbol)."""
    a_close, b_close = [100.0, 104.0, 26.0, 25.0], [50.0, 51.0, 52.0, 53.0]
    rows = []
    for t in range(4):
        rows.append((t + 1, "A", a_close[t], 10.0, 1.0))
        rows.append((t + 1, "B", b_close[t], 7.0, 2.0))
    frame = pl.DataFrame(rows, schema=["ts", "symbol", "close", "volume", "signal"], orient="row")
    return frame.select(
        pl.col("ts").cast(pl.Datetime("ns", "UTC")).alias("timestamp"),
        "symbol",
        (pl.col("close") + 1).alias("high"),
        (pl.col("close") - 1).alias("low"),
        "close",
        "volume",
        "signal",
    )


def _split(effective: int, ratio: float, symbol: str = "A") -> CorporateActionRow:
    return CorporateActionRow(
        symbol=symbol, action=ActionKind.SPLIT, effective_ns=effective, ratio=ratio
    )


def _dividend(effective: int, amount: float, symbol: str = "A") -> CorporateActionRow:
    return CorporateActionRow(
        symbol=symbol,
        action=ActionKind.DIVIDEND,
        effective_ns=effective,
        pay_ns=effective,
        amount=amount,
    )


def _of(frame: pl.DataFrame, symbol: str, column: str) -> list[float]:
    return frame.filter(pl.col("symbol") == symbol)[column].to_list()


def test_a_split_and_a_later_dividend_scale_every_earlier_bar() -> None:
    bars = _bars()
    schedule = ActionSchedule(rows=(_split(2, 4.0), _dividend(3, 2.6)))
    out = adjusted(bars, schedule)
    # split 4:1 after bar 2: bars 1-2 / 4; dividend 2.6 off the close 26 of bar 3: bars 1-3 x 0.9
    assert _of(out, "A", "close") == pytest.approx([22.5, 23.4, 23.4, 25.0])
    assert _of(out, "A", "high") == pytest.approx([101 / 4 * 0.9, 105 / 4 * 0.9, 27 * 0.9, 26.0])
    assert _of(out, "A", "volume") == [40.0, 40.0, 10.0, 10.0]
    assert _of(out, "B", "close") == _of(bars, "B", "close")
    assert out.columns == bars.columns and out["signal"].equals(bars["signal"])
    assert out["symbol"].equals(bars["symbol"]) and out["timestamp"].equals(bars["timestamp"])


def test_dividends_false_undoes_the_splits_only() -> None:
    schedule = ActionSchedule(rows=(_split(2, 4.0), _dividend(3, 2.6)))
    out = adjusted(_bars(), schedule, dividends=False)
    assert _of(out, "A", "close") == [25.0, 26.0, 26.0, 25.0]


def test_a_split_and_a_dividend_at_one_instant_both_apply_to_the_bars_before_it() -> None:
    schedule = ActionSchedule(rows=(_dividend(2, 1.04), _split(2, 2.0)))
    out = adjusted(_bars(), schedule)
    factor = (1 - 1.04 / 104.0) / 2  # the dividend comes off the pre-split close
    assert _of(out, "A", "close") == pytest.approx([100 * factor, 104 * factor, 26.0, 25.0])


def test_actions_before_the_first_bar_or_after_the_last_adjust_nothing_or_everything() -> None:
    early = adjusted(_bars(), ActionSchedule(rows=(_dividend(0, 5.0), _split(0, 2.0))))
    assert _of(early, "A", "close") == _of(_bars(), "A", "close")
    late = adjusted(_bars(), ActionSchedule(rows=(_split(99, 2.0, symbol="B"),)))
    assert _of(late, "B", "close") == [25.0, 25.5, 26.0, 26.5]


def test_symbol_changes_and_delistings_are_ignored() -> None:
    rows = (
        CorporateActionRow(
            symbol="A", action=ActionKind.SYMBOL_CHANGE, effective_ns=2, new_symbol="B"
        ),
        CorporateActionRow(symbol="B", action=ActionKind.DELISTING, effective_ns=3, price=1.0),
    )
    assert adjusted(_bars(), ActionSchedule(rows=rows)).equals(_bars())


def test_a_dividend_as_large_as_its_close_cannot_be_adjusted() -> None:
    with pytest.raises(DataValidationError, match=r"dividend of A .* pays 30.0, not less than"):
        adjusted(_bars(), ActionSchedule(rows=(_dividend(3, 30.0),)))
