"""Networks and VM NICs: what a network and a NIC may be, and which host can give them.

Decisions written down here:

- A network is a Linux bridge of the same name on every host that offers it (Proxmox's
  `vmbr0`, oVirt's logical networks); hosts without it are filtered out by placement with
  that reason, and apply refuses a plan or a move onto them.
- A NIC's MAC is chosen once, in apply (deterministic: from the VM's uuid, the NIC's index
  and a counter that skips any MAC the cluster already gave out), in the locally
  administered QEMU range 52:54:00, and never changes: a guest keeps its address across
  restarts, failovers and migrations.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Mapping
from typing import Any

from .model import Network, Vm
from .validate import name_error, shown

MAX_NICS = 8
MAX_NETWORKS = 256
BRIDGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
"""A Linux interface name: at most 15 characters, no slash or space."""


def network_errors(name: object, bridge: object) -> list[str]:
    errors = [name_error("network", name)]
    if not isinstance(bridge, str) or not BRIDGE_RE.match(bridge):
        errors.append(f"bridge {shown(bridge)} is not an interface name (1-15 letters, "
                      "digits, '_', '.' or '-')")
    return [e for e in errors if e]


def nic_errors(networks: object, known: Mapping[str, Network]) -> list[str]:
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        return ["networks must be a list of network names"]
    if len(networks) > MAX_NICS:
        return [f"a VM has at most {MAX_NICS} NICs, got {len(networks)}"]
    return [f"network {shown(n)} does not exist (hactl network list)"
            for n in networks if n not in known]


def mac_for(uuid: str, index: int, taken: Callable[[str], bool]) -> str:
    for attempt in itertools.count():
        digest = hashlib.sha256(f"{uuid}/{index}/{attempt}".encode()).digest()
        mac = "52:54:00:{:02x}:{:02x}:{:02x}".format(*digest[:3])
        if not taken(mac):
            return mac
    raise AssertionError("unreachable")


def missing_networks(vm: Vm, networks: Mapping[str, Network], host: str) -> str:
    """Why `host` cannot give the VM its NICs ("" = it can)."""
    for nic in vm.nics:
        net = networks.get(nic["network"])
        if net is None or host not in net.hosts:
            bridge = f" (bridge {net.bridge})" if net else ""
            return f"it lacks network {nic['network']}{bridge}"
    return ""


def network_dict(net: Network, vms: Mapping[str, Vm]) -> dict[str, Any]:
    """A network as `hactl network list` and the JSON API show it."""
    return {"name": net.name, "bridge": net.bridge, "hosts": sorted(net.hosts),
            "vms": sum(1 for vm in vms.values() if any(n["network"] == net.name
                                                        for n in vm.nics))}
