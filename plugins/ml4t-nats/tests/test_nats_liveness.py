"""A lockstep follower whose driver vanishes (no ``BridgeEnd``: killed, unplugged) stops
by itself once the driver has been silent for ``peer_timeout``, failing its run as
incomplete with a message that says so, instead of waiting forever; one that never hears
a driver stops after ``start_timeout``. The driver is a hand-written peer on a real
nats-server that answers the handshake, runs one round and disappears."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import anyio
import nats
import pytest
from ml4t_nats import BridgeAck, BridgeBarrier, BridgeHello, NatsConfig, follower_runtime
from ml4t_nats._auth import Signer
from nats_strategies import Momentum

from ml4t.backtest import Codec, ComponentError, RunOutcome

pytestmark = [pytest.mark.timeout(30), pytest.mark.anyio]

KEY = "0123456789abcdef0123456789abcdef"
FIRST_TS = 1709562660 * 10**9  # 2024-03-04 14:31 UTC


async def vanishing_driver(url: str, prefix: str, acked: anyio.Event) -> None:
    """Say hello, send round 1's barrier, wait for its ack, then close the connection."""
    codec = Codec()
    signer = Signer(KEY.encode(), run=prefix, role="driver")
    nc = await nats.connect(url, no_echo=True)
    greeted = anyio.Event()

    async def on_msg(msg) -> None:
        if msg.subject == f"{prefix}._hello.follower":
            greeted.set()
        elif msg.subject == f"{prefix}._ctl.follower" and isinstance(
            codec.decode(msg.data), BridgeAck
        ):
            acked.set()

    async def send(subject: str, seq: int, payload: bytes) -> None:
        await nc.publish(subject, payload, headers=signer.headers(subject, seq, 0, 0, payload))

    await nc.subscribe(f"{prefix}.>", cb=on_msg)
    hello = codec.encode(BridgeHello(ts_event=0, role="driver", session="gone"))
    with anyio.fail_after(15):  # a follower process takes a second or two to start
        while not greeted.is_set():
            await send(f"{prefix}._hello.driver", 0, hello)
            with anyio.move_on_after(0.05):
                await greeted.wait()
        barrier = codec.encode(BridgeBarrier(ts_event=FIRST_TS, round=1))
        await send(f"{prefix}._ctl.driver", 1, barrier)
        await acked.wait()
    await nc.close()  # gone, without a BridgeEnd


def _follower(url: str, prefix: str, **timeouts: float):
    nats_cfg = NatsConfig(
        role="follower", servers=(url,), prefix=prefix, secret_env="ML4T_LIVE_SECRET",
        **timeouts,
    )  # fmt: skip
    return follower_runtime([Momentum("m")], nats_cfg)


async def test_follower_stops_incomplete_once_the_driver_is_silent_for_peer_timeout(
    nats_server, monkeypatch
):
    monkeypatch.setenv("ML4T_LIVE_SECRET", KEY)
    runtime, bridge = _follower(nats_server.url, "live1", peer_timeout=1.0, heartbeat=0.25)
    acked = anyio.Event()
    start = time.perf_counter()
    lost = r"the driver sent nothing for 1 s \(peer_timeout\) after round 1: it has gone, so"
    async with anyio.create_task_group() as tg:
        tg.start_soon(vanishing_driver, nats_server.url, "live1", acked)
        with pytest.raises(ComponentError, match=lost + " this run is incomplete"):
            await runtime.run()
    elapsed = time.perf_counter() - start
    assert acked.is_set()  # round 1 went through before the driver vanished
    assert runtime.outcome is RunOutcome.FAILED and not bridge.finished
    assert bridge.stats.received == 1 and bridge.stats.unauthenticated == 0
    # silent for peer_timeout (1 s), noticed within one heartbeat (0.25 s)
    assert 1.0 <= elapsed < 3.0


async def test_follower_that_never_hears_a_driver_stops_after_start_timeout(
    nats_server, monkeypatch
):
    monkeypatch.setenv("ML4T_LIVE_SECRET", KEY)
    runtime, bridge = _follower(nats_server.url, "live2", start_timeout=0.5, heartbeat=0.1)
    start = time.perf_counter()
    with pytest.raises(ComponentError, match=r"no driver spoke on live2\.> within 0\.5 s"):
        await runtime.run()
    assert runtime.outcome is RunOutcome.FAILED and not bridge.finished
    assert 0.5 <= time.perf_counter() - start < 2.5


async def test_follower_process_exits_1_saying_incomplete_when_the_driver_vanishes(
    nats_server, make_config
):
    child = subprocess.Popen(
        [sys.executable, "-m", "ml4t_nats", "follower", str(make_config()), "--server",
         nats_server.url, "--prefix", "live3", "--secret-env", "ML4T_LIVE_SECRET",
         "--peer-timeout", "1", "--heartbeat", "0.25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "ML4T_LIVE_SECRET": KEY},
    )  # fmt: skip
    try:
        acked = anyio.Event()
        await vanishing_driver(nats_server.url, "live3", acked)
        vanished = time.perf_counter()
        while child.poll() is None and time.perf_counter() - vanished < 10:
            await anyio.sleep(0.05)
        out, err = child.communicate(timeout=5)
    finally:
        child.kill()
    assert child.returncode == 1, err
    assert out.startswith("follower: incomplete: component 'nats-bridge' failed")
    assert "the driver sent nothing for 1 s (peer_timeout) after round 1" in out
    assert time.perf_counter() - vanished < 5  # 1 s of silence, then a clean shutdown
