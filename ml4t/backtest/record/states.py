"""Portfolio states at the configured frequency, and the running statistics of equity.

**One state per timestamp.** Several snapshots can share a timestamp: with
``fill_timing: same_close`` the portfolio marks bar t, then fills arrive at t's close and
a corrected snapshot follows. The last snapshot of a timestamp is its state: it replaces
the earlier ones in the table and in every statistic, so a timestamp is one row and one
count whatever the number of snapshots. A timestamp's state is therefore taken when a
snapshot of a later timestamp arrives, or at the end of the run.

Every state updates, in O(1):

- the high-water mark, the drawdown episodes (the deepest one and the longest one) over
  every state: the ``*_intraday`` drawdown metrics;
- time in the market and average leverage;
- the last state of each day (:class:`~ml4t.backtest.record.daily.DailySeries`: equity,
  cash, the benchmark as of it, the positions held), the series daily returns and the
  conventional drawdown, Calmar and benchmark metrics use.

A row of ``portfolio`` is written for every state (``bar``), or for the last state of
each interval (``5m``: intervals aligned on the epoch in UTC) or of each day (``daily``:
the day of :class:`~ml4t.backtest.record.daily.RunDays`, a session with a calendar). An
interval's row is written when a state of a later interval arrives, or at the end of the
run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ml4t.backtest._span import PortfolioSpan
from ml4t.backtest.events import PortfolioSnapshot
from ml4t.backtest.record.daily import DailySeries, Holdings, RunDays
from ml4t.backtest.record.tables import TableBuffer

__all__ = ["PortfolioStates"]


def _added(total: float, values: np.ndarray) -> float:
    """``total`` plus each of ``values`` in turn, left to right, as a loop of ``+=``
    adds them (``np.add.accumulate`` is sequential; ``np.sum`` is not)."""
    if not values.size:
        return total
    return float(np.add.accumulate(np.concatenate(([total], values)))[-1])


# what the recorder knew beside a snapshot when it came: the benchmark level, the holdings
_Beside = tuple[float, Holdings]
_NOTHING: _Beside = (math.nan, None)


class PortfolioStates:
    """Samples snapshots into the portfolio table and keeps the equity statistics."""

    def __init__(
        self,
        table: TableBuffer | None,
        *,
        frequency_ns: int | None,
        days: RunDays | None = None,
        initial_equity: float | None = None,
    ) -> None:
        self.table = table
        self._width = frequency_ns
        self.days = days or RunDays()
        self.initial_equity = initial_equity
        # the newest timestamp's last snapshot, and what was known beside it
        self._latest: tuple[PortfolioSnapshot, _Beside] | None = None
        self._pending: tuple[int, PortfolioSnapshot, float, float] | None = None
        self._bucket: int | None = None
        self._last_written: float | None = None
        # statistics over every state (one per timestamp)
        self.snapshots = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.last: PortfolioSnapshot | None = None
        self.peak = math.nan
        self._peak_ts = 0
        self._episode_min = 0.0
        self._episode_trough = 0
        self.max_drawdown = 0.0
        self.max_drawdown_start: int | None = None
        self.max_drawdown_trough: int | None = None
        self.max_drawdown_end: int | None = None
        self._longest = 0
        self.invested = 0
        self.gross_sum = 0.0
        self.net_sum = 0.0
        self.equity_sum = 0.0
        # the last state of each day, for daily returns
        self.daily = DailySeries()
        self.first_benchmark = math.nan  # the benchmark as of the first state
        self._day: int | None = None

    def on_snapshot(
        self, snap: PortfolioSnapshot, benchmark: float = math.nan, holdings: Holdings = None
    ) -> None:
        """Take ``snap`` (with the ``benchmark`` level and the ``holdings`` as of it); a
        later snapshot with the same timestamp replaces it."""
        latest = self._latest
        if latest is None:
            if self.initial_equity is None:  # the account before anything at t0 happened
                self.initial_equity = snap.equity
        elif latest[0].ts_event != snap.ts_event:
            self._take(*latest)
        self._latest = (snap, (benchmark, holdings))

    def on_span(self, span: PortfolioSpan, holdings: Callable[[int], Holdings]) -> None:
        """Take every state of a quiet span (``holdings(step)``: the positions as of
        each), as :meth:`on_snapshot` of each would. Where the span lies in one day, after
        the run's first state, the statistics and table rows of all but its last state
        are taken at once, with the same arithmetic; the last waits, as any timestamp's
        does, for a later one. Other spans go state by state."""
        n = span.steps
        latest = self._latest
        if latest is not None and n > 1 and self._one_day(span):
            if latest[0].ts_event != span.times[0]:
                self._take(*latest)
            if self.first_ts is not None:  # the run's first state is behind: all at once
                self._take_span(span, n - 1, holdings)
                self._latest = (span.last, (math.nan, holdings(n - 1)))
                return
        for step in range(n):
            self.on_snapshot(span.snapshot(step), math.nan, holdings(step))

    def _one_day(self, span: PortfolioSpan) -> bool:
        times, days = span.times, self.days
        if days.day_end(times[0]) != days.day_end(times[-1]):
            return False
        return bool(np.isfinite(span.equity()).all())

    def _take_span(self, span: PortfolioSpan, m: int, holdings: Callable[[int], Holdings]) -> None:
        """:meth:`_take` of the span's first ``m`` states, one day's, at once."""
        times = span.times[:m]
        equity = span.equity()[:m]
        ts_last = times[-1]
        self.snapshots += m
        self.last_ts = ts_last
        self.last = span.snapshot(m - 1)
        # drawdown episodes: the peak before each state, the new peaks, the dips between
        before = np.empty(m)
        before[0] = self.peak
        if m > 1:
            np.maximum(np.maximum.accumulate(equity[:-1]), self.peak, out=before[1:])
        after = np.maximum(before, equity)
        new_peak = equity >= before
        with np.errstate(divide="ignore", invalid="ignore"):
            dips = np.where(~new_peak & (before > 0), equity / before - 1.0, 0.0)
        peaks = np.flatnonzero(new_peak).tolist()
        self._episodes(times, equity, dips, peaks)
        # exposure
        last = span.last
        if last.num_positions > 0:
            self.invested += m
        moving = equity != 0
        _, values, gross_values = span.arrays()
        gross = gross_values[:m][moving] / equity[moving]
        net = values[:m][moving] / equity[moving]  # the net exposure is the value
        self.gross_sum = _added(self.gross_sum, gross)
        self.net_sum = _added(self.net_sum, net)
        self.equity_sum = _added(self.equity_sum, equity)
        # the last state of the day
        day = self._day_state(ts_last, float(equity[-1]), last.cash, math.nan, holdings(m - 1))
        # sampling
        if self.table is not None:
            self._sample_span(span, m, after, day)

    def _episodes(
        self, times: list[int], equity: np.ndarray, dips: np.ndarray, peaks: list[int]
    ) -> None:
        """The drawdown episodes over states with these ``dips`` below the peak before
        each (0 at the new ``peaks``), as :meth:`_take` settles them one by one: a
        segment between new peaks that dips below 0 is an episode, closed at the next
        new peak. Only such segments are visited (and the episode open before)."""
        m = len(times)
        starts = [0, *(p + 1 for p in peaks)]
        ends = [*peaks, m]
        lows = np.minimum.reduceat(np.append(dips, 0.0), starts)  # 0 where nothing dips
        for j in [0, *(j for j in np.flatnonzero(lows < 0.0).tolist() if j)]:
            if j:  # an episode from the new peak before it
                self._episode_min = 0.0
                self._peak_ts = times[peaks[j - 1]]
            lo, hi = starts[j], ends[j]
            if hi > lo:
                k = lo + int(np.argmin(dips[lo:hi]))
                if dips[k] < self._episode_min:
                    self._episode_min = float(dips[k])
                    self._episode_trough = times[k]
            if j < len(peaks):
                self._close_episode(times[peaks[j]])
        if peaks:
            top = peaks[-1]
            self.peak = float(equity[top])
            self._peak_ts = times[top]

    def _sample_span(self, span: PortfolioSpan, m: int, after: np.ndarray, day: int) -> None:
        """The table rows of the span's first ``m`` states (``after``: the peak after
        each), as :meth:`_take` writes them one by one."""
        times = span.times
        width = self._width
        initial = self.initial_equity or math.nan
        if width == 0:  # every state
            for i in range(m):
                self._write(*self._row(span, i, after, initial))
            return
        buckets = [day] * m if width is None else [t // width for t in times[:m]]
        if buckets[0] != self._bucket and self._pending is not None:
            self._write(*self._pending)
        for i in range(m - 1):  # the last state of each interval the span completes
            if buckets[i] != buckets[i + 1]:
                self._write(*self._row(span, i, after, initial))
        self._bucket = buckets[-1]
        self._pending = self._row(span, m - 1, after, initial)

    def _row(
        self, span: PortfolioSpan, step: int, after: np.ndarray, initial: float
    ) -> tuple[int, PortfolioSnapshot, float, float]:
        snap = span.snapshot(step)
        equity = snap.equity
        peak = float(after[step])
        drawdown = equity / peak - 1.0 if peak > 0 else math.nan
        cumulative = equity / initial - 1.0 if initial else math.nan
        return snap.ts_event, snap, cumulative, drawdown

    def _take(self, snap: PortfolioSnapshot, beside: _Beside = _NOTHING) -> None:
        """``snap`` is the state of its timestamp: count it and sample it."""
        ts, equity = snap.ts_event, snap.equity
        if self.first_ts is None:
            self.first_benchmark = beside[0]
            self.first_ts = ts
            assert self.initial_equity is not None  # set by the first snapshot at the latest
            self.peak = self.initial_equity
            self._peak_ts = ts
        self.snapshots += 1
        self.last_ts = ts
        self.last = snap
        # drawdown episodes
        if equity >= self.peak:
            self._close_episode(ts)
            self.peak = equity
            self._peak_ts = ts
        elif self.peak > 0:
            dd = equity / self.peak - 1.0
            if dd < self._episode_min:
                self._episode_min = dd
                self._episode_trough = ts
        # exposure
        if snap.num_positions > 0:
            self.invested += 1
        if equity != 0:
            self.gross_sum += snap.gross_exposure / equity
            self.net_sum += snap.net_exposure / equity
        self.equity_sum += equity
        # the last state of each day
        day = self._day_state(ts, equity, snap.cash, beside[0], beside[1])
        # sampling
        if self.table is None:
            return
        drawdown = equity / self.peak - 1.0 if self.peak > 0 else math.nan
        initial = self.initial_equity or math.nan
        cumulative = equity / initial - 1.0 if initial else math.nan
        width = self._width
        if width == 0:
            self._write(ts, snap, cumulative, drawdown)
            return
        bucket = day if width is None else ts // width
        if bucket != self._bucket and self._pending is not None:
            self._write(*self._pending)
        self._bucket = bucket
        self._pending = (ts, snap, cumulative, drawdown)

    def _day_state(
        self, ts: int, equity: float, cash: float, benchmark: float, holdings: Holdings
    ) -> int:
        """Keep the state at ``ts`` as its day's last so far (a new day's first); returns
        the day."""
        day = self.days.day_end(ts)
        if day != self._day or not self.daily.ts:
            self._day = day
            self.daily.add(
                new_day=True,
                label=self.days.label(day),
                ts=ts,
                equity=equity,
                cash=cash,
                benchmark=benchmark,
                holdings=holdings,
            )
        else:
            self.daily.replace_last(ts, equity, cash, benchmark, holdings)
        return day

    def _close_episode(self, ts: int | None) -> None:
        """The equity is back at its peak (or the run ended): settle the drawdown episode."""
        if self._episode_min < 0.0:
            end = ts if ts is not None else self.last_ts
            assert end is not None
            self._longest = max(self._longest, end - self._peak_ts)
            if self._episode_min < self.max_drawdown:
                self.max_drawdown = self._episode_min
                self.max_drawdown_start = self._peak_ts
                self.max_drawdown_trough = self._episode_trough
                self.max_drawdown_end = ts
        self._episode_min = 0.0

    def _write(self, ts: int, snap: PortfolioSnapshot, cumulative: float, dd: float) -> None:
        assert self.table is not None
        equity = snap.equity
        base = self._last_written if self._last_written is not None else self.initial_equity
        period = equity / base - 1.0 if base else math.nan
        self._last_written = equity
        gross = snap.gross_exposure / equity if equity else math.nan
        net = snap.net_exposure / equity if equity else math.nan
        self.table.append(
            (
                ts,
                equity,
                snap.cash,
                snap.positions_value,
                snap.gross_exposure,
                snap.net_exposure,
                snap.num_positions,
                gross,
                net,
                snap.realized_pnl,
                snap.unrealized_pnl,
                snap.income,
                snap.borrow_fees,
                period,
                cumulative,
                dd,
            )
        )

    def finish(self) -> None:
        if self._latest is not None:
            self._take(*self._latest)
            self._latest = None
        if self._pending is not None:
            self._write(*self._pending)
            self._pending = None
        if self.first_ts is not None:
            self._close_episode(None)

    @property
    def max_drawdown_duration_ns(self) -> int:
        """The longest time from a peak to the recovery of that peak (or to the end)."""
        return self._longest
