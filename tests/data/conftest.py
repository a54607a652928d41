"""Fixtures for the data layer tests: anyio on asyncio, a small synthetic data set."""

from __future__ import annotations

import pytest

from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticFrames, make_frames


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def frames() -> SyntheticFrames:
    """5 symbols x 3 NYSE sessions of minute bars (5,850 rows)."""
    return make_frames(SyntheticConfig(n_symbols=5, n_days=3, seed=7))
