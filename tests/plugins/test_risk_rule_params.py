"""Risk rules from plugins take their own typed parameters from ``risk.rules``: a rule
declares them as the fields of a RiskRule Struct, bad ones fail as the config is read
with the key path, and the rule runs after the built-in ones with the values given."""

from __future__ import annotations

import pytest
import yaml

from ml4t.backtest import ConfigError, OrderSide, RiskConfig, RiskManager, RiskView, SubmitOrder
from ml4t.backtest.cli import main
from ml4t.backtest.config import dump_config, load_config
from ml4t.backtest.risk.rules import RULES
from tests.engine._bars import flat, run_script

RULES_MODULE = """
from typing import Annotated
from msgspec import Meta
from ml4t.backtest import Rejection, RiskRule

class MaxQuantity(RiskRule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    limit: Annotated[float, Meta(gt=0)]
    symbols: frozenset[str] = frozenset()  # empty: every symbol

    def check(self, request, view, config):
        if self.symbols and request.symbol not in self.symbols:
            return None
        if request.quantity <= self.limit:
            return None
        return Rejection("max_quantity", f"{request.quantity:g} above {self.limit:g}")

def no_zzz(request, view, config):
    return Rejection("no_zzz", "ZZZ is off limits") if request.symbol == "ZZZ" else None

class NotARule:
    pass
"""


@pytest.fixture
def rules(distribution):
    return distribution(
        "acme-rules",
        "1.0.0",
        modules={"acme_rules": RULES_MODULE},
        entry_points={
            "ml4t.backtest.risk_rules": {
                "max_quantity": "acme_rules:MaxQuantity",
                "no_zzz": "acme_rules:no_zzz",
                "not_a_rule": "acme_rules:NotARule",
            }
        },
    )


def _risk(*rules: dict) -> dict:
    return {"risk": {"rules": list(rules)}}


def test_params_become_the_rule_and_it_runs_after_the_builtin_rules(rules):
    config = load_config(
        _risk({"rule": "max_quantity", "params": {"limit": 500, "symbols": ["AAA"]}})
    )
    (entry,) = config.risk.rules
    assert (entry.rule, entry.params) == ("max_quantity", {"limit": 500, "symbols": ["AAA"]})
    manager = RiskManager(config.risk)
    assert manager.rules[: len(RULES)] == RULES
    rule = manager.rules[-1]
    assert type(rule).__name__ == "MaxQuantity"
    assert (rule.limit, rule.symbols) == (500.0, frozenset({"AAA"}))
    # a manager given its own rules still runs the config's after them
    assert RiskManager(config.risk, rules=()).rules == (rule,)


def test_the_rule_is_a_pure_function_of_request_view_and_config(rules):
    rule = load_config(_risk({"rule": "max_quantity", "params": {"limit": 500}})).risk.rules[0]
    built = rule.build()

    def order(quantity: float) -> SubmitOrder:
        return SubmitOrder(
            ts_event=0,
            ts_init=0,
            order_id="o",
            strategy_id="s",
            symbol="AAA",
            side=OrderSide.BUY,
            quantity=quantity,
        )

    assert built(order(500), RiskView(), RiskConfig()) is None
    assert built(order(501), RiskView(), RiskConfig()) == ("max_quantity", "501 above 500")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"rule": "max_quantity", "params": {"limit": -1}}],
            r"bad params for risk rule 'max_quantity': Expected `float` > 0.* - at "
            r"`params\.limit` - at `\$\.risk\.rules\[0\]`",
        ),
        (
            [{"rule": "no_zzz"}, {"rule": "max_quantity", "params": {"limit": 1, "bogus": 2}}],
            r"unknown field `bogus` - at `params` - at `\$\.risk\.rules\[1\]`",
        ),
        (
            [{"rule": "max_quantity"}],
            r"missing required field `limit` - at `params` - at `\$\.risk\.rules\[0\]`",
        ),
        (
            [{"rule": "max_quantity", "params": {"limit": "ten"}}],
            r"Expected `float`, got `str` - at `params\.limit`",
        ),
        (
            [{"rule": "nope"}],
            r"no risk rule plugin named 'nope' is installed .*installed: max_quantity, "
            r"no_zzz, not_a_rule.* - at `\$\.risk\.rules\[0\]`",
        ),
        (
            [{"rule": "no_zzz", "params": {"x": 1}}],
            r"risk rule 'no_zzz' is a function and takes no params \(got \['x'\]\)",
        ),
        ([{"rule": "not_a_rule"}], r"register a RiskRule subclass"),
        ([{"params": {"limit": 1}}], r"missing required field `rule` - at `\$\.risk\.rules\[0\]`"),
    ],
)
def test_bad_rules_fail_at_config_load_with_the_key_path(rules, entries, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_risk(*entries))


def test_a_config_file_with_rules_round_trips_and_validate_refuses_an_uninstalled_one(
    rules, tmp_path, capsys
):
    config = load_config(
        _risk({"rule": "max_quantity", "params": {"limit": 5}}, {"rule": "no_zzz"})
    )
    again = load_config(yaml.safe_load(dump_config(config)))
    assert again.risk == config.risk
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_risk({"rule": "not_installed"})))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no risk rule plugin named 'not_installed' is installed" in err
    assert "$.risk.rules[0]" in err


def test_a_backtest_rejects_by_the_plugin_rule_with_its_params(rules):
    bars = {"AAA": [flat(10.0)] * 4, "ZZZ": [flat(10.0)] * 4}
    steps = {
        0: lambda s: [s.buy("AAA", 600), s.buy("AAA", 400), s.buy("ZZZ", 10)],
        1: lambda s: s.buy("AAA", 500),
    }
    risk = {"rules": [{"rule": "max_quantity", "params": {"limit": 500}}, {"rule": "no_zzz"}]}
    results, strategy, _ = run_script(bars, steps, risk=risk)
    assert [(r.symbol, r.rule, r.reason) for r in strategy.rejections] == [
        ("AAA", "max_quantity", "600 above 500"),
        ("ZZZ", "no_zzz", "ZZZ is off limits"),
    ]
    assert results.fills["quantity"].to_list() == [400.0, 500.0]
