"""The run summary says what went wrong without stopping the run: rejected orders by
rule, expired and cancelled orders, orders still working at the end, as table rows and
warnings, and in the ``--json`` summary (issue 18)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl
import pytest
import yaml

from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset

from ._command import json_summary, ml4t

STRATEGY = textwrap.dedent(
    """
    from ml4t.backtest import BatchStrategy


    class Scripted(BatchStrategy):
        '''Six orders on the first bar, each meant for one outcome; a cancel on the second.'''

        step = 0

        def on_timestamp(self, ts, batch, context):
            self.step += 1
            first, second = batch["symbol"][0], batch["symbol"][1]
            far = round(float(batch["close"][0]) / 2, 2)  # a limit that never fills
            if self.step == 1:
                self.buy(first, 10)  # filled at the next open
                self.buy(first, 100_000)  # far above max_position_pct of the equity
                self.buy(second, 10)  # a restricted symbol
                self.buy(first, 10, limit=far, tif="day")  # expires when the day ends
                self.parked = self.buy(first, 10, limit=far)  # cancelled on the next bar
                self.buy(first, 10, limit=far)  # good till cancelled: working at the end
            elif self.step == 2:
                self.cancel(self.parked)
    """
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scripted")
    data = write_dataset(root / "data", SyntheticConfig(n_symbols=3, n_days=2, seed=3))
    (root / "scripted.py").write_text(STRATEGY)
    run = {
        "backtest": {"initial_capital": 100_000},
        "data": {"asset": {"path": str(data.asset)}},
        "risk": {"max_position_pct": 0.5, "restricted_symbols": ["AAB"]},
        "strategy": {"path": "scripted.py", "class": "Scripted"},
    }
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return path


def test_the_summary_counts_orders_by_outcome_and_rejections_by_rule(
    config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = ml4t("run", str(config), "--output", str(out))
    assert done.returncode == 0, done.stderr
    rows = {
        cells[0]: cells[1]
        for line in done.stdout.splitlines()
        if (cells := [c.strip() for c in line.strip("│ ").split("│")]) and len(cells) == 2
    }
    assert rows["orders"] == "6 (1 filled)"
    assert rows["rejected"] == "2 (max_position 1, restricted_symbol 1)"
    assert rows["expired"] == "1" and rows["cancelled"] == "1" and rows["open at end"] == "1"
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "warning: 2 of 6 orders were rejected; most by max_position, e.g. 'position in AAA "
    )
    assert warnings[0].endswith("(orders.parquet: reject_rule, reject_reason)")
    assert warnings[1] == (
        "warning: 1 order(s) were still working when the data ended (never filled, "
        "cancelled or expired)"
    )
    # the counts are the orders table's
    orders = pl.read_parquet(out / "orders.parquet")
    assert sorted(orders["status"].to_list()) == [
        "accepted",
        "cancelled",
        "expired",
        "filled",
        "rejected",
        "rejected",
    ]


def test_the_json_summary_has_the_same_counts(config: Path, tmp_path: Path) -> None:
    done = ml4t("run", str(config), "--output", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json_summary(done)
    assert summary["orders"] == {
        "total": 6,
        "filled": 1,
        "rejected": 2,
        "expired": 1,
        "cancelled": 1,
        "rejected_by_rule": {"max_position": 1, "restricted_symbol": 1},
        "open_at_end": 1,
        "refused_amendments": 0,
    }
    assert len(summary["warnings"]) == 2


def test_a_run_without_trouble_has_no_warnings(demo_config: Path, tmp_path: Path) -> None:
    done = ml4t("run", str(demo_config), "--output", str(tmp_path / "out"), "--json")
    summary = json_summary(done)
    assert summary["warnings"] == [] and summary["orders"]["rejected"] == 0
