"""One spelling for one idea: ``--output`` names the output directory of run, validate,
sweep and replay (replay's defaults to beside the journal), and ``-q``, ``-v`` and
``--json`` mean the same on every subcommand that prints a summary (issue 18)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from ._command import json_summary, ml4t


@pytest.fixture(scope="module")
def journaled(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results of the demo config run with its journal, via --json."""
    out = tmp_path_factory.mktemp("journaled") / "results"
    done = ml4t("run", str(demo_config), "--set", "reporting.journal=true", "--output", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_run_json_is_one_object_with_the_summary(demo_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    done = ml4t("run", str(demo_config), "--output", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json_summary(done)
    assert summary["command"] == "run" and summary["outcome"] == "completed"
    assert summary["complete"] is True and summary["results"] == str(out)
    trades, orders = (
        pl.read_parquet(out / "trades.parquet"),
        pl.read_parquet(out / "orders.parquet"),
    )
    assert summary["trades"] == trades.height > 0
    assert summary["orders"]["total"] == orders.height
    assert summary["metrics"] == json.loads((out / "metrics.json").read_text())


def test_quiet_prints_nothing_and_verbose_logs_at_info(demo_config: Path, tmp_path: Path) -> None:
    quiet = ml4t("run", str(demo_config), "--output", str(tmp_path / "q"), "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    loud = ml4t("run", str(demo_config), "--output", str(tmp_path / "v"), "-v")
    assert loud.returncode == 0 and "Backtest summary" in loud.stdout
    assert "feed_started" in loud.stderr and "[info     ]" in loud.stderr
    assert "[debug" not in loud.stderr
    validated = ml4t("validate", str(demo_config), "-q")
    assert validated.returncode == 0 and validated.stdout == ""


def test_run_output_is_relative_to_where_the_command_runs(
    demo_config: Path, tmp_path: Path
) -> None:
    done = ml4t("run", str(demo_config), "--output", "here", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "here" / "manifest.json").is_file()


def test_replay_writes_beside_the_journal_by_default(journaled: Path) -> None:
    done = ml4t("replay", str(journaled / "journal.ml4tj"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json_summary(done)
    assert summary["output"] == str(journaled / "replay") and summary["complete"] is True
    again = pl.read_parquet(journaled / "replay" / "trades.parquet")
    assert again.equals(pl.read_parquet(journaled / "trades.parquet"))


def test_every_summary_command_takes_the_same_flags() -> None:
    for command in ("run", "demo", "validate", "sweep", "replay"):
        done = ml4t(command, "--help")
        assert done.returncode == 0, done.stderr
        text = done.stdout
        for flag in ("-q, --quiet", "-v, --verbose", "--json"):
            assert flag in text, (command, flag)
    for command in ("run", "validate", "sweep", "replay"):
        assert re.search(r"--output DIR", ml4t(command, "--help").stdout), command
    assert "--out " not in ml4t("sweep", "--help").stdout  # the old spelling is hidden
