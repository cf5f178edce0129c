"""The product as users run it: real processes, hactl, faults; truth from each host's libvirt."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import pytest

from .conftest import LabRun, wait_for

pytestmark = pytest.mark.cluster


def all_running(lab: LabRun, names: set[str]) -> bool:
    vms = {v["name"]: v for v in lab.json("vm", "list")}
    return all(vms[n]["status"] == "running" for n in names)


def test_vms_created_through_different_members_each_run_on_exactly_one_host(
        lab3: LabRun) -> None:
    apis = lab3.endpoints.split(",")
    names = {f"vm{i}" for i in range(10)}
    for i, name in enumerate(sorted(names)):
        created = lab3.json("vm", "create", name, "--vcpus", "1", "--memory", "256",
                            endpoints=apis[i % 3])
        assert created["name"] == name and created["state"] == "started"
    wait_for(lambda: all_running(lab3, names), what="10 VMs running")

    running = lab3.running()
    assert set(running) == names
    assert all(len(hosts) == 1 for hosts in running.values()), running
    placed = {v["name"]: v["host"] for v in lab3.json("vm", "list")}
    assert {n: hosts[0] for n, hosts in running.items()} == placed
    assert len(set(placed.values())) == 3  # spread over all hosts by free memory
    for member in apis:  # every member serves the same view
        assert {v["name"]: v["host"] for v in lab3.json("vm", "list", endpoints=member)} == placed


def test_daemon_crash_and_restart_leaves_its_vms_running_and_adopted(
        make_lab: Callable[..., LabRun]) -> None:
    # a restart on a loaded 2-core machine can outlast lease + the default 1 s watchdog, and
    # the lab's watchdog then powers host2 off: adoption is what is tested, so 10 s headroom
    lab3 = make_lab(3, extra=("--set", "ha.watchdog=10"))
    for i in range(6):
        lab3.json("vm", "create", f"app{i}", "--vcpus", "1", "--memory", "256")
    wait_for(lambda: all_running(lab3, {f"app{i}" for i in range(6)}))
    before = lab3.domains("host2")
    assert before

    lab3.lab("kill", "host2", "--daemon-only")
    time.sleep(1.0)
    assert lab3.domains("host2") == before  # VMs live in libvirtd, not in haclusterd

    lab3.lab("start", "host2")
    wait_for(lambda: lab3.json("host", "show", "host2")["status"] == "up")
    time.sleep(2.0)  # several agent cycles after rejoining
    assert lab3.domains("host2") == before  # same libvirt ids: adopted, not restarted
    assert all_running(lab3, {f"app{i}" for i in range(6)})


def test_every_member_power_cycled_keeps_every_acknowledged_vm_and_placement(
        lab3: LabRun) -> None:
    names = {f"db{i}" for i in range(8)}
    for name in sorted(names):
        lab3.json("vm", "create", name, "--vcpus", "1", "--memory", "256")
    wait_for(lambda: all_running(lab3, names))
    placed = {v["name"]: v["host"] for v in lab3.json("vm", "list")}

    for host in ("host1", "host2", "host3"):
        lab3.lab("kill", host)  # power loss: haclusterd, libvirtd and the VMs die
    assert lab3.running() == {}
    for host in ("host1", "host2", "host3"):
        lab3.lab("start", host)

    wait_for(lambda: all_running(lab3, names), timeout=60, what="VMs back after power-on")
    assert {v["name"]: v["host"] for v in lab3.json("vm", "list")} == placed
    assert {n: hosts for n, hosts in lab3.running().items()} == {
        n: [h] for n, h in placed.items()}


BAD_REQUESTS = [
    (["vm", "create", "x", "--vcpus", "1", "--memory", "0"], "memory_mib must be between"),
    (["vm", "create", "x", "--vcpus", "1", "--memory", "-5"], "memory_mib must be between"),
    (["vm", "create", "x", "--vcpus", "0", "--memory", "64"], "vcpus must be between"),
    (["vm", "create", "Bad_Name!", "--vcpus", "1", "--memory", "64"], "invalid"),
    (["vm", "create", "keep", "--vcpus", "1", "--memory", "64"], "already exists"),
    (["vm", "show", "ghost"], "VM ghost does not exist"),
    (["vm", "start", "ghost"], "VM ghost does not exist"),
    (["vm", "delete", "ghost"], "VM ghost does not exist"),
    (["host", "show", "nohost"], "host nohost does not exist"),
    (["host", "what-if", "nohost"], "host nohost does not exist"),
    (["host", "what-if", "no host!"], "invalid"),
    (["vm", "create", "x", "--vcpus", "many", "--memory", "64"], "is not a valid integer"),
]


def test_bad_input_gets_a_clear_error_and_changes_nothing(lab3: LabRun) -> None:
    lab3.json("vm", "create", "keep", "--vcpus", "1", "--memory", "64")
    wait_for(lambda: all_running(lab3, {"keep"}))
    before = lab3.json("vm", "list")
    committed = [s["commit_index"] for s in (lab3.json("cluster", "status", endpoints=e)
                                             for e in lab3.endpoints.split(","))]
    for args, message in BAD_REQUESTS:
        proc = lab3.hactl(*args, endpoints=lab3.endpoints, check=False)
        assert proc.returncode != 0, args
        assert message in proc.stderr, (args, proc.stderr)
        assert proc.stdout == ""
    assert lab3.json("vm", "list") == before
    # refused means not committed: no member's log grew
    assert [s["commit_index"] for s in (lab3.json("cluster", "status", endpoints=e)
                                        for e in lab3.endpoints.split(","))] == committed

    # Garbage on every member's Raft and gRPC ports: refused, nothing changes, nobody falls.
    for h in lab3.status():
        for addr in (h["raft"], h["api"]):
            ip, port = addr.rsplit(":", 1)
            for blob in (b"\x00\x00\x00\x10" + b"\xff" * 16, b"GET / HTTP/1.0\r\n\r\n",
                         bytes(range(256)) * 16):
                with socket.create_connection((ip, int(port)), timeout=2) as s:
                    s.sendall(blob)
    time.sleep(1.0)
    assert all(all(pid is not None for pid in h["pids"].values()) for h in lab3.status())
    assert lab3.json("vm", "list") == before
    lab3.json("vm", "create", "after", "--vcpus", "1", "--memory", "64")
    wait_for(lambda: all_running(lab3, {"keep", "after"}))


def test_no_endpoints_and_unreachable_members_fail_cleanly(lab3: LabRun) -> None:
    proc = lab3.hactl("vm", "list", endpoints="", check=False)
    assert proc.returncode == 1 and "no endpoints" in proc.stderr
    proc = lab3.hactl("--timeout", "1", "vm", "list", endpoints="127.0.0.1:1", check=False)
    assert proc.returncode == 1 and "no member could answer" in proc.stderr
    # An unreachable first endpoint is skipped for the next one.
    out = lab3.hactl("--output", "json", "cluster", "status",
                     endpoints="127.0.0.1:1," + lab3.endpoints)
    assert '"leader": "host' in out.stdout


def test_lab_status_env_and_virsh_agree(lab3: LabRun) -> None:
    rows = lab3.status()
    assert [r["name"] for r in rows] == ["host1", "host2", "host3"]
    assert all(all(r["pids"].values()) for r in rows)
    env = lab3.lab("env").stdout.strip()
    assert env.splitlines() == [f"export HACTL_ENDPOINTS={lab3.endpoints}",
                                f"export HACTL_CA={lab3.ca_file}",
                                f"export HACTL_TOKEN={lab3.token}"]
    lab3.json("vm", "create", "seen", "--vcpus", "1", "--memory", "64")
    wait_for(lambda: all_running(lab3, {"seen"}))
    host = lab3.json("vm", "show", "seen")["host"]
    uri = next(r["libvirt_uri"] for r in rows if r["name"] == host)
    virsh = subprocess.run(["virsh", "-c", uri, "list", "--name"], capture_output=True,
                           text=True, check=True)
    assert "seen" in virsh.stdout.split()
