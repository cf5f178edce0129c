"""The cluster's records: hosts, VMs and policy, as plain data.

Everything here is replicated through the Raft log and must stay deterministic and
JSON-able: `to_dict`/`from_dict` are the snapshot format (pickle only ever sees the dict).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, Self

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
"""VM and host names: what libvirt, DNS and shells all accept without quoting."""


class VmState(StrEnum):
    """What the operator asked for (the desired state), as Proxmox's ha-manager names them."""

    STARTED = "started"  # run it; if its host is lost and it is HA, run it elsewhere
    STOPPED = "stopped"  # keep it stopped (its definition still follows failover)
    DISABLED = "disabled"  # stopped, and HA leaves it where it is
    IGNORED = "ignored"  # hands off: the cluster neither starts, stops nor moves it


class Observed(StrEnum):
    """What the assigned host's libvirt last reported for the VM."""

    NONE = "none"  # not defined on its host (yet)
    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    CRASHED = "crashed"


OBSERVED_VALUES = frozenset(o.value for o in Observed)


class HostStatus(StrEnum):
    UP = "up"
    DOWN = "down"  # unreachable: maybe dead, maybe cut off; its VMs may still run
    FENCED = "fenced"  # known not to run its HA VMs any more: they were recovered elsewhere


_SCALARS = frozenset({str, int, float, bool, type(None)})  # exactly these: not enums
_NAMES: dict[type, tuple[str, ...]] = {}  # a record class -> its field names


def _plain(value: Any) -> Any:
    """A record's field as plain data: enums as their values, containers copied."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value  # str, int, float, bool, None: immutable


@dataclass
class Record:
    """Shared (de)serialisation for the replicated records."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for snapshots and the API: dataclasses.asdict's result, without its
        deep copy of every value (a 10,000-VM snapshot took 1.2 s of CPU with it, on every
        member at the same log index)."""
        names = _NAMES.get(type(self))
        if names is None:
            names = _NAMES[type(self)] = tuple(f.name for f in fields(self))
        plain = {}
        for name in names:
            value = getattr(self, name)
            plain[name] = value if type(value) in _SCALARS else _plain(value)
        return plain

    def clone(self) -> Self:
        """A copy to change (copy-on-write): its lists and dicts, and dicts inside those,
        are its own."""
        twin = copy.copy(self)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                setattr(twin, f.name, list(value))
            elif isinstance(value, dict):
                setattr(twin, f.name, {k: dict(v) if isinstance(v, dict) else v
                                       for k, v in value.items()})
        return twin

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
    lease: float = 0.0  # seconds a lease granted to this host lasts (its config)
    watchdog: float = 0.0  # seconds past lease expiry its watchdog fires; 0 = no watchdog
    libvirt_uri: str = ""  # how other hosts' libvirtd reach this one (live migration)
    maintenance: bool = False  # no new placements; its VMs are moved away
    fenced_by: str = ""  # while fenced: lease+watchdog | fence agent | operator
    watchdog_error: str = ""  # why its configured watchdog is not counted (then watchdog = 0)
    cpu: str = ""  # the CPU its hypervisor offers guests, a <cpu> definition (core/cpus.py)
    cpu_id: str = ""  # its fingerprint: equal on hosts with identical CPUs
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
    restarts: int = 0  # restarts in place since the last operator action or relocation
    relocations: int = 0
    avoid_hosts: list[str] = field(default_factory=list)  # hosts it failed on (relocation)
    error: str = ""  # non-empty: HA gave up; only an operator's start/stop clears it
    running_since: float = 0.0  # ts of the command that saw it running
    migrating_to: str | None = None  # the leader decided to move it there; the source acts
    migration_requested: str | None = None  # an operator asked ("" = anywhere)
    migration_error: str = ""  # why the last migration failed (it kept running)
    # Arrived by live migration, and its new host has not reported it yet: that host's
    # watchdog may not cover it, so its lease running out does not prove it stopped.
    unreported: bool = False
    left: dict[str, float] = field(default_factory=dict)  # host -> ts it was moved off it
    failures: list[str] = field(default_factory=list)  # the last few: "host: why"
    # volumes in the cluster's storage pools, in device order (vda, vdb, ...): each
    # {"pool", "volume", "size_gib", "image"}; never changed in place (core/storage.py)
    disks: list[dict[str, Any]] = field(default_factory=list)
    # network interfaces, in order: each {"network", "mac"}; the MAC is chosen once, at
    # creation, and kept across restarts, failovers and migrations (core/networks.py)
    nics: list[dict[str, str]] = field(default_factory=list)
    xml: str = ""  # an imported VM's own definition (sanitised); "" = the cluster writes it
    pinned: str = ""  # the host it must stay on (imported with what only that host has)
    restart_needed: bool = False  # resized while it ran: the new size comes with a restart
    cpu: str = "baseline"  # baseline (the cluster's: migrates anywhere) | host-passthrough
    cpu_pin: str = ""  # host-passthrough: the CPU fingerprint of the host it first ran on
    version: int = 0

    def __post_init__(self) -> None:
        self.state = VmState(self.state)
        self.observed = Observed(self.observed)

    @property
    def wants_to_run(self) -> bool:
        return self.state is VmState.STARTED and not self.error

    @property
    def recoverable(self) -> bool:
        """HA follows it to another host if its host is lost."""
        return self.ha and self.state in (VmState.STARTED, VmState.STOPPED)


@dataclass
class Policy(Record):
    """Cluster-wide placement policy (replicated; defaults are conservative)."""

    cpu_ratio: float = 4.0  # vCPUs allowed per physical CPU
    memory_ratio: float = 1.0  # memory overcommit; 1.0 = none
    disk_ratio: float = 1.0
    memory_reserve_mib: int = 0  # kept free on every host for the host itself
    max_restart: int = 1  # restarts in place of a VM that failed on a healthy host...
    max_relocate: int = 1  # ...then moves to another host, then the error state
    failure_reset_after: float = 600.0  # seconds of running that forgive earlier failures
    admission_control: bool = False  # refuse HA VMs that could not all survive a failure of
    admission_failures: int = 1  # ...this many hosts
    max_migrations_per_host: int = 2  # concurrent migrations a host takes part in
    weight_memory: float = 1.0  # placement weighers' multipliers
    weight_cpu: float = 0.5
    weight_disk: float = 0.5
    weight_last_host: float = 0.2
    weight_rules: float = 1.0  # "should" rules
    pack: bool = False  # fill hosts up (power saving) instead of spreading
    balance_mode: int = 1  # 0 off, 1 manual (`hactl balance plan/run`), 2 automatic
    balance_interval: float = 60.0  # seconds between automatic passes
    balance_threshold: float = 0.05  # load std deviation that starts a pass (stops at half)
    migration_cooldown: float = 600.0  # a VM moves at most this often, never straight back
    alarm_cpu: float = 0.9  # a host's CPU load above this...
    alarm_memory: float = 0.9  # ...or its memory in use above this share of it...
    alarm_for: float = 60.0  # ...for this many seconds raises an alarm
    alarm_disk_free_gib: float = 1.0  # a host's VM storage with less free raises one
    voters: int = 5  # Raft voters at most: members added beyond are learners (version 2)
    voter_replace_after: float = 120.0  # a voter down this long is replaced by a learner
    version: int = 0


POLICY_LIMITS: dict[str, tuple[float, float]] = {
    "cpu_ratio": (0.1, 64.0), "memory_ratio": (0.1, 4.0), "disk_ratio": (0.1, 16.0),
    "memory_reserve_mib": (0, 1 << 24), "max_restart": (0, 100), "max_relocate": (0, 100),
    "failure_reset_after": (0, 86400 * 30), "admission_control": (0, 1),
    "admission_failures": (1, 10), "max_migrations_per_host": (1, 64),
    "weight_memory": (0, 100), "weight_cpu": (0, 100), "weight_disk": (0, 100),
    "weight_last_host": (0, 100), "weight_rules": (0, 100), "pack": (0, 1),
    "balance_mode": (0, 2), "balance_interval": (5, 86400), "balance_threshold": (0.001, 1),
    "migration_cooldown": (0, 86400),
    "alarm_cpu": (0.01, 1), "alarm_memory": (0.01, 1), "alarm_for": (0, 86400),
    "alarm_disk_free_gib": (0, 1 << 20), "voters": (3, 7), "voter_replace_after": (10, 86400),
}
"""Every operator-settable policy field and its allowed range."""


class PoolType(StrEnum):
    """The libvirt storage pool types the cluster defines on its hosts."""

    DIR = "dir"  # a directory (shared when it is a mount every host has, e.g. NFS by fstab)
    NETFS = "netfs"  # an NFS export libvirt mounts itself
    LOGICAL = "logical"  # an LVM volume group (shared only on a cluster-wide SAN LUN)
    RBD = "rbd"  # a Ceph pool


@dataclass
class Pool(Record):
    """A storage pool every host defines in its own libvirt: `shared` says the hosts see
    the same volumes (what failover and live migration need). `seen` is what each host's
    agent last reported: host -> [capacity GiB, free GiB]; a host absent from it does not
    see the pool, and `errors` says why where its libvirt said so."""

    name: str
    type: PoolType
    shared: bool
    path: str = ""  # where the volumes appear on each host (dir, netfs; logical: /dev/VG)
    source_host: str = ""  # the NFS server, or the Ceph monitor
    source_path: str = ""  # the NFS export, the LVM volume group, or the Ceph pool
    seen: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    version: int = 0

    def __post_init__(self) -> None:
        self.type = PoolType(self.type)

    @property
    def capacity_gib(self) -> float:
        """The largest capacity a host reports (one figure for a shared pool)."""
        return max((s[0] for s in self.seen.values()), default=0.0)

    @property
    def free_gib(self) -> float:
        return min((s[1] for s in self.seen.values()), default=0.0)


@dataclass
class MemberRecord(Record):
    """A member of the cluster: a host running haclusterd, and where it listens. The list is
    replicated (hactl host add / remove) once the cluster runs version 2; before that each
    member's configuration lists them."""

    name: str
    raft: str  # host:port of the Raft transport
    api: str  # the gRPC API (people and tools)
    peer: str  # the member port (mutual TLS: heartbeats, live metrics)
    web: str  # the web console
    added_at: float = 0.0
    version: int = 0
    # a Raft voter, or a learner: it replicates the log without voting (pysyncobj's readonly
    # node) and is a full host otherwise; the leader promotes one when a voter is lost
    voter: bool = True


@dataclass
class Network(Record):
    """A network VMs attach to: a Linux bridge of that name on each host (what is under
    the bridge, a VLAN or a bond, is the host's business). `hosts` are those whose agent
    last reported the bridge present."""

    name: str
    bridge: str
    hosts: list[str] = field(default_factory=list)
    created_at: float = 0.0
    version: int = 0


class RuleKind(StrEnum):
    AFFINITY = "affinity"  # these VMs on one host
    ANTI_AFFINITY = "anti-affinity"  # these VMs on different hosts
    HOST = "host"  # these VMs on these hosts


class Strength(StrEnum):
    MUST = "must"  # placement refuses to break it (the VM waits pending instead)
    SHOULD = "should"  # placement prefers to keep it


@dataclass
class Rule(Record):
    name: str
    kind: RuleKind
    strength: Strength
    vms: list[str]
    hosts: list[str] = field(default_factory=list)
    version: int = 0

    def __post_init__(self) -> None:
        self.kind = RuleKind(self.kind)
        self.strength = Strength(self.strength)


class Role(StrEnum):
    """What a token may do (vCenter's and Proxmox's roles): each includes the ones below."""

    VIEWER = "viewer"  # read and watch
    OPERATOR = "operator"  # VM lifecycle, migration, maintenance, balancing
    ADMIN = "admin"  # policy, rules, fencing, tokens, the directory

    @property
    def rank(self) -> int:
        return list(Role).index(self) + 1


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass
class Alarm(Record):
    """A condition an operator should see (core/alarms.py says which), raised and cleared by
    the leader, acknowledged by an operator. Cleared ones are kept a while, for the record."""

    key: str  # kind:subject
    kind: str
    severity: Severity
    subject: str  # the host, the VM, or "cluster"
    message: str
    raised_at: float
    cleared_at: float = 0.0
    acked_by: str = ""
    acked_at: float = 0.0
    version: int = 0

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)

    @property
    def active(self) -> bool:
        return not self.cleared_at


@dataclass
class User(Record):
    """A local account for people (the web console, hactl login): its password kept only as
    an argon2id hash (memory-hard: a copy of the state does not give the passwords away
    cheaply). Directory (LDAP) accounts are not stored here."""

    name: str
    role: Role
    password_hash: str
    created_at: float = 0.0
    version: int = 0

    def __post_init__(self) -> None:
        self.role = Role(self.role)


def user_owner(user: str) -> str:
    """The owner of the tokens a local user's logins get: deleting the user ends them."""
    return f"user:{user}"


def session_owner(token: str) -> str:
    """The owner of a web session opened with token `token`: revoking that token ends it."""
    return f"session-of:{token}"


@dataclass
class Token(Record):
    """An API token: only the sha256 of its secret is kept (a random 256-bit secret needs no
    slow hash), so a copy of the state gives nobody a token."""

    name: str
    role: Role
    sha256: str
    owner: str  # who it is for: a person, a tool, "bootstrap", or "ldap:USER" (a login)
    created_at: float = 0.0
    expires_at: float = 0.0  # wall-clock seconds; 0 = never
    version: int = 0

    def __post_init__(self) -> None:
        self.role = Role(self.role)


@dataclass
class Incident(Record):
    """One lost host, from silence to its HA VMs running elsewhere (wall-clock timestamps,
    taken from the commands' proposers, for people to read; decisions use monotonic time)."""

    id: int
    host: str
    last_heard: float  # when the leader last heard the host
    declared_at: float  # host marked down
    fenced_at: float = 0.0
    fenced_by: str = ""  # lease+watchdog | fence agent | operator
    returned_at: float = 0.0  # the host came back
    # VM name -> {"placed_at", "host", "running_at"} for each HA VM recovered
    vms: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return not self.returned_at and (not self.fenced_at or any(
            not v.get("running_at") for v in self.vms.values()))


def vm_status(vm: Vm, host: Host | None) -> str:
    """The one-word observed status operators see, derived from desired and observed state."""
    if vm.error:
        return "error"
    if vm.state is VmState.IGNORED:
        return "ignored"
    if vm.state is not VmState.STARTED:
        if vm.host and vm.observed is Observed.RUNNING:
            return "stopping"
        return vm.state.value  # stopped | disabled
    if vm.host is None:
        return "pending"
    if host is None or host.status is not HostStatus.UP:
        return "unknown"
    if vm.observed is Observed.RUNNING:
        return "running"
    if vm.observed in (Observed.PAUSED, Observed.CRASHED):
        return vm.observed.value
    return "starting"
