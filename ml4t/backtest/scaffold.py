"""``ml4t new plugin NAME --kind KIND``: a plugin package that installs and passes its tests.

docs/plugins.md tells a plugin author what to write; this writes it. The package is laid
out as the in-repo plugins are (``plugins/``) and as a third party ships one::

    ml4t-NAME/
    ├── pyproject.toml            # the dependency on ml4t-backtest and the entry point
    ├── README.md                 # install, check, and the config lines that name it
    ├── src/ml4t_NAME/__init__.py # a small working plugin of KIND, its docstring the guide
    └── tests/                    # its unit tests and a backtest that names it in config

The module is a working example, not a stub: a per-share commission with a minimum, a
tick-based slippage, a max-order-quantity risk rule with typed params, a buy-and-hold
strategy with ``Params``, a parquet feed held in memory, a next-open broker, or a
fill-counting component. Each uses only the public API, and its tests run a backtest
that names the plugin the way a user's config would. The templates are the ``*.tmpl``
files beside this module (``templates/plugin/``); ``{{key}}`` marks what is filled in.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from ml4t.backtest._catalog import CONFIG_KEYS, GROUPS
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.execution.costs import COMMISSION_MODELS, SLIPPAGE_MODELS

__all__ = ["KINDS", "Scaffold", "add_cli", "new_plugin"]

KINDS: Mapping[str, str] = MappingProxyType(
    {
        "commission": "commission",
        "slippage": "slippage",
        "risk_rule": "risk_rules",
        "strategy": "strategies",
        "feed": "feeds",
        "broker": "brokers",
        "component": "components",
    }
)
"""Template kind (``--kind``) -> plugin kind (``ml4t plugins --kind``). Recorders have no
template: a recorder replaces the built-in one and its whole results contract."""

_SUFFIX = MappingProxyType(
    {
        "commission": "Commission",
        "slippage": "Slippage",
        "risk_rule": "Rule",
        "strategy": "Strategy",
        "feed": "Feed",
        "broker": "Broker",
        "component": "Component",
    }
)

_ABOUT = MappingProxyType(
    {
        "commission": "A per-share commission with a minimum per order",
        "slippage": "A slippage of whole ticks against each fill",
        "risk_rule": "A pre-trade risk rule refusing orders above a share limit",
        "strategy": "A strategy that buys each symbol and sells it after a holding period",
        "feed": "A feed of bars from a parquet file held in memory",
        "broker": "A venue filling market orders in full at the next open",
        "component": "A component counting the fills of each symbol",
    }
)

_USAGE = MappingProxyType(
    {
        "commission": "execution:\n  commission:\n    model: {{name}}\n"
        "    params: {per_share: 0.005, minimum: 1.0}",
        "slippage": "execution:\n  slippage:\n    model: {{name}}\n"
        "    params: {ticks: 1, tick_size: 0.01}",
        "risk_rule": "risk:\n  rules:\n    - rule: {{name}}\n      params: {limit: 500}",
        "strategy": "strategy:\n  plugin: {{name}}\n  params: {quantity: 100, hold_bars: 2}",
        "feed": "plugins:\n  feed: {{name}}          # reads data.asset.path",
        "broker": "plugins:\n  broker: {{name}}        # reads the execution section",
        "component": "plugins:\n  components: [{{name}}]",
    }
)

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class Scaffold(NamedTuple):
    """What :func:`new_plugin` wrote."""

    root: Path  # the package directory
    dist: str  # distribution name (pip install ...)
    module: str  # import name
    cls: str  # the plugin's class
    name: str  # the entry point's name: what a config writes
    kind: str  # the template kind
    files: tuple[Path, ...]  # relative to root


def _render(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _template(name: str) -> str:
    return files("ml4t.backtest").joinpath("templates", "plugin", name).read_text("utf-8")


def _kind(value: str) -> str:
    """A template kind from ``--kind`` (the plugin kinds' names are accepted too)."""
    key = value.strip().lower().replace("-", "_")
    for kind, plugin_kind in KINDS.items():
        if key in (kind, plugin_kind):
            return kind
    raise ConfigError(
        f"no plugin template of kind {value!r}; kinds are {', '.join(KINDS)} (recorders "
        "have none: subclass ml4t.backtest.Recorder)"
    )


def _names(name: str, kind: str) -> dict[str, str]:
    snake = re.sub(r"[-.\s]+", "_", name.strip()).lower()
    base = snake.removeprefix("ml4t_").strip("_")
    if not _NAME.fullmatch(base):
        raise ConfigError(
            f"plugin name {name!r}: use letters, digits, '-' and '_', starting with a letter "
            "(e.g. acme-fees)"
        )
    models = {"commission": COMMISSION_MODELS, "slippage": SLIPPAGE_MODELS}.get(kind, {})
    builtin = {n.lower() for n in models} | {cls.__name__.lower() for cls in models.values()}
    if base in builtin:
        raise ConfigError(
            f"plugin name {base!r} is a built-in {kind} model's, which a config naming it "
            "would get instead; choose another name"
        )
    suffix = _SUFFIX[kind]
    camel = "".join(part.capitalize() for part in base.split("_") if part)
    module = f"ml4t_{base}"
    plugin_kind = KINDS[kind]
    return {
        "name": base,
        "module": module,
        "dist": module.replace("_", "-"),
        "cls": camel if camel.endswith(suffix) else camel + suffix,
        "kind": kind.replace("_", " "),
        "plugin_kind": plugin_kind,
        "group": GROUPS[plugin_kind],
        "usage": CONFIG_KEYS[plugin_kind].format(name=base),
        "description": f"{_ABOUT[kind]}: an ml4t {kind.replace('_', ' ')} plugin.",
        "ml4t_version": _ml4t_version(),
    }


def _ml4t_version() -> str:
    """The running ml4t's major.minor, the generated package's lowest supported version."""
    try:
        found = re.match(r"\d+\.\d+", version("ml4t-backtest"))
    except PackageNotFoundError:  # a source tree that was never installed
        found = None
    return found.group(0) if found else "0.1"


def new_plugin(
    name: str, *, kind: str = "commission", directory: str | Path = ".", force: bool = False
) -> Scaffold:
    """Write the package of a ``kind`` plugin called ``name`` under ``directory``.

    Refuses (ConfigError) a directory that exists and is not empty unless ``force``,
    which overwrites the template's files and leaves any others alone."""
    kind = _kind(kind)
    values = _names(name, kind)
    values["usage_yaml"] = _render(_USAGE[kind], values)
    root = Path(directory) / values["dist"]
    if root.exists() and not force and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(
            f"{root} already exists and is not empty; nothing was written. Choose another "
            "NAME or --dir, or pass --force to overwrite the files the template writes"
        )
    module, test = values["module"], f"test_{values['module']}.py"
    layout = {
        Path("pyproject.toml"): _template("pyproject.toml.tmpl"),
        Path("README.md"): _template("README.md.tmpl"),
        Path("src", module, "__init__.py"): _template(f"{kind}.py.tmpl"),
        Path("src", module, "py.typed"): "",
        Path("tests", "conftest.py"): _template("conftest.py.tmpl"),
        Path("tests", test): _template(f"test_{kind}.py.tmpl"),
    }
    for relative, text in layout.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(text, values), encoding="utf-8")
    return Scaffold(
        root=root,
        dist=values["dist"],
        module=module,
        cls=values["cls"],
        name=values["name"],
        kind=kind,
        files=tuple(layout),
    )


# --------------------------------------------------------------------------- command line


def add_cli(commands: Any) -> None:
    """Add ``ml4t new plugin NAME`` to the ``ml4t`` command."""
    new = commands.add_parser("new", help="start a new piece of work from a template")
    what = new.add_subparsers(dest="template", required=True, metavar="WHAT")
    plugin = what.add_parser(
        "plugin", help="a plugin package: pyproject with its entry point, module, tests"
    )
    plugin.add_argument("name", help="the plugin's name, e.g. acme-fees (package ml4t-acme-fees)")
    plugin.add_argument(
        "--kind", default="commission", help=f"one of {', '.join(KINDS)} (default: commission)"
    )
    plugin.add_argument(
        "--dir", default=".", help="where to create the package directory (default: here)"
    )
    plugin.add_argument(
        "--force", action="store_true", help="overwrite the template's files in an existing one"
    )
    plugin.set_defaults(func=_cli_new_plugin)


def _cli_new_plugin(args: argparse.Namespace) -> int:
    from rich.console import Console

    made = new_plugin(args.name, kind=args.kind, directory=args.dir, force=args.force)
    console = Console(highlight=False)
    plugin_kind = KINDS[made.kind]
    console.print(
        f"created {made.root}: the {made.kind.replace('_', ' ')} plugin [bold]{made.name}[/] "
        f"({made.module}:{made.cls}, package {made.dist})",
        soft_wrap=True,
    )
    for relative in made.files:
        console.print(f"  {relative.as_posix()}", markup=False)
    console.print("next:", markup=False)
    console.print(f"  pip install -e '{made.root}[test]'", markup=False, soft_wrap=True)
    console.print(f"  pytest {made.root / 'tests'}", markup=False, soft_wrap=True)
    console.print(f"  ml4t plugins --kind {plugin_kind}", markup=False)
    usage = CONFIG_KEYS[plugin_kind].format(name=made.name)
    console.print(f"  in a run's config: {usage}", markup=False, soft_wrap=True)
    return 0
