"""Scheduling on a real lab, through hactl, checked against each host's libvirt: migration,
maintenance evacuation, rules, explain and balancing. (libvirt's test driver cannot migrate
live: these moves are cold handovers; the oracle proves no VM ever runs twice.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .conftest import LabRun, wait_for
from .test_failover import client, start_vms, watched

pytestmark = pytest.mark.cluster


def where(lab: LabRun) -> dict[str, str]:
    """VM -> the host whose libvirt runs it."""
    return {vm: hosts[0] for vm, hosts in lab.running().items()}


def test_migrate_to_a_host_and_maintenance_evacuation(make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    names = start_vms(lab, 6)
    with watched(lab):
        vm = client(lab).get_vm("vm0")
        target = next(h for h in ("host1", "host2", "host3") if h != vm["host"])
        moved = lab.json("vm", "migrate", "vm0", "--to", target, "--wait")
        assert moved["host"] == target and where(lab)["vm0"] == target

        busiest = max(("host1", "host2", "host3"),
                      key=lambda h: sum(1 for at in where(lab).values() if at == h))
        leaving = {n for n, at in where(lab).items() if at == busiest}
        assert len(leaving) >= 2
        plan = lab.json("host", "what-if", busiest, "--maintenance")
        assert plan["maintenance"] is True and {v["name"] for v in plan["vms"]} == leaving
        assert all(v["target"] not in (None, busiest) and v["reason"].startswith("live-")
                   for v in plan["vms"]), plan
        out = lab.hactl("host", "maintenance", "enter", busiest, "--wait",
                        endpoints=lab.endpoints)
        assert f"{busiest} is empty" in out.stderr
        now = where(lab)
        assert set(now) == names and busiest not in now.values()  # each runs once, elsewhere
        # new VMs avoid it too, until it leaves maintenance
        client(lab).create_vm("late", vcpus=1, memory_mib=64)
        wait_for(lambda: "late" in where(lab))
        assert where(lab)["late"] != busiest
        host = lab.json("host", "maintenance", "exit", busiest)
        assert host["maintenance"] is False


def test_rules_explain_and_refusals_through_hactl(make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    start_vms(lab, 3)
    refused = lab.hactl("rule", "create", "crowd", "--kind", "anti-affinity", "--vm", "vm0",
                        "--vm", "vm1", "--vm", "vm2", "--vm", "vm0", endpoints=lab.endpoints,
                        check=False)
    assert refused.returncode == 1 and "distinct" in refused.stderr
    lab.json("rule", "create", "pin", "--kind", "host", "--vm", "vm2", "--host", "host1")
    assert [r["name"] for r in lab.json("rule", "list")] == ["pin"]
    explained = lab.json("vm", "explain", "vm2")
    verdicts = {h["host"]: h for h in explained["hosts"]}
    assert explained["choice"] == "host1" and verdicts["host1"]["eligible"]
    assert "must rule pin" in verdicts["host2"]["reason"]
    # a move that breaks a must rule is refused, with the reason, and nothing moves
    before = where(lab)["vm2"]
    if before != "host1":
        lab.json("vm", "migrate", "vm2", "--to", "host1", "--wait")
    out = lab.hactl("vm", "migrate", "vm2", "--to", "host2", "--wait",
                    endpoints=lab.endpoints, check=False)
    assert out.returncode == 1 and "must rule pin" in out.stderr
    assert where(lab)["vm2"] == "host1"
    lab.json("rule", "delete", "pin")
    assert lab.json("rule", "list") == []


def test_balance_plan_and_run_even_out_a_crowded_host(make_lab: Callable[..., LabRun]) -> None:
    lab = make_lab(3)
    for h in ("host2", "host3"):
        lab.json("host", "maintenance", "enter", h)
    names = start_vms(lab, 6)
    assert set(where(lab).values()) == {"host1"}
    for h in ("host2", "host3"):
        lab.json("host", "maintenance", "exit", h)
    plan = lab.json("balance", "plan")
    assert plan["moves"] and plan["imbalance_after"] < plan["imbalance"]
    assert all(m["source"] == "host1" for m in plan["moves"])
    with watched(lab):
        ran = lab.json("balance", "run")
        assert ran["applied"]
        moved = {m["vm"] for m in ran["moves"]}
        wait_for(lambda: all(where(lab).get(vm, "host1") != "host1" for vm in moved),
                 what="the planned VMs off host1")
        wait_for(lambda: not any(v["migrating_to"] for v in client(lab).list_vms()))
    assert set(where(lab)) == names
    assert lab.json("balance", "plan")["imbalance"] < plan["imbalance"]
    text = lab.hactl("balance", "plan", endpoints=lab.endpoints).stdout
    assert "load imbalance" in text
    assert json.loads(lab.hactl("--output", "json", "cluster", "policy", "show",
                                endpoints=lab.endpoints).stdout)["balance_mode"] == 1
