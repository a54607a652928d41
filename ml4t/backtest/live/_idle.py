"""Idle time in a paper replay: what the session waits for, and the rule that skips it.

Between two alarms (a bar, a timer) a replay at ``speed`` x real time sleeps
``gap / speed`` wall seconds. An equity market's overnight gap (16:00 to 09:31 New York)
is 105 s at x600, with nothing on screen changing. :class:`IdleTime` says what such a
wait is, for the live view (``market closed until 2023-01-04 09:30 EST (next bar in
105 s at x600; --skip-closed skips it)``), and gives the replay clock the time to jump to
when skipping is on.

The rule (``docs/paper.md``):

- A wait is **idle** when the next alarm is more than :data:`IDLE_AFTER_S` (2) wall
  seconds away at the replay's speed; shorter waits are the replay's normal pace.
- Idle time is **closed** when the run's calendar (``backtest.calendar``) says the market
  is closed at the replay's wall time. Without a calendar the data's gaps are the only
  hours known, so every idle wait counts as closed.
- With skipping on (``ml4t paper --skip-closed``), closed idle time is skipped: the
  replay's wall clock jumps to :data:`LEAD_S` (1) wall second before the next alarm or
  the session open, whichever comes first. Idle time while the market is open (sparse
  data, a halt) is waited out.

Skipping moves only *when* alarms fire on the wall, never their order or market time,
so the trades are those of the unskipped replay and of the backtest.
"""

from __future__ import annotations

import math
from datetime import UTC, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ml4t.backtest._time import NS_PER_SECOND, from_ns
from ml4t.backtest.data.calendar import SessionCalendar

__all__ = ["IDLE_AFTER_S", "LEAD_S", "Idle", "IdleTime"]

IDLE_AFTER_S = 2.0  # wall seconds: a longer wait for the next alarm is idle time
LEAD_S = 1.0  # wall seconds: a skip lands this far before the next alarm or open


class Idle(NamedTuple):
    """An idle wait: the alarm waited for, how long, and whether the market is closed."""

    next_ns: int  # the next alarm's market time
    wait_s: float  # wall seconds until it fires
    opens_ns: int | None  # the session open, when the calendar says the market is closed
    closed: bool  # closed idle time (what --skip-closed skips)
    text: str  # the line the view shows


class IdleTime:
    """The idle-time rule of a replay at ``speed`` (see the module docstring)."""

    def __init__(
        self, *, speed: float, calendar: SessionCalendar | None = None, skip: bool = False
    ) -> None:
        self.speed = speed
        self.calendar = calendar
        self.skip = skip
        self.tz: tzinfo = ZoneInfo(calendar.tz) if calendar is not None else UTC

    def reopens(self, t_ns: int) -> int | None:
        """The next session open if the calendar says the market is closed at ``t_ns``;
        None when it is open (or there is no calendar)."""
        if self.calendar is None:
            return None
        opens = self.calendar.next_open(t_ns)
        closes = self.calendar.next_close(t_ns)
        if opens is None or (closes is not None and closes < opens):
            return None  # the next event is this session's close: open now
        return opens

    def status(self, wall_ns: int, next_ns: int | None) -> Idle | None:
        """What the replay waits for at ``wall_ns``, if the wait is idle time."""
        if next_ns is None or math.isinf(self.speed):
            return None
        wait = (next_ns - wall_ns) / self.speed / NS_PER_SECOND
        if wait <= IDLE_AFTER_S:
            return None
        pace = f"x{self.speed:g}"
        hint = "" if self.skip else "; --skip-closed skips it"
        if self.calendar is None:
            text = f"no bars until {self.format(next_ns)} (in {wait:.0f} s at {pace}{hint})"
            return Idle(next_ns, wait, None, True, text)
        opens = self.reopens(wall_ns)
        if opens is None:
            text = f"market open, next bar at {self.format(next_ns)} (in {wait:.0f} s at {pace})"
            return Idle(next_ns, wait, None, False, text)
        text = (
            f"market closed until {self.format(opens)} (next bar in {wait:.0f} s at {pace}{hint})"
        )
        return Idle(next_ns, wait, opens, True, text)

    def skip_to(self, wall_ns: int, next_ns: int) -> int | None:
        """The market time the replay's wall clock jumps to, or None to wait as usual."""
        if not self.skip:
            return None
        idle = self.status(wall_ns, next_ns)
        if idle is None or not idle.closed:
            return None
        until = next_ns if idle.opens_ns is None else min(next_ns, idle.opens_ns)
        target = until - int(LEAD_S * self.speed * NS_PER_SECOND)
        return target if target > wall_ns else None

    def format(self, ts_ns: int) -> str:
        """A market time as the view shows it, in the calendar's timezone (else UTC)."""
        return from_ns(ts_ns).astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")


def duration(ns: int) -> str:
    """``17 h 29 m``, ``4 m 10 s``, ``12 s``: a span of market time for a summary."""
    seconds = round(ns / NS_PER_SECOND)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} m"
    if minutes:
        return f"{minutes} m {secs} s"
    return f"{secs} s"
