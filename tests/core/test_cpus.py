"""Guest CPUs in the state machine and placement: hosts report the CPU their hypervisor
offers, a host-passthrough VM stays on hosts with an identical one, bad input is refused."""

from __future__ import annotations

import dataclasses

import pytest

from hacluster.core import commands as c
from hacluster.core import cpus
from hacluster.core.model import Policy
from hacluster.core.placement import HostTable, Placer
from hacluster.core.state import ClusterState, Result

from .factories import assign, cid, create, register

SKYLAKE = ("<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Client</model>"
           "<vendor>Intel</vendor><feature policy='require' name='ss'/></cpu>")
EPYC = ("<cpu mode='custom' match='exact'><model fallback='forbid'>EPYC</model>"
        "<vendor>AMD</vendor></cpu>")


def report(s: ClusterState, host: str, cpu: str | None) -> Result:
    return s.apply(c.ObserveHostFacts(id=cid(), host=host, cpu=cpu))


@pytest.fixture
def state() -> ClusterState:
    s = ClusterState()
    for h, cpu in (("a", SKYLAKE), ("b", SKYLAKE), ("c", EPYC)):
        register(s, h)
        assert report(s, h, cpu).ok
    return s


def test_hosts_report_their_cpu_once_and_it_is_named_and_fingerprinted(
        state: ClusterState) -> None:
    a, c_ = state.hosts["a"], state.hosts["c"]
    assert cpus.model_of(a.cpu) == "Skylake-Client" and cpus.model_of(c_.cpu) == "EPYC"
    assert a.cpu_id == state.hosts["b"].cpu_id != c_.cpu_id
    version = a.version
    assert report(state, "a", SKYLAKE).message == "unchanged"
    assert report(state, "a", None).message == "unchanged"  # not reported: kept
    assert state.hosts["a"].version == version


@pytest.mark.parametrize(("cpu", "message"), [
    ("<cpu><model>x", "must be XML"),
    ("<domain/>", "is a <cpu> element"),
    ("<cpu>" + "x" * cpus.MAX_CPU_XML + "</cpu>", "at most"),
])
def test_bad_cpu_reports_are_refused_and_change_nothing(state: ClusterState, cpu: str,
                                                        message: str) -> None:
    before = state.hosts["a"]
    r = report(state, "a", cpu)
    assert not r.ok and r.code == "invalid" and message in r.message
    assert state.hosts["a"] is before


def test_a_cpu_mode_other_than_the_two_is_refused() -> None:
    s = ClusterState()
    register(s, "a")
    r = create(s, "v", cpu="host-model")
    assert not r.ok and "cpu must be baseline or host-passthrough" in r.message
    assert "v" not in s.vms
    assert create(s, "w").ok and s.vms["w"].cpu == "baseline"


def test_a_host_passthrough_vm_keeps_to_hosts_with_the_cpu_it_started_on(
        state: ClusterState) -> None:
    assert create(state, "p", cpu="host-passthrough").ok
    assert assign(state, "p", "a").ok
    vm = state.vms["p"]
    assert vm.cpu_pin == state.hosts["a"].cpu_id
    # placed again (say a failed): b has the same CPU, c another
    again = dataclasses.replace(vm, host=None)
    d = Placer(Policy()).decide(again, HostTable.of(state), explain=True)
    assert d.host in ("a", "b") and set(d.rejected) == {"c"}
    assert d.rejected["c"].startswith("cpu: its CPU differs")
    # a baseline VM goes anywhere
    assert create(state, "anywhere").ok and assign(state, "anywhere", "c").ok
    assert state.vms["anywhere"].cpu_pin == ""


def test_a_host_passthrough_vm_is_not_moved_to_another_cpu(state: ClusterState) -> None:
    assert create(state, "p", cpu="host-passthrough").ok
    assert assign(state, "p", "a").ok
    r = state.apply(c.SetMigration(id=cid(), name="p", to="c"))
    assert r.code == "conflict" and "its CPU differs" in r.message
    assert state.apply(c.SetMigration(id=cid(), name="p", to="b")).ok
