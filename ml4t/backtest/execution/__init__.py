"""Simulated execution: the broker component, its order book, fill rules and cost models."""

from __future__ import annotations

from ml4t.backtest.execution.broker import SimulatedBroker
from ml4t.backtest.execution.config import BrokerConfig, CommissionConfig, SlippageConfig
from ml4t.backtest.execution.costs import (
    CommissionModel,
    FixedBpsSlippage,
    FixedSlippage,
    HalfSpreadSlippage,
    NoCommission,
    NoSlippage,
    PercentCommission,
    PercentSlippage,
    PerOrderCommission,
    PerShareCommission,
    SlippageModel,
    VolumeShareSlippage,
    commission_model,
    slippage_model,
)
from ml4t.backtest.execution.orders import Order, OrderBook

__all__ = [
    "BrokerConfig",
    "CommissionConfig",
    "CommissionModel",
    "FixedBpsSlippage",
    "FixedSlippage",
    "HalfSpreadSlippage",
    "NoCommission",
    "NoSlippage",
    "Order",
    "OrderBook",
    "PerOrderCommission",
    "PerShareCommission",
    "PercentCommission",
    "PercentSlippage",
    "SimulatedBroker",
    "SlippageConfig",
    "SlippageModel",
    "VolumeShareSlippage",
    "commission_model",
    "slippage_model",
]
