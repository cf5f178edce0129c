"""The libvirt adapter against libvirt's own test driver (real libvirt code paths)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from hacluster.core.importing import inspect as inspect_xml
from hacluster.core.model import Network, Observed, Pool, PoolType, Vm
from hacluster.core.storage import disk_records
from hacluster.hypervisor import FALLBACK_CPU, Hypervisor, HypervisorError, domain_xml
from hacluster.metrics import bridges_present
from hacluster.storage_pools import pool_uuid


def make_vm(name: str = "vm1") -> Vm:
    return Vm(name=name, uuid=str(uuid.uuid4()), vcpus=2, memory_mib=256)


def test_node_info_and_driver(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    assert hv.node_info() == (8, 8192)
    assert hv.kind == "test"


def test_lifecycle_and_metadata(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    vm = make_vm()
    hv.define_start(vm)
    (dom,) = hv.domains()
    assert (dom.uuid, dom.name, dom.state, dom.managed, dom.memory_mib) == (
        vm.uuid, "vm1", Observed.RUNNING, True, 256)
    hv.shutdown(vm.uuid)
    assert hv.domains()[0].state is Observed.STOPPED
    bigger = Vm(**{**vm.to_dict(), "memory_mib": 512})
    hv.start(bigger)  # a start takes the cluster's newest definition (a resize)
    assert hv.domains()[0].memory_mib == 512
    hv.destroy(vm.uuid)
    assert hv.domains()[0].state is Observed.STOPPED
    hv.undefine(vm.uuid)
    assert hv.domains() == []


def test_foreign_domains_are_reported_unmanaged() -> None:
    hv = Hypervisor("test:///default")  # ships one domain, "test", that is not ours
    foreign = [d for d in hv.domains() if d.name == "test"]
    assert foreign and not foreign[0].managed


def test_lifecycle_events_wake_the_agent(host_uri: str) -> None:
    woke = threading.Event()
    hv = Hypervisor(host_uri, on_event=woke.set)
    hv.define_start(make_vm())
    assert woke.wait(2.0)


def test_errors_name_the_call_and_uri(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    with pytest.raises(HypervisorError, match=r"destroy .* on test://"):
        hv.destroy(str(uuid.uuid4()))
    with pytest.raises(HypervisorError, match="cannot connect"):
        Hypervisor("test+unix:///default?socket=/nonexistent/sock")


# ---- storage pools and volumes (hacluster/storage_pools.py) -----------------------------------


def pools(*specs: Pool) -> dict[str, Pool]:
    return {p.name: p for p in specs}


NFS = Pool(name="nfs", type=PoolType.NETFS, shared=True, path="/mnt/nfs",
           source_host="nas.lab", source_path="/export/vms")
SCRATCH = Pool(name="scratch", type=PoolType.DIR, shared=False, path="/var/lib/scratch")


def test_pools_are_defined_started_reported_and_dropped(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    seen, errors = hv.sync_pools(pools(NFS, SCRATCH))
    assert errors == {} and set(seen) == {"nfs", "scratch"}
    assert seen["nfs"][0] > 0 and seen["nfs"][1] <= seen["nfs"][0]
    conn = hv._connect()  # a test:///FILE host lives in its connection
    nfs = conn.storagePoolLookupByName("nfs")
    assert nfs.isActive() and nfs.autostart()
    assert "<host name=\"nas.lab\"/>" in nfs.XMLDesc() or "nas.lab" in nfs.XMLDesc()
    assert nfs.UUIDString() == pool_uuid("nfs")
    # synced again: nothing changes; the cluster drops scratch: libvirt drops it too
    assert hv.sync_pools(pools(NFS, SCRATCH))[0].keys() == seen.keys()
    seen, errors = hv.sync_pools(pools(NFS))
    assert set(seen) == {"nfs"}
    assert "scratch" not in conn.listStoragePools() + conn.listDefinedStoragePools()


def test_a_pool_the_operator_defined_is_never_touched(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    conn = hv._connect()
    mine = conn.storagePoolDefineXML("<pool type='dir'><name>scratch</name><target>"
                                     "<path>/srv/other</path></target></pool>")
    seen, errors = hv.sync_pools(pools(SCRATCH))
    assert seen == {} and "hacluster did not define" in errors["scratch"]
    hv.sync_pools({})
    assert conn.storagePoolLookupByName("scratch").UUIDString() == mine.UUIDString()


def test_a_vm_gets_its_volumes_and_its_disks(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    hv.sync_pools(pools(NFS))
    conn = hv._connect()
    base = conn.storagePoolLookupByName("nfs").createXML(
        "<volume><name>debian-12</name><capacity unit='GiB'>2</capacity>"
        "<target><format type='qcow2'/></target></volume>", 0)
    vm = Vm(name="web", uuid=str(uuid.uuid4()), vcpus=1, memory_mib=128,
            disks=disk_records("web", "0123456789", [
                {"pool": "nfs", "size_gib": 20, "image": "nfs/debian-12"},
                {"pool": "nfs", "size_gib": 5, "image": ""}]))
    hv.define_start(vm, pools(NFS))
    pool = conn.storagePoolLookupByName("nfs")
    boot = pool.storageVolLookupByName("web-01234567-disk0")
    assert boot.info()[1] == 20 << 30 and base.path() in boot.XMLDesc()  # a clone of it
    assert pool.storageVolLookupByName("web-01234567-disk1").info()[1] == 5 << 30
    xml = conn.lookupByUUIDString(vm.uuid).XMLDesc()
    assert "volume='web-01234567-disk0'" in xml and "dev='vda'" in xml
    assert "volume='web-01234567-disk1'" in xml and "dev='vdb'" in xml
    # defined again elsewhere (or after an undefine): existing volumes are kept, not re-made
    hv.destroy(vm.uuid)
    hv.undefine(vm.uuid)
    hv.define_start(vm, pools(NFS))
    assert pool.storageVolLookupByName("web-01234567-disk0").info()[1] == 20 << 30


def test_a_missing_volume_of_a_vm_that_ran_is_not_recreated_empty(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    hv.sync_pools(pools(NFS))
    vm = Vm(name="db", uuid=str(uuid.uuid4()), vcpus=1, memory_mib=128, running_since=5.0,
            disks=disk_records("db", "abcdef0123", [{"pool": "nfs", "size_gib": 3}]))
    hv._kind = "qemu"  # what a real driver would do; the test driver simulates sharing
    with pytest.raises(HypervisorError, match="not creating an empty disk"):
        hv.define_start(vm, pools(NFS))
    assert hv._connect().storagePoolLookupByName("nfs").listVolumes() == []


def test_nics_are_on_their_bridges_with_the_clusters_macs(host_uri: str,
                                                         tmp_path: Path) -> None:
    hv = Hypervisor(host_uri)
    nets = {"lan": Network(name="lan", bridge="br-lan")}
    vm = Vm(name="web", uuid=str(uuid.uuid4()), vcpus=1, memory_mib=128,
            nics=[{"network": "lan", "mac": "52:54:00:0a:0b:0c"}])
    hv.define_start(vm, {}, nets)
    xml = hv._connect().lookupByUUIDString(vm.uuid).XMLDesc()
    assert "<mac address='52:54:00:0a:0b:0c'/>" in xml and "<source bridge='br-lan'/>" in xml
    # which bridges a host has: its kernel's /sys/class/net/NAME/bridge
    (tmp_path / "br-lan" / "bridge").mkdir(parents=True)
    (tmp_path / "eth0").mkdir()
    assert bridges_present({"br-lan", "eth0", "br-none"}, str(tmp_path)) == {"br-lan"}


def test_an_imported_domain_is_inspected_adopted_as_it_runs_and_defined_elsewhere(
        host_uri: str, tmp_path: Path) -> None:
    hv = Hypervisor(host_uri)
    conn = hv._connect()
    by_hand = conn.defineXML(
        "<domain type='test'><name>legacy</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os><devices><interface type='bridge'>"
        "<mac address='52:54:00:12:34:56'/><source bridge='br0'/></interface></devices>"
        "</domain>")
    by_hand.create()
    dom_id = by_hand.ID()
    xml, running, managed = hv.inspect("legacy")
    assert running and not managed and "52:54:00:12:34:56" in xml
    with pytest.raises(HypervisorError, match="not found"):
        hv.inspect("nobody")
    hv.adopt(by_hand.UUIDString(), "legacy")
    (dom,) = hv.domains()
    assert dom.managed and dom.state is Observed.RUNNING
    assert conn.lookupByName("legacy").ID() == dom_id  # never restarted
    assert hv.inspect("legacy")[2]
    # another host defines it from the cluster's copy of its XML: same MAC, ours
    found = inspect_xml(xml, {}, {"lan": Network(name="lan", bridge="br0")})
    vm = Vm(name="legacy", uuid=found.uuid, vcpus=found.vcpus, memory_mib=found.memory_mib,
            nics=found.nics, xml=found.xml)
    other_file = tmp_path / "other.xml"
    other_file.write_text(Path(host_uri.removeprefix("test://")).read_text())
    other = Hypervisor(f"test://{other_file}")
    other.define_start(vm)
    (moved,) = other.domains()
    assert moved.managed and moved.uuid == vm.uuid
    assert "52:54:00:12:34:56" in other._connect().lookupByName("legacy").XMLDesc()


def test_guest_cpus_baseline_passthrough_and_none_on_the_test_driver(host_uri: str) -> None:
    hv = Hypervisor(host_uri)
    # the test driver offers no CPU model and no baseline: said as "" (qemu64 elsewhere)
    assert hv.host_cpu() == "" and hv.baseline(["<cpu/>"]) == ""
    baseline = ("<cpu mode='custom' match='exact'><model fallback='forbid'>EPYC</model>"
                "</cpu>")
    vm = make_vm()
    assert baseline in domain_xml(vm, "kvm", cpu_baseline=baseline)
    assert FALLBACK_CPU in domain_xml(vm, "qemu")  # no baseline known yet
    passthrough = Vm(**{**vm.to_dict(), "cpu": "host-passthrough"})
    assert "<cpu mode='host-passthrough'/>" in domain_xml(passthrough, "kvm", cpu_baseline=baseline)
    assert "<cpu mode='maximum'/>" in domain_xml(passthrough, "qemu")  # TCG: all it emulates
    assert "<cpu" not in domain_xml(vm, "test", cpu_baseline=baseline)
