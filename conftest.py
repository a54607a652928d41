"""Set-up for every test path (ours and the in-repo plugins'): the validation cache
(``ml4t.backtest.data._vcache``) lives in a directory of this test session, never in the
user's own cache, and subprocesses the tests start inherit it."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="ml4t-test-cache-")
os.environ["ML4T_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
