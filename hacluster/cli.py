"""hactl: the command-line client (and the local lab's controls).

Tables for people, `--output json` for scripts (keys documented in the README). Any error is
one line on stderr and a non-zero exit: 1 for a refused or failed request (including
`unauthenticated` and `permission denied`), 2 for bad usage.

Credentials: the cluster CA from --ca or HACTL_CA; a token from --token, HACTL_TOKEN, or the
file ~/.config/hacluster/token (mode 0600; `hactl login` writes it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import click

from . import certs
from .attach import attach
from .client import Client, ClientError
from .lab import cluster as lab_mod
from .lab import grow as lab_grow
from .lab.netfault import NetFaultError
from .lab.qemu import QemuLabError

COLUMNS = {
    "vm": ["name", "status", "host", "state", "vcpus", "memory_mib", "disk_gib", "ha",
           "priority"],
    "host": ["name", "status", "vms", "cpus", "vcpus_allocated", "memory_mib",
             "memory_free_mib", "cpu_load", "last_heard_ago"],
    "member": ["name", "api_addr", "raft_addr", "leader", "voter", "connected", "version"],
    "lab": ["name", "api", "web", "libvirtd", "keeper", "watchdog", "haclusterd"],
    "incident": ["id", "host", "open", "fenced_by", "seconds_to_fenced",
                 "seconds_to_all_running", "vms"],
    "rule": ["name", "kind", "strength", "vms", "hosts"],
    "pool": ["name", "type", "shared", "capacity_gib", "free_gib", "allocated_gib", "hosts"],
    "network": ["name", "bridge", "hosts", "vms"],
    "verdict": ["host", "eligible", "score", "reason"],
    "move": ["vm", "source", "target", "gain"],
    "what-if": ["name", "target", "reason"],
    "alarm": ["key", "severity", "active", "acked_by", "message"],
}


def _cell(value: Any) -> str:
    if value is None or value == {}:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(map(str, value)) if all(isinstance(v, str) for v in value) and \
            len(value) <= 4 else str(len(value))
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[c.upper() for c in columns]] + [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def details(record: dict[str, Any]) -> str:
    lines = []
    for key, value in record.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{key}:")
            lines += [f"    {' '.join(f'{k}={_cell(v)}' for k, v in item.items())}"
                      for item in value]
        elif isinstance(value, list):
            shown = ", ".join(str(v) for v in value) if value else "-"
            if key == "pending_reasons" and value:
                shown = "\n" + "\n".join(f"    {v}" for v in value)
            lines.append(f"{key}: {shown}")
        else:
            lines.append(f"{key}: {_cell(value)}")
    return "\n".join(lines)


TOKEN_FILE = os.path.join(os.path.expanduser("~"), ".config", "hacluster", "token")


class Ctx:
    def __init__(self, endpoints: str | None, output: str, timeout: float, ca: str | None,
                 token: str | None) -> None:
        self.endpoints = endpoints
        self.output = output
        self.timeout = timeout
        self.ca = ca
        self.token = token

    def _ca(self) -> bytes:
        path = self.ca or os.environ.get("HACTL_CA", "")
        if not path:
            raise ClientError("no CA certificate to check the members with: use --ca FILE or "
                              "HACTL_CA (the cluster's ca.pem)")
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise ClientError(f"--ca {path}: {exc.strerror}") from exc

    def _token(self) -> str | None:
        token = self.token or os.environ.get("HACTL_TOKEN", "")
        if token:
            return token
        if not os.path.exists(TOKEN_FILE):
            return None
        if (why := certs.private_file_error(TOKEN_FILE, "token file")) is not None \
                or os.stat(TOKEN_FILE).st_mode & 0o077:
            raise ClientError(why or f"token file {TOKEN_FILE} must be mode 0600")
        with open(TOKEN_FILE) as f:
            return f.read().strip() or None

    def client(self, anonymous: bool = False) -> Client:
        raw = self.endpoints or os.environ.get("HACTL_ENDPOINTS", "")
        return Client([e.strip() for e in raw.split(",") if e.strip()], timeout=self.timeout,
                      ca=self._ca(), token=None if anonymous else self._token())

    def emit(self, data: Any, render: Callable[[Any], str]) -> None:
        if self.output == "json":
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            click.echo(render(data))


@contextmanager
def errors() -> Iterator[None]:
    """Every failure a user can cause becomes one line on stderr and exit status 1."""
    try:
        yield
    except (ClientError, lab_mod.LabError, NetFaultError, QemuLabError, certs.CertError) as exc:
        click.echo(f"hactl: {exc}", err=True)
        sys.exit(1)


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--endpoints", "-e", metavar="HOST:PORT,...",
              help="Members' gRPC addresses, tried in turn [env: HACTL_ENDPOINTS].")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for each member.")
@click.option("--ca", metavar="FILE", help="The cluster CA certificate [env: HACTL_CA].")
@click.option("--token", metavar="TOKEN", help="An API token [env: HACTL_TOKEN; else the "
              "file ~/.config/hacluster/token].")
@click.pass_context
def main(ctx: click.Context, endpoints: str | None, output: str, timeout: float,
         ca: str | None, token: str | None) -> None:
    """Control an hacluster cluster: hosts, VMs, and a local lab."""
    ctx.obj = Ctx(endpoints, output, timeout, ca, token)


# ---- cluster -----------------------------------------------------------------------------------


@main.group()
def cluster() -> None:
    """The cluster as a whole."""


@cluster.command("status")
@pass_ctx
def cluster_status(ctx: Ctx) -> None:
    """Leader, term, quorum and members, as the first reachable member sees them."""
    with errors():
        status = ctx.client().status()

    def render(s: dict[str, Any]) -> str:
        head = (f"leader: {s['leader'] or '(none)'}  term: {s['term']}  "
                f"quorum: {'yes' if s['quorum'] else 'NO'}  answered by: {s['self']}\n"
                f"hosts up: {s['hosts_up']}  VMs: {s['vms']} ({s['vms_running']} running)  "
                f"commit index: {s['commit_index']}  snapshot at: {s['snapshot_index']} "
                f"(+{s['log_entries']} entries)  cluster version: {s['cluster_version']}")
        if s["halted"]:
            head += f"\nHALTED: {s['halted']}"
        return head + "\n\n" + table(s["members"], COLUMNS["member"])

    ctx.emit(status, render)


# ---- hosts -------------------------------------------------------------------------------------


@main.group()
def host() -> None:
    """Hypervisor hosts."""


@host.command("list")
@pass_ctx
def host_list(ctx: Ctx) -> None:
    with errors():
        hosts = ctx.client().list_hosts()
    ctx.emit(hosts, lambda rows: table(rows, COLUMNS["host"]))


@host.command("show")
@click.argument("name")
@pass_ctx
def host_show(ctx: Ctx, name: str) -> None:
    with errors():
        record = ctx.client().get_host(name)
    ctx.emit(record, details)


# ---- VMs ---------------------------------------------------------------------------------------


@main.group()
def vm() -> None:
    """Virtual machines."""


@vm.command("create")
@click.argument("name")
@click.option("--vcpus", type=int, required=True)
@click.option("--memory", "memory_mib", type=int, required=True, metavar="MIB")
@click.option("--disk", "disks", multiple=True, metavar="POOL:GIB|GIB",
              help="A new volume of GIB in storage pool POOL (repeat for more disks, vda "
              "first); a bare GIB only counts host disk space for placement.")
@click.option("--image", metavar="POOL/VOLUME[:GIB]",
              help="The boot disk as a copy-on-write clone of this base volume (default "
              "10 GiB).")
@click.option("--net", "nets", multiple=True, metavar="NETWORK",
              help="A NIC on this network (repeat for more, in order).")
@click.option("--ha/--no-ha", default=True, show_default=True,
              help="Restart it elsewhere if its host fails.")
@click.option("--priority", type=int, default=0, show_default=True,
              help="Higher starts first (0-1000).")
@click.option("--stopped", is_flag=True, help="Create without starting it.")
@click.option("--cpu", type=click.Choice(["baseline", "host-passthrough"]), default="baseline",
              show_default=True, help="baseline: the CPU every host can offer (it migrates "
              "anywhere); host-passthrough: the host's own, kept on identical hosts.")
@pass_ctx
def vm_create(ctx: Ctx, name: str, vcpus: int, memory_mib: int, disks: tuple[str, ...],
              image: str | None, nets: tuple[str, ...], ha: bool, priority: int,
              stopped: bool, cpu: str) -> None:
    """Create a VM; the leader places it on the best host that fits."""
    disk_gib, volumes = _disk_options(disks, image)
    with errors():
        record = ctx.client().create_vm(name, vcpus, memory_mib, disk_gib, ha, priority,
                                        stopped, volumes, nets, cpu)
    ctx.emit(record, details)


def _gib(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{what}: {text!r} is not a whole number of GiB") from None


def _disk_options(disks: Sequence[str], image: str | None
                  ) -> tuple[int, list[tuple[str, int, str]]]:
    """--disk and --image as (host disk GiB, volumes); the pools themselves are checked by
    the cluster."""
    disk_gib, volumes = 0, []
    if image:
        base, _, size = image.partition(":")
        pool, slash, volume = base.partition("/")
        if not slash or not pool or not volume:
            raise click.BadParameter(f"{image!r} is not POOL/VOLUME[:GIB]", param_hint="--image")
        volumes.append((pool, _gib(size, "--image") if size else 10, base))
    for spec in disks:
        pool, colon, size = spec.rpartition(":")
        if not colon:
            disk_gib += _gib(spec, "--disk")
        elif not pool:
            raise click.BadParameter(f"{spec!r} is not POOL:GIB", param_hint="--disk")
        else:
            volumes.append((pool, _gib(size, "--disk"), ""))
    return disk_gib, volumes


@vm.command("list")
@pass_ctx
def vm_list(ctx: Ctx) -> None:
    with errors():
        vms = ctx.client().list_vms()
    # the table's DISK_GIB counts the VM's volumes too (JSON keeps both apart: `disk_gib`
    # for host disk space, `disks` for volumes)
    ctx.emit(vms, lambda rows: table([{**r, "disk_gib": r["disk_gib"] + sum(
        d["size_gib"] for d in r["disks"])} for r in rows], COLUMNS["vm"]))


@vm.command("show")
@click.argument("name")
@pass_ctx
def vm_show(ctx: Ctx, name: str) -> None:
    """A VM, with why it is pending if no host fits."""
    with errors():
        record = ctx.client().get_vm(name)
    ctx.emit(record, details)


def _vm_action(verb: str, call: Callable[[Client, str], Any]) -> click.Command:
    @click.argument("name")
    @pass_ctx
    def command(ctx: Ctx, name: str) -> None:
        with errors():
            record = call(ctx.client(), name)
        if record is None:
            record = {"name": name, "deleted": True}
        ctx.emit(record, details)

    command.__doc__ = f"{verb.capitalize()} a VM."
    return vm.command(verb)(command)


_vm_action("start", Client.start_vm)
_vm_action("stop", Client.stop_vm)
_vm_action("disable", lambda client, name: client.set_vm_state(name, "disabled"))
_vm_action("ignore", lambda client, name: client.set_vm_state(name, "ignored"))


@vm.command("set")
@click.argument("name")
@click.option("--vcpus", type=int)
@click.option("--memory", "memory_mib", type=int, metavar="MIB")
@pass_ctx
def vm_set(ctx: Ctx, name: str, vcpus: int | None, memory_mib: int | None) -> None:
    """Resize a VM: checked against its host now, taken at its next start (a running VM
    shows restart_needed until then)."""
    if vcpus is None and memory_mib is None:
        raise click.UsageError("give --vcpus, --memory or both")
    with errors():
        record = ctx.client().resize_vm(name, vcpus, memory_mib)
    ctx.emit(record, details)


@vm.command("import")
@click.argument("name")
@click.option("--host", required=True, help="The host whose libvirt defines the domain.")
@click.option("--ha/--no-ha", default=False, show_default=True,
              help="Restart it elsewhere if its host fails (its disks must be on shared "
              "pools, its bridges cluster networks).")
@pass_ctx
def vm_import(ctx: Ctx, name: str, host: str, ha: bool) -> None:
    """Adopt domain NAME, already defined in HOST's libvirt, as it is: its definition is
    kept, its resources counted, nothing is restarted."""
    with errors():
        record = ctx.client().import_vm(name, host, ha)
    ctx.emit(record, details)


@vm.command("console")
@click.argument("name")
@click.option("--tail", "tail", type=click.IntRange(0, 10_000), default=None, metavar="N",
              help="Print its last N lines and exit.")
@pass_ctx
def vm_console(ctx: Ctx, name: str, tail: int | None) -> None:
    """The VM's serial console, wherever it runs (through the members: no libvirt access
    needed). Without --tail: its last 20 lines, then what it prints, while each line read
    from stdin is typed into it (line mode; Ctrl-C leaves; at the end of piped input it
    leaves 2 seconds later)."""
    with errors():
        client = ctx.client()
        if tail is not None:
            ctx.emit(client.console(name, tail_lines=tail), lambda r: r["text"].rstrip("\n"))
            return
        with suppress(KeyboardInterrupt):
            attach(client, name)


@vm.command("delete")
@click.argument("name")
@click.option("--delete-disks", is_flag=True,
              help="Delete its volumes too (the host that last had it does it); kept "
              "otherwise.")
@pass_ctx
def vm_delete(ctx: Ctx, name: str, delete_disks: bool) -> None:
    """Delete a VM: its host stops and undefines it."""
    with errors():
        ctx.client().delete_vm(name, delete_disks)
    ctx.emit({"name": name, "deleted": True}, details)


@host.command("add")
@click.argument("name")
@click.option("--raft", required=True, metavar="IP:PORT", help="Its Raft address.")
@click.option("--api", required=True, metavar="IP:PORT", help="Its API address.")
@click.option("--peer", default="", metavar="IP:PORT", help="Its member port [API port + 2].")
@click.option("--web", default="", metavar="IP:PORT", help="Its web console [API port + 1].")
@pass_ctx
def host_add(ctx: Ctx, name: str, raft: str, api: str, peer: str, web: str) -> None:
    """Make NAME a member (admin), then start its haclusterd with a join configuration.

    The new host catches up from the leader, registers and takes VMs (README: Growing and
    shrinking the cluster)."""
    with errors():
        record = ctx.client().add_member(name, raft, api, peer, web)
    ctx.emit(record, details)


@host.command("remove")
@click.argument("name")
@pass_ctx
def host_remove(ctx: Ctx, name: str) -> None:
    """Take member NAME out of the cluster (admin): only an empty host in maintenance, or a
    fenced one. Stop its haclusterd afterwards."""
    with errors():
        record = ctx.client().remove_member(name)
    ctx.emit(record, details)


@host.command("confirm-fenced")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def host_confirm_fenced(ctx: Ctx, name: str, yes: bool) -> None:
    """Vouch that down host NAME is powered off, so its HA VMs restart elsewhere now.

    For hosts without a watchdog or fence agent. If the host is in fact still running its
    VMs, they will run twice: check it is off first (its power, its console)."""
    if not yes:
        click.confirm(f"Is {name} really powered off?", abort=True)
    with errors():
        record = ctx.client().confirm_fenced(name)
    ctx.emit(record, details)


@vm.command("migrate")
@click.argument("name")
@click.option("--to", "target", default="", help="The host (default: the best that fits).")
@click.option("--wait", is_flag=True, help="Wait until it runs on its new host.")
@click.option("--wait-timeout", type=float, default=300, show_default=True)
@pass_ctx
def vm_migrate(ctx: Ctx, name: str, target: str, wait: bool, wait_timeout: float) -> None:
    """Live-migrate a VM (libvirt's test driver hands it over cold instead)."""
    with errors():
        client = ctx.client()
        before = client.migrate_vm(name, target)
        record = before
        deadline = time.monotonic() + wait_timeout
        while wait:
            record = client.get_vm(name)
            if record["migration_error"]:
                raise ClientError(f"{name} did not move: {record['migration_error']}")
            moved = record["host"] != before["host"] and record["status"] == "running"
            if moved and not record["migrating_to"]:
                break
            if time.monotonic() > deadline:
                raise ClientError(f"{name} has not moved after {wait_timeout:g}s")
            time.sleep(0.2)
    ctx.emit(record, details)


@vm.command("explain")
@click.argument("name")
@pass_ctx
def vm_explain(ctx: Ctx, name: str) -> None:
    """Every host's verdict for this VM: the filter that removed it, or its score."""
    with errors():
        record = ctx.client().explain_vm(name)
    ctx.emit(record, lambda r: f"placement would choose: {r['choice'] or 'no host'}\n\n"
             + table(r["hosts"], COLUMNS["verdict"]))


@host.command("what-if")
@click.argument("name")
@click.option("--maintenance", is_flag=True,
              help="If NAME entered maintenance now (default: if it failed now).")
@pass_ctx
def host_what_if(ctx: Ctx, name: str, maintenance: bool) -> None:
    """Where each of NAME's VMs would go if NAME failed (or entered maintenance) now, or why
    it would be stranded: the leader's own placement, run on a copy of the state."""
    with errors():
        record = ctx.client().what_if(name, maintenance)

    def render(r: dict[str, Any]) -> str:
        event = "entered maintenance" if r["maintenance"] else "failed"
        if not r["vms"]:
            return f"{r['host']} runs no VMs: nothing would move if it {event}"
        stranded = sum(1 for v in r["vms"] if v["target"] is None)
        return (f"if {r['host']} {event} now ({len(r['vms'])} VMs, {stranded} without a "
                f"host):\n\n" + table(r["vms"], COLUMNS["what-if"]))
    ctx.emit(record, render)


@host.group("maintenance")
def maintenance() -> None:
    """Empty a host for maintenance (live migration), and return it to service."""


@maintenance.command("enter")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Show progress until every VM has moved.")
@click.option("--wait-timeout", type=float, default=600, show_default=True)
@pass_ctx
def maintenance_enter(ctx: Ctx, name: str, wait: bool, wait_timeout: float) -> None:
    """No new VMs on NAME; its VMs move to other hosts, spread by placement. A VM that
    cannot move is reported (it keeps running where it is)."""
    with errors():
        client = ctx.client()
        record = client.set_maintenance(name, True)
        if wait:
            _wait_evacuated(client, name, wait_timeout)
            record = client.get_host(name)
    ctx.emit(record, details)


def _wait_evacuated(client: Client, host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    said: dict[str, str] = {}
    while True:
        staying = [v for v in client.list_vms() if v["host"] == host
                   and v["state"] == "started" and not v["error"]]
        for v in client.list_vms():
            line = (f"{v['name']}: moving to {v['migrating_to']}" if v["migrating_to"]
                    else f"{v['name']}: cannot move: {v['migration_error']}"
                    if v["host"] == host and v["migration_error"]
                    else f"{v['name']}: now on {v['host']}" if v["name"] in said else "")
            if line and said.get(v["name"]) != line:
                click.echo(line, err=True)
                said[v["name"]] = line
        if not staying:
            click.echo(f"{host} is empty", err=True)
            return
        if all(v["migration_error"] and not v["migrating_to"] for v in staying):
            raise ClientError(f"{len(staying)} VM(s) cannot leave {host}: "
                              + "; ".join(f"{v['name']}: {v['migration_error']}"
                                          for v in staying))
        if time.monotonic() > deadline:
            raise ClientError(f"{host} still runs {len(staying)} VM(s) after {timeout:g}s")
        time.sleep(0.3)


@maintenance.command("exit")
@click.argument("name")
@pass_ctx
def maintenance_exit(ctx: Ctx, name: str) -> None:
    """Return NAME to service (VMs that left stay where they are until balancing moves
    them)."""
    with errors():
        record = ctx.client().set_maintenance(name, False)
    ctx.emit(record, details)


# ---- balancing ---------------------------------------------------------------------------------


@main.group()
def balance() -> None:
    """Even out the load across hosts by live migration (like DRS). The policy's
    balance_mode says whether the leader also does it by itself every balance_interval:
    0 off, 1 manual (default), 2 automatic."""


def _render_balance(r: dict[str, Any]) -> str:
    head = (f"load imbalance (std deviation): {r['imbalance']:.4f} -> "
            f"{r['imbalance_after']:.4f}" + (" (requested)" if r["applied"] else ""))
    if not r["moves"]:
        return head + "\nnothing worth moving"
    return head + "\n\n" + table(r["moves"], COLUMNS["move"])


@balance.command("plan")
@pass_ctx
def balance_plan(ctx: Ctx) -> None:
    """The moves a pass would make now, with the expected gain of each."""
    with errors():
        record = ctx.client().balance(apply=False)
    ctx.emit(record, _render_balance)


@balance.command("run")
@click.option("--dry-run", is_flag=True, help="Only show the moves (as `balance plan`).")
@pass_ctx
def balance_run(ctx: Ctx, dry_run: bool) -> None:
    """Run a pass now: request its moves (the leader starts them within the limits)."""
    with errors():
        record = ctx.client().balance(apply=not dry_run)
    ctx.emit(record, _render_balance)


# ---- rules -------------------------------------------------------------------------------------


@main.group()
def rule() -> None:
    """Placement rules: VMs together (affinity), apart (anti-affinity), or on given hosts."""


@rule.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["affinity", "anti-affinity", "host"]), required=True)
@click.option("--strength", type=click.Choice(["must", "should"]), default="must",
              show_default=True)
@click.option("--vm", "vms", multiple=True, required=True, help="Repeat for each VM.")
@click.option("--host", "hosts", multiple=True, help="For --kind host; repeat for each host.")
@pass_ctx
def rule_create(ctx: Ctx, name: str, kind: str, strength: str, vms: tuple[str, ...],
                hosts: tuple[str, ...]) -> None:
    """A rule that contradicts the must rules already there is refused, with the reason."""
    with errors():
        record = ctx.client().create_rule(name, kind, strength, vms, hosts)
    ctx.emit(record, details)


@rule.command("list")
@pass_ctx
def rule_list(ctx: Ctx) -> None:
    with errors():
        rows = ctx.client().list_rules()
    ctx.emit(rows, lambda r: table(r, COLUMNS["rule"]))


@rule.command("delete")
@click.argument("name")
@pass_ctx
def rule_delete(ctx: Ctx, name: str) -> None:
    with errors():
        ctx.client().delete_rule(name)
    ctx.emit({"name": name, "deleted": True}, details)


# ---- storage and networks -----------------------------------------------------------------------


@main.group()
def storage() -> None:
    """Storage pools every host defines in its libvirt; VMs' disks are volumes in them."""


@storage.command("create")
@click.argument("name")
@click.option("--type", "type_", type=click.Choice(["dir", "netfs", "logical", "rbd"]),
              required=True)
@click.option("--path", default="", help="dir, netfs: where the volumes are on each host.")
@click.option("--source-host", default="", help="netfs: the NFS server; rbd: a Ceph monitor.")
@click.option("--source-path", default="",
              help="netfs: the export; logical: the volume group; rbd: the Ceph pool.")
@click.option("--shared/--local", default=True, show_default=True,
              help="Every host sees the same volumes (needed for HA VMs' disks).")
@pass_ctx
def storage_create(ctx: Ctx, name: str, type_: str, path: str, source_host: str,
                   source_path: str, shared: bool) -> None:
    """Every host's agent defines and starts the pool, then reports what it sees."""
    with errors():
        record = ctx.client().create_pool(name, type_, shared, path, source_host, source_path)
    ctx.emit(record, details)


@storage.command("list")
@pass_ctx
def storage_list(ctx: Ctx) -> None:
    """Per pool: type, capacity and free space as the hosts report, which hosts see it."""
    with errors():
        rows = ctx.client().list_pools()
    ctx.emit(rows, lambda r: table(r, COLUMNS["pool"]))


@storage.command("delete")
@click.argument("name")
@pass_ctx
def storage_delete(ctx: Ctx, name: str) -> None:
    """Refused while a VM has a disk in it. Hosts drop the pool from libvirt; the volumes
    and files on the storage are left as they are."""
    with errors():
        ctx.client().delete_pool(name)
    ctx.emit({"name": name, "deleted": True}, details)


@main.group()
def network() -> None:
    """Networks VMs attach to: a Linux bridge of the same name on the hosts that offer it."""


@network.command("create")
@click.argument("name")
@click.option("--bridge", required=True, help="The bridge's name on each host, e.g. br0.")
@pass_ctx
def network_create(ctx: Ctx, name: str, bridge: str) -> None:
    """Hosts report whether they have the bridge; placement uses only those that do."""
    with errors():
        record = ctx.client().create_network(name, bridge)
    ctx.emit(record, details)


@network.command("list")
@pass_ctx
def network_list(ctx: Ctx) -> None:
    with errors():
        rows = ctx.client().list_networks()
    ctx.emit(rows, lambda r: table(r, COLUMNS["network"]))


@network.command("delete")
@click.argument("name")
@pass_ctx
def network_delete(ctx: Ctx, name: str) -> None:
    """Refused while a VM has a NIC on it."""
    with errors():
        ctx.client().delete_network(name)
    ctx.emit({"name": name, "deleted": True}, details)


# ---- failover: incidents and events --------------------------------------------------------------


@main.group()
def incident() -> None:
    """Host failures: from last heartbeat to every HA VM running elsewhere."""


@incident.command("list")
@pass_ctx
def incident_list(ctx: Ctx) -> None:
    with errors():
        rows = ctx.client().incidents()
    ctx.emit(rows, lambda r: table(r, COLUMNS["incident"]))


def render_incident(i: dict[str, Any]) -> str:
    def at(ts: float | None) -> str:
        if ts is None:
            return "-"
        base = i["last_heard"] or i["declared_at"]
        return f"{time.strftime('%H:%M:%S', time.localtime(ts))}.{int(ts % 1 * 1000):03d}" \
            f" (+{ts - base:.2f}s)"

    lines = [f"incident {i['id']}: host {i['host']} ({'open' if i['open'] else 'closed'})",
             f"  last heard   {at(i['last_heard'])}",
             f"  declared down {at(i['declared_at'])}",
             f"  fenced       {at(i['fenced_at'])} by {i['fenced_by'] or '-'}"]
    if i["returned_at"]:
        lines.append(f"  host back    {at(i['returned_at'])}")
    for v in i["vms"]:
        lines.append(f"  VM {v['name']}: placed on {v['host'] or '-'} {at(v['placed_at'])}, "
                     f"running {at(v['running_at'])}")
    return "\n".join(lines)


@incident.command("show")
@click.argument("incident_id", type=int, metavar="ID")
@pass_ctx
def incident_show(ctx: Ctx, incident_id: int) -> None:
    with errors():
        record = ctx.client().incident(incident_id)
    ctx.emit(record, render_incident)


@main.group()
def alarm() -> None:
    """Conditions that need an operator: hosts down, VMs in error, hosts over their CPU or
    memory thresholds (policy alarm_*), members falling behind, too little room to survive
    a host failure, and each member's own (quorum lost, disk full)."""


@alarm.command("list")
@click.option("--all", "all_", is_flag=True, help="Cleared alarms too (the newest kept).")
@pass_ctx
def alarm_list(ctx: Ctx, all_: bool) -> None:
    with errors():
        rows = ctx.client().alarms(all_)
    ctx.emit(rows, lambda r: table(r, COLUMNS["alarm"]) if r else "no alarms")


@alarm.command("ack")
@click.argument("key")
@pass_ctx
def alarm_ack(ctx: Ctx, key: str) -> None:
    """Acknowledge alarm KEY (it stays listed until its condition clears)."""
    with errors():
        record = ctx.client().ack_alarm(key)
    ctx.emit(record, details)


@main.command("events")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events.")
@click.option("--backlog", type=int, default=20, show_default=True,
              help="How many past events to start with.")
@pass_ctx
def events(ctx: Ctx, follow: bool, backlog: int) -> None:
    """The cluster's event feed: hosts down and fenced, VMs placed, running, failed..."""
    if backlog < 0:
        raise click.BadParameter("must be >= 0", param_hint="--backlog")
    with errors():
        for event in ctx.client().events(backlog, follow):
            if ctx.output == "json":
                click.echo(json.dumps(event, sort_keys=True), nl=True)
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(event["ts"]))
                click.echo(f"{stamp}.{int(event['ts'] % 1 * 1000):03d} {event['message']}")


# ---- policy ------------------------------------------------------------------------------------


@cluster.group("policy")
def policy() -> None:
    """Cluster-wide placement and HA policy (replicated)."""


@policy.command("show")
@pass_ctx
def policy_show(ctx: Ctx) -> None:
    with errors():
        record = ctx.client().get_policy()
    ctx.emit(record, details)


@policy.command("set")
@click.argument("settings", nargs=-1, required=True, metavar="KEY=VALUE...")
@pass_ctx
def policy_set(ctx: Ctx, settings: tuple[str, ...]) -> None:
    """E.g. `hactl cluster policy set max_restart=2 admission_control=1`."""
    changes: dict[str, float] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        try:
            changes[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=NUMBER", param_hint="KEY=VALUE")
    with errors():
        record = ctx.client().set_policy(changes)
    ctx.emit(record, details)


# ---- credentials: certificates, tokens, logins --------------------------------------------------


@main.group()
def cert() -> None:
    """The cluster CA and member certificates (README: Deploying)."""


CERT_DIR = click.option("--dir", "cert_dir", required=True, type=click.Path(file_okay=False),
                        help="Where the CA and certificates live (keys are written 0600).")


@cert.command("init")
@CERT_DIR
def cert_init(cert_dir: str) -> None:
    """Create the cluster CA (ca.pem, ca.key) and a bootstrap admin token (admin.token; its
    hash, admin.token.sha256, goes into every member's [tls] admin_token_sha256_file)."""
    with errors():
        ca, key, _token = certs.init(cert_dir)
    click.echo(f"CA: {ca} (key {key}, keep it off the members)\n"
               f"bootstrap admin token: {Path(cert_dir) / 'admin.token'}")


@cert.command("issue")
@click.argument("name")
@CERT_DIR
@click.option("--addr", "addresses", multiple=True, required=True, metavar="IP|DNS",
              help="An address the member is reached at (repeat): its Raft, API and member "
                   "ports' hosts.")
def cert_issue(name: str, cert_dir: str, addresses: tuple[str, ...]) -> None:
    """Issue NAME.pem and NAME.key for member NAME, signed by the CA in --dir."""
    with errors():
        pem, key = certs.issue(cert_dir, name, list(addresses))
    click.echo(f"{pem}\n{key}")


@main.group()
def token() -> None:
    """API tokens: viewer (read, watch), operator (VMs, migration, maintenance, balancing),
    admin (policy, rules, fencing, tokens, the directory)."""


TOKEN_COLUMNS = ["name", "role", "owner", "created_at", "expires_at"]


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
@click.option("--ttl", default="0", show_default=True, metavar="DURATION",
              help="How long it lasts: 90s, 30m, 12h, 7d, 1y; 0 = until revoked.")
@click.option("--owner", default="", help="Who it is for (default: you).")
@pass_ctx
def token_create(ctx: Ctx, name: str, role: str, ttl: str, owner: str) -> None:
    """Create a token; it is printed once (JSON key `token`) and never again."""
    seconds = duration(ttl)
    with errors():
        record = ctx.client().create_token(name, role, seconds, owner)
    ctx.emit(record, lambda r: f"{r['token']}\n(token {r['name']}, {r['role']}; shown once: "
             "keep it now)")


@token.command("list")
@pass_ctx
def token_list(ctx: Ctx) -> None:
    with errors():
        rows = ctx.client().list_tokens()
    ctx.emit(rows, lambda r: table(r, TOKEN_COLUMNS))


@token.command("revoke")
@click.argument("name")
@pass_ctx
def token_revoke(ctx: Ctx, name: str) -> None:
    """It stops working on every member within a second, streams included."""
    with errors():
        ctx.client().revoke_token(name)
    ctx.emit({"name": name, "revoked": True}, details)


def duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 12h, 7d",
                                 param_hint="--ttl") from None
    if value < 0:
        raise click.BadParameter("must not be negative", param_hint="--ttl")
    return value


@main.command("whoami")
@pass_ctx
def whoami(ctx: Ctx) -> None:
    """Who your credentials say you are, as the cluster sees it."""
    with errors():
        record = ctx.client().whoami()
    ctx.emit(record, details)


@main.command("login")
@click.option("--user", required=True, help="Your local or directory (LDAP) account.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--print", "print_only", is_flag=True,
              help="Print the token instead of saving it to ~/.config/hacluster/token.")
@pass_ctx
def login(ctx: Ctx, user: str, password_stdin: bool, print_only: bool) -> None:
    """Log in with a password (a local user's, else a directory account's): a token for a
    working day, with the user's role (a directory account: its groups')."""
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else click.prompt("password", hide_input=True))
    with errors():
        record = ctx.client(anonymous=True).login(user, password)
    if not print_only:
        os.makedirs(os.path.dirname(TOKEN_FILE), mode=0o700, exist_ok=True)
        fd = os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(record["token"] + "\n")
        record = {**record, "token": None, "saved_to": TOKEN_FILE}
    ctx.emit(record, details)


@main.group()
def user() -> None:
    """Local accounts for people: a name, a role and a password (kept as an argon2id hash),
    for `hactl login` and the web console. A directory (LDAP) needs none of these."""


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("password (12 characters or more)", hide_input=True,
                            confirmation_prompt=True))


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@pass_ctx
def user_create(ctx: Ctx, name: str, role: str, password_stdin: bool) -> None:
    password = _new_password(password_stdin)
    with errors():
        record = ctx.client().create_user(name, role, password)
    ctx.emit(record, details)


@user.command("list")
@pass_ctx
def user_list(ctx: Ctx) -> None:
    with errors():
        rows = ctx.client().list_users()
    ctx.emit(rows, lambda r: table(r, ["name", "role", "created_at"]) if r else "no users")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@pass_ctx
def user_passwd(ctx: Ctx, name: str, password_stdin: bool) -> None:
    """Set NAME's password (an admin, or NAME logged in with their password)."""
    password = _new_password(password_stdin)
    with errors():
        record = ctx.client().set_password(name, password)
    ctx.emit(record, details)


@user.command("delete")
@click.argument("name")
@pass_ctx
def user_delete(ctx: Ctx, name: str) -> None:
    """Delete NAME; the tokens its logins got stop working at once."""
    with errors():
        ctx.client().delete_user(name)
    ctx.emit({"deleted": name}, lambda r: f"user {name} deleted")


@main.group()
def directory() -> None:
    """Which role members of each directory group get when they log in."""


@directory.command("list")
@pass_ctx
def directory_list(ctx: Ctx) -> None:
    with errors():
        roles = ctx.client().directory_roles()
    ctx.emit(roles, lambda r: table([{"group": g, "role": x} for g, x in sorted(r.items())],
                                    ["group", "role"]))


@directory.command("grant")
@click.argument("group")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
@pass_ctx
def directory_grant(ctx: Ctx, group: str, role: str) -> None:
    """Members of GROUP (its DN) get ROLE at their next login."""
    with errors():
        client = ctx.client()
        roles = client.set_directory_roles({**client.directory_roles(), group: role})
    ctx.emit(roles, details)


@directory.command("revoke")
@click.argument("group")
@pass_ctx
def directory_revoke(ctx: Ctx, group: str) -> None:
    """GROUP gives no role any more (from its members' next login)."""
    with errors():
        client = ctx.client()
        roles = {g: r for g, r in client.directory_roles().items() if g != group}
        roles = client.set_directory_roles(roles)
    ctx.emit(roles, details)


# ---- lab ---------------------------------------------------------------------------------------


@main.group()
def lab() -> None:
    """A local multi-host lab on this machine (libvirt's test driver, one libvirtd per host)."""


LAB_DIR = click.option("--dir", "lab_dir", required=True, type=click.Path(file_okay=False),
                       help="Where the lab keeps its hosts' configs, data and logs.")


def _lab_rows(lab_obj: lab_mod.Lab) -> list[dict[str, Any]]:
    rows = []
    for h in lab_obj.hosts:
        row: dict[str, Any] = {"name": h.name, "api": h.api, "raft": h.raft, "web": h.web,
                               "libvirt_uri": h.libvirt_uri, "pids": {}}
        for proc in lab_mod.PROCESSES:
            alive = lab_obj.alive(h, proc)
            row["pids"][proc] = h.pids.get(proc) if alive else None
            row[proc] = h.pids.get(proc) if alive else "down"
        rows.append(row)
    return rows


@lab.command("up")
@LAB_DIR
@click.option("--nodes", type=int, default=3, show_default=True)
@click.option("--base-ip", default="127.0.77", show_default=True,
              help="Host i gets BASE_IP.i (loopback only).")
@click.option("--raft-port", type=int, default=7400, show_default=True)
@click.option("--api-port", type=int, default=7401, show_default=True)
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--profile", type=click.Choice(["safe", "fast"]), default="safe",
              show_default=True, help="HA timing profile (README: Failover).")
@click.option("--fence-agent", is_flag=True,
              help="Give every host a fence agent (an IPMI-like power switch).")
@click.option("--hypervisor", type=click.Choice(["test", "qemu"]), default="test",
              show_default=True,
              help="qemu (root): each host a network namespace with its own QEMU libvirtd, "
                   "real tiny guests (TCG) and live migration.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE",
              help="A haclusterd.toml setting for every host, e.g. "
                   "raft.snapshot_interval=30 (repeatable).")
@click.option("--voters", type=click.Choice(["3", "5", "7"]), default=None,
              help="Raft voters: the first VOTERS hosts form the cluster, the others join as "
                   "learners (hactl host add) [all hosts vote].")
@pass_ctx
def lab_up(ctx: Ctx, lab_dir: str, nodes: int, base_ip: str, raft_port: int, api_port: int,
           log_level: str, profile: str, fence_agent: bool, hypervisor: str,
           settings: tuple[str, ...], voters: str | None) -> None:
    """Start NODES hosts and wait until the cluster has a leader and every host is up."""
    with errors():
        voting = min(int(voters or nodes), nodes)
        lab_obj = lab_mod.create(lab_dir, voting, base_ip, raft_port, api_port, log_level,
                                 profile, fence_agent, hypervisor, settings)
        try:
            for h in lab_obj.hosts:
                lab_obj.start_host(h)
            lab_mod.wait_until_up(lab_obj)
            if voting < nodes:
                lab_grow.grow(lab_obj, nodes - voting, voting)
            lab_mod.provision(lab_obj)
        except (lab_mod.LabError, ClientError):
            lab_obj.stop_all()
            lab_obj.forget()
            raise
    ctx.emit(_lab_rows(lab_obj), lambda rows: table(rows, COLUMNS["lab"]) +
             f"\n\nexport HACTL_ENDPOINTS={lab_obj.endpoints}")


@lab.command("status")
@LAB_DIR
@pass_ctx
def lab_status(ctx: Ctx, lab_dir: str) -> None:
    """Each host's endpoint, libvirt URI and process ids ('down' when not running)."""
    with errors():
        lab_obj = lab_mod.Lab.load(lab_dir)
    ctx.emit(_lab_rows(lab_obj), lambda rows: table(rows, COLUMNS["lab"]))


@lab.command("env")
@LAB_DIR
def lab_env(lab_dir: str) -> None:
    """Print the exports that point hactl at the lab (its endpoints, CA and admin token):
    eval "$(hactl lab env --dir D)"."""
    with errors():
        lab_obj = lab_mod.Lab.load(lab_dir)
        token = lab_obj.admin_token()
    click.echo(f"export HACTL_ENDPOINTS={lab_obj.endpoints}")
    click.echo(f"export HACTL_CA={lab_obj.ca_file}")
    click.echo(f"export HACTL_TOKEN={token}")


@lab.command("kill")
@LAB_DIR
@click.argument("host_name", metavar="HOST")
@click.option("--daemon-only", is_flag=True,
              help="Crash only haclusterd (kill -9); its VMs keep running in its libvirtd.")
def lab_kill(lab_dir: str, host_name: str, daemon_only: bool) -> None:
    """Power loss of HOST: kill -9 of its haclusterd, libvirtd and keeper (its VMs die)."""
    with errors():
        lab_obj = lab_mod.Lab.load(lab_dir)
        killed = lab_obj.kill_host(lab_obj.host(host_name), daemon_only)
    click.echo(f"{host_name}: killed {', '.join(killed) or 'nothing (already down)'}")


@lab.command("start")
@LAB_DIR
@click.argument("host_name", metavar="HOST")
def lab_start(lab_dir: str, host_name: str) -> None:
    """Power HOST on again (with its data), starting whichever of its processes is down."""
    with errors():
        lab_obj = lab_mod.Lab.load(lab_dir)
        lab_obj.start_host(lab_obj.host(host_name))
    click.echo(f"{host_name}: started")


def _lab_fault(verb: str, doc: str, act: Callable[[lab_mod.Lab, lab_mod.LabHost], None]
               ) -> click.Command:
    @LAB_DIR
    @click.argument("host_name", metavar="HOST")
    def command(lab_dir: str, host_name: str) -> None:
        with errors():
            lab_obj = lab_mod.Lab.load(lab_dir)
            act(lab_obj, lab_obj.host(host_name))
        click.echo(f"{host_name}: {verb}")

    command.__doc__ = doc
    return lab.command(verb)(command)


_lab_fault("pause", "SIGSTOP HOST's haclusterd: a hung daemon (its VMs keep running, its "
           "watchdog goes unfed).", lambda lo, h: lo.signal_daemon(h, signal.SIGSTOP))
_lab_fault("resume", "SIGCONT HOST's haclusterd.",
           lambda lo, h: lo.signal_daemon(h, signal.SIGCONT))
_lab_fault("isolate", "Drop all traffic to and from HOST's haclusterd (root).", lab_mod.Lab.isolate)
_lab_fault("heal", "Undo isolate.", lab_mod.Lab.heal)
_lab_fault("remove", "HOST leaves the lab: maintenance, its VMs moved away, stopped, hactl host "
           "remove.", lab_grow.remove_host)


@lab.command("add")
@LAB_DIR
@pass_ctx
def lab_add(ctx: Ctx, lab_dir: str) -> None:
    """A new host joins the running lab (hactl host add, then its haclusterd with a join
    configuration); waits until the cluster shows it up."""
    with errors():
        lab_obj = lab_mod.Lab.load(lab_dir)
        host = lab_grow.add_host(lab_obj)
    ctx.emit([r for r in _lab_rows(lab_obj) if r["name"] == host.name],
             lambda rows: table(rows, COLUMNS["lab"]))


@lab.command("down")
@LAB_DIR
def lab_down(lab_dir: str) -> None:
    """Stop every process the lab started (by pid) and forget the lab (data stays on disk)."""
    with errors():
        lab_obj = lab_mod.Lab.load(lab_dir)
        lab_obj.stop_all()
        lab_obj.forget()
    click.echo(f"lab in {lab_dir} is down")


if __name__ == "__main__":
    main()
