"""The libvirt adapter: one host's hypervisor, translated into core types. It decides nothing.

Works the same on libvirt's test driver (the lab's default, through a libvirtd per host) and on
`qemu:///system`. Domains hacluster manages carry a metadata element in our namespace; nothing
else on the host is touched. The test driver cannot migrate (the issue that adds migration
handles that); everything here is supported by both drivers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import libvirt

from . import storage_pools
from .config import DirectBoot, Guests
from .core import cpus
from .core.host_plan import Domain
from .core.importing import METADATA_NS
from .core.model import Network, Observed, Pool, Vm
from .metrics import bridges_present

log = logging.getLogger(__name__)

METADATA_KEY = "hacluster"

_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: Observed.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: Observed.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: Observed.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: Observed.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: Observed.RUNNING,  # shutting down: still running
    libvirt.VIR_DOMAIN_SHUTOFF: Observed.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: Observed.CRASHED,
    libvirt.VIR_DOMAIN_NOSTATE: Observed.STOPPED,
}

_event_loop_lock = threading.Lock()
_event_loop_started = False


class HypervisorError(Exception):
    """A libvirt call failed; the message says which and why."""


class DiskLocked(HypervisorError):
    """A start refused because another process holds a lock on one of the VM's disks: the
    lock manager (virtlockd, `lock_manager = "lockd"`) or QEMU's own image locking. Some
    other copy of the VM, or something else, has its disks open: retrying cannot help."""


def _is_lock_conflict(exc: libvirt.libvirtError) -> bool:
    # virtlockd: VIR_ERR_RESOURCE_BUSY "Lockspace resource '...' is locked"; QEMU's image
    # locking: 'Failed to get "write" lock'
    return exc.get_error_code() == libvirt.VIR_ERR_RESOURCE_BUSY or \
        '"write" lock' in (exc.get_error_message() or "")


def start_event_loop() -> None:
    """libvirt's default event loop, once per process, before any connection is opened."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        # libvirt prints every error to stderr by default; ours are raised and logged instead
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def console_xml(vm: Vm, console_dir: str) -> str:
    """A serial console on a pty (what `vm console` types into, through libvirt) whose
    output QEMU also appends to console_dir/NAME.log (what it reads, even after a crash)."""
    log = escape(f"{console_dir}/{vm.name}.log")
    return (f"<serial type='pty'><log file='{log}' append='on'/><target port='0'/></serial>"
            "<console type='pty'><target type='serial' port='0'/></console>")


def console_log_of(xml: str) -> str | None:
    """Where a domain's serial console output goes: its log file, or a file serial's path
    (an imported domain may have either, or neither)."""
    root = ET.fromstring(xml)
    for serial in root.findall("devices/serial"):
        log = serial.find("log")
        if log is not None and log.get("file"):
            return log.get("file")
        source = serial.find("source")
        if serial.get("type") == "file" and source is not None and source.get("path"):
            return source.get("path")
    return None


def nics_xml(vm: Vm, networks: Mapping[str, Network]) -> str:
    """The VM's NICs: virtio on its networks' bridges, with the MACs the cluster chose."""
    out = []
    for nic in vm.nics:
        net = networks.get(nic["network"])
        bridge = net.bridge if net else nic["network"]
        out.append(f"<interface type='bridge'><mac address={quoteattr(nic['mac'])}/>"
                   f"<source bridge={quoteattr(bridge)}/><model type='virtio'/></interface>")
    return "".join(out)


def _metadata(name: str, prefix: str = "") -> str:
    """Our metadata element (with a namespace prefix inside a whole definition; libvirt's
    setMetadata adds its own)."""
    tag = f"{prefix}:vm xmlns:{prefix}='{METADATA_NS}'" if prefix else f"vm xmlns='{METADATA_NS}'"
    return f"<{tag} name={quoteattr(name)}/>"


def imported_xml(vm: Vm) -> str:
    """An imported VM's own definition with our metadata added, for another host."""
    root = ET.fromstring(vm.xml)
    meta = root.find("metadata")
    if meta is None:
        meta = ET.SubElement(root, "metadata")
    meta.append(ET.fromstring(_metadata(vm.name)))
    return ET.tostring(root, encoding="unicode")


CONSOLE_HOLD = 1.5  # seconds a console stays open for typed input (console_input)
FALLBACK_CPU = "<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>"


def cpu_xml(vm: Vm, domain_type: str, baseline: str) -> str:
    """The guest CPU: the cluster's baseline (qemu64 while none is known), or for
    host-passthrough the host's own (KVM), or under TCG the most it can emulate."""
    if vm.cpu == cpus.PASSTHROUGH:
        return "<cpu mode='host-passthrough'/>" if domain_type == "kvm" else \
            "<cpu mode='maximum'/>"
    return baseline or FALLBACK_CPU


def domain_xml(vm: Vm, domain_type: str, boot: DirectBoot | None = None,
               pools: Mapping[str, Pool] | None = None,
               networks: Mapping[str, Network] | None = None,
               console_dir: str = "/var/log/hacluster/consoles", cpu_baseline: str = "") -> str:
    """A persistent definition: minimal for the test driver; for QEMU (KVM, or TCG where
    there is none) the guest CPU (cpu_xml), a serial console logged to console_dir, and with
    `boot` a direct kernel boot. The VM's disks are volumes of the cluster's pools, its NICs
    on its networks' bridges. An imported VM keeps its own definition."""
    if vm.xml:
        return imported_xml(vm)
    os_xml = "<os><type arch='x86_64'>hvm</type></os>"
    disks = storage_pools.disks_xml(vm, pools or {}) + nics_xml(vm, networks or {})
    devices = f"<devices>{disks}</devices>" if disks else ""
    if domain_type in ("qemu", "kvm"):
        os_xml = "<os><type arch='x86_64' machine='pc'>hvm</type>"
        if boot is not None:
            os_xml += (f"<kernel>{escape(boot.kernel)}</kernel>"
                       f"<initrd>{escape(boot.initrd)}</initrd>"
                       f"<cmdline>{escape(boot.cmdline)}</cmdline>")
        os_xml += f"</os>\n  {cpu_xml(vm, domain_type, cpu_baseline)}"
        devices = (f"<devices>{disks}{console_xml(vm, console_dir)}"
                   "<memballoon model='none'/></devices>")
    return f"""<domain type='{domain_type}'>
  <name>{escape(vm.name)}</name>
  <uuid>{escape(vm.uuid)}</uuid>
  <memory unit='MiB'>{vm.memory_mib}</memory>
  <currentMemory unit='MiB'>{vm.memory_mib}</currentMemory>
  <vcpu>{vm.vcpus}</vcpu>
  <metadata>
    {_metadata(vm.name, METADATA_KEY)}
  </metadata>
  {os_xml}
  {devices}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
</domain>"""


@dataclass(frozen=True)
class DomainStats:
    """Cumulative counters (nanoseconds, bytes) and gauges (KiB, vCPUs) of one domain."""

    cpu_ns: int
    vcpus: int
    memory_kib: int
    disk_read: int
    disk_write: int
    net_rx: int
    net_tx: int

    @classmethod
    def parse(cls, raw: dict[str, object], info: list[int] | None) -> DomainStats:
        def total(prefix: str, count_key: str, suffix: str) -> int:
            count = int(str(raw.get(count_key, 0)))
            return sum(int(str(raw.get(f"{prefix}.{i}.{suffix}", 0))) for i in range(count))

        return cls(
            cpu_ns=int(str(raw.get("cpu.time", info[4] if info else 0))),
            vcpus=int(str(raw.get("vcpu.current", info[3] if info else 1))) or 1,
            memory_kib=int(str(raw.get("balloon.current", info[2] if info else 0))),
            disk_read=total("block", "block.count", "rd.bytes"),
            disk_write=total("block", "block.count", "wr.bytes"),
            net_rx=total("net", "net.count", "rx.bytes"),
            net_tx=total("net", "net.count", "tx.bytes"))


def _offers_kvm(conn: libvirt.virConnect) -> bool:
    """Whether this libvirt can run KVM guests (its domain capabilities for kvm)."""
    try:
        caps = ET.fromstring(conn.getDomainCapabilities(None, "x86_64", None, "kvm"))
    except libvirt.libvirtError:
        return False
    return caps.findtext("domain") == "kvm"


class Hypervisor:
    """A connection to one host's libvirt, reopened on demand after it drops."""

    def __init__(self, uri: str, on_event: Callable[[], None] | None = None,
                 guests: Guests | None = None) -> None:
        self.uri = uri
        self.guests = guests or Guests()
        self._on_event = on_event
        self._lock = threading.RLock()
        self._conn: libvirt.virConnect | None = None
        self._managed: dict[str, bool] = {}  # uuid -> has our metadata (it never changes)
        self._kind = "qemu"  # the driver: test | qemu
        self._virt = "qemu"  # what QEMU domains are: kvm | qemu (TCG)
        self._host_cpu: str | None = None  # read once per connection
        self._baseline: tuple[tuple[str, ...], str] = ((), "")  # the last asked, its answer
        start_event_loop()
        self._connect()

    # ---- connection ------------------------------------------------------------------------

    def _connect(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is not None and self._conn.isAlive():
                return self._conn
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise HypervisorError(f"cannot connect to {self.uri}: {exc}") from exc
            # Notice a dead libvirtd within ~3 s; in-process drivers have no keepalive.
            with contextlib.suppress(libvirt.libvirtError):
                conn.setKeepAlive(1, 3)
            if self._on_event is not None:
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                            self._lifecycle, None)
            self._kind = "test" if str(conn.getType()).lower() == "test" else "qemu"
            self._virt = self.guests.virt_type
            if self._virt == "auto":
                self._virt = "kvm" if self._kind == "qemu" and _offers_kvm(conn) else "qemu"
            self._host_cpu, self._baseline = None, ((), "")  # a new libvirtd may say otherwise
            self._conn = conn
            return conn

    def _lifecycle(self, conn: object, dom: object, event: int, detail: int,
                   opaque: object) -> None:
        if self._on_event is not None:
            self._on_event()

    def _call(self, what: str, fn: Callable[[libvirt.virConnect], object]) -> object:
        conn = self._connect()
        try:
            return fn(conn)
        except libvirt.libvirtError as exc:
            if not conn.isAlive():
                with self._lock:
                    self._conn = None
            kind = DiskLocked if _is_lock_conflict(exc) else HypervisorError
            raise kind(f"{what} on {self.uri}: {exc.get_error_message()}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None

    # ---- facts -------------------------------------------------------------------------------

    def node_info(self) -> tuple[int, int]:
        """(CPUs, memory MiB) of the host as libvirt sees it."""
        info = self._call("getInfo", lambda conn: conn.getInfo())
        assert isinstance(info, list)
        return int(info[2]), int(info[1])

    @property
    def kind(self) -> str:
        """The domain type this host's driver takes: "test" (libvirt's test driver) or
        "qemu". Read once per connection: a driver does not change under it."""
        self._connect()
        return self._kind

    def domains(self) -> list[Domain]:
        def collect(conn: libvirt.virConnect) -> list[Domain]:
            result = []
            for dom in conn.listAllDomains():
                try:
                    uuid = dom.UUIDString()
                    state, _reason = dom.state()
                    memory_kib = dom.info()[2]  # current (ballooned), not its maximum
                    result.append(Domain(uuid=uuid, name=dom.name(),
                                         state=_STATES.get(state, Observed.STOPPED),
                                         managed=self._is_managed(dom, uuid),
                                         memory_mib=int(memory_kib) // 1024))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
                    # undefined while we listed: it is simply gone
            return result

        domains = self._call("list domains", collect)
        assert isinstance(domains, list)
        return domains

    def domain_stats(self) -> dict[str, DomainStats]:
        """Counters of every running domain, by name, in one libvirt call (bulk stats):
        cumulative CPU time, memory, disk and network bytes. Drivers without CPU time in
        the bulk stats (the test driver) give it through virDomainGetInfo."""
        flags = (libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
                 | libvirt.VIR_DOMAIN_STATS_BLOCK | libvirt.VIR_DOMAIN_STATS_INTERFACE
                 | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_STATE)

        def collect(conn: libvirt.virConnect) -> dict[str, DomainStats]:
            out = {}
            for dom, raw in conn.getAllDomainStats(
                    flags, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE):
                try:
                    info = dom.info() if "cpu.time" not in raw else None
                except libvirt.libvirtError:
                    continue  # gone meanwhile
                out[dom.name()] = DomainStats.parse(raw, info)
            return out

        stats = self._call("domain stats", collect)
        assert isinstance(stats, dict)
        return stats

    def _is_managed(self, dom: libvirt.virDomain, uuid: str) -> bool:
        known = self._managed.get(uuid)
        if known is None:
            try:
                dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
                known = True
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                    raise
                known = False
            self._managed[uuid] = known
        return known

    # ---- actions -----------------------------------------------------------------------------

    def define_start(self, vm: Vm, pools: Mapping[str, Pool] | None = None,
                     networks: Mapping[str, Network] | None = None,
                     host_cpus: Sequence[str] = ()) -> None:
        """Define the VM (its volumes first, where missing) and start it; its CPU is the
        baseline of host_cpus (every host's, as they reported them)."""
        def run(conn: libvirt.virConnect) -> None:
            try:
                storage_pools.ensure_volumes(conn, vm, pools or {}, self._kind == "test")
            except storage_pools.StorageError as exc:
                raise HypervisorError(f"define and start {vm.name} on {self.uri}: {exc}") \
                    from exc
            dom = conn.defineXML(self._definition(vm, pools, networks, host_cpus))
            self._managed[vm.uuid] = True
            dom.create()

        self._call(f"define and start {vm.name}", run)

    def bridges(self, names: Iterable[str]) -> set[str]:
        """Which of these bridges guests can join here, as libvirt sees the host's
        interfaces (the network namespace libvirtd plugs guests in). The test driver has no
        host interfaces of its own: this machine's kernel answers for it, as it does where
        libvirt has no interface driver."""
        wanted = sorted(set(names))
        if self._kind == "test" or not wanted:
            return bridges_present(wanted)

        def look(conn: libvirt.virConnect) -> set[str] | None:
            found = set()
            for name in wanted:
                try:
                    iface = conn.interfaceLookupByName(name)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                        return None
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_INTERFACE:
                        raise
                    continue
                if iface.isActive() and "type='bridge'" in iface.XMLDesc(0):
                    found.add(name)
            return found

        result = self._call("look up bridges", look)
        if result is None:
            return bridges_present(wanted)
        assert isinstance(result, set)
        return result

    def delete_volume(self, pool: str, volume: str) -> None:
        self._call(f"delete volume {pool}/{volume}",
                   lambda conn: storage_pools.delete_volume(conn, pool, volume))

    def sync_pools(self, pools: Mapping[str, Pool]
                   ) -> tuple[dict[str, list[float]], dict[str, str]]:
        """The cluster's pools defined and running here: what this host sees, and why not."""
        result = self._call("storage pools", lambda conn: storage_pools.sync(conn, pools))
        assert isinstance(result, tuple)
        return result

    def adopt(self, uuid: str, name: str) -> None:
        """Mark an imported domain as the cluster's, in its live and its persistent
        definition, without touching anything else."""
        def run(conn: libvirt.virConnect) -> None:
            dom = conn.lookupByUUIDString(uuid)
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, _metadata(name),
                            METADATA_KEY, METADATA_NS, flags)
            self._managed[uuid] = True

        self._call(f"adopt {name}", run)

    def inspect(self, name: str) -> tuple[str, bool, bool]:
        """A domain's persistent XML (secure parts left out), whether it runs, and whether
        it is already the cluster's: what `vm import` needs."""
        def run(conn: libvirt.virConnect) -> tuple[str, bool, bool]:
            dom = conn.lookupByName(name)
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            return xml, bool(dom.isActive()), self._is_managed(dom, dom.UUIDString())

        found = self._call(f"look up domain {name}", run)
        assert isinstance(found, tuple)
        return found

    def start(self, vm: Vm, pools: Mapping[str, Pool] | None = None,
              networks: Mapping[str, Network] | None = None,
              host_cpus: Sequence[str] = ()) -> None:
        """Start a defined domain from the cluster's newest definition of it (a resize
        since it last ran takes effect now, so does a new cluster baseline CPU)."""
        def run(conn: libvirt.virConnect) -> None:
            conn.defineXML(self._definition(vm, pools, networks, host_cpus))
            conn.lookupByUUIDString(vm.uuid).create()

        self._call(f"start {vm.name}", run)

    def _definition(self, vm: Vm, pools: Mapping[str, Pool] | None,
                    networks: Mapping[str, Network] | None, host_cpus: Sequence[str]) -> str:
        if self._kind == "test":
            return domain_xml(vm, "test", pools=pools, networks=networks)
        os.makedirs(self.guests.console_dir, exist_ok=True)  # QEMU appends consoles there
        return domain_xml(vm, self._virt, self.guests.boot, pools, networks,
                          self.guests.console_dir,
                          self.baseline(host_cpus) if vm.cpu == cpus.BASELINE else "")

    # ---- CPUs (core/cpus.py) -------------------------------------------------------------

    def host_cpu(self) -> str:
        """The CPU this host's hypervisor offers guests (the host-model of its domain
        capabilities) as a CPU definition; "" where there is none (the test driver)."""
        def read(conn: libvirt.virConnect) -> str:
            if self._kind == "test":
                return ""
            caps = ET.fromstring(conn.getDomainCapabilities(None, "x86_64", None, self._virt))
            mode = caps.find("cpu/mode[@name='host-model']")
            if mode is None or mode.get("supported") != "yes" or mode.find("model") is None:
                return ""
            cpu = ET.Element("cpu", mode="custom", match="exact")
            cpu.extend(list(mode))
            return ET.tostring(cpu, encoding="unicode")

        if self._host_cpu is None:
            found = self._call("domain capabilities", read)
            assert isinstance(found, str)
            self._host_cpu = found
        return self._host_cpu

    def baseline(self, host_cpus: Sequence[str]) -> str:
        """The CPU every one of these hosts can run, by libvirt's baseline (migratable
        features only); "" (the qemu64 fallback) when none is known or libvirt cannot say."""
        key = tuple(sorted(set(host_cpus)))
        if not key or self._kind == "test":
            return ""
        if key != self._baseline[0]:  # hosts' CPUs change rarely: ask libvirt only then
            try:
                found = self._call("CPU baseline", lambda conn: conn.baselineHypervisorCPU(
                    None, "x86_64", None, self._virt, list(key),
                    libvirt.VIR_CONNECT_BASELINE_CPU_MIGRATABLE))
            except HypervisorError as exc:
                log.warning("no baseline CPU for %d host CPUs (VMs get qemu64): %s",
                            len(key), exc)
                found = ""
            self._baseline = (key, str(found))
        return self._baseline[1]

    def console_log(self, uuid: str) -> str | None:
        """The file the domain's serial console output goes to, if it has one."""
        xml = self._call(f"look up {uuid}", lambda conn: conn.lookupByUUIDString(uuid).XMLDesc(0))
        assert isinstance(xml, str)
        return console_log_of(xml)

    def console_input(self, uuid: str, data: bytes) -> None:
        """Type into the domain's serial console (a pty console; refused while someone else,
        a `virsh console` say, holds it). The console stays open CONSOLE_HOLD seconds: QEMU
        notices a pty's reader with a 1 s timer and reads nothing typed before that (its
        output meanwhile is drained here and read from the log instead)."""
        def run(conn: libvirt.virConnect) -> None:
            dom = conn.lookupByUUIDString(uuid)
            stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            try:
                dom.openConsole(None, stream, 0)
                deadline = time.monotonic() + CONSOLE_HOLD
                sent = 0
                while time.monotonic() < deadline:
                    if sent < len(data):
                        n = stream.send(data[sent:])
                        sent += max(n, 0)  # -2: the stream is full, try again
                    stream.recv(65536)  # -2 (nothing yet) or output, which the log has
                    time.sleep(0.02)
                if sent < len(data):
                    raise HypervisorError(f"console of {uuid} took {sent} of {len(data)} "
                                          "bytes")
            finally:
                with contextlib.suppress(libvirt.libvirtError):
                    stream.abort()

        self._call(f"console input {uuid}", run)

    def shutdown(self, uuid: str) -> None:
        self._call(f"shutdown {uuid}", lambda conn: conn.lookupByUUIDString(uuid).shutdown())

    def destroy(self, uuid: str) -> None:
        self._call(f"destroy {uuid}", lambda conn: conn.lookupByUUIDString(uuid).destroy())

    def undefine(self, uuid: str) -> None:
        def run(conn: libvirt.virConnect) -> None:
            dom = conn.lookupByUUIDString(uuid)
            flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError:
                dom.undefine()  # drivers without those flags (the test driver)
            self._managed.pop(uuid, None)

        self._call(f"undefine {uuid}", run)


    def migrate(self, uuid: str, target_uri: str) -> str:
        """Move a running domain to the host at target_uri; returns how: "live" (libvirt's
        peer-to-peer live migration, persistent there, undefined here) or "cold" (the test
        driver cannot migrate: the domain is stopped and undefined here, and the target
        defines and starts it once the cluster records the move; never two copies)."""
        def run(conn: libvirt.virConnect) -> str:
            dom = conn.lookupByUUIDString(uuid)
            if self._kind == "test":
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
                return "cold"
            flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
                     | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
            if self.guests.migrate_unsafe:
                # disks on storage libvirt cannot tell is shared (the QEMU lab's shared
                # directory: one local filesystem every lab host sees); libvirt recognises
                # NFS, Ceph and cluster filesystems by itself
                flags |= libvirt.VIR_MIGRATE_UNSAFE
            dom.migrateToURI3(target_uri, {}, flags)
            return "live"

        mode = self._call(f"migrate {uuid} to {target_uri}", run)
        self._managed.pop(uuid, None)
        return str(mode)
