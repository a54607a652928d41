"""Presets fill in execution and risk knobs; keys the config sets itself win."""

from __future__ import annotations

import pytest

from ml4t.backtest.config import load_config
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.execution import BrokerConfig
from ml4t.backtest.execution.presets import PRESETS, apply_preset
from ml4t.backtest.risk.config import RiskConfig


def test_realistic_is_the_default_and_changes_nothing() -> None:
    config = load_config({})
    assert config.preset == "realistic"
    assert config.execution == BrokerConfig()
    assert config.risk == RiskConfig()


@pytest.mark.parametrize("name", ["vectorbt", "backtrader", "zipline"])
def test_a_preset_sets_its_knobs(name: str) -> None:
    config = load_config({"preset": name})
    for key, value in PRESETS[name]["execution"].items():
        got = getattr(config.execution, key)
        if isinstance(value, dict):  # a cost model
            assert got.model == value["model"] and got.params == value["params"]
        else:
            assert got == value, key
    assert config.risk.account == "unchecked"


def test_keys_the_user_sets_win_over_the_preset() -> None:
    config = load_config(
        {
            "preset": "backtrader",
            "execution": {"fill_timing": "same_close"},  # backtrader's cheat-on-close
            "risk": {"account": "cash"},
        },
        overrides=["execution.slippage_cap=none"],
    )
    assert config.execution.fill_timing == "same_close"
    assert config.execution.slippage_cap == "none"
    assert config.risk.account == "cash"
    assert config.execution.trail_watermark == "close"  # still the preset's


def test_a_cost_model_the_user_names_replaces_the_presets_whole_model() -> None:
    config = load_config({"preset": "zipline", "execution": {"commission": {"model": "percent"}}})
    assert config.execution.commission.model == "percent"
    assert config.execution.slippage.model == "volume_share"


def test_an_unknown_preset_fails_with_the_key_path() -> None:
    with pytest.raises(ConfigError, match=r"\$\.preset"):
        load_config({"preset": "quantopian"})


def test_apply_preset_leaves_the_input_untouched() -> None:
    data = {"preset": "vectorbt", "execution": {"volume_limit": 0.1}}
    out = apply_preset(data)
    assert data == {"preset": "vectorbt", "execution": {"volume_limit": 0.1}}
    assert out["execution"]["fill_timing"] == "same_close"
    assert out["execution"]["volume_limit"] == 0.1
