"""Plugins: components and models found by name through Python entry points.

A third party ships a feed, a broker (execution client), a slippage or commission model,
a risk rule, a recorder, a strategy or any other component as its own package and
registers it in its ``pyproject.toml``::

    [project.entry-points."ml4t.backtest.commission"]
    tiered = "ml4t_commission_schedule:TieredCommission"

Config refers to it by the entry point's name, at the key :data:`CONFIG_KEYS` gives for
its kind (``execution.commission.model: tiered``); Python code asks :func:`load` for it.
:func:`discover` lists what is installed, with the distribution (package) each plugin
comes from, its version and the parameters it declares; :func:`catalog` puts the
built-in models, rules and roles beside them, and ``ml4t plugins`` prints that list. A
plugin that fails to import is reported by name and package as a :class:`PluginError`;
the other plugins still load. See ``docs/plugins.md``.

``ml4t new plugin NAME --kind KIND`` (:mod:`~ml4t.backtest.scaffold`, registered with
``ml4t plugins``) writes a new plugin package that installs and passes its tests.

Feeds, brokers and recorders are built with :func:`build`, which checks what the
plugin's factory returns against the published protocol of its role
(:mod:`ml4t.backtest.protocols`) and names what is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

import msgspec

from ml4t.backtest._catalog import CONFIG_KEYS, GROUPS, Param, builtins, params_of
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.protocols import Broker, Feed, RecorderRole, missing
from ml4t.backtest.scaffold import add_cli as _add_new_cli

__all__ = [
    "CONFIG_KEYS",
    "GROUPS",
    "Param",
    "PluginError",
    "PluginInfo",
    "add_cli",
    "build",
    "catalog",
    "discover",
    "load",
    "load_all",
]


class PluginError(ConfigError):
    """A plugin that is not installed, or that failed to import."""

    def __init__(self, message: str, *, kind: str = "", name: str = "", package: str = ""):
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.package = package


class PluginInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One plugin (or built-in): what it is, where it comes from, how a config names it,
    the parameters it takes, whether it imports."""

    kind: str
    group: str
    name: str
    target: str  # "module:attribute"
    package: str  # the distribution that registered it ("" if unknown or built in)
    version: str
    error: str | None = None  # None when it imported (or was not loaded)
    builtin: bool = False
    usage: str = ""  # how a run's config names it
    params: tuple[Param, ...] = ()  # what it declares (known once loaded)

    @property
    def ok(self) -> bool:
        return self.error is None


def _group(kind: str) -> str:
    group = GROUPS.get(kind)
    if group is None:
        raise PluginError(
            f"unknown plugin kind {kind!r}; kinds are {', '.join(sorted(GROUPS))}", kind=kind
        )
    return group


def _origin(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "", ""
    return dist.name or "", dist.version or ""


def _entry_points(kind: str) -> list[EntryPoint]:
    eps = entry_points(group=_group(kind))
    return sorted(eps, key=lambda ep: (ep.name, ep.value))


def _failure(kind: str, ep: EntryPoint, exc: BaseException) -> PluginError:
    package, version = _origin(ep)
    origin = f"package {package} {version}".strip() if package else "an unknown package"
    return PluginError(
        f"{kind} plugin {ep.name!r} (from {origin}, entry point {ep.value}) failed to "
        f"import: {type(exc).__name__}: {exc}; reinstall or upgrade {package or 'it'}, or "
        "uninstall it if it is not needed",
        kind=kind,
        name=ep.name,
        package=package,
    )


def _load(kind: str, ep: EntryPoint) -> Any:
    try:
        return ep.load()
    except Exception as exc:  # an ImportError, or anything the module raised at import
        raise _failure(kind, ep, exc) from exc


def discover(kinds: Iterable[str] | None = None, *, load: bool = False) -> list[PluginInfo]:
    """Every installed plugin of ``kinds`` (all kinds by default), sorted by kind and name.

    With ``load=True`` each one is imported and a failure is recorded in its ``error``
    (naming the plugin and its package) instead of raised, so one broken package never
    hides the others.
    """
    found: list[PluginInfo] = []
    for kind in kinds if kinds is not None else GROUPS:
        for ep in _entry_points(kind):
            package, version = _origin(ep)
            error: str | None = None
            params: tuple[Param, ...] = ()
            if load:
                try:
                    params = params_of(_load(kind, ep))
                except PluginError as exc:
                    error = str(exc)
            found.append(
                PluginInfo(
                    kind=kind,
                    group=_group(kind),
                    name=ep.name,
                    target=ep.value,
                    package=package,
                    version=version,
                    error=error,
                    usage=CONFIG_KEYS[kind].format(name=ep.name),
                    params=params,
                )
            )
    return found


def catalog(kinds: Iterable[str] | None = None, *, load: bool = True) -> list[PluginInfo]:
    """The built-in models, rules and roles of ``kinds`` (``builtin=True``, with their
    parameters) followed by the installed plugins (:func:`discover`), kind by kind."""
    from ml4t.backtest import __version__

    listed: list[PluginInfo] = []
    for kind in kinds if kinds is not None else GROUPS:
        group = _group(kind)
        for b in builtins(kind):
            listed.append(
                PluginInfo(
                    kind=kind,
                    group=group,
                    name=b.name,
                    target=b.target,
                    package="ml4t-backtest",
                    version=__version__,
                    builtin=True,
                    usage=b.usage,
                    params=b.params,
                )
            )
        listed += discover([kind], load=load)
    return listed


def load(kind: str, name: str) -> Any:
    """The object the plugin ``name`` of ``kind`` registered (a class, a function...).

    Raises :class:`PluginError` if no such plugin is installed (listing those that are)
    or if it fails to import (naming the plugin and its package).
    """
    eps = [ep for ep in _entry_points(kind) if ep.name == name]
    if not eps:
        known = ", ".join(ep.name for ep in _entry_points(kind)) or "none"
        raise PluginError(
            f"no {kind} plugin named {name!r} is installed (entry-point group "
            f"{_group(kind)!r}; installed: {known})",
            kind=kind,
            name=name,
        )
    return _load(kind, eps[0])


PROTOCOLS: Mapping[str, type] = MappingProxyType(
    {"feeds": Feed, "brokers": Broker, "recorders": RecorderRole}
)
"""Plugin kind -> the protocol what its factory returns must follow."""


def build(kind: str, name: str, *args: Any) -> Any:
    """The component the ``kind`` plugin ``name`` makes: its factory (a class or a
    function) called with ``args``, checked against the kind's protocol.

    Raises :class:`PluginError` naming the plugin, its package and what the product
    lacks (an attribute, the ``Component`` base, a handled topic).
    """
    factory = load(kind, name)
    product = factory(*args)
    protocol = PROTOCOLS.get(kind)
    lacks = missing(product, protocol) if protocol is not None else []
    if lacks:
        ep = next(ep for ep in _entry_points(kind) if ep.name == name)
        package, version = _origin(ep)
        origin = f"package {package} {version}".strip() if package else "an unknown package"
        raise PluginError(
            f"{kind} plugin {name!r} (from {origin}, entry point {ep.value}) made "
            f"{type(product).__name__}, which is not a {protocol.__name__} "  # type: ignore[union-attr]
            f"(ml4t.backtest.protocols.{protocol.__name__}): it lacks "  # type: ignore[union-attr]
            f"{', '.join(lacks)}",
            kind=kind,
            name=name,
            package=package,
        )
    return product


def load_all(kind: str) -> tuple[dict[str, Any], list[PluginError]]:
    """Every plugin of ``kind`` that imports, by name, and the errors of those that do not."""
    loaded: dict[str, Any] = {}
    errors: list[PluginError] = []
    for ep in _entry_points(kind):
        try:
            loaded.setdefault(ep.name, _load(kind, ep))
        except PluginError as exc:
            errors.append(exc)
    return loaded, errors


# --------------------------------------------------------------------------- command line


def add_cli(commands: Any) -> None:
    """Add ``ml4t plugins`` and ``ml4t new plugin`` (:mod:`~ml4t.backtest.scaffold`) to
    the ``ml4t`` command: the plugin tools come together."""
    parser = commands.add_parser(
        "plugins", help="list built-in models and installed plugins (and check they import)"
    )
    parser.add_argument("--kind", action="append", choices=sorted(GROUPS), help="only this kind")
    parser.add_argument(
        "--no-check", action="store_true", help="list without importing (faster, no status)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the list as JSON on stdout (one array)"
    )
    parser.set_defaults(func=_cli_plugins)
    _add_new_cli(commands)


def _param_lines(info: PluginInfo, checked: bool) -> str:
    if not info.params:
        return "-" if info.builtin or checked else "?"
    return "\n".join(
        f"{p.name}: {p.type}" + (" (required)" if p.default is None else f" = {p.default}")
        for p in info.params
    )


def _cli_plugins(args: Any) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    infos = catalog(args.kind, load=not args.no_check)
    failed = [info for info in infos if not info.ok]
    if args.json:
        sys.stdout.write(msgspec.json.encode(infos).decode() + "\n")
        return 1 if failed else 0
    console = Console(highlight=False)
    empty = []
    for kind in args.kind or GROUPS:
        rows = [info for info in infos if info.kind == kind]
        if not rows:
            empty.append(f"{kind} ({GROUPS[kind]})")
            continue
        table = Table(title=f"{kind}: entry-point group {GROUPS[kind]}", title_justify="left")
        for column in ("name", "from", "config", "parameters", "status"):
            table.add_column(column, overflow="fold")
        for info in rows:
            origin = "built-in" if info.builtin else f"{info.package} {info.version}".strip()
            if info.builtin or not args.no_check:
                status = "ok" if info.ok else "[red]failed[/]"
            else:
                status = "-"
            params = _param_lines(info, not args.no_check)
            cells = (escape(info.name), escape(origin), escape(info.usage), escape(params))
            table.add_row(*cells, status, end_section=True)
        console.print(table)
    if empty:
        console.print("none built in or installed: " + ", ".join(empty))
    for info in failed:
        console.print(f"[red]error[/]: {info.error}", soft_wrap=True)
    return 1 if failed else 0
