"""Risk rules from plugins, found by name and built from their own typed parameters.

A third-party rule is registered under the entry-point group ``ml4t.backtest.risk_rules``
and named in a run's config with its parameters::

    risk:
      rules:
        - rule: max_order_quantity          # the entry point's name
          params: {limit: 500}              # the rule's own fields

A rule with parameters is a :class:`~ml4t.backtest.risk.rules.RiskRule`: a frozen
``msgspec.Struct`` whose fields *are* its parameters (constraints as types,
``Annotated[float, Meta(gt=0)]``). Building it from ``params`` validates them, and
:class:`~ml4t.backtest.risk.config.RiskRuleConfig` builds it as the config is decoded, so
an unknown rule, an unknown key or a wrong type fails before any work with the key's
path (``params.limit`` at ``$.risk.rules[0]``), as a cost model's params do. A plain
function ``(request, view, config) -> Rejection | None`` is a rule too; it takes no
params.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec

from ml4t.backtest.errors import ConfigError

__all__ = ["GROUP", "build_rule", "load_rule"]

GROUP = "ml4t.backtest.risk_rules"
"""The entry-point group risk-rule plugins register in."""

_PARAM_PATH = re.compile(r"`\$\.")


def _installed() -> list[EntryPoint]:
    return sorted(entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value))


def load_rule(name: str) -> Any:
    """The object the risk-rule plugin ``name`` registered (a RiskRule class or a
    function); ConfigError if none is installed or it fails to import."""
    found = [ep for ep in _installed() if ep.name == name]
    if not found:
        known = ", ".join(ep.name for ep in _installed()) or "none"
        raise ConfigError(
            f"no risk rule plugin named {name!r} is installed (entry-point group {GROUP!r}; "
            f"installed: {known}); `ml4t plugins --kind risk_rules` lists them"
        )
    ep = found[0]
    try:
        return ep.load()
    except Exception as exc:  # an ImportError, or anything the module raised at import
        dist = ep.dist
        origin = f"package {dist.name} {dist.version}" if dist is not None else "a package"
        raise ConfigError(
            f"risk rule plugin {name!r} (from {origin}, entry point {ep.value}) failed to "
            f"import: {type(exc).__name__}: {exc}"
        ) from exc


def build_rule(name: str, params: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The rule registered as ``name``, built from ``params`` (validated): an instance of
    its RiskRule class, or its function as it is (which takes no params)."""
    target = load_rule(name)
    params = params or {}
    if isinstance(target, type) and issubclass(target, msgspec.Struct) and hasattr(target, "check"):
        try:
            rule: Callable[..., Any] = msgspec.convert(params, target)  # type: ignore[assignment]
        except msgspec.ValidationError as exc:
            message = _PARAM_PATH.sub("`params.", str(exc))
            if " - at `" not in message:  # a problem with params as a whole
                message += " - at `params`"
            raise ConfigError(f"bad params for risk rule {name!r}: {message}") from None
        return rule
    if isinstance(target, type) or not callable(target):
        raise ConfigError(
            f"risk rule plugin {name!r} is {target!r}: register a RiskRule subclass "
            "(ml4t.backtest.RiskRule) or a function (request, view, config) -> "
            "Rejection | None"
        )
    if params:
        raise ConfigError(
            f"risk rule {name!r} is a function and takes no params (got {sorted(params)}); "
            "make it a RiskRule subclass whose fields are its parameters"
        )
    return target
