"""A local STAND-IN for Alpaca: the documented subset of the Trading API v2, its
``trade_updates`` stream, the market-data bars endpoint and the market-data stream that
``ml4t_alpaca`` uses, on 127.0.0.1, for tests. It is not Alpaca and makes no claim to
behave like it beyond that subset; the payload shapes are those of Alpaca's API
reference (and of alpaca-py's models, which parse them): orders, positions, the account,
the clock, trade updates, bars, the streams' handshakes and error messages.

One aiohttp application (HTTP and WebSocket on one port) runs on a thread of its own
with its own event loop, as a remote server would:

- REST: ``GET /v2/account``, ``/v2/positions``, ``/v2/clock``, ``/v2/orders``
  (``status=open``, ``nested``), ``/v2/orders/{id}``, ``/v2/orders:by_client_order_id``;
  ``POST /v2/orders``; ``PATCH /v2/orders/{id}``; ``DELETE /v2/orders/{id}``;
  ``GET /v2/stocks/bars`` (paged). Requests need ``APCA-API-KEY-ID`` and
  ``APCA-API-SECRET-KEY``;
- ``/stream``: the trade-update stream (auth, listen, then binary JSON frames);
- ``/v2/<feed>``: the market-data stream (connected, auth, subscribe, ``"T": "b"`` bars).

**Time is scripted.** The bars come from a polars frame (``timestamp`` known at the
bar's end, as ml4t data is; Alpaca stamps the minute's start, so a row at 09:31 is sent
as ``t = 09:30``). :meth:`AlpacaStandIn.step` plays one minute: the orders working
before it are matched against its bars (market orders at the open, limits and stops
when the bar reaches them, like the simulated broker's next-bar fills), their trade
updates are sent, then, ``fill_lead`` seconds later, the minute's bars. The venue's
clock (``/v2/clock``, fill times) is the end of the last minute played.

**The fill rule**, for an order working before a minute (:func:`_fill_price`): a market
order fills in full at that minute's open (at its close for ``cls``); a limit at the
better of the open and the limit once the bar reaches it; a stop, or a trailing stop, at
the worse of the open and the stop once the bar crosses it; a stop-limit at its limit.
No commission, no slippage, no volume limit: with ``fill_timing: next_open`` and no costs
the simulated broker fills the same orders at the same prices (``tests/test_three_way.py``
checks it). A buy needs buying power (cash times ``Scenario.buying_power_multiplier``,
at the last close or the limit).

**Faults** are a :class:`Scenario`: partial fills, duplicated and reordered trade
updates, a submit processed but its answer cut off (the connection drops between submit
and acknowledgement), 429s with ``Retry-After``, rejections (by HTTP answer or by a
``rejected`` update), dropped streams, and :meth:`AlpacaStandIn.restart` (the server
goes away and comes back on the same port with its state).

:func:`start_standin` starts one for a frame of bars and returns it; its
:meth:`AlpacaStandIn.config` is the ``AlpacaConfig`` pointing the adapters at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from aiohttp import WSMsgType, web
from ml4t_alpaca import AlpacaConfig

__all__ = ["AlpacaStandIn", "Scenario", "start_standin"]

MINUTE = timedelta(minutes=1)
KEY_HEADER, SECRET_HEADER = "APCA-API-KEY-ID", "APCA-API-SECRET-KEY"
OPEN_STATUSES = ("new", "accepted", "partially_filled", "pending_new", "held")


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(value: float) -> str:
    return f"{value:.10g}"


@dataclass
class Scenario:
    """What goes wrong, set by a test before or while it plays."""

    partial_fills: int = 1  # executions a fill is split into (each its own trade update)
    duplicate_updates: bool = False  # every trade update sent twice
    reverse_updates: bool = False  # a minute's trade updates sent newest first
    drop_submit_answers: int = 0  # next N submits: the order is created, the answer cut off
    announce_new: bool = True  # a created order's "new" trade update is sent
    rate_limited: int = 0  # next N REST requests: 429 with Retry-After
    retry_after: float = 0.05
    reject_symbols: dict[str, str] = field(default_factory=dict)  # symbol -> 403 message
    reject_later: set[str] = field(default_factory=set)  # accepted, then a rejected update
    fill_lead: float = 0.03  # seconds between a minute's trade updates and its bars
    buying_power_multiplier: float = 2.0


@dataclass
class Order:
    """An order at the stand-in, in Alpaca's terms."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    qty: float
    type: str
    time_in_force: str
    created_at: datetime
    order_class: str = "simple"
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    hwm: float | None = None
    status: str = "accepted"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    legs: list[Order] = field(default_factory=list)
    parent: Order | None = None
    seq: int = 0
    eligible_from: datetime | None = None  # first minute (start) it may match

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def json(self, nested: bool = True) -> dict[str, Any]:
        updated = self.updated_at or self.created_at
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(updated),
            "submitted_at": iso(self.created_at),
            "filled_at": iso(self.filled_at) if self.filled_at else None,
            "expired_at": None,
            "canceled_at": iso(self.canceled_at) if self.canceled_at else None,
            "failed_at": None,
            "replaced_at": iso(updated) if self.replaced_by else None,
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.symbol)),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": _num(self.qty),
            "filled_qty": _num(self.filled_qty),
            "filled_avg_price": (
                _num(self.filled_avg_price) if self.filled_avg_price is not None else None
            ),
            "order_class": self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": _num(self.limit_price) if self.limit_price is not None else None,
            "stop_price": _num(self.stop_price) if self.stop_price is not None else None,
            "status": self.status,
            "extended_hours": False,
            "legs": [leg.json() for leg in self.legs] if nested and self.legs else None,
            "trail_percent": _num(self.trail_percent) if self.trail_percent is not None else None,
            "trail_price": _num(self.trail_price) if self.trail_price is not None else None,
            "hwm": _num(self.hwm) if self.hwm is not None else None,
        }


class _Refused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AlpacaStandIn:
    """The stand-in server: scripted ``bars``, an account with ``cash`` and
    ``positions`` (symbol -> (qty, avg price)), the credentials it accepts."""

    def __init__(
        self,
        bars: pl.DataFrame,
        *,
        key_id: str,
        secret_key: str,
        cash: float = 100_000.0,
        positions: dict[str, tuple[float, float]] | None = None,
        feed: str = "iex",
    ) -> None:
        frame = bars.sort("timestamp", "symbol")
        self.minutes: list[tuple[datetime, list[dict[str, Any]]]] = []
        for (known,), rows in frame.group_by("timestamp", maintain_order=True):
            start = known - MINUTE  # Alpaca stamps a minute bar with its start
            self.minutes.append((start, rows.to_dicts()))
        self.key_id, self.secret_key = key_id, secret_key
        self.feed = feed
        self.cash = cash
        self.positions: dict[str, list[float]] = {
            s: [q, p] for s, (q, p) in (positions or {}).items()
        }
        self.scenario = Scenario()
        self.orders: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.played = 0
        self.now = self.minutes[0][0] if self.minutes else datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
        self.last_close: dict[str, float] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST request
        self.posts = 0
        self.auth_failures = 0
        self._seq = itertools.count(1)
        self._trade_sockets: set[web.WebSocketResponse] = set()
        self._data_sockets: dict[web.WebSocketResponse, set[str]] = {}
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: int = 0) -> AlpacaStandIn:
        self.port = port or _free_port()
        ready = threading.Event()
        self._loop = loop = asyncio.new_event_loop()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=main, name="alpaca-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Alpaca stand-in did not start within 10 s")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._call(self._unserve())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def restart(self, down_for: float = 0.3) -> None:
        """The server goes away (every connection drops) and comes back on the same
        port, its account and orders as they were."""
        self.go_down()
        threading.Event().wait(down_for)
        self.come_up()

    def go_down(self) -> None:
        """Every connection drops and none is accepted; the market goes on (:meth:`step`
        still plays minutes, whose news and bars then reach no one)."""
        self._call(self._unserve())

    def come_up(self) -> None:
        self._call(self._serve())

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/v2/account", self._account)
        app.router.add_get("/v2/positions", self._positions)
        app.router.add_get("/v2/clock", self._clock)
        app.router.add_get("/v2/orders:by_client_order_id", self._by_client_id)
        app.router.add_get("/v2/orders", self._list_orders)
        app.router.add_post("/v2/orders", self._submit)
        app.router.add_get("/v2/orders/{id}", self._get_order)
        app.router.add_patch("/v2/orders/{id}", self._replace)
        app.router.add_delete("/v2/orders/{id}", self._cancel)
        app.router.add_get("/v2/stocks/bars", self._bars)
        app.router.add_get("/stream", self._trade_stream)
        app.router.add_get(f"/v2/{self.feed}", self._data_stream)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _unserve(self) -> None:
        for ws in [*self._trade_sockets, *self._data_sockets]:
            await ws.close()
        self._trade_sockets.clear()
        self._data_sockets.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    # ------------------------------------------------------------------ for tests

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, **overrides: Any) -> AlpacaConfig:
        """An ``AlpacaConfig`` pointing every endpoint at this server."""
        fields: dict[str, Any] = {
            "trading_url": self.base_url,
            "trading_stream_url": f"ws://127.0.0.1:{self.port}/stream",
            "data_url": self.base_url,
            "data_stream_url": f"ws://127.0.0.1:{self.port}/v2/{self.feed}",
            "feed": self.feed,
            "grace": 0.5,
            "request_timeout": 5.0,
        }
        fields.update(overrides)
        return AlpacaConfig(**fields)

    @property
    def remaining(self) -> int:
        return len(self.minutes) - self.played

    def step(self, minutes: int = 1) -> None:
        """Play ``minutes`` (blocking the calling thread until their bars are sent)."""
        for _ in range(minutes):
            self._call(self._play_minute())

    async def astep(self, minutes: int = 1) -> None:
        """:meth:`step` from a coroutine of another event loop."""
        for _ in range(minutes):
            assert self._loop is not None
            future = asyncio.run_coroutine_threadsafe(self._play_minute(), self._loop)
            await asyncio.wrap_future(future)

    def drop_trade_streams(self) -> None:
        self._call(self._close_all(self._trade_sockets))

    def drop_data_streams(self) -> None:
        self._call(self._close_all(set(self._data_sockets)))

    @property
    def open_orders(self) -> list[Order]:
        with self._lock:
            return [o for o in self.orders.values() if o.is_open and o.status != "held"]

    def orders_for(self, client_order_id_part: str) -> list[Order]:
        with self._lock:
            return [o for o in self.orders.values() if client_order_id_part in o.client_order_id]

    def position(self, symbol: str) -> float:
        with self._lock:
            return self.positions.get(symbol, [0.0, 0.0])[0]

    def place(self, **fields: Any) -> Order:
        """An order placed at the venue directly (by another process, a person)."""

        async def make() -> Order:
            return self._create(fields)

        return self._call(make())

    async def _close_all(self, sockets: Iterable[web.WebSocketResponse]) -> None:
        for ws in list(sockets):
            await ws.close()

    # ------------------------------------------------------------------ REST

    def _check(self, request: web.Request) -> None:
        self.requests.append((request.method, request.path))
        key, secret = request.headers.get(KEY_HEADER), request.headers.get(SECRET_HEADER)
        if key != self.key_id or secret != self.secret_key:
            self.auth_failures += 1
            raise _Refused(401, 40110000, "request is not authorized")
        if self.scenario.rate_limited > 0:
            self.scenario.rate_limited -= 1
            raise _Refused(429, 42910000, "rate limit exceeded")

    def _refusal(self, exc: _Refused) -> web.Response:
        headers = {"Retry-After": _num(self.scenario.retry_after)} if exc.status == 429 else {}
        body = json.dumps({"code": exc.code, "message": exc.message})
        return web.Response(
            status=exc.status, text=body, content_type="application/json", headers=headers
        )

    async def _guarded(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            self._check(request)
            return await handler()
        except _Refused as exc:
            return self._refusal(exc)

    async def _account(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            long_value = sum(q * self._mark(s) for s, (q, _) in self.positions.items() if q > 0)
            short_value = sum(q * self._mark(s) for s, (q, _) in self.positions.items() if q < 0)
            equity = self.cash + long_value + short_value
            body = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "standin-account")),
                "account_number": "PA0STANDIN",
                "status": "ACTIVE",
                "currency": "USD",
                "cash": _num(self.cash),
                "buying_power": _num(self._buying_power()),
                "regt_buying_power": _num(self._buying_power()),
                "equity": _num(equity),
                "portfolio_value": _num(equity),
                "long_market_value": _num(long_value),
                "short_market_value": _num(short_value),
                "multiplier": _num(self.scenario.buying_power_multiplier),
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "shorting_enabled": True,
                "created_at": "2024-01-02T00:00:00Z",
            }
            return web.json_response(body)

        return await self._guarded(request, answer)

    async def _positions(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            out = []
            for symbol, (qty, avg) in sorted(self.positions.items()):
                if qty == 0:
                    continue
                mark = self._mark(symbol)
                out.append(
                    {
                        "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
                        "symbol": symbol,
                        "exchange": "NASDAQ",
                        "asset_class": "us_equity",
                        "avg_entry_price": _num(avg),
                        "qty": _num(qty),
                        "qty_available": _num(qty),
                        "side": "long" if qty > 0 else "short",
                        "market_value": _num(qty * mark),
                        "cost_basis": _num(qty * avg),
                        "unrealized_pl": _num(qty * (mark - avg)),
                        "current_price": _num(mark),
                    }
                )
            return web.json_response(out)

        return await self._guarded(request, answer)

    async def _clock(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            return web.json_response(
                {
                    "timestamp": iso(self.now),
                    "is_open": True,
                    "next_open": iso(self.now + timedelta(days=1)),
                    "next_close": iso(self.now + timedelta(hours=6)),
                }
            )

        return await self._guarded(request, answer)

    async def _list_orders(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            status = request.query.get("status", "open")
            nested = request.query.get("nested", "false").lower() == "true"
            chosen = [o for o in self.orders.values() if o.parent is None or not nested]
            if status == "open":
                chosen = [o for o in chosen if o.is_open or any(leg.is_open for leg in o.legs)]
            elif status == "closed":
                chosen = [o for o in chosen if not o.is_open]
            limit = int(request.query.get("limit", "50"))
            chosen.sort(key=lambda o: o.seq, reverse=True)
            return web.json_response([o.json(nested=nested) for o in chosen[:limit]])

        return await self._guarded(request, answer)

    async def _get_order(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            order = self.orders.get(request.match_info["id"])
            if order is None:
                raise _Refused(404, 40410000, "order not found")
            nested = request.query.get("nested", "false").lower() == "true"
            return web.json_response(order.json(nested=nested))

        return await self._guarded(request, answer)

    async def _by_client_id(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            order = self.by_client_id.get(request.query.get("client_order_id", ""))
            if order is None:
                raise _Refused(404, 40410000, "order not found")
            return web.json_response(order.json(nested=False))

        return await self._guarded(request, answer)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.StreamResponse:
            body = await request.json()
            self.posts += 1
            order = self._create(body)
            if self.scenario.announce_new:
                await self._send_update("new", order)
            if order.symbol in self.scenario.reject_later:
                order.status = "rejected"
                for leg in order.legs:
                    leg.status = "canceled"
                await self._send_update("rejected", order)
            if self.scenario.drop_submit_answers > 0:
                self.scenario.drop_submit_answers -= 1
                assert request.transport is not None
                request.transport.abort()  # processed, but the answer never leaves
                return web.Response(status=200)
            return web.json_response(order.json(), status=200)

        return await self._guarded(request, answer)

    async def _replace(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            old = self.orders.get(request.match_info["id"])
            if old is None:
                raise _Refused(404, 40410000, "order not found")
            if not old.is_open or old.status == "held":
                raise _Refused(422, 42210000, "order is not replaceable")
            body = await request.json()
            cid = body.get("client_order_id") or str(uuid.uuid4())
            if cid in self.by_client_id:
                raise _Refused(422, 40010001, "client_order_id must be unique")
            new = Order(
                id=str(uuid.uuid4()),
                client_order_id=cid,
                symbol=old.symbol,
                side=old.side,
                qty=float(body.get("qty") or old.qty),
                type=old.type,
                time_in_force=body.get("time_in_force") or old.time_in_force,
                created_at=self.now,
                order_class=old.order_class,
                limit_price=_opt(body.get("limit_price"), old.limit_price),
                stop_price=_opt(body.get("stop_price"), old.stop_price),
                trail_price=old.trail_price,
                trail_percent=old.trail_percent,
                filled_qty=old.filled_qty,
                filled_avg_price=old.filled_avg_price,
                status="partially_filled" if old.filled_qty else "new",
                replaces=old.id,
                seq=next(self._seq),
                eligible_from=self._next_minute(),
            )
            old.status, old.replaced_by, old.updated_at = "replaced", new.id, self.now
            self._register(new)
            await self._send_update("replaced", old)
            await self._send_update("new", new)
            return web.json_response(new.json())

        return await self._guarded(request, answer)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            order = self.orders.get(request.match_info["id"])
            if order is None:
                raise _Refused(404, 40410000, "order not found")
            if not order.is_open:
                raise _Refused(422, 42210000, "order is not cancelable")
            for target in (order, *order.legs):
                if target.is_open:
                    self._cancel_order(target)
                    await self._send_update("canceled", target)
            return web.Response(status=204)

        return await self._guarded(request, answer)

    async def _bars(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.Response:
            query = request.query
            symbols = set(query.get("symbols", "").split(","))
            start = _parse(query.get("start")) or datetime.min.replace(tzinfo=UTC)
            end = _parse(query.get("end")) or self.now
            limit = int(query.get("limit") or 10_000)
            offset = int(query.get("page_token") or 0)
            found: list[tuple[str, dict[str, Any]]] = []
            for minute, rows in self.minutes[: self.played]:
                if not (start <= minute and minute + MINUTE <= min(end, self.now)):
                    continue
                for row in rows:
                    if row["symbol"] in symbols:
                        found.append((row["symbol"], _bar(minute, row)))
            page = found[offset : offset + limit]
            bars: dict[str, list[dict[str, Any]]] = {}
            for symbol, bar in page:
                bars.setdefault(symbol, []).append(bar)
            more = offset + limit < len(found)
            return web.json_response(
                {"bars": bars, "next_page_token": str(offset + limit) if more else None}
            )

        return await self._guarded(request, answer)

    # ------------------------------------------------------------------ streams

    async def _trade_stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        authorized = False
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            data = json.loads(message.data)
            action = data.get("action")
            if action in ("auth", "authenticate"):
                creds = data.get("data") or {}
                key = data.get("key") or creds.get("key_id")
                secret = data.get("secret") or creds.get("secret_key")
                authorized = key == self.key_id and secret == self.secret_key
                status = "authorized" if authorized else "unauthorized"
                if not authorized:
                    self.auth_failures += 1
                reply = {
                    "stream": "authorization",
                    "data": {"action": "authenticate", "status": status},
                }
                await ws.send_bytes(json.dumps(reply).encode())
                if not authorized:
                    await ws.close()
            elif action == "listen" and authorized:
                streams = [s for s in data["data"]["streams"] if s == "trade_updates"]
                await ws.send_bytes(
                    json.dumps({"stream": "listening", "data": {"streams": streams}}).encode()
                )
                if streams:
                    self._trade_sockets.add(ws)
        self._trade_sockets.discard(ws)
        return ws

    async def _data_stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps([{"T": "success", "msg": "connected"}]))
        authorized = False
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            data = json.loads(message.data)
            action = data.get("action")
            if action == "auth":
                authorized = (
                    data.get("key") == self.key_id and data.get("secret") == self.secret_key
                )
                if authorized:
                    await ws.send_str(json.dumps([{"T": "success", "msg": "authenticated"}]))
                else:
                    self.auth_failures += 1
                    await ws.send_str(
                        json.dumps([{"T": "error", "code": 402, "msg": "auth failed"}])
                    )
                    await ws.close()
            elif action == "subscribe":
                if not authorized:
                    await ws.send_str(
                        json.dumps([{"T": "error", "code": 401, "msg": "not authenticated"}])
                    )
                    continue
                wanted = self._data_sockets.setdefault(ws, set())
                wanted.update(data.get("bars", []))
                await ws.send_str(
                    json.dumps(
                        [{"T": "subscription", "trades": [], "quotes": [], "bars": sorted(wanted)}]
                    )
                )
        self._data_sockets.pop(ws, None)
        return ws

    async def _send_update(self, event: str, order: Order, **extra: Any) -> None:
        await self._broadcast([self._update(event, order, **extra)])

    def _update(self, event: str, order: Order, **extra: Any) -> dict[str, Any]:
        data = {"event": event, "order": order.json(), "timestamp": iso(self.now), **extra}
        return {"stream": "trade_updates", "data": data}

    async def _broadcast(self, updates: list[dict[str, Any]]) -> None:
        if self.scenario.reverse_updates:
            updates = updates[::-1]
        for update in updates:
            payload = json.dumps(update).encode()
            for _ in range(2 if self.scenario.duplicate_updates else 1):
                for ws in list(self._trade_sockets):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_bytes(payload)

    # ------------------------------------------------------------------ the venue

    def _register(self, order: Order) -> None:
        with self._lock:
            self.orders[order.id] = order
            self.by_client_id[order.client_order_id] = order

    def _create(self, body: dict[str, Any]) -> Order:
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if cid in self.by_client_id:
            raise _Refused(422, 40010001, "client_order_id must be unique")
        symbol = str(body["symbol"])
        if symbol in self.scenario.reject_symbols:
            raise _Refused(403, 40310000, self.scenario.reject_symbols[symbol])
        kind = body.get("type", "market")
        order_class = body.get("order_class") or "simple"
        tif = body.get("time_in_force", "day")
        if kind == "trailing_stop" and tif not in ("day", "gtc"):
            raise _Refused(422, 42210000, "trailing stop orders must be day or gtc")
        if order_class in ("bracket", "oto", "oco") and tif not in ("day", "gtc"):
            raise _Refused(422, 42210000, f"{order_class} orders must be day or gtc")
        qty = float(body["qty"])
        price = float(body.get("limit_price") or self._mark(symbol) or 0.0)
        if body["side"] == "buy" and qty * price > self._buying_power() + 1e-6:
            raise _Refused(403, 40310000, "insufficient buying power")
        order = Order(
            id=str(uuid.uuid4()),
            client_order_id=cid,
            symbol=symbol,
            side=body["side"],
            qty=qty,
            type=kind,
            time_in_force=tif,
            created_at=self.now,
            order_class=order_class,
            limit_price=_opt(body.get("limit_price")),
            stop_price=_opt(body.get("stop_price")),
            trail_price=_opt(body.get("trail_price")),
            trail_percent=_opt(body.get("trail_percent")),
            status="new",
            seq=next(self._seq),
            eligible_from=self._next_minute(),
        )
        exit_side = "sell" if order.side == "buy" else "buy"
        take, stop = body.get("take_profit"), body.get("stop_loss")
        if order_class == "oco":  # the order itself is the take profit; the stop its leg
            order.legs.append(self._leg(order, "stop", exit_side, stop, held=False))
        elif order_class in ("bracket", "oto"):
            if take:
                order.legs.append(self._leg(order, "limit", exit_side, take, held=True))
            if stop:
                order.legs.append(self._leg(order, "stop", exit_side, stop, held=True))
        self._register(order)
        for leg in order.legs:
            self._register(leg)
        return order

    def _leg(self, parent: Order, kind: str, side: str, spec: dict[str, Any], held: bool) -> Order:
        return Order(
            id=str(uuid.uuid4()),
            client_order_id=str(uuid.uuid4()),
            symbol=parent.symbol,
            side=side,
            qty=parent.qty,
            type=kind,
            time_in_force=parent.time_in_force,
            created_at=self.now,
            order_class=parent.order_class,
            limit_price=_opt(spec.get("limit_price")) if kind == "limit" else None,
            stop_price=_opt(spec.get("stop_price")) if kind == "stop" else None,
            status="held" if held else "new",
            parent=parent,
            seq=next(self._seq),
            eligible_from=self._next_minute(),
        )

    def _next_minute(self) -> datetime:
        return self.minutes[self.played][0] if self.played < len(self.minutes) else self.now

    def _mark(self, symbol: str) -> float:
        if symbol in self.last_close:
            return self.last_close[symbol]
        return self.positions.get(symbol, [0.0, 0.0])[1]

    def _buying_power(self) -> float:
        return max(0.0, self.cash) * self.scenario.buying_power_multiplier

    def _cancel_order(self, order: Order) -> None:
        order.status = "canceled"
        order.canceled_at = order.updated_at = self.now

    async def _play_minute(self) -> None:
        if self.played >= len(self.minutes):
            return
        minute, rows = self.minutes[self.played]
        bars = {row["symbol"]: row for row in rows}
        self.now = minute
        updates: list[dict[str, Any]] = []
        for order in sorted(self.orders.values(), key=lambda o: o.seq):
            if order.is_open and order.status != "held" and order.eligible_from <= minute:
                updates += self._match(order, bars.get(order.symbol), minute)
        self.played += 1
        self.now = minute + MINUTE
        for row in rows:
            self.last_close[row["symbol"]] = float(row["close"])
        await self._broadcast(updates)
        if updates:
            await asyncio.sleep(self.scenario.fill_lead)
        await self._send_bars(minute, rows)

    async def _send_bars(self, minute: datetime, rows: list[dict[str, Any]]) -> None:
        for ws, wanted in list(self._data_sockets.items()):
            chosen = [_bar(minute, row, stream=True) for row in rows if row["symbol"] in wanted]
            if chosen:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(json.dumps(chosen))

    def _match(self, order: Order, bar: dict[str, Any] | None, minute: datetime) -> list[dict]:
        if bar is None:
            return []
        price = _fill_price(order, bar)
        if price is None:
            if order.time_in_force in ("ioc", "fok", "opg", "cls"):
                self._cancel_order(order)
                return [self._update("canceled", order)]
            return []
        return self._fill(order, price, minute)

    def _fill(self, order: Order, price: float, minute: datetime) -> list[dict]:
        out = []
        left = order.qty - order.filled_qty
        parts = max(1, self.scenario.partial_fills)
        sizes = [left / parts] * (parts - 1) + [left - left / parts * (parts - 1)]
        for size in sizes:
            notional = (order.filled_avg_price or 0.0) * order.filled_qty + price * size
            order.filled_qty += size
            order.filled_avg_price = notional / order.filled_qty
            order.updated_at = order.filled_at = minute
            done = order.filled_qty >= order.qty - 1e-9
            order.status = "filled" if done else "partially_filled"
            position = self._book(order.symbol, order.side, size, price)
            out.append(
                self._update(
                    "fill" if done else "partial_fill",
                    order,
                    execution_id=str(uuid.uuid4()),
                    price=_num(price),
                    qty=_num(size),
                    position_qty=_num(position),
                    timestamp=iso(minute),
                )
            )
        out += self._after_fill(order)
        return out

    def _after_fill(self, order: Order) -> list[dict]:
        """A filled entry frees its exits (working from the next minute); a filled exit
        cancels the other one (one-cancels-other)."""
        if order.status != "filled":
            return []
        out = []
        if order.parent is None and order.order_class in ("bracket", "oto"):
            for leg in order.legs:
                if leg.status == "held":
                    leg.status, leg.qty, leg.updated_at = "new", order.filled_qty, self.now
                    leg.eligible_from = self.now + MINUTE
                    out.append(self._update("new", leg))
            return out
        if order.parent is None and order.order_class == "oco":
            others = list(order.legs)
        elif order.parent is not None and order.parent.order_class == "oco":
            others = [order.parent]
        elif order.parent is not None:
            others = [leg for leg in order.parent.legs if leg is not order]
        else:
            others = []
        for other in others:
            if other.is_open and other.status != "held":
                self._cancel_order(other)
                out.append(self._update("canceled", other))
        return out

    def _book(self, symbol: str, side: str, qty: float, price: float) -> float:
        signed = qty if side == "buy" else -qty
        with self._lock:
            held, avg = self.positions.get(symbol, [0.0, 0.0])
            new = held + signed
            if held == 0 or (held > 0) == (signed > 0):
                avg = (held * avg + signed * price) / new if new else 0.0
            elif (held > 0) != (new > 0) and new != 0:
                avg = price  # flipped: the rest opens at this price
            self.positions[symbol] = [new, avg if new else 0.0]
            self.cash -= signed * price
        return new


def _fill_price(order: Order, bar: dict[str, Any]) -> float | None:
    """The price ``order`` fills at on ``bar`` (None: it does not), as the simulated
    broker fills on the next bar: market at the open; a limit at the better of the open
    and the limit; a stop at the worse of the open and the stop (a gap is honoured)."""
    o, h, lo, c = (float(bar[k]) for k in ("open", "high", "low", "close"))
    buy = order.side == "buy"
    if order.type == "market":
        return c if order.time_in_force == "cls" else o
    if order.type == "limit":
        limit = float(order.limit_price or 0.0)
        if buy:
            return min(o, limit) if lo <= limit else None
        return max(o, limit) if h >= limit else None
    if order.type in ("stop", "stop_limit"):
        stop = float(order.stop_price or 0.0)
        hit = h >= stop if buy else lo <= stop
        if not hit:
            return None
        price = max(o, stop) if buy else min(o, stop)
        if order.type == "stop_limit":
            limit = float(order.limit_price or 0.0)
            return limit if (buy and lo <= limit) or (not buy and h >= limit) else None
        return price
    if order.type == "trailing_stop":
        order.hwm = max(order.hwm or h, h) if not buy else min(order.hwm or lo, lo)
        trail = order.trail_price
        if trail is None:
            trail = order.hwm * float(order.trail_percent or 0.0) / 100.0
        stop = order.hwm - trail if not buy else order.hwm + trail
        if (not buy and lo <= stop) or (buy and h >= stop):
            return min(o, stop) if not buy else max(o, stop)
    return None


def _bar(minute: datetime, row: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    bar = {
        "t": iso(minute),
        "o": float(row["open"]),
        "h": float(row["high"]),
        "l": float(row["low"]),
        "c": float(row["close"]),
        "v": float(row["volume"]),
        "n": 1,
        "vw": float(row["close"]),
    }
    if stream:
        bar = {"T": "b", "S": row["symbol"], **bar}
    return bar


def _opt(value: Any, default: float | None = None) -> float | None:
    return float(value) if value not in (None, "") else default


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_standin(
    bars: pl.DataFrame,
    *,
    key_id: str = "PKSTANDIN000000000000",
    secret_key: str = "standin-secret-0000000000000000000000000",
    **account: Any,
) -> AlpacaStandIn:
    """A started stand-in for ``bars`` (``timestamp`` known at each bar's end,
    ``symbol``, OHLCV); stop it with :meth:`AlpacaStandIn.stop`. Point the adapters at
    it with ``standin.config()`` and give them ``Credentials(key_id, secret_key)``."""
    return AlpacaStandIn(bars, key_id=key_id, secret_key=secret_key, **account).start()
