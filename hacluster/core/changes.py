"""Which records an applied command changed, for live views (the web console's deltas): a view
shows a VM, a host, the cluster summary... and redraws only what a command touched, instead
of polling whole lists. Derived from the command and the state after it: pure."""

from __future__ import annotations

from . import commands as c
from .state import ClusterState, Result

Key = tuple[str, str]  # (kind, name): vm NAME, host NAME, or a whole view: status, incidents...
STATUS: Key = ("status", "")
INCIDENTS: Key = ("incidents", "")


def touched(cmd: c.Command, result: Result, state: ClusterState) -> set[Key]:
    if not result.ok or result.message in ("renewed", "unchanged"):
        return set()
    if isinstance(cmd, c.Batch):
        keys: set[Key] = set()
        for sub, res in zip(cmd.commands, result.parts, strict=False):
            keys |= touched(sub, res, state)
        return keys
    keys = {STATUS}
    match cmd:
        case c.RegisterHost() | c.SetHostStatus() | c.SetMaintenance():
            keys |= _host_and_its_vms(cmd.name, state) | {INCIDENTS}
        case c.FenceHost() | c.ConfirmFenced():
            keys |= _host_and_its_vms(cmd.name, state) | {INCIDENTS}
            keys |= {("vm", v.name) for v in state.vms.values() if v.last_host == cmd.name}
        case c.ObserveVms():
            keys |= {("vm", name) for name in cmd.observed} | {("host", cmd.host), INCIDENTS}
        case c.CreateVm() | c.SetVmState() | c.DeleteVm() | c.AssignVm() | c.MarkPending() \
                | c.VmFailed() | c.RequestMigration() | c.SetMigration() | c.FinishMigration() \
                | c.ImportVm() | c.ResizeVm():
            keys.add(("vm", cmd.name))
            vm = state.vms.get(cmd.name)
            hosts = {vm.host, vm.last_host, vm.migrating_to} if vm else set()
            hosts |= {getattr(cmd, "host", None), getattr(cmd, "source", None),
                      getattr(cmd, "to", None)}
            keys |= {("host", h) for h in hosts if h and h in state.hosts}
            if isinstance(cmd, c.AssignVm | c.VmFailed):
                keys.add(INCIDENTS)
        case c.SetPolicy():
            keys |= {("policy", "")} | {("host", h) for h in state.hosts}
        case c.CreateRule() | c.DeleteRule():
            keys.add(("rules", ""))
        case c.CreatePool() | c.DeletePool() | c.ObserveHostFacts() | c.CreateNetwork() \
                | c.DeleteNetwork():
            keys.add(("storage", ""))
        case c.CreateToken() | c.RevokeToken():
            keys.add(("tokens", ""))
        case c.CreateUser() | c.SetPassword() | c.DeleteUser():
            keys |= {("users", ""), ("tokens", "")}
        case c.SetDirectoryRoles():
            keys.add(("directory", ""))
        case c.RaiseAlarm() | c.ClearAlarm() | c.AckAlarm():
            keys.add(("alarms", ""))
    return keys


def _host_and_its_vms(host: str, state: ClusterState) -> set[Key]:
    return {("host", host)} | {("vm", v.name) for v in state.vms.values() if v.host == host}
