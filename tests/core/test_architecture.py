"""The public API is complete and imports flow one way (STYLE.md: layout shows the
architecture)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ml4t.backtest

PACKAGE = Path(ml4t.backtest.__file__).parent

# Lower layers never import higher ones. A new top-level module must be placed here.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_time": 0,
    "_days": 1,
    "events": 1,
    "codec": 2,
    "clock": 2,
    "_dispatch": 2,
    "logging": 2,
    "_yaml": 2,
    "bus": 3,
    "component": 4,
    "topics": 4,
    "runtime": 5,
    "protocols": 5,
    "testing": 5,
    # roles
    "data": 6,
    "execution": 6,
    "portfolio": 6,
    "_accounting": 6,
    "risk": 6,
    "_bar": 6,
    "_validation": 6,
    "_universe": 6,
    "strategy": 7,
    "record": 7,
    "metrics": 6,
    "report": 7,
    "journal": 7,
    "live": 8,
    # assembly
    "engine": 8,
    "config": 8,
    "plugins": 8,
    "progress": 8,
    "sweep": 9,
    "demo": 9,
    "cli": 10,
    "__init__": 10,
    "__main__": 10,
}


def _layer_of(module_path: Path) -> tuple[str, int]:
    top = module_path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if top not in LAYERS:
        pytest.fail(f"module {top!r} has no layer; add it to LAYERS in {__file__}")
    return top, LAYERS[top]


def _imported_tops(tree: ast.AST) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("ml4t.backtest."):
                tops.add(name.split(".")[2])
    return tops


def test_imports_flow_one_way() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top, layer = _layer_of(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for imported in _imported_tops(tree):
            if imported == top:
                continue
            if imported not in LAYERS:
                violations.append(f"{path.name} imports unknown module {imported}")
            elif LAYERS[imported] > layer:
                violations.append(
                    f"{path.relative_to(PACKAGE)} (layer {layer}) imports ml4t.backtest."
                    f"{imported} (layer {LAYERS[imported]})"
                )
    assert not violations, "\n".join(violations)


def test_ml4t_is_a_namespace_package() -> None:
    assert not (PACKAGE.parent / "__init__.py").exists()


def test_public_api_is_complete_and_importable() -> None:
    api = importlib.import_module("ml4t.backtest")
    assert api.__all__ == sorted(api.__all__, key=str), "keep __all__ sorted"
    for name in api.__all__:
        assert hasattr(api, name), f"ml4t.backtest.{name} is in __all__ but not defined"
    public = {n for n in vars(api) if not n.startswith("_") and n not in {"annotations"}}
    modules = {n for n in public if type(getattr(api, n)).__name__ == "module"}
    missing = public - set(api.__all__) - modules - {"version", "PackageNotFoundError"}
    assert not missing, f"public names missing from __all__: {sorted(missing)}"


def test_no_pickle_anywhere() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        assert "pickle" not in _imported_tops(tree) and not any(
            isinstance(n, ast.Import) and any(a.name in {"pickle", "cloudpickle"} for a in n.names)
            for n in ast.walk(tree)
        ), f"{path} imports pickle"
