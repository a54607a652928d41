"""``ml4t live CONFIG``: the backtest's graph against a live market-data feed and a venue.

The graph ``ml4t run`` builds, with the feed replaced by a :class:`LiveFeed` over the
market-data adapter ``live.data`` names and the broker by a :class:`LiveBroker` over the
execution adapter ``live.broker`` names (``simulated``, or ``--dry-run``: our fill rules
on the live bars, forward testing with no account; ``--paper``: the venue's paper
endpoint), on a :class:`~ml4t.backtest.live.LiveClock` (real time), with the same live
view as ``ml4t paper``. ``docs/live.md`` is the guide.

Each session has a **run directory**, ``<live.runs_dir>/<run id>``::

    journal.ml4tj     every event, written as it happens (a kill loses nothing written)
    config.yaml       the resolved config the session was started with
    session.json      run id, mode, pid and state (running, stopped) of the session
    HALT              written by ``ml4t live --halt RUN_DIR``; renamed HALT.accepted
    results/          the recorder's results, rewritten whenever the session stops

Starting a session in a run directory that holds a journal (``--run-id ID`` of an
earlier session, or ``--resume RUN_DIR``) **resumes** it (:mod:`~ml4t.backtest.live.resume`):
the journal is replayed through the graph, the venue's positions are reconciled against
the journal's, and the journal goes on in the same file after a ``SessionResumed``
marker. A run that the kill switch or an operator stopped does not resume.

Stopping: Ctrl-C or SIGTERM asks the risk manager to stop trading (``cancel_on_stop``:
every open order cancelled through the normal path), waits for the venue to confirm
(10 s at most), then flushes the results marked incomplete (exit 130 or 143). The kill
switch (``risk.kill_switch``) or ``ml4t live --halt RUN_DIR`` from another terminal stop
trading the same way (``halt`` or ``flatten``) and end the session (exit 3).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

import anyio
import msgspec

from ml4t.backtest import plugins
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import on
from ml4t.backtest.config import LiveAdapterSection, RunConfig, dump_config
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.data.feed import OHLCV
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.events import SessionResumed, SessionStarted, StopAction, TradingStopped
from ml4t.backtest.journal import JournalRecorder
from ml4t.backtest.live._runner import SessionRunner
from ml4t.backtest.live.adapters import ExecutionClient, MarketDataClient
from ml4t.backtest.live.clients import SimulatedExecution
from ml4t.backtest.live.clocks import LiveClock
from ml4t.backtest.live.credentials import Credentials, RedactingFilter, load_credentials
from ml4t.backtest.live.monitor import LiveView, PaperMonitor
from ml4t.backtest.live.resume import SESSION_SOURCE, JournalVenue, ReplayPlan
from ml4t.backtest.live.roles import LiveBroker, LiveFeed, SessionControl, SimulatedVenue
from ml4t.backtest.live.scripted import ScriptedBars
from ml4t.backtest.logging import ROOT_LOGGER
from ml4t.backtest.record.journal import JOURNAL_FILE
from ml4t.backtest.record.outputs import atomic_write_json, config_hash, new_run_id, to_builtins
from ml4t.backtest.risk.killswitch import HaltStop, stop_reason
from ml4t.backtest.risk.manager import RiskManager
from ml4t.backtest.runtime import Runtime
from ml4t.backtest.strategy import StrategyBase
from ml4t.backtest.topics import RESUMES

__all__ = [
    "CONFIG_FILE",
    "HALT_FILE",
    "MODES",
    "RESULTS_DIR",
    "SESSION_FILE",
    "LiveSession",
    "runs_dir",
]

RESULTS_DIR = "results"
CONFIG_FILE = "config.yaml"
SESSION_FILE = "session.json"
HALT_FILE = "HALT"
HALT_ACCEPTED = "HALT.accepted"
MODES = ("live", "paper", "dry-run")
"""``live`` (the venue's live endpoint), ``paper`` (its paper endpoint: ``--paper``),
``dry-run`` (forward testing: the simulated venue on live bars, ``--dry-run``)."""

HALT_POLL_S = 0.2  # how often a session looks for a HALT file
STOP_GRACE_S = 10.0  # how long a stopping session waits for the venue to confirm cancels

DATA_ADAPTERS: Mapping[str, Callable[..., Any]] = MappingProxyType({"scripted": ScriptedBars})
"""Built-in market-data adapters (``live.data.adapter``), before the plugin registry."""
SIMULATED = "simulated"
"""The built-in execution adapter: :class:`SimulatedVenue` (forward testing)."""


def runs_dir(config: RunConfig) -> Path:
    """Where ``config``'s sessions get their run directories: ``live.runs_dir``, else the
    results directory with ``-live`` appended, else ``ml4t-live``."""
    live = config.live
    if live is not None and live.runs_dir is not None:
        return Path(live.runs_dir)
    out = config.reporting.output_dir
    if out is not None:
        base = Path(out)
        return base.with_name(base.name + "-live")
    return Path("ml4t-live")


def _data_extra(config: RunConfig) -> dict[str, Any]:
    """What a data plugin's factory may be given besides its params: the universe
    (``symbols=``, when ``live.symbols`` lists it) and the run's ``data`` section
    (``data=``), whose signals and context it joins onto its bars as of their time.
    Only a factory that names them among its parameters gets them (:func:`_declared`)."""
    assert config.live is not None
    if config.live.data is None or config.live.data.adapter in DATA_ADAPTERS:
        return {}
    extra: dict[str, Any] = {"data": config.data}
    if config.live.symbols:
        extra["symbols"] = list(config.live.symbols)
    return extra


def _declared(factory: Callable[..., Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The ``extra`` keywords that ``factory`` names as parameters: a factory written
    before one was offered (or passing ``**params`` on) is not handed it."""
    try:
        names = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: offer nothing
        return {}
    return {key: value for key, value in extra.items() if key in names}


def _build(
    kind: str,
    key: str,
    section: LiveAdapterSection,
    builtin: Mapping[str, Callable[..., Any]],
    credentials: Credentials | None,
    extra: Mapping[str, Any],
    offered: Mapping[str, Any] = MappingProxyType({}),
) -> Any:
    """The client ``section`` names: its factory called with its params as keywords,
    ``extra`` (always) and those of ``offered`` that it declares."""
    factory = builtin.get(section.adapter) or plugins.load(kind, section.adapter)
    kwargs = {**section.params, **_declared(factory, offered), **extra}
    if credentials is not None and section.adapter not in builtin:
        kwargs["credentials"] = credentials
    try:
        return factory(**kwargs)
    except TypeError as exc:
        message = credentials.redact(str(exc)) if credentials is not None else str(exc)
        raise ConfigError(
            f"$.live.{key}: the {section.adapter!r} adapter refused its arguments "
            f"({', '.join(sorted(kwargs))}): {message}"
        ) from None


class LiveSession(SessionRunner):
    """One live session of ``config`` in ``run_dir`` (a restart when it holds a journal).

    ``mode``: one of :data:`MODES`. ``data_client`` / ``execution_client`` replace the
    adapters the config names (in-process clients, tests). ``view``, ``echo`` and
    ``handle_signals`` are as for :class:`~ml4t.backtest.live.PaperSession`.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        run_dir: str | Path,
        mode: str = "live",
        strategy: StrategyBase | None = None,
        data_client: MarketDataClient | None = None,
        execution_client: ExecutionClient | None = None,
        view: bool | None = None,
        echo: TextIO | None = None,
        handle_signals: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        live = config.live
        if live is None or live.data is None:
            raise ConfigError(
                "$.live.data: ml4t live needs a market-data adapter, e.g. live: {data: "
                "{adapter: NAME, params: {...}}} (docs/live.md)"
            )
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.live = live
        self.mode = mode
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.journal_path = self.run_dir / JOURNAL_FILE
        self.plan = ReplayPlan(self.journal_path) if self.journal_path.is_file() else None
        plan = self.plan
        if plan is not None and plan.stopped is not None:
            raise ConfigError(
                f"run {self.run_id} was stopped: {stop_reason(plan.stopped)}; a stopped run "
                "does not resume: start a new run (another --run-id)"
            )
        simulated = mode == "dry-run" or live.broker.adapter == SIMULATED
        if mode == "paper" and simulated:
            raise ConfigError(
                "--paper trades on a venue's paper endpoint: name its adapter in "
                "live.broker.adapter (the simulated venue is --dry-run)"
            )
        self.credentials = load_credentials(
            live.credentials_env, live.credentials_file, environ=environ
        )
        data = data_client or _build(
            "live_data", "data", live.data, DATA_ADAPTERS, self.credentials, {}, _data_extra(config)
        )
        if not isinstance(data, MarketDataClient):
            raise ConfigError(
                f"$.live.data: the {live.data.adapter!r} adapter made {type(data).__name__}, "
                "not a MarketDataClient (ml4t.backtest.live.MarketDataClient)"
            )
        self.data_client = data
        symbols = tuple(live.symbols) or tuple(getattr(data, "symbols", ()))
        if not symbols:
            raise ConfigError("$.live.symbols: the universe is unknown; list the symbols to trade")
        if plan is not None and plan.session is not None and plan.session.symbols != list(symbols):
            raise ConfigError(
                f"$.live.symbols: run {self.run_id} trades {plan.session.symbols}; a resumed "
                f"session must trade the same universe, not {list(symbols)}"
            )
        cfg = _live_config(config, self.run_dir / RESULTS_DIR)
        self.config = cfg
        calendar = SessionCalendar(cfg.backtest.calendar) if cfg.backtest.calendar else None
        if execution_client is None:
            if simulated:
                execution_client = SimulatedVenue(
                    cfg.execution,
                    symbols=symbols,
                    calendar=calendar,
                    timezone=cfg.data.asset.timezone,
                    cash_account=cfg.risk.account == "cash",
                )
            else:
                extra = {"paper": True} if mode == "paper" else {}
                execution_client = _build(
                    "live_brokers", "broker", live.broker, {}, self.credentials, extra
                )
        if not isinstance(execution_client, ExecutionClient):
            raise ConfigError(
                f"$.live.broker: the {live.broker.adapter!r} adapter made "
                f"{type(execution_client).__name__}, not an ExecutionClient "
                "(ml4t.backtest.live.ExecutionClient)"
            )
        self.execution_client = execution_client
        now = time.time_ns()
        session = SessionStarted(
            ts_event=0,
            run_id=self.run_id,
            config_hash=config_hash(cfg),
            calendar=cfg.backtest.calendar or "",
            timezone=cfg.data.asset.timezone or "UTC",
            initial_cash=cfg.backtest.initial_capital,
            sessions_per_year=calendar.sessions_per_year(now) if calendar is not None else 0,
            symbols=list(symbols),
            columns={"symbol": "symbol", **dict.fromkeys(OHLCV, "ohlcv")},
        )
        resuming = plan is not None
        redact = self.credentials.redact if self.credentials is not None else None
        self.feed = LiveFeed(
            data, symbols=symbols, session=session, resuming=resuming, redact=redact
        )
        # a venue in this process died with the last one: it starts empty and the
        # replay rebuilds it; any other must hold what the journal says it holds
        rebuild = isinstance(execution_client, SimulatedExecution)
        positions = dict(plan.positions) if plan is not None and not rebuild else {}
        self.broker = LiveBroker(
            execution_client,
            expected_positions=positions,
            on_mismatch=live.on_mismatch,
            resuming=resuming,
            rebuild_venue=rebuild,
            redact=redact,
        )
        engine = BacktestEngine(cfg, strategy=strategy, feed=self.feed, broker=self.broker)
        super().__init__(engine, handle_signals=handle_signals)
        shown = sys.stderr.isatty() if view is None else view
        self.echo = None if shown else echo
        self.control = SessionControl()
        self.halt_stop = HaltStop(self._trading_stopped, grace_s=STOP_GRACE_S)
        self.monitor = LiveMonitor(echo=self.echo, resuming=resuming)
        self.replay = (
            JournalVenue(plan, run_id=self.run_id, on_divergence=live.on_divergence)
            if plan is not None
            else None
        )
        header = {"config": to_builtins(cfg), "run_id": self.run_id, "mode": mode}
        # write-ahead: each event is journaled as it is published, before anyone acts
        # on it (an approved order is on disk before it reaches the venue)
        self.journal = JournalRecorder(
            self.journal_path,
            header=header,
            continuous=True,
            resume=resuming,
            phase=Phase.SESSION,
        )
        for component in (self.control, self.halt_stop, self.monitor, self.replay, self.journal):
            if component is not None:
                engine.add(component)
        self.view = LiveView(
            self.monitor, title=f"ml4t live ({mode}) {self.run_id}", enabled=shown, echo=self.echo
        )
        self.clock: LiveClock | None = None
        self.trading_stopped: TradingStopped | None = None
        self.data_ended = False

    # ------------------------------------------------------------ building

    def build(self) -> Runtime:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / HALT_ACCEPTED).unlink(missing_ok=True)
        (self.run_dir / CONFIG_FILE).write_text(dump_config(self.config))
        self.clock = LiveClock(replay_from_ns=self.plan.first_ns if self.plan else None)
        runtime = self.engine.build(clock=self.clock)
        runtime.exit_when_idle = False  # a live feed has no end: the session is stopped
        self.runtime = runtime
        self._write_state("running")
        return runtime

    def _write_state(self, state: str, **extra: Any) -> None:
        atomic_write_json(
            self.run_dir / SESSION_FILE,
            {
                "run_id": self.run_id,
                "mode": self.mode,
                "pid": os.getpid(),
                "state": state,
                "updated_at": datetime.now(UTC).isoformat(),
                "journal": str(self.journal_path),
                "results": str(self.run_dir / RESULTS_DIR),
                **extra,
            },
        )

    # ------------------------------------------------------------ stopping

    @property
    def halted(self) -> bool:
        """True when the kill switch or an operator stopped trading (not a Ctrl-C)."""
        event = self.trading_stopped
        return event is not None and event.source != SESSION_SOURCE

    def _trading_stopped(self, event: TradingStopped) -> None:
        self.trading_stopped = event
        if event.source != SESSION_SOURCE:
            self.mark_incomplete(stop_reason(event))
        if self.runtime is not None:
            self.runtime.stop()

    def _stop(self, why: str) -> None:
        assert self.runtime is not None
        self.mark_incomplete(f"the live session was {why}")
        risk = self.engine.risk
        stopping = isinstance(risk, RiskManager) and risk.stopped is not None
        if self.live.cancel_on_stop and isinstance(risk, RiskManager) and not stopping:
            self.control.stop_trading(StopAction.HALT, why, source=SESSION_SOURCE)
        elif not stopping:
            self.runtime.stop()

    # ------------------------------------------------------------ beside the graph

    def _tasks(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        tasks: list[Callable[[], Coroutine[Any, Any, None]]] = [self._watch_halt_file]
        if callable(getattr(self.data_client, "run", None)):
            tasks.append(self._run_data_client)
        return tasks

    async def _run_data_client(self) -> None:
        """A client with a loop of its own (``run()``); when it returns (scripted bars
        played out), the session completes once the graph is idle."""
        await self.data_client.run()  # type: ignore[attr-defined]
        self.data_ended = True
        runtime, clock = self.runtime, self.clock
        if runtime is not None and clock is not None:
            runtime.exit_when_idle = True
            clock.schedule(clock.now_ns(), _nothing, owner="session")  # wake it to see

    async def _watch_halt_file(self) -> None:
        path = self.run_dir / HALT_FILE
        while True:
            await anyio.sleep(HALT_POLL_S)
            if not path.exists():
                continue
            try:
                request = msgspec.json.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError):
                request = {}
            os.replace(path, self.run_dir / HALT_ACCEPTED)
            action = request.get("action") if isinstance(request, dict) else None
            if action not in ("halt", "flatten"):
                kill = self.config.risk.kill_switch
                action = kill.action if kill is not None else "halt"
            reason = request.get("reason") if isinstance(request, dict) else None
            why = f"ml4t live --halt{f': {reason}' if reason else ''}"
            self.control.stop_trading(StopAction(action), why, source="operator")
            return

    async def run(self) -> Any:
        log_filter = RedactingFilter(self.credentials) if self.credentials else None
        handlers = _handlers() if log_filter is not None else []
        for handler in handlers:
            handler.addFilter(log_filter)  # type: ignore[arg-type]
        try:
            return await super().run()
        finally:
            for handler in handlers:
                handler.removeFilter(log_filter)  # type: ignore[arg-type]
            if self.runtime is not None:
                self._write_state(
                    "stopped",
                    outcome=self.runtime.outcome.value,
                    stopped=(
                        stop_reason(self.trading_stopped)
                        if self.trading_stopped is not None and self.halted
                        else None
                    ),
                )


class LiveMonitor(PaperMonitor):
    """The live view's monitor. During a restart's replay it echoes nothing (those fills
    are the journal's, printed when they happened); then it says the session resumed."""

    def __init__(self, *, echo: TextIO | None, resuming: bool) -> None:
        super().__init__(echo=None if resuming else echo, name="live-monitor")
        self._echo = echo

    @on(RESUMES, phase=Phase.RECORD)
    def _on_resumed(self, event: SessionResumed) -> None:
        self.echo = self._echo
        self.note = (
            f"resumed from the journal: {event.replayed:,} events replayed, "
            f"{len(event.positions)} position(s), {len(event.open_orders)} open order(s)"
        )
        if self.echo is not None:
            self.echo.write(self.note + "\n")
            self.echo.flush()


def _nothing() -> None:
    """An alarm that only wakes the runtime."""


def _handlers() -> list[logging.Handler]:
    """The handlers ml4t's records reach: the ``ml4t`` logger's and the root logger's."""
    found: list[logging.Handler] = []
    for logger in (logging.getLogger(ROOT_LOGGER), logging.getLogger()):
        found += [h for h in logger.handlers if h not in found]
    if logging.lastResort is not None and logging.lastResort not in found:
        found.append(logging.lastResort)
    return found


def _live_config(config: RunConfig, results: Path) -> RunConfig:
    """The config a session runs: results in the run directory (the session's own
    continuous journal replaces the recorder's)."""
    reporting = msgspec.structs.replace(config.reporting, output_dir=str(results), journal=False)
    return msgspec.structs.replace(config, reporting=reporting)


def new_run_dir(config: RunConfig, run_id: str | None = None) -> Path:
    """The run directory of a session of ``config`` with ``run_id`` (a new one if None)."""
    return runs_dir(config) / (run_id or new_run_id())
