"""Credentials reach the adapters from the environment or an owner-only file, as one
masked ``credentials`` argument, and appear in no output: not on stdout or stderr, not in
a log record, the journal, the results or an error message."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml

from ml4t.backtest import ConfigError, load_config
from ml4t.backtest.cli import main
from ml4t.backtest.live import Credentials, load_credentials
from tests.live.conftest import live_config

KEY = "AKXYZ-key-id-4711"
SECRET = "s3cr3t-Value-0815-do-not-leak"

ACME = """
import logging
from ml4t.backtest import ML4TError
from ml4t.backtest.live import ScriptedBars, SimulatedExecution

log = logging.getLogger("acme_live")
SEEN = {}

class Bars(ScriptedBars):
    def __init__(self, *, credentials, refuse=False, **params):
        super().__init__(**params)
        SEEN["data"] = credentials
        self.key, self.refuse = credentials["api_key"], refuse

    async def connect(self):
        log.warning("connecting as %s", self.key)  # a careless adapter
        if self.refuse:
            raise ML4TError(f"the venue refused key {self.key}")
        await super().connect()

class Venue(SimulatedExecution):
    def __init__(self, *, credentials, paper=False, **params):
        super().__init__()
        SEEN["broker"] = (credentials, paper)
"""


@pytest.fixture
def acme(distribution):
    distribution(
        "acme-live",
        "1.0",
        modules={"acme_live": ACME},
        entry_points={
            "ml4t.backtest.live_data": {"acme": "acme_live:Bars"},
            "ml4t.backtest.live_brokers": {"acme": "acme_live:Venue"},
        },
    )
    import acme_live

    return acme_live


def _config(scripted_bars: Path, tmp_path: Path, **data_params) -> Path:
    secrets = tmp_path / "alpaca.yaml"
    secrets.write_text(yaml.safe_dump({"secret_key": SECRET}))
    secrets.chmod(0o600)
    config = live_config(scripted_bars, tmp_path / "runs")
    config["live"]["data"] = {
        "adapter": "acme",
        "params": {"path": str(scripted_bars), "interval": 0.005, **data_params},
    }
    config["live"]["broker"] = {"adapter": "acme"}
    config["live"]["credentials_env"] = {"api_key": "ACME_KEY_ID"}
    config["live"]["credentials_file"] = str(secrets)
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _every_file(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_credentials_reach_the_adapters_and_no_output(
    acme, scripted_bars, tmp_path, monkeypatch, capsys, caplog
):
    monkeypatch.setenv("ACME_KEY_ID", KEY)
    config = _config(scripted_bars, tmp_path)
    assert main(["live", str(config), "--paper", "--run-id", "p", "--no-view"]) == 0
    data = acme.SEEN["data"]
    broker, paper = acme.SEEN["broker"]
    assert dict(data) == dict(broker) == {"api_key": KEY, "secret_key": SECRET}
    assert paper is True  # --paper: the venue's paper endpoint
    assert repr(data) == str(data) == "Credentials(api_key=***, secret_key=***)"
    out, err = capsys.readouterr()
    assert "live (paper) p: completed" in out
    assert "connecting as ***" in caplog.text  # the adapter's own log line, scrubbed
    outputs = out + err + caplog.text
    written = _every_file(tmp_path / "runs")
    assert b"ACME_KEY_ID" in written  # the config names the variable...
    for value in (KEY, SECRET):
        assert value not in outputs
        assert value.encode() not in written  # ...never its value


def test_an_error_that_quotes_a_credential_is_printed_without_it(
    acme, scripted_bars, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ACME_KEY_ID", KEY)
    config = _config(scripted_bars, tmp_path, refuse=True)
    assert main(["live", str(config), "--paper", "--run-id", "e", "--no-view"]) == 1
    err = capsys.readouterr().err
    assert "the venue refused key ***" in err
    assert KEY not in err and SECRET not in err
    assert KEY.encode() not in _every_file(tmp_path / "runs")


def test_missing_variables_and_a_readable_file_are_refused_without_their_values(tmp_path):
    with pytest.raises(ConfigError, match="ACME_KEY_ID are not set"):
        load_credentials({"api_key": "ACME_KEY_ID"}, None, environ={})
    secrets = tmp_path / "keys.yaml"
    secrets.write_text(f"secret_key: {SECRET}\n")
    secrets.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by others.*chmod 600") as refused:
        load_credentials({}, str(secrets), environ={})
    assert SECRET not in str(refused.value)
    secrets.chmod(0o600)
    secrets.write_text(f"secret_key: [{SECRET}\n")  # not YAML
    with pytest.raises(ConfigError, match="not a YAML map") as broken:
        load_credentials({}, str(secrets), environ={})
    assert SECRET not in str(broken.value)


def test_credentials_hide_their_values_and_cannot_be_pickled():
    creds = Credentials({"api_key": KEY})
    assert KEY not in repr(creds) and KEY not in f"{creds}"
    assert creds.redact(f"url?key={KEY}&x=1") == "url?key=***&x=1"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(creds)
    with pytest.raises(KeyError, match="no credential named 'secret'"):
        creds["secret"]


def test_a_credential_in_params_is_refused_as_the_config_is_read(tmp_path):
    config = live_config(tmp_path / "bars.parquet", tmp_path / "runs")
    config["live"]["broker"] = {"adapter": "acme", "params": {"secret_key": "x"}}
    with pytest.raises(ConfigError, match=r"params.secret_key: this looks like a credential"):
        load_config(config)
