"""The NATS bridge on a real nats-server: a two-process graph trades like the one-process
backtest and survives a server restart mid-run without losing or doubling an order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from ml4t_nats import NatsConfig, driver_engine

from ml4t.backtest import BacktestEngine

pytestmark = pytest.mark.timeout(120)


SECRET = "two-process-secret-0123456789abcdef"  # both sides read it from ML4T_RUN_SECRET


def _follower(config: Path, url: str, prefix: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ml4t_nats", "follower", str(config), "--server", url,
         "--prefix", prefix, "--secret-env", "ML4T_RUN_SECRET", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ML4T_RUN_SECRET": SECRET},
    )  # fmt: skip


def _finish(child: subprocess.Popen[str]) -> str:
    try:
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, f"follower failed:\n{out}\n{err}"
    return out


def _driver(config: Path, url: str, prefix: str):
    nats = NatsConfig(
        role="driver", servers=(url,), prefix=prefix, ack_timeout=0.2, secret_env="ML4T_RUN_SECRET"
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ML4T_RUN_SECRET", SECRET)
        return driver_engine(config, nats)


def test_two_process_graph_trades_like_the_single_process_backtest(nats_server, make_config):
    config = make_config()
    reference = BacktestEngine.from_config(config).run()
    assert reference.trades.height >= 30
    prefix = f"t{uuid.uuid4().hex[:8]}"
    child = _follower(config, nats_server.url, prefix)
    engine, bridge = _driver(config, nats_server.url, prefix)
    start = time.perf_counter()
    results = engine.run()
    elapsed = time.perf_counter() - start
    out = _finish(child)
    assert results.complete
    assert results.trades.equals(reference.trades)
    assert results.fills.equals(reference.fills)
    assert results.orders.equals(reference.orders)
    assert results.final_equity == reference.final_equity
    stats = bridge.stats
    assert stats.bad_messages == stats.duplicate_orders == stats.gaps == 0
    assert stats.unauthenticated == 0  # every message of the follower was signed
    assert stats.rounds >= 600  # one round per timestamp at least, plus the end
    assert "follower: completed" in out
    print(f"two-process run: {elapsed:.2f} s for {stats.rounds} rounds")


def test_server_killed_and_restarted_mid_run_loses_and_doubles_no_order(nats_server, make_config):
    config = make_config(delay=0.004)  # ~2.4 s of strategy time: room for a restart
    reference = BacktestEngine.from_config(config).run()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    child = _follower(config, nats_server.url, prefix)
    engine, bridge = _driver(config, nats_server.url, prefix)
    restarted = threading.Event()

    def outage() -> None:
        deadline = time.monotonic() + 60
        while engine.progress_counter.batches < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        nats_server.kill()
        time.sleep(0.5)
        nats_server.start()
        restarted.set()

    killer = threading.Thread(target=outage, daemon=True)
    killer.start()
    results = engine.run()
    killer.join(timeout=30)
    out = _finish(child)
    assert restarted.is_set()
    assert engine.progress_counter.batches == 600
    assert bridge.stats.disconnects >= 1 and bridge.stats.reconnects >= 1
    assert results.complete
    orders = results.orders
    assert orders["order_id"].is_unique().all()
    assert orders["order_id"].to_list() == reference.orders["order_id"].to_list()
    assert results.trades.equals(reference.trades)
    follower_stats = re.search(r"bridge=(\{.*\})", out)
    assert follower_stats is not None
    print(f"driver {bridge.stats.as_dict()}\nfollower {follower_stats.group(1)}")
