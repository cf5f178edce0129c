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

from . import commands as c
from .model import Host, HostStatus, Observed, Policy, Vm, VmState
from .validate import host_capacity_errors, name_error, state_error, vm_spec_errors

RECENT_IDS = 10_000
"""How many command ids are remembered so that a retried command applies once."""

SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class Result:
    ok: bool
    code: str = "ok"  # ok | invalid | not_found | exists | conflict | stale_term
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

    def _vm(self, name: str) -> Vm | Result:
        vm = self.vms.get(name)
        return vm if vm is not None else _reject("not_found", f"VM {name} does not exist")

    # ---- hosts ---------------------------------------------------------------------------

    def _register_host(self, cmd: c.RegisterHost) -> Result:
        errors = [e for e in [name_error("host", cmd.name)] if e]
        errors += host_capacity_errors(cmd.cpus, cmd.memory_mib, cmd.disk_gib)
        if errors:
            return _reject("invalid", "; ".join(errors))
        host = self.hosts.get(cmd.name)
        spec = (cmd.raft_addr, cmd.api_addr, cmd.cpus, cmd.memory_mib, cmd.disk_gib)
        if host is not None and spec == (host.raft_addr, host.api_addr, host.cpus,
                                         host.memory_mib, host.disk_gib):
            return Result(ok=True, message="unchanged", version=host.version)
        version = self._bump()
        status = host.status if host is not None else HostStatus.UP
        self.hosts[cmd.name] = Host(cmd.name, *spec, status=status, version=version)
        return Result(ok=True, version=version)

    def _set_host_status(self, cmd: c.SetHostStatus) -> Result:
        host = self.hosts.get(cmd.name)
        if host is None:
            return _reject("not_found", f"host {cmd.name} does not exist")
        conflict = self._version_conflict("host", cmd.name, host.version, cmd.expect_version)
        if conflict:
            return conflict
        host.status = HostStatus(cmd.status)
        host.version = self._bump()
        return Result(ok=True, version=host.version)

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
        version = self._bump()
        self.vms[cmd.name] = Vm(
            name=cmd.name, uuid=cmd.uuid, vcpus=cmd.vcpus, memory_mib=cmd.memory_mib,
            disk_gib=cmd.disk_gib, state=VmState(cmd.state), ha=bool(cmd.ha),
            priority=cmd.priority, created_at=cmd.ts, version=version,
        )
        return Result(ok=True, version=version)

    def _set_vm_state(self, cmd: c.SetVmState) -> Result:
        error = state_error(cmd.state)
        if error:
            return _reject("invalid", error)
        vm = self._vm(cmd.name)
        if isinstance(vm, Result):
            return vm
        conflict = self._version_conflict("VM", vm.name, vm.version, cmd.expect_version)
        if conflict:
            return conflict
        state = VmState(cmd.state)
        if vm.state is state:
            return Result(ok=True, message=f"already {state.value}", version=vm.version)
        vm.state = state
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
        vm = self._vm(cmd.name)
        if isinstance(vm, Result):
            return vm
        conflict = self._version_conflict("VM", vm.name, vm.version, cmd.expect_version)
        if conflict:
            return conflict
        del self.vms[cmd.name]
        return Result(ok=True, version=self._bump())

    def _assign_vm(self, cmd: c.AssignVm) -> Result:
        vm = self._vm(cmd.name)
        if isinstance(vm, Result):
            return vm
        conflict = self._version_conflict("VM", vm.name, vm.version, cmd.expect_version)
        if conflict:
            return conflict
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
        return Result(ok=True, version=vm.version)

    def _mark_pending(self, cmd: c.MarkPending) -> Result:
        vm = self._vm(cmd.name)
        if isinstance(vm, Result):
            return vm
        conflict = self._version_conflict("VM", vm.name, vm.version, cmd.expect_version)
        if conflict:
            return conflict
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
                vm.observed = new
                vm.version = self._bump()
                changed += 1
        return Result(ok=True, message=f"{changed} changed", version=self.revision)

    def _claim_leadership(self, cmd: c.ClaimLeadership) -> Result:
        # apply() already refused a term below leader_term; an equal term is a retry.
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
        return state

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(ClusterState.from_dict(data).__dict__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterState) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
