"""Every user error is one line naming what was wrong, with exit status 2: a results
folder that is missing or empty, a journal that is not there, a time without a
timezone, a topic the journal does not have (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest.record import Recorder, ReportingConfig
from ml4t.backtest.testing import Script, run_components
from tests.record._world import random_world

from ._command import ml4t, one_line_error


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run's results with its journal (15 daily bars of two symbols)."""
    out = tmp_path_factory.mktemp("run")
    recorder = Recorder(ReportingConfig(output_dir=str(out), journal=True))
    run_components(Script(random_world(days=15, symbols=2).steps), recorder)
    return out


def test_report_of_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"
    assert one_line_error(ml4t("report", str(missing))) == (
        f"ml4t: no results directory at {missing}; give the reporting.output_dir of a run"
    )


def test_report_of_an_empty_folder_writes_no_page(tmp_path: Path) -> None:
    line = one_line_error(ml4t("report", str(tmp_path)))
    assert line.startswith(f"ml4t: {tmp_path} holds no run's results (none of manifest.json")
    assert list(tmp_path.iterdir()) == []  # no "? to ?" report.html


def test_report_of_results_still_writes_the_page(results: Path) -> None:
    done = ml4t("report", str(results))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(results / "report.html")


def test_journal_show_start_without_a_timezone(results: Path) -> None:
    done = ml4t("journal", "show", str(results / "journal.ml4tj"), "--start", "2024-01-05")
    assert one_line_error(done) == (
        "ml4t: --start '2024-01-05' has no timezone; give one, e.g. 2024-03-01T14:30:00Z "
        "or 2024-03-01T09:30:00-05:00"
    )


def test_journal_show_end_that_is_not_a_time(results: Path) -> None:
    done = ml4t("journal", "show", str(results / "journal.ml4tj"), "--end", "yesterday")
    assert one_line_error(done).startswith("ml4t: --end 'yesterday' is not an ISO 8601 time")


def test_journal_show_an_unknown_topic_lists_the_real_ones(results: Path) -> None:
    journal = results / "journal.ml4tj"
    line = one_line_error(ml4t("journal", "show", str(journal), "--topic", "fill"))
    assert line.startswith(f"ml4t: --topic 'fill': no such topic in {journal}; topics: ")
    topics = line.split("topics: ")[1].split(", ")
    assert "fills" in topics and "market" in topics and topics == sorted(topics)


def test_journal_show_of_a_results_folder_reads_its_journal(results: Path) -> None:
    done = ml4t("journal", "show", str(results), "--topic", "fills", "--limit", "2")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2


@pytest.mark.parametrize("command", [["journal", "show"], ["journal", "summary"], ["replay"]])
def test_a_missing_journal(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "journal.ml4tj"
    line = one_line_error(ml4t(*command, str(missing)))
    assert line == f"ml4t: no journal at {missing}: no such file"


def test_a_folder_without_a_journal(tmp_path: Path) -> None:
    line = one_line_error(ml4t("journal", "summary", str(tmp_path)))
    assert line == (
        f"ml4t: no journal in {tmp_path} (no journal.ml4tj); a run writes one with "
        "reporting.journal: true"
    )


def test_an_unknown_log_level(tmp_path: Path) -> None:
    line = one_line_error(ml4t("--log-level", "loud", "report", str(tmp_path)))
    assert line == "ml4t: unknown log level 'loud'; use debug, info, warning or error"
