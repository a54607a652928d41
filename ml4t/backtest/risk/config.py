"""Configuration of the risk manager: every limit is off (None) unless set.

Fractions are fractions (0.03 = 3 %); money is in the account currency; leverage is
exposure / equity. Example::

    risk:
      account: margin
      margin_leverage: 2.0
      max_position_pct: 0.10
      max_gross_leverage: 1.5
      max_open_positions: 25
      restricted_symbols: [GME]
      max_daily_loss: 0.03
      max_drawdown: 0.20
      rules:                         # plugin rules, with their own parameters
        - rule: max_order_quantity
          params: {limit: 500}
      kill_switch:                   # stop trading altogether (docs/live.md, section 6)
        max_daily_loss: 0.05
        max_drawdown: 0.15
        max_errors: 5                # rejections and component failures...
        error_window: 60             # ...within this many seconds of clock time
        action: flatten              # or halt
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ml4t.backtest.risk.custom import build_rule

__all__ = ["KillSwitchConfig", "RiskConfig", "RiskRuleConfig"]

Positive = Annotated[float, Meta(gt=0)]
NonNegative = Annotated[float, Meta(ge=0)]
Fraction = Annotated[float, Meta(gt=0, le=1)]


class RiskRuleConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One plugin rule of ``risk.rules``: its entry-point name and its parameters, which
    are checked as the config is read (see :mod:`~ml4t.backtest.risk.custom`)."""

    rule: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.build()  # an unknown rule or bad params fail here, with the key's path

    def build(self) -> Callable[..., Any]:
        """The rule, ready to be called as ``rule(request, view, config)``."""
        return build_rule(self.rule, self.params)


class KillSwitchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits that stop trading altogether (``risk.kill_switch``); each is off when unset.

    - ``max_daily_loss``: equity fell this fraction from the day's start (the previous
      day's last equity, as for ``risk.max_daily_loss``);
    - ``max_drawdown``: equity fell this fraction from its peak;
    - ``max_errors`` within ``error_window`` seconds of clock time: order rejections (by
      the risk manager or the venue) and component failures reported on ``errors``.

    On a breach the risk manager cancels every open order and, with ``action: flatten``
    (the default), sends a market order closing each position; ``halt`` keeps the
    positions. Either way every new order is refused from then on, a ``TradingStopped``
    event says why, and the run stops once the closing orders are done or one bar later.
    The pre-trade ``max_daily_loss`` / ``max_drawdown`` above only refuse new entries.
    """

    max_daily_loss: Fraction | None = None
    max_drawdown: Fraction | None = None
    max_errors: Annotated[int, Meta(ge=1)] | None = None
    error_window: Positive = 60.0
    action: Literal["flatten", "halt"] = "flatten"


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pre-trade limits (see ``docs/execution.md`` for each rule with an example).

    - ``account``: ``cash`` (buying power is the cash not reserved by open buys; no short
      sales), ``margin`` (gross exposure may reach ``margin_leverage`` x equity) or
      ``unchecked`` (no pre-trade buying-power rule: short sales allowed, and cash is
      left to the broker's ``insufficient_cash`` policy at fill time, as the vectorbt
      and backtrader presets do).
    - ``credit_pending_sales``: in a cash account, the proceeds of working market sells
      of shares held (at their estimated price) count as buying power, so a rebalance
      that sells and buys on the same bar is not refused for cash the sells will bring.
    - ``market_price_buffer``: a market or trailing order is priced at the last close
      moved this fraction against it, to leave room for the next open.
    - ``max_position_shares`` / ``_notional`` / ``_pct``: |position| after the order, in
      shares, money, or a fraction of equity.
    - ``max_order_notional``: quantity x price of one order (exits included).
    - ``max_gross_leverage`` / ``max_net_leverage``: |exposure| / equity after the order.
    - ``max_open_positions``: symbols held or with an open entry order.
    - ``restricted_symbols``: never traded.
    - ``max_daily_loss``: a fall of equity from the previous day's last value that halts
      new entries for the rest of the day; ``max_drawdown``: a fall from the peak that
      halts them for the rest of the run. Exits are always allowed.
    - ``rules``: rules from plugins (entry-point group ``ml4t.backtest.risk_rules``),
      each ``{rule: NAME, params: {...}}``, run after the built-in ones in this order;
      their params are checked as the config is read
      (:class:`RiskRuleConfig`).
    - ``kill_switch``: limits that stop trading altogether (:class:`KillSwitchConfig`).
    """

    account: Literal["cash", "margin", "unchecked"] = "cash"
    margin_leverage: Positive = 2.0
    market_price_buffer: NonNegative = 0.0
    credit_pending_sales: bool = True
    max_position_shares: Positive | None = None
    max_position_notional: Positive | None = None
    max_position_pct: Positive | None = None
    max_order_notional: Positive | None = None
    max_gross_leverage: Positive | None = None
    max_net_leverage: Positive | None = None
    max_open_positions: Annotated[int, Meta(ge=0)] | None = None
    restricted_symbols: frozenset[str] = frozenset()
    max_daily_loss: Fraction | None = None
    max_drawdown: Fraction | None = None
    rules: tuple[RiskRuleConfig, ...] = ()
    kill_switch: KillSwitchConfig | None = None
