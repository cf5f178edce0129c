"""ClusterState.apply: every command's accepted and refused cases, as tables."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hacluster.core import commands as c
from hacluster.core import vm_index
from hacluster.core.model import HostStatus, Observed, VmState, vm_status
from hacluster.core.reconcile import unreported
from hacluster.core.state import RECENT_IDS, ClusterState

from .factories import assign, cid, create, register


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState()
    register(s, "h1")
    register(s, "h2")
    return s


def test_create_vm_records_spec_and_version(state: ClusterState) -> None:
    r = create(state, "web1", vcpus=2, memory_mib=1024, disk_gib=10, priority=5, ha=False)
    assert r.ok
    vm = state.vms["web1"]
    assert (vm.vcpus, vm.memory_mib, vm.disk_gib, vm.priority, vm.ha) == (2, 1024, 10, 5, False)
    assert vm.state is VmState.STARTED and vm.host is None and vm.version == r.version


@pytest.mark.parametrize(("spec", "fragment"), [
    ({"memory_mib": 0}, "memory_mib must be between 1"),
    ({"memory_mib": -5}, "memory_mib must be between 1"),
    ({"vcpus": 0}, "vcpus must be between 1"),
    ({"vcpus": "2"}, "vcpus must be an integer"),
    ({"disk_gib": -1}, "disk_gib must be between 0"),
    ({"priority": 5000}, "priority must be between 0"),
    ({"state": "running"}, "state must be one of"),
])
def test_create_vm_refuses_bad_spec_and_changes_nothing(
        state: ClusterState, spec: dict[str, object], fragment: str) -> None:
    before = state.to_dict()["vms"], state.revision
    r = create(state, "bad", **spec)
    assert not r.ok and r.code == "invalid" and fragment in r.message
    assert (state.to_dict()["vms"], state.revision) == before


@pytest.mark.parametrize("name", ["", "UPPER", "-lead", "trail-", "has space", "a" * 64, "x/y"])
def test_create_vm_refuses_bad_names(state: ClusterState, name: str) -> None:
    r = create(state, name)
    assert r.code == "invalid" and "name" in r.message
    assert state.vms == {}


def test_duplicate_name_or_uuid_is_refused(state: ClusterState) -> None:
    assert create(state, "a").ok
    assert create(state, "a", uuid="other").code == "exists"
    assert create(state, "b", uuid="uuid-a").code == "exists"
    assert set(state.vms) == {"a"}


def test_retried_command_applies_once(state: ClusterState) -> None:
    cmd = c.CreateVm(id="same", name="a", uuid="u", vcpus=1, memory_mib=1)
    first = state.apply(cmd)
    revision = state.revision
    again = state.apply(cmd)
    assert again == first and state.revision == revision


def test_recent_ids_are_bounded(state: ClusterState) -> None:
    """At most RECENT_IDS kept, forgotten oldest first a tenth at a time (a fork copies only
    the newest tenth): never fewer than nine tenths of them."""
    before = len(state.recent)
    for i in range(RECENT_IDS + 5):
        state.apply(c.SetVmState(id=f"x{i}", name="missing", state="started"))
        assert RECENT_IDS * 9 // 10 <= len(state.recent) <= RECENT_IDS or i + before < RECENT_IDS
    assert "x0" not in state.recent and f"x{RECENT_IDS + 4}" in state.recent
    kept = [f"x{i}" for i in range(RECENT_IDS + 5) if f"x{i}" in state.recent]
    assert kept == [f"x{i}" for i in range(RECENT_IDS + 5 - len(kept), RECENT_IDS + 5)]
    again = state.apply(c.SetVmState(id=kept[0], name="missing", state="started"))
    assert again == state.recent[kept[0]][1]  # still answered as the retry it is


def test_compare_and_set_refuses_stale_version(state: ClusterState) -> None:
    create(state, "a")
    v = state.vms["a"].version
    assert state.apply(c.SetVmState(id=cid(), name="a", state="stopped", expect_version=v)).ok
    stale = state.apply(c.SetVmState(id=cid(), name="a", state="started", expect_version=v))
    assert stale.code == "conflict" and state.vms["a"].state is VmState.STOPPED


def test_unknown_vm_is_not_found(state: ClusterState) -> None:
    for cmd in (c.SetVmState(id=cid(), name="nope", state="stopped"),
                c.DeleteVm(id=cid(), name="nope"),
                c.AssignVm(id=cid(), name="nope", host="h1")):
        assert state.apply(cmd).code == "not_found"


def test_assign_requires_an_up_host_and_no_other_host(state: ClusterState) -> None:
    create(state, "a")
    assert state.apply(c.AssignVm(id=cid(), name="a", host="h9")).code == "conflict"
    assert assign(state, "a", "h1").ok and state.vms["a"].host == "h1"
    assert assign(state, "a", "h2").code == "conflict"  # never on two hosts
    state.apply(c.SetHostStatus(id=cid(), name="h2", status="down"))
    create(state, "b")
    assert assign(state, "b", "h2").code == "conflict"


def test_leader_commands_from_a_deposed_term_are_refused(state: ClusterState) -> None:
    assert state.apply(c.ClaimLeadership(id=cid(), term=3, leader="h1")).ok
    create(state, "a")
    old = state.apply(c.AssignVm(id=cid(), term=2, name="a", host="h1"))
    assert old.code == "stale_term" and state.vms["a"].host is None
    assert state.apply(c.ClaimLeadership(id=cid(), term=2, leader="h2")).code == "stale_term"
    assert (state.leader, state.leader_term) == ("h1", 3)
    assert assign(state, "a", "h1", term=3).ok


def test_observed_state_counts_only_from_the_assigned_host(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    state.apply(c.ObserveVms(id=cid(), host="h2", observed={"a": "running"}))
    before = state.vms["a"].observed
    state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "running", "gone": "running"}))
    assert (before, state.vms["a"].observed) == (Observed.NONE, Observed.RUNNING)


def test_start_of_a_stopped_vm_asks_for_placement_again(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    state.apply(c.SetVmState(id=cid(), name="a", state="stopped"))
    assert state.vms["a"].host == "h1"  # keeps its definition while stopping
    state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "stopped"}))
    state.apply(c.SetVmState(id=cid(), name="a", state="started"))
    vm = state.vms["a"]
    assert (vm.host, vm.last_host) == (None, "h1")


def test_start_while_still_running_keeps_the_host(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "running"}))
    state.apply(c.SetVmState(id=cid(), name="a", state="stopped"))
    state.apply(c.SetVmState(id=cid(), name="a", state="started"))
    assert state.vms["a"].host == "h1"


def test_pending_reasons_only_for_unassigned(state: ClusterState) -> None:
    create(state, "a")
    r = state.apply(c.MarkPending(id=cid(), name="a", reasons=["h1: memory"]))
    assert r.ok and state.vms["a"].pending_reasons == ["h1: memory"]
    assign(state, "a", "h1")
    assert state.vms["a"].pending_reasons == []
    assert state.apply(c.MarkPending(id=cid(), name="a", reasons=["x"])).code == "conflict"


def test_register_host_is_idempotent_and_keeps_status(state: ClusterState) -> None:
    version = state.hosts["h1"].version
    assert register(state, "h1").message == "unchanged"
    assert state.hosts["h1"].version == version
    state.apply(c.SetHostStatus(id=cid(), name="h1", status="down"))
    register(state, "h1", cpus=32)
    assert state.hosts["h1"].cpus == 32 and state.hosts["h1"].status is HostStatus.DOWN


def test_wrongly_shaped_body_is_refused_not_raised(state: ClusterState) -> None:
    r = state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "exploded"}))
    assert r.code == "invalid"  # every value is checked before anything changes
    create(state, "a")
    assign(state, "a", "h1")
    r = state.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "exploded"}))
    assert r.code == "invalid"
    r = state.apply(c.SetHostStatus(id=cid(), name="h1", status="sideways"))
    assert r.code == "invalid" and state.hosts["h1"].status is HostStatus.UP


def test_snapshot_is_plain_data_and_round_trips(state: ClusterState) -> None:
    create(state, "a")
    assign(state, "a", "h1")
    blob = json.dumps(state.to_dict())  # plain data only: JSON takes it
    assert ClusterState.from_dict(json.loads(blob)) == state


def test_users_are_created_changed_and_deleted_with_their_logins() -> None:
    s = ClusterState()
    good = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    assert s.apply(c.CreateUser(id=cid(), name="ann", role="operator",
                                password_hash=good)).ok
    assert s.apply(c.CreateUser(id=cid(), name="ann", role="operator",
                                password_hash=good)).code == "exists"
    assert s.apply(c.CreateUser(id=cid(), name="bob", role="operator",
                                password_hash="plaintext")).code == "invalid"
    assert s.apply(c.CreateUser(id=cid(), name="bob", role="root",
                                password_hash=good)).code == "invalid"
    assert s.apply(c.SetPassword(id=cid(), name="ann", password_hash=good + "x")).ok
    assert s.users["ann"].password_hash == good + "x"
    for name, owner in (("s1", "user:ann"), ("s2", "user:annie"), ("s3", "admin")):
        assert s.apply(c.CreateToken(id=cid(), name=name, role="operator", sha256=name[1] * 64,
                                     owner=owner)).ok
    assert s.apply(c.DeleteUser(id=cid(), name="ann")).ok
    assert "ann" not in s.users and set(s.tokens) == {"s2", "s3"}
    assert set(s.token_hashes.values()) == {"s2", "s3"}
    assert s.apply(c.DeleteUser(id=cid(), name="ann")).code == "not_found"
    assert ClusterState.from_dict(s.to_dict()) == s


def test_resize_is_checked_against_the_host_and_waits_for_a_restart() -> None:
    s = ClusterState()
    register(s, "h1", cpus=2, memory_mib=2048)
    create(s, "v", vcpus=1, memory_mib=512)
    create(s, "w", vcpus=1, memory_mib=512)
    assign(s, "v", "h1")
    assign(s, "w", "h1")
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"v": "running", "w": "running"}))
    r = s.apply(c.ResizeVm(id=cid(), name="v", memory_mib=4096))
    assert r.code == "conflict" and "would not fit on h1" in r.message
    assert s.vms["v"].memory_mib == 512
    assert s.apply(c.ResizeVm(id=cid(), name="v", vcpus=0)).code == "invalid"
    assert s.apply(c.ResizeVm(id=cid(), name="v", vcpus=2, memory_mib=1024)).ok
    vm = s.vms["v"]
    assert (vm.vcpus, vm.memory_mib, vm.restart_needed) == (2, 1024, True)
    assert s.apply(c.ResizeVm(id=cid(), name="v", vcpus=2)).message == "unchanged"
    # it stops and boots again: from its new definition
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"v": "stopped"}))
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"v": "running"}))
    assert not s.vms["v"].restart_needed
    # a stopped VM holds nothing: any size that a host could hold is accepted
    s.apply(c.SetVmState(id=cid(), name="w", state="stopped"))
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"w": "stopped"}))
    assert s.apply(c.ResizeVm(id=cid(), name="w", memory_mib=8192)).ok
    assert not s.vms["w"].restart_needed


def test_the_vm_index_follows_a_vm_through_its_life() -> None:
    """Each step publishes a fork, as the Raft adapter does; the index (built by a reader at
    the start) is carried and updated, never rebuilt, and lists what a scan would."""
    s = ClusterState()
    for h in ("h1", "h2"):
        register(s, h)
    s.listed(vm_index.UNPLACED)  # a reader builds it once
    steps: list[tuple[c.Command, dict[str, set[str]]]] = [
        (c.CreateVm(id=cid(), name="a", uuid="ua", vcpus=1, memory_mib=64),
         {vm_index.UNPLACED: {"a"}}),
        (c.AssignVm(id=cid(), name="a", host="h1"), {vm_index.on("h1"): {"a"}}),
        (c.RequestMigration(id=cid(), name="a", to="h2"),
         {vm_index.on("h1"): {"a"}, vm_index.ASKED: {"a"}}),
        (c.SetMigration(id=cid(), name="a", to="h2"),
         {vm_index.on("h1"): {"a"}, vm_index.on("h2"): {"a"}, vm_index.MOVING: {"a"}}),
        (c.FinishMigration(id=cid(), name="a", source="h1", to="h2", ok=True),
         {vm_index.on("h2"): {"a"}}),
        (c.ObserveVms(id=cid(), host="h2", observed={"a": "stopped"}),
         {vm_index.on("h2"): {"a"}, vm_index.FAILED: {"a"}}),
        (c.SetVmState(id=cid(), name="a", state="stopped"),
         {vm_index.on("h2"): {"a"}, vm_index.FAILED: {"a"}}),
        (c.DeleteVm(id=cid(), name="a"), {}),
    ]
    for cmd, lists in steps:
        s = s.fork()
        assert s.apply(cmd).ok, cmd
        assert s._index == {k: frozenset(v) for k, v in lists.items()}, cmd
        assert s._index == vm_index.build(s.vms.values())


def test_what_the_index_answers_is_what_a_scan_of_every_vm_says() -> None:
    """The running count of a status call and the leader's "arrived unreported" lists come
    from the index of VMs per host (a scan of 10,000 VMs each before): the same answers."""
    s = ClusterState()
    for h in ("h1", "h2", "h3"):
        register(s, h)
    for name, host in (("a", "h1"), ("b", "h2"), ("c", "h1"), ("d", None), ("e", "h3")):
        create(s, name, ha=True)
        if host:
            assign(s, name, host)
    assert s.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "running",
                                                                "c": "running"})).ok
    assert s.apply(c.ObserveVms(id=cid(), host="h2", observed={"b": "running"})).ok
    assert s.apply(c.SetMigration(id=cid(), name="c", to="h2")).ok

    def scanned_running(state: ClusterState) -> int:
        return sum(1 for v in state.vms.values()
                   if vm_status(v, state.hosts.get(v.host or "")) == "running")

    def scanned_unreported(state: ClusterState, host: str) -> list[str]:
        return sorted(v.name for v in state.vms.values() if v.ha and (
            (v.host == host and v.unreported) or v.migrating_to == host))

    assert s.running_count() == scanned_running(s) == 3
    for h in ("h1", "h2", "h3"):
        assert unreported(s, h) == scanned_unreported(s, h)
    assert unreported(s, "h2") == ["c"]
    assert s.apply(c.SetHostStatus(id=cid(), name="h2", status="down")).ok
    assert s.running_count() == scanned_running(s) == 2


def test_an_assignment_counts_what_its_host_holds_even_mid_batch() -> None:
    """What a host holds is taken from the index (the VMs on it when the entry began) plus
    the VMs the entry has changed so far: a batch that moved a VM there, then did something
    else, must still count that VM when it assigns the next."""
    s = ClusterState()
    register(s, "h1", memory_mib=1024)
    register(s, "h2")
    for name in ("a", "b", "c", "d"):
        create(s, name, memory_mib=512)
    assign(s, "a", "h2")
    s.listed(vm_index.UNPLACED)  # a reader: from here on the state carries an index
    t = s.fork()
    other = c.ObserveVms(id=cid(), host="h2", observed={"a": "running"})  # not an assignment
    batch = t.apply(c.Batch(id=cid(), commands=(
        c.AssignVm(id=cid(), name="b", host="h1"), other,
        c.AssignVm(id=cid(), name="c", host="h1"), dataclasses.replace(other, id=cid()),
        c.AssignVm(id=cid(), name="d", host="h1"))))
    assert [p.ok for p in batch.parts] == [True, True, True, True, False]
    assert "no longer fits" in batch.parts[4].message
    for state in (s, t):
        for h in ("h1", "h2"):
            state._usage = None
            assert state._usage_of(h) == [
                sum(getattr(v, f) for v in state.vms.values()
                    if v.wants_to_run and h in (v.host, v.migrating_to))
                for f in ("vcpus", "memory_mib", "disk_gib")]


def test_a_snapshot_s_plain_data_pauses_between_slices_and_is_the_same() -> None:
    s = ClusterState()
    for i in range(450):
        create(s, f"vm{i:03d}")
    paused: list[int] = []
    assert s.to_dict(pause=lambda: paused.append(1)) == s.to_dict()
    assert len(paused) >= 2 + 2  # 450 VMs and 450 request ids, 200 a slice
