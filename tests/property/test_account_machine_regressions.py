"""Regressions found by the account state machine (test_account_machine.py), each the
shrunk example worked out by hand, through the whole graph.

Daily bars known at 21:00 UTC; market orders fill at the next bar's open (DESIGN §2).
"""

from __future__ import annotations

from tests.engine._bars import flat, run_script

CASH = {"risk": {"account": "cash"}}


def test_cash_account_sell_behind_a_filled_stop_loss_never_opens_a_short() -> None:
    # bar 0: buy 1 with stop-loss 19.8 / take-profit 20.2; it fills at bar 1's open (20)
    # and the children rest from bar 1. Bar 1: sell 1 at market (risk approves: 1 held).
    # Bar 2 (open 20, low 19.5): the stop-loss, accepted first, sells 1 @ 19.8 and the
    # position is flat; the market sell must not then sell a share the cash account no
    # longer holds (shrunk example: cash account, next_open, no costs).
    bars = [flat(20), flat(20), (20, 20, 19.5, 20, 1e6), flat(20)]
    steps = {
        0: lambda s: s.buy("AAA", 1, stop_loss=19.8, take_profit=20.2),
        1: lambda s: s.sell("AAA", 1),
    }
    results, strategy, engine = run_script({"AAA": bars}, steps, **CASH)
    assert [min(seen.values(), default=0.0) for seen in strategy.seen] == [0.0, 1.0, 0.0, 0.0]
    assert engine.portfolio.position("AAA") == 0.0
    assert results.fills["quantity"].sum() == 2.0  # the entry and one exit of 1
