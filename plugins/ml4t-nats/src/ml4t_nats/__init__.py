"""ml4t-nats: carry ml4t bus topics over NATS, so a graph can span processes or machines.

    driver = NatsBridge(NatsConfig(role="driver", servers=("nats://10.0.0.5:4222",)))
    engine = BacktestEngine(config, strategy=[])    # feed, broker, portfolio, risk, recorder
    engine.add(driver)

    follower = Runtime(clock=DrivenClock())           # the strategies, in another process
    follower.add(MyStrategy("s"))
    follower.add(NatsBridge(NatsConfig(role="follower", servers=(...))))

See the README for the lockstep protocol that keeps such a graph deterministic.
"""

from __future__ import annotations

from ml4t_nats.bridge import STANDARD, BridgeError, BridgeStats, NatsBridge
from ml4t_nats.config import NatsConfig
from ml4t_nats.events import BridgeAck, BridgeBarrier, BridgeEnd, BridgeHello
from ml4t_nats.runner import driver_engine, follower_runtime

__all__ = [
    "STANDARD",
    "BridgeAck",
    "BridgeBarrier",
    "BridgeEnd",
    "BridgeError",
    "BridgeHello",
    "BridgeStats",
    "NatsBridge",
    "NatsConfig",
    "driver_engine",
    "follower_runtime",
]

__version__ = "0.1.0"
