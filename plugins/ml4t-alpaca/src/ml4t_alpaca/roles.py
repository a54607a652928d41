"""The feed and broker roles a run's config names: ``plugins: {feed: alpaca, broker:
alpaca}``.

The engine builds a feed plugin as ``Feed(config.data)`` and a broker plugin as
``Broker(config.execution)``; the Alpaca settings (endpoints, session, credentials'
source) come from the YAML file ``ML4T_ALPACA_CONFIG`` names (defaults: the paper
endpoints, credentials from ``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY``). In Python,
build :class:`AlpacaFeed`/:class:`AlpacaBroker` with an :class:`AlpacaConfig` instead,
or the adapters' own components around :class:`AlpacaMarketData`/:class:`AlpacaExecution`.

- :class:`AlpacaFeed` is a :class:`~ml4t.backtest.live.FeedAdapter` with the ``Feed``
  role's members: the universe is ``data.asset.symbols`` (required), ``first_ts`` and
  ``last_ts`` are unknown (live), ``prepare`` reads and checks the signal and context
  files, and the handshake it publishes names the universe, columns and context.
- :class:`AlpacaBroker` is a :class:`~ml4t.backtest.live.BrokerAdapter` over
  :class:`AlpacaExecution`, reconciling as ``on_mismatch`` says (default ``adopt``: the
  account's cash and positions are the session's starting state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ml4t.backtest import BrokerConfig, FeedConfig, SessionStarted, VenueOrder
from ml4t.backtest.live import BrokerAdapter, FeedAdapter
from ml4t_alpaca.config import AlpacaConfig, load_alpaca_config
from ml4t_alpaca.credentials import Credentials
from ml4t_alpaca.execution import AlpacaExecution
from ml4t_alpaca.market_data import AlpacaMarketData

__all__ = ["AlpacaBroker", "AlpacaFeed"]


class AlpacaFeed(FeedAdapter):
    """Alpaca's minute bars as the run's feed (``plugins: {feed: alpaca}``)."""

    def __init__(
        self,
        data: FeedConfig | None = None,
        *,
        alpaca: AlpacaConfig | None = None,
        symbols: Sequence[str] | None = None,
        warmup: int = 0,
        session: SessionStarted | None = None,
        credentials: Credentials | None = None,
        signal_data: object = None,
        context: object = None,
        name: str = "feed",
    ) -> None:
        data = data or FeedConfig()
        alpaca = alpaca or load_alpaca_config()
        universe = tuple(symbols if symbols is not None else data.asset.symbols or ())
        client = AlpacaMarketData(
            alpaca,
            symbols=universe,
            data=data,
            signal_data=signal_data,
            context=context,
            credentials=credentials,
        )
        super().__init__(
            client,
            symbols=universe,
            session=client.session_started(session),
            warmup=warmup,
            backoff=alpaca.backoff,
            venue=alpaca.venue,
            name=name,
        )
        self.market_data = client
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._prepared = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.market_data.columns

    def prepare(self) -> None:
        """Read and check the signal and context files (before anything runs)."""
        if not self._prepared:
            self.market_data.joiner.prepare(self.symbols)
            self.market_data._prepared = True
            self._prepared = True


class AlpacaBroker(BrokerAdapter):
    """Alpaca's Trading API as the run's broker (``plugins: {broker: alpaca}``)."""

    def __init__(
        self,
        execution: BrokerConfig | None = None,
        *,
        alpaca: AlpacaConfig | None = None,
        credentials: Credentials | None = None,
        expected_positions: Mapping[str, float] | None = None,
        expected_orders: Sequence[VenueOrder] = (),
        expected_cash: float | None = None,
        name: str = "broker",
        **kwargs: Any,
    ) -> None:
        alpaca = alpaca or load_alpaca_config()
        client = AlpacaExecution(alpaca, credentials=credentials)
        super().__init__(
            client,
            expected_positions=expected_positions,
            expected_orders=expected_orders,
            expected_cash=expected_cash,
            on_mismatch=kwargs.pop("on_mismatch", alpaca.on_mismatch),
            backoff=kwargs.pop("backoff", alpaca.backoff),
            venue=alpaca.venue,
            name=name,
        )
        if kwargs:
            raise TypeError(f"AlpacaBroker got unexpected arguments {sorted(kwargs)}")
        self.execution_config = execution
        self.alpaca = client
