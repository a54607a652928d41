"""Pre-trade risk: the :class:`RiskManager` component, its config, its pure rules and the
kill switch (:mod:`~ml4t.backtest.risk.killswitch`)."""

from __future__ import annotations

from ml4t.backtest.risk.config import KillSwitchConfig, RiskConfig, RiskRuleConfig
from ml4t.backtest.risk.killswitch import Breach, HaltStop, check_kill_switch
from ml4t.backtest.risk.manager import RiskManager
from ml4t.backtest.risk.rules import RULES, Impact, Rejection, RiskRule, Rule, evaluate, impact
from ml4t.backtest.risk.view import Reservation, RiskView

__all__ = [
    "RULES",
    "Breach",
    "HaltStop",
    "Impact",
    "KillSwitchConfig",
    "Rejection",
    "Reservation",
    "RiskConfig",
    "RiskManager",
    "RiskRule",
    "RiskRuleConfig",
    "RiskView",
    "Rule",
    "check_kill_switch",
    "evaluate",
    "impact",
]
