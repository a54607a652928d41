"""Configuration of the simulated broker.

The YAML shape follows the original proposal::

    execution:
      fill_timing: next_open          # or same_close (explicit opt-in)
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

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ml4t.backtest.execution.costs import (
    CommissionModel,
    SlippageModel,
    commission_model,
    slippage_model,
)

__all__ = ["BrokerConfig", "CommissionConfig", "SlippageConfig"]

_PARAM_PATH = re.compile(r"`\$\.")


def _reword(exc: ValueError) -> ValueError:
    return ValueError(_PARAM_PATH.sub("`params.", str(exc)))


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
      shortcut for close-to-close studies).
    - ``volume_limit``: the largest fraction of a bar's volume the orders of one symbol
      may fill on that bar (None: unlimited). The slippage model's own ``volume_limit``
      (VolumeShareSlippage) also applies; the smaller wins.
    - ``limit_fill``: ``touch`` fills a limit order on a bar that reaches its price
      exactly; ``through`` needs the bar to trade strictly beyond it.
    """

    fill_timing: Literal["next_open", "same_close"] = "next_open"
    volume_limit: Annotated[float, Meta(gt=0, le=1)] | None = None
    limit_fill: Literal["touch", "through"] = "touch"
    slippage: SlippageConfig = msgspec.field(default_factory=SlippageConfig)
    commission: CommissionConfig = msgspec.field(default_factory=CommissionConfig)
