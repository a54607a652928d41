"""``scripted``: a market-data adapter that plays a parquet file of bars in real time.

It stands in for a vendor's stream where none can be reached (tests, demos, a dry run
of a config): the rows of each timestamp of ``path`` (long format, as ``ml4t run``
reads: ``timestamp``, ``symbol``, OHLCV and any other columns) become one
:class:`~ml4t.backtest.MarketBatch`, delivered every ``interval`` seconds of wall time
and stamped with the wall time it is delivered at, as a vendor stamps a bar with the
moment its close is known. ``start`` skips the first timestamps (a restarted session
goes on with the bars it has not seen); ``stop`` ends before that index.

It is a :class:`~ml4t.backtest.live.LoopbackMarketData` fed by its own loop: a client
with an async ``run()`` has it run beside the graph by ``ml4t live``, and the session
ends (completed) once ``run()`` returns and the graph is idle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import anyio
import msgspec
import polars as pl

from ml4t.backtest.data.feed import OHLCV
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.events import MarketBatch
from ml4t.backtest.live.clients import LoopbackMarketData

__all__ = ["ScriptedBars", "ScriptedParams"]


class ScriptedParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``live.data.params`` of the ``scripted`` adapter."""

    path: str
    interval: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    start: Annotated[int, msgspec.Meta(ge=0)] = 0
    stop: Annotated[int, msgspec.Meta(ge=0)] | None = None


class ScriptedBars(LoopbackMarketData):
    """Plays ``path``'s bars, one timestamp every ``interval`` seconds (see the module)."""

    def __init__(self, **params: object) -> None:
        super().__init__()
        try:
            self.params = msgspec.convert(params, ScriptedParams)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"$.live.data.params: {exc}") from None
        path = Path(self.params.path)
        if not path.is_file():
            raise ConfigError(f"$.live.data.params.path: no file at {path}")
        frame = pl.read_parquet(path)
        missing = [c for c in ("timestamp", "symbol", *OHLCV) if c not in frame.columns]
        if missing:
            raise ConfigError(f"$.live.data.params.path: {path} has no column(s) {missing}")
        frame = frame.with_columns(pl.col("symbol").cast(pl.String)).sort("timestamp", "symbol")
        self.symbols = sorted(frame["symbol"].unique().to_list())
        enum = pl.Enum(self.symbols)
        groups = frame.with_columns(pl.col("symbol").cast(enum)).partition_by(
            "timestamp", maintain_order=True, include_key=False
        )
        self.frames = groups[self.params.start : self.params.stop]
        self.delivered = 0
        self.finished = False

    async def run(self) -> None:
        """Deliver every frame at the pace of ``interval``, then return."""
        while not self._subscribers:
            await anyio.sleep(0.005)
        for frame in self.frames:
            await anyio.sleep(self.params.interval)
            now = time.time_ns()  # the vendor's stamp: when the bar's close is known
            self.push(MarketBatch(ts_event=now, ts_init=now, frame=frame))
            self.delivered += 1
        self.finished = True
