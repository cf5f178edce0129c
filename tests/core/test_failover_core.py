"""Core of failover: fencing, the VM failure policy, states, policy, admission, timing."""

from __future__ import annotations

import pytest

from hacluster.core import commands as c
from hacluster.core import storage
from hacluster.core.admission import failures_tolerated
from hacluster.core.events import describe
from hacluster.core.host_plan import Act, Domain, decide_host
from hacluster.core.lease import (
    Lease,
    grant,
    leader_fresh,
    recovery_at,
    renewed_until,
    watchdog_guard,
)
from hacluster.core.model import HostStatus, Observed, Vm, VmState
from hacluster.core.reconcile import LeaderView, plan
from hacluster.core.state import ClusterState
from hacluster.core.timing import PROFILES, RAFT_FOR_PROFILE, problems

from .factories import assign, cid, create, register


def cluster(hosts: int = 3, memory_mib: int = 2048) -> ClusterState:
    s = ClusterState()
    for i in range(1, hosts + 1):
        register(s, f"h{i}", memory_mib=memory_mib)
    return s


def down(s: ClusterState, host: str) -> None:
    assert s.apply(c.SetHostStatus(id=cid(), name=host, status="down", last_heard=9.0,
                                   ts=10.0)).ok


# ---- fencing ------------------------------------------------------------------------------


@pytest.mark.parametrize("indexed", [False, True])
def test_fencing_frees_recoverable_vms_and_records_the_incident(indexed: bool) -> None:
    """With the VM index (a replica's, raft.py) the fence looks at the host's VMs only."""
    s = cluster().indexed() if indexed else cluster()
    create(s, "ha1")
    create(s, "plain", ha=False)
    create(s, "off", state="stopped")
    for vm in ("ha1", "plain", "off"):
        assign(s, vm, "h1")
    s.apply(c.SetVmState(id=cid(), name="off", state="disabled"))
    assert s.apply(c.FenceHost(id=cid(), name="h1", by="x")).code == "conflict"  # not down
    down(s, "h1")
    assert s.apply(c.FenceHost(id=cid(), name="h1", by="lease+watchdog", ts=14.0)).ok
    assert s.hosts["h1"].status is HostStatus.FENCED
    assert (s.vms["ha1"].host, s.vms["ha1"].last_host) == (None, "h1")
    assert s.vms["plain"].host == "h1" and s.vms["off"].host == "h1"  # never moved
    (incident,) = s.incidents
    assert (incident.host, incident.last_heard, incident.declared_at, incident.fenced_at,
            incident.fenced_by) == ("h1", 9.0, 10.0, 14.0, "lease+watchdog")
    assert set(incident.vms) == {"ha1"} and incident.open
    assign(s, "ha1", "h2")
    s.apply(c.ObserveVms(id=cid(), ts=14.5, host="h2", observed={"ha1": "running"}))
    assert incident.vms["ha1"]["running_at"] == 14.5 and not incident.open
    assert s.apply(c.SetHostStatus(id=cid(), name="h1", status="up")).ok  # it came back


def test_operator_confirmation_fences_a_down_host() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h2")
    assert s.apply(c.ConfirmFenced(id=cid(), name="h2")).code == "conflict"
    down(s, "h2")
    assert s.apply(c.ConfirmFenced(id=cid(), name="h2")).ok
    assert s.incidents[-1].fenced_by == "operator" and s.vms["a"].host is None


def test_leader_fences_only_after_lease_watchdog_and_margin() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    down(s, "h1")
    heard = {"h2": 20.0, "h3": 20.0}
    granted = {"h1": 10.0}
    # lease 2.5 + watchdog 1.0 + margin 0.5 after the last grant at 10.0: 14.0
    early = LeaderView(now=13.9, leader_since=0.0, last_heard=heard, last_granted=granted)
    p = plan(s, early, 1, iter(["x"]), 0.0)
    assert p.commands == [] and p.due_in == pytest.approx(0.1)
    late = LeaderView(now=14.0, leader_since=0.0, last_heard=heard, last_granted=granted)
    (fence,) = plan(s, late, 1, iter(["y"]), 0.0).commands
    assert isinstance(fence, c.FenceHost) and fence.by == "lease+watchdog"


def test_a_host_is_not_fenced_by_lease_for_a_vm_it_never_reported() -> None:
    """Live-migrated to h2, which went silent before it reported the VM: h2's watchdog may
    never have been armed for it, so only a fence agent or an operator may free it."""
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "running"}))
    assert s.apply(c.SetMigration(id=cid(), name="a", to="h2",
                                  expect_version=s.vms["a"].version)).ok
    assert s.apply(c.FinishMigration(id=cid(), name="a", source="h1", to="h2", ok=True)).ok
    assert s.vms["a"].host == "h2" and s.vms["a"].unreported
    down(s, "h2")
    late = LeaderView(now=100.0, leader_since=0.0, last_heard={"h1": 99.9, "h3": 99.9},
                      last_granted={"h2": 10.0})
    p = plan(s, late, 1, iter(["x"]), 0.0)
    assert p.commands == [] and "arrived by live migration" in p.verdict, p.verdict
    late.fenced_off = {"h2": True}  # a fence agent switched it off: that proves it
    (fence,) = plan(s, late, 1, iter(["y"]), 0.0).commands
    assert isinstance(fence, c.FenceHost) and fence.by == "fence agent"


def test_the_new_hosts_report_clears_unreported_even_when_nothing_else_changed() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    s.apply(c.SetMigration(id=cid(), name="a", to="h2", expect_version=s.vms["a"].version))
    s.apply(c.FinishMigration(id=cid(), name="a", source="h1", to="h2", ok=True))
    view = LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0, "h3": 1.0},
                      observed={"h2": {"a": "running"}},
                      reported_versions={"h2": {"a": s.vms["a"].version}})
    (observe,) = [x for x in plan(s, view, 1, iter(["z"]), 0.0).commands
                  if isinstance(x, c.ObserveVms)]
    assert s.apply(observe).ok and not s.vms["a"].unreported
    assert s.vms["a"].observed is Observed.RUNNING


def test_a_new_leader_waits_for_what_its_predecessor_may_have_granted() -> None:
    assert recovery_at(None, 100.0, 0.5, 2.5, 1.0, 0.5) == 104.5
    assert recovery_at(99.0, 100.0, 0.5, 2.5, 1.0, 0.5) == 104.5
    assert recovery_at(104.0, 100.0, 0.5, 2.5, 1.0, 0.5) == 108.0


def test_no_watchdog_means_no_fencing_by_lease_but_a_fence_agent_will_do() -> None:
    s = ClusterState()
    s.apply(c.RegisterHost(id=cid(), name="h1", raft_addr="a", api_addr="b", cpus=1,
                           memory_mib=1024, disk_gib=1, lease=2.5, watchdog=0.0))
    down(s, "h1")
    view = LeaderView(now=1000.0, leader_since=0.0)
    p = plan(s, view, 1, iter(["x"]), 0.0)
    assert p.commands == [] and "needs a fence agent" in p.verdict
    view.fenced_off = {"h1": True}
    (fence,) = plan(s, view, 1, iter(["y"]), 0.0).commands
    assert isinstance(fence, c.FenceHost) and fence.by == "fence agent"


def test_leases_go_only_to_hosts_that_are_up_from_a_fresh_leader() -> None:
    s = cluster()
    assert grant(s, "h1", fresh=True) == (2.5, "")
    assert grant(s, "h1", fresh=False)[0] == 0.0
    down(s, "h1")
    assert grant(s, "h1", fresh=True)[0] == 0.0 and grant(s, "nope", fresh=True)[0] == 0.0


def test_a_leader_is_fresh_only_within_the_grant_window_of_its_majority() -> None:
    assert leader_fresh(True, 3, 3, confirmed_at=10.0, now=10.4, grant_window=0.5)
    assert not leader_fresh(True, 3, 3, confirmed_at=10.0, now=10.5, grant_window=0.5)
    assert not leader_fresh(True, 3, 4, confirmed_at=10.0, now=10.1, grant_window=0.5)
    assert not leader_fresh(False, 3, 3, confirmed_at=10.0, now=10.1, grant_window=0.5)
    assert not leader_fresh(True, 3, 3, confirmed_at=None, now=10.1, grant_window=0.5)


def test_an_answer_renews_the_lease_from_before_the_ask_and_only_from_a_current_leader() -> None:
    assert renewed_until(None, asked=5.0, seconds=2.5, answer_term=2, known_term=2) == 7.5
    assert renewed_until(6.0, asked=5.0, seconds=0.0, answer_term=2, known_term=2) == 6.0
    assert renewed_until(6.0, asked=5.0, seconds=2.5, answer_term=1, known_term=2) == 6.0


# ---- VM failures ----------------------------------------------------------------------------


def failed(s: ClusterState, vm: str, ts: float = 0.0, reason: str = "") -> str:
    v = s.vms[vm]
    s.apply(c.ObserveVms(id=cid(), host=v.host or "", observed={vm: "crashed"}))
    r = s.apply(c.VmFailed(id=cid(), ts=ts, name=vm, host=v.host or "",
                           expect_version=s.vms[vm].version, reason=reason))
    assert r.ok, r
    return r.message


def test_restart_then_relocate_then_error() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    assert failed(s, "a").startswith("restart 1/1")
    assert s.vms["a"].observed is Observed.NONE and s.vms["a"].host == "h1"
    assert failed(s, "a").startswith("relocate 1/1")
    assert s.vms["a"].host is None and s.vms["a"].avoid_hosts == ["h1"]
    assign(s, "a", "h2")
    assert failed(s, "a").startswith("restart 1/1")
    assert failed(s, "a") == "error"
    assert s.vms["a"].error and not s.vms["a"].wants_to_run
    s.apply(c.SetVmState(id=cid(), name="a", state="started"))  # the operator retries
    assert not s.vms["a"].error and s.vms["a"].restarts == 0


def test_a_disk_lock_held_elsewhere_is_an_error_at_once_never_retried() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    held = f"{storage.LOCK_CONFLICT}start a: resource busy: Lockspace resource is locked"
    assert failed(s, "a", reason=held) == "error"
    vm = s.vms["a"]
    assert vm.host == "h1" and vm.restarts == 1 and vm.relocations == 0
    assert not vm.wants_to_run and "resource busy" in vm.error and "h1" in vm.error
    s.apply(c.SetVmState(id=cid(), name="a", state="started"))  # the operator retries
    assert not s.vms["a"].error and s.vms["a"].wants_to_run


def test_a_long_run_forgives_old_failures() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    failed(s, "a", ts=0.0)
    s.apply(c.ObserveVms(id=cid(), ts=10.0, host="h1", observed={"a": "running"}))
    assert failed(s, "a", ts=10.0 + 601).startswith("restart 1/1")


def test_vm_failed_is_refused_unless_really_failed_there() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    r = s.apply(c.VmFailed(id=cid(), name="a", host="h1"))
    assert r.code == "conflict"  # observed none: nothing failed


# ---- states, policy, admission --------------------------------------------------------------


def test_disabled_and_ignored_vms_on_their_host() -> None:
    vms = {"d": Vm(name="d", uuid="ud", vcpus=1, memory_mib=1, host="me",
                   state=VmState.DISABLED),
           "i": Vm(name="i", uuid="ui", vcpus=1, memory_mib=1, host=None,
                   state=VmState.IGNORED)}
    doms = [Domain("ud", "d", Observed.RUNNING, True), Domain("ui", "i", Observed.RUNNING, True)]
    lease = Lease(until=10.0, started=0.0, length=2.5)
    acts = decide_host("me", vms, doms, lease, 1.0, True)
    assert [(a.act, a.vm) for a in acts] == [(Act.STOP, "d")]  # ignored: hands off


def test_policy_set_validates_every_key() -> None:
    s = cluster()
    assert s.apply(c.SetPolicy(id=cid(), changes={"max_restart": 3, "cpu_ratio": 2})).ok
    assert (s.policy.max_restart, s.policy.cpu_ratio) == (3, 2.0)
    bad = s.apply(c.SetPolicy(id=cid(), changes={"max_restart": -1, "nope": 1}))
    assert bad.code == "invalid" and "max_restart" in bad.message and "nope" in bad.message
    assert s.policy.max_restart == 3


def nearly_full() -> ClusterState:
    """Admission control on; 4 x 512 MiB HA VMs on 3 hosts of 1,024 MiB."""
    s = cluster(hosts=3, memory_mib=1024)
    s.apply(c.SetPolicy(id=cid(), changes={"admission_control": 1}))
    for i in range(4):
        assert create(s, f"v{i}", memory_mib=512).ok
        s.apply(c.AssignVm(id=cid(), name=f"v{i}", host=f"h{i % 3 + 1}"))
    return s


def test_admission_control_refuses_what_a_host_failure_could_not_restart() -> None:
    s = nearly_full()
    r = create(s, "v4", memory_mib=512)  # 5 x 512 cannot survive losing one 1024 host
    assert r.code == "admission" and "could not restart" in r.message
    assert "v4" not in s.vms
    assert create(s, "plain", memory_mib=512, ha=False).ok  # not HA: not protected


def test_failure_tolerance_pauses_after_each_scenario_and_says_the_same() -> None:
    s = cluster(hosts=4, memory_mib=4096)
    for i in range(4):
        assert create(s, f"v{i}", memory_mib=1536).ok and assign(s, f"v{i}", f"h{i + 1}").ok
    paused: list[int] = []
    quiet = failures_tolerated(s.hosts.values(), s.vms.values(), s.policy, s)
    told = failures_tolerated(s.hosts.values(), s.vms.values(), s.policy, s,
                              between=lambda: paused.append(1))
    # each of the 4 hosts lost alone, then the two with the most HA memory, then three
    assert quiet == told == 2 and len(paused) == 4 + 1 + 1


def test_admission_is_the_proposers_and_apply_only_refuses_a_stale_check() -> None:
    s = nearly_full()
    v4 = c.CreateVm(id=cid(), name="v4", uuid="u4", vcpus=1, memory_mib=512)
    assert "could not restart" in (s.admission_refusal(v4) or "")
    plain = c.CreateVm(id=cid(), name="plain", uuid="u5", vcpus=1, memory_mib=512, ha=False)
    assert s.admission_refusal(plain) is None
    assert "v4" not in s.vms  # checking changed nothing
    # apply runs no placement for a checked command: a stale check is refused...
    epoch = s.admission_epoch
    s.apply(c.SetMaintenance(id=cid(), name="h3", on=True))  # bears on admission
    stale = s.apply(c.CreateVm(id=cid(), name="v5", uuid="u6", vcpus=1, memory_mib=64,
                               admitted_epoch=epoch))
    assert stale.code == "conflict" and "admission control was checked" in stale.message
    # ...and a current one applies as the proposer decided
    assert s.apply(c.CreateVm(id=cid(), name="v5", uuid="u6", vcpus=1, memory_mib=64,
                              admitted_epoch=s.admission_epoch)).ok
    # what does not bear on it leaves the epoch alone
    epoch = s.admission_epoch
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"v0": "running"}))
    assert s.admission_epoch == epoch


# ---- agent rules ------------------------------------------------------------------------------


def test_lease_expiry_and_startup_grace() -> None:
    fresh = Lease(until=None, started=100.0, length=2.5)
    assert not fresh.valid(100.1) and not fresh.expired(102.4) and fresh.expired(102.5)
    held = Lease(until=105.0, started=100.0, length=2.5)
    assert held.valid(104.9) and held.expired(105.0)


def test_self_fence_destroys_ha_vms_only() -> None:
    vms = {"ha": Vm(name="ha", uuid="u1", vcpus=1, memory_mib=1, host="me"),
           "plain": Vm(name="plain", uuid="u2", vcpus=1, memory_mib=1, host="me", ha=False)}
    doms = [Domain("u1", "ha", Observed.RUNNING, True), Domain("u2", "plain", Observed.RUNNING,
                                                               True),
            Domain("u3", "stray", Observed.RUNNING, True)]
    gone = Lease(until=1.0, started=0.0, length=2.5)
    acts = decide_host("me", vms, doms, gone, 2.0, True)
    assert {(a.act, a.vm) for a in acts} == {(Act.DESTROY, "ha"), (Act.DESTROY, "stray")}


def test_watchdog_is_armed_to_lease_end_and_stood_down_when_nothing_to_guard() -> None:
    vms = {"ha": Vm(name="ha", uuid="u1", vcpus=1, memory_mib=1, host="me")}
    running = [Domain("u1", "ha", Observed.RUNNING, True)]
    lease = Lease(until=12.0, started=0.0, length=2.5)
    assert watchdog_guard(vms, running, lease, 1.0, 11.0).until == 13.0
    expired = watchdog_guard(vms, running, lease, 1.0, 12.5)
    assert expired.until is None and not expired.disarm  # let it fire if we cannot fence
    assert watchdog_guard(vms, [], lease, 1.0, 11.0).disarm


def test_profiles_keep_the_inequalities() -> None:
    for name, t in PROFILES.items():
        raft = RAFT_FOR_PROFILE[name]
        assert problems(t, raft["election_max"], raft["leader_fallback"]) == []
    broken = PROFILES["safe"].__class__(heartbeat=1.0, lease=1.0, watchdog=1.0, margin=0.05,
                                        host_down_after=0.5)
    said = " ".join(problems(broken, 0.6, 1.5))
    assert "lease" in said and "margin" in said and "host_down_after" in said


def test_events_tell_the_story() -> None:
    s = cluster()
    create(s, "a")
    cmd = c.AssignVm(id=cid(), name="a", host="h2", expect_version=s.vms["a"].version)
    assert describe(cmd, s.apply(cmd), s) == ["VM a placed on h2"]
    first = c.ClaimLeadership(id=cid(), term=1, leader="h1")
    assert describe(first, s.apply(first), s) == ["h1 leads (term 1)"]
    again = c.ClaimLeadership(id=cid(), term=1, leader="h1")
    assert describe(again, s.apply(again), s) == []  # renewals are not news
