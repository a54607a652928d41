"""Configuration of a NATS bridge (one per side of a cross-process graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = ["NatsConfig"]

Seconds = Annotated[float, Meta(gt=0)]


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
      ``password``, or ``credentials`` (a NATS ``.creds`` file: JWT and NKey seed).
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
    prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")] = "ml4t"
    mode: Literal["lockstep", "stream"] = "lockstep"
    exports: tuple[str, ...] | None = None
    imports: tuple[str, ...] | None = None
    name: str = "ml4t-nats"
    token: str | None = None
    token_file: str | None = None
    user: str | None = None
    password: str | None = None
    credentials: str | None = None
    ack_timeout: Seconds = 0.25
    peer_timeout: Seconds = 30.0
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
            raise ValueError(
                f"give one way to authenticate, not {secrets + (['user'] if self.user else [])}"
            )
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password go together")
        for key in ("token_file", "credentials"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{key}: {path!r} is not a file")

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
