"""ml4t adapters for Alpaca (https://alpaca.markets), on its official SDK, alpaca-py.

- :class:`AlpacaMarketData`: minute bars from Alpaca's market-data stream, as one
  ``MarketBatch`` per timestamp (known at the bar's end, as in a backtest), with warm-up
  from the REST bars endpoint and signals/context joined from files as of each batch;
- :class:`AlpacaExecution`: orders through the Trading API v2 and its trade-update
  stream, with deterministic, idempotent client order ids, account reads for
  reconciliation and resumption of earlier orders;
- :class:`AlpacaFeed` and :class:`AlpacaBroker`: the two as the run's feed and broker
  roles (entry points ``alpaca`` in ``ml4t.backtest.feeds`` and
  ``ml4t.backtest.brokers``);
- :mod:`ml4t_alpaca.live`: the factories ``ml4t live`` calls for ``live.data`` and
  ``live.broker`` ``{adapter: alpaca}`` (entry points ``alpaca`` in
  ``ml4t.backtest.live_data`` and ``ml4t.backtest.live_brokers``);
- :class:`AlpacaConfig`: endpoints, session, timings; credentials only from the
  environment or a file it names (:mod:`ml4t_alpaca.credentials`).

The adapters need the asyncio backend (their streams run on asyncio tasks). The
README has the setup, the environment variables and a manual smoke test with a paper
account.
"""

from __future__ import annotations

import warnings

# alpaca-py's stream modules import websockets.legacy (deprecated since websockets 14);
# the adapters do not use them (see ml4t_alpaca._link), so that one warning is silenced
# here, once, at import, rather than in every application that runs with -W error
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    import alpaca.data.live
    import alpaca.trading  # noqa: F401

from ml4t_alpaca.config import CONFIG_ENV, AlpacaConfig, load_alpaca_config
from ml4t_alpaca.credentials import Credentials, CredentialsError, load_credentials
from ml4t_alpaca.execution import AlpacaExecution
from ml4t_alpaca.market_data import AlpacaMarketData
from ml4t_alpaca.roles import AlpacaBroker, AlpacaFeed

__all__ = [
    "CONFIG_ENV",
    "AlpacaBroker",
    "AlpacaConfig",
    "AlpacaExecution",
    "AlpacaFeed",
    "AlpacaMarketData",
    "Credentials",
    "CredentialsError",
    "load_alpaca_config",
    "load_credentials",
]
