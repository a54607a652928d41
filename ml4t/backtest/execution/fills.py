"""Fill rules: at what price, if any, an order fills on one bar. Pure functions.

Every function takes the order's side as ``sign`` (+1 buy, -1 sell), its price levels and
the bar's open, high and low, and returns the *rule price* (before slippage) or NaN for
no fill. Only what a bar's OHLC proves is assumed: the open is the first trade; the high
and the low happened at some unknown moment after it. Hence:

- gaps are honoured: a level the open already crossed fills at the open, which is worse
  than a stop and better than a limit;
- a stop triggers when the bar touches it; a limit fills when the bar touches it
  (``through=False``, default) or only when the bar trades beyond it (``through=True``);
- when a bracket's stop-loss and take-profit could both fill inside one bar and the open
  decides neither, the stop-loss (the pessimistic outcome) wins.

The rules with worked examples are in ``docs/execution.md``.
"""

from __future__ import annotations

import math

__all__ = [
    "group_winner",
    "limit_fill",
    "stop_fill",
    "stop_limit_fill",
    "trail_extreme",
    "trail_reference",
    "trail_stop",
    "volume_cap",
]

NAN = math.nan


def limit_fill(
    sign: int, limit: float, o: float, h: float, lo: float, through: bool = False
) -> float:
    """A limit order: the open if it is already at or better than the limit, else the
    limit if the bar reaches it, else NaN.

    >>> limit_fill(+1, 100.0, o=99.0, h=101.0, lo=98.0)   # opened below a buy limit
    99.0
    >>> limit_fill(+1, 100.0, o=102.0, h=103.0, lo=100.0)  # touched exactly
    100.0
    """
    if sign > 0:
        if o < limit or (o == limit and not through):
            return o
        if lo < limit or (lo == limit and not through):
            return limit
    else:
        if o > limit or (o == limit and not through):
            return o
        if h > limit or (h == limit and not through):
            return limit
    return NAN


def stop_fill(sign: int, stop: float, o: float, h: float, lo: float) -> float:
    """A stop order: the open if it gapped through the stop, else the stop if the bar
    touches it, else NaN.

    >>> stop_fill(+1, 100.0, o=103.0, h=104.0, lo=102.0)  # buy stop gapped up: the open
    103.0
    >>> stop_fill(-1, 95.0, o=97.0, h=98.0, lo=95.0)      # sell stop touched exactly
    95.0
    """
    if sign > 0:
        if o >= stop:
            return o
        if h >= stop:
            return stop
    else:
        if o <= stop:
            return o
        if lo <= stop:
            return stop
    return NAN


def stop_limit_fill(
    sign: int, stop: float, limit: float, o: float, h: float, lo: float, through: bool = False
) -> tuple[bool, float]:
    """A stop-limit order that has not triggered yet: ``(triggered, rule price or NaN)``.

    Triggered at the open (a gap), the rest of the bar is known to follow, so the limit
    is judged on the whole bar. Triggered inside the bar at the stop, the order fills at
    the stop if the stop satisfies the limit; a limit on the far side of the stop needs
    the price to come back after the trigger, which the bar cannot prove, so the order
    waits (as a plain limit order) for the next bar.
    """
    if sign > 0:
        if o >= stop:
            return True, limit_fill(sign, limit, o, h, lo, through)
        if h >= stop:
            ok = stop < limit or (stop == limit and not through)
            return True, stop if ok else NAN
    else:
        if o <= stop:
            return True, limit_fill(sign, limit, o, h, lo, through)
        if lo <= stop:
            ok = stop > limit or (stop == limit and not through)
            return True, stop if ok else NAN
    return False, NAN


def trail_stop(sign: int, extreme: float, amount: float | None, percent: float | None) -> float:
    """The stop level of a trailing stop whose reference (the best price since it was
    placed: the high for a sell, the low for a buy) is ``extreme``.

    >>> trail_stop(-1, 110.0, 5.0, None)   # sell, trailing 5 below a high of 110
    105.0
    >>> trail_stop(+1, 100.0, None, 0.25)  # buy, trailing 25 % above a low of 100
    125.0
    """
    if amount is not None:
        return extreme + sign * amount
    return extreme * (1.0 + sign * (percent or 0.0))


def trail_reference(sign: int, stop: float, amount: float | None, percent: float | None) -> float:
    """The reference price that puts a trailing stop at ``stop`` (inverse of trail_stop)."""
    if amount is not None:
        return stop - sign * amount
    return stop / (1.0 + sign * (percent or 0.0))


def trail_extreme(sign: int, extreme: float, h: float, lo: float) -> float:
    """The reference after a bar: the higher high for a sell, the lower low for a buy."""
    return max(extreme, h) if sign < 0 else min(extreme, lo)


def group_winner(
    sign: int, kinds: list[str], prices: list[float], o: float, rule: str
) -> int | None:
    """Which member of a one-cancels-other group fills on a bar: the index into
    ``kinds`` (``"market"``, ``"stop"`` or ``"limit"``, in acceptance order) and ``prices``
    (their rule prices, NaN = would not fill), or None. ``sign`` is the members' side.

    ``open_then_pessimistic``: a market order, then a limit the open itself satisfied (the
    open is the bar's first trade), then the stop that the price reaches first (the one
    nearest the open), then the first limit. ``stops_first``: a market order, then the
    first stop that can fill, then the first limit (vectorbt and backtrader).

    >>> group_winner(-1, ["stop", "limit"], [95.0, 110.0], 100.0, "open_then_pessimistic")
    0
    >>> group_winner(-1, ["stop", "limit"], [95.0, 112.0], 112.0, "open_then_pessimistic")
    1
    >>> group_winner(-1, ["stop", "limit"], [95.0, 112.0], 112.0, "stops_first")
    0
    """
    hits = [i for i, p in enumerate(prices) if not math.isnan(p)]
    if not hits:
        return None
    for i in hits:
        if kinds[i] == "market":
            return i
    stops = [i for i in hits if kinds[i] == "stop"]
    limits = [i for i in hits if kinds[i] == "limit"]
    if rule == "stops_first":
        return stops[0] if stops else limits[0]
    for i in limits:
        if prices[i] == o:
            return i
    if stops:
        best = stops[0]
        for i in stops[1:]:
            if (prices[i] > prices[best]) if sign < 0 else (prices[i] < prices[best]):
                best = i
        return best
    return limits[0]


def volume_cap(limit: float | None, volume: float, used: float) -> float:
    """Quantity a symbol may still fill on a bar: ``limit * volume - used`` (>= 0), or
    infinity without a limit. A NaN volume allows nothing."""
    if limit is None:
        return math.inf
    cap = limit * volume - used
    return cap if cap > 0 else 0.0
