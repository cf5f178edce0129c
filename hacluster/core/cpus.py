"""Guest CPU models, as vSphere's EVC: by default a VM gets the cluster's baseline CPU (what
every host can offer, computed by libvirt from each host's CPU), so it can live-migrate to
any host; `host-passthrough` gives it the host's own CPU and keeps it on hosts whose CPU is
identical to the one it first started on.

A host's CPU is what its hypervisor offers guests (the host-model of libvirt's domain
capabilities), reported by its agent as a `<cpu>` definition; the core only checks it,
names it and fingerprints it: computing a baseline is libvirt's work (hypervisor.py).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

BASELINE, PASSTHROUGH = "baseline", "host-passthrough"
CPU_MODES = (BASELINE, PASSTHROUGH)
MAX_CPU_XML = 64 * 1024


def mode_error(mode: str) -> str | None:
    if mode not in CPU_MODES:
        return f"cpu must be {' or '.join(CPU_MODES)}, not {mode[:40]!r}"
    return None


def cpu_error(xml: str) -> str | None:
    """Why a reported host CPU is not acceptable ("" = the host reports none)."""
    if not xml:
        return None
    if len(xml) > MAX_CPU_XML:
        return f"a host CPU definition is at most {MAX_CPU_XML} characters"
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return f"a host CPU definition must be XML: {exc}"
    if root.tag != "cpu":
        return "a host CPU definition is a <cpu> element"
    return None


def model_of(xml: str) -> str:
    """The CPU's model name ("" when none is known)."""
    if not xml:
        return ""
    model = ET.fromstring(xml).find("model")
    return (model.text or "").strip() if model is not None else ""


def fingerprint(xml: str) -> str:
    """Equal for identical CPUs (what a host-passthrough VM may move between)."""
    return hashlib.sha256(xml.encode()).hexdigest()[:16] if xml else ""


def pin_error(pin: str, host_cpu_id: str) -> str:
    """Why a host-passthrough VM pinned to CPU `pin` cannot run on a host ("" if it can)."""
    if pin and host_cpu_id != pin:
        return "its CPU differs from the one this host-passthrough VM started on"
    return ""
