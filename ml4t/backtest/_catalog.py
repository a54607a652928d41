"""What ml4t ships built in, described the way ``ml4t plugins`` describes a plugin.

A user choosing a commission model should see ``per_share`` next to the ``tiered`` plugin
they installed, with the parameters each takes, their types and defaults, without
reading source. Both come from the same place: a model, a rule with parameters or a
config section is a ``msgspec.Struct``, so :func:`params_of` reads its fields (with their
constraints) through :mod:`msgspec.inspect`, for built-ins and plugins alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

from ml4t.backtest.data import FeedConfig, ParquetFeed
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.execution.costs import COMMISSION_MODELS, SLIPPAGE_MODELS
from ml4t.backtest.record import Recorder, ReportingConfig
from ml4t.backtest.risk.config import RiskConfig
from ml4t.backtest.risk.rules import KEYS, RULES

__all__ = ["CONFIG_KEYS", "GROUPS", "Builtin", "Param", "builtins", "params_of", "type_text"]

GROUPS: Mapping[str, str] = MappingProxyType(
    {
        "feeds": "ml4t.backtest.feeds",
        "brokers": "ml4t.backtest.brokers",
        "slippage": "ml4t.backtest.slippage",
        "commission": "ml4t.backtest.commission",
        "risk_rules": "ml4t.backtest.risk_rules",
        "recorders": "ml4t.backtest.recorders",
        "strategies": "ml4t.strategies",
        "components": "ml4t.backtest.components",
        "live_data": "ml4t.backtest.live_data",
        "live_brokers": "ml4t.backtest.live_brokers",
    }
)
"""Plugin kind -> entry-point group. ``components`` takes anything else that joins a graph
(a bus bridge, a monitor); ``live_data`` and ``live_brokers`` are the factories of the
market-data and execution clients ``ml4t live`` uses (``docs/live.md``)."""

CONFIG_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "feeds": "plugins.feed: {name}",
        "brokers": "plugins.broker: {name}",
        "slippage": "execution.slippage.model: {name}",
        "commission": "execution.commission.model: {name}",
        "risk_rules": "risk.rules: [{{rule: {name}, params: {{...}}}}]",
        "recorders": "plugins.recorder: {name}",
        "strategies": "strategy.plugin: {name}",
        "components": "plugins.components: [{name}]",
        "live_data": "live.data: {{adapter: {name}}}",
        "live_brokers": "live.broker: {{adapter: {name}}}",
    }
)
"""Plugin kind -> how a run's config names a plugin of that kind (every kind can be)."""


class Param(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter: its key, its type as a reader writes it (``float >= 0``,
    ``'cash' | 'margin'``), and its default as YAML would show it (None: required)."""

    name: str
    type: str
    default: str | None = None


class Builtin(NamedTuple):
    name: str
    target: str  # "module:attribute"
    usage: str  # how a config chooses it
    params: tuple[Param, ...]


def _number_text(base: str, t: mi.IntType | mi.FloatType) -> str:
    """``float > 0``, ``float <= 1``, or both bounds as an interval: ``float in (0, 1]``."""
    low, low_open = (t.gt, True) if t.gt is not None else (t.ge, False)
    high, high_open = (t.lt, True) if t.lt is not None else (t.le, False)
    if low is not None and high is not None:
        return f"{base} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{base} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{base} {'<' if high_open else '<='} {high:g}"
    return base


def type_text(t: mi.Type) -> str:
    """A msgspec type as a reader writes it: ``float > 0 | None``, ``tuple[str, ...]``."""
    if isinstance(t, mi.IntType | mi.FloatType):
        return _number_text("int" if isinstance(t, mi.IntType) else "float", t)
    if isinstance(t, mi.UnionType):
        return " | ".join(type_text(part) for part in t.types)
    if isinstance(t, mi.LiteralType):
        return " | ".join(repr(value) for value in t.values)
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType):
        kind = {mi.ListType: "list", mi.SetType: "set", mi.FrozenSetType: "frozenset"}[type(t)]
        return f"{kind}[{type_text(t.item_type)}]"
    if isinstance(t, mi.VarTupleType):
        return f"tuple[{type_text(t.item_type)}, ...]"
    if isinstance(t, mi.TupleType):
        return f"tuple[{', '.join(type_text(item) for item in t.item_types)}]"
    if isinstance(t, mi.DictType):
        return f"dict[{type_text(t.key_type)}, {type_text(t.value_type)}]"
    if isinstance(t, mi.StructType | mi.EnumType):
        return t.cls.__name__
    simple = {mi.StrType: "str", mi.BoolType: "bool", mi.NoneType: "None", mi.AnyType: "Any"}
    return simple.get(type(t), type(t).__name__.removesuffix("Type").lower())


def _default_text(field: mi.Field) -> str | None:
    if field.required:
        return None
    value = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
    if isinstance(value, msgspec.Struct):
        return f"{type(value).__name__}()"  # a section of its own, with its own defaults
    return msgspec.json.encode(msgspec.to_builtins(value)).decode()


def struct_params(
    cls: type[msgspec.Struct], only: tuple[str, ...] | None = None
) -> tuple[Param, ...]:
    """The fields of a Struct class as parameters (``only``: these keys, in this order)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields = {field.encode_name: field for field in info.fields}
    names = only if only is not None else tuple(fields)
    return tuple(
        Param(name=name, type=type_text(fields[name].type), default=_default_text(fields[name]))
        for name in names
    )


def params_of(obj: Any) -> tuple[Param, ...]:
    """The parameters a plugin's object declares: the fields of a Struct class (a cost
    model, a RiskRule), or of a strategy's nested ``Params`` Struct; () otherwise."""
    if isinstance(obj, type):
        if issubclass(obj, msgspec.Struct):
            return struct_params(obj)
        spec = getattr(obj, "Params", None)
        if isinstance(spec, type) and issubclass(spec, msgspec.Struct):
            return struct_params(spec)
    return ()


def _target(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _models(section: str, models: Any) -> list[Builtin]:
    return [
        Builtin(name, _target(cls), f"execution.{section}.model: {name}", struct_params(cls))
        for name, cls in models.items()
    ]


def _rules() -> list[Builtin]:
    found = []
    for rule in RULES:
        keys = KEYS.get(rule, ())
        usage = "its keys in the risk section" if keys else "always on"
        name = rule.__name__.removeprefix("check_")
        found.append(Builtin(name, _target(rule), usage, struct_params(RiskConfig, keys)))
    return found


def _role(role: Any, section: str, config: type[msgspec.Struct], key: str) -> Builtin:
    usage = f"the default (plugins.{key} unset); reads the {section} section"
    return Builtin(role.__name__, _target(role), usage, struct_params(config))


def builtins(kind: str) -> list[Builtin]:
    """The built-in models, rules or roles of a plugin kind ([] for a kind with none)."""
    if kind == "commission":
        return _models("commission", COMMISSION_MODELS)
    if kind == "slippage":
        return _models("slippage", SLIPPAGE_MODELS)
    if kind == "risk_rules":
        return _rules()
    if kind == "feeds":
        return [_role(ParquetFeed, "data", FeedConfig, "feed")]
    if kind == "brokers":
        return [_role(SimulatedBroker, "execution", BrokerConfig, "broker")]
    if kind == "recorders":
        return [_role(Recorder, "reporting", ReportingConfig, "recorder")]
    return []
