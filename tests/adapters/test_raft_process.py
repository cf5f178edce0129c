"""The Raft member in a process of its own (raftproc.RaftProcess), for real: three members on
loopback, each a child process of this one, and members whose daemon is a process of its
own (raft_member.py) to stop and kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.core import commands as c
from hacluster.raft import RaftNode, Unavailable
from hacluster.raftproc import RaftProcess, cpu_time_if_running, daemon_heard
from hacluster.raftstore import StorageError

from .test_raft import SECRET, Members, create, free_ports, wait

Processes = Members[RaftProcess]  # three members, each with its Raft in a child process


@pytest.fixture
def members(tmp_path: Path) -> Iterator[Processes]:
    m = Processes(tmp_path, RaftProcess)
    for i in range(3):
        m.start(i)
    yield m
    for i in range(3):
        m.stop(i)


def test_writes_reach_every_daemon_s_replica_and_survive_a_whole_restart(
        members: Processes) -> None:
    """Each daemon's replica is built from what its Raft process applied, in its order: the
    same state everywhere, the same answers (a retry applies once), the same after restarts."""
    leader = members.leader()
    wait(lambda: leader.majority_confirmed_at() is not None)
    assert leader.term() >= 1 and (leader.majority_confirmed_at() or 0) <= time.monotonic()
    wait(lambda: all(n.leader_addr() == leader.self_addr for n in members.live()))
    for i in range(30):
        assert members.live()[i % 3].propose(create(f"vm{i}", f"x{i}")).ok
    again = members.live()[1].propose(create("vm0", "x0"))  # the same id: the earlier result
    assert again.ok
    refused = members.live()[2].propose(create("vm0", "other"))
    assert (refused.ok, refused.code) == (False, "exists")
    # the refused entry too: every replica holds the same answers for the same ids
    wait(lambda: members.live()[0].state == members.live()[1].state == members.live()[2].state)
    assert len(members.live()[0].state.vms) == 30
    for i in range(3):
        members.stop(i)
    for i in range(3):
        members.start(i)
    wait(lambda: all(len(n.state.vms) == 30 and n.is_ready() for n in members.live()))
    assert members.leader().propose(create("after")).ok


def test_a_command_the_code_cannot_apply_halts_the_daemon_s_member(members: Processes) -> None:
    leader = members.leader()
    envelope = json.loads(c.encode(create("a")))
    future = json.dumps({**envelope, "v": c.CODE_VERSION + 1, "id": "future"}).encode()
    leader._propose_once(future, 1.0)  # what a newer member would propose (no answer: halted)
    wait(lambda: sum(bool(n.halted) for n in members.live()) >= 2)
    assert all(f"needs hacluster code version {c.CODE_VERSION + 1}" in (n.halted or "")
               for n in members.live() if n.halted)
    assert all(n.process_lost is None for n in members.live())  # halted, not crashed
    with pytest.raises(Unavailable, match="halted"):
        next(n for n in members.live() if n.halted).propose(create("b"))


@pytest.mark.parametrize("kind", [RaftNode, RaftProcess])
def test_a_learner_is_promoted_in_place_and_its_daemon_never_sees_an_older_state(
        kind: type[RaftNode | RaftProcess], tmp_path: Path) -> None:
    """Promotion replaces the replica (in the child, with raft.process), which replays its
    files: readers keep the state they had, and are not told it has caught up, until the
    daemon's replica has applied all of it again. In a 48-host lab, a learner's agent was
    told so early (by the old replica's word, or a flag beside the child's stream) and
    started VMs assigned to it in the old state, which ran elsewhere by then."""
    members: Members[Any] = Members(tmp_path, kind)
    for i in range(3):
        members.start(i)
    try:
        check_promotion(members, kind, tmp_path)
    finally:
        for i in range(3):
            members.stop(i)


def check_promotion(members: Members[Any], kind: type[RaftNode | RaftProcess],
                    tmp_path: Path) -> None:
    leader = members.leader()
    for b in range(20):  # enough to replay for a while (a batch: one entry, 100 VMs)
        assert leader.propose(c.Batch(id=f"b{b}", commands=tuple(
            create(f"vm{b}-{i}") for i in range(100)))).ok
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    learner = kind(addr, list(members.addrs), str(tmp_path / "learner"), SECRET, voter=False)
    try:
        wait(lambda: len(learner.state.vms) == 2000 and learner.is_ready(), timeout=30)
        assert addr not in leader.raft_members()
        if isinstance(learner, RaftProcess) and os.geteuid() == 0:
            # a voter's Raft process runs all its threads ahead of a busy host (priority.py)
            assert {nices(m.pid) for m in members.live()} == {frozenset({-10})}
            assert nices(learner.pid) == {0}
        leader.change_membership(True, addr)
        seen: list[tuple[bool, int]] = []
        done = threading.Event()

        def read() -> None:  # as the agent does: asks whether caught up, then reads
            while not done.is_set():
                ready = learner.is_ready()
                seen.append((ready, len(learner.state.vms)))
                time.sleep(0.0005)
        reader = threading.Thread(target=read)
        reader.start()
        try:
            learner.become_voter(list(members.addrs))
            wait(lambda: learner.is_ready(), timeout=10)
            time.sleep(1.0)
        finally:
            done.set()
            reader.join()
        assert seen and all(n == 2000 for _, n in seen), sorted(set(seen))
        assert seen[-1] == (True, 2000)
        if isinstance(learner, RaftProcess) and os.geteuid() == 0:
            assert nices(learner.pid) == {-10}  # promoted: every thread, grpc's too
        assert addr in learner.raft_members() and learner.voter
        assert learner.propose(create("promoted"), timeout=10).ok
        wait(lambda: all(n.state == learner.state for n in members.live()))
        assert "promoted" in learner.state.vms
    finally:
        learner.close()


@pytest.mark.parametrize("kind", [RaftNode, RaftProcess])
def test_a_promoted_replica_reaches_readers_of_the_state_alone(
        kind: type[RaftNode | RaftProcess], tmp_path: Path) -> None:
    """An agent whose lease is newer than its replica reads only the state until it has
    caught up (agent.py: `behind`), never is_ready(). The daemon showed the state from before
    a promotion until someone asked is_ready(): with raft.process a promoted learner's agent
    waited on it for good, and a VM placed there never started (a 4-host lab). A demoted
    voter's Raft process kept every thread at raft.critical_nice."""
    members: Members[Any] = Members(tmp_path, kind)
    for i in range(3):
        members.start(i)
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    learner = kind(addr, list(members.addrs), str(tmp_path / "learner"), SECRET, voter=False)
    try:
        leader = members.leader()
        assert leader.propose(create("before")).ok
        wait(lambda: "before" in learner.state.vms and learner.is_ready(), timeout=30)
        leader.change_membership(True, addr)
        learner.become_voter(list(members.addrs))
        assert leader.propose(create("after")).ok
        wait(lambda: "after" in learner.state.vms, timeout=10)  # no is_ready() on the way
        if isinstance(learner, RaftProcess) and os.geteuid() == 0:
            assert nices(learner.pid) == {-10}
        # demoted again (as a voter demoted while away learns at start): the same, and a
        # learner's Raft process back at the daemon's priority
        leader.change_membership(False, addr)
        learner.become_learner(list(members.addrs))
        assert leader.propose(create("demoted")).ok
        wait(lambda: "demoted" in learner.state.vms, timeout=10)
        if isinstance(learner, RaftProcess) and os.geteuid() == 0:
            assert nices(learner.pid) == {0}
    finally:
        learner.close()
        for i in range(3):
            members.stop(i)


def nices(pid: int) -> frozenset[int]:
    """The nice values of a process's threads (/proc)."""
    return frozenset(os.getpriority(os.PRIO_PROCESS, int(tid))
                     for tid in os.listdir(f"/proc/{pid}/task"))


class Daemons:
    """Three members whose daemon is a process of its own (raft_member.py), so that one can
    be stopped (SIGSTOP: hung) or killed (SIGKILL: gone) as a real haclusterd is."""

    def __init__(self, root: Path) -> None:
        self.addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
        env = {**os.environ, "RAFT_PROCESS": "1", "RAFT_FSYNC": "0"}
        self.procs = [subprocess.Popen(
            [sys.executable, "-m", "tests.adapters.raft_member", addr,
             ",".join(a for a in self.addrs if a != addr), str(root / f"d{i}")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            for i, addr in enumerate(self.addrs)]

    def ask(self, i: int, line: str) -> str:
        proc = self.procs[i]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def leader(self, among: list[int]) -> int:
        found: list[int] = []

        def one() -> bool:
            found[:] = [i for i in among if self.ask(i, "leader?") == "yes"]
            return len(found) == 1
        wait(one, timeout=15)
        return found[0]

    def child(self, i: int) -> int:
        out = subprocess.run(["pgrep", "-P", str(self.procs[i].pid)], capture_output=True,
                             text=True, check=False).stdout.split()
        assert len(out) == 1, out
        return int(out[0])

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    d = Daemons(tmp_path)
    yield d
    d.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_hung_leader_s_raft_stops_a_follower_s_does_not_a_killed_daemon_s_ends(
        daemons: Daemons) -> None:
    """A leader whose daemon hangs (SIGSTOP) must not keep leading while nobody answers its
    hosts' heartbeats: its Raft process stops ticking and another member takes over; once
    the daemon runs again it follows. A follower whose daemon hangs still acknowledges (Raft
    needs nothing of its daemon): with the third member gone, the leader commits with it. A
    daemon killed outright leaves no Raft process."""
    first = daemons.leader([0, 1, 2])
    child = daemons.child(first)
    os.kill(daemons.procs[first].pid, signal.SIGSTOP)
    started = time.monotonic()
    others = [i for i in range(3) if i != first]
    second = daemons.leader(others)
    took = time.monotonic() - started
    assert alive(child) and took < 5.0, took
    os.kill(daemons.procs[first].pid, signal.SIGCONT)
    assert daemons.ask(first, "propose back") == "ok back True"  # a follower again, working
    assert daemons.ask(first, "leader?") == "no"
    os.kill(daemons.procs[first].pid, signal.SIGSTOP)  # now a follower's daemon hangs
    time.sleep(1.5)  # longer than daemon_silence (0.9 s)
    third = next(i for i in others if i != second)
    victim = daemons.child(third)
    os.kill(daemons.procs[third].pid, signal.SIGKILL)
    daemons.procs[third].wait()
    wait(lambda: not alive(victim), timeout=5)
    assert daemons.ask(second, "propose hung") == "ok hung True"  # first's Raft acknowledged


def test_a_late_stamp_from_a_daemon_that_runs_is_waited_for_twice_as_long() -> None:
    """A leader's daemon resumed on a loaded machine ran 0.9 s before its stamp thread got
    the GIL, and its leader stopped for nothing (a suite run). The child now reads the
    daemon's CPU time from /proc once the stamp is late: a process that runs is given twice
    the silence; one stopped (SIGSTOP) is not, and neither is one that runs without
    stamping for longer than that."""
    assert daemon_heard(0.9, 0.9, ran=False) and not daemon_heard(0.91, 0.9, ran=False)
    assert daemon_heard(1.8, 0.9, ran=True) and not daemon_heard(1.81, 0.9, ran=True)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        first = cpu_time_if_running(busy.pid)
        assert first is not None
        wait(lambda: (cpu_time_if_running(busy.pid) or 0) > first, timeout=5)
        os.kill(busy.pid, signal.SIGSTOP)
        wait(lambda: cpu_time_if_running(busy.pid) is None, timeout=5)
        os.kill(busy.pid, signal.SIGCONT)
        assert cpu_time_if_running(busy.pid) is not None
    finally:
        busy.kill()
        busy.wait()
    assert cpu_time_if_running(busy.pid) is None  # gone


def test_a_damaged_journal_is_refused_as_in_process(tmp_path: Path) -> None:
    """The child's start fails as RaftNode() would (StorageError naming the file: the daemon
    exits 4, wipe and rejoin), raised by RaftProcess() before the daemon serves anything."""
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    node = RaftProcess(addr, [], str(tmp_path), SECRET)
    try:
        for i in range(20):
            assert node.propose(create(f"vm{i}"), timeout=10).ok
    finally:
        node.close()
    path = tmp_path / "raft.journal"
    data = bytearray(path.read_bytes())
    data[len(data.rstrip(b"\0")) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError) as err:
        RaftProcess(addr, [], str(tmp_path), SECRET)
    assert str(path) in str(err.value)
