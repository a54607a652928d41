"""The event journal: every bus event of a run, in order, replayable without the data.

Format (``journal.ml4tj``, version 2; all integers little-endian)::

    b"ML4TJNL2"                                  magic, format version 2
    u32 n, u32 crc, n bytes                      header: msgpack map (format, versions,
                                                 topics, config, recorder parameters)
    repeated: u32 n, u16 topic, i64 clock_ns,    one event: the index of its topic in the
              u32 crc, n bytes                   header's list, the clock when it was
                                                 published, the event in the ml4t codec
    u32 n, u16 0xFFFF, i64 clock_ns, u32 crc,    trailer: msgpack map (events, complete,
              n bytes                            reason); absent if the writer was killed

``crc`` is the CRC-32 of the header's payload, and of a frame's 14 bytes before it plus
its payload, so a flipped bit anywhere in a frame, its topic or its clock is found, not
replayed. Format 1 (``b"ML4TJNL1"``, the same without the CRCs) is still read.

**Order.** The writer subscribes to every topic at one phase (``RECORD`` by default).
Within a phase the dispatcher delivers in publish order, and each delivery to one
subscriber at one phase keeps the global sequence, so the journal holds the events of all
topics in the order they were *published*, each with the clock time it was published at.
The recorder also subscribes to all its topics at one phase, so it sees them in that same
order: replaying the journal (publishing each event at its clock time into a fresh
recorder on a simulated clock) feeds the recorder the identical sequence, and its tables
come out byte-identical.

**Reading.** :class:`JournalReader` raises one error, :class:`JournalError`, for every
corruption, naming the file and the byte offset where it is: a header that is not
msgpack, not a map or without topics; a frame whose CRC does not match, whose topic is
unknown, whose event the codec refuses, or whose clock goes back; a trailer that is not
msgpack or counts other events than the journal holds; bytes after the trailer. A
journal that simply stops (inside a frame, or before the trailer) is not an error: it is
read as far as it goes and reported as ``truncated``.

**A partial journal.** The writer writes to ``<name>.<pid>.partial`` beside the final
name (:func:`partial_path`; for the recorder's journal ``journal.ml4tj.<pid>.partial``),
fsyncs it and renames it to the final name when the run ends, complete or not. Only a
killed writer (SIGKILL, a power cut) leaves a ``*.partial`` file: it may be the only
record of that run, so no cleanup removes it (it does not end in ``.tmp``).
``ml4t journal recover PARTIAL`` (:func:`recover`) turns it into a readable journal with
every complete event up to where the writer stopped and a trailer saying so; a replay of
that gives the results up to the last complete event, marked incomplete. Events reach
the file in chunks (``chunk_bytes``), so a kill loses at most the last unwritten chunk.

**A continuous journal** (a live session's, ``continuous=True``) is written in place
under its final name and every event reaches the file as it is written (one ``write``
per event, no buffering), so a process killed at any moment leaves a journal readable
up to its last complete event: it simply has no trailer yet (``truncated``).
:meth:`JournalWriter.append` continues such a journal, or a closed one: the trailer and
any half-written frame at the end are cut off and new events follow the old ones, so a
restarted session's journal stays one file whose clock never goes back.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

import msgspec
import polars as pl

from ml4t.backtest import topics as standard_topics
from ml4t.backtest._time import to_ns
from ml4t.backtest.bus import Topic
from ml4t.backtest.codec import Codec, CodecError
from ml4t.backtest.errors import ML4TError
from ml4t.backtest.events import Event, MarketBatch
from ml4t.backtest.record.outputs import (
    Stopwatch,
    atomic_open,
    dependency_versions,
    to_builtins,
)

__all__ = [
    "JOURNAL_FILE",
    "STANDARD_TOPICS",
    "Continuation",
    "JournalEntry",
    "JournalError",
    "JournalReader",
    "JournalWriter",
    "Recovery",
    "partial_path",
    "recover",
]

JOURNAL_FILE = "journal.ml4tj"
"""The journal's file name in a results directory."""

MAGIC = b"ML4TJNL2"
FORMAT_VERSION = 2
PARTIAL_SUFFIX = ".partial"
_MAGIC_V1 = b"ML4TJNL1"
_LEN = struct.Struct("<I")
_HEADER = struct.Struct("<II")  # payload size, CRC-32 of the payload
_FRAME_V1 = struct.Struct("<IHq")
_FRAME = struct.Struct("<IHqI")  # payload size, topic index, clock, CRC-32
_CRC = struct.Struct("<I")
_TRAILER = 0xFFFF
STANDARD_TOPICS: tuple[Topic[Any], ...] = tuple(
    getattr(standard_topics, name) for name in sorted(standard_topics.__all__)
)


class JournalError(ML4TError):
    """A file that is not an ml4t journal, a corrupt journal, or one that cannot be
    replayed. The message names the file and, for corruption, the byte offset."""


def partial_path(path: str | Path) -> Path:
    """The name a journal is written under until it is closed: ``<name>.<pid>.partial``.

    A file of this name that outlives its writer is a killed run's journal; see
    :func:`recover`.
    """
    final = Path(path)
    return final.with_name(f"{final.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def _final_name(partial: Path) -> Path:
    """``journal.ml4tj.4711.partial`` (or ``journal.ml4tj.4711.<run id>.partial``, as a
    later run renames it) -> ``journal.ml4tj``; any other name gets ``.recovered``."""
    parts = partial.name.removesuffix(PARTIAL_SUFFIX).split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.isdigit():
            return partial.with_name(".".join(parts[:i]))
    return partial.with_name(f"{partial.name}.recovered")


def _frame(index: int, clock_ns: int, payload: bytes) -> bytes:
    head = _FRAME_V1.pack(len(payload), index, clock_ns)
    return head + _CRC.pack(zlib.crc32(payload, zlib.crc32(head))) + payload


class _Frame(NamedTuple):
    offset: int
    topic_index: int
    clock: int
    data: bytes


class JournalEntry(msgspec.Struct, frozen=True):
    """One journaled event: its topic's name, the clock when it was published, the event."""

    topic: str
    clock_ns: int
    event: Event


# --------------------------------------------------------------------------- writing


class Continuation(NamedTuple):
    """Where an existing journal ends, for :meth:`JournalWriter.append`: its header, its
    complete events, the last one's clock, the byte offset after it, and how the journal
    ended (its trailer's reason, or that it was cut short)."""

    header: dict[str, Any]
    events: int
    last_clock: int
    end: int
    ended: str


def continuation(path: str | Path) -> Continuation:
    """Read ``path`` to its last complete event (every frame's CRC checked). A corrupt
    frame is a :class:`JournalError` naming its offset: a journal is only continued
    from a clean end."""
    reader = JournalReader(path)
    if reader._v1:
        raise JournalError(f"{reader.path}: a format 1 journal cannot be continued")
    events, clock, end = 0, 0, reader._offset
    with open(reader.path, "rb") as raw:
        handle = io.BufferedReader(raw, buffer_size=1 << 20)
        for frame in reader._frames(handle):
            events, clock = events + 1, frame.clock
            end = frame.offset + _FRAME.size + len(frame.data)
        size = os.fstat(raw.fileno()).st_size
    trailer = reader.trailer
    if trailer is not None:
        state = "complete" if trailer.get("complete") else "incomplete"
        ended = f"closed ({state}): {trailer.get('reason') or 'the run completed'}"
    elif end < size:
        ended = f"cut short: the writer stopped inside a frame ({size - end} bytes dropped)"
    else:
        ended = "cut short: the writer stopped after its last complete event"
    return Continuation(reader.header, events, clock, end, ended)


class JournalWriter:
    """Streams frames to :func:`partial_path` in chunks; ``close`` renames it into place.

    The header is written (and flushed) at once, so even a writer killed before its first
    chunk leaves a partial journal that names its run. ``continuous=True`` writes in
    place under ``path`` and every event straight through to the file (see the module).
    """

    def __init__(
        self,
        path: str | Path,
        topics: Iterable[str],
        *,
        header: Mapping[str, Any] | None = None,
        codec: Codec | None = None,
        chunk_bytes: int = 1 << 20,
        continuous: bool = False,
        _continue: Continuation | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.topics = list(topics)
        if len(self.topics) >= _TRAILER:
            raise JournalError(f"a journal holds at most {_TRAILER - 1} topics")
        self.codec = codec or Codec()
        self.events = 0
        self.continuous = continuous
        self._chunk = 0 if continuous else chunk_bytes
        self._buffer = bytearray()
        self._last_clock = 0
        self.partial = self.path if continuous else partial_path(self.path)
        if _continue is not None:
            self.events, self._last_clock = _continue.events, _continue.last_clock
            self._file: BinaryIO | None = open(self.partial, "r+b")  # noqa: SIM115 - closed in close()
            self._file.truncate(_continue.end)
            self._file.seek(_continue.end)
            return
        # a continuous journal appears under its name with its header already in it
        # (written under the pid-named partial name, then renamed: no empty file ever)
        self._file = open(partial_path(self.path), "wb")  # noqa: SIM115 - closed in close()
        head = {
            "format": FORMAT_VERSION,
            "versions": dependency_versions(),
            "created_at": Stopwatch.now_iso(),
            "topics": self.topics,
            **to_builtins(dict(header or {})),
        }
        payload = msgspec.msgpack.encode(head)
        self._buffer += MAGIC + _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        self.flush()
        if continuous:
            os.replace(partial_path(self.path), self.path)

    @classmethod
    def append(
        cls,
        path: str | Path,
        topics: Iterable[str],
        *,
        codec: Codec | None = None,
    ) -> tuple[JournalWriter, Continuation]:
        """Continue the journal at ``path`` in place, as a continuous journal: its
        trailer and any half-written frame are cut off and the next event follows its
        last complete one. ``topics`` must be the journal's own (its header's list), in
        the same order. Returns the writer and where the journal had ended."""
        found = continuation(path)
        names = list(topics)
        if found.header["topics"] != names:
            raise JournalError(
                f"{path}: cannot continue a journal of other topics (it has "
                f"{found.header['topics']}, the writer {names})"
            )
        return cls(path, names, codec=codec, continuous=True, _continue=found), found

    def write(self, topic_index: int, clock_ns: int, event: Event) -> None:
        self._buffer += _frame(topic_index, clock_ns, self.codec.encode(event))
        self.events += 1
        self._last_clock = clock_ns
        if len(self._buffer) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._file is not None and self._buffer:
            self._file.write(self._buffer)
            self._file.flush()
            self._buffer.clear()

    def close(self, *, complete: bool = True, reason: str | None = None) -> Path:
        """Write the trailer, fsync and rename the journal to its final name.

        If that fails, the partial journal stays where it is (it can be recovered) and
        the error propagates.
        """
        if self._file is None:
            return self.path
        trailer = msgspec.msgpack.encode(
            {"events": self.events, "complete": complete, "reason": reason}
        )
        self._buffer += _frame(_TRAILER, self._last_clock, trailer)
        try:
            self.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._file = None
        if self.partial != self.path:
            os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Stop writing; what was written stays in the partial journal."""
        if self._file is not None:
            try:
                self.flush()
            finally:
                self._file.close()
                self._file = None


# --------------------------------------------------------------------------- reading


class JournalReader:
    """Reads a journal: ``header``, then iterate for :class:`JournalEntry` items.

    After iterating, ``trailer`` is the trailer map, or None if the journal was cut short
    (``truncated`` is then True, and ``end`` is the offset of the first byte not read).
    Corruption raises :class:`JournalError` naming the file and the byte offset.
    """

    def __init__(self, path: str | Path, *, codec: Codec | None = None) -> None:
        self.path = Path(path)
        self.codec = codec or Codec()
        self.trailer: dict[str, Any] | None = None
        self.truncated = False
        self.end = 0
        with open(self.path, "rb") as handle:
            self.header, self._offset = self._read_header(handle)
        self.topics: list[str] = self.header["topics"]

    def error(self, offset: int, what: str) -> JournalError:
        """The error for corruption at byte ``offset``."""
        return JournalError(f"{self.path}: corrupt journal at byte {offset}: {what}")

    def _read_header(self, handle: IO[bytes]) -> tuple[dict[str, Any], int]:
        magic = handle.read(len(MAGIC))
        if magic not in (MAGIC, _MAGIC_V1):
            raise JournalError(f"{self.path} is not an ml4t journal (bad magic {magic[:8]!r})")
        self._v1 = magic == _MAGIC_V1
        prefix = _LEN if self._v1 else _HEADER
        raw = handle.read(prefix.size)
        if len(raw) < prefix.size:
            raise JournalError(f"{self.path}: the journal header is cut short")
        size, *crc = prefix.unpack(raw)
        start = len(MAGIC) + prefix.size
        payload = handle.read(size)
        if len(payload) < size:
            raise JournalError(
                f"{self.path}: the journal header is cut short "
                f"({len(payload)} of {size} bytes at byte {start})"
            )
        if crc and zlib.crc32(payload) != crc[0]:
            raise self.error(start, "the header's CRC does not match its bytes")
        try:
            header = msgspec.msgpack.decode(payload)
        except msgspec.DecodeError as exc:
            raise self.error(start, f"the header is not msgpack ({exc})") from exc
        if not isinstance(header, dict):
            raise self.error(start, f"the header is a {type(header).__name__}, not a map")
        if header.get("format") != (1 if self._v1 else FORMAT_VERSION):
            raise JournalError(
                f"{self.path}: journal format {header.get('format')!r} is not supported "
                f"(this ml4t reads formats 1 and {FORMAT_VERSION})"
            )
        topics = header.get("topics")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise self.error(start, f"the header's topics are not a list of names: {topics!r}")
        return header, start + size

    def _frames(self, handle: IO[bytes], *, payloads: bool = True) -> Iterator[_Frame]:
        """Every event frame after the header, checked; sets ``trailer``, ``truncated``
        and ``end``. Without ``payloads`` (and on format 1) event bytes are skipped."""
        self.trailer, self.truncated = None, False
        file_size = os.fstat(handle.fileno()).st_size
        layout = _FRAME_V1 if self._v1 else _FRAME
        frame_size, check = layout.size, not self._v1
        offset, events, previous = self._offset, 0, None
        handle.seek(offset)
        while True:
            self.end = offset
            head = handle.read(frame_size)
            if len(head) < frame_size:
                self.truncated = True
                return
            size, index, clock, *crc = layout.unpack(head)
            start = offset + frame_size
            if start + size > file_size:
                self.truncated = True
                return
            if index == _TRAILER or payloads or check:
                data = handle.read(size)
            else:
                data = b""
                handle.seek(size, os.SEEK_CUR)
            if check and zlib.crc32(data, zlib.crc32(head[:14])) != crc[0]:
                raise self.error(offset, f"frame #{events}'s CRC does not match its bytes")
            if index == _TRAILER:
                self.end = start + size
                self.trailer = self._check_trailer(data, offset, events)
                if self.end != file_size:
                    raise self.error(
                        self.end, f"{file_size - self.end} bytes after the journal's trailer"
                    )
                return
            if index >= len(self.topics):
                raise self.error(
                    offset,
                    f"frame #{events} names topic #{index}; the header lists {len(self.topics)}",
                )
            if previous is not None and clock < previous:
                raise self.error(
                    offset,
                    f"frame #{events}'s clock {clock} is before the previous "
                    f"frame's {previous}; a journal's clock never goes back",
                )
            yield _Frame(offset, index, clock, data)
            events, previous, offset = events + 1, clock, start + size

    def _check_trailer(self, data: bytes, offset: int, events: int) -> dict[str, Any]:
        try:
            trailer = msgspec.msgpack.decode(data)
        except msgspec.DecodeError as exc:
            raise self.error(offset, f"the trailer is not msgpack ({exc})") from exc
        if not isinstance(trailer, dict) or not isinstance(trailer.get("complete"), bool):
            raise self.error(offset, f"the trailer is not a map with 'complete': {trailer!r}")
        if trailer.get("events") != events:
            raise self.error(
                offset,
                f"the trailer counts {trailer.get('events')!r} events; the journal holds {events}",
            )
        return trailer

    def scan(self) -> tuple[int, int | None, dict[str, Any] | None, bool]:
        """(events, first clock, trailer, truncated) without decoding events.

        The frames' structure (and on format 2 their CRCs) are checked as in iteration.
        """
        events, first = 0, None
        with open(self.path, "rb") as raw:
            handle = io.BufferedReader(raw, buffer_size=1 << 20)
            for frame in self._frames(handle, payloads=False):
                events += 1
                first = frame.clock if first is None else first
        return events, first, self.trailer, self.truncated

    def __iter__(self) -> Iterator[JournalEntry]:
        topics, decode = self.topics, self.codec.decode
        with open(self.path, "rb") as raw:
            handle = io.BufferedReader(raw, buffer_size=1 << 20)
            for number, frame in enumerate(self._frames(handle)):
                try:
                    event = decode(frame.data)
                except CodecError as exc:
                    raise self.error(
                        frame.offset, f"frame #{number} ({topics[frame.topic_index]}): {exc}"
                    ) from exc
                yield JournalEntry(topics[frame.topic_index], frame.clock, event)

    def entries(
        self,
        *,
        topics: Iterable[str] | None = None,
        symbols: Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
    ) -> Iterator[JournalEntry]:
        """Entries filtered by topic name, symbol and clock time (``start <= t <= end``).

        A market batch passes the symbol filter if any of its rows does, and comes with
        its frame reduced to those rows.
        """
        wanted_topics = set(topics) if topics is not None else None
        wanted = set(symbols) if symbols is not None else None
        lo = to_ns(start) if start is not None else None
        hi = to_ns(end) if end is not None else None
        for entry in self:
            if lo is not None and entry.clock_ns < lo:
                continue
            if hi is not None and entry.clock_ns > hi:
                break
            if wanted_topics is not None and entry.topic not in wanted_topics:
                continue
            if wanted is not None:
                kept = _only_symbols(entry, wanted)
                if kept is None:
                    continue
                entry = kept
            yield entry


def _only_symbols(entry: JournalEntry, wanted: set[str]) -> JournalEntry | None:
    event = entry.event
    if isinstance(event, MarketBatch):
        frame = event.frame.filter(pl.col("symbol").cast(pl.String).is_in(sorted(wanted)))
        if frame.height == 0:
            return None
        batch = MarketBatch(
            ts_event=event.ts_event, ts_init=event.ts_init, frame=frame, context=event.context
        )
        return JournalEntry(entry.topic, entry.clock_ns, batch)
    symbol = getattr(event, "symbol", None)
    return entry if symbol in wanted else None


# --------------------------------------------------------------------------- recover


class Recovery(msgspec.Struct, kw_only=True):
    """What :func:`recover` kept: ``events`` complete events written to ``path``, and the
    ``dropped_bytes`` of ``source`` after the last of them, with the ``reason``."""

    source: str
    path: str
    events: int
    dropped_bytes: int
    reason: str


def recover(path: str | Path, output: str | Path | None = None) -> Recovery:
    """Turn a killed run's partial journal into a readable one (``ml4t journal recover``).

    Every complete, valid event up to where the writer stopped is copied byte for byte
    to ``output`` (by default the final name, ``journal.ml4tj`` for
    ``journal.ml4tj.<pid>.partial``), followed by a trailer marking the run incomplete
    with the reason. An existing file is never overwritten and ``path`` is kept.
    """
    source = Path(path)
    target = Path(output) if output is not None else _final_name(source)
    if target.exists():
        raise JournalError(f"{target} already exists; name another file with --output")
    reader = JournalReader(source)
    events, clock, end, problem = 0, 0, reader._offset, None
    with open(source, "rb") as raw:
        handle = io.BufferedReader(raw, buffer_size=1 << 20)
        try:
            for frame in reader._frames(handle):
                reader.codec.decode(frame.data)
                events, clock, end = events + 1, frame.clock, handle.tell()
        except (JournalError, CodecError) as exc:
            problem = str(exc)
        size = os.fstat(raw.fileno()).st_size
    if problem is None and reader.trailer is not None:
        raise JournalError(f"{source} is a complete journal (it has its trailer); nothing to do")
    dropped = size - end
    why = problem or f"the writer stopped at byte {size}, inside or before a frame"
    reason = f"recovered from {source.name}: {why}; {dropped} bytes after byte {end} dropped"
    trailer = msgspec.msgpack.encode({"events": events, "complete": False, "reason": reason})
    if reader._v1:
        closing = _FRAME_V1.pack(len(trailer), _TRAILER, clock) + trailer
    else:
        closing = _frame(_TRAILER, clock, trailer)
    with open(source, "rb") as kept_part, atomic_open(target) as out:
        remaining = end
        while remaining:
            block = kept_part.read(min(remaining, 1 << 20))
            out.write(block)
            remaining -= len(block)
        out.write(closing)
    return Recovery(
        source=str(source), path=str(target), events=events, dropped_bytes=dropped, reason=reason
    )
