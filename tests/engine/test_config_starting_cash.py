"""The starting cash is one number: ``backtest.initial_capital`` (the proposal's key) or
``portfolio.initial_cash``, both only if equal; and it is a finite amount > 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest import BatchStrategy, ConfigError, PortfolioConfig
from ml4t.backtest.config import BacktestSection, RunConfig, dump_config, load_config
from ml4t.backtest.engine import BacktestEngine

from .conftest import base_config


class Idle(BatchStrategy):
    """Never trades: the cash stays what it started as."""

    def on_timestamp(self, timestamp, batch, context) -> None:
        pass


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def _failure(source, **kwargs) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(source, **kwargs)
    return str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (".inf", "initial_capital must be a finite amount > 0; got inf - at `$.backtest`"),
        ("-.inf", "Expected `float` > 0.0 - at `$.backtest.initial_capital`"),
        (".nan", "Expected `float` > 0.0 - at `$.backtest.initial_capital`"),
        ("0", "Expected `float` > 0.0 - at `$.backtest.initial_capital`"),
    ],
)
def test_initial_capital_that_is_infinite_nan_or_zero_is_rejected(
    tmp_path: Path, value: str, expected: str
) -> None:
    path = _write(tmp_path, f"backtest:\n  initial_capital: {value}\n")
    assert _failure(path) == f"invalid config: {expected}"


def test_portfolio_initial_cash_alone_is_the_starting_cash(dataset, tmp_path: Path) -> None:
    config = base_config(dataset, None, portfolio={"initial_cash": 50_000})
    del config["backtest"]["initial_capital"]
    loaded = load_config(config)
    assert loaded.backtest.initial_capital == 50_000.0
    assert loaded.portfolio == PortfolioConfig(initial_cash=50_000.0)
    results = BacktestEngine(loaded, strategy=Idle("idle")).run()
    assert results.initial_equity == 50_000.0
    assert results.portfolio.height > 0
    assert set(results.portfolio["cash"]) == {50_000.0}  # not the default 100,000
    assert set(results.portfolio["equity"]) == {50_000.0}


def test_initial_capital_alone_fills_in_the_portfolio_section(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "backtest:\n  initial_capital: 70000\nportfolio:\n  check_invariants: true\n",
    )
    loaded = load_config(path)
    assert loaded.backtest.initial_capital == 70_000.0
    assert loaded.portfolio == PortfolioConfig(initial_cash=70_000.0, check_invariants=True)
    again = _write(tmp_path, dump_config(loaded))
    assert load_config(again) == loaded


def test_initial_cash_and_initial_capital_that_differ_fail_naming_both(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        "backtest:\n  initial_capital: 100000\nportfolio:\n  initial_cash: 50000\n",
    )
    assert _failure(path) == (
        "$.backtest.initial_capital (100000) and $.portfolio.initial_cash (50000) differ: "
        "both are the starting cash; give backtest.initial_capital only, or the same value "
        "in both"
    )


def test_a_set_initial_cash_that_differs_from_the_files_capital_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, "backtest:\n  initial_capital: 100000\n")
    assert _failure(path, overrides=["portfolio.initial_cash=25000"]) == (
        "$.backtest.initial_capital (100000) and $.portfolio.initial_cash (25000) differ: "
        "both are the starting cash; give backtest.initial_capital only, or the same value "
        "in both"
    )


def test_equal_initial_cash_and_initial_capital_are_accepted() -> None:
    loaded = load_config(
        {"backtest": {"initial_capital": 50_000}, "portfolio": {"initial_cash": 50_000.0}}
    )
    assert (loaded.backtest.initial_capital, loaded.portfolio.initial_cash) == (5e4, 5e4)


@pytest.mark.parametrize("cash", [0, -10, float("inf"), "lots"])
def test_portfolio_initial_cash_alone_must_be_a_finite_amount(cash) -> None:
    assert _failure({"portfolio": {"initial_cash": cash}}) == (
        f"$.portfolio.initial_cash: the starting cash must be a finite amount > 0; got {cash!r}"
    )


def test_a_python_built_config_whose_cash_and_capital_differ_fails() -> None:
    # a portfolio section that leaves initial_cash unset takes the run's capital
    unset = RunConfig(
        backtest=BacktestSection(initial_capital=50_000.0),
        portfolio=PortfolioConfig(check_invariants=True),
    )
    assert unset.portfolio is not None and unset.portfolio.initial_cash is None
    with pytest.raises(ConfigError) as raised:
        RunConfig(
            backtest=BacktestSection(initial_capital=50_000.0),
            portfolio=PortfolioConfig(initial_cash=100_000.0, check_invariants=True),
        )
    assert str(raised.value) == (
        "$.backtest.initial_capital (50000.0) and $.portfolio.initial_cash (100000.0) differ: "
        "both are the starting cash; give backtest.initial_capital only, or the same value "
        "in both"
    )
    built = RunConfig(
        backtest=BacktestSection(initial_capital=50_000.0),
        portfolio=PortfolioConfig(initial_cash=50_000.0, check_invariants=True),
    )
    assert built.portfolio.initial_cash == 50_000.0
