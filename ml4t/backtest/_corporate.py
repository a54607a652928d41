"""Corporate actions and borrow costs: the rules every role applies the same way.

- :func:`split_quantity`: a split multiplies a holding by its ratio. A holding of whole
  shares stays whole: the fraction a split leaves (25 shares through a 1:10 reverse
  split are 2.5) is truncated toward zero and the fraction is paid out as cash in lieu
  at the post-split price (the last close before the split divided by the ratio). A
  fractional holding (a strategy trading fractions) is multiplied exactly.
- :class:`BorrowConfig` (``execution.borrow``): shorts pay ``rate`` a year on their
  market value, per calendar day held over a session boundary (see
  :func:`borrow_fee`); symbols on the hard-to-borrow list cannot be sold short.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import msgspec
import polars as pl
from msgspec import Meta

from ml4t.backtest._accounting import QTY_EPSILON
from ml4t.backtest.errors import ConfigError, DataValidationError

__all__ = ["BorrowConfig", "borrow_fee", "split_quantity"]

DAYS_PER_YEAR = 365.0
"""Borrow rates are annual and accrue per calendar day (actual/365)."""


def _whole(quantity: float) -> bool:
    return abs(quantity - round(quantity)) <= QTY_EPSILON * max(1.0, abs(quantity))


def split_quantity(quantity: float, ratio: float) -> tuple[float, float]:
    """``(shares kept, fractional shares paid as cash in lieu)`` after a split of
    ``ratio`` new shares per old share; both carry the holding's sign.

    >>> split_quantity(10.0, 4.0), split_quantity(25.0, 0.1), split_quantity(-25.0, 0.1)
    ((40.0, 0.0), (2.0, 0.5), (-2.0, -0.5))
    >>> split_quantity(2.5, 0.1)  # a fractional holding is multiplied exactly
    (0.25, 0.0)
    """
    new = quantity * ratio
    if not _whole(quantity):
        return new, 0.0
    if _whole(new):
        return float(round(new)), 0.0
    kept = float(math.trunc(new))
    return kept, new - kept


def _annual_rate(value: float | str, key: str) -> float:
    """A rate given as a fraction (0.005) or a percent string ("0.5%")."""
    if isinstance(value, str):
        text = value.strip()
        try:
            rate = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ConfigError(
                f"{key}: {value!r} is not a rate; write a fraction (0.005) or a percent ('0.5%')"
            ) from None
    else:
        rate = float(value)
    if not (math.isfinite(rate) and rate >= 0.0):
        raise ConfigError(f"{key}: {value!r} must be a finite rate >= 0")
    return rate


class BorrowConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``execution.borrow``: what shorts cost.

    ``rate`` is the annual borrow rate on short market value (a fraction, or a percent
    string such as ``"0.5%"``). ``rates_path`` names a parquet or CSV file with columns
    ``symbol`` and ``rate`` (annual, a fraction) that overrides ``rate`` per symbol, and
    an optional boolean ``hard_to_borrow`` column; ``hard_to_borrow`` lists symbols that
    cannot be sold short at all (an order that would open or increase a short in one
    is rejected with the reason).
    """

    rate: float | str = 0.0
    rates_path: str | None = None
    hard_to_borrow: list[Annotated[str, Meta(min_length=1)]] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        _annual_rate(self.rate, "execution.borrow.rate")

    @property
    def annual_rate(self) -> float:
        return _annual_rate(self.rate, "execution.borrow.rate")

    def load(self) -> tuple[dict[str, float], frozenset[str]]:
        """``(rate by symbol, hard-to-borrow symbols)`` from ``rates_path`` and the list."""
        rates: dict[str, float] = {}
        hard = set(self.hard_to_borrow)
        if self.rates_path is None:
            return rates, frozenset(hard)
        path = Path(self.rates_path)
        if not path.is_file():
            raise ConfigError(f"execution.borrow.rates_path: no file at {str(path)!r}")
        try:
            frame = pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise DataValidationError(f"{path}: cannot read the borrow rates: {exc}") from exc
        missing = [c for c in ("symbol", "rate") if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"{path}: the borrow rates need columns symbol and rate; missing {missing}"
            )
        for row, record in enumerate(frame.iter_rows(named=True), start=1):
            symbol, rate = record["symbol"], record["rate"]
            where = f"{path}: row {row}"
            if not isinstance(symbol, str) or not symbol:
                raise DataValidationError(f"{where}, column symbol: {symbol!r} is not a symbol")
            if symbol in rates:
                raise DataValidationError(f"{where}, column symbol: {symbol!r} is listed twice")
            if not isinstance(rate, int | float) or not (math.isfinite(rate) and rate >= 0):
                raise DataValidationError(
                    f"{where}, column rate: {rate!r} must be a finite annual rate >= 0 "
                    "(a fraction: 0.005 is 0.5%)"
                )
            rates[symbol] = float(rate)
            if record.get("hard_to_borrow"):
                hard.add(symbol)
        return rates, frozenset(hard)


def borrow_fee(short_value: float, rate: float, days: int) -> float:
    """The fee for holding a short of market value ``short_value`` (> 0) for ``days``
    calendar days at the annual ``rate``.

    >>> round(borrow_fee(10_000.0, 0.0365, 3), 6)  # a weekend: Friday close to Monday
    3.0
    """
    return short_value * rate * days / DAYS_PER_YEAR
