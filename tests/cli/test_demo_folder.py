"""``ml4t demo DIR`` into a folder that already holds a demo: the demo's own files are
rewritten and it runs again, but a config or strategy a person edited is never
overwritten unless ``--force`` (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest.demo import demo_texts, edited_files, prepare_demo
from ml4t.backtest.errors import ConfigError

from ._command import json_summary, ml4t, one_line_error
from .conftest import SIZE

FLAGS = ("--symbols", str(SIZE["n_symbols"]), "--days", str(SIZE["n_days"]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    prepare_demo(root, **SIZE)
    return root


def test_the_demo_runs_again_into_a_folder_holding_its_unedited_files(folder: Path) -> None:
    done = ml4t("demo", str(folder), *FLAGS, "--json")
    assert done.returncode == 0, done.stderr
    summary = json_summary(done)
    assert summary["command"] == "demo" and summary["outcome"] == "completed"
    assert summary["config"] == str(folder / "config.yaml")
    assert (folder / "config.yaml").read_text() == demo_texts()["config.yaml"]


def test_an_edited_config_is_refused_in_one_line_that_says_how_to_go_on(folder: Path) -> None:
    config = folder / "config.yaml"
    mine = config.read_text().replace("max_positions: 25", "max_positions: 5")
    config.write_text(mine)
    line = one_line_error(ml4t("demo", str(folder), *FLAGS))
    assert line == (
        f"ml4t: {config} was edited: the demo would overwrite it; run your version with "
        f"`ml4t run {config}`, or start over with `ml4t demo {folder} --force`"
    )
    assert config.read_text() == mine  # kept, byte for byte
    assert not (folder / "results").exists()  # and nothing ran


def test_an_edited_strategy_and_config_are_both_named(folder: Path) -> None:
    strategy = folder / "strategies" / "ml_top25.py"
    strategy.write_text(strategy.read_text() + "\n# my change\n")
    (folder / "config.yaml").write_text("# mine\n")
    line = one_line_error(ml4t("demo", str(folder), *FLAGS))
    assert f"{folder / 'config.yaml'} and {strategy} were edited" in line


def test_force_overwrites_edited_files_and_runs(folder: Path) -> None:
    (folder / "config.yaml").write_text("# mine\n")
    done = ml4t("demo", str(folder), *FLAGS, "--force", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # -q
    assert (folder / "config.yaml").read_text() == demo_texts()["config.yaml"]
    assert (folder / "results" / "manifest.json").is_file()


def test_another_variant_of_the_demo_is_not_an_edit(tmp_path: Path) -> None:
    """The --full config (corporate actions) and one without the HTML report are the
    demo's own texts: switching variants rewrites them without --force."""
    root = tmp_path / "demo"
    root.mkdir()
    for events, html in ((True, True), (False, False)):
        (root / "config.yaml").write_text(
            demo_texts(market_events=events, html_report=html)["config.yaml"]
        )
        assert edited_files(root) == []
    (root / "config.yaml").write_text(demo_texts()["config.yaml"] + " ")
    assert edited_files(root) == [root / "config.yaml"]
    with pytest.raises(ConfigError, match="was edited"):
        prepare_demo(root, **SIZE)
