"""The demo: sample data, a config and the proposal's top-25 ML strategy, as files.

:func:`prepare_demo` writes them under a directory so a user can read, copy and rerun
them (``ml4t run <dir>/config.yaml``); ``ml4t demo`` then runs the config. A config or
strategy a person edited there is kept: the demo refuses to overwrite it without
``force`` (``ml4t demo --force``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import MappingProxyType

import msgspec

from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset
from ml4t.backtest.errors import ConfigError

__all__ = [
    "CONFIG_TEMPLATE",
    "MARKET_EVENTS",
    "demo_texts",
    "edited_files",
    "prepare_demo",
    "refuse_edits",
]

STRATEGY_FILE = Path(__file__).with_name("ml_top25.py")

CONFIG_TEMPLATE = """\
# A complete ml4t run: every key is documented in docs/user-guide.md.
backtest:
  name: ml_top25_demo
  initial_capital: 1000000
  calendar: NYSE              # sessions: DAY orders, session timers, annualisation

data:
  asset:                       # one row per (timestamp, symbol): OHLCV + indicators
    path: data/asset           # a directory of monthly parquet files
    indicators: [rsi, atr, macd]
  signal_data:                 # the model's daily predictions, one row per (day, symbol)
    path: data/signals
    columns: [signal_entry, signal_exit, confidence]
    available_lag: 16h         # predictions for a day are known the next morning
  context:                     # market-wide fields, joined as of each bar
    path: data/context
    fields: [vix, spy]
{market_events}
execution:
  fill_timing: next_open       # market orders fill at the next bar's open
  slippage:
    model: VolumeShareSlippage
    params: {{volume_limit: 0.1, price_impact: 0.1}}
  commission:
    model: PerShareCommission
    params: {{cost_per_share: 0.005, minimum: 1.0}}

risk:
  account: cash
  max_position_pct: 0.10
  max_open_positions: 25

reporting:
  output_dir: results
  portfolio_frequency: 5m
  signals: [signal_entry, signal_exit, confidence, rsi, atr]
  context: [vix]
  html_report: {html_report}

strategy:
  path: strategies/ml_top25.py
  class: MLTop25Strategy
  params:
    max_positions: 25
    position_size_pct: 0.04
    vix_threshold: 30
"""


MARKET_EVENTS_TEMPLATE = """\
  corporate_actions:           # splits, dividends, delistings, as of their ex-dates
    path: data/actions.parquet
  universe:                    # index membership over time: no survivorship bias
    path: data/universe.parquet
    on_exit: hold              # a holding that leaves the index is kept (or: close)
"""

MARKET_EVENTS = MappingProxyType(
    {"splits": 12, "dividends": 120, "delistings": 4, "late_listings": 6, "universe_changes": 20}
)
"""What a real year of US equities brings, in the ``--full`` demo's data."""


def demo_texts(*, market_events: bool = False, html_report: bool = True) -> dict[str, str]:
    """What :func:`prepare_demo` writes besides the data: relative path -> text."""
    config = CONFIG_TEMPLATE.format(
        html_report=str(html_report).lower(),
        market_events=MARKET_EVENTS_TEMPLATE if market_events else "",
    )
    return {"config.yaml": config, "strategies/ml_top25.py": STRATEGY_FILE.read_text()}


def edited_files(root: str | Path) -> list[Path]:
    """The demo files under ``root`` that differ from every variant the demo writes (so
    a person edited them); files that are absent or the demo's own are not listed."""
    root = Path(root)
    variants = [
        demo_texts(market_events=events, html_report=html)
        for events in (False, True)
        for html in (True, False)
    ]
    edited = []
    for name in variants[0]:
        path = root / name
        if path.is_file() and all(path.read_bytes() != texts[name].encode() for texts in variants):
            edited.append(path)
    return edited


def refuse_edits(root: str | Path) -> None:
    """:class:`ConfigError` (one line: which files, how to run them, how to start over)
    if ``root`` holds a demo config or strategy that someone edited."""
    root = Path(root)
    edited = edited_files(root)
    if not edited:
        return
    config = root / "config.yaml"
    names = " and ".join(str(p) for p in edited)
    one = len(edited) == 1
    raise ConfigError(
        f"{names} {'was' if one else 'were'} edited: the demo would overwrite "
        f"{'it' if one else 'them'}; run your version with `ml4t run {config}`, or start "
        f"over with `ml4t demo {root} --force`"
    )


def prepare_demo(
    root: str | Path,
    *,
    n_symbols: int = 50,
    n_days: int = 21,
    html_report: bool = True,
    market_events: bool = False,
    force: bool = False,
) -> Path:
    """Write data (unless the same data is already there), strategy and config; return
    the config's path. ``market_events`` adds corporate actions (splits, dividends,
    delistings), late listings and a point-in-time universe (:data:`MARKET_EVENTS`).

    A config or strategy in ``root`` that someone edited (one that is none of the texts
    the demo writes) is never overwritten silently: :class:`ConfigError` says so, unless
    ``force``. The demo's own files, from this or another variant, are rewritten.
    """
    root = Path(root)
    if not force:
        refuse_edits(root)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "data" / "dataset.json"
    events = dict(MARKET_EVENTS) if market_events else {}
    wanted = {"n_symbols": n_symbols, "n_days": n_days, **events}
    if not (marker.exists() and json.loads(marker.read_text()) == wanted):
        synthetic = msgspec.structs.replace(
            SyntheticConfig(n_symbols=n_symbols, n_days=n_days), **events
        )
        # written aside, then swapped in: a size the generator refuses keeps the old data
        partial = root / "data.partial"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            write_dataset(partial, synthetic)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        (partial / marker.name).write_text(json.dumps(wanted))
        shutil.rmtree(root / "data", ignore_errors=True)
        partial.rename(root / "data")
    (root / "strategies").mkdir(exist_ok=True)
    for name, text in demo_texts(market_events=market_events, html_report=html_report).items():
        (root / name).write_text(text)
    return root / "config.yaml"
