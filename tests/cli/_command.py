"""Run ``ml4t`` as a user does (a child process) and read what it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def ml4t(
    *args: str, cwd: Path | None = None, columns: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``ml4t ARGS``; ``columns`` sets the width rich takes the terminal to have."""
    env = {**os.environ, "COLUMNS": str(columns)} if columns is not None else None
    return subprocess.run(
        [sys.executable, "-m", "ml4t.backtest.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The message of a user error: exit 2, nothing on stdout, one line on stderr."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ml4t: "), done.stderr
    return lines[0]


def json_summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``--json`` summary: stdout is exactly one JSON object on one line."""
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    found = json.loads(lines[0])
    assert isinstance(found, dict)
    return found
