"""What an agent does to its own hypervisor: adopt, start, stop, clean up; never foreign VMs."""

from __future__ import annotations

from hacluster.core.host_plan import Act, Domain, plan_host
from hacluster.core.model import Observed, Vm, VmState


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
