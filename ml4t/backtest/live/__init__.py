"""Beyond backtests: paper replay on a wall clock, live adapter interfaces.

- :mod:`~ml4t.backtest.live.paper`: ``ml4t paper CONFIG --speed N|max``;
- :mod:`~ml4t.backtest.live.clocks`: :class:`ReplayClock` (paper replay) and
  :class:`DrivenClock` (a graph whose time is set by a remote driver);
- :mod:`~ml4t.backtest.live.adapters`: the market-data and execution client protocols the
  :class:`FeedAdapter` and :class:`BrokerAdapter` components delegate to, with
  :class:`Backoff` for reconnecting;
- :mod:`~ml4t.backtest.live.account`: a venue account's snapshot (:class:`AccountState`)
  and its reconciliation against what the graph expects;
- :mod:`~ml4t.backtest.live.asof`: signals and context from parquet joined onto live
  batches as of their time, exactly as the parquet feed joins them in a backtest;
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

from ml4t.backtest.live.account import (
    AccountSource,
    AccountState,
    Resumable,
    reconcile,
    reconcile_account,
)
from ml4t.backtest.live.adapters import (
    MARKET_DATA_LINK,
    Backoff,
    BrokerAdapter,
    ConnectionLost,
    ConnectionReporting,
    ExecutionClient,
    FeedAdapter,
    HistorySource,
    MarketDataClient,
    MarketDriven,
    ReconcileError,
    VenueError,
)
from ml4t.backtest.live.asof import AsofJoiner
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
    "MARKET_DATA_LINK",
    "AccountSource",
    "AccountState",
    "AdapterError",
    "AsofJoiner",
    "Backoff",
    "BrokerAdapter",
    "ConnectionLost",
    "ConnectionReporting",
    "Credentials",
    "DrivenClock",
    "ExecutionClient",
    "FeedAdapter",
    "HistorySource",
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
    "Resumable",
    "ScriptedBars",
    "SessionControl",
    "SimulatedExecution",
    "SimulatedVenue",
    "VenueError",
    "load_credentials",
    "paper_config",
    "parse_speed",
    "reconcile",
    "reconcile_account",
]
