"""The ports the loops take their I/O through (DESIGN rule 11): clock, consensus, hypervisor,
host metrics, heartbeat link, fence runner. The watchdog's port is watchdog.Watchdog.

Production wires the real adapters (RaftNode, Hypervisor, MetricsProbe, heartbeat.GrpcLink,
threads, fence agents' commands); the deterministic simulator (tests/sim) wires fakes on a virtual
clock, so the agent loop, the leader loop, the heartbeat logic, the live state and the fence
runner it drives are the ones that run in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from .core import commands as c
from .core.host_plan import Domain
from .core.model import Network, Pool, Vm
from .core.placement import HostMetrics
from .core.state import ClusterState, Result


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on this host's monotonic clock (leases, timeouts)."""

    def time(self) -> float:
        """Wall-clock seconds (command timestamps, shown to people)."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


SYSTEM_CLOCK = SystemClock()


class Consensus(Protocol):
    """What the loops need of the Raft member (raft.RaftNode)."""

    @property
    def state(self) -> ClusterState:
        """The replica as of its last applied entry: immutable, consistent."""

    @property
    def halted(self) -> str | None:
        """Why this member stopped applying (None while it applies)."""

    def is_ready(self) -> bool: ...
    def is_leader(self) -> bool: ...
    def term(self) -> int: ...
    def leader_addr(self) -> str | None: ...
    def majority_confirmed_at(self) -> float | None: ...
    def propose(self, cmd: c.Command, timeout: float = 5.0) -> Result: ...


class HypervisorPort(Protocol):
    """What the agent does to its own hypervisor (hypervisor.Hypervisor: libvirt)."""

    @property
    def kind(self) -> str: ...
    def node_info(self) -> tuple[int, int]: ...
    def domains(self) -> list[Domain]: ...
    def define_start(self, vm: Vm, pools: Mapping[str, Pool] | None = None,
                     networks: Mapping[str, Network] | None = None,
                     host_cpus: Sequence[str] = ()) -> None: ...
    def start(self, vm: Vm, pools: Mapping[str, Pool] | None = None,
              networks: Mapping[str, Network] | None = None,
              host_cpus: Sequence[str] = ()) -> None: ...
    def adopt(self, uuid: str, name: str) -> None: ...
    def shutdown(self, uuid: str) -> None: ...
    def destroy(self, uuid: str) -> None: ...
    def undefine(self, uuid: str) -> None: ...
    def migrate(self, uuid: str, target_uri: str) -> str: ...
    def sync_pools(self, pools: Mapping[str, Pool]
                   ) -> tuple[dict[str, list[float]], dict[str, str]]: ...
    def bridges(self, names: Iterable[str]) -> set[str]: ...
    def host_cpu(self) -> str: ...
    def delete_volume(self, pool: str, volume: str) -> None: ...


class Probe(Protocol):
    """This host's live figures (metrics.MetricsProbe: psutil)."""

    def sample(self, memory_available_mib: float | None = None) -> HostMetrics: ...


# ---- fence runner ----------------------------------------------------------------------------

Spawn = Callable[[str, Callable[[], None]], None]
"""Run a job (named) apart from the caller; production: a daemon thread."""

FenceCall = Callable[[str, Sequence[str]], bool]
"""Run a host's fence agent; True when it says the host is off now."""


def spawn_thread(name: str, job: Callable[[], None]) -> None:
    threading.Thread(target=job, name=name, daemon=True).start()
