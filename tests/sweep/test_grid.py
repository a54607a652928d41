"""Sweep files: decoding, expansion into points, overrides that survive YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.sweep import expand_points, load_spec
from ml4t.backtest.sweep.grid import format_override


def test_grid_expands_every_combination_with_the_last_key_fastest() -> None:
    spec = load_spec({"params": {"a.x": [1, 2], "b.y": ["p", "q", "r"]}})
    assert expand_points(spec) == [
        {"a.x": 1, "b.y": "p"},
        {"a.x": 1, "b.y": "q"},
        {"a.x": 1, "b.y": "r"},
        {"a.x": 2, "b.y": "p"},
        {"a.x": 2, "b.y": "q"},
        {"a.x": 2, "b.y": "r"},
    ]


def test_range_excludes_its_stop_and_linspace_includes_it() -> None:
    spec = load_spec(
        {
            "params": {
                "a.ints": {"range": [1, 10, 3]},
                "a.floats": {"range": [0.1, 0.4, 0.1]},
                "a.lin": {"linspace": [5, 25, 3]},
            }
        }
    )
    values = {k: v.listed() for k, v in spec.params.items()}
    assert values == {"a.ints": [1, 4, 7], "a.floats": [0.1, 0.2, 0.3], "a.lin": [5.0, 15.0, 25.0]}
    assert len(expand_points(spec)) == 27


def test_random_search_is_reproducible_from_its_seed_and_stays_in_bounds() -> None:
    raw = {
        "search": "random",
        "samples": 50,
        "seed": 3,
        "params": {
            "s.u": {"uniform": [0.2, 0.8]},
            "s.l": {"loguniform": [1e-4, 1e-1]},
            "s.i": {"randint": [2, 4]},
            "s.c": ["x", "y"],
        },
    }
    points = expand_points(load_spec(raw))
    assert points == expand_points(load_spec(raw))
    assert points != expand_points(load_spec({**raw, "seed": 4}))
    assert all(0.2 <= p["s.u"] <= 0.8 and 1e-4 <= p["s.l"] <= 1e-1 for p in points)
    assert {p["s.i"] for p in points} == {2, 3, 4}
    assert {p["s.c"] for p in points} == {"x", "y"}


def test_sweep_file_is_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "GRID.yaml"
    path.write_text(
        "params:\n  strategy.params.threshold: [0.4, 0.6]\nmetric: total_return\n"
        "walk_forward: {start: 2023-01-02, end: 2023-02-01, train: 10, test: 5, purge: 1}\n"
    )
    spec = load_spec(path)
    assert spec.metric == "total_return" and spec.walk_forward is not None
    assert spec.walk_forward.purge == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"parms": {}}, "unknown field `parms`"),
        ({"params": {"a.b": {"uniform": [0, 1]}}}, "only a random search"),
        ({"params": {"a.b": {"range": [1, 2, 1], "values": [1]}}}, "exactly one of"),
        ({"params": {"a b": [1]}}, "not a dotted config key"),
        ({"params": {"a.b": []}}, "has no values"),
        ({"params": {"reporting.output_dir": ["x"]}}, "set by the sweep"),
        ({"search": "random", "params": {"a.b": [1]}}, "needs samples"),
        (
            {
                "params": {"backtest.start_date": ["2023-01-03"]},
                "walk_forward": {"start": "2023-01-01", "end": "2023-02-01", "train": 5, "test": 5},
            },
            "set by walk_forward",
        ),
        ({"walk_forward": {"start": "2023-01-01", "end": "2023-02-01", "test": 5}}, "train"),
    ],
)
def test_bad_sweep_files_fail_with_the_path_of_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid sweep file") as info:
        load_spec(raw)
    assert message in str(info.value)


@pytest.mark.parametrize("value", [1, 1.5, 1e-5, "abc", "a: b", "", None, True, [1, "x"], "1.0"])
def test_overrides_parse_back_to_the_value(value: object) -> None:
    key, _, text = format_override("a.b", value).partition("=")
    assert key == "a.b"
    parsed = yaml.safe_load(text) if text.strip() else ""
    assert parsed == value and type(parsed) is type(value)
