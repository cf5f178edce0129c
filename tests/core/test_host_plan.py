"""What an agent does to its own hypervisor: adopt, start, stop, clean up; never foreign VMs."""

from __future__ import annotations

from collections.abc import Mapping

from hacluster.core import commands as c
from hacluster.core.host_plan import Act, Domain, plan_host, report, self_fence_plan
from hacluster.core.lease import Lease, watchdog_guard
from hacluster.core.model import Observed, Vm, VmState
from hacluster.core.state import ClusterState

from .factories import assign, cid, create, register


def vm(name: str, host: str | None = "me", state: VmState = VmState.STARTED) -> Vm:
    return Vm(name=name, uuid=f"u-{name}", vcpus=1, memory_mib=64, host=host, state=state)


def dom(name: str, state: Observed, managed: bool = True) -> Domain:
    return Domain(uuid=f"u-{name}", name=name, state=state, managed=managed)


def acts(vms: list[Vm], domains: list[Domain]) -> list[tuple[Act, str]]:
    return [(a.act, a.vm) for a in plan_host("me", {v.name: v for v in vms}, domains)]


def test_defines_and_starts_what_is_assigned_and_missing() -> None:
    assert acts([vm("a")], []) == [(Act.DEFINE_START, "a")]


def test_adopts_a_running_vm_without_touching_it() -> None:
    assert acts([vm("a")], [dom("a", Observed.RUNNING)]) == []


def test_starts_a_stopped_or_crashed_vm_that_should_run() -> None:
    assert acts([vm("a"), vm("b")], [dom("a", Observed.STOPPED), dom("b", Observed.CRASHED)]) == [
        (Act.START, "a"), (Act.START, "b")]


def test_stops_a_vm_desired_stopped() -> None:
    assert acts([vm("a", state=VmState.STOPPED)], [dom("a", Observed.RUNNING)]) == [
        (Act.STOP, "a")]
    assert acts([vm("a", state=VmState.STOPPED)], [dom("a", Observed.STOPPED)]) == []


def test_destroys_and_undefines_cluster_vms_not_assigned_here() -> None:
    elsewhere = vm("a", host="other")
    assert acts([elsewhere], [dom("a", Observed.RUNNING)]) == [
        (Act.DESTROY, "a"), (Act.UNDEFINE, "a")]
    assert acts([], [dom("gone", Observed.STOPPED)]) == [(Act.UNDEFINE, "gone")]


def test_never_touches_domains_without_our_metadata() -> None:
    assert acts([], [dom("operators-own", Observed.RUNNING, managed=False)]) == []


def test_ignores_vms_assigned_to_other_hosts() -> None:
    assert acts([vm("a", host="other"), vm("b", host=None)], []) == []


def test_an_agent_decides_the_same_from_its_own_vms_as_from_every_vm() -> None:
    """The agent hands host_plan and the watchdog guard only state.vms_for_host (an index,
    not a scan of the whole cluster per cycle): every decision must come out the same as
    with all the VMs, whatever the VMs' positions, and the index must follow every change."""
    s = ClusterState()
    for h in ("me", "other"):
        register(s, h)
    for name, where in (("mine", "me"), ("mine-down", "me"), ("there", "other"),
                        ("copy-here", "other"), ("moving-in", "other"), ("moving-out", "me"),
                        ("hands-off", "other"), ("unplaced", None)):
        create(s, name, ha=True)
        if where:
            assign(s, name, where)
    assert s.apply(c.SetVmState(id=cid(), name="hands-off", state="ignored")).ok
    for name, to in (("moving-in", "me"), ("moving-out", "other")):
        assert s.apply(c.SetMigration(id=cid(), name=name, to=to,
                                      expect_version=s.vms[name].version)).ok
    for i in range(50):
        create(s, f"far{i}", state="stopped")
    domains = [Domain(s.vms[n].uuid, n, st, True) for n, st in (
        ("mine", Observed.RUNNING), ("mine-down", Observed.CRASHED),
        ("copy-here", Observed.RUNNING), ("moving-in", Observed.PAUSED),
        ("moving-out", Observed.RUNNING), ("hands-off", Observed.RUNNING))]
    domains.append(Domain("u-deleted-long-ago", "gone", Observed.STOPPED, True))
    lease = Lease(until=10.0, started=0.0, length=2.5)

    def decisions(vms: Mapping[str, Vm]) -> tuple[object, ...]:
        return (plan_host("me", vms, domains), plan_host("me", vms, domains, False),
                report("me", vms, domains), self_fence_plan(vms, domains),
                watchdog_guard(vms, domains, lease, 1.0, 5.0))

    mine = s.vms_for_host("me", (d.uuid for d in domains))
    assert sorted(mine) == ["copy-here", "hands-off", "mine", "mine-down", "moving-in",
                            "moving-out"]
    assert decisions(mine) == decisions(s.vms)
    assert plan_host("me", mine, domains)  # the case has work in it: not vacuously equal
    # a fork that places a VM here sees it; the state it was forked from does not
    later = s.fork()
    assign(later, "unplaced", "me")
    assert "unplaced" in later.placed_on("me") and "unplaced" not in s.placed_on("me")
    assert later.vms_for_host("me", []).keys() == {"mine", "mine-down", "moving-in",
                                                   "moving-out", "unplaced"}
