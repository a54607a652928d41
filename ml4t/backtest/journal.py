"""The event journal as a component and its tools: :class:`JournalRecorder` writes every
bus event of a run (the file format, writer and reader are
:mod:`ml4t.backtest.record.journal`), and :func:`summary`, :func:`show`, :func:`diff` and
:func:`replay` read one back.
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec
import polars as pl

from ml4t.backtest._commandline import Output, add_output_flags, positive_int, time_flag
from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Phase, Topic
from ml4t.backtest.clock import AlarmPriority, SimulatedClock
from ml4t.backtest.codec import Codec
from ml4t.backtest.component import Component
from ml4t.backtest.errors import ComponentError, ConfigError
from ml4t.backtest.events import Event, MarketBatch, SessionResumed, event_types
from ml4t.backtest.record import Recorder, RecorderResults, ReportingConfig
from ml4t.backtest.record.journal import (
    JOURNAL_FILE,
    STANDARD_TOPICS,
    Continuation,
    JournalEntry,
    JournalError,
    JournalReader,
    JournalWriter,
    Recovery,
    partial_path,
    recover,
)
from ml4t.backtest.record.recorder import outcome_of
from ml4t.backtest.runtime import Runtime
from ml4t.backtest.topics import RESUMES

__all__ = [
    "JOURNAL_FILE",
    "STANDARD_TOPICS",
    "Continuation",
    "JournalDiff",
    "JournalEntry",
    "JournalError",
    "JournalReader",
    "JournalRecorder",
    "JournalWriter",
    "Recovery",
    "diff",
    "format_diff",
    "partial_path",
    "recover",
    "replay",
    "show",
    "summary",
]


class JournalRecorder(Component):
    """Journals every event on ``topics`` (all standard topics by default) to ``path``.

    ``header`` goes into the journal's header: pass ``{"config": run_config}`` (the
    run's config as plain data) so that :func:`replay` can rebuild the recorder. Add it to
    the graph after the :class:`~ml4t.backtest.record.Recorder`: components stop in
    reverse order, so the journal is complete when the recorder writes its manifest.

    ``continuous``: write in place, every event straight to the file (a live session's
    journal: a kill loses nothing written). ``resume``: continue the journal already at
    ``path`` (:meth:`JournalWriter.append`); nothing is written until the graph
    publishes :class:`~ml4t.backtest.events.SessionResumed` (the journal's events were
    replayed through it), which is the first event appended: the resume marker.
    ``continued`` then says where the journal had ended.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        topics: Iterable[Topic[Any]] = STANDARD_TOPICS,
        header: Mapping[str, Any] | None = None,
        name: str = "journal",
        phase: int = Phase.RECORD,
        continuous: bool = False,
        resume: bool = False,
    ) -> None:
        super().__init__(name)
        self.path = Path(path)
        self.topics = tuple(topics)
        self.header = dict(header or {})
        self.phase = phase
        self.continuous = continuous or resume
        self.resume = resume
        self.writer: JournalWriter | None = None
        self.continued: Continuation | None = None
        self._paused = resume
        self._failed: str | None = None
        if resume and RESUMES not in self.topics:
            raise ConfigError(f"a resumed journal needs the {RESUMES.name!r} topic")

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        for index, topic in enumerate(self.topics):

            def record(event: Event, _index: int = index) -> None:
                writer = self.writer
                if writer is None:
                    return
                if self._paused:
                    if not isinstance(event, SessionResumed):
                        return  # replayed from this very journal: it holds them already
                    self._paused = False
                writer.write(_index, self.context.clock.now_ns(), event)

            yield topic, record, self.phase

    def on_start(self) -> None:
        names = [topic.name for topic in self.topics]
        if self.resume:
            self.writer, self.continued = JournalWriter.append(
                self.path, names, codec=self.bus.codec
            )
            return
        self.writer = JournalWriter(
            self.path,
            names,
            header=self.header,
            codec=self.bus.codec,
            continuous=self.continuous,
        )

    def on_stop(self) -> None:
        if self.writer is None:
            return
        status, reason = outcome_of(self.context.stop_reason)
        self.writer.close(complete=status == "complete", reason=reason)


# --------------------------------------------------------------------------- inspect


def summary(path: str | Path) -> dict[str, Any]:
    """Header, event counts per topic, first and last clock time, completeness."""
    reader = JournalReader(path)
    counts: dict[str, int] = {}
    first = last = None
    for entry in reader:
        counts[entry.topic] = counts.get(entry.topic, 0) + 1
        first = entry.clock_ns if first is None else first
        last = entry.clock_ns
    header = {k: v for k, v in reader.header.items() if k not in ("config", "recorder")}
    return {
        "path": str(reader.path),
        "header": header,
        "events": sum(counts.values()),
        "by_topic": dict(sorted(counts.items())),
        "first": from_ns(first).isoformat() if first is not None else None,
        "last": from_ns(last).isoformat() if last is not None else None,
        "complete": bool(reader.trailer and reader.trailer.get("complete")),
        "truncated": reader.truncated,
        "resumes": counts.get(RESUMES.name, 0),
    }


def _describe(entry: JournalEntry, codec: Codec) -> dict[str, Any]:
    event = entry.event
    if isinstance(event, MarketBatch):
        body: Any = {
            "type": "MarketBatch",
            "ts_event": event.ts_event,
            "rows": event.frame.with_columns(pl.col("symbol").cast(pl.String)).to_dicts(),
            "context": event.context,
        }
    else:
        body = msgspec.json.decode(codec.encode_json(event))
    return {"clock": from_ns(entry.clock_ns).isoformat(), "topic": entry.topic, "event": body}


def show(
    path: str | Path,
    *,
    topics: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
    limit: int | None = None,
    out: IO[str] | None = None,
) -> int:
    """Print matching events as JSON lines (``ml4t journal show``); returns how many."""
    out = out or sys.stdout
    reader = JournalReader(path)
    encoder = msgspec.json.Encoder()
    shown = 0
    for entry in reader.entries(topics=topics, symbols=symbols, start=start, end=end):
        if limit is not None and shown >= limit:
            break
        out.write(encoder.encode(_describe(entry, reader.codec)).decode() + "\n")
        shown += 1
    return shown


# --------------------------------------------------------------------------- diff


class JournalDiff(msgspec.Struct, kw_only=True):
    """Where two journals part: ``index`` of the first differing event (None if they
    agree), the two events there (None where a journal ended), the ``context`` events
    before it (equal in both) and after it in each."""

    a: str
    b: str
    compared: int
    index: int | None = None
    event_a: dict[str, Any] | None = None
    event_b: dict[str, Any] | None = None
    fields: list[str] = msgspec.field(default_factory=list)
    before: list[dict[str, Any]] = msgspec.field(default_factory=list)
    after_a: list[dict[str, Any]] = msgspec.field(default_factory=list)
    after_b: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.index is None


class _Compared(NamedTuple):
    """An entry as :func:`diff` compares it: ``bar`` counts the market batches before it
    in its journal (0 before the first) and ``bar_ns`` is the last one's ``ts_event``;
    ``bar`` stands in for the clock when comparing ``by_bar``."""

    entry: JournalEntry
    bar: int
    bar_ns: int | None


_STAMPS = ("ts_event", "ts_init")


def _same(x: _Compared | None, y: _Compared | None, by_bar: bool) -> bool:
    if x is None or y is None:
        return x is y
    ex, ey = x.entry, y.entry
    if not by_bar:
        return ex.topic == ey.topic and ex.clock_ns == ey.clock_ns and ex.event == ey.event
    return ex.topic == ey.topic and x.bar == y.bar and not _event_fields(ex, ey, _STAMPS)


def _event_fields(x: JournalEntry, y: JournalEntry, skip: tuple[str, ...] = ()) -> list[str]:
    """The event fields that differ (``type`` when the types do), but those in ``skip``."""
    ex, ey = x.event, y.event
    if type(ex) is not type(ey):
        return ["type"]
    names = []
    for field in ex.__struct_fields__:
        if field in skip:
            continue
        vx, vy = getattr(ex, field), getattr(ey, field)
        same = vx.equals(vy) if isinstance(vx, pl.DataFrame) else vx == vy
        if not same:
            names.append(f"event.{field}")
    return names


def _differing_fields(x: _Compared | None, y: _Compared | None, by_bar: bool) -> list[str]:
    if x is None or y is None:
        return ["<end of journal>"]
    if by_bar:
        names = ["topic"] if x.entry.topic != y.entry.topic else []
        names += ["bar"] if x.bar != y.bar else []
        return names + _event_fields(x.entry, y.entry, _STAMPS)
    names = [n for n in ("topic", "clock_ns") if getattr(x.entry, n) != getattr(y.entry, n)]
    return names + _event_fields(x.entry, y.entry)


def _describe_compared(item: _Compared, codec: Codec, by_bar: bool) -> dict[str, Any]:
    described = _describe(item.entry, codec)
    if by_bar:
        described["bar"] = item.bar
        described["bar_time"] = from_ns(item.bar_ns).isoformat() if item.bar_ns else None
    return described


def diff(
    a: str | Path,
    b: str | Path,
    *,
    topics: Iterable[str] | None = None,
    ignore_topics: Iterable[str] = (),
    kinds: Iterable[str] | None = None,
    by_bar: bool = False,
    context: int = 3,
) -> JournalDiff:
    """Compare two journals event by event (topic, clock time and event) and return the
    first divergence with the ``context`` events around it (``ml4t journal diff``).

    Only ``topics`` are compared when given; ``ignore_topics`` are skipped; ``kinds``
    (event type names, ``SubmitOrder``) keeps only those events. ``by_bar`` compares
    each event's *bar* (how many market batches came before it in its journal) instead
    of its clock time, and leaves the events' own stamps (``ts_event``, ``ts_init``) out:
    a live session's clock is the wall time at which a bar arrived (a scripted feed
    stamps its bars with it too), a backtest's the bar's time, so this is how their
    decisions line up (``--kind SubmitOrder --by-bar``: the orders each bar made). The
    report gives each event's ``bar`` and ``bar_time`` (that batch's ``ts_event``).
    Streams both files: memory is bounded by ``context``, not by the journals' size.
    """
    ra, rb = JournalReader(a), JournalReader(b)
    wanted = set(topics) if topics is not None else None
    skip = set(ignore_topics)
    types = set(kinds) if kinds is not None else None

    def stream(reader: JournalReader) -> Iterator[_Compared]:
        bar, bar_ns = 0, None
        for entry in reader:
            event = entry.event
            if isinstance(event, MarketBatch):
                bar, bar_ns = bar + 1, event.ts_event
            if entry.topic in skip or (wanted is not None and entry.topic not in wanted):
                continue
            if types is not None and type(event).__name__ not in types:
                continue
            yield _Compared(entry, bar, bar_ns)

    sa, sb = stream(ra), stream(rb)
    before: deque[_Compared] = deque(maxlen=max(context, 0))
    result = JournalDiff(a=str(ra.path), b=str(rb.path), compared=0)

    def described(items: Iterable[_Compared], codec: Codec) -> list[dict[str, Any]]:
        return [_describe_compared(item, codec, by_bar) for item in items]

    for index, (x, y) in enumerate(itertools.zip_longest(sa, sb)):
        if _same(x, y, by_bar):
            before.append(x)
            result.compared = index + 1
            continue
        result.index = index
        result.compared = index
        result.fields = _differing_fields(x, y, by_bar)
        result.event_a = described([x], ra.codec)[0] if x is not None else None
        result.event_b = described([y], rb.codec)[0] if y is not None else None
        result.before = described(before, ra.codec)
        result.after_a = described(itertools.islice(sa, context), ra.codec)
        result.after_b = described(itertools.islice(sb, context), rb.codec)
        break
    return result


def format_diff(result: JournalDiff) -> str:
    """The human report of :func:`diff`."""
    enc = msgspec.json.Encoder()

    def line(prefix: str, item: dict[str, Any] | None) -> str:
        if item is None:
            return f"{prefix} <end of journal>"
        return f"{prefix} {enc.encode(item).decode()}"

    if result.equal:
        return f"journals agree: {result.compared:,} events\n  A: {result.a}\n  B: {result.b}"
    out = [
        f"first divergence at event #{result.index} (after {result.compared:,} equal events): "
        f"{', '.join(result.fields)}",
        f"  A: {result.a}",
        f"  B: {result.b}",
    ]
    if result.before:
        out.append("before (equal in both):")
        out += [line("   ", item) for item in result.before]
    out.append(line("A>", result.event_a))
    out.append(line("B>", result.event_b))
    if result.after_a or result.after_b:
        out.append("after, in A:")
        out += [line("  A", item) for item in result.after_a]
        out.append("after, in B:")
        out += [line("  B", item) for item in result.after_b]
    return "\n".join(out)


# --------------------------------------------------------------------------- replay


class _Replayer(Component):
    """Publishes journaled events at their clock times, one clock time per alarm."""

    relay = True  # it republishes the recorded run, every strategy's requests included

    def __init__(self, entries: Iterator[tuple[Topic[Any], JournalEntry]]) -> None:
        super().__init__("journal-replay")
        self._entries = entries
        self._next: tuple[Topic[Any], JournalEntry] | None = None
        self.published = 0

    def on_start(self) -> None:
        self._next = next(self._entries, None)
        self._schedule()

    def _schedule(self) -> None:
        if self._next is not None:
            self.clock.schedule(self._next[1].clock_ns, self._fire, priority=AlarmPriority.DATA)

    def _fire(self) -> None:
        now = self.clock.now_ns()
        item = self._next
        while item is not None and item[1].clock_ns == now:
            self.publish(item[0], item[1].event)
            self.published += 1
            item = next(self._entries, None)
        self._next = item
        self._schedule()


def replay(
    path: str | Path,
    output_dir: str | Path | None = None,
    *,
    reporting: ReportingConfig | None = None,
    topics: Iterable[Topic[Any]] = STANDARD_TOPICS,
    strict: bool = False,
) -> RecorderResults:
    """Rebuild a run's results from its journal alone (``ml4t replay JOURNAL``).

    The recorder is rebuilt from the journal alone (:meth:`Recorder.for_replay`: the
    header's run config, then the journaled ``SessionStarted``), writing to
    ``output_dir`` (in memory if None); ``reporting`` overrides the journaled reporting
    section. Each event is published on its topic at its journaled clock time on a
    simulated clock.
    """
    reader = JournalReader(path)
    recorder = Recorder.for_replay(reader.header, output_dir=output_dir, reporting=reporting)
    by_name = {topic.name: topic for topic in topics}
    missing = sorted(set(reader.topics) - set(by_name))
    if missing:
        recorder.manifest_extra["replay_skipped_topics"] = missing
    _, first, trailer, truncated = reader.scan()
    if truncated:
        recorder.mark_incomplete(f"the journal {reader.path} is cut short (no trailer)")
    elif trailer is not None and not trailer.get("complete", False):
        why = trailer.get("reason") or "unknown reason"
        recorder.mark_incomplete(f"the journaled run did not complete: {why}")
    entries = ((by_name[e.topic], e) for e in reader if e.topic in by_name)
    runtime = Runtime(clock=SimulatedClock(first or 0), strict=strict)
    runtime.add(_Replayer(entries))
    runtime.add(recorder)
    try:
        runtime.run_sync()
    except ComponentError as exc:
        if isinstance(exc.__cause__, JournalError):  # an event the codec refused
            raise exc.__cause__ from None
        raise
    assert recorder.results is not None
    return recorder.results


# --------------------------------------------------------------------------- command line


def add_cli(commands: Any) -> None:
    """Add ``journal show|summary|diff|recover`` and ``replay`` to the ``ml4t`` command.

    A JOURNAL argument is a journal file or a results directory holding one
    (``journal.ml4tj``). A missing journal, an unknown ``--topic`` and a ``--start`` or
    ``--end`` without a timezone are one-line errors (exit 2).
    """
    journal = commands.add_parser("journal", help="inspect an event journal")
    actions = journal.add_subparsers(dest="journal_command", required=True)
    show = actions.add_parser("show", help="print events as JSON lines")
    show.add_argument("journal", help="a journal file, or a results directory holding one")
    show.add_argument("--topic", action="append", help="only this topic (repeatable)")
    show.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    show.add_argument("--start", help="from this time (ISO 8601 with a timezone: ...T14:30Z)")
    show.add_argument("--end", help="up to this time (ISO 8601 with a timezone)")
    show.add_argument("--limit", type=positive_int, help="at most this many events")
    show.set_defaults(func=_cli_journal_show)
    summary = actions.add_parser("summary", help="header, counts per topic, time span")
    summary.add_argument("journal", help="a journal file, or a results directory holding one")
    summary.set_defaults(func=_cli_journal_summary)
    diff = actions.add_parser("diff", help="compare two journals; show the first divergence")
    diff.add_argument("a", help="a journal (e.g. the backtest's)")
    diff.add_argument("b", help="another journal (e.g. the paper replay's)")
    diff.add_argument("--topic", action="append", help="compare only this topic (repeatable)")
    diff.add_argument("--ignore-topic", action="append", default=[], help="skip this topic")
    diff.add_argument(
        "--kind", action="append", help="compare only this event type, e.g. SubmitOrder"
    )
    diff.add_argument(
        "--by-bar",
        action="store_true",
        help="line events up by the bar they followed, not the clock (a live session's "
        "clock is the wall time; the events' own stamps are then left out)",
    )
    diff.add_argument("--context", type=int, default=3, help="events shown around it")
    diff.set_defaults(func=_cli_journal_diff)
    recover = actions.add_parser(
        "recover", help="make a killed run's partial journal (*.partial) readable"
    )
    recover.add_argument("partial", help="e.g. RESULTS/journal.ml4tj.4711.partial")
    recover.add_argument("--output", help="where to write it (default: the journal's name)")
    recover.set_defaults(func=_cli_journal_recover)

    replay = commands.add_parser("replay", help="rebuild a run's results from its journal")
    replay.add_argument("journal", help="a journal file, or a results directory holding one")
    replay.add_argument(
        "--output",
        metavar="DIR",
        help=f"results directory to write (default: {REPLAY_DIR}/ beside the journal)",
    )
    replay.add_argument("--html", action="store_true", help="also write report.html")
    add_output_flags(replay)
    replay.set_defaults(func=_cli_replay)


REPLAY_DIR = "replay"
"""Where ``ml4t replay`` writes by default: this folder beside the journal."""


def _journal_file(path: str) -> Path:
    """The journal a JOURNAL argument names: the file, or a results directory's
    ``journal.ml4tj``; ConfigError (one line) when there is none."""
    given = Path(path)
    if given.is_dir():
        inside = given / JOURNAL_FILE
        if inside.is_file():
            return inside
        raise ConfigError(
            f"no journal in {path} (no {JOURNAL_FILE}); a run writes one with "
            "reporting.journal: true"
        )
    if not given.is_file():
        raise ConfigError(f"no journal at {path}: no such file")
    return given


def _check_topics(flag: str, asked: Iterable[str] | None, *paths: Path) -> None:
    """ConfigError (one line) naming the topics the journals hold, for one they do not."""
    if not asked:
        return
    known = sorted({t for path in paths for t in JournalReader(path).topics})
    unknown = [t for t in asked if t not in known]
    if unknown:
        raise ConfigError(
            f"{flag} {unknown[0]!r}: no such topic in {', '.join(dict.fromkeys(map(str, paths)))}; "
            f"topics: {', '.join(known)}"
        )


def _check_kinds(asked: Iterable[str] | None) -> None:
    """ConfigError (one line) for a ``--kind`` that names no event type."""
    known = {cls.__name__ for cls in event_types()}
    unknown = [k for k in asked or () if k not in known]
    if unknown:
        raise ConfigError(
            f"--kind {unknown[0]!r}: no such event type; e.g. SubmitOrder, OrderFilled, "
            "OrderCancelled, MarketBatch (ml4t.backtest.events)"
        )


def _cli_journal_show(args: Any) -> int:
    path = _journal_file(args.journal)
    _check_topics("--topic", args.topic, path)
    show(
        path,
        topics=args.topic,
        symbols=args.symbol,
        start=time_flag("--start", args.start),
        end=time_flag("--end", args.end),
        limit=args.limit,
    )
    return 0


def _cli_journal_summary(args: Any) -> int:
    found = summary(_journal_file(args.journal))
    print(msgspec.json.format(msgspec.json.encode(found), indent=2).decode())
    return 0


def _cli_journal_diff(args: Any) -> int:
    a, b = _journal_file(args.a), _journal_file(args.b)
    _check_topics("--topic", args.topic, a, b)
    _check_topics("--ignore-topic", args.ignore_topic, a, b)
    _check_kinds(args.kind)
    result = diff(
        a,
        b,
        topics=args.topic,
        ignore_topics=args.ignore_topic,
        kinds=args.kind,
        by_bar=args.by_bar,
        context=args.context,
    )
    print(format_diff(result))
    return 0 if result.equal else 1


def _cli_journal_recover(args: Any) -> int:
    if not Path(args.partial).is_file():
        raise ConfigError(f"no partial journal at {args.partial}: no such file")
    done = recover(args.partial, args.output)
    print(f"recovered {done.events:,} events into {done.path} ({done.reason})")
    return 0


def _cli_replay(args: Any) -> int:
    path = _journal_file(args.journal)
    output = Path(args.output) if args.output else path.parent / REPLAY_DIR
    results = replay(path, output)
    report = None
    if args.html:
        from ml4t.backtest.report import write_report  # the HTML report is optional here

        report = write_report(output, metrics=results.metrics)
    out, state = Output.of(args), "complete" if results.complete else "incomplete"
    trades = results.metrics.get("num_trades")
    out.say(f"replayed {path} into {output} ({state}, {trades} trades)", markup=False)
    facts = {"journal": str(path), "output": str(output), "complete": results.complete}
    report_path = str(report) if report is not None else None
    out.summary({"command": "replay", **facts, "report": report_path, "metrics": results.metrics})
    return 0 if results.complete else 1
