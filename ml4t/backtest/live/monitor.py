"""The live terminal view of a paper session: equity, positions, last fills.

:class:`PaperMonitor` is a component: it keeps the latest portfolio snapshot, the open
positions and the last few fills as they pass on the bus (a few assignments per event).
:class:`LiveView` runs beside the graph, as the progress bar does, and redraws a rich
``Live`` panel a few times a second from the monitor's state; it stays quiet when the
output is not a terminal.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import TextIO

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import MarketBatch, OrderFilled, PortfolioSnapshot, PositionChanged
from ml4t.backtest.topics import FILLS, MARKET, PORTFOLIO, POSITIONS

__all__ = ["LiveView", "PaperMonitor"]


class PaperMonitor(Component):
    """Latest equity, positions and fills of a running graph, for display."""

    def __init__(self, *, fills: int = 8, name: str = "paper-monitor") -> None:
        super().__init__(name)
        self.snapshot: PortfolioSnapshot | None = None
        self.positions: dict[str, PositionChanged] = {}
        self.fills: deque[OrderFilled] = deque(maxlen=fills)
        self.fill_count = 0
        self.batches = 0
        self.last_ts_ns: int | None = None

    @on(MARKET, phase=Phase.RECORD)
    def _on_market(self, batch: MarketBatch) -> None:
        self.batches += 1
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

    def render(self, title: str = "ml4t paper") -> Group:
        """The panel: a header line, positions and last fills."""
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
        return Group(head, positions, fills)


class LiveView:
    """Redraws a :class:`PaperMonitor` in a rich Live panel until cancelled."""

    def __init__(
        self,
        monitor: PaperMonitor,
        *,
        title: str = "ml4t paper",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.25,
    ) -> None:
        stream = stream or sys.stderr
        self.enabled = stream.isatty() if enabled is None else enabled
        self.monitor = monitor
        self.title = title
        self.interval = interval
        self._console = Console(file=stream)

    async def run(self) -> None:
        if not self.enabled:
            await anyio.sleep_forever()
        with Live(
            self.monitor.render(self.title), console=self._console, auto_refresh=False
        ) as live:
            try:
                while True:
                    await anyio.sleep(self.interval)
                    live.update(self.monitor.render(self.title), refresh=True)
            finally:
                live.update(self.monitor.render(self.title), refresh=True)
