"""The order helpers are typed: a type checker catches a misspelt keyword (``limt=``) in
strategy code before it runs, and at run time the call fails at once, sending nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

STRATEGY = """
from ml4t.backtest import BatchStrategy


class Typo(BatchStrategy):
    def on_timestamp(self, timestamp, batch, context) -> None:
        self.buy("AAA", 10, limit=99.5, tif="day")  # fine
        self.buy("AAA", 10, limt=99.5)  # misspelt
        self.sell("AAA", 10, stop_los=90.0)  # misspelt
        self.order_target_percent("AAA", 0.1, reson="x")  # misspelt
        self.rebalance({"AAA": 0.5}, tif="gtc", reduce_only=False)  # fine
"""


def test_mypy_flags_every_misspelt_order_keyword_and_nothing_else(tmp_path: Path) -> None:
    module = tmp_path / "typo_strategy.py"
    module.write_text(STRATEGY)
    out, err, status = api.run(
        [
            str(module),
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "--check-untyped-defs",
            "--follow-imports=silent",
            "--ignore-missing-imports",
        ]
    )
    assert status == 1, out + err
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert lines == [8, 9, 10], out
    assert '"limt"' in out and '"stop_los"' in out and '"reson"' in out


def test_a_misspelt_keyword_fails_at_the_call() -> None:
    from ml4t.backtest import BatchStrategy

    with pytest.raises(TypeError, match="limt"):
        BatchStrategy.buy(BatchStrategy("s"), "AAA", 10, limt=99.5)  # type: ignore[call-arg]
