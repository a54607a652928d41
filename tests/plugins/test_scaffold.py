"""``ml4t new plugin``: the package it writes installs with pip, passes its own tests,
is listed by ``ml4t plugins`` and runs named in a config file through ``ml4t run``; the
command refuses to overwrite work and says why.

The packages are installed the way a user's pip would (a wheel built by their build
backend, ``--no-deps`` as ml4t is already importable), into a ``--target`` directory put
on ``PYTHONPATH`` of the subprocesses that use them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

import ml4t.backtest
from ml4t.backtest.cli import main
from ml4t.backtest.scaffold import KINDS, Scaffold, new_plugin

ML4T_ROOT = Path(ml4t.backtest.__file__).parents[2]  # the tree under test


def _run(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Scaffold], dict[str, str]]:
    """One plugin of every kind, written by ``ml4t new plugin`` and pip-installed."""
    root = tmp_path_factory.mktemp("new-plugins")
    made = {kind: new_plugin(f"acme-{kind}", kind=kind, directory=root) for kind in KINDS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    backend = root / "build-backend"
    if importlib.util.find_spec("hatchling") is None:  # the templates' build backend
        fetched = _run(
            "-m", "pip", "install", "-q", "--target", str(backend), "hatchling", env=env, cwd=root
        )
        assert fetched.returncode == 0, fetched.stderr
    site = root / "site"
    install = _run(
        "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
        *(str(m.root) for m in made.values()),
        env={**env, "PYTHONPATH": str(backend)},
        cwd=root,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    paths = [str(site), str(ML4T_ROOT), env.get("PYTHONPATH", "")]
    return made, {**env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.mark.slow
def test_every_generated_plugin_passes_its_own_tests_once_installed(generated):
    made, env = generated
    tests = [m.root / "tests" for m in made.values()]
    expected = sum(p.read_text().count("\ndef test_") for t in tests for p in t.glob("test_*.py"))
    assert expected >= 3 * len(KINDS)
    result = _run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
        *map(str, tests), env=env, cwd=tests[0].parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{expected} passed" in result.stdout


@pytest.mark.slow
def test_ml4t_plugins_lists_each_generated_plugin_with_its_parameters(generated):
    made, env = generated
    result = _run("-m", "ml4t.backtest.cli", "plugins", "--json", env=env, cwd=ML4T_ROOT)
    listed = {(e["kind"], e["name"]): e for e in json.loads(result.stdout)}
    for kind, scaffold in made.items():
        entry = listed[(KINDS[kind], scaffold.name)]
        assert entry["package"] == scaffold.dist and entry["error"] is None, entry
        assert entry["target"] == f"{scaffold.module}:{scaffold.cls}"
    params = {
        kind: [p["name"] for p in listed[(KINDS[kind], m.name)]["params"]]
        for kind, m in made.items()
    }
    assert params["commission"] == ["per_share", "minimum"]
    assert params["risk_rule"] == ["limit"]
    assert params["strategy"] == ["quantity", "hold_bars"]


STRATEGY = """
from ml4t.backtest import Strategy

class Script(Strategy):
    def __init__(self, name=None, *, params=None):
        super().__init__(name, params=params)
        self.bars = 0

    def on_bar(self, bar):
        self.bars += 1
        if self.bars == 1:
            self.buy(bar.symbol, 300)
        elif self.bars == 2:
            self.buy(bar.symbol, 600)  # above the rule's limit of 500, within the cash
        elif self.bars == 3:
            self.sell(bar.symbol, 300)
"""


@pytest.mark.slow
def test_a_run_config_file_naming_generated_plugins_runs_with_ml4t_run(generated, tmp_path):
    made, env = generated
    opens = [100.0, 101.0, 102.0, 103.0, 104.0]
    bars = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                pl.datetime(2024, 1, 2, 15, time_zone="UTC"),
                pl.datetime(2024, 1, 2, 15, 4, time_zone="UTC"),
                "1m",
                eager=True,
            ),
            "symbol": ["XYZ"] * 5,
            "open": opens,
            "high": [o + 1 for o in opens],
            "low": [o - 1 for o in opens],
            "close": [o + 0.5 for o in opens],
            "volume": [1e6] * 5,
        }
    )
    bars.write_parquet(tmp_path / "bars.parquet")
    (tmp_path / "script.py").write_text(textwrap.dedent(STRATEGY))
    c, s, r = (made[k].name for k in ("commission", "slippage", "risk_rule"))
    (tmp_path / "run.yaml").write_text(
        textwrap.dedent(
            f"""
            data:
              asset: {{path: bars.parquet}}
            strategy: {{path: script.py, class: Script}}
            execution:
              commission: {{model: {c}, params: {{per_share: 0.01, minimum: 1.0}}}}
              slippage: {{model: {s}, params: {{ticks: 2}}}}
            risk:
              rules:
                - rule: {r}
                  params: {{limit: 500}}
            reporting: {{output_dir: out}}
            """
        )
    )
    result = _run("-m", "ml4t.backtest.cli", "run", "run.yaml", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    fills = pl.read_parquet(tmp_path / "out" / "fills.parquet")
    # the buy fills at bar 1's open + 2 ticks, the sell at bar 3's open - 2 ticks
    assert fills["price"].to_list() == pytest.approx([101.02, 102.98])
    assert fills["commission"].to_list() == pytest.approx([3.0, 3.0])  # 300 x 0.01
    orders = pl.read_parquet(tmp_path / "out" / "orders.parquet")
    rejected = orders.filter(pl.col("status") == "rejected")
    assert rejected["quantity"].to_list() == [600.0]
    assert rejected["reject_rule"].to_list() == [r]


@pytest.mark.slow
def test_generated_packages_are_lint_clean_under_their_own_ruff_config(generated):
    made, env = generated
    for scaffold in made.values():
        for args in (("check", "."), ("format", "--check", ".")):
            result = _run("-m", "ruff", *args, env=env, cwd=scaffold.root)
            assert result.returncode == 0, f"{scaffold.root}: {result.stdout}{result.stderr}"


# ------------------------------------------------------------------ the command itself


def test_ml4t_new_plugin_writes_the_package_and_says_what_to_do_next(tmp_path, capsys):
    assert main(["new", "plugin", "acme-fees", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    root = tmp_path / "ml4t-acme-fees"
    assert f"created {root}: the commission plugin acme_fees" in out
    assert "(ml4t_acme_fees:AcmeFeesCommission, package ml4t-acme-fees)" in out
    for line in ("pyproject.toml", "src/ml4t_acme_fees/__init__.py", "tests/conftest.py"):
        assert f"  {line}\n" in out
    assert "in a run's config: execution.commission.model: acme_fees" in out
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points."ml4t.backtest.commission"]' in pyproject
    assert 'acme_fees = "ml4t_acme_fees:AcmeFeesCommission"' in pyproject
    assert (
        "class AcmeFeesCommission(CommissionModel"
        in (root / "src" / "ml4t_acme_fees" / "__init__.py").read_text()
    )
    assert "{{" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file())


def test_an_existing_package_directory_is_refused_unless_forced(tmp_path, capsys):
    assert main(["new", "plugin", "acme", "--dir", str(tmp_path)]) == 0
    module = tmp_path / "ml4t-acme" / "src" / "ml4t_acme" / "__init__.py"
    module.write_text("# my edits\n")
    (tmp_path / "ml4t-acme" / "NOTES.md").write_text("mine\n")
    capsys.readouterr()
    assert main(["new", "plugin", "acme", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ml4t: ") and err.count("\n") == 1
    assert "already exists and is not empty; nothing was written" in err and "--force" in err
    assert module.read_text() == "# my edits\n"
    assert main(["new", "plugin", "acme", "--dir", str(tmp_path), "--force"]) == 0
    assert "class AcmeCommission" in module.read_text()
    assert (tmp_path / "ml4t-acme" / "NOTES.md").read_text() == "mine\n"  # left alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9lives"], "plugin name '9lives': use letters, digits"),
        (["acme", "--kind", "widget"], "no plugin template of kind 'widget'; kinds are commission"),
        (["percent"], "'percent' is a built-in commission model's"),
        (["Fixed_BPS", "--kind", "slippage"], "'fixed_bps' is a built-in slippage model's"),
    ],
)
def test_bad_names_and_kinds_are_one_line_errors_with_exit_2(tmp_path, capsys, args, message):
    assert main(["new", "plugin", *args, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_names_and_kinds_are_normalised(tmp_path):
    made = new_plugin("ML4T-Acme.Limits", kind="risk_rules", directory=tmp_path)
    assert (made.dist, made.module, made.name, made.cls, made.kind) == (
        "ml4t-acme-limits",
        "ml4t_acme_limits",
        "acme_limits",
        "AcmeLimitsRule",
        "risk_rule",
    )
    assert made.root == tmp_path / "ml4t-acme-limits"
