"""The ``ml4t`` command."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from ml4t.backtest import __version__

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    """Run what exists of the framework end to end on generated events."""
    from ml4t.backtest import Component, Event, Runtime, Topic, on
    from ml4t.backtest.clock import AlarmPriority

    class Tick(Event, frozen=True, kw_only=True):
        n: int

    ticks = Topic("demo.ticks", Tick)
    echoes = Topic("demo.echoes", Tick)

    class Source(Component):
        def on_start(self) -> None:
            for i in range(args.events):
                self.clock.schedule(i, lambda i=i: self._emit(i), priority=AlarmPriority.DATA)

        def _emit(self, i: int) -> None:
            self.publish(ticks, Tick(ts_event=self.now_ns(), n=i))

    class Echo(Component):
        @on(ticks)
        def handle(self, event: Tick) -> None:
            self.publish(echoes, Tick(ts_event=event.ts_event, n=event.n))

    class Count(Component):
        seen = 0

        @on(echoes)
        def handle(self, event: Tick) -> None:
            self.seen += 1

    runtime = Runtime(strict=True)
    runtime.add(Source("source"))
    runtime.add(Echo("echo"))
    counter = runtime.add(Count("count"))
    start = time.perf_counter()
    runtime.run_sync()
    elapsed = time.perf_counter() - start
    print(f"ml4t {__version__}: ran a 3-component graph in strict codec mode")
    print(f"  {counter.seen:,} events through the graph in {elapsed:.2f} s")
    print(f"  outcome: {runtime.outcome}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml4t", description="ml4t backtesting framework")
    parser.add_argument("--version", action="version", version=f"ml4t {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the built-in demo")
    demo.add_argument("--events", type=int, default=10_000)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
