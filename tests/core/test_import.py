"""`vm import`: a domain's XML read, sanitised and matched with the cluster's pools and
networks; the import recorded as it is, or refused with the reason (nothing stored)."""

from __future__ import annotations

from typing import Any

import pytest

from hacluster.core import commands as c
from hacluster.core import importing
from hacluster.core.model import Network, Observed, Pool, PoolType, VmState
from hacluster.core.placement import HostTable, Placer
from hacluster.core.state import ClusterState, Result

from .factories import assign, cid, register

UUID = "7d4a3c1e-0b7f-4b53-9d43-3b0d1a2f9c11"


def domain(disks: str = "", nics: str = "", memory: str = "<memory unit='KiB'>524288</memory>",
           extra: str = "") -> str:
    return f"""<domain type='test' id='7'>
  <name>legacy</name><uuid>{UUID}</uuid>{memory}<vcpu>2</vcpu>
  <metadata><hac:vm xmlns:hac='https://hacluster.dev/xmlns/vm/1' name='old'/></metadata>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>{disks}{nics}</devices>{extra}
  <seclabel type='dynamic' model='apparmor'/>
</domain>"""


FILE_DISK = ("<disk type='file' device='disk'><source file='/srv/nfs/legacy.qcow2'/>"
             "<target dev='vda'/></disk>")
LOCAL_DISK = ("<disk type='file' device='disk'><source file='/var/lib/vm/legacy.img'/>"
              "<target dev='vdb'/></disk>")
CDROM = ("<disk type='file' device='cdrom'><source file='/iso/debian.iso'/>"
         "<target dev='hdc'/></disk>")
LAN_NIC = ("<interface type='bridge'><mac address='52:54:00:AA:BB:CC'/>"
           "<source bridge='br0'/></interface>")
ODD_NIC = ("<interface type='bridge'><mac address='52:54:00:00:00:01'/>"
           "<source bridge='br9'/></interface>")

POOLS = {"nfs": Pool(name="nfs", type=PoolType.DIR, shared=True, path="/srv/nfs/",
                     seen={"a": [100.0, 90.0], "b": [100.0, 90.0]})}
NETS = {"lan": Network(name="lan", bridge="br0", hosts=["a", "b"])}


def test_the_xml_is_sanitised_and_matched() -> None:
    found = importing.inspect(domain(FILE_DISK + CDROM, LAN_NIC), POOLS, NETS)
    assert (found.uuid, found.vcpus, found.memory_mib) == (UUID, 2, 512)
    assert found.disks == [{"pool": "nfs", "volume": "legacy.qcow2", "size_gib": 0,
                            "image": ""}]
    assert found.nics == [{"network": "lan", "mac": "52:54:00:aa:bb:cc"}]
    assert found.problems == []
    assert "id=" not in found.xml.split(">")[0] and "seclabel" not in found.xml
    assert "hacluster.dev" not in found.xml and "debian.iso" in found.xml


def test_what_stops_ha_is_named() -> None:
    found = importing.inspect(domain(FILE_DISK + LOCAL_DISK, ODD_NIC), POOLS, NETS)
    assert found.problems == [
        "disk 1 (/var/lib/vm/legacy.img) is on no storage pool of the cluster",
        "a NIC is on bridge br9, which is no cluster network"]


@pytest.mark.parametrize(("xml", "message"), [
    ("<domain", "does not parse"),
    ("<network/>", "not a libvirt domain"),
    (domain().replace(UUID, ""), "has no UUID"),
    (domain(memory="<memory unit='parsec'>1</memory>"), "memory unit 'parsec' is unknown"),
    (domain().replace("<vcpu>2</vcpu>", "<vcpu>two</vcpu>"), "vcpu is not a number"),
    ("x" * (importing.MAX_XML + 1), "over"),
])
def test_unusable_xml_is_refused(xml: str, message: str) -> None:
    with pytest.raises(importing.NotImportable, match=message):
        importing.inspect(xml, POOLS, NETS)


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState()
    for h in ("a", "b"):
        register(s, h)
    s.pools = dict(POOLS)
    s.networks = dict(NETS)
    return s


def do_import(s: ClusterState, xml: str, **kw: Any) -> Result:
    spec: dict[str, Any] = {"name": "legacy", "host": "a", "running": True, "ha": False}
    spec.update(kw)
    return s.apply(c.ImportVm(id=cid(), xml=xml, **spec))


def test_an_import_is_recorded_as_it_runs(state: ClusterState) -> None:
    assert do_import(state, domain(FILE_DISK, LAN_NIC), ha=True).ok
    vm = state.vms["legacy"]
    assert (vm.host, vm.observed, vm.state, vm.ha, vm.uuid) == (
        "a", Observed.RUNNING, VmState.STARTED, True, UUID)
    assert vm.xml and not vm.pinned and state.macs == {"52:54:00:aa:bb:cc": "legacy"}
    assert ClusterState.from_dict(state.to_dict()) == state
    # a second import of the same domain, or of one with the same MAC, is refused
    assert do_import(state, domain(FILE_DISK, LAN_NIC), name="again").code == "exists"
    other = domain(nics=LAN_NIC).replace(UUID, "another-uuid")
    r = do_import(state, other, name="twin")
    assert r.code == "conflict" and "52:54:00:aa:bb:cc (legacy)" in r.message


def test_ha_needs_shared_disks_and_cluster_bridges(state: ClusterState) -> None:
    r = do_import(state, domain(LOCAL_DISK), ha=True)
    assert r.code == "invalid" and "cannot be HA: disk 0 (/var/lib/vm/legacy.img)" in r.message
    assert "legacy" not in state.vms


def test_without_ha_a_vm_with_local_disks_stays_home(state: ClusterState) -> None:
    assert do_import(state, domain(LOCAL_DISK), running=False).ok
    vm = state.vms["legacy"]
    assert (vm.pinned, vm.state, vm.observed) == ("a", VmState.STOPPED, Observed.STOPPED)
    state.apply(c.SetVmState(id=cid(), name="legacy", state="started"))
    d = Placer(state.policy).decide(state.vms["legacy"], HostTable.of(state), explain=True)
    assert d.host == "a" and d.rejected["b"] == "pinned: imported with disks or NICs only a has"
    assert assign(state, "legacy", "b").code == "conflict"
    assert assign(state, "legacy", "a").ok
    r = state.apply(c.RequestMigration(id=cid(), name="legacy", to="b"))
    assert r.code == "conflict" and "stays on a" in r.message


@pytest.mark.parametrize(("change", "code"), [
    ({"host": "ghost"}, "conflict"), ({"name": "Bad!"}, "invalid"),
    ({"xml": "<domain"}, "invalid")])
def test_bad_imports_change_nothing(state: ClusterState, change: dict[str, Any],
                                    code: str) -> None:
    before = state.revision
    spec: dict[str, Any] = {"xml": domain()}
    spec.update(change)
    r = state.apply(c.ImportVm(id=cid(), running=True, **{"name": "legacy", "host": "a",
                                                         **spec}))
    assert r.code == code and state.revision == before and not state.vms
