"""Semantic presets: named sets of execution knobs that reproduce another framework.

A preset is what a config says with ``preset: vectorbt``: the ``execution`` and ``risk``
keys below are filled in wherever the config does not set them itself, so **a key the
user writes always wins over the preset** (``--set`` overrides count as written). Each
knob is documented in ``docs/execution.md``; the parity suite in ``validation/`` checks
the vectorbt and backtrader presets trade for trade against those frameworks.

- ``realistic`` (default): ml4t's own rules. Next-open fills, gaps honoured, the
  pessimistic exit when a bar cannot tell, costs on every fill, a cash account checked
  before the order is sent.
- ``vectorbt``: ``Portfolio.from_signals`` with its defaults: orders fill at the close of
  the signal bar; stops are checked from the next bar, stop-loss before take-profit,
  stop exits fill at the stop level (the open after a gap) without slippage; the
  trailing reference follows highs (lows) after each check; a buy the cash cannot pay
  is resized to what it affords (fractional shares); short sales are unchecked.
- ``backtrader``: ``Cerebro`` with ``BackBroker`` defaults: orders fill at the next open;
  bracket children activate the bar after the entry fills and the stop child is tried
  first; ``StopTrail`` follows closes after each check; slippage (``set_slippage_*``)
  applies to market and stop fills, never beyond the bar's range nor a limit price; an
  order is costed at the close when submitted against a running cash balance and
  rejected if it overdraws it, and cancelled if the cash cannot pay it when it executes
  (``Margin``); orders execute in submission order across data feeds.
- ``zipline``: zipline's documented daily-bar conventions (not checked by the parity
  suite: zipline is not installable beside this stack): orders fill at the next bar's
  close; limit and stop orders are judged on the close alone; ``VolumeShareSlippage``
  (2.5 % of volume, price impact 0.1) and ``PerShare`` commission of $0.001 with no
  minimum; cash may go negative.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

__all__ = ["PRESETS", "PresetName", "apply_preset"]

PresetName = Literal["realistic", "vectorbt", "backtrader", "zipline"]

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "realistic": {},
    "vectorbt": {
        "execution": {
            "fill_timing": "same_close",
            "exit_conflict": "stops_first",
            "slippage_fills": "market",
            "insufficient_cash": "resize",
            "share_rounding": "fractional",
            "trail_watermark": "high_low",
            "trail_update": "after_check",
            "fill_order": "symbol",
        },
        "risk": {"account": "unchecked"},
    },
    "backtrader": {
        "execution": {
            "fill_timing": "next_open",
            "exit_conflict": "stops_first",
            "slippage_fills": "except_limit_price",
            "slippage_cap": "bar",
            "insufficient_cash": "reject",
            "submit_cash_check": True,
            "trail_watermark": "close",
            "trail_update": "after_check",
            "fill_order": "accepted",
        },
        "risk": {"account": "unchecked"},
    },
    "zipline": {
        "execution": {
            "fill_timing": "next_close",
            "intrabar": "close",
            "slippage": {
                "model": "volume_share",
                "params": {"volume_limit": 0.025, "price_impact": 0.1},
            },
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.001}},
            "share_rounding": "integer",
        },
        "risk": {"account": "unchecked"},
    },
}


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    """A config dict with its ``preset``'s keys filled in under the ones it sets.

    Only missing keys are added (a section the user wrote keeps every key it has; a
    cost model the user names replaces the preset's whole model). An unknown preset
    name is left for the config decoder to reject with the key's path.
    """
    name = data.get("preset", "realistic")
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if not preset:
        return data
    out = dict(data)
    for section, values in preset.items():
        given = out.get(section)
        if given is None:
            out[section] = copy.deepcopy(values)
        elif isinstance(given, dict):
            merged = copy.deepcopy(values)
            merged.update(given)
            out[section] = merged
    return out
