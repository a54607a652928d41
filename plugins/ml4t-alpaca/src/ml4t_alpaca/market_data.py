"""``AlpacaMarketData``: Alpaca's minute bars as a market-data client.

It implements :class:`~ml4t.backtest.live.MarketDataClient` (``connect``, ``subscribe``,
``close``) for a :class:`~ml4t.backtest.live.FeedAdapter`, plus
:class:`~ml4t.backtest.live.HistorySource` (warm-up through the REST bars endpoint,
``StockHistoricalDataClient.get_stock_bars``) and
:class:`~ml4t.backtest.live.ConnectionReporting`.

The wire is Alpaca's market-data stream (``wss://stream.data.alpaca.markets/v2/<feed>``):
``[{"T": "success", "msg": "connected"}]`` on connect, ``{"action": "auth", ...}`` answered
by ``authenticated`` (or ``{"T": "error", "code": 402, ...}``), ``{"action": "subscribe",
"bars": [...]}`` answered by ``{"T": "subscription", ...}``, then ``{"T": "b", "S": ...,
"o", "h", "l", "c", "v", "t"}`` minute bars. Bars become batches as
:mod:`ml4t_alpaca._bars` describes (known at the minute's end). After a reconnect the
minutes missed while the stream was down are fetched over REST and fed in, in order.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from alpaca.data.enums import DataFeed
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from websockets.asyncio.client import ClientConnection

from ml4t.backtest import (
    ConfigError,
    FeedConfig,
    MarketBatch,
    SessionStarted,
    VenueConnection,
    VenueLink,
    get_logger,
)
from ml4t.backtest.live import MARKET_DATA_LINK, AsofJoiner, ConnectionLost, VenueError
from ml4t_alpaca._bars import MINUTE_NS, OHLCV, MinuteBars, bar_row, iso_ns
from ml4t_alpaca._link import StreamLink, authenticate, receive
from ml4t_alpaca._rest import Rest
from ml4t_alpaca.config import AlpacaConfig
from ml4t_alpaca.credentials import Credentials, load_credentials

__all__ = ["AlpacaMarketData"]

_FATAL = {
    401: "not authenticated",
    402: "auth failed",
    404: "auth timeout",
    405: "symbol limit exceeded",
    409: "insufficient subscription",
}
"""Stream error codes that reconnecting cannot cure (406 connection limit, 407 slow
client and 500 can be: they are retried)."""
SESSION_BARS = 390


class AlpacaMarketData:
    """Minute bars of ``symbols`` (the universe, in code order) from Alpaca.

    ``data`` is the run's data section: its ``signal_data`` and ``context`` are joined
    onto every batch as of its time (``signal_data``/``context`` override their paths),
    its ``calendar`` goes into the handshake. ``credentials`` default to what ``config``
    points at (:func:`~ml4t_alpaca.credentials.load_credentials`).
    """

    def __init__(
        self,
        config: AlpacaConfig | None = None,
        *,
        symbols: Sequence[str],
        data: FeedConfig | None = None,
        signal_data: object = None,
        context: object = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.config = config or AlpacaConfig()
        self.symbols = tuple(dict.fromkeys(symbols))
        if not self.symbols:
            raise ConfigError(
                "the Alpaca market data needs its universe: data.asset.symbols (or symbols=)"
            )
        self.data = data or FeedConfig()
        self.joiner = AsofJoiner(self.data, signal_data=signal_data, context=context)
        self._credentials = credentials
        self.log = get_logger("ml4t.alpaca.market_data", venue=self.config.venue)
        self._rest: Rest | None = None
        self._link: StreamLink | None = None
        self._bars: MinuteBars | None = None
        self._on_batch: Callable[[MarketBatch], None] | None = None
        self._listener: Callable[[VenueConnection], None] | None = None
        self._subscribed: tuple[str, ...] = ()
        self._prepared = False
        self._backfill: asyncio.Task[None] | None = None
        self.batches = 0
        self.backfilled = 0

    # ------------------------------------------------------------------ description

    @property
    def columns(self) -> tuple[str, ...]:
        return ("symbol", *OHLCV, *self.joiner.signal_columns)

    def session_started(self, base: SessionStarted | None = None) -> SessionStarted:
        """The handshake a feed adapter publishes for this data (``base``'s run facts
        kept): the universe, each column's role, the context fields, the calendar."""
        roles = {"symbol": "symbol", **dict.fromkeys(OHLCV, "ohlcv")}
        roles.update(dict.fromkeys(self.joiner.signal_columns, "signal"))
        base = base or SessionStarted(ts_event=0)
        return SessionStarted(
            ts_event=base.ts_event,
            run_id=base.run_id,
            config_hash=base.config_hash,
            calendar=self.data.calendar or base.calendar,
            timezone=self.data.asset.timezone or base.timezone,
            initial_cash=base.initial_cash,
            sessions_per_year=base.sessions_per_year,
            symbols=list(self.symbols),
            columns=roles,
            context=list(self.joiner.context_fields),
        )

    def report_to(self, listener: Callable[[VenueConnection], None]) -> None:
        self._listener = listener

    # ------------------------------------------------------------------ protocol

    async def connect(self) -> None:
        if not self._prepared:
            await anyio.to_thread.run_sync(self.joiner.prepare, self.symbols)
            self._prepared = True
        credentials = self._credentials or load_credentials(self.config)
        self._credentials = credentials
        if self._rest is None:
            self._rest = Rest(self.config, credentials, log=self.log)
        if self._link is None:
            self._link = StreamLink(
                url=self.config.market_stream_url,
                link=MARKET_DATA_LINK,
                config=self.config,
                handshake=self._handshake,
                on_message=self._on_message,
                report=self._on_link,
                now_ns=time.time_ns,
                log=self.log,
            )
        if not self._link.is_open:
            await self._link.open()

    async def subscribe(
        self, symbols: Sequence[str], on_batch: Callable[[MarketBatch], None]
    ) -> None:
        wanted = tuple(dict.fromkeys(symbols)) or self.symbols
        unknown = sorted(set(wanted) - set(self.symbols))
        if unknown:
            raise ConfigError(f"cannot subscribe to {unknown}: not in the universe {self.symbols}")
        if self._link is None or not self._link.is_open:
            raise ConnectionLost("subscribe before connect")
        self._on_batch = on_batch
        self._subscribed = wanted
        self._bars = MinuteBars(
            wanted, self.joiner, grace=self.config.grace, emit=self._emit, log=self.log
        )
        await self._link.send({"action": "subscribe", "bars": list(wanted)})

    async def history(self, symbols: Sequence[str], bars: int) -> list[MarketBatch]:
        """The last ``bars`` minutes before the venue's clock, oldest first."""
        rest = self._require_rest()
        now = await rest.call("clock", rest.trading.get_clock)
        end_ns = iso_ns(now.timestamp)
        days = math.ceil(bars / SESSION_BARS) + 4  # sessions only: cover a long weekend
        rows = await self._bars_between(
            symbols or self.symbols, end_ns - days * 86_400 * 10**9, end_ns
        )
        minutes = sorted(rows)[-bars:] if bars else []
        builder = MinuteBars(
            symbols or self.symbols,
            self.joiner,
            grace=self.config.grace,
            emit=lambda b: None,
            log=self.log,
        )
        return [builder.batch(m, rows[m].items()) for m in minutes]

    async def close(self) -> None:
        if self._backfill is not None:
            self._backfill.cancel()
        if self._bars is not None:
            self._bars.close()
        if self._link is not None:
            await self._link.close()

    async def drop_stream(self) -> None:
        """Close the stream as a network fault would (it reconnects and backfills)."""
        if self._link is not None:
            await self._link.drop()

    # ------------------------------------------------------------------ the wire

    async def _handshake(self, ws: ClientConnection) -> None:
        timeout = self.config.request_timeout
        first = await receive(ws, timeout)
        if not _is(first, "success", "connected"):
            raise ConnectionLost(f"the market-data stream did not greet: {_brief(first)}")
        assert self._credentials is not None
        answer = await authenticate(ws, self._credentials, timeout)
        _raise_for_error(answer)
        if not _is(answer, "success", "authenticated"):
            raise ConnectionLost(f"the market-data stream did not authenticate: {_brief(answer)}")
        if self._subscribed:  # a reconnect: the same subscription again
            await ws.send(json.dumps({"action": "subscribe", "bars": list(self._subscribed)}))

    def _on_message(self, message: Any) -> None:
        for item in message if isinstance(message, list) else [message]:
            kind = item.get("T") if isinstance(item, dict) else None
            if kind == "b" and self._bars is not None:
                symbol, start, row = bar_row(item)
                self._bars.add(symbol, start, row)
            elif kind == "error":
                self._stream_error(item)
            elif kind == "subscription":
                self.log.info("subscribed", bars=len(item.get("bars", [])))

    def _stream_error(self, item: dict[str, Any]) -> None:
        code, text = item.get("code"), str(item.get("msg", ""))
        if code in _FATAL:
            raise VenueError(f"the market-data stream refused the session: {text} ({code})")
        self.log.warning("stream_error", code=code, message=text)

    def _emit(self, batch: MarketBatch) -> None:
        self.batches += 1
        if self._on_batch is not None:
            self._on_batch(batch)

    def _on_link(self, event: VenueConnection) -> None:
        if self._listener is not None:
            self._listener(event)
        if event.state is VenueLink.RESTORED:
            self._backfill = asyncio.get_running_loop().create_task(self._fill_gap())

    async def _fill_gap(self) -> None:
        """Feed in the minutes the stream missed while it was down (from REST)."""
        bars = self._bars
        if bars is None or bars.released_through is None:
            return
        rest = self._require_rest()
        try:
            now = await rest.call("clock", rest.trading.get_clock)
            start = bars.released_through + MINUTE_NS
            rows = await self._bars_between(self._subscribed, start, iso_ns(now.timestamp))
        except (ConnectionLost, VenueError) as exc:
            self.log.warning("backfill_failed", error=str(exc))
            return
        for minute in sorted(rows):
            for symbol, row in rows[minute].items():
                bars.add(symbol, minute, row)
            bars.release(minute)
            self.backfilled += 1

    async def _bars_between(
        self, symbols: Sequence[str], start_ns: int, end_ns: int
    ) -> dict[int, dict[str, tuple[float, float, float, float, float]]]:
        """Complete minute bars with ``start_ns <= t`` and ``t + 1 min <= end_ns``."""
        rest = self._require_rest()
        request = StockBarsRequest(
            symbol_or_symbols=list(symbols),
            timeframe=TimeFrame.Minute,
            start=_dt(start_ns),
            end=_dt(end_ns),
            feed=DataFeed(self.config.feed),
        )
        barset = await rest.call("bars", rest.data.get_stock_bars, request)
        rows: dict[int, dict[str, tuple[float, float, float, float, float]]] = {}
        for symbol, items in barset.data.items():
            for bar in items:
                minute = iso_ns(bar.timestamp)
                if minute + MINUTE_NS <= end_ns:
                    rows.setdefault(minute, {})[symbol] = (
                        bar.open,
                        bar.high,
                        bar.low,
                        bar.close,
                        bar.volume,
                    )
        return rows

    def _require_rest(self) -> Rest:
        if self._rest is None:
            raise ConnectionLost("the Alpaca market data is not connected")
        return self._rest


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 10**9, tz=UTC) + timedelta(microseconds=ns % 10**9 // 1000)


def _is(message: Any, kind: str, text: str) -> bool:
    first = message[0] if isinstance(message, list) and message else message
    return isinstance(first, dict) and first.get("T") == kind and first.get("msg") == text


def _raise_for_error(message: Any) -> None:
    first = message[0] if isinstance(message, list) and message else message
    if isinstance(first, dict) and first.get("T") == "error":
        code, text = first.get("code"), first.get("msg", "")
        if code in _FATAL:
            raise VenueError(f"the market-data stream refused the credentials: {text} ({code})")
        raise ConnectionLost(f"the market-data stream answered an error: {text} ({code})")


def _brief(message: Any) -> str:
    """A message shortened for an error (the stream never echoes credentials)."""
    return str(message)[:160]
