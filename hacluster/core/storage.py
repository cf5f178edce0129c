"""Storage pools and VM disks: what a pool and a disk may be, and what they hold.

Pure checks and arithmetic shared by the API (refused early, with the reason), apply (the
last guard) and placement. Decisions written down here:

- A disk is a volume named after its VM and the VM's uuid (`web-1a2b3c4d-disk0`; qcow2 on
  file pools, raw on LVM and Ceph),
  so a VM re-created under the name of one deleted with its disks kept never opens the old
  disks by accident.
- `--image POOL/VOLUME` makes the boot disk a copy-on-write clone of a base volume, in the
  base's pool (the backing file must be where every host that runs the VM sees it).
- HA (failover, live migration) needs every disk on a shared pool: a host that takes over a
  VM must open the same volumes. A VM with a disk on a local pool stays on the host that
  holds its volumes (its "home", the host it was first placed on) and never moves.
- Space on a shared pool is checked when the VM is created (moving it elsewhere frees
  nothing and takes nothing); space on a local pool is checked per host by placement. Both
  with `disk_ratio` for thin provisioning, against what the cluster has handed out, not what
  the volumes hold yet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .model import NAME_RE, Pool, PoolType, Vm
from .validate import check_int, name_error, shown

# how an agent's start failure says that a lock on the VM's disks is held elsewhere (the
# lock manager, the second fence): the VM goes to error at once, never retried in a loop
LOCK_CONFLICT = "disk lock held elsewhere: "
MAX_DISKS = 8  # per VM (vda..vdh)
MAX_DISK_SIZE_GIB = 64 * 1024
MAX_POOLS = 256
MAX_REPORT_GIB = float(1 << 40)
VOLUME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]{0,254}$")
HOST_RE = re.compile(r"^[A-Za-z0-9.:_-]{1,253}$")
# what each pool type needs besides its name: (path, source_host, source_path)
NEEDS: dict[PoolType, tuple[bool, bool, bool]] = {
    PoolType.DIR: (True, False, False),
    PoolType.NETFS: (True, True, True),
    PoolType.LOGICAL: (False, False, True),
    PoolType.RBD: (False, True, True),
}


def pool_errors(name: object, type_: object, path: object, source_host: object,
                source_path: object) -> list[str]:
    """Every problem with a pool spec, in a stable order (empty = valid)."""
    errors = [name_error("pool", name)]
    if type_ not in {t.value for t in PoolType}:
        errors.append(f"pool type must be one of {', '.join(t.value for t in PoolType)}, "
                      f"got {shown(type_)}")
        return [e for e in errors if e]
    need_path, need_host, need_source = NEEDS[PoolType(type_)]
    for label, value, needed, pattern in (("path", path, need_path, PATH_RE),
                                          ("source host", source_host, need_host, HOST_RE),
                                          ("source path", source_path, need_source, None)):
        if not isinstance(value, str):
            errors.append(f"{label} must be a string")
        elif needed and not value:
            errors.append(f"a {type_} pool needs a {label}")
        elif not needed and value:
            errors.append(f"a {type_} pool takes no {label}")
        elif value and pattern is not None and not pattern.match(value):
            errors.append(f"{label} {shown(value)} is invalid")
        elif value and pattern is None and not (PATH_RE.match(value) or NAME_RE.match(value)):
            errors.append(f"{label} {shown(value)} is invalid: an absolute path or a name")
    return [e for e in errors if e]


def observation_error(seen: object, errors: object) -> str | None:
    """Why a host's pool report is malformed (None: it is well-formed)."""
    if not isinstance(seen, dict) or not isinstance(errors, dict):
        return "seen and errors must be objects"
    if len(seen) > MAX_POOLS or len(errors) > MAX_POOLS:
        return f"at most {MAX_POOLS} pools per report"
    for name, figures in seen.items():
        if (not isinstance(name, str) or not isinstance(figures, list) or len(figures) != 2
                or not all(isinstance(f, int | float) and not isinstance(f, bool)
                           and math.isfinite(f) and 0 <= f <= MAX_REPORT_GIB
                           for f in figures)):
            return f"pool {shown(name)}: expected [capacity GiB, free GiB], got {shown(figures)}"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in errors.items()):
        return "errors must map pool names to messages"
    return None


def volume_name(vm: str, uuid: str, index: int) -> str:
    return f"{vm}-{uuid.replace('-', '')[:8]}-disk{index}"


def volume_format(pool: Pool) -> str:
    """qcow2 on file pools (thin, and clones of images); raw on block and Ceph pools."""
    return "qcow2" if pool.type in (PoolType.DIR, PoolType.NETFS) else "raw"


def disk_records(vm: str, uuid: str, specs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The disks a VM is created with, from specs {"pool", "size_gib", "image"}."""
    return [{"pool": str(s.get("pool", "")), "volume": volume_name(vm, uuid, i),
             "size_gib": s.get("size_gib"), "image": str(s.get("image", "") or "")}
            for i, s in enumerate(specs)]


def disk_errors(disks: object, pools: Mapping[str, Pool], ha: bool) -> list[str]:
    """Every problem with a VM's disks against the cluster's pools."""
    if not isinstance(disks, list) or not all(isinstance(d, dict) for d in disks):
        return ["disks must be a list of {pool, size_gib, image}"]
    if len(disks) > MAX_DISKS:
        return [f"a VM has at most {MAX_DISKS} disks, got {len(disks)}"]
    errors: list[str] = []
    for i, d in enumerate(disks):
        pool = pools.get(str(d.get("pool")))
        size = check_int(f"disk {i} size_gib", d.get("size_gib"), 1, MAX_DISK_SIZE_GIB)
        if size:
            errors.append(size)
        if pool is None:
            errors.append(f"disk {i}: storage pool {shown(d.get('pool'))} does not exist "
                          "(hactl storage list)")
            continue
        image = d.get("image") or ""
        if image:
            base_pool, _, base = str(image).partition("/")
            if i != 0:
                errors.append(f"disk {i}: only the boot disk (the first) is made from an image")
            elif volume_format(pool) != "qcow2":
                errors.append(f"image {shown(image)}: copy-on-write clones need a dir or "
                              f"netfs pool, {pool.name} is {pool.type.value}")
            elif base_pool != pool.name or not VOLUME_RE.match(base):
                errors.append(f"image {shown(image)} must be POOL/VOLUME, a volume of pool "
                              f"{pool.name}")
        if ha and not pool.shared:
            errors.append(f"disk {i} is on local pool {pool.name}: an HA VM needs every disk "
                          "on a shared pool (the host it fails over to must see it); create "
                          "it with --no-ha or on a shared pool")
    return errors


def needs(vm: Vm) -> dict[str, int]:
    """GiB the VM takes in each of its pools."""
    out: dict[str, int] = {}
    for d in vm.disks:
        out[d["pool"]] = out.get(d["pool"], 0) + int(d["size_gib"])
    return out


def is_local(vm: Vm, pools: Mapping[str, Pool]) -> bool:
    """Whether a disk of the VM is on a local pool: it then stays on its home host."""
    return any(not p.shared for p in (pools.get(d["pool"]) for d in vm.disks) if p)


def unseen_pools(vm: Vm, pools: Mapping[str, Pool], host: str) -> str:
    """Why `host` cannot open the VM's disks ("" = it can): a pool it does not see, or a
    local pool whose volumes are on another host."""
    for d in vm.disks:
        pool = pools.get(d["pool"])
        if pool is None or host not in pool.seen:
            return f"it does not see storage pool {d['pool']}"
        home = vm.host or vm.last_host
        if not pool.shared and home and home != host:
            return f"the volumes are on local pool {pool.name} of {home}"
    return ""


def volumes_to_delete(vm: Vm, pools: Mapping[str, Pool]) -> list[dict[str, str]]:
    """The VM's volumes with the host to delete each: the one that last had the VM (it
    created them), or for a shared pool, if that host does not see it, the first that
    does. A VM never placed has no volumes."""
    out = []
    for d in vm.disks:
        pool = pools.get(d["pool"])
        host = vm.host or vm.last_host
        if pool is None or host is None:
            continue
        if pool.shared and host not in pool.seen and pool.seen:
            host = min(pool.seen)
        out.append({"pool": pool.name, "volume": d["volume"], "host": host, "uuid": vm.uuid})
    return out


def pinned_elsewhere(vm: Vm, host: str) -> str:
    """Why an imported VM pinned to its host cannot go to `host` ("" = it can)."""
    if vm.pinned and vm.pinned != host:
        return f"it was imported with disks or NICs only {vm.pinned} has"
    return ""


def allocated(pool: str, vms: Iterable[Vm]) -> int:
    """GiB of a pool handed out to VMs (every VM holding disks there, running or not)."""
    return sum(needs(vm).get(pool, 0) for vm in vms if vm.disks)


def shared_space_error(vm: Vm, pools: Mapping[str, Pool], vms: Iterable[Vm],
                       disk_ratio: float) -> str | None:
    """Why a shared pool has no room for the new VM's disks (None: it has, or no host has
    reported the pool's size yet: placement waits for a host that sees it anyway)."""
    wanted = {p: n for p, n in needs(vm).items() if p in pools and pools[p].shared}
    if not wanted:
        return None
    others = [v for v in vms if v.disks]
    for name, need in sorted(wanted.items()):
        pool = pools[name]
        if not pool.seen:
            continue
        room = pool.capacity_gib * disk_ratio - allocated(name, others)
        if need > room:
            return (f"storage pool {name} has {max(room, 0):.0f} GiB left to hand out "
                    f"({pool.capacity_gib:.0f} GiB x disk_ratio {disk_ratio:g}); the disks "
                    f"need {need} GiB")
    return None


def pool_dict(pool: Pool, vms: Iterable[Vm]) -> dict[str, Any]:
    """A pool as `hactl storage list` and the JSON API show it."""
    return {"name": pool.name, "type": pool.type.value, "shared": pool.shared,
            "path": pool.path, "source_host": pool.source_host,
            "source_path": pool.source_path,
            "capacity_gib": round(pool.capacity_gib, 1), "free_gib": round(pool.free_gib, 1),
            "allocated_gib": allocated(pool.name, vms), "hosts": sorted(pool.seen),
            "errors": dict(sorted(pool.errors.items()))}
