"""``AlpacaExecution``: Alpaca's Trading API v2 as an execution client.

It implements :class:`~ml4t.backtest.live.ExecutionClient` for a
:class:`~ml4t.backtest.live.BrokerAdapter`, plus
:class:`~ml4t.backtest.live.AccountSource` (cash, positions, open orders) and
:class:`~ml4t.backtest.live.Resumable` (pick up orders placed earlier in the session).
Requests go through alpaca-py's ``TradingClient`` (:mod:`ml4t_alpaca._rest`); order
news comes from the ``trade_updates`` stream (:mod:`ml4t_alpaca._link`) and every answer
and lookup, and becomes our events through :mod:`ml4t_alpaca._tracker`.

**Idempotency.** An order's client order id is a function of the session, the strategy
and our order id (:mod:`ml4t_alpaca._orders`). ``submit`` of an id already known is a
no-op. A submit whose answer never came (the connection dropped between sending it and
the acknowledgement) raises ``ConnectionLost``; when the adapter retries it, the client
first looks the order up by its client order id (``GET /v2/orders:by_client_order_id``)
and adopts what the venue has, so the venue never holds two orders for one of ours. A
venue that answers "client order id must be unique" is treated the same way; if the
order it has under that id is not ours (another symbol or side: a session name reused
by another run) the submit is rejected instead.

**Order news** may arrive twice, out of order, before the submit's answer, or not at all
while the stream is down: acceptance and fills are derived from the venue's cumulative
state, so each is reported once; after a reconnect the adapter's reconciliation calls
:meth:`AlpacaExecution.resume`, which looks up every working order and reports what the
stream missed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import GetOrderByIdRequest, GetOrdersRequest, ReplaceOrderRequest
from websockets.asyncio.client import ClientConnection

from ml4t.backtest import (
    CancelOrder,
    Event,
    ModifyOrder,
    OrderRejected,
    OrderSide,
    RequestKind,
    SubmitOrder,
    VenueOrder,
    get_logger,
)
from ml4t.backtest.live import AccountState, ConnectionLost, VenueError
from ml4t_alpaca._bars import iso_ns
from ml4t_alpaca._link import StreamLink, authenticate, receive
from ml4t_alpaca._orders import (
    ClientIds,
    OrderRefused,
    exit_requests,
    natively_bracketed,
    order_request,
)
from ml4t_alpaca._rest import RejectedByVenue, Rest
from ml4t_alpaca._tracker import QTY_EPSILON, Execution, Tracked, order_type_of
from ml4t_alpaca.config import AlpacaConfig
from ml4t_alpaca.credentials import Credentials, load_credentials

__all__ = ["AlpacaExecution"]

TRADE_LINK = "trade_updates"
DUPLICATE_CLIENT_ID = 40010001
NOT_FOUND = 404
Listener = Callable[[Event], None]


def _opposite(side: OrderSide) -> OrderSide:
    return OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY


def _side(order: Any) -> OrderSide:
    return OrderSide(str(getattr(order.side, "value", order.side)))


class AlpacaExecution:
    """Orders of one session at one Alpaca account (``config.session`` names it)."""

    def __init__(
        self, config: AlpacaConfig | None = None, *, credentials: Credentials | None = None
    ) -> None:
        self.config = config = config or AlpacaConfig()
        self.ids = ClientIds(config.client_id_prefix, config.session)
        self.log = get_logger("ml4t.alpaca.execution", venue=config.venue, session=config.session)
        self._credentials = credentials
        self._rest: Rest | None = None
        self._link: StreamLink | None = None
        self._listener: Listener | None = None
        self.orders: dict[str, Tracked] = {}
        self._by_venue: dict[str, Tracked] = {}
        self._inflight: dict[str, SubmitOrder] = {}  # client id -> sent, not answered yet
        self._uncertain: set[str] = set()  # our ids whose submit got no answer
        self._venue_open: dict[str, Any] = {}  # client id -> open order, last account read
        self._tasks: set[asyncio.Task[None]] = set()
        self.posted = 0
        self.lookups = 0
        self.adopted = 0  # orders found at the venue under our client id, not resent
        self.untracked_updates = 0

    # ------------------------------------------------------------------ connection

    async def connect(self, on_event: Listener) -> None:
        self._listener = on_event
        if self._credentials is None:
            self._credentials = load_credentials(self.config)
        if self._rest is None:
            self._rest = Rest(self.config, self._credentials, log=self.log)
        if self._link is None:
            self._link = StreamLink(
                url=self.config.stream_url,
                link=TRADE_LINK,
                config=self.config,
                handshake=self._handshake,
                on_message=self._on_message,
                report=self._emit_one,
                now_ns=time.time_ns,
                log=self.log,
            )
        if not self._link.is_open:
            await self._link.open()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._link is not None:
            await self._link.close()

    async def drop_stream(self) -> None:
        """Close the trade-update stream as a network fault would (it reconnects)."""
        if self._link is not None:
            await self._link.drop()

    async def _handshake(self, ws: ClientConnection) -> None:
        timeout = self.config.request_timeout
        assert self._credentials is not None
        answer = await authenticate(ws, self._credentials, timeout)
        status = (answer.get("data") or {}).get("status") if isinstance(answer, dict) else None
        if status != "authorized":
            raise VenueError(f"the trade-update stream refused the credentials ({status})")
        await ws.send(json.dumps({"action": "listen", "data": {"streams": [TRADE_LINK]}}))
        answer = await receive(ws, timeout)
        streams = (answer.get("data") or {}).get("streams", []) if isinstance(answer, dict) else []
        if TRADE_LINK not in streams:
            raise ConnectionLost(f"the venue did not confirm listening to {TRADE_LINK}")

    def _rest_or_raise(self) -> Rest:
        if self._rest is None:
            raise ConnectionLost("the Alpaca execution client is not connected")
        return self._rest

    # ------------------------------------------------------------------ account

    async def positions(self) -> dict[str, float]:
        return dict((await self.account()).positions)

    async def account(self) -> AccountState:
        rest = self._rest_or_raise()
        account = await rest.call("account", rest.trading.get_account)
        held = await rest.call("positions", rest.trading.get_all_positions)
        query = GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True, limit=500)
        working = await rest.call("open orders", rest.trading.get_orders, query)
        positions: dict[str, float] = {}
        prices: dict[str, float] = {}
        for position in held:
            qty = float(position.qty)
            if str(getattr(position.side, "value", position.side)) == "short" and qty > 0:
                qty = -qty
            positions[position.symbol] = qty
            prices[position.symbol] = float(position.avg_entry_price)
        self._venue_open = {o.client_order_id: o for o in working}
        orders: list[VenueOrder] = []
        for order in working:
            orders.append(self._venue_order(order, self._our_id(order)))
            for leg in order.legs or ():
                if str(getattr(leg.status, "value", leg.status)) != "held":
                    tracked = self._by_venue.get(str(leg.id))
                    leg_id = tracked.order_id if tracked is not None else self._leg_id(order, leg)
                    orders.append(self._venue_order(leg, leg_id))
        return AccountState(
            cash=_float(account.cash),
            equity=_float(account.equity),
            positions=positions,
            avg_prices=prices,
            open_orders=orders,
        )

    def _our_id(self, order: Any) -> str:
        tracked = self._by_venue.get(str(order.id))
        if tracked is not None:
            return tracked.order_id
        parsed = self.ids.parse(order.client_order_id)
        return parsed[1] if parsed is not None else ""

    def _leg_id(self, parent: Any, leg: Any) -> str:
        base = self._our_id(parent)
        if not base:
            return ""
        return _child_id(base, leg)

    def _venue_order(self, order: Any, order_id: str) -> VenueOrder:
        parsed = self.ids.parse(order.client_order_id)
        tracked = self.orders.get(order_id)
        strategy = tracked.strategy_id if tracked else (parsed[0] if parsed else "")
        return VenueOrder(
            order_id=order_id,
            strategy_id=strategy,
            venue_order_id=str(order.id),
            symbol=order.symbol or "",
            side=_side(order),
            quantity=float(order.qty or 0.0),
            filled_quantity=float(order.filled_qty or 0.0),
            order_type=order_type_of(order),
            limit_price=_float(order.limit_price),
            stop_price=_float(order.stop_price),
            status=str(getattr(order.status, "value", order.status)),
        )

    # ------------------------------------------------------------------ resume

    async def resume(self, orders: Sequence[VenueOrder]) -> None:
        """Look up each order (following replacements) and report what is new."""
        for wanted in orders:
            if wanted.order_id in self._uncertain:
                continue  # its submit is being retried: the retry looks it up
            tracked = self.orders.get(wanted.order_id)
            if tracked is not None and tracked.done:
                continue
            parent_id, _, leg = wanted.order_id.rpartition(".")
            if tracked is None and leg in ("sl", "tp") and parent_id:
                await self._resume_leg(parent_id, wanted)
                continue
            venue = await self._fetch(tracked, wanted)
            if venue is None:
                self._not_at_venue(wanted)
                continue
            if tracked is None:
                tracked = self._from_venue_order(wanted, venue)
            self._index(tracked, venue)
            self._apply(tracked, venue, _ts(venue))

    async def _resume_leg(self, parent_id: str, wanted: VenueOrder) -> None:
        parent = self.orders.get(parent_id)
        cid = parent.client_order_id if parent else self.ids.of(wanted.strategy_id, parent_id)
        venue = await self._lookup(cid)
        if venue is None and wanted.order_id.endswith(".sl"):  # a staged oco: its leg
            venue = await self._lookup(self.ids.of(wanted.strategy_id, parent_id + ".tp"))
        if venue is None:
            self._not_at_venue(wanted)
            return
        venue = await self._nested(venue)
        owner = self.orders.get(self._our_id(venue))
        if owner is None:
            owner = self._from_venue_order(
                msgspec.structs.replace(wanted, order_id=self._our_id(venue) or parent_id), venue
            )
            owner.accepted = True
        self._index(owner, venue)
        self._apply(owner, venue, _ts(venue))

    async def _fetch(self, tracked: Tracked | None, wanted: VenueOrder) -> Any:
        """The venue's current order for ``tracked`` (or ``wanted``), replacements followed."""
        rest = self._rest_or_raise()
        venue: Any = None
        if tracked is not None and tracked.venue_id:
            venue = await self._get(tracked.venue_id)
        else:
            cid = (
                tracked.client_order_id
                if tracked
                else self.ids.of(wanted.strategy_id, wanted.order_id)
            )
            venue = await self._lookup(cid)
        hops = 0
        while venue is not None and venue.replaced_by is not None and hops < 100:
            venue = await self._get(str(venue.replaced_by))
            hops += 1
        if venue is not None and (venue.legs is None and _class(venue) != "simple"):
            venue = await rest.call(
                "order",
                rest.trading.get_order_by_id,
                str(venue.id),
                GetOrderByIdRequest(nested=True),
            )
        return venue

    def _from_venue_order(self, wanted: VenueOrder, venue: Any) -> Tracked:
        average = float(venue.filled_avg_price or 0.0)
        tracked = Tracked(
            order_id=wanted.order_id,
            strategy_id=wanted.strategy_id,
            symbol=wanted.symbol or venue.symbol,
            side=wanted.side,
            quantity=wanted.quantity or float(venue.qty or 0.0),
            client_order_id=venue.client_order_id,
            venue_id=str(venue.id),
            accepted=wanted.status not in ("", "submitted"),
            filled=wanted.filled_quantity,
            notional=wanted.filled_quantity * average,
        )
        parsed = self.ids.parse(venue.client_order_id)
        if parsed is not None:
            tracked.replacements = parsed[2]
        return tracked

    def _not_at_venue(self, wanted: VenueOrder) -> None:
        now = time.time_ns()
        self._emit_one(
            OrderRejected(
                ts_event=now,
                ts_init=now,
                order_id=wanted.order_id,
                strategy_id=wanted.strategy_id,
                symbol=wanted.symbol,
                rule="alpaca.not_at_venue",
                reason=f"{wanted.order_id} was expected to be working but the venue has no "
                "order under its client order id: it never reached the venue",
            )
        )

    # ------------------------------------------------------------------ requests

    async def submit(self, order: SubmitOrder) -> None:
        if order.order_id in self.orders:
            return  # idempotent: this order is already at the venue
        rest = self._rest_or_raise()
        cid = self.ids.of(order.strategy_id, order.order_id)
        if order.order_id in self._uncertain or cid in self._venue_open:
            existing = self._venue_open.get(cid) or await self._lookup(cid)
            if existing is not None:
                await self._adopt(order, existing)
                return
        try:
            request = order_request(order, cid, self.config)
        except OrderRefused as exc:
            self._reject(order, "alpaca.unsupported_order", str(exc))
            return
        self._inflight[cid] = order  # news of it may come before the answer
        try:
            self.posted += 1
            answer = await rest.call("submit", rest.trading.submit_order, request)
        except ConnectionLost:
            self._uncertain.add(order.order_id)  # the venue may have it: look before resending
            raise  # (still in flight: late news of it is tracked)
        except RejectedByVenue as exc:
            self._inflight.pop(cid, None)
            if exc.code == DUPLICATE_CLIENT_ID:
                existing = await self._lookup(cid)
                if existing is not None:
                    await self._adopt(order, existing)
                    return
            self._reject(order, f"alpaca.{exc.code or exc.status}", exc.message)
            return
        self._inflight.pop(cid, None)
        self._uncertain.discard(order.order_id)
        tracked = self.orders.get(order.order_id) or self._track(order, cid)
        if order.stop_loss is not None or order.take_profit is not None:
            tracked.staged = not natively_bracketed(
                order, self.config.alpaca_tif(order.time_in_force.value)
            )
        self._index(tracked, answer)
        self._apply(tracked, answer, _ts(answer))

    async def _adopt(self, order: SubmitOrder, existing: Any) -> None:
        """Take the venue's order under our client id as ``order`` (never a second one)."""
        self._uncertain.discard(order.order_id)
        self._inflight.pop(existing.client_order_id, None)
        if existing.symbol != order.symbol or _side(existing) is not order.side:
            self._reject(
                order,
                "alpaca.client_order_id_taken",
                f"the venue already has an order under {existing.client_order_id!r} for "
                f"{_side(existing)} {existing.symbol}, not this {order.side} {order.symbol}: "
                "another run used the same session name; give each run its own",
            )
            return
        self.adopted += 1
        self.log.info("order_adopted", order_id=order.order_id, venue_status=str(existing.status))
        tracked = self.orders.get(order.order_id) or self._track(order, existing.client_order_id)
        if order.stop_loss is not None or order.take_profit is not None:
            tracked.staged = not natively_bracketed(
                order, self.config.alpaca_tif(order.time_in_force.value)
            )
        venue = await self._nested(existing)
        self._index(tracked, venue)
        self._apply(tracked, venue, _ts(venue))

    async def cancel(self, request: CancelOrder) -> None:
        rest = self._rest_or_raise()
        tracked = self.orders.get(request.order_id)
        if tracked is None or tracked.done or not tracked.venue_id:
            state = "finished" if tracked is not None and tracked.done else "not working"
            self._refuse(
                request,
                RequestKind.CANCEL,
                "unknown_order",
                f"cannot cancel {request.order_id}: the order is {state}",
            )
            return
        try:
            await rest.call("cancel", rest.trading.cancel_order_by_id, tracked.venue_id)
        except RejectedByVenue as exc:
            self._refuse(
                request, RequestKind.CANCEL, f"alpaca.{exc.code or exc.status}", exc.message
            )

    async def modify(self, request: ModifyOrder) -> None:
        rest = self._rest_or_raise()
        tracked = self.orders.get(request.order_id)
        if tracked is None or tracked.done or not tracked.venue_id:
            self._refuse(
                request,
                RequestKind.MODIFY,
                "unknown_order",
                f"cannot modify {request.order_id}: the order is not working",
            )
            return
        qty = request.quantity
        if qty is not None and abs(qty - round(qty)) > QTY_EPSILON:
            self._refuse(
                request,
                RequestKind.MODIFY,
                "alpaca.unsupported_order",
                f"Alpaca replaces whole-share quantities only, not {qty:g}",
            )
            return
        n = tracked.replacements + 1
        replace = ReplaceOrderRequest(
            qty=round(qty) if qty is not None else None,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            client_order_id=self.ids.of(tracked.strategy_id, tracked.order_id, n),
        )
        try:
            answer = await rest.call(
                "replace", rest.trading.replace_order_by_id, tracked.venue_id, replace
            )
        except RejectedByVenue as exc:
            self._refuse(
                request, RequestKind.MODIFY, f"alpaca.{exc.code or exc.status}", exc.message
            )
            return
        self._replaced(tracked, answer)

    def _replaced(self, tracked: Tracked, answer: Any) -> None:
        if str(answer.id) == tracked.venue_id:
            return
        parsed = self.ids.parse(answer.client_order_id)
        tracked.replacements = parsed[2] if parsed else tracked.replacements + 1
        self._by_venue[str(answer.id)] = tracked
        self._emit_one(tracked.updated(answer, _ts(answer)))

    # ------------------------------------------------------------------ venue lookups

    async def _lookup(self, cid: str) -> Any:
        rest = self._rest_or_raise()
        self.lookups += 1
        try:
            return await rest.call("lookup", rest.trading.get_order_by_client_id, cid)
        except RejectedByVenue as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    async def _get(self, venue_id: str) -> Any:
        rest = self._rest_or_raise()
        try:
            return await rest.call(
                "order", rest.trading.get_order_by_id, venue_id, GetOrderByIdRequest(nested=True)
            )
        except RejectedByVenue as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    async def _nested(self, order: Any) -> Any:
        """``order`` with its legs (a lookup by client id does not nest them)."""
        if _class(order) == "simple" or order.legs:
            return order
        return await self._get(str(order.id)) or order

    # ------------------------------------------------------------------ tracking

    def _track(self, order: SubmitOrder, cid: str) -> Tracked:
        tracked = Tracked(
            order_id=order.order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            client_order_id=cid,
            request=order,
            reason=order.reason,
        )
        self.orders[order.order_id] = tracked
        return tracked

    def _index(self, tracked: Tracked, venue: Any) -> None:
        self.orders[tracked.order_id] = tracked
        if venue is not None and venue.id is not None:
            tracked.venue_id = str(venue.id)
            self._by_venue[tracked.venue_id] = tracked

    def _apply(
        self, tracked: Tracked, venue: Any, ts: int, execution: Execution | None = None
    ) -> None:
        events = tracked.apply(venue, ts, execution)
        for leg in venue.legs or ():
            events += self._leg(tracked, venue, leg, ts)
        self._emit(events)
        if tracked.staged and tracked.done and tracked.filled > QTY_EPSILON:
            tracked.staged = False
            self._spawn(self._place_exits(tracked))

    def _leg(self, owner: Tracked, parent: Any, leg: Any, ts: int) -> list[Event]:
        child = self._by_venue.get(str(leg.id))
        if child is None:
            child_id = _child_id(owner.order_id, leg)
            child = self.orders.get(child_id) or Tracked(
                order_id=child_id,
                strategy_id=owner.strategy_id,
                symbol=owner.symbol,
                side=_side(leg),
                quantity=float(leg.qty or 0.0),
                client_order_id=leg.client_order_id,
                reason="take_profit" if child_id.endswith(".tp") else "stop_loss",
            )
            self._index(child, leg)
        return child.apply(leg, _ts(leg) if leg.updated_at else ts)

    def _find(self, order: Any) -> Tracked | None:
        tracked = self._by_venue.get(str(order.id))
        if tracked is not None:
            return tracked
        parsed = self.ids.parse(order.client_order_id)
        if parsed is None:
            return None
        tracked = self.orders.get(parsed[1])
        if tracked is None:
            request = self._inflight.get(order.client_order_id)
            if request is None:
                return None
            tracked = self._track(request, order.client_order_id)  # news before the answer
            self._uncertain.discard(request.order_id)
        if order.replaces is not None and str(order.replaces) == tracked.venue_id:
            self._replaced(tracked, order)
        self._index(tracked, order)
        return tracked

    # ------------------------------------------------------------------ the stream

    def _on_message(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("stream") != TRADE_LINK:
            return
        update = TradeUpdate(**message["data"])
        order = update.order
        tracked = self._find(order)
        if tracked is None:
            self.untracked_updates += 1
            self.log.info("untracked_order_update", venue_order=str(order.id))
            return
        event = str(getattr(update.event, "value", update.event))
        ts = iso_ns(update.timestamp)
        if event == "replaced" and str(order.id) != tracked.venue_id:
            return  # the old order, replaced: the new one is tracked already
        if event in ("order_cancel_rejected", "order_replace_rejected"):
            kind = RequestKind.CANCEL if event == "order_cancel_rejected" else RequestKind.MODIFY
            self._emit_one(self._refusal(tracked, kind, ts, f"the venue refused the {kind}"))
            return
        execution = None
        if (
            event in ("fill", "partial_fill")
            and update.qty is not None
            and update.price is not None
        ):
            execution = Execution(
                str(update.execution_id or ""), float(update.qty), float(update.price), ts
            )
        self._apply(tracked, order, ts, execution)

    # ------------------------------------------------------------------ staged exits

    async def _place_exits(self, entry: Tracked) -> None:
        """Exits Alpaca could not take with the entry, for what the entry filled."""
        request = entry.request
        assert request is not None
        tp_id, sl_id = f"{entry.order_id}.tp", f"{entry.order_id}.sl"
        cids = (self.ids.of(entry.strategy_id, tp_id), self.ids.of(entry.strategy_id, sl_id))
        main_id, main_cid = (
            (tp_id, cids[0]) if request.take_profit is not None else (sl_id, cids[1])
        )
        child_request = SubmitOrder(
            ts_event=request.ts_event,
            order_id=main_id,
            strategy_id=entry.strategy_id,
            symbol=entry.symbol,
            side=_opposite(entry.side),
            quantity=entry.filled,
            reason="take_profit" if main_id == tp_id else "stop_loss",
        )
        rest = self._rest_or_raise()

        async def place() -> Any:
            existing = await self._lookup(main_cid)
            if existing is not None:
                return await self._nested(existing)
            self.posted += 1
            return await rest.call(
                "exits",
                rest.trading.submit_order,
                exit_requests(request, entry.filled, cids, self.config),
            )

        try:
            answer = await self.config.backoff.retry(place, what="place exits", log=self.log)
        except (RejectedByVenue, OrderRefused, ConnectionLost) as exc:
            self.log.error("exits_not_placed", order_id=entry.order_id, error=str(exc))
            for child_id in (tp_id, sl_id):
                self._reject(
                    msgspec.structs.replace(child_request, order_id=child_id),
                    "alpaca.exits_not_placed",
                    str(exc),
                )
            return
        child = self._track(child_request, answer.client_order_id)
        self._index(child, answer)
        self._apply(child, answer, _ts(answer))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ reporting

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self._emit_one(event)

    def _emit_one(self, event: Event) -> None:
        if self._listener is not None:
            self._listener(event)

    def _reject(self, order: SubmitOrder, rule: str, reason: str) -> None:
        self._emit_one(
            OrderRejected(
                ts_event=order.ts_event,
                ts_init=order.ts_event,
                order_id=order.order_id,
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                rule=rule,
                reason=reason,
            )
        )

    def _refuse(
        self, request: CancelOrder | ModifyOrder, kind: RequestKind, rule: str, reason: str
    ) -> None:
        tracked = self.orders.get(request.order_id)
        self._emit_one(
            OrderRejected(
                ts_event=request.ts_event,
                ts_init=request.ts_event,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=tracked.symbol if tracked is not None else "",
                rule=rule,
                reason=reason,
                request=kind,
            )
        )

    def _refusal(self, tracked: Tracked, kind: RequestKind, ts: int, reason: str) -> OrderRejected:
        return OrderRejected(
            ts_event=ts,
            ts_init=ts,
            order_id=tracked.order_id,
            strategy_id=tracked.strategy_id,
            symbol=tracked.symbol,
            rule=f"alpaca.{kind}_rejected",
            reason=reason,
            request=kind,
        )


def _child_id(owner_id: str, leg: Any) -> str:
    """Our id of a leg: ``<entry>.tp`` (limit) or ``.sl`` (stop); a staged oco's leg is
    its take profit's sibling."""
    base = owner_id.removesuffix(".tp")
    kind = order_type_of(leg).value
    return f"{base}.tp" if kind == "limit" else f"{base}.sl"


def _class(order: Any) -> str:
    return str(getattr(order.order_class, "value", order.order_class) or "simple")


def _ts(order: Any) -> int:
    stamp = order.updated_at or order.submitted_at or order.created_at
    return iso_ns(stamp)


def _float(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None
