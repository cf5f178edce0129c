"""Placement: filters with reasons, weighers, and properties over random clusters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core import commands as c
from hacluster.core.model import Host, HostStatus, Policy, Pool, PoolType, Vm, VmState
from hacluster.core.placement import Decision, HostMetrics, HostTable, Placer
from hacluster.core.state import ClusterState

from .factories import assign, cid, create, register


def host(name: str, cpus: int = 8, memory_mib: int = 4096, disk_gib: int = 100,
         status: HostStatus = HostStatus.UP) -> Host:
    return Host(name, f"{name}:1", f"{name}:2", cpus, memory_mib, disk_gib, status)


def vm(name: str, vcpus: int = 1, memory_mib: int = 512, disk_gib: int = 0,
       host_name: str | None = None, priority: int = 0, last_host: str | None = None) -> Vm:
    return Vm(name=name, uuid=name, vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib,
              host=host_name, priority=priority, last_host=last_host)


def decide(hosts: list[Host], vms: list[Vm], new: Vm, policy: Policy | None = None,
           metrics: dict[str, HostMetrics] | None = None) -> Decision:
    table = HostTable.build(hosts, vms, metrics)
    return Placer(policy or Policy()).decide(new, table, explain=True)


def test_prefers_the_host_with_most_free_memory() -> None:
    d = decide([host("a"), host("b")], [vm("x", memory_mib=2048, host_name="a")], vm("new"))
    assert d.host == "b" and set(d.scores) == {"a", "b"}


def test_every_removed_host_has_a_reason() -> None:
    hosts = [host("a", status=HostStatus.DOWN), host("b", memory_mib=256), host("c", cpus=1),
             host("d", disk_gib=5)]
    d = decide(hosts, [], vm("new", vcpus=8, memory_mib=512, disk_gib=10),
               Policy(cpu_ratio=4.0))
    assert d.host is None
    assert d.rejected["a"] == "status: host is down"
    assert d.rejected["b"].startswith("memory: needs 512 MiB memory, 256 MiB free")
    assert d.rejected["c"].startswith("vcpus: needs 8 vCPUs, 4 free")
    assert d.rejected["d"].startswith("disk: needs 10 GiB disk, 5 GiB free")
    assert len(d.reasons) == 4


def test_reasons_without_explain_cover_every_host() -> None:
    hosts = [host("a", status=HostStatus.DOWN), host("b", memory_mib=256)]
    d = Placer(Policy()).decide(vm("new"), HostTable.build(hosts, []))
    assert d.host is None and set(d.rejected) == {"a", "b"}


def test_memory_reserve_and_overcommit_ratio() -> None:
    hosts = [host("a", memory_mib=1024)]
    assert decide(hosts, [], vm("n", memory_mib=1024), Policy(memory_reserve_mib=1)).host is None
    assert decide(hosts, [], vm("n", memory_mib=1500), Policy(memory_ratio=1.5)).host == "a"


def test_stopped_vms_hold_no_capacity() -> None:
    stopped = vm("s", memory_mib=4096, host_name="a")
    stopped.state = stopped.state.STOPPED
    assert decide([host("a")], [stopped], vm("n", memory_mib=4096)).host == "a"


def test_live_cpu_load_and_last_host_break_ties() -> None:
    hosts = [host("a"), host("b")]
    busy = {"a": HostMetrics(cpu_load=0.9), "b": HostMetrics(cpu_load=0.1)}
    assert decide(hosts, [], vm("n"), metrics=busy).host == "b"
    assert decide(hosts, [], vm("n", last_host="b")).host == "b"
    assert decide(hosts, [], vm("n")).host == "a"  # equal: lowest name


def test_place_all_goes_by_priority_and_never_overfills() -> None:
    hosts = [host("a", memory_mib=1024)]
    vms = [vm("low", memory_mib=1024), vm("high", memory_mib=1024, priority=10)]
    decisions = Placer(Policy()).place_all(vms, HostTable.build(hosts, []))
    assert [(d.vm, d.host) for d in decisions] == [("high", "a"), ("low", None)]


hosts_st = st.lists(st.builds(host, name=st.sampled_from("abcdefgh"),
                              cpus=st.integers(1, 16), memory_mib=st.integers(256, 8192),
                              disk_gib=st.integers(0, 200),
                              status=st.sampled_from(list(HostStatus))),
                    min_size=0, max_size=8, unique_by=lambda h: h.name)
vms_st = st.lists(st.builds(vm, name=st.uuids().map(str), vcpus=st.integers(1, 8),
                            memory_mib=st.integers(1, 4096), disk_gib=st.integers(0, 50),
                            priority=st.integers(0, 5)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(hosts=hosts_st, vms=vms_st, ratio=st.sampled_from([1.0, 2.0, 4.0]))
def test_no_host_is_ever_overcommitted(hosts: list[Host], vms: list[Vm], ratio: float) -> None:
    policy = Policy(cpu_ratio=ratio)
    table = HostTable.build(hosts, [])
    decisions = Placer(policy).place_all(vms, table)
    by_name = {v.name: v for v in vms}
    for h in hosts:
        placed = [by_name[d.vm] for d in decisions if d.host == h.name]
        assert h.status is HostStatus.UP or not placed
        assert sum(v.memory_mib for v in placed) <= h.memory_mib
        assert sum(v.vcpus for v in placed) <= h.cpus * ratio
        assert sum(v.disk_gib for v in placed) <= h.disk_gib
    assert len(decisions) == len(vms)  # every VM decided exactly once: placed or pending
    for d in decisions:
        if d.host is None:  # pending: every host has its reason, or there are none
            assert set(d.rejected) == {h.name for h in hosts} and d.reasons


def test_cpu_load_noise_does_not_outweigh_free_memory() -> None:
    hosts = [host("a"), host("b")]
    used = [vm("x", memory_mib=1024, host_name="a")]
    noise = {"a": HostMetrics(cpu_load=0.01), "b": HostMetrics(cpu_load=0.04)}
    assert decide(hosts, used, vm("n"), metrics=noise).host == "b"


def test_a_table_of_the_occupying_vms_is_the_table_of_them_all() -> None:
    """Admission control and the failure tolerance build a table per failure scenario: they
    pass only HostTable.occupying(vms), which must leave every figure as it was."""
    hosts = [host("h1"), host("h2"), host("h3")]
    pools = {"local": Pool("local", PoolType.DIR, False, "/srv/local")}
    vms = [vm("running", host_name="h1"), vm("stopped-placed", host_name="h2"),
           vm("unplaced"), vm("stopped"), vm("moving", host_name="h1"),
           vm("local-disk"), vm("many", memory_mib=2048, host_name="h3")]
    vms[1].state = vms[3].state = vms[5].state = VmState.STOPPED
    vms[4].migrating_to = "h2"
    vms[5].last_host = "h3"
    vms[5].disks = [{"pool": "local", "volume": "v", "size_gib": 30, "image": ""}]
    whole = HostTable.build(hosts, vms, pools=pools)
    part = HostTable.build(hosts, HostTable.occupying(vms), pools=pools)
    assert {v.name for v in HostTable.occupying(vms)} == {"running", "moving", "local-disk",
                                                           "many"}
    for a, b in ((whole.used_vcpus, part.used_vcpus), (whole.used_memory_mib,
                 part.used_memory_mib), (whole.used_disk_gib, part.used_disk_gib),
                 (whole.pool_used["local"], part.pool_used["local"])):
        assert list(a) == list(b)
    assert whole.where == part.where and whole.pool_used["local"][2] == 30


def test_a_state_s_table_from_its_index_is_the_table_of_every_vm() -> None:
    """HostTable.of takes only the indexed VMs placed on or moving to a host (a leader's
    placement pass among 10,000 mostly stopped VMs): every figure must be what all give."""
    state = ClusterState()
    for h in ("h1", "h2", "h3"):
        register(state, h)
    for name, where in (("a", "h1"), ("b", "h2"), ("c", "h2"), ("moving", "h1"),
                        ("halted", "h3"), ("waiting", None), ("off", None)):
        create(state, name, state="stopped" if name == "off" else "started")
        if where:
            assign(state, name, where)
    assert state.apply(c.SetVmState(id=cid(), name="halted", state="stopped")).ok
    assert state.apply(c.SetMigration(id=cid(), name="moving", to="h3")).ok
    fast = HostTable.of(state)
    whole = HostTable.build(state.hosts.values(), state.vms.values())
    assert list(fast.used_memory_mib) == list(whole.used_memory_mib) == [1024, 1024, 512]
    assert list(fast.used_vcpus) == list(whole.used_vcpus)
    assert fast.where == whole.where and fast.where["moving"] == {0, 2}
