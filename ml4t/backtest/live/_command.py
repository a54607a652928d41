"""The ``ml4t live`` command: start, resume or halt a live session.

```
ml4t live CONFIG [--dry-run | --paper] [--run-id ID] [--set KEY=VALUE ...] [--view|--no-view]
ml4t live --resume RUN_DIR [CONFIG] [--set ...]     # restart a session from its journal
ml4t live --halt RUN_DIR [--action halt|flatten] [--reason TEXT] [--wait S]
```

Exit status: 0 when the data ended (a scripted feed), 1 when a component failed, 2 for a
config error (one line, before anything runs), 3 when the kill switch or ``--halt``
stopped trading, 130 after Ctrl-C, 143 after SIGTERM. ``--halt`` exits 0 once the
session acknowledged the request and stopped, 1 if it did not within ``--wait``.
Every message this command prints is scrubbed of the session's credentials.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import msgspec

from ml4t.backtest.config import RunConfig, load_config
from ml4t.backtest.engine import BacktestResults
from ml4t.backtest.errors import ComponentError, ConfigError, ML4TError
from ml4t.backtest.live._runner import common_lines
from ml4t.backtest.live.credentials import Credentials
from ml4t.backtest.live.session import (
    CONFIG_FILE,
    HALT_ACCEPTED,
    HALT_FILE,
    SESSION_FILE,
    LiveSession,
    new_run_dir,
)
from ml4t.backtest.record.outputs import atomic_write_json
from ml4t.backtest.runtime import RunOutcome

__all__ = ["EXIT_STOPPED", "add_cli", "request_halt", "summary_lines"]

EXIT_STOPPED = 3
"""``ml4t live``'s exit status when the kill switch or ``--halt`` stopped trading."""


def summary_lines(session: LiveSession, results: BacktestResults) -> list[str]:
    """What ``ml4t live`` prints at the end (as ``ml4t paper`` does, plus the resume, the
    stop and the journal)."""
    state = "complete" if results.complete else "incomplete"
    lines = [
        f"live ({session.mode}) {session.run_id}: {results.outcome.value} ({state}), "
        f"{results.bar_events:,} bar-events in {results.elapsed_time:.2f} s, "
        f"{results.trades.height:,} trades, final equity {results.final_equity:,.2f}"
    ]
    lines += common_lines(session.monitor, results, None)
    replay = session.replay
    if replay is not None and replay.done:
        plan = replay.plan
        lines.append(
            f"  resumed      {plan.events:,} journal events replayed (the earlier part "
            f"{plan.ended}); {len(replay.positions)} position(s) and "
            f"{len(replay.book.open)} open order(s) restored"
            + (f"; diverged: {replay.divergence}" if replay.divergence else "")
        )
    mismatches = session.broker.mismatches
    if mismatches:
        listed = ", ".join(f"{s} {e:g} vs {a:g} at the venue" for s, (e, a) in mismatches.items())
        lines.append(f"  mismatch     {listed}")
    event = session.trading_stopped
    if event is not None and session.halted:
        lines.append(
            f"  stopped      by the {event.source.replace('_', ' ')} ({event.rule}, "
            f"{event.action.value}): {event.reason}; {len(event.cancelled)} order(s) "
            f"cancelled, {len(event.closing)} closing order(s)"
        )
    elif session.interrupted is not None:
        cancelled = len(event.cancelled) if event is not None else 0
        lines.append(f"  stopped      {session.interrupted}: {cancelled} open order(s) cancelled")
    writer = session.journal.writer
    events = writer.events if writer is not None else 0
    lines.append(f"journal: {session.journal_path} ({events:,} events)")
    if results.output_dir is not None:
        lines.append(f"results: {results.output_dir}")
    return lines


# --------------------------------------------------------------------------- halt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _state(run_dir: Path) -> dict[str, Any]:
    try:
        state = msgspec.json.decode((run_dir / SESSION_FILE).read_bytes())
    except (OSError, msgspec.DecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def request_halt(
    run_dir: str | Path, *, action: str | None = None, reason: str = "", wait: float = 30.0
) -> dict[str, Any]:
    """Ask the session running in ``run_dir`` to stop trading (``ml4t live --halt``):
    write its HALT file, then wait up to ``wait`` seconds for it to accept the request
    and stop. Returns the session's final state (``session.json``)."""
    run = Path(run_dir)
    state = _state(run)
    if not state:
        raise ConfigError(
            f"--halt: {run} is not a live session's run directory (no {SESSION_FILE})"
        )
    pid = state.get("pid")
    if state.get("state") != "running" or not isinstance(pid, int) or not _alive(pid):
        raise ConfigError(
            f"--halt: no session is running in {run} (state {state.get('state')!r}, pid {pid})"
        )
    (run / HALT_ACCEPTED).unlink(missing_ok=True)
    atomic_write_json(
        run / HALT_FILE,
        {"action": action, "reason": reason, "requested_at": time.time(), "by_pid": os.getpid()},
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = _state(run)
        if state.get("state") == "stopped" or not _alive(pid):
            return state
        time.sleep(0.1)
    accepted = (run / HALT_ACCEPTED).exists()
    raise ML4TError(
        f"--halt: the session (pid {pid}) {'accepted' if accepted else 'did not accept'} the "
        f"request but had not stopped after {wait:g} s; it stops once the venue confirms "
        "its cancels (look at its output), or stop it with Ctrl-C / kill -TERM"
    )


# --------------------------------------------------------------------------- the command


def add_cli(commands: Any) -> None:
    """Add ``ml4t live`` to the ``ml4t`` command."""
    live = commands.add_parser(
        "live",
        help="run a config against a live data feed and a venue (forward test with --dry-run)",
        description="Run the config's graph on live market data (live.data) against a venue "
        "(live.broker), on the wall clock; resume a session from its journal; or halt one "
        "from another terminal. See docs/live.md.",
    )
    live.add_argument("config", nargs="?", help="the run's YAML file (with a live section)")
    mode = live.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="forward testing: the live data with the simulated venue (no account needed)",
    )
    mode.add_argument("--paper", action="store_true", help="use the venue's paper endpoint")
    live.add_argument("--run-id", help="the session's id (its run directory's name); an "
                      "existing run with a journal is resumed")  # fmt: skip
    live.add_argument("--resume", metavar="RUN_DIR", help="restart the session of RUN_DIR")
    live.add_argument("--halt", metavar="RUN_DIR", help="stop the session running in RUN_DIR")
    live.add_argument(
        "--action",
        choices=("halt", "flatten"),
        help="with --halt: cancel orders only, or also close every position (default: the "
        "session's risk.kill_switch.action, else halt)",
    )
    live.add_argument("--reason", default="", help="with --halt: why (journaled)")
    live.add_argument(
        "--wait", type=float, default=30.0, help="with --halt: seconds to wait for the stop"
    )
    live.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    live.add_argument(
        "--view",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the live view (default: only on a terminal); without it, print a line per fill",
    )
    live.set_defaults(func=_cli_live)


def _mode(args: Any, recorded: str | None) -> str:
    asked = "dry-run" if args.dry_run else "paper" if args.paper else None
    if recorded is not None and asked is not None and asked != recorded:
        raise ConfigError(
            f"this run was started in {recorded} mode; resume it in the same mode"
            f"{'' if recorded == 'live' else f' (--{recorded})'}"
        )
    return asked or recorded or "live"


def _session(args: Any) -> LiveSession:
    overrides = list(args.set or [])
    recorded: str | None = None
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / SESSION_FILE).is_file():
            raise ConfigError(f"--resume: {run_dir} is not a live session's run directory")
        recorded = _state(run_dir).get("mode")
        source = args.config or run_dir / CONFIG_FILE
        config: RunConfig = load_config(source, overrides=overrides)
    else:
        if not args.config:
            raise ConfigError("ml4t live: give a CONFIG (or --resume RUN_DIR, or --halt RUN_DIR)")
        config = load_config(args.config, overrides=overrides)
        run_dir = new_run_dir(config, args.run_id)
        if (run_dir / SESSION_FILE).is_file():
            recorded = _state(run_dir).get("mode")
    return LiveSession(
        config,
        run_dir=run_dir,
        mode=_mode(args, recorded),
        view=args.view,
        echo=sys.stdout,
        handle_signals=True,
    )


def _cli_live(args: Any) -> int:
    if args.halt:
        state = request_halt(args.halt, action=args.action, reason=args.reason, wait=args.wait)
        print(
            f"ml4t: session {state.get('run_id')} stopped ({state.get('outcome')}): "
            f"{state.get('stopped') or 'stopped'}"
        )
        return 0
    session = _session(args)
    credentials = session.credentials
    try:
        if session.plan is not None:
            print(
                f"resuming run {session.run_id} from its journal ({session.plan.events:,} "
                f"events, the last at {session.plan.last_ns}); {session.plan.ended}",
                file=sys.stderr,
            )
        results = session.run_sync()
    except ComponentError as exc:
        print(_clean(credentials, f"ml4t: the session failed: {exc}"), file=sys.stderr)
        if exc.__cause__ is not None:
            text = "".join(traceback.format_exception(exc.__cause__))
            print(_clean(credentials, text), file=sys.stderr, end="")
        return 1
    except ML4TError as exc:
        print(_clean(credentials, f"ml4t: {exc}"), file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    out = "\n".join(summary_lines(session, results)) + "\n"
    sys.stdout.write(_clean(credentials, out))
    sys.stdout.flush()
    if session.halted:
        return EXIT_STOPPED
    if session.interrupted is not None:
        print(
            f"ml4t: {session.interrupted}: partial results were flushed and marked "
            "incomplete; resume with: ml4t live --resume " + str(session.run_dir),
            file=sys.stderr,
        )
        return 143 if session.interrupted.startswith("terminated") else 130
    return 0 if results.outcome is RunOutcome.COMPLETED else 1


def _clean(credentials: Credentials | None, text: str) -> str:
    return credentials.redact(text) if credentials is not None else text
