"""One codec for every event: msgpack for machines, JSON for humans. No pickle.

Both formats decode into the tagged union of all :class:`~ml4t.backtest.events.Event`
subclasses, so a decoder needs no hint of what is coming. A polars frame travels as Arrow
IPC stream bytes: inside a msgpack extension (code :data:`ARROW_EXT`) so a batch of
hundreds of rows crosses a process boundary as one memory copy, and as base64 text inside
``{"arrow_ipc": ...}`` in JSON, which keeps every dtype exact.

Encoders and decoders are built once per :class:`Codec` and reused.

**Decoding raises only** :class:`CodecError`, whatever the bytes: malformed msgpack or
JSON, a wrong field type, an unknown tag, a corrupt Arrow payload (polars may answer
corrupt IPC bytes with an ``OSError`` or even a Rust panic, which is a ``BaseException``;
both become a ``CodecError``). A decoded event is then checked, once per type, for what
the schema alone cannot say:

- every ``float`` field (quantities, prices, money) is finite: no NaN, no infinity;
- a :class:`~ml4t.backtest.events.MarketBatch` frame has a ``symbol`` column (string,
  categorical or enum) and numeric ``open``, ``high``, ``low``, ``close`` and ``volume``
  columns (its time is the event's ``ts_event``; a ``timestamp`` column, if present, is a
  datetime).

These checks run in the decoder, not in the events' constructors, so building an event
in the loop costs nothing extra.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Callable
from functools import reduce
from operator import attrgetter, or_
from typing import Any, TypeVar

import msgspec
import polars as pl

from ml4t.backtest.errors import BusError, ConfigError
from ml4t.backtest.events import Event, MarketBatch, event_types

__all__ = ["ARROW_EXT", "Codec", "CodecError"]

E = TypeVar("E", bound=Event)

ARROW_EXT = 1
"""msgpack extension code of a polars frame serialised as an Arrow IPC stream."""


class CodecError(BusError):
    """Bytes that are not a valid ml4t event, or a value the codec cannot encode."""


def _frame_to_ipc(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_ipc_stream(sink, compression="uncompressed")
    return sink.getvalue()


def _frame_from_ipc(data: bytes | memoryview) -> pl.DataFrame:
    try:
        return pl.read_ipc_stream(io.BytesIO(data))
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # polars may answer corrupt IPC bytes with a Rust panic
        first_line = next(iter(str(exc).splitlines()), "")
        raise CodecError(
            f"the frame's {len(data)} Arrow IPC bytes are corrupt: "
            f"{type(exc).__name__}: {first_line}"
        ) from exc


# msgspec's hook protocol: a hook raises NotImplementedError for a type it does not handle.


def _msgpack_enc_hook(obj: Any) -> Any:
    if isinstance(obj, pl.DataFrame):
        return msgspec.msgpack.Ext(ARROW_EXT, _frame_to_ipc(obj))
    raise NotImplementedError(f"ml4t cannot encode {type(obj).__name__}")


def _msgpack_ext_hook(code: int, data: memoryview) -> Any:
    if code == ARROW_EXT:
        return _frame_from_ipc(data)
    raise NotImplementedError(f"unknown msgpack extension code {code}")


def _json_enc_hook(obj: Any) -> Any:
    if isinstance(obj, pl.DataFrame):
        return {"arrow_ipc": base64.b64encode(_frame_to_ipc(obj)).decode("ascii")}
    raise NotImplementedError(f"ml4t cannot encode {type(obj).__name__}")


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ is pl.DataFrame:
        if isinstance(obj, pl.DataFrame):
            return obj
        if isinstance(obj, dict) and isinstance(obj.get("arrow_ipc"), str):
            try:
                raw = base64.b64decode(obj["arrow_ipc"], validate=True)
            except binascii.Error as exc:
                raise CodecError(f"the frame's arrow_ipc text is not base64: {exc}") from exc
            return _frame_from_ipc(raw)
    raise NotImplementedError(f"cannot decode {type(obj).__name__} as {typ.__name__}")


# --------------------------------------------------------------------------- checks

_Check = Callable[[Any], "str | None"]
_OHLCV = ("open", "high", "low", "close", "volume")
_SYMBOL_TYPES = (pl.String, pl.Categorical, pl.Enum)


def _is_float(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.FloatType):
        return True
    if isinstance(info, msgspec.inspect.UnionType):
        return any(isinstance(t, msgspec.inspect.FloatType) for t in info.types)
    return False


def _finite_check(cls: type[Event]) -> _Check | None:
    """A check that every float field of ``cls`` is finite, or None if it has none."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    names = tuple(f.name for f in info.fields if _is_float(f.type))
    if not names:
        return None
    values = attrgetter(*names) if len(names) > 1 else (lambda e: (getattr(e, names[0]),))
    isfinite = math.isfinite

    def check(event: Any) -> str | None:
        for name, value in zip(names, values(event), strict=True):
            if value is not None and not isfinite(value):
                return f"{name} is {value}; quantities, prices and money must be finite"
        return None

    return check


def _check_batch(event: MarketBatch) -> str | None:
    schema = event.frame.schema
    dtype = schema.get("symbol")
    if dtype is None:
        return f"the frame has no 'symbol' column (columns: {list(schema)})"
    if not isinstance(dtype, _SYMBOL_TYPES):
        return f"the frame's 'symbol' column is {dtype}, not a string, categorical or enum"
    for name in _OHLCV:
        dtype = schema.get(name)
        if dtype is None:
            return f"the frame has no {name!r} column (columns: {list(schema)})"
        if not dtype.is_numeric():
            return f"the frame's {name!r} column is {dtype}, not numeric"
    dtype = schema.get("timestamp")
    if dtype is not None and not isinstance(dtype, pl.Datetime):
        return f"the frame's 'timestamp' column is {dtype}, not a datetime"
    codes = getattr(event, "codes", b"")  # one int32 symbol code per row, or none
    if codes and len(codes) != 4 * event.frame.height:
        return f"{len(codes)} bytes of symbol codes for {event.frame.height} rows (4 per row)"
    return None


def _checks(types: tuple[type[Event], ...]) -> dict[type[Event], tuple[_Check, ...]]:
    """The decode-time checks of each event type that needs any, resolved once."""
    checks: dict[type[Event], tuple[_Check, ...]] = {}
    for cls in types:
        batch = _check_batch if issubclass(cls, MarketBatch) else None
        found = tuple(c for c in (_finite_check(cls), batch) if c is not None)
        if found:
            checks[cls] = found
    return checks


class Codec:
    """Encode and decode events in msgpack and JSON.

    ``types`` defaults to every event class imported when the codec is built; pass your
    own tuple to restrict (or extend, with plugin events) the union.
    """

    __slots__ = ("_checks", "_json_dec", "_json_enc", "_mp_dec", "_mp_enc", "types")

    def __init__(self, types: tuple[type[Event], ...] | None = None) -> None:
        self.types = types if types is not None else event_types()
        if not self.types:
            raise ConfigError("a codec needs at least one event type (types=None: every one)")
        union = reduce(or_, self.types)  # A | B | ...: a runtime union of classes
        self._mp_enc = msgspec.msgpack.Encoder(enc_hook=_msgpack_enc_hook)
        self._mp_dec = msgspec.msgpack.Decoder(
            union, ext_hook=_msgpack_ext_hook, dec_hook=_dec_hook
        )
        self._json_enc = msgspec.json.Encoder(enc_hook=_json_enc_hook)
        self._json_dec = msgspec.json.Decoder(union, dec_hook=_dec_hook)
        self._checks = _checks(self.types)

    def _checked(self, event: Event, where: str) -> Event:
        for check in self._checks.get(type(event), ()):
            problem = check(event)
            if problem is not None:
                raise CodecError(f"invalid {type(event).__name__} in {where}: {problem}")
        return event

    # msgpack ----------------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        """msgpack bytes of ``event``."""
        try:
            return self._mp_enc.encode(event)
        except (TypeError, NotImplementedError) as exc:
            raise CodecError(f"cannot encode {type(event).__name__}: {exc}") from exc

    def decode(self, data: bytes | memoryview) -> Event:
        """The event in msgpack ``data``; :class:`CodecError` names what is wrong."""
        try:
            event = self._mp_dec.decode(data)
        except (msgspec.DecodeError, NotImplementedError, CodecError) as exc:
            raise CodecError(f"undecodable msgpack event ({len(data)} bytes): {exc}") from exc
        return self._checked(event, f"msgpack event ({len(data)} bytes)")

    # JSON -------------------------------------------------------------------

    def encode_json(self, event: Event) -> bytes:
        """JSON bytes of ``event`` (frames as base64 Arrow IPC)."""
        try:
            return self._json_enc.encode(event)
        except (TypeError, NotImplementedError) as exc:
            raise CodecError(f"cannot encode {type(event).__name__}: {exc}") from exc

    def decode_json(self, data: bytes | str) -> Event:
        """The event in JSON ``data``; :class:`CodecError` names what is wrong."""
        try:
            event = self._json_dec.decode(data)
        except (msgspec.DecodeError, NotImplementedError, CodecError) as exc:
            raise CodecError(f"undecodable JSON event: {exc}") from exc
        return self._checked(event, "JSON event")

    def roundtrip(self, event: E) -> E:
        """``decode(encode(event))``: what a subscriber in another process would receive
        (an event of the same class: the encoding carries its tag)."""
        decoded = self.decode(self.encode(event))
        assert isinstance(decoded, type(event))
        return decoded
