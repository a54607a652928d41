"""The live terminal view of a paper session: equity, positions, last fills, idle time.

:class:`PaperMonitor` is a component: it keeps the latest portfolio snapshot, the open
positions and the last few fills as they pass on the bus (a few assignments per event);
given an ``echo`` stream it also writes one line per fill there (:func:`fill_line`), for
a session without the live view.
:class:`LiveView` runs beside the graph, as the progress bar does, and redraws a rich
``Live`` panel a few times a second from the monitor's state, with the idle-time line
(``market closed until ...``) while the replay waits. Without a terminal (or with
``--no-view``) it draws nothing, and writes that line once per wait to ``echo`` if given.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import TextIO

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import MarketBatch, OrderFilled, PortfolioSnapshot, PositionChanged
from ml4t.backtest.live._idle import Idle
from ml4t.backtest.topics import FILLS, MARKET, PORTFOLIO, POSITIONS

__all__ = ["LiveView", "PaperMonitor", "fill_line"]


def fill_line(fill: OrderFilled) -> str:
    """One fill as ``--no-view`` prints it::

    fill 2023-01-03T20:52:00+00:00 m buy 10 AAA @ 101.2345 commission 0.05 slippage 0.0202
    """
    left = f" ({fill.remaining_quantity:g} left)" if fill.remaining_quantity else ""
    return (
        f"fill {from_ns(fill.ts_event).isoformat()} {fill.strategy_id} {fill.side.value} "
        f"{fill.quantity:g} {fill.symbol} @ {fill.price:.4f} commission {fill.commission:.2f} "
        f"slippage {fill.slippage:.4f}{left}"
    )


class PaperMonitor(Component):
    """Latest equity, positions and fills of a running graph, for display; a line per
    fill on ``echo`` when given. ``note`` is a line the session shows under the header
    (the last closed-market skip)."""

    def __init__(
        self, *, fills: int = 8, echo: TextIO | None = None, name: str = "paper-monitor"
    ) -> None:
        super().__init__(name)
        self.snapshot: PortfolioSnapshot | None = None
        self.positions: dict[str, PositionChanged] = {}
        self.fills: deque[OrderFilled] = deque(maxlen=fills)
        self.fill_count = 0
        self.batches = 0
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.echo = echo
        self.note: str | None = None

    @on(MARKET, phase=Phase.RECORD)
    def _on_market(self, batch: MarketBatch) -> None:
        self.batches += 1
        if self.first_ts_ns is None:
            self.first_ts_ns = batch.ts_event
        self.last_ts_ns = batch.ts_event

    @on(PORTFOLIO, phase=Phase.RECORD)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self.snapshot = snapshot

    @on(POSITIONS, phase=Phase.RECORD)
    def _on_position(self, change: PositionChanged) -> None:
        if change.quantity == 0.0:
            self.positions.pop(change.symbol, None)
        else:
            self.positions[change.symbol] = change

    @on(FILLS, phase=Phase.RECORD)
    def _on_fill(self, fill: OrderFilled) -> None:
        self.fills.append(fill)
        self.fill_count += 1
        if self.echo is not None:
            self.echo.write(fill_line(fill) + "\n")
            self.echo.flush()

    def render(self, title: str = "ml4t paper", status: str | None = None) -> Group:
        """The panel: a header line, the idle-time ``status`` and the monitor's ``note``
        (when there is one), positions and last fills."""
        snap = self.snapshot
        when = from_ns(self.last_ts_ns).isoformat() if self.last_ts_ns is not None else "-"
        head = Table.grid(padding=(0, 2))
        head.add_row(f"[bold]{title}[/]", f"market time {when}", f"bars {self.batches:,}")
        if snap is not None:
            head.add_row(
                f"equity {snap.equity:,.2f}",
                f"cash {snap.cash:,.2f}",
                f"P&L {snap.realized_pnl + snap.unrealized_pnl - snap.commission:,.2f}",
            )
        lines = [
            Text(line, style=style)
            for line, style in ((status, "bold yellow"), (self.note, "dim"))
            if line is not None
        ]
        positions = Table(title="positions", expand=False)
        for col in ("symbol", "quantity", "avg price", "realized"):
            positions.add_column(col, justify="right")
        for symbol in sorted(self.positions)[:20]:
            p = self.positions[symbol]
            positions.add_row(
                symbol, f"{p.quantity:g}", f"{p.avg_price:,.4f}", f"{p.realized_pnl:,.2f}"
            )
        fills = Table(title=f"last fills ({self.fill_count:,} in all)", expand=False)
        for col in ("time", "symbol", "side", "qty", "price"):
            fills.add_column(col, justify="right")
        for f in reversed(self.fills):
            fills.add_row(
                from_ns(f.ts_event).strftime("%Y-%m-%d %H:%M"),
                f.symbol,
                f.side.value,
                f"{f.quantity:g}",
                f"{f.price:,.4f}",
            )
        return Group(head, *lines, positions, fills)


class LiveView:
    """Redraws a :class:`PaperMonitor` in a rich Live panel until cancelled.

    ``status`` (optional) says what the replay is waiting for (an :class:`Idle`, or None
    when it is not idle); the panel shows its line. When the view is off, the line is
    written once per wait to ``echo`` (if given) instead.
    """

    def __init__(
        self,
        monitor: PaperMonitor,
        *,
        title: str = "ml4t paper",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.25,
        status: Callable[[], Idle | None] | None = None,
        echo: TextIO | None = None,
    ) -> None:
        stream = stream or sys.stderr
        self.enabled = stream.isatty() if enabled is None else enabled
        self.monitor = monitor
        self.title = title
        self.interval = interval
        self.status = status or _not_idle
        self.echo = echo
        self._console = Console(file=stream)

    def render(self) -> Group:
        idle = self.status()
        return self.monitor.render(self.title, status=idle.text if idle is not None else None)

    async def run(self) -> None:
        if not self.enabled:
            await self._run_plain()
            return
        with Live(self.render(), console=self._console, auto_refresh=False) as live:
            try:
                while True:
                    await anyio.sleep(self.interval)
                    live.update(self.render(), refresh=True)
            finally:
                live.update(self.render(), refresh=True)

    async def _run_plain(self) -> None:
        """No panel: the idle-time line once per wait on ``echo``, or nothing at all."""
        echo = self.echo
        if echo is None:
            await anyio.sleep_forever()
            return
        shown: int | None = None  # the alarm whose wait was announced
        while True:
            idle = self.status()
            if idle is not None and idle.next_ns != shown:
                shown = idle.next_ns
                echo.write(idle.text + "\n")
                echo.flush()
            await anyio.sleep(self.interval)


def _not_idle() -> Idle | None:
    return None
