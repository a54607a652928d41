"""ml4t.backtest: one actor graph for backtests, paper replay and live trading on ML signals.

This module is the public API; everything in ``__all__`` is supported.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ml4t.backtest._bar import Bar, BatchFrame
from ml4t.backtest._time import from_ns, parse_duration, to_ns
from ml4t.backtest.bus import Bus, Phase, RequestTopic, Subscription, Topic
from ml4t.backtest.clock import Alarm, AlarmPriority, Clock, SimulatedClock, Timer, WallClock
from ml4t.backtest.codec import Codec, CodecError
from ml4t.backtest.component import Component, Context, on
from ml4t.backtest.config import RunConfig, load_config
from ml4t.backtest.data import FeedConfig, ParquetFeed
from ml4t.backtest.engine import BacktestEngine, BacktestResults
from ml4t.backtest.errors import (
    BusError,
    ClockError,
    ComponentError,
    ConfigError,
    DataValidationError,
    ML4TError,
    OrderError,
    ProtocolError,
    ResultsNotFoundError,
    TimeFormatError,
    UnknownNameError,
)
from ml4t.backtest.events import (
    AccountDifference,
    AccountReconciled,
    ActionKind,
    CancelOrder,
    CashFlow,
    CashFlowKind,
    ChunkColumns,
    ComponentFailed,
    ComponentState,
    ComponentStateChanged,
    CorporateAction,
    Event,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PortfolioSnapshot,
    PositionChanged,
    RequestKind,
    SessionResumed,
    SessionStarted,
    StopAction,
    StopTrading,
    SubmitOrder,
    TimeInForce,
    TimerFired,
    TradingStopped,
    UniverseChanged,
    VenueConnection,
    VenueLink,
    VenueOrder,
    event_types,
)
from ml4t.backtest.execution import (
    BrokerConfig,
    CommissionConfig,
    CommissionModel,
    SimulatedBroker,
    SlippageConfig,
    SlippageModel,
)
from ml4t.backtest.journal import JournalReader, JournalRecorder, replay
from ml4t.backtest.logging import configure_logging, get_logger
from ml4t.backtest.plugins import PluginError
from ml4t.backtest.portfolio import AccountingError, Portfolio, PortfolioConfig
from ml4t.backtest.protocols import Broker, Feed, RecorderRole
from ml4t.backtest.record import Recorder, RecorderResults, ReportingConfig, TradeBuilder
from ml4t.backtest.report import write_report
from ml4t.backtest.result import BacktestConfig, BacktestResult
from ml4t.backtest.risk import (
    KillSwitchConfig,
    Rejection,
    RiskConfig,
    RiskManager,
    RiskRule,
    RiskRuleConfig,
    RiskView,
)
from ml4t.backtest.runtime import RunOutcome, RunTerminated, Runtime
from ml4t.backtest.strategy import BatchStrategy, OpenOrder, Strategy, StrategyBase, StrategyError
from ml4t.backtest.strategy_expr import ExprRules, ExprStrategy
from ml4t.backtest.sweep import run_sweep

try:
    __version__ = version("ml4t-backtest")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "AccountDifference",
    "AccountReconciled",
    "AccountingError",
    "ActionKind",
    "Alarm",
    "AlarmPriority",
    "BacktestConfig",
    "BacktestEngine",
    "BacktestResult",
    "BacktestResults",
    "Bar",
    "BatchFrame",
    "BatchStrategy",
    "Broker",
    "BrokerConfig",
    "Bus",
    "BusError",
    "CancelOrder",
    "CashFlow",
    "CashFlowKind",
    "ChunkColumns",
    "Clock",
    "ClockError",
    "Codec",
    "CodecError",
    "CommissionConfig",
    "CommissionModel",
    "Component",
    "ComponentError",
    "ComponentFailed",
    "ComponentState",
    "ComponentStateChanged",
    "ConfigError",
    "Context",
    "CorporateAction",
    "DataValidationError",
    "Event",
    "ExprRules",
    "ExprStrategy",
    "Feed",
    "FeedConfig",
    "JournalReader",
    "JournalRecorder",
    "KillSwitchConfig",
    "ML4TError",
    "MarketBatch",
    "ModifyOrder",
    "OpenOrder",
    "OrderAccepted",
    "OrderCancelled",
    "OrderError",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OrderUpdated",
    "ParquetFeed",
    "Phase",
    "PluginError",
    "Portfolio",
    "PortfolioConfig",
    "PortfolioSnapshot",
    "PositionChanged",
    "ProtocolError",
    "Recorder",
    "RecorderResults",
    "RecorderRole",
    "Rejection",
    "ReportingConfig",
    "RequestKind",
    "RequestTopic",
    "ResultsNotFoundError",
    "RiskConfig",
    "RiskManager",
    "RiskRule",
    "RiskRuleConfig",
    "RiskView",
    "RunConfig",
    "RunOutcome",
    "RunTerminated",
    "Runtime",
    "SessionResumed",
    "SessionStarted",
    "SimulatedBroker",
    "SimulatedClock",
    "SlippageConfig",
    "SlippageModel",
    "StopAction",
    "StopTrading",
    "Strategy",
    "StrategyBase",
    "StrategyError",
    "SubmitOrder",
    "Subscription",
    "TimeFormatError",
    "TimeInForce",
    "Timer",
    "TimerFired",
    "Topic",
    "TradeBuilder",
    "TradingStopped",
    "UniverseChanged",
    "UnknownNameError",
    "VenueConnection",
    "VenueLink",
    "VenueOrder",
    "WallClock",
    "__version__",
    "configure_logging",
    "event_types",
    "from_ns",
    "get_logger",
    "load_config",
    "on",
    "parse_duration",
    "replay",
    "run_sweep",
    "to_ns",
    "write_report",
]
