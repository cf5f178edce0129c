"""The lab's real-hypervisor hosts (`hactl lab up --hypervisor qemu`, root only).

Each host is a network namespace joined to a bridge (in a namespace of its own) by a veth
pair, with an address in 10.79.X.0/24 that exists only inside those namespaces (the root
namespace gets a blackhole route for the subnet, so a mistake fails here instead of leaving
the machine). In it runs a libvirtd of its own (system mode, qemu driver, in a private mount
namespace with its own /etc, /var/lib, /var/log and /run for libvirt), listening on the
host's address for peer-to-peer live migration and on a unix socket in the lab directory for
its haclusterd. Guests are tiny: Debian's kernel and a busybox initramfs (with the virtio
drivers) that counts its boots on its first disk (`BOOT-COUNT n`), prints its MAC, its
uptime every second and the link-local neighbours that answer a ping (`PEER fe80::...`) on
the serial console (logged to a file in the lab directory), answers each line typed there
(`TYPED ...`), run by QEMU with TCG. Each host's address
sits on a bridge, br0, that its guests' NICs join: the lab's hosts and guests share one
network. The lab's shared storage is a directory of the lab every host sees. Settings from
../shared/notes/virt-lab.md: stdio_handler=file, namespaces=[],
remember_owner=0, migration_address/host per host, user root (no /dev/kvm trap); and the
lock manager (virtlockd, lock_manager = "lockd") as every production host should have it.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import os
import shutil
import subprocess
from pathlib import Path

GUEST_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
echo GUEST-UP
if [ -b /dev/vda ]; then
    # a boot counter in the first bytes of its first disk: the same disk after a failover
    n=$(dd if=/dev/vda bs=16 count=1 2>/dev/null | tr -dc 0-9)
    n=$((${n:-0} + 1))
    printf '%-15s\\n' "$n" | dd of=/dev/vda bs=16 count=1 conv=notrunc,fsync 2>/dev/null
    sync
    echo "BOOT-COUNT $n"
fi
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    echo "MAC $(cat /sys/class/net/eth0/address)"
fi
# each line typed on the serial console (`hactl vm console`) is answered, to show it arrived
(while read -r line; do echo "TYPED $line"; done) < /dev/ttyS0 &
while true; do
    echo "uptime $(cut -d' ' -f1 /proc/uptime)"
    if [ -e /sys/class/net/eth0 ]; then
        # who else is on the lab's network: every link-local neighbour that answers
        ping -6 -w 1 ff02::1%eth0 2>/dev/null |
            sed -n 's/.*from \\(fe80:[^ ]*\\):.*/PEER \\1/p'
    fi
    sleep 1
done
"""
# the virtio drivers the guests need (Debian builds them as modules; their dependencies
# come along, from the kernel's modules.dep)
GUEST_MODULES = ["virtio_pci", "virtio_blk", "virtio_net"]
GUEST_BRIDGE = "br0"  # on every lab host; the guests' NICs join it



class QemuLabError(Exception):
    pass


def requirements() -> list[str]:
    """What is missing for a QEMU lab on this machine (empty: nothing)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces, a system libvirtd per host)")
    if not shutil.which("qemu-system-x86_64"):
        missing.append("qemu-system-x86_64 (Debian: qemu-system-x86)")
    if not glob.glob("/boot/vmlinuz-*"):
        missing.append("a kernel in /boot (Debian: linux-image-amd64)")
    if not Path("/bin/busybox").exists():
        missing.append("/bin/busybox (Debian: busybox-static)")
    if not shutil.which("qemu-img"):
        missing.append("qemu-img for the guests' qcow2 disks (Debian: qemu-utils)")
    return missing


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the 'newc' format the kernel unpacks as an initramfs."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(f"{f:08x}".encode() for f in fields) + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4) + data + b"\0" * (-len(data) % 4))
    return out.getvalue()


def build_guest(directory: Path) -> tuple[str, str]:
    """Kernel and initramfs of the lab's guests, built once per lab: (kernel, initrd)."""
    directory.mkdir(parents=True, exist_ok=True)
    kernel = sorted(glob.glob("/boot/vmlinuz-*"))[-1]
    initrd = directory / "guest.initrd"
    if not initrd.exists():
        busybox = Path("/bin/busybox").read_bytes()
        modules = _modules(kernel.removeprefix("/boot/vmlinuz-"))
        archive = _newc([("bin", 0o40755, b""), ("proc", 0o40755, b""), ("dev", 0o40755, b""),
                         ("sys", 0o40755, b""), ("lib", 0o40755, b""),
                         ("lib/modules", 0o40755, b""),
                         ("lib/modules/order", 0o100644, " ".join(modules).encode()),
                         *[(f"lib/modules/{m}.ko", 0o100644, data)
                           for m, data in modules.items()],
                         ("bin/busybox", 0o100755, busybox),
                         ("init", 0o100755, GUEST_INIT.encode())])
        initrd.write_bytes(gzip.compress(archive, compresslevel=1))
    return kernel, str(initrd)


def _modules(version: str) -> dict[str, bytes]:
    """GUEST_MODULES of the guests' kernel and what they depend on, in an order insmod can
    load them (those it has as modules: built-in ones need nothing)."""
    base = Path(f"/lib/modules/{version}")
    deps: dict[str, list[str]] = {}
    with contextlib.suppress(OSError):
        for line in (base / "modules.dep").read_text().splitlines():
            module, _, needs = line.partition(":")
            deps[module] = needs.split()
    by_name = {Path(m).name.removesuffix(".ko"): m for m in deps}
    out: dict[str, bytes] = {}

    def add(path: str) -> None:
        name = Path(path).name.removesuffix(".ko")
        if name in out:
            return
        for need in deps.get(path, []):
            add(need)
        out[name] = (base / path).read_bytes()

    for name in GUEST_MODULES:
        if name in by_name and by_name[name].endswith(".ko"):
            add(by_name[name])
    return out


def _ip(*args: str, check: bool = True) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise QemuLabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def subnet(base_ip: str) -> str:
    return f"10.79.{base_ip.split('.')[2]}"


def bridge_ns(tag: str) -> str:
    return f"hl{tag}-br"


def host_ns(tag: str, index: int) -> str:
    return f"hl{tag}-{index}"


def net_up(tag: str, net: str, count: int) -> None:
    """The bridge namespace, and one namespace per host wired to it."""
    net_down(tag, net, count)
    _ip("route", "add", "blackhole", f"{net}.0/24")
    br = bridge_ns(tag)
    _ip("netns", "add", br)
    _ip("-n", br, "link", "add", "br0", "type", "bridge")
    _ip("-n", br, "link", "set", "br0", "up")
    for i in range(1, count + 1):
        ns, inner, outer = host_ns(tag, i), f"hlv{tag[:6]}{i}", f"hlp{tag[:6]}{i}"
        _ip("netns", "add", ns)
        _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", outer, "netns", br)
        _ip("-n", br, "link", "set", outer, "master", "br0")
        _ip("-n", br, "link", "set", outer, "up")
        # the host's address on a bridge its guests' NICs join too: one lab network
        _ip("-n", ns, "link", "add", GUEST_BRIDGE, "type", "bridge")
        _ip("-n", ns, "link", "set", inner, "master", GUEST_BRIDGE)
        _ip("-n", ns, "addr", "add", f"{net}.{i}/24", "dev", GUEST_BRIDGE)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", GUEST_BRIDGE, "up")
        _ip("-n", ns, "link", "set", "lo", "up")


def kill_namespace(ns: str) -> list[int]:
    """SIGKILL everything running in a host's namespace (its libvirtd and its guests)."""
    proc = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    pids = [int(p) for p in proc.stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    return pids


def net_down(tag: str, net: str, count: int) -> None:
    for i in range(1, count + 1):
        kill_namespace(host_ns(tag, i))
        _ip("netns", "del", host_ns(tag, i), check=False)
    _ip("netns", "del", bridge_ns(tag), check=False)
    _ip("route", "del", "blackhole", f"{net}.0/24", check=False)


def libvirtd_argv(tag: str, index: int, net: str, home: Path) -> list[str]:
    """Write the host's libvirt config and return the command that starts its libvirtd."""
    etc = home / "etc"
    # kept across the host's power cycles, as a real host's disk keeps them: its domains'
    # persistent definitions (a VM failed over elsewhere is still defined here when the host
    # comes back), its storage pools; libvirt's capability caches are this machine's own
    if not etc.exists():
        shutil.copytree("/etc/libvirt", etc)
    for sub in ("run", "lib", "log"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    ip = f"{net}.{index}"
    (etc / "libvirtd.conf").write_text(f'''listen_tcp = 1
listen_tls = 0
listen_addr = "{ip}"
auth_tcp = "none"
unix_sock_dir = "{home}/run"
host_uuid = "00000000-0000-4000-8000-{index:012d}"
log_outputs = "3:stderr"
''')
    (etc / "qemu.conf").write_text(f'''migration_address = "{ip}"
migration_host = "{ip}"
stdio_handler = "file"
namespaces = []
remember_owner = 0
dynamic_ownership = 0
user = "root"
group = "root"
swtpm_user = "root"
swtpm_group = "root"
lock_manager = "lockd"
''')
    # virtlockd, the second fence: a lock on every disk a running guest has open, taken by
    # the host's own virtlockd on the disk file itself (on the shared directory, which every
    # host's virtlockd sees): a second copy of a guest cannot open its disks anywhere
    (etc / "qemu-lockd.conf").write_text("auto_disk_leases = 1\nrequire_lease_for_disks = 1\n")
    (etc / "virtlockd.conf").write_text('log_outputs = "3:stderr"\n')
    for d in ("/var/lib/libvirt", "/var/log/libvirt", "/run/libvirt"):
        os.makedirs(d, exist_ok=True)  # mount points for the host's own copies
    ensure_qemu_user()
    script = (f"mount -t tmpfs tmpfs /run/libvirt && mount --bind {etc} /etc/libvirt && "
              f"mount --bind {home}/lib /var/lib/libvirt && "
              f"mount --bind {home}/log /var/log/libvirt && "
              f"(/usr/sbin/virtlockd --daemon --pid-file {home}/virtlockd.pid "
              f"--config {etc}/virtlockd.conf || true) && "
              f"exec /usr/sbin/libvirtd --listen --config {etc}/libvirtd.conf "
              f"--pid-file {home}/libvirtd.pid")
    return ["ip", "netns", "exec", host_ns(tag, index), "unshare", "--mount", "--uts",
            "--propagation", "private", "sh", "-c", script]


def ensure_qemu_user() -> None:
    """libvirt's qemu driver resolves its default user at start even when configured to run
    guests as root; Debian's libvirt-daemon-system would create it."""
    if subprocess.run(["id", "libvirt-qemu"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", "libvirt-qemu"], check=True)
