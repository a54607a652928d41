"""Beyond backtests: paper replay on a wall clock, live adapter interfaces.

- :mod:`~ml4t.backtest.live.paper`: ``ml4t paper CONFIG --speed N|max``;
- :mod:`~ml4t.backtest.live.clocks`: :class:`ReplayClock` (paper replay) and
  :class:`DrivenClock` (a graph whose time is set by a remote driver);
- :mod:`~ml4t.backtest.live.adapters`: the market-data and execution client protocols the
  :class:`FeedAdapter` and :class:`BrokerAdapter` components delegate to, with
  :class:`Backoff` for reconnecting;
- :mod:`~ml4t.backtest.live.clients`: two in-process execution clients, the simulated
  broker behind the adapter (:class:`SimulatedExecution`) and a paper broker that fills
  against live incoming bars (:class:`PaperExecution`);
- :mod:`~ml4t.backtest.live.session`: ``ml4t live CONFIG`` (:class:`LiveSession`), with
  its feed and broker (:mod:`~ml4t.backtest.live.roles`), the restart from a journal
  (:mod:`~ml4t.backtest.live.resume`), credentials
  (:mod:`~ml4t.backtest.live.credentials`) and the ``scripted`` bars adapter
  (:mod:`~ml4t.backtest.live.scripted`).
"""

from __future__ import annotations

from ml4t.backtest.live.adapters import (
    Backoff,
    BrokerAdapter,
    ConnectionLost,
    ExecutionClient,
    FeedAdapter,
    MarketDataClient,
    MarketDriven,
    ReconcileError,
    reconcile,
)
from ml4t.backtest.live.clients import LoopbackMarketData, PaperExecution, SimulatedExecution
from ml4t.backtest.live.clocks import DrivenClock, LiveClock, ReplayClock
from ml4t.backtest.live.credentials import Credentials, load_credentials
from ml4t.backtest.live.monitor import LiveView, PaperMonitor
from ml4t.backtest.live.paper import OpenOrderGuard, PaperSession, paper_config, parse_speed
from ml4t.backtest.live.resume import JournalVenue, ReplayPlan
from ml4t.backtest.live.roles import (
    AdapterError,
    LiveBroker,
    LiveFeed,
    SessionControl,
    SimulatedVenue,
)
from ml4t.backtest.live.scripted import ScriptedBars
from ml4t.backtest.live.session import LiveSession

__all__ = [
    "AdapterError",
    "Backoff",
    "BrokerAdapter",
    "ConnectionLost",
    "Credentials",
    "DrivenClock",
    "ExecutionClient",
    "FeedAdapter",
    "JournalVenue",
    "LiveBroker",
    "LiveClock",
    "LiveFeed",
    "LiveSession",
    "LiveView",
    "LoopbackMarketData",
    "MarketDataClient",
    "MarketDriven",
    "OpenOrderGuard",
    "PaperExecution",
    "PaperMonitor",
    "PaperSession",
    "ReconcileError",
    "ReplayClock",
    "ReplayPlan",
    "ScriptedBars",
    "SessionControl",
    "SimulatedExecution",
    "SimulatedVenue",
    "load_credentials",
    "paper_config",
    "parse_speed",
    "reconcile",
]
