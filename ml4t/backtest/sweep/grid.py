"""What a sweep varies: a grid or a random search over dotted config keys.

A sweep file (``GRID.yaml``) decodes into :class:`SweepSpec`; unknown keys and bad
values fail with the path of the key, as run configs do::

    search: grid                       # grid (every combination) | random
    params:
      strategy.params.threshold: [0.5, 0.6]
      execution.slippage.params.bps: {range: [1, 10, 3]}     # 1, 4, 7
      risk.max_open_positions: {linspace: [5, 25, 3]}        # 5, 15, 25
    walk_forward: {...}                # optional, see walkforward.py
    metric: sharpe_ratio               # what the summary ranks by
    maximize: true

A random search draws ``samples`` points with ``seed``; a list is then a uniform choice,
and ``uniform``, ``loguniform`` and ``randint`` (inclusive) draw from a range. A grid
accepts lists, ``range`` (stop excluded) and ``linspace`` (stop included).
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import yaml
from msgspec import Meta

from ml4t.backtest._yaml import convert, read_yaml
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.sweep.walkforward import WalkForward

__all__ = ["ParamValues", "SweepSpec", "expand_points", "format_override", "load_spec"]

Number = int | float
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_OWNED = ("reporting.output_dir",)
_WINDOW_KEYS = ("backtest.start_date", "backtest.end_date", "data.start", "data.end")


class ParamValues(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One parameter's values when a plain list will not do; give exactly one field."""

    values: list[Any] | None = None
    range: tuple[Number, Number, Number] | None = None  # start, stop (excluded), step
    linspace: tuple[Number, Number, Annotated[int, Meta(ge=1)]] | None = None
    uniform: tuple[float, float] | None = None  # random search only
    loguniform: tuple[Annotated[float, Meta(gt=0)], Annotated[float, Meta(gt=0)]] | None = None
    randint: tuple[int, int] | None = None  # random search only, both ends included

    def __post_init__(self) -> None:
        given = [f for f in self.__struct_fields__ if getattr(self, f) is not None]
        if len(given) != 1:
            raise ConfigError(f"give exactly one of {list(self.__struct_fields__)}; got {given}")
        if self.range is not None and self.range[2] == 0:
            raise ConfigError("range step must not be 0")
        for name in ("uniform", "loguniform", "randint"):
            bounds = getattr(self, name)
            if bounds is not None and bounds[1] < bounds[0]:
                raise ConfigError(f"{name}: high {bounds[1]} is below low {bounds[0]}")

    @property
    def continuous(self) -> bool:
        return self.values is None and self.range is None and self.linspace is None

    def listed(self) -> list[Any]:
        """The finite values (a list, a range or a linspace)."""
        if self.values is not None:
            return list(self.values)
        if self.range is not None:
            start, stop, step = self.range
            count = max(0, math.ceil((stop - start) / step - 1e-9))
            return [_tidy(start + i * step) for i in range(count)]
        assert self.linspace is not None
        start, stop, num = self.linspace
        if num == 1:
            return [_tidy(start)]
        return [_tidy(start + (stop - start) * i / (num - 1)) for i in range(num)]

    def draw(self, rng: np.random.Generator) -> Any:
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.loguniform is not None:
            low, high = self.loguniform
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.randint is not None:
            return int(rng.integers(self.randint[0], self.randint[1] + 1))
        values = self.listed()
        return values[int(rng.integers(len(values)))]


def _tidy(value: Number) -> Number:
    """Integers stay integers; floats lose the last-digit noise of repeated addition."""
    return value if isinstance(value, int) else float(f"{value:.12g}")


class SweepSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sweep: which keys take which values, over which walk-forward windows."""

    search: Literal["grid", "random"] = "grid"
    params: dict[str, list[Any] | ParamValues] = msgspec.field(default_factory=dict)
    samples: Annotated[int, Meta(ge=1)] | None = None
    seed: int = 0
    walk_forward: WalkForward | None = None
    metric: str = "sharpe_ratio"
    maximize: bool = True

    def __post_init__(self) -> None:
        for key, values in self.params.items():
            if not _KEY.match(key):
                raise ConfigError(f"params: {key!r} is not a dotted config key (a.b.c)")
            if key in _OWNED:
                raise ConfigError(f"params: {key} is set by the sweep (each run's directory)")
            if self.walk_forward is not None and key in _WINDOW_KEYS:
                raise ConfigError(f"params: {key} is set by walk_forward for each window")
            listed = values if isinstance(values, list) else None
            if listed is not None and not listed:
                raise ConfigError(f"params: {key} has no values")
            if self.search == "grid" and isinstance(values, ParamValues) and values.continuous:
                raise ConfigError(
                    f"params: {key} draws from a range, which only a random search can do; "
                    "give a list, range or linspace, or set search: random"
                )
        if self.search == "random" and self.samples is None:
            raise ConfigError("search: random needs samples (how many points to draw)")
        if self.search == "grid" and self.samples is not None:
            raise ConfigError("samples is for search: random; a grid runs every combination")


def load_spec(source: str | Path | dict[str, Any] | SweepSpec) -> SweepSpec:
    """A sweep spec from a YAML file, a dict or itself; ConfigError names the bad key."""
    if isinstance(source, SweepSpec):
        return source
    data = dict(source) if isinstance(source, dict) else read_yaml(source)
    return convert(data, SweepSpec, "sweep file")


def expand_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every parameter point, in a stable order (a grid varies its last key fastest)."""
    keys = list(spec.params)
    if spec.search == "grid":
        columns = [_values(spec.params[k]) for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*columns)]
    assert spec.samples is not None
    rng = np.random.default_rng(spec.seed)
    points = []
    for _ in range(spec.samples):
        point = {}
        for key in keys:
            values = spec.params[key]
            if isinstance(values, list):
                point[key] = values[int(rng.integers(len(values)))]
            else:
                point[key] = values.draw(rng)
        points.append(point)
    return points


def _values(values: list[Any] | ParamValues) -> list[Any]:
    return values if isinstance(values, list) else values.listed()


def format_override(key: str, value: Any) -> str:
    """``key=value`` with the value as YAML that ``--set`` parses back to ``value``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf)
    text = text.removesuffix("\n...\n").strip()
    if yaml.safe_load(text) != value:
        raise ConfigError(f"params: {key}: value {value!r} does not survive YAML; quote it")
    return f"{key}={text}"
