"""Storage pools and disks in the state machine and in placement: what is refused (with the
reason, changing nothing), what hosts report, and where VMs with disks may run."""

from __future__ import annotations

from typing import Any

import pytest

from hacluster.core import commands as c
from hacluster.core import networks
from hacluster.core.cow import ShardedDict
from hacluster.core.model import Policy
from hacluster.core.placement import HostTable, Placer
from hacluster.core.state import ClusterState, Result

from .factories import assign, cid, create, register


def pool(s: ClusterState, name: str, shared: bool = True, **kw: Any) -> Result:
    spec: dict[str, Any] = {"type": "dir", "path": f"/srv/{name}"}
    spec.update(kw)
    return s.apply(c.CreatePool(id=cid(), name=name, shared=shared, **spec))


def observe(s: ClusterState, host: str, seen: dict[str, list[float]],
            errors: dict[str, str] | None = None, networks: list[str] | None = None) -> Result:
    return s.apply(c.ObserveHostFacts(id=cid(), host=host, pools=seen,
                                      pool_errors=errors or {}, networks=networks or []))


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState()
    for h in ("a", "b", "c"):
        register(s, h)
    assert pool(s, "nfs").ok and pool(s, "scratch", shared=False).ok
    return s


def disk(pool_name: str, size: int = 10, image: str = "") -> dict[str, Any]:
    return {"pool": pool_name, "size_gib": size, "image": image}


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "Bad", "type": "dir", "path": "/x"}, "pool name 'Bad' is invalid"),
    ({"name": "p", "type": "zfs", "path": "/x"}, "pool type must be one of"),
    ({"name": "p", "type": "dir"}, "a dir pool needs a path"),
    ({"name": "p", "type": "dir", "path": "relative"}, "path 'relative' is invalid"),
    ({"name": "p", "type": "netfs", "path": "/mnt/p"}, "a netfs pool needs a source host"),
    ({"name": "p", "type": "logical", "path": "/x", "source_path": "vg0"},
     "a logical pool takes no path"),
    ({"name": "p", "type": "dir", "path": "/x'/><evil"}, "is invalid"),
])
def test_bad_pool_specs_are_refused_and_change_nothing(spec: dict[str, Any],
                                                       message: str) -> None:
    s = ClusterState()
    before = s.to_dict()
    r = s.apply(c.CreatePool(id="x", shared=True, **spec))
    assert not r.ok and r.code == "invalid" and message in r.message
    assert {k: v for k, v in s.to_dict().items() if k != "recent"} == \
        {k: v for k, v in before.items() if k != "recent"}


def test_pools_of_every_type_are_recorded(state: ClusterState) -> None:
    assert pool(state, "nas", type="netfs", path="/mnt/nas", source_host="10.0.0.5",
                source_path="/export/vms").ok
    assert pool(state, "vg", type="logical", path="", source_path="vg0").ok
    assert pool(state, "ceph", type="rbd", path="", source_host="mon1",
                source_path="vms").ok
    assert pool(state, "nfs").code == "exists"
    assert set(state.pools) == {"nfs", "scratch", "nas", "vg", "ceph"}
    assert ClusterState.from_dict(state.to_dict()) == state


def test_hosts_report_what_they_see_and_unchanged_reports_change_nothing(
        state: ClusterState) -> None:
    assert observe(state, "a", {"nfs": [100.0, 80.0]}).ok
    assert observe(state, "b", {}, {"nfs": "mount failed"}).ok
    p = state.pools["nfs"]
    assert p.seen == {"a": [100.0, 80.0]} and p.errors == {"b": "mount failed"}
    revision = state.revision
    assert observe(state, "a", {"nfs": [100.0, 80.0]}).message == "unchanged"
    assert state.revision == revision
    assert observe(state, "a", {}).ok  # it lost the pool
    assert state.pools["nfs"].seen == {}


@pytest.mark.parametrize("seen", [{"nfs": [1.0]}, {"nfs": [float("nan"), 1.0]},
                                  {"nfs": ["x", 1]}, {"nfs": [-1.0, 1.0]}, {"nfs": 5}])
def test_malformed_reports_are_refused(state: ClusterState, seen: Any) -> None:
    r = observe(state, "a", seen)
    assert not r.ok and r.code == "invalid"
    assert state.pools["nfs"].seen == {}


def test_disks_are_named_after_the_vm_and_its_uuid(state: ClusterState) -> None:
    assert create(state, "web", uuid="0123456789abcdef", disks=[
        disk("nfs", 20, "nfs/debian-12"), disk("nfs", 5)]).ok
    assert state.vms["web"].disks == [
        {"pool": "nfs", "volume": "web-01234567-disk0", "size_gib": 20,
         "image": "nfs/debian-12"},
        {"pool": "nfs", "volume": "web-01234567-disk1", "size_gib": 5, "image": ""}]


@pytest.mark.parametrize(("disks", "ha", "message"), [
    ([disk("nope")], True, "storage pool 'nope' does not exist"),
    ([disk("scratch")], True, "an HA VM needs every disk on a shared pool"),
    ([disk("nfs", 0)], False, "disk 0 size_gib must be between 1 and"),
    ([disk("nfs", 1 << 40)], False, "disk 0 size_gib must be between 1 and"),
    ([disk("nfs"), disk("nfs", 5, "nfs/base")], False, "only the boot disk"),
    ([disk("nfs", 5, "other/base")], False, "must be POOL/VOLUME, a volume of pool nfs"),
    ([disk("nfs")] * 9, False, "at most 8 disks"),
    ("nfs:10", False, "disks must be a list"),
])
def test_bad_disks_are_refused_with_the_reason(state: ClusterState, disks: Any, ha: bool,
                                               message: str) -> None:
    r = create(state, "v", ha=ha, disks=disks)
    assert not r.ok and r.code == "invalid" and message in r.message, r.message
    assert "v" not in state.vms


def test_shared_pool_space_is_checked_at_creation(state: ClusterState) -> None:
    observe(state, "a", {"nfs": [100.0, 100.0]})
    assert create(state, "one", disks=[disk("nfs", 60)]).ok
    r = create(state, "two", disks=[disk("nfs", 60)])
    assert r.code == "admission" and "storage pool nfs has 40 GiB left" in r.message
    state.apply(c.SetPolicy(id=cid(), changes={"disk_ratio": 2.0}))
    assert create(state, "two", disks=[disk("nfs", 60)]).ok  # thin provisioning


def test_a_pool_holding_disks_cannot_be_deleted(state: ClusterState) -> None:
    create(state, "v", disks=[disk("nfs")])
    r = state.apply(c.DeletePool(id=cid(), name="nfs"))
    assert r.code == "conflict" and "holds disks of 1 VMs (v)" in r.message
    assert state.apply(c.DeleteVm(id=cid(), name="v")).ok
    assert state.apply(c.DeletePool(id=cid(), name="nfs")).ok
    assert state.apply(c.DeletePool(id=cid(), name="nfs")).code == "not_found"


def decide(state: ClusterState, name: str) -> tuple[str | None, dict[str, str]]:
    d = Placer(Policy()).decide(state.vms[name], HostTable.of(state), explain=True)
    return d.host, d.rejected


def test_placement_needs_a_host_that_sees_the_pool(state: ClusterState) -> None:
    observe(state, "b", {"nfs": [100.0, 100.0]})
    observe(state, "c", {}, {"nfs": "mount failed"})
    create(state, "v", disks=[disk("nfs")])
    host, rejected = decide(state, "v")
    assert host == "b"
    assert rejected["a"] == "storage: does not see storage pool nfs"
    assert rejected["c"] == "storage: does not see storage pool nfs"
    # apply refuses a stale plan that names a host without the pool
    r = assign(state, "v", "a")
    assert r.code == "conflict" and "does not see storage pool nfs" in r.message


def test_a_vm_on_a_local_pool_stays_home(state: ClusterState) -> None:
    for h in "abc":
        observe(state, h, {"scratch": [50.0, 50.0], "nfs": [100.0, 100.0]})
    create(state, "big", ha=False, disks=[disk("scratch", 40)])
    host, _ = decide(state, "big")
    assert host is not None and assign(state, "big", host).ok
    # its volume takes room in that host's pool: a second 40 GiB disk goes elsewhere
    create(state, "big2", ha=False, disks=[disk("scratch", 40)])
    other, rejected = decide(state, "big2")
    assert other not in (None, host)
    assert "local pool scratch has too little room for 40 GiB" in rejected[host]
    # stopped and started again: only its home host will do, and it never migrates
    state.apply(c.SetVmState(id=cid(), name="big", state="stopped"))
    state.apply(c.SetVmState(id=cid(), name="big", state="started"))
    assert state.vms["big"].host is None
    again, rejected = decide(state, "big")
    assert again == host
    assert all("volumes are on local pool scratch of " + host in why
               for h, why in rejected.items() if h != host)
    assert assign(state, "big", host).ok
    r = state.apply(c.RequestMigration(id=cid(), name="big", to=""))
    assert r.code == "conflict" and "local pool" in r.message
    target = next(h for h in "abc" if h != host)
    r = state.apply(c.SetMigration(id=cid(), name="big", to=target,
                                   expect_version=state.vms["big"].version))
    assert r.code == "conflict" and "local pool scratch" in r.message


def test_migration_target_must_see_the_shared_pool(state: ClusterState) -> None:
    observe(state, "a", {"nfs": [100.0, 100.0]})
    observe(state, "b", {"nfs": [100.0, 100.0]})
    create(state, "v", disks=[disk("nfs")])
    assert assign(state, "v", "a").ok
    r = state.apply(c.SetMigration(id=cid(), name="v", to="c",
                                   expect_version=state.vms["v"].version))
    assert r.code == "conflict" and "does not see storage pool nfs" in r.message
    assert state.apply(c.SetMigration(id=cid(), name="v", to="b",
                                      expect_version=state.vms["v"].version)).ok


def test_vms_without_disks_place_as_before(state: ClusterState) -> None:
    create(state, "plain")
    host, rejected = decide(state, "plain")
    assert host is not None and not rejected


def test_deleting_a_vm_keeps_its_volumes_unless_asked(state: ClusterState) -> None:
    observe(state, "a", {"nfs": [100.0, 100.0]})
    observe(state, "b", {"nfs": [100.0, 100.0]})
    for name in ("keep", "drop", "never"):
        create(state, name, uuid=f"{name}-0000", disks=[disk("nfs")])
    assign(state, "keep", "a")
    assign(state, "drop", "b")
    assert state.apply(c.DeleteVm(id=cid(), name="keep")).ok
    assert state.doomed_volumes == {}
    assert state.apply(c.DeleteVm(id=cid(), name="drop", delete_disks=True)).ok
    assert state.apply(c.DeleteVm(id=cid(), name="never", delete_disks=True)).ok  # no volume
    key = "nfs/drop-drop0000-disk0"
    assert state.doomed_volumes == {key: {"pool": "nfs", "volume": "drop-drop0000-disk0",
                                          "host": "b", "uuid": "drop-0000"}}
    assert ClusterState.from_dict(state.to_dict()) == state
    # only the host named may say it deleted it
    assert state.apply(c.VolumesDeleted(id=cid(), host="a", volumes=[key])).message == \
        "unchanged"
    assert state.apply(c.VolumesDeleted(id=cid(), host="b", volumes=[key])).ok
    assert state.doomed_volumes == {}


# ---- networks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "bridge", "message"), [
    ("Lan", "br0", "network name 'Lan' is invalid"),
    ("lan", "", "bridge '' is not an interface name"),
    ("lan", "a-bridge-name-too-long", "is not an interface name"),
    ("lan", "br/0", "is not an interface name"),
])
def test_bad_networks_are_refused(name: str, bridge: str, message: str) -> None:
    s = ClusterState()
    r = s.apply(c.CreateNetwork(id=cid(), name=name, bridge=bridge))
    assert r.code == "invalid" and message in r.message and not s.networks


def test_nics_get_a_mac_once_and_placement_needs_the_bridge(state: ClusterState) -> None:
    assert state.apply(c.CreateNetwork(id=cid(), name="lan", bridge="br0")).ok
    assert state.apply(c.CreateNetwork(id=cid(), name="san", bridge="br1")).ok
    r = create(state, "v", networks=["lan", "nope"])
    assert r.code == "invalid" and "network 'nope' does not exist" in r.message
    assert create(state, "v", networks=["lan", "san"]).ok
    nics = state.vms["v"].nics
    assert [n["network"] for n in nics] == ["lan", "san"]
    assert all(n["mac"].startswith("52:54:00:") for n in nics) and nics[0] != nics[1]
    assert ClusterState.from_dict(state.to_dict()).macs == state.macs
    # nobody has the bridges yet: pending with the reason per host
    host, rejected = decide(state, "v")
    assert host is None
    assert rejected["a"] == ("network: lacks network lan (bridge br0); "
                             "lacks network san (bridge br1)")
    observe(state, "b", {}, networks=["lan", "san"])
    observe(state, "c", {}, networks=["lan"])
    assert state.networks["lan"].hosts == ["b", "c"]
    host, rejected = decide(state, "v")
    assert host == "b" and rejected["c"] == "network: lacks network san (bridge br1)"
    assert assign(state, "v", "c").code == "conflict"
    assert assign(state, "v", "b").ok
    assert state.vms["v"].nics == nics  # placing it changed nothing
    r = state.apply(c.DeleteNetwork(id=cid(), name="lan"))
    assert r.code == "conflict" and "used by 1 VMs (v)" in r.message
    observe(state, "b", {}, networks=["san"])  # b lost its lan bridge
    assert state.networks["lan"].hosts == ["c"]


def test_macs_never_repeat(state: ClusterState) -> None:
    state.apply(c.CreateNetwork(id=cid(), name="lan", bridge="br0"))
    # the first choice of every VM is taken already: the counter moves on
    taken = {networks.mac_for(f"u{i}", 0, lambda m: False) for i in range(50)}
    state.macs = ShardedDict(dict.fromkeys(taken, "someone"))
    for i in range(50):
        assert create(state, f"v{i}", uuid=f"u{i}", networks=["lan"]).ok
    macs = [state.vms[f"v{i}"].nics[0]["mac"] for i in range(50)]
    assert len(set(macs)) == 50 and not set(macs) & taken
