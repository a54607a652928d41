"""The parts on their own: the config and its errors, client order ids, the minute-bar
assembler's release rules, the trade-update tracker, and the installed entry points."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgspec
import polars as pl
import pytest
from ml4t_alpaca import AlpacaBroker, AlpacaConfig, AlpacaFeed, load_alpaca_config
from ml4t_alpaca._bars import MINUTE_NS, MinuteBars, iso_ns
from ml4t_alpaca._orders import ClientIds
from ml4t_alpaca._tracker import Execution, Tracked

from ml4t.backtest import (
    ConfigError,
    FeedConfig,
    MarketBatch,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderSide,
    plugins,
)
from ml4t.backtest.live import AsofJoiner


def test_the_config_reads_yaml_and_names_the_bad_key(tmp_path, monkeypatch):
    path = tmp_path / "alpaca.yaml"
    path.write_text("paper: false\nsession: run-7\ntime_in_force: {day: opg}\n")
    config = load_alpaca_config(path)
    assert config.rest_url == "https://api.alpaca.markets"
    assert config.stream_url == "wss://api.alpaca.markets/stream"
    assert config.market_stream_url == "wss://stream.data.alpaca.markets/v2/iex"
    assert config.alpaca_tif("day") == "opg" and config.alpaca_tif("gtc") == "gtc"
    monkeypatch.setenv("ML4T_ALPACA_CONFIG", str(path))
    assert load_alpaca_config().session == "run-7"
    path.write_text("sesion: x\n")
    with pytest.raises(ConfigError, match=r"alpaca.yaml.*unknown field `sesion`"):
        load_alpaca_config(path)
    path.write_text("grace: -1\n")
    with pytest.raises(ConfigError, match=r"\$\.grace"):
        load_alpaca_config(path)
    with pytest.raises(ConfigError, match=r"\$\.session"):
        AlpacaConfig(session="has space")
    with pytest.raises(ConfigError, match=r"\['opg'\] are not ml4t times in force"):
        AlpacaConfig(time_in_force={"opg": "day"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="cannot be read"):
        load_alpaca_config(tmp_path / "missing.yaml")


def test_client_order_ids_are_deterministic_readable_and_bounded():
    ids = ClientIds("ml4t", "run-1")
    assert ids.of("alpha", "alpha-17") == "ml4t:run-1:alpha:0:alpha-17"
    assert ids.of("alpha", "alpha-17") == ids.of("alpha", "alpha-17")
    assert ids.parse(ids.of("a:b%", "x:1", 3)) == ("a:b%", "x:1", 3)
    assert ids.parse("ml4t:other:alpha:0:alpha-17") is None  # another session's
    long = ids.of("s" * 100, "o" * 100)
    assert len(long) <= 128 and long.startswith("ml4t:run-1:#") and ids.parse(long) is None


def test_a_minute_is_released_complete_by_a_later_minute_or_after_the_grace():
    joiner = AsofJoiner()
    joiner.prepare(["AAA", "BBB"])
    out: list[MarketBatch] = []

    async def main() -> None:
        bars = MinuteBars(["AAA", "BBB"], joiner, grace=0.05, emit=out.append, log=_Log())
        t0 = iso_ns("2024-03-04T14:30:00Z")
        row = (1.0, 2.0, 0.5, 1.5, 100.0)
        bars.add("BBB", t0, row)
        bars.add("AAA", t0, row)  # complete: released at once
        assert [b.ts_event for b in out] == [t0 + MINUTE_NS]
        assert out[0].frame["symbol"].cast(pl.String).to_list() == ["AAA", "BBB"]
        assert out[0].symbol_codes().tolist() == [0, 1]
        bars.add("AAA", t0 + MINUTE_NS, row)  # BBB did not trade this minute...
        bars.add("BBB", t0 + 2 * MINUTE_NS, row)  # ...a later minute releases it
        assert len(out) == 2 and out[1].frame.height == 1
        await asyncio.sleep(0.1)  # the grace passes: the lone BBB minute goes out
        assert len(out) == 3 and out[2].ts_event == t0 + 3 * MINUTE_NS
        bars.add("AAA", t0 + 2 * MINUTE_NS, row)  # late: its minute is gone
        bars.add("ZZZ", t0 + 3 * MINUTE_NS, row)  # not subscribed
        assert (bars.late, bars.foreign, len(out)) == (1, 1, 3)
        bars.close()

    asyncio.run(main())


class _Log:
    def warning(self, *args, **kwargs) -> None:
        pass


def _order(status: str, filled: float, avg: float | None = None, qty: float = 10):
    return SimpleNamespace(
        id="v1", status=status, qty=str(qty), filled_qty=str(filled),
        filled_avg_price=None if avg is None else str(avg),
    )  # fmt: skip


def test_the_tracker_reports_each_fill_once_whatever_the_order_of_the_news():
    tracked = Tracked(
        order_id="o1", strategy_id="s", symbol="AAA", side=OrderSide.BUY, quantity=10,
        client_order_id="c",
    )  # fmt: skip
    events = tracked.apply(_order("partially_filled", 6, 10.5), 3, Execution("e2", 2, 11.0, 3))
    # the update of a later execution came first: both executions' 6 shares, at their mean
    assert [type(e) for e in events] == [OrderAccepted, OrderFilled]
    assert (events[1].quantity, events[1].price) == (6, pytest.approx(10.5))
    older = Execution("e1", 4, 10.25, 2)
    assert tracked.apply(_order("partially_filled", 4, 10.25), 2, older) == []  # stale
    repeat = Execution("e2", 2, 11.0, 3)
    assert tracked.apply(_order("partially_filled", 6, 10.5), 3, repeat) == []  # a duplicate
    last = tracked.apply(_order("canceled", 8, 10.625), 4)  # a fill lost, then the cancel
    assert [type(e) for e in last] == [OrderFilled, OrderCancelled]
    assert last[0].quantity == 2 and last[0].price == pytest.approx(11.0)
    assert last[1].filled_quantity == 8
    assert tracked.apply(_order("new", 0), 5) == [] and tracked.duplicates == 2


def test_the_plugin_is_installed_as_a_feed_and_a_broker(tmp_path, monkeypatch):
    assert plugins.load("feeds", "alpaca") is AlpacaFeed
    assert plugins.load("brokers", "alpaca") is AlpacaBroker
    path = tmp_path / "alpaca.yaml"
    path.write_text("session: entry-points\n")
    monkeypatch.setenv("ML4T_ALPACA_CONFIG", str(path))
    data = msgspec.convert({"asset": {"symbols": ["AAA", "BBB"]}}, FeedConfig)
    feed = plugins.build("feeds", "alpaca", data)
    assert feed.symbols == ("AAA", "BBB") and feed.first_ts is None
    assert feed.columns == ("symbol", "open", "high", "low", "close", "volume")
    broker = plugins.build("brokers", "alpaca", None)
    assert broker.alpaca.config.session == "entry-points" and broker.on_mismatch == "adopt"
    with pytest.raises(ConfigError, match=r"data\.asset\.symbols"):
        AlpacaFeed(FeedConfig())
