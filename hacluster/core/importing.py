"""Bringing a domain already defined in a host's libvirt under the cluster (`vm import`).

Pure: it reads the domain's XML as its host's agent sent it. Decisions written down here:

- The domain keeps its name and UUID (a running domain cannot change either) and its
  definition: the cluster stores its XML, sanitised (no runtime `id`, no hacluster metadata
  of its own, no `<seclabel>` the host's security driver generated), and every other host
  defines the VM from that XML when it takes it over, so devices, MACs and disks stay.
- Nothing is restarted: the VM is recorded on its host, running or stopped as it is, and its
  agent adds the cluster's metadata to the live and the persistent definition.
- Its vCPUs and memory are counted on its host as they are, even past the host's capacity
  (it already runs there; placement simply gives that host nothing more).
- HA needs every disk on a shared pool of the cluster (a volume of it, or a file under its
  path) and every bridged NIC on a bridge that is a cluster network: a host that takes it
  over must have both. Without HA it stays where it is and its disks may be anywhere.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import Network, Pool

METADATA_NS = "https://hacluster.dev/xmlns/vm/1"
"""The namespace of the metadata element that marks a domain as the cluster's."""
MAX_XML = 256 * 1024  # characters of a domain definition the cluster will store


class NotImportable(ValueError):
    """The domain cannot be imported; the message says why."""


@dataclass
class Inspected:
    """What the cluster records of an imported domain."""

    uuid: str
    vcpus: int
    memory_mib: int
    xml: str
    disks: list[dict[str, Any]] = field(default_factory=list)
    nics: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why it cannot be HA


def inspect(xml: str, pools: Mapping[str, Pool], networks: Mapping[str, Network]
            ) -> Inspected:
    """Parse and sanitise a domain's XML and match its disks and NICs with the cluster's
    pools and networks. Raises NotImportable for XML the cluster cannot use."""
    if len(xml) > MAX_XML:
        raise NotImportable(f"the domain's XML is over {MAX_XML} characters")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise NotImportable(f"the domain's XML does not parse: {exc}") from exc
    if root.tag != "domain":
        raise NotImportable("not a libvirt domain definition")
    uuid = (root.findtext("uuid") or "").strip()
    if not uuid:
        raise NotImportable("the domain has no UUID")
    root.attrib.pop("id", None)
    for meta in root.findall("metadata"):
        for child in list(meta):
            if child.tag.startswith(f"{{{METADATA_NS}}}"):
                meta.remove(child)
    for label in root.findall("seclabel"):
        root.remove(label)
    found = Inspected(uuid=uuid, vcpus=_int(root.findtext("vcpu"), "vcpu"),
                      memory_mib=_memory_mib(root.find("memory")), xml="")
    devices = root.find("devices")
    for i, disk in enumerate(devices.findall("disk") if devices is not None else []):
        if disk.get("device", "disk") != "disk":
            continue  # CD-ROMs and floppies: the media are the operator's
        pool, volume = _pool_of(disk, pools)
        if pool is None:
            found.problems.append(f"disk {i} ({_source(disk) or 'no source'}) is on no "
                                  "storage pool of the cluster")
            continue
        if not pool.shared:
            found.problems.append(f"disk {i} is on local pool {pool.name}")
        found.disks.append({"pool": pool.name, "volume": volume, "size_gib": 0, "image": ""})
    by_bridge = {n.bridge: n for n in networks.values()}
    for nic in devices.findall("interface") if devices is not None else []:
        mac = nic.find("mac")
        source = nic.find("source")
        bridge = source.get("bridge", "") if source is not None else ""
        net = by_bridge.get(bridge)
        if nic.get("type") == "bridge" and net is None:
            found.problems.append(f"a NIC is on bridge {bridge}, which is no cluster network")
        elif net is not None and mac is not None and mac.get("address"):
            found.nics.append({"network": net.name, "mac": mac.get("address", "").lower()})
    found.xml = ET.tostring(root, encoding="unicode")
    return found


def _int(text: str | None, what: str) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise NotImportable(f"the domain's {what} is not a number: {text!r}") from None


UNITS = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024,
         "mib": 1024, "mb": 1e6 / 1024, "g": 1 << 20, "gib": 1 << 20, "gb": 1e9 / 1024}


def _memory_mib(element: ET.Element | None) -> int:
    if element is None:
        raise NotImportable("the domain has no memory size")
    unit = element.get("unit", "KiB").lower()
    if unit not in UNITS:
        raise NotImportable(f"the domain's memory unit {unit!r} is unknown")
    return max(int(_int(element.text, "memory") * UNITS[unit] / 1024), 1)


def _source(disk: ET.Element) -> str:
    source = disk.find("source")
    if source is None:
        return ""
    return source.get("file") or source.get("dev") or source.get("volume") or ""


def _pool_of(disk: ET.Element, pools: Mapping[str, Pool]) -> tuple[Pool | None, str]:
    """The cluster pool a disk is on, and its volume name there."""
    source = disk.find("source")
    if source is None:
        return None, ""
    if disk.get("type") == "volume":
        return pools.get(source.get("pool", "")), source.get("volume", "")
    path = source.get("file") or source.get("dev") or ""
    for pool in pools.values():
        if pool.path and posixpath.dirname(posixpath.normpath(path)) == \
                posixpath.normpath(pool.path):
            return pool, posixpath.basename(path)
    return None, ""
