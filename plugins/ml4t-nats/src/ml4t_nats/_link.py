"""The reliable-link state of one side of a bridge, as plain objects (no I/O).

Every message a side sends carries its sequence number (``ml4t-seq``, from 1) and the
highest sequence it has received in order from the peer (``ml4t-ack``). The receiver
takes messages strictly in order: a number already seen is a duplicate (dropped), one
past the next expected is a gap (dropped: in lockstep mode the sender retransmits
everything unacknowledged). The sender keeps what the peer has not acknowledged in an
:class:`Outbox`, pruned by the peer's ``ml4t-ack``. Orders get a second guard: the
receiving side drops a ``SubmitOrder`` whose id it has already passed on.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

__all__ = ["Inbound", "OrderIds", "Outbox", "Verdict"]

Verdict = Literal["new", "duplicate", "gap"]


class Inbound:
    """In-order acceptance of the peer's sequence numbers."""

    __slots__ = ("last", "lost", "tolerate_gaps")

    def __init__(self, *, tolerate_gaps: bool = False) -> None:
        self.last = 0
        self.lost = 0  # messages skipped over (stream mode only)
        self.tolerate_gaps = tolerate_gaps

    def accept(self, seq: int) -> Verdict:
        if seq <= self.last:
            return "duplicate"
        if seq != self.last + 1:
            if not self.tolerate_gaps:
                return "gap"
            self.lost += seq - self.last - 1
        self.last = seq
        return "new"


class Outbox:
    """Sent messages the peer has not acknowledged yet (bounded by ``limit``)."""

    __slots__ = ("_items", "limit", "seq")

    def __init__(self, limit: int = 100_000) -> None:
        self.seq = 0
        self.limit = limit
        self._items: deque[tuple[int, str, bytes, int]] = deque()

    def add(self, subject: str, payload: bytes, clock_ns: int, *, keep: bool = True) -> int:
        """The next sequence number, remembering the message for retransmission."""
        self.seq += 1
        if keep:
            if len(self._items) >= self.limit:
                raise OverflowError(
                    f"{len(self._items)} messages are unacknowledged by the peer (limit "
                    f"{self.limit}); it is not keeping up or not there"
                )
            self._items.append((self.seq, subject, payload, clock_ns))
        return self.seq

    def ack(self, upto: int) -> None:
        items = self._items
        while items and items[0][0] <= upto:
            items.popleft()

    def unacked(self) -> list[tuple[int, str, bytes, int]]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


class OrderIds:
    """Order ids already passed on; a repeat is a duplicate order."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def first_time(self, order_id: str) -> bool:
        if order_id in self._seen:
            return False
        self._seen.add(order_id)
        return True
