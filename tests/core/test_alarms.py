"""Alarms in the core: the replicated record (raise, update, clear, acknowledge, prune) and the
leader's judgement (which conditions hold, for how long, what to commit)."""

from __future__ import annotations

import itertools

from hacluster.core import commands as c
from hacluster.core.alarms import Facts, Sustained, conditions, judged, reconcile
from hacluster.core.model import Severity
from hacluster.core.placement import HostMetrics
from hacluster.core.state import MAX_CLEARED_ALARMS, ClusterState, Result

from .factories import cid, create, register
from .test_scheduling import cluster

IDS = (f"a{n}" for n in itertools.count())


def raise_(s: ClusterState, key: str, message: str = "m", severity: str = "warning"
           ) -> Result:
    kind, _, subject = key.partition(":")
    return s.apply(c.RaiseAlarm(id=cid(), ts=1.0, key=key, kind=kind, severity=severity,
                                subject=subject, message=message))


def test_raise_update_acknowledge_clear_and_raise_again() -> None:
    s = cluster(hosts=1)
    assert raise_(s, "host-cpu:h1", "90%").ok
    first = s.alarms["host-cpu:h1"]
    assert first.active and first.severity is Severity.WARNING and first.raised_at == 1.0
    assert raise_(s, "host-cpu:h1", "90%").message == "unchanged"
    assert s.apply(c.AckAlarm(id=cid(), ts=2.0, key="host-cpu:h1", actor="token:ops")).ok
    assert raise_(s, "host-cpu:h1", "95%").ok  # updated: still acknowledged, same start
    alarm = s.alarms["host-cpu:h1"]
    assert (alarm.message, alarm.acked_by, alarm.raised_at) == ("95%", "token:ops", 1.0)
    assert s.apply(c.ClearAlarm(id=cid(), ts=3.0, key="host-cpu:h1")).ok
    assert not s.alarms["host-cpu:h1"].active
    assert s.apply(c.ClearAlarm(id=cid(), ts=3.0, key="host-cpu:h1")).code == "not_found"
    assert s.apply(c.AckAlarm(id=cid(), ts=3.0, key="host-cpu:h1")).code == "not_found"
    assert raise_(s, "host-cpu:h1", "99%").ok  # the condition is back: a new alarm
    again = s.alarms["host-cpu:h1"]
    assert again.active and not again.acked_by and again.message == "99%"
    assert raise_(s, "x:y", severity="dire").code == "invalid"
    assert ClusterState.from_dict(s.to_dict()) == s


def test_cleared_alarms_are_kept_for_the_record_up_to_a_limit() -> None:
    s = cluster(hosts=1)
    for i in range(MAX_CLEARED_ALARMS + 30):
        assert raise_(s, f"vm-error:v{i}").ok
        assert s.apply(c.ClearAlarm(id=cid(), ts=2.0, key=f"vm-error:v{i}")).ok
    assert raise_(s, "host-down:h1", severity="critical").ok
    assert len([a for a in s.alarms.values() if not a.active]) == MAX_CLEARED_ALARMS
    assert s.alarms["host-down:h1"].active and "vm-error:v0" not in s.alarms


def test_conditions_from_the_state_and_the_live_figures() -> None:
    s = cluster(hosts=3, memory_mib=4096)
    assert s.apply(c.SetHostStatus(id=cid(), term=0, name="h3", status="down")).ok
    create(s, "broken")
    s.vms["broken"].error = "failed on h1 after 1 restart(s)"
    facts = Facts(metrics={"h1": HostMetrics(cpu_load=0.95, memory_available_mib=4000,
                                             disk_free_gib=50),
                           "h2": HostMetrics(cpu_load=0.1, memory_available_mib=100,
                                             disk_free_gib=0.5)},
                  members_behind={"h2": "the leader cannot reach it", "h3": "gone"},
                  failures_tolerated=0)
    found = {x.key: x for x in conditions(s, facts)}
    assert set(found) == {"host-down:h3", "vm-error:broken", "host-cpu:h1", "host-memory:h2",
                          "host-disk:h2", "member-behind:h2", "failures-tolerated:cluster"}
    assert found["host-down:h3"].severity is Severity.CRITICAL
    assert "98%" in found["host-memory:h2"].message  # 1 - 100/4096
    assert s.apply(c.SetPolicy(id=cid(), changes={"alarm_cpu": 0.99, "alarm_memory": 0.99,
                                                  "alarm_disk_free_gib": 0})).ok
    keys = {x.key for x in conditions(s, facts)}
    assert not keys & {"host-cpu:h1", "host-memory:h2", "host-disk:h2"}


def test_sustained_conditions_wait_their_time_and_reconcile_commits_the_difference() -> None:
    s = cluster(hosts=2)
    facts = Facts(metrics={"h1": HostMetrics(cpu_load=0.95, memory_available_mib=-1,
                                             disk_free_gib=-1)}, failures_tolerated=1)
    timer = Sustained()
    hold = s.policy.alarm_for

    def step(now: float) -> list[c.Command]:
        holding = timer.filter(conditions(s, facts), now, hold)
        cmds = reconcile(s, judged(s, facts, holding, timer), 1, IDS, now)
        for cmd in cmds:
            assert s.apply(cmd).ok
        return cmds

    assert step(0.0) == [] and step(hold - 1) == []  # not long enough yet
    raised = step(hold + 1)
    assert [type(x) for x in raised] == [c.RaiseAlarm]
    assert isinstance(raised[0], c.RaiseAlarm) and raised[0].key == "host-cpu:h1"
    assert step(hold + 2) == []  # committed once, not every pass
    facts.metrics = {}  # no figures from h1 (a new leader): its alarm cannot be judged: kept
    assert step(hold + 3) == []
    facts.metrics = {"h1": HostMetrics(cpu_load=0.2, memory_available_mib=-1, disk_free_gib=-1)}
    cleared = step(hold + 4)
    assert [type(x) for x in cleared] == [c.ClearAlarm] and not s.alarms["host-cpu:h1"].active


def test_pools_unseen_by_an_up_host_or_nearly_full_raise_alarms() -> None:
    s = ClusterState()
    for h in ("a", "b"):
        register(s, h)
    s.apply(c.CreatePool(id=cid(), name="nfs", type="dir", shared=True, path="/srv/nfs"))
    s.apply(c.ObserveHostFacts(id=cid(), host="a", pools={"nfs": [100.0, 0.5]}))
    s.apply(c.ObserveHostFacts(id=cid(), host="b", pools={}, pool_errors={"nfs": "no mount"}))
    kinds = {x.key: x.message for x in conditions(s, Facts())}
    assert kinds == {"pool-full:nfs": "storage pool nfs has less than 1 GiB free on a"}
    create(s, "v", disks=[{"pool": "nfs", "size_gib": 1}])  # now it matters that b lacks it
    kinds = {x.key: x.message for x in conditions(s, Facts())}
    assert kinds["pool-unseen:nfs"] == "storage pool nfs is not seen by b (b: no mount)"
