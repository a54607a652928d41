"""The bridge's wire protocol against a hand-written peer on a real nats-server:
malformed messages are logged and counted, a repeated order id is dropped, credentials
are checked; and the pure link state (sequence numbers, outbox) on its own."""

from __future__ import annotations

import anyio
import nats
import pytest
from ml4t_nats import BridgeAck, BridgeBarrier, BridgeEnd, BridgeHello, NatsConfig, driver_engine
from ml4t_nats._link import Inbound, OrderIds, Outbox
from structlog.testing import capture_logs

from ml4t.backtest import (
    BacktestEngine,
    Codec,
    ComponentError,
    OrderSide,
    SubmitOrder,
)

pytestmark = pytest.mark.timeout(60)


class RawFollower:
    """A follower written against the wire format only: answers hellos, and for each
    barrier first sends the scripted messages of that round, then its acknowledgement."""

    def __init__(self, url: str, prefix: str, token: str, script: dict[int, list]) -> None:
        """``script``: round -> [(topic, payload, headers)]; headers None: sequenced,
        ``{}``: none at all."""
        self.url, self.prefix, self.token, self.script = url, prefix, token, script
        self.codec = Codec()
        self.seq = 0
        self.last_in = 0
        self.done = anyio.Event()

    async def send(self, nc, subject: str, payload: bytes, headers: dict | None = None) -> None:
        if headers is None:
            self.seq += 1
            headers = {"ml4t-seq": str(self.seq), "ml4t-ack": str(self.last_in)}
        await nc.publish(f"{self.prefix}.{subject}", payload, headers=headers or None)

    async def run(self) -> None:
        nc = await nats.connect(self.url, token=self.token, no_echo=True)

        async def on_msg(msg) -> None:
            if msg.subject.endswith("._hello"):
                hello = BridgeHello(ts_event=0, role="follower", session="raw")
                await nc.publish(msg.subject, self.codec.encode(hello))
                return
            self.last_in = int(msg.headers["ml4t-seq"])
            if not msg.subject.endswith("._ctl"):
                return
            event = self.codec.decode(msg.data)
            if isinstance(event, BridgeBarrier | BridgeEnd):
                for subject, payload, headers in self.script.pop(event.round, []):
                    await self.send(nc, subject, payload, headers)
                ack = BridgeAck(ts_event=event.ts_event, round=event.round)
                await self.send(nc, "_ctl", self.codec.encode(ack))
                if isinstance(event, BridgeEnd):
                    self.done.set()

        await nc.subscribe(f"{self.prefix}.>", cb=on_msg)
        await nc.flush()
        await self.done.wait()
        await nc.drain()


def _order(ts: int, order_id: str) -> SubmitOrder:
    return SubmitOrder(
        ts_event=ts, ts_init=ts, order_id=order_id, strategy_id="raw", symbol="AAA",
        side=OrderSide.BUY, quantity=5,
    )  # fmt: skip


async def _run(engine: BacktestEngine, peer: RawFollower):
    async with anyio.create_task_group() as tg:
        tg.start_soon(peer.run)
        results = await engine.run_async()
        with anyio.fail_after(10):
            await peer.done.wait()
    return results


@pytest.mark.anyio
async def test_malformed_messages_are_logged_and_counted_and_a_repeated_order_id_is_dropped(
    token_server, make_config
):
    config = make_config()
    codec = Codec()
    first_ts = 1709562660 * 10**9  # 2024-03-04 14:31 UTC, the first bar
    good = codec.encode(_order(first_ts, "raw-1"))
    script = {
        1: [
            ("orders.requested", b"\x00not msgpack at all", {}),  # no headers at all
            ("orders.requested", good, {"ml4t-seq": "abc"}),  # a malformed sequence number
            ("orders.requested", b"\xc1\xc1garbage", None),  # in sequence, undecodable
            ("orders.requested", codec.encode(BridgeHello(ts_event=0, role="x", session="")), None),
            ("orders.requested", good, None),  # the order, once
            ("orders.requested", good, None),  # ... and again, with a new sequence number
        ]
    }
    prefix = "wire1"
    peer = RawFollower(token_server.url, prefix, token_server.token, script)
    nats_cfg = NatsConfig(
        role="driver", servers=(token_server.url,), prefix=prefix, token=token_server.token
    )
    engine, bridge = driver_engine(config, nats_cfg)
    with capture_logs() as logs:
        results = await _run(engine, peer)
    assert results.complete and engine.progress_counter.batches == 600
    stats = bridge.stats
    assert stats.bad_messages == 3
    assert stats.ignored == 1  # a valid event of the wrong type for the topic
    assert stats.duplicate_orders == 1
    bad = [e for e in logs if e["event"] == "undecodable_message"]
    assert [e["subject"] for e in bad] == [f"{prefix}.orders.requested"] * 3
    assert "no valid ml4t-seq header" in bad[0]["error"]
    assert "undecodable msgpack event" in bad[2]["error"]
    orders = results.orders
    assert orders.filter(orders["order_id"] == "raw-1").height == 1
    assert results.fills.filter(results.fills["order_id"] == "raw-1")["quantity"].sum() == 5
    rejected = results.order_history.filter(results.order_history["status"] == "rejected")
    assert rejected.height == 0  # the broker never saw the duplicate


@pytest.mark.anyio
async def test_wrong_token_fails_at_start_naming_the_credentials(token_server, make_config):
    nats_cfg = NatsConfig(
        role="driver", servers=(token_server.url,), prefix="auth", token="wrong", start_timeout=2
    )
    engine, _ = driver_engine(make_config(), nats_cfg)
    with pytest.raises(ComponentError, match="refused the credentials"):
        await engine.run_async()


def test_token_file_and_exclusive_auth_options(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    assert NatsConfig(role="driver", token_file=str(token)).auth() == {"token": "s3cret"}
    with pytest.raises(ValueError, match="one way to authenticate"):
        NatsConfig(role="driver", token="a", token_file=str(token))
    with pytest.raises(ValueError, match="is not a file"):
        NatsConfig(role="driver", credentials=str(tmp_path / "missing.creds"))


def test_inbound_takes_sequence_numbers_in_order_only():
    inbound = Inbound()
    assert [inbound.accept(s) for s in (1, 2, 2, 4, 3, 4)] == [
        "new", "new", "duplicate", "gap", "new", "new",
    ]  # fmt: skip
    stream = Inbound(tolerate_gaps=True)
    assert [stream.accept(s) for s in (1, 4, 3)] == ["new", "new", "duplicate"]
    assert stream.lost == 2


def test_outbox_keeps_unacknowledged_messages_and_is_bounded():
    box = Outbox(limit=3)
    for i in range(3):
        box.add("s", bytes([i]), i)
    box.ack(2)
    assert [seq for seq, *_ in box.unacked()] == [3]
    box.add("s", b"", 0)
    box.add("s", b"", 0)
    with pytest.raises(OverflowError, match="unacknowledged by the peer"):
        box.add("s", b"", 0)
    ids = OrderIds()
    assert ids.first_time("a") and not ids.first_time("a")
