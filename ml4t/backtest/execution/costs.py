"""Slippage and commission models: small classes, found by name.

A model is a frozen ``msgspec.Struct`` whose fields are its parameters, so building one
from a config's ``params`` validates them (unknown keys, wrong types and out-of-range
values fail with the key's path). Built-in models are registered under a short name and
under the class name the original proposal used (``VolumeShareSlippage``,
``PerShareCommission``); third-party models join through the entry-point groups
``ml4t.backtest.slippage`` and ``ml4t.backtest.commission`` (the entry point's name is the
model name, its object the class).

Slippage moves the rule price against the order: ``price + sign * amount`` with ``sign``
+1 for a buy and -1 for a sell, and the amount never negative. Commission is charged per
fill, computed from the order's running totals so that per-order minimums and maximums
hold across partial fills. Formulas with worked examples are in ``docs/execution.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from ml4t.backtest.errors import ConfigError

__all__ = [
    "COMMISSION_MODELS",
    "SLIPPAGE_MODELS",
    "CommissionModel",
    "FixedBpsSlippage",
    "FixedSlippage",
    "HalfSpreadSlippage",
    "NoCommission",
    "NoSlippage",
    "PerOrderCommission",
    "PerShareCommission",
    "PercentCommission",
    "PercentSlippage",
    "SlippageModel",
    "VolumeShareSlippage",
    "commission_model",
    "slippage_model",
]

NonNegative = Annotated[float, Meta(ge=0)]
Fraction = Annotated[float, Meta(gt=0, le=1)]


class SlippageModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of slippage models. ``volume_limit`` (a fraction of bar volume, or None)
    caps how much of an order one bar can fill; ``column`` names a frame column whose
    value for the row the broker passes as ``extra`` (None: the broker passes NaN)."""

    volume_limit: ClassVar[float | None] = None
    column: ClassVar[str | None] = None

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        """The fill price for ``quantity`` at rule price ``price`` on a bar of ``volume``."""
        raise NotImplementedError


class NoSlippage(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fills at the rule price."""

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        return price


class FixedBpsSlippage(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``price * (1 + sign * bps / 10_000)``: 5 bps on a buy at 100.00 fills at 100.05."""

    bps: NonNegative = 5.0

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        return price * (1.0 + sign * self.bps * 1e-4)


class PercentSlippage(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``price * (1 + sign * rate)``: 0.001 on a buy at 100.00 fills at 100.10 (vectorbt's
    ``slippage``, backtrader's ``set_slippage_perc``)."""

    rate: Annotated[float, Meta(ge=0, lt=1)] = 0.001

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        return price * (1.0 + sign * self.rate)


class FixedSlippage(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``price + sign * amount``: a fixed amount per share (backtrader's
    ``set_slippage_fixed``): 0.05 on a sell at 100.00 fills at 99.95."""

    amount: NonNegative = 0.01

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        return price + sign * self.amount


class HalfSpreadSlippage(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pay half the bid/ask spread: ``price + sign * spread / 2``.

    The spread is the row's value of ``spread_column`` (absolute, in price units) when
    given and finite, else ``spread_bps`` of the price.
    """

    spread_bps: NonNegative = 10.0
    spread_column: str | None = None

    @property
    def column(self) -> str | None:  # type: ignore[override]
        return self.spread_column

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        spread = extra if math.isfinite(extra) and extra >= 0 else price * self.spread_bps * 1e-4
        return price + sign * 0.5 * spread


class VolumeShareSlippage(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The proposal's model: at most ``volume_limit`` of a bar's volume fills, and the
    price moves by ``price_impact * (quantity / volume) ** 2 * price`` against the order."""

    volume_limit: Fraction = 0.025  # type: ignore[misc]
    price_impact: NonNegative = 0.1

    def price(self, sign: int, price: float, quantity: float, volume: float, extra: float) -> float:
        if volume <= 0:
            return price
        share = quantity / volume
        return price + sign * self.price_impact * share * share * price


class CommissionModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of commission models."""

    def commission(
        self,
        quantity: float,
        price: float,
        filled_before: float,
        notional_before: float,
        charged_before: float,
    ) -> float:
        """The fee for filling ``quantity`` at ``price``, given the order's totals so far:
        quantity filled, notional filled and commission charged before this fill."""
        raise NotImplementedError


class NoCommission(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    def commission(
        self,
        quantity: float,
        price: float,
        filled_before: float,
        notional_before: float,
        charged_before: float,
    ) -> float:
        return 0.0


class PerShareCommission(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``clamp(cost_per_share * order_quantity_filled, minimum, maximum)`` per order.

    The minimum is charged with the order's first fill; later partial fills pay the
    increase of the clamped total, so an order split over bars pays what it would have
    paid in one piece. ``maximum`` (money) caps an order's total; None means no cap.
    """

    cost_per_share: NonNegative = 0.005
    minimum: NonNegative = 0.0
    maximum: NonNegative | None = None

    def commission(
        self,
        quantity: float,
        price: float,
        filled_before: float,
        notional_before: float,
        charged_before: float,
    ) -> float:
        total = max(self.minimum, self.cost_per_share * (filled_before + quantity))
        if self.maximum is not None:
            total = min(total, self.maximum)
        return max(0.0, total - charged_before)


class PerOrderCommission(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A flat ``cost`` per order, charged with its first fill."""

    cost: NonNegative = 1.0

    def commission(
        self,
        quantity: float,
        price: float,
        filled_before: float,
        notional_before: float,
        charged_before: float,
    ) -> float:
        return self.cost if filled_before == 0 else 0.0


class PercentCommission(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``rate`` of the notional (0.001 = 10 bps), at least ``minimum`` per order, plus a
    flat ``per_order`` fee with the order's first fill (vectorbt's ``fees`` and
    ``fixed_fees``)."""

    rate: NonNegative = 0.001
    minimum: NonNegative = 0.0
    per_order: NonNegative = 0.0

    def commission(
        self,
        quantity: float,
        price: float,
        filled_before: float,
        notional_before: float,
        charged_before: float,
    ) -> float:
        total = max(self.minimum, self.rate * (notional_before + quantity * price))
        if self.per_order:
            total += self.per_order
        return max(0.0, total - charged_before)


_SLIPPAGE: dict[str, type[SlippageModel]] = {
    "none": NoSlippage,
    "fixed_bps": FixedBpsSlippage,
    "percent": PercentSlippage,
    "fixed": FixedSlippage,
    "half_spread": HalfSpreadSlippage,
    "volume_share": VolumeShareSlippage,
}
_COMMISSION: dict[str, type[CommissionModel]] = {
    "none": NoCommission,
    "per_share": PerShareCommission,
    "per_order": PerOrderCommission,
    "percent": PercentCommission,
}
SLIPPAGE_MODELS: Mapping[str, type[SlippageModel]] = MappingProxyType(dict(_SLIPPAGE))
COMMISSION_MODELS: Mapping[str, type[CommissionModel]] = MappingProxyType(dict(_COMMISSION))
"""The built-in models by their short names (``ml4t plugins`` lists them)."""

for _registry in (_SLIPPAGE, _COMMISSION):
    for _cls in list(_registry.values()):
        _registry[_cls.__name__] = _cls  # type: ignore[assignment]


def _lookup(kind: str, registry: dict[str, Any], name: str, base: type) -> Any:
    cls = registry.get(name)
    if cls is None:
        for ep in entry_points(group=f"ml4t.backtest.{kind}"):
            if ep.name == name:
                cls = ep.load()
                break
    if cls is None:
        known = ", ".join(sorted(n for n in registry if n.islower()))
        raise ConfigError(
            f"unknown {kind} model {name!r}; built-in models are {known} (or their class "
            f"names), and plugins register more under the entry-point group "
            f"'ml4t.backtest.{kind}'"
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{kind} model {name!r} is {cls!r}, not a {base.__name__} subclass")
    return cls


def _build(cls: type, params: dict[str, Any], name: str) -> Any:
    try:
        return msgspec.convert(params, cls)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"bad params for model {name!r}: {exc}") from None


def slippage_model(name: str, params: dict[str, Any] | None = None) -> SlippageModel:
    """Build the slippage model registered as ``name`` from ``params``."""
    return _build(_lookup("slippage", _SLIPPAGE, name, SlippageModel), params or {}, name)


def commission_model(name: str, params: dict[str, Any] | None = None) -> CommissionModel:
    """Build the commission model registered as ``name`` from ``params``."""
    return _build(_lookup("commission", _COMMISSION, name, CommissionModel), params or {}, name)
