"""Wall clocks for paper replay and for graphs driven from another process.

Both are :class:`~ml4t.backtest.clock.WallClock`\\ s (the runtime sleeps until an alarm
is due and wakes when something is published), but what they call *now* is the market
time of the events being handled, not a continuous reading:

- :class:`ReplayClock` (paper replay): the wall clock paces *when* each alarm fires
  (``speed`` x real time from ``origin_ns``, or as fast as possible with ``speed=inf``),
  and *now* steps to the time of the alarm being fired. A continuous clock would stamp an
  order submitted while bar t is handled with t plus however long the handling took times
  ``speed``; at 1000x a 70 ms pause is more than a one-minute bar, so the order would
  miss the next open and the replay would trade differently from the backtest. Stepped
  time makes a paper replay at any speed a pure function of the data, like the backtest.
  A ``skip`` rule (:meth:`~ml4t.backtest.live._idle.IdleTime.skip_to`, ``ml4t paper
  --skip-closed``) may jump the wall clock over idle time before a wait: alarms then fire
  sooner on the wall, in the same order and at the same market times.
- :class:`DrivenClock` (a graph whose time comes from elsewhere, e.g. the far side of a
  bus bridge): time is whatever the driver last set with :meth:`DrivenClock.advance_to`;
  alarms fire once the driven time reaches them, never by waiting.
- :class:`LiveClock` (``ml4t live``): real UTC time, read once per wake-up. Every input
  from outside (a bar from the data adapter, a report from the venue, an operator's
  halt) is an alarm, and *now* is the wall time when the runtime fires it, held until
  the next: everything handled in one wake-up carries one time, so the journal groups
  the events of one wake-up under one clock value and a restart can replay them as they
  happened. While a restarted session replays its journal, *now* steps with the
  journal's alarms as fast as they are handled (as :class:`ReplayClock` at ``max``);
  :meth:`LiveClock.go_live` returns it to the wall.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ml4t.backtest._time import NS_PER_SECOND, from_ns
from ml4t.backtest.clock import Alarm, WallClock
from ml4t.backtest.errors import ClockError

__all__ = ["DrivenClock", "LiveClock", "ReplayClock"]


SkipRule = Callable[[int, int], "int | None"]  # (wall_ns, next_ns) -> jump to, or None


class ReplayClock(WallClock):
    """Replays history from ``origin_ns`` at ``speed`` x real time (``math.inf``: as fast
    as possible); *now* is the time of the last alarm fired (never before ``origin_ns``).

    ``skip`` (optional) is asked before each wait for an alarm: given the replay's wall
    time and the alarm's, it returns a later wall time to jump to (idle time skipped), or
    None. ``skipped_ns`` and ``skips`` count the market time jumped over and the jumps.
    """

    def __init__(self, *, speed: float = 1.0, origin_ns: int, skip: SkipRule | None = None) -> None:
        if not speed > 0:
            raise ClockError(f"speed must be positive (or inf for 'max'), got {speed}")
        super().__init__(speed=1.0, origin_ns=origin_ns)
        self.speed = speed
        self.skip = skip
        self.skipped_ns = 0
        self.skips = 0
        self._now = origin_ns
        self._wall0 = time.monotonic_ns()

    def now_ns(self) -> int:
        return self._now

    def wall_ns(self) -> int:
        """Where the replay's wall clock is: origin plus real time elapsed x speed, plus
        the idle time skipped."""
        if math.isinf(self.speed):
            return self._now
        elapsed = int((time.monotonic_ns() - self._wall0) * self.speed)
        return self._origin + self.skipped_ns + elapsed

    def seconds_until(self, ts_ns: int) -> float:
        """Real seconds to wait for ``ts_ns``, after any jump the skip rule allows."""
        if math.isinf(self.speed):
            return 0.0
        wall = self.wall_ns()
        if self.skip is not None and ts_ns > wall:
            target = self.skip(wall, ts_ns)
            if target is not None and target > wall:
                self.skipped_ns += target - wall
                self.skips += 1
                wall = target
        return max(0.0, (ts_ns - wall) / self.speed / NS_PER_SECOND)

    def pop_alarm(self) -> Alarm | None:
        alarm = super().pop_alarm()
        if alarm is not None and alarm.ts_ns > self._now:
            self._now = alarm.ts_ns
        return alarm

    @property
    def lag_seconds(self) -> float:
        """Real seconds the replay is behind its schedule (0 when on time or at max)."""
        if math.isinf(self.speed):
            return 0.0
        return max(0.0, (self.wall_ns() - self._now) / self.speed / NS_PER_SECOND)


class DrivenClock(WallClock):
    """Time set from outside (:meth:`advance_to`); alarms fire once it reaches them."""

    def __init__(self, start_ns: int = 0) -> None:
        super().__init__(speed=1.0, origin_ns=start_ns)
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        """Move time forward (never back) and wake the runtime if an alarm became due."""
        if ts_ns < self._now:
            raise ClockError(
                f"driven time cannot go back from {from_ns(self._now).isoformat()} "
                f"to {from_ns(ts_ns).isoformat()}"
            )
        self._now = ts_ns
        if self.on_schedule is not None:
            self.on_schedule()

    def seconds_until(self, ts_ns: int) -> float:
        return 0.0 if ts_ns <= self._now else math.inf


class LiveClock(WallClock):
    """Real UTC time, read when the runtime fires an alarm and held until the next one;
    strictly increasing. Started with ``replay_from_ns`` (a restart), it first steps
    with its alarms without waiting, from that time, until :meth:`go_live`."""

    def __init__(self, *, replay_from_ns: int | None = None) -> None:
        super().__init__(speed=1.0)
        self.replaying = replay_from_ns is not None
        self._now = replay_from_ns if replay_from_ns is not None else time.time_ns()

    def now_ns(self) -> int:
        return self._now

    def wall_ns(self) -> int:
        """The real time now (what *now* becomes at the next alarm)."""
        return time.time_ns()

    def seconds_until(self, ts_ns: int) -> float:
        if self.replaying:
            return 0.0
        return max(0.0, (ts_ns - time.time_ns()) / NS_PER_SECOND)

    def pop_alarm(self) -> Alarm | None:
        alarm = super().pop_alarm()
        if alarm is not None:
            wall = alarm.ts_ns if self.replaying else time.time_ns()
            self._now = max(self._now + 1, wall)
        return alarm

    def go_live(self) -> None:
        """End the replay: from the next alarm on, *now* is the wall time again."""
        self.replaying = False
