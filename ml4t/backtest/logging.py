"""Structured logging with structlog: console for people, JSON lines for machines.

Components log through the logger in their context (bound to their name). Configure once
per process with :func:`configure_logging`; the level filter is resolved then, so a
filtered-out call costs one method call.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from ml4t.backtest.errors import ConfigError

__all__ = ["configure_logging"]


def configure_logging(
    level: str = "info", *, json: bool = False, stream: TextIO | None = None
) -> None:
    """Set the level (``debug``, ``info``, ``warning``, ``error``) and the output format."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ConfigError(f"unknown log level {level!r}; use debug, info, warning or error")
    renderer: structlog.typing.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
