"""Events per second through a chain of 5 components on the bus.

A source publishes events on ``hop.0`` from clock alarms (10 per alarm); components 1-4
each handle ``hop.i-1`` and publish a new event on ``hop.i``; component 5 counts what
arrives. Each event that enters the chain is therefore published 5 times and delivered
5 times. Variants: sync handlers, async handlers, and strict mode (every publish encoded
and decoded by the msgpack codec).

    python -m benchmarks.bus            # runs every variant in a fresh child process
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from typing import Any

from ml4t.backtest import Component, Event, Phase, Runtime, Topic
from ml4t.backtest.clock import AlarmPriority

from ._harness import machine, machine_line, peak_rss_mb, run_child, write_section

CHAIN_LENGTH = 5
PER_ALARM = 10


class Msg(Event, frozen=True, kw_only=True):
    seq: int
    symbol: str
    price: float


HOPS = tuple(Topic(f"hop.{i}", Msg) for i in range(CHAIN_LENGTH))


class Source(Component):
    def __init__(self, alarms: int) -> None:
        super().__init__("source")
        self.alarms = alarms

    def on_start(self) -> None:
        self._next = 0
        self.clock.schedule(0, self._emit, priority=AlarmPriority.DATA)

    def _emit(self) -> None:
        now = self.now_ns()
        publish = self.bus.publish
        topic = HOPS[0]
        base = self._next * PER_ALARM
        for i in range(PER_ALARM):
            publish(topic, Msg(ts_event=now, seq=base + i, symbol="AAPL", price=101.25))
        self._next += 1
        if self._next < self.alarms:
            self.clock.schedule(now + 1, self._emit, priority=AlarmPriority.DATA)


class Relay(Component):
    def __init__(self, index: int, use_async: bool) -> None:
        super().__init__(f"relay{index}")
        self.index = index
        self.use_async = use_async

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        handler = self.handle_async if self.use_async else self.handle
        return [(HOPS[self.index - 1], handler, Phase.DEFAULT)]

    def handle(self, event: Msg) -> None:
        self.bus.publish(
            HOPS[self.index],
            Msg(ts_event=event.ts_event, seq=event.seq, symbol=event.symbol, price=event.price),
        )

    async def handle_async(self, event: Msg) -> None:
        self.handle(event)


class Sink(Component):
    def __init__(self, use_async: bool) -> None:
        super().__init__("sink")
        self.count = 0
        self.use_async = use_async

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        handler = self.handle_async if self.use_async else self.handle
        return [(HOPS[-1], handler, Phase.DEFAULT)]

    def handle(self, event: Msg) -> None:
        self.count += 1

    async def handle_async(self, event: Msg) -> None:
        self.count += 1


def measure(variant: str, events: int) -> dict[str, Any]:
    use_async = variant == "async"
    runtime = Runtime(strict=variant == "strict")
    alarms = events // PER_ALARM
    runtime.add(Source(alarms))
    for i in range(1, CHAIN_LENGTH):
        runtime.add(Relay(i, use_async))
    sink = runtime.add(Sink(use_async))
    start = time.perf_counter()
    runtime.run_sync()
    elapsed = time.perf_counter() - start
    injected = alarms * PER_ALARM
    if sink.count != injected:
        raise AssertionError(f"sink saw {sink.count} events, expected {injected}")
    return {
        "variant": variant,
        "events_in": injected,
        "deliveries": injected * CHAIN_LENGTH,
        "seconds": round(elapsed, 3),
        "chain_events_per_s": round(injected / elapsed),
        "deliveries_per_s": round(injected * CHAIN_LENGTH / elapsed),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


VARIANTS = {"sync": 400_000, "async": 400_000, "strict": 100_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "EVENTS"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    rows = [run_child("benchmarks.bus", name, str(n)) for name, n in VARIANTS.items()]
    info = machine()
    lines = [
        "## Bus: a chain of 5 components",
        "",
        "`python -m benchmarks.bus` (each variant in a fresh child process). Each event",
        "entering the chain is published and delivered 5 times (4 relays and a sink), on",
        "a simulated clock with 10 events per alarm. *Deliveries/s* counts handler calls;",
        "*chain events/s* counts events that went all the way through.",
        "",
        "| variant | events in | seconds | chain events/s | deliveries/s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['events_in']:,} | {r['seconds']} | "
            f"{r['chain_events_per_s']:,} | {r['deliveries_per_s']:,} | {r['peak_rss_mb']} |"
        )
    lines += ["", machine_line(info)]
    write_section("bus", "\n".join(lines), {"machine": info, "rows": rows})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
