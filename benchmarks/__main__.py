"""`make bench`: every benchmark, each measurement in a fresh child process, figures
written to docs/performance.md and benchmarks/results.json. Data sets are generated once
and cached under benchmarks/.cache/ (git-ignored)."""

from __future__ import annotations

import subprocess
import sys

from ._harness import ROOT

STEPS = [
    ["benchmarks.bus"],
    ["benchmarks.feed", "--write-docs"],
    ["benchmarks.feed_memory", "--write-docs"],
    ["benchmarks.execution"],
    ["benchmarks.engine"],
    ["benchmarks.vectorbt_signals"],
    ["benchmarks.sweep"],
]


def main() -> int:
    for module, *args in STEPS:
        print(f"== {module} {' '.join(args)}", flush=True)
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, check=False)
        if done.returncode != 0:
            print(f"benchmark {module} failed with exit code {done.returncode}", file=sys.stderr)
            return done.returncode
    print("figures written to docs/performance.md and benchmarks/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
