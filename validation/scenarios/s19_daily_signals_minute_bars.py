"""19 daily signals on minute bars: one signal a day, stops checked every minute."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="19",
    name="daily_signals_minute_bars",
    description=(
        "Three symbols on one-minute bars (390 a session); signals arrive once a day, on the "
        "session's first bar, while a 0.5 % stop-loss and a 0.8 % take-profit are checked on "
        "every minute bar."
    ),
    data=lambda small: make_panel(
        seed=119,
        n_bars=390 * (5 if small else 40),
        n_symbols=3,
        frequency="1m",
        vol=0.0015,
        gap_vol=0.0003,
        entry_rate=0.5,
        exit_rate=0.3,
        signal_every=390,
    ),
    stops=Stops(sl=0.005, tp=0.008),
    large=True,
)
