"""The published role protocols: the built-ins follow them, and the plugin loader refuses
a feed, broker or recorder plugin whose product does not, naming the plugin and what it
lacks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ml4t.backtest import (
    BacktestEngine,
    Broker,
    Component,
    DataValidationError,
    Feed,
    ParquetFeed,
    Recorder,
    RunConfig,
    SimulatedBroker,
    StrategyBase,
)
from ml4t.backtest import protocols as roles
from ml4t.backtest.config import PluginsSection
from ml4t.backtest.plugins import PluginError, build


def test_builtin_roles_follow_their_protocols() -> None:
    assert roles.missing(ParquetFeed(), Feed) == []
    assert roles.missing(SimulatedBroker(), Broker) == []
    assert roles.missing(Recorder(), roles.RecorderRole) == []
    assert isinstance(ParquetFeed(), Feed)
    assert isinstance(Recorder(), roles.RecorderRole)


def test_missing_names_each_absent_member_and_topic() -> None:
    from ml4t.backtest import Component

    class Quiet(Component):
        pass

    assert roles.missing(Quiet(), Broker) == [
        "a handler of topic 'orders.approved' (@on)",
        "a handler of topic 'market' (@on)",
    ]
    lacks = roles.missing(object(), Feed)
    assert lacks[-1] == "the Component base class (ml4t.backtest.Component)"
    assert "attribute 'prepare'" in lacks and "attribute 'first_ts'" in lacks


def test_strategy_base_is_public_and_private_name_is_gone() -> None:
    import ml4t.backtest as api

    assert "StrategyBase" in api.__all__
    assert not hasattr(api.strategy, "_StrategyBase")
    assert issubclass(api.Strategy, StrategyBase) and issubclass(api.BatchStrategy, StrategyBase)


@pytest.fixture
def bad_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "acme_bad.py").write_text(
        textwrap.dedent(
            """
            from ml4t.backtest import Component

            class DeafBroker(Component):  # handles neither orders nor market data
                def __init__(self, config):
                    super().__init__("broker")

            class NotAComponent:
                def __init__(self, config):
                    self.name = "feed"
            """
        )
    )
    info = tmp_path / "acme_bad-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-bad\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(
        "[ml4t.backtest.brokers]\ndeaf = acme_bad:DeafBroker\n"
        "[ml4t.backtest.feeds]\nplain = acme_bad:NotAComponent\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broker_plugin_without_order_handler_is_refused_naming_it(bad_plugins: Path) -> None:
    with pytest.raises(PluginError) as caught:
        build("brokers", "deaf", None)
    message = str(caught.value)
    assert "brokers plugin 'deaf' (from package acme-bad 0.3.0" in message
    assert "DeafBroker, which is not a Broker" in message
    assert "'orders.approved'" in message and "'market'" in message
    assert caught.value.name == "deaf" and caught.value.package == "acme-bad"


def test_feed_plugin_that_is_no_component_is_refused_listing_what_it_lacks(
    bad_plugins: Path,
) -> None:
    config = RunConfig(plugins=PluginsSection(feed="plain"))
    with pytest.raises(PluginError, match=r"feeds plugin 'plain'.*not a Feed") as caught:
        BacktestEngine(config, strategy=_NoOp("s"))
    message = str(caught.value)
    for member in ("'first_ts'", "'last_ts'", "'symbols'", "'columns'", "'prepare'"):
        assert member in message
    assert "the Component base class" in message


class _NoOp(StrategyBase):
    pass


class _SpanFeed(Component):
    """A Feed of no built-in type: prepare() learns the span, or refuses the data."""

    def __init__(self, *, bad: bool = False) -> None:
        super().__init__("feed")
        self.bad = bad
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.symbols: tuple[str, ...] = ()
        self.columns = ("symbol", "open", "high", "low", "close", "volume")

    def prepare(self) -> None:
        if self.bad:
            raise DataValidationError("rule duplicate: 2 rows of AAA at 09:31")
        self.first_ts, self.last_ts = 1_000, 2_000


def test_engine_prepares_any_feed_of_the_protocol_before_the_first_event() -> None:
    engine = BacktestEngine(RunConfig(), strategy=_NoOp("s"), feed=_SpanFeed())
    runtime = engine.build()
    assert runtime.clock.now_ns() == 1_000  # the clock starts at the feed's first_ts
    with pytest.raises(DataValidationError, match="2 rows of AAA"):
        BacktestEngine(RunConfig(), strategy=_NoOp("s"), feed=_SpanFeed(bad=True)).build()
