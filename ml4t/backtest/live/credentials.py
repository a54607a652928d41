"""Credentials for live adapters: from the environment or a file named in config, never
in the config itself, never shown.

``live.credentials_env`` maps an adapter's parameter name to an environment variable
(``{api_key: ALPACA_API_KEY_ID, secret_key: ALPACA_API_SECRET_KEY}``);
``live.credentials_file`` names a YAML file of ``name: value`` lines, readable by its
owner only (``chmod 600``). Both may be given (the environment wins). The values reach
the adapters' factories as one :class:`Credentials` argument, ``credentials=``: a
read-only mapping whose ``repr`` and ``str`` show the names and hide the values, which
cannot be pickled or encoded, and which :meth:`Credentials.redact` scrubs out of any text
(the ``ml4t live`` command passes every error message and log line through it).

The config (``params`` included) is written to the results and the journal, so
``live.*.params`` refuses keys that look like credentials (``secret``, ``token``,
``api_key``, ...), and ``${VAR}`` interpolation should not be used for them.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ml4t.backtest.errors import ConfigError, ProtocolError, UnknownNameError

__all__ = ["Credentials", "RedactingFilter", "load_credentials"]

MASK = "***"


class Credentials(Mapping[str, str]):
    """Secret values by name; shown as ``Credentials(api_key=***, secret_key=***)``."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise UnknownNameError(
                f"no credential named {name!r} (given: {', '.join(sorted(self._values))})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(f'{k}={MASK}' for k in sorted(self._values))})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise ProtocolError("credentials cannot be pickled")

    def redact(self, text: str) -> str:
        """``text`` with every credential value replaced by ``***``."""
        for value in sorted(self._values.values(), key=len, reverse=True):
            if value:
                text = text.replace(value, MASK)
        return text


def load_credentials(
    env: Mapping[str, str],
    file: str | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials ``live.credentials_env`` and ``live.credentials_file`` name (None
    when neither is given). Errors name the variable, file or key, never a value."""
    if not env and file is None:
        return None
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if file is not None:
        values.update(_read_file(Path(file)))
    missing = [var for var in env.values() if not environ.get(var)]
    if missing:
        raise ConfigError(
            f"$.live.credentials_env: the environment variable(s) {', '.join(missing)} "
            "are not set (or empty); export them before running ml4t live"
        )
    values.update({name: environ[var] for name, var in env.items()})
    return Credentials(values)


def _read_file(path: Path) -> dict[str, str]:
    where = f"$.live.credentials_file ({path})"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{where}: the file is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"make it yours alone: chmod 600 {path}"
        )
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        # the parser's message may quote the file: say where, not what
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{where}: not a YAML map of name: value{at}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in data.items()
    ):
        raise ConfigError(f"{where}: expected a YAML map of name: value (text) lines")
    return {k: str(v) for k, v in data.items()}


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs credential values out of every record it passes."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self.credentials = credentials

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.credentials.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        event = getattr(record, "event_dict", None)
        if isinstance(event, dict):
            record.event_dict = {
                k: self.credentials.redact(v) if isinstance(v, str) else v for k, v in event.items()
            }
        return True
