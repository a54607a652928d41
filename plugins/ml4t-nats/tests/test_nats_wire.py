"""The bridge's wire protocol against a hand-written peer on a real nats-server:
malformed and unsigned messages are logged and counted and consume no sequence number, a
repeated order id is dropped, credentials are checked; and the pure link state (sequence
numbers, outbox, signatures) on its own."""

from __future__ import annotations

import doctest
import time

import anyio
import ml4t_nats._auth
import nats
import pytest
from ml4t_nats import BridgeAck, BridgeBarrier, BridgeEnd, BridgeHello, NatsConfig, driver_engine
from ml4t_nats._auth import Signer
from ml4t_nats._link import Inbound, OrderIds, Outbox
from ml4t_nats.bridge import _log_drop

from ml4t.backtest import (
    BacktestEngine,
    Codec,
    ComponentError,
    ConfigError,
    OrderSide,
    SubmitOrder,
    get_logger,
)
from ml4t.backtest.testing import capture_logs

pytestmark = pytest.mark.timeout(60)


class RawFollower:
    """A follower written against the wire format only: answers hellos, and for each
    barrier first sends the scripted messages of that round, then its acknowledgement."""

    def __init__(
        self, url: str, prefix: str, token: str, script: dict[int, list], key: bytes | None = None
    ) -> None:
        """``script``: round -> [(topic, payload, headers)]; headers None: the next
        sequence number, signed; "again": the same number as the previous message (the
        real message after a forgery of its number); a Signer: the next number, signed
        by that signer (a wrong key, another run); a dict: those headers exactly."""
        self.url, self.prefix, self.token, self.script = url, prefix, token, script
        self.signer = Signer(key, run=prefix, role="follower")
        self.codec = Codec()
        self.seq = 0
        self.last_in = 0
        self.done = anyio.Event()

    async def send(self, nc, subject: str, payload: bytes, headers=None) -> None:
        subject = f"{self.prefix}.{subject}"
        if headers is None or isinstance(headers, Signer):
            self.seq += 1
            signer = headers or self.signer
            headers = signer.headers(subject, self.seq, self.last_in, 0, payload)
        elif headers == "again":
            headers = self.signer.headers(subject, self.seq, self.last_in, 0, payload)
        await nc.publish(subject, payload, headers=headers or None)

    async def run(self) -> None:
        nc = await nats.connect(self.url, token=self.token, no_echo=True)

        async def on_msg(msg) -> None:
            if msg.subject.endswith("._hello.driver"):
                hello = self.codec.encode(BridgeHello(ts_event=0, role="follower", session="r"))
                subject = f"{self.prefix}._hello.follower"
                await nc.publish(
                    subject, hello, headers=self.signer.headers(subject, 0, 0, 0, hello)
                )
                return
            self.last_in = int(msg.headers["ml4t-seq"])
            if not msg.subject.endswith("._ctl.driver"):
                return
            event = self.codec.decode(msg.data)
            if isinstance(event, BridgeBarrier | BridgeEnd):
                for subject, payload, headers in self.script.pop(event.round, []):
                    await self.send(nc, subject, payload, headers)
                ack = BridgeAck(ts_event=event.ts_event, round=event.round)
                await self.send(nc, "_ctl.follower", self.codec.encode(ack))
                if isinstance(event, BridgeEnd):
                    self.done.set()

        await nc.subscribe(f"{self.prefix}.>", cb=on_msg)
        await nc.flush()
        await self.done.wait()
        await nc.drain()


FIRST_TS = 1709562660 * 10**9  # 2024-03-04 14:31 UTC, the first bar


def _order(ts: int, order_id: str, quantity: float = 5) -> SubmitOrder:
    return SubmitOrder(
        ts_event=ts, ts_init=ts, order_id=order_id, strategy_id="raw", symbol="AAA",
        side=OrderSide.BUY, quantity=quantity,
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
    good = codec.encode(_order(FIRST_TS, "raw-1"))
    wrong_type = codec.encode(BridgeHello(ts_event=0, role="x", session=""))
    script = {
        1: [
            ("orders.requested", b"\x00not msgpack at all", {}),  # no headers at all
            ("orders.requested", good, {"ml4t-seq": "abc", "ml4t-run": "wire1"}),
            ("orders.requested", b"\xc1\xc1garbage", None),  # next number, undecodable
            # the peer's next message reuses the number: the garbage consumed nothing
            ("orders.requested", wrong_type, "again"),
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
    assert stats.unauthenticated == 1  # no ml4t-run header: not a message of this run
    assert stats.bad_messages == 2
    assert stats.ignored == 1  # a valid event of the wrong type for the topic
    assert stats.duplicate_orders == 1
    assert stats.gaps == stats.retransmits == 0  # nothing was displaced or went missing
    unsigned = [e for e in logs if e["event"] == "unauthenticated_message"]
    assert "ml4t-run is None, not this run's 'wire1'" in unsigned[0]["error"]
    bad = [e for e in logs if e["event"] == "undecodable_message"]
    assert [e["subject"] for e in bad] == [f"{prefix}.orders.requested"] * 2
    assert "no valid ml4t-seq/ml4t-ack header" in bad[0]["error"]
    assert "undecodable msgpack event" in bad[1]["error"]
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


@pytest.mark.anyio
async def test_signed_link_drops_forged_foreign_and_malformed_messages_without_consuming_them(
    token_server, make_config
):
    """Each bad message takes the sequence number of the real one that follows it: a
    forged 1000-share order (wrong key), an order of another run (right key), and a
    correctly signed but undecodable payload. Had any consumed the number, the real
    message would be dropped as a duplicate and the run would stall for peer_timeout."""
    key = b"k" * 32
    codec = Codec()
    real = codec.encode(_order(FIRST_TS, "raw-1"))
    forged = codec.encode(_order(FIRST_TS, "evil-1", quantity=1000))
    wrong_key = Signer(b"x" * 32, run="wire2", role="follower")
    other_run = Signer(key, run="old-run", role="follower")
    second = codec.encode(_order(FIRST_TS + 60 * 10**9, "raw-2"))
    script = {
        1: [
            ("orders.requested", forged, wrong_key),  # number n, bad MAC
            ("orders.requested", forged, {}),  # no headers at all
            ("orders.requested", real, "again"),  # number n, the real order
        ],
        2: [
            ("orders.requested", forged, other_run),  # number m, another run's id
            ("orders.requested", b"\xc1\xc1garbage", "again"),  # m, signed, undecodable
            ("orders.requested", second, "again"),  # m, the real order
        ],
    }
    peer = RawFollower(token_server.url, "wire2", token_server.token, script, key=key)
    nats_cfg = NatsConfig(
        role="driver", servers=(token_server.url,), prefix="wire2", token=token_server.token,
        secret_env="ML4T_WIRE_SECRET", peer_timeout=3, heartbeat=0.5,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ML4T_WIRE_SECRET", key.decode())
        engine, bridge = driver_engine(make_config(), nats_cfg)
    start = time.perf_counter()
    with capture_logs() as logs:
        results = await _run(engine, peer)
    elapsed = time.perf_counter() - start
    assert results.complete and engine.progress_counter.batches == 600
    stats = bridge.stats
    assert stats.unauthenticated == 3  # bad MAC, no headers, other run
    assert stats.bad_messages == 1  # signed but undecodable
    assert stats.gaps == stats.duplicates == stats.retransmits == 0
    orders = results.orders
    assert sorted(orders["order_id"].to_list()) == ["raw-1", "raw-2"]
    assert results.fills["quantity"].sum() == 10  # 5 + 5; the 1000 shares never reached it
    assert elapsed < 3  # no stall waiting out peer_timeout
    reasons = [e["error"] for e in logs if e["event"] == "unauthenticated_message"]
    assert reasons == [
        "bad ml4t-mac (not signed with this run's secret, or altered on the way)",
        "ml4t-run is None, not this run's 'wire2'",
        "ml4t-run is 'old-run', not this run's 'wire2'",
    ]
    assert all(key.decode() not in str(e) for e in logs)  # the secret is never logged


def test_signature_covers_role_run_subject_sequence_ack_clock_and_payload():
    key = b"s" * 16
    driver = Signer(key, run="r", role="driver")
    follower = Signer(key, run="r", role="follower")
    headers = driver.headers("p.market", 7, 3, 99, b"data")
    assert follower.check("p.market", headers, b"data") is None
    bad_mac = "bad ml4t-mac (not signed with this run's secret, or altered on the way)"
    for field, value in (("ml4t-seq", "8"), ("ml4t-ack", "9"), ("ml4t-clock", "1")):
        assert follower.check("p.market", {**headers, field: value}, b"data") == bad_mac
    assert follower.check("p.fills", headers, b"data") == bad_mac
    assert follower.check("p.market", headers, b"datA") == bad_mac
    assert driver.check("p.market", headers, b"data") == bad_mac  # reflected to its sender
    other_key = Signer(b"t" * 16, run="r", role="follower")
    assert other_key.check("p.market", headers, b"data") == bad_mac
    other_run = Signer(key, run="r2", role="follower")
    assert other_run.check("p.market", headers, b"data") == "ml4t-run is 'r', not this run's 'r2'"
    unsigned = {k: v for k, v in headers.items() if k != "ml4t-mac"}
    assert follower.check("p.market", unsigned, b"data") == (
        "no ml4t-mac header (not signed with this run's secret)"
    )
    assert Signer(None, run="r", role="follower").check("p.market", unsigned, b"x") is None


def test_secret_comes_from_env_or_file_and_errors_never_show_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_SECRET", "0123456789abcdef0123\n")
    assert NatsConfig(role="driver", secret_env="RUN_SECRET").secret() == b"0123456789abcdef0123"
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(b"fedcba9876543210\n")
    assert NatsConfig(role="driver", secret_file=str(secret_file)).secret() == b"fedcba9876543210"
    assert NatsConfig(role="driver").secret() is None
    monkeypatch.setenv("RUN_SECRET", "short-secret")
    with pytest.raises(ConfigError, match="RUN_SECRET holds a 12-byte secret") as short:
        NatsConfig(role="driver", secret_env="RUN_SECRET").secret()
    assert "short-secret" not in str(short.value)
    monkeypatch.delenv("RUN_SECRET")
    with pytest.raises(ConfigError, match="RUN_SECRET is not set"):
        NatsConfig(role="driver", secret_env="RUN_SECRET").secret()
    with pytest.raises(ConfigError, match="one way: secret_env or secret_file"):
        NatsConfig(role="driver", secret_env="A", secret_file=str(secret_file))
    with pytest.raises(ConfigError, match=r"secret_file: .* is not a file"):
        NatsConfig(role="driver", secret_file=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"heartbeat \(2 s\) must be shorter than peer_timeout"):
        NatsConfig(role="driver", heartbeat=2, peer_timeout=2)


def test_publish_subjects_name_each_sides_own_subjects_only():
    assert NatsConfig(role="follower", prefix="s1").publish_subjects() == (
        "s1.orders.requested", "s1._ctl.follower", "s1._hello.follower",
    )  # fmt: skip
    assert NatsConfig(role="driver", prefix="s1", exports=("market",)).publish_subjects() == (
        "s1.market", "s1._ctl.driver", "s1._hello.driver",
    )  # fmt: skip
    assert NatsConfig(role="driver", prefix="s1").run == "s1"
    assert NatsConfig(role="driver", prefix="s1", run_id="2024-q1.a").run == "2024-q1.a"


def test_auth_module_examples_hold():
    results = doctest.testmod(ml4t_nats._auth)
    assert results.attempted == 6 and results.failed == 0


def test_a_flood_of_dropped_messages_logs_the_first_ten_then_powers_of_two():
    log = get_logger("ml4t.test")
    with capture_logs() as logs:
        for count in range(1, 101):
            _log_drop(log, "unauthenticated_message", count, "p.market", "bad ml4t-mac")
    assert [e["count"] for e in logs] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 32, 64]
