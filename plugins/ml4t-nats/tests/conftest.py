"""A real nats-server per test (loopback, free port), and a small data set.

``auth_server`` runs one with a config file: NATS users for the run's two sides, each
allowed to publish only on its own subjects (``NatsConfig.publish_subjects``), an
``intruder`` who may publish anything (an account member who is not part of the run: only
the HMAC stops it) and a ``guest`` who may publish only under ``guest.>``; connections
without credentials are refused.

The server is Debian's ``nats-server`` (``scripts/system-deps.sh`` installs it). If it is
missing the tests fail with a message saying so: a bridge test that skips proves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from ml4t_nats import NatsConfig
from nats_server import AUTH_PREFIX, PASSWORDS, NatsServer, _binary


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer(_binary())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def token_server() -> Iterator[NatsServer]:
    server = NatsServer(_binary(), token="s3cret-token")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _user(name: str, publish: list[str], subscribe: str = ">") -> dict:
    allow = {"publish": {"allow": publish}, "subscribe": {"allow": [subscribe]}}
    return {"user": name, "password": PASSWORDS[name], "permissions": allow}


def auth_config(prefix: str = AUTH_PREFIX) -> dict:
    """The server's ``authorization`` block: who may publish what (JSON is valid NATS
    config syntax)."""
    sides = {role: list(NatsConfig(role=role, prefix=prefix).publish_subjects())
             for role in ("driver", "follower")}  # fmt: skip
    users = [
        _user("driver", sides["driver"], f"{prefix}.>"),
        _user("follower", sides["follower"], f"{prefix}.>"),
        _user("intruder", [">"]),
        _user("guest", ["guest.>"]),
    ]
    return {"authorization": {"users": users}}


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[NatsServer]:
    path = tmp_path / "nats-auth.conf"
    path.write_text(json.dumps(auth_config(), indent=2))
    server = NatsServer(_binary(), config=path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE")


def write_bars(path: Path, minutes: int = 600, seed: int = 5) -> Path:
    """Random-walk one-minute bars for five symbols (long format, one parquet file)."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    stamps = [start + timedelta(minutes=i) for i in range(minutes)]
    frames = []
    for k, symbol in enumerate(SYMBOLS):
        close = 50.0 * (k + 1) * np.exp(np.cumsum(rng.normal(0, 0.002, minutes)))
        open_ = close * np.exp(rng.normal(0, 0.001, minutes))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, minutes))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, minutes))
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": stamps,
                    "symbol": [symbol] * minutes,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(1_000, 10_000, minutes).astype(float),
                }
            )
        )
    pl.concat(frames).sort("timestamp", "symbol").write_parquet(path)
    return path


@pytest.fixture(scope="session")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bars(tmp_path_factory.mktemp("nats-data") / "bars.parquet")


@pytest.fixture(scope="session")
def short_bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two hours of the same walk: enough rounds and trades, and a run well under 1 s."""
    return write_bars(tmp_path_factory.mktemp("nats-short") / "bars.parquet", minutes=120)


def write_config(tmp: Path, bars: Path, *, delay: float = 0.0) -> Path:
    config = {
        "backtest": {"initial_capital": 100_000},
        "data": {"asset": {"path": str(bars)}},
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": None},
        "strategy": {
            "path": str(Path(__file__).with_name("nats_strategies.py")),
            "class": "Momentum",
            "name": "m",
            "params": {"delay": delay},
        },
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def short_config(tmp_path: Path, short_bars: Path) -> Path:
    """A run config over ``short_bars`` with the Momentum strategy."""
    return write_config(tmp_path, short_bars)


@pytest.fixture
def make_config(tmp_path: Path, bars: Path):
    """``make_config(delay=...)``: a run config over ``bars`` with the Momentum strategy."""

    def make(delay: float = 0.0) -> Path:
        return write_config(tmp_path, bars, delay=delay)

    return make
