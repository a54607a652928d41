"""Deterministic sample data: multi-asset bars, daily ML signals, indicators and context.

Bars follow a one-factor model on a real exchange calendar (early closes included):
each minute return is ``beta * market + alpha + idiosyncratic noise`` with U-shaped
intraday volatility and volume, overnight gaps, and consistent OHLC (``low <= open,
close <= high``). A latent score drawn at each close drives the next day's drift, and the
daily signals (``confidence``, ``signal_entry``, ``signal_exit``) are noisy readings of it,
so they carry real (modest) predictive power over next-day returns. Signals labelled at
the close of day d are published 16 hours later (``available_at``), so minute bars of day
d+1 carry day d's signals. Indicators (``rsi``, ``atr``, ``macd``, Wilder/EMA smoothing)
are computed from the bars with polars expressions; each month is computed with the last
500 bars of the month before as warm-up, which makes the result equal to a computation
over the whole history to float precision (the EMA weight left after 500 bars is < 1e-16).
Context has a VIX-like series (``vix``, mean-reverting, rising when the market falls) and
an equal-weight index (``spy``), one row per bar time.

Corporate actions are off by default (the data of a seed does not change when the
options are added): ``splits``, ``dividends``, ``delistings``, ``late_listings`` and
``universe_changes`` place that many events over the whole set, by seed, and make the bars
**raw** (as traded): prices fall by the ratio on a split's ex day, by the amount on a
dividend's, a delisted symbol's bars stop, a late-listed symbol's start late (see
:mod:`ml4t.backtest.data._synthetic_actions`). The frames then carry the corporate-action
and universe files too (``actions``, ``universe``); :func:`ml4t.backtest.data.adjustment.adjusted`
back-adjusts the raw bars.

The same seed always gives the same data. :func:`make_frames` returns small data sets
in memory (tests); :func:`write_dataset` writes one parquet file per month for each of
``asset/``, ``signals/`` and ``context/`` without holding more than a month in memory,
and ``actions.parquet`` and ``universe.parquet`` beside them when actions are on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import polars as pl

from ml4t.backtest._time import NS_PER_HOUR, NS_PER_MINUTE, to_ns
from ml4t.backtest.data._synthetic_actions import ActionPlan
from ml4t.backtest.data.calendar import SessionCalendar

__all__ = ["SyntheticConfig", "SyntheticDataset", "SyntheticFrames", "make_frames", "write_dataset"]

SIGNALS = ("signal_entry", "signal_exit", "confidence")
INDICATORS = ("rsi", "macd", "atr")
CONTEXT = ("vix", "spy")
SIGNAL_LAG_NS = 16 * NS_PER_HOUR
_WARMUP = 500
Count = Annotated[int, msgspec.Meta(ge=0)]


class SyntheticConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shape of a synthetic data set; the headline set is 250 symbols x 252 days of 1m bars.

    ``splits``, ``dividends``, ``delistings``, ``late_listings`` and ``universe_changes``
    are counts over the whole set (default 0: no actions, raw = adjusted).
    """

    n_symbols: Annotated[int, msgspec.Meta(ge=1, le=17_576)] = 10
    n_days: Annotated[int, msgspec.Meta(ge=1)] = 20
    start: str = "2023-01-03"
    frequency: Literal["1m", "1d"] = "1m"
    seed: int = 42
    calendar: str = "NYSE"
    splits: Count = 0
    dividends: Count = 0
    delistings: Count = 0
    late_listings: Count = 0
    universe_changes: Count = 0

    @property
    def has_actions(self) -> bool:
        """True when any corporate action or universe change is asked for."""
        counts = (self.splits, self.dividends, self.delistings, self.late_listings)
        return any(counts) or self.universe_changes > 0


class SyntheticFrames(msgspec.Struct, frozen=True, kw_only=True):
    """The data set in memory; ``actions`` and ``universe`` (the two files' frames) are
    None unless the config asks for corporate actions."""

    asset: pl.DataFrame
    signals: pl.DataFrame
    context: pl.DataFrame
    actions: pl.DataFrame | None = None
    universe: pl.DataFrame | None = None


class SyntheticDataset(msgspec.Struct, frozen=True, kw_only=True):
    """Where :func:`write_dataset` put the data, and what it holds."""

    root: str
    asset: str
    signals: str
    context: str
    symbols: list[str]
    rows: int
    sessions: int
    first_ts: int
    last_ts: int
    actions: str | None = None
    universe: str | None = None


def symbols(n: int) -> list[str]:
    """``n`` distinct three-letter tickers in sorted order (AAA, AAB, ...)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [letters[i // 676] + letters[i // 26 % 26] + letters[i % 26] for i in range(n)]


class _State:
    """What carries over from one month to the next."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.beta = rng.uniform(0.6, 1.4, n)
        self.vol = rng.uniform(0.012, 0.03, n)  # daily idiosyncratic volatility
        self.base_volume = rng.lognormal(np.log(20_000), 0.6, n)
        self.close = rng.uniform(20.0, 300.0, n)
        self.score = np.full(n, np.nan)  # latent score of the previous close
        self.conf = np.full(n, np.nan)
        self.spy = 100.0
        self.log_vix = math.log(18.0)
        self.tail: dict[str, np.ndarray] = {}  # last bars of close/high/low for warm-up


def _sessions(cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days since epoch, opens, closes) of the first ``n_days`` sessions from ``start``."""
    cal = SessionCalendar(cfg.calendar)
    start = to_ns(f"{cfg.start}T00:00:00+00:00")
    days, opens, closes = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    horizon = start
    while len(days) < cfg.n_days:
        horizon += 400 * 24 * NS_PER_HOUR
        days, opens, closes, _ = cal.arrays(start, horizon)
    return days[: cfg.n_days], opens[: cfg.n_days], closes[: cfg.n_days]


def _bar_times(
    opens: np.ndarray, closes: np.ndarray, frequency: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bar end times, day index of each bar, intraday weight of each bar)."""
    if frequency == "1d":
        return closes.copy(), np.arange(len(closes)), np.ones(len(closes))
    counts = ((closes - opens) // NS_PER_MINUTE).astype(np.int64)
    day = np.repeat(np.arange(len(opens)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    times = opens[day] + (k + 1) * NS_PER_MINUTE
    x = (k + 0.5) / counts[day] * 2 - 1  # -1 at the open, +1 at the close
    weight = 1.0 + 1.5 * x**2  # U-shaped activity
    weight /= np.bincount(day, weight)[day]  # each day's weights sum to 1
    return times, day, weight


def _month_blocks(cfg: SyntheticConfig) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    days, opens, closes = _sessions(cfg)
    month = days.astype("datetime64[D]").astype("datetime64[M]")
    for m in np.unique(month):
        sel = month == m
        yield days[sel], opens[sel], closes[sel]


def _plan(cfg: SyntheticConfig) -> ActionPlan | None:
    if not cfg.has_actions:
        return None
    return ActionPlan(
        seed=cfg.seed,
        names=symbols(cfg.n_symbols),
        dates=_sessions(cfg)[0],
        splits=cfg.splits,
        dividends=cfg.dividends,
        delistings=cfg.delistings,
        late_listings=cfg.late_listings,
        universe_changes=cfg.universe_changes,
    )


def _generate(cfg: SyntheticConfig, plan: ActionPlan | None) -> Iterator[SyntheticFrames]:
    rng = np.random.default_rng(cfg.seed)
    names = symbols(cfg.n_symbols)
    state = _State(rng, cfg.n_symbols)
    offset = 0
    for days, opens, closes in _month_blocks(cfg):
        yield _month(rng, state, names, opens, closes, cfg.frequency, plan, offset)
        offset += len(days)


def _month(
    rng: np.random.Generator,
    st: _State,
    names: list[str],
    opens: np.ndarray,
    closes: np.ndarray,
    freq: str,
    plan: ActionPlan | None = None,
    offset: int = 0,
) -> SyntheticFrames:
    n = len(names)
    times, day, w = _bar_times(opens, closes, freq)
    n_days = len(opens)
    # latent scores drawn at each close: day d's drift uses the score of day d-1
    scores = rng.standard_normal((n_days, n))
    prev = np.vstack([st.score[None, :], scores[:-1]])
    alpha = np.nan_to_num(prev) * 0.12 * st.vol  # daily drift
    sw = np.sqrt(w)[:, None]
    market = 0.0002 * w[:, None] + 0.009 * sw * rng.standard_normal((len(times), 1))
    inc = (
        st.beta * market
        + alpha[day] * w[:, None]
        + st.vol * sw * rng.standard_normal((len(times), n))
    )
    first = np.r_[True, day[1:] != day[:-1]]
    gap = np.where(first[:, None], 0.3 * st.vol * rng.standard_normal((len(times), n)), 0.0)
    log_close = np.log(st.close) + np.cumsum(inc + gap, axis=0)
    close = np.exp(log_close)
    open_ = np.exp(log_close - inc)
    wick = 0.25 * st.vol * sw
    high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal((len(times), n))) * wick)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal((len(times), n))) * wick)
    volume = np.maximum(
        1.0,
        np.round(
            st.base_volume * w[:, None] * len(w) / n_days * rng.lognormal(0, 0.3, (len(times), n))
        ),
    )
    conf_today = 1 / (1 + np.exp(-(scores + 0.7 * rng.standard_normal((n_days, n)))))
    conf_prev = np.vstack([st.conf[None, :], conf_today[:-1]])[
        day
    ]  # yesterday's, known this morning
    bars = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    keep = keep_days = None
    if plan is not None:  # raw bars; no signal from before a listing
        bars, keep, listed_before = plan.raw_bars(offset, day, bars)
        conf_prev = np.where(listed_before, conf_prev, np.nan)
        keep_days = plan.listed(offset, n_days)
    ind = _indicators(st, bars["close"], bars["high"], bars["low"])
    st.close, st.score, st.conf = close[-1].copy(), scores[-1].copy(), conf_today[-1].copy()
    market_path = market[:, 0]
    spy = st.spy * np.exp(np.cumsum(market_path))
    vix = _vix(rng, st, market_path)
    st.spy = float(spy[-1])
    asset = _long_frame(
        times,
        names,
        {
            **bars,
            "signal_entry": _flag(conf_prev, 0.7, above=True),
            "signal_exit": _flag(conf_prev, 0.35, above=False),
            "confidence": conf_prev,
            **ind,
        },
        keep=keep,
    )
    daily = _daily_signals(closes, names, conf_today, keep=keep_days)
    context = pl.DataFrame({"timestamp": _utc(times), "vix": vix, "spy": spy})
    return SyntheticFrames(asset=asset, signals=daily, context=context)


def _flag(conf: np.ndarray, cut: float, *, above: bool) -> np.ndarray:
    out = (conf > cut) if above else (conf < cut)
    return np.where(np.isnan(conf), np.nan, out.astype(np.float64))


def _vix(rng: np.random.Generator, st: _State, market: np.ndarray) -> np.ndarray:
    """Mean-reverting log level, pushed up when the market falls."""
    shocks = -4.0 * market + 0.002 * rng.standard_normal(len(market))
    out = np.empty(len(market))
    level, mean, speed = st.log_vix, math.log(18.0), 0.002
    for i, s in enumerate(shocks):  # one scalar recursion per bar time (not per row)
        level += speed * (mean - level) + s
        out[i] = level
    st.log_vix = level
    return np.exp(out)


def _indicators(
    st: _State, close: np.ndarray, high: np.ndarray, low: np.ndarray
) -> dict[str, np.ndarray]:
    """RSI(14), MACD(12, 26) and ATR(14) per symbol, with the previous month as warm-up."""
    tail = st.tail
    c = np.vstack([tail["close"], close]) if tail else close
    h = np.vstack([tail["high"], high]) if tail else high
    lo = np.vstack([tail["low"], low]) if tail else low
    warm = len(c) - len(close)
    st.tail = {"close": c[-_WARMUP:], "high": h[-_WARMUP:], "low": lo[-_WARMUP:]}
    prev_close = np.vstack([np.full((1, c.shape[1]), np.nan), c[:-1]])
    true_range = np.fmax(h - lo, np.fmax(np.abs(h - prev_close), np.abs(lo - prev_close)))
    cols = [str(i) for i in range(c.shape[1])]
    wilder: dict[str, Any] = {"alpha": 1 / 14, "adjust": False, "ignore_nulls": True}
    closes = pl.DataFrame(c, schema=cols).fill_nan(None)  # NaN: not listed (yet, or any more)
    delta = pl.all().diff()
    gain = delta.clip(lower_bound=0).ewm_mean(**wilder)
    loss = (delta * -1).clip(lower_bound=0).ewm_mean(**wilder)
    rsi = closes.select(gain / (gain + loss) * 100).to_numpy()
    macd = closes.select(
        pl.all().ewm_mean(span=12, adjust=False) - pl.all().ewm_mean(span=26, adjust=False)
    ).to_numpy()
    atr = (
        pl.DataFrame(true_range, schema=cols)
        .fill_nan(None)
        .select(pl.all().ewm_mean(**wilder))
        .to_numpy()
    )
    return {"rsi": rsi[warm:], "macd": macd[warm:], "atr": atr[warm:]}


def _utc(ns: np.ndarray) -> pl.Series:
    return pl.Series(ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))


def _long_frame(
    times: np.ndarray,
    names: list[str],
    wide: dict[str, np.ndarray],
    *,
    keep: np.ndarray | None = None,
) -> pl.DataFrame:
    """Long format sorted by (timestamp, symbol) from (time x symbol) arrays; ``keep``
    (time x symbol) drops the cells where it is False."""
    n = len(names)
    data: dict[str, pl.Series] = {
        "timestamp": _utc(np.repeat(times, n)),
        "symbol": pl.Series(names, dtype=pl.Enum(names)).gather(np.tile(np.arange(n), len(times))),
    }
    for key, arr in wide.items():
        data[key] = pl.Series(key, arr.reshape(-1)).fill_nan(None)
    frame = pl.DataFrame(data)
    if keep is not None:
        frame = frame.filter(pl.Series(keep.reshape(-1)))
    return frame.with_columns(pl.col("symbol").cast(pl.String))


def _daily_signals(
    closes: np.ndarray, names: list[str], conf: np.ndarray, *, keep: np.ndarray | None = None
) -> pl.DataFrame:
    wide = {
        "signal_entry": _flag(conf, 0.7, above=True),
        "signal_exit": _flag(conf, 0.35, above=False),
        "confidence": conf,
    }
    frame = _long_frame(closes, names, wide, keep=keep)
    return frame.with_columns(
        available_at=pl.col("timestamp") + pl.duration(nanoseconds=SIGNAL_LAG_NS)
    )


def make_frames(config: SyntheticConfig | None = None) -> SyntheticFrames:
    """The whole data set in memory (for small sizes: tests, examples)."""
    cfg = config or SyntheticConfig()
    plan = _plan(cfg)
    parts = list(_generate(cfg, plan))
    return SyntheticFrames(
        asset=pl.concat([p.asset for p in parts]),
        signals=pl.concat([p.signals for p in parts]),
        context=pl.concat([p.context for p in parts]),
        actions=plan.actions_frame() if plan is not None else None,
        universe=plan.universe_frame() if plan is not None else None,
    )


def write_dataset(root: str | Path, config: SyntheticConfig | None = None) -> SyntheticDataset:
    """Write ``asset/``, ``signals/`` and ``context/`` under ``root``, one file per month
    (and ``actions.parquet``, ``universe.parquet`` when the config asks for actions)."""
    cfg = config or SyntheticConfig()
    root = Path(root)
    dirs = {k: root / k for k in ("asset", "signals", "context")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rows, first, last = 0, None, None
    plan = _plan(cfg)
    for part in _generate(cfg, plan):
        ts = part.context["timestamp"]
        tag = ts[0].strftime("%Y-%m")
        part.asset.write_parquet(dirs["asset"] / f"{tag}.parquet", compression="lz4")
        part.signals.write_parquet(dirs["signals"] / f"{tag}.parquet", compression="lz4")
        part.context.write_parquet(dirs["context"] / f"{tag}.parquet", compression="lz4")
        rows += part.asset.height
        first = first if first is not None else int(ts.dt.epoch("ns")[0])
        last = int(ts.dt.epoch("ns")[-1])
    files: dict[str, str | None] = {"actions": None, "universe": None}
    if plan is not None:
        for key, frame in (("actions", plan.actions_frame()), ("universe", plan.universe_frame())):
            path = root / f"{key}.parquet"
            frame.write_parquet(path)
            files[key] = str(path)
    return SyntheticDataset(
        root=str(root),
        asset=str(dirs["asset"]),
        signals=str(dirs["signals"]),
        context=str(dirs["context"]),
        symbols=symbols(cfg.n_symbols),
        rows=rows,
        sessions=cfg.n_days,
        first_ts=first or 0,
        last_ts=last or 0,
        actions=files["actions"],
        universe=files["universe"],
    )
