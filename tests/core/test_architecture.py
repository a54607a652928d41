"""The public API is complete and imports flow one way (STYLE.md: layout shows the
architecture)."""

from __future__ import annotations

import ast
import builtins
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
    "types": 2,
    "codec": 2,
    "clock": 2,
    "_dispatch": 2,
    "_blocking": 2,
    "logging": 2,
    "_yaml": 2,
    "bus": 3,
    "component": 4,
    "topics": 4,
    "runtime": 5,
    "protocols": 5,
    "_span": 5,
    "testing": 5,
    # roles
    "data": 6,
    "execution": 6,
    "portfolio": 6,
    "_accounting": 6,
    "_corporate": 6,
    "_order_args": 6,
    "risk": 6,
    "_bar": 6,
    "_validation": 6,
    "_universe": 6,
    "_symbols": 6,
    "strategy": 7,
    "strategy_expr": 7,
    "record": 7,
    "metrics": 6,
    "analytics": 7,
    "report": 7,
    "journal": 7,
    "_commandline": 7,
    "live": 8,
    # assembly
    "engine": 8,
    "result": 8,
    "config": 8,
    "plugins": 8,
    "_catalog": 8,
    "scaffold": 8,
    "progress": 8,
    "sweep": 9,
    "demo": 9,
    "_runsummary": 9,
    "_preflight": 9,
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


# ---------------------------------------------------------------- state and dependencies

ROLES = ("data", "execution", "portfolio", "risk", "strategy", "record")
"""Role packages/modules: each talks to the others only through events on the bus."""

CONSTANT_TABLES = {
    # module: names of module-level dicts/lists/sets that are lookup tables built once at
    # import and never written afterwards
    "ml4t.backtest._time": {"_UNITS"},
    "ml4t.backtest.cli": {"DEMO_SMALL", "DEMO_FULL"},
    "ml4t.backtest.config": {"_OHLCV"},
    "ml4t.backtest.data._chunks": {"_WIDTHS"},
    "ml4t.backtest.data._source": {"_NS_PER_UNIT"},
    "ml4t.backtest.data.validation": {"HINTS", "_PER_UNIT"},
    "ml4t.backtest.execution.costs": {"_SLIPPAGE", "_COMMISSION", "_registry"},
    "ml4t.backtest.execution.orders": {"_NONE"},
    "ml4t.backtest.execution.presets": {"PRESETS"},
    "ml4t.backtest.record.results": {"_SCHEMAS"},
    "ml4t.backtest.sweep.runner": {"_DTYPES"},
    "ml4t.backtest.sweep.summary": {"_FIXED"},
}


def _package_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_module_level_mutable_state() -> None:
    import numpy as np

    mutable = (list, dict, set, bytearray, np.ndarray)
    found = []
    for name in _package_modules():
        module = importlib.import_module(name)
        allowed = CONSTANT_TABLES.get(name, set())
        for attr, value in vars(module).items():
            if attr.startswith("__") or attr in allowed:
                continue
            if isinstance(value, mutable) or type(value).__name__ in ("defaultdict", "deque"):
                found.append(f"{name}.{attr} ({type(value).__name__})")
    assert not found, (
        "module-level mutable state (make it a constant tuple/frozenset/MappingProxyType, "
        "or state of a component): " + ", ".join(found)
    )
    # the one exception: a process-pool worker keeps the sweep's stop event, set by the
    # pool's initializer in each worker process (how multiprocessing hands state over)
    allowed_globals = {("sweep/task.py", "_stop")}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                rebound = {(where, n) for n in node.names} - allowed_globals
                assert not rebound, f"{where} rebinds a module global: {sorted(rebound)}"


def _module_imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in it, functions included)."""
    known = set(_package_modules())
    graph: dict[str, set[str]] = {}
    for name in known:
        path = PACKAGE.parent.parent.joinpath(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        tree = ast.parse(path.read_text())
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            targets.update(c for c in candidates if c in known and c != name)
        graph[name] = targets
    return graph


def test_no_import_cycles_between_modules() -> None:
    graph = _module_imports()
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_role_imports_another_role() -> None:
    violations = []
    for name, targets in _module_imports().items():
        parts = name.split(".")
        own = parts[2] if len(parts) > 2 else ""
        if own not in ROLES:
            continue
        for target in targets:
            other = target.split(".")[2] if target.count(".") >= 2 else ""
            if other in ROLES and other != own:
                violations.append(f"{name} imports {target}")
    assert not violations, "\n".join(violations)


def test_the_engine_never_sets_attributes_on_a_component() -> None:
    """What a component needs arrives at construction, in its Context (clock, calendar)
    or on the bus (the session handshake): engine.py assigns only its own attributes."""
    tree = ast.parse((PACKAGE / "engine.py").read_text())
    poked = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if not isinstance(target, ast.Attribute):
                continue
            owner = target.value
            own = isinstance(owner, ast.Name) and owner.id == "self"
            if not own:
                poked.append(f"line {target.lineno}: {ast.unparse(target)}")
    assert not poked, "engine.py sets attributes of other objects: " + ", ".join(poked)


# ---------------------------------------------------------------- errors and names

_BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
_ALLOWED_BUILTINS = frozenset({"NotImplementedError"})
"""An abstract method or a msgspec hook that declines a type raises NotImplementedError."""


def _bound_at_module_level(tree: ast.Module) -> set[str]:
    """Names a module binds itself (imports, classes): a builtin's name bound here is not
    the builtin."""
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ClassDef):
            bound.add(node.name)
    return bound


def builtin_raises(source: str, filename: str) -> list[str]:
    """``file:line: code`` of each ``raise`` (or construction) of a builtin exception other
    than NotImplementedError; ``raise`` and ``raise exc`` of a caught exception pass."""
    tree = ast.parse(source, filename=filename)
    builtin = _BUILTIN_EXCEPTIONS - _ALLOWED_BUILTINS - _bound_at_module_level(tree)
    raised = {id(n.exc) for n in ast.walk(tree) if isinstance(n, ast.Raise)}
    found = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        elif isinstance(node, ast.Call) and id(node) not in raised:
            target = node.func  # built here, raised elsewhere (returned, stored)
        if isinstance(target, ast.Name) and target.id in builtin:
            found.append((node.lineno, ast.unparse(node).splitlines()[0]))
    return [f"{filename}:{line}: {code}" for line, code in sorted(found)]


def test_the_builtin_raise_check_sees_every_form() -> None:
    source = (
        "from ml4t.backtest.errors import ConfigError\n"
        "def f(x):\n"
        "    if x == 1:\n"
        "        raise ValueError('bad')\n"
        "    if x == 2:\n"
        "        raise KeyError\n"
        "    if x == 3:\n"
        "        return TypeError('built here, raised by the caller')\n"
        "    if x == 4:\n"
        "        raise NotImplementedError\n"
        "    if x == 5:\n"
        "        raise ConfigError('fine')\n"
        "    try:\n"
        "        pass\n"
        "    except ValueError as exc:\n"
        "        raise exc\n"
        "    except KeyError:\n"
        "        raise\n"
    )
    assert builtin_raises(source, "m.py") == [
        "m.py:4: raise ValueError('bad')",
        "m.py:6: raise KeyError",
        "m.py:8: TypeError('built here, raised by the caller')",
    ]


def test_every_exception_ml4t_raises_is_an_ml4t_error() -> None:
    """errors.py: every raise is an ML4TError subclass (those replacing a builtin also
    inherit it, so ``except ValueError`` callers keep working)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += builtin_raises(path.read_text(), str(path.relative_to(PACKAGE)))
    assert not found, (
        "builtin exceptions raised; raise an ml4t.backtest.errors class (one that also "
        "inherits the builtin, if callers catch it):\n" + "\n".join(found)
    )


def test_every_exception_class_of_the_package_is_an_ml4t_error() -> None:
    from ml4t.backtest.errors import ML4TError
    from ml4t.backtest.runtime import RunTerminated

    # SIGTERM's RunTerminated is a SystemExit on purpose: `except Exception` must not
    # swallow it on the way out
    allowed = {RunTerminated}
    strays = []
    for name in _package_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not issubclass(value, ML4TError)
                and value not in allowed
            ):
                strays.append(f"{name}.{value.__qualname__}")
    assert not strays, f"exception classes outside the ML4TError tree: {strays}"


def test_no_two_classes_of_the_package_share_a_name() -> None:
    """STYLE.md: two classes with one name are removed (a reader, a traceback or a
    ``repr`` cannot tell them apart)."""
    where: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    shared = {name: places for name, places in where.items() if len(places) > 1}
    assert not shared, "class names defined more than once:\n" + "\n".join(
        f"{name}: {', '.join(places)}" for name, places in sorted(shared.items())
    )
