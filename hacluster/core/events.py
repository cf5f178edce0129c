"""Human-readable lines for applied commands: the cluster's event feed (`hactl events`).

Derived from the committed log, so every member tells the same story. A request from a
person or a tool says who made it and from where (the audit trail).
"""

from __future__ import annotations

from . import commands as c
from .state import ClusterState, Result


def describe(cmd: c.Command, result: Result, state: ClusterState) -> list[str]:
    lines = _describe(cmd, result, state)
    if cmd.actor and not cmd.LEADER_ONLY:
        lines = [f"{line} (by {cmd.actor} from {cmd.origin or '?'})" for line in lines]
    return lines


def _describe(cmd: c.Command, result: Result, state: ClusterState) -> list[str]:
    if not result.ok or result.message == "renewed":
        return []
    match cmd:
        case c.RegisterHost() if result.message != "unchanged":
            return [f"host {cmd.name} registered: {cmd.cpus} CPUs, {cmd.memory_mib} MiB, "
                    f"lease {cmd.lease:g}s, watchdog {cmd.watchdog:g}s"]
        case c.SetHostStatus():
            return [f"host {cmd.name} is {cmd.status}"]
        case c.FenceHost() | c.ConfirmFenced():
            by = cmd.by if isinstance(cmd, c.FenceHost) else "operator"
            moving = [v.name for v in state.vms.values() if v.last_host == cmd.name
                      and v.host is None and v.wants_to_run]
            return [f"host {cmd.name} fenced ({by}); HA VMs to restart elsewhere: "
                    f"{', '.join(sorted(moving)) or 'none'}"]
        case c.CreateUser():
            return [f"user {cmd.name} created: {cmd.role}"]
        case c.SetPassword():
            return [f"user {cmd.name}'s password set"]
        case c.DeleteUser():
            return [f"user {cmd.name} deleted"]
        case c.RaiseAlarm() if result.message != "unchanged":
            return [f"alarm {cmd.key} ({cmd.severity}): {cmd.message}"]
        case c.ClearAlarm():
            return [f"alarm {cmd.key} cleared"]
        case c.AckAlarm() if result.message != "unchanged":
            return [f"alarm {cmd.key} acknowledged"]
        case c.CreateVm():
            return [f"VM {cmd.name} created ({cmd.vcpus} vCPUs, {cmd.memory_mib} MiB, "
                    f"{cmd.state})"]
        case c.ResizeVm() if result.message != "unchanged":
            vm = state.vms.get(cmd.name)
            size = f"{vm.vcpus} vCPUs, {vm.memory_mib} MiB" if vm else "resized"
            return [f"VM {cmd.name} set to {size}"
                    f"{', from its next start' if vm and vm.restart_needed else ''}"]
        case c.ImportVm():
            return [f"VM {cmd.name} imported on {cmd.host}"
                    f"{' (HA)' if cmd.ha else ''}, {'running' if cmd.running else 'stopped'}"]
        case c.CreatePool():
            return [f"storage pool {cmd.name} created ({cmd.type}, "
                    f"{'shared' if cmd.shared else 'local'})"]
        case c.DeletePool():
            return [f"storage pool {cmd.name} deleted"]
        case c.CreateNetwork():
            return [f"network {cmd.name} created (bridge {cmd.bridge})"]
        case c.DeleteNetwork():
            return [f"network {cmd.name} deleted"]
        case c.SetVmState():
            return [f"VM {cmd.name} set to {cmd.state}"]
        case c.DeleteVm():
            return [f"VM {cmd.name} deleted"]
        case c.AssignVm():
            return [f"VM {cmd.name} placed on {cmd.host}"]
        case c.MarkPending():
            return [f"VM {cmd.name} pending: {'; '.join(cmd.reasons[:3])}"]
        case c.ObserveVms():
            return [f"VM {vm} {seen} on {cmd.host}" for vm, seen in sorted(cmd.observed.items())
                    if (v := state.vms.get(vm)) is not None and v.host == cmd.host]
        case c.VmFailed():
            return [f"VM {cmd.name} failed on {cmd.host}: {result.message}"]
        case c.SetPolicy():
            return ["policy: " + ", ".join(f"{k}={v:g}" for k, v in sorted(cmd.changes.items()))]
        case c.ClaimLeadership():
            return [f"{cmd.leader} leads (term {cmd.term})"]
        case c.CreateToken():
            until = f", expires {cmd.expires_at:.0f}" if cmd.expires_at else ""
            return [f"token {cmd.name} created: {cmd.role} for {cmd.owner}{until}"]
        case c.RevokeToken():
            return [f"token {cmd.name} revoked"]
        case c.SetDirectoryRoles():
            return ["directory roles: " + (", ".join(f"{g}={r}" for g, r in
                                                     sorted(cmd.roles.items())) or "none")]
        case c.SetMaintenance():
            return [f"host {cmd.name} maintenance {'on' if cmd.on else 'off'}"]
        case c.RequestMigration():
            return [f"VM {cmd.name} migration requested to {cmd.to or 'the best host'}"]
        case c.CreateRule():
            return [f"rule {cmd.name} created: {cmd.strength} {cmd.kind}"]
        case c.DeleteRule():
            return [f"rule {cmd.name} deleted"]
    return []
