"""The leader's pass phase by phase (core/reconcile.py): each phase alone, on a state built
for it, so a change to one is caught where it happens."""

from __future__ import annotations

import itertools

from hacluster.core import commands as c
from hacluster.core.model import Policy
from hacluster.core.placement import Placer
from hacluster.core.reconcile import (
    BY_FENCE_AGENT,
    LeaderView,
    Stamp,
    credentials,
    failures,
    liveness,
    observations,
    placement,
)
from hacluster.core.state import ClusterState

from .factories import assign, cid, create, register


def stamp() -> Stamp:
    return Stamp(term=3, ids=(f"s{i}" for i in itertools.count()), ts=42.0)


def cluster() -> ClusterState:
    s = ClusterState()
    for h in ("h1", "h2"):
        register(s, h, memory_mib=2048)
    return s


def test_liveness_declares_silent_hosts_down_and_says_when_fencing_is_due() -> None:
    s = cluster()
    out, notes, due = liveness(s, LeaderView(now=10.0, leader_since=0.0,
                                             last_heard={"h1": 10.0, "h2": 8.5}), stamp())
    (cmd, note), = out
    assert isinstance(cmd, c.SetHostStatus) and (cmd.name, cmd.status, cmd.term) == (
        "h2", "down", 3) and note == notes[0] and due is None
    assert s.apply(cmd).ok
    # down now: fenced by a fence agent's word, or waited for (the wait is noted)
    out, notes, due = liveness(s, LeaderView(now=10.1, leader_since=0.0,
                                             last_heard={"h1": 10.1, "h2": 8.5},
                                             last_granted={"h2": 9.0}), stamp())
    assert out == [] and due is not None and due > 0 and "h2 down, fencing in" in notes[0]
    out, _, _ = liveness(s, LeaderView(now=10.1, leader_since=0.0,
                                       last_heard={"h1": 10.1, "h2": 8.5},
                                       last_granted={"h2": 9.0}, fenced_off={"h2": True}),
                         stamp())
    assert [(type(x), x.by) for x, _ in out if isinstance(x, c.FenceHost)] == [
        (c.FenceHost, BY_FENCE_AGENT)]


def test_observations_batch_only_what_changed_per_host() -> None:
    s = cluster()
    for name, host in (("a", "h1"), ("b", "h1"), ("c", "h2")):
        create(s, name)
        assign(s, name, host)
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "running"}))
    seen = {"h1": {"a": "running", "b": "running"}, "h2": {"c": "none"}}
    versions = {h: {v: s.vms[v].version for v in vms} for h, vms in seen.items()}
    out = observations(s, LeaderView(now=1.0, leader_since=0.0, observed=seen,
                                     reported_versions=versions), stamp())
    assert [(x.host, x.observed) for x, _ in out if isinstance(x, c.ObserveVms)] == [
        ("h1", {"b": "running"})]


def test_failures_only_where_the_record_and_the_latest_report_agree() -> None:
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    s.apply(c.ObserveVms(id=cid(), host="h1", observed={"a": "crashed"}))
    view = LeaderView(now=1.0, leader_since=0.0, observed={"h1": {"a": "crashed"}},
                      reported_versions={"h1": {"a": s.vms["a"].version}},
                      errors={"h1": {"a": "qemu died"}})
    (cmd, note), = failures(s, view, stamp())
    assert isinstance(cmd, c.VmFailed) and cmd.reason == "qemu died" and "a failed" in note
    stale = LeaderView(now=1.0, leader_since=0.0, observed={"h1": {"a": "running"}},
                       reported_versions={"h1": {"a": s.vms["a"].version}})
    assert failures(s, stale, stamp()) == []


def test_placement_goes_in_rounds_of_its_budget() -> None:
    s = cluster()
    for i in range(5):
        create(s, f"v{i}", memory_mib=64)
    placer = Placer(Policy())
    out, note, pending_next = placement(
        s, LeaderView(now=1.0, leader_since=0.0, placement_budget=3), placer, stamp())
    # new VMs are judged first, three this pass; the rest wait for the next (the round of
    # already-pending VMs has not started: it resumes from the beginning, "")
    assert {x.name for x, _ in out if isinstance(x, c.AssignVm)} == {"v0", "v1", "v2"}
    assert len(out) == 3 and note == "placed 3" and pending_next == ""


def test_credentials_add_the_bootstrap_token_once_and_drop_long_expired_ones() -> None:
    s = cluster()
    view = LeaderView(now=1.0, leader_since=0.0, wall_now=10_000.0,
                      bootstrap_token_sha256="ab" * 32)
    (cmd, note), = credentials(s, view, stamp())
    assert isinstance(cmd, c.CreateToken) and cmd.name == "admin" and "bootstrap" in note
    assert s.apply(cmd).ok
    assert s.apply(c.CreateToken(id=cid(), name="old", role="viewer", sha256="cd" * 32,
                                 expires_at=5_000.0)).ok
    out = credentials(s, view, stamp())
    assert [(type(x), getattr(x, "name", "")) for x, _ in out] == [(c.RevokeToken, "old")]
