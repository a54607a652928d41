"""Plugin discovery: entry points listed with their package and version; a plugin that
fails to import is reported by name and package while the others still load."""

from __future__ import annotations

import pytest

from ml4t.backtest.cli import main
from ml4t.backtest.plugins import GROUPS, PluginError, discover, load, load_all


@pytest.fixture
def installed(distribution) -> None:
    """Two third-party packages on sys.path: one good, one whose module cannot import."""
    good = """
        from ml4t.backtest import CommissionModel

        class Flat(CommissionModel, frozen=True, kw_only=True):
            fee: float = 2.0

            def commission(self, quantity, price, filled, notional, charged):
                return self.fee if filled == 0 else 0.0
        """
    distribution(
        "acme-good",
        "2.0.1",
        modules={"acme_good": good},
        entry_points={"ml4t.backtest.commission": {"flat": "acme_good:Flat"}},
    )
    distribution(
        "acme-broken",
        "1.2.3",
        modules={"acme_broken": "import acme_dependency_that_is_not_installed\n"},
        entry_points={
            "ml4t.backtest.commission": {"broken": "acme_broken:Model"},
            "ml4t.backtest.brokers": {"acme": "acme_broken:Broker"},
        },
    )


def test_discover_lists_plugins_with_package_and_version(installed):
    found = {(p.kind, p.name): p for p in discover()}
    flat = found[("commission", "flat")]
    assert (flat.package, flat.version, flat.target) == ("acme-good", "2.0.1", "acme_good:Flat")
    assert found[("brokers", "acme")].group == GROUPS["brokers"] == "ml4t.backtest.brokers"
    assert all(p.error is None for p in found.values())  # nothing imported without load=True


def test_a_plugin_that_fails_to_import_is_named_with_its_package_and_others_still_load(
    installed,
):
    found = {(p.kind, p.name): p for p in discover(load=True)}
    broken = found[("commission", "broken")]
    assert not broken.ok
    assert "commission plugin 'broken'" in broken.error
    assert "package acme-broken 1.2.3" in broken.error
    assert "ModuleNotFoundError" in broken.error and "acme_dependency_that_is_not_installed" in (
        broken.error
    )
    assert found[("commission", "flat")].ok

    loaded, errors = load_all("commission")
    assert loaded["flat"].__name__ == "Flat"
    assert [(e.name, e.package) for e in errors] == [("broken", "acme-broken")]

    with pytest.raises(
        PluginError, match=r"'broken' .*acme-broken 1\.2\.3.*failed to import"
    ) as info:
        load("commission", "broken")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_config_finds_a_commission_plugin_by_name(installed):
    from ml4t.backtest import CommissionConfig

    assert CommissionConfig(model="flat", params={"fee": 3.0}).build().fee == 3.0


def test_unknown_names_and_kinds_say_what_is_installed(installed):
    with pytest.raises(PluginError, match=r"no commission plugin named 'nope'.*installed: .*flat"):
        load("commission", "nope")
    with pytest.raises(PluginError, match="unknown plugin kind 'widgets'; kinds are"):
        load("widgets", "x")


def test_ml4t_plugins_lists_every_plugin_and_names_the_broken_one(installed, capsys):
    assert main(["plugins"]) == 1
    out = capsys.readouterr().out
    assert "flat" in out and "acme-good" in out and "2.0.1" in out
    assert "failed" in out
    assert "error: commission plugin 'broken' (from package acme-broken 1.2.3" in out
    assert main(["plugins", "--kind", "commission", "--no-check"]) == 0
