"""Pre-trade risk: the :class:`RiskManager` component, its config and its pure rules."""

from __future__ import annotations

from ml4t.backtest.risk.config import RiskConfig, RiskRuleConfig
from ml4t.backtest.risk.manager import RiskManager
from ml4t.backtest.risk.rules import RULES, Impact, Rejection, RiskRule, Rule, evaluate, impact
from ml4t.backtest.risk.view import Reservation, RiskView

__all__ = [
    "RULES",
    "Impact",
    "Rejection",
    "Reservation",
    "RiskConfig",
    "RiskManager",
    "RiskRule",
    "RiskRuleConfig",
    "RiskView",
    "Rule",
    "evaluate",
    "impact",
]
