"""A cursor over items sorted by time: what became due before each new timestamp.

The feed asks once per timestamp ``t`` for everything that takes effect before ``t`` and
was not handed out yet. Nothing due costs one comparison; otherwise a bisection from
the current position, so a run of ``T`` timestamps over ``n`` items costs
``O(T + k log n)`` for the ``k`` calls that return something. No polars, no allocation
on the common path (an empty tuple is a singleton).

>>> due = Due([("a", 10), ("b", 10), ("c", 20)], time=lambda item: item[1])
>>> due.due(10), due.due(11), due.due(11), due.due(25)
((), (('a', 10), ('b', 10)), (), (('c', 20),))
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Due"]

T = TypeVar("T")


class Due(Generic[T]):
    """``due(t)``: the items whose ``time`` is ``< t`` not returned before.

    ``items`` must be sorted by ``time``.
    """

    __slots__ = ("_i", "_items", "_n", "_times")

    def __init__(self, items: Sequence[T], *, time: Callable[[T], int]) -> None:
        self._items = tuple(items)
        self._times = [time(item) for item in self._items]
        self._n = len(self._times)
        self._i = 0

    def due(self, t: int) -> tuple[T, ...]:
        i = self._i
        if i == self._n or self._times[i] >= t:
            return ()
        j = bisect_left(self._times, t, lo=i)
        self._i = j
        return self._items[i:j]

    def next_time(self) -> int:
        """The time of the next item not handed out (call only while ``pending``)."""
        return self._times[self._i]

    @property
    def pending(self) -> int:
        """Items not handed out yet."""
        return self._n - self._i
