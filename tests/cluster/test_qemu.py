"""Real QEMU guests (TCG) on a lab of hosts in network namespaces, each with its own QEMU
libvirtd: placement, a maintenance evacuation of two guests and a live migration, during
which every guest keeps running (its uptime, printed each second on its serial console,
never restarts); a domain defined by hand imported as it runs and failed over; a guest with
a disk on the lab's shared pool counts its boots there, keeps running through a live
migration, and counts 2 after its host's power loss (the same disk, never two copies);
guests on two hosts hear each other over the lab's network, before and after a migration;
a second copy of a guest, started by hand on another host, is refused (QEMU's image lock),
and a start meeting a lock that virtlockd finds held elsewhere puts the VM in error at
once; a serial console is read and typed into through the API (`hactl vm console`). Needs
root, qemu-system-x86_64, qemu-img, a kernel in /boot and busybox-static (scripts/setup
installs them)."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from hacluster.lab import qemu as lab_qemu

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

    # a domain defined and started by hand on host1 (as virsh would) is imported as it runs,
    # then failed over like any HA VM when host1 loses power
    legacy_id = define_by_hand(lab, like="g1", name="legacy", on="host1")
    imported = lab.json("vm", "import", "legacy", "--host", "host1", "--ha")
    assert imported["host"] == "host1" and imported["imported"] is True
    wait_for(lambda: lab.json("vm", "show", "legacy")["status"] == "running",
             what="legacy running per the cluster")
    assert lab.domains("host1")["legacy"][0] == legacy_id  # the same domain: not restarted
    wait_for(lambda: uptimes(lab, "legacy")[0] == 1, timeout=60, what="legacy booted once")
    with watched(lab):
        lab.lab("kill", "host1")
        wait_for(lambda: lab.running().get("legacy", ["host1"]) != ["host1"], timeout=90,
                 what="legacy running on another host")
        wait_for(lambda: uptimes(lab, "legacy")[0] == 2, timeout=60,
                 what="legacy booted on its new host")


def define_by_hand(lab: LabRun, like: str, name: str, on: str) -> int:
    """A domain defined and started straight in a host's libvirt, not the cluster's: a copy
    of another guest's definition under a new name and UUID, without our metadata, with its
    own console log. Returns its libvirt domain ID."""
    uris = {h["name"]: h["libvirt_uri"] for h in lab.status()}
    (home,) = lab.running()[like]
    src, dst = libvirt.open(uris[home]), libvirt.open(uris[on])
    try:
        root = ET.fromstring(src.lookupByName(like).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        root.find("name").text = name  # type: ignore[union-attr]
        root.remove(root.find("uuid"))  # type: ignore[arg-type]
        root.remove(root.find("metadata"))  # type: ignore[arg-type]
        for log in root.iter("log"):
            log.set("file", str(lab.dir / "consoles" / f"{name}.log"))
        dom = dst.defineXML(ET.tostring(root, encoding="unicode"))
        dom.create()
        return int(dom.ID())
    finally:
        src.close()
        dst.close()


def link_local(mac: str) -> str:
    """The IPv6 link-local address a guest's kernel gives itself from its MAC (EUI-64)."""
    b = [int(x, 16) for x in mac.split(":")]
    eui = [b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]]
    return str(ipaddress.IPv6Address((0xFE80 << 112) | int.from_bytes(bytes(eui), "big")))


def console(lab: LabRun, vm: str) -> str:
    path = lab.dir / "consoles" / f"{vm}.log"
    return path.read_text(errors="replace") if path.exists() else ""


BOOT_COUNTS = re.compile(r"BOOT-COUNT (\d+)")


def guest_cpu(lab: LabRun, host: str, vm: str) -> tuple[str, str]:
    """(CPU mode, model) of the VM's domain, as the host's libvirt defines it."""
    uri = next(h["libvirt_uri"] for h in lab.status() if h["name"] == host)
    conn = libvirt.openReadOnly(uri)
    try:
        cpu = ET.fromstring(conn.lookupByName(vm).XMLDesc(0)).find("cpu")
    finally:
        conn.close()
    assert cpu is not None
    return cpu.get("mode", ""), cpu.findtext("model", "")


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """A write lock on the first byte of a disk file, where virtlockd locks it."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        yield
    finally:
        os.close(fd)


def second_copy(lab: LabRun, vm: str, home: str, other: str) -> str:
    """Define a copy of the VM's domain on another host by hand, as an operator might, try to
    start it, and return libvirt's refusal (the copy is undefined again)."""
    uris = {h["name"]: h["libvirt_uri"] for h in lab.status()}
    src, dst = libvirt.open(uris[home]), libvirt.open(uris[other])
    try:
        root = ET.fromstring(src.lookupByName(vm).XMLDesc(0))
        root.find("name").text = f"{vm}-copy"  # type: ignore[union-attr]
        root.remove(root.find("uuid"))  # type: ignore[arg-type]
        root.remove(root.find("metadata"))  # type: ignore[arg-type]
        copy = dst.defineXML(ET.tostring(root, encoding="unicode"))
        try:
            copy.create()
        except libvirt.libvirtError as exc:
            return str(exc.get_error_message())
        finally:
            if copy.isActive():
                copy.destroy()
            copy.undefine()
        raise AssertionError(f"a second copy of {vm} started on {other}")
    finally:
        src.close()
        dst.close()


def test_a_guest_keeps_its_disk_through_a_power_loss_and_guests_share_the_lab_network(
        make_lab: Callable[..., LabRun]) -> None:
    # a stop that the tiny guest ignores (it has no ACPI daemon) ends after 3 s
    lab = make_lab(3, hypervisor="qemu", extra=("--set", "agent.stop_timeout=3"))
    hosts = ["host1", "host2", "host3"]
    wait_for(lambda: [p["hosts"] for p in lab.json("storage", "list")] == [hosts] and
             [n["hosts"] for n in lab.json("network", "list")] == [hosts],
             what="every host sees lab-shared and has the lab bridge")
    for name, extra in (("d0", ("--disk", "lab-shared:1")), ("n1", ())):
        lab.hactl("vm", "create", name, "--vcpus", "1", "--memory", "96", "--net", "lab",
                  "--stopped", *extra, endpoints=lab.endpoints)
    lab.hactl("rule", "create", "apart", "--kind", "anti-affinity", "--vm", "d0", "--vm", "n1",
              endpoints=lab.endpoints)
    for name in ("d0", "n1"):
        lab.hactl("vm", "start", name, endpoints=lab.endpoints)
    wait_for(lambda: "BOOT-COUNT 1" in console(lab, "d0"), timeout=90, what="d0 counted a boot")
    running = lab.running()
    assert len(running["d0"]) == 1 and running["d0"] != running["n1"]
    (home,) = running["d0"]
    # every host reported the CPU its QEMU (TCG) offers guests; d0 runs on their baseline
    models = {h["name"]: h["cpu_model"] for h in lab.json("host", "list")}
    assert len(set(models.values())) == 1 and models[home], models
    assert guest_cpu(lab, home, "d0") == ("custom", models[home])
    macs = {name: lab.json("vm", "show", name)["nics"][0]["mac"] for name in ("d0", "n1")}
    assert f"MAC {macs['d0']}" in console(lab, "d0")
    # each pings the lab's network and hears the other, across hosts, over the bridges
    wait_for(lambda: f"PEER {link_local(macs['n1'])}" in console(lab, "d0")
             and f"PEER {link_local(macs['d0'])}" in console(lab, "n1"), timeout=60,
             what="the two guests answer each other's pings")
    volume = lab.json("vm", "show", "d0")["disks"][0]["volume"]
    assert (lab.dir / "shared" / volume).is_file()
    # the second fence: a copy of d0 defined and started by hand on another host (its
    # disk, another name and UUID, no cluster metadata) is refused by that host's virtlockd
    other = next(h for h in hosts if h != home)
    refused = second_copy(lab, "d0", home, other)
    # on one kernel QEMU's own image lock refuses it first (virtlockd takes its lock once
    # the guest is about to run); across machines either one does
    assert '"write" lock' in refused or "resource busy" in refused, refused
    assert volume in refused, refused
    assert lab.running()["d0"] == [home] and BOOT_COUNTS.findall(console(lab, "d0")) == ["1"]
    # its serial console through the API, asked of a member that is not its host: the
    # output, and a line typed into it that the guest answers
    away = next(h["api"] for h in lab.status() if h["name"] != home)
    shown = json.loads(lab.hactl("-o", "json", "vm", "console", "d0", "--tail", "1000",
                                 endpoints=away).stdout)
    assert shown["host"] == home and "BOOT-COUNT 1" in shown["text"]
    attached = lab.hactl("vm", "console", "d0", endpoints=away, stdin="hello from hactl\n")
    assert "TYPED hello from hactl" in attached.stdout, attached.stdout[-2000:]
    assert f"d0 on {home}" in attached.stderr
    # a live migration keeps it running (one boot, its uptime goes on) on the same disk, and
    # the two guests still hear each other afterwards
    (n1_home,) = lab.running()["n1"]
    third = next(h for h in hosts if h not in (home, n1_home))
    mark = uptimes(lab, "d0")[1][-1]
    moved = lab.json("vm", "migrate", "d0", "--to", third, "--wait")
    assert moved["host"] == third and lab.running()["d0"] == [third]
    seen = len(console(lab, "d0"))
    time.sleep(2.0)
    assert kept_running(lab, "d0", mark), uptimes(lab, "d0")
    wait_for(lambda: f"PEER {link_local(macs['n1'])}" in console(lab, "d0")[seen:],
             timeout=30, what="d0 hears n1 after its migration")
    assert BOOT_COUNTS.findall(console(lab, "d0")) == ["1"]
    home = third

    with watched(lab):  # the libvirt oracle: never two copies of d0
        lab.lab("kill", home)  # power loss: libvirtd, QEMU, haclusterd
        wait_for(lambda: lab.running().get("d0", [home]) != [home], timeout=90,
                 what="d0 running on another host")
        wait_for(lambda: f"MAC {macs['d0']}" in console(lab, "d0").partition(
            "BOOT-COUNT 2")[2], timeout=90, what="d0 booted from the same disk, same MAC")
        # the lost host comes back with d0 still defined in its libvirt (its disk kept the
        # definition, as a real host's does): that stale definition is removed, never run
        (new_home,) = lab.running()["d0"]
        uri = next(h["libvirt_uri"] for h in lab.status() if h["name"] == home)
        runtime = Path(uri.split("socket=")[1]).parent.parent  # RUNTIME/run/libvirt-sock
        assert (runtime / "etc" / "qemu" / "d0.xml").is_file()  # still defined there
        lab.lab("start", home)
        wait_for(lambda: "d0" not in lab.domains(home), timeout=60,
                 what=f"d0's stale definition undefined on {home}")
        assert lab.running()["d0"] == [new_home]
    assert BOOT_COUNTS.findall(console(lab, "d0")) == ["1", "2"]

    # virtlockd itself: the lock on d0's disk (byte 0, where every host's virtlockd takes
    # it) held from outside, as another host's lock manager would hold it: the start is
    # refused by the lock manager and d0 goes to error at once, never retried
    lab.hactl("vm", "stop", "d0", endpoints=lab.endpoints)
    wait_for(lambda: "d0" not in lab.running(), timeout=30, what="d0 stopped")
    with held_lock(lab.dir / "shared" / volume):
        lab.hactl("vm", "start", "d0", endpoints=lab.endpoints)
        wait_for(lambda: lab.json("vm", "show", "d0")["status"] == "error", timeout=30,
                 what="d0 refused by the lock")
        time.sleep(3.0)  # no retry meanwhile, here or elsewhere
        shown = lab.json("vm", "show", "d0")
        assert shown["error"].count("disk lock held elsewhere") == 1, shown["error"]
        assert "resource busy" in shown["error"] and len(shown["failures"]) == 1, shown
        assert "d0" not in lab.running()
    lab.hactl("vm", "start", "d0", endpoints=lab.endpoints)  # the operator freed its disk
    wait_for(lambda: BOOT_COUNTS.findall(console(lab, "d0")) == ["1", "2", "3"], timeout=90,
             what="d0 booted again from its disk")
