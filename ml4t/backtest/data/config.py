"""Configuration of the data layer: typed, frozen msgspec structs.

A YAML ``data:`` section decodes straight into :class:`FeedConfig`; an unknown key, a
wrong type or a bad value fails at decode time with the path of the offending key
(``$.context.available_lag``). Everything here can also be built in Python.

Durations are strings such as ``"1m"``, ``"16h"`` or ``"1d 2h"`` (see
:func:`ml4t.backtest.parse_duration`); times are ISO-8601 strings with an offset
(``"2023-01-03T14:30:00+00:00"``) or a bare date (``"2023-01-03"``, midnight UTC).
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ml4t.backtest._time import parse_duration, to_ns
from ml4t.backtest.errors import ConfigError

__all__ = [
    "ActionsSourceConfig",
    "AssetSourceConfig",
    "ContextSourceConfig",
    "FeedConfig",
    "OutsideSession",
    "Repair",
    "SignalSourceConfig",
    "UniverseSourceConfig",
    "decode_feed_config",
    "duration_ns",
    "time_ns",
]

NonEmptyStr = Annotated[str, Meta(min_length=1)]
Duration = Annotated[str, Meta(min_length=1, description="e.g. '1m', '16h', '1d 2h'")]


class Repair(enum.StrEnum):
    """Documented fixes a user may opt into (see docs/data.md, "Repair")."""

    SORT = "sort"  # sort each time chunk by (timestamp, symbol) instead of rejecting
    DROP_NULL_OHLCV = "drop_null_ohlcv"  # drop rows with a null in open/high/low/close/volume
    DROP_NON_FINITE = "drop_non_finite"  # drop rows with inf or -inf in open/high/low/close/volume
    DROP_DUPLICATES = "drop_duplicates"  # keep the first row of each (timestamp, symbol)
    DROP_NEGATIVE = "drop_negative"  # drop rows with a negative price or volume
    DROP_ZERO_PRICE = "drop_zero_price"  # drop rows with a price of zero
    CLIP_OHLC = "clip_ohlc"  # swap high/low when high < low, clip open/close into [low, high]


class OutsideSession(enum.StrEnum):
    """What to do with bars whose time is outside the calendar's sessions."""

    KEEP = "keep"
    DROP = "drop"
    REJECT = "reject"


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every data-layer config struct. Subclasses repeat ``frozen=True``: msgspec
    inherits it, but type checkers read a subclass without it as mutable."""


Format = Literal["auto", "parquet", "csv"]
"""How a source's files are read: by extension (``auto``: .parquet/.pq/.parq, .csv/.csv.gz)."""

SymbolFrom = Literal["column", "filename"]
"""Where a row's symbol comes from: the symbol column, or the name of its per-symbol file."""

TimestampFormat = Annotated[str, Meta(min_length=2, pattern="%", description="strftime, CSV")]


class AssetSourceConfig(_Config, frozen=True, kw_only=True):
    """Long-format bars: ``timestamp``, ``symbol``, OHLCV and extra columns.

    ``path`` is a file, a glob, a directory (hive partitions allowed) or, with
    ``symbol_from: filename``, a directory of per-symbol files (``AAPL.csv``); leave it
    empty when the frame is given in Python (``ParquetFeed(asset=...)``). ``format``
    (``auto`` by extension, ``parquet``, ``csv``) and ``timestamp_format`` (strftime for
    CSV text times; ISO-8601 detected when unset) say how files are read: see
    docs/data.md, "Layouts".
    """

    path: str | None = None
    format: Format = "auto"
    symbol_from: SymbolFrom = "column"
    timestamp_format: TimestampFormat | None = None
    signals: list[NonEmptyStr] = msgspec.field(default_factory=list)
    indicators: list[NonEmptyStr] = msgspec.field(default_factory=list)
    timestamp_column: NonEmptyStr = "timestamp"
    symbol_column: NonEmptyStr = "symbol"
    bar_label: Literal["start", "end"] = "end"
    bar_interval: Duration | None = None
    timezone: NonEmptyStr | None = None
    symbols: list[NonEmptyStr] | None = None
    prices: Literal["raw", "adjusted"] = "raw"


class SignalSourceConfig(_Config, frozen=True, kw_only=True):
    """A slower per-symbol source (e.g. daily predictions) joined as of availability time.

    ``format``, ``symbol_from`` and ``timestamp_format`` as for the asset source.
    """

    path: str | None = None
    format: Format = "auto"
    symbol_from: SymbolFrom = "column"
    timestamp_format: TimestampFormat | None = None
    columns: list[NonEmptyStr]
    timestamp_column: NonEmptyStr = "timestamp"
    symbol_column: NonEmptyStr = "symbol"
    available_lag: Duration = "0s"
    available_at: NonEmptyStr | None = None
    max_staleness: Duration | None = None
    timezone: NonEmptyStr | None = None


class ContextSourceConfig(_Config, frozen=True, kw_only=True):
    """Market-wide fields (VIX, an index, a rate), one row per timestamp, any frequency.

    ``format`` and ``timestamp_format`` as for the asset source.
    """

    path: str | None = None
    format: Format = "auto"
    timestamp_format: TimestampFormat | None = None
    fields: list[NonEmptyStr]
    timestamp_column: NonEmptyStr = "timestamp"
    available_lag: Duration = "0s"
    available_at: NonEmptyStr | None = None
    timezone: NonEmptyStr | None = None


_TABLE_SUFFIXES = (".parquet", ".pq", ".parq", ".csv")


def _check_table(path: str, timezone: str | None, key: str) -> None:
    """A corporate-action or universe file is parquet or CSV; its zone must exist."""
    if not path.lower().endswith(_TABLE_SUFFIXES):
        raise ConfigError(
            f"{key}.path: {path!r} is neither parquet nor CSV; name the file *.parquet "
            "(or .pq, .parq) or *.csv"
        )
    if timezone is not None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"{key}.timezone: {timezone!r} is not a time zone name (e.g. America/New_York)"
            ) from exc


class ActionsSourceConfig(_Config, frozen=True, kw_only=True):
    """The corporate-action file (splits, dividends, delistings, symbol changes).

    ``path`` is one parquet or CSV file (chosen by extension). ``timezone`` is the zone
    in which its dates (and naive timestamps) are read; unset, the asset data's
    ``timezone``, else UTC. See docs/data.md, "Corporate actions".
    """

    path: NonEmptyStr
    timezone: NonEmptyStr | None = None

    def __post_init__(self) -> None:
        _check_table(self.path, self.timezone, "corporate_actions")


class UniverseSourceConfig(_Config, frozen=True, kw_only=True):
    """The point-in-time universe file: ``symbol``, ``start``, ``end`` intervals.

    ``on_exit`` says what happens to a position in a symbol that leaves the universe
    (``hold`` it, or ``close`` it); ``timezone`` as for :class:`ActionsSourceConfig`.
    See docs/data.md, "Point-in-time universe".
    """

    path: NonEmptyStr
    on_exit: Literal["hold", "close"] = "hold"
    timezone: NonEmptyStr | None = None

    def __post_init__(self) -> None:
        _check_table(self.path, self.timezone, "universe")


class FeedConfig(_Config, frozen=True, kw_only=True):
    """Everything the :class:`~ml4t.backtest.data.feed.ParquetFeed` needs."""

    asset: AssetSourceConfig = msgspec.field(default_factory=AssetSourceConfig)
    signal_data: SignalSourceConfig | None = None
    context: ContextSourceConfig | None = None
    start: str | None = None
    end: str | None = None
    chunk_memory_mb: Annotated[float, Meta(gt=0)] = 256.0
    validate: bool = True
    validation_cache: bool = True
    repair: list[Repair] = msgspec.field(default_factory=list)
    calendar: NonEmptyStr | None = None
    outside_session: OutsideSession = OutsideSession.KEEP
    corporate_actions: ActionsSourceConfig | None = None
    universe: UniverseSourceConfig | None = None

    def __post_init__(self) -> None:
        if self.asset.bar_label == "start" and self.asset.bar_interval is None:
            raise ConfigError(
                "asset.bar_label is 'start' but asset.bar_interval is not set; give the bar "
                "length (e.g. bar_interval: 1m) so bars can be shifted to the time they are known"
            )
        if self.outside_session != OutsideSession.KEEP and self.calendar is None:
            raise ConfigError(
                f"outside_session is {str(self.outside_session)!r} but no calendar is set; "
                "add e.g. calendar: NYSE"
            )
        for key in ("start", "end"):
            time_ns(getattr(self, key), key)
        _check_formats(self)
        for src, name in ((self.signal_data, "signal_data"), (self.context, "context")):
            if src is not None:
                duration_ns(src.available_lag, f"{name}.available_lag")


def _check_formats(config: FeedConfig) -> None:
    """``timestamp_format`` parses CSV text: it contradicts ``format: parquet``."""
    for key in ("asset", "signal_data", "context"):
        src = getattr(config, key)
        if src is not None and src.format == "parquet" and src.timestamp_format is not None:
            raise ConfigError(
                f"{key}.timestamp_format is set but {key}.format is parquet, whose timestamps "
                "carry their type; remove timestamp_format (it applies to CSV only)"
            )


def time_ns(value: str | None, key: str) -> int | None:
    """UTC nanoseconds of a config time; a bare date means midnight UTC."""
    if value is None:
        return None
    text = value if "T" in value or " " in value else f"{value}T00:00:00+00:00"
    try:
        return to_ns(text)
    except ValueError as exc:
        raise ConfigError(
            f"{key}: {value!r} is not an ISO-8601 time with an offset: {exc}"
        ) from exc


def duration_ns(value: str | None, key: str) -> int | None:
    """Nanoseconds of a config duration, or a ConfigError naming ``key``."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def decode_feed_config(data: object) -> FeedConfig:
    """A FeedConfig from decoded YAML/JSON (a dict); errors carry the key path."""
    try:
        return msgspec.convert(data, FeedConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid data config: {exc}") from exc
