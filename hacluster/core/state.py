"""ClusterState and its deterministic `apply`: the replicated state machine.

Every member applies the same commands in the same order and so holds the same state. `apply`
never raises for a command it understands: it returns a Result, applied or rejected with a
reason, and a rejected command changes nothing. No clock, no randomness, no I/O.

Copy-on-write: `fork()` gives a copy sharing every container and record, in O(1); `apply`
copies a container or a record before its first change in a fork. The Raft adapter applies
each command to a fork and publishes it, so a state object, once handed to a reader (an API
call, an agent or leader cycle, the snapshot writer), never changes under it. `dry_run` is
the same trick for validation: a write is applied to a throwaway fork first, and refused
without ever reaching the log if apply would refuse it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from . import admission, cpus, importing, networks, storage, vm_index
from . import commands as c
from .cow import Generations, ShardedDict
from .model import (
    Alarm,
    Host,
    HostStatus,
    Incident,
    MemberRecord,
    Network,
    Observed,
    Policy,
    Pool,
    PoolType,
    Role,
    Rule,
    RuleKind,
    Severity,
    Strength,
    Token,
    User,
    Vm,
    VmState,
    session_owner,
    user_owner,
    vm_status,
)
from .rules import rule_errors
from .validate import (
    MAX_MEMBERS,
    MAX_RULE_MEMBERS,
    MAX_RULES,
    MAX_TOKENS,
    MAX_VMS,
    address_error,
    host_capacity_errors,
    name_error,
    policy_errors,
    shown,
    state_error,
    text,
    vm_spec_errors,
)

STALE_ADMISSION = "the cluster changed since admission control was checked"
RECENT_IDS = 10_000
"""How many command ids are remembered so that a retried command applies once."""

SNAPSHOT_FORMAT = 2
FAILOVER_BUCKETS = (1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60, 120, 300)  # seconds
MAX_INCIDENTS = 100  # the newest are kept
MAX_CLEARED_ALARMS = 200  # cleared alarms kept for the record, the newest
MAX_USERS = 1000
# Commands after which a VM that fitted nowhere may fit somewhere: capacity freed, hosts or
# rules or policy changed. The rest (a VM created or placed, an observation) cannot make room.
MAY_MAKE_ROOM = (c.RegisterHost, c.SetHostStatus, c.FenceHost, c.ConfirmFenced, c.SetVmState,
                 c.DeleteVm, c.VmFailed, c.CreateRule, c.DeleteRule, c.SetMaintenance,
                 c.SetMigration, c.FinishMigration, c.SetPolicy, c.ObserveHostFacts,
                 c.ResizeVm)
# Commands whose outcome bears on admission control (hosts, where HA VMs sit, what they need,
# the policy): each moves admission_epoch, so an admission checked before it is stale.
ADMISSION_INPUTS = (*MAY_MAKE_ROOM, c.CreateVm, c.ImportVm, c.AssignVm, c.RemoveMember)
MIN_MEMBERS = 3  # hactl host remove never leaves fewer (a majority must survive a loss)


@dataclass(frozen=True)
class Result:
    ok: bool
    code: str = "ok"  # ok | invalid | not_found | exists | conflict | stale_term | admission
    message: str = ""
    version: int = 0  # the changed record's new version (or the state revision)
    parts: tuple[Result, ...] = field(default=(), compare=False)  # a batch's, in order

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "code": self.code, "message": self.message,
                "version": self.version, "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        parts = tuple(cls.from_dict(p) for p in data.get("parts", ()))
        return cls(ok=data["ok"], code=data["code"], message=data["message"],
                   version=data["version"], parts=parts)


def _reject(code: str, message: str) -> Result:
    return Result(ok=False, code=code, message=message)


PLAIN_SLICE = 200  # records made plain between two pauses of a snapshot's writer

T = TypeVar("T")


def _in_slices(items: Iterable[T], plain: Callable[[T], Any],
               pause: Callable[[], None] | None) -> list[Any]:
    out = []
    for i, item in enumerate(items):
        if pause is not None and i and i % PLAIN_SLICE == 0:
            pause()
        out.append(plain(item))
    return out


class ClusterState:
    """Hosts, VMs, policy and the bookkeeping that makes apply idempotent and term-fenced."""

    _HANDLERS: ClassVar[dict[type[c.Command], str]] = {
        c.RegisterHost: "_register_host",
        c.SetHostStatus: "_set_host_status",
        c.CreateVm: "_create_vm",
        c.ImportVm: "_import_vm",
        c.SetVmState: "_set_vm_state",
        c.ResizeVm: "_resize_vm",
        c.DeleteVm: "_delete_vm",
        c.AssignVm: "_assign_vm",
        c.MarkPending: "_mark_pending",
        c.ObserveVms: "_observe_vms",
        c.VmFailed: "_vm_failed",
        c.SetPolicy: "_set_policy",
        c.FenceHost: "_fence_host",
        c.ConfirmFenced: "_confirm_fenced",
        c.CreateRule: "_create_rule",
        c.DeleteRule: "_delete_rule",
        c.SetMaintenance: "_set_maintenance",
        c.RequestMigration: "_request_migration",
        c.SetMigration: "_set_migration",
        c.FinishMigration: "_finish_migration",
        c.ClaimLeadership: "_claim_leadership",
        c.SetClusterVersion: "_set_cluster_version",
        c.AddMember: "_add_member",
        c.RemoveMember: "_remove_member",
        c.SetVoter: "_set_voter",
        c.CreateToken: "_create_token",
        c.RevokeToken: "_revoke_token",
        c.SetDirectoryRoles: "_set_directory_roles",
        c.CreateUser: "_create_user",
        c.SetPassword: "_set_password",
        c.DeleteUser: "_delete_user",
        c.RaiseAlarm: "_raise_alarm",
        c.ClearAlarm: "_clear_alarm",
        c.AckAlarm: "_ack_alarm",
        c.CreatePool: "_create_pool",
        c.DeletePool: "_delete_pool",
        c.ObserveHostFacts: "_observe_host_facts",
        c.CreateNetwork: "_create_network",
        c.DeleteNetwork: "_delete_network",
        c.VolumesDeleted: "_volumes_deleted",
        c.Batch: "_batch",
    }
    _CONTAINERS = ("hosts", "vms", "rules", "recent", "incidents", "uuids", "tokens",
                   "token_hashes", "directory_roles", "counters", "alarms", "users", "pools",
                   "doomed_volumes", "networks", "macs", "members")

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.vms: ShardedDict[Vm] = ShardedDict()
        self.policy = Policy()
        self.revision = 0  # bumped by every applied change; records carry it as their version
        self.room_epoch = 0  # bumped by every change that may let a pending VM fit
        self.admission_epoch = 0  # bumped by every change that bears on admission control
        self.uuids: ShardedDict[str] = ShardedDict()  # VM uuid -> name
        self.leader_term = 0
        self.leader: str | None = None
        # the lowest code version every member runs, as last raised (core.commands.VERSIONS)
        self.cluster_version = c.FORMAT_VERSION
        # the members and where they listen, once recorded (version 2): hactl host add/remove
        self.members: dict[str, MemberRecord] = {}
        # command id -> (digest of what it asked, its result): a retry gets the same result
        self.recent: Generations[tuple[str, Result]] = Generations(RECENT_IDS)
        self.incidents: list[Incident] = []
        self.rules: dict[str, Rule] = {}
        self.tokens: dict[str, Token] = {}
        self.token_hashes: dict[str, str] = {}  # sha256 -> token name
        self.bootstrapped = False  # the bootstrap admin token was added (never again)
        self.directory_roles: dict[str, Role] = {}  # directory group -> role at login
        # totals since the cluster began, the same on every member (metrics: fencing by
        # method, migrations by outcome, failovers and their durations): COUNTERS
        self.counters: dict[str, float] = {}
        self.alarms: dict[str, Alarm] = {}  # by key: the active ones, and recently cleared
        self.users: dict[str, User] = {}  # local accounts (passwords as argon2id hashes)
        self.pools: dict[str, Pool] = {}  # storage pools every host defines
        # "pool/volume" -> {"pool", "volume", "host", "uuid"}: volumes of VMs deleted with
        # their disks, for that host's agent to delete once the domain is gone
        self.doomed_volumes: dict[str, dict[str, str]] = {}
        self.networks: dict[str, Network] = {}  # bridges VMs attach to
        # every MAC given out -> its VM (derived, not stored)
        self.macs: ShardedDict[str] = ShardedDict()
        # copy-on-write bookkeeping: what this object may change in place
        self._owned: set[str] = set(self._CONTAINERS)
        self._owned_records: set[tuple[str, str]] = set()
        self._usage: dict[str, list[int]] | None = None  # per apply: host -> allocated
        # the VMs this apply changed -> their vm_index keys before it (to update the index)
        self._touched: dict[str, frozenset[str]] = {}

    # which VMs are where (core/vm_index.py): built by the first reader of a published
    # state, then carried to every later state, updated by apply
    _index: vm_index.Index | None = None

    # ---- copy-on-write -----------------------------------------------------------------

    def fork(self) -> ClusterState:
        """A copy that shares everything with this one until either of them is changed; the
        two never see each other's later changes."""
        twin = copy.copy(self)
        twin._owned, twin._owned_records, twin._touched = set(), set(), {}
        self._owned, self._owned_records = set(), set()
        return twin

    def after(self, cmd: c.Command) -> tuple[ClusterState, Result]:
        """The next state, as a replica publishes it (cmd applied to a fork), and what apply
        answered; this one stays as it is, and so do the records the two share."""
        state = self.fork()
        return state, state.apply(cmd)

    def dry_run(self, cmd: c.Command) -> Result:
        """What applying cmd now would answer, leaving this state as it is."""
        return self.after(cmd)[1]

    def _w(self, name: str) -> Any:
        """The container `name`, private to this object (copied on first change)."""
        if name not in self._owned:
            current = getattr(self, name)
            setattr(self, name, current.copy() if isinstance(current, ShardedDict | Generations)
                    else list(current) if isinstance(current, list) else dict(current))
            self._owned.add(name)
        return getattr(self, name)

    def _edit(self, container: str, name: str) -> Any:
        """The record `name` of a container, private to this object (copied on first change)."""
        records: dict[str, Any] = self._w(container)
        if container == "vms":
            self._touch(name)
        if (container, name) not in self._owned_records:
            records[name] = records[name].clone()
            self._owned_records.add((container, name))
        return records[name]

    def _edit_vm(self, name: str) -> Vm:
        vm: Vm = self._edit("vms", name)
        return vm

    def _edit_host(self, name: str) -> Host:
        host: Host = self._edit("hosts", name)
        return host

    def _edit_rule(self, name: str) -> Rule:
        rule: Rule = self._edit("rules", name)
        return rule

    def _edit_incident(self, incident: Incident) -> Incident:
        incidents: list[Incident] = self._w("incidents")
        key = ("incidents", str(incident.id))
        i = next(i for i, x in enumerate(incidents) if x.id == incident.id)
        if key not in self._owned_records:
            incidents[i] = incidents[i].clone()
            self._owned_records.add(key)
        return incidents[i]

    # ---- what one host's agent looks at ---------------------------------------------------

    def _touch(self, name: str) -> None:
        """Before a VM is added, changed or deleted: remember where the index lists it."""
        if name not in self._touched:
            self._touched[name] = vm_index.keys_of(self.vms.get(name))

    def listed(self, key: str) -> frozenset[str]:
        """The names of the VMs under `key` of core/vm_index.py (vm_index.on(host), UNPLACED,
        FAILED, MOVING, ASKED). For readers of a published (no longer changing) state."""
        index = self._index
        if index is None:
            index = self._index = vm_index.build(self.vms.values())
        return index.get(key, frozenset())

    def indexed(self) -> ClusterState:
        """This state with its VM index built now, for a replica that carries it to every
        later state: a Raft process's replica had no reader to build it, and scanned all
        10,000 VMs for each failover it applied (_candidates)."""
        self.listed(vm_index.UNPLACED)
        return self

    def placed_on(self, host: str) -> frozenset[str]:
        """The VMs placed on or migrating to `host`."""
        return self.listed(vm_index.on(host))

    def placed(self) -> set[str]:
        """The VMs placed on or migrating to any host of the cluster, from the index."""
        return set().union(*(self.placed_on(h) for h in self.hosts))

    def running_count(self) -> int:
        """How many VMs run (vm_status "running": placed on a host that is up), from the
        index (a status call counted all 10,000 VMs)."""
        vms = (self.vms[n] for n in self.placed())
        return sum(1 for v in vms if vm_status(v, self.hosts.get(v.host or "")) == "running")

    def vms_for_host(self, host: str, domain_uuids: Iterable[str]) -> dict[str, Vm]:
        """The VMs a host's agent has to consider: those placed on or migrating to it, and
        those whose domains it holds (found elsewhere, ignored, or its own). host_plan and
        lease decide the same with these as with every VM of the cluster."""
        names = set(self.placed_on(host))
        names.update(n for u in domain_uuids if (n := self.uuids.get(u)) is not None)
        return {n: self.vms[n] for n in sorted(names)}

    # ---- the state machine -------------------------------------------------------------

    def apply(self, cmd: c.Command) -> Result:
        stamp = c.digest(cmd)
        earlier = self.recent.get(cmd.id)
        if earlier is not None:
            if earlier[0] != stamp:
                return _reject("invalid", f"request id {cmd.id} was already used for a "
                               "different request; use a new id")
            return earlier[1]
        self._usage = None
        result = self._apply_one(cmd)
        if self._touched:
            if self._index is not None:
                self._index = vm_index.updated(self._index, self._touched, self.vms)
            self._touched = {}
        recent: Generations[tuple[str, Result]] = self._w("recent")
        recent.add(cmd.id, (stamp, result))
        return result

    def _apply_one(self, cmd: c.Command) -> Result:
        if cmd.LEADER_ONLY and cmd.term < self.leader_term:
            return _reject("stale_term", f"command from term {cmd.term}; the cluster is in "
                           f"leader term {self.leader_term}")
        try:
            handler: Callable[[Any], Result] = getattr(self, self._HANDLERS[type(cmd)])
            result = handler(cmd)
            if result.ok and isinstance(cmd, MAY_MAKE_ROOM) and result.message != "unchanged":
                self.room_epoch += 1
            if result.ok and isinstance(cmd, ADMISSION_INPUTS) and result.message != "unchanged":
                self.admission_epoch += 1
            return result
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # A well-formed envelope whose body has the wrong shape: refuse it, always. The
            # handlers check before they change anything, so nothing was half done.
            return _reject("invalid", f"{cmd.TYPE}: {exc.__class__.__name__}: {exc}")

    def _batch(self, cmd: c.Batch) -> Result:
        parts = []
        for sub in cmd.commands:
            if not isinstance(sub, c.AssignVm):
                self._usage = None  # other commands may change what hosts hold
            if isinstance(sub, c.Batch) or sub.term != cmd.term:
                parts.append(_reject("invalid", "a batch holds leader commands of its own term"))
            else:
                parts.append(self._apply_one(sub))
        done = sum(1 for p in parts if p.ok)
        return Result(ok=True, message=f"{done} applied, {len(parts) - done} refused",
                      version=self.revision, parts=tuple(parts))

    def _bump(self) -> int:
        self.revision += 1
        return self.revision

    @staticmethod
    def _version_conflict(kind: str, name: str, have: int, expect: int | None) -> Result | None:
        if expect is not None and expect != have:
            return _reject("conflict", f"{kind} {name} is at version {have}, expected {expect}")
        return None

    def _vm(self, name: str, expect_version: int | None) -> Vm | Result:
        """The VM to change, or why not: it does not exist, or it moved past expect_version."""
        vm = self.vms.get(name)
        if vm is None:
            return _reject("not_found", f"VM {name} does not exist")
        return self._version_conflict("VM", name, vm.version, expect_version) or vm

    # ---- hosts ---------------------------------------------------------------------------

    def _register_host(self, cmd: c.RegisterHost) -> Result:
        errors = [e for e in [name_error("host", cmd.name)] if e]
        errors += host_capacity_errors(cmd.cpus, cmd.memory_mib, cmd.disk_gib)
        if errors:
            return _reject("invalid", "; ".join(errors))
        if not 0 < cmd.lease <= 3600 or not 0 <= cmd.watchdog <= 3600:
            return _reject("invalid", "lease must be in (0, 3600] s and watchdog in [0, 3600] s")
        host = self.hosts.get(cmd.name)
        spec = (cmd.raft_addr, cmd.api_addr, cmd.cpus, cmd.memory_mib, cmd.disk_gib,
                float(cmd.lease), float(cmd.watchdog), cmd.libvirt_uri, text(cmd.watchdog_error))
        if host is not None and spec == (host.raft_addr, host.api_addr, host.cpus,
                                         host.memory_mib, host.disk_gib, host.lease,
                                         host.watchdog, host.libvirt_uri, host.watchdog_error):
            return Result(ok=True, message="unchanged", version=host.version)
        version = self._bump()
        self._w("hosts")[cmd.name] = Host(
            cmd.name, *spec[:5], status=host.status if host else HostStatus.UP,
            lease=spec[5], watchdog=spec[6], libvirt_uri=spec[7], watchdog_error=spec[8],
            maintenance=host.maintenance if host else False, version=version)
        self._owned_records.add(("hosts", cmd.name))
        return Result(ok=True, version=version)

    def _host(self, name: str, expect_version: int | None) -> Host | Result:
        """The host to change, or why not: it does not exist, or it moved past the version."""
        host = self.hosts.get(name)
        if host is None:
            return _reject("not_found", f"host {name} does not exist")
        return self._version_conflict("host", name, host.version, expect_version) or host

    def _set_host_status(self, cmd: c.SetHostStatus) -> Result:
        found = self._host(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        new = HostStatus(cmd.status)
        allowed = {(HostStatus.UP, HostStatus.DOWN), (HostStatus.DOWN, HostStatus.UP),
                   (HostStatus.FENCED, HostStatus.UP)}
        if (found.status, new) not in allowed:
            return _reject("conflict", f"host {found.name} cannot go from {found.status.value} "
                           f"to {new.value}")
        if new is HostStatus.DOWN:
            self._open_incident(found.name, cmd.last_heard, cmd.ts)
        else:
            for incident in self._incidents_of(found.name):
                self._edit_incident(incident).returned_at = cmd.ts
        host = self._edit_host(cmd.name)
        host.status = new
        host.fenced_by = ""
        host.version = self._bump()
        return Result(ok=True, version=host.version)

    def _fence_host(self, cmd: c.FenceHost) -> Result:
        return self._fence(cmd.name, cmd.by, cmd.ts, cmd.expect_version)

    def _confirm_fenced(self, cmd: c.ConfirmFenced) -> Result:
        return self._fence(cmd.name, "operator", cmd.ts, None)

    def _fence(self, name: str, by: str, ts: float, expect_version: int | None) -> Result:
        """The host is known not to run its HA VMs: free them to be placed elsewhere."""
        found = self._host(name, expect_version)
        if isinstance(found, Result):
            return found
        if found.status is not HostStatus.DOWN:
            return _reject("conflict", f"host {name} is {found.status.value}; only a down host "
                           "can be fenced")
        incident = self._edit_incident(self._open_incident(name, 0.0, ts))
        incident.fenced_at, incident.fenced_by = ts, by
        self._count(f"fencing:{by}")
        for vm_name in self._candidates(name):
            old = self.vms[vm_name]
            if old.migrating_to == name:
                vm = self._edit_vm(vm_name)
                vm.migrating_to = None
                vm.migration_error = f"target {name} was lost"
            if old.host == name and old.recoverable:
                vm = self._edit_vm(vm_name)
                vm.last_host, vm.host, vm.migrating_to = name, None, None
                vm.observed = Observed.NONE
                vm.version = self._bump()
                if vm.wants_to_run:
                    incident.vms[vm.name] = {"placed_at": 0.0, "host": None, "running_at": 0.0}
        host = self._edit_host(name)
        host.status = HostStatus.FENCED
        host.fenced_by = by
        host.version = self._bump()
        return Result(ok=True, version=host.version)

    def _incidents_of(self, host: str) -> list[Incident]:
        return [i for i in self.incidents if i.host == host and i.open]

    def _open_incident(self, host: str, last_heard: float, ts: float) -> Incident:
        existing = self._incidents_of(host)
        if existing:
            return existing[-1]
        incident = Incident(id=(self.incidents[-1].id + 1) if self.incidents else 1,
                            host=host, last_heard=last_heard, declared_at=ts)
        incidents: list[Incident] = self._w("incidents")
        incidents.append(incident)
        self._owned_records.add(("incidents", str(incident.id)))
        del incidents[:-MAX_INCIDENTS]
        return incident

    def _count(self, key: str, by: float = 1) -> None:
        counters: dict[str, float] = self._w("counters")
        counters[key] = counters.get(key, 0) + by

    def _count_failover(self, seconds: float) -> None:
        """A host's HA VMs all run again: count it, and how long it took (a histogram)."""
        self._count("failovers")
        self._count("failover_seconds_sum", round(max(seconds, 0.0), 3))
        for le in FAILOVER_BUCKETS:
            if seconds <= le:
                self._count(f"failover_seconds_le:{le:g}")

    def _recovery_of(self, vm: str) -> Iterator[Incident]:
        """The incident (if any) recovering this VM, to be filled in."""
        for incident in reversed(self.incidents):
            if vm in incident.vms and incident.fenced_at and not incident.returned_at:
                yield incident
                return

    # ---- VMs -----------------------------------------------------------------------------

    def _create_vm(self, cmd: c.CreateVm) -> Result:
        errors = vm_spec_errors(cmd.name, cmd.vcpus, cmd.memory_mib, cmd.disk_gib,
                                cmd.priority, cmd.state)
        if errors:
            return _reject("invalid", "; ".join(errors))
        taken = self._name_taken(cmd.name, cmd.uuid)
        if taken:
            return taken
        errors = storage.disk_errors(cmd.disks, self.pools, bool(cmd.ha))
        errors += networks.nic_errors(cmd.networks, self.networks)
        if (bad_cpu := cpus.mode_error(cmd.cpu)) is not None:
            errors.append(bad_cpu)
        if errors:
            return _reject("invalid", "; ".join(errors))
        nics: list[dict[str, str]] = []
        for i, net in enumerate(cmd.networks):
            mac = networks.mac_for(cmd.uuid, i, lambda m: m in self.macs or any(
                n["mac"] == m for n in nics))
            nics.append({"network": net, "mac": mac})
        vm = Vm(name=cmd.name, uuid=cmd.uuid, vcpus=cmd.vcpus, memory_mib=cmd.memory_mib,
                disk_gib=cmd.disk_gib, state=VmState(cmd.state), ha=bool(cmd.ha),
                priority=cmd.priority, created_at=cmd.ts,
                disks=storage.disk_records(cmd.name, cmd.uuid, cmd.disks), nics=nics,
                cpu=cmd.cpu)
        no_room = storage.shared_space_error(vm, self.pools, self.vms.values(),
                                             self.policy.disk_ratio)
        if no_room:
            return _reject("admission", no_room)
        return self._admission(vm, cmd.admitted_epoch) or self._add_vm(vm)

    def _name_taken(self, name: str, uuid: object) -> Result | None:
        if name in self.vms:
            return _reject("exists", f"VM {name} already exists")
        if len(self.vms) >= MAX_VMS:
            return _reject("invalid", f"the cluster holds its maximum of {MAX_VMS} VMs")
        if not isinstance(uuid, str) or not 0 < len(uuid) <= 64:
            return _reject("invalid", "uuid must be a string of 1-64 characters")
        if uuid in self.uuids:
            return _reject("exists", f"a VM with uuid {uuid} already exists "
                           f"({self.uuids[uuid]})")
        return None

    def _add_vm(self, vm: Vm) -> Result:
        vm.version = self._bump()
        self._touch(vm.name)
        self._w("vms")[vm.name] = vm
        self._w("uuids")[vm.uuid] = vm.name
        if vm.nics:
            self._w("macs").update({n["mac"]: vm.name for n in vm.nics})
        self._owned_records.add(("vms", vm.name))
        return Result(ok=True, version=vm.version)

    def _import_vm(self, cmd: c.ImportVm) -> Result:
        error = name_error("VM", cmd.name)
        if error:
            return _reject("invalid", error)
        host = self.hosts.get(cmd.host)
        if host is None or host.status is not HostStatus.UP:
            return _reject("conflict", f"host {shown(cmd.host)} is not up")
        if host.maintenance:
            return _reject("conflict", f"host {cmd.host} is in maintenance")
        try:
            found = importing.inspect(str(cmd.xml), self.pools, self.networks)
        except importing.NotImportable as exc:
            return _reject("invalid", f"cannot import {cmd.name}: {exc}")
        errors = vm_spec_errors(cmd.name, found.vcpus, found.memory_mib, 0, 0, "started")
        if errors:
            return _reject("invalid", "; ".join(errors))
        if cmd.ha and found.problems:
            return _reject("invalid", f"{cmd.name} cannot be HA: "
                           f"{'; '.join(found.problems)} (import it without --ha, or move "
                           "them to the cluster's shared pools and networks first)")
        taken = self._name_taken(cmd.name, found.uuid)
        if taken:
            return taken
        reused = [f"{n['mac']} ({self.macs[n['mac']]})" for n in found.nics
                  if n["mac"] in self.macs]
        if reused:
            return _reject("conflict", f"MAC addresses already in use: {', '.join(reused)}")
        running = bool(cmd.running)
        vm = Vm(name=cmd.name, uuid=found.uuid, vcpus=found.vcpus,
                memory_mib=found.memory_mib, ha=bool(cmd.ha), created_at=cmd.ts,
                state=VmState.STARTED if running else VmState.STOPPED, host=cmd.host,
                last_host=cmd.host, observed=Observed.RUNNING if running else Observed.STOPPED,
                running_since=cmd.ts if running else 0.0, disks=found.disks, nics=found.nics,
                xml=found.xml, pinned=cmd.host if found.problems else "")
        return self._add_vm(vm)

    def _admission(self, vm: Vm, admitted_epoch: int | None) -> Result | None:
        """Apply does not run admission control (a placement search: a change of a weigher
        must not change how the log replays): the proposer did (admission_refusal), and
        apply refuses the command if anything it bears on changed since. Commands from
        before that carry no epoch and are checked here, as they were then."""
        if not (self.policy.admission_control and vm.ha and vm.wants_to_run):
            return None
        if admitted_epoch is None:
            why = admission.refusal(self.hosts.values(), self.vms.values(), vm, self.policy,
                                    self.policy.admission_failures, self)
            return _reject("admission", why) if why else None
        if admitted_epoch != self.admission_epoch:
            return _reject("conflict", f"{STALE_ADMISSION} (checked at epoch {admitted_epoch}, "
                           f"now {self.admission_epoch}); try again")
        return None

    def admission_refusal(self, cmd: c.CreateVm | c.SetVmState) -> str | None:
        """Admission control for this command, on the proposing side: why admitting the VM
        it creates or starts would leave the cluster unable to restart every HA VM after
        the failures the policy tolerates; None if it keeps that, or does not concern it."""
        starts = cmd.state == VmState.STARTED.value and (
            not isinstance(cmd, c.CreateVm) or bool(cmd.ha))
        if not (self.policy.admission_control and starts):
            return None  # nothing to check: no trial apply (this runs for every create)
        trial = self.fork()
        if not trial.apply(dataclasses.replace(cmd, admitted_epoch=trial.admission_epoch)).ok:
            return None  # refused for another reason, which apply will give
        vm = trial.vms.get(cmd.name)
        if vm is None or not (self.policy.admission_control and vm.ha and vm.wants_to_run):
            return None
        return admission.refusal(self.hosts.values(), self.vms.values(), vm, self.policy,
                                 self.policy.admission_failures, self)

    def _host_in_doubt(self, vm: Vm, doing: str) -> Result | None:
        """Refuse what could run the VM twice: its host is lost but not known to be off
        (for a non-HA VM, only a fence agent or an operator can know: a host that fenced
        itself by its lease stops its HA VMs, not the others)."""
        host = self.hosts.get(vm.host) if vm.host else None
        if host is None or host.status is HostStatus.UP:
            return None
        # A host that fenced itself by its lease stopped its HA VMs, not the others; a fence
        # agent or an operator says the whole host is off.
        self_fenced = vm.ha and vm.state is not VmState.IGNORED
        if host.status is HostStatus.FENCED and (self_fenced or host.fenced_by in (
                "fence agent", "operator")):
            return None
        return _reject("conflict", f"cannot {doing} VM {vm.name}: its host {host.name} is "
                       f"{host.status.value} and may still run it; wait until the host is "
                       f"fenced or back, or confirm it is off (hactl host confirm-fenced "
                       f"{host.name})")

    def _set_vm_state(self, cmd: c.SetVmState) -> Result:
        error = state_error(cmd.state)
        if error:
            return _reject("invalid", error)
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        state = VmState(cmd.state)
        if found.state is state and not found.error:
            return Result(ok=True, message=f"already {state.value}", version=found.version)
        doubt = self._host_in_doubt(found, f"set to {state.value}")
        if doubt:
            return doubt
        if state is VmState.STARTED:
            refused = self._admission(Vm(**{**found.to_dict(), "state": state, "error": ""}),
                                      cmd.admitted_epoch)
            if refused:
                return refused
        vm = self._edit_vm(cmd.name)
        vm.state = state
        # An operator's action is a fresh start: HA's failure bookkeeping is forgotten.
        vm.error, vm.restarts, vm.relocations, vm.avoid_hosts = "", 0, 0, []
        if (state is VmState.STARTED and vm.host is not None
                and vm.observed not in (Observed.RUNNING, Observed.PAUSED)):
            # A stopped VM holds no capacity, so its host may have filled up meanwhile:
            # the leader places it again (preferring the host it last ran on). One still
            # running (its stop not finished) keeps its host: it must never run twice.
            vm.last_host, vm.host = vm.host, None
            vm.observed = Observed.NONE
        vm.pending_reasons = []
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _resize_vm(self, cmd: c.ResizeVm) -> Result:
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        vcpus = found.vcpus if cmd.vcpus is None else cmd.vcpus
        memory = found.memory_mib if cmd.memory_mib is None else cmd.memory_mib
        errors = vm_spec_errors(found.name, vcpus, memory, 0, 0, "started")
        if errors:
            return _reject("invalid", "; ".join(errors))
        if found.xml:
            return _reject("conflict", f"VM {found.name} was imported and keeps its own "
                           "definition: resize it with virsh on its host")
        if (vcpus, memory) == (found.vcpus, found.memory_mib):
            return Result(ok=True, message="unchanged", version=found.version)
        holds = {found.host, found.migrating_to} - {None} if found.wants_to_run else set()
        for name in sorted(h for h in holds if h is not None):
            if not self._fits(self.hosts[name], vcpus - found.vcpus,
                              memory - found.memory_mib, 0):
                return _reject("conflict", f"VM {found.name} at {vcpus} vCPUs and "
                               f"{memory} MiB would not fit on {name}: stop it first (it "
                               "is placed again when started) or move it")
        vm = self._edit_vm(cmd.name)
        vm.vcpus, vm.memory_mib = vcpus, memory
        # a running VM keeps its size until it restarts; a stopped one starts with the new
        vm.restart_needed = found.observed in (Observed.RUNNING, Observed.PAUSED)
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _delete_vm(self, cmd: c.DeleteVm) -> Result:
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        if found.migrating_to is not None:
            return _reject("conflict", f"VM {cmd.name} is moving to {found.migrating_to}; "
                           "delete it once the move is over")
        doubt = self._host_in_doubt(found, "delete")
        if doubt:
            return doubt
        if cmd.delete_disks:
            doomed = self._w("doomed_volumes")
            for volume in storage.volumes_to_delete(found, self.pools):
                doomed[f"{volume['pool']}/{volume['volume']}"] = volume
        self._touch(cmd.name)
        del self._w("vms")[cmd.name]
        self._w("uuids").pop(found.uuid, None)
        for nic in found.nics:
            self._w("macs").pop(nic["mac"], None)
        for rule in list(self.rules.values()):
            if cmd.name in rule.vms:
                left = [v for v in rule.vms if v != cmd.name]
                if len(left) < (1 if rule.kind is RuleKind.HOST else 2):
                    del self._w("rules")[rule.name]  # nothing left to relate
                else:
                    self._edit_rule(rule.name).vms = left
        return Result(ok=True, version=self._bump())

    def _usage_of(self, host: str) -> list[int]:
        """[vcpus, memory MiB, disk GiB] allocated on host (a migrating VM counts on both
        ends), computed once per applied entry and kept up to date by its assignments. From
        the index when there is one: the VMs on the host when this entry began and those it
        changed since (every member scanned all 10,000 VMs for each assignment)."""
        if self._usage is None:
            self._usage = {}
        used = self._usage.get(host)
        if used is None:
            used = self._usage[host] = [0, 0, 0]
            for vm in (self.vms[n] for n in self._candidates(host)):
                if vm.wants_to_run and host in (vm.host, vm.migrating_to):
                    used[0] += vm.vcpus
                    used[1] += vm.memory_mib
                    used[2] += vm.disk_gib
        return used

    def _candidates(self, host: str) -> list[str]:
        """In name order, the VMs that may be placed on or migrating to `host` in the middle
        of an apply: from the index when there is one (where they were when this entry
        began, and those it changed since), else every VM. Callers check each record."""
        if self._index is None:
            return sorted(self.vms)
        names = self._index.get(vm_index.on(host), frozenset()) | self._touched.keys()
        return sorted(n for n in names if n in self.vms)

    def _fits(self, host: Host, vcpus: int, memory_mib: int, disk_gib: int) -> bool:
        """Whether `host` can take this much more than it holds now, under the policy."""
        p, used = self.policy, self._usage_of(host.name)
        return (used[0] + vcpus <= host.cpus * p.cpu_ratio
                and used[1] + memory_mib <= host.memory_mib * p.memory_ratio
                - p.memory_reserve_mib
                and used[2] + disk_gib <= host.disk_gib * p.disk_ratio)

    def _cannot_take(self, host: Host, vm: Vm) -> str:
        """What keeps `host` from running `vm` beyond capacity ("" if nothing): a pool it
        does not see, a network bridge it lacks, a pin elsewhere, another CPU."""
        return (storage.unseen_pools(vm, self.pools, host.name)
                or networks.missing_networks(vm, self.networks, host.name)
                or storage.pinned_elsewhere(vm, host.name)
                or cpus.pin_error(vm.cpu_pin, host.cpu_id))

    def _assign_vm(self, cmd: c.AssignVm) -> Result:
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        host = self.hosts.get(cmd.host)
        if host is None or host.status is not HostStatus.UP:
            return _reject("conflict", f"host {cmd.host} is not up")
        if found.host is not None and found.host != cmd.host:
            return _reject("conflict", f"VM {found.name} is already assigned to {found.host}")
        if found.host is None:
            # The plan was made on an older state: check again that it still fits (Nomad's
            # plan applier does the same) before anything runs there.
            if host.maintenance:
                return _reject("conflict", f"host {cmd.host} is in maintenance")
            if not self._fits(host, found.vcpus, found.memory_mib, found.disk_gib):
                return _reject("conflict", f"VM {found.name} no longer fits on {cmd.host}")
            unseen = self._cannot_take(host, found)
            if unseen:
                return _reject("conflict", f"host {cmd.host} cannot take VM {found.name}: "
                               f"{unseen}")
            if found.wants_to_run:
                used = self._usage_of(cmd.host)
                used[0] += found.vcpus
                used[1] += found.memory_mib
                used[2] += found.disk_gib
        vm = self._edit_vm(cmd.name)
        vm.host = cmd.host
        vm.last_host = cmd.host
        vm.unreported = False
        if vm.cpu == cpus.PASSTHROUGH and not vm.cpu_pin:
            vm.cpu_pin = host.cpu_id  # its CPU from now on: only identical hosts may take it
        vm.observed = Observed.NONE
        vm.pending_reasons = []
        vm.version = self._bump()
        for incident in self._recovery_of(vm.name):
            recovery = incident.vms[vm.name]
            if not recovery["placed_at"]:
                self._edit_incident(incident).vms[vm.name].update(placed_at=cmd.ts,
                                                                   host=cmd.host)
        return Result(ok=True, version=vm.version)

    def _mark_pending(self, cmd: c.MarkPending) -> Result:
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        if found.host is not None:
            return _reject("conflict", f"VM {found.name} is assigned to {found.host}")
        vm = self._edit_vm(cmd.name)
        vm.pending_reasons = [text(r) for r in cmd.reasons[:len(self.hosts) + 1]]
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _observe_vms(self, cmd: c.ObserveVms) -> Result:
        changed = 0
        reports = {name: Observed(seen) for name, seen in cmd.observed.items()}  # all valid?
        for name, new in sorted(reports.items()):
            old = self.vms.get(name)
            # Only the assigned host's word counts; a report about a VM that moved is stale.
            if old is None or old.host != cmd.host:
                continue
            if old.observed is not new or old.unreported:
                # A fact, not a change of intent: the record's version stays, so agents'
                # reports and the leader's compare-and-set keep referring to the same record.
                vm = self._edit_vm(name)
                vm.observed = new
                vm.unreported = False
                self._bump()
                changed += 1
                if new is Observed.RUNNING:
                    vm.running_since = cmd.ts
                    if old.observed is not Observed.PAUSED:
                        vm.restart_needed = False  # booted: from its newest definition
                    for incident in self._recovery_of(vm.name):
                        if incident.vms[vm.name]["host"] == cmd.host:
                            edited = self._edit_incident(incident)
                            edited.vms[vm.name]["running_at"] = cmd.ts
                            if all(v.get("running_at") for v in edited.vms.values()):
                                self._count_failover(cmd.ts - (edited.last_heard
                                                               or edited.declared_at))
        return Result(ok=True, message=f"{changed} changed", version=self.revision)

    def _vm_failed(self, cmd: c.VmFailed) -> Result:
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        if found.host != cmd.host or not found.wants_to_run or found.observed not in (
                Observed.STOPPED, Observed.CRASHED):
            return _reject("conflict", f"VM {found.name} is not failed on {cmd.host}")
        vm = self._edit_vm(cmd.name)
        p = self.policy
        if vm.running_since and cmd.ts - vm.running_since >= p.failure_reset_after:
            vm.restarts = vm.relocations = 0  # it ran long enough: old failures are forgiven
            vm.avoid_hosts = []
        vm.running_since = 0.0
        vm.restarts += 1
        vm.failures = [*vm.failures[-4:], text(f"{cmd.host}: {cmd.reason or vm.observed.value}")]
        others = [h for h in self.hosts.values() if h.status is HostStatus.UP
                  and h.name != cmd.host and h.name not in vm.avoid_hosts]
        if cmd.reason.startswith(storage.LOCK_CONFLICT):
            # another copy (or something else) holds its disks: restarting here or anywhere
            # would meet the same lock, so an operator must look
            vm.error = text(f"not started on {cmd.host}: {cmd.reason}; find what holds its "
                            "disks, then start it again")
            outcome = "error"
        elif vm.restarts <= p.max_restart:
            vm.observed = Observed.NONE  # its host's agent starts it again
            outcome = f"restart {vm.restarts}/{p.max_restart} on {cmd.host}"
        elif vm.relocations < p.max_relocate and others:
            vm.relocations += 1
            vm.restarts = 0
            vm.avoid_hosts = sorted(set(vm.avoid_hosts) | {cmd.host})
            vm.last_host, vm.host = cmd.host, None
            vm.observed = Observed.NONE
            outcome = f"relocate {vm.relocations}/{p.max_relocate} away from {cmd.host}"
        else:
            why = "" if others or vm.relocations >= p.max_relocate else \
                "; no other host left to try"
            vm.error = text(f"failed on {cmd.host} after {p.max_restart} restart(s) and "
                            f"{vm.relocations} relocation(s){why} (last: "
                            f"{'; '.join(vm.failures[-3:])}); start or stop it to retry")
            outcome = "error"
        vm.version = self._bump()
        self._count(f"vm_failures:{outcome.split()[0]}")
        return Result(ok=True, message=outcome, version=vm.version)

    # ---- rules, maintenance, migration ----------------------------------------------------------

    def _create_rule(self, cmd: c.CreateRule) -> Result:
        try:
            rule = Rule(name=cmd.name, kind=RuleKind(cmd.kind), strength=Strength(cmd.strength),
                        vms=list(cmd.vms), hosts=list(cmd.hosts))
        except ValueError as exc:
            return _reject("invalid", f"kind must be affinity, anti-affinity or host and "
                           f"strength must or should ({exc})")
        if len(self.rules) >= MAX_RULES and cmd.name not in self.rules:
            return _reject("invalid", f"the cluster holds its maximum of {MAX_RULES} rules")
        errors = rule_errors(rule, self.rules, self.vms, self.hosts)
        if errors:
            code = "exists" if any("already exists" in e for e in errors) else "invalid"
            return _reject(code, "; ".join(errors))
        rule.version = self._bump()
        self._w("rules")[rule.name] = rule
        self._owned_records.add(("rules", rule.name))
        return Result(ok=True, version=rule.version)

    def _delete_rule(self, cmd: c.DeleteRule) -> Result:
        if cmd.name not in self.rules:
            return _reject("not_found", f"rule {cmd.name} does not exist")
        del self._w("rules")[cmd.name]
        return Result(ok=True, version=self._bump())

    def _set_maintenance(self, cmd: c.SetMaintenance) -> Result:
        found = self._host(cmd.name, None)
        if isinstance(found, Result):
            return found
        if found.maintenance is bool(cmd.on):
            return Result(ok=True, message="unchanged", version=found.version)
        host = self._edit_host(cmd.name)
        host.maintenance = bool(cmd.on)
        host.version = self._bump()
        return Result(ok=True, version=host.version)

    def _request_migration(self, cmd: c.RequestMigration) -> Result:
        found = self._vm(cmd.name, None)
        if isinstance(found, Result):
            return found
        if found.host is None or not found.wants_to_run:
            return _reject("conflict", f"VM {found.name} is not running on a host")
        if found.migrating_to is not None:
            return _reject("conflict", f"VM {found.name} is already moving to "
                           f"{found.migrating_to}")
        if cmd.to and cmd.to not in self.hosts:
            return _reject("not_found", f"host {cmd.to} does not exist")
        if cmd.to == found.host:
            return _reject("invalid", f"VM {found.name} already runs on {cmd.to}")
        source = self.hosts.get(found.host)
        if source is None or source.status is not HostStatus.UP:
            return _reject("conflict", f"VM {found.name}'s host {found.host} is not up")
        if storage.is_local(found, self.pools) or found.pinned:
            return _reject("conflict", f"VM {found.name} has disks or NICs only its host has "
                           f"(local pools, or imported so): it stays on {found.host}")
        vm = self._edit_vm(cmd.name)
        vm.migration_requested, vm.migration_error = cmd.to, ""
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _set_migration(self, cmd: c.SetMigration) -> Result:
        found = self._vm(cmd.name, cmd.expect_version)
        if isinstance(found, Result):
            return found
        if cmd.to:
            target = self.hosts.get(cmd.to)
            if found.host is None or found.migrating_to is not None:
                return _reject("conflict", f"VM {found.name} cannot start a move now")
            if target is None or target.status is not HostStatus.UP or cmd.to == found.host:
                return _reject("conflict", f"host {cmd.to} cannot take {found.name}")
            # The plan was made on an older state (and beside other plans of the same pass):
            # check again that the target may take it, as _assign_vm does.
            if cmd.check_target and target.maintenance:
                return _reject("conflict", f"host {cmd.to} is in maintenance")
            if cmd.check_target and found.wants_to_run and not self._fits(
                    target, found.vcpus, found.memory_mib, found.disk_gib):
                return _reject("conflict", f"VM {found.name} no longer fits on {cmd.to}")
            unseen = self._cannot_take(target, found)
            if unseen:
                return _reject("conflict", f"host {cmd.to} cannot take {found.name}: "
                               f"{unseen}")
        vm = self._edit_vm(cmd.name)
        if not cmd.to:  # refused, or cancelled
            vm.migrating_to, vm.migration_requested = None, None
            vm.migration_error = text(cmd.error)
        else:
            vm.migrating_to, vm.migration_requested, vm.migration_error = cmd.to, None, ""
            self._usage = None  # it now counts on its target too
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _finish_migration(self, cmd: c.FinishMigration) -> Result:
        found = self._vm(cmd.name, None)
        if isinstance(found, Result):
            return found
        if (found.host, found.migrating_to) != (cmd.source, cmd.to):
            return _reject("conflict", f"VM {found.name} is not moving from {cmd.source} to "
                           f"{cmd.to}")
        vm = self._edit_vm(cmd.name)
        vm.migrating_to = None
        self._count(f"migrations:{cmd.mode if cmd.ok else 'failed'}")
        if cmd.ok:
            vm.left = {h: t for h, t in vm.left.items() if cmd.ts - t < 86400}
            vm.left[cmd.source] = cmd.ts
            vm.host = vm.last_host = cmd.to
            vm.observed = Observed.RUNNING if cmd.mode == "live" else Observed.NONE
            vm.unreported = cmd.mode == "live"
        else:
            vm.migration_error = text(cmd.error or "migration failed")
        vm.version = self._bump()
        return Result(ok=True, message=cmd.mode if cmd.ok else "failed", version=vm.version)

    def _set_policy(self, cmd: c.SetPolicy) -> Result:
        conflict = self._version_conflict("policy", "", self.policy.version, cmd.expect_version)
        if conflict:
            return conflict
        errors = policy_errors(cmd.changes)
        if errors:
            return _reject("invalid", "; ".join(errors))
        data = self.policy.to_dict()
        for key, value in cmd.changes.items():
            kind = type(data[key])
            data[key] = bool(value) if kind is bool else kind(value)
        data["version"] = self._bump()
        self.policy = Policy.from_dict(data)
        return Result(ok=True, version=self.policy.version)

    def _claim_leadership(self, cmd: c.ClaimLeadership) -> Result:
        # apply() already refused a term below leader_term.
        if (cmd.term, cmd.leader) == (self.leader_term, self.leader):
            return Result(ok=True, message="renewed", version=self.revision)
        self.leader_term = cmd.term
        self.leader = cmd.leader
        return Result(ok=True, version=self._bump())

    def _set_cluster_version(self, cmd: c.SetClusterVersion) -> Result:
        if not isinstance(cmd.version, int) or cmd.version < self.cluster_version:
            return _reject("invalid", f"the cluster version is never lowered (it is "
                           f"{self.cluster_version})")
        if cmd.version == self.cluster_version:
            return Result(ok=True, message="unchanged", version=self.revision)
        self.cluster_version = cmd.version
        return Result(ok=True, version=self._bump())

    def _add_member(self, cmd: c.AddMember) -> Result:
        errors = [err for err in (name_error("host", cmd.name),
                                  *(address_error(label, getattr(cmd, label))
                                    for label in ("raft", "api", "peer", "web")))
                  if err is not None]
        if errors:
            return _reject("invalid", "; ".join(errors))
        addresses = {cmd.raft, cmd.api, cmd.peer, cmd.web}
        if len(addresses) != 4:
            return _reject("invalid", "raft, api, peer and web must be four different addresses")
        known = self.members.get(cmd.name)
        if known is not None:
            if (known.raft, known.api, known.peer, known.web) == (cmd.raft, cmd.api, cmd.peer,
                                                                  cmd.web):
                return Result(ok=True, message="unchanged", version=known.version)
            return _reject("exists", f"member {cmd.name} exists with other addresses: remove "
                           "it first")
        taken = sorted(m.name for m in self.members.values()
                       if addresses & {m.raft, m.api, m.peer, m.web})
        if taken:
            return _reject("exists", f"member {taken[0]} already listens on one of those "
                           "addresses")
        if len(self.members) >= MAX_MEMBERS:
            return _reject("invalid", f"a cluster holds at most {MAX_MEMBERS} members")
        version = self._bump()
        voters = sum(1 for m in self.members.values() if m.voter)
        self._w("members")[cmd.name] = MemberRecord(
            name=cmd.name, raft=cmd.raft, api=cmd.api, peer=cmd.peer, web=cmd.web,
            added_at=cmd.ts, version=version,
            voter=bool(cmd.voter) or voters < self.policy.voters)
        self._owned_records.add(("members", cmd.name))
        return Result(ok=True, version=version)

    def _set_voter(self, cmd: c.SetVoter) -> Result:
        found = self.members.get(cmd.name)
        if found is None:
            return _reject("not_found", f"member {shown(cmd.name)} does not exist")
        if found.voter is bool(cmd.voter):
            return Result(ok=True, message="unchanged", version=found.version)
        member: MemberRecord = self._edit("members", cmd.name)
        member.voter = bool(cmd.voter)
        member.version = self._bump()
        return Result(ok=True, version=member.version)

    def _remove_member(self, cmd: c.RemoveMember) -> Result:
        if cmd.name not in self.members:
            return _reject("not_found", f"member {shown(cmd.name)} does not exist")
        if len(self.members) <= MIN_MEMBERS:
            return _reject("conflict", f"a cluster keeps at least {MIN_MEMBERS} members (to "
                           "survive the loss of one): add another host first")
        held = sorted(vm.name for vm in self.vms.values()
                      if cmd.name in (vm.host, vm.migrating_to))
        if held:
            return _reject("conflict", f"host {cmd.name} still holds {len(held)} VMs "
                           f"({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}): put it "
                           "in maintenance (its running VMs move away) and move or delete the "
                           "others")
        host = self.hosts.get(cmd.name)
        if host is not None and host.status is not HostStatus.FENCED and not host.maintenance:
            return _reject("conflict", f"host {cmd.name} is neither in maintenance nor fenced: "
                           f"hactl host maintenance enter {cmd.name} --wait, first")
        del self._w("members")[cmd.name]
        if host is not None:
            del self._w("hosts")[cmd.name]
        return Result(ok=True, version=self._bump())

    # ---- tokens and the directory ----------------------------------------------------------

    def _create_token(self, cmd: c.CreateToken) -> Result:
        if (err := name_error("token", cmd.name)) is not None:
            return _reject("invalid", err)
        if cmd.role not in {r.value for r in Role}:
            return _reject("invalid", f"role must be one of {', '.join(r.value for r in Role)}")
        if not (isinstance(cmd.sha256, str) and len(cmd.sha256) == 64
                and all(ch in "0123456789abcdef" for ch in cmd.sha256)):
            return _reject("invalid", "a token is stored as the hex sha256 of its secret")
        if cmd.name in self.tokens:
            return _reject("exists", f"token {cmd.name} already exists")
        if cmd.sha256 in self.token_hashes:
            return _reject("exists", "that token is already known")
        if len(self.tokens) >= MAX_TOKENS:
            return _reject("invalid", f"the cluster holds its maximum of {MAX_TOKENS} tokens")
        if not 0 <= cmd.expires_at < 1e11:
            return _reject("invalid", "expires_at must be wall-clock seconds, or 0 for never")
        if cmd.owner == "bootstrap":
            if self.bootstrapped:
                return _reject("conflict", "the bootstrap token was added once already")
            self.bootstrapped = True
        token = Token(name=cmd.name, role=Role(cmd.role), sha256=cmd.sha256,
                      owner=text(cmd.owner, 200), created_at=cmd.ts,
                      expires_at=float(cmd.expires_at), version=self._bump())
        self._w("tokens")[token.name] = token
        self._w("token_hashes")[token.sha256] = token.name
        self._owned_records.add(("tokens", token.name))
        return Result(ok=True, version=token.version)

    def _revoke_token(self, cmd: c.RevokeToken) -> Result:
        token = self.tokens.get(cmd.name)
        if token is None:
            return _reject("not_found", f"token {cmd.name} does not exist")
        # a web session opened with a token ends with it (model.session_owner)
        for t in [token, *(t for t in self.tokens.values() if t.owner == session_owner(cmd.name))]:
            del self._w("tokens")[t.name]
            self._w("token_hashes").pop(t.sha256, None)
        return Result(ok=True, version=self._bump())

    def _set_directory_roles(self, cmd: c.SetDirectoryRoles) -> Result:
        if not isinstance(cmd.roles, dict) or len(cmd.roles) > MAX_RULE_MEMBERS:
            return _reject("invalid", f"at most {MAX_RULE_MEMBERS} directory groups")
        roles = {}
        for group, role in cmd.roles.items():
            if not isinstance(group, str) or not 0 < len(group) <= 500:
                return _reject("invalid", "a directory group is its DN, 1-500 characters")
            if role not in {r.value for r in Role}:
                return _reject("invalid", f"role must be one of "
                               f"{', '.join(r.value for r in Role)}, got {shown(role)}")
            roles[group] = Role(role)
        self.directory_roles = roles
        self._owned.add("directory_roles")
        return Result(ok=True, version=self._bump())

    # ---- local users ---------------------------------------------------------------------

    @staticmethod
    def _hash_error(password_hash: object) -> Result | None:
        if not (isinstance(password_hash, str) and password_hash.startswith("$argon2id$")
                and len(password_hash) <= 300):
            return _reject("invalid", "a password is stored as an argon2id hash")
        return None

    def _create_user(self, cmd: c.CreateUser) -> Result:
        if (err := name_error("user", cmd.name)) is not None:
            return _reject("invalid", err)
        if cmd.role not in {r.value for r in Role}:
            return _reject("invalid", f"role must be one of {', '.join(r.value for r in Role)}")
        if (bad := self._hash_error(cmd.password_hash)) is not None:
            return bad
        if cmd.name in self.users:
            return _reject("exists", f"user {cmd.name} already exists")
        if len(self.users) >= MAX_USERS:
            return _reject("invalid", f"the cluster holds its maximum of {MAX_USERS} users")
        user = User(name=cmd.name, role=Role(cmd.role), password_hash=cmd.password_hash,
                    created_at=cmd.ts, version=self._bump())
        self._w("users")[user.name] = user
        self._owned_records.add(("users", user.name))
        return Result(ok=True, version=user.version)

    def _set_password(self, cmd: c.SetPassword) -> Result:
        if cmd.name not in self.users:
            return _reject("not_found", f"user {cmd.name} does not exist")
        if (bad := self._hash_error(cmd.password_hash)) is not None:
            return bad
        user: User = self._edit("users", cmd.name)
        user.password_hash = cmd.password_hash
        user.version = self._bump()
        return Result(ok=True, version=user.version)

    def _delete_user(self, cmd: c.DeleteUser) -> Result:
        if cmd.name not in self.users:
            return _reject("not_found", f"user {cmd.name} does not exist")
        del self._w("users")[cmd.name]
        owner = user_owner(cmd.name)
        for t in [t for t in self.tokens.values() if t.owner == owner]:
            del self._w("tokens")[t.name]
            self._w("token_hashes").pop(t.sha256, None)
        return Result(ok=True, version=self._bump())

    # ---- alarms ----------------------------------------------------------------------------

    def _raise_alarm(self, cmd: c.RaiseAlarm) -> Result:
        if not (isinstance(cmd.key, str) and 0 < len(cmd.key) <= 300):
            return _reject("invalid", "an alarm key is 1-300 characters")
        old = self.alarms.get(cmd.key)
        if old is not None and old.active and (old.message, old.severity.value) == (
                cmd.message, cmd.severity):
            return Result(ok=True, message="unchanged", version=old.version)
        alarms: dict[str, Alarm] = self._w("alarms")
        if old is not None and old.active:  # the same condition, worse or better: updated
            alarm = self._edit("alarms", cmd.key)
            alarm.message, alarm.severity = text(cmd.message), Severity(cmd.severity)
        else:
            alarm = alarms[cmd.key] = Alarm(
                key=cmd.key, kind=text(cmd.kind, 100), severity=Severity(cmd.severity),
                subject=text(cmd.subject, 200), message=text(cmd.message), raised_at=cmd.ts)
            self._owned_records.add(("alarms", cmd.key))
            alarms[cmd.key] = alarms.pop(cmd.key)  # newest last
        alarm.version = self._bump()
        cleared = [k for k, a in alarms.items() if not a.active]
        for key in cleared[:max(0, len(cleared) - MAX_CLEARED_ALARMS)]:
            del alarms[key]
        return Result(ok=True, version=alarm.version)

    def _clear_alarm(self, cmd: c.ClearAlarm) -> Result:
        old = self.alarms.get(cmd.key)
        if old is None or not old.active:
            return _reject("not_found", f"no active alarm {shown(cmd.key)}")
        alarm = self._edit("alarms", cmd.key)
        alarm.cleared_at = cmd.ts
        alarm.version = self._bump()
        return Result(ok=True, version=alarm.version)

    def _ack_alarm(self, cmd: c.AckAlarm) -> Result:
        old = self.alarms.get(cmd.key)
        if old is None or not old.active:
            return _reject("not_found", f"no active alarm {shown(cmd.key)} (hactl alarm list)")
        if old.acked_at:
            return Result(ok=True, message="unchanged", version=old.version)
        alarm = self._edit("alarms", cmd.key)
        alarm.acked_by, alarm.acked_at = text(cmd.actor or "?", 200), cmd.ts
        alarm.version = self._bump()
        return Result(ok=True, version=alarm.version)

    # ---- storage pools ---------------------------------------------------------------------

    def _create_pool(self, cmd: c.CreatePool) -> Result:
        errors = storage.pool_errors(cmd.name, cmd.type, cmd.path, cmd.source_host,
                                     cmd.source_path)
        if errors:
            return _reject("invalid", "; ".join(errors))
        if cmd.name in self.pools:
            return _reject("exists", f"storage pool {cmd.name} already exists")
        if len(self.pools) >= storage.MAX_POOLS:
            return _reject("invalid", f"the cluster holds its maximum of {storage.MAX_POOLS} "
                           "storage pools")
        version = self._bump()
        self._w("pools")[cmd.name] = Pool(
            name=cmd.name, type=PoolType(cmd.type), shared=bool(cmd.shared), path=cmd.path,
            source_host=cmd.source_host, source_path=cmd.source_path, created_at=cmd.ts,
            version=version)
        self._owned_records.add(("pools", cmd.name))
        return Result(ok=True, version=version)

    def _delete_pool(self, cmd: c.DeletePool) -> Result:
        return self._delete_unused("pools", "storage pool", cmd.name, "holds disks of",
                                   lambda vm: any(d["pool"] == cmd.name for d in vm.disks))

    def _delete_unused(self, container: str, kind: str, name: str, verb: str,
                       uses: Callable[[Vm], bool]) -> Result:
        """Delete a pool or network, unless a VM still uses it (then say which)."""
        if name not in getattr(self, container):
            return _reject("not_found", f"{kind} {shown(name)} does not exist")
        users = sorted(vm.name for vm in self.vms.values() if uses(vm))
        if users:
            return _reject("conflict", f"{kind} {name} {verb} {len(users)} VMs "
                           f"({', '.join(users[:5])}{', ...' if len(users) > 5 else ''}); "
                           "delete those VMs first")
        del self._w(container)[name]
        return Result(ok=True, version=self._bump())

    def _observe_host_facts(self, cmd: c.ObserveHostFacts) -> Result:
        if cmd.host not in self.hosts:
            return _reject("not_found", f"host {shown(cmd.host)} is not registered")
        problem = storage.observation_error(cmd.pools, cmd.pool_errors)
        if problem is None and cmd.cpu is not None:
            problem = cpus.cpu_error(cmd.cpu) if isinstance(cmd.cpu, str) else \
                "cpu must be a <cpu> definition"
        if problem or not isinstance(cmd.networks, list) or not all(
                isinstance(n, str) for n in cmd.networks):
            return _reject("invalid", problem or "networks must be a list of names")
        seen = {k: [float(v[0]), float(v[1])] for k, v in cmd.pools.items()}
        errors = {k: text(v, 300) for k, v in cmd.pool_errors.items()}
        has = set(cmd.networks)
        changed = False
        if cmd.cpu is not None and self.hosts[cmd.host].cpu != cmd.cpu:
            host = self._edit_host(cmd.host)
            host.cpu, host.cpu_id = cmd.cpu, cpus.fingerprint(cmd.cpu)
            host.version = self._bump()
            changed = True
        for name, net in self.networks.items():
            if (cmd.host in net.hosts) != (name in has):
                edit: Network = self._edit("networks", name)
                edit.hosts = sorted({*net.hosts, cmd.host} if name in has
                                    else set(net.hosts) - {cmd.host})
                edit.version = self._bump()
                changed = True
        for name in self.pools:
            pool = self.pools[name]
            mine, why = seen.get(name), errors.get(name, "")
            if pool.seen.get(cmd.host) == mine and pool.errors.get(cmd.host, "") == why:
                continue
            changing: Pool = self._edit("pools", name)
            changing.seen.pop(cmd.host, None)
            changing.errors.pop(cmd.host, None)
            if mine is not None:
                changing.seen[cmd.host] = mine
            if why:
                changing.errors[cmd.host] = why
            changing.version = self._bump()
            changed = True
        return Result(ok=True, message="" if changed else "unchanged", version=self.revision)

    def _create_network(self, cmd: c.CreateNetwork) -> Result:
        errors = networks.network_errors(cmd.name, cmd.bridge)
        if errors:
            return _reject("invalid", "; ".join(errors))
        if cmd.name in self.networks:
            return _reject("exists", f"network {cmd.name} already exists")
        if len(self.networks) >= networks.MAX_NETWORKS:
            return _reject("invalid", f"the cluster holds its maximum of "
                           f"{networks.MAX_NETWORKS} networks")
        version = self._bump()
        self._w("networks")[cmd.name] = Network(name=cmd.name, bridge=cmd.bridge,
                                                created_at=cmd.ts, version=version)
        self._owned_records.add(("networks", cmd.name))
        return Result(ok=True, version=version)

    def _delete_network(self, cmd: c.DeleteNetwork) -> Result:
        return self._delete_unused("networks", "network", cmd.name, "is used by",
                                   lambda vm: any(n["network"] == cmd.name for n in vm.nics))

    def _volumes_deleted(self, cmd: c.VolumesDeleted) -> Result:
        mine = [k for k in cmd.volumes if self.doomed_volumes.get(str(k), {}).get("host")
                == cmd.host]
        if not mine:
            return Result(ok=True, message="unchanged", version=self.revision)
        doomed = self._w("doomed_volumes")
        for key in mine:
            del doomed[key]
        return Result(ok=True, version=self._bump())

    # ---- snapshots (plain data) -----------------------------------------------------------

    def to_dict(self, pause: Callable[[], None] | None = None) -> dict[str, Any]:
        """Plain data for a snapshot. `pause` is called between slices of the big tables:
        a snapshot is written beside a member's Raft thread, which needs the GIL often."""
        return {
            "format": SNAPSHOT_FORMAT,
            "hosts": [h.to_dict() for h in self.hosts.values()],
            "vms": _in_slices(self.vms.values(), Vm.to_dict, pause),
            "policy": self.policy.to_dict(),
            "revision": self.revision,
            "room_epoch": self.room_epoch,
            "admission_epoch": self.admission_epoch,
            "leader_term": self.leader_term,
            "leader": self.leader,
            "cluster_version": self.cluster_version,
            "members": [m.to_dict() for m in self.members.values()],
            "recent": _in_slices(self.recent.items(), lambda i: [i[0], i[1][0], i[1][1].to_dict()],
                                 pause),
            "incidents": [i.to_dict() for i in self.incidents],
            "rules": [r.to_dict() for r in self.rules.values()],
            "tokens": [t.to_dict() for t in self.tokens.values()],
            "bootstrapped": self.bootstrapped,
            "directory_roles": {g: r.value for g, r in self.directory_roles.items()},
            "counters": dict(sorted(self.counters.items())),
            "alarms": [a.to_dict() for a in self.alarms.values()],
            "users": [u.to_dict() for u in self.users.values()],
            "pools": [p.to_dict() for p in self.pools.values()],
            "doomed_volumes": dict(self.doomed_volumes),
            "networks": [n.to_dict() for n in self.networks.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterState:
        if data.get("format") not in (1, SNAPSHOT_FORMAT):
            raise c.UnsupportedCommand(f"snapshot format {data.get('format')!r} is unknown")
        state = cls()
        state.hosts = {h["name"]: Host.from_dict(h) for h in data["hosts"]}
        state.vms = ShardedDict((v["name"], Vm.from_dict(v)) for v in data["vms"])
        state.uuids = ShardedDict((v.uuid, v.name) for v in state.vms.values())
        state.room_epoch = data.get("room_epoch", 0)
        state.admission_epoch = data.get("admission_epoch", 0)
        state.policy = Policy.from_dict(data["policy"])
        state.revision = data["revision"]
        state.leader_term = data["leader_term"]
        state.leader = data["leader"]
        state.cluster_version = int(data.get("cluster_version", c.FORMAT_VERSION))
        state.members = {m["name"]: MemberRecord.from_dict(m) for m in data.get("members", [])}
        state.recent = Generations(RECENT_IDS, ((k, (d, Result.from_dict(r)))
                                                for k, d, r in data["recent"])
                                   if data["format"] > 1 else
                                   ((k, ("", Result.from_dict(r))) for k, r in data["recent"]))
        state.incidents = [Incident.from_dict(i) for i in data.get("incidents", [])]
        state.rules = {r["name"]: Rule.from_dict(r) for r in data.get("rules", [])}
        state.tokens = {t["name"]: Token.from_dict(t) for t in data.get("tokens", [])}
        state.token_hashes = {t.sha256: t.name for t in state.tokens.values()}
        state.bootstrapped = bool(data.get("bootstrapped", False))
        state.directory_roles = {g: Role(r) for g, r in data.get("directory_roles", {}).items()}
        state.counters = dict(data.get("counters", {}))
        state.alarms = {a["key"]: Alarm.from_dict(a) for a in data.get("alarms", [])}
        state.users = {u["name"]: User.from_dict(u) for u in data.get("users", [])}
        state.pools = {p["name"]: Pool.from_dict(p) for p in data.get("pools", [])}
        state.doomed_volumes = dict(data.get("doomed_volumes", {}))
        state.networks = {n["name"]: Network.from_dict(n) for n in data.get("networks", [])}
        state.macs = ShardedDict((nic["mac"], vm.name) for vm in state.vms.values()
                                 for nic in vm.nics)
        return state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterState) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
