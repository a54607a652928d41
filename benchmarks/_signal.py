"""The signal strategy of :mod:`benchmarks.engine` (``signal_batch``) as a module-level
class with its size as a parameter, so that a sweep can import it by path."""

from __future__ import annotations

import msgspec
import numpy as np

from ml4t.backtest import BatchStrategy


class SignalBatch(BatchStrategy):
    """Enter ``size`` shares on ``signal_entry``, close on ``signal_exit``, vectorised the
    batch-API way (docs/user-guide.md): numpy views of the batch's columns, and only the
    rows that act reach Python."""

    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        size: float = 100.0

    def on_timestamp(self, timestamp, batch, context) -> None:
        held = self.batch_positions(batch)
        entry = batch.numpy("signal_entry")
        exit_ = batch.numpy("signal_exit")
        buys = (held == 0) & (entry == 1)
        sells = (held > 0) & (exit_ == 1)
        rows = np.flatnonzero(buys | sells)
        if rows.size == 0:
            return
        size = self.params.size
        symbols = batch.get_column("symbol").gather(rows).to_list()
        for row, symbol in zip(rows.tolist(), symbols, strict=True):
            if buys[row]:
                self.buy(symbol, size, reason="signal")
            else:
                self.close_position(symbol, reason="signal")


class SignalBatchOnSignal(SignalBatch):
    """The same rule called only where the signals change and after its own fills and
    order events (``wake = "signal"``): the same trades, far fewer calls."""

    wake = "signal"
