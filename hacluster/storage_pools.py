"""The libvirt side of storage: the cluster's pools in one host's libvirt, and VM volumes.

A pool the cluster defines carries a UUID derived from its name (uuid5), so the agent can
tell its own pools from the operator's: a pool of the same name that hacluster did not
define is reported as a conflict and never touched, and a pool the cluster deleted is
undefined (its volumes and files stay: undefining a libvirt pool deletes nothing).
"""

from __future__ import annotations

import contextlib
import re
import uuid as uuidlib
from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

import libvirt

from .core.model import Pool, PoolType, Vm
from .core.storage import volume_format

POOL_NAMESPACE = uuidlib.UUID("7f3c2a9e-5d1b-4c8e-9a6f-2b4d8e1c0a57")
GIB = 1 << 30
DEVICES = "abcdefgh"


class StorageError(Exception):
    """A VM's disks cannot be provided on this host; the message says why."""


def pool_uuid(name: str) -> str:
    return str(uuidlib.uuid5(POOL_NAMESPACE, name))


def pool_xml(pool: Pool) -> str:
    source = ""
    target = f"<target><path>{escape(pool.path)}</path></target>" if pool.path else ""
    if pool.type is PoolType.NETFS:
        source = (f"<source><host name={quoteattr(pool.source_host)}/>"
                  f"<dir path={quoteattr(pool.source_path)}/><format type='nfs'/></source>")
    elif pool.type is PoolType.LOGICAL:
        source = (f"<source><name>{escape(pool.source_path)}</name>"
                  "<format type='lvm2'/></source>")
        target = f"<target><path>/dev/{escape(pool.source_path)}</path></target>"
    elif pool.type is PoolType.RBD:
        source = (f"<source><host name={quoteattr(pool.source_host)}/>"
                  f"<name>{escape(pool.source_path)}</name></source>")
    return (f"<pool type='{pool.type.value}'><name>{escape(pool.name)}</name>"
            f"<uuid>{pool_uuid(pool.name)}</uuid>{source}{target}</pool>")


def disks_xml(vm: Vm, pools: Mapping[str, Pool]) -> str:
    """The VM's disks as libvirt volume disks (virtio, vda..., in the VM's order)."""
    out = []
    for i, d in enumerate(vm.disks):
        pool = pools.get(d["pool"])
        fmt = volume_format(pool) if pool else "qcow2"
        out.append(f"<disk type='volume' device='disk'><driver name='qemu' type='{fmt}'/>"
                   f"<source pool={quoteattr(d['pool'])} volume={quoteattr(d['volume'])}/>"
                   f"<target dev='vd{DEVICES[i]}' bus='virtio'/></disk>")
    return "".join(out)


def ensure_pool(conn: libvirt.virConnect, pool: Pool) -> libvirt.virStoragePool:
    """The cluster's pool in this libvirt, defined and running (a restarted libvirtd, or
    one that has not synced yet, gets it here)."""
    try:
        handle = conn.storagePoolLookupByName(pool.name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        handle = conn.storagePoolDefineXML(pool_xml(pool))
        if pool.type is PoolType.DIR:
            with contextlib.suppress(libvirt.libvirtError):
                handle.build(0)  # creates the directory if it is missing
    if handle.UUIDString() != pool_uuid(pool.name):
        raise StorageError(f"this host's libvirt has a pool named {pool.name} that hacluster "
                           "did not define; rename or remove it")
    if not handle.isActive():
        handle.create()
    with contextlib.suppress(libvirt.libvirtError):
        handle.setAutostart(1)
    return handle


def sync(conn: libvirt.virConnect, pools: Mapping[str, Pool]
         ) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Define, start and refresh every cluster pool in this libvirt; undefine the ones the
    cluster deleted. Returns what this host sees (name -> [capacity GiB, free GiB]) and why
    a pool is not usable here (name -> libvirt's message)."""
    seen: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    for name, pool in sorted(pools.items()):
        try:
            handle = ensure_pool(conn, pool)
            with contextlib.suppress(libvirt.libvirtError):
                handle.refresh()
            _state, capacity, _allocation, available = handle.info()
            seen[name] = [round(capacity / GIB, 1), round(available / GIB, 1)]
        except StorageError as exc:
            errors[name] = str(exc)
        except libvirt.libvirtError as exc:
            errors[name] = str(exc.get_error_message())
    for handle in conn.listAllStoragePools():
        name = handle.name()
        if name not in pools and handle.UUIDString() == pool_uuid(name):
            with contextlib.suppress(libvirt.libvirtError):
                if handle.isActive():
                    handle.destroy()
                handle.undefine()
    return seen, errors


def ensure_volumes(conn: libvirt.virConnect, vm: Vm, pools: Mapping[str, Pool],
                   simulated_sharing: bool) -> None:
    """Create the VM's volumes that do not exist yet. A volume missing from a shared pool
    for a VM that has run before is not re-created empty (that would boot a blank disk in
    place of the VM's data): the start fails with the reason. `simulated_sharing`: the test
    driver keeps each libvirtd's pools in its memory, so there "shared" can only be
    simulated by creating the volume where the VM lands."""
    for d in vm.disks:
        pool = pools.get(d["pool"])
        if pool is None:
            raise StorageError(f"storage pool {d['pool']} is not in the cluster")
        handle = ensure_pool(conn, pool)
        if _has_volume(handle, d["volume"]):
            continue
        if pool.shared and vm.running_since and not simulated_sharing:
            raise StorageError(
                f"volume {d['volume']} is missing from shared pool {pool.name} on this host: "
                "not creating an empty disk for a VM that has run before")
        handle.createXML(volume_xml(conn, pool, d), 0)


def _has_volume(handle: libvirt.virStoragePool, volume: str) -> bool:
    """Whether the pool holds the volume, after a rescan if libvirt's list says no (another
    host may have created it on the shared storage since this one last looked)."""
    for attempt in range(2):
        try:
            handle.storageVolLookupByName(volume)
            return True
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
        if attempt == 0:
            with contextlib.suppress(libvirt.libvirtError):
                handle.refresh(0)
    return False


def delete_volume(conn: libvirt.virConnect, pool: str, volume: str) -> None:
    """Delete a volume; one already gone (or a pool gone) is fine."""
    try:
        conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).delete(0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_NO_STORAGE_VOL,
                                        libvirt.VIR_ERR_NO_STORAGE_POOL):
            raise


def volume_xml(conn: libvirt.virConnect, pool: Pool, disk: Mapping[str, object]) -> str:
    fmt = volume_format(pool)
    backing = ""
    image = str(disk.get("image") or "")
    if image:
        base_pool, _, base = image.partition("/")
        vol = conn.storagePoolLookupByName(base_pool).storageVolLookupByName(base)
        found = re.search(r"<format type='([a-z0-9]+)'", vol.XMLDesc(0))
        backing = (f"<backingStore><path>{escape(vol.path())}</path>"
                   f"<format type='{found.group(1) if found else 'raw'}'/></backingStore>")
    return (f"<volume><name>{escape(str(disk['volume']))}</name>"
            f"<capacity unit='GiB'>{int(str(disk['size_gib']))}</capacity>"
            f"<target><format type='{fmt}'/></target>{backing}</volume>")
