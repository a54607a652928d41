"""The Alpaca adapters' configuration: endpoints, credentials' source, session, timings.

One frozen ``msgspec.Struct``; :func:`load_alpaca_config` reads it from a YAML file
(named by an argument or ``ML4T_ALPACA_CONFIG``) with every error naming its key. The
defaults are Alpaca's paper endpoints; ``paper: false`` switches the trading endpoints
to the live ones. Every URL can be overridden, which is how the tests point the adapters
at the local stand-in server:

```yaml
paper: true
feed: iex                      # the market-data feed: iex, sip or delayed_sip
session: my-run-2024-05-01     # client order id namespace: reuse it to resume a run
credentials_file: ~/.alpaca    # or leave unset: APCA_API_KEY_ID / APCA_API_SECRET_KEY
on_mismatch: adopt             # at start: adopt the account, warn, or fail on a difference
```

No credential is ever a config value: the config names where they are (the two
environment variables, or ``credentials_file``), see :mod:`ml4t_alpaca.credentials`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ml4t.backtest import ConfigError
from ml4t.backtest.live import Backoff

__all__ = ["CONFIG_ENV", "AlpacaConfig", "AlpacaTimeInForce", "load_alpaca_config"]

CONFIG_ENV = "ML4T_ALPACA_CONFIG"
"""The environment variable naming the YAML file the plugin's roles read."""

AlpacaTimeInForce = Literal["day", "gtc", "opg", "cls", "ioc", "fok"]

PAPER_TRADING = "https://paper-api.alpaca.markets"
LIVE_TRADING = "https://api.alpaca.markets"
DATA = "https://data.alpaca.markets"
DATA_STREAM = "wss://stream.data.alpaca.markets/v2"

Seconds = Annotated[float, Meta(gt=0)]
_SESSION = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


class AlpacaConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the adapters reach Alpaca and behave there.

    - ``paper``: the paper endpoints (default) or the live ones;
    - ``trading_url``, ``trading_stream_url``, ``data_url``, ``data_stream_url``: override
      the endpoints (a stand-in server, a proxy); unset: Alpaca's own;
    - ``feed``: the market-data feed (``iex`` is free; ``sip`` needs a subscription);
    - ``key_env``/``secret_env``: the environment variables holding the credentials, or
      ``credentials_file``: a file holding them (see :mod:`ml4t_alpaca.credentials`);
    - ``session``: the namespace of client order ids (letters, digits, ``.``, ``_``,
      ``-``; at most 40): a client order id is ``<prefix>:<session>:<strategy>:<order>``,
      so the same order of the same session is the same venue order, across reconnects
      and restarts. Give each run its own and reuse it to resume that run;
    - ``time_in_force``: our time in force -> Alpaca's, for those that differ from the
      identity (``{day: opg}`` sends DAY market orders to the opening auction);
    - ``grace``: seconds a minute's batch waits, after its first bar, for the other
      subscribed symbols' bars (a later minute's bar releases it at once);
    - ``request_timeout``, ``rate_limit_retries``: REST calls; a 429 waits its
      ``Retry-After`` (else the backoff) and is retried that many times;
    - ``heartbeat``/``heartbeat_timeout``: websocket ping interval and pong deadline;
    - ``backoff``: reconnects (a link that exhausts it fails the run);
    - ``on_mismatch``: what the broker role does at start when the account differs from
      what the graph expects (``adopt`` it as the starting state, ``warn``, ``fail``).
    """

    paper: bool = True
    trading_url: str | None = None
    trading_stream_url: str | None = None
    data_url: str = DATA
    data_stream_url: str | None = None
    feed: Literal["iex", "sip", "delayed_sip"] = "iex"
    key_env: Annotated[str, Meta(min_length=1)] = "APCA_API_KEY_ID"
    secret_env: Annotated[str, Meta(min_length=1)] = "APCA_API_SECRET_KEY"
    credentials_file: str | None = None
    session: str = "default"
    client_id_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,12}$")] = "ml4t"
    time_in_force: dict[str, AlpacaTimeInForce] = msgspec.field(default_factory=dict)
    grace: Seconds = 3.0
    request_timeout: Seconds = 10.0
    rate_limit_retries: Annotated[int, Meta(ge=0)] = 5
    heartbeat: Seconds = 10.0
    heartbeat_timeout: Seconds = 20.0
    backoff: Backoff = msgspec.field(
        default_factory=lambda: Backoff(initial=0.5, maximum=30.0, attempts=20)
    )
    on_mismatch: Literal["adopt", "warn", "fail"] = "adopt"
    venue: Annotated[str, Meta(min_length=1)] = "alpaca"

    def __post_init__(self) -> None:
        if not _SESSION.match(self.session):
            raise ConfigError(
                f"$.session: {self.session!r} is not a session name (1 to 40 letters, digits, "
                "'.', '_' or '-'); it becomes part of every client order id"
            )
        ours = {"day", "gtc", "ioc", "fok"}
        unknown = sorted(set(self.time_in_force) - ours)
        if unknown:
            raise ConfigError(
                f"$.time_in_force: {unknown} are not ml4t times in force; the keys are "
                f"{sorted(ours)} (the values Alpaca's: day, gtc, opg, cls, ioc, fok)"
            )

    @property
    def rest_url(self) -> str:
        """The trading REST base (without ``/v2``)."""
        url = self.trading_url or (PAPER_TRADING if self.paper else LIVE_TRADING)
        return url.rstrip("/")

    @property
    def stream_url(self) -> str:
        """The trade-updates websocket."""
        if self.trading_stream_url:
            return self.trading_stream_url
        return self.rest_url.replace("https://", "wss://", 1) + "/stream"

    @property
    def market_stream_url(self) -> str:
        """The market-data websocket of ``feed``."""
        if self.data_stream_url:
            return self.data_stream_url
        return f"{DATA_STREAM}/{self.feed}"

    def alpaca_tif(self, ours: str) -> AlpacaTimeInForce:
        """Alpaca's time in force for ours (``day``, ``gtc``, ``ioc``, ``fok``)."""
        mapped = self.time_in_force.get(ours)
        return mapped if mapped is not None else ours  # type: ignore[return-value]


def load_alpaca_config(path: str | Path | None = None) -> AlpacaConfig:
    """The config in ``path`` (None: the file ``ML4T_ALPACA_CONFIG`` names; neither: the
    defaults). A missing file, bad YAML, an unknown key or a bad value is a
    :class:`~ml4t.backtest.ConfigError` naming the file and the key."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or None
    if path is None:
        return AlpacaConfig()
    file = Path(path).expanduser()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"the Alpaca config {file} cannot be read: {exc.strerror}") from None
    try:
        return msgspec.yaml.decode(raw or b"{}", type=AlpacaConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"the Alpaca config {file}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"the Alpaca config {file} is not YAML: {exc}") from None
