"""Configuration of the simulated broker.

The YAML shape follows the original proposal::

    execution:
      fill_timing: next_open          # or same_close (explicit opt-in), next_close
      slippage:
        model: VolumeShareSlippage    # or volume_share, fixed_bps, half_spread, none
        params: {volume_limit: 0.1, price_impact: 0.1}
      commission:
        model: PerShareCommission     # or per_share, per_order, percent, none
        params: {cost_per_share: 0.005, minimum: 1.0}

A model's ``params`` are validated when the config is decoded, so a typo fails before any
work with its path (``$.execution.slippage``, naming ``params.volume_limit``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ml4t.backtest._corporate import BorrowConfig
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.execution.costs import (
    CommissionModel,
    SlippageModel,
    commission_model,
    slippage_model,
)

__all__ = ["BrokerConfig", "CommissionConfig", "SlippageConfig"]

_PARAM_PATH = re.compile(r"`\$\.")


def _reword(exc: ValueError) -> ConfigError:
    return ConfigError(_PARAM_PATH.sub("`params.", str(exc)))


class SlippageConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A slippage model by name, with its parameters."""

    model: str = "none"
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.build()
        except ValueError as exc:
            raise _reword(exc) from None

    def build(self) -> SlippageModel:
        return slippage_model(self.model, self.params)


class CommissionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A commission model by name, with its parameters."""

    model: str = "none"
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.build()
        except ValueError as exc:
            raise _reword(exc) from None

    def build(self) -> CommissionModel:
        return commission_model(self.model, self.params)


class BrokerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the simulated broker fills orders (see ``docs/execution.md``).

    - ``fill_timing``: ``next_open`` (default) fills market orders at the open of the
      symbol's next bar; ``same_close`` fills them at the close of the bar the strategy
      just saw, the moment they are routed (an explicit, documented look-ahead-free
      shortcut for close-to-close studies); ``next_close`` at the close of the next bar.
    - ``volume_limit``: the largest fraction of a bar's volume the orders of one symbol
      may fill on that bar (None: unlimited). The slippage model's own ``volume_limit``
      (VolumeShareSlippage) also applies; the smaller wins.
    - ``limit_fill``: ``touch`` fills a limit order on a bar that reaches its price
      exactly; ``through`` needs the bar to trade strictly beyond it.

    The remaining knobs exist so that a *preset* (``preset: vectorbt``...) can reproduce
    another framework's documented conventions; each is also usable alone:

    - ``intrabar``: ``ohlc`` judges limit, stop and trailing orders on the bar's open,
      high and low; ``close`` on its close alone (the bar is treated as one trade).
    - ``stop_fill``: a triggered stop fills at ``open_or_level`` (the open if it gapped
      through, else the stop), at the ``level`` even after a gap, or at the bar's
      ``extreme`` (low for a sell, high for a buy).
    - ``exit_conflict``: when several orders of one one-cancels-other group (a bracket's
      children, or orders sharing a ``parent_id``) could fill on one bar:
      ``open_then_pessimistic`` lets an order the open itself satisfies win, else a stop
      (the one nearest the open) beats a limit; ``stops_first`` lets the first stop (in
      acceptance order) that can fill win whatever the open did, then the first limit.
    - ``trail_watermark``: a trailing stop's reference follows the bar's ``high_low``
      (high for a sell, low for a buy) or its ``close``.
    - ``trail_update``: the reference moves ``after_check`` (the bar is judged against the
      level as it stood before the bar) or ``before_check`` (optimistic: a bar that does
      not hit the old level may still move it with its own extreme and then fill at the
      new level, as if the extreme came before the reversal).
    - ``slippage_fills``: which fills pay slippage: ``all``; ``except_limit_price`` (a
      limit filled at its limit price pays none, and a limit filled at a gapped open
      slips no further than its limit); ``market`` (market orders only: stops, limits and
      trailing stops fill at their rule price).
    - ``slippage_cap``: ``none``, or ``bar``: a slipped price never leaves the bar's
      [low, high] range.
    - ``insufficient_cash``: what the broker does with a buy whose cost (price x
      quantity + commission) exceeds the account's cash at fill time: ``allow`` (the
      ledger may go negative; the risk manager's buying-power rule is the check),
      ``reject`` (the order is cancelled with the reason), ``resize`` (it fills what the
      cash affords, rounded by ``share_rounding``). Unset, it follows the account:
      ``resize`` for a cash account (whose cash never goes below zero; ``allow`` is
      refused there), ``allow`` for a margin or unchecked one.
    - ``submit_cash_check``: also cost each order when it is accepted, at the bar's close
      (a limit or stop at its price) with commission, against the cash after the bar's
      fills less the orders already accepted on that bar; an order that would leave the
      running balance negative is rejected (backtrader's ``checksubmit``).
    - ``share_rounding``: ``fractional`` or ``integer`` (floor) quantities for a resize.
    - ``fill_order``: orders of different symbols on one bar are matched by ``symbol``
      (code order, then acceptance order) or in ``accepted`` order across symbols.
    - ``borrow``: what shorts cost (:class:`~ml4t.backtest._corporate.BorrowConfig`:
      an annual ``rate``, per-symbol ``rates_path``, a ``hard_to_borrow`` list whose
      symbols cannot be sold short).
    """

    fill_timing: Literal["next_open", "same_close", "next_close"] = "next_open"
    volume_limit: Annotated[float, Meta(gt=0, le=1)] | None = None
    limit_fill: Literal["touch", "through"] = "touch"
    intrabar: Literal["ohlc", "close"] = "ohlc"
    stop_fill: Literal["open_or_level", "level", "extreme"] = "open_or_level"
    exit_conflict: Literal["open_then_pessimistic", "stops_first"] = "open_then_pessimistic"
    trail_watermark: Literal["high_low", "close"] = "high_low"
    trail_update: Literal["after_check", "before_check"] = "after_check"
    slippage_fills: Literal["all", "except_limit_price", "market"] = "all"
    slippage_cap: Literal["none", "bar"] = "none"
    insufficient_cash: Literal["allow", "reject", "resize"] | None = None
    submit_cash_check: bool = False
    share_rounding: Literal["fractional", "integer"] = "fractional"
    fill_order: Literal["symbol", "accepted"] = "symbol"
    slippage: SlippageConfig = msgspec.field(default_factory=SlippageConfig)
    commission: CommissionConfig = msgspec.field(default_factory=CommissionConfig)
    borrow: BorrowConfig = msgspec.field(default_factory=BorrowConfig)

    def cost_estimate(self) -> Callable[[int, float, float, float], float] | None:
        """``(sign, quantity, price, volume) -> money``: the commission and slippage this
        broker would charge on one fill at ``price`` (the risk manager reserves them in
        a cash account); None when it charges neither. A model that needs a bar value it
        has not got (NaN volume, a spread column) is taken at no slippage."""
        if self.slippage.model.lower() == "none" and self.commission.model.lower() == "none":
            return None
        slippage, commission = self.slippage.build(), self.commission.build()

        def estimate(sign: int, quantity: float, price: float, volume: float) -> float:
            slipped = slippage.price(sign, price, quantity, volume, math.nan)
            if not math.isfinite(slipped):
                slipped = price
            slip = max((slipped - price) * sign, 0.0) * quantity
            return commission.commission(quantity, slipped, 0.0, 0.0, 0.0) + slip

        return estimate
