"""``ml4t report`` (added by ``report.add_cli``), ``ml4t journal show|summary`` and
``ml4t replay`` (added by ``journal.add_cli``) on an ``ml4t``-like parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ml4t.backtest import journal, report
from ml4t.backtest.record import Recorder, ReportingConfig
from ml4t.backtest.testing import Script, run_components
from tests.record._world import random_world


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ml4t")
    commands = parser.add_subparsers(dest="command", required=True)
    report.add_cli(commands)
    journal.add_cli(commands)
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    recorder = Recorder(ReportingConfig(output_dir=str(out), journal=True))
    run_components(Script(random_world(days=15, symbols=2).steps), recorder)
    return out


def test_report_command_writes_the_report(results: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("report", str(results)) == 0
    assert capsys.readouterr().out.strip() == str(results / "report.html")
    page = (results / "report.html").read_text()
    assert 'id="equity-chart"' in page and "needs 63 daily returns; the run has 15" in page


def test_report_command_takes_an_output_and_a_rolling_window(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    target = tmp_path / "short.html"
    assert run_cli("report", str(results), "--output", str(target), "--rolling-window", "5") == 0
    assert capsys.readouterr().out.strip() == str(target)
    page = target.read_text()
    assert "5 daily returns, annualised" in page and "needs 5 daily returns" not in page


def test_journal_commands(results: Path, capsys: pytest.CaptureFixture) -> None:
    journal = str(results / "journal.ml4tj")
    assert run_cli("journal", "show", journal, "--topic", "fills", "--limit", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(json.loads(x)["topic"] == "fills" for x in lines)
    start = "2024-01-05T00:00:00+00:00"
    run_cli("journal", "show", journal, "--topic", "market", "--symbol", "S01", "--start", start)
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["clock"] == "2024-01-05T21:00:00+00:00"
    assert [row["symbol"] for row in first["event"]["rows"]] == ["S01"]
    assert run_cli("journal", "summary", journal) == 0
    assert json.loads(capsys.readouterr().out)["by_topic"]["market"] == 15


def test_replay_command(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "again"
    assert run_cli("replay", str(results / "journal.ml4tj"), "--output", str(out), "--html") == 0
    assert "complete" in capsys.readouterr().out
    assert (out / "trades.parquet").read_bytes() == (results / "trades.parquet").read_bytes()
    assert (out / "report.html").exists()
