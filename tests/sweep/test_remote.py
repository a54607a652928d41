"""A run directory as plain data and back: what a task on another node sends the driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest.errors import ML4TError
from ml4t.backtest.sweep.remote import _writable_run_dir, pack_run_dir, unpack_run_dir


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_a_packed_run_directory_unpacks_to_the_same_files(tmp_path: Path) -> None:
    files = {"manifest.json": b'{"complete": true}', "diagnostic/trades.parquet": b"PAR1\x00"}
    _write(tmp_path / "worker", files)
    packed = pack_run_dir(tmp_path / "worker")
    assert packed == files
    unpack_run_dir(packed, tmp_path / "driver" / "runs" / "abc")
    assert pack_run_dir(tmp_path / "driver" / "runs" / "abc") == files
    assert sorted(p.name for p in (tmp_path / "driver" / "runs").iterdir()) == ["abc"]


def test_unpacking_replaces_what_an_earlier_attempt_left(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "abc"
    _write(run_dir, {"error.txt": b"Traceback ...", "manifest.json": b'{"complete": false}'})
    unpack_run_dir({"manifest.json": b'{"complete": true}'}, run_dir)
    assert pack_run_dir(run_dir) == {"manifest.json": b'{"complete": true}'}


def test_a_run_that_wrote_nothing_leaves_an_empty_directory(tmp_path: Path) -> None:
    assert pack_run_dir(tmp_path / "missing") == {}
    unpack_run_dir({}, tmp_path / "runs" / "abc")
    assert (tmp_path / "runs" / "abc").is_dir()
    assert list((tmp_path / "runs" / "abc").iterdir()) == []


@pytest.mark.parametrize("name", ["../escaped.txt", "/etc/passwd", "a/../../b", ""])
def test_a_path_outside_the_run_directory_is_refused(tmp_path: Path, name: str) -> None:
    run_dir = tmp_path / "runs" / "abc"
    _write(run_dir, {"manifest.json": b"{}"})
    with pytest.raises(ML4TError, match="only relative paths inside the run directory"):
        unpack_run_dir({"ok.txt": b"", name: b"x"}, run_dir)
    assert pack_run_dir(run_dir) == {"manifest.json": b"{}"}, "the old directory is kept"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["abc", "manifest.json", "runs"]


def test_a_node_that_cannot_create_the_drivers_path_runs_in_its_temp_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    local = _writable_run_dir(blocker / "runs" / "abc", "abc")
    try:
        assert local.is_dir() and local.name.startswith("ml4t-run-abc-")
        assert not str(local).startswith(str(tmp_path))
    finally:
        local.rmdir()
    assert _writable_run_dir(tmp_path / "runs" / "abc", "abc") == tmp_path / "runs" / "abc"
