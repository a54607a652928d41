"""``ml4t plugins`` lists the built-in models, rules and roles (marked built-in) with
their parameters, types and defaults, next to the installed plugins, kind by kind."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import msgspec
import msgspec.inspect as mi
import pytest
from msgspec import Meta

from ml4t.backtest._catalog import params_of, type_text
from ml4t.backtest.cli import main
from ml4t.backtest.plugins import CONFIG_KEYS, GROUPS, Param, catalog

FLAT = """
from typing import Annotated
from msgspec import Meta
from ml4t.backtest import CommissionModel, RiskRule, Rejection

class Flat(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fee: Annotated[float, Meta(ge=0)] = 2.0
    currency: str

    def commission(self, quantity, price, filled, notional, charged):
        return self.fee if filled == 0 else 0.0

class NoOdd(RiskRule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lot: Annotated[int, Meta(ge=1)] = 100

    def check(self, request, view, config):
        return None if request.quantity % self.lot == 0 else Rejection("no_odd", "odd lot")
"""


@pytest.fixture
def acme(distribution):
    return distribution(
        "acme-costs",
        "2.0.1",
        modules={"acme_costs": FLAT, "acme_broken_dep": "import not_installed_anywhere\n"},
        entry_points={
            "ml4t.backtest.commission": {
                "flat": "acme_costs:Flat",
                "broken": "acme_broken_dep:Model",
            },
            "ml4t.backtest.risk_rules": {"no_odd": "acme_costs:NoOdd"},
        },
    )


def _by_name(infos):
    return {info.name: info for info in infos}


def test_builtin_commission_models_are_listed_with_parameter_types_and_defaults():
    models = _by_name(catalog(["commission"], load=False))
    per_share = models["per_share"]
    assert per_share.builtin and per_share.package == "ml4t-backtest"
    assert per_share.usage == "execution.commission.model: per_share"
    assert per_share.target == "ml4t.backtest.execution.costs:PerShareCommission"
    assert per_share.params == (
        Param(name="cost_per_share", type="float >= 0", default="0.005"),
        Param(name="minimum", type="float >= 0", default="0.0"),
        Param(name="maximum", type="float >= 0 | None", default="null"),
    )
    assert {"none", "per_share", "per_order", "percent"} <= set(models)


def test_every_kind_lists_its_builtins_first_then_installed_plugins(acme):
    infos = catalog()
    kinds = [info.kind for info in infos]
    assert kinds == sorted(kinds, key=list(GROUPS).index)  # grouped kind by kind
    commission = [i for i in infos if i.kind == "commission"]
    flags = [i.builtin for i in commission]
    assert flags == sorted(flags, reverse=True) and flags.count(True) == 4  # built-ins first
    flat = _by_name(commission)["flat"]
    assert (flat.package, flat.version, flat.usage) == (
        "acme-costs",
        "2.0.1",
        "execution.commission.model: flat",
    )
    # a plugin's parameters come from its Struct, a required one without a default
    assert flat.params == (
        Param(name="fee", type="float >= 0", default="2.0"),
        Param(name="currency", type="str", default=None),
    )
    roles = {i.kind: i.name for i in infos if i.builtin and i.kind in ("feeds", "brokers")}
    assert roles == {"feeds": "ParquetFeed", "brokers": "SimulatedBroker"}


def test_builtin_risk_rules_show_the_risk_keys_that_set_them(acme):
    rules = _by_name(catalog(["risk_rules"]))
    assert [p.name for p in rules["max_position"].params] == [
        "max_position_shares",
        "max_position_notional",
        "max_position_pct",
    ]
    assert rules["drawdown"].params == (
        Param(name="max_drawdown", type="float in (0, 1] | None", default="null"),
    )
    assert rules["valid"].usage == "always on" and rules["valid"].params == ()
    no_odd = rules["no_odd"]
    assert not no_odd.builtin and no_odd.usage == CONFIG_KEYS["risk_rules"].format(name="no_odd")
    assert no_odd.params == (Param(name="lot", type="int >= 1", default="100"),)


def test_ml4t_plugins_prints_builtins_marked_next_to_plugins_per_kind(acme, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per parameter, nothing folded
    assert main(["plugins", "--kind", "commission", "--kind", "strategies"]) == 1  # broken
    out = capsys.readouterr().out
    assert "commission: entry-point group ml4t.backtest.commission" in out
    assert "cost_per_share: float >= 0 = 0.005" in out
    assert "currency: str (required)" in out
    assert out.count("built-in") == 4
    assert "acme-costs 2.0.1" in out
    assert "none built in or installed: strategies (ml4t.strategies)" in out
    assert "error: commission plugin 'broken' (from package acme-costs 2.0.1" in out


def test_ml4t_plugins_json_is_one_array_with_params_and_the_exit_status(acme, capsys):
    assert main(["plugins", "--json", "--kind", "risk_rules"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {entry["kind"] for entry in listed} == {"risk_rules"}
    (no_odd,) = [entry for entry in listed if entry["name"] == "no_odd"]
    assert no_odd["builtin"] is False and no_odd["error"] is None
    assert no_odd["params"] == [{"name": "lot", "type": "int >= 1", "default": "100"}]
    assert main(["plugins", "--json", "--kind", "commission"]) == 1
    broken = [e for e in json.loads(capsys.readouterr().out) if e["name"] == "broken"]
    assert "ModuleNotFoundError" in broken[0]["error"]


def test_without_the_import_check_plugin_params_are_unknown(acme, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["plugins", "--no-check", "--kind", "commission"]) == 0  # nothing imported
    out = capsys.readouterr().out
    flat_row = next(line for line in out.splitlines() if " flat " in line)
    assert "?" in flat_row and "ok" not in flat_row


class _Shapes(msgspec.Struct, kw_only=True):
    fraction: Annotated[float, Meta(gt=0, le=1)] = 0.5
    side: Literal["long", "short"] = "long"
    names: tuple[str, ...] = ()
    pair: tuple[int, float] = (1, 2.0)
    limits: dict[str, float] = msgspec.field(default_factory=dict)
    cap: Annotated[float, Meta(lt=10)] | None = None


def test_types_read_as_a_reader_writes_them():
    fields = {f.name: f.type for f in mi.type_info(_Shapes).fields}  # type: ignore[union-attr]
    assert {name: type_text(t) for name, t in fields.items()} == {
        "fraction": "float in (0, 1]",
        "side": "'long' | 'short'",
        "names": "tuple[str, ...]",
        "pair": "tuple[int, float]",
        "limits": "dict[str, float]",
        "cap": "float < 10 | None",
    }
    assert [p.default for p in params_of(_Shapes)] == [
        "0.5",
        '"long"',
        "[]",
        "[1,2.0]",
        "{}",
        "null",
    ]
    assert params_of(len) == () and params_of(dict) == ()


def test_every_standard_rule_names_the_risk_keys_it_reads():
    from ml4t.backtest import RiskConfig
    from ml4t.backtest.risk.rules import KEYS, RULES

    assert set(KEYS) == set(RULES)
    fields = set(RiskConfig.__struct_fields__)
    assert all(set(keys) <= fields for keys in KEYS.values())
    listed = {key for keys in KEYS.values() for key in keys}
    # every limit a rule applies is listed under its rule (the rest tune every rule, or,
    # for the kill switch, stop trading altogether rather than refuse one order)
    assert fields - listed == {"market_price_buffer", "rules", "kill_switch"}
