"""Benchmark plumbing: run each measurement in a fresh child process, collect its JSON,
and write a section of docs/performance.md and benchmarks/results.json.

Benchmarks measure; they never assert a wall-clock limit (the machines are shared).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "benchmarks" / "results.json"


def run_child(module: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m module --child args...``; the child prints one JSON object last."""
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {module} {args} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = result.get("peak_rss_mb") or _child_peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "versions": {
            name: version(dist)
            for name, dist in [
                ("ml4t", "ml4t-backtest"),
                ("polars", "polars"),
                ("msgspec", "msgspec"),
                ("anyio", "anyio"),
                ("numpy", "numpy"),
            ]
        },
    }


def machine_line(info: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return (
        f"Machine: {info['cpus']} cores ({info['cpu']}), {info['memory_gib']} GiB, "
        f"Python {info['python']}; {versions}; measured {info['date']}."
    )


def write_section(name: str, markdown: str, results: dict[str, Any]) -> None:
    """Replace (or append) the section ``name`` of docs/performance.md and results.json."""
    DOC.parent.mkdir(exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Performance\n\nMeasured, never asserted.\n"
    begin, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(DOC)
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[name] = results
    tmp_json = RESULTS.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    tmp_json.replace(RESULTS)
