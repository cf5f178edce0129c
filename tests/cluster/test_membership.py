"""Hosts join and leave a running cluster (hactl host add / remove, through `hactl lab add` and
`lab remove`), judged by each host's own libvirt: the new host takes VMs, the removed one (the
leader) leaves a 3-member cluster that survives a host loss, membership survives restarts of
every member, and refused changes change nothing."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hacluster.lab.oracle import Oracle

from .conftest import LabRun, wait_for
from .test_failover import client, leader, recovered_within, start_vms, uris

pytestmark = pytest.mark.cluster

JOIN_BOUND = 10.0  # seconds from `lab add` to a VM running on the new host (the bound)


CRITICAL = ("raft-tick", "api-loop", "heartbeat")
VOTER = dict.fromkeys(CRITICAL, -10)
LEARNER = {**VOTER, "raft-tick": 0}


def threads(pid: int) -> dict[str, int]:
    """A process's threads by name -> nice value, read from /proc (threads carry their
    names there: priority.name_this_thread)."""
    named = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            named[(task / "comm").read_text().strip()] = os.getpriority(
                os.PRIO_PROCESS, int(task.name))
    return named


def ahead(lab: LabRun) -> dict[str, dict[str, int | None]]:
    """Running host -> the nice value of its critical threads: in its haclusterd, and in its
    Raft process (raft.process: the Raft tick is there). Checked on the way: the daemon's
    threads that run client calls keep the daemon's."""
    out = {}
    for h in lab.status():
        if (pid := h["pids"]["haclusterd"]) is None:
            continue
        named = threads(pid)
        assert all(n == 0 for t, n in named.items() if t.startswith("api_")), named
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    named.update(threads(int(child)))
        out[h["name"]] = {t: named.get(t) for t in CRITICAL}
    return out


def voter_flags(lab: LabRun) -> dict[str, bool]:
    return {m["name"]: m["voter"] for m in lab.json("cluster", "status")["members"]}


def members(lab: LabRun) -> set[str]:
    return {m["name"] for m in lab.json("cluster", "status")["members"]}


def test_a_host_joins_takes_vms_and_the_leader_leaves_without_a_vm_lost(
        make_lab: Callable[..., LabRun]) -> None:
    # a daemon restarted below must not outlast its watchdog on a loaded machine
    lab = make_lab(3, extra=("--set", "ha.watchdog=10"))
    names = start_vms(lab, 6)
    with Oracle(lambda: uris(lab)) as oracle:  # re-reads lab.json: hosts come and go
        t0 = time.monotonic()
        lab.lab("add")
        joined = time.monotonic() - t0
        newcomers = {f"new{i}" for i in range(4)}
        # the first VM created once it has joined runs there (placement prefers the empty
        # host); the others are created after the clock stops: each hactl call costs ~1 s
        lab.json("vm", "create", "new0", "--vcpus", "1", "--memory", "256")
        wait_for(lambda: "new0" in lab.domains("host4"), timeout=JOIN_BOUND,
                 what="new0 running on host4")
        took = time.monotonic() - t0
        assert took < JOIN_BOUND, f"host4 joined in {joined:.1f}s, ran a VM at {took:.1f}s"
        for name in sorted(newcomers - {"new0"}):
            lab.json("vm", "create", name, "--vcpus", "1", "--memory", "256")
        assert members(lab) == {"host1", "host2", "host3", "host4"}
        names |= newcomers
        wait_for(lambda: all(v["status"] == "running" for v in client(lab).list_vms()))

        # refused changes say why and change nothing
        index = client(lab).status()["commit_index"]
        for args, why in ((("host", "remove", "host2"), "still holds"),
                          (("host", "remove", "nohost"), "does not exist"),
                          (("host", "add", "host9", "--raft", "nowhere", "--api",
                            "127.0.0.9:1"), "'host:port'")):
            out = lab.hactl(*args, endpoints=lab.endpoints, check=False)
            assert out.returncode == 1 and why in out.stderr, (args, out.stderr)
        assert client(lab).status()["commit_index"] == index

        # the leader leaves: maintenance, its VMs moved, stopped, removed
        first = leader(lab)
        lab.lab("remove", first)
        remaining = {"host1", "host2", "host3", "host4"} - {first}
        assert members(lab) == remaining
        # its VMs moved (a cold handover on the test driver), every one running again
        wait_for(lambda: {n for n, hosts in lab.running().items() if hosts} == names)

        # the 3 left survive a host loss: a follower's power loss, its VMs run elsewhere
        victim = next(h for h in sorted(remaining) if h != leader(lab))
        lost = set(lab.domains(victim))
        t1 = time.monotonic()
        lab.lab("kill", victim)
        recovered_within(oracle, lost, 15.0, t1, away_from=victim)
        lab.lab("start", victim)
        wait_for(lambda: client(lab).get_host(victim)["status"] == "up", timeout=60)
    assert oracle.violations == [], oracle.violations
    assert {n: len(h) for n, h in lab.running().items()} == {n: 1 for n in names}

    # membership survives a restart of every member, one at a time
    for host in sorted(remaining):
        lab.lab("kill", host, "--daemon-only")
        lab.lab("start", host)
        wait_for(lambda: client(lab).get_host(host)["status"] == "up",  # noqa: B023
                 timeout=60, what=f"{host} back")
    assert members(lab) == remaining
    for host in remaining:
        saved = json.loads((lab.dir / host / "data" / "MEMBERS.json").read_text())
        assert {m["name"] for m in saved} == remaining
    assert {n: len(h) for n, h in lab.running().items()} == {n: 1 for n in names}


def test_a_lost_voter_is_replaced_by_a_learner_and_the_cluster_survives_one_more_loss(
        make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(4, extra=("--voters", "3"))  # host4 joins as a learner
    assert voter_flags(lab) == {"host1": True, "host2": True, "host3": True, "host4": False}
    # the heartbeat thread, the member port's loop and a voter's Raft thread run ahead of a
    # busy host; a learner's Raft thread does not (as root: CAP_SYS_NICE)
    if os.geteuid() == 0:
        assert ahead(lab) == {"host1": VOTER, "host2": VOTER, "host3": VOTER, "host4": LEARNER}
    lab.json("cluster", "policy", "set", "voter_replace_after=10")
    names = start_vms(lab, 8)
    first = leader(lab)
    voters = [h for h in ("host1", "host2", "host3") if h != first]
    with Oracle(lambda: uris(lab)) as oracle:
        lost = set(lab.domains(voters[0]))
        t0 = time.monotonic()
        lab.lab("kill", voters[0])  # a voter's power loss
        recovered_within(oracle, lost, 15.0, t0, away_from=voters[0])

        wait_for(lambda: voter_flags(lab).get("host4") is True
                 and voter_flags(lab).get(voters[0]) is False,
                 timeout=60, what=f"host4 promoted, {voters[0]} demoted")
        if os.geteuid() == 0:  # its Raft thread as a voter's
            wait_for(lambda: ahead(lab).get("host4") == VOTER, timeout=10)
        # Raft itself followed: the leader's own view of its voters (pysyncobj's status)
        wait_for(lambda: all(m["connected"] for m in lab.json("cluster", "status")["members"]
                             if m["voter"]), timeout=30, what="every voter connected")
        # the demoted voter powered on again learns it at start, and serves as a learner
        lab.lab("start", voters[0])
        wait_for(lambda: client(lab).get_host(voters[0])["status"] == "up", timeout=60,
                 what=f"{voters[0]} back as a learner")
        assert "the member list changed while this member was away" in (
            lab.dir / voters[0] / "haclusterd.log").read_text()
        # one more voter lost: 2 of the 3 voters (the leader and host4) still make a majority
        lost = set(lab.domains(voters[1]))
        t1 = time.monotonic()
        lab.lab("kill", voters[1])
        recovered_within(oracle, lost, 15.0, t1, away_from=voters[1])
        assert client(lab).status()["quorum"]
        lab.json("vm", "create", "after", "--vcpus", "1", "--memory", "256")
        wait_for(lambda: "after" in oracle.running_now(), what="a VM created after both losses")
        # that voter is replaced too, by the learner that came back
        wait_for(lambda: voter_flags(lab).get(voters[0]) is True
                 and voter_flags(lab).get(voters[1]) is False,
                 timeout=60, what=f"{voters[0]} promoted, {voters[1]} demoted")
        if os.geteuid() == 0:  # cutting links needs root
            # powered on while it reaches nobody, it starts as the voter it was; it hears no
            # leader, asks again once it can, and serves as a learner
            lab.lab("isolate", voters[1])
            lab.lab("start", voters[1])
            log = lab.dir / voters[1] / "haclusterd.log"
            wait_for(lambda: log.read_text().count(" started: raft ") == 2,
                     what=f"{voters[1]} started, its asking at start done")
            lab.lab("heal", voters[1])
            wait_for(lambda: client(lab).get_host(voters[1])["status"] == "up", timeout=60,
                     what=f"{voters[1]} back as a learner")
            assert "another member's list makes this one a learner" in log.read_text()
            assert ahead(lab)[voters[1]] == LEARNER
    assert oracle.violations == [], oracle.violations
    running = lab.running()
    assert {n: len(running.get(n, [])) for n in names | {"after"}} == {
        n: 1 for n in names | {"after"}}
