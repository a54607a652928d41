"""The bridge's own control messages. They are ml4t events (so the one codec carries
them), declared here by the plugin: importing this module adds them to the codec's union.
They never appear on a graph's standard topics."""

from __future__ import annotations

from ml4t.backtest import Event

__all__ = ["BridgeAck", "BridgeBarrier", "BridgeEnd", "BridgeHello"]


class BridgeHello(Event, frozen=True, kw_only=True):
    """Unsequenced handshake: each side announces itself until the other answers."""

    role: str
    session: str


class BridgeBarrier(Event, frozen=True, kw_only=True):
    """Lockstep: the driver has sent everything of ``round`` at ``ts_event``; the follower
    answers with :class:`BridgeAck` once its graph has handled all of it."""

    round: int


class BridgeEnd(Event, frozen=True, kw_only=True):
    """The driver's graph has finished; the follower acknowledges and stops."""

    round: int


class BridgeAck(Event, frozen=True, kw_only=True):
    """The follower's graph is quiescent after ``round`` (everything it sent before this
    message, its orders included, precedes it on the wire)."""

    round: int
