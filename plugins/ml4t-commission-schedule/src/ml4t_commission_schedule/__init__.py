"""A tiered (marginal) per-share commission schedule, as an ml4t commission plugin.

Registered under the entry-point group ``ml4t.backtest.commission`` as ``tiered``. Like
every commission model it is a frozen ``msgspec.Struct`` whose fields are its
parameters, so a config's ``params`` are validated when the config is read.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from ml4t.backtest import CommissionModel

__all__ = ["Tier", "TieredCommission"]

__version__ = "0.1.0"

NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class Tier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shares of an order up to ``up_to`` (cumulative; None = unbounded) pay ``per_share``."""

    per_share: NonNegative
    up_to: Annotated[float, msgspec.Meta(gt=0)] | None = None


class TieredCommission(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Marginal per-share tiers per order, at least ``minimum``, at most ``maximum_pct``
    of the order's notional (None: no cap)."""

    tiers: tuple[Tier, ...] = (
        Tier(up_to=300, per_share=0.0035),
        Tier(up_to=3000, per_share=0.002),
        Tier(per_share=0.001),
    )
    minimum: NonNegative = 0.35
    maximum_pct: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = 0.01

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("tiers: give at least one tier")
        bounds = [t.up_to for t in self.tiers]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("tiers: only the last tier may leave up_to out (unbounded)")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError(f"tiers: up_to must increase strictly, got {finite}")

    def schedule(self, shares: float) -> float:
        """The schedule's fee for an order of ``shares`` (before minimum and cap)."""
        fee, lower = 0.0, 0.0
        for tier in self.tiers:
            upper = math.inf if tier.up_to is None else tier.up_to
            if shares <= lower:
                break
            fee += (min(shares, upper) - lower) * tier.per_share
            lower = upper
        if shares > lower:  # the last tier is bounded and the order goes past it
            fee += (shares - lower) * self.tiers[-1].per_share
        return fee

    def commission(
        self,
        quantity: float,
        price: float,
        filled_before: float,
        notional_before: float,
        charged_before: float,
    ) -> float:
        total = max(self.minimum, self.schedule(filled_before + quantity))
        if self.maximum_pct is not None:
            total = min(total, self.maximum_pct * (notional_before + quantity * price))
        return max(0.0, total - charged_before)
