"""Fuzzing the wire and the journal: random bytes, truncations and bit flips of every
event type raise only ``CodecError`` (codec) or ``JournalError`` (journal reader).

Inputs come from a seeded loop (printed on failure): for each event type a few events
are built from its field types, then mutated 2,000 times per check.
"""

from __future__ import annotations

import enum
import random
import struct
import types
import typing
import zlib
from pathlib import Path

import msgspec
import polars as pl
import pytest

from ml4t.backtest import Codec, CodecError, Event
from ml4t.backtest.events import event_types
from ml4t.backtest.journal import JournalError, JournalReader, JournalWriter

SEED = 20261201
INPUTS = 2_000
CODEC = Codec()
TYPES = event_types()
FRAME = struct.Struct("<IHqI")
S = typing.TypeVar("S", bound=msgspec.Struct)


def value_for(annotation: object, rng: random.Random) -> object:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return value_for(rng.choice(typing.get_args(annotation)), rng)
    if annotation is type(None):
        return None
    if annotation is bool:
        return rng.random() < 0.5
    if annotation is int:
        return rng.randrange(-(2**62), 2**62)
    if annotation is float:
        return rng.uniform(-1e6, 1e6)
    if annotation is bytes:
        return rng.randbytes(rng.randrange(8))
    if annotation is str:
        return "".join(rng.choice("abcXYZ.-é") for _ in range(rng.randrange(8)))
    if annotation is pl.DataFrame:
        n = rng.randrange(1, 5)
        symbols = [f"S{i}" for i in range(n)]
        data: dict[str, object] = {"symbol": pl.Series(symbols, dtype=pl.Enum(symbols))}
        for name in ("open", "high", "low", "close", "volume", "signal"):
            data[name] = [rng.uniform(1, 200) for _ in symbols]
        return pl.DataFrame(data)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return rng.choice(list(annotation))
    if origin is dict:
        key, item = typing.get_args(annotation)
        return {value_for(key, rng): value_for(item, rng) for _ in range(rng.randrange(3))}
    if origin in (list, tuple):
        (item, *_rest) = typing.get_args(annotation)
        return [value_for(item, rng) for _ in range(rng.randrange(3))]
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return struct_of(annotation, rng)  # a nested record (AccountReconciled's orders)
    raise AssertionError(f"no value for field type {annotation!r}; extend value_for")


def struct_of(cls: type[S], rng: random.Random) -> S:
    hints = typing.get_type_hints(cls)
    fields = {f.name: value_for(hints[f.name], rng) for f in msgspec.structs.fields(cls)}
    if isinstance(fields.get("frame"), pl.DataFrame) and "codes" in fields:
        fields["codes"] = bytes(4 * fields["frame"].height)  # one int32 code per row
    return cls(**fields)


def event_of(cls: type[Event], rng: random.Random) -> Event:
    return struct_of(cls, rng)


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:  # truncation
        return data[: rng.randrange(len(data))]
    if kind == 1:  # one to three bit flips
        out = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(out) * 8)
            out[at // 8] ^= 1 << (at % 8)
        return bytes(out)
    if kind == 2:  # random bytes spliced in
        at = rng.randrange(len(data))
        junk = rng.randbytes(rng.randrange(1, 16))
        return data[:at] + junk + data[at + rng.randrange(len(junk) + 1) :]
    return rng.randbytes(rng.randrange(64))  # random bytes


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_corrupt_msgpack_and_json_of_every_event_type_raise_only_codec_error(
    cls: type[Event],
) -> None:
    rng = random.Random(f"{SEED}-{cls.__name__}")
    samples = [event_of(cls, rng) for _ in range(8)]
    encoded = [CODEC.encode(e) for e in samples] + [CODEC.encode_json(e) for e in samples]
    tried = 0
    for n in range(INPUTS):
        i = n % len(encoded)
        data = mutate(encoded[i], rng)
        decode = CODEC.decode if i < len(samples) else CODEC.decode_json
        try:
            decoded = decode(data)
        except CodecError:
            pass
        except BaseException as exc:  # the failure this test exists to find
            raise AssertionError(
                f"seed {SEED}, input #{n} of {cls.__name__} ({data!r}) raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        else:
            assert isinstance(decoded, Event)
        tried += 1
    assert tried == INPUTS


def journal_of(cls: type[Event], path: Path, rng: random.Random) -> bytes:
    events = [event_of(cls, rng) for _ in range(3)]
    writer = JournalWriter(path, ["a", "b"], header={"config": {"x": 1}}, codec=CODEC)
    for i, event in enumerate(events):
        writer.write(i % 2, 10 * i, event)
    writer.close()
    return path.read_bytes()


def refresh_crc(data: bytes, rng: random.Random) -> bytes:
    """Corrupt one frame's payload and give it a matching CRC, so that the codec and the
    reader's own checks (not the CRC) must catch it."""
    out = bytearray(data)
    (size,) = struct.unpack_from("<I", data, 8)
    offset, frames = 16 + size, []
    while offset + FRAME.size <= len(data):
        n, *_ = FRAME.unpack_from(data, offset)
        frames.append((offset, n))
        offset += FRAME.size + n
    at, n = rng.choice(frames)
    start = at + FRAME.size
    for _ in range(rng.randrange(1, 4)):
        out[start + rng.randrange(n)] = rng.randrange(256)
    crc = zlib.crc32(bytes(out[start : start + n]), zlib.crc32(bytes(out[at : at + 14])))
    struct.pack_into("<I", out, at + 14, crc)
    return bytes(out)


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_corrupt_journals_of_every_event_type_raise_only_journal_error(
    cls: type[Event], tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}-journal-{cls.__name__}")
    good = journal_of(cls, tmp_path / "good.ml4tj", rng)
    path = tmp_path / "bad.ml4tj"
    for n in range(INPUTS):
        data = refresh_crc(good, rng) if n % 4 == 3 else mutate(good, rng)
        path.write_bytes(data)
        try:
            reader = JournalReader(path, codec=CODEC)
            entries = list(reader)
            reader.scan()
        except JournalError:
            continue
        except BaseException as exc:
            raise AssertionError(
                f"seed {SEED}, journal input #{n} of {cls.__name__} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        assert len(entries) <= 3
