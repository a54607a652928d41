"""Alpaca minute bars assembled into one ``MarketBatch`` per timestamp.

Alpaca stamps a minute bar with the minute's **start** (``t`` = 09:30 covers 09:30 to
09:31). ml4t stamps every row with the time it is **known** (DESIGN, time contract): a
bar is known when its minute ends. A bar stamped 09:30 by Alpaca is therefore the row
at 09:31, exactly as the parquet feed shifts bars labelled by their start
(``bar_label: start``, ``bar_interval: 1m``) and as a backtest on the same minute bars
labelled by their end sees it.

The stream sends each minute's bars together, shortly after the minute ends, and only
for symbols that traded. A minute's batch is released when every subscribed symbol's
bar has arrived, when a bar of a later minute arrives (the stream is in time order), or
``grace`` seconds after its first bar, whichever comes first. A bar for a minute already
released is late: it is dropped and counted (publishing it would rewrite the past).
Signals and context are joined as of the batch's time by an
:class:`~ml4t.backtest.live.AsofJoiner`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ml4t.backtest import MarketBatch
from ml4t.backtest.live import AsofJoiner

__all__ = ["MINUTE_NS", "MinuteBars", "bar_row", "iso_ns"]

MINUTE_NS = 60 * 1_000_000_000
OHLCV = ("open", "high", "low", "close", "volume")

Row = tuple[float, float, float, float, float]


def iso_ns(value: str | datetime) -> int:
    """UTC nanoseconds of an ISO-8601 time (``Z`` or an offset; nanosecond digits kept)."""
    if isinstance(value, datetime):
        return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    frac = ""
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, rest = rest[:digits], rest[digits:]
    stamp = datetime.fromisoformat(head + rest)
    return int(stamp.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def bar_row(message: dict[str, Any]) -> tuple[str, int, Row]:
    """``(symbol, minute start ns, (o, h, l, c, v))`` of a stream or REST bar (the
    stream's carries its symbol as ``S``)."""
    row = (
        float(message["o"]),
        float(message["h"]),
        float(message["l"]),
        float(message["c"]),
        float(message["v"]),
    )
    return str(message.get("S", "")), iso_ns(message["t"]), row


class MinuteBars:
    """Bars in, batches out (through ``emit``), for the universe ``symbols``."""

    def __init__(
        self,
        symbols: Sequence[str],
        joiner: AsofJoiner,
        *,
        grace: float,
        emit: Callable[[MarketBatch], None],
        log: Any,
    ) -> None:
        self.joiner = joiner
        self.code = {s: i for i, s in enumerate(joiner.dtype.categories.to_list())}
        self.subscribed = frozenset(symbols)
        self.grace = grace
        self._emit = emit
        self.log = log
        self._pending: dict[int, dict[str, Row]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self.released_through: int | None = None  # start of the last minute released
        self.late = 0
        self.foreign = 0

    def add(self, symbol: str, start_ns: int, row: Row) -> None:
        if symbol not in self.subscribed:
            self.foreign += 1
            return
        if self.released_through is not None and start_ns <= self.released_through:
            self.late += 1
            self.log.warning("late_bar_dropped", symbol=symbol, minute_ns=start_ns)
            return
        for older in sorted(m for m in self._pending if m < start_ns):
            self.release(older)
        rows = self._pending.setdefault(start_ns, {})
        rows[symbol] = row
        if len(rows) == len(self.subscribed):
            self.release(start_ns)
        elif start_ns not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[start_ns] = loop.call_later(self.grace, self.release, start_ns)

    def release(self, start_ns: int) -> None:
        timer = self._timers.pop(start_ns, None)
        if timer is not None:
            timer.cancel()
        rows = self._pending.pop(start_ns, None)
        if not rows:
            return
        self.released_through = start_ns
        self._emit(self.batch(start_ns, rows.items()))

    def batch(self, start_ns: int, rows: Iterable[tuple[str, Row]]) -> MarketBatch:
        """The batch of one minute: known at its end, rows in symbol-code order."""
        ordered = sorted(rows, key=lambda item: self.code[item[0]])
        columns = list(zip(*(row for _, row in ordered), strict=True))
        frame = pl.DataFrame(
            {
                "symbol": pl.Series([s for s, _ in ordered], dtype=self.joiner.dtype),
                **{
                    name: pl.Series(values, dtype=pl.Float64)
                    for name, values in zip(OHLCV, columns, strict=True)
                },
            }
        )
        ts = start_ns + MINUTE_NS
        frame, context = self.joiner.join(frame, ts)
        codes = np.fromiter((self.code[s] for s, _ in ordered), dtype="<i4", count=len(ordered))
        return MarketBatch(
            ts_event=ts, ts_init=ts, frame=frame, context=context, codes=codes.tobytes()
        )

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
