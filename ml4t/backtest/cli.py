"""The ``ml4t`` command: run, validate, demo, paper, live (and the results tools).

Errors a user can fix (a bad config key, bad data, a path that is not there, a flag's
bad value) print one line naming what was wrong and exit 2; a run that fails exits 1
after its partial results are flushed and marked failed. Ctrl-C (SIGINT) exits 130 and
SIGTERM 143, each after the results are flushed and marked incomplete.

Every subcommand that prints a summary (run, demo, validate, sweep, replay) takes
``-q/--quiet``, ``-v/--verbose`` and ``--json`` (:mod:`ml4t.backtest._commandline`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from rich.markup import escape

from ml4t.backtest import __version__, journal, plugins, report
from ml4t.backtest._commandline import Output, add_output_flags, log_level, positive_int
from ml4t.backtest._runsummary import run_summary, summary_table
from ml4t.backtest.errors import (
    ComponentError,
    ConfigError,
    DataValidationError,
    ML4TError,
    ResultsNotFoundError,
)
from ml4t.backtest.live import _command as live_command
from ml4t.backtest.live import paper
from ml4t.backtest.logging import configure_logging
from ml4t.backtest.runtime import RunTerminated
from ml4t.backtest.sweep.cli import add_cli as sweep_cli

if TYPE_CHECKING:
    from ml4t.backtest.engine import BacktestEngine

__all__ = ["main"]

DEMO_SMALL = {"n_symbols": 50, "n_days": 21}
DEMO_FULL = {"n_symbols": 250, "n_days": 252}

_RESULT_MARKERS = ("manifest.json", "metrics.json", "portfolio.parquet", "trades.parquet")
"""Files of which a results directory holds at least one (the manifest, from the start)."""


def _progress(args: argparse.Namespace) -> bool | None:
    """``--progress``/``--no-progress`` as given; otherwise off with -q or --json, else
    on a terminal only."""
    if args.progress is not None:
        return bool(args.progress)
    return False if (args.quiet or args.json) else None


def _print_run(out: Output, summary: dict[str, Any], **extra: Any) -> None:
    """The run's summary: the table and its warnings (text), or the JSON object."""
    out.show(summary_table(summary))
    for warning in summary["warnings"]:
        out.say(f"[yellow]warning[/]: {escape(warning)}")
    if summary["results"] is not None:
        out.say(f"results: {summary['results']}", markup=False)
    out.summary({**extra, **summary})


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` and ``--output`` as config overrides (``--output`` is relative to where
    the command runs, not to the config file)."""
    overrides = list(args.set or [])
    if getattr(args, "output", None):
        overrides.append(f"reporting.output_dir={Path(args.output).resolve()}")
    return overrides


def _run(args: argparse.Namespace) -> int:
    from ml4t.backtest.engine import BacktestEngine

    engine = BacktestEngine.from_config(
        args.config, overrides=_overrides(args), progress=_progress(args)
    )
    _check_output_dir(engine)
    results = engine.run()
    _print_run(Output.of(args), run_summary(results, engine), command="run")
    return 0


def _check_output_dir(engine: BacktestEngine) -> None:
    """A results directory the built-in recorder cannot use is a one-line error before
    the run, not a traceback from inside it."""
    from ml4t.backtest._preflight import output_dir_problem
    from ml4t.backtest.record.recorder import Recorder

    out = engine.config.reporting.output_dir
    if out is not None and isinstance(engine.recorder, Recorder):
        problem = output_dir_problem(Path(out))
        if problem is not None:
            raise ConfigError(problem)


def _validate(args: argparse.Namespace) -> int:
    """Check a config as ``ml4t run`` would before its first event, or a data path and
    its action/universe files; every problem is reported together (exit 2)."""
    from ml4t.backtest._preflight import check_config, check_data
    from ml4t.backtest.config import load_config
    from ml4t.backtest.data._files import detect_symbol_from
    from ml4t.backtest.data.config import (
        ActionsSourceConfig,
        FeedConfig,
        UniverseSourceConfig,
        decode_feed_config,
    )

    files: dict[str, Any] = {}
    if args.actions:
        files["corporate_actions"] = ActionsSourceConfig(path=args.actions, timezone=args.timezone)
    if args.universe:
        files["universe"] = UniverseSourceConfig(path=args.universe, timezone=args.timezone)
    target = Path(args.target) if args.target is not None else None
    if target is not None and target.suffix in {".yaml", ".yml"}:
        flags = [f for f in ("format", "symbol_from", "timestamp_format") if getattr(args, f)]
        if flags:
            raise ConfigError(
                f"--{flags[0].replace('_', '-')} applies to a data path; for a config use "
                f"--set data.asset.{flags[0]}=..."
            )
        config = load_config(target, overrides=_overrides(args))
        if files:
            config = msgspec.structs.replace(
                config, data=msgspec.structs.replace(config.data, **files)
            )
        found = check_config(config)
    else:
        data = FeedConfig()
        if target is not None:
            fmt = args.format or "auto"
            asset = {
                "path": str(target),
                "format": fmt,
                "symbol_from": args.symbol_from or detect_symbol_from(target, format=fmt),
                "timestamp_format": args.timestamp_format,
                "timezone": args.timezone,
            }
            data = decode_feed_config({"asset": asset})
        elif not files:
            raise ConfigError("ml4t validate: give a config, a data path, --actions or --universe")
        found = check_data(msgspec.structs.replace(data, **files) if files else data)
    out = Output.of(args)
    for line in found.lines:
        out.say(line, markup=False)
    if found.valid and target is not None and target.suffix in {".yaml", ".yml"}:
        out.say(
            f"[bold green]ok[/]: {escape(str(target))} passes every check ml4t run makes "
            "before the first event (components are not started)"
        )
    out.summary({"command": "validate", "target": args.target, **found.summary()})
    if found.valid:
        return 0
    problems = found.problems
    if len(problems) == 1:
        print(f"ml4t: {problems[0]}", file=sys.stderr)
    else:
        listed = "\n\n".join(problems)
        print(f"ml4t: {len(problems)} problems, each below:\n\n{listed}", file=sys.stderr)
    return 2


def _demo(args: argparse.Namespace) -> int:
    from ml4t.backtest.demo import prepare_demo, refuse_edits
    from ml4t.backtest.engine import BacktestEngine

    out = Output.of(args)
    size = dict(DEMO_FULL if args.full else DEMO_SMALL)
    if args.symbols:
        size["n_symbols"] = args.symbols
    if args.days:
        size["n_days"] = args.days
    root = Path(args.directory)
    if not args.force:
        refuse_edits(root)  # before a word is printed: a refusal is the only output
    out.say(
        f"ml4t {__version__} demo: {size['n_symbols']} symbols x {size['n_days']} days of "
        f"one-minute bars in {root}",
        markup=False,
    )
    config_path = prepare_demo(
        root,
        n_symbols=size["n_symbols"],
        n_days=size["n_days"],
        market_events=args.full,
        force=args.force,
    )
    strategy = root / "strategies" / "ml_top25.py"
    if args.full:
        out.say(
            "  with splits, dividends, delistings, late listings and index changes "
            "(data/actions.parquet, data/universe.parquet)"
        )
    out.say(f"  data, config and strategy written: {config_path}", markup=False)
    out.say(f"  strategy: {strategy} (read it, copy it)", markup=False)
    engine = BacktestEngine.from_config(config_path, progress=_progress(args))
    _check_output_dir(engine)
    results = engine.run()
    report = results.output_dir / "report.html" if results.output_dir else None
    report = report if report is not None and report.is_file() else None
    extra = {"command": "demo", "config": str(config_path), "strategy": str(strategy)}
    _print_run(out, run_summary(results, engine), **extra, report=report and str(report))
    if report is not None:
        out.say(f"report:  {report}", markup=False)
    out.say(f"run it again: ml4t run {config_path}", markup=False)
    return 0


def _checked_report(write: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """``ml4t report`` that first makes sure RESULTS holds a run's results: a missing or
    empty folder is a one-line error (exit 2), not a report of nothing."""

    def report(args: argparse.Namespace) -> int:
        root = Path(args.results)
        if not root.is_dir():
            raise ResultsNotFoundError(
                f"no results directory at {root}; give the reporting.output_dir of a run"
            )
        if not any((root / name).is_file() for name in _RESULT_MARKERS):
            raise ResultsNotFoundError(
                f"{root} holds no run's results (none of {', '.join(_RESULT_MARKERS)}); "
                "give the reporting.output_dir of a run"
            )
        return write(args)

    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml4t", description="Event-driven backtesting for ML-driven trading strategies."
    )
    parser.add_argument("--version", action="version", version=f"ml4t {__version__}")
    parser.add_argument("--log-level", default="warning", help="debug, info, warning, error")
    parser.add_argument("--log-json", action="store_true", help="log JSON lines (to stderr)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def progress_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show a progress bar on stderr (default: only on a terminal, not with -q "
            "or --json)",
        )

    run = commands.add_parser("run", help="run a backtest described by a YAML config")
    run.add_argument("config", help="the run's YAML file")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    run.add_argument(
        "--output", metavar="DIR", help="results directory (sets reporting.output_dir)"
    )
    progress_flags(run)
    add_output_flags(run)
    run.set_defaults(func=_run)

    validate = commands.add_parser(
        "validate",
        help="check a config as ml4t run would before its first event, or a data path",
        description="For a config: build the run (strategy, plugins, cost models, "
        "calendar), validate all its data and files and check the results directory, "
        "without running. For a data path: validate the data (and --actions/--universe).",
    )
    validate.add_argument(
        "target",
        nargs="?",
        help="a YAML config, or a parquet/CSV file, glob or directory of asset data",
    )
    validate.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    validate.add_argument(
        "--output", metavar="DIR", help="the results directory ml4t run --output would use"
    )
    validate.add_argument(
        "--format", choices=("auto", "parquet", "csv"), help="of a data path (default: auto)"
    )
    validate.add_argument(
        "--symbol-from",
        choices=("column", "filename"),
        help="of a data path (default: filename when a directory's files have no symbol column)",
    )
    validate.add_argument("--timestamp-format", help="strftime of CSV times (default: ISO-8601)")
    validate.add_argument("--actions", metavar="FILE", help="a corporate-action file (parquet/CSV)")
    validate.add_argument("--universe", metavar="FILE", help="a universe file (parquet/CSV)")
    validate.add_argument(
        "--timezone",
        help="zone of naive data times and of the action/universe files' dates "
        "(default: the config's, else UTC)",
    )
    add_output_flags(validate)
    validate.set_defaults(func=_validate)

    demo = commands.add_parser("demo", help="generate sample data and run the top-25 ML demo")
    demo.add_argument("directory", nargs="?", default="ml4t-demo")
    demo.add_argument(
        "--full",
        action="store_true",
        help="the headline size (250 x 252 days), with corporate actions and index changes",
    )
    demo.add_argument("--symbols", type=positive_int, help="number of symbols")
    demo.add_argument("--days", type=positive_int, help="number of trading days")
    demo.add_argument(
        "--force",
        action="store_true",
        help="overwrite a config.yaml or strategy you edited in DIRECTORY",
    )
    progress_flags(demo)
    add_output_flags(demo)
    demo.set_defaults(func=_demo)

    # each part of the package adds its own commands
    for add_cli in (
        report.add_cli,
        journal.add_cli,
        paper.add_cli,
        live_command.add_cli,
        plugins.add_cli,
        sweep_cli,
    ):
        add_cli(commands)
    written = commands.choices["report"]
    written.set_defaults(func=_checked_report(written.get_default("func")))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(log_level(args), json=args.log_json)
        return int(args.func(args))
    except (ConfigError, DataValidationError, ResultsNotFoundError) as exc:
        print(f"ml4t: {exc}", file=sys.stderr)
        return 2
    except ComponentError as exc:
        print(f"ml4t: the run failed: {exc}", file=sys.stderr)
        if exc.__cause__ is not None:
            import traceback

            traceback.print_exception(exc.__cause__, file=sys.stderr)
        return 1
    except ML4TError as exc:
        print(f"ml4t: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "ml4t: interrupted; partial results were flushed and marked incomplete", file=sys.stderr
        )
        return 130
    except RunTerminated as exc:
        print(
            "ml4t: terminated (SIGTERM); partial results were flushed and marked incomplete",
            file=sys.stderr,
        )
        return int(exc.code)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
