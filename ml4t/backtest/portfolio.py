"""The portfolio: the account that fills change and bars value.

Wiring (DESIGN §2):

- ``FILLS`` at :attr:`Phase.EXECUTION`: each fill moves cash and one position (pure
  rules in :mod:`ml4t.backtest._accounting`); a ``PositionChanged`` follows on
  ``POSITIONS``. Fills of bar t are therefore applied before anyone else sees bar t.
- ``MARKET`` at :attr:`Phase.VALUATION`: the batch's closes are scattered into the
  last-price array in one numpy operation, and one ``PortfolioSnapshot`` goes out on
  ``PORTFOLIO``. If fills arrive later in the same timestamp (``fill_timing:
  same_close``), a corrected snapshot follows once routing is done.

State lives in numpy arrays indexed by symbol code (quantity, average price, last price,
realized P&L), so marking 500 symbols is one vectorised operation, and the sums run over
the held symbols only. The identity equity = cash + sum(quantity * last) = initial cash +
realized + unrealized - commission is checked after every event when
``check_invariants`` is on (a cheap debug mode), and by :meth:`Portfolio.check` on demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated

import msgspec
import numpy as np
import polars as pl
from msgspec import Meta

from ml4t.backtest._accounting import AccountingError, apply_fill, identity_gap
from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest._universe import Universe
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import (
    MarketBatch,
    OrderFilled,
    PortfolioSnapshot,
    PositionChanged,
    SessionStarted,
    TimerFired,
    UniverseChanged,
)
from ml4t.backtest.topics import FILLS, MARKET, PORTFOLIO, POSITIONS, SESSION

__all__ = ["AccountingError", "Portfolio", "PortfolioConfig"]

_RESNAPSHOT = "portfolio.resnapshot"
_AFTER_ROUTING = Phase.ROUTING + 1


DEFAULT_CASH = 100_000.0
"""Starting cash of a portfolio given none (the default of ``backtest.initial_capital``)."""


class PortfolioConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The account: starting cash, and whether to assert the identity after every event.

    ``initial_cash`` unset is the run's ``backtest.initial_capital`` (in a run config the
    two are one number), or 100,000 for a portfolio built on its own.

    ``invariant_tolerance`` is relative to the account's scale (the largest of 1, the
    initial cash, |cash| and the gross exposure).
    """

    initial_cash: Annotated[float, Meta(ge=0)] | None = None
    check_invariants: bool = False
    invariant_tolerance: Annotated[float, Meta(gt=0)] = 1e-9


class Portfolio(Component):
    """Cash, positions and P&L of one account, marked at every bar's close."""

    def __init__(
        self,
        config: PortfolioConfig | None = None,
        *,
        symbols: Iterable[str] | None = None,
        name: str = "portfolio",
    ) -> None:
        super().__init__(name)
        self.config = config = config if config is not None else PortfolioConfig()
        cash = config.initial_cash if config.initial_cash is not None else DEFAULT_CASH
        self.initial_cash = cash
        self.cash = cash
        self.commission_paid = 0.0
        self.slippage_paid = 0.0
        self.realized_total = 0.0
        self._check = config.check_invariants
        self._table = SymbolTable(
            {"quantity": 0.0, "avg_price": 0.0, "last_price": math.nan, "realized": 0.0},
            symbols,
        )
        self._held: set[int] = set()
        self._held_idx: np.ndarray | None = np.empty(0, dtype=np.intp)
        self._snapshot_ts: int | None = None
        self._resnapshot_pending = False

    # ------------------------------------------------------------------ handlers

    @on(FILLS, phase=Phase.EXECUTION)
    def _on_fill(self, fill: OrderFilled) -> None:
        code = self._code(fill.symbol)
        signed = fill.quantity * fill.side.sign
        qty, avg, realized = apply_fill(
            float(self.quantity[code]), float(self.avg_price[code]), signed, fill.price
        )
        self.quantity[code] = qty
        self.avg_price[code] = avg
        self.realized[code] += realized
        self.realized_total += realized
        self.cash -= signed * fill.price + fill.commission
        self.commission_paid += fill.commission
        self.slippage_paid += fill.slippage
        if math.isnan(self.last_price[code]):
            self.last_price[code] = fill.price
        if qty != 0.0:
            if code not in self._held:
                self._held.add(code)
                self._held_idx = None
        elif code in self._held:
            self._held.discard(code)
            self._held_idx = None
        self.publish(
            POSITIONS,
            PositionChanged(
                ts_event=fill.ts_event,
                ts_init=fill.ts_event,
                symbol=fill.symbol,
                quantity=qty,
                avg_price=avg,
                realized_pnl=float(self.realized[code]),
                last_fill_id=fill.fill_id,
            ),
        )
        if self._snapshot_ts == fill.ts_event and not self._resnapshot_pending:
            self._resnapshot_pending = True
            event = TimerFired(
                ts_event=fill.ts_event, ts_init=fill.ts_event, name=_RESNAPSHOT, component=self.name
            )
            self.context.deliver(_AFTER_ROUTING, self.on_timer, event, self.name)
        if self._check:
            self.check()

    @on(SESSION, phase=Phase.SESSION)
    def _on_session(self, event: SessionStarted | UniverseChanged) -> None:
        self._recoded(self._table.apply(event))

    @on(MARKET, phase=Phase.VALUATION)
    def _on_market(self, batch: MarketBatch) -> None:
        frame = batch.frame
        if not self._table.known:  # no session event (a graph without a feed)
            self._recoded(self._table.adopt(Universe.of_frame(frame).symbols))
        self.last_price[batch.symbol_codes()] = frame.get_column("close").to_numpy()
        self._snapshot_ts = batch.ts_event
        self.publish(PORTFOLIO, self.snapshot(batch.ts_event))

    def on_timer(self, event: TimerFired) -> None:
        if event.name != _RESNAPSHOT:
            return
        self._resnapshot_pending = False
        self.publish(PORTFOLIO, self.snapshot(event.ts_event))

    # ------------------------------------------------------------------ state

    @property
    def quantity(self) -> np.ndarray:
        """Signed quantity held, by symbol code."""
        return self._table["quantity"]

    @property
    def avg_price(self) -> np.ndarray:
        return self._table["avg_price"]

    @property
    def last_price(self) -> np.ndarray:
        return self._table["last_price"]

    @property
    def realized(self) -> np.ndarray:
        return self._table["realized"]

    def _code(self, symbol: str) -> int:
        return self._table.ensure(symbol)

    def _recoded(self, mapping: np.ndarray | None) -> None:
        """Re-code the held set after the table moved its arrays (see SymbolTable)."""
        if mapping is not None:
            self._held = {int(mapping[c]) for c in self._held}
            self._held_idx = None

    def _held_codes(self) -> np.ndarray:
        if self._held_idx is None:
            self._held_idx = np.fromiter(sorted(self._held), dtype=np.intp, count=len(self._held))
        return self._held_idx

    def totals(self) -> tuple[float, float, float, float]:
        """``(positions value, gross exposure, net exposure, unrealized P&L)``."""
        if not self._held:
            return 0.0, 0.0, 0.0, 0.0
        idx = self._held_codes()
        qty = self.quantity[idx]
        last = self.last_price[idx]
        net = float(qty @ last)
        gross = float(np.abs(qty) @ last)
        return net, gross, net, net - float(qty @ self.avg_price[idx])

    def snapshot(self, ts_ns: int) -> PortfolioSnapshot:
        """The account marked at the last prices, stamped ``ts_ns``."""
        value, gross, net, unrealized = self.totals()
        if self._check:
            self._check_identity(value, gross, unrealized)
        return PortfolioSnapshot(
            ts_event=ts_ns,
            ts_init=ts_ns,
            equity=self.cash + value,
            cash=self.cash,
            positions_value=value,
            gross_exposure=gross,
            net_exposure=net,
            num_positions=len(self._held),
            realized_pnl=self.realized_total,
            unrealized_pnl=unrealized,
            commission=self.commission_paid,
            slippage=self.slippage_paid,
        )

    @property
    def equity(self) -> float:
        return self.cash + self.totals()[0]

    @property
    def positions_value(self) -> float:
        return self.totals()[0]

    @property
    def unrealized_pnl(self) -> float:
        return self.totals()[3]

    @property
    def gross_leverage(self) -> float:
        """Gross exposure / equity (inf when equity <= 0 with positions open)."""
        value, gross, _, _ = self.totals()
        equity = self.cash + value
        return gross / equity if equity > 0 else (math.inf if gross else 0.0)

    @property
    def net_leverage(self) -> float:
        value, _, net, _ = self.totals()
        equity = self.cash + value
        return net / equity if equity > 0 else (math.copysign(math.inf, net) if net else 0.0)

    def position(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0 if none)."""
        code = self._table.code_of(symbol)
        return float(self.quantity[code]) if code is not None else 0.0

    def positions(self) -> pl.DataFrame:
        """Open positions: symbol, quantity, avg_price, last_price, market_value,
        unrealized_pnl, realized_pnl (one row per held symbol, by symbol code)."""
        idx = self._held_codes() if self._held else np.empty(0, dtype=np.intp)
        symbols = self._table.symbols
        qty, last, avg = self.quantity[idx], self.last_price[idx], self.avg_price[idx]
        return pl.DataFrame(
            {
                "symbol": [symbols[i] for i in idx],
                "quantity": qty,
                "avg_price": avg,
                "last_price": last,
                "market_value": qty * last,
                "unrealized_pnl": qty * (last - avg),
                "realized_pnl": self.realized[idx],
            },
            schema={
                "symbol": pl.String,
                "quantity": pl.Float64,
                "avg_price": pl.Float64,
                "last_price": pl.Float64,
                "market_value": pl.Float64,
                "unrealized_pnl": pl.Float64,
                "realized_pnl": pl.Float64,
            },
        )

    def check(self) -> None:
        """Raise :class:`AccountingError` if the account identity does not hold."""
        value, gross, _, unrealized = self.totals()
        self._check_identity(value, gross, unrealized)

    def _check_identity(self, value: float, gross: float, unrealized: float) -> None:
        gap = identity_gap(
            self.cash,
            value,
            self.initial_cash,
            self.realized_total,
            unrealized,
            self.commission_paid,
        )
        scale = max(1.0, abs(self.initial_cash), abs(self.cash), gross)
        if not abs(gap) <= self.config.invariant_tolerance * scale:
            raise AccountingError(
                f"account identity broken by {gap:.6g}: cash {self.cash:.6f} + positions "
                f"{value:.6f} != initial {self.initial_cash:.6f} + realized "
                f"{self.realized_total:.6f} + unrealized {unrealized:.6f} - commission "
                f"{self.commission_paid:.6f}"
            )
