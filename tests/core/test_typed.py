"""ml4t.backtest ships its type information (PEP 561)."""

from __future__ import annotations

from importlib import resources


def test_package_ships_the_py_typed_marker_so_type_checkers_read_its_annotations() -> None:
    marker = resources.files("ml4t.backtest") / "py.typed"
    assert marker.is_file()
    assert marker.read_bytes() == b""  # a marker only: the package is fully typed, not partial
