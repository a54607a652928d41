"""The parity scenarios, one module each (``sNN_name.py`` defining ``SCENARIO``)."""

from __future__ import annotations

import importlib
import pkgutil

from validation.spec import Scenario

__all__ = ["SCENARIOS"]


def _load() -> list[Scenario]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("s") and info.name[1:3].isdigit():
            found.append(importlib.import_module(f"{__name__}.{info.name}").SCENARIO)
    return found


SCENARIOS: list[Scenario] = _load()
