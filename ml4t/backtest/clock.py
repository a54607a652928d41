"""Clocks and timers.

A clock tells the time and keeps *alarms*: callbacks due at a time, ordered by (time,
priority, sequence number). Everything that happens at a time is an alarm: a feed's next
batch, a strategy's timer, a session close. The runtime fires them:

- :class:`SimulatedClock` (backtest): time jumps straight to the next alarm, and only
  once the graph is quiescent, so a run is as fast as the CPU allows and deterministic.
- :class:`WallClock` (paper replay, live): the runtime sleeps until an alarm is due.
  ``speed`` replays at N x real time from a chosen ``origin``, so a paper session runs
  parquet from 2023 on today's wall clock.

Timers (:class:`Timer`) are repeating or one-shot alarms and behave the same on both.
"""

from __future__ import annotations

import abc
import heapq
import time
from collections.abc import Callable
from itertools import count

from ml4t.backtest._time import NS_PER_SECOND, from_ns
from ml4t.backtest.errors import ClockError

__all__ = [
    "Alarm",
    "AlarmPriority",
    "Clock",
    "SimulatedClock",
    "Timer",
    "WallClock",
    "interval_rule",
]


class AlarmPriority:
    """Order of alarms due at the same time: data before timers, so a timer at t sees bar t."""

    DATA = 0
    TIMER = 10
    SESSION = 20


class Alarm:
    """A callback due at ``ts_ns``. ``cancel()`` makes it a no-op."""

    __slots__ = ("callback", "cancelled", "owner", "priority", "ts_ns")

    def __init__(
        self, ts_ns: int, priority: int, callback: Callable[[], None], owner: str = ""
    ) -> None:
        self.ts_ns = ts_ns
        self.priority = priority
        self.callback = callback
        self.owner = owner
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"Alarm({from_ns(self.ts_ns).isoformat()}, priority={self.priority}{state})"


class Clock(abc.ABC):
    """Time and alarms; subclasses say what "now" is."""

    is_simulated: bool = False

    def __init__(self) -> None:
        self._alarms: list[tuple[int, int, int, Alarm]] = []
        self._seq = count()
        self.on_schedule: Callable[[], None] | None = None

    @abc.abstractmethod
    def now_ns(self) -> int:
        """The current time in UTC nanoseconds."""

    def schedule(
        self,
        ts_ns: int,
        callback: Callable[[], None],
        *,
        priority: int = AlarmPriority.TIMER,
        owner: str | None = None,
    ) -> Alarm:
        """Call ``callback`` when the clock reaches ``ts_ns``.

        On a simulated clock an alarm in the past is an error (it would rewrite history);
        on a wall clock it fires as soon as possible. ``owner`` names who set it in the
        error if the callback raises (default: the name of the bound method's object).
        """
        if self.is_simulated and ts_ns < self.now_ns():
            raise ClockError(
                f"cannot schedule an alarm at {from_ns(ts_ns).isoformat()}, before the "
                f"simulated time {from_ns(self.now_ns()).isoformat()}"
            )
        if owner is None:
            owner = getattr(getattr(callback, "__self__", None), "name", "")
        alarm = Alarm(ts_ns, priority, callback, owner if isinstance(owner, str) else "")
        heapq.heappush(self._alarms, (ts_ns, priority, next(self._seq), alarm))
        if self.on_schedule is not None:
            self.on_schedule()
        return alarm

    def next_alarm_ns(self) -> int | None:
        """Time of the earliest live alarm, or None if there is none."""
        alarms = self._alarms
        while alarms and alarms[0][3].cancelled:
            heapq.heappop(alarms)
        return alarms[0][0] if alarms else None

    def pop_alarm(self) -> Alarm | None:
        """Remove and return the earliest live alarm."""
        alarms = self._alarms
        while alarms:
            alarm = heapq.heappop(alarms)[3]
            if not alarm.cancelled:
                return alarm
        return None

    def set_timer(
        self,
        callback: Callable[[int], None],
        *,
        interval_ns: int | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        next_time: Callable[[int], int | None] | None = None,
    ) -> Timer:
        """A timer calling ``callback(scheduled_ns)``.

        Give ``interval_ns`` (first fire at ``start_ns``, default now + interval), or
        ``start_ns`` alone for a one-shot, or ``next_time(after_ns)`` for a calendar rule
        (session opens and closes). Fires are on the schedule, not "now + interval", so a
        repeating timer never drifts.
        """
        if next_time is None:
            if interval_ns is None and start_ns is None:
                raise ClockError("a timer needs interval_ns, start_ns or next_time")
            first = start_ns if start_ns is not None else self.now_ns() + (interval_ns or 0)
            next_time = interval_rule(first, interval_ns)
        timer = Timer(self, callback, next_time, stop_ns)
        timer._arm(self.now_ns() - 1)
        return timer


def interval_rule(first_ns: int, interval_ns: int | None) -> Callable[[int], int | None]:
    """The ``next_time`` rule of a timer firing at ``first_ns`` and every ``interval_ns``
    after it (None: once)."""
    if interval_ns is not None and interval_ns <= 0:
        raise ClockError(f"timer interval must be positive, got {interval_ns} ns")

    def rule(after_ns: int) -> int | None:
        if after_ns < first_ns:
            return first_ns
        if interval_ns is None:
            return None
        steps = (after_ns - first_ns) // interval_ns + 1
        return first_ns + steps * interval_ns

    return rule


class Timer:
    """A repeating alarm; ``cancel()`` stops it."""

    __slots__ = ("_alarm", "_callback", "_clock", "_next_time", "_stop_ns", "active")

    def __init__(
        self,
        clock: Clock,
        callback: Callable[[int], None],
        next_time: Callable[[int], int | None],
        stop_ns: int | None,
    ) -> None:
        self._clock = clock
        self._callback = callback
        self._next_time = next_time
        self._stop_ns = stop_ns
        self._alarm: Alarm | None = None
        self.active = True

    @property
    def next_fire_ns(self) -> int | None:
        return self._alarm.ts_ns if self._alarm is not None and self.active else None

    def cancel(self) -> None:
        self.active = False
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None

    def _arm(self, after_ns: int) -> None:
        when = self._next_time(after_ns)
        if when is None or (self._stop_ns is not None and when > self._stop_ns):
            self.active = False
            self._alarm = None
            return
        self._alarm = self._clock.schedule(
            when, lambda: self._fire(when), priority=AlarmPriority.TIMER
        )

    def _fire(self, scheduled_ns: int) -> None:
        if not self.active:
            return
        self._arm(scheduled_ns)
        self._callback(scheduled_ns)


class SimulatedClock(Clock):
    """Time is whatever the runtime last set it to: the time of the alarm being fired."""

    is_simulated = True

    def __init__(self, start_ns: int = 0) -> None:
        super().__init__()
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        """Move time forward (never back)."""
        if ts_ns < self._now:
            raise ClockError(
                f"simulated time cannot go back from {from_ns(self._now).isoformat()} "
                f"to {from_ns(ts_ns).isoformat()}"
            )
        self._now = ts_ns


class WallClock(Clock):
    """Real time, or a replay of ``origin_ns`` onwards at ``speed`` x real time."""

    def __init__(self, *, speed: float = 1.0, origin_ns: int | None = None) -> None:
        super().__init__()
        if not speed > 0:
            raise ClockError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._wall0 = time.monotonic_ns()
        self._origin = origin_ns if origin_ns is not None else time.time_ns()

    def now_ns(self) -> int:
        elapsed = time.monotonic_ns() - self._wall0
        return self._origin + (elapsed if self.speed == 1.0 else int(elapsed * self.speed))

    def seconds_until(self, ts_ns: int) -> float:
        """Real seconds to wait until the clock reads ``ts_ns`` (0 if already past)."""
        return max(0.0, (ts_ns - self.now_ns()) / self.speed / NS_PER_SECOND)
