"""Every event type round-trips through msgpack and JSON unchanged (property tests)."""

from __future__ import annotations

import enum
import io
import math
import types
import typing
from datetime import UTC, datetime

import msgspec
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest import (
    Codec,
    CodecError,
    Event,
    MarketBatch,
    OrderFilled,
    OrderSide,
    SubmitOrder,
)
from ml4t.backtest.events import event_types

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(max_size=20)


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    """A batch frame: Enum symbols, OHLCV, floats with nulls, an int column, a UTC datetime."""
    universe = sorted(draw(st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=8)))
    rows = draw(st.integers(min_value=0, max_value=len(universe)))
    symbols = universe[:rows]
    floats = st.none() | FINITE
    return pl.DataFrame(
        {
            "symbol": pl.Series(symbols, dtype=pl.Enum(universe)),
            **{
                name: pl.Series([draw(floats) for _ in symbols], dtype=pl.Float64)
                for name in ("open", "high", "low", "close")
            },
            "volume": pl.Series([draw(FINITE) for _ in symbols], dtype=pl.Float64),
            "flag": pl.Series([draw(st.integers(-5, 5)) for _ in symbols], dtype=pl.Int32),
            "asof": pl.Series(
                [datetime(2024, 1, 2, 15, draw(st.integers(0, 59)), tzinfo=UTC) for _ in symbols],
                dtype=pl.Datetime("ns", "UTC"),
            ),
        }
    )


def _strategy_for(annotation: object) -> st.SearchStrategy[object]:
    """A hypothesis strategy for one field type; fails loudly for a type it does not know,
    so a new event field cannot silently escape the round-trip test."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_strategy_for(arg) for arg in typing.get_args(annotation)))
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return INT64
    if annotation is float:
        return FINITE
    if annotation is str:
        return TEXT
    if annotation is bytes:  # MarketBatch.codes: empty, or one int32 per frame row
        return st.just(b"")
    if annotation is pl.DataFrame:
        return frames()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return _structs_of(annotation)  # a value nested in an event (VenueOrder)
    if origin is dict:
        key, value = typing.get_args(annotation)
        return st.dictionaries(_strategy_for(key), _strategy_for(value), max_size=4)
    if origin in (list, tuple):
        (item, *_rest) = typing.get_args(annotation)
        return st.lists(_strategy_for(item), max_size=4)
    raise AssertionError(f"no strategy for field type {annotation!r}; extend _strategy_for")


def _structs_of(cls: type[msgspec.Struct]) -> st.SearchStrategy[typing.Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _strategy_for(hints[f.name]) for f in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


def _events_of(cls: type[Event]) -> st.SearchStrategy[Event]:
    return _structs_of(cls)


ALL_TYPES = event_types()
any_event = st.one_of(*(_events_of(cls) for cls in ALL_TYPES))
CODEC = Codec()


def test_every_event_type_is_in_the_codec_union() -> None:
    assert set(CODEC.types) == set(ALL_TYPES)
    assert MarketBatch in ALL_TYPES and OrderFilled in ALL_TYPES
    assert len(ALL_TYPES) >= 14


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_event_type_roundtrips_through_msgpack_and_json(
    cls: type[Event], data: st.DataObject
) -> None:
    event = data.draw(_events_of(cls))
    via_msgpack = CODEC.decode(CODEC.encode(event))
    via_json = CODEC.decode_json(CODEC.encode_json(event))
    assert type(via_msgpack) is cls and via_msgpack == event
    assert type(via_json) is cls and via_json == event


@settings(max_examples=100, deadline=None)
@given(event=any_event)
def test_decoder_needs_no_hint_of_the_event_type(event: Event) -> None:
    assert CODEC.roundtrip(event) == event


def test_frame_dtypes_survive_both_codecs() -> None:
    frame = pl.DataFrame(
        {
            "symbol": pl.Series(["AAA", "BBB"], dtype=pl.Enum(["AAA", "BBB", "CCC"])),
            **{name: [1.5, None] for name in ("open", "high", "low", "close")},
            "volume": pl.Series([100, 200], dtype=pl.Int64),
            "ts": pl.Series([0, 1], dtype=pl.Datetime("ns", "UTC")),
        }
    )
    batch = MarketBatch(ts_event=1, frame=frame, context={"vix": 12.5, "spy": None})
    for decoded in (CODEC.roundtrip(batch), CODEC.decode_json(CODEC.encode_json(batch))):
        assert isinstance(decoded, MarketBatch)
        assert decoded.frame.schema == frame.schema
        assert decoded.frame["symbol"].dtype == pl.Enum(["AAA", "BBB", "CCC"])
        assert decoded == batch


def test_market_batch_equality_sees_a_changed_value() -> None:
    frame = pl.DataFrame({"close": [1.0, 2.0]})
    batch = MarketBatch(ts_event=1, frame=frame)
    other = MarketBatch(ts_event=1, frame=frame.with_columns(pl.col("close") + 1e-9))
    assert batch != other
    assert batch != MarketBatch(ts_event=1, frame=frame, context={"vix": 1.0})


def test_a_batch_computes_its_columns_once_and_never_encodes_them() -> None:
    frame = pl.DataFrame(
        {
            "symbol": pl.Series(["BBB", "CCC"], dtype=pl.Enum(["AAA", "BBB", "CCC"])),
            **{name: [1.5, None] for name in ("open", "high", "low", "close")},
            "volume": [100.0, 200.0],
        }
    )
    batch = MarketBatch(ts_event=1, frame=frame)
    close = batch.numpy("close")
    assert close is batch.numpy("close") and not close.flags.writeable
    np.testing.assert_array_equal(close, [1.5, np.nan])
    codes = batch.symbol_codes()
    assert codes is batch.symbol_codes() and codes.tolist() == [1, 2]
    # what the batch keeps beside its fields stays out of the encoded bytes
    assert CODEC.encode(batch) == CODEC.encode(MarketBatch(ts_event=1, frame=frame))
    decoded = CODEC.roundtrip(batch)
    assert decoded == batch and decoded.symbol_codes().tolist() == [1, 2]
    np.testing.assert_array_equal(decoded.numpy("close"), close)


def test_json_is_readable_and_tagged() -> None:
    fill = OrderFilled(
        ts_event=5,
        fill_id="f1",
        order_id="o1",
        strategy_id="s",
        symbol="AAA",
        side=OrderSide.BUY,
        quantity=10.0,
        price=101.25,
    )
    text = CODEC.encode_json(fill).decode()
    assert '"type":"OrderFilled"' in text and '"side":"buy"' in text


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xc1", b"\x93\x01\x02\x03", msgspec.msgpack.encode({"type": "Nope", "ts_event": 1})],
    ids=["empty", "reserved-byte", "array", "unknown-tag"],
)
def test_undecodable_bytes_raise_codec_error(payload: bytes) -> None:
    with pytest.raises(CodecError, match="undecodable msgpack event"):
        CODEC.decode(payload)


def test_wrong_field_type_names_the_field() -> None:
    payload = msgspec.msgpack.encode(
        {
            "type": "OrderAccepted",
            "ts_event": "soon",
            "order_id": "o",
            "strategy_id": "s",
            "symbol": "A",
        }
    )
    with pytest.raises(CodecError, match=r"ts_event"):
        CODEC.decode(payload)


def test_unknown_extension_code_is_refused() -> None:
    payload = msgspec.msgpack.encode(
        {"type": "MarketBatch", "ts_event": 1, "frame": msgspec.msgpack.Ext(9, b"x")}
    )
    with pytest.raises(CodecError):
        CODEC.decode(payload)


def test_corrupt_arrow_payload_is_refused() -> None:
    payload = msgspec.msgpack.encode(
        {"type": "MarketBatch", "ts_event": 1, "frame": msgspec.msgpack.Ext(1, b"not arrow")}
    )
    with pytest.raises(CodecError):
        CODEC.decode(payload)


def ohlcv_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": pl.Series(["A", "B"], dtype=pl.Enum(["A", "B"])),
            **{name: [1.0, 2.0] for name in ("open", "high", "low", "close", "volume")},
        }
    )


def flipped_ipc(bit: int) -> bytes:
    """The Arrow IPC bytes of :func:`ohlcv_frame` with one bit flipped."""
    sink = io.BytesIO()
    ohlcv_frame().write_ipc_stream(sink, compression="uncompressed")
    data = bytearray(sink.getvalue())
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


# with polars 1.x, bit 487 of this stream makes the IPC reader panic (a BaseException) and
# bit 3946 makes it raise OSError; the codec must answer both with a CodecError
@pytest.mark.parametrize("bit", [487, 3946], ids=["rust-panic", "oserror"])
def test_bit_flipped_arrow_ipc_raises_codec_error(bit: int) -> None:
    payload = msgspec.msgpack.encode(
        {"type": "MarketBatch", "ts_event": 1, "frame": msgspec.msgpack.Ext(1, flipped_ipc(bit))}
    )
    with pytest.raises(CodecError, match="Arrow IPC bytes are corrupt"):
        CODEC.decode(payload)


def test_every_single_bit_flip_of_a_market_batch_raises_only_codec_error() -> None:
    data = CODEC.encode(MarketBatch(ts_event=1, frame=ohlcv_frame(), context={"vix": 1.0}))
    outcomes = {"decoded": 0, "refused": 0}
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            CODEC.decode(bytes(flipped))
        except CodecError:
            outcomes["refused"] += 1
        else:
            outcomes["decoded"] += 1
    assert sum(outcomes.values()) == len(data) * 8 and outcomes["refused"] > 0


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_non_finite_order_quantity_is_a_codec_error(value: float) -> None:
    order = SubmitOrder(
        ts_event=1, order_id="o", strategy_id="s", symbol="A", side=OrderSide.BUY, quantity=value
    )
    with pytest.raises(CodecError, match=rf"invalid SubmitOrder .*quantity is {value}"):
        CODEC.decode(CODEC.encode(order))


def test_a_nan_fill_price_is_a_codec_error() -> None:
    bad = OrderFilled(
        ts_event=1,
        fill_id="f",
        order_id="o",
        strategy_id="s",
        symbol="A",
        side=OrderSide.SELL,
        quantity=1.0,
        price=math.nan,
    )
    with pytest.raises(CodecError, match="price is nan"):
        CODEC.decode(CODEC.encode(bad))


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (ohlcv_frame().drop("symbol"), "no 'symbol' column"),
        (ohlcv_frame().drop("volume"), "no 'volume' column"),
        (ohlcv_frame().with_columns(symbol=pl.lit(7)), "'symbol' column is Int32"),
        (ohlcv_frame().with_columns(open=pl.lit("x")), "'open' column is String"),
        (ohlcv_frame().with_columns(timestamp=pl.lit(3)), "'timestamp' column is Int32"),
    ],
    ids=["no-symbol", "no-volume", "int-symbol", "text-open", "int-timestamp"],
)
def test_a_market_batch_frame_without_symbol_and_ohlcv_is_a_codec_error(
    frame: pl.DataFrame, problem: str
) -> None:
    data = CODEC.encode(MarketBatch(ts_event=1, frame=frame))
    with pytest.raises(CodecError, match=f"invalid MarketBatch .*{problem}"):
        CODEC.decode(data)
    with pytest.raises(CodecError, match=problem):
        CODEC.decode_json(CODEC.encode_json(MarketBatch(ts_event=1, frame=frame)))


def test_a_json_frame_that_is_not_base64_is_a_codec_error() -> None:
    text = b'{"type":"MarketBatch","ts_event":1,"frame":{"arrow_ipc":"not base64!"}}'
    with pytest.raises(CodecError, match="not base64"):
        CODEC.decode_json(text)
