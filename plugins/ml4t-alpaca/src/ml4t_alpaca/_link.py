"""One websocket to the venue, kept open: handshake, reader task, heartbeats, reconnects.

alpaca-py's ``StockDataStream`` and ``TradingStream`` can be pointed at any URL
(``url_override``), but they reconnect on their own without telling anyone, so an
adapter could not reconcile the account after a reconnect, and they expect to own a
thread (``subscribe_*`` blocks on the loop they run in). The adapters therefore speak the
two documented stream protocols themselves over ``websockets`` (alpaca-py's own
dependency), with :class:`StreamLink` owning the connection:

- :meth:`StreamLink.open` connects and runs the protocol's ``handshake`` (authenticate,
  listen or subscribe), then reads messages on a background task of the running asyncio
  loop and hands each decoded JSON message to ``on_message``;
- heartbeats are websocket pings every ``heartbeat`` seconds; a pong missing for
  ``heartbeat_timeout`` seconds closes the connection, as does the venue;
- a lost connection is reported (``lost``), reopened with the config's backoff and the
  same handshake, and reported again (``restored``, with the attempt count) or, when the
  credentials are refused or the attempts run out, ``failed``: the adapter then stops
  the run. A bug while handling a message is ``failed`` too, with the error, never
  swallowed.

The ``websockets`` library logs every frame at DEBUG, the authentication message
included; the link gives it a logger of its own (``ml4t.alpaca.websocket``) pinned at
INFO, so no credential reaches a log whatever the application's log level.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ml4t.backtest import VenueConnection, VenueLink
from ml4t.backtest.live import ConnectionLost, VenueError
from ml4t_alpaca.config import AlpacaConfig
from ml4t_alpaca.credentials import Credentials

__all__ = ["StreamLink", "authenticate", "decode", "receive"]

_WS_LOG = logging.getLogger("ml4t.alpaca.websocket")
_WS_LOG.setLevel(logging.INFO)  # frames (the auth message among them) are logged at DEBUG

Handshake = Callable[[ClientConnection], Awaitable[None]]
OnMessage = Callable[[Any], None]
Report = Callable[[VenueConnection], None]
_OPEN_ERRORS = (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, ConnectionLost)


def decode(raw: str | bytes) -> Any:
    """A JSON message from a text or binary frame (the paper trade stream sends binary)."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ConnectionLost(f"the venue sent a frame that is not JSON: {exc}") from None


async def receive(ws: ClientConnection, timeout: float) -> Any:
    """The next message during a handshake, or ConnectionLost after ``timeout``."""
    try:
        raw = await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        raise ConnectionLost(f"no answer from the venue within {timeout:g} s") from None
    return decode(raw)


async def authenticate(ws: ClientConnection, credentials: Credentials, timeout: float) -> Any:
    """Send the authentication frame both streams take (``{"action": "auth", "key": ...,
    "secret": ...}``; the frame log is pinned above DEBUG, see the module) and return the
    venue's answer, which each stream words its own way."""
    await ws.send(
        json.dumps({"action": "auth", "key": credentials.key_id, "secret": credentials.secret_key})
    )
    return await receive(ws, timeout)


class StreamLink:
    """A websocket named ``link`` at ``url``, reopened after every loss."""

    def __init__(
        self,
        *,
        url: str,
        link: str,
        config: AlpacaConfig,
        handshake: Handshake,
        on_message: OnMessage,
        report: Report,
        now_ns: Callable[[], int],
        log: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.link = link
        self.config = config
        self._handshake = handshake
        self._on_message = on_message
        self._report_to = report
        self._now = now_ns
        self.log = log
        self._headers = headers or {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.losses = 0
        self.failed: str | None = None

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Connect, shake hands, start reading. ConnectionLost (may be retried) or
        VenueError (credentials refused) if that fails."""
        await self.close()
        self._closing = False
        self.failed = None
        self._ws = await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def send(self, message: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionLost(f"the {self.link} stream is not connected")
        try:
            await ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise ConnectionLost(f"the {self.link} stream closed: {exc}") from None

    async def drop(self) -> None:
        """Close the socket as a network fault would (the reader reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    # ------------------------------------------------------------------ internals

    async def _connect(self) -> ClientConnection:
        cfg = self.config
        try:
            ws = await connect(
                self.url,
                additional_headers=self._headers,
                open_timeout=cfg.request_timeout,
                ping_interval=cfg.heartbeat,
                ping_timeout=cfg.heartbeat_timeout,
                logger=_WS_LOG,
            )
        except InvalidURI as exc:
            raise VenueError(f"the {self.link} stream URL is not a websocket URL: {exc}") from None
        except _OPEN_ERRORS as exc:
            raise ConnectionLost(
                f"the {self.link} stream at {self.url} did not open: {type(exc).__name__}"
            ) from None
        try:
            await self._handshake(ws)
        except BaseException:
            await ws.close()
            raise
        return ws

    def _report(self, state: VenueLink, reason: str = "", attempt: int = 0) -> None:
        now = self._now()
        self._report_to(
            VenueConnection(
                ts_event=now,
                ts_init=now,
                venue=self.config.venue,
                link=self.link,
                state=state,
                reason=reason,
                attempt=attempt,
            )
        )

    async def _read(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for raw in ws:
                    self._on_message(decode(raw))
                reason = "closed by the venue"
            except ConnectionClosed as exc:
                reason = f"connection closed ({type(exc).__name__})"
            except Exception as exc:  # a bug handling a message: the run must stop
                self.failed = f"{type(exc).__name__} while handling a {self.link} message: {exc}"
                self.log.error("stream_failed", link=self.link, error=self.failed)
                self._report(VenueLink.FAILED, self.failed)
                return
            if self._closing:
                return
            self.losses += 1
            self.log.warning("stream_lost", link=self.link, reason=reason)
            self._report(VenueLink.LOST, reason)
            if not await self._reopen():
                return

    async def _reopen(self) -> bool:
        attempt = 0
        for delay in self.config.backoff.delays():
            attempt += 1
            await asyncio.sleep(delay)
            try:
                self._ws = await self._connect()
            except VenueError as exc:
                self.failed = str(exc)
                self._report(VenueLink.FAILED, self.failed, attempt)
                return False
            except ConnectionLost as exc:
                self.log.warning(
                    "stream_reconnect_failed", link=self.link, attempt=attempt, error=str(exc)
                )
                continue
            self.log.info("stream_restored", link=self.link, attempt=attempt)
            self._report(VenueLink.RESTORED, f"reconnected after {attempt} attempt(s)", attempt)
            return True
        self.failed = f"the {self.link} stream could not reconnect after {attempt} attempt(s)"
        self._report(VenueLink.FAILED, self.failed, attempt)
        return False
