"""Shared pytest set-up: async tests run on asyncio through anyio's plugin, and ml4t's
logging is put back as the library leaves it after each test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ml4t.backtest.logging import ROOT_LOGGER


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _restore_ml4t_logging() -> Iterator[None]:
    """``ml4t.cli.main``, which some tests call in-process, sets up the ``"ml4t"`` logger
    as the command does (its level, a handler, no propagation): undo it so that the next
    test sees the library's defaults."""
    logger = logging.getLogger(ROOT_LOGGER)
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.propagate = propagate
    logger.handlers[:] = handlers
