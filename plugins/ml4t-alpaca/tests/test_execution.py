"""The execution client against the stand-in: order types, time in force, brackets
(Alpaca's order classes, and exits placed once an entry Alpaca could not bracket fills),
cancel and replace, rejections, partial fills, rate limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from live_session import FAST
from ml4t_alpaca import AlpacaExecution

from ml4t.backtest import (
    CancelOrder,
    Event,
    ModifyOrder,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    OrderUpdated,
    RequestKind,
    SubmitOrder,
    TimeInForce,
)


def order(order_id: str, symbol: str = "AAA", side: str = "buy", qty: float = 10, **kw: Any):
    return SubmitOrder(
        ts_event=1,
        order_id=order_id,
        strategy_id="s",
        symbol=symbol,
        side=OrderSide(side),
        quantity=qty,
        **kw,
    )


def session(
    standin, credentials, body: Callable[[AlpacaExecution, list[Event]], Awaitable[None]], **cfg
) -> tuple[AlpacaExecution, list[Event]]:
    events: list[Event] = []
    client = AlpacaExecution(
        standin.config(session="exec", backoff=FAST, **cfg), credentials=credentials
    )

    async def main() -> None:
        await client.connect(events.append)
        try:
            await body(client, events)
        finally:
            await client.close()

    anyio.run(main)
    return client, events


async def settle(seconds: float = 0.15) -> None:
    await anyio.sleep(seconds)


def kinds(events: list[Event], order_id: str) -> list[str]:
    return [type(e).__name__ for e in events if getattr(e, "order_id", None) == order_id]


def test_order_types_and_times_in_force_reach_the_venue_in_alpacas_terms(standin, credentials):
    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        await client.submit(order("s-1", order_type=OrderType.LIMIT, limit_price=49.0))
        await client.submit(order("s-2", side="sell", order_type=OrderType.STOP, stop_price=40.0))
        await client.submit(
            order(
                "s-3",
                order_type=OrderType.STOP_LIMIT,
                stop_price=51.0,
                limit_price=51.5,
                time_in_force=TimeInForce.GTC,
            )
        )
        await client.submit(
            order("s-4", side="sell", order_type=OrderType.TRAILING_STOP, trail_percent=0.02)
        )
        await client.submit(
            order("s-5", side="sell", order_type=OrderType.TRAILING_STOP, trail_amount=1.25)
        )
        await client.submit(order("s-6", time_in_force=TimeInForce.DAY))  # day -> opg (mapped)
        await client.submit(order("s-7", time_in_force=TimeInForce.IOC))
        await settle()

    session(standin, credentials, body, time_in_force={"day": "opg"})
    got = {o.client_order_id.rsplit(":", 1)[1]: o for o in standin.orders.values()}
    assert (got["s-1"].type, got["s-1"].limit_price, got["s-1"].time_in_force) == (
        "limit",
        49.0,
        "gtc",
    )
    assert (got["s-2"].type, got["s-2"].side, got["s-2"].stop_price) == ("stop", "sell", 40.0)
    assert (got["s-3"].type, got["s-3"].stop_price, got["s-3"].limit_price) == (
        "stop_limit",
        51.0,
        51.5,
    )
    assert (got["s-4"].type, got["s-4"].trail_percent) == ("trailing_stop", 2.0)  # a percentage
    assert got["s-5"].trail_price == 1.25
    assert got["s-6"].time_in_force == "opg" and got["s-7"].time_in_force == "ioc"
    assert all(o.client_order_id.startswith("ml4t:exec:s:0:") for o in got.values())


def test_a_bracket_is_alpacas_bracket_its_exits_accepted_on_the_entry_fill_then_oco(
    standin, credentials
):
    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        await client.submit(order("s-1", stop_loss=1.0, take_profit=50.001))  # tp hit at once
        await standin.astep()  # the entry fills at the open; the exits are released
        await settle()
        await standin.astep(3)
        await settle()

    _, events = session(standin, credentials, body)
    entry = next(o for o in standin.orders.values() if o.parent is None)
    assert entry.order_class == "bracket" and {leg.type for leg in entry.legs} == {"limit", "stop"}
    assert kinds(events, "s-1") == ["OrderAccepted", "OrderFilled"]
    assert kinds(events, "s-1.tp") == ["OrderAccepted", "OrderFilled"]
    assert kinds(events, "s-1.sl") == ["OrderAccepted", "OrderCancelled"]
    exit_fill = next(e for e in events if isinstance(e, OrderFilled) and e.order_id == "s-1.tp")
    assert exit_fill.side is OrderSide.SELL and exit_fill.reason == "take_profit"
    assert standin.position("AAA") == 0


def test_exits_alpaca_cannot_bracket_are_placed_as_one_oco_once_the_entry_fills(
    standin, credentials
):
    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        entry = order(
            "s-1", order_type=OrderType.STOP, stop_price=49.0, stop_loss=30.0, take_profit=90.0
        )  # a stop entry: no bracket
        await client.submit(entry)
        await standin.astep()
        await settle(0.3)

    client, events = session(standin, credentials, body)
    exits = [o for o in standin.orders.values() if o.order_class == "oco"]
    assert len(exits) == 2  # the oco order (take profit) and its stop leg
    main = next(o for o in exits if o.parent is None)
    assert main.client_order_id == client.ids.of("s", "s-1.tp") and main.qty == 10
    assert kinds(events, "s-1.tp") == ["OrderAccepted"]
    assert kinds(events, "s-1.sl") == ["OrderAccepted"]


def test_cancel_and_replace_are_reported_and_refusals_leave_the_order_as_it_was(
    standin, credentials
):
    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        await client.submit(order("s-1", order_type=OrderType.LIMIT, limit_price=10.0))
        await client.modify(
            ModifyOrder(ts_event=2, order_id="s-1", strategy_id="s", quantity=7, limit_price=11.0)
        )
        await client.modify(
            ModifyOrder(ts_event=2, order_id="s-1", strategy_id="s", quantity=2.5)
        )  # fractional
        await settle()
        await client.cancel(CancelOrder(ts_event=3, order_id="s-1", strategy_id="s"))
        await settle()
        await client.cancel(CancelOrder(ts_event=4, order_id="s-1", strategy_id="s"))
        await client.cancel(CancelOrder(ts_event=4, order_id="nope", strategy_id="s"))

    client, events = session(standin, credentials, body)
    updated = next(e for e in events if isinstance(e, OrderUpdated))
    assert (updated.quantity, updated.limit_price) == (7.0, 11.0)
    replacement = next(o for o in standin.orders.values() if o.replaces is not None)
    assert replacement.client_order_id == client.ids.of("s", "s-1", 1)
    assert kinds(events, "s-1") == [
        "OrderAccepted",
        "OrderUpdated",
        "OrderRejected",
        "OrderCancelled",
        "OrderRejected",
    ]
    refusals = [e for e in events if isinstance(e, OrderRejected)]
    assert [r.request for r in refusals] == [
        RequestKind.MODIFY,
        RequestKind.CANCEL,
        RequestKind.CANCEL,
    ]
    assert "whole-share" in refusals[0].reason


def test_rejections_by_answer_and_by_update_are_order_rejected_with_the_venues_reason(
    standin, credentials
):
    standin.scenario.reject_symbols["BBB"] = "insufficient buying power"
    standin.scenario.reject_later.add("CCC")

    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        await client.submit(order("s-1", symbol="BBB"))
        await client.submit(order("s-2", symbol="CCC"))
        await client.submit(order("s-3", qty=1e6, order_type=OrderType.LIMIT, limit_price=50.0))
        await settle()

    _, events = session(standin, credentials, body)
    rejected = {e.order_id: e for e in events if isinstance(e, OrderRejected)}
    assert rejected["s-1"].rule == "alpaca.40310000"
    assert rejected["s-1"].reason == "insufficient buying power"
    assert rejected["s-2"].rule == "alpaca.rejected"
    assert "insufficient buying power" in rejected["s-3"].reason
    assert not [e for e in events if isinstance(e, OrderAccepted) and e.order_id != "s-2"]


def test_partial_fills_are_reported_one_by_one_with_what_remains(standin, credentials):
    standin.scenario.partial_fills = 4

    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        await client.submit(order("s-1", qty=10))
        await standin.astep()
        await settle()

    _, events = session(standin, credentials, body)
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert [f.quantity for f in fills] == [2.5, 2.5, 2.5, 2.5]
    assert [f.remaining_quantity for f in fills] == [7.5, 5.0, 2.5, 0.0]
    assert len({f.fill_id for f in fills}) == 4


def test_a_rate_limited_venue_is_waited_for_as_retry_after_says(standin, credentials):
    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        standin.scenario.rate_limited = 3
        standin.scenario.retry_after = 0.05
        account = await client.account()
        assert account.cash == 100_000.0

    client, _ = session(standin, credentials, body)
    assert client._rest is not None and client._rest.rate_limited == 3
    assert standin.requests[:4] == [("GET", "/v2/account")] * 4  # three 429s, then the answer


def test_a_venue_rate_limiting_beyond_the_retries_is_a_lost_connection(standin, credentials):
    from ml4t.backtest.live import ConnectionLost

    async def body(client: AlpacaExecution, events: list[Event]) -> None:
        standin.scenario.rate_limited = 10
        standin.scenario.retry_after = 0.01
        with pytest.raises(ConnectionLost, match="still rate limited"):
            await client.account()

    session(standin, credentials, body, rate_limit_retries=2)
