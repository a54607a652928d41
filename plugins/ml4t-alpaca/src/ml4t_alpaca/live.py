"""The factories ``ml4t live`` calls for ``live.data: {adapter: alpaca}`` and
``live.broker: {adapter: alpaca}`` (entry points ``alpaca`` in ``ml4t.backtest.live_data``
and ``ml4t.backtest.live_brokers``).

``params`` are :class:`~ml4t_alpaca.AlpacaConfig`'s fields (``feed``, ``session``,
``paper``, ``grace``, the endpoint overrides...), checked as that struct checks them, so
an unknown or mistyped key is a one-line error naming ``$.live.<data|broker>.params``.
``--paper`` adds ``paper=True`` for the broker. The credentials arrive as the session's
``credentials=`` mapping when ``live.credentials_env`` or ``live.credentials_file``
names them (the names ``key_id`` and ``secret_key``); without it the adapters read
``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY`` (or the ``key_env``/``secret_env`` they name)
themselves, when they connect.

The market data is also given ``symbols=`` (``live.symbols``, the universe) and
``data=`` (the run's ``data`` section): its ``signal_data`` and ``context`` are joined
onto each minute as of its time, exactly as the backtest joins them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ml4t.backtest import ConfigError, FeedConfig
from ml4t_alpaca.config import AlpacaConfig
from ml4t_alpaca.credentials import Credentials
from ml4t_alpaca.execution import AlpacaExecution
from ml4t_alpaca.market_data import AlpacaMarketData

__all__ = ["execution", "market_data"]

KEY_ID, SECRET_KEY = "key_id", "secret_key"
"""The names ``live.credentials_env`` gives the two values: ``{key_id: APCA_API_KEY_ID,
secret_key: APCA_API_SECRET_KEY}``."""


def market_data(
    *,
    symbols: Sequence[str] = (),
    data: FeedConfig | None = None,
    credentials: Mapping[str, str] | None = None,
    **params: Any,
) -> AlpacaMarketData:
    """``live.data: {adapter: alpaca, params: {...}}``: Alpaca's minute bars of
    ``symbols`` (``live.symbols``; required), with ``data``'s signals and context."""
    config = _config("data", params)
    if not symbols:
        raise ConfigError(
            "$.live.symbols: the Alpaca market data needs the universe; list the symbols "
            "to trade in live.symbols"
        )
    return AlpacaMarketData(
        config, symbols=symbols, data=data, credentials=_credentials("data", credentials)
    )


def execution(*, credentials: Mapping[str, str] | None = None, **params: Any) -> AlpacaExecution:
    """``live.broker: {adapter: alpaca, params: {...}}``: orders through Alpaca's Trading
    API (its paper endpoint with ``paper=True``, which ``--paper`` passes)."""
    return AlpacaExecution(
        _config("broker", params), credentials=_credentials("broker", credentials)
    )


def _config(key: str, params: Mapping[str, Any]) -> AlpacaConfig:
    try:
        return msgspec.convert(dict(params), AlpacaConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"$.live.{key}.params: {exc}") from None


def _credentials(key: str, given: Mapping[str, str] | None) -> Credentials | None:
    """The session's credentials as the adapters' (None: they read the environment)."""
    if given is None:
        return None
    missing = [name for name in (KEY_ID, SECRET_KEY) if name not in given]
    if missing:
        raise ConfigError(
            f"$.live.{key}: the alpaca adapter needs the credentials {KEY_ID} and "
            f"{SECRET_KEY}; live.credentials_env (or the file) has no {' and no '.join(missing)}"
            f" (e.g. credentials_env: {{{KEY_ID}: APCA_API_KEY_ID, {SECRET_KEY}: "
            "APCA_API_SECRET_KEY}})"
        )
    return Credentials(given[KEY_ID], given[SECRET_KEY])
