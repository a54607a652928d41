"""A config file is a small tree of UTF-8 text: what is not fails as a ConfigError that
names the file and the line, before anything is built from it."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from ml4t.backtest import ConfigError
from ml4t.backtest._yaml import load_yaml
from ml4t.backtest.config import load_config


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "run.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _failure(path: Path, **kwargs) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(path, **kwargs)
    return str(raised.value)


# ----------------------------------------------------------------- size with aliases


def _laughs(levels: int = 9, width: int = 10) -> str:
    """The "billion laughs": each level a list of ``width`` aliases of the one before."""
    lol = ",".join(['"lol"'] * width)
    lines = [f"a0: &a0 [{lol}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{','.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_nested_aliases_past_the_node_limit_fail_before_expanding(tmp_path: Path) -> None:
    text = _laughs()
    assert len(text.encode()) == 470  # expanded, a8 alone is 10**9 strings
    path = _write(tmp_path, text)
    # a0 is 1 list + 10 strings = 11 nodes; a(k) = 1 + 10 * a(k-1): 111, 1111, 11111,
    # then 111111 for a4, on line 5: the first node over 100,000
    tracemalloc.start()
    try:
        message = _failure(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message == (
        f"config file {str(path)!r}: with its aliases expanded, the node at line 5 holds "
        "111,111 nodes, over the limit of 100,000; a config this large is a mistake"
    )
    assert peak < 5_000_000  # bytes: nothing was expanded


def _sized(extra: int) -> str:
    """A mapping of 1 (itself) + 1 (key x) + 1000 (x, a list of 999) + 1 (key y) + 1 (list
    y) + 98 * 1000 (aliases of x in y) + ``extra`` (numbers in y) = 100,004 + extra nodes."""
    x = ", ".join(["1"] * 999)
    y = ", ".join(["*x"] * 98 + ["2"] * extra)
    return f"x: &x [{x}]\ny: [{y}]\n"


def test_a_document_of_the_node_limit_loads_and_one_node_more_fails() -> None:
    loaded = load_yaml(_sized(996), "test")  # 100,000 nodes
    assert len(loaded["y"]) == 98 + 996 and loaded["y"][0] == loaded["x"] == [1] * 999
    with pytest.raises(ConfigError) as raised:
        load_yaml(_sized(997), "test")
    assert str(raised.value) == (
        "test: with its aliases expanded, the node at line 1 holds 100,001 nodes, over the "
        "limit of 100,000; a config this large is a mistake"
    )


def test_an_alias_inside_the_node_it_names_fails_as_recursive(tmp_path: Path) -> None:
    path = _write(tmp_path, "backtest:\n  name: x\nloop: &loop\n  again: *loop\n")
    assert _failure(path) == (  # the node starts at its anchor, on line 3
        f"config file {str(path)!r}: the node at line 3 contains an alias to itself; a "
        "config must be a tree, not a recursive structure"
    )


# ----------------------------------------------------------------------- nesting depth


def test_30000_nested_lists_fail_as_a_config_error_not_a_recursion_error(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "backtest:\n  name: " + "[" * 30_000 + "]" * 30_000 + "\n")
    assert _failure(path) == (
        f"config file {str(path)!r}: nesting deeper than 100 levels at line 2; a config is "
        "a few sections deep"
    )


def test_nesting_past_the_depth_limit_through_aliases_fails() -> None:
    # l0 is a number (1 level); l(k) wraps *l(k-1) in 10 lists: 10k + 1 levels, so l10 on
    # line 11 is the first deeper than 100, though no line nests more than 11 levels
    lines = ["l0: &l0 1"]
    lines += [f"l{k}: &l{k} {'[' * 10}*l{k - 1}{']' * 10}" for k in range(1, 12)]
    with pytest.raises(ConfigError) as raised:
        load_yaml("\n".join(lines), "test")
    assert str(raised.value) == (
        "test: the node at line 11 nests deeper than 100 levels with its aliases; a config "
        "is a few sections deep"
    )


def test_a_set_value_nested_past_the_depth_limit_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "backtest:\n  name: x\n")
    item = "backtest.name=" + "[" * 30_000 + "]" * 30_000
    assert _failure(path, overrides=[item]) == (
        f"--set {item[:57] + '...'!r}: value: nesting deeper than 100 levels at line 1; a "
        "config is a few sections deep"
    )


# ---------------------------------------------------------------------- duplicate keys


def test_a_key_given_twice_fails_naming_the_key_and_both_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "backtest:\n  initial_capital: 100000\n  name: run\n  initial_capital: 50000\n",
    )
    assert _failure(path) == (
        f"config file {str(path)!r}: duplicate key 'initial_capital' at line 4 (first given "
        "at line 2); give each key once"
    )


def test_a_section_given_twice_fails_naming_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "risk:\n  max_open_positions: 5\nbacktest: {}\nrisk: {}\n")
    assert _failure(path) == (
        f"config file {str(path)!r}: duplicate key 'risk' at line 4 (first given at line "
        "1); give each key once"
    )


def test_a_key_after_a_merge_key_overrides_the_merged_value() -> None:
    text = "base: &base {max_open_positions: 5, max_gross_leverage: 1.5}\n"
    text += "risk:\n  <<: *base\n  max_open_positions: 10\n"
    loaded = load_yaml(text, "test")
    assert loaded["risk"] == {"max_open_positions": 10, "max_gross_leverage": 1.5}


# ------------------------------------------------------------------------ binary files


def test_a_binary_config_file_fails_naming_the_file_and_the_byte(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert _failure(path) == (
        f"config file {str(path)!r} is not UTF-8 text (byte 0x89 at offset 0); is it a binary file?"
    )


def test_utf8_text_with_control_characters_fails_as_invalid_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, b"backtest:\n  name: a\x00b\n")
    message = _failure(path)
    assert message.startswith(f"config file {str(path)!r} is not valid YAML: ")
    assert "unacceptable character #x0000" in message
