"""The faults the adapters must survive, against the stand-in: a connection dropped
between a submit and its acknowledgement, duplicated and reordered trade updates, a
restart of the session with positions and open orders at the venue, and the venue going
away for a minute while an order fills."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from live_session import live_graph, run
from strategies import BuyOnce, Momentum

from ml4t.backtest import (
    AccountReconciled,
    Component,
    MarketBatch,
    OrderAccepted,
    OrderFilled,
    Phase,
    Strategy,
    SubmitOrder,
    VenueConnection,
    VenueLink,
    on,
)
from ml4t.backtest.topics import MARKET, ORDER_REQUESTS


def _of(events: list[Any], kind: type, order_id: str) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and e.order_id == order_id]


@pytest.mark.parametrize("news_first", [True, False], ids=["news-first", "silent-venue"])
def test_a_connection_dropped_between_submit_and_ack_leaves_exactly_one_order_at_the_venue(
    standin, credentials, news_first
):
    """The venue creates the order, then the connection drops before its answer. The
    adapter reconnects, reconciles and retries; the client finds the order by its client
    order id (from the stream's news, or by looking it up) and never sends it again."""
    standin.scenario.drop_submit_answers = 1
    standin.scenario.announce_new = news_first
    graph = live_graph(standin, [BuyOnce("b")], credentials)
    run(graph, standin, 4)
    assert standin.posts == 1
    assert len(standin.orders) == 1  # exactly one order at the venue
    events = graph.capture.events
    assert len(_of(events, OrderAccepted, "b-1")) == 1
    fills = _of(events, OrderFilled, "b-1")
    assert len(fills) == 1 and fills[0].quantity == 10
    assert graph.broker.reconnects == 1
    reasons = [e.reason for e in graph.capture.of_type(AccountReconciled)]
    assert reasons == ["start", "reconnect"]
    if not news_first:  # the retry found it under its client order id (account, lookup)
        assert graph.execution.adopted == 1
    assert standin.position("AAA") == 10 == graph.broker.positions["AAA"]


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reordered"])
def test_duplicated_and_reordered_fill_messages_make_one_fill_per_execution(
    standin, credentials, reverse
):
    standin.scenario.duplicate_updates = True
    standin.scenario.reverse_updates = reverse
    standin.scenario.partial_fills = 3
    graph = live_graph(standin, [BuyOnce("b", quantity=9)], credentials)
    run(graph, standin, 3)
    fills = _of(graph.capture.events, OrderFilled, "b-1")
    assert sum(f.quantity for f in fills) == 9 == standin.position("AAA")
    venue = next(iter(standin.orders.values()))
    notional = sum(f.quantity * f.price for f in fills)
    assert notional == pytest.approx(9 * venue.filled_avg_price)
    assert len({f.fill_id for f in fills}) == len(fills)
    # in order: three executions, each once; newest first: the fill's cumulative
    # quantity covers the partial fills that follow it, which are then stale
    assert len(fills) == (1 if reverse else 3)
    tracked = graph.execution.orders["b-1"]
    assert tracked.duplicates >= 3
    assert len(_of(graph.capture.events, OrderAccepted, "b-1")) == 1
    code = graph.portfolio._table.code["AAA"]
    assert graph.portfolio.quantity[code] == 9


class RestAndBuy(Strategy):
    """On its first bar: buys 10 AAA at market and rests a buy limit for 5 ``symbol``
    at ``limit``, which the market reaches only minutes later."""

    def __init__(self, name: str, symbol: str, limit: float) -> None:
        super().__init__(name)
        self.symbol, self.limit, self.done = symbol, limit, False

    def on_bar(self, bar) -> None:
        if not self.done:
            self.done = True
            self.buy("AAA", 10, reason="signal")
            self.buy(self.symbol, 5, limit=self.limit, reason="resting")


class Resubmit(Component):
    """Publishes ``orders`` again on the first bar, as a journal replaying requests in
    flight at a crash would (a relay: they name the strategy that placed them)."""

    relay = True

    def __init__(self, orders: list[SubmitOrder]) -> None:
        super().__init__("resubmit")
        self.orders, self.done = orders, False

    @on(MARKET, phase=Phase.STRATEGY)
    def _first(self, batch: MarketBatch) -> None:
        if not self.done:
            self.done = True
            for order in self.orders:
                self.publish(ORDER_REQUESTS, order)


def _resting_limit(bars) -> tuple[str, float, int]:
    """A symbol and a limit its lows reach first at minute >= 5 (filled after a restart)."""
    for symbol in ("BBB", "CCC"):
        lows = bars.filter(bars["symbol"] == symbol)["low"].to_list()
        later = min(lows[5:])
        if min(lows[:5]) > later:
            return symbol, later, lows.index(later)
    raise AssertionError("no symbol's lows reach a new minimum after minute 5: change the seed")


def test_a_restart_mid_session_reconciles_positions_and_open_orders_without_a_duplicate(
    standin, credentials, bars
):
    symbol, limit, fills_at = _resting_limit(bars)
    first = live_graph(standin, [RestAndBuy("r", symbol, limit)], credentials)
    run(first, standin, 3)  # then the process dies: no cancel, nothing flushed
    assert standin.position("AAA") == 10 and len(standin.open_orders) == 1
    journal_positions = dict(first.broker.positions)  # what the journal says
    journal_orders = list(first.broker.working.values())
    resting = next(o for o in first.capture.of_type(SubmitOrder) if o.order_id == "r-2")
    posts = standin.posts

    second = live_graph(
        standin,
        [Resubmit([resting])],
        credentials,
        on_mismatch="fail",  # a difference would stop the restart
        expected_positions=journal_positions,
        expected_orders=journal_orders,
    )
    run(second, standin)
    start = second.capture.of_type(AccountReconciled)[0]
    assert start.reason == "start" and start.differences == []
    assert start.positions == {"AAA": 10.0}
    assert [o.order_id for o in start.open_orders] == ["r-2"]
    assert standin.posts == posts  # the resubmitted order was not sent again
    assert len(standin.orders) == 2
    fill = _of(second.capture.events, OrderFilled, "r-2")
    assert len(fill) == 1 and fill[0].strategy_id == "r" and fill[0].price == limit
    assert fills_at >= 5
    assert second.broker.positions == {"AAA": 10.0, symbol: 5.0}
    assert standin.position(symbol) == 5


def test_a_restart_without_a_journal_adopts_the_account_and_reports_what_it_found(
    standin, credentials, bars
):
    symbol, limit, _ = _resting_limit(bars)
    run(live_graph(standin, [RestAndBuy("r", symbol, limit)], credentials), standin, 3)
    fresh = live_graph(standin, [], credentials)  # adopt (the default)
    run(fresh, standin)
    start = fresh.capture.of_type(AccountReconciled)[0]
    assert start.adopted
    assert {d.kind: d.subject for d in start.differences} == {
        "position": "AAA",
        "unexpected_order": "r-2",
    }
    fill = _of(fresh.capture.events, OrderFilled, "r-2")  # the adopted order keeps its id
    assert len(fill) == 1 and fill[0].strategy_id == "r"
    assert fresh.portfolio.quantity[fresh.portfolio._table.code[symbol]] == 5


def test_the_venue_gone_for_a_minute_loses_no_fill_and_no_bar(standin, credentials, bars):
    """While the venue is away a fill happens and a minute's bars are sent to no one;
    after the reconnects the fill is learnt (the resume after reconciliation) and the
    minute is fetched over REST, in order."""
    outage_at = 2

    async def outage(i: int) -> None:
        if i == outage_at:
            standin.go_down()
            await standin.astep()  # a minute nobody hears about
            standin.come_up()
            with anyio.fail_after(10):
                while graph.market.backfilled == 0 or graph.broker.reconnects < 1:
                    await anyio.sleep(0.02)

    graph = live_graph(standin, [Momentum("m")], credentials)
    run(graph, standin, 12, between=outage, linger=0.3)
    unheard = standin.minutes[outage_at + 1][0]  # the minute played while away
    missed = [o for o in standin.orders.values() if o.filled_at == unheard]
    assert missed, "no order filled while the venue was away: the test would prove nothing"
    links = [e for e in graph.capture.of_type(VenueConnection) if e.state is VenueLink.RESTORED]
    assert {e.link for e in links} == {"trade_updates", "market_data"}
    batches = graph.feed.batches
    assert batches == 13  # twelve minutes played, and the one played while away
    after = [e for e in graph.capture.of_type(AccountReconciled) if e.reason == "reconnect"]
    assert after and after[-1].differences == []
    for order in standin.orders.values():
        ours = graph.execution._by_venue[order.id]
        fills = _of(graph.capture.events, OrderFilled, ours.order_id)
        assert sum(f.quantity for f in fills) == pytest.approx(order.filled_qty)
    for symbol in ("AAA", "BBB", "CCC"):
        assert graph.broker.positions.get(symbol, 0.0) == standin.position(symbol)
