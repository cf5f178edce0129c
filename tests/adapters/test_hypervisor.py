"""The libvirt adapter against libvirt's own test driver (real libvirt code paths)."""

from __future__ import annotations

import threading
import uuid

import pytest

from hacluster.core.model import Observed, Vm
from hacluster.hypervisor import Hypervisor, HypervisorError


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
    hv.start(vm.uuid)
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
    with pytest.raises(HypervisorError, match=r"start .* on test://"):
        hv.start(str(uuid.uuid4()))
    with pytest.raises(HypervisorError, match="cannot connect"):
        Hypervisor("test+unix:///default?socket=/nonexistent/sock")
