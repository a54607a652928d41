"""Config errors name the key path; configs round-trip to YAML; overrides and env work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml4t.backtest import ConfigError
from ml4t.backtest.config import RunConfig, dump_config, load_config, load_strategy_class

from .conftest import base_config

STRATEGY_FILE = Path(__file__).with_name("strategies.py")


def _with(config: dict, dotted: str, value) -> dict:
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("backtest.colour", "red", r"unknown field `colour` - at `\$.backtest`"),
        ("data.asset.colour", 1, r"unknown field `colour` - at `\$.data.asset`"),
        ("execution.colour", 1, r"unknown field `colour` - at `\$.execution`"),
        ("risk.colour", 1, r"unknown field `colour` - at `\$.risk`"),
        ("reporting.colour", 1, r"unknown field `colour` - at `\$.reporting`"),
        ("strategy.colour", 1, r"unknown field `colour` - at `\$.strategy`"),
        ("colour", 1, r"unknown field `colour`"),
    ],
)
def test_unknown_keys_fail_with_their_path(dataset, key, value, expected) -> None:
    config = base_config(dataset, None)
    config["strategy"] = {"path": str(STRATEGY_FILE), "class": "SignalBatch"}
    with pytest.raises(ConfigError, match=expected):
        load_config(_with(config, key, value))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "backtest.initial_capital",
            "lots",
            r"Expected `float`, got `str` - at `\$.backtest.initial_capital`",
        ),
        (
            "backtest.initial_capital",
            -5,
            r"Expected `float` > 0.0 - at `\$.backtest.initial_capital`",
        ),
        ("data.chunk_memory_mb", 0, r"Expected `float` > 0.0 - at `\$.data.chunk_memory_mb`"),
        (
            "execution.fill_timing",
            "whenever",
            r"Invalid enum value 'whenever' - at `\$.execution.fill_timing`",
        ),
        ("execution.slippage.params", {"volume_limt": 0.1}, r"volume_limt.*\$.execution.slippage"),
        ("risk.max_gross_leverage", -1, r"at `\$.risk.max_gross_leverage`"),
        ("reporting.portfolio_frequency", "sometimes", r"'sometimes'.* - at `\$.reporting`"),
        (
            "backtest.end_date",
            "2020-01-01",
            r"end_date 2020-01-01 is before start_date .* - at `\$.backtest`",
        ),
    ],
)
def test_wrong_types_and_bad_values_fail_with_their_path(dataset, key, value, expected) -> None:
    config = base_config(dataset, None)
    config["backtest"]["start_date"] = "2023-01-03"
    with pytest.raises(ConfigError, match=expected):
        load_config(_with(config, key, value))


def test_missing_data_file_names_the_key(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, None)
    config["data"]["context"]["path"] = str(tmp_path / "nope" / "*.parquet")
    with pytest.raises(ConfigError, match=r"\$.data.context.path: .*nope.* matches no file"):
        load_config(config)


def test_missing_strategy_pieces_are_named(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, None)
    config["strategy"] = {"path": str(tmp_path / "gone.py"), "class": "X"}
    with pytest.raises(ConfigError, match=r"\$.strategy.path: file .*gone.py.* does not exist"):
        load_config(config)
    config["strategy"] = {"path": str(STRATEGY_FILE), "class": "SignalBatchh"}
    loaded = load_config(config)
    with pytest.raises(
        ConfigError,
        match=r"\$.strategy.class: .*strategies.py has no class 'SignalBatchh'; strategy "
        r"classes there: \['Explodes', 'SignalBatch', 'SignalPerSymbol'\]",
    ):
        load_strategy_class(loaded.strategy)
    config["strategy"] = {"module": "no_such_module_here", "class": "X"}
    with pytest.raises(
        ConfigError, match=r"\$.strategy.module: cannot import 'no_such_module_here'"
    ):
        load_strategy_class(load_config(config).strategy)
    config["strategy"] = {"plugin": "not-installed"}
    with pytest.raises(ConfigError, match=r"no strategy plugin named 'not-installed'"):
        load_strategy_class(load_config(config).strategy)
    config["strategy"] = {"class": "X"}
    with pytest.raises(ConfigError, match=r"exactly one of path .* - at `\$.strategy`"):
        load_config(config)


def test_strategy_params_are_checked_against_the_class(dataset) -> None:
    from ml4t.backtest.engine import BacktestEngine

    config = base_config(dataset, None)
    config["strategy"] = {
        "path": str(Path(__file__).parents[2] / "ml4t/backtest/demo/ml_top25.py"),
        "class": "MLTop25Strategy",
        "params": {"max_positons": 3},
    }
    with pytest.raises(
        ConfigError, match=r"strategy parameters of MLTop25Strategy: .*max_positons"
    ):
        BacktestEngine.from_config(config)


def test_config_round_trips_through_yaml(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, tmp_path / "out")
    config["strategy"] = {"path": str(STRATEGY_FILE), "class": "SignalBatch", "params": {}}
    loaded = load_config(config)
    path = tmp_path / "again.yaml"
    path.write_text(dump_config(loaded))
    assert load_config(path) == loaded
    assert isinstance(loaded, RunConfig)


def test_overrides_and_environment(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, None)
    config["backtest"]["name"] = "${RUN_NAME:-fallback}"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert load_config(path, environ={}).backtest.name == "fallback"
    assert load_config(path, environ={"RUN_NAME": "mine"}).backtest.name == "mine"
    loaded = load_config(
        path,
        overrides=["backtest.initial_capital=2500", "execution.commission.params.minimum=1.5"],
        environ={},
    )
    assert loaded.backtest.initial_capital == 2500.0
    assert loaded.execution.commission.params == {"cost_per_share": 0.005, "minimum": 1.5}
    with pytest.raises(ConfigError, match=r"--set 'backtest.name.x=1': backtest.name is a value"):
        load_config(path, overrides=["backtest.name.x=1"], environ={})
    config["backtest"]["name"] = "${UNSET_VAR}"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"\$.backtest.name: environment variable 'UNSET_VAR'"):
        load_config(path, environ={})


def test_relative_paths_are_relative_to_the_config_file(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, None)
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "s.py").write_text(STRATEGY_FILE.read_text())
    config["strategy"] = {"path": "strategies/s.py", "class": "SignalBatch"}
    config["reporting"] = {"output_dir": "results"}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path)
    assert loaded.strategy.path == str(tmp_path / "strategies" / "s.py")
    assert loaded.reporting.output_dir == str(tmp_path / "results")


def test_bad_yaml_and_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backtest: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)


PROPOSAL_YAML = """
backtest:
  name: "ml_top25_strategy_2023"
  start_date: "2023-01-01"
  end_date: "2023-12-31"
  initial_capital: 100000
  calendar: "NYSE"

data:
  asset_data:
    path: "{asset}"
    columns:
      ohlcv: [open, high, low, close, volume]
      signals: [signal_entry, signal_exit, confidence]
      indicators: [rsi, macd, atr]

  context_data:
    path: "{context}"
    fields: [vix, spy]

execution:
  slippage:
    model: VolumeShareSlippage
    params:
      volume_limit: 0.1

  commission:
    model: PerShareCommission
    params:
      cost_per_share: 0.005

strategy:
  path: "{strategy}"
  class: "MLTop25Strategy"
  params:
    max_positions: 25
    position_size_pct: 0.04
    vix_threshold: 30
"""


def test_the_proposals_config_shape_is_accepted(dataset, tmp_path: Path) -> None:
    import polars as pl

    from ml4t.backtest.engine import BacktestEngine

    # the proposal pre-joins signals into the asset data: do that, as its section 3.2 does
    asset = pl.read_parquet(Path(dataset.asset) / "*.parquet")
    asset.write_parquet(tmp_path / "asset.parquet")
    strategy = Path(__file__).parents[2] / "ml4t/backtest/demo/ml_top25.py"
    path = tmp_path / "backtest_config.yaml"
    path.write_text(
        PROPOSAL_YAML.format(
            asset=tmp_path / "asset.parquet", context=Path(dataset.context), strategy=strategy
        )
    )
    config = load_config(path, overrides=["reporting.output_dir=null"])
    assert config.data.asset.signals == ["signal_entry", "signal_exit", "confidence"]
    assert config.data.context is not None and config.data.context.fields == ["vix", "spy"]
    results = BacktestEngine.from_config(config).run()
    assert results.complete and results.bar_events == asset.height
    with pytest.raises(ConfigError, match=r"\$.data.asset_data.columns.ohlcv: ml4t reads"):
        load_config({"data": {"asset_data": {"columns": {"ohlcv": ["o", "h", "l", "c", "v"]}}}})


PLUGIN_MODULE = """
from ml4t.backtest import Component, OrderFilled, on
from ml4t.backtest.risk import Rejection
from ml4t.backtest.topics import FILLS

HEARD = []


def no_aaa(request, view, config):
    if getattr(request, "symbol", None) == "AAA":
        return Rejection("no_aaa", "AAA is off limits in this test")
    return None


class FillEar(Component):
    def __init__(self):
        super().__init__("fill_ear")

    @on(FILLS)
    def heard(self, fill: OrderFilled) -> None:
        HEARD.append(fill.symbol)
"""


def _install_distribution(site: Path) -> None:
    """A real installed distribution (dist-info with entry points) in ``site``."""
    info = site / "ml4t_testplug-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "ml4t_testplug.py").write_text(PLUGIN_MODULE)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ml4t-testplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ml4t.backtest.risk_rules]\nno_aaa = ml4t_testplug:no_aaa\n\n"
        "[ml4t.backtest.components]\nfill_ear = ml4t_testplug:FillEar\n"
    )


def test_config_names_installed_plugins(dataset, tmp_path: Path, monkeypatch) -> None:
    import importlib

    from ml4t.backtest.engine import BacktestEngine
    from ml4t.backtest.plugins import PluginError

    from .strategies import SignalBatch

    _install_distribution(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    config = base_config(dataset, None)
    config["risk"] = {**config.get("risk", {}), "rules": [{"rule": "no_aaa"}]}
    config["plugins"] = {"components": ["fill_ear"]}
    results = BacktestEngine(load_config(config), strategy=SignalBatch("strategy")).run()
    plugin = importlib.import_module("ml4t_testplug")
    assert results.fills.height > 0
    assert "AAA" not in set(results.fills["symbol"])  # the plugin rule refused every AAA order
    assert sorted(plugin.HEARD) == sorted(results.fills["symbol"].to_list())
    config["plugins"] = {"feed": "nope"}
    with pytest.raises(PluginError, match=r"no feeds plugin named 'nope' is installed"):
        BacktestEngine(load_config(config), strategy=SignalBatch("strategy"))


def test_unquoted_dates_in_yaml_and_overrides_are_read_as_dates(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, None)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config) + "")
    text = path.read_text().replace("backtest:\n", "backtest:\n  start_date: 2023-01-04\n", 1)
    path.write_text(text)
    loaded = load_config(path, overrides=["backtest.end_date=2023-01-10"])
    assert (loaded.backtest.start_date, loaded.backtest.end_date) == ("2023-01-04", "2023-01-10")
