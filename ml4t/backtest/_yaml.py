"""YAML in, typed structs out: environment interpolation, ``--set`` overrides, and error
messages that carry the key path.

Only ``yaml.safe_load`` is used: a config file cannot construct Python objects.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from ml4t.backtest.errors import ConfigError

__all__ = ["apply_overrides", "convert", "interpolate_env", "read_yaml", "to_yaml"]

T = TypeVar("T")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _dates_as_text(value: Any) -> Any:
    """YAML reads ``2023-01-03`` as a date; ml4t's config takes times as ISO text."""
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_as_text(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; ConfigError for a missing file or bad YAML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return _dates_as_text(data)


def interpolate_env(data: Any, environ: dict[str, str] | None = None, path: str = "$") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string value."""
    env = os.environ if environ is None else environ
    if isinstance(data, dict):
        return {k: interpolate_env(v, env, f"{path}.{k}") for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_env(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: environment variable {name!r} is not set (use ${{{name}:-default}} "
            "to give a default)"
        )

    return _ENV.sub(substitute, data)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides; the value is parsed as a YAML scalar or list."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        try:
            value = _dates_as_text(yaml.safe_load(raw)) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
        node = data
        parts = key.strip().split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {item!r}: {where} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def convert(data: Any, type_: type[T], what: str = "config") -> T:
    """``msgspec.convert`` with a ConfigError that names the key path."""
    try:
        return msgspec.convert(data, type_, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid {what}: {exc}") from exc


def to_yaml(struct: Any) -> str:
    """A struct (or builtins) as YAML that :func:`convert` turns back into it."""
    return yaml.safe_dump(msgspec.to_builtins(struct), sort_keys=False)
