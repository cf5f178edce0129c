"""A member that halts (a command it cannot apply, data it cannot trust) leaves in order: its
HA VMs stopped in its own libvirt (the test driver here), its non-HA VMs left running, the
watchdog stood down and never re-armed, so the host is not powered off under them."""

from __future__ import annotations

import threading
import uuid

from hacluster.agent import Agent
from hacluster.config import Config, Member
from hacluster.core import commands as c
from hacluster.core.model import Observed
from hacluster.core.state import ClusterState, Result
from hacluster.hypervisor import Hypervisor
from hacluster.watchdog import Watchdog


class Replica:
    """A halted member's replica: what it applied before the command it could not."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.halted: str | None = "halted: cannot apply a committed command: format v9"

    def is_ready(self) -> bool:
        return False

    def is_leader(self) -> bool:
        return False

    def term(self) -> int:
        return 1

    def leader_addr(self) -> str | None:
        return None

    def majority_confirmed_at(self) -> float | None:
        return None

    def propose(self, cmd: c.Command, timeout: float = 5.0) -> Result:
        raise AssertionError("a halted member proposes nothing")


class Recorder(Watchdog):
    """What the agent asked of the watchdog device (the device itself: /dev/watchdog)."""

    kind = "recorder"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def arm(self, deadline: float) -> None:
        self.calls.append("arm")

    def disarm(self) -> None:
        self.calls.append("disarm")


def test_a_halted_member_stops_its_ha_vms_and_stands_its_watchdog_down(host_uri: str) -> None:
    state = ClusterState()
    for name, ha in (("guarded", True), ("plain", False)):
        state.apply(c.CreateVm(id=uuid.uuid4().hex, name=name, uuid=str(uuid.uuid4()),
                               vcpus=1, memory_mib=128, ha=ha))
    hv = Hypervisor(host_uri)
    for vm in state.vms.values():
        hv.define_start(vm)
    watchdog = Recorder()
    config = Config(name="h1", members=(Member("h1", "127.0.0.1:1", "127.0.0.1:2"),),
                    secret="s", data_dir="/nonexistent")
    agent = Agent(config, Replica(state), hv, threading.Event(), watchdog)
    watchdog.arm(1e9)  # as it was while the guarded VM ran under a lease
    assert agent.stand_down("halted") == ["guarded"]
    running = {d.name: d.state for d in hv.domains()}  # libvirt's word
    assert running == {"guarded": Observed.STOPPED, "plain": Observed.RUNNING}
    assert watchdog.calls[-1] == "disarm"
    agent._guard(hv.domains())  # the heartbeat thread's next turn re-arms nothing
    assert watchdog.calls[-1] == "disarm"
