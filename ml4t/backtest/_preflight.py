"""``ml4t validate``: every check ``ml4t run`` makes before the first event, without
running anything.

For a config that is the engine itself: :func:`check_config` builds the
:class:`~ml4t.backtest.BacktestEngine` the run would build (the strategy class imported
and constructed with its parameters, every plugin the config names loaded, the calendar,
the cost models) and then :meth:`~ml4t.backtest.BacktestEngine.build`, which validates
all the data, loads the corporate-action and universe files and adds every component to
the graph. Only starting the components is left out: a strategy's ``on_start`` and what a
plugin does when it starts (a connection) are not exercised. The results directory is
checked as the recorder will use it (a directory, writable, not in use by another run),
but nothing is written to it.

Problems are gathered, not raised one at a time: a broken strategy, a missing plugin and
bad data show together, and when the data fails the market data, the corporate actions
and the universe are each checked on their own so that every broken rule of every file is
reported in one pass.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgspec

from ml4t.backtest.config import RunConfig, load_strategy_class
from ml4t.backtest.data.actions import load_corporate_actions
from ml4t.backtest.data.config import FeedConfig
from ml4t.backtest.data.feed import ParquetFeed
from ml4t.backtest.data.membership import load_universe
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.errors import DataValidationError, ML4TError
from ml4t.backtest.record.outputs import DirectoryLock
from ml4t.backtest.record.recorder import Recorder
from ml4t.backtest.strategy import BatchStrategy, StrategyBase

__all__ = ["Preflight", "check_config", "check_data", "output_dir_problem"]


class Preflight:
    """What the checks found: ``lines`` to show, ``problems`` (each a complete message),
    and ``facts`` for the JSON summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.problems: list[str] = []
        self.facts: dict[str, Any] = {}

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object: ``valid``, ``problems``, ``notes`` and what was seen."""
        return {"valid": self.valid, "problems": self.problems, "notes": self.lines, **self.facts}


class _NoStrategy(BatchStrategy):
    """Stands in for the strategy of a config without one, so the rest of the engine is
    built as the run would build it."""

    def on_timestamp(self, timestamp: Any, batch: Any, context: Any) -> None:
        return None


def check_config(config: RunConfig) -> Preflight:
    """Build the run's engine and graph from ``config`` as ``ml4t run`` does, without
    starting it; gather every problem."""
    found = Preflight()
    strategy = _strategy(config, found)
    try:
        engine: BacktestEngine | None = BacktestEngine(config, strategy=strategy)
    except ML4TError as exc:  # a plugin not installed, a bad calendar, dates that disagree
        found.problems.append(str(exc))
        engine = None
    if engine is None:
        found.problems += _data_problems(config.data, found)
    elif isinstance(engine.feed, ParquetFeed):
        try:
            engine.build()
        except DataValidationError:
            # check each file on its own, so that every broken rule of each is listed
            found.problems += _data_problems(engine.feed.config, found)
        except ML4TError as exc:  # the graph itself: two components of one name
            found.problems.append(str(exc))
        else:
            _describe_feed(engine.feed, found)
    else:
        try:
            engine.build()  # a feed plugin prepares its own data
        except ML4TError as exc:
            found.problems.append(str(exc))
        else:
            found.lines.append(f"feed: {type(engine.feed).__name__} (plugin), prepared")
    recorder = engine.recorder if engine is not None else None
    if recorder is None or isinstance(recorder, Recorder):
        _check_output_dir(config.reporting.output_dir, found)
    return found


def check_data(data: FeedConfig) -> Preflight:
    """Validate market data and the corporate-action and universe files (any of them may
    be absent) as a run would; gather every problem."""
    found = Preflight()
    found.problems += _data_problems(data, found)
    return found


# --------------------------------------------------------------------------- the parts


def _strategy(config: RunConfig, found: Preflight) -> StrategyBase:
    """The config's strategy, imported and constructed as the engine does it; a stand-in
    (and a problem) when that fails, a stand-in (and a note) when there is none."""
    section = config.strategy
    if section is None:
        found.lines.append(
            "strategy: none in the config (ml4t run needs a strategy section; a Python "
            "run passes strategy=...)"
        )
        found.facts["strategy"] = None
        return _NoStrategy("strategy")
    try:
        cls = load_strategy_class(section)
    except ML4TError as exc:
        found.problems.append(str(exc))
        return _NoStrategy(section.name)
    try:
        strategy = cls(section.name, params=section.params)
    except ML4TError as exc:  # the parameters do not decode into its Params
        found.problems.append(f"$.strategy.params: {exc}")
        return _NoStrategy(section.name)
    except Exception as exc:  # the user's __init__: say what it raised, as the run would
        found.problems.append(
            f"$.strategy: constructing {cls.__name__} raised {type(exc).__name__}: {exc}"
        )
        return _NoStrategy(section.name)
    where = section.path or section.module or f"plugin {section.plugin}"
    found.lines.append(f"strategy: {cls.__name__} from {where}")
    found.facts["strategy"] = f"{where}:{cls.__name__}"
    return strategy


def _describe_feed(feed: ParquetFeed, found: Preflight) -> None:
    """The lines and facts of a feed that prepared without a problem."""
    for role, layout in feed.layouts().items():
        found.lines.append(f"{role}: {layout}")
    report = feed.report
    assert report is not None  # prepared
    found.lines.append(
        f"valid: {report.rows:,} rows, {report.symbols} symbols, "
        f"{report.timestamps:,} timestamps in {report.chunks} chunk(s)"
    )
    for rule, count in sorted(feed.repairs.items()):
        found.lines.append(f"  repaired {rule}: {count:,} rows")
    found.facts["data"] = {
        "rows": report.rows,
        "symbols": report.symbols,
        "timestamps": report.timestamps,
        "chunks": report.chunks,
        "layouts": feed.layouts(),
        "repairs": feed.repairs,
    }
    cfg = feed.config
    if feed.actions is not None and cfg.corporate_actions is not None:
        _describe_actions(cfg.corporate_actions.path, feed.actions.rows, found)
    if feed.membership is not None and cfg.universe is not None:
        _describe_universe(cfg.universe.path, feed.membership, found)


def _describe_actions(path: str, rows: Any, found: Preflight) -> None:
    kinds = [str(r.action) for r in rows]
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    listed = ", ".join(f"{n} {k}" for k, n in counts.items())
    found.lines.append(
        f"valid: corporate actions {path}: {len(rows):,} action(s)"
        + (f" ({listed})" if listed else "")
    )
    found.facts["corporate_actions"] = {"path": path, "actions": len(rows), "by_kind": counts}


def _describe_universe(path: str, members: Any, found: Preflight) -> None:
    found.lines.append(
        f"valid: universe {path}: {len(members.initial)} member(s) at the first bar, "
        f"{len(members.changes)} change(s) after it"
    )
    found.facts["universe"] = {
        "path": path,
        "initial_members": len(members.initial),
        "changes": len(members.changes),
    }


def _data_problems(data: FeedConfig, found: Preflight) -> list[str]:
    """Market data, then the corporate-action and universe files against its symbols,
    each checked on its own; the problems of every one."""
    problems: list[str] = []
    symbols: tuple[str, ...] | None = None
    first_ts = 0
    if data.asset.path is not None:
        # every row checked here and now: `ml4t validate` never trusts the validation cache
        checked = msgspec.structs.replace(
            data, corporate_actions=None, universe=None, validation_cache=False
        )
        feed = ParquetFeed(checked)
        try:
            feed.prepare()
        except DataValidationError as exc:
            problems.append(str(exc))
        else:
            _describe_feed(feed, found)
            symbols, first_ts = feed.symbols, feed.first_ts or 0
    actions, universe = data.corporate_actions, data.universe
    if (actions or universe) and symbols is None:
        found.lines.append("  (symbols not checked: no valid market data to check them against)")
    zone = data.asset.timezone or "UTC"
    if actions is not None:
        try:
            schedule = load_corporate_actions(actions, symbols=symbols, timezone=zone)
        except DataValidationError as exc:
            problems.append(str(exc))
        else:
            _describe_actions(actions.path, schedule.rows, found)
    if universe is not None:
        try:
            members = load_universe(universe, symbols=symbols, timezone=zone, start_ns=first_ts)
        except DataValidationError as exc:
            problems.append(str(exc))
        else:
            _describe_universe(universe.path, members, found)
    return problems


def _check_output_dir(output_dir: str | None, found: Preflight) -> None:
    found.facts["output_dir"] = output_dir
    if output_dir is None:
        found.lines.append("output: in memory (reporting.output_dir is null)")
        return
    problem = output_dir_problem(Path(output_dir))
    if problem is not None:
        found.problems.append(problem)
        return
    made = "" if Path(output_dir).is_dir() else " (it will be made)"
    found.lines.append(f"output: {output_dir}, writable{made}")


def output_dir_problem(out: Path) -> str | None:
    """Why the recorder could not use ``out`` as the results directory (None if it can):
    not a directory and not makeable, not writable, or locked by a run writing to it now.
    Nothing is left behind."""
    key = "$.reporting.output_dir"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        return (
            f"{key}: {existing} is a file, not a directory; give a directory for the "
            "results (it is made if missing)"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"{key}: cannot write in {existing} ({exc.strerror}); give a writable directory"
    if out.is_dir():
        lock = DirectoryLock(out)
        if not lock.acquire():
            return (
                f"{key}: {out} is in use by a run writing its results now; wait for it, or "
                "give this run its own output_dir"
            )
        lock.release()
    return None
