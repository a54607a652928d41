"""A strategy whose parameters change what it trades (imported by path by the sweeps)."""

from __future__ import annotations

import time

import msgspec
import polars as pl

from ml4t.backtest import BatchStrategy


class Threshold(BatchStrategy):
    """Hold ``size`` shares of every symbol whose confidence is above ``threshold``.

    ``fail_after`` raises after that many timestamps (a failing task); ``sleep`` slows
    every timestamp down (an interruptible task).
    """

    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        threshold: float = 0.5
        size: float = 10.0
        fail_after: int | None = None
        sleep: float = 0.0

    seen = 0

    def on_timestamp(self, timestamp, batch: pl.DataFrame, context) -> None:
        params = self.params
        self.seen += 1
        if params.fail_after is not None and self.seen > params.fail_after:
            raise RuntimeError(f"model diverged after {params.fail_after} timestamps")
        if params.sleep:
            time.sleep(params.sleep)
        rows = batch.select("symbol", "confidence")
        for symbol, confidence in rows.iter_rows():
            if confidence is None:
                continue
            held = self.position(symbol) + self.pending_quantity(symbol)
            if held == 0 and confidence > params.threshold:
                self.buy(symbol, params.size, reason="confident")
            elif held > 0 and confidence < params.threshold - 0.1:
                self.close_position(symbol, reason="doubtful")
