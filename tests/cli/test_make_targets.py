"""The README's two commands, as make would run them (``make -n -B``: every recipe,
printed, none run): ``make demo`` builds its own venv with the runtime dependencies only,
``make test`` the dev venv with ruff, mypy and pytest (issue 18)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _recipes(target: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_demo_installs_only_the_runtime_dependencies_in_its_own_venv() -> None:
    lines = _recipes("demo")
    installs = [line for line in lines if "pip install" in line]
    assert any(line.startswith("python3 -m venv .venv-demo") for line in lines), lines
    assert installs == [
        ".venv-demo/bin/python -m pip install --quiet --disable-pip-version-check -e ."
    ]
    assert not any(".venv/" in line or "[dev]" in line or "plugins/" in line for line in lines)
    assert any(line.startswith(".venv-demo/bin/ml4t demo ml4t-demo") for line in lines), lines


def test_make_test_keeps_the_dev_venv_system_deps_ruff_mypy_and_pytest() -> None:
    lines = _recipes("test")
    text = "\n".join(lines)
    assert "python3 -m venv .venv" in lines
    assert "pip install --quiet -e '.[dev]'" in text
    for step in ("bash scripts/system-deps.sh", "-m ruff check", "-m mypy", "-m pytest"):
        assert step in text, step
    assert ".venv-demo" not in text
