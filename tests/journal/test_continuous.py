"""A continuous journal (a live session's): written in place, every event on disk as it
is written, so a writer killed at any moment leaves it readable; ``append`` continues a
closed or cut journal as one file whose clock never goes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ml4t.backtest import OrderFilled, OrderSide
from ml4t.backtest.journal import JournalError, JournalReader, JournalWriter, summary


def fill(i: int) -> OrderFilled:
    return OrderFilled(
        ts_event=i, fill_id=f"f{i}", order_id=f"o{i}", strategy_id="s", symbol="AAA",
        side=OrderSide.BUY, quantity=1.0 + i, price=100.0,
    )  # fmt: skip


def test_a_continuous_journal_has_every_event_on_disk_before_it_is_closed(tmp_path: Path):
    path = tmp_path / "journal.ml4tj"
    writer = JournalWriter(path, ["fills"], continuous=True)
    assert writer.partial == path  # in place, under its final name
    for i in range(3):
        writer.write(0, 10 * (i + 1), fill(i))
        reader = JournalReader(path)  # another reader, while the writer is open
        assert [e.event.fill_id for e in reader] == [f"f{k}" for k in range(i + 1)]
        assert reader.truncated  # no trailer yet
    writer.close(complete=False, reason="stopped")
    assert summary(path)["events"] == 3 and not summary(path)["truncated"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.ml4tj"]


def test_append_continues_a_closed_journal_dropping_its_trailer(tmp_path: Path):
    path = tmp_path / "journal.ml4tj"
    writer = JournalWriter(path, ["fills"], continuous=True, header={"run_id": "r1"})
    writer.write(0, 10, fill(0))
    writer.close(complete=False, reason="interrupted (Ctrl-C)")
    again, found = JournalWriter.append(path, ["fills"])
    assert found.events == 1 and found.last_clock == 10
    assert found.ended == "closed (incomplete): interrupted (Ctrl-C)"
    again.write(0, 20, fill(1))
    again.close()
    reader = JournalReader(path)
    assert [e.clock_ns for e in reader] == [10, 20]
    assert reader.trailer == {"events": 2, "complete": True, "reason": None}
    assert reader.header["run_id"] == "r1"


def test_append_cuts_a_half_written_frame_off_a_killed_journal(tmp_path: Path):
    path = tmp_path / "journal.ml4tj"
    writer = JournalWriter(path, ["fills"], continuous=True)
    for i in range(2):
        writer.write(0, 10 * (i + 1), fill(i))
    writer.abort()
    whole = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x00\x00partial")  # a frame the writer never finished
    again, found = JournalWriter.append(path, ["fills"])
    assert found.events == 2 and found.ended.startswith("cut short: the writer stopped inside")
    assert path.stat().st_size == whole
    again.write(0, 30, fill(2))
    again.close()
    assert [e.event.fill_id for e in JournalReader(path)] == ["f0", "f1", "f2"]


def test_append_refuses_other_topics_and_a_corrupt_journal(tmp_path: Path):
    path = tmp_path / "journal.ml4tj"
    writer = JournalWriter(path, ["fills"], continuous=True)
    writer.write(0, 10, fill(0))
    writer.write(0, 20, fill(1))
    writer.abort()
    with pytest.raises(JournalError, match="cannot continue a journal of other topics"):
        JournalWriter.append(path, ["fills", "market"])
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # inside the last event's payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="frame #1's CRC does not match"):
        JournalWriter.append(path, ["fills"])


WRITE_FOREVER = textwrap.dedent(
    """
    import sys, time
    from ml4t.backtest import OrderFilled, OrderSide
    from ml4t.backtest.journal import JournalWriter

    writer = JournalWriter(sys.argv[1], ["fills"], continuous=True)
    i = 0
    while True:
        i += 1
        writer.write(0, i, OrderFilled(
            ts_event=i, fill_id=f"f{i}", order_id="o", strategy_id="s", symbol="AAA",
            side=OrderSide.BUY, quantity=1.0, price=100.0,
        ))
        if i == 50:
            print("ready", flush=True)
        time.sleep(0.0005)
    """
)


def test_a_writer_killed_with_sigkill_leaves_a_journal_readable_to_its_last_event(
    tmp_path: Path,
):
    path = tmp_path / "journal.ml4tj"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    with subprocess.Popen(
        [sys.executable, "-c", WRITE_FOREVER, str(path)], stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    reader = JournalReader(path)
    fills = [e.event.fill_id for e in reader]
    assert len(fills) >= 50 and reader.truncated
    assert fills == [f"f{i}" for i in range(1, len(fills) + 1)]  # nothing lost, nothing torn
