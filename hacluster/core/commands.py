"""Commands: the only way cluster state changes, and their wire format.

A command is plain data encoded as JSON with the code version it needs (`v`: the newest of
its type's and of the fields it sets, VERSIONS below), a type, an id (a retried command applies
once), the proposer's timestamp (apply never reads a clock) and, for commands
only the leader may issue, the leader's Raft term (a deposed leader's commands are rejected).
Records they change carry `expect_version` (compare-and-set; None means "whatever it is").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

CODE_VERSION = 2
"""This code's version: the newest command format it understands (VERSIONS). A cluster's
version is the lowest its members run (core.state.ClusterState.cluster_version); nothing newer
than it is ever proposed, so a member not yet upgraded never meets a command it cannot apply."""

FORMAT_VERSION = 1  # the version every command had before versions were counted


class UnsupportedCommand(Exception):
    """A command this code cannot apply (newer format or unknown type): the member must stop."""


class TooNew(ValueError):
    """A command the cluster's version does not allow yet (a member runs older code)."""


class MalformedCommand(ValueError):
    """Bytes that are not a command at all."""


@dataclass(kw_only=True, frozen=True)
class Command:
    TYPE: ClassVar[str] = ""
    LEADER_ONLY: ClassVar[bool] = False

    id: str
    ts: float = 0.0
    term: int = 0
    # The audit trail: who asked (token:NAME, member:NAME, leader:NAME) and from where. Not
    # part of what a command asks for: a retry from another address is the same request.
    actor: str = ""
    origin: str = ""


@dataclass(kw_only=True, frozen=True)
class RegisterHost(Command):
    """A host announces itself and its capacity (on every agent start; idempotent)."""

    TYPE = "host.register"
    name: str
    raft_addr: str
    api_addr: str
    cpus: int
    memory_mib: int
    disk_gib: int
    lease: float = 0.0
    watchdog: float = 0.0
    libvirt_uri: str = ""
    watchdog_error: str = ""  # the configured watchdog could not be opened: why


@dataclass(kw_only=True, frozen=True)
class SetHostStatus(Command):
    """Liveness transitions (up <-> down). Going down opens an incident."""

    TYPE = "host.status"
    LEADER_ONLY = True
    name: str
    status: str
    last_heard: float = 0.0  # wall clock, for the incident timeline
    expect_version: int | None = None


@dataclass(kw_only=True, frozen=True)
class FenceHost(Command):
    """The leader knows a down host cannot be running its HA VMs any more: it commits that,
    and the host's HA VMs become free to be placed elsewhere."""

    TYPE = "host.fence"
    LEADER_ONLY = True
    name: str
    by: str  # lease+watchdog | fence agent
    expect_version: int | None = None


@dataclass(kw_only=True, frozen=True)
class ConfirmFenced(Command):
    """An operator vouches that a down host is off (it has no watchdog, or no fence agent
    answered). Like Proxmox's manual fencing: the operator's word, recorded as such."""

    TYPE = "host.confirm_fenced"
    name: str


@dataclass(kw_only=True, frozen=True)
class CreateVm(Command):
    TYPE = "vm.create"
    name: str
    uuid: str
    vcpus: int
    memory_mib: int
    disk_gib: int = 0
    state: str = "started"
    ha: bool = True
    priority: int = 0
    disks: list[dict[str, Any]] = field(default_factory=list)  # {pool, size_gib, image}
    networks: list[str] = field(default_factory=list)  # a NIC on each, in order
    cpu: str = "baseline"  # or host-passthrough (core/cpus.py)
    # Admission control was checked by the proposer (service layer) against the state of this
    # admission epoch (ClusterState.admission_epoch); apply refuses the command if anything
    # that bears on it changed since. None: a command from before that (apply checks itself).
    admitted_epoch: int | None = None


@dataclass(kw_only=True, frozen=True)
class ImportVm(Command):
    """Adopt a domain defined in `host`'s libvirt as it is (core/importing.py): apply
    derives everything else from its XML."""

    TYPE = "vm.import"
    name: str
    host: str
    xml: str
    running: bool
    ha: bool = False


@dataclass(kw_only=True, frozen=True)
class SetVmState(Command):
    """Start or stop: the operator's desired state."""

    TYPE = "vm.state"
    name: str
    state: str
    expect_version: int | None = None
    # Admission control was checked by the proposer (service layer) against the state of this
    # admission epoch (ClusterState.admission_epoch); apply refuses the command if anything
    # that bears on it changed since. None: a command from before that (apply checks itself).
    admitted_epoch: int | None = None


@dataclass(kw_only=True, frozen=True)
class ResizeVm(Command):
    """New vCPUs and memory (None: unchanged), taken at the VM's next start."""

    TYPE = "vm.resize"
    name: str
    vcpus: int | None = None
    memory_mib: int | None = None
    expect_version: int | None = None


@dataclass(kw_only=True, frozen=True)
class DeleteVm(Command):
    TYPE = "vm.delete"
    name: str
    expect_version: int | None = None
    delete_disks: bool = False  # its volumes too (by the host that last had it)


@dataclass(kw_only=True, frozen=True)
class AssignVm(Command):
    """The leader's placement decision."""

    TYPE = "vm.assign"
    LEADER_ONLY = True
    name: str
    host: str
    expect_version: int | None = None


@dataclass(kw_only=True, frozen=True)
class MarkPending(Command):
    """The leader found no host for the VM: record why, visibly."""

    TYPE = "vm.pending"
    LEADER_ONLY = True
    name: str
    reasons: list[str] = field(default_factory=list)
    expect_version: int | None = None


@dataclass(kw_only=True, frozen=True)
class ObserveVms(Command):
    """Observed state changes reported by a host's agent, committed by the leader in a batch."""

    TYPE = "vm.observe"
    LEADER_ONLY = True
    host: str
    observed: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True, frozen=True)
class VmFailed(Command):
    """A VM that should run stopped or crashed on a healthy host: restart it in place, move
    it, or give up (error), per policy."""

    TYPE = "vm.failed"
    LEADER_ONLY = True
    name: str
    host: str
    expect_version: int | None = None
    reason: str = ""  # what the host said (libvirt's error for a start it refused)


@dataclass(kw_only=True, frozen=True)
class SetPolicy(Command):
    TYPE = "policy.set"
    changes: dict[str, float] = field(default_factory=dict)
    expect_version: int | None = None


@dataclass(kw_only=True, frozen=True)
class CreateRule(Command):
    TYPE = "rule.create"
    name: str
    kind: str  # affinity | anti-affinity | host
    strength: str  # must | should
    vms: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


@dataclass(kw_only=True, frozen=True)
class DeleteRule(Command):
    TYPE = "rule.delete"
    name: str


@dataclass(kw_only=True, frozen=True)
class SetMaintenance(Command):
    """Maintenance on: no new placements there, and the leader moves its VMs away."""

    TYPE = "host.maintenance"
    name: str
    on: bool


@dataclass(kw_only=True, frozen=True)
class RequestMigration(Command):
    """An operator asks for a VM to move (to a given host, or wherever fits best)."""

    TYPE = "vm.migrate"
    name: str
    to: str = ""


@dataclass(kw_only=True, frozen=True)
class SetMigration(Command):
    """The leader's decision: move the VM to `to`; or, with `to` empty, not now and why."""

    TYPE = "vm.migration"
    LEADER_ONLY = True
    name: str
    to: str = ""
    error: str = ""
    expect_version: int | None = None
    # apply re-checks that the target is not in maintenance and that the VM fits there.
    # Leaders set it (from version 2); entries without it replay as they did.
    check_target: bool = False


@dataclass(kw_only=True, frozen=True)
class FinishMigration(Command):
    """The source host's agent reports how the move went (live or cold handover)."""

    TYPE = "vm.migrated"
    name: str
    source: str
    to: str
    ok: bool
    mode: str = "live"  # live | cold
    error: str = ""


@dataclass(kw_only=True, frozen=True)
class AddMember(Command):
    """A new member (`hactl host add`; the leader also records the configured members once):
    every member learns where it listens; the Raft adapter then adds it to Raft."""

    TYPE = "member.add"
    name: str
    raft: str
    api: str
    peer: str
    web: str
    voter: bool = False  # a voter whatever the count: the configured members, as they run


@dataclass(kw_only=True, frozen=True)
class RemoveMember(Command):
    """A member leaves (`hactl host remove`), once out of Raft: its host record goes too.
    Only an empty host (maintenance first) or a fenced one may leave."""

    TYPE = "member.remove"
    name: str


@dataclass(kw_only=True, frozen=True)
class SetVoter(Command):
    """The leader makes a learner a voter, or a lost voter a learner (one change at a time:
    core.reconcile.voters); the Raft adapter then follows."""

    TYPE = "member.voter"
    LEADER_ONLY = True
    name: str
    voter: bool


@dataclass(kw_only=True, frozen=True)
class SetClusterVersion(Command):
    """The leader raises the cluster's version once every registered host runs code that
    understands it (core.reconcile.versions); it is never lowered."""

    TYPE = "cluster.version"
    LEADER_ONLY = True
    version: int


@dataclass(kw_only=True, frozen=True)
class ClaimLeadership(Command):
    """The barrier a new leader commits before it acts; raises the cluster's leader term."""

    TYPE = "leader.claim"
    LEADER_ONLY = True
    leader: str


@dataclass(kw_only=True, frozen=True)
class CreateToken(Command):
    """A new API token (its secret never enters the log: only its sha256)."""

    TYPE = "token.create"
    name: str
    role: str
    sha256: str
    owner: str = ""
    expires_at: float = 0.0  # wall clock; 0 = never


@dataclass(kw_only=True, frozen=True)
class RevokeToken(Command):
    TYPE = "token.revoke"
    name: str


@dataclass(kw_only=True, frozen=True)
class SetDirectoryRoles(Command):
    """Which role members of each directory group get when they log in (replaces all)."""

    TYPE = "directory.roles"
    roles: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True, frozen=True)
class CreateUser(Command):
    """A local account; the service hashed its password (argon2id) before proposing."""

    TYPE = "user.create"
    name: str
    role: str
    password_hash: str


@dataclass(kw_only=True, frozen=True)
class SetPassword(Command):
    TYPE = "user.password"
    name: str
    password_hash: str


@dataclass(kw_only=True, frozen=True)
class DeleteUser(Command):
    """The account goes, and every token its logins got with it."""

    TYPE = "user.delete"
    name: str


@dataclass(kw_only=True, frozen=True)
class RaiseAlarm(Command):
    """The leader saw an alarm's condition hold (raised again with a new message: updated)."""

    TYPE = "alarm.raise"
    LEADER_ONLY = True
    key: str  # kind:subject, e.g. host-down:host3
    kind: str
    severity: str  # warning | critical
    subject: str
    message: str


@dataclass(kw_only=True, frozen=True)
class ClearAlarm(Command):
    """The condition no longer holds."""

    TYPE = "alarm.clear"
    LEADER_ONLY = True
    key: str


@dataclass(kw_only=True, frozen=True)
class AckAlarm(Command):
    """An operator has seen the alarm (it stays until its condition clears)."""

    TYPE = "alarm.ack"
    key: str


@dataclass(kw_only=True, frozen=True)
class CreatePool(Command):
    """A storage pool every host defines in its libvirt (core/storage.py)."""

    TYPE = "pool.create"
    name: str
    type: str
    shared: bool
    path: str = ""
    source_host: str = ""
    source_path: str = ""


@dataclass(kw_only=True, frozen=True)
class DeletePool(Command):
    TYPE = "pool.delete"
    name: str


@dataclass(kw_only=True, frozen=True)
class ObserveHostFacts(Command):
    """A host's agent reports the pools its libvirt has running (name -> [capacity GiB,
    free GiB]; name -> why one would not start), which networks' bridges it has, and the
    CPU its hypervisor offers guests. Proposed only when it differs from the replica."""

    TYPE = "host.facts"
    host: str
    pools: dict[str, list[float]] = field(default_factory=dict)
    pool_errors: dict[str, str] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)
    cpu: str | None = None  # the CPU its hypervisor offers guests (None: not reported)


@dataclass(kw_only=True, frozen=True)
class CreateNetwork(Command):
    TYPE = "network.create"
    name: str
    bridge: str


@dataclass(kw_only=True, frozen=True)
class DeleteNetwork(Command):
    TYPE = "network.delete"
    name: str


@dataclass(kw_only=True, frozen=True)
class VolumesDeleted(Command):
    """A host's agent deleted volumes of deleted VMs (keys "pool/volume")."""

    TYPE = "pool.volumes_deleted"
    host: str
    volumes: list[str] = field(default_factory=list)


@dataclass(kw_only=True, frozen=True)
class Batch(Command):
    """Several leader commands in one log entry, applied in order (each may be refused on its
    own): a leader with thousands of placements or pending VMs to record commits them in a
    few entries instead of thousands. Sub-commands are not remembered for retries; the batch
    is."""

    TYPE = "batch"
    LEADER_ONLY = True
    commands: tuple[Command, ...] = ()


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.TYPE: cls
    for cls in (
        CreateUser,
        SetPassword,
        DeleteUser,
        RaiseAlarm,
        ClearAlarm,
        AckAlarm,
        RegisterHost,
        SetHostStatus,
        FenceHost,
        ConfirmFenced,
        CreateVm,
        ImportVm,
        SetVmState,
        ResizeVm,
        DeleteVm,
        AssignVm,
        MarkPending,
        ObserveVms,
        VmFailed,
        SetPolicy,
        CreateRule,
        DeleteRule,
        SetMaintenance,
        RequestMigration,
        SetMigration,
        FinishMigration,
        ClaimLeadership,
        SetClusterVersion,
        AddMember,
        RemoveMember,
        SetVoter,
        CreateToken,
        RevokeToken,
        SetDirectoryRoles,
        CreatePool,
        DeletePool,
        ObserveHostFacts,
        CreateNetwork,
        DeleteNetwork,
        VolumesDeleted,
        Batch,
    )
}


ENVELOPE_FIELDS = ("id", "ts", "term", "actor", "origin")
_BODY_FIELDS: dict[type[Command], tuple[str, ...]] = {}


def _body_fields(cls: type[Command]) -> tuple[str, ...]:
    names = _BODY_FIELDS.get(cls)
    if names is None:
        names = _BODY_FIELDS[cls] = tuple(f.name for f in fields(cls)
                                          if f.name not in ENVELOPE_FIELDS)
    return names


VERSIONS: dict[str, int] = {
    "cluster.version": 2,
    "member.add": 2,  # members replicated: hosts join and leave live
    "member.remove": 2,
    "vm.create.admitted_epoch": 2,  # admission checked by the proposer, not by apply
    "vm.state.admitted_epoch": 2,
    "vm.migration.check_target": 2,  # apply re-checks a planned move's target
    "policy.set.changes.voters": 2,  # keys of a dict field count too: "TYPE.field.key"
    "policy.set.changes.voter_replace_after": 2,
    "member.voter": 2,
}
"""The code version that introduced a command type ("TYPE") or a field ("TYPE.field"); what is
not listed is version 1. A field counts only when set (not at its default): a command that
leaves it unset reads the same to older code."""


def needs(cmd: Command) -> int:
    """The lowest code version that applies cmd exactly as this code does."""
    if isinstance(cmd, Batch):
        return max((needs(sub) for sub in cmd.commands), default=FORMAT_VERSION)
    if isinstance(cmd, SetClusterVersion):  # only code of that version may apply it
        return max(VERSIONS[cmd.TYPE], cmd.version if isinstance(cmd.version, int) else 0)
    version = VERSIONS.get(cmd.TYPE, FORMAT_VERSION)
    for name, since, default in _versioned_fields(type(cmd)):
        if getattr(cmd, name) != default:
            version = max(version, since)
    if isinstance(cmd, SetPolicy) and isinstance(cmd.changes, dict):
        version = max([version, *(VERSIONS.get(f"{cmd.TYPE}.changes.{key}", FORMAT_VERSION)
                                  for key in cmd.changes)])
    return version


_VERSIONED: dict[type[Command], tuple[tuple[str, int, Any], ...]] = {}


def _versioned_fields(cls: type[Command]) -> tuple[tuple[str, int, Any], ...]:
    """(name, version, default) of cls's fields newer than version 1 (computed once)."""
    found = _VERSIONED.get(cls)
    if found is None:
        found = _VERSIONED[cls] = tuple((f.name, VERSIONS[f"{cls.TYPE}.{f.name}"], f.default)
                                        for f in fields(cls)
                                        if f"{cls.TYPE}.{f.name}" in VERSIONS)
    return found


def allowed(feature: str, cluster_version: int) -> bool:
    """Whether a cluster at `cluster_version` may use a type or field of VERSIONS."""
    return VERSIONS[feature] <= cluster_version


def check_allowed(cmd: Command, cluster_version: int) -> None:
    """Raise TooNew unless every member of a cluster at `cluster_version` can apply cmd.
    The command that raises the version is the leader's to judge (core.reconcile.versions:
    every host said it runs that code), not the version it raises."""
    if isinstance(cmd, Batch):
        for sub in cmd.commands:
            check_allowed(sub, cluster_version)
    elif not isinstance(cmd, SetClusterVersion) and (version := needs(cmd)) > cluster_version:
        raise TooNew(f"{cmd.TYPE} needs cluster version {version}; the cluster runs version "
                     f"{cluster_version} until every member is upgraded (hactl cluster status "
                     "shows each member's version)")


def _envelope(cmd: Command) -> dict[str, Any]:
    # Fields hold plain data (str, numbers, lists, dicts): no deep copy needed to encode them,
    # and this runs for every command on every member (dataclasses.asdict was a third of it).
    if isinstance(cmd, Batch):
        body: dict[str, Any] = {"commands": [_envelope(sub) for sub in cmd.commands]}
    else:
        body = {name: getattr(cmd, name) for name in _body_fields(type(cmd))}
    envelope = {"v": needs(cmd), "type": cmd.TYPE, "id": cmd.id, "ts": cmd.ts,
                "term": cmd.term, "body": body}
    if cmd.actor or cmd.origin:
        envelope.update(actor=cmd.actor, origin=cmd.origin)
    return envelope


LATER_FIELDS: dict[str, Any] = {"check_target": False}
"""Fields added to commands after logs were first written, with the value an older entry
means (for digests: a command's digest must not change with the code that computes it)."""


def digest(cmd: Command) -> str:
    """What a command asks for, without when (ts) or by which leader (term): a request retried
    with the same id has the same digest; a different request reusing the id does not."""
    envelope = _envelope(cmd)
    # nor against which admission epoch it was checked (a retry is checked afresh), nor
    # fields added since at their defaults (an old entry's digest stays what it was)
    body = {k: v for k, v in envelope["body"].items() if k != "admitted_epoch"
            and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
    canonical = json.dumps([envelope["type"], body], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def encode(cmd: Command) -> bytes:
    return json.dumps(_envelope(cmd), separators=(",", ":"), sort_keys=True).encode()


def decode(blob: bytes, understands: int = CODE_VERSION) -> Command:
    """Parse a log entry as code of version `understands` would (lower only to play an older
    member in tests). Raises UnsupportedCommand or MalformedCommand, nothing else."""
    try:
        envelope = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCommand(f"not JSON: {exc}") from exc
    return _from_envelope(envelope, understands)


def _from_envelope(envelope: Any, understands: int) -> Command:
    if not isinstance(envelope, dict):
        raise MalformedCommand("envelope is not an object")
    version = envelope.get("v")
    if not isinstance(version, int):
        raise MalformedCommand("envelope has no format version")
    if version > understands:
        raise UnsupportedCommand(f"a {envelope.get('type')!r} command needs hacluster code "
                                 f"version {version}; this member runs version {understands}")
    cls = COMMAND_TYPES.get(str(envelope.get("type")))
    if cls is None or VERSIONS.get(cls.TYPE, FORMAT_VERSION) > understands:
        raise UnsupportedCommand(f"unknown command type {envelope.get('type')!r}")
    body = envelope.get("body")
    if not isinstance(body, dict):
        raise MalformedCommand("command body is not an object")
    # A field this code does not know can only be one left unset (`needs` counts set ones)
    # or one since retired: ignoring it reads the entry as its writer meant.
    known = set(_body_fields(cls))
    args: dict[str, Any] = {k: v for k, v in body.items() if k in known}
    if cls is Batch:
        subs = args.get("commands")
        if not isinstance(subs, list):
            raise MalformedCommand("batch: commands is not a list")
        args["commands"] = tuple(_from_envelope(sub, understands) for sub in subs)
    try:
        return cls(id=str(envelope.get("id")), ts=float(envelope.get("ts") or 0.0),
                   term=int(envelope.get("term") or 0), actor=str(envelope.get("actor") or ""),
                   origin=str(envelope.get("origin") or ""), **args)
    except (TypeError, ValueError) as exc:
        raise MalformedCommand(f"bad {cls.TYPE} command: {exc}") from exc
