"""Who may publish on the bridge, on a real nats-server with authentication: an intruder
on the server (an account member who is not part of the run) forges and replays messages
while a two-sided run goes on, and the run trades exactly like the one-process backtest.

Two guards, one test each: the per-run HMAC (the intruder may publish anything; only the
signature stops it) and NATS subject permissions (no secret; the server refuses to carry
what the intruder sends). A connection without credentials is refused in both.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import anyio
import nats
import nats.errors
import pytest
from ml4t_nats import BridgeEnd, NatsBridge, NatsConfig, driver_engine, follower_runtime
from nats.aio.client import Client as NATS
from nats_server import AUTH_PREFIX, PASSWORDS, NatsServer

from ml4t.backtest import BacktestEngine, BacktestResults, Codec, OrderSide, SubmitOrder

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]

P = AUTH_PREFIX
FIRST_TS = 1709562660 * 10**9  # 2024-03-04 14:31 UTC, the first bar


class Intruder:
    """Connected as ``user``: when the follower first says hello, sends it garbage with
    ``ml4t-seq: 1`` and a forged ``BridgeEnd``; at each of the driver's first three
    barriers, a 1000-share ``SubmitOrder`` with the follower's next sequence number; and
    it replays one of the driver's genuine market messages verbatim."""

    def __init__(self, url: str, user: str, run: str) -> None:
        self.url, self.user, self.run = url, user, run
        self.codec = Codec()
        self.ready = anyio.Event()  # the pre-start forgeries are on the server
        self.follower_seq = 0
        self.forged_orders = 0
        self.replayed = 0
        self.refused: list[str] = []  # the server's permission errors
        self.nc = None

    async def start(self) -> None:
        async def on_error(exc: Exception) -> None:
            self.refused.append(str(exc))

        self.nc = await nats.connect(
            self.url, user=self.user, password=PASSWORDS[self.user], no_echo=True,
            error_cb=on_error, allow_reconnect=False,
        )  # fmt: skip
        await self.nc.subscribe(f"{P}.>", cb=self.on_msg)
        await self.nc.flush()

    def headers(self, seq: int) -> dict[str, str]:
        mac = secrets.token_hex(32)  # a guess at the signature
        return {"ml4t-seq": str(seq), "ml4t-ack": "0", "ml4t-run": self.run, "ml4t-mac": mac}

    async def on_msg(self, msg) -> None:
        subject, headers = msg.subject, msg.headers or {}
        if subject == f"{P}._hello.follower" and not self.ready.is_set():
            await self.nc.publish(f"{P}.market", b"\xc1garbage", headers=self.headers(1))
            end = self.codec.encode(BridgeEnd(ts_event=FIRST_TS, round=1))
            await self.nc.publish(f"{P}._ctl.driver", end, headers=self.headers(1))
            await self.nc.flush()
            self.ready.set()
        elif subject in (f"{P}.orders.requested", f"{P}._ctl.follower"):
            self.follower_seq = max(self.follower_seq, int(headers.get("ml4t-seq", 0)))
        elif subject == f"{P}._ctl.driver" and self.forged_orders < 3:
            self.forged_orders += 1
            order = SubmitOrder(
                ts_event=FIRST_TS, ts_init=FIRST_TS, order_id=f"evil-{self.forged_orders}",
                strategy_id="m", symbol="AAA", side=OrderSide.BUY, quantity=1000,
            )  # fmt: skip
            payload = self.codec.encode(order)
            seq = self.follower_seq + 1
            await self.nc.publish(f"{P}.orders.requested", payload, headers=self.headers(seq))
        elif subject == f"{P}.market" and not self.replayed and "ml4t-seq" in headers:
            self.replayed += 1  # a genuine message of the driver: sent again as it was
            await self.nc.publish(subject, msg.data, headers=dict(headers))

    async def close(self) -> None:
        await self.nc.flush()
        await self.nc.close()


async def _two_sided_run(
    config: Path, server: NatsServer, intruder: Intruder, **auth: str
) -> tuple[BacktestResults, NatsBridge, NatsBridge]:
    """The follower (in this process, on a driven clock) starts first; the driver once
    the intruder's pre-start forgeries are on the server."""

    def side(role: str) -> NatsConfig:
        return NatsConfig(
            role=role, servers=(server.url,), prefix=P, user=role, password=PASSWORDS[role],
            ack_timeout=1.0, peer_timeout=5, heartbeat=0.5, start_timeout=10, **auth,
        )  # fmt: skip

    await intruder.start()
    follower, follower_bridge = follower_runtime(config, side("follower"))
    engine, driver_bridge = driver_engine(config, side("driver"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(follower.run)
        with anyio.fail_after(10):
            await intruder.ready.wait()
        results = await engine.run_async()
    await intruder.close()
    assert follower_bridge.finished and follower.outcome.value == "completed"
    return results, driver_bridge, follower_bridge


async def _refused_without_credentials(server: NatsServer) -> None:
    async def quiet(_exc: Exception) -> None:
        pass

    nc = NATS()
    try:
        with pytest.raises(nats.errors.Error, match=r"[Aa]uthorization"):
            await nc.connect(server.url, allow_reconnect=False, error_cb=quiet, connect_timeout=2)
    finally:
        await nc.close()  # a refused client still holds its socket


def _same_trades(results: BacktestResults, reference: BacktestResults) -> None:
    assert results.complete
    assert reference.trades.height >= 5
    assert results.trades.equals(reference.trades)
    assert results.orders.equals(reference.orders)
    assert results.fills.equals(reference.fills)
    assert results.final_equity == reference.final_equity
    assert results.orders["quantity"].max() == 10  # the strategy's size; no 1000 shares


async def test_signed_run_with_a_forging_intruder_on_the_server_trades_like_the_backtest(
    auth_server, short_config, monkeypatch
):
    secret = secrets.token_hex(32)
    monkeypatch.setenv("ML4T_RUN_SECRET", secret)
    reference = await BacktestEngine.from_config(short_config).run_async()
    intruder = Intruder(auth_server.url, "intruder", run="run1-a")
    await _refused_without_credentials(auth_server)
    results, driver, follower = await _two_sided_run(
        short_config, auth_server, intruder, secret_env="ML4T_RUN_SECRET", run_id="run1-a"
    )
    _same_trades(results, reference)
    assert intruder.forged_orders == 3 and intruder.replayed == 1 and not intruder.refused
    # the driver saw 3 forged orders and its own message reflected; the follower saw the
    # garbage, the forged end and the 3 forged orders, and the replay as a duplicate
    assert driver.stats.unauthenticated == 4
    assert follower.stats.unauthenticated == 5
    assert follower.stats.duplicates == 1
    for bridge in (driver, follower):
        assert bridge.stats.bad_messages == bridge.stats.gaps == 0
    assert driver.stats.duplicate_orders == 0


async def test_subject_permissions_keep_an_intruder_off_the_bridge_without_a_secret(
    auth_server, short_config
):
    reference = await BacktestEngine.from_config(short_config).run_async()
    guest = Intruder(auth_server.url, "guest", run=P)  # may publish only under guest.>
    await _refused_without_credentials(auth_server)
    results, driver, follower = await _two_sided_run(short_config, auth_server, guest)
    _same_trades(results, reference)
    # each of its 6 messages (garbage, end, 3 orders, replay) was refused by the server
    assert guest.forged_orders == 3 and guest.replayed == 1
    assert len(guest.refused) == 6
    assert all("permissions violation for publish" in why.lower() for why in guest.refused), (
        guest.refused
    )
    for bridge in (driver, follower):
        stats = bridge.stats
        assert stats.unauthenticated == stats.bad_messages == stats.duplicates == 0
