"""A local lab: N hosts on this machine, each with its own haclusterd, data and hypervisor.

It is secured as a real cluster is: a cluster CA and a certificate per host (DIR/pki), a
random Raft secret, TLS on every API port, and an admin token (DIR/pki/admin.token) that
`hactl lab env` exports with the endpoints and the CA.

Every host gets a loopback address (127.0.x.i), a data directory, a config, a libvirtd of its
own serving libvirt's test driver (so its VMs live outside haclusterd, as on a real host, and
`virsh -c URI list` shows them), and a keeper process holding one connection open to that
libvirtd (the test driver forgets its domains when the last connection closes: the keeper
makes a daemon crash harmless, and only a power loss, which kills the keeper too, empties
the host). The lab records every pid in DIR/lab.json and only ever signals those.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import certs
from ..client import Client, ClientError  # the lab drives the cluster as hactl does
from . import netfault, procs
from . import qemu as lab_qemu

LAB_FILE = "lab.json"
PROCESSES = ("libvirtd", "keeper", "watchdog", "haclusterd")  # start order; stop in reverse
NOBODY = 65534


class LabError(Exception):
    pass


@dataclass
class LabHost:
    name: str
    ip: str
    raft: str
    api: str
    libvirt_uri: str
    runtime_dir: str  # libvirtd's sockets and state (short path, reachable by nobody)
    pids: dict[str, int] = field(default_factory=dict)
    hypervisor: str = "test"  # test (libvirt's test driver) | qemu (real guests, in a netns)
    index: int = 0

    @property
    def peer(self) -> str:
        """The member port (mutual TLS), next but one to the API port as haclusterd assumes."""
        ip, port = self.api.rsplit(":", 1)
        return f"{ip}:{int(port) + 2}"

    @property
    def web(self) -> str:
        """The web console's URL (haclusterd's default: the port after the API's)."""
        ip, port = self.api.rsplit(":", 1)
        return f"https://{ip}:{int(port) + 1}/"

    @property
    def watchdog_socket(self) -> str:
        return f"{Path(self.runtime_dir).parent}/{self.name}.watchdog"


@dataclass
class Lab:
    dir: str
    hosts: list[LabHost]
    secret_file: str

    # ---- persistence -------------------------------------------------------------------------

    @classmethod
    def load(cls, lab_dir: str | Path) -> Lab:
        path = Path(lab_dir) / LAB_FILE
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise LabError(f"no lab in {lab_dir}: {exc.strerror}") from exc
        return cls(dir=data["dir"], hosts=[LabHost(**h) for h in data["hosts"]],
                   secret_file=data["secret_file"])

    def save(self) -> None:
        tmp = Path(self.dir) / (LAB_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(Path(self.dir) / LAB_FILE)

    def forget(self) -> None:
        """Retire lab.json (kept as lab.json.down) so the directory can hold a new lab."""
        path = Path(self.dir) / LAB_FILE
        path.replace(path.with_suffix(".json.down"))

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(f"no host {name!r} in this lab (hosts: "
                       f"{', '.join(h.name for h in self.hosts)})")

    @property
    def endpoints(self) -> str:
        return ",".join(h.api for h in self.hosts)

    @property
    def ca_file(self) -> str:
        return str(Path(self.dir) / "pki" / "ca.pem")

    def admin_token(self) -> str:
        try:
            return (Path(self.dir) / "pki" / "admin.token").read_text().strip()
        except OSError as exc:
            raise LabError(f"no admin token in {self.dir}/pki: {exc.strerror}") from exc

    def client(self, timeout: float = 10.0, hosts: Sequence[str] = ()) -> Client:
        """A client of this lab as its admin (the lab's own CA and bootstrap token), trying
        `hosts` (default: all) in the order given."""
        return Client([self.host(n).api for n in hosts] if hosts else [h.api for h in self.hosts],
                      timeout=timeout, ca=Path(self.ca_file).read_bytes(),
                      token=self.admin_token())

    def host_dir(self, host: LabHost) -> Path:
        return Path(self.dir) / host.name

    # ---- processes ---------------------------------------------------------------------------

    def alive(self, host: LabHost, proc: str) -> bool:
        pid = host.pids.get(proc)
        return pid is not None and procs.alive(pid, proc)

    def check_daemon(self, host: LabHost) -> None:
        """Raise if the host's haclusterd has exited, saying how and what it logged last."""
        if self.alive(host, "haclusterd"):
            return
        log = self.host_dir(host) / "haclusterd.log"
        tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        how = procs.exit_reason(host.pids.get("haclusterd", 0))
        raise LabError(f"{host.name}: haclusterd exited{f' ({how})' if how else ''}: "
                       f"{' '.join(tail) or '(nothing logged)'}")

    def start_host(self, host: LabHost) -> None:
        """Power a host on: start whichever of its processes is not running."""
        hdir = self.host_dir(host)
        if not self.alive(host, "libvirtd"):
            host.pids["libvirtd"] = (_start_qemu_libvirtd(self, host) if host.hypervisor == "qemu"
                                     else _start_libvirtd(host, hdir))
            host.pids.pop("keeper", None)  # a new libvirtd needs a new keeper
        if not self.alive(host, "keeper"):
            (hdir / "keeper.log").write_text("")
            host.pids["keeper"] = procs.spawn(
                [sys.executable, "-m", "hacluster.lab.keeper", host.libvirt_uri],
                hdir / "keeper.log")
            wait_for(lambda: (hdir / "keeper.log").read_text().startswith("connected"),
                      10, f"{host.name}: keeper could not connect to its libvirtd")
        if not self.alive(host, "watchdog"):
            host.pids["watchdog"] = procs.spawn(
                [sys.executable, "-m", "hacluster.lab.watchdog", host.watchdog_socket,
                 self.dir, host.name], hdir / "watchdog.log")
            wait_for(lambda: Path(host.watchdog_socket).exists(), 10,
                      f"{host.name}: the watchdog did not start")
        if not self.alive(host, "haclusterd"):
            host.pids["haclusterd"] = procs.spawn(
                [sys.executable, "-m", "hacluster.daemon", "--config",
                 str(hdir / "haclusterd.toml")], hdir / "haclusterd.log")
            netfault.enter_cgroup(self.tag, host.name, host.pids["haclusterd"])
        self.save()

    def kill_host(self, host: LabHost, daemon_only: bool = False) -> list[str]:
        """Power loss (SIGKILL of its haclusterd, keeper and libvirtd: its VMs die), or with
        daemon_only a crash of haclusterd alone (VMs keep running in libvirtd)."""
        killed = []
        for proc in ("haclusterd",) if daemon_only else PROCESSES[::-1]:
            if self.alive(host, proc):
                os.kill(host.pids[proc], signal.SIGKILL)
                killed.append(proc)
            host.pids.pop(proc, None)
        if host.hypervisor == "qemu" and not daemon_only:
            guests = lab_qemu.kill_namespace(lab_qemu.host_ns(self.tag, host.index))
            if guests:
                killed.append(f"{len(guests)} guest process(es)")
        self.save()
        return killed

    @property
    def tag(self) -> str:
        return Path(self.hosts[0].runtime_dir).parent.name.rsplit("-", 1)[-1]

    def stop_hosts(self, hosts: Sequence[LabHost]) -> None:
        """SIGTERM every process of these hosts, SIGKILL what is left after 5 s."""
        for host in hosts:
            for proc in PROCESSES[::-1]:
                if self.alive(host, proc):
                    os.kill(host.pids[proc], signal.SIGTERM)
        deadline = time.monotonic() + 5
        for host in hosts:
            for proc in PROCESSES[::-1]:
                while self.alive(host, proc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.alive(host, proc):
                    os.kill(host.pids[proc], signal.SIGKILL)
                host.pids.pop(proc, None)
        self.save()

    def signal_daemon(self, host: LabHost, sig: signal.Signals) -> None:
        """SIGSTOP (a hung daemon: its VMs keep running, its watchdog is not fed) or SIGCONT."""
        if not self.alive(host, "haclusterd"):
            raise LabError(f"{host.name}: haclusterd is not running")
        os.kill(host.pids["haclusterd"], sig)

    def isolate(self, host: LabHost) -> None:
        """Cut the host's haclusterd off the network: nothing in or out (its own libvirtd and
        watchdog, on unix sockets, still work)."""
        others = [h.ip for h in self.hosts if h is not host]
        netfault.isolate(self.tag, host.name, host.ip, others)

    def heal(self, host: LabHost) -> None:
        netfault.heal(self.tag, host.name)

    def stop_all(self) -> None:
        for host in self.hosts:
            netfault.heal(self.tag, host.name)
        self.stop_hosts(self.hosts)
        if self.hosts[0].hypervisor == "qemu":
            lab_qemu.net_down(self.tag, lab_qemu.subnet(self.hosts[0].ip), len(self.hosts))
        for host in self.hosts:
            shutil.rmtree(host.runtime_dir, ignore_errors=True)
        netfault.remove_cgroups(self.tag)


SETTABLE = ("raft", "api", "agent", "capacity", "ha", "testing")


def parse_settings(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """`SECTION.KEY=VALUE` (as in haclusterd.toml, e.g. raft.snapshot_interval=20) for every
    host's config; VALUE is a TOML value."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in SETTABLE or not name.isidentifier():
            raise LabError(f"--set {item!r}: use SECTION.KEY=VALUE with SECTION one of "
                           f"{', '.join(SETTABLE)}")
        try:
            tomllib.loads(f"x = {value}")
        except tomllib.TOMLDecodeError as exc:
            raise LabError(f"--set {item!r}: {value!r} is not a TOML value") from exc
        out.setdefault(section, {})[name] = value
    return out


def create(lab_dir: str | Path, nodes: int, base_ip: str = "127.0.77", raft_port: int = 7400,
           api_port: int = 7401, log_level: str = "INFO", profile: str = "safe",
           fence_agent: bool = False, hypervisor: str = "test",
           settings: Sequence[str] = ()) -> Lab:
    """Write the configs of a new lab (nothing is started). Each host gets a watchdog process;
    with fence_agent, each member's fence command powers it off as an IPMI agent would. With
    hypervisor qemu (root), each host is a network namespace with a QEMU libvirtd of its own
    and the guests are real (lab/qemu.py)."""
    if hypervisor not in ("test", "qemu"):
        raise LabError("--hypervisor must be test or qemu")
    extra = parse_settings(settings)
    ha_keys = {"profile": f'"{profile}"', **extra.pop("ha", {})}
    watchdog_override = ha_keys.pop("watchdog_device", None)
    ha_extra = "".join(f"{k} = {v}\n" for k, v in ha_keys.items())
    sections = "".join(f"\n[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
                       for section, keys in extra.items())
    if hypervisor == "qemu" and (missing := lab_qemu.requirements()):
        raise LabError("a QEMU lab needs " + ", ".join(missing))
    if not 1 <= nodes <= 50:
        raise LabError("--nodes must be between 1 and 50")
    parts = base_ip.split(".")
    if len(parts) != 3 or parts[0] != "127" or not all(p.isdigit() and int(p) < 256
                                                         for p in parts):
        raise LabError("--base-ip must be three octets of the loopback range, like 127.0.77")
    root = Path(lab_dir).resolve()
    if (root / LAB_FILE).exists():
        raise LabError(f"{root} already holds a lab: `hactl lab down --dir {lab_dir}` first")
    root.mkdir(parents=True, exist_ok=True)
    secret_file = root / "cluster.secret"
    secret_file.write_text(secrets.token_urlsafe(32) + "\n")
    secret_file.chmod(0o600)
    pki = root / "pki"
    certs.init(pki, cluster=f"lab {root.name}")
    tag = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    hosts = []
    scheme = "test+unix:///default" if hypervisor == "test" else "qemu+unix:///system"
    for i in range(1, nodes + 1):
        ip = f"{base_ip}.{i}"
        runtime = f"/tmp/hacluster-lab-{tag}/host{i}"
        shutil.rmtree(runtime, ignore_errors=True)  # a new lab: nothing of an old one's
        hosts.append(LabHost(
            name=f"host{i}", ip=ip, raft=f"{ip}:{raft_port}", api=f"{ip}:{api_port}",
            libvirt_uri=f"{scheme}?socket={runtime}/run/libvirt-sock",
            runtime_dir=runtime, hypervisor=hypervisor, index=i))
    for h in hosts:
        for addr in (h.raft, h.api, h.peer, h.web[len("https://"):-1]):
            check_free(addr)
        certs.issue(pki, h.name, [h.ip])
    lab = Lab(dir=str(root), hosts=hosts, secret_file=str(secret_file))
    def fence(h: LabHost) -> str:
        if not fence_agent:
            return ""
        argv = [sys.executable, "-m", "hacluster.lab.fence", str(root), h.name]
        return ", fence = [" + ", ".join(json.dumps(a) for a in argv) + "]"

    members = "\n".join(f'  {{ name = "{h.name}", raft = "{h.raft}", api = "{h.api}"{fence(h)} }},'
                        for h in hosts)
    qemu = ""
    if hypervisor == "qemu":
        kernel, initrd = lab_qemu.build_guest(root / "guest")
        (root / "consoles").mkdir(exist_ok=True)
        # TCG: this machine's /dev/kvm cannot run guests (../shared/notes/virt-lab.md)
        qemu = (f'console_dir = "{root / "consoles"}"\nvirt_type = "qemu"\n\n'
                f'[qemu]\nkernel = "{kernel}"\ninitrd = "{initrd}"\n')
        lab_qemu.net_up(tag, lab_qemu.subnet(base_ip), nodes)
    for h in hosts:
        hdir = lab.host_dir(h)
        (hdir / "data").mkdir(parents=True, exist_ok=True)
        # the lab's shared directory is one local filesystem: libvirt cannot know every lab
        # host sees it, so live migrations of VMs with disks say it is safe
        migration = (f'libvirt_migration_uri = "qemu+tcp://{lab_qemu.subnet(base_ip)}.{h.index}'
                     '/system"\nlibvirt_migrate_unsafe = true\n' if hypervisor == "qemu" else "")
        (hdir / "haclusterd.toml").write_text(f"""# generated by `hactl lab up`
name = "{h.name}"
data_dir = "{hdir / 'data'}"
libvirt_uri = "{h.libvirt_uri}"
{migration}storage_dir = "{hdir}"
log_level = "{log_level}"
{qemu}

[ha]
watchdog_device = {watchdog_override or f'"lab:{h.watchdog_socket}"'}
{ha_extra}{sections}
[tls]
ca = "{pki / 'ca.pem'}"
cert = "{pki / (h.name + '.pem')}"
key = "{pki / (h.name + '.key')}"
admin_token_sha256_file = "{pki / 'admin.token.sha256'}"

[cluster]
secret_file = "{secret_file}"
members = [
{members}
]
""")
    lab.save()
    return lab


def check_free(addr: str) -> None:
    ip, port = addr.rsplit(":", 1)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is ok
        try:
            s.bind((ip, int(port)))
        except OSError as exc:
            raise LabError(f"{addr} is taken ({exc.strerror}): another lab on these addresses? "
                           "stop it, or pick others with --base-ip") from exc


def wait_until_up(lab: Lab, timeout: float = 120.0) -> None:
    """Until every host is registered and up, and the cluster has a leader acting."""

    client = lab.client(timeout=2.0)

    def ready() -> bool:
        for h in lab.hosts:
            lab.check_daemon(h)
        try:
            status = client.status()
            hosts = client.list_hosts()
        except ClientError:
            return False
        up = {h["name"] for h in hosts if h["status"] == "up"}
        return bool(status["leader"]) and status["leader_term"] == status["term"] and \
            up == {h.name for h in lab.hosts}

    wait_for(ready, timeout, "the lab did not come up (see DIR/hostN/haclusterd.log)")


SHARED_POOL = "lab-shared"
LAB_NETWORK = "lab"


def provision(lab: Lab) -> None:
    """A QEMU lab's shared storage and network, in the cluster: a directory of the lab every
    host sees as the shared pool `lab-shared`, and the hosts' bridge as the network `lab`."""
    if lab.hosts[0].hypervisor != "qemu":
        return
    client = lab.client(timeout=10.0)
    known = {p["name"] for p in client.list_pools()}
    if SHARED_POOL not in known:
        shared = Path(lab.dir) / "shared"
        shared.mkdir(exist_ok=True)
        client.create_pool(SHARED_POOL, "dir", True, path=str(shared))
    if LAB_NETWORK not in {n["name"] for n in client.list_networks()}:
        client.create_network(LAB_NETWORK, lab_qemu.GUEST_BRIDGE)


# ---- process helpers ---------------------------------------------------------------------------


def _start_qemu_libvirtd(lab: Lab, host: LabHost) -> int:
    """The host's own system libvirtd (qemu driver), in its network namespace."""
    runtime = Path(host.runtime_dir)
    shutil.rmtree(runtime / "run", ignore_errors=True)
    argv = lab_qemu.libvirtd_argv(lab.tag, host.index, lab_qemu.subnet(host.ip), runtime)
    pid = procs.spawn(argv, lab.host_dir(host) / "libvirtd.log")
    sock = runtime / "run" / "libvirt-sock"
    wait_for(sock.exists, 20, f"{host.name}: libvirtd did not open {sock}")
    return pid


def _start_libvirtd(host: LabHost, hdir: Path) -> int:
    """An unprivileged libvirtd (session mode) of the host's own: as nobody when we are root."""
    binary = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
    if not os.path.exists(binary):
        raise LabError("libvirtd not found: install Debian's libvirt-daemon package")
    runtime = Path(host.runtime_dir)
    shutil.rmtree(runtime, ignore_errors=True)
    for sub in ("run", "xdg", "config", "cache", "home"):
        (runtime / sub).mkdir(parents=True, exist_ok=True)
    conf = runtime / "libvirtd.conf"
    conf.write_text(f'unix_sock_dir = "{runtime}/run"\nlog_outputs = "3:stderr"\n')
    as_root = os.geteuid() == 0
    if as_root:
        for path in [runtime.parent, runtime, *runtime.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(runtime / "home"),
           "XDG_RUNTIME_DIR": str(runtime / "xdg"), "XDG_CONFIG_HOME": str(runtime / "config"),
           "XDG_CACHE_HOME": str(runtime / "cache")}
    extra: dict[str, object] = {"env": env}
    if as_root:
        extra.update(user=NOBODY, group=NOBODY, extra_groups=[])
    pid = procs.spawn([binary, "--config", str(conf), "--pid-file", str(runtime / "libvirtd.pid")],
                 hdir / "libvirtd.log", **extra)
    sock = runtime / "run" / "libvirt-sock"
    wait_for(sock.exists, 10, f"{host.name}: libvirtd did not open {sock}")
    return pid


def wait_for(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise LabError(message)
