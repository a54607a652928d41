"""The two halves of a config's graph, split at the strategy, joined by NATS."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ml4t.backtest import BacktestEngine, Component, Runtime, WallClock, load_config
from ml4t.backtest.live import DrivenClock
from ml4t_nats.bridge import NatsBridge
from ml4t_nats.config import NatsConfig

__all__ = ["driver_engine", "follower_runtime"]


def driver_engine(
    config: Any, nats: NatsConfig, *, overrides: Iterable[str] = (), **kwargs: Any
) -> tuple[BacktestEngine, NatsBridge]:
    """The config's graph without its strategy (feed, broker, portfolio, risk manager,
    recorder) plus a driver bridge: run it with ``engine.run()``."""
    if isinstance(config, str | Path | dict):
        config = load_config(config, overrides=list(overrides))
    cfg = config
    engine = BacktestEngine(cfg, strategy=[], **kwargs)
    bridge = NatsBridge(nats)
    engine.add(bridge)
    return engine, bridge


def follower_runtime(
    strategies: Iterable[Component] | str | Path, nats: NatsConfig, *, overrides: Iterable[str] = ()
) -> tuple[Runtime, NatsBridge]:
    """The strategies (given, or those of a config file) plus a follower bridge on a
    driven clock: run it with ``runtime.run_sync()``; it ends when the driver does."""
    if isinstance(strategies, str | Path):
        config = load_config(strategies, overrides=list(overrides))
        strategies = BacktestEngine(config).strategies
    if nats.mode == "lockstep":  # time comes from the driver's barriers
        runtime = Runtime(clock=DrivenClock(), name="follower")
    else:  # stream: live, on this machine's wall clock, until stopped
        runtime = Runtime(clock=WallClock(), exit_when_idle=False, name="follower")
    for strategy in strategies:
        runtime.add(strategy)
    bridge = runtime.add(NatsBridge(nats))
    return runtime, bridge
