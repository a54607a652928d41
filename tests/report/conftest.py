"""Fixtures of the report tests: a results directory the recorder wrote, and Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report._results import write_results

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 days of two bars, 6 symbols, ~200 trades, 10 rejected orders, a benchmark; the
    report rebuilt from the files (the recorder wrote it before the benchmark existed)."""
    from ml4t.backtest.report import write_report

    out = write_results(tmp_path_factory.mktemp("results"))
    write_report(out)
    return out


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium. If it is missing, ``scripts/system-deps.sh`` is tried once; the
    tests fail, never skip, when it is still missing."""
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=False, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "headless Chromium is needed to test the report: install Debian's chromium "
            "(run scripts/system-deps.sh as root)"
        )
    return found
