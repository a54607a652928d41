"""`make bench`: every benchmark, each measurement in a fresh child process, figures
written to docs/performance.md and benchmarks/results.json, the targets table last. Data
sets are generated once and cached under benchmarks/.cache/ (git-ignored).

    python -m benchmarks [--big]     # --big: the 3,000-symbol year too (benchmarks.scale)
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from ._harness import ROOT

STEPS = [
    ["benchmarks.bus"],
    ["benchmarks.feed", "--write-docs"],
    ["benchmarks.feed_memory", "--write-docs"],
    ["benchmarks.execution"],
    ["benchmarks.engine"],
    ["benchmarks.vectorbt_signals", "--repeat", "3"],
    ["benchmarks.scale"],
    ["benchmarks.hotspots"],
    ["benchmarks.sweep"],
    ["benchmarks.sweep", "--shared"],
    ["benchmarks.targets"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", action="store_true", help="add the 3,000-symbol scale rows")
    big = parser.parse_args().big
    for module, *args in STEPS:
        if module == "benchmarks.scale" and big:
            args = [*args, "--big"]
        print(f"== {module} {' '.join(args)}", flush=True)
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, check=False)
        if done.returncode != 0:
            print(f"benchmark {module} failed with exit code {done.returncode}", file=sys.stderr)
            return done.returncode
    print("figures written to docs/performance.md and benchmarks/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
