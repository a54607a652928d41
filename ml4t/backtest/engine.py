"""BacktestEngine: assembles the standard graph, runs it, returns the results.

```
 ParquetFeed ──MarketBatch──▶ SimulatedBroker ──OrderFilled──▶ Portfolio ──▶ Recorder
      │                            ▲                              │            ▲
      └──MarketBatch──▶ Strategy ──SubmitOrder──▶ RiskManager ────┘────────────┘
```

Build it from a config (``BacktestEngine.from_config("run.yaml")``) or from Python
objects; add components (a second strategy sharing the broker, a listener on fills) with
:meth:`BacktestEngine.add`, or replace a standard one by passing your own (``broker=``,
``risk=``...). The engine only wires and runs: every component is an actor on the bus.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import msgspec
import polars as pl

from ml4t.backtest import plugins
from ml4t.backtest._blocking import run_blocking
from ml4t.backtest.clock import SimulatedClock, WallClock
from ml4t.backtest.component import Component
from ml4t.backtest.config import RunConfig, load_config, load_strategy_class
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.data.config import FeedConfig, time_ns
from ml4t.backtest.data.feed import ParquetFeed
from ml4t.backtest.errors import ComponentError, ConfigError
from ml4t.backtest.events import SessionStarted, TradingStopped
from ml4t.backtest.execution.broker import SimulatedBroker
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.progress import ProgressBar, RunProgress
from ml4t.backtest.protocols import Feed, RecorderRole
from ml4t.backtest.record.outputs import config_hash
from ml4t.backtest.record.recorder import Recorder
from ml4t.backtest.result import BacktestResult
from ml4t.backtest.risk.killswitch import HaltStop, stop_reason
from ml4t.backtest.risk.manager import RiskManager
from ml4t.backtest.runtime import RunOutcome, Runtime, run_terminable, unwrap_group
from ml4t.backtest.strategy import StrategyBase

__all__ = ["BacktestEngine", "BacktestResults", "feed_config", "run_session"]


class BacktestResults:
    """What a run produced: tables as polars DataFrames, metrics, and how it went."""

    def __init__(
        self,
        *,
        recorder: Component,
        outcome: RunOutcome,
        elapsed_time: float,
        bar_events: int,
        initial_equity: float,
    ) -> None:
        results = recorder.results if isinstance(recorder, RecorderRole) else None
        if results is None:
            raise ComponentError(
                f"the recorder {recorder.name!r} produced no results (was the graph started? "
                "is it an ml4t.backtest.protocols.RecorderRole?)",
                component=recorder.name,
            )
        self._results = results
        self.outcome = outcome
        self.elapsed_time = elapsed_time
        self.bar_events = bar_events
        self.initial_equity = initial_equity
        self.output_dir: Path | None = results.output_dir
        self.metrics: dict[str, Any] = results.metrics
        self.manifest: dict[str, Any] = results.manifest

    @property
    def complete(self) -> bool:
        """True when the run reached the end of its data and every file was written."""
        return self.outcome is RunOutcome.COMPLETED and self._results.complete

    @property
    def trades(self) -> pl.DataFrame:
        return self._results.trades

    @property
    def fills(self) -> pl.DataFrame:
        return self._results.fills

    @property
    def orders(self) -> pl.DataFrame:
        return self._results.orders

    @property
    def order_history(self) -> pl.DataFrame:
        return self._results.order_history

    @property
    def portfolio(self) -> pl.DataFrame:
        return self._results.portfolio

    @property
    def cash_flows(self) -> pl.DataFrame:
        """Dividends, borrow fees and cash in lieu: timestamp, symbol, kind, amount,
        quantity, rate."""
        return self._results.cash_flows

    @property
    def daily_returns(self) -> pl.DataFrame:
        """One row per day (session): date, return, equity, cash."""
        return self._results.daily_returns

    @property
    def daily_positions(self) -> pl.DataFrame:
        """One row per (day, symbol held at its end): date, symbol, quantity, price, value."""
        return self._results.daily_positions

    def returns(self, freq: str = "1D") -> pl.DataFrame:
        """Returns per period of ``freq`` (see :meth:`RecorderResults.returns`)."""
        return self._results.returns(freq)

    def equity(self, freq: str = "1D") -> pl.DataFrame:
        """Equity at the end of each period of ``freq``."""
        return self._results.equity(freq)

    def benchmark_returns(self, freq: str = "1D") -> pl.DataFrame:
        """The benchmark's returns per period of ``freq`` (empty without a benchmark)."""
        return self._results.benchmark_returns(freq)

    def to_pyfolio(self) -> tuple[Any, Any, Any]:
        """``(returns, positions, transactions)`` in pyfolio's shapes."""
        return self._results.to_pyfolio()

    def to_quantstats(self) -> Any:
        """Daily returns as the pd.Series quantstats takes."""
        return self._results.to_quantstats()

    def to_diagnostic(self) -> BacktestResult:
        """This run as the ``BacktestResult`` ml4t-diagnostic's ``*_from_result``
        functions take (``generate_tearsheet_from_result(results.to_diagnostic())``)."""
        return BacktestResult.from_results(self._results)

    # the proposal's names
    trades_df = trades
    portfolio_df = portfolio

    @property
    def final_equity(self) -> float:
        states = self.portfolio
        return float(states["equity"][-1]) if states.height else self.initial_equity

    @property
    def total_return(self) -> float:
        return self.final_equity / self.initial_equity - 1.0

    @property
    def events_per_second(self) -> float:
        return self.bar_events / self.elapsed_time if self.elapsed_time > 0 else math.nan

    def summary(self) -> dict[str, Any]:
        """The headline figures as a flat dict (what ``ml4t run`` prints)."""
        m = self.metrics
        return {
            "outcome": self.outcome.value,
            "bar_events": self.bar_events,
            "elapsed_s": round(self.elapsed_time, 3),
            "final_equity": self.final_equity,
            "total_return": self.total_return,
            "trades": self.trades.height,
            **{
                k: m.get(k)
                for k in ("annual_return", "sharpe_ratio", "max_drawdown", "win_rate")
                if k in m
            },
        }

    def __repr__(self) -> str:
        return (
            f"BacktestResults({self.outcome.value}, trades={self.trades.height}, "
            f"final_equity={self.final_equity:,.2f}, total_return={self.total_return:.2%})"
        )


class BacktestEngine:
    """The standard graph: feed, broker, portfolio, risk manager, strategies, recorder."""

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        strategy: StrategyBase | Iterable[StrategyBase] | None = None,
        asset: Any = None,
        signal_data: Any = None,
        context: Any = None,
        feed: Component | None = None,
        broker: Component | None = None,
        portfolio: Component | None = None,
        risk: Component | None = None,
        recorder: Component | None = None,
        progress: bool | None = False,
    ) -> None:
        self.config = config = config if config is not None else RunConfig()
        self.calendar = (
            SessionCalendar(config.backtest.calendar) if config.backtest.calendar else None
        )
        if strategy is None and config.strategy is not None:
            cls = load_strategy_class(config.strategy)
            strategy = cls(config.strategy.name, params=config.strategy.params)
        if strategy is None:
            raise ConfigError(
                "no strategy: pass strategy=... or give a 'strategy' section in the config"
            )
        self.strategies = [strategy] if isinstance(strategy, StrategyBase) else list(strategy)
        capital = config.backtest.initial_capital
        named = config.plugins
        # a feed plugin reads config.data in its own format: the engine cannot digest it
        self._config_data = feed is not None or not named.feed
        if feed is None and named.feed:
            feed = plugins.build("feeds", named.feed, self._feed_config())
        self.feed = feed or ParquetFeed(
            self._feed_config(),
            asset=asset,
            signal_data=signal_data,
            context=context,
            session=run_session(config),
            calendar=self.calendar,
        )
        if broker is None and named.broker:
            broker = plugins.build("brokers", named.broker, config.execution)
        self.broker = broker or SimulatedBroker(
            config.execution,
            timezone=config.data.asset.timezone,
            cash_account=config.risk.account == "cash",
        )
        self.portfolio = portfolio or Portfolio(
            self._portfolio_config(capital), borrow=config.execution.borrow
        )
        costs, tz = config.execution.cost_estimate(), config.data.asset.timezone
        self.risk = risk or RiskManager(config.risk, costs=costs, timezone=tz)
        if recorder is None and named.recorder:
            recorder = plugins.build("recorders", named.recorder, config.reporting)
        self.recorder = recorder or Recorder(
            config.reporting,
            run_config=config,
            fill_timing=config.execution.fill_timing,
            intrabar=config.execution.intrabar,
        )
        self.progress_counter = RunProgress()
        self.show_progress = progress
        self.extras: list[Component] = [
            plugins.load("components", name)() for name in named.components
        ]
        self.runtime: Runtime | None = None

    @classmethod
    def from_config(
        cls,
        config: RunConfig | str | Path | dict[str, Any],
        *,
        strategy: StrategyBase | Iterable[StrategyBase] | None = None,
        overrides: Iterable[str] = (),
        **kwargs: Any,
    ) -> BacktestEngine:
        """An engine for a config object, a YAML path or a dict."""
        if not isinstance(config, RunConfig):
            config = load_config(config, overrides=overrides)
        return cls(config, strategy=strategy, **kwargs)

    def add(self, component: Component) -> Component:
        """Add a component to the graph (it starts after the standard ones)."""
        self.extras.append(component)
        return component

    # ------------------------------------------------------------ running

    def build(self, *, clock: SimulatedClock | WallClock | None = None) -> Runtime:
        """The runtime with every component added, ready to run (once)."""
        feed = self.feed if isinstance(self.feed, Feed) else None
        if feed is not None:
            feed.prepare()  # validate all the data before the first event
        first = (feed.first_ts if feed is not None else None) or self._start_ns()
        runtime = Runtime(
            clock=clock or SimulatedClock(first if first is not None else 0),
            strict=self.config.backtest.strict,
            calendar=self.calendar,
            name=self.config.backtest.name,
        )
        extras = list(self.extras)
        if self.config.risk.kill_switch is not None and not any(
            isinstance(c, HaltStop) for c in extras
        ):
            extras.append(HaltStop(self._trading_stopped))  # the kill switch ends the run
        for component in (
            self.portfolio,
            self.broker,
            self.risk,
            *self.strategies,
            *extras,
            self.recorder,
            self.progress_counter,
            self.feed,
        ):
            # the recorder observes: it starts even when a component before it failed to
            # start, so that its manifest records the failure
            runtime.add(component, observer=component is self.recorder)
        self.runtime = runtime
        return runtime

    def run(self) -> BacktestResults:
        """Run to the end of the data and return the results.

        A failing component stops the run: the error (naming the component, the event,
        the symbol and the simulated time) is raised after the results written so far are
        flushed and marked failed. Ctrl-C cancels the run: the results are flushed and
        marked incomplete, then ``KeyboardInterrupt`` is raised. SIGTERM ends the run as
        Ctrl-C does, then raises :class:`~ml4t.backtest.runtime.RunTerminated`, a
        ``SystemExit`` with status 143.

        Called where an event loop already runs in this thread (Jupyter, IPython, an async
        application), the graph runs on a worker thread with a loop of its own while this
        call waits: the same results, and a kernel interrupt cancels the run as Ctrl-C
        does in a script (SIGTERM is then left to the application). In a coroutine,
        ``await engine.run_async()`` runs the graph on the caller's loop instead.
        """

        async def main() -> BacktestResults:
            return await run_terminable(self.run_async, lambda: self.runtime)

        return run_blocking(main)

    async def run_async(self) -> BacktestResults:
        """Run on the current event loop and return the results (``await
        engine.run_async()`` in a notebook cell or an async application).

        Cancelling the awaiting task cancels the run (results flushed and marked
        incomplete). No signal handler is installed: Ctrl-C and SIGTERM are the loop
        owner's to handle.
        """
        runtime = self.build()
        feed = self.feed if isinstance(self.feed, Feed) else None
        bar = ProgressBar(
            self.progress_counter,
            start_ns=feed.first_ts if feed is not None else None,
            end_ns=feed.last_ts if feed is not None else None,
            enabled=self.show_progress,
        )
        start = time.perf_counter()
        try:
            if bar.enabled:
                await _run_with_progress(runtime, bar)
            else:
                await runtime.run()
        finally:
            self.elapsed_time = time.perf_counter() - start
        return BacktestResults(
            recorder=self.recorder,
            outcome=runtime.outcome,
            elapsed_time=self.elapsed_time,
            bar_events=self.progress_counter.rows,
            initial_equity=self.config.backtest.initial_capital,
        )

    def _trading_stopped(self, event: TradingStopped) -> None:
        """The kill switch stopped trading: the results are incomplete, the run ends."""
        if isinstance(self.recorder, RecorderRole):
            self.recorder.mark_incomplete(stop_reason(event))
        if self.runtime is not None:
            self.runtime.stop()

    # ------------------------------------------------------------ assembly helpers

    def _feed_config(self) -> FeedConfig:
        return feed_config(self.config)

    def _portfolio_config(self, capital: float) -> PortfolioConfig:
        base = self.config.portfolio or PortfolioConfig()
        return msgspec.structs.replace(base, initial_cash=capital)

    def _start_ns(self) -> int | None:
        return time_ns(self.config.backtest.start_date or self.config.data.start, "start")


def feed_config(config: RunConfig) -> FeedConfig:
    """What the standard feed of a run reads: ``data`` with the backtest's dates and
    calendar applied (two runs with equal feed configs read exactly the same batches)."""
    data = config.data
    changes: dict[str, Any] = {}
    for key, value in (("start", config.backtest.start_date), ("end", config.backtest.end_date)):
        if value is not None:
            if getattr(data, key) not in (None, value):
                raise ConfigError(
                    f"$.backtest.{key}_date ({value}) and $.data.{key} "
                    f"({getattr(data, key)}) disagree; set one of them"
                )
            changes[key] = value
    if config.backtest.calendar and data.calendar is None:
        changes["calendar"] = config.backtest.calendar
    return msgspec.structs.replace(data, **changes) if changes else data


def run_session(config: RunConfig) -> SessionStarted:
    """The run's own facts the feed puts in its session handshake (config hash, calendar,
    starting cash); the feed adds the data's."""
    return SessionStarted(
        ts_event=0,
        config_hash=config_hash(config),
        calendar=config.backtest.calendar or "",
        initial_cash=config.backtest.initial_capital,
    )


async def _run_with_progress(runtime: Runtime, bar: ProgressBar) -> None:
    """Run the graph with the progress bar drawing beside it in its own task."""
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bar.run)
            try:
                await runtime.run()
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = unwrap_group(group)
        raise error from error.__cause__  # keep the failure's own cause
