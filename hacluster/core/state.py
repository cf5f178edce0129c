"""ClusterState and its deterministic `apply`: the replicated state machine.

Every member applies the same commands in the same order and so holds the same state. `apply`
never raises for a command it understands: it returns a Result, applied or rejected with a
reason, and a rejected command changes nothing. No clock, no randomness, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from . import admission
from . import commands as c
from .model import (
    POLICY_LIMITS,
    Host,
    HostStatus,
    Incident,
    Observed,
    Policy,
    Rule,
    RuleKind,
    Strength,
    Vm,
    VmState,
)
from .rules import rule_errors
from .validate import host_capacity_errors, name_error, state_error, vm_spec_errors

RECENT_IDS = 10_000
"""How many command ids are remembered so that a retried command applies once."""

SNAPSHOT_FORMAT = 1
MAX_INCIDENTS = 100  # the newest are kept


@dataclass(frozen=True)
class Result:
    ok: bool
    code: str = "ok"  # ok | invalid | not_found | exists | conflict | stale_term | admission
    message: str = ""
    version: int = 0  # the changed record's new version (or the state revision)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reject(code: str, message: str) -> Result:
    return Result(ok=False, code=code, message=message)


class ClusterState:
    """Hosts, VMs, policy and the bookkeeping that makes apply idempotent and term-fenced."""

    _HANDLERS: ClassVar[dict[type[c.Command], str]] = {
        c.RegisterHost: "_register_host",
        c.SetHostStatus: "_set_host_status",
        c.CreateVm: "_create_vm",
        c.SetVmState: "_set_vm_state",
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
    }

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.vms: dict[str, Vm] = {}
        self.policy = Policy()
        self.revision = 0  # bumped by every applied change; records carry it as their version
        self.leader_term = 0
        self.leader: str | None = None
        self.recent: OrderedDict[str, Result] = OrderedDict()
        self.incidents: list[Incident] = []
        self.rules: dict[str, Rule] = {}

    # ---- the state machine -------------------------------------------------------------

    def apply(self, cmd: c.Command) -> Result:
        earlier = self.recent.get(cmd.id)
        if earlier is not None:
            return earlier
        if cmd.LEADER_ONLY and cmd.term < self.leader_term:
            result = _reject("stale_term", f"command from term {cmd.term}; the cluster is in "
                             f"leader term {self.leader_term}")
        else:
            try:
                handler: Callable[[Any], Result] = getattr(self, self._HANDLERS[type(cmd)])
                result = handler(cmd)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                # A well-formed envelope whose body has the wrong shape: refuse it, always.
                result = _reject("invalid", f"{cmd.TYPE}: {exc.__class__.__name__}: {exc}")
        self.recent[cmd.id] = result
        while len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)
        return result

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
                float(cmd.lease), float(cmd.watchdog), cmd.libvirt_uri)
        if host is not None and spec == (host.raft_addr, host.api_addr, host.cpus,
                                         host.memory_mib, host.disk_gib, host.lease,
                                         host.watchdog, host.libvirt_uri):
            return Result(ok=True, message="unchanged", version=host.version)
        version = self._bump()
        self.hosts[cmd.name] = Host(
            cmd.name, *spec[:5], status=host.status if host else HostStatus.UP,
            lease=spec[5], watchdog=spec[6], libvirt_uri=spec[7],
            maintenance=host.maintenance if host else False, version=version)
        return Result(ok=True, version=version)

    def _host(self, name: str, expect_version: int | None) -> Host | Result:
        """The host to change, or why not: it does not exist, or it moved past the version."""
        host = self.hosts.get(name)
        if host is None:
            return _reject("not_found", f"host {name} does not exist")
        return self._version_conflict("host", name, host.version, expect_version) or host

    def _set_host_status(self, cmd: c.SetHostStatus) -> Result:
        host = self._host(cmd.name, cmd.expect_version)
        if isinstance(host, Result):
            return host
        new = HostStatus(cmd.status)
        allowed = {(HostStatus.UP, HostStatus.DOWN), (HostStatus.DOWN, HostStatus.UP),
                   (HostStatus.FENCED, HostStatus.UP)}
        if (host.status, new) not in allowed:
            return _reject("conflict", f"host {host.name} cannot go from {host.status.value} "
                           f"to {new.value}")
        if new is HostStatus.DOWN:
            self._open_incident(host.name, cmd.last_heard, cmd.ts)
        else:
            for incident in self._incidents_of(host.name):
                incident.returned_at = cmd.ts
        host.status = new
        host.version = self._bump()
        return Result(ok=True, version=host.version)

    def _fence_host(self, cmd: c.FenceHost) -> Result:
        return self._fence(cmd.name, cmd.by, cmd.ts, cmd.expect_version)

    def _confirm_fenced(self, cmd: c.ConfirmFenced) -> Result:
        return self._fence(cmd.name, "operator", cmd.ts, None)

    def _fence(self, name: str, by: str, ts: float, expect_version: int | None) -> Result:
        """The host is known not to run its HA VMs: free them to be placed elsewhere."""
        host = self._host(name, expect_version)
        if isinstance(host, Result):
            return host
        if host.status is not HostStatus.DOWN:
            return _reject("conflict", f"host {name} is {host.status.value}; only a down host "
                           "can be fenced")
        incident = self._open_incident(name, 0.0, ts)
        incident.fenced_at, incident.fenced_by = ts, by
        for vm in sorted(self.vms.values(), key=lambda v: v.name):
            if vm.migrating_to == name:
                vm.migrating_to = None
                vm.migration_error = f"target {name} was lost"
            if vm.host == name and vm.recoverable:
                vm.last_host, vm.host, vm.migrating_to = name, None, None
                vm.observed = Observed.NONE
                vm.version = self._bump()
                if vm.wants_to_run:
                    incident.vms[vm.name] = {"placed_at": 0.0, "host": None, "running_at": 0.0}
        host.status = HostStatus.FENCED
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
        self.incidents.append(incident)
        del self.incidents[:-MAX_INCIDENTS]
        return incident

    def _incident_vm(self, vm: str) -> dict[str, object] | None:
        for incident in reversed(self.incidents):
            if vm in incident.vms and incident.fenced_at and not incident.returned_at:
                return incident.vms[vm]
        return None

    # ---- VMs -----------------------------------------------------------------------------

    def _create_vm(self, cmd: c.CreateVm) -> Result:
        errors = vm_spec_errors(cmd.name, cmd.vcpus, cmd.memory_mib, cmd.disk_gib,
                                cmd.priority, cmd.state)
        if errors:
            return _reject("invalid", "; ".join(errors))
        if cmd.name in self.vms:
            return _reject("exists", f"VM {cmd.name} already exists")
        if any(vm.uuid == cmd.uuid for vm in self.vms.values()):
            return _reject("exists", f"a VM with uuid {cmd.uuid} already exists")
        vm = Vm(name=cmd.name, uuid=cmd.uuid, vcpus=cmd.vcpus, memory_mib=cmd.memory_mib,
                disk_gib=cmd.disk_gib, state=VmState(cmd.state), ha=bool(cmd.ha),
                priority=cmd.priority, created_at=cmd.ts)
        refused = self._admission(vm)
        if refused:
            return refused
        vm.version = self._bump()
        self.vms[cmd.name] = vm
        return Result(ok=True, version=vm.version)

    def _admission(self, vm: Vm) -> Result | None:
        if not (self.policy.admission_control and vm.ha and vm.wants_to_run):
            return None
        why = admission.refusal(self.hosts.values(), self.vms.values(), vm, self.policy,
                                self.policy.admission_failures)
        return _reject("admission", why) if why else None

    def _set_vm_state(self, cmd: c.SetVmState) -> Result:
        error = state_error(cmd.state)
        if error:
            return _reject("invalid", error)
        vm = self._vm(cmd.name, cmd.expect_version)
        if isinstance(vm, Result):
            return vm
        state = VmState(cmd.state)
        if vm.state is state and not vm.error:
            return Result(ok=True, message=f"already {state.value}", version=vm.version)
        if state is VmState.STARTED:
            refused = self._admission(Vm(**{**vm.to_dict(), "state": state, "error": ""}))
            if refused:
                return refused
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

    def _delete_vm(self, cmd: c.DeleteVm) -> Result:
        vm = self._vm(cmd.name, cmd.expect_version)
        if isinstance(vm, Result):
            return vm
        del self.vms[cmd.name]
        for rule in list(self.rules.values()):
            if cmd.name in rule.vms:
                rule.vms = [v for v in rule.vms if v != cmd.name]
                if len(rule.vms) < (1 if rule.kind is RuleKind.HOST else 2):
                    del self.rules[rule.name]  # nothing left to relate
        return Result(ok=True, version=self._bump())

    def _assign_vm(self, cmd: c.AssignVm) -> Result:
        vm = self._vm(cmd.name, cmd.expect_version)
        if isinstance(vm, Result):
            return vm
        host = self.hosts.get(cmd.host)
        if host is None or host.status is not HostStatus.UP:
            return _reject("conflict", f"host {cmd.host} is not up")
        if vm.host is not None and vm.host != cmd.host:
            return _reject("conflict", f"VM {vm.name} is already assigned to {vm.host}")
        vm.host = cmd.host
        vm.last_host = cmd.host
        vm.observed = Observed.NONE
        vm.pending_reasons = []
        vm.version = self._bump()
        recovery = self._incident_vm(vm.name)
        if recovery is not None and not recovery["placed_at"]:
            recovery["placed_at"], recovery["host"] = cmd.ts, cmd.host
        return Result(ok=True, version=vm.version)

    def _mark_pending(self, cmd: c.MarkPending) -> Result:
        vm = self._vm(cmd.name, cmd.expect_version)
        if isinstance(vm, Result):
            return vm
        if vm.host is not None:
            return _reject("conflict", f"VM {vm.name} is assigned to {vm.host}")
        vm.pending_reasons = [str(r) for r in cmd.reasons]
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _observe_vms(self, cmd: c.ObserveVms) -> Result:
        changed = 0
        for name, observed in sorted(cmd.observed.items()):
            vm = self.vms.get(name)
            # Only the assigned host's word counts; a report about a VM that moved is stale.
            if vm is None or vm.host != cmd.host:
                continue
            new = Observed(observed)
            if vm.observed is not new:
                # A fact, not a change of intent: the record's version stays, so agents'
                # reports and the leader's compare-and-set keep referring to the same record.
                vm.observed = new
                self._bump()
                changed += 1
                if new is Observed.RUNNING:
                    vm.running_since = cmd.ts
                    recovery = self._incident_vm(vm.name)
                    if recovery is not None and recovery["host"] == cmd.host:
                        recovery["running_at"] = cmd.ts
        return Result(ok=True, message=f"{changed} changed", version=self.revision)

    def _vm_failed(self, cmd: c.VmFailed) -> Result:
        vm = self._vm(cmd.name, cmd.expect_version)
        if isinstance(vm, Result):
            return vm
        if vm.host != cmd.host or not vm.wants_to_run or vm.observed not in (
                Observed.STOPPED, Observed.CRASHED):
            return _reject("conflict", f"VM {vm.name} is not failed on {cmd.host}")
        p = self.policy
        if vm.running_since and cmd.ts - vm.running_since >= p.failure_reset_after:
            vm.restarts = vm.relocations = 0  # it ran long enough: old failures are forgiven
        vm.running_since = 0.0
        vm.restarts += 1
        if vm.restarts <= p.max_restart:
            vm.observed = Observed.NONE  # its host's agent starts it again
            outcome = f"restart {vm.restarts}/{p.max_restart} on {cmd.host}"
        elif vm.relocations < p.max_relocate:
            vm.relocations += 1
            vm.restarts = 0
            vm.avoid_hosts = sorted(set(vm.avoid_hosts) | {cmd.host})
            vm.last_host, vm.host = cmd.host, None
            vm.observed = Observed.NONE
            outcome = f"relocate {vm.relocations}/{p.max_relocate} away from {cmd.host}"
        else:
            vm.error = (f"failed on {cmd.host} after {p.max_restart} restart(s) and "
                        f"{p.max_relocate} relocation(s); start or stop it to retry")
            outcome = "error"
        vm.version = self._bump()
        return Result(ok=True, message=outcome, version=vm.version)

    # ---- rules, maintenance, migration ----------------------------------------------------------

    def _create_rule(self, cmd: c.CreateRule) -> Result:
        try:
            rule = Rule(name=cmd.name, kind=RuleKind(cmd.kind), strength=Strength(cmd.strength),
                        vms=[str(v) for v in cmd.vms], hosts=[str(h) for h in cmd.hosts])
        except ValueError as exc:
            return _reject("invalid", f"kind must be affinity, anti-affinity or host and "
                           f"strength must or should ({exc})")
        errors = rule_errors(rule, self.rules, self.vms, self.hosts)
        if errors:
            code = "exists" if any("already exists" in e for e in errors) else "invalid"
            return _reject(code, "; ".join(errors))
        rule.version = self._bump()
        self.rules[rule.name] = rule
        return Result(ok=True, version=rule.version)

    def _delete_rule(self, cmd: c.DeleteRule) -> Result:
        if cmd.name not in self.rules:
            return _reject("not_found", f"rule {cmd.name} does not exist")
        del self.rules[cmd.name]
        return Result(ok=True, version=self._bump())

    def _set_maintenance(self, cmd: c.SetMaintenance) -> Result:
        host = self._host(cmd.name, None)
        if isinstance(host, Result):
            return host
        if host.maintenance is bool(cmd.on):
            return Result(ok=True, message="unchanged", version=host.version)
        host.maintenance = bool(cmd.on)
        host.version = self._bump()
        return Result(ok=True, version=host.version)

    def _request_migration(self, cmd: c.RequestMigration) -> Result:
        vm = self._vm(cmd.name, None)
        if isinstance(vm, Result):
            return vm
        if vm.host is None or not vm.wants_to_run:
            return _reject("conflict", f"VM {vm.name} is not running on a host")
        if vm.migrating_to is not None:
            return _reject("conflict", f"VM {vm.name} is already moving to {vm.migrating_to}")
        if cmd.to and cmd.to not in self.hosts:
            return _reject("not_found", f"host {cmd.to} does not exist")
        if cmd.to == vm.host:
            return _reject("invalid", f"VM {vm.name} already runs on {cmd.to}")
        vm.migration_requested, vm.migration_error = cmd.to, ""
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _set_migration(self, cmd: c.SetMigration) -> Result:
        vm = self._vm(cmd.name, cmd.expect_version)
        if isinstance(vm, Result):
            return vm
        if not cmd.to:  # refused, or cancelled
            vm.migrating_to, vm.migration_requested = None, None
            vm.migration_error = cmd.error
        else:
            target = self.hosts.get(cmd.to)
            if vm.host is None or vm.migrating_to is not None:
                return _reject("conflict", f"VM {vm.name} cannot start a move now")
            if target is None or target.status is not HostStatus.UP or cmd.to == vm.host:
                return _reject("conflict", f"host {cmd.to} cannot take {vm.name}")
            vm.migrating_to, vm.migration_requested, vm.migration_error = cmd.to, None, ""
        vm.version = self._bump()
        return Result(ok=True, version=vm.version)

    def _finish_migration(self, cmd: c.FinishMigration) -> Result:
        vm = self._vm(cmd.name, None)
        if isinstance(vm, Result):
            return vm
        if (vm.host, vm.migrating_to) != (cmd.source, cmd.to):
            return _reject("conflict", f"VM {vm.name} is not moving from {cmd.source} to "
                           f"{cmd.to}")
        vm.migrating_to = None
        if cmd.ok:
            vm.left = {h: t for h, t in vm.left.items() if cmd.ts - t < 86400}
            vm.left[cmd.source] = cmd.ts
            vm.host = vm.last_host = cmd.to
            vm.observed = Observed.RUNNING if cmd.mode == "live" else Observed.NONE
        else:
            vm.migration_error = cmd.error or "migration failed"
        vm.version = self._bump()
        return Result(ok=True, message=cmd.mode if cmd.ok else "failed", version=vm.version)

    def _set_policy(self, cmd: c.SetPolicy) -> Result:
        conflict = self._version_conflict("policy", "", self.policy.version, cmd.expect_version)
        if conflict:
            return conflict
        errors = []
        for key, value in sorted(cmd.changes.items()):
            limits = POLICY_LIMITS.get(key)
            if limits is None:
                errors.append(f"unknown policy setting {key!r} (known: "
                              f"{', '.join(sorted(POLICY_LIMITS))})")
            elif (isinstance(value, bool) or not isinstance(value, int | float)
                  or not limits[0] <= value <= limits[1]):
                errors.append(f"{key} must be a number in [{limits[0]:g}, {limits[1]:g}]")
        if not cmd.changes:
            errors.append("no policy setting given")
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
        # apply() already refused a term below leader_term. The same claim again is the
        # leader proving, by committing it, that it still has a majority (see LeaderLoop).
        if (cmd.term, cmd.leader) == (self.leader_term, self.leader):
            return Result(ok=True, message="renewed", version=self.revision)
        self.leader_term = cmd.term
        self.leader = cmd.leader
        return Result(ok=True, version=self._bump())

    # ---- snapshots (plain data; pysyncobj pickles only this dict) ------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "hosts": [h.to_dict() for h in self.hosts.values()],
            "vms": [v.to_dict() for v in self.vms.values()],
            "policy": self.policy.to_dict(),
            "revision": self.revision,
            "leader_term": self.leader_term,
            "leader": self.leader,
            "recent": [[k, r.to_dict()] for k, r in self.recent.items()],
            "incidents": [i.to_dict() for i in self.incidents],
            "rules": [r.to_dict() for r in self.rules.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterState:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise c.UnsupportedCommand(f"snapshot format {data.get('format')!r} is unknown")
        state = cls()
        state.hosts = {h["name"]: Host.from_dict(h) for h in data["hosts"]}
        state.vms = {v["name"]: Vm.from_dict(v) for v in data["vms"]}
        state.policy = Policy.from_dict(data["policy"])
        state.revision = data["revision"]
        state.leader_term = data["leader_term"]
        state.leader = data["leader"]
        state.recent = OrderedDict((k, Result(**r)) for k, r in data["recent"])
        state.incidents = [Incident.from_dict(i) for i in data.get("incidents", [])]
        state.rules = {r["name"]: Rule.from_dict(r) for r in data.get("rules", [])}
        return state

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(ClusterState.from_dict(data).__dict__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterState) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
