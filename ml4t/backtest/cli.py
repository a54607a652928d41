"""The ``ml4t`` command: run, validate, demo (and the results tools).

Errors a user can fix (a bad config key, bad data) print one clear message and exit 2;
a run that fails exits 1 after its partial results are flushed and marked failed. Ctrl-C
(SIGINT) exits 130 and SIGTERM 143, each after the results are flushed and marked
incomplete.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from rich.console import Console
from rich.table import Table

from ml4t.backtest import __version__, journal, plugins, report
from ml4t.backtest.errors import ComponentError, ConfigError, DataValidationError, ML4TError
from ml4t.backtest.live import paper
from ml4t.backtest.logging import configure_logging
from ml4t.backtest.runtime import RunTerminated
from ml4t.backtest.sweep.cli import add_cli as sweep_cli

if TYPE_CHECKING:
    from ml4t.backtest.data.config import FeedConfig

__all__ = ["main"]

DEMO_SMALL = {"n_symbols": 50, "n_days": 21}
DEMO_FULL = {"n_symbols": 250, "n_days": 252}


def _console() -> Console:
    return Console(highlight=False)


def _summary_table(results: Any) -> Table:
    table = Table(title="Backtest summary", show_header=False)
    m = results.metrics
    rows = [
        ("outcome", results.outcome.value),
        ("bar-events", f"{results.bar_events:,}"),
        ("wall time", f"{results.elapsed_time:.2f} s ({results.events_per_second:,.0f}/s)"),
        ("final equity", f"{results.final_equity:,.2f}"),
        ("total return", f"{results.total_return:.2%}"),
        ("trades", f"{results.trades.height:,}"),
    ]
    for key, fmt in (
        ("sharpe_ratio", "{:.2f}"),
        ("max_drawdown", "{:.2%}"),
        ("win_rate", "{:.1%}"),
        ("total_commission", "{:,.2f}"),
        ("total_slippage", "{:,.2f}"),
    ):
        value = m.get(key)
        if isinstance(value, int | float):
            rows.append((key.replace("_", " "), fmt.format(value)))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _run(args: argparse.Namespace) -> int:
    from ml4t.backtest.engine import BacktestEngine

    overrides = list(args.set or [])
    if args.output:
        overrides.append(f"reporting.output_dir={args.output}")
    engine = BacktestEngine.from_config(args.config, overrides=overrides, progress=args.progress)
    results = engine.run()
    console = _console()
    console.print(_summary_table(results))
    if results.output_dir is not None:
        console.print(f"results: {results.output_dir}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Validate the market data, then the corporate-action and universe files against its
    symbols; the problems of every file are reported together (exit 2)."""
    from ml4t.backtest.config import load_config
    from ml4t.backtest.data._files import detect_symbol_from
    from ml4t.backtest.data.config import (
        ActionsSourceConfig,
        FeedConfig,
        UniverseSourceConfig,
        decode_feed_config,
    )
    from ml4t.backtest.data.feed import ParquetFeed

    feed, data = None, FeedConfig()
    if args.target is not None:
        target = Path(args.target)
        if target.suffix in {".yaml", ".yml"}:
            layout_flags = ("format", "symbol_from", "timestamp_format")
            flags = [f for f in layout_flags if getattr(args, f)]
            if flags:
                raise ConfigError(
                    f"--{flags[0].replace('_', '-')} applies to a data path; for a config use "
                    f"--set data.asset.{flags[0]}=..."
                )
            data = load_config(target, overrides=args.set or []).data
            data = _files_beside(data, target.resolve().parent)
        else:
            fmt = args.format or "auto"
            asset = {
                "path": str(target),
                "format": fmt,
                "symbol_from": args.symbol_from or detect_symbol_from(target, format=fmt),
                "timestamp_format": args.timestamp_format,
                "timezone": args.timezone,
            }
            data = decode_feed_config({"asset": asset})
        feed = ParquetFeed(data)
    if args.actions:
        actions = ActionsSourceConfig(path=args.actions, timezone=args.timezone)
        data = msgspec.structs.replace(data, corporate_actions=actions)
    if args.universe:
        universe = UniverseSourceConfig(path=args.universe, timezone=args.timezone)
        data = msgspec.structs.replace(data, universe=universe)
    if feed is None and data.corporate_actions is None and data.universe is None:
        raise ConfigError("ml4t validate: give a config, a data path, --actions or --universe")
    console = _console()
    problems: list[str] = []
    symbols: tuple[str, ...] | None = None
    first_ts = 0
    if feed is not None:
        try:
            report = feed.prepare()
        except DataValidationError as exc:
            problems.append(str(exc))
        else:
            symbols, first_ts = feed.symbols, feed.first_ts or 0
            for role, layout in feed.layouts().items():
                console.print(f"{role}: {layout}", soft_wrap=True, markup=False)
            console.print(
                f"[bold green]valid[/]: {report.rows:,} rows, {report.symbols} symbols, "
                f"{report.timestamps:,} timestamps in {report.chunks} chunk(s)"
            )
            for rule, count in sorted(feed.repairs.items()):
                console.print(f"  repaired {rule}: {count:,} rows")
    zone = args.timezone or data.asset.timezone or "UTC"
    problems += _validate_files(console, data, symbols=symbols, first_ts=first_ts, zone=zone)
    if problems:
        raise DataValidationError("\n\n".join(problems))
    return 0


def _validate_files(
    console: Console,
    data: FeedConfig,
    *,
    symbols: tuple[str, ...] | None,
    first_ts: int,
    zone: str,
) -> list[str]:
    """Check the corporate-action and universe files; print what is valid, return the
    problems."""
    from ml4t.backtest.data.actions import load_corporate_actions
    from ml4t.backtest.data.membership import load_universe

    actions, universe = data.corporate_actions, data.universe
    if (actions or universe) and symbols is None:
        console.print("  (symbols not checked: no valid market data to check them against)")
    problems: list[str] = []
    if actions is not None:
        try:
            schedule = load_corporate_actions(actions, symbols=symbols, timezone=zone)
        except DataValidationError as exc:
            problems.append(str(exc))
        else:
            kinds = [str(r.action) for r in schedule.rows]
            counts = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))
            console.print(
                f"[bold green]valid[/]: corporate actions {actions.path}: "
                f"{len(schedule.rows):,} action(s)" + (f" ({counts})" if counts else ""),
                soft_wrap=True,  # one line, whatever the path
            )
    if universe is not None:
        try:
            members = load_universe(universe, symbols=symbols, timezone=zone, start_ns=first_ts)
        except DataValidationError as exc:
            problems.append(str(exc))
        else:
            console.print(
                f"[bold green]valid[/]: universe {universe.path}: {len(members.initial)} "
                f"member(s) at the first bar, {len(members.changes)} change(s) after it",
                soft_wrap=True,
            )
    return problems


def _files_beside(data: FeedConfig, base: Path) -> FeedConfig:
    """The corporate-action and universe paths of a config, relative to its file."""
    changes = {}
    for key in ("corporate_actions", "universe"):
        section = getattr(data, key)
        if section is not None and not Path(section.path).is_absolute():
            changes[key] = msgspec.structs.replace(section, path=str(base / section.path))
    return msgspec.structs.replace(data, **changes) if changes else data


def _demo(args: argparse.Namespace) -> int:
    from ml4t.backtest.demo import prepare_demo
    from ml4t.backtest.engine import BacktestEngine

    console = _console()
    size = dict(DEMO_FULL if args.full else DEMO_SMALL)
    if args.symbols:
        size["n_symbols"] = args.symbols
    if args.days:
        size["n_days"] = args.days
    root = Path(args.directory)
    console.print(
        f"ml4t {__version__} demo: {size['n_symbols']} symbols x {size['n_days']} days of "
        f"one-minute bars in {root}"
    )
    config_path = prepare_demo(
        root, n_symbols=size["n_symbols"], n_days=size["n_days"], market_events=args.full
    )
    if args.full:
        console.print(
            "  with splits, dividends, delistings, late listings and index changes "
            "(data/actions.parquet, data/universe.parquet)"
        )
    console.print(f"  data, config and strategy written: {config_path}")
    console.print(f"  strategy: {root / 'strategies' / 'ml_top25.py'} (read it, copy it)")
    engine = BacktestEngine.from_config(config_path, progress=args.progress)
    results = engine.run()
    console.print(_summary_table(results))
    console.print(f"results: {results.output_dir}")
    report = results.output_dir / "report.html" if results.output_dir else None
    if report is not None and report.is_file():
        console.print(f"report:  {report}")
    console.print(f"run it again: ml4t run {config_path}")
    return 0


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
            help="show a progress bar (default: only on a terminal)",
        )

    run = commands.add_parser("run", help="run a backtest described by a YAML config")
    run.add_argument("config", help="the run's YAML file")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    run.add_argument("--output", help="results directory (reporting.output_dir)")
    progress_flags(run)
    run.set_defaults(func=_run)

    validate = commands.add_parser(
        "validate", help="validate a config's data (and its action/universe files), or a data path"
    )
    validate.add_argument(
        "target",
        nargs="?",
        help="a YAML config, or a parquet/CSV file, glob or directory of asset data",
    )
    validate.add_argument("--set", action="append", metavar="KEY=VALUE")
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
    validate.set_defaults(func=_validate)

    demo = commands.add_parser("demo", help="generate sample data and run the top-25 ML demo")
    demo.add_argument("directory", nargs="?", default="ml4t-demo")
    demo.add_argument(
        "--full",
        action="store_true",
        help="the headline size (250 x 252 days), with corporate actions and index changes",
    )
    demo.add_argument("--symbols", type=int)
    demo.add_argument("--days", type=int)
    progress_flags(demo)
    demo.set_defaults(func=_demo)

    # each part of the package adds its own commands
    for add_cli in (report.add_cli, journal.add_cli, paper.add_cli, plugins.add_cli, sweep_cli):
        add_cli(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    try:
        return int(args.func(args))
    except (ConfigError, DataValidationError) as exc:
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
