"""Storage pools, networks, VM disks and NICs on real labs, through hactl as the README
shows it, judged by each host's own libvirt: every host defines and starts the pools, a VM's
volume is created in its pool and is its disk, it migrates and fails over to hosts that see
the pool, a VM with a disk on a local pool is refused HA and never moves, a pool holding
disks cannot be deleted, a VM deleted with --delete-disks takes its volumes along and one
deleted without keeps them; a domain defined by hand is imported as it runs and fails over
from its own XML; a VM waits for a host with its network's bridge, and keeps its MACs when it
moves.

The lab's hypervisor is libvirt's test driver, whose pools live in each libvirtd's memory:
"shared" is simulated there by creating the volume where the VM lands (storage_pools.py).
Its hosts share this machine's kernel, so a bridge made here is on every host.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import libvirt
import pytest

from .conftest import LabRun, wait_for
from .test_failover import root_only, uris

pytestmark = pytest.mark.cluster


LEGACY = ("<domain type='test'><name>legacy</name><memory unit='MiB'>64</memory>"
          "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>"
          "<interface type='network'><mac address='52:54:00:5e:00:42'/>"
          "<source network='default'/></interface></devices></domain>")


@contextmanager
def host_libvirt(lab: LabRun, host: str, read_only: bool = True
                 ) -> Iterator[libvirt.virConnect]:
    uri = uris(lab)[host]
    conn = libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)
    try:
        yield conn
    finally:
        conn.close()


def pool_state(lab: LabRun, host: str, pool: str) -> tuple[bool, list[str]]:
    """(active, volumes) of a pool in the host's own libvirt."""
    with host_libvirt(lab, host) as conn:
        handle = conn.storagePoolLookupByName(pool)
        active = bool(handle.isActive())
        return active, sorted(handle.listVolumes()) if active else []


def disk_sources(lab: LabRun, host: str, vm: str) -> list[str]:
    with host_libvirt(lab, host) as conn:
        xml = conn.lookupByName(vm).XMLDesc()
    return [line.strip() for line in xml.splitlines() if "<source pool=" in line]


def test_pools_disks_failover_and_local_pools(make_lab: object) -> None:
    lab: LabRun = make_lab(3)  # type: ignore[operator]
    hosts = sorted(uris(lab))
    lab.hactl("storage", "create", "shared", "--type", "dir", "--path", "/srv/hac/shared",
              endpoints=lab.endpoints)
    lab.hactl("storage", "create", "scratch", "--type", "dir", "--path", "/srv/hac/scratch",
              "--local", endpoints=lab.endpoints)
    wait_for(lambda: all(p["hosts"] == hosts for p in lab.json("storage", "list")),
             what="every host sees both pools")
    for h in hosts:
        assert pool_state(lab, h, "shared") == (True, [])
    listed = {p["name"]: p for p in lab.json("storage", "list")}
    assert listed["shared"]["shared"] is True and listed["scratch"]["shared"] is False
    assert listed["shared"]["type"] == "dir" and listed["shared"]["capacity_gib"] > 0

    # bad input: a clear error, exit 1, nothing stored
    bad = lab.hactl("vm", "create", "db", "--vcpus", "1", "--memory", "128", "--disk",
                    "scratch:5", check=False, endpoints=lab.endpoints)
    assert bad.returncode == 1 and "an HA VM needs every disk on a shared pool" in bad.stderr
    bad = lab.hactl("vm", "create", "db", "--vcpus", "1", "--memory", "128", "--disk",
                    "nowhere:5", check=False, endpoints=lab.endpoints)
    assert bad.returncode == 1 and "storage pool 'nowhere' does not exist" in bad.stderr
    bad = lab.hactl("vm", "create", "db", "--vcpus", "1", "--memory", "128", "--disk",
                    "shared:ten", check=False, endpoints=lab.endpoints)
    assert bad.returncode == 2 and "not a whole number" in bad.stderr
    assert lab.json("vm", "list") == []

    web = lab.json("vm", "create", "web", "--vcpus", "1", "--memory", "128", "--disk",
                   "shared:10", "--disk", "shared:2")
    volumes = [d["volume"] for d in web["disks"]]
    assert [d["size_gib"] for d in web["disks"]] == [10, 2]
    wait_for(lambda: "web" in lab.running(), what="web running per libvirt")
    (home,) = lab.running()["web"]
    assert pool_state(lab, home, "shared") == (True, sorted(volumes))
    assert disk_sources(lab, home, "web") == [
        f"<source pool='shared' volume='{v}'/>" for v in volumes]

    db = lab.json("vm", "create", "db", "--vcpus", "1", "--memory", "128", "--disk",
                  "scratch:5", "--no-ha")
    wait_for(lambda: "db" in lab.running(), what="db running per libvirt")
    (db_home,) = lab.running()["db"]
    assert pool_state(lab, db_home, "scratch")[1] == [db["disks"][0]["volume"]]
    moved = lab.hactl("vm", "migrate", "db", check=False, endpoints=lab.endpoints)
    assert moved.returncode == 1 and "local pool" in moved.stderr
    # the test driver's domains have no serial console: said so, exit 1
    console = lab.hactl("vm", "console", "db", "--tail", "5", check=False,
                        endpoints=lab.endpoints)
    assert console.returncode == 1 and f"db on {db_home} has no console log" in console.stderr

    # web moves (a cold handover on the test driver) to a host the shared pool is on, away
    # from db; then that host loses power: web runs elsewhere, on its disks
    target = next(h for h in hosts if h not in (home, db_home))
    lab.hactl("vm", "migrate", "web", "--to", target, "--wait", endpoints=lab.endpoints)
    wait_for(lambda: lab.running().get("web") == [target], what="web running on " + target)
    assert disk_sources(lab, target, "web") == [
        f"<source pool='shared' volume='{v}'/>" for v in volumes]
    home = target

    # a domain defined by hand on that host is imported as it runs, HA
    with host_libvirt(lab, home, read_only=False) as conn:
        by_hand = conn.defineXML(LEGACY)
        by_hand.create()
        legacy_id, legacy_uuid = by_hand.ID(), by_hand.UUIDString()
    imported = lab.json("vm", "import", "legacy", "--host", home, "--ha")
    assert (imported["host"], imported["uuid"], imported["imported"]) == (
        home, legacy_uuid, True)
    wait_for(lambda: lab.json("vm", "show", "legacy")["status"] == "running",
             what="legacy running per the cluster")
    assert lab.domains(home)["legacy"][0] == legacy_id  # the same domain: not restarted
    again = lab.hactl("vm", "import", "legacy", "--host", home, check=False,
                      endpoints=lab.endpoints)
    assert again.returncode == 1 and "already" in again.stderr

    lab.lab("kill", home)
    wait_for(lambda: lab.running().get("web", [home]) != [home], timeout=60,
             what="web running on another host")
    (new_home,) = lab.running()["web"]
    assert new_home != home
    assert disk_sources(lab, new_home, "web") == [
        f"<source pool='shared' volume='{v}'/>" for v in volumes]
    assert pool_state(lab, new_home, "shared")[1] == sorted(volumes)
    vm = lab.json("vm", "show", "web")
    assert vm["host"] == new_home and vm["disks"][0]["volume"] == volumes[0]
    # the imported VM too, defined there from its own XML: same UUID, same MAC
    wait_for(lambda: lab.running().get("legacy", [home]) != [home], timeout=60,
             what="legacy running on another host")
    (legacy_home,) = lab.running()["legacy"]
    with host_libvirt(lab, legacy_home) as conn:
        moved = conn.lookupByName("legacy")
        assert moved.UUIDString() == legacy_uuid
        assert "<mac address='52:54:00:5e:00:42'/>" in moved.XMLDesc()

    refused = lab.hactl("storage", "delete", "shared", check=False, endpoints=lab.endpoints)
    assert refused.returncode == 1 and "holds disks of 1 VMs (web)" in refused.stderr
    # deleted with its disks: the host that had it deletes the volumes; without: kept
    lab.hactl("vm", "delete", "web", "--delete-disks", endpoints=lab.endpoints)
    lab.hactl("vm", "delete", "db", endpoints=lab.endpoints)
    wait_for(lambda: pool_state(lab, new_home, "shared")[1] == [],
             what="web's volumes deleted on " + new_home)
    wait_for(lambda: "db" not in lab.domains(db_home), what="db undefined")
    assert pool_state(lab, db_home, "scratch")[1] == [db["disks"][0]["volume"]]
    lab.hactl("storage", "delete", "shared", endpoints=lab.endpoints)
    survivors = [h for h in hosts if h != home]

    def dropped() -> bool:
        for h in survivors:
            with host_libvirt(lab, h) as conn:
                if "shared" in conn.listStoragePools() + conn.listDefinedStoragePools():
                    return False
        return True

    wait_for(dropped, what="the deleted pool gone from every live host's libvirt")
    assert [p["name"] for p in lab.json("storage", "list")] == ["scratch"]
    out = lab.hactl("-o", "json", "storage", "list", endpoints=lab.endpoints).stdout
    assert set(json.loads(out)[0]) >= {"name", "type", "shared", "capacity_gib", "free_gib",
                                       "hosts"}


def interface_lines(lab: LabRun, host: str, vm: str) -> list[str]:
    with host_libvirt(lab, host) as conn:
        xml = conn.lookupByName(vm).XMLDesc()
    return [line.strip() for line in xml.splitlines()
            if "<mac address=" in line or "<source bridge=" in line]


@pytest.fixture
def bridges() -> Iterator[Callable[[str], None]]:
    """Linux bridges made for the test (the lab's hosts share this kernel), removed after."""
    made: list[str] = []

    def make(name: str) -> None:
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        made.append(name)

    yield make
    for name in made:
        subprocess.run(["ip", "link", "del", name], check=False)


@root_only
def test_networks_need_their_bridge_and_macs_stay(make_lab: object,
                                                  bridges: Callable[[str], None]) -> None:
    lab: LabRun = make_lab(2)  # type: ignore[operator]
    tag = os.getpid() % 10000
    lan, dmz = f"hlan{tag}", f"hdmz{tag}"
    bridges(lan)
    lab.hactl("network", "create", "lan", "--bridge", lan, endpoints=lab.endpoints)
    lab.hactl("network", "create", "dmz", "--bridge", dmz, endpoints=lab.endpoints)
    bad = lab.hactl("network", "create", "x", "--bridge", "no/such", check=False,
                    endpoints=lab.endpoints)
    assert bad.returncode == 1 and "is not an interface name" in bad.stderr
    wait_for(lambda: {n["name"]: n["hosts"] for n in lab.json("network", "list")} == {
        "lan": ["host1", "host2"], "dmz": []}, what="hosts report the lan bridge only")

    # no host has the dmz bridge: the VM waits, saying why for each host
    lab.hactl("vm", "create", "proxy", "--vcpus", "1", "--memory", "64", "--net", "dmz",
              endpoints=lab.endpoints)
    wait_for(lambda: lab.json("vm", "show", "proxy")["pending_reasons"] == [
        f"host1: network: lacks network dmz (bridge {dmz})",
        f"host2: network: lacks network dmz (bridge {dmz})"], what="proxy pending, why")
    bridges(dmz)  # the operator adds it: the hosts notice, proxy runs
    wait_for(lambda: "proxy" in lab.running(), timeout=40, what="proxy running")

    web = lab.json("vm", "create", "web", "--vcpus", "1", "--memory", "64", "--net", "lan",
                   "--net", "dmz")
    macs = [n["mac"] for n in web["nics"]]
    assert len(set(macs)) == 2 and all(m.startswith("52:54:00:") for m in macs)
    wait_for(lambda: "web" in lab.running(), what="web running")
    (home,) = lab.running()["web"]
    expected = [f"<mac address='{macs[0]}'/>", f"<source bridge='{lan}'/>",
                f"<mac address='{macs[1]}'/>", f"<source bridge='{dmz}'/>"]
    assert interface_lines(lab, home, "web") == expected
    other = "host2" if home == "host1" else "host1"
    lab.hactl("vm", "migrate", "web", "--to", other, "--wait", endpoints=lab.endpoints)
    wait_for(lambda: lab.running().get("web") == [other], what="web moved")
    assert interface_lines(lab, other, "web") == expected  # the same MACs on the new host
    refused = lab.hactl("network", "delete", "lan", check=False, endpoints=lab.endpoints)
    assert refused.returncode == 1 and "used by 1 VMs (web)" in refused.stderr
