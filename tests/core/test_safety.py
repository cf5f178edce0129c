"""The state machine's guards: immutable views, retries that are really retries, batches,
plans re-checked at apply, and the operator actions that could run a VM twice."""

from __future__ import annotations

import itertools
import math

import pytest

from hacluster.core import commands as c
from hacluster.core.model import HostStatus, Observed
from hacluster.core.reconcile import LeaderView, plan, reason_kinds
from hacluster.core.state import ClusterState

from .factories import assign, cid, create, register


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState()
    register(s, "h1", memory_mib=2048)
    register(s, "h2", memory_mib=2048)
    return s


def down(state: ClusterState, host: str) -> None:
    assert state.apply(c.SetHostStatus(id=cid(), name=host, status="down")).ok


# ---- copy-on-write: what a reader holds never changes ---------------------------------------

def test_a_fork_never_sees_later_changes_nor_makes_any(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    view = state.fork()
    vm_before, host_before = view.vms["a"], view.hosts["h1"]
    down(state, "h1")
    state.apply(c.FenceHost(id=cid(), name="h1", by="lease+watchdog"))
    create(state, "b")
    assert view.vms["a"] is vm_before and vm_before.host == "h1"
    assert host_before.status is HostStatus.UP and set(view.vms) == {"a"}
    assert view.incidents == [] and len(state.incidents) == 1
    assert state.vms["a"].host is None and state.hosts["h1"].status is HostStatus.FENCED
    assert view.apply(c.CreateVm(id=cid(), name="c", uuid="uc", vcpus=1, memory_mib=1)).ok
    assert "c" not in state.vms


def test_dry_run_answers_like_apply_and_changes_nothing(state: ClusterState) -> None:
    before = state.to_dict()
    verdict = state.dry_run(c.CreateVm(id="d1", name="x", uuid="ux", vcpus=1, memory_mib=64))
    assert verdict.ok and state.to_dict() == before
    refused = state.dry_run(c.SetPolicy(id="d2", changes={"max_restart": 0.9}))
    assert not refused.ok and "whole number" in refused.message
    assert state.to_dict() == before


# ---- request ids -----------------------------------------------------------------------------

def test_a_reused_request_id_with_another_request_is_refused(state: ClusterState) -> None:
    first = state.apply(c.CreateVm(id="req", name="a", uuid="u1", vcpus=1, memory_mib=64))
    retried = state.apply(c.CreateVm(id="req", ts=99.0, name="a", uuid="u1", vcpus=1,
                                     memory_mib=64))
    assert first.ok and retried == first and len(state.vms) == 1
    other = state.apply(c.CreateVm(id="req", name="b", uuid="u2", vcpus=1, memory_mib=64))
    assert other.code == "invalid" and "already used for a different request" in other.message
    assert set(state.vms) == {"a"}


# ---- batches and the re-check of plans -------------------------------------------------------

def test_a_batch_applies_each_command_on_its_own(state: ClusterState) -> None:
    for name in ("a", "b", "c"):
        create(state, name, memory_mib=900)
    cmds = tuple(c.AssignVm(id=cid(), name=n, host="h1", expect_version=state.vms[n].version)
                 for n in ("a", "b", "c"))
    result = state.apply(c.Batch(id=cid(), commands=cmds))
    # h1 has 2048 MiB: the plan was made as if each fitted alone, apply checks them in order
    assert [p.ok for p in result.parts] == [True, True, False]
    assert "no longer fits" in result.parts[2].message
    assert [state.vms[n].host for n in ("a", "b", "c")] == ["h1", "h1", None]
    assert all(p.id not in state.recent for p in cmds)  # only the batch is remembered


def test_a_batch_from_a_deposed_leader_is_refused_whole(state: ClusterState) -> None:
    state.apply(c.ClaimLeadership(id=cid(), term=5, leader="h2"))
    create(state, "a")
    stale = c.Batch(id=cid(), term=4, commands=(
        c.AssignVm(id=cid(), term=4, name="a", host="h1"),))
    assert state.apply(stale).code == "stale_term" and state.vms["a"].host is None


def test_assignment_to_a_host_in_maintenance_is_refused(state: ClusterState) -> None:
    create(state, "a")
    state.apply(c.SetMaintenance(id=cid(), name="h1", on=True))
    r = assign(state, "a", "h1")
    assert r.code == "conflict" and "maintenance" in r.message


# ---- never twice: operator actions on a VM whose host is lost ----------------------------------

@pytest.mark.parametrize("action", ["stopped", "started", "disabled", "delete"])
def test_a_vm_on_a_down_host_cannot_be_changed(state: ClusterState, action: str) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "running"}))
    if action == "started":  # stopped there; starting it would place it elsewhere
        state.apply(c.SetVmState(id=cid(), name="a", state="stopped"))
        state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "stopped"}))
    down(state, "h1")
    cmd: c.Command = (c.DeleteVm(id=cid(), name="a") if action == "delete"
                      else c.SetVmState(id=cid(), name="a", state=action))
    r = state.apply(cmd)
    assert r.code == "conflict" and "may still run it" in r.message
    assert "confirm-fenced" in r.message
    assert "a" in state.vms and state.vms["a"].host == "h1"


def test_a_non_ha_vm_stays_put_until_its_host_is_known_off(state: ClusterState) -> None:
    create(state, "a", ha=False)
    assign(state, "a", "h1")
    down(state, "h1")
    state.apply(c.FenceHost(id=cid(), name="h1", by="lease+watchdog"))
    # its HA VMs were stopped by the host itself; a non-HA VM may still run there
    r = state.apply(c.DeleteVm(id=cid(), name="a"))
    assert r.code == "conflict" and state.vms["a"].host == "h1"
    state.apply(c.SetHostStatus(id=cid(), name="h1", status="up"))
    down(state, "h1")
    state.apply(c.ConfirmFenced(id=cid(), name="h1"))  # an operator: the host is off
    assert state.apply(c.DeleteVm(id=cid(), name="a")).ok


def test_a_migrating_vm_cannot_be_deleted(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    state.apply(c.SetMigration(id=cid(), name="a", to="h2"))
    r = state.apply(c.DeleteVm(id=cid(), name="a"))
    assert r.code == "conflict" and "moving to h2" in r.message


# ---- bad numbers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "fragment"), [
    ({"max_restart": 0.9}, "whole number"),
    ({"admission_failures": 1.5}, "whole number"),
    ({"cpu_ratio": math.nan}, "must be a number"),
    ({"cpu_ratio": math.inf}, "must be a number"),
    ({"balance_mode": 1.5}, "whole number"),
])
def test_policy_values_must_be_finite_and_whole_where_counted(
        state: ClusterState, changes: dict[str, float], fragment: str) -> None:
    r = state.apply(c.SetPolicy(id=cid(), changes=changes))
    assert r.code == "invalid" and fragment in r.message
    assert state.policy.version == 0


def test_a_rule_naming_too_many_vms_is_refused_cheaply(state: ClusterState) -> None:
    r = state.apply(c.CreateRule(id=cid(), name="big", kind="anti-affinity", strength="must",
                                 vms=[f"vm{i}" for i in range(150_000)]))
    assert r.code == "invalid" and "at most 256" in r.message and not state.rules


# ---- failures that end -----------------------------------------------------------------------

def test_a_vm_that_failed_on_every_host_ends_in_error_with_reasons(state: ClusterState) -> None:
    state.apply(c.SetPolicy(id=cid(), changes={"max_restart": 0, "max_relocate": 5}))
    create(state, "a")
    for host in ("h1", "h2"):
        assign(state, "a", host)
        state.apply(c.ObserveVms(id=cid(), host=host, observed={"a": "stopped"}))
        r = state.apply(c.VmFailed(id=cid(), name="a", host=host,
                                   reason=f"libvirt: no {host} device"))
        assert r.ok
    vm = state.vms["a"]
    assert r.message == "error" and vm.error and "no other host left" in vm.error
    assert "libvirt: no h2 device" in vm.error
    assert vm.failures == ["h1: libvirt: no h1 device", "h2: libvirt: no h2 device"]


def test_running_long_enough_forgives_failures_and_hosts(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "stopped"}))
    state.apply(c.VmFailed(id=cid(), name="a", host="h1"))  # restart 1/1
    state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "stopped"}))
    state.apply(c.VmFailed(id=cid(), name="a", host="h1"))  # relocate away from h1
    assert state.vms["a"].avoid_hosts == ["h1"]
    assign(state, "a", "h2")
    state.apply(c.ObserveVms(id=cid(), ts=100.0, host="h2", observed={"a": "running"}))
    state.apply(c.ObserveVms(id=cid(), ts=800.0, host="h2", observed={"a": "stopped"}))
    r = state.apply(c.VmFailed(id=cid(), ts=800.0, name="a", host="h2"))
    assert r.message.startswith("restart 1/") and state.vms["a"].avoid_hosts == []


# ---- bounded leader work ---------------------------------------------------------------------

def test_pending_reasons_are_recommitted_only_when_their_kind_changes(
        state: ClusterState) -> None:
    create(state, "big", memory_mib=4000)
    view = LeaderView(now=10.0, leader_since=0.0, last_heard={"h1": 10.0, "h2": 10.0})
    first = plan(state, view, 0, iter(map(str, range(100))), 1.0)
    assert [type(x) for x in first.commands] == [c.MarkPending]
    for cmd in first.commands:
        state.apply(cmd)
    register(state, "h1", memory_mib=3000)  # more memory, still too little: same kind
    again = plan(state, view, 0, iter(map(str, range(100, 200))), 2.0)
    assert again.commands == []
    assert reason_kinds(["h1: memory: needs 4000 MiB memory, 3000 MiB free"]) == ["h1: memory"]


def test_pending_vms_are_not_judged_again_while_nothing_changed(state: ClusterState) -> None:
    create(state, "big", memory_mib=4000)
    view = LeaderView(now=10.0, leader_since=0.0, last_heard={"h1": 10.0, "h2": 10.0})
    for cmd in plan(state, view, 0, iter(map(str, range(100))), 1.0).commands:
        state.apply(cmd)
    judged = LeaderView(now=10.0, leader_since=0.0, last_heard={"h1": 10.0, "h2": 10.0},
                        pending_judged_at=state.room_epoch)
    p = plan(state, judged, 0, iter(map(str, range(100, 200))), 2.0)
    assert "placed" not in p.verdict and p.commands == []
    assert state.vms["big"].observed is Observed.NONE


def test_pending_vms_are_judged_in_rounds_of_a_bounded_size(state: ClusterState) -> None:
    for i in range(7):
        create(state, f"big{i}", memory_mib=4000)
    judged: list[str] = []
    cursor, epoch = "", -1
    ids = map(str, itertools.count())
    for _ in range(10):
        view = LeaderView(now=10.0, leader_since=0.0, last_heard={"h1": 10.0, "h2": 10.0},
                          placement_budget=3, pending_from=cursor, pending_judged_at=epoch)
        p = plan(state, view, 0, ids, 1.0)
        judged += [cmd.name for cmd in p.commands if isinstance(cmd, c.MarkPending)]
        for cmd in p.commands:
            state.apply(cmd)
        cursor = p.pending_next or ""
        if p.pending_next is None:
            epoch = state.room_epoch
    assert sorted(judged) == [f"big{i}" for i in range(7)]  # each once, 3 at most a pass
    state.apply(c.SetPolicy(id=cid(), changes={"memory_ratio": 1.5}))  # may make room
    view = LeaderView(now=10.0, leader_since=0.0, last_heard={"h1": 10.0, "h2": 10.0},
                      placement_budget=3, pending_judged_at=epoch)
    assert plan(state, view, 0, ids, 1.0).pending_next == "big2"
