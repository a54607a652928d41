"""Pre-trade risk: the :class:`RiskManager` component, its config and its pure rules."""

from __future__ import annotations

from ml4t.backtest.risk.config import RiskConfig
from ml4t.backtest.risk.manager import RiskManager
from ml4t.backtest.risk.rules import RULES, Impact, Rejection, evaluate, impact
from ml4t.backtest.risk.view import Reservation, RiskView

__all__ = [
    "RULES",
    "Impact",
    "Rejection",
    "Reservation",
    "RiskConfig",
    "RiskManager",
    "RiskView",
    "evaluate",
    "impact",
]
