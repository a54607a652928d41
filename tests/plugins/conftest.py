"""``distribution`` installs a third-party package the way pip leaves one (a module beside
a ``.dist-info`` with ``METADATA`` and ``entry_points.txt``) in a directory put on
``sys.path``, so ``importlib.metadata`` finds its entry points like any installed one.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

Install = Callable[..., Path]


@pytest.fixture
def distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``distribution(name, version, modules={mod: source}, entry_points={group: {ep:
    target}})`` installs a package in a site directory on ``sys.path``; the modules are
    forgotten afterwards, so the next test imports its own."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    written: list[str] = []

    def install(
        name: str,
        version: str,
        *,
        modules: Mapping[str, str],
        entry_points: Mapping[str, Mapping[str, str]],
    ) -> Path:
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            written.append(module)
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(
            "".join(
                f"[{group}]\n" + "".join(f"{ep} = {target}\n" for ep, target in eps.items())
                for group, eps in entry_points.items()
            )
        )
        importlib.invalidate_caches()
        return site

    yield install
    for module in written:
        sys.modules.pop(module, None)
