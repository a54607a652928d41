"""One codec for every event: msgpack for machines, JSON for humans. No pickle.

Both formats decode into the tagged union of all :class:`~ml4t.backtest.events.Event`
subclasses, so a decoder needs no hint of what is coming. A polars frame travels as Arrow
IPC stream bytes: inside a msgpack extension (code :data:`ARROW_EXT`) so a batch of
hundreds of rows crosses a process boundary as one memory copy, and as base64 text inside
``{"arrow_ipc": ...}`` in JSON, which keeps every dtype exact.

Encoders and decoders are built once per :class:`Codec` and reused.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Union

import msgspec
import polars as pl

from ml4t.backtest.errors import BusError
from ml4t.backtest.events import Event, event_types

__all__ = ["ARROW_EXT", "Codec", "CodecError"]

ARROW_EXT = 1
"""msgpack extension code of a polars frame serialised as an Arrow IPC stream."""


class CodecError(BusError):
    """Bytes that are not a valid ml4t event, or a value the codec cannot encode."""


def _frame_to_ipc(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_ipc_stream(sink, compression="uncompressed")
    return sink.getvalue()


def _frame_from_ipc(data: bytes | memoryview) -> pl.DataFrame:
    return pl.read_ipc_stream(io.BytesIO(data))


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
            return _frame_from_ipc(base64.b64decode(obj["arrow_ipc"]))
    raise NotImplementedError(f"cannot decode {type(obj).__name__} as {typ.__name__}")


class Codec:
    """Encode and decode events in msgpack and JSON.

    ``types`` defaults to every event class imported when the codec is built; pass your
    own tuple to restrict (or extend, with plugin events) the union.
    """

    __slots__ = ("_json_dec", "_json_enc", "_mp_dec", "_mp_enc", "types")

    def __init__(self, types: tuple[type[Event], ...] | None = None) -> None:
        self.types = types if types is not None else event_types()
        if not self.types:
            raise ValueError("a codec needs at least one event type")
        union = Union[self.types]  # noqa: UP007 - a runtime union of a tuple of classes
        self._mp_enc = msgspec.msgpack.Encoder(enc_hook=_msgpack_enc_hook)
        self._mp_dec = msgspec.msgpack.Decoder(
            union, ext_hook=_msgpack_ext_hook, dec_hook=_dec_hook
        )
        self._json_enc = msgspec.json.Encoder(enc_hook=_json_enc_hook)
        self._json_dec = msgspec.json.Decoder(union, dec_hook=_dec_hook)

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
            return self._mp_dec.decode(data)
        except (msgspec.DecodeError, NotImplementedError, pl.exceptions.PolarsError) as exc:
            raise CodecError(f"undecodable msgpack event ({len(data)} bytes): {exc}") from exc

    # JSON -------------------------------------------------------------------

    def encode_json(self, event: Event) -> bytes:
        """JSON bytes of ``event`` (frames as base64 Arrow IPC)."""
        try:
            return self._json_enc.encode(event)
        except (TypeError, NotImplementedError) as exc:
            raise CodecError(f"cannot encode {type(event).__name__}: {exc}") from exc

    def decode_json(self, data: bytes | str) -> Event:
        try:
            return self._json_dec.decode(data)
        except (msgspec.DecodeError, NotImplementedError, pl.exceptions.PolarsError) as exc:
            raise CodecError(f"undecodable JSON event: {exc}") from exc

    def roundtrip(self, event: Event) -> Event:
        """``decode(encode(event))``: what a subscriber in another process would receive."""
        return self.decode(self.encode(event))
