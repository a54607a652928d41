"""Credentials come only from the environment or a private file the config names, and
never appear anywhere else: not in a log line (at DEBUG, every library's), an exception,
a repr, the journal or a results file. A session with faults that make every path speak
(reconnects, re-authentication, refusals) is run with recognisable fake credentials, and
everything it left behind is searched for them."""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import anyio
import pytest
from alpaca_fakes import KEY_ID, SECRET
from alpaca_standin import start_standin
from live_session import FAST, live_graph, run
from ml4t_alpaca import (
    AlpacaConfig,
    AlpacaExecution,
    AlpacaMarketData,
    Credentials,
    CredentialsError,
    load_credentials,
)
from strategies import Momentum

from ml4t.backtest import Recorder, ReportingConfig, configure_logging
from ml4t.backtest.live import ConnectionLost, VenueError


class Everything(logging.Handler):
    """Every record of every logger, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.__dict__!r}")


@pytest.fixture
def every_log():
    handler = Everything()
    root, ml4t = logging.getLogger(), logging.getLogger("ml4t")
    saved = (root.level, ml4t.level, list(ml4t.handlers), ml4t.propagate)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    stream = io.StringIO()
    configure_logging("debug", stream=stream)  # ml4t's own lines, as a user would see them
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        for added in list(ml4t.handlers):
            ml4t.removeHandler(added)
        root_level, ml4t_level, handlers, ml4t.propagate = saved
        root.setLevel(root_level)
        ml4t.setLevel(ml4t_level)  # setLevel, not .level: it clears the loggers' caches
        for kept in handlers:
            ml4t.addHandler(kept)


def _leaks(text: str) -> list[str]:
    return [name for name, value in (("key id", KEY_ID), ("secret", SECRET)) if value in text]


def test_credentials_appear_in_no_log_exception_repr_journal_or_result(
    bars, tmp_path, every_log, monkeypatch
):
    handler, stream = every_log
    standin = start_standin(bars, key_id=KEY_ID, secret_key=SECRET)
    texts: list[str] = []
    try:
        monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)  # the credentials' only source
        monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
        credentials = load_credentials(AlpacaConfig())
        standin.scenario.drop_submit_answers = 1
        standin.scenario.rate_limited = 2
        graph = live_graph(standin, [Momentum("m")], credentials)
        graph.runtime.add(
            Recorder(ReportingConfig(output_dir=str(tmp_path / "results"), journal=True))
        )

        async def faults(i: int) -> None:
            if i == 3:
                await graph.execution.drop_stream()  # reconnect: authenticate again
                await graph.market.drop_stream()
                await anyio.sleep(0.3)

        run(graph, standin, 8, between=faults, linger=0.3)
        assert graph.broker.reconnects >= 2 and graph.market.backfilled >= 0
        texts += [repr(credentials), str(credentials), repr(graph.execution.config)]
        texts += [repr(graph.execution), repr(graph.execution._rest.trading)]
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(credentials)
        texts += _refusals(standin, tmp_path)
    finally:
        standin.stop()
    written = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert any(p.name.startswith("journal") for p in written)
    for path in written:
        assert not _leaks(path.read_bytes().decode("latin-1")), f"in {path}"
    # the logs did speak: urllib3's requests at DEBUG, ml4t's reconnects and refusals
    assert any(line.startswith("urllib3") for line in handler.lines)
    for event in ("connection_lost", "stream_lost", "stream_restored", "rate_limited"):
        assert event in stream.getvalue(), event
    for line in [*handler.lines, stream.getvalue(), *texts]:
        assert not _leaks(line), line[:300]


def _refusals(standin, tmp_path: Path) -> list[str]:
    """The messages of every credential error there is, with the fakes in play."""
    texts = []
    wrong = Credentials(KEY_ID, SECRET + "x")

    async def refused() -> None:
        client = AlpacaExecution(standin.config(session="wrong", backoff=FAST), credentials=wrong)
        with pytest.raises(VenueError) as stream_error:
            await client.connect(lambda event: None)
        texts.append(str(stream_error.value))
        with pytest.raises(VenueError) as rest_error:
            await client.account()
        texts.append(str(rest_error.value))
        data = AlpacaMarketData(standin.config(session="wrong"), symbols=["AAA"], credentials=wrong)
        with pytest.raises((VenueError, ConnectionLost)) as data_error:
            await data.connect()
        texts.append(str(data_error.value))
        await client.close()
        await data.close()

    anyio.run(refused)
    file = tmp_path / "alpaca.env"
    file.write_text(f"APCA_API_KEY_ID={KEY_ID}\nAPCA_API_SECRET_KEY={SECRET}\n")
    file.chmod(0o644)
    for config, environ in (
        (AlpacaConfig(credentials_file=str(file)), {}),
        (AlpacaConfig(), {"APCA_API_KEY_ID": KEY_ID}),
    ):
        with pytest.raises(CredentialsError) as error:
            load_credentials(config, environ)
        texts.append(str(error.value))
    file.write_text(f"APCA_API_KEY_ID={KEY_ID}\n{SECRET}\n")
    file.chmod(0o600)
    with pytest.raises(CredentialsError, match="line 2") as error:
        load_credentials(AlpacaConfig(credentials_file=str(file)))
    texts.append(str(error.value))
    return texts


def test_credentials_come_from_the_environment_or_a_private_file(tmp_path):
    env = {"APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET}
    from_env = load_credentials(AlpacaConfig(), env)
    assert (from_env.key_id, from_env.secret_key) == (KEY_ID, SECRET)
    named = load_credentials(AlpacaConfig(key_env="K", secret_env="S"), {"K": "a", "S": "b"})
    assert (named.key_id, named.secret_key) == ("a", "b")
    with pytest.raises(CredentialsError, match="APCA_API_SECRET_KEY not set"):
        load_credentials(AlpacaConfig(), {"APCA_API_KEY_ID": KEY_ID})
    file = tmp_path / "keys"
    file.write_text(
        f"# paper account\nexport APCA_API_KEY_ID={KEY_ID}\nAPCA_API_SECRET_KEY='{SECRET}'\n"
    )
    file.chmod(0o600)
    from_file = load_credentials(AlpacaConfig(credentials_file=str(file)), {})
    assert (from_file.key_id, from_file.secret_key) == (KEY_ID, SECRET)
    file.chmod(0o640)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(AlpacaConfig(credentials_file=str(file)))
    with pytest.raises(CredentialsError, match="cannot be read"):
        load_credentials(AlpacaConfig(credentials_file=str(tmp_path / "missing")))
    assert os.environ.get("APCA_API_KEY_ID") != KEY_ID  # the tests never leave them set
