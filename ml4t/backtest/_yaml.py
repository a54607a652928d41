"""YAML in, typed structs out: environment interpolation, ``--set`` overrides, and error
messages that carry the key path.

Only PyYAML's safe loader is used: a config file cannot construct Python objects. Before
anything is built from a document, it must be a tree of bounded size:

- at most :data:`MAX_NODES` nodes once every alias is expanded (a 470-byte document of
  nested aliases would otherwise grow to a billion strings when it is copied);
- at most :data:`MAX_DEPTH` levels of nesting, written out or reached through aliases;
- no alias inside the node it names (a recursive structure);
- each key once per mapping (a repeated key would silently replace the first one).

A file must be UTF-8 text. Each refusal is a :class:`ConfigError` naming the file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from ml4t.backtest.errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "apply_overrides",
    "convert",
    "interpolate_env",
    "load_yaml",
    "read_yaml",
    "to_yaml",
]

MAX_NODES = 100_000
"""Most nodes (keys, values, list items) a document may hold with its aliases expanded."""
MAX_DEPTH = 100
"""Most levels of nesting a document may hold with its aliases expanded."""

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


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing deep nesting while it composes (the composer recurses once
    per level) and a key given twice in one mapping while it constructs."""

    def __init__(self, text: str, where: str) -> None:
        super().__init__(text)
        self.where = where
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise ConfigError(
                    f"{self.where}: nesting deeper than {MAX_DEPTH} levels at line {line}; "
                    "a config is a few sections deep"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:  # before merge keys (``<<``) are flattened in
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the safe loader reports it
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise ConfigError(
                    f"{self.where}: duplicate key {key!r} at line {line} (first given at "
                    f"line {first_line[key]}); give each key once"
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: Node, where: str) -> None:
    """ConfigError unless the node graph, aliases expanded, is a tree of at most
    MAX_NODES nodes and MAX_DEPTH levels; each shared node is measured once, so this
    takes time in the size of the text, not of the expansion."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_: set[int] = set()  # the nodes on the path from the root to the current one
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, measured_children = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if measured_children:
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            height[key] = 1 + max((height[id(child)] for child in children), default=0)
            open_.discard(key)
            if size[key] > MAX_NODES:
                raise ConfigError(
                    f"{where}: with its aliases expanded, the node at line {line} holds "
                    f"{size[key]:,} nodes, over the limit of {MAX_NODES:,}; a config this "
                    "large is a mistake"
                )
            if height[key] > MAX_DEPTH:
                raise ConfigError(
                    f"{where}: the node at line {line} nests deeper than {MAX_DEPTH} levels "
                    "with its aliases; a config is a few sections deep"
                )
        elif key in open_:
            raise ConfigError(
                f"{where}: the node at line {line} contains an alias to itself; a config "
                "must be a tree, not a recursive structure"
            )
        elif key not in size:
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in size)


def load_yaml(text: str, where: str) -> Any:
    """The document in ``text``, checked as the module says; ``where`` (``config file
    'run.yaml'``) starts every error message."""
    try:
        loader = _Loader(text, where)  # the reader refuses control characters here
        try:
            root = loader.get_single_node()
            if root is None:
                return None
            _check_expansion(root, where)
            return _dates_as_text(loader.construct_document(root))
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; ConfigError for a missing, unreadable or binary file,
    or bad YAML."""
    path = Path(path)
    where = f"config file {str(path)!r}"
    if not path.is_file():
        raise ConfigError(f"{where} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "is it a binary file?"
        ) from exc
    data = load_yaml(text, where)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping at the top level")
    return data


def interpolate_env(data: Any, environ: Mapping[str, str] | None = None, path: str = "$") -> Any:
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
        shown = item if len(item) <= 60 else f"{item[:57]}..."
        value = load_yaml(raw, f"--set {shown!r}: value") if raw.strip() else ""
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
