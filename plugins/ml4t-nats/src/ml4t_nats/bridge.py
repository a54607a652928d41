"""NatsBridge: one component per process that carries chosen bus topics over NATS.

Each side exports topics (its handlers forward every event, encoded with the ml4t codec,
to ``<prefix>.<topic name>``) and imports topics (events received on those subjects are
published on its local bus). Both sides subscribe to ``<prefix>.>`` with one subscription
and ``no_echo``, so everything the peer sends arrives on one ordered stream.

**Lockstep** (the default; see the README for the full argument): the *driver* holds the
clock (a backtest's simulated clock, or a paper replay's). Whenever it has exported
something, it queues a *sync* delivery to itself at a phase after every other phase, so
the sync runs only once its own graph is quiescent; the sync sends a barrier and waits
for the follower's acknowledgement. The *follower* holds back what it receives until the
barrier, then publishes it at the barrier's timestamp on a driven clock and answers once
its own graph is quiescent (again a delivery at the last phase), after the orders it
produced. So the driver's clock never moves while the remote strategies are still
thinking, and a two-process run makes the same trades as a one-process backtest.

**Who may speak** (see :mod:`ml4t_nats._auth`): every message carries the run id and, with
a per-run secret, an HMAC; a receiver checks them, then decodes, and only then takes the
sequence number, so a forged, foreign or malformed message is dropped (counted, logged)
without consuming anything. Each side publishes only on its own subjects
(:meth:`NatsConfig.publish_subjects`), which NATS permissions can enforce.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import Iterable
from typing import Any

import anyio
import nats.errors
from nats.aio.client import Client as NATS

from ml4t.backtest import (
    Codec,
    CodecError,
    Component,
    Event,
    ML4TError,
    Phase,
    SubmitOrder,
    TimerFired,
    Topic,
)
from ml4t.backtest import topics as std
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.live import DrivenClock
from ml4t_nats._auth import ACK, SEQ, Signer
from ml4t_nats._link import Inbound, OrderIds, Outbox
from ml4t_nats.config import DRIVER_EXPORTS, FOLLOWER_EXPORTS, NatsConfig
from ml4t_nats.events import BridgeAck, BridgeBarrier, BridgeEnd, BridgeHello

__all__ = ["STANDARD", "BridgeError", "BridgeStats", "NatsBridge"]

SYNC_PHASE = 10_000  # after every standard phase: runs only when the graph is quiescent
ACK_PRIORITY = 1_000  # follower: after the data and timer alarms of the same time

STANDARD: dict[str, tuple[Topic[Any], int]] = {
    # topic name -> (topic, the phase its remote consumer handles it at)
    std.MARKET.name: (std.MARKET, Phase.STRATEGY),
    std.FILLS.name: (std.FILLS, Phase.EXECUTION),
    std.ORDER_EVENTS.name: (std.ORDER_EVENTS, Phase.EXECUTION),
    std.POSITIONS.name: (std.POSITIONS, Phase.EXECUTION),
    std.PORTFOLIO.name: (std.PORTFOLIO, Phase.VALUATION),
    std.ORDER_REQUESTS.name: (std.ORDER_REQUESTS, Phase.ROUTING),
}


class BridgeError(ML4TError):
    """The bridge cannot go on (the peer is gone, credentials refused...)."""


class BridgeStats:
    """Counters a test or a monitor reads; nothing here changes behaviour."""

    __slots__ = (
        "bad_messages",
        "disconnects",
        "duplicate_orders",
        "duplicates",
        "gaps",
        "ignored",
        "lost",
        "received",
        "reconnects",
        "retransmits",
        "rounds",
        "sent",
        "slow_consumer",
        "unauthenticated",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _resolve(names: Iterable[str | Topic[Any]]) -> dict[str, tuple[Topic[Any], int]]:
    out: dict[str, tuple[Topic[Any], int]] = {}
    for item in names:
        if isinstance(item, Topic):
            out[item.name] = (item, STANDARD.get(item.name, (item, Phase.DEFAULT))[1])
        elif item in STANDARD:
            out[item] = STANDARD[item]
        else:
            raise ValueError(
                f"unknown topic {item!r}; name a standard topic ({', '.join(STANDARD)}) or "
                "pass the Topic object"
            )
    return out


def _log_drop(log: Any, event: str, count: int, subject: str, why: str) -> None:
    """Log a dropped message: the first ten of a kind, then every power of two (a flood
    of forgeries must not become a flood of logs; the counter has them all)."""
    if count <= 10 or math.log2(count).is_integer():
        log.error(event, subject=subject, error=why, count=count)


class NatsBridge(Component):
    """Carries ``exports`` to the peer and publishes what it sends on ``imports``.

    A relay: the requests it imports name the peer's strategies, which the bus accepts
    because the bridge authenticates each message before it publishes it."""

    relay = True

    def __init__(
        self,
        config: NatsConfig,
        *,
        exports: Iterable[str | Topic[Any]] | None = None,
        imports: Iterable[str | Topic[Any]] | None = None,
        name: str = "nats-bridge",
    ) -> None:
        super().__init__(name)
        self.config = config
        driver = config.role == "driver"
        self.driver = driver
        self.lockstep = config.mode == "lockstep"
        default_out = DRIVER_EXPORTS if driver else FOLLOWER_EXPORTS
        default_in = FOLLOWER_EXPORTS if driver else DRIVER_EXPORTS
        self.exports = _resolve(exports or config.exports or default_out)
        self.imports = _resolve(imports or config.imports or default_in)
        self.codec = Codec()
        self.stats = BridgeStats()
        self.session = uuid.uuid4().hex[:12]
        self._prefix = config.prefix + "."
        peer = "follower" if driver else "driver"
        self._ctl = f"{config.prefix}._ctl.{config.role}"  # what this side sends on
        self._hello = f"{config.prefix}._hello.{config.role}"
        self._peer_ctl = f"{config.prefix}._ctl.{peer}"  # what the peer sends on
        self._peer_hello = f"{config.prefix}._hello.{peer}"
        self._signer = Signer(config.secret(), run=config.run, role=config.role)
        self._inbound = Inbound(tolerate_gaps=not self.lockstep)
        self._outbox = Outbox(config.unacked_limit)
        self._orders = OrderIds()
        self._nc: Any = None
        self._peer = anyio.Event()
        self._round = 0
        self._acked = anyio.Event()
        self._sync_queued = False
        self._held: list[tuple[Topic[Any], Event]] = []  # follower: until the barrier
        self._hold_alarm: Any = None
        self._connecting: int | None = None  # failed attempts during the first connect
        self._ticker: asyncio.Task[None] | None = None
        self._started_at = 0.0  # loop time of on_start
        self._heard: float | None = None  # follower: loop time of the driver's last message
        self.finished = False

    # ------------------------------------------------------------ lifecycle

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        for topic_name, (topic, phase) in self.exports.items():
            subject = self._prefix + topic_name

            async def export(event: Event, _subject: str = subject) -> None:
                await self._send(_subject, event)
                if self.lockstep and self.driver:
                    self._queue_sync()

            yield topic, export, phase

    async def on_start(self) -> None:
        if self.lockstep and not self.driver and not isinstance(self.clock, DrivenClock):
            raise BridgeError(
                "a lockstep follower runs on a DrivenClock (its time comes from the driver); "
                "build its Runtime with clock=DrivenClock()"
            )
        if not self._signer.signs and not self.config.auth():
            self.log.warning(
                "bridge_unauthenticated",
                hint="anyone who can publish on the server can speak for the peer; set "
                "secret_env/secret_file, or NATS users with subject permissions",
            )
        await self._connect()
        if not self.driver and self.lockstep:  # keep the follower alive until the end
            self._hold_alarm = self.clock.schedule(2**62, lambda: None, owner=self.name)
        self._started_at = anyio.current_time()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        await self._greet()

    async def on_stop(self) -> None:
        try:
            if self.driver and self.lockstep and self._nc is not None and self._peer.is_set():
                with anyio.move_on_after(min(5.0, self.config.peer_timeout)):
                    await self._round_trip(BridgeEnd, self.clock.now_ns())
        finally:
            if self._ticker is not None:
                ticker, self._ticker = self._ticker, None
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            if self._nc is not None:
                nc, self._nc = self._nc, None
                if nc.is_connected:
                    with anyio.move_on_after(5.0):
                        await nc.drain()
                if not nc.is_closed:
                    await nc.close()
            self.log.info("bridge_stopped", **self.stats.as_dict())

    async def _tick(self) -> None:
        """Wall-time duties, every ``heartbeat`` seconds: the driver says it is alive; a
        lockstep follower checks that the driver still is (``peer_timeout``)."""
        cfg = self.config
        while True:
            await anyio.sleep(cfg.heartbeat)
            if self.driver:
                if self._nc is not None and self._nc.is_connected:
                    try:
                        await self._say_hello()
                    except nats.errors.Error as exc:  # reconnecting: the next beat will do
                        self.log.warning("heartbeat_not_sent", error=f"{type(exc).__name__}")
            elif self.lockstep and not self.finished and self._driver_silent():
                now = self.clock.now_ns()
                fired = TimerFired(
                    ts_event=now, ts_init=now, name="peer_timeout", component=self.name
                )
                self.context.deliver(SYNC_PHASE, self._driver_lost, fired, self.name)
                return

    def _driver_silent(self) -> bool:
        """The follower's watch: ``start_timeout`` for the driver's first word, then
        ``peer_timeout`` between two (its heartbeat keeps a live driver well inside)."""
        if self._heard is None:
            return anyio.current_time() - self._started_at >= self.config.start_timeout
        return anyio.current_time() - self._heard >= self.config.peer_timeout

    def _driver_lost(self, _marker: Event) -> None:
        cfg = self.config
        if self._heard is None:
            raise BridgeError(
                f"no driver spoke on {cfg.prefix}.> within {cfg.start_timeout:g} s "
                "(start_timeout); start the driver with the same servers, prefix, run id "
                "and secret; this run is incomplete"
            )
        raise BridgeError(
            f"the driver sent nothing for {cfg.peer_timeout:g} s (peer_timeout) after "
            f"round {self._round}: it has gone, so this run is incomplete"
        )

    async def _connect(self) -> None:
        """Connect, with nats-py retrying every ``reconnect_wait``; refused credentials
        stop at once, an unreachable server after ``connect_attempts`` tries."""
        cfg = self.config
        self._connecting = 0
        nc = NATS()
        try:
            await nc.connect(
                servers=list(cfg.servers),
                name=f"{cfg.name}:{cfg.role}",
                no_echo=True,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=cfg.reconnect_wait,  # type: ignore[arg-type]
                connect_timeout=2,
                pending_size=cfg.outbound_bytes,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                **cfg.auth(),  # type: ignore[arg-type]
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await nc.close()  # a half-open client still holds a socket
            raise
        finally:
            self._connecting = None
        self._nc = nc
        await self._nc.subscribe(
            self.config.prefix + ".>",
            cb=self._on_msg,
            pending_msgs_limit=cfg.pending_msgs,
            pending_bytes_limit=cfg.pending_bytes,
        )
        await self._nc.flush(timeout=5)

    async def _greet(self) -> None:
        """Announce this side until the peer answers (the driver waits; the follower
        answers each hello it hears, so it never blocks its graph's start)."""
        await self._say_hello()
        if not self.driver:
            return
        with anyio.move_on_after(self.config.start_timeout):
            while not self._peer.is_set():
                await self._say_hello()
                with anyio.move_on_after(0.1):
                    await self._peer.wait()
        if not self._peer.is_set():
            raise BridgeError(
                f"no follower answered on {self.config.prefix}.> within "
                f"{self.config.start_timeout:g} s; start the strategy process with the same "
                "servers and prefix"
            )

    async def _say_hello(self) -> None:
        """The unsequenced handshake (the driver's doubles as its heartbeat)."""
        now = self.clock.now_ns()
        payload = self.codec.encode(
            BridgeHello(ts_event=now, role=self.config.role, session=self.session)
        )
        headers = self._signer.headers(self._hello, 0, self._inbound.last, now, payload)
        await self._nc.publish(self._hello, payload, headers=headers)

    # ------------------------------------------------------------ sending

    async def _send(self, subject: str, event: Event) -> None:
        payload = self.codec.encode(event)
        now = self.clock.now_ns()
        seq = self._outbox.add(subject, payload, now, keep=self.lockstep)
        await self._publish(subject, payload, seq, now)

    async def _publish(self, subject: str, payload: bytes, seq: int, clock_ns: int) -> None:
        headers = self._signer.headers(subject, seq, self._inbound.last, clock_ns, payload)
        waited, delay = 0.0, 0.01
        while True:
            try:
                await self._nc.publish(subject, payload, headers=headers)
                self.stats.sent += 1
                return
            except nats.errors.OutboundBufferLimitError:
                # outbound policy: block (the graph waits) until the buffer drains
                if waited >= self.config.peer_timeout:
                    raise BridgeError(
                        f"the outbound buffer ({self.config.outbound_bytes} bytes) stayed full "
                        f"for {waited:.1f} s: the NATS server is unreachable"
                    ) from None
                await anyio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 0.5)

    async def _retransmit(self) -> None:
        for seq, subject, payload, clock_ns in self._outbox.unacked():
            await self._publish(subject, payload, seq, clock_ns)
        self.stats.retransmits += 1

    def _queue_sync(self) -> None:
        if not self._sync_queued:
            self._sync_queued = True
            marker = BridgeBarrier(ts_event=self.clock.now_ns(), round=-1)
            self.context.deliver(SYNC_PHASE, self._sync, marker, self.name)

    async def _sync(self, _marker: Event) -> None:
        self._sync_queued = False
        await self._round_trip(BridgeBarrier, self.clock.now_ns())

    async def _round_trip(self, kind: type[BridgeBarrier] | type[BridgeEnd], ts: int) -> None:
        """Send a barrier (or the end) and wait for its acknowledgement, retransmitting
        everything unacknowledged every ``ack_timeout`` while connected."""
        self._round += 1
        self._acked = anyio.Event()
        await self._send(self._ctl, kind(ts_event=ts, ts_init=ts, round=self._round))
        waited = 0.0
        cfg = self.config
        while True:
            with anyio.move_on_after(cfg.ack_timeout):
                await self._acked.wait()
            if self._acked.is_set():
                self.stats.rounds += 1
                return
            waited += cfg.ack_timeout
            if waited >= cfg.peer_timeout:
                raise BridgeError(
                    f"the follower did not acknowledge round {self._round} within "
                    f"{cfg.peer_timeout:g} s (is the strategy process alive?)"
                )
            if self._nc is not None and self._nc.is_connected:
                await self._retransmit()

    async def _send_ack(self, marker: BridgeAck) -> None:
        await self._send(self._ctl, marker)

    # ------------------------------------------------------------ receiving

    async def _on_msg(self, msg: Any) -> None:
        """Authenticate, then decode, then take the sequence number: a message that fails
        the first two is dropped without consuming one, so it cannot displace the real
        message of that number."""
        subject, data = msg.subject, msg.data
        headers = msg.headers or {}
        why = self._signer.check(subject, headers, data)
        if why is not None:
            self._reject(subject, why)
            return
        try:
            seq = int(headers[SEQ])
            peer_ack = int(headers.get(ACK, "0"))
        except (KeyError, ValueError):
            self._bad(subject, "no valid ml4t-seq/ml4t-ack header")
            return
        if subject in (self._ctl, self._hello):  # this side's own subjects: not the peer
            self.stats.ignored += 1
            return
        try:
            event = self.codec.decode(data)
        except CodecError as exc:
            self._bad(subject, str(exc))
            return
        self._heard = anyio.current_time()
        if subject == self._peer_hello:
            await self._on_hello(event)
            return
        if seq < 1:
            self._bad(subject, f"ml4t-seq {seq} on a sequenced subject")
            return
        self._outbox.ack(peer_ack)
        verdict = self._inbound.accept(seq)
        if verdict != "new":
            if verdict == "duplicate":
                self.stats.duplicates += 1
                if subject == self._peer_ctl and not self.driver and len(self._outbox):
                    await self._retransmit()  # the driver is retrying: our answer was lost
            else:
                self.stats.gaps += 1
            return
        self.stats.received += 1
        self.stats.lost = self._inbound.lost
        if subject == self._peer_ctl:
            self._on_control(event)
            return
        entry = self.imports.get(subject[len(self._prefix) :])
        if entry is None or not isinstance(event, entry[0].type):
            self.stats.ignored += 1
            return
        if isinstance(event, SubmitOrder) and not self._orders.first_time(event.order_id):
            self.stats.duplicate_orders += 1
            self.log.warning("duplicate_order_dropped", order_id=event.order_id)
            return
        if self.lockstep and not self.driver:
            self._held.append((entry[0], event))
        else:
            self.publish(entry[0], event)

    def _reject(self, subject: str, why: str) -> None:
        self.stats.unauthenticated += 1
        _log_drop(self.log, "unauthenticated_message", self.stats.unauthenticated, subject, why)

    def _bad(self, subject: str, why: str) -> None:
        self.stats.bad_messages += 1
        _log_drop(self.log, "undecodable_message", self.stats.bad_messages, subject, why)

    async def _on_hello(self, hello: Event) -> None:
        if not isinstance(hello, BridgeHello) or hello.role == self.config.role:
            self.stats.ignored += 1
            return
        self._peer.set()
        if not self.driver:  # answer every hello: the driver repeats until it hears one
            await self._say_hello()

    def _on_control(self, event: Event) -> None:
        if isinstance(event, BridgeAck):
            if self.driver and event.round == self._round:
                self._acked.set()
            return
        if self.driver or not isinstance(event, BridgeBarrier | BridgeEnd):
            self.stats.ignored += 1
            return
        # follower: release the round at its time, then answer once quiescent
        self._round = event.round
        clock = self.clock
        assert isinstance(clock, DrivenClock)
        ts = max(event.ts_event, clock.now_ns())
        held, self._held = self._held, []
        clock.advance_to(ts)
        clock.schedule(ts, lambda: self._release(held), priority=AlarmPriority.DATA)
        end = isinstance(event, BridgeEnd)
        clock.schedule(ts, lambda: self._answer(event.round, end), priority=ACK_PRIORITY)

    def _release(self, held: list[tuple[Topic[Any], Event]]) -> None:
        for topic, event in held:
            self.publish(topic, event)

    def _answer(self, round_: int, end: bool) -> None:
        ts = self.clock.now_ns()
        self.context.deliver(
            SYNC_PHASE, self._send_ack, BridgeAck(ts_event=ts, round=round_), self.name
        )
        if end:
            self.finished = True
            if self._hold_alarm is not None:
                self._hold_alarm.cancel()
                self._hold_alarm = None

    # ------------------------------------------------------------ client callbacks

    async def _on_error(self, exc: Exception) -> None:
        if self._connecting is not None:  # the first connect: nats-py retries until we raise
            servers = ", ".join(self.config.servers)
            text = str(exc).lower()
            if "authorization" in text or "authentication" in text:
                raise BridgeError(
                    f"the NATS server at {servers} refused the credentials ({exc}); check "
                    "token, token_file, user/password or credentials"
                )
            self._connecting += 1
            if self._connecting >= self.config.connect_attempts:
                raise BridgeError(
                    f"cannot connect to NATS at {servers} after {self._connecting} attempts: "
                    f"{type(exc).__name__}: {exc}"
                )
            return
        if isinstance(exc, nats.errors.SlowConsumerError):
            self.stats.slow_consumer += 1  # inbound policy: dropped, retransmitted in lockstep
            if self.stats.slow_consumer == 1 or math.log2(self.stats.slow_consumer).is_integer():
                self.log.warning("slow_consumer_drop", dropped=self.stats.slow_consumer)
            return
        self.log.warning("nats_error", error=f"{type(exc).__name__}: {exc}")

    async def _on_disconnected(self) -> None:
        self.stats.disconnects += 1
        self.log.warning("nats_disconnected")

    async def _on_reconnected(self) -> None:
        self.stats.reconnects += 1
        self.log.warning("nats_reconnected")
