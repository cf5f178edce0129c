"""Alarms on a real lab, through hactl: raised by the leader from live figures and lost hosts,
acknowledged, cleared when the condition goes, recorded as events; a member without quorum
says so itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import LabRun, wait_for

pytestmark = pytest.mark.cluster


def active(lab: LabRun, endpoints: str | None = None) -> dict[str, dict[str, Any]]:
    return {a["key"]: a for a in lab.json("alarm", "list", endpoints=endpoints)}


def test_alarms_raised_acknowledged_cleared_and_local(make_lab: Callable[..., LabRun]
                                                      ) -> None:
    lab = make_lab(3)
    # a test-driver host's memory in use is its domains' (libvirt's built-in "test" domain
    # takes 2 of its 3 GiB): a threshold of 50% is crossed on every host, at once
    lab.hactl("cluster", "policy", "set", "alarm_memory=0.5", "alarm_for=0",
              endpoints=lab.endpoints)
    keys = {f"host-memory:host{i}" for i in (1, 2, 3)}
    wait_for(lambda: keys <= set(active(lab)), timeout=20, what="memory alarms")
    alarm = active(lab)["host-memory:host1"]
    assert alarm["severity"] == "warning" and alarm["active"] and alarm["acked_by"] is None
    assert "memory" in alarm["message"] and "above 50%" in alarm["message"]

    acked = lab.json("alarm", "ack", "host-memory:host1")
    assert acked["acked_by"] == "token:admin" and acked["active"]
    refused = lab.hactl("alarm", "ack", "no-such:alarm", endpoints=lab.endpoints, check=False)
    assert refused.returncode != 0 and "no active alarm" in refused.stderr

    lab.hactl("cluster", "policy", "set", "alarm_memory=0.99", endpoints=lab.endpoints)
    wait_for(lambda: not keys & set(active(lab)), timeout=20, what="memory alarms cleared")
    history = {a["key"]: a for a in lab.json("alarm", "list", "--all")}
    assert all(not history[k]["active"] and history[k]["cleared_at"] for k in keys)
    events = lab.hactl("events", "--backlog", "200", endpoints=lab.endpoints).stdout
    assert "alarm host-memory:host2 (warning)" in events
    assert "alarm host-memory:host2 cleared" in events
    assert "alarm host-memory:host1 acknowledged" in events

    # a lost host: a critical alarm; and a member alone says it has no quorum
    lab.lab("kill", "host3")
    wait_for(lambda: "host-down:host3" in active(lab), timeout=20, what="host-down alarm")
    assert active(lab)["host-down:host3"]["severity"] == "critical"
    first = next(h["api"] for h in lab.status() if h["name"] == "host1")
    leader = lab.json("cluster", "status", endpoints=first)["leader"]
    survivor = "host1" if leader != "host1" else "host2"
    lab.lab("kill", "host2" if survivor == "host1" else "host1")
    alone = next(h["api"] for h in lab.status() if h["name"] == survivor)
    wait_for(lambda: f"quorum-lost:{survivor}" in active(lab, endpoints=alone), timeout=30,
             what="quorum-lost alarm")
    local = active(lab, endpoints=alone)[f"quorum-lost:{survivor}"]
    assert local["local"] and local["severity"] == "critical"
    refused = lab.hactl("alarm", "ack", f"quorum-lost:{survivor}", endpoints=alone,
                        check=False)
    assert refused.returncode != 0 and "member's own alarm" in refused.stderr
