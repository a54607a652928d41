"""``ml4t validate`` checks a config's corporate-action and universe files against the
market data's symbols, and a lone file given with --actions or --universe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset

ACTIONS_HEADER = "symbol,ex_date,action,ratio,amount,pay_date,price,new_symbol"


def ml4t(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml4t.backtest.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _config(root: Path, actions: str, universe: str) -> Path:
    """Daily data of AAA..AAD with the two files, named relative to the config."""
    write_dataset(root / "data", SyntheticConfig(n_symbols=4, n_days=5, frequency="1d"))
    (root / "actions.csv").write_text(f"{ACTIONS_HEADER}\n{actions}\n")
    (root / "universe.csv").write_text(f"symbol,start,end\n{universe}\n")
    path = root / "run.yaml"
    data = {
        "asset": {"path": "data/asset"},
        "corporate_actions": {"path": "actions.csv", "timezone": "America/New_York"},
        "universe": {"path": "universe.csv"},
    }
    path.write_text(yaml.safe_dump({"data": data}))
    return path


def test_a_config_with_valid_files_reports_each(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "AAA,2023-01-05,split,2,,,,\nAAB,2023-01-05,dividend,,0.5,,,",
        "AAA,2023-01-01,\nAAB,2023-01-05,",
    )
    done = ml4t("validate", str(config))
    assert done.returncode == 0, done.stderr
    assert "valid: 20 rows, 4 symbols" in done.stdout
    assert "valid: corporate actions" in done.stdout and "2 action(s) (1 dividend, 1 split)" in (
        done.stdout
    )
    assert "valid: universe" in done.stdout and "1 member(s) at the first bar, 1 change(s)" in (
        done.stdout
    )


def test_problems_of_both_files_are_reported_together_with_exit_2(tmp_path: Path) -> None:
    config = _config(
        tmp_path, "ZZZ,2023-01-05,split,2,,,,", "AAA,2023-01-01,2023-01-04\nAAA,2023-01-04,"
    )
    done = ml4t("validate", str(config))
    assert done.returncode == 2
    actions, universe = tmp_path / "actions.csv", tmp_path / "universe.csv"
    assert f"{actions}: row 1, column symbol: 'ZZZ' is not a symbol of the market data" in (
        done.stderr
    )
    assert f"{universe}: row 2, column start: AAA starts 2023-01-04, where" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_lone_file_is_checked_without_market_data(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{ACTIONS_HEADER}\nZZZ,2023-01-05,split,2,,,,\n")
    done = ml4t("validate", "--actions", str(path))
    assert done.returncode == 0, done.stderr
    assert "symbols not checked" in done.stdout and "1 action(s) (1 split)" in done.stdout
    path.write_text(f"{ACTIONS_HEADER}\nZZZ,2023-01-05,split,1,,,,\n")
    done = ml4t("validate", "--actions", str(path))
    assert done.returncode == 2 and f"{path}: row 1, column ratio:" in done.stderr


def test_validate_without_anything_to_check_is_a_usage_error() -> None:
    done = ml4t("validate")
    assert done.returncode == 2 and "give a config, a data path, --actions or --universe" in (
        done.stderr
    )
