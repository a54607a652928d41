"""Every type a plugin author needs is in the public API: ``ml4t.backtest.__all__`` and
the documented modules. The in-repo plugins and every ``ml4t new plugin`` template are
the proof: they import nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ml4t.backtest as api
from ml4t.backtest import plugins, protocols, risk
from ml4t.backtest.scaffold import KINDS, new_plugin

ROOT = Path(__file__).parents[2]
DOCUMENTED = ("topics", "clock", "testing", "live", "plugins", "protocols", "risk")
"""The modules docs/plugins.md names as public besides ``ml4t.backtest`` itself."""


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("Rejection", risk.Rejection),
        ("RiskRule", risk.RiskRule),
        ("RiskRuleConfig", risk.RiskRuleConfig),
        ("RiskView", risk.RiskView),
        ("RiskConfig", risk.RiskConfig),
        ("RecorderRole", protocols.RecorderRole),
        ("Feed", protocols.Feed),
        ("Broker", protocols.Broker),
        ("PluginError", plugins.PluginError),
    ],
)
def test_a_plugin_authors_types_are_exported_from_the_package(name, home):
    assert name in api.__all__
    assert getattr(api, name) is home


def _violations(path: Path) -> list[str]:
    """The ml4t.backtest names ``path`` imports that are neither exported nor in a
    documented module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules, names = [node.module], [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [alias.name for alias in node.names], []
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[:2] != ["ml4t", "backtest"]:
                continue
            if len(parts) > 2 and parts[2] not in DOCUMENTED:
                found.append(f"{path}: {module}")
            elif len(parts) == 2:
                public = set(api.__all__) | set(DOCUMENTED)
                found += [f"{path}: ml4t.backtest.{n}" for n in names if n not in public]
    return found


def test_in_repo_plugins_and_every_template_use_only_the_public_api(tmp_path):
    sources = sorted((ROOT / "plugins").glob("*/src/**/*.py"))
    sources += sorted((ROOT / "plugins").glob("*/tests/**/*.py"))
    for kind in KINDS:
        made = new_plugin(f"probe-{kind}", kind=kind, directory=tmp_path)
        sources += [made.root / f for f in made.files if f.suffix == ".py"]
    assert len(sources) > 20  # the plugins and 7 templates x 3 files were all read
    violations = [v for path in sources for v in _violations(path)]
    assert not violations, "imports outside the public API:\n" + "\n".join(violations)


def test_the_documented_modules_are_the_ones_docs_plugins_md_names():
    text = (ROOT / "docs" / "plugins.md").read_text()
    for module in DOCUMENTED:
        assert f"`ml4t.backtest.{module}`" in text, module
