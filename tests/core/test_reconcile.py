"""The leader's plan: liveness transitions, observed states and placement, as commands."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

from hacluster.core import commands as c
from hacluster.core.model import HostStatus, MemberRecord
from hacluster.core.reconcile import LeaderView, concerns_leader, plan
from hacluster.core.state import ClusterState

from .factories import assign, cid, create, register

_counter = itertools.count()


def ids() -> Iterator[str]:
    """Fresh ids across plans: a reused id would be taken for a retry and not applied."""
    return (f"p{next(_counter)}" for _ in itertools.count())


def cluster() -> ClusterState:
    s = ClusterState()
    for h in ("h1", "h2"):
        register(s, h, memory_mib=2048)
    return s


def run(state: ClusterState, view: LeaderView, term: int = 1) -> list[c.Command]:
    p = plan(state, view, term, ids(), ts=0.0)
    for cmd in p.commands:
        assert state.apply(cmd).ok, cmd
    return p.commands


def test_new_leader_gives_unheard_hosts_a_full_grace_period() -> None:
    s = cluster()
    assert run(s, LeaderView(now=100.9, leader_since=100.0)) == []
    cmds = run(s, LeaderView(now=101.1, leader_since=100.0, last_heard={"h1": 101.0}))
    assert [(type(x), getattr(x, "name", None)) for x in cmds] == [(c.SetHostStatus, "h2")]
    assert s.hosts["h2"].status is HostStatus.DOWN and s.hosts["h1"].status is HostStatus.UP


def test_host_comes_back_up_when_heard_again() -> None:
    s = cluster()
    s.apply(c.SetHostStatus(id=cid(), name="h2", status="down"))
    run(s, LeaderView(now=10.0, leader_since=0.0, last_heard={"h1": 10.0, "h2": 9.9}))
    assert s.hosts["h2"].status is HostStatus.UP


def test_places_waiting_vms_and_records_why_others_wait() -> None:
    s = cluster()
    create(s, "small", memory_mib=1024)
    create(s, "huge", memory_mib=4096)
    view = LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0})
    run(s, view)
    assert s.vms["small"].host in {"h1", "h2"}
    assert s.vms["huge"].host is None and len(s.vms["huge"].pending_reasons) == 2
    run(s, view)  # the reasons quote free memory, which the first placement changed
    again = plan(s, view, 1, ids(), 0.0)
    assert again.commands == [] and "1 pending" in again.verdict  # reasons unchanged: no write


def test_observed_changes_are_batched_per_host_and_only_when_changed() -> None:
    s = cluster()
    create(s, "a")
    create(s, "b")
    assign(s, "a", "h1")
    assign(s, "b", "h1")
    current = {n: s.vms[n].version for n in ("a", "b")}
    view = LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0},
                      observed={"h1": {"a": "running", "b": "none"}, "h2": {"a": "stopped"}},
                      reported_versions={"h1": current, "h2": current})
    cmds = run(s, view)
    assert len(cmds) == 1 and isinstance(cmds[0], c.ObserveVms)
    assert cmds[0].observed == {"a": "running"}
    assert run(s, view) == []


def test_reports_older_than_the_leaders_last_decision_are_ignored() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "stopped"}))
    before = s.vms["a"].version
    stopped = {"h1": {"a": "stopped"}}
    view = LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0},
                      observed=stopped, reported_versions={"h1": {"a": before}})
    (failed,) = run(s, view)  # judged once: restart in place
    assert isinstance(failed, c.VmFailed) and s.vms["a"].restarts == 1
    # the same (now stale) heartbeat must not count as a second failure
    assert run(s, view) == [] and s.vms["a"].restarts == 1
    fresh = LeaderView(now=1.2, leader_since=0.0, last_heard={"h1": 1.2, "h2": 1.2},
                       observed=stopped, reported_versions={"h1": {"a": s.vms["a"].version}})
    assert [type(x) for x in run(s, fresh)] == [c.ObserveVms]  # the restart did not happen
    assert [type(x) for x in run(s, fresh)] == [c.VmFailed]  # ...so now it is a failure


def test_plan_carries_the_leaders_term_and_expected_versions() -> None:
    s = cluster()
    create(s, "a")
    version = s.vms["a"].version
    p = plan(s, LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0}), 7,
             ids(), 0.0)
    (cmd,) = p.commands
    assert isinstance(cmd, c.AssignVm) and cmd.term == 7 and cmd.expect_version == version


def test_the_cluster_version_rises_once_every_host_runs_newer_code_and_never_falls() -> None:
    s = cluster()
    assert s.cluster_version == 1
    heard = {"h1": 1.0, "h2": 1.0}
    for versions in ({"h1": 2}, {"h1": 2, "h2": 1}, {"h1": 2, "h2": 0}):
        # a host not heard from, or running older code (0: too old to say), holds it back
        assert not any(isinstance(cmd, c.SetClusterVersion) for cmd in run(
            s, LeaderView(now=1.0, leader_since=0.0, last_heard=heard,
                          code_versions=versions)))
    # nor does a leader raise it past its own code
    assert not any(isinstance(cmd, c.SetClusterVersion) for cmd in run(
        s, LeaderView(now=1.0, leader_since=0.0, last_heard=heard,
                      code_versions={"h1": 3, "h2": 3}, code_version=1)))
    assert s.cluster_version == 1
    (raised,) = [cmd for cmd in run(s, LeaderView(now=1.0, leader_since=0.0, last_heard=heard,
                                                  code_versions={"h1": 2, "h2": 3}))
                 if isinstance(cmd, c.SetClusterVersion)]
    assert raised.version == 2 and s.cluster_version == 2
    # a host running older code again changes nothing: the version is never lowered
    assert not any(isinstance(cmd, c.SetClusterVersion) for cmd in run(
        s, LeaderView(now=1.0, leader_since=0.0, last_heard=heard,
                      code_versions={"h1": 1, "h2": 2})))
    lower = s.apply(c.SetClusterVersion(id=cid(), term=1, version=1))
    assert not lower.ok and "never lowered" in lower.message and s.cluster_version == 2
    assert ClusterState.from_dict(s.to_dict()).cluster_version == 2


def test_a_planned_move_asks_apply_to_check_its_target_only_once_every_member_can() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    s.apply(c.RequestMigration(id=cid(), name="a", to="h2"))
    view = LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0})
    (move,) = [cmd for cmd in plan(s, view, 1, ids(), 0.0).commands
               if isinstance(cmd, c.SetMigration)]
    assert move.to == "h2" and not move.check_target and c.needs(move) == 1
    assert s.apply(c.SetClusterVersion(id=cid(), term=1, version=2)).ok
    (move,) = [cmd for cmd in plan(s, view, 1, ids(), 0.0).commands
               if isinstance(cmd, c.SetMigration)]
    assert move.check_target and c.needs(move) == 2


def member(name: str, n: int) -> c.AddMember:
    ip = f"10.0.0.{n}"
    return c.AddMember(id=cid(), name=name, raft=f"{ip}:7400", api=f"{ip}:7401",
                       peer=f"{ip}:7403", web=f"{ip}:7402")


def test_configured_members_are_recorded_once_the_cluster_runs_version_2() -> None:
    s = cluster()
    configured = tuple(MemberRecord(m.name, m.raft, m.api, m.peer, m.web)
                       for m in (member("h1", 1), member("h2", 2)))
    view = LeaderView(now=1.0, leader_since=0.0, last_heard={"h1": 1.0, "h2": 1.0},
                      configured_members=configured)
    assert not any(isinstance(cmd, c.AddMember) for cmd in run(s, view))  # version 1
    assert s.apply(c.SetClusterVersion(id=cid(), term=1, version=2)).ok
    added = [cmd for cmd in run(s, view) if isinstance(cmd, c.AddMember)]
    assert [m.name for m in added] == ["h1", "h2"] and set(s.members) == {"h1", "h2"}
    assert s.members["h2"].peer == "10.0.0.2:7403"
    assert not any(isinstance(cmd, c.AddMember) for cmd in run(s, view))  # once


def test_members_join_with_their_own_addresses_and_leave_only_empty_or_fenced() -> None:
    s = cluster()
    for i, name in enumerate(("h1", "h2", "h3"), 1):
        assert s.apply(member(name, i)).ok
    assert s.apply(member("h3", 3)).message == "unchanged"  # a retry of the same add
    for bad, why in ((dataclasses.replace(member("h4", 4), raft="nowhere"), "'host:port'"),
                     (dataclasses.replace(member("h4", 4), web="10.0.0.4:7401"), "four"),
                     (member("h4", 3), "h3 already listens"),
                     (dataclasses.replace(member("h3", 4), id=cid()), "other addresses"),
                     (member("-bad", 4), "host name")):
        result = s.apply(bad)
        assert not result.ok and why in result.message, (bad, result)
    assert set(s.members) == {"h1", "h2", "h3"}
    gone = s.apply(c.RemoveMember(id=cid(), name="h3"))
    assert not gone.ok and "at least 3 members" in gone.message
    assert s.apply(member("h4", 4)).ok
    register(s, "h4", memory_mib=2048)
    create(s, "a")
    assign(s, "a", "h2")
    for name, why in (("h2", "still holds 1 VMs (a)"), ("h4", "neither in maintenance nor "
                                                                "fenced"), ("h9", "not exist")):
        result = s.apply(c.RemoveMember(id=cid(), name=name))
        assert not result.ok and why in result.message, result
    assert s.apply(c.SetMaintenance(id=cid(), name="h4", on=True)).ok
    assert s.apply(c.RemoveMember(id=cid(), name="h4")).ok
    assert "h4" not in s.members and "h4" not in s.hosts
    assert ClusterState.from_dict(s.to_dict()).members == s.members


def test_members_beyond_the_voter_count_are_learners_and_a_lost_voter_is_replaced() -> None:
    s = cluster()
    assert s.apply(c.SetClusterVersion(id=cid(), term=1, version=2)).ok
    assert s.apply(c.SetPolicy(id=cid(), changes={"voters": 3})).ok
    for i, name in enumerate(("h1", "h2", "h3", "h4", "h5"), 1):
        assert s.apply(member(name, i)).ok
        if name not in s.hosts:
            register(s, name, memory_mib=2048)
    assert [m.name for m in s.members.values() if m.voter] == ["h1", "h2", "h3"]
    everyone = {h: 1.0 for h in s.hosts}
    assert not any(isinstance(cmd, c.SetVoter) for cmd in run(
        s, LeaderView(now=1.0, leader_since=0.0, last_heard=everyone)))
    # h2 silent, but not yet for voter_replace_after (120 s): nothing changes
    heard = {**everyone, "h2": 0.0}
    assert not any(isinstance(cmd, c.SetVoter) for cmd in run(
        s, LeaderView(now=60.0, leader_since=0.0, last_heard={h: (60.0 if t else 0.0)
                                                              for h, t in heard.items()})))
    # past it: h4 promoted first (4 voters), then h2 demoted (3), then nothing
    late = LeaderView(now=200.0, leader_since=0.0, last_heard={
        h: (0.0 if h == "h2" else 200.0) for h in s.hosts})
    changes = []
    for _ in range(4):
        changes += [(cmd.name, cmd.voter) for cmd in run(s, late)
                    if isinstance(cmd, c.SetVoter)]
    assert changes == [("h4", True), ("h2", False)]
    assert [m.name for m in s.members.values() if m.voter] == ["h1", "h3", "h4"]
    # a removed voter is replaced too: h2 (now a learner) is down, h5 is up
    assert s.apply(c.SetMaintenance(id=cid(), name="h3", on=True)).ok
    assert s.apply(c.RemoveMember(id=cid(), name="h3")).ok
    assert [(cmd.name, cmd.voter) for cmd in run(s, late)
            if isinstance(cmd, c.SetVoter)] == [("h5", True)]
    bad = s.apply(c.SetPolicy(id=cid(), changes={"voters": 4}))
    assert not bad.ok and "odd" in bad.message
    assert c.needs(c.SetPolicy(id=cid(), changes={"voters": 5})) == 2
    assert c.needs(c.SetPolicy(id=cid(), changes={"max_restart": 2})) == 1


def test_only_a_vm_created_to_run_wakes_the_leader() -> None:
    """Thousands of VMs created stopped (an import, a template library) must not each cost
    the leader a pass; one created to run has to be placed at once."""
    assert concerns_leader(c.CreateVm(id=cid(), name="a", uuid="u", vcpus=1, memory_mib=64))
    assert not concerns_leader(c.CreateVm(id=cid(), name="b", uuid="v", vcpus=1,
                                          memory_mib=64, state="stopped"))
    assert concerns_leader(c.SetVmState(id=cid(), name="b", state="started"))
