"""What a parity scenario is: data, trading rules and costs, said once for every framework.

The trading rules are the same in every framework (each runner translates them):

- at each bar, for each symbol in symbol order, with position ``p`` after the bar's
  fills: flat and a long (short) entry signal → buy (sell) ``size`` shares; long and a
  long exit → close; short and a short exit → close; long and a short entry (short and
  a long entry) → reverse to ``size`` the other way in one order; anything else →
  nothing (no pyramiding);
- an entry may carry protective exits, as fractions of the entry reference price ``c``
  (the close of the signal bar): a stop-loss at ``c * (1 - sl)`` (``c * (1 + sl)`` for a
  short), a take-profit at ``c * (1 + tp)`` (``c * (1 - tp)``), a trailing stop
  ``tsl`` below the best price since entry (above, for a short); the exits of one
  position cancel each other, and a signal exit cancels them all;
- ``sizing="value"`` buys ``floor(value / close)`` shares instead of ``size``;
- ``sizing="rebalance"`` (scenario 20) holds target weights of equity each rebalance bar.

A scenario names the frameworks that cannot express it and why (``skip``); the report
lists the reason and the scenario runs against the others only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from validation.data import Panel

__all__ = ["VECTORBT_ONE_STOP_LOSS", "Costs", "Scenario", "Stops"]

VECTORBT_ONE_STOP_LOSS = (
    "vectorbt (1.x, open source) has one stop-loss per position, fixed or trailing "
    "(`sl_trail`); a fixed stop-loss beside a trailing stop cannot be expressed"
)


@dataclass(frozen=True)
class Stops:
    """Protective exits as fractions of the entry reference price (None: not used)."""

    sl: float | None = None
    tp: float | None = None
    tsl: float | None = None

    @property
    def any(self) -> bool:
        return self.sl is not None or self.tp is not None or self.tsl is not None


@dataclass(frozen=True)
class Costs:
    """Commission and slippage conventions every framework can state the same way."""

    commission_percent: float = 0.0  # of notional, per fill
    commission_per_share: float = 0.0
    slippage_percent: float = 0.0  # of price, against the order
    slippage_fixed: float = 0.0  # price units per share, against the order


@dataclass(frozen=True)
class Scenario:
    """One parity scenario: how to make its data (full and small sizes) and trade it."""

    id: str
    name: str
    description: str
    data: Callable[[bool], Panel]  # small -> panel
    size: float = 100.0
    sizing: Literal["shares", "value", "rebalance"] = "shares"
    value: float = 0.0  # for sizing="value": money per entry
    stops: Stops = field(default_factory=Stops)
    costs: Costs = field(default_factory=Costs)
    initial_cash: float = 1_000_000.0
    long: bool = True
    short: bool = False
    rebalance_every: int = 0  # sizing="rebalance": bars between rebalances
    weights: Callable[[Panel, int], dict[str, float]] | None = None  # rebalance targets
    skip: dict[str, str] = field(default_factory=dict)  # framework -> why it cannot run
    large: bool = False  # a large-universe scenario: small in CI, full in `make validate`

    @property
    def title(self) -> str:
        return f"{self.id} {self.name}"
