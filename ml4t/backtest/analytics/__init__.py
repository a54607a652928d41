"""Analytics helpers other packages import from ml4t by module path.

:mod:`~ml4t.backtest.analytics.annualization` is part of the interop contract
ml4t-diagnostic's bridge imports (``docs/results.md``, *ml4t-diagnostic*).
"""
