"""Logging through the standard library: silent by default, structured when asked.

Every ml4t logger is a structlog logger over a standard-library logger under ``"ml4t"``
(``ml4t.backtest``, ``ml4t.backtest.data``, ``ml4t.backtest.sweep``), built with
structlog's stdlib integration and independent of the process's structlog configuration:
importing ml4t configures nothing. The standard library decides what is shown, as for any
library. With no configuration, Python's last-resort handler prints warnings and errors to
stderr, and info and debug events go nowhere (a rejected order is a debug event, a feed
starting an info one). To see more, configure logging as usual
(``logging.basicConfig(level=logging.INFO)``, a handler or a level on the ``"ml4t"``
logger) or call :func:`configure_logging`, as the ``ml4t`` command does.

An event is a name with key-value fields. A record's message is the event as one line
(``order_rejected component=risk order_id=o-12 rule=max_position``), so any handler shows
it whole; the fields also travel as a dict in the record's ``event_dict`` attribute, which
:func:`configure_logging` renders (console or JSON lines) and
:func:`ml4t.backtest.testing.capture_logs` collects. Values bound with
``structlog.contextvars`` join each event.

A call below the logger's level returns after one ``isEnabledFor`` (cached by the
standard library) and builds nothing: a debug event nobody reads costs the hot path a
method call.
"""

from __future__ import annotations

import logging
import sys
from types import MappingProxyType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict

from ml4t.backtest.errors import ConfigError

__all__ = ["ROOT_LOGGER", "FilteringLogger", "configure_logging", "get_logger"]

ROOT_LOGGER = "ml4t"  # every ml4t package logs under it; configure_logging sets it up

_LEVELS = MappingProxyType(
    {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "warn": logging.WARNING,
        "error": logging.ERROR,
        "exception": logging.ERROR,
        "critical": logging.CRITICAL,
        "fatal": logging.CRITICAL,
    }
)


class FilteringLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger that drops a call below its standard-library logger's
    level before the event is built (the level is the stdlib logger's, so it follows
    ``logging`` configuration made at any time)."""

    def _proxy_to_logger(
        self, method_name: str, event: str | None = None, *event_args: str, **event_kw: Any
    ) -> Any:
        if not self._logger.isEnabledFor(_LEVELS.get(method_name, logging.NOTSET)):
            return None
        return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)


def _to_record(logger: Any, method_name: str, event_dict: EventDict) -> Any:
    """The last processor: the event as a one-line message, its fields beside it."""
    kwargs: dict[str, Any] = {}
    for key in ("exc_info", "stack_info"):
        if key in event_dict:
            kwargs[key] = event_dict.pop(key)
    kwargs["extra"] = {"event_dict": event_dict}
    parts = [str(event_dict.get("event"))]
    parts.extend(f"{k}={_show(v)}" for k, v in event_dict.items() if k != "event")
    return (" ".join(parts),), kwargs


def _show(value: Any) -> str:
    text = str(value)
    return repr(value) if isinstance(value, str) and (" " in text or not text) else text


_PROCESSORS: tuple[Any, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.PositionalArgumentsFormatter(),
    _to_record,
)


def get_logger(name: str = "ml4t.backtest", **fields: Any) -> FilteringLogger:
    """The ml4t logger over the standard-library logger ``name``, ``fields`` bound."""
    return FilteringLogger(logging.getLogger(name), _PROCESSORS, fields)


# ------------------------------------------------------------------ explicit setup


class _Handler(logging.StreamHandler):
    """:func:`configure_logging`'s handler: to its stream, else to whatever ``sys.stderr``
    is at each record (a stream swapped out later, as a test's captured stderr is, is
    never written to after it closed)."""

    def __init__(self, stream: TextIO | None) -> None:
        logging.Handler.__init__(self)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._fixed = value


def _fields_of(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """An ml4t record's own fields in place of its one-line message."""
    record = event_dict["_record"]
    fields = getattr(record, "event_dict", None)
    if not isinstance(fields, dict):
        return event_dict  # a record of another library: its message is the event
    keep = {k: v for k, v in event_dict.items() if k != "event"}
    return {**fields, **keep}


def configure_logging(
    level: str = "info", *, json: bool = False, stream: TextIO | None = None
) -> None:
    """Send ml4t's events at ``level`` and above (``debug``, ``info``, ``warning``,
    ``error``) to ``stream`` (default: stderr), one line each: ``timestamp [level] event
    key=value ...``, or a JSON object per line with ``json=True``.

    This replaces what an earlier call set up and makes the output ml4t's own: the
    ``"ml4t"`` logger no longer passes its records to the root logger's handlers.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ConfigError(f"unknown log level {level!r}; use debug, info, warning or error")
    renderer: structlog.typing.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    handler = _Handler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_fields_of, structlog.stdlib.add_log_level],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                *([structlog.processors.format_exc_info] if json else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger(ROOT_LOGGER)
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    root.propagate = False
