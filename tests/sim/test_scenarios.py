"""The known hard cases, as scenario files (tests/sim/scenarios/*.toml), over production's
loops in the simulator; and proof that a scenario fails when the rule it guards is broken."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hacluster.core import reconcile
from hacluster.leader import LeaderLoop

from .scenario import SCENARIOS, Scenario
from .simulator import InvariantBroken

FILES = sorted(SCENARIOS.glob("*.toml"))


def test_there_are_scenarios() -> None:
    assert len(FILES) >= 6


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path) -> None:
    Scenario(path).run()


def test_the_migration_scenario_fails_if_the_leader_counts_on_an_unarmed_watchdog(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "unreported", lambda state, host: [])
    with pytest.raises(InvariantBroken, match="I1: web runs on"):
        Scenario(SCENARIOS / "migration_into_a_hung_host.toml").run()


def test_the_two_of_three_scenario_fails_if_leases_outlive_the_majority(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hacluster.core.lease.leader_fresh", lambda active, *rest: active)
    with pytest.raises(InvariantBroken):
        Scenario(SCENARIOS / "two_of_three_lost.toml").run()


def test_the_lagging_replica_scenario_fails_if_leases_carry_no_revision(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As an older leader answers (no revision): the host acts on its lagging replica."""
    answer = LeaderLoop.answer
    monkeypatch.setattr(LeaderLoop, "answer", lambda self, beat: dataclasses.replace(
        answer(self, beat), revision=0))
    with pytest.raises(InvariantBroken, match="I1: web runs on"):
        Scenario(SCENARIOS / "lagging_replica.toml").run()
