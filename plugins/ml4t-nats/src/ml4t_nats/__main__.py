"""``ml4t-nats driver|follower CONFIG``: run one half of a config's graph over NATS."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ml4t.backtest import ComponentError, configure_logging
from ml4t_nats.config import NatsConfig
from ml4t_nats.runner import driver_engine, follower_runtime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ml4t-nats", description=__doc__)
    parser.add_argument("role", choices=["driver", "follower"])
    parser.add_argument("config", help="the run's YAML file (the follower uses its strategy)")
    parser.add_argument("--server", action="append", help="NATS URL (repeatable)")
    parser.add_argument("--prefix", default="ml4t", help="subject prefix of this session")
    parser.add_argument("--mode", choices=["lockstep", "stream"], default="lockstep")
    parser.add_argument("--token-file", help="a file holding the NATS token")
    parser.add_argument("--credentials", help="a NATS .creds file")
    parser.add_argument("--run-id", help="the run both sides belong to (default: the prefix)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--secret-env", help="the environment variable holding the run's secret")
    secret.add_argument("--secret-file", help="a file holding the run's secret")
    parser.add_argument("--peer-timeout", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    nats = NatsConfig(
        role=args.role,
        servers=tuple(args.server or ["nats://127.0.0.1:4222"]),
        prefix=args.prefix,
        mode=args.mode,
        token_file=args.token_file,
        credentials=args.credentials,
        run_id=args.run_id,
        secret_env=args.secret_env,
        secret_file=args.secret_file,
        peer_timeout=args.peer_timeout,
        heartbeat=args.heartbeat,
    )
    if args.role == "driver":
        engine, bridge = driver_engine(args.config, nats, overrides=args.set)
        results = engine.run()
        print(f"driver: {results!r} bridge={bridge.stats.as_dict()}", flush=True)
        return 0 if results.complete else 1
    runtime, bridge = follower_runtime(args.config, nats, overrides=args.set)
    try:
        runtime.run_sync()
    except ComponentError as exc:  # e.g. the driver vanished: every on_stop has run
        print(f"follower: incomplete: {exc} bridge={bridge.stats.as_dict()}", flush=True)
        return 1
    print(f"follower: {runtime.outcome.value} bridge={bridge.stats.as_dict()}", flush=True)
    return 0 if bridge.finished or args.mode == "stream" else 1


if __name__ == "__main__":
    sys.exit(main())
