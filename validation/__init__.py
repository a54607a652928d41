"""Cross-framework parity suite: ml4t against vectorbt and backtrader.

Run it with ``python -m validation`` (``make validate``; ``--small`` for CI sizes). The
pieces: :mod:`validation.data` makes deterministic bars and signals,
:mod:`validation.spec` says what a scenario is, ``validation/scenarios/`` holds one
module per scenario, ``run_ml4t``/``run_vectorbt``/``run_backtrader`` translate a
scenario into each framework and reduce its output to canonical tables,
:mod:`validation.compare` compares them exactly after canonical rounding with negative
controls, and :mod:`validation.report` writes ``docs/validation.md``.

The peers are an optional extra: ``pip install -e '.[validate]'``.
"""
