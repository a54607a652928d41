"""Alpaca API credentials: read from the environment or from a file the config names,
and never shown.

Sources, in order: ``credentials_file`` when the config names one (lines
``APCA_API_KEY_ID=...`` and ``APCA_API_SECRET_KEY=...``; blank lines and ``#`` comments
allowed; the file must not be readable by group or others, as ssh insists for keys),
else the environment variables ``key_env``/``secret_env`` (default ``APCA_API_KEY_ID``
and ``APCA_API_SECRET_KEY``).

A :class:`Credentials` object hides both values from ``repr``/``str``, cannot be pickled
or encoded by msgspec, and errors about credentials name where they were looked for,
never what was found.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from ml4t.backtest import ConfigError
from ml4t_alpaca.config import AlpacaConfig

__all__ = ["Credentials", "CredentialsError", "load_credentials"]

KEY_NAME = "APCA_API_KEY_ID"
SECRET_NAME = "APCA_API_SECRET_KEY"


class CredentialsError(ConfigError):
    """The credentials are missing or their file is unsafe (the message says where)."""


class Credentials:
    """An API key id and secret; both are hidden from every printed form."""

    __slots__ = ("_key", "_secret")

    def __init__(self, key_id: str, secret_key: str) -> None:
        if not key_id or not secret_key:
            raise CredentialsError("an Alpaca key id and secret key are both needed")
        self._key = key_id
        self._secret = secret_key

    @property
    def key_id(self) -> str:
        return self._key

    @property
    def secret_key(self) -> str:
        return self._secret

    def headers(self) -> dict[str, str]:
        """The REST authentication headers."""
        return {"APCA-API-KEY-ID": self._key, "APCA-API-SECRET-KEY": self._secret}

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("Credentials cannot be pickled (they would be written in clear)")


def load_credentials(config: AlpacaConfig, environ: Mapping[str, str] | None = None) -> Credentials:
    """The credentials ``config`` points at (its file, else its environment variables)."""
    if config.credentials_file is not None:
        return _from_file(Path(config.credentials_file).expanduser())
    env = os.environ if environ is None else environ
    key, secret = env.get(config.key_env, ""), env.get(config.secret_env, "")
    missing = [
        name for name, value in ((config.key_env, key), (config.secret_env, secret)) if not value
    ]
    if missing:
        raise CredentialsError(
            f"no Alpaca credentials: {' and '.join(missing)} not set in the environment; "
            "export them (from the paper account's API keys page) or name a "
            "credentials_file in the Alpaca config"
        )
    return Credentials(key, secret)


def _from_file(path: Path) -> Credentials:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(
            f"the credentials file {path} cannot be read: {exc.strerror}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"the credentials file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):o}); make it private: chmod 600 {path}"
        )
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        if not sep or name not in (KEY_NAME, SECRET_NAME):
            raise CredentialsError(
                f"{path}, line {number}: expected {KEY_NAME}=... or {SECRET_NAME}=... "
                "(the line is not shown: it may hold a secret)"
            )
        values[name] = value.strip().strip("'\"")
    missing = [n for n in (KEY_NAME, SECRET_NAME) if not values.get(n)]
    if missing:
        raise CredentialsError(f"the credentials file {path} has no {' and no '.join(missing)}")
    return Credentials(values[KEY_NAME], values[SECRET_NAME])
