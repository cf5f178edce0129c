"""Seeded fault schedules over the real core; and proof that the checker can fail.

HACLUSTER_SIM_SCHEDULES sets how many schedules run (scripts/test and CI: 10,000; a plain
pytest run: 500, a few seconds). A failure names its seed and the command that replays it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import pytest

from hacluster.core import host_plan, reconcile
from hacluster.core.host_plan import Action, Domain, Lease
from hacluster.core.model import Vm

from .simulator import InvariantBroken, run_seed

SCHEDULES = int(os.environ.get("HACLUSTER_SIM_SCHEDULES", "500"))
BATCH = 500


@pytest.mark.parametrize("first", range(0, SCHEDULES, BATCH))
def test_every_schedule_keeps_every_invariant(first: int) -> None:
    for seed in range(first, min(first + BATCH, SCHEDULES)):
        run_seed(seed)


def first_failure(seeds: int) -> str | None:
    for seed in range(seeds):
        try:
            run_seed(seed)
        except InvariantBroken as exc:
            return str(exc)
    return None


def test_it_catches_a_leader_that_fences_without_waiting_for_the_watchdog(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def hasty(last_granted: float | None, leader_since: float, grant_window: float,
              lease: float, watchdog: float, margin: float) -> float:
        return (last_granted if last_granted is not None else leader_since) + lease * 0.5

    monkeypatch.setattr(reconcile, "recovery_at", hasty)
    failure = first_failure(1000)
    assert failure is not None and "I1" in failure and "replay: python -m" in failure


def test_it_catches_agents_that_start_ha_vms_without_a_lease(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def reckless(host: str, vms: Mapping[str, Vm], domains: Iterable[Domain], lease: Lease,
                 now: float, replica_ready: bool) -> list[Action]:
        if lease.expired(now):
            return host_plan.self_fence_plan(vms, domains)
        return host_plan.plan_host(host, vms, domains, lease_valid=True)

    monkeypatch.setattr("tests.sim.simulator.decide_host", reckless)
    failure = first_failure(3000)
    assert failure is not None and "I1" in failure
