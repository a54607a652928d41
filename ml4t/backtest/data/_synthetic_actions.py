"""Corporate actions and a point-in-time universe for the synthetic data set.

The generator's price path is continuous (it is the path of the same seed without
actions: everything here draws from its own random stream, so turning actions on never
moves a price path). :class:`ActionPlan` places the actions up front and turns the path
into **raw** bars month by month:

- a split of ratio ``r`` with ex day ``d``: raw OHLC from ``d`` on are the path divided
  by ``r`` (volume multiplied by ``r``);
- a dividend with ex day ``d``: its amount is ``yield x`` the raw close of day ``d - 1``
  (rounded to the cent), and raw OHLC from ``d`` on are multiplied by
  ``1 - amount / that close``: the open of ``d`` is the previous close minus the amount,
  moved by the path's overnight gap (a total-return path, as a dividend-paying stock's
  price is);
- a delisted symbol has no bars after its last day; its delisting row's ex date is the
  next session, its ``price`` empty (the last close) or a cash amount per share;
- a late-listed symbol has no bars (and no signals, and indicators that start afresh)
  before its listing day.

Actions fall on distinct (symbol, day) cells inside the symbol's listed days, never on
its first day (a ratio needs a close before it). The universe file holds, per symbol, the
runs of days on which it is listed and (with ``universe_changes``) an index member: the
index starts without ``k = max(1, min(changes, n // 2))`` symbols, and each change, on
its own session, swaps a random member for a random outsider.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ml4t.backtest.errors import ConfigError

__all__ = ["ActionPlan"]

SPLIT_RATIOS = (2.0, 3.0, 4.0, 1.5, 0.5, 0.1)
PAY_LAG_DAYS = 7  # a dividend is paid one calendar week after its ex date


class ActionPlan:
    """Where the actions fall, and what carries over from one month to the next."""

    def __init__(
        self,
        *,
        seed: int,
        names: list[str],
        dates: np.ndarray,
        splits: int,
        dividends: int,
        delistings: int,
        late_listings: int,
        universe_changes: int,
    ) -> None:
        n, days = len(names), len(dates)
        _check(n, days, delistings, late_listings, universe_changes)
        rng = np.random.default_rng([seed, 0xAC7])  # not the price path's stream
        self.names, self.dates = names, dates
        self.first = np.zeros(n, dtype=np.int64)
        self.last = np.full(n, days - 1, dtype=np.int64)
        half = days // 2
        late = rng.choice(n, late_listings, replace=False)
        self.first[late] = rng.integers(1, max(2, half), size=len(late))
        delisted = np.sort(rng.choice(n, delistings, replace=False))
        self.last[delisted] = rng.integers(half, days - 1, size=len(delisted))
        # every other delisting pays cash (a fraction of the last close), the rest the close
        self.delisting_cash = {
            int(s): (None if i % 2 == 0 else float(rng.uniform(0.3, 1.1)))
            for i, s in enumerate(delisted)
        }
        cells = self._cells(rng, splits + dividends)
        ratios = rng.choice(SPLIT_RATIOS, splits)
        yields = rng.uniform(0.002, 0.02, dividends)
        self.events: dict[int, list[tuple[int, str, float]]] = {}
        for i, (day, s) in enumerate(cells):
            kind, value = ("split", ratios[i]) if i < splits else ("dividend", yields[i - splits])
            self.events.setdefault(day, []).append((s, kind, float(value)))
        self.member = _index(rng, days, n, universe_changes) & self.listed(0, days)
        self.factor = np.ones(n)  # raw = path * factor (prices); volume * volume_factor
        self.volume_factor = np.ones(n)
        self.raw_close = np.full(n, np.nan)  # the raw close of the previous day
        self.rows: list[dict[str, object]] = []

    def _cells(self, rng: np.random.Generator, k: int) -> list[tuple[int, int]]:
        """``k`` distinct (day, symbol) cells with ``first < day <= last``."""
        span = (self.last - self.first).astype(np.float64)
        if k > span.sum():
            raise ConfigError(
                f"splits + dividends is {k}, but the data has only {int(span.sum())} "
                "symbol-days after a first listed day; ask for fewer or for more days/symbols"
            )
        chosen: list[tuple[int, int]] = []
        seen: set[tuple[int, int]] = set()
        while len(chosen) < k:
            s = int(rng.choice(len(span), p=span / span.sum()))
            cell = (int(rng.integers(self.first[s] + 1, self.last[s] + 1)), s)
            if cell not in seen:
                seen.add(cell)
                chosen.append(cell)
        return chosen

    def listed(self, offset: int, count: int) -> np.ndarray:
        """(day x symbol) True where the symbol has bars, for days offset..offset+count-1."""
        g = np.arange(offset, offset + count)[:, None]
        return (self.first <= g) & (g <= self.last)

    def raw_bars(
        self, offset: int, day: np.ndarray, bars: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(raw bars with NaN where unlisted, listed mask per bar, listed the day before).

        ``offset`` is the global index of the month's first session, ``day`` each bar's
        day in the month, ``bars`` the path's open/high/low/close/volume (bar x symbol).
        """
        count = int(day[-1]) + 1
        last_bar = np.flatnonzero(np.r_[day[1:] != day[:-1], True])
        day_close = bars["close"][last_bar]
        price = np.repeat(self.factor[None, :], count, axis=0)
        volume = np.repeat(self.volume_factor[None, :], count, axis=0)
        for d in range(count):
            for s, kind, value in self.events.get(offset + d, []):
                prev = day_close[d - 1, s] * price[d - 1, s] if d else self.raw_close[s]
                self._record(offset + d, s, kind, value, prev, price[d:, s], volume[d:, s])
        for s, cash in self.delisting_cash.items():
            d = int(self.last[s]) - offset
            if 0 <= d < count:
                close = day_close[d, s] * price[d, s]
                self.rows.append(
                    _row(
                        self.names[s],
                        self.dates[self.last[s] + 1],
                        "delisting",
                        price=None if cash is None else round(cash * close, 2),
                    )
                )
        self.factor, self.volume_factor = price[-1].copy(), volume[-1].copy()
        self.raw_close = day_close[-1] * price[-1]
        listed = self.listed(offset, count)
        known_before = self.listed(offset - 1, count)
        out = {key: arr * price[day] for key, arr in bars.items() if key != "volume"}
        out["volume"] = bars["volume"] * volume[day]
        for arr in out.values():
            arr[~listed[day]] = np.nan
        return out, listed[day], known_before[day]

    def _record(
        self,
        day: int,
        s: int,
        kind: str,
        value: float,
        prev_close: float,
        price: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        """Apply one split or dividend from ``day`` on (views of this month's factors)."""
        if kind == "split":
            price /= value
            volume *= value
            self.rows.append(_row(self.names[s], self.dates[day], "split", ratio=value))
            return
        amount = max(0.01, round(value * prev_close, 2))
        price *= 1.0 - amount / prev_close
        pay = int(self.dates[day]) + PAY_LAG_DAYS
        self.rows.append(
            _row(self.names[s], self.dates[day], "dividend", amount=amount, pay_date=pay)
        )

    def actions_frame(self) -> pl.DataFrame:
        """The corporate-action file of everything generated so far, sorted."""
        schema = {
            "symbol": pl.String,
            "ex_date": pl.Int32,
            "action": pl.String,
            "ratio": pl.Float64,
            "amount": pl.Float64,
            "pay_date": pl.Int32,
            "price": pl.Float64,
            "new_symbol": pl.String,
        }
        frame = pl.DataFrame(self.rows, schema=schema)
        frame = frame.with_columns(pl.col("ex_date", "pay_date").cast(pl.Date))
        return frame.sort("ex_date", "symbol", "action")

    def universe_frame(self) -> pl.DataFrame:
        """``symbol``, ``start``, ``end`` (Date; null: to the end): the runs of member days."""
        rows = []
        for s, name in enumerate(self.names):
            edges = np.diff(np.r_[0, self.member[:, s].astype(np.int8), 0])
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            for a, b in zip(starts, ends, strict=True):  # b: the first day out again
                end = int(self.dates[b]) if b < len(self.dates) else None
                rows.append((name, int(self.dates[a]), end))
        frame = pl.DataFrame(
            rows, schema={"symbol": pl.String, "start": pl.Int32, "end": pl.Int32}, orient="row"
        )
        return frame.with_columns(pl.col("start", "end").cast(pl.Date))


def _row(symbol: str, ex: np.int64, action: str, **values: object) -> dict[str, object]:
    return {"symbol": symbol, "ex_date": int(ex), "action": action, **values}


def _check(n: int, days: int, delistings: int, late: int, changes: int) -> None:
    if max(delistings, late) > n:
        raise ConfigError(
            f"delistings ({delistings}) and late_listings ({late}) may not exceed n_symbols ({n})"
        )
    if (delistings or late) and days < 3:
        raise ConfigError("delistings and late_listings need n_days >= 3")
    if changes and (n < 2 or changes > days - 1):
        raise ConfigError(
            f"universe_changes ({changes}) needs n_symbols >= 2 and at most n_days - 1 "
            f"({days - 1}) changes, one per session after the first"
        )


def _index(rng: np.random.Generator, days: int, n: int, changes: int) -> np.ndarray:
    """(day x symbol) index membership: everyone, or ``n - k`` members swapped ``changes`` times."""
    member = np.ones((days, n), dtype=bool)
    if not changes:
        return member
    current = np.ones(n, dtype=bool)
    current[rng.choice(n, max(1, min(changes, n // 2)), replace=False)] = False
    swap_days = set(rng.choice(np.arange(1, days), changes, replace=False).tolist())
    for d in range(days):
        if d in swap_days:
            leave = rng.choice(np.flatnonzero(current))
            join = rng.choice(np.flatnonzero(~current))
            current[leave], current[join] = False, True
        member[d] = current
    return member
