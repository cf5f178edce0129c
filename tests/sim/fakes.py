"""The simulator's side of the ports (hacluster/ports.py): a virtual clock, one host's view of
a modelled Raft, an in-memory hypervisor, a watchdog that only remembers its deadline, a
heartbeat link that delivers within the simulated network, fixed metrics. Each is a thin
window onto the `World` (simulator.Sim), which owns time, the network and the hosts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from hacluster.core import commands as c
from hacluster.core.host_plan import Domain
from hacluster.core.model import Network, Observed, Pool, Vm
from hacluster.core.placement import HostMetrics
from hacluster.core.state import ClusterState, Result
from hacluster.heartbeat import Answer, Beat
from hacluster.hypervisor import HypervisorError
from hacluster.watchdog import Watchdog

if TYPE_CHECKING:
    from .simulator import Host, Sim

EPOCH = 1_700_000_000.0  # wall clock at virtual time 0


class SimClock:
    """Every host's monotonic clock reads the same virtual time (clock-rate drift is what
    the lease margin is for; the simulator does not model it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return EPOCH + self.now


class SimRaft:
    """One member's view of the modelled Raft (Consensus port)."""

    def __init__(self, sim: Sim, host: Host) -> None:
        self.sim, self.host = sim, host

    @property
    def state(self) -> ClusterState:
        return self.host.replica

    @property
    def halted(self) -> str | None:
        return None

    def is_ready(self) -> bool:
        return self.host.ready

    def is_leader(self) -> bool:
        return self.sim.leadership_of(self.host.name) is not None

    def term(self) -> int:
        claim = self.sim.leadership_of(self.host.name)
        return claim.term if claim is not None else self.host.known_term

    def leader_addr(self) -> str | None:
        return self.sim.leader_seen_by(self.host.name)

    def majority_confirmed_at(self) -> float | None:
        claim = self.sim.leadership_of(self.host.name)
        return claim.confirmed_at if claim is not None else None

    def propose(self, cmd: c.Command, timeout: float = 5.0) -> Result:
        return self.sim.propose(self.host.name, cmd)


class SimHypervisor:
    """The host's hypervisor: its domains live in the Host record, so they outlive a daemon
    crash and end with a power loss, as on a real host."""

    kind = "test"  # free memory comes from the domains, not from psutil

    def __init__(self, sim: Sim, host: Host) -> None:
        self.sim, self.host = sim, host

    def node_info(self) -> tuple[int, int]:
        return 8, 4096

    def domains(self) -> list[Domain]:
        return list(self.host.domains.values())

    def define_start(self, vm: Vm, pools: Mapping[str, Pool] | None = None,
                     networks: Mapping[str, Network] | None = None,
                     host_cpus: Sequence[str] = ()) -> None:
        self.host.domains[vm.uuid] = Domain(vm.uuid, vm.name, Observed.RUNNING, True,
                                            vm.memory_mib)
        self.sim.started(self.host, vm)

    start = define_start

    def adopt(self, uuid: str, name: str) -> None:
        pass

    def _set(self, uuid: str, state: Observed) -> None:
        d = self.host.domains.get(uuid)
        if d is not None:
            self.host.domains[uuid] = Domain(d.uuid, d.name, state, d.managed, d.memory_mib)

    def shutdown(self, uuid: str) -> None:
        self._set(uuid, Observed.STOPPED)  # guests here obey at once

    def destroy(self, uuid: str) -> None:
        self._set(uuid, Observed.STOPPED)

    def undefine(self, uuid: str) -> None:
        self.host.domains.pop(uuid, None)

    def migrate(self, uuid: str, target_uri: str) -> str:
        target = self.sim.hosts.get(target_uri.removeprefix("sim://"))
        d = self.host.domains.get(uuid)
        if target is None or d is None or not self.sim.reachable(self.host.name, target.name) \
                or not target.powered:
            raise HypervisorError(f"cannot migrate {uuid} to {target_uri}: unreachable")
        target.domains[uuid] = d
        del self.host.domains[uuid]
        self.sim.say(f"{self.host.name}: migrated {d.name} to {target.name}")
        return "live"

    def sync_pools(self, pools: Mapping[str, Pool]
                   ) -> tuple[dict[str, list[float]], dict[str, str]]:
        return {}, {}

    def bridges(self, names: Iterable[str]) -> set[str]:
        return set()

    def host_cpu(self) -> str:
        return ""

    def delete_volume(self, pool: str, volume: str) -> None:
        pass


class SimWatchdog(Watchdog):
    """The host's watchdog device: survives daemon restarts, reset by a power cycle. The
    simulator powers the host off once the deadline passes."""

    kind = "sim"

    def __init__(self) -> None:
        self.deadline: float | None = None

    def arm(self, deadline: float) -> None:
        self.deadline = deadline

    def disarm(self) -> None:
        self.deadline = None


class SimLink:
    def __init__(self, sim: Sim, host: Host) -> None:
        self.sim, self.host = sim, host

    def send(self, beat: Beat) -> Answer | None:
        return self.sim.deliver(self.host.name, beat)


class FixedProbe:
    """A host whose CPU load stays what the schedule chose (deterministic)."""

    def __init__(self, cpu_load: float = 0.1) -> None:
        self.cpu_load = cpu_load

    def sample(self, memory_available_mib: float | None = None) -> HostMetrics:
        return HostMetrics(cpu_load=self.cpu_load,
                           memory_available_mib=memory_available_mib or 0.0,
                           disk_free_gib=100.0)
