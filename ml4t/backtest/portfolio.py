"""The portfolio: the account that fills change and bars value.

Wiring (DESIGN §2):

- ``FILLS`` at :attr:`Phase.EXECUTION`: each fill moves cash and one position (pure
  rules in :mod:`ml4t.backtest._accounting`); a ``PositionChanged`` follows on
  ``POSITIONS``. Fills of bar t are therefore applied before anyone else sees bar t.
- ``MARKET`` at :attr:`Phase.VALUATION`: the batch's closes are scattered into the
  last-price array in one numpy operation, and one ``PortfolioSnapshot`` goes out on
  ``PORTFOLIO``. If fills arrive later in the same timestamp (``fill_timing:
  same_close``), a corrected snapshot follows once routing is done.
- ``VENUE`` at :attr:`Phase.SESSION`: a live venue's account adopted as the session's
  starting state (an :class:`~ml4t.backtest.events.AccountReconciled` with ``adopted``)
  replaces the starting cash and positions, once, before any fill.

State lives in numpy arrays indexed by symbol code (quantity, average price, last price,
realized P&L), so marking 500 symbols is one vectorised operation, and the sums run over
the held symbols only. The identity equity = cash + sum(quantity * last) = initial cash +
realized + unrealized - commission is checked after every event when
``check_invariants`` is on (a cheap debug mode), and by :meth:`Portfolio.check` on demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
import numpy as np
import polars as pl
from msgspec import Meta

from ml4t.backtest._accounting import AccountingError, apply_fill, identity_gap
from ml4t.backtest._corporate import BorrowConfig, borrow_fee
from ml4t.backtest._days import CalendarDays, DateDays, TradingDays
from ml4t.backtest._span import MARKET_SPAN, PORTFOLIO_SPAN, MarketSpan, PortfolioSpan
from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest._time import NS_PER_DAY
from ml4t.backtest._universe import Universe
from ml4t.backtest.bus import Phase
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import DataValidationError
from ml4t.backtest.events import (
    AccountReconciled,
    ActionKind,
    CashFlow,
    CashFlowKind,
    ChunkColumns,
    CorporateAction,
    MarketBatch,
    OrderFilled,
    PortfolioSnapshot,
    PositionChanged,
    SessionStarted,
    TimerFired,
    UniverseChanged,
    VenueConnection,
)
from ml4t.backtest.topics import (
    CASH_FLOWS,
    CORPORATE_ACTIONS,
    FILLS,
    MARKET,
    PORTFOLIO,
    POSITIONS,
    SESSION,
    VENUE,
)

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
        borrow: BorrowConfig | None = None,
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
        self.income = 0.0  # dividends received less dividends paid on shorts
        self.borrow_fees = 0.0
        borrow = borrow if borrow is not None else BorrowConfig()
        self._borrow_rate = borrow.annual_rate
        self._borrow_rates, _ = borrow.load()
        self._charges_borrow = self._borrow_rate > 0 or any(self._borrow_rates.values())
        self._days: TradingDays | None = None  # session boundaries, for borrow fees
        self._day_end: int | None = None

    def on_start(self) -> None:
        if self._charges_borrow and self.context.calendar is not None:
            self._days = CalendarDays(self.context.calendar)

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
        self._position_changed(fill.ts_event, code, fill.fill_id)
        if self._snapshot_ts == fill.ts_event:
            self._resnapshot_after(fill.ts_event)
        if self._check:
            self.check()

    @on(SESSION, phase=Phase.SESSION)
    def _on_session(self, event: SessionStarted | UniverseChanged) -> None:
        self._recoded(self._table.apply(event))
        if isinstance(event, SessionStarted) and self._charges_borrow and self._days is None:
            self._days = DateDays(event.timezone)

    @on(VENUE, phase=Phase.SESSION)
    def _on_venue(self, event: AccountReconciled | VenueConnection) -> None:
        """A live account adopted as the starting state: its cash, and its positions at
        their average prices (marked there until a bar), so the identity holds with
        initial cash = cash + the positions' cost."""
        if not (isinstance(event, AccountReconciled) and event.adopted):
            return
        if self._table.size and (self._held or self.realized_total or self.commission_paid):
            self.log.warning(
                "account_not_adopted",
                venue=event.venue,
                reason="the portfolio has traded already; the account is only reported",
            )
            return
        if event.cash is not None:
            self.cash = event.cash
        cost = 0.0
        for symbol, qty in sorted(event.positions.items()):
            price = event.avg_prices.get(symbol)
            if qty == 0.0 or price is None or not math.isfinite(price):
                if qty != 0.0:
                    self.log.warning("position_not_adopted", symbol=symbol, reason="no price")
                continue
            code = self._code(symbol)
            self.quantity[code] = qty
            self.avg_price[code] = price
            self.last_price[code] = price
            self._held.add(code)
            self._held_idx = None
            cost += qty * price
            self._position_changed(event.ts_event, code)
        self.initial_cash = self.cash + cost
        self.log.info(
            "account_adopted", venue=event.venue, cash=self.cash, positions=len(self._held)
        )

    @on(CORPORATE_ACTIONS, phase=Phase.SESSION)
    def _on_action(self, action: CorporateAction) -> None:
        """Apply a split, fix a dividend's entitlement, or carry a position over to a new
        symbol. A delisting needs nothing here: the broker closes its positions with
        fills at the delisting price."""
        code = self._code(action.symbol)
        kind = action.action
        if kind is ActionKind.SPLIT:
            ratio = action.ratio
            self.last_price[code] /= ratio
            if self.quantity[code] != 0.0:
                self.quantity[code] *= ratio
                self.avg_price[code] /= ratio
                self._position_changed(action.ts_event, code)
        elif kind is ActionKind.DIVIDEND:
            held = float(self.quantity[code])
            if held != 0.0:
                flow = CashFlow(
                    ts_event=max(action.pay_ns, action.ts_event),
                    symbol=action.symbol,
                    kind=CashFlowKind.DIVIDEND,
                    amount=held * action.amount,
                    quantity=held,
                    rate=action.amount,
                )
                if action.pay_ns <= action.ts_event:
                    self._book(flow, snapshot=False)  # the bar's snapshot follows
                else:
                    self.clock.schedule(
                        action.pay_ns, lambda: self._book(flow), priority=AlarmPriority.TIMER
                    )
        elif kind is ActionKind.SYMBOL_CHANGE:
            self._rename(code, action)
        elif kind is ActionKind.DELISTING and self.quantity[code] != 0.0:
            # the broker's closing fills follow; mark the account after them even when
            # no bar comes at this time (a delisting after the data's last bar)
            self._resnapshot_after(action.ts_event)
        if self._check:
            self.check()

    def _rename(self, code: int, action: CorporateAction) -> None:
        new = self._code(action.new_symbol)
        if self.quantity[new] != 0.0 and self.quantity[code] != 0.0:
            raise DataValidationError(
                f"symbol change {action.symbol} -> {action.new_symbol} at {action.ts_event}: "
                f"the account holds both; a symbol may only change to one not held"
            )
        for name in ("quantity", "avg_price", "realized"):
            array = self._table[name]
            array[new] += array[code]
            array[code] = 0.0
        if math.isnan(self.last_price[new]):
            self.last_price[new] = self.last_price[code]
        if code in self._held:
            self._held.discard(code)
            self._held.add(new)
            self._held_idx = None
            self._position_changed(action.ts_event, code)
            self._position_changed(action.ts_event, new)

    def _book(self, flow: CashFlow, *, snapshot: bool = True) -> None:
        """Move cash by a cash flow, say so on ``CASH_FLOWS``, and (between bars) mark the
        account again so everyone sees the new cash."""
        self.cash += flow.amount
        if flow.kind is CashFlowKind.BORROW_FEE:
            self.borrow_fees -= flow.amount
        else:
            self.income += flow.amount
        self.publish(CASH_FLOWS, flow)
        if snapshot:
            self.publish(PORTFOLIO, self.snapshot(flow.ts_event))

    def subscriptions(self) -> Iterable[tuple[Any, Any, int]]:
        """With borrow costs: each batch also reaches the portfolio before its fills."""
        if self._charges_borrow:
            yield MARKET, self._before_fills, Phase.EXECUTION

    def _before_fills(self, batch: MarketBatch) -> None:
        if self._days is None:
            self._days = DateDays(None)
        self._charge_borrow(batch.ts_event)

    def _charge_borrow(self, ts: int) -> None:
        """At the first bar of a session, before its fills: the shorts held into it pay
        their borrow for the calendar days since the last session boundary, on their
        value at the last close."""
        assert self._days is not None
        day_end = self._days.bar_day_end(ts)
        if day_end is None or day_end == self._day_end:
            return
        last, self._day_end = self._day_end, day_end
        if last is None or not self._held:
            return
        days = round((day_end - last) / NS_PER_DAY)
        symbols = self._table.symbols
        for code in self._held_codes().tolist():
            held = float(self.quantity[code])
            if held >= 0.0:
                continue
            symbol = symbols[code]
            rate = self._borrow_rates.get(symbol, self._borrow_rate)
            fee = borrow_fee(-held * float(self.last_price[code]), rate, days)
            if fee > 0.0:
                flow = CashFlow(
                    ts_event=ts,
                    symbol=symbol,
                    kind=CashFlowKind.BORROW_FEE,
                    amount=-fee,
                    quantity=held,
                    rate=rate,
                )
                self._book(flow, snapshot=False)

    @on(MARKET, phase=Phase.VALUATION)
    def _on_market(self, batch: MarketBatch) -> None:
        table = self._table
        if not table.known:  # no session event (a graph without a feed)
            self._recoded(table.adopt(Universe.of_frame(batch.frame).symbols))
        table["last_price"][batch.symbol_codes()] = batch.numpy("close")
        self._snapshot_ts = batch.ts_event
        self.publish(PORTFOLIO, self.snapshot(batch.ts_event))

    # quiet spans (see ml4t.backtest._span): the snapshot of every timestamp, at once
    span_handlers = frozenset({"_on_market", "_on_span"})

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        quiet = self._table.known and not self._resnapshot_pending and not self._check
        return last if quiet else first - 1

    @on(MARKET_SPAN, phase=Phase.VALUATION)
    def _on_span(self, span: MarketSpan) -> None:
        """Mark every timestamp of the span and publish its snapshots: the same
        products over the same prices as :meth:`totals` at each of them."""
        last_price = self._table["last_price"]
        times = span.times
        if self._held:
            idx = self._held_codes()
            prices = span.filled("close", idx, last_price[idx])
            # what totals() computes, with the parts that do not move in a span taken once
            qty = self.quantity[idx]
            size = np.abs(qty)
            cost = float(qty @ self.avg_price[idx])
            values: list[float] = []
            gross: list[float] = []
            marks = np.empty(idx.size)  # each row in an array of its own, as totals() dots
            dot = np.dot
            for row in prices:
                np.copyto(marks, row)
                values.append(float(dot(qty, marks)))
                gross.append(float(dot(size, marks)))
            value = values[-1]
            last = self._snapshot(times[-1], (value, gross[-1], value, value - cost))
            event = PortfolioSpan(
                ts_event=times[-1],
                ts_init=times[-1],
                times=times,
                last=last,
                values=values,
                gross=gross,
                cost=cost,
            )
        else:
            last = self._snapshot(times[-1], (0.0, 0.0, 0.0, 0.0))
            event = PortfolioSpan(ts_event=times[-1], ts_init=times[-1], times=times, last=last)
        span.scatter_last(last_price, "close")
        self._snapshot_ts = times[-1]
        self.publish(PORTFOLIO_SPAN, event)

    def _resnapshot_after(self, ts: int) -> None:
        """Publish one more snapshot at ``ts`` once routing is done."""
        if self._resnapshot_pending:
            return
        self._resnapshot_pending = True
        event = TimerFired(ts_event=ts, ts_init=ts, name=_RESNAPSHOT, component=self.name)
        self.context.deliver(_AFTER_ROUTING, self.on_timer, event, self.name)

    def _position_changed(self, ts: int, code: int, fill_id: str = "") -> None:
        self.publish(
            POSITIONS,
            PositionChanged(
                ts_event=ts,
                ts_init=ts,
                symbol=self._table.symbols[code],
                quantity=float(self.quantity[code]),
                avg_price=float(self.avg_price[code]),
                realized_pnl=float(self.realized[code]),
                last_fill_id=fill_id,
            ),
        )

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
        totals = self.totals()
        if self._check:
            self._check_identity(totals[0], totals[1], totals[3])
        return self._snapshot(ts_ns, totals)

    def _snapshot(self, ts_ns: int, totals: tuple[float, float, float, float]) -> PortfolioSnapshot:
        value, gross, net, unrealized = totals
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
            income=self.income,
            borrow_fees=self.borrow_fees,
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
            self.initial_cash + self.income - self.borrow_fees,
            self.realized_total,
            unrealized,
            self.commission_paid,
        )
        scale = max(1.0, abs(self.initial_cash), abs(self.cash), gross)
        if not abs(gap) <= self.config.invariant_tolerance * scale:
            raise AccountingError(
                f"account identity broken by {gap:.6g}: cash {self.cash:.6f} + positions "
                f"{value:.6f} != initial {self.initial_cash:.6f} + income {self.income:.6f} "
                f"- borrow fees {self.borrow_fees:.6f} + realized "
                f"{self.realized_total:.6f} + unrealized {unrealized:.6f} - commission "
                f"{self.commission_paid:.6f}"
            )
