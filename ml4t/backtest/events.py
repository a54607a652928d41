"""Every event that travels on the bus, declared in one place.

Events are frozen, keyword-only, tagged ``msgspec.Struct``s on one base, :class:`Event`.
The tag (the class name, in the field ``type``) is inherited, so every subclass joins the
union the codec decodes. Facts are named in the past tense (``OrderFilled``), commands in
the imperative (``SubmitOrder``).

Timestamps are integer nanoseconds since the epoch, UTC:

- ``ts_event``: when the thing the event describes became known (a bar's row is known at
  its close; a fill at the time it happened);
- ``ts_init``: when this event object was created by its producer (0 if not stamped).

Quantities are always positive; the direction is the ``side``. Prices and money are
``float`` (IEEE double): see ``docs/`` for the tolerances ml4t guarantees.
"""

from __future__ import annotations

import enum

import msgspec
import numpy as np
import polars as pl

from ml4t.backtest.errors import ProtocolError, UnknownNameError

__all__ = [
    "AccountDifference",
    "AccountReconciled",
    "ActionKind",
    "CancelOrder",
    "CashFlow",
    "CashFlowKind",
    "ChunkColumns",
    "ComponentFailed",
    "ComponentState",
    "ComponentStateChanged",
    "CorporateAction",
    "Event",
    "MarketBatch",
    "ModifyOrder",
    "OrderAccepted",
    "OrderCancelled",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OrderUpdated",
    "PortfolioSnapshot",
    "PositionChanged",
    "RequestKind",
    "SessionResumed",
    "SessionStarted",
    "StopAction",
    "StopTrading",
    "SubmitOrder",
    "TimeInForce",
    "TimerFired",
    "TradingStopped",
    "UniverseChanged",
    "VenueConnection",
    "VenueLink",
    "VenueOrder",
    "event_types",
]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="type"):
    """Base of every bus event."""

    ts_event: int
    ts_init: int = 0


def event_types() -> tuple[type[Event], ...]:
    """Every concrete event class defined so far, in a stable order (by tag).

    Subclasses declared by plugins join as soon as their module is imported.
    """
    found: dict[str, type[Event]] = {}
    stack: list[type[Event]] = [Event]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            tag = sub.__struct_config__.tag
            assert isinstance(tag, str)  # Event is tag=True: each class is tagged by its name
            found[tag] = sub
    return tuple(found[tag] for tag in sorted(found))


# --------------------------------------------------------------------------- enums


class OrderSide(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(enum.StrEnum):
    DAY = "day"  # expires at the session close of the day it was accepted
    GTC = "gtc"  # good till cancelled
    IOC = "ioc"  # immediate or cancel: fill what the next bar allows, cancel the rest
    FOK = "fok"  # fill or kill: all on the next bar or nothing


class OrderStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class RequestKind(enum.StrEnum):
    """Which request an :class:`OrderRejected` answers."""

    SUBMIT = "submit"
    CANCEL = "cancel"
    MODIFY = "modify"


class ActionKind(enum.StrEnum):
    """What a :class:`CorporateAction` does."""

    SPLIT = "split"
    DIVIDEND = "dividend"
    DELISTING = "delisting"
    SYMBOL_CHANGE = "symbol_change"


class CashFlowKind(enum.StrEnum):
    """Why cash moved without a trade (a :class:`CashFlow`)."""

    DIVIDEND = "dividend"  # paid to longs, charged to shorts, on the pay date
    BORROW_FEE = "borrow_fee"  # the cost of holding a short, accrued per session


class StopAction(enum.StrEnum):
    """What stopping trading does: ``halt`` cancels every open order and refuses every new
    one; ``flatten`` also closes every position at market."""

    HALT = "halt"
    FLATTEN = "flatten"


class ComponentState(enum.StrEnum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


# --------------------------------------------------------------------------- session


class SessionStarted(Event, frozen=True, kw_only=True):
    """The run's shared facts, published once by the feed (or a live data adapter) before
    anything else happens, in the first phase: every role builds its per-symbol state
    from it, and the journal records it like any event.

    ``symbols`` is the universe in code order (a symbol's code is its index, the index of
    every role's per-symbol arrays and of ``MarketBatch.codes``). ``columns`` maps each
    column of the market frames to its role (``symbol``, ``ohlcv``, ``signal``,
    ``indicator``, ``extra``), ``context`` lists the market-wide fields. ``start_ns`` and
    ``end_ns`` are the data's first and last timestamps (0 when unknown, e.g. live);
    ``sessions_per_year`` the calendar's sessions in a typical year (the rounded mean of
    the 20 years up to the data's start: 252 for NYSE; 0 without a calendar), the
    annualisation the metrics use; ``data_fingerprint`` binds the run to
    its input files. ``members`` is the point-in-time universe at the start (None: every
    symbol is a member throughout); strategies see only members' rows, and
    ``UniverseChanged`` moves symbols in and out. ``universe_exit`` is what happens to a
    strategy's holding in a symbol that leaves: ``hold`` it (still marked at its own
    prices) or ``close`` it at the next bar (a market order, reason ``universe_exit``).
    """

    run_id: str = ""
    config_hash: str = ""
    data_fingerprint: str = ""
    calendar: str = ""
    timezone: str = "UTC"
    start_ns: int = 0
    end_ns: int = 0
    initial_cash: float = 0.0
    sessions_per_year: int = 0
    symbols: list[str] = msgspec.field(default_factory=list)
    columns: dict[str, str] = msgspec.field(default_factory=dict)
    context: list[str] = msgspec.field(default_factory=list)
    members: list[str] | None = None
    universe_exit: str = "hold"


class UniverseChanged(Event, frozen=True, kw_only=True):
    """Symbols join or leave the universe from ``ts_event`` on. An ``added`` symbol the
    session did not know gets the next code (after every symbol the run has known); a
    ``removed`` symbol keeps its code. Strategies see only members' rows; a batch may
    still carry a removed symbol's rows, so holdings stay marked at their own prices."""

    added: list[str] = msgspec.field(default_factory=list)
    removed: list[str] = msgspec.field(default_factory=list)


class CorporateAction(Event, frozen=True, kw_only=True):
    """A corporate action on ``symbol``, in effect from ``ts_event`` on: the feed
    publishes it on ``CORPORATE_ACTIONS`` in the SESSION phase, before the first batch
    after its ex-date (or time), so every role applies it before that bar.

    - ``split``: ``ratio`` new shares per old share (4.0 for 4:1, 0.1 for 1:10). Holdings
      are multiplied by it, prices and average costs divided by it, working orders
      adjusted to match.
    - ``dividend``: ``amount`` cash per share, to holders at ``ts_event`` (shorts pay it),
      booked at ``pay_ns``.
    - ``delisting``: the symbol stops trading; positions are closed at ``price`` per share
      (the feed fills in the last close when the file gave none) and orders cancelled.
    - ``symbol_change``: the symbol trades on as ``new_symbol`` (a code of the session):
      positions, orders and open trades carry over.
    """

    symbol: str
    action: ActionKind
    ratio: float = 1.0
    amount: float = 0.0
    price: float | None = None
    new_symbol: str = ""
    pay_ns: int = 0


class CashFlow(Event, frozen=True, kw_only=True):
    """Cash into (``amount`` > 0) or out of the account without a trade, published by the
    portfolio when it books it: a dividend or a borrow fee. ``quantity`` is the signed
    position it was computed on and ``rate`` the amount per share (dividend) or the
    annual rate (borrow fee). (Cash in lieu of a split's fraction is a fill.)"""

    symbol: str
    kind: CashFlowKind
    amount: float
    quantity: float = 0.0
    rate: float = 0.0


# --------------------------------------------------------------------------- market data


CODE_DTYPE = np.dtype("<i4")
"""The dtype of :attr:`MarketBatch.codes`."""


class ChunkColumns:
    """A feed's chunk (consecutive timestamps) as columns, shared by the batches sliced
    from it: in-process state of the producer, never on the wire.

    ``offsets[i]`` and ``lengths[i]`` locate timestamp ``i``'s rows in ``frame``;
    ``contexts[i]`` is its context (None: no context). :meth:`array` converts a column
    to numpy once per chunk (zero-copy for numeric columns without nulls), so each
    batch's :meth:`MarketBatch.numpy` is a slice of it. The chunk holds rows after the
    batch's timestamp: only the framework reads it, to evaluate what depends on one
    timestamp's rows alone (see ``ExprStrategy``); a batch's own accessors never reach
    past its rows.

    ``wakes`` are the sorted indices of the timestamps where some symbol's signal values
    change (see :mod:`ml4t.backtest.data._wakes`); None when the producer did not say,
    and then every timestamp counts as one.
    """

    __slots__ = (
        "_arrays",
        "_codes",
        "_wake_set",
        "contexts",
        "frame",
        "lengths",
        "offsets",
        "wakes",
    )

    def __init__(
        self,
        frame: pl.DataFrame,
        offsets: list[int],
        lengths: list[int],
        contexts: list[dict[str, float | None]] | None = None,
    ) -> None:
        self.frame = frame
        self.offsets = offsets
        self.lengths = lengths
        self.contexts = contexts
        self._arrays: dict[str, np.ndarray] = {}
        self._codes: np.ndarray | None = None
        self.wakes: np.ndarray | None = None
        self._wake_set: frozenset[int] | None = None

    def is_wake(self, index: int) -> bool:
        """Whether timestamp ``index`` is a wake (always, when the wakes are unknown)."""
        wakes = self.wakes
        if wakes is None:
            return True
        found = self._wake_set
        if found is None:
            found = self._wake_set = frozenset(wakes.tolist())
        return index in found

    def array(self, name: str) -> np.ndarray:
        """Column ``name`` of the whole chunk as a read-only numpy array."""
        values = self._arrays.get(name)
        if values is None:
            values = self._arrays[name] = _column_array(self.frame, name)
        return values

    def codes(self) -> np.ndarray:
        """The symbol codes of the chunk's rows as a read-only array of
        :data:`CODE_DTYPE` (what :attr:`MarketBatch.codes` holds)."""
        codes = self._codes
        if codes is None:
            codes = self._codes = _enum_codes(self.frame, CODE_DTYPE)
        return codes


def _enum_codes(frame: pl.DataFrame, dtype: type | np.dtype) -> np.ndarray:
    """The physical codes of ``frame``'s ``symbol`` Enum as a read-only array."""
    codes = frame.get_column("symbol").to_physical().to_numpy().astype(dtype)
    codes.flags.writeable = False
    return codes


def _column_array(frame: pl.DataFrame, name: str) -> np.ndarray:
    """``frame[name]`` as a read-only numpy array (nulls of a float column are NaN)."""
    try:
        series = frame.get_column(name)
    except pl.exceptions.ColumnNotFoundError:
        raise UnknownNameError(
            f"the market batch has no column {name!r}; columns: {frame.columns}"
        ) from None
    values = series.to_numpy()
    values.flags.writeable = False  # shared by every role that reads the batch
    return values


class MarketBatch(Event, frozen=True, kw_only=True, eq=False, dict=True):
    """Every symbol's row at one timestamp, as columns.

    ``frame`` has one row per symbol: ``symbol`` (dictionary-encoded), OHLCV and any
    signal and indicator columns. ``context`` holds market-wide fields (VIX, an index, a
    rate) as of ``ts_event``: the last value known at or before it, never after. On the
    wire the frame travels as Arrow IPC inside a msgpack extension (see ``codec``).

    ``codes`` are the rows' symbol codes (the index of each row's symbol in the universe,
    little-endian int32), which the feed computes once per chunk so that no role pays for
    them again; a producer may leave them empty, and :meth:`symbol_codes` then reads them
    from the ``symbol`` Enum.

    :meth:`numpy` gives a column as a numpy array. A feed that cuts its data into chunks
    binds each batch to its chunk (:meth:`bind_chunk`), so the array is a zero-copy slice
    of a column converted once per chunk; the binding is in-process state (msgspec's
    ``__dict__``), never encoded, so a batch that crossed the wire reads its own frame.
    """

    frame: pl.DataFrame
    context: dict[str, float | None] = msgspec.field(default_factory=dict)
    codes: bytes = b""

    def bind_chunk(self, chunk: ChunkColumns, index: int) -> None:
        """Mark this batch as timestamp ``index`` of ``chunk`` (its frame is that slice)."""
        if chunk.lengths[index] != self.frame.height:
            raise ProtocolError(
                f"batch of {self.frame.height} rows bound to chunk timestamp {index} of "
                f"{chunk.lengths[index]} rows"
            )
        self.__dict__["_chunk"] = (chunk, index)

    def chunk(self) -> tuple[ChunkColumns, int] | None:
        """The chunk this batch was cut from and its timestamp index there, if bound."""
        return self.__dict__.get("_chunk")

    def numpy(self, name: str) -> np.ndarray:
        """Column ``name`` at this timestamp as a read-only numpy array, one entry per row:
        a zero-copy view of the chunk's column when the batch is bound to its chunk,
        else converted from the frame once per batch. Nulls of a float column are NaN.
        Raises :class:`~ml4t.backtest.errors.UnknownNameError` for a missing column."""
        state = self.__dict__
        bound = state.get("_chunk")
        if bound is not None:
            chunk, index = bound
            lo = chunk.offsets[index]
            return chunk.array(name)[lo : lo + chunk.lengths[index]]
        cache = state.get("_numpy")
        if cache is None:
            cache = state["_numpy"] = {}
        values = cache.get(name)
        if values is None:
            values = cache[name] = _column_array(self.frame, name)
        return values

    def symbol_codes(self) -> np.ndarray:
        """The rows' symbol codes as a read-only ``intp`` array (the index type numpy
        scatters with, so ``prices[codes] = ...`` converts nothing), computed once per
        batch: a slice of its chunk's codes when bound, else from ``codes`` or the
        ``symbol`` Enum."""
        state = self.__dict__
        codes: np.ndarray | None = state.get("_codes")
        if codes is None:
            bound = state.get("_chunk")
            if bound is not None:
                chunk, index = bound
                lo = chunk.offsets[index]
                codes = chunk.codes()[lo : lo + chunk.lengths[index]].astype(np.intp)
                codes.flags.writeable = False
            elif self.codes:
                codes = np.frombuffer(self.codes, dtype=CODE_DTYPE).astype(np.intp)
                codes.flags.writeable = False
            else:
                codes = _enum_codes(self.frame, np.intp)
            state["_codes"] = codes
        return codes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MarketBatch):
            return NotImplemented
        return (
            self.ts_event == other.ts_event
            and self.ts_init == other.ts_init
            and self.context == other.context
            and np.array_equal(self.symbol_codes(), other.symbol_codes())
            and self.frame.schema == other.frame.schema
            and self.frame.equals(other.frame, null_equal=True)
        )

    def __hash__(self) -> int:  # frames are not hashable; identity is good enough
        return id(self)


# --------------------------------------------------------------------------- orders


class SubmitOrder(Event, frozen=True, kw_only=True):
    """A strategy asks for an order. The risk manager approves it or rejects it.

    ``stop_loss`` and ``take_profit`` make a bracket: once the entry fills, the broker
    places both exits as one-cancels-other children (ids ``<order_id>.sl``/``.tp``).
    ``trail_amount`` or ``trail_percent`` (a fraction, 0.05 = 5 %) defines a trailing stop.
    ``reason`` travels to the trade record as the exit reason when the order closes a
    position (``signal``, ``stop_loss``, ``manual``...).

    ``reduce_only`` orders (and a bracket's children, always) may only reduce the
    strategy's position in the symbol: the broker shrinks them when the position shrinks,
    caps each fill at what is held, and cancels them once the position is gone.
    """

    order_id: str
    strategy_id: str
    symbol: str
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    stop_loss: float | None = None
    take_profit: float | None = None
    parent_id: str | None = None
    reduce_only: bool = False
    reason: str = ""


class CancelOrder(Event, frozen=True, kw_only=True):
    """A strategy asks to cancel an open order."""

    order_id: str
    strategy_id: str


class ModifyOrder(Event, frozen=True, kw_only=True):
    """A strategy asks to replace an open order's quantity or prices (None = unchanged)."""

    order_id: str
    strategy_id: str
    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None


class OrderAccepted(Event, frozen=True, kw_only=True):
    """The broker holds the order; it may fill from the next bar of its symbol on."""

    order_id: str
    strategy_id: str
    symbol: str


class OrderRejected(Event, frozen=True, kw_only=True):
    """An order, cancel or modify request was refused. ``rule`` names who refused and why;
    ``reason`` is the human sentence with the numbers.

    ``request`` says which kind of request was refused: a refused ``submit`` ends the
    order; a refused ``cancel`` or ``modify`` leaves the order exactly as it was.
    """

    order_id: str
    strategy_id: str
    symbol: str
    rule: str
    reason: str
    request: RequestKind = RequestKind.SUBMIT


class OrderUpdated(Event, frozen=True, kw_only=True):
    """An open order changed: modified by request, a trailing stop moved, a stop-limit's
    stop triggered (``triggered``), or a bracket child resized to its parent's fills."""

    order_id: str
    strategy_id: str
    symbol: str
    status: OrderStatus
    quantity: float
    filled_quantity: float
    limit_price: float | None = None
    stop_price: float | None = None
    triggered: bool = False


class OrderCancelled(Event, frozen=True, kw_only=True):
    order_id: str
    strategy_id: str
    symbol: str
    filled_quantity: float = 0.0
    reason: str = ""


class OrderExpired(Event, frozen=True, kw_only=True):
    order_id: str
    strategy_id: str
    symbol: str
    filled_quantity: float = 0.0


class OrderFilled(Event, frozen=True, kw_only=True):
    """A (partial) fill. ``price`` includes slippage; ``slippage`` is its cost in money
    (always >= 0 when slippage hurts), ``commission`` the fee in money."""

    fill_id: str
    order_id: str
    strategy_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    commission: float = 0.0
    slippage: float = 0.0
    remaining_quantity: float = 0.0
    reason: str = ""


# --------------------------------------------------------------------------- portfolio


class PositionChanged(Event, frozen=True, kw_only=True):
    """A position's quantity changed after a fill. ``quantity`` is signed (short < 0)."""

    symbol: str
    quantity: float
    avg_price: float
    realized_pnl: float
    last_fill_id: str = ""


class PortfolioSnapshot(Event, frozen=True, kw_only=True):
    """The account marked at ``ts_event``: equity = cash + positions_value.

    ``realized_pnl`` and ``unrealized_pnl`` are price P&L (slippage included, since it is
    in the fill prices); ``commission`` and ``slippage`` are the run's cumulative costs in
    money; ``income`` is the cumulative cash that came without a trade (dividends
    received less dividends paid on shorts) and ``borrow_fees`` the
    cumulative cost of shorts, so equity = initial cash + realized + unrealized -
    commission + income - borrow_fees.
    """

    equity: float
    cash: float
    positions_value: float
    gross_exposure: float
    net_exposure: float
    num_positions: int
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    commission: float = 0.0
    slippage: float = 0.0
    income: float = 0.0
    borrow_fees: float = 0.0


# --------------------------------------------------------------------------- stopping


class StopTrading(Event, frozen=True, kw_only=True):
    """Ask the risk manager to stop trading now (an operator's ``ml4t live --halt``, a
    session stopping on Ctrl-C): ``action`` says how far (:class:`StopAction`),
    ``reason`` why, ``source`` who asked."""

    action: StopAction
    reason: str
    source: str = ""


class TradingStopped(Event, frozen=True, kw_only=True):
    """The risk manager stopped trading: the kill switch tripped (``rule`` names the limit:
    ``daily_loss``, ``drawdown``, ``error_rate``) or a :class:`StopTrading` asked for it
    (``rule="requested"``); ``source`` is who stopped it (``kill_switch``, or the
    request's source: ``operator``, ``session``). ``cancelled`` are the open orders it
    cancelled, ``closing`` the market orders it sent to close every position
    (``flatten``). From then on every new order is refused."""

    action: StopAction
    rule: str
    reason: str
    source: str = ""
    cancelled: list[str] = msgspec.field(default_factory=list)
    closing: list[str] = msgspec.field(default_factory=list)


class SessionResumed(Event, frozen=True, kw_only=True):
    """A live session restarted from its journal: the journal's events were replayed
    through the graph (``replayed`` of them, journal clock ``first_ns`` to ``last_ns``)
    and it continues from here. ``positions`` and ``open_orders`` are the state restored
    (signed quantity per symbol, order ids); ``previous_end`` says how the earlier part
    ended (its trailer's reason, or that the journal was cut short); ``divergence`` is
    empty when the strategies re-made exactly the orders the journal holds. It is the
    first event written after a resume: the journal's resume marker."""

    run_id: str
    replayed: int
    first_ns: int
    last_ns: int
    positions: dict[str, float] = msgspec.field(default_factory=dict)
    open_orders: list[str] = msgspec.field(default_factory=list)
    previous_end: str = ""
    divergence: str = ""


# --------------------------------------------------------------------------- runtime


class TimerFired(Event, frozen=True, kw_only=True):
    """A timer set by ``component`` reached its time. ``ts_event`` is the scheduled time."""

    name: str
    component: str


class ComponentStateChanged(Event, frozen=True, kw_only=True):
    component: str
    state: ComponentState


class ComponentFailed(Event, frozen=True, kw_only=True):
    """A component raised. ``event_type`` is what it was handling (empty if none)."""

    component: str
    error_type: str
    message: str
    event_type: str = ""
    traceback: str = ""


# --------------------------------------------------------------------------- live venues


class VenueLink(enum.StrEnum):
    """The state of one connection to a live venue (a :class:`VenueConnection`)."""

    CONNECTED = "connected"  # first opened (a market-data link: live bars start)
    WARMING_UP = "warming_up"  # a market-data link replays history before its live bars
    LOST = "lost"  # dropped; the client is reconnecting
    RESTORED = "restored"  # open again after a loss (the broker reconciles the account)
    FAILED = "failed"  # given up (credentials refused, attempts exhausted): the run stops


class VenueConnection(Event, frozen=True, kw_only=True):
    """A live venue's connection changed state. ``link`` names which one (``trading``,
    ``trade_updates``, ``market_data``); ``attempt`` counts the tries of a reconnect;
    ``reason`` says why, never with a credential in it."""

    venue: str
    link: str
    state: VenueLink
    reason: str = ""
    attempt: int = 0


class VenueOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order working at a live venue, as its account reports it. ``order_id`` and
    ``strategy_id`` are ours when the venue's client order id is one this graph's
    namespace gave (empty for an order placed elsewhere); ``venue_order_id`` is the
    venue's own id and ``status`` its word for the order's state."""

    order_id: str
    strategy_id: str = ""
    venue_order_id: str = ""
    symbol: str
    side: OrderSide
    quantity: float
    filled_quantity: float = 0.0
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    status: str = ""


class AccountDifference(msgspec.Struct, frozen=True, kw_only=True):
    """One way a venue's account differs from what the graph expects (reported by a
    reconciliation, never applied silently). ``kind``: ``position`` (``subject`` the
    symbol, the quantities signed), ``missing_order`` (expected open, not at the venue),
    ``unexpected_order`` (open at the venue, not expected; ``subject`` our order id or the
    venue's), ``cash``; ``detail`` is the sentence a log line shows."""

    kind: str
    subject: str
    expected: float | None = None
    actual: float | None = None
    detail: str = ""


class AccountReconciled(Event, frozen=True, kw_only=True):
    """A live venue's account, read at start (``reason="start"``) or after a reconnect
    (``"reconnect"``) and compared with what the graph expects: cash, signed positions
    with their average prices, the orders working there, and every difference found.

    ``adopted`` marks the session's starting state: the venue's cash and positions
    replace the configured starting cash (the portfolio takes them, published before
    any fill); otherwise the differences are only reported.
    """

    venue: str
    reason: str
    cash: float | None = None
    equity: float | None = None
    positions: dict[str, float] = msgspec.field(default_factory=dict)
    avg_prices: dict[str, float] = msgspec.field(default_factory=dict)
    open_orders: list[VenueOrder] = msgspec.field(default_factory=list)
    differences: list[AccountDifference] = msgspec.field(default_factory=list)
    adopted: bool = False
