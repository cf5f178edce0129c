"""The cluster's records: hosts, VMs and policy, as plain data.

Everything here is replicated through the Raft log and must stay deterministic and
JSON-able: `to_dict`/`from_dict` are the snapshot format (pickle only ever sees the dict).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, Self

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
"""VM and host names: what libvirt, DNS and shells all accept without quoting."""


class VmState(StrEnum):
    """What the operator asked for (the desired state)."""

    STARTED = "started"
    STOPPED = "stopped"


class Observed(StrEnum):
    """What the assigned host's libvirt last reported for the VM."""

    NONE = "none"  # not defined on its host (yet)
    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    CRASHED = "crashed"


class HostStatus(StrEnum):
    UP = "up"
    DOWN = "down"


def _plain(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """asdict's factory: enums become their values, so snapshots hold only plain data."""
    return {k: v.value if isinstance(v, Enum) else v for k, v in items}


@dataclass
class Record:
    """Shared (de)serialisation for the replicated records."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self, dict_factory=_plain)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Host(Record):
    name: str
    raft_addr: str
    api_addr: str
    cpus: int
    memory_mib: int
    disk_gib: int
    status: HostStatus = HostStatus.UP
    version: int = 0

    def __post_init__(self) -> None:
        self.status = HostStatus(self.status)


@dataclass
class Vm(Record):
    name: str
    uuid: str
    vcpus: int
    memory_mib: int
    disk_gib: int = 0
    state: VmState = VmState.STARTED
    ha: bool = True
    priority: int = 0
    host: str | None = None
    last_host: str | None = None
    observed: Observed = Observed.NONE
    pending_reasons: list[str] = field(default_factory=list)
    created_at: float = 0.0
    version: int = 0

    def __post_init__(self) -> None:
        self.state = VmState(self.state)
        self.observed = Observed(self.observed)

    @property
    def wants_to_run(self) -> bool:
        return self.state is VmState.STARTED


@dataclass
class Policy(Record):
    """Cluster-wide placement policy (replicated; defaults are conservative)."""

    cpu_ratio: float = 4.0  # vCPUs allowed per physical CPU
    memory_ratio: float = 1.0  # memory overcommit; 1.0 = none
    disk_ratio: float = 1.0
    memory_reserve_mib: int = 0  # kept free on every host for the host itself
    host_down_after: float = 5.0  # seconds without heartbeat before a host is marked down
    version: int = 0


def vm_status(vm: Vm, host: Host | None) -> str:
    """The one-word observed status operators see, derived from desired and observed state."""
    if vm.state is VmState.STOPPED:
        return "stopping" if vm.host and vm.observed is Observed.RUNNING else "stopped"
    if vm.host is None:
        return "pending"
    if host is None or host.status is HostStatus.DOWN:
        return "unknown"
    if vm.observed is Observed.RUNNING:
        return "running"
    if vm.observed in (Observed.PAUSED, Observed.CRASHED):
        return vm.observed.value
    return "starting"
