"""A member's data on disk, as users run it: journals compacted on an idle and on a busy lab,
a member restarted from snapshot + journal agreeing with the others, and damaged data files
stopping the member with one clear line until it is wiped and rejoins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hacluster.client import Client, ClientError

from .conftest import LabRun, wait_for
from .test_failover import client

pytestmark = pytest.mark.cluster

FAST_SNAPSHOTS = ("--set", "raft.snapshot_interval=10", "--set", "raft.snapshot_entries=2000")


def statuses(lab: LabRun) -> dict[str, dict[str, object]]:
    return {h["name"]: lab.client_at([h["api"]], timeout=3).status() for h in lab.status()}


def test_an_idle_lab_compacts_its_journal(make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3, extra=FAST_SNAPSHOTS)
    client(lab).create_vm("idle", vcpus=1, memory_mib=64)

    def compacted() -> bool:  # by time alone: nothing happens meanwhile
        return all(int(s["snapshot_index"]) > 0  # type: ignore[call-overload]
                   and int(s["log_entries"]) < 50  # type: ignore[call-overload]
                   for s in statuses(lab).values())
    wait_for(compacted, timeout=30, what="a snapshot on every member (interval 10 s)")
    for name in statuses(lab):
        assert (lab.dir / name / "data" / "raft.snapshot").exists()
    first = statuses(lab)
    time.sleep(5)
    again = statuses(lab)
    # an idle cluster writes nothing: no entry per heartbeat or per leadership proof
    assert {n: s["commit_index"] for n, s in again.items()} == {
        n: s["commit_index"] for n, s in first.items()}


EVERY = 1_500  # a snapshot every 1,500 entries: four in 6,000 commands


def test_a_busy_lab_keeps_its_journal_bounded_and_restarts_from_snapshot(
        make_lab: Callable[..., LabRun]) -> None:
    # a snapshot every EVERY entries (the default is 10,000 or 5 minutes): the same
    # mechanism, four snapshots in a fraction of the commands the default would need
    lab = make_lab(3, extra=("--set", f"raft.snapshot_entries={EVERY}"))
    members = [h["api"] for h in lab.status()]
    done: list[int] = []

    def drive(i: int) -> None:
        cl = lab.client_at([members[i % 3]], timeout=10)
        for n in range(EVERY):
            cl.set_policy({"balance_interval": 60 + (n % 2)})
        done.append(i)

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 4  # 4 x EVERY committed commands
    wait_for(lambda: all(int(s["snapshot_index"]) > 3 * EVERY  # type: ignore[call-overload]
                         for s in statuses(lab).values()), timeout=30)
    for name, s in statuses(lab).items():
        assert int(s["log_entries"]) <= EVERY + 100, (name, s)  # type: ignore[call-overload]
        assert s["commit_index"] >= 4 * EVERY  # type: ignore[operator]
    lab.lab("kill", "host2", "--daemon-only")
    lab.lab("start", "host2")
    host2 = next(h["api"] for h in lab.status() if h["name"] == "host2")
    wait_for(lambda: lab.client_at([host2]).status()["applied_index"]
             >= client(lab).status()["commit_index"], timeout=30)
    assert lab.client_at([host2]).get_policy() == lab.client_at([members[0]]).get_policy()
    assert lab.client_at([host2]).get_policy()["version"] > 0


DAMAGES: dict[str, Callable[[Path], object]] = {
    "journal truncated": lambda d: _truncate(d / "raft.journal"),
    "journal bit flipped": lambda d: _flip(d / "raft.journal"),
    "journal deleted": lambda d: (d / "raft.journal").unlink(),
    "term/vote file deleted": lambda d: (d / "raft.journal.meta").unlink(),
    "term/vote file bit flipped": lambda d: _flip(d / "raft.journal.meta", 0.1),
    "snapshot bit flipped": lambda d: _flip(d / "raft.snapshot"),
    "snapshot deleted": lambda d: (d / "raft.snapshot").unlink(),
    "journal unreadable": lambda d: _unreadable(d / "raft.journal"),
}


def _unreadable(path: Path) -> None:
    path.unlink()
    path.mkdir()  # root reads any file whatever its mode; nobody reads a directory as one


def _truncate(path: Path) -> None:
    data = path.read_bytes().rstrip(b"\0")
    path.write_bytes(data[:len(data) // 2])


def _flip(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes().rstrip(b"\0"))
    data[int(len(data) * where)] ^= 0x04
    path.write_bytes(bytes(data))


def test_damaged_data_stops_the_member_with_one_line_until_wiped(
        make_lab: Callable[..., LabRun], tmp_path: Path) -> None:
    lab = make_lab(3, extra=FAST_SNAPSHOTS)
    cl = client(lab)
    for i in range(30):
        cl.create_vm(f"d{i}", vcpus=1, memory_mib=32, stopped=True)
    config = lab.dir / "host3" / "haclusterd.toml"
    data = lab.dir / "host3" / "data"
    wait_for(lambda: (data / "raft.snapshot").exists(), timeout=30, what="a snapshot on host3")
    cl.create_vm("after-snapshot", vcpus=1, memory_mib=32, stopped=True)
    time.sleep(1.5)  # the commit index reaches host3's term/vote file
    lab.lab("kill", "host3", "--daemon-only")
    good = tmp_path / "good"
    shutil.copytree(data, good)
    for what, damage in DAMAGES.items():
        shutil.rmtree(data)
        shutil.copytree(good, data)
        damage(data)
        proc = subprocess.run([sys.executable, "-m", "hacluster.daemon", "--config",
                               str(config)], capture_output=True, text=True, timeout=30)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 4, (what, proc.returncode, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (what, proc.stderr)
        assert len(lines) == 1 and str(data) in lines[0] and "--wipe-data" in lines[0], (
            what, lines)
    shutil.rmtree(data)
    shutil.copytree(good, data)
    _flip(data / "raft.journal")
    wiped = subprocess.run([sys.executable, "-m", "hacluster.daemon", "--config", str(config),
                            "--wipe-data"], capture_output=True, text=True, timeout=30)
    assert wiped.returncode == 0 and "set aside" in wiped.stdout
    lab.lab("start", "host3")
    host3 = lab.client_at([next(h["api"] for h in lab.status() if h["name"] == "host3")])
    wait_for(lambda: {v["name"] for v in host3.list_vms()} == {v["name"] for v in cl.list_vms()},
             timeout=30, what="host3 rejoined with every VM")
    wait_for(lambda: cl.get_host("host3")["status"] == "up", timeout=15)
    assert not (data / "REJOINING").exists()  # caught up: it votes again


def _small_disk(lab: LabRun, host: str, tmp: Path) -> Path:
    """host's data moved onto a tmpfs of 8 MiB (root only), its daemon restarted on it (the
    journal without the space it had set aside: as on a disk just mounted)."""
    data = lab.dir / host / "data"
    lab.lab("kill", host, "--daemon-only")
    aside = tmp / f"{host}-data"
    shutil.move(str(data), aside)
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(data)],
                   check=True)
    for f in aside.iterdir():
        content = f.read_bytes()
        (data / f.name).write_bytes(content.rstrip(b"\0") if f.name == "raft.journal"
                                    else content)
    lab.lab("start", host)
    wait_for(lambda: client(lab).get_host(host)["status"] == "up", timeout=20)
    return data


def _fill(data: Path) -> Path:
    filler = data / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler


def _settled_leader(cl: Client) -> str:
    """The leader, once it has stayed the same for 2 s (the restarts may have moved it)."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while len(seen) < 5 or len(set(seen[-5:])) != 1 or not seen[-1]:
        assert time.monotonic() < deadline, seen
        seen.append(cl.status()["leader"] or "")
        time.sleep(0.5)
    return seen[-1]


def _refused_for_disk(cl: Client) -> bool:
    """A write that could never apply ("probe" exists): refused for the disk, or as existing."""
    try:
        cl.create_vm("probe", vcpus=1, memory_mib=32, stopped=True)
    except ClientError as exc:
        return "disk is full" in str(exc)
    raise AssertionError("probe created twice")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_a_full_disk_fails_writes_cleanly_and_recovers(make_lab: Callable[..., LabRun],
                                                      tmp_path: Path) -> None:
    lab = make_lab(3)
    mounts = {h: _small_disk(lab, h, tmp_path) for h in ("host1", "host2", "host3")}
    try:
        cl = client(lab)
        apis = {h["name"]: h["api"] for h in lab.status()}
        leader_name = _settled_leader(cl)
        follower = next(h for h in mounts if h != leader_name)
        pids = {h["name"]: h["pids"]["haclusterd"] for h in lab.status()}
        cl.create_vm("probe", vcpus=1, memory_mib=32, stopped=True)
        # a follower's disk full: once the space its journal set aside is used, it refuses
        # writes at once (it could not apply them), hactl goes on to another member, the
        # others make a majority, nothing crashes
        filler = _fill(mounts[follower])
        full = lab.client_at([apis[follower]])
        others = lab.client_at([apis[h] for h in mounts if h != follower])
        written = 0
        while not _refused_for_disk(full):
            for _ in range(100):
                others.create_vm(f"f{written}", vcpus=1, memory_mib=32, stopped=True)
                written += 1
            assert written < 5000, "the follower never ran out of space"
        via_any = lab.hactl("vm", "create", "last", "--vcpus", "1", "--memory", "32",
                            "--stopped", endpoints=f"{apis[follower]},{lab.endpoints}")
        assert via_any.returncode == 0
        filler.unlink()
        wait_for(lambda: len(full.list_vms()) == written + 2, timeout=30,
                 what=f"{follower} caught up once it had room")
        # the leader's disk full: once the space its journal set aside is used, writes are
        # refused with the reason, and nothing crashes
        leader_name = _settled_leader(cl)
        filler = _fill(mounts[leader_name])
        leader = lab.client_at([apis[leader_name]])
        refusal = None
        for i in range(5000):
            try:
                leader.create_vm(f"g{i}", vcpus=1, memory_mib=32, stopped=True)
            except ClientError as exc:
                refusal = exc
                break
        assert refusal is not None and "disk is full" in str(refusal), refusal
        out = lab.hactl("vm", "create", "refused", "--vcpus", "1", "--memory", "32",
                        "--stopped", endpoints=apis[leader_name], check=False)
        assert out.returncode == 1 and "disk is full" in out.stderr, out.stderr
        filler.unlink()
        wait_for(lambda: lab.hactl("vm", "create", "after", "--vcpus", "1", "--memory", "32",
                                   "--stopped", endpoints=lab.endpoints,
                                   check=False).returncode == 0, timeout=30)
        assert {h["name"]: h["pids"]["haclusterd"] for h in lab.status()} == pids
        for h in (follower, leader_name):
            log = (lab.dir / h / "haclusterd.log").read_text()
            assert "no space left on the device" in log and "Traceback" not in log, h
    finally:
        for h in mounts:
            lab.lab("kill", h, "--daemon-only")
        for m in mounts.values():
            subprocess.run(["umount", "-l", str(m)], check=False)
