"""The REST side: alpaca-py's clients, run off the event loop, with timeouts, rate limits
and errors the adapters can act on.

alpaca-py's ``TradingClient`` and ``StockHistoricalDataClient`` are synchronous
(``requests``): each call runs on a worker thread. Two of their defaults are changed
here, explicitly: every request gets ``request_timeout`` (the SDK sets none, so a venue
that accepts a connection and never answers would hang the call forever), and the SDK's
own retry of a 429 (a fixed 3 s wait) is turned off so that :class:`Rest` honours the
venue's ``Retry-After`` instead.

What a call can end in:

- its result;
- :class:`RejectedByVenue` (a 4xx other than 401/429: a refused order, an unknown id),
  carrying the status, Alpaca's error code and message, for the caller to turn into an
  event;
- :class:`~ml4t.backtest.live.ConnectionLost` (no answer, a dropped connection, a 5xx,
  429s beyond ``rate_limit_retries``): the outcome is unknown and the call may be retried;
- :class:`~ml4t.backtest.live.VenueError` (401: the credentials were refused).

No message carries a credential: they travel only in request headers.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient
from requests.adapters import HTTPAdapter

from ml4t.backtest import ML4TError
from ml4t.backtest.live import ConnectionLost, VenueError
from ml4t_alpaca.config import AlpacaConfig
from ml4t_alpaca.credentials import Credentials

__all__ = ["RejectedByVenue", "Rest"]

T = TypeVar("T")

_NO_SDK_RETRY = [0]
"""No HTTP status is 0: the SDK's fixed-wait retry never fires (we honour Retry-After)."""


class RejectedByVenue(ML4TError):
    """The venue answered a request with a refusal (HTTP 4xx)."""

    def __init__(self, what: str, status: int, code: int | None, message: str) -> None:
        super().__init__(f"{what}: the venue refused it (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message


class _Timeout(HTTPAdapter):
    """Every request through it gets a timeout (connect and read)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _with_timeout(client: Any, timeout: float) -> None:
    session = getattr(client, "_session", None)
    if not isinstance(session, requests.Session):
        raise ML4TError(
            "alpaca-py's REST client has no requests session to give a timeout to; this "
            "version of alpaca-py is not supported (tested: 0.44)"
        )
    adapter = _Timeout(timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


class Rest:
    """The trading and market-data REST clients of one account."""

    def __init__(self, config: AlpacaConfig, credentials: Credentials, *, log: Any) -> None:
        self.config = config
        self.log = log
        self.trading = TradingClient(
            api_key=credentials.key_id,
            secret_key=credentials.secret_key,
            paper=config.paper,
            url_override=config.rest_url,
        )
        self.data = StockHistoricalDataClient(
            api_key=credentials.key_id,
            secret_key=credentials.secret_key,
            url_override=config.data_url.rstrip("/"),
        )
        for client in (self.trading, self.data):
            client._retry_codes = _NO_SDK_RETRY  # see the module docstring
            _with_timeout(client, config.request_timeout)
        self.rate_limited = 0

    async def call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread, with the venue's rate limit honoured."""
        retries = self.config.rate_limit_retries
        delays = self.config.backoff.delays()
        attempt = 0
        while True:
            try:
                return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=True)
            except APIError as exc:
                status = exc.status_code or 0
                if status == 429 and attempt < retries:
                    attempt += 1
                    self.rate_limited += 1
                    wait = _retry_after(exc) or next(delays, None) or self.config.backoff.maximum
                    self.log.warning(
                        "rate_limited", what=what, attempt=attempt, wait=round(wait, 3)
                    )
                    await anyio.sleep(wait)
                    continue
                raise _mapped(what, status, exc) from None
            except requests.exceptions.RequestException as exc:
                raise ConnectionLost(
                    f"{what}: no answer from the venue ({type(exc).__name__})"
                ) from None


def _retry_after(exc: APIError) -> float | None:
    """Seconds the venue asked to wait (``Retry-After``: seconds, or an HTTP date)."""
    response = exc.response
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _mapped(what: str, status: int, exc: APIError) -> Exception:
    code, message = _error_body(str(exc))
    if status == 401:
        return VenueError(f"{what}: the venue refused the credentials (HTTP 401): {message}")
    if status == 429:
        return ConnectionLost(f"{what}: still rate limited after retrying (HTTP 429)")
    if status >= 500 or status == 0:
        return ConnectionLost(f"{what}: the venue failed (HTTP {status}): {message}")
    return RejectedByVenue(what, status, code, message)


def _error_body(text: str) -> tuple[int | None, str]:
    """Alpaca's ``{"code": ..., "message": ...}`` (the text itself if it is not that)."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, text[:200]
    if not isinstance(body, dict):
        return None, text[:200]
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(body.get("message", text))[:300]
