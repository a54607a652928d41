"""Every code block of docs/user-guide.md runs, in order, in one fresh directory; the
examples in examples/ run as scripts on small data."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "user-guide.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(GUIDE.read_text())]


def test_the_guide_has_code_to_run() -> None:
    kinds = [kind for kind, _ in _blocks()]
    assert kinds.count("python") >= 6 and "yaml" in kinds


def test_every_block_of_the_user_guide_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUN_NAME", raising=False)
    namespace: dict[str, object] = {"__name__": "user_guide"}
    ran = 0
    for index, (kind, code) in enumerate(_blocks()):
        if kind == "yaml":
            first, _, body = code.partition("\n")
            assert first.startswith("# file: "), f"yaml block {index} names no file"
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(body)
        elif kind == "python":
            try:
                exec(compile(code, f"{GUIDE.name}[block {index}]", "exec"), namespace)
            except Exception as exc:  # name the block that broke
                raise AssertionError(f"user guide block {index} failed:\n{code}") from exc
            ran += 1
    assert ran >= 6
    results = namespace["results"]
    assert results.trades.height > 0  # the guide's strategy really trades
    assert (tmp_path / "results" / "follow" / "report.html").is_file()


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_runs_as_a_script(script: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BacktestResults(completed" in done.stdout


def test_examples_exist() -> None:
    assert {p.stem for p in EXAMPLES} >= {"single_asset_ml", "top_n_batch", "regime_switching"}
    for path in EXAMPLES:
        module = runpy.run_path(str(path), run_name="not_main")
        assert callable(module["run"])
