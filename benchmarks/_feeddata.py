"""Shared by the data-feed benchmarks: the cached headline data set, child runs, docs section."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
HEADLINE = CACHE / "headline"
DOC = ROOT / "docs" / "performance.md"
SECTION = "## Data feed"
OPEN = "<!-- section:data-feed -->"
CLOSE = "<!-- /section:data-feed -->"


def headline_dataset() -> tuple[Path, float | None]:
    """The headline data set (250 symbols x 252 NYSE sessions of 1m bars), generated once.

    Returns its root and the seconds its generation took (read back from the cache marker;
    None if unknown).
    """
    from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset

    marker = HEADLINE / "DONE"
    if marker.exists():
        return HEADLINE, json.loads(marker.read_text()).get("seconds")
    t0 = time.perf_counter()
    info = write_dataset(HEADLINE, SyntheticConfig(n_symbols=250, n_days=252, seed=42))
    elapsed = time.perf_counter() - t0
    marker.write_text(json.dumps({"rows": info.rows, "seconds": round(elapsed, 2)}))
    return HEADLINE, elapsed


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(module: str, *args: str) -> dict[str, object]:
    """Run ``python -m module --child args`` in a fresh process; return its JSON line."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    versions = ", ".join(
        f"{p} {version(p)}" for p in ("polars", "numpy", "msgspec", "pandas_market_calendars")
    )
    return (
        f"{os.cpu_count()} cores (nproc), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {versions}"
    )


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def write_section(sub: str, body: str) -> None:
    """Replace (or add) ``### sub`` inside the "Data feed" section of docs/performance.md.

    The section sits between ``<!-- section:data-feed -->`` markers; other sections of the
    file are kept as they are.
    """
    text = DOC.read_text() if DOC.exists() else "# Performance\n\nMeasured, never asserted.\n"
    if OPEN not in text:
        intro = f"{SECTION}\n\nFigures of `ml4t.backtest.data` (see docs/data.md).\n"
        text = text.rstrip("\n") + f"\n\n{OPEN}\n{intro}{CLOSE}\n"
    start = text.index(OPEN) + len(OPEN)
    end = text.index(CLOSE, start)
    section = text[start:end]
    head = f"### {sub}\n"
    block = head + body.rstrip("\n") + "\n"
    if head in section:
        s = section.index(head)
        e = section.find("\n### ", s + len(head))
        section = section[:s] + block + ("\n" + section[e + 1 :] if e != -1 else "")
    else:
        section = section.rstrip("\n") + "\n\n" + block
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text[:start] + section.rstrip("\n") + "\n" + text[end:])
