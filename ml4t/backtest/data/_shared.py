"""One data pass shared by several runs: read and validate once, deliver each batch to all.

A :class:`SharedPass` prepares one :class:`~ml4t.backtest.data.feed.ParquetFeed` (schemas,
chunk plan, validation, corporate actions, universe) and reads its chunks once, building
every timestamp's :class:`~ml4t.backtest.events.MarketBatch` once, on the read-ahead
thread. Each run gets a :class:`SharedFeed` (:meth:`SharedPass.feed`): a ``ParquetFeed``
in every other respect (its own session handshake, alarms, corporate-action cursor), that
publishes those same batch objects instead of reading the files itself. Batches are
immutable, so nothing but read-only market data is shared between runs.

The runs go in lock-step by chunk, each in its own thread and event loop: a run may take
chunk ``i`` only when no run still active is on a chunk before ``i - 1``, so at most three
chunks are alive (the slowest run's, the next, and the one read ahead), as a single feed
keeps two. A run leaves the pass when its feed stops (or its thread ends, if the feed never
started), so a failed run never holds the others back. :meth:`SharedPass.release` lifts the
lock-step for good (a cancelled sweep: every run must reach its next checkpoint).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ml4t.backtest.data._chunks import ChunkReader
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.data.config import FeedConfig
from ml4t.backtest.data.feed import ParquetFeed, _Chunk, market_batch
from ml4t.backtest.events import MarketBatch, SessionStarted

if TYPE_CHECKING:
    from ml4t.backtest.data.validation import ValidationReport

__all__ = ["SharedFeed", "SharedPass"]

_Loaded = tuple[_Chunk, list[MarketBatch]]


class SharedPass:
    """One prepared feed whose chunks and batches are read once for ``SharedFeed``s."""

    def __init__(self, config: FeedConfig, *, calendar: SessionCalendar | None = None) -> None:
        self.config = config
        self.calendar = calendar
        self.source = ParquetFeed(config, calendar=calendar, name="shared-feed")
        self._reader: ChunkReader[_Loaded] | None = None
        self._chunks: dict[int, _Loaded | None] = {}
        self._read = 0  # chunks taken from the reader so far
        self._at: dict[int, int] = {}  # run token -> index of the chunk it holds
        self._tokens = 0
        self._released = False
        self._lock = threading.Condition()
        self._prepare_lock = threading.Lock()
        self._error: Exception | None = None

    def prepare(self) -> ValidationReport:
        """Read the schemas, plan the chunks and validate the data: once, whichever run
        asks first (the others wait); a failure is raised to every run that asks."""
        with self._prepare_lock:
            if self._error is not None:
                raise self._error
            try:
                report = self.source.prepare()
            except Exception as exc:
                self._error = exc
                raise
            if self._reader is None:
                assert self.source._assets is not None
                self._reader = ChunkReader(self.source._assets.plan, self._load)
            return report

    def join(self) -> int:
        """A token for one more run of the pass. Every run joins before any takes a
        chunk, so that none is forgotten before the last run has had it."""
        with self._lock:
            token = self._tokens
            self._tokens += 1
            self._at[token] = -1
        return token

    def feed(self, token: int, session: SessionStarted, *, name: str = "feed") -> SharedFeed:
        """The feed of run ``token`` (``session``: its facts, as the engine gives a
        ParquetFeed)."""
        return SharedFeed(self, token, session=session, name=name)

    def _load(self, lo: int, hi: int) -> _Loaded:
        """A chunk and every batch cut from it (on the read-ahead thread)."""
        chunk = self.source._load(lo, hi)
        return chunk, [market_batch(chunk, i) for i in range(len(chunk.ts))]

    def chunk(self, token: int, index: int) -> _Loaded | None:
        """Chunk ``index`` for run ``token`` (None past the last), once the slowest run
        still active is no more than one chunk behind it."""
        with self._lock:
            self._lock.wait_for(lambda: self._released or index <= self._slowest() + 1)
            while self._read <= index:
                assert self._reader is not None
                self._chunks[self._read] = self._reader.next_chunk()
                self._read += 1
            if token in self._at:
                self._at[token] = index
            self._forget_behind()
            self._lock.notify_all()
            return self._chunks.get(index)

    def leave(self, token: int) -> None:
        """Run ``token`` takes no more chunks (it stopped, failed or never started)."""
        with self._lock:
            if self._at.pop(token, None) is None:
                return
            self._forget_behind()
            if not self._at and self._reader is not None:
                self._reader.close()
            self._lock.notify_all()

    def release(self) -> None:
        """Stop holding fast runs back (cancellation: every run must get on to its end)."""
        with self._lock:
            self._released = True
            self._lock.notify_all()

    def _slowest(self) -> int:
        return min(self._at.values(), default=self._read)

    def _forget_behind(self) -> None:
        slowest = self._slowest()
        for index in [i for i in self._chunks if i < slowest]:
            del self._chunks[index]


class SharedFeed(ParquetFeed):
    """A run's feed on a :class:`SharedPass`: the same events a ``ParquetFeed`` on the same
    config publishes, with the batches (the very objects) the pass read once."""

    def __init__(
        self, shared: SharedPass, token: int, *, session: SessionStarted, name: str = "feed"
    ) -> None:
        super().__init__(shared.config, session=session, calendar=shared.calendar, name=name)
        self._shared = shared
        self._token = token
        self._index = -1
        self._batches: list[MarketBatch] = []

    def prepare(self) -> ValidationReport:
        """Take the pass's prepared state: the data is validated once, for every run."""
        report = self._shared.prepare()
        source = self._shared.source
        self.report = report
        self._assets = source._assets
        self._signals = source._signals
        self._context = source._context
        self._validated_here = source._validated_here
        self.symbols = source.symbols
        self.symbol_dtype = source.symbol_dtype
        self.first_ts, self.last_ts = source.first_ts, source.last_ts
        self.signal_columns = source.signal_columns
        self.actions = source.actions
        self.membership = source.membership
        return report

    def on_stop(self) -> None:
        super().on_stop()
        self._batches = []
        self._shared.leave(self._token)

    def leave(self) -> None:
        """Take no more chunks (the run ended without this feed stopping)."""
        self._shared.leave(self._token)

    def _next_chunk(self) -> _Chunk | None:
        while True:
            self._index += 1
            loaded = self._shared.chunk(self._token, self._index)
            if loaded is None:
                self._chunk, self._batches = None, []
                return None
            chunk, batches = loaded
            if chunk.ts:
                self._chunk, self._i, self._batches = chunk, 0, batches
                return chunk

    def _batch_at(self, chunk: _Chunk, i: int) -> MarketBatch:
        return self._batches[i]
