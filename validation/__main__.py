"""``python -m validation [--small] [--only 01,02] [--peers vectorbt] [--report PATH]``.

Runs the parity scenarios against vectorbt and backtrader, prints one line per scenario
and peer, writes the report (``docs/validation.md`` at full size by default) and exits
non-zero if any comparison differs or any negative control goes undetected. ``--small``
(or ``ML4T_VALIDATE_SMALL=1``) runs CI sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ml4t.backtest.logging import configure_logging
from validation.report import render
from validation.scenarios import SCENARIOS
from validation.suite import PEERS, Outcome, missing_peers, run_scenario

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__)
    parser.add_argument("--small", action="store_true", help="CI sizes")
    parser.add_argument("--only", help="comma-separated scenario ids, e.g. 01,09,18")
    parser.add_argument("--peers", default=",".join(PEERS), help="vectorbt,backtrader")
    parser.add_argument(
        "--report",
        help="where to write the report (default: "
        "docs/validation.md at full size, none with --small)",
    )
    args = parser.parse_args(argv)
    small = args.small or os.environ.get("ML4T_VALIDATE_SMALL", "") not in ("", "0")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {list(PEERS)}")
    missing = missing_peers(peers)
    if missing:
        print(
            f"validation needs {', '.join(missing)}: pip install -e '.[validate]'",
            file=sys.stderr,
        )
        return 2
    only = set(args.only.split(",")) if args.only else None
    configure_logging("warning")
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for scenario in SCENARIOS:
        if only is not None and scenario.id not in only:
            continue
        for outcome in run_scenario(scenario, small=small, peers=peers):
            outcomes.append(outcome)
            print(_line(outcome), flush=True)
    passed = sum(o.ok for o in outcomes)
    failed = len(outcomes) - passed
    skipped = sum(o.skipped is not None for o in outcomes)
    print(
        f"parity: {passed - skipped} passed, {failed} failed, {skipped} skipped "
        f"in {time.perf_counter() - start:.1f}s"
    )
    report = args.report or (None if small else str(ROOT / "docs" / "validation.md"))
    if report:
        Path(report).write_text(render(outcomes, small=small))
        print(f"report written to {report}")
    return 0 if failed == 0 else 1


def _line(o: Outcome) -> str:
    head = f"{o.scenario.title:<32} {o.peer:<10}"
    if o.skipped is not None:
        return f"{head} skipped: {o.skipped}"
    tables = " ".join(
        f"{c.table}={c.matched}/{max(c.rows_left, c.rows_right)}" for c in o.comparisons
    )
    controls = f"controls={sum(o.controls.values())}/{len(o.controls)}"
    verdict = "match" if o.ok else "DIFFERS"
    return (
        f"{head} {verdict:<7} {tables} {controls} "
        f"ml4t={o.ml4t_seconds:.3f}s peer={o.peer_seconds:.3f}s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
