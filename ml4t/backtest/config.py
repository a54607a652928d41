"""One YAML file describes a run; it decodes into :class:`RunConfig`.

A top-level ``preset`` (``realistic``, ``vectorbt``, ``backtrader``, ``zipline``) fills in
execution and risk knobs that reproduce another framework; keys the config sets win.

Sections: ``backtest`` (window, capital, calendar), ``data`` (the feed), ``execution``
(the broker: fills and costs), ``risk`` (pre-trade rules), ``portfolio`` (account
checks), ``reporting`` (the recorder's outputs), ``strategy`` (which class, with
which parameters) and ``live`` (``ml4t live``: the market-data and execution
adapters). Unknown keys, wrong types and bad values fail before any work with the path
of the key (``$.execution.slippage``) and what was expected; ``${VAR}`` and
``${VAR:-default}`` take values from the environment; ``--set key.path=value`` overrides
a key from the command line. Relative paths are relative to the config file. A file is
read with the limits of :mod:`ml4t.backtest._yaml` (size with aliases expanded, nesting
depth, no duplicate keys, UTF-8 text).

The starting cash is one number: ``backtest.initial_capital`` (the proposal's key).
``portfolio.initial_cash`` names the same number; either may be given, both only if
they are equal.

Everything here can also be built in Python, section by section.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
import sys
import threading
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard

import msgspec
from msgspec import Meta

from ml4t.backtest._yaml import apply_overrides, convert, interpolate_env, read_yaml, to_yaml
from ml4t.backtest.data.config import FeedConfig, time_ns
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.execution.config import BrokerConfig
from ml4t.backtest.execution.presets import PresetName, apply_preset
from ml4t.backtest.portfolio import PortfolioConfig
from ml4t.backtest.record.config import ReportingConfig
from ml4t.backtest.risk.config import RiskConfig
from ml4t.backtest.strategy import StrategyBase

__all__ = [
    "BacktestSection",
    "LiveAdapterSection",
    "LiveSection",
    "PluginsSection",
    "RunConfig",
    "StrategySection",
    "check_paths",
    "config_hash",
    "dump_config",
    "load_config",
    "load_strategy_class",
]

_IMPORT_LOCK = threading.Lock()

STRATEGY_GROUP = "ml4t.strategies"


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A config section. Subclasses repeat ``frozen=True``: msgspec inherits it, but type
    checkers read a subclass without it as a mutable dataclass under a frozen one."""


class BacktestSection(_Section, frozen=True):
    """The run itself. ``start_date``/``end_date`` (ISO dates or times; ``end_date`` is
    inclusive) bound the data; ``calendar`` names a pandas_market_calendars calendar for
    DAY-order expiry, session timers and annualisation. ``initial_capital`` is the
    starting cash: a finite amount > 0."""

    name: Annotated[str, Meta(min_length=1)] = "backtest"
    start_date: str | None = None
    end_date: str | None = None
    initial_capital: Annotated[float, Meta(gt=0)] = 100_000.0
    calendar: str | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.initial_capital):
            raise ConfigError(
                f"initial_capital must be a finite amount > 0; got {self.initial_capital}"
            )
        start = time_ns(self.start_date, "start_date")
        end = time_ns(self.end_date, "end_date")
        if start is not None and end is not None and end < start:
            raise ConfigError(f"end_date {self.end_date} is before start_date {self.start_date}")


class StrategySection(_Section, frozen=True):
    """Which strategy: a class in a Python file (``path`` + ``class``), in an importable
    module (``module`` + ``class``), or a plugin by entry-point name (``plugin``)."""

    path: str | None = None
    module: str | None = None
    class_: str | None = msgspec.field(default=None, name="class")
    plugin: str | None = None
    name: Annotated[str, Meta(min_length=1)] = "strategy"
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        given = [k for k in ("path", "module", "plugin") if getattr(self, k)]
        if len(given) != 1:
            raise ConfigError(
                "give exactly one of path (a .py file), module (an importable module) or "
                f"plugin (an entry point in {STRATEGY_GROUP!r}); got {given or 'none'}"
            )
        if self.plugin is None and not self.class_:
            raise ConfigError(f"'class' is required with {given[0]}: name the strategy class")


class PluginsSection(_Section, frozen=True):
    """Installed plugins the run uses, by entry-point name (``ml4t plugins`` lists them).

    - ``feed``: a feed class, built as ``Feed(config.data)``, instead of ParquetFeed;
    - ``broker``: a broker class, built as ``Broker(config.execution)``;
    - ``recorder``: a recorder class, built as ``Recorder(config.reporting)``, with a
      ``results`` attribute like :class:`~ml4t.backtest.record.Recorder`'s;
    - ``components``: extra component classes, built with no arguments.

    Cost models, strategies and risk rules are named where they are used
    (``execution.commission.model``, ``strategy.plugin``, ``risk.rules``).
    """

    feed: str | None = None
    broker: str | None = None
    recorder: str | None = None
    components: list[str] = msgspec.field(default_factory=list)


_SECRET_KEY = re.compile(r"secret|password|passphrase|token|api_?key|key_?id", re.IGNORECASE)
"""Parameter names that look like credentials: refused in ``live.*.params``, which are
written to the results and the journal; credentials come from ``live.credentials_*``."""


class LiveAdapterSection(_Section, frozen=True):
    """One live adapter: ``adapter`` names it (an entry point in
    ``ml4t.backtest.live_data`` or ``ml4t.backtest.live_brokers``, or a built-in:
    ``scripted`` bars for data, ``simulated`` for the broker), ``params`` are passed to
    its factory as keyword arguments. Credentials are never params (the config is
    written to the results and the journal): name them in ``live.credentials_env`` or
    ``live.credentials_file``."""

    adapter: Annotated[str, Meta(min_length=1)]
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.params:
            if _SECRET_KEY.search(key):
                raise ConfigError(
                    f"params.{key}: this looks like a credential, and params are written to "
                    "the results and the journal; give it in live.credentials_env (an "
                    "environment variable) or live.credentials_file instead"
                )


class LiveSection(_Section, frozen=True):
    """``ml4t live``: the same graph with a live market-data adapter for the feed and a
    live execution adapter for the broker (``docs/live.md``).

    - ``data``: the market-data adapter (required for ``ml4t live``);
    - ``broker``: the execution adapter; ``simulated`` (the default) fills orders by the
      ``execution`` section's rules on the live bars (forward testing, as
      ``--dry-run`` forces);
    - ``symbols``: the universe, in code order (default: the data adapter's ``symbols``
      param);
    - ``credentials_env`` (param name -> environment variable) and ``credentials_file``
      (a YAML map of param name -> value, readable by its owner only): credentials,
      handed to both adapters as one ``credentials`` argument, never logged or written;
    - ``runs_dir``: where each session's run directory goes (default: the
      ``reporting.output_dir`` with ``-live`` appended, else ``ml4t-live``);
    - ``cancel_on_stop``: cancel every open order when the session stops (Ctrl-C,
      SIGTERM); ``on_mismatch``: when the venue's positions differ from the graph's at
      start, ``fail`` or ``warn``; ``on_divergence``: when a restart's replay of the
      journal does not re-make the journal's orders, ``fail`` or ``warn``.
    """

    data: LiveAdapterSection | None = None
    broker: LiveAdapterSection = msgspec.field(
        default_factory=lambda: LiveAdapterSection(adapter="simulated")
    )
    symbols: list[str] = msgspec.field(default_factory=list)
    credentials_env: dict[str, str] = msgspec.field(default_factory=dict)
    credentials_file: str | None = None
    runs_dir: str | None = None
    cancel_on_stop: bool = True
    on_mismatch: Literal["fail", "warn"] = "fail"
    on_divergence: Literal["fail", "warn"] = "fail"

    def __post_init__(self) -> None:
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"symbols: a symbol is listed twice in {self.symbols}")


class RunConfig(_Section, frozen=True):
    """A whole run.

    ``preset`` names a set of execution knobs reproducing another framework
    (``realistic``, the default, ``vectorbt``, ``backtrader``, ``zipline``; see
    :mod:`ml4t.backtest.execution.presets`). :func:`load_config` fills the preset's keys
    into ``execution`` and ``risk`` wherever the config does not set them: **keys the
    user sets win over the preset**. A RunConfig built in Python gets no preset values;
    build it through ``load_config({...})`` to apply one.

    The starting cash is ``backtest.initial_capital``; a ``portfolio`` section's
    ``initial_cash`` must equal it (``load_config`` fills in whichever is not given).
    """

    preset: PresetName = "realistic"
    backtest: BacktestSection = msgspec.field(default_factory=BacktestSection)
    data: FeedConfig = msgspec.field(default_factory=FeedConfig)
    execution: BrokerConfig = msgspec.field(default_factory=BrokerConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    portfolio: PortfolioConfig | None = None
    reporting: ReportingConfig = msgspec.field(default_factory=ReportingConfig)
    strategy: StrategySection | None = None
    plugins: PluginsSection = msgspec.field(default_factory=PluginsSection)
    live: LiveSection | None = None

    def __post_init__(self) -> None:
        capital = self.backtest.initial_capital
        cash = self.portfolio.initial_cash if self.portfolio is not None else None
        if cash is not None and cash != capital:
            raise ConfigError(_two_starting_cash(capital, cash))


def load_config(
    source: str | Path | dict[str, Any],
    *,
    overrides: Iterable[str] = (),
    environ: dict[str, str] | None = None,
) -> RunConfig:
    """Read, interpolate, override and decode a run config; paths become absolute."""
    base = Path.cwd()
    if isinstance(source, dict):
        data = dict(source)
    else:
        data = read_yaml(source)
        base = Path(source).resolve().parent
    data = interpolate_env(data, environ)
    data = apply_overrides(data, list(overrides))
    data = _one_starting_cash(data)
    data = _accept_proposal_data_shape(data)
    data = apply_preset(data)  # the user's own keys win over the preset's
    config = _resolve_paths(convert(data, RunConfig, "config"), base)
    check_paths(config)
    return config


_DATA_FILES = ("asset", "signal_data", "context", "corporate_actions", "universe")
"""The data sections that name files (relative to the config file's folder)."""


def check_paths(config: RunConfig) -> None:
    """ConfigError naming the key of a data or strategy path that matches no file."""
    for key in _DATA_FILES:
        src = getattr(config.data, key)
        if src is None or src.path is None:
            continue
        path = Path(src.path)
        if not (path.exists() or any(path.parent.glob(path.name))):
            raise ConfigError(f"$.data.{key}.path: {src.path!r} matches no file or directory")
    strategy = config.strategy
    if strategy is not None and strategy.path is not None and not Path(strategy.path).is_file():
        raise ConfigError(f"$.strategy.path: file {strategy.path!r} does not exist")


def _two_starting_cash(capital: Any, cash: Any) -> str:
    return (
        f"$.backtest.initial_capital ({capital}) and $.portfolio.initial_cash ({cash}) "
        "differ: both are the starting cash; give backtest.initial_capital only, or the "
        "same value in both"
    )


def _is_amount(value: object) -> TypeGuard[float]:
    """A finite number > 0, as the starting cash must be."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value > 0


def _one_starting_cash(data: dict[str, Any]) -> dict[str, Any]:
    """Make ``backtest.initial_capital`` and ``portfolio.initial_cash`` one number: when
    one is given it fills in the other, when both are given they must be equal. A value
    that is not a finite amount > 0 is not copied: the decoder reports it at the key the
    user wrote (an ``initial_cash`` alone is checked here, as its decoder allows 0)."""
    backtest, portfolio = data.get("backtest", {}), data.get("portfolio")
    if not (isinstance(backtest, dict) and isinstance(portfolio, dict)):
        return data  # no portfolio section, or a section the decoder will refuse
    given_capital, given_cash = "initial_capital" in backtest, "initial_cash" in portfolio
    capital, cash = backtest.get("initial_capital"), portfolio.get("initial_cash")
    if given_capital and given_cash:
        if _is_amount(capital) and _is_amount(cash) and float(capital) != float(cash):
            raise ConfigError(_two_starting_cash(capital, cash))
        return data
    if given_capital and _is_amount(capital):
        return {**data, "portfolio": {**portfolio, "initial_cash": capital}}
    if given_cash:
        if not _is_amount(cash):
            raise ConfigError(
                "$.portfolio.initial_cash: the starting cash must be a finite amount > 0; "
                f"got {cash!r}"
            )
        return {**data, "backtest": {**backtest, "initial_capital": cash}}
    return data


_OHLCV = ["open", "high", "low", "close", "volume"]


def _accept_proposal_data_shape(data: dict[str, Any]) -> dict[str, Any]:
    """Read the original proposal's ``data`` keys too: ``asset_data`` with
    ``columns: {ohlcv, signals, indicators}`` becomes ``asset``, ``context_data`` becomes
    ``context``. The canonical keys are written back by :func:`dump_config`."""
    section = data.get("data")
    if not isinstance(section, dict) or not {"asset_data", "context_data"} & set(section):
        return data
    section = dict(section)
    for old, new in (("asset_data", "asset"), ("context_data", "context")):
        if old not in section:
            continue
        if new in section:
            raise ConfigError(f"$.data: give {new} or {old} (the proposal's name), not both")
        source = dict(section.pop(old) or {})
        columns = dict(source.pop("columns", None) or {})
        ohlcv = columns.pop("ohlcv", None)
        if ohlcv is not None and list(ohlcv) != _OHLCV:
            raise ConfigError(
                f"$.data.{old}.columns.ohlcv: ml4t reads OHLCV from columns named "
                f"{', '.join(_OHLCV)}; got {list(ohlcv)} (rename them in the data)"
            )
        for key in ("signals", "indicators"):
            if key in columns:
                source[key] = columns.pop(key)
        if columns:
            raise ConfigError(
                f"$.data.{old}.columns: unknown keys {sorted(columns)}; expected ohlcv, "
                "signals, indicators"
            )
        section[new] = source
    return {**data, "data": section}


def dump_config(config: RunConfig) -> str:
    """The config as YAML that :func:`load_config` reads back into an equal config."""
    return to_yaml(config)


def config_hash(config: RunConfig) -> str:
    """A stable hash of the resolved config (sha256 of its canonical JSON)."""
    canonical = msgspec.json.encode(msgspec.to_builtins(config), order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def _resolve_paths(config: RunConfig, base: Path) -> RunConfig:
    def absolute(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute():
            return value
        return str((base / value).resolve())

    data = config.data
    sources = {}
    for key in _DATA_FILES:
        src = getattr(data, key)
        if src is not None and src.path is not None:
            sources[key] = msgspec.structs.replace(src, path=absolute(src.path))
    if sources:
        data = msgspec.structs.replace(data, **sources)
    reporting = config.reporting
    if reporting.output_dir is not None:
        reporting = msgspec.structs.replace(reporting, output_dir=absolute(reporting.output_dir))
    strategy = config.strategy
    if strategy is not None and strategy.path is not None:
        strategy = msgspec.structs.replace(strategy, path=absolute(strategy.path))
    execution = config.execution
    if execution.borrow.rates_path is not None:
        borrow = msgspec.structs.replace(
            execution.borrow, rates_path=absolute(execution.borrow.rates_path)
        )
        execution = msgspec.structs.replace(execution, borrow=borrow)
    live = config.live
    if live is not None and (live.credentials_file is not None or live.runs_dir is not None):
        live = msgspec.structs.replace(
            live,
            credentials_file=absolute(
                str(Path(live.credentials_file).expanduser()) if live.credentials_file else None
            ),
            runs_dir=absolute(live.runs_dir),
        )
    return msgspec.structs.replace(
        config, data=data, reporting=reporting, strategy=strategy, execution=execution, live=live
    )


def load_strategy_class(section: StrategySection) -> type[StrategyBase]:
    """The strategy class a config names; ConfigError says what could not be found."""
    if section.plugin is not None:
        found = [ep for ep in entry_points(group=STRATEGY_GROUP) if ep.name == section.plugin]
        if not found:
            raise ConfigError(
                f"$.strategy.plugin: no strategy plugin named {section.plugin!r} is installed "
                f"(entry point group {STRATEGY_GROUP!r})"
            )
        try:
            cls = found[0].load()
        except Exception as exc:
            raise ConfigError(
                f"$.strategy.plugin: plugin {section.plugin!r} ({found[0].value}) failed to "
                f"import: {type(exc).__name__}: {exc}"
            ) from exc
        return _check_strategy(cls, f"plugin {section.plugin!r}")
    if section.path is not None:
        module = _import_file(Path(section.path))
        where = section.path
    else:
        assert section.module is not None
        try:
            module = importlib.import_module(section.module)
        except ImportError as exc:
            raise ConfigError(
                f"$.strategy.module: cannot import {section.module!r}: {exc}"
            ) from exc
        where = section.module
    cls = getattr(module, section.class_ or "", None)
    if cls is None:
        available = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type)
            and issubclass(v, StrategyBase)
            and v.__module__ == module.__name__
        )
        raise ConfigError(
            f"$.strategy.class: {where} has no class {section.class_!r}; strategy classes "
            f"there: {available or 'none'}"
        )
    return _check_strategy(cls, f"{where}:{section.class_}")


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"$.strategy.path: file {str(path)!r} does not exist")
    name = f"ml4t_strategy_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    # runs in threads (a sweep's shared data pass) must not see a module half executed
    with _IMPORT_LOCK:
        if name in sys.modules:
            return sys.modules[name]
        return _exec_file(name, path)


def _exec_file(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"$.strategy.path: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(
            f"$.strategy.path: {str(path)!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _check_strategy(cls: Any, where: str) -> type[StrategyBase]:
    if not (isinstance(cls, type) and issubclass(cls, StrategyBase)):
        raise ConfigError(f"$.strategy: {where} is not a Strategy or BatchStrategy subclass")
    return cls
