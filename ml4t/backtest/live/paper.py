"""Paper-trading replay: the backtest's graph on a wall clock (``ml4t paper CONFIG``).

The same components as ``ml4t run`` (feed, broker, portfolio, risk manager, strategies,
recorder) run with the sequenced dispatcher on a :class:`~ml4t.backtest.live.ReplayClock`
whose origin is the first data timestamp: the parquet is replayed at ``speed`` x real
time (``max``: as fast as the wall clock allows), with a live terminal view beside it.
Because delivery order comes from the data and *now* steps with the replayed market
time, the trades equal the backtest's at any speed; the journal (written by default)
lets ``ml4t journal diff`` prove it event by event.

While the replay waits more than a couple of seconds for its next bar (an overnight gap
is 105 s at x600), the view says so: ``market closed until ... (next bar in N s ...)``.
``skip_closed`` (``--skip-closed``) jumps the wall clock over closed-market idle time by
the rule in :mod:`~ml4t.backtest.live._idle`; the trades do not change. Without the view
(``--no-view``, or no terminal) the command prints a line per fill and per wait instead.

Ctrl-C (or SIGTERM) stops the session cleanly: every open order is cancelled through the
normal order path (so the cancellations are recorded), the results written so far are
flushed and marked incomplete (lots still open become trades with exit reason
``open_at_stop``), and the command exits with status 130. A second Ctrl-C cancels at
once (results are still flushed and marked incomplete). ``docs/paper.md`` is the guide.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import msgspec

from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.config import RunConfig, load_config
from ml4t.backtest.engine import BacktestEngine, BacktestResults
from ml4t.backtest.errors import ConfigError, DataValidationError
from ml4t.backtest.events import (
    CancelOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from ml4t.backtest.live._idle import Idle, IdleTime, duration
from ml4t.backtest.live._runner import SessionRunner, common_lines
from ml4t.backtest.live.clocks import ReplayClock
from ml4t.backtest.live.monitor import LiveView, PaperMonitor
from ml4t.backtest.runtime import RunOutcome, Runtime
from ml4t.backtest.topics import FILLS, ORDER_EVENTS, ORDER_REQUESTS

__all__ = [
    "OpenOrderGuard",
    "PaperSession",
    "add_cli",
    "paper_config",
    "parse_speed",
    "summary_lines",
]


def parse_speed(value: str | float) -> float:
    """``"max"`` -> inf; a positive number -> itself."""
    if isinstance(value, str) and value.strip().lower() == "max":
        return math.inf
    try:
        speed = float(value)
    except ValueError:
        raise ConfigError(f"speed must be a positive number or 'max', not {value!r}") from None
    if not speed > 0 or math.isnan(speed):
        raise ConfigError(f"speed must be a positive number or 'max', not {value!r}")
    return speed


class OpenOrderGuard(Component):
    """Tracks the broker's open orders from events; cancels them all on request (a relay:
    its cancels name the strategies that own the orders)."""

    relay = True

    def __init__(self, name: str = "open-order-guard") -> None:
        super().__init__(name)
        self.open: dict[str, str] = {}  # order id -> strategy id

    @on(ORDER_EVENTS, phase=Phase.RECORD)
    def _on_order_event(self, event: Any) -> None:
        if isinstance(event, OrderAccepted):
            self.open[event.order_id] = event.strategy_id
        elif isinstance(event, OrderCancelled | OrderExpired | OrderRejected):
            self.open.pop(event.order_id, None)

    @on(FILLS, phase=Phase.RECORD)
    def _on_fill(self, fill: OrderFilled) -> None:
        if fill.remaining_quantity == 0.0:
            self.open.pop(fill.order_id, None)

    def cancel_open_orders(self) -> list[str]:
        """Request the cancellation of every open order (ids returned, in id order)."""
        now = self.now_ns()
        ids = sorted(self.open)
        for order_id in ids:
            self.publish(
                ORDER_REQUESTS,
                CancelOrder(
                    ts_event=now, ts_init=now, order_id=order_id, strategy_id=self.open[order_id]
                ),
            )
        return ids


def paper_config(
    config: RunConfig | str | Path,
    *,
    overrides: list[str] | None = None,
    output: str | Path | None = None,
    journal: bool = True,
) -> RunConfig:
    """The run config for a paper session: results in ``output`` (default: the config's
    ``output_dir`` + ``-paper``, so a backtest's results are not overwritten), with the
    event journal on unless ``journal=False``."""
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides=overrides or [])
    reporting = config.reporting
    out = str(output) if output is not None else None
    if out is None and reporting.output_dir is not None:
        base = Path(reporting.output_dir)
        out = str(base.with_name(base.name + "-paper"))
    reporting = msgspec.structs.replace(reporting, output_dir=out, journal=journal)
    return msgspec.structs.replace(config, reporting=reporting)


class PaperSession(SessionRunner):
    """One paper replay of ``engine``'s graph at ``speed`` x real time (inf: max).

    ``view``: the live panel on stderr (None: only on a terminal). ``skip_closed``: skip
    closed-market idle time (:mod:`~ml4t.backtest.live._idle`). ``echo``: where a session
    without the view writes a line per fill and per idle wait (None: nowhere). Running,
    the view and Ctrl-C are :class:`~ml4t.backtest.live._runner.SessionRunner`'s, as
    for ``ml4t live``.
    """

    def __init__(
        self,
        engine: BacktestEngine,
        *,
        speed: float = 1.0,
        view: bool | None = None,
        handle_signals: bool = False,
        skip_closed: bool = False,
        echo: TextIO | None = None,
    ) -> None:
        super().__init__(engine, handle_signals=handle_signals)
        self.speed = speed
        self.skip_closed = skip_closed
        self.idle = IdleTime(speed=speed, calendar=engine.calendar, skip=skip_closed)
        shown = sys.stderr.isatty() if view is None else view
        self.echo = None if shown else echo
        self.guard = OpenOrderGuard()
        self.monitor = PaperMonitor(echo=self.echo)
        engine.add(self.guard)
        engine.add(self.monitor)
        self.view = LiveView(
            self.monitor,
            title=f"ml4t paper x{speed:g}",
            enabled=shown,
            status=self.idle_status,
            echo=self.echo,
        )
        self.clock: ReplayClock | None = None
        self.cancelled_orders: list[str] = []

    @classmethod
    def from_config(
        cls,
        config: RunConfig | str | Path,
        *,
        speed: float = 1.0,
        overrides: list[str] | None = None,
        output: str | Path | None = None,
        journal: bool = True,
        **kwargs: Any,
    ) -> PaperSession:
        cfg = paper_config(config, overrides=overrides, output=output, journal=journal)
        return cls(BacktestEngine(cfg), speed=speed, **kwargs)

    def build(self) -> Runtime:
        feed = self.engine.feed
        prepare = getattr(feed, "prepare", None)
        if prepare is not None:
            prepare()
        origin = getattr(feed, "first_ts", None)
        if origin is None:
            raise DataValidationError(
                "a paper replay needs a feed with data (its first_ts is unknown); check the "
                "data paths and the start and end dates"
            )
        skip = self._skip if self.skip_closed else None
        self.clock = ReplayClock(speed=self.speed, origin_ns=origin, skip=skip)
        self.runtime = self.engine.build(clock=self.clock)
        return self.runtime

    def idle_status(self) -> Idle | None:
        """What the running replay waits for, if it is idle (None: not idle, or stopped)."""
        clock, runtime = self.clock, self.runtime
        if clock is None or runtime is None or self.interrupted is not None:
            return None
        if runtime.outcome is not RunOutcome.RUNNING:
            return None
        return self.idle.status(clock.wall_ns(), clock.next_alarm_ns())

    def _skip(self, wall_ns: int, next_ns: int) -> int | None:
        """The clock's skip rule: :meth:`IdleTime.skip_to`, announced on the view or echo."""
        target = self.idle.skip_to(wall_ns, next_ns)
        if target is not None:
            fmt = self.idle.format
            note = (
                f"skipped closed market {fmt(wall_ns)} to {fmt(target)} "
                f"({duration(target - wall_ns)})"
            )
            self.monitor.note = note
            if self.echo is not None:
                self.echo.write(note + "\n")
                self.echo.flush()
        return target

    def interrupt(self, why: str = "interrupted") -> None:
        """Stop cleanly: cancel open orders, mark the results incomplete, stop the graph.

        Safe to call from another task of the same event loop (a signal handler): the
        cancellations are delivered in the runtime's stop-time drain, before the recorder
        finalises its tables.
        """
        super().interrupt(why)

    def _stop(self, why: str) -> None:
        assert self.runtime is not None
        self.cancelled_orders = self.guard.cancel_open_orders()
        self.mark_incomplete(f"the paper session was {why} before the end of its data")
        self.runtime.stop()


# --------------------------------------------------------------------------- command line


def summary_lines(session: PaperSession, results: BacktestResults) -> list[str]:
    """What ``ml4t paper`` prints at the end: the headline, the market time replayed,
    fills with their costs, trades by exit reason, P&L, the open orders cancelled at a
    stop and the closed market skipped."""
    state = "complete" if results.complete else "incomplete"
    lines = [
        f"paper x{session.speed:g}: {results.outcome.value} ({state}), "
        f"{results.bar_events:,} bar-events in {results.elapsed_time:.2f} s, "
        f"{results.trades.height:,} trades, final equity {results.final_equity:,.2f}"
    ]
    lines += common_lines(session.monitor, results, session.idle.format)
    if session.interrupted is not None:
        lines.append(
            f"  stopped      {session.interrupted}: "
            f"{len(session.cancelled_orders)} open order(s) cancelled"
        )
    clock = session.clock
    if session.skip_closed and clock is not None:
        lines.append(
            f"  skipped      {duration(clock.skipped_ns)} of closed market in {clock.skips} gap(s)"
        )
    if results.output_dir is not None:
        lines.append(f"results: {results.output_dir}")
    return lines


def add_cli(commands: Any) -> None:
    """Add ``ml4t paper CONFIG --speed N|max`` to the ``ml4t`` command."""
    paper = commands.add_parser(
        "paper", help="paper-trade a config: replay its data on the wall clock at N x speed"
    )
    paper.add_argument("config", help="the run's YAML file")
    paper.add_argument(
        "--speed", default="1", help="replay speed: a multiple of real time, or 'max' (default 1)"
    )
    paper.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    paper.add_argument("--output", help="results directory (default: OUTPUT_DIR-paper)")
    paper.add_argument(
        "--journal",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the event journal (default: on)",
    )
    paper.add_argument(
        "--view",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the live view (default: only on a terminal); without it, print a line "
        "per fill and per idle wait",
    )
    paper.add_argument(
        "--skip-closed",
        action="store_true",
        help="jump over waits of more than 2 s while the market is closed (per "
        "backtest.calendar; without one, every such wait), landing 1 s before the next "
        "bar or the open; trades do not change (docs/paper.md)",
    )
    paper.set_defaults(func=_cli_paper)


def _cli_paper(args: Any) -> int:
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise ConfigError(f"--speed: {exc}") from None
    session = PaperSession.from_config(
        args.config,
        speed=speed,
        overrides=list(args.set or []),
        output=args.output,
        journal=args.journal,
        view=args.view,
        handle_signals=True,
        skip_closed=args.skip_closed,
        echo=sys.stdout,
    )
    results = session.run_sync()
    sys.stdout.write("\n".join(summary_lines(session, results)) + "\n")
    sys.stdout.flush()
    if session.interrupted is not None:
        print(
            f"ml4t: {session.interrupted}: {len(session.cancelled_orders)} open order(s) "
            "cancelled; partial results were flushed and marked incomplete",
            file=sys.stderr,
        )
        return 143 if session.interrupted.startswith("terminated") else 130
    return 0 if results.outcome is RunOutcome.COMPLETED else 1
