"""Configuration of a NATS bridge (one per side of a cross-process graph)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ml4t.backtest import ConfigError

__all__ = ["DRIVER_EXPORTS", "FOLLOWER_EXPORTS", "MIN_SECRET_BYTES", "NatsConfig"]

Seconds = Annotated[float, Meta(gt=0)]
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")]
DRIVER_EXPORTS = ("fills", "orders.events", "positions", "portfolio", "market")
FOLLOWER_EXPORTS = ("orders.requested",)
MIN_SECRET_BYTES = 16


class NatsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a bridge connects and what it carries.

    - ``role``: ``driver`` (the side with the clock and the feed: it sends market data,
      fills, order events and portfolio state, and takes order requests) or ``follower``
      (the side with the strategies: the reverse). ``exports``/``imports`` override the
      topic names each side sends and takes.
    - ``mode``: ``lockstep`` (deterministic: the driver's clock does not advance until the
      follower has acknowledged every round; lost messages are retransmitted) or
      ``stream`` (live: no acknowledgements, at-most-once, gaps are counted).
    - ``prefix``: the subject prefix of this session (``<prefix>.<topic name>``); two
      sessions on one server need two prefixes.
    - Authentication: ``token`` or ``token_file`` (a file holding the token), ``user`` and
      ``password``, or ``credentials`` (a NATS ``.creds`` file: JWT and NKey seed). With
      subject permissions on the server (see :meth:`publish_subjects`) they say who may
      publish on the bridge.
    - Message authentication: ``run_id`` (default: the prefix) travels in every message,
      and a message of another run is dropped. ``secret_env`` (the name of an environment
      variable) or ``secret_file`` (a file) holds the run's secret, shared out of band by
      both sides (at least 16 bytes, e.g. ``openssl rand -hex 32``): every message is then
      signed (HMAC-SHA256) and one that fails the check is dropped, counted and logged.
      The config holds where the secret is, never the secret.
    - Liveness: ``peer_timeout`` bounds how long the driver waits for an acknowledgement
      and how long a lockstep follower goes without hearing from the driver (the driver
      sends a heartbeat every ``heartbeat`` seconds while it waits or idles) before it
      stops, failing its run as incomplete; ``start_timeout`` bounds the wait for the peer
      at start.
    - Buffers: ``pending_msgs``/``pending_bytes`` bound what the client holds for the graph
      (inbound: when full the newest messages are dropped and counted as slow-consumer
      drops, and in lockstep mode the sender retransmits them); ``outbound_bytes`` bounds
      what is buffered while the server is unreachable (outbound: when full, publishing
      blocks, retrying, for at most ``peer_timeout`` before the bridge fails). The inbound
      bound must hold a whole round (a few messages plus the orders of one timestamp): a
      buffer smaller than a round would drop part of every retransmission too.
    """

    role: Literal["driver", "follower"]
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    prefix: Name = "ml4t"
    mode: Literal["lockstep", "stream"] = "lockstep"
    exports: tuple[str, ...] | None = None
    imports: tuple[str, ...] | None = None
    name: str = "ml4t-nats"
    token: str | None = None
    token_file: str | None = None
    user: str | None = None
    password: str | None = None
    credentials: str | None = None
    run_id: Name | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    ack_timeout: Seconds = 0.25
    peer_timeout: Seconds = 30.0
    heartbeat: Seconds = 1.0
    start_timeout: Seconds = 30.0
    reconnect_wait: Seconds = 0.1
    connect_attempts: Annotated[int, Meta(ge=1)] = 8
    pending_msgs: Annotated[int, Meta(ge=64)] = 65_536  # must hold one round (~10 messages)
    pending_bytes: Annotated[int, Meta(ge=1024)] = 64 * 1024 * 1024
    outbound_bytes: Annotated[int, Meta(ge=1024)] = 8 * 1024 * 1024
    unacked_limit: Annotated[int, Meta(ge=1)] = 100_000

    def __post_init__(self) -> None:
        secrets = [k for k in ("token", "token_file", "credentials") if getattr(self, k)]
        if len(secrets) > 1 or (secrets and self.user):
            raise ConfigError(
                f"give one way to authenticate, not {secrets + (['user'] if self.user else [])}"
            )
        if (self.user is None) != (self.password is None):
            raise ConfigError("user and password go together")
        if self.secret_env is not None and self.secret_file is not None:
            raise ConfigError("give the run's secret one way: secret_env or secret_file")
        for key in ("token_file", "credentials", "secret_file"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{key}: {path!r} is not a file")
        if self.heartbeat >= self.peer_timeout:
            raise ConfigError(
                f"heartbeat ({self.heartbeat:g} s) must be shorter than peer_timeout "
                f"({self.peer_timeout:g} s), or a live driver would look gone"
            )

    @property
    def run(self) -> str:
        """The run id every message carries (``run_id``, else the prefix)."""
        return self.run_id or self.prefix

    def secret(self) -> bytes | None:
        """The run's HMAC key, read from ``secret_env`` or ``secret_file`` (None: unsigned).

        The error for a missing or short secret names where it was looked for, never it.
        """
        if self.secret_env is not None:
            value = os.environ.get(self.secret_env)
            where = f"secret_env: the environment variable {self.secret_env}"
            if value is None:
                raise ConfigError(f"{where} is not set; export the run's secret in it")
            key = value.strip().encode()
        elif self.secret_file is not None:
            where = f"secret_file: {self.secret_file!r}"
            key = Path(self.secret_file).read_bytes().strip()
        else:
            return None
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"{where} holds a {len(key)}-byte secret; give at least {MIN_SECRET_BYTES} "
                "bytes (e.g. the output of `openssl rand -hex 32`)"
            )
        return key

    def publish_subjects(self) -> tuple[str, ...]:
        """The subjects this side publishes on: grant exactly these to its NATS user
        (publish permissions) and ``<prefix>.>`` to subscribe, so no one else can speak
        for it on the bridge."""
        default = DRIVER_EXPORTS if self.role == "driver" else FOLLOWER_EXPORTS
        topics = self.exports or default
        own = (f"_ctl.{self.role}", f"_hello.{self.role}")
        return tuple(f"{self.prefix}.{name}" for name in (*topics, *own))

    def auth(self) -> dict[str, str]:
        """The keyword arguments nats-py's ``connect`` takes for this authentication."""
        if self.token is not None:
            return {"token": self.token}
        if self.token_file is not None:
            return {"token": Path(self.token_file).read_text().strip()}
        if self.user is not None and self.password is not None:
            return {"user": self.user, "password": self.password}
        if self.credentials is not None:
            return {"user_credentials": self.credentials}
        return {}
