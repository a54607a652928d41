"""Corporate actions and borrow costs through the whole graph, on bars written by hand.

Daily bars are known at 21:00 UTC from 2024-01-02 (bar i is 2024-01-(2+i)); an action
dated d applies before the first bar known after 00:00 of d (UTC here), so an action
dated 2024-01-04 applies before bar 2. Market orders fill at the next bar's open. The
numbers are worked out in each test's comments.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ._bars import START, flat, frame, run_frame, run_script

MARGIN = {"account": "margin"}
FIELDS = ("symbol", "ex_date", "action", "ratio", "amount", "pay_date", "price", "new_symbol")


def actions_file(tmp_path: Path, *rows: dict[str, Any]) -> dict[str, Any]:
    """A corporate-action CSV with ``rows``; the data section that names it."""
    path = tmp_path / "actions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in FIELDS})
    return {"corporate_actions": {"path": str(path)}}


def equity_by_bar(results) -> list[float]:
    return results.portfolio["equity"].to_list()


def open_order(engine, order_id: str):
    order = engine.broker.book.get(order_id)
    assert order is not None and order.is_open
    return order


# ---------------------------------------------------------------- splits


def test_a_4_for_1_split_restates_the_position_and_every_working_order(tmp_path) -> None:
    # buy 10 @ 400 (fills bar 1's open); at bar 1 rest a limit buy 5 @ 380, a stop sell
    # 10 @ 360 and a trailing stop sell 10, $20 behind. The 4:1 split before bar 2: 40
    # shares at an average of 100; limit 20 @ 95, stop 40 @ 90, trail $5 behind. Equity
    # is 10,000 before and after (cash 6,000 + 10 x 400 = 6,000 + 40 x 100).
    steps = {
        0: lambda s: s.buy("AAA", 10),
        1: lambda s: s.ids.update(
            limit=s.buy("AAA", 5, limit=380.0),
            stop=s.sell("AAA", 10, stop=360.0),
            trail=s.sell("AAA", 10, trail_amount=20.0),
        ),
    }
    bars = {"AAA": [flat(400)] * 2 + [flat(100)] * 2}
    data = actions_file(
        tmp_path, {"symbol": "AAA", "ex_date": "2024-01-04", "action": "split", "ratio": 4}
    )
    results, strategy, engine = run_script(bars, steps, data=data, risk=MARGIN)
    assert equity_by_bar(results) == [10_000.0] * 4
    assert engine.portfolio.position("AAA") == 40.0
    assert strategy.position("AAA") == 40.0
    assert engine.portfolio.positions()["avg_price"].to_list() == [100.0]
    limit, stop, trail = (open_order(engine, strategy.ids[k]) for k in ("limit", "stop", "trail"))
    assert (limit.quantity, limit.limit_price) == (20.0, 95.0)
    assert (stop.quantity, stop.stop_price) == (40.0, 90.0)
    assert (trail.quantity, trail.trail_amount) == (40.0, 5.0)
    assert trail.stop_price == 95.0  # 100 - 5: the reference moved with the split
    assert strategy.pending_quantity("AAA") == 20.0 - 40.0 - 40.0
    assert strategy.rejections == []
    assert results.fills.height == 1  # the split bought and sold nothing


def test_a_1_for_10_reverse_split_pays_the_fraction_as_cash_in_lieu(tmp_path) -> None:
    # buy 25 @ 10 (bar 1's open): cash 9,750. A 1:10 split before bar 2: 2.5 shares at
    # 100, so 2 are kept and 0.5 is paid out at 100 (the last close 10 / 0.1): cash
    # 9,800, 2 shares worth 200, equity 10,000 throughout. A resting limit sell of 25 @
    # 12 becomes 2 shares (2.5 truncated: an order of whole shares stays whole) @ 120.
    steps = {
        0: lambda s: s.buy("AAA", 25),
        1: lambda s: s.ids.update(limit=s.sell("AAA", 25, limit=12.0)),
    }
    bars = {"AAA": [flat(10)] * 2 + [flat(100)] * 2}
    data = actions_file(
        tmp_path, {"symbol": "AAA", "ex_date": "2024-01-04", "action": "split", "ratio": 0.1}
    )
    results, strategy, engine = run_script(bars, steps, data=data)
    assert equity_by_bar(results) == pytest.approx([10_000.0] * 4, rel=1e-12)
    assert engine.portfolio.position("AAA") == strategy.position("AAA") == 2.0
    assert engine.portfolio.cash == pytest.approx(9_800.0)
    in_lieu = results.fills.filter(pl.col("reason") == "cash_in_lieu").to_dicts()
    assert [(f["side"], f["quantity"], f["price"], f["commission"]) for f in in_lieu] == [
        ("sell", pytest.approx(0.5), pytest.approx(100.0), 0.0)
    ]
    limit = open_order(engine, strategy.ids["limit"])
    assert (limit.quantity, limit.limit_price) == (2.0, pytest.approx(120.0))


# ---------------------------------------------------------------- dividends


def test_a_dividend_is_paid_on_the_pay_date_to_the_holders_at_the_ex_date(tmp_path) -> None:
    # AAA long 10 and BBB short 10 from bar 1's open; CCC bought at bar 2's open, after
    # its ex-date (2024-01-04, before bar 2), so it gets nothing. AAA pays 0.50 and BBB
    # 1.00 with ex-date 2024-01-05 (before bar 3) and pay date 2024-01-08 (before bar 6):
    # cash +5 from AAA and -10 for the BBB short, both booked on 2024-01-08 at 00:00.
    steps = {
        0: lambda s: (s.buy("AAA", 10), s.sell("BBB", 10)),
        1: lambda s: s.buy("CCC", 10),
    }
    bars = {s: [flat(50)] * 8 for s in ("AAA", "BBB", "CCC")}
    data = actions_file(
        tmp_path,
        {
            "symbol": "AAA",
            "ex_date": "2024-01-05",
            "action": "dividend",
            "amount": 0.5,
            "pay_date": "2024-01-08",
        },
        {
            "symbol": "BBB",
            "ex_date": "2024-01-05",
            "action": "dividend",
            "amount": 1.0,
            "pay_date": "2024-01-08",
        },
        {"symbol": "CCC", "ex_date": "2024-01-04", "action": "dividend", "amount": 2.0},
    )
    results, strategy, engine = run_script(bars, steps, data=data, risk=MARGIN)
    cash = results.portfolio["cash"].to_list()
    # bars 1-5 after the trades: 10,000 - 500 + 500 (- 500 for CCC from bar 2)
    assert cash[5] == 9_500.0
    assert cash[6] == 9_500.0 + 5.0 - 10.0
    assert engine.portfolio.income == -5.0
    assert strategy.cash == 9_495.0
    flows = results.cash_flows.sort("symbol").to_dicts()
    assert [(f["symbol"], f["kind"], f["amount"], f["quantity"]) for f in flows] == [
        ("AAA", "dividend", 5.0, 10.0),
        ("BBB", "dividend", -10.0, -10.0),
    ]
    assert {f["timestamp"].isoformat() for f in flows} == {"2024-01-08T00:00:00+00:00"}
    assert results.portfolio["income"].to_list()[-1] == -5.0


# ---------------------------------------------------------------- delistings


def test_a_delisting_closes_the_position_at_its_price_or_the_last_close(tmp_path) -> None:
    # long 10 AAA and 10 BBB from bar 1's open (@ 20 and @ 30); a limit buy of AAA rests.
    # Both delist with ex-date 2024-01-05 (before bar 3); their bars stop after bar 2
    # (closes 22 and 33). AAA pays 3.00 a share (a distressed delisting), BBB none given:
    # its last close, 33. The limit order is cancelled with the reason.
    steps = {
        0: lambda s: (s.buy("AAA", 10), s.buy("BBB", 10)),
        1: lambda s: s.ids.update(limit=s.buy("AAA", 5, limit=15.0)),
    }
    bars = {
        "AAA": [flat(20), flat(20), flat(22)],
        "BBB": [flat(30), flat(30), flat(33)],
        "ZZZ": [flat(1)] * 5,
    }
    data = actions_file(
        tmp_path,
        {"symbol": "AAA", "ex_date": "2024-01-05", "action": "delisting", "price": 3.0},
        {"symbol": "BBB", "ex_date": "2024-01-05", "action": "delisting"},
    )
    results, strategy, engine = run_script(bars, steps, data=data)
    closing = results.fills.filter(pl.col("reason") == "delisted").sort("symbol").to_dicts()
    assert [(f["symbol"], f["side"], f["quantity"], f["price"]) for f in closing] == [
        ("AAA", "sell", 10.0, 3.0),
        ("BBB", "sell", 10.0, 33.0),
    ]
    assert engine.portfolio.position("AAA") == engine.portfolio.position("BBB") == 0.0
    assert strategy.holdings() == {}
    # 10,000 - 200 - 300 + 30 + 330
    assert engine.portfolio.cash == pytest.approx(9_860.0)
    assert results.final_equity == pytest.approx(9_860.0)
    (cancelled,) = results.orders.filter(pl.col("order_id") == strategy.ids["limit"]).to_dicts()
    assert cancelled["status"] == "cancelled"
    history = results.order_history.filter(pl.col("order_id") == strategy.ids["limit"])
    assert "delisted: AAA stopped trading" in history["detail"].to_list()


def test_a_delisting_after_the_last_bar_still_closes_the_holding(tmp_path) -> None:
    # the data ends at bar 2 (close 22); the delisting is dated two days later
    steps = {0: lambda s: s.buy("AAA", 10)}
    bars = {"AAA": [flat(20), flat(20), flat(22)]}
    data = actions_file(tmp_path, {"symbol": "AAA", "ex_date": "2024-01-06", "action": "delisting"})
    results, _, engine = run_script(bars, steps, data=data)
    assert engine.portfolio.position("AAA") == 0.0
    assert results.final_equity == pytest.approx(10_000.0 - 200.0 + 220.0)


# ---------------------------------------------------------------- symbol change


def test_a_symbol_change_carries_the_position_and_the_orders_over(tmp_path) -> None:
    # long 10 OLD @ 50 (bar 1's open) and a stop sell 10 @ 45; OLD's bars stop after
    # bar 2 and NEW's start at bar 3; the change is dated 2024-01-05 (before bar 3)
    steps = {
        0: lambda s: s.buy("OLD", 10),
        1: lambda s: s.ids.update(stop=s.sell("OLD", 10, stop=45.0)),
        # the stop moved to NEW and counts there: cancel it, then sell
        4: lambda s: (s.cancel(s.ids["stop"]), s.ids.update(sold=s.sell("NEW", 10))),
    }
    asset = pl.concat(
        [frame({"OLD": [flat(50)] * 3}), frame({"NEW": [flat(55)] * 3}, START + timedelta(days=3))]
    ).sort("timestamp", "symbol")
    data = actions_file(
        tmp_path,
        {"symbol": "OLD", "ex_date": "2024-01-05", "action": "symbol_change", "new_symbol": "NEW"},
    )
    results, strategy, engine = run_frame(asset, steps, data=data)
    assert strategy.rejections == []
    stop = engine.broker.book.get(strategy.ids["stop"])
    assert stop is not None and stop.symbol == "NEW" and stop.status == "cancelled"
    sells = results.fills.filter(pl.col("order_id") == strategy.ids["sold"]).to_dicts()
    assert [(f["symbol"], f["quantity"], f["price"]) for f in sells] == [("NEW", 10.0, 55.0)]
    assert engine.portfolio.position("OLD") == engine.portfolio.position("NEW") == 0.0
    # 10,000 - 500 + 550
    assert results.final_equity == pytest.approx(10_050.0)


# ---------------------------------------------------------------- borrow costs


def sessions_frame(
    days: list[str], price: float = 50.0, symbols: tuple[str, ...] = ("SHRT",)
) -> pl.DataFrame:
    """One flat daily bar of each symbol per NYSE session, known at the close (21:00 UTC)."""
    from datetime import UTC, datetime

    stamps = [datetime.fromisoformat(f"{d}T21:00:00").replace(tzinfo=UTC) for d in days]
    n = len(days) * len(symbols)
    return (
        pl.DataFrame(
            {
                "timestamp": [t for t in stamps for _ in symbols],
                "symbol": [s for _ in stamps for s in symbols],
                **{c: [price] * n for c in ("open", "high", "low", "close")},
                "volume": [1e6] * n,
            }
        )
        .with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
        .sort("timestamp", "symbol")
    )


def test_borrow_fees_accrue_per_calendar_day_over_a_weekend_and_a_holiday() -> None:
    # short 100 @ 50 from the Jan 11 open: 5,000 short at 3.65 % a year is 0.50 a
    # calendar day. Charged at each session's first bar for the shorts held into it:
    # Jan 12 (Thu close -> Fri close, 1 day) 0.50; Jan 16 (Fri -> Tue over the weekend
    # and Martin Luther King Day, 4 days) 2.00; Jan 17 (1 day) 0.50: 3.00 in all. The
    # session the short opened in pays nothing.
    days = ["2024-01-10", "2024-01-11", "2024-01-12", "2024-01-16", "2024-01-17"]
    steps = {0: lambda s: s.sell("SHRT", 100)}
    results, strategy, engine = run_frame(
        sessions_frame(days),
        steps,
        backtest={"calendar": "NYSE"},
        risk=MARGIN,
        execution={"borrow": {"rate": "3.65%"}},
    )
    assert engine.portfolio.borrow_fees == pytest.approx(3.0)
    cash = results.portfolio["cash"].to_list()
    assert cash == pytest.approx([10_000.0, 15_000.0, 14_999.5, 14_997.5, 14_997.0])
    assert results.final_equity == pytest.approx(10_000.0 - 3.0)
    assert strategy.cash == pytest.approx(14_997.0)  # its view is the account's
    assert results.portfolio["borrow_fees"].to_list() == pytest.approx([0, 0, 0.5, 2.5, 3.0])
    fees = results.cash_flows.filter(pl.col("kind") == "borrow_fee")
    assert fees["amount"].to_list() == pytest.approx([-0.5, -2.0, -0.5])


def test_a_hard_to_borrow_symbol_cannot_be_sold_short() -> None:
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    steps = {0: lambda s: s.sell("SHRT", 100), 1: lambda s: s.buy("SHRT", 10)}
    steps[2] = lambda s: s.sell("SHRT", 10)  # selling what is held is fine
    results, strategy, _ = run_frame(
        sessions_frame(days),
        steps,
        risk=MARGIN,
        execution={"borrow": {"hard_to_borrow": ["SHRT"]}},
    )
    (rejection,) = strategy.rejections
    assert rejection.rule == "hard_to_borrow"
    assert "SHRT is hard to borrow" in rejection.reason
    assert results.fills["side"].to_list() == ["buy"]  # the sell of 10 fills after the run


def test_per_symbol_borrow_rates_override_the_default_and_flag_hard_to_borrow(tmp_path) -> None:
    # SHRT borrows at 7.3 % (1.00 a day on 5,000) instead of the default 3.65 %; GME
    # is flagged hard to borrow in the same file
    rates = tmp_path / "borrow.csv"
    rates.write_text("symbol,rate,hard_to_borrow\nSHRT,0.073,false\nGME,0.5,true\n")
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    steps = {0: lambda s: (s.sell("SHRT", 100), s.sell("GME", 1))}
    _, strategy, engine = run_frame(
        sessions_frame(days, symbols=("GME", "SHRT")),
        steps,
        backtest={"calendar": "NYSE"},
        risk=MARGIN,
        execution={"borrow": {"rate": "3.65%", "rates_path": str(rates)}},
    )
    assert engine.portfolio.borrow_fees == pytest.approx(1.0)
    assert [(r.symbol, r.rule) for r in strategy.rejections] == [("GME", "hard_to_borrow")]


def test_a_bad_borrow_rates_file_names_the_row_and_column(tmp_path) -> None:
    from ml4t.backtest.errors import DataValidationError

    rates = tmp_path / "borrow.csv"
    rates.write_text("symbol,rate\nSHRT,-0.1\n")
    with pytest.raises(DataValidationError, match=r"borrow.csv: row 1, column rate: -0.1"):
        run_frame(
            sessions_frame(["2024-01-10"]),
            {},
            execution={"borrow": {"rates_path": str(rates)}},
        )


def test_with_adjusted_prices_splits_and_dividends_are_in_the_prices_not_applied(
    tmp_path,
) -> None:
    # the same split and dividend rows as above, but data.asset.prices: adjusted: the
    # holding stays 10 shares and no cash flows; a delisting in the file still closes it
    steps = {0: lambda s: s.buy("AAA", 10)}
    bars = {"AAA": [flat(100)] * 5}
    data = actions_file(
        tmp_path,
        {"symbol": "AAA", "ex_date": "2024-01-04", "action": "split", "ratio": 4},
        {"symbol": "AAA", "ex_date": "2024-01-05", "action": "dividend", "amount": 1.0},
        {"symbol": "AAA", "ex_date": "2024-01-06", "action": "delisting", "price": 90.0},
    )
    data["asset"] = {"prices": "adjusted"}
    results, strategy, engine = run_script(bars, steps, data=data)
    assert strategy.holdings() == {}
    assert results.cash_flows.height == 0
    assert results.fills["quantity"].to_list() == [10.0, 10.0]  # the buy, the delisting
    assert results.fills["reason"].to_list()[-1] == "delisted"
    assert engine.portfolio.cash == pytest.approx(10_000.0 - 1_000.0 + 900.0)
