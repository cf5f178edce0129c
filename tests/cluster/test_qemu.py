"""Real QEMU guests (TCG) on a lab of hosts in network namespaces, each with its own QEMU
libvirtd: placement, a maintenance evacuation of two guests and a live migration, during
which every guest keeps running (its uptime, printed each second on its serial console,
never restarts). Needs root, qemu-system-x86_64, a kernel in /boot and busybox-static
(scripts/setup installs them)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from hacluster import lab_qemu

from .conftest import LabRun, wait_for
from .test_failover import client, watched

pytestmark = [pytest.mark.cluster, pytest.mark.skipif(
    bool(lab_qemu.requirements()), reason="; ".join(lab_qemu.requirements()) or "ok")]


def uptimes(lab: LabRun, vm: str) -> tuple[int, list[float]]:
    """(how many times the guest booted, every uptime it printed) from its console."""
    path = lab.dir / "consoles" / f"{vm}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return text.count("GUEST-UP"), [float(x) for x in re.findall(r"uptime (\d+\.\d+)", text)]


def kept_running(lab: LabRun, vm: str, since: float) -> bool:
    boots, seen = uptimes(lab, vm)
    return boots == 1 and seen == sorted(seen) and seen[-1] > since


def test_real_guests_evacuated_and_live_migrated_keep_running(
        make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3, hypervisor="qemu")
    cl = client(lab)
    for h in ("host2", "host3"):
        cl.set_maintenance(h, True)
    for g in ("g0", "g1"):
        cl.create_vm(g, vcpus=1, memory_mib=96)
    wait_for(lambda: all(uptimes(lab, g)[1] for g in ("g0", "g1")), timeout=60,
             what="both guests booted")
    assert {g: hosts for g, hosts in lab.running().items()} == {"g0": ["host1"],
                                                               "g1": ["host1"]}
    for h in ("host2", "host3"):
        cl.set_maintenance(h, False)

    with watched(lab):
        before = {g: uptimes(lab, g)[1][-1] for g in ("g0", "g1")}
        out = lab.hactl("host", "maintenance", "enter", "host1", "--wait",
                        endpoints=lab.endpoints)
        assert "host1 is empty" in out.stderr
        running = lab.running()
        assert set(running) == {"g0", "g1"}
        assert all(hosts[0] != "host1" and len(hosts) == 1 for hosts in running.values())
        time.sleep(2.0)
        for g in ("g0", "g1"):
            assert kept_running(lab, g, before[g]), uptimes(lab, g)

        cl.set_maintenance("host1", False)
        source = running["g0"][0]
        target = next(h for h in ("host2", "host3") if h != source)
        mark = uptimes(lab, "g0")[1][-1]
        moved = lab.json("vm", "migrate", "g0", "--to", target, "--wait")
        assert moved["host"] == target and lab.running()["g0"] == [target]
        time.sleep(2.0)
        assert kept_running(lab, "g0", mark), uptimes(lab, "g0")
    log = (lab.dir / source / "haclusterd.log").read_text()
    assert "migrate g0 to " in log and ": live" in log
