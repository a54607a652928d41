"""Run scenarios against the peers: compare, check the negative controls, time each run."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from validation.compare import Comparison, RunOutput, compare_runs, negative_controls
from validation.data import Panel
from validation.spec import Scenario

__all__ = ["PEERS", "Outcome", "missing_peers", "run_scenario"]

PEERS = ("vectorbt", "backtrader")


@dataclass
class Outcome:
    """One scenario against one peer."""

    scenario: Scenario
    peer: str
    skipped: str | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    controls: dict[str, bool] = field(default_factory=dict)
    ml4t_seconds: float = 0.0
    peer_seconds: float = 0.0
    rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return all(c.ok for c in self.comparisons)

    @property
    def controls_ok(self) -> bool:
        return bool(self.controls) and all(self.controls.values())

    @property
    def ok(self) -> bool:
        return self.skipped is not None or (self.matched and self.controls_ok)

    def comparison(self, table: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.table == table), None)


def missing_peers(peers: Iterable[str]) -> list[str]:
    return [p for p in peers if importlib.util.find_spec(p) is None]


def _peer_runner(peer: str) -> Callable[[Scenario, Panel], RunOutput]:
    if peer == "vectorbt":
        from validation.run_vectorbt import run_vectorbt

        return run_vectorbt
    from validation.run_backtrader import run_backtrader

    return run_backtrader


def run_scenario(scenario: Scenario, *, small: bool, peers: Iterable[str]) -> list[Outcome]:
    """Run ``scenario`` in ml4t (under each peer's preset) and in each peer; compare."""
    from validation.run_ml4t import run_ml4t

    panel = scenario.data(small)
    outcomes = []
    for peer in peers:
        outcome = Outcome(scenario, peer, rows=panel.frame.height)
        if peer in scenario.skip:
            outcome.skipped = scenario.skip[peer]
            outcomes.append(outcome)
            continue
        run_peer = _peer_runner(peer)
        if peer == "vectorbt":
            run_peer(scenario, panel)  # compile numba kernels first: time the simulation
        ours = run_ml4t(scenario, panel, peer)
        theirs = run_peer(scenario, panel)
        outcome.comparisons = compare_runs(ours, theirs)
        outcome.controls = negative_controls(ours, theirs)
        outcome.ml4t_seconds = ours.seconds
        outcome.peer_seconds = theirs.seconds
        outcome.notes = theirs.notes
        outcomes.append(outcome)
    return outcomes
