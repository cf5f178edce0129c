"""A rolling upgrade on a real lab: members running two code versions side by side.

The older code is played by this code with `[testing] code_version = 1` (it reports version 1
and refuses, as version-1 code would, every command and field newer than that: the format
each version understands is core.commands.VERSIONS). Members are upgraded one at a time
(daemon killed, configuration changed, daemon started) with HA VMs running; each host's
libvirt is watched throughout: no VM stops, none runs twice."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import LabRun, wait_for
from .test_failover import (
    HOST_LOSS,
    LEADER_LOSS,
    busiest_follower,
    client,
    leader,
    placed_on,
    recovered_within,
    start_vms,
    watched,
)

pytestmark = pytest.mark.cluster

OLD = "code_version = 1"


def versions(lab: LabRun) -> tuple[int, dict[str, int | None]]:
    status = lab.json("cluster", "status")
    return status["cluster_version"], {m["name"]: m["version"] for m in status["members"]}


def test_a_rolling_upgrade_keeps_every_vm_running_once_and_refuses_a_downgrade(
        make_lab: Callable[..., LabRun]) -> None:
    # a restarted daemon adopts its VMs; 10 s of watchdog headroom keeps a slow restart on a
    # loaded 2-core machine from powering the host off (that is tested elsewhere)
    lab = make_lab(3, extra=("--set", "ha.watchdog=10", "--set", "testing.code_version=1"))
    names = start_vms(lab, 6)
    wait_for(lambda: versions(lab) == (1, {"host1": 1, "host2": 1, "host3": 1}),
             what="every member reporting version 1")
    # admission control at version 1: checked in apply, as version-1 members do (the
    # proposer's check, a version-2 field, would be refused: core.commands.TooNew)
    lab.json("cluster", "policy", "set", "admission_control=1")
    lab.json("vm", "create", "early", "--vcpus", "1", "--memory", "256")
    wait_for(lambda: client(lab).get_vm("early")["status"] == "running")
    names.add("early")
    # a feature of version 2 waits, and says why
    out = lab.hactl("host", "add", "host9", "--raft", "127.0.0.9:7400", "--api",
                    "127.0.0.9:7401", endpoints=lab.endpoints, check=False)
    assert out.returncode == 1 and "member.add needs cluster version 2; the cluster runs " \
        "version 1 until every member is upgraded" in out.stderr, out.stderr
    hosts = ["host1", "host2", "host3"]
    with watched(lab) as oracle:
        for i, host in enumerate(hosts):
            config = lab.dir / host / "haclusterd.toml"
            lab.lab("kill", host, "--daemon-only")
            config.write_text(config.read_text().replace(OLD, "code_version = 2"))
            lab.lab("start", host)
            wait_for(lambda: versions(lab)[1][host] == 2, timeout=60,  # noqa: B023
                     what=f"{host} back, reporting version 2")
            if i < len(hosts) - 1:  # a member still runs version 1: nothing newer yet
                assert versions(lab)[0] == 1
        wait_for(lambda: versions(lab)[0] == 2, what="the cluster version raised to 2")
        # a version-2 write now goes through: admission control checked by the proposer
        lab.json("vm", "create", "late", "--vcpus", "1", "--memory", "256")
        wait_for(lambda: client(lab).get_vm("late")["status"] == "running")
        assert oracle.outages == {}, oracle.outages  # no HA VM stopped anywhere
    running = lab.running()
    assert {n: len(h) for n, h in running.items()} == {n: 1 for n in names | {"late"}}
    # a downgrade below the cluster version is refused before anything is touched
    config = lab.dir / "host2" / "haclusterd.toml"
    older = config.with_name("downgrade.toml")
    older.write_text(config.read_text().replace("code_version = 2", OLD))
    older.chmod(0o600)
    proc = subprocess.run([sys.executable, "-m", "hacluster.daemon", "--config", str(older)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "data is at cluster version 2; its code is version 1: a downgrade below the " \
        "cluster version is refused" in proc.stderr
    assert lab.running() == running
    assert versions(lab) == (2, {"host1": 2, "host2": 2, "host3": 2})


def raft_processes(lab: LabRun) -> dict[str, int]:
    """Running host -> how many Raft processes its haclusterd has (raft.process: one)."""
    out = {}
    for h in lab.status():
        if (pid := h["pids"]["haclusterd"]) is None:
            continue
        children = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += (task / "children").read_text().split()
        out[h["name"]] = sum(b"hacluster.raftproc" in Path(f"/proc/{c}/cmdline").read_bytes()
                             for c in children)
    return out


def test_members_with_raft_in_process_and_in_a_process_of_its_own_run_together(
        make_lab: Callable[..., LabRun]) -> None:
    """raft.process, on by default since 2026-12-05, is each member's own layout: an
    upgraded member runs its Raft in a process of its own beside members that keep it in
    the daemon (raft.process = false), and either kind leads and recovers the other's HA
    VMs (libvirt's word)."""
    lab = make_lab(3)
    toml = lab.dir / "host3" / "haclusterd.toml"
    toml.write_text(toml.read_text() + "\n[raft]\nprocess = false\n")
    lab.lab("kill", "host3", "--daemon-only")
    lab.lab("start", "host3")
    wait_for(lambda: client(lab).get_host("host3")["status"] == "up", timeout=60)
    assert raft_processes(lab) == {"host1": 1, "host2": 1, "host3": 0}
    names = start_vms(lab, 6)
    with watched(lab) as oracle:
        first = leader(lab)
        lost = placed_on(lab, first)
        t0 = time.monotonic()
        lab.lab("kill", first)  # the leader's power loss: the other two elect one of theirs
        recovered_within(oracle, lost, LEADER_LOSS, t0, away_from=first)
        lab.lab("start", first)
        wait_for(lambda: client(lab).get_host(first)["status"] == "up", timeout=60)
        victim, lost = busiest_follower(lab)  # and a follower's, under the new leader
        t1 = time.monotonic()
        lab.lab("kill", victim)
        recovered_within(oracle, lost, HOST_LOSS, t1, away_from=victim)
        assert set(oracle.running_now()) == names
