"""A corrupt journal is one JournalError naming the file and byte offset; a killed run's
partial journal is kept and ``ml4t journal recover`` makes it readable."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import msgspec
import pytest

from ml4t.backtest import OrderFilled, OrderSide
from ml4t.backtest.cli import main as cli
from ml4t.backtest.journal import (
    JOURNAL_FILE,
    JournalError,
    JournalReader,
    JournalWriter,
    partial_path,
    recover,
    replay,
    summary,
)
from tests.journal.test_journal import Broker, Flipper, record
from tests.record._world import random_world

HEADER_AT = 16  # 8 bytes of magic, u32 size, u32 CRC
FRAME = struct.Struct("<IHqI")


def fill(i: int) -> OrderFilled:
    return OrderFilled(
        ts_event=i,
        fill_id=f"f{i}",
        order_id=f"o{i}",
        strategy_id="s",
        symbol="AAA",
        side=OrderSide.BUY,
        quantity=1.0 + i,
        price=100.0,
    )


def three_fills(path: Path) -> list[int]:
    """A journal of three fills at clocks 10, 20, 30; returns each frame's offset."""
    writer = JournalWriter(path, ["fills"])
    offsets = []
    for i in range(3):
        offsets.append(len(writer._buffer) + os.path.getsize(writer.partial))
        writer.write(0, 10 * (i + 1), fill(i))
    writer.close()
    return offsets


def with_header(path: Path, payload: bytes) -> None:
    data = path.read_bytes()
    (size,) = struct.unpack_from("<I", data, 8)
    head = b"ML4TJNL2" + struct.pack("<II", len(payload), zlib.crc32(payload))
    path.write_bytes(head + payload + data[HEADER_AT + size :])


def test_a_header_that_is_not_msgpack_is_a_journal_error_at_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    three_fills(path)
    with_header(path, b"\xc1\xc1")
    with pytest.raises(
        JournalError, match=rf"j.ml4tj: corrupt journal at byte {HEADER_AT}: .*not msgpack"
    ):
        summary(path)


def test_a_header_that_is_a_list_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    three_fills(path)
    with_header(path, msgspec.msgpack.encode([2, ["fills"]]))
    with pytest.raises(JournalError, match=rf"at byte {HEADER_AT}: the header is a list"):
        JournalReader(path)


def test_a_flipped_bit_in_an_event_is_a_journal_error_at_its_frame(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    offsets = three_fills(path)
    data = bytearray(path.read_bytes())
    data[offsets[1] + FRAME.size + 5] ^= 0x04  # inside the second fill's payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=rf"at byte {offsets[1]}: frame #1's CRC"):
        list(JournalReader(path))


def test_garbage_after_the_trailer_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    three_fills(path)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(JournalError, match=rf"at byte {size}: 4 bytes after the journal's trailer"):
        summary(path)


def test_a_trailer_that_is_garbage_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    three_fills(path)
    data = path.read_bytes()
    trailer = msgspec.msgpack.encode({"events": 3, "complete": True, "reason": None})
    trailer_at = len(data) - len(trailer) - FRAME.size
    junk = b"\xc1" * (len(data) - trailer_at - FRAME.size)
    head = struct.pack("<IHq", len(junk), 0xFFFF, 30)
    path.write_bytes(
        data[:trailer_at] + head + struct.pack("<I", zlib.crc32(junk, zlib.crc32(head))) + junk
    )
    with pytest.raises(JournalError, match=rf"at byte {trailer_at}: the trailer is not msgpack"):
        summary(path)


def frame(index: int, clock: int, payload: bytes) -> bytes:
    head = struct.pack("<IHq", len(payload), index, clock)
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def test_an_event_the_codec_refuses_is_a_journal_error_naming_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    writer = JournalWriter(path, ["fills"])
    writer.flush()
    at = path.with_name(writer.partial.name).stat().st_size
    nan_fill = msgspec.msgpack.encode(msgspec.structs.replace(fill(0), quantity=float("nan")))
    writer._buffer += frame(0, 10, nan_fill)
    writer.events = 1
    writer.close()
    with pytest.raises(JournalError, match=rf"at byte {at}: frame #0 \(fills\): .*quantity is nan"):
        show_all(path)


def show_all(path: Path) -> None:
    list(JournalReader(path))


def test_replay_of_a_clock_that_goes_back_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.ml4tj"
    writer = JournalWriter(path, ["fills"])
    writer.write(0, 20, fill(0))
    second = os.path.getsize(writer.partial) + len(writer._buffer)
    writer.write(0, 10, fill(1))
    writer.close()
    with pytest.raises(
        JournalError, match=rf"at byte {second}: frame #1's clock 10 is before .* 20"
    ):
        replay(path)


def test_a_killed_writer_leaves_a_partial_journal_that_recover_makes_readable(
    tmp_path: Path,
) -> None:
    script = f"""
import os, signal
from pathlib import Path
from ml4t.backtest import OrderFilled, OrderSide
from ml4t.backtest.journal import JournalWriter
writer = JournalWriter(Path({str(tmp_path)!r}) / "journal.ml4tj", ["fills"], chunk_bytes=1)
for i in range(5):
    writer.write(0, 10 * (i + 1), OrderFilled(ts_event=i, fill_id=f"f{{i}}", order_id="o",
        strategy_id="s", symbol="AAA", side=OrderSide.BUY, quantity=1.0, price=100.0))
writer._file.write(b"\\x99\\x00\\x00")  # the first bytes of a sixth frame
writer._file.flush()
print(writer.partial.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == -signal.SIGKILL
    partial = tmp_path / run.stdout.strip()
    assert partial.name.startswith("journal.ml4tj.") and partial.name.endswith(".partial")
    assert not (tmp_path / JOURNAL_FILE).exists()

    assert cli(["journal", "recover", str(partial)]) == 0
    assert partial.exists()  # the only copy is never removed
    info = summary(tmp_path / JOURNAL_FILE)
    assert info["events"] == 5 and not info["complete"] and not info["truncated"]
    reader = JournalReader(tmp_path / JOURNAL_FILE)
    assert [e.clock_ns for e in reader] == [10, 20, 30, 40, 50]
    assert reader.trailer is not None and "3 bytes after byte" in reader.trailer["reason"]
    with pytest.raises(JournalError, match="already exists"):
        recover(partial)


def test_replay_of_a_recovered_journal_gives_the_results_up_to_the_last_event(
    tmp_path: Path,
) -> None:
    tape = random_world(days=30, symbols=2, seed=3)
    record(tape, tmp_path / "run", extra=(Broker(), Flipper()))
    full = tmp_path / "run" / JOURNAL_FILE
    reader = JournalReader(full)
    entries = list(reader)
    fills = [e for e in entries if e.topic == "fills"]
    cut_clock = fills[9].clock_ns  # keep everything published up to the 10th fill's bar
    data = full.read_bytes()
    # walk the frames to the end of the last one at or before cut_clock, then cut mid-frame
    offset, end = reader._offset, reader._offset
    while True:
        size, index, clock, _ = FRAME.unpack_from(data, offset)
        if index == 0xFFFF or clock > cut_clock:
            break
        offset += FRAME.size + size
        end = offset
    partial = tmp_path / "run" / "journal.ml4tj.4711.partial"
    partial.write_bytes(data[: end + 7])
    done = recover(partial, tmp_path / "recovered.ml4tj")
    assert done.dropped_bytes == 7
    results = replay(tmp_path / "recovered.ml4tj", tmp_path / "replayed")
    assert results.complete is False
    assert "recovered from journal.ml4tj.4711.partial" in results.manifest["incomplete_reason"]
    assert results.fills["fill_id"].to_list() == [f.event.fill_id for f in fills[:10]]  # type: ignore[attr-defined]


def test_partial_path_names_the_writer_pid(tmp_path: Path) -> None:
    assert partial_path(tmp_path / JOURNAL_FILE).name == f"journal.ml4tj.{os.getpid()}.partial"
