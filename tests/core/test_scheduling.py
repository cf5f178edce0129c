"""Rules, maintenance, migration and balancing in the core."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core import commands as c
from hacluster.core.balance import plan_balance
from hacluster.core.host_plan import Act, Domain, plan_host
from hacluster.core.model import Observed, Vm
from hacluster.core.placement import HostMetrics, HostTable
from hacluster.core.reconcile import LeaderView, plan
from hacluster.core.state import ClusterState

from .factories import assign, cid, create, register


def cluster(hosts: int = 3, memory_mib: int = 4096) -> ClusterState:
    s = ClusterState()
    for i in range(1, hosts + 1):
        register(s, f"h{i}", memory_mib=memory_mib)
    return s


def rule(s: ClusterState, name: str, kind: str, vms: list[str], hosts: list[str] | None = None,
         strength: str = "must") -> c.Command:
    cmd = c.CreateRule(id=cid(), name=name, kind=kind, strength=strength, vms=vms,
                       hosts=hosts or [])
    return cmd


def apply(s: ClusterState, cmd: c.Command) -> str:
    r = s.apply(cmd)
    return r.code if not r.ok else "ok"


def view(s: ClusterState, **kw: object) -> LeaderView:
    heard = {h: 1.0 for h in s.hosts}
    return LeaderView(now=1.0, leader_since=0.0, last_heard=heard, **kw)  # type: ignore[arg-type]


def run(s: ClusterState, v: LeaderView | None = None) -> list[c.Command]:
    cmds = plan(s, v or view(s), 1, (f"p{cid()}" for _ in iter(int, 1)), ts=100.0).commands
    for cmd in cmds:
        assert s.apply(cmd).ok, cmd
    return cmds


# ---- rules ------------------------------------------------------------------------------------


def test_rules_are_validated_and_contradictions_refused() -> None:
    s = cluster(hosts=2)
    for v in "abc":
        create(s, v)
    assert apply(s, rule(s, "t", "affinity", ["a", "b"])) == "ok"
    assert apply(s, rule(s, "t", "affinity", ["a", "c"])) == "exists"
    bad = [rule(s, "x1", "anti-affinity", ["a", "b"]),  # a, b must be together already
           rule(s, "x2", "anti-affinity", ["a", "c", "b"]),  # 3 apart on 2 hosts
           rule(s, "x3", "affinity", ["a"]),  # one VM
           rule(s, "x4", "host", ["zz"], ["h1"]),  # unknown VM
           rule(s, "x5", "host", ["a"], ["h9"]),  # unknown host
           rule(s, "x6", "sideways", ["a", "b"])]
    for cmd in bad:
        assert apply(s, cmd) == "invalid", cmd
    assert apply(s, rule(s, "h-a", "host", ["a"], ["h1"])) == "ok"
    r = s.apply(rule(s, "h-b", "host", ["b"], ["h2"]))  # a and b together, on h1 only
    assert r.code == "invalid" and "no host is allowed" in r.message
    assert apply(s, rule(s, "soft", "anti-affinity", ["a", "b"], strength="should")) == "ok"
    assert set(s.rules) == {"t", "h-a", "soft"}


def test_must_rules_steer_placement() -> None:
    s = cluster()
    for v in ("a", "b", "c", "d"):
        create(s, v)
    s.apply(rule(s, "pin", "host", ["a"], ["h3"]))
    s.apply(rule(s, "pair", "affinity", ["a", "b"]))
    s.apply(rule(s, "apart", "anti-affinity", ["c", "d"]))
    run(s)
    vms = s.vms
    assert vms["a"].host == "h3" and vms["b"].host == "h3"
    assert vms["c"].host != vms["d"].host


def test_should_rules_are_preferences() -> None:
    s = cluster()
    create(s, "a")
    create(s, "b")
    assign(s, "a", "h1")
    s.apply(rule(s, "near", "affinity", ["a", "b"], strength="should"))
    run(s)
    assert s.vms["b"].host == "h1"  # although h2 and h3 have more room


def test_deleting_a_vm_drops_it_from_rules() -> None:
    s = cluster()
    for v in "abc":
        create(s, v)
    s.apply(rule(s, "three", "anti-affinity", ["a", "b", "c"]))
    s.apply(rule(s, "two", "affinity", ["a", "b"], strength="should"))
    s.apply(c.DeleteVm(id=cid(), name="a"))
    assert s.rules["three"].vms == ["b", "c"] and "two" not in s.rules


# ---- maintenance and migration -----------------------------------------------------------------


def test_maintenance_evacuates_within_the_concurrency_limit() -> None:
    s = cluster()
    for i in range(4):
        create(s, f"v{i}")
        assign(s, f"v{i}", "h1")
        s.apply(c.ObserveVms(id=cid(), host="h1", observed={f"v{i}": "running"}))
    s.apply(c.SetMaintenance(id=cid(), name="h1", on=True))
    moves = [m for m in run(s) if isinstance(m, c.SetMigration)]
    assert len(moves) == 2  # max_migrations_per_host
    assert {m.to for m in moves} == {"h2", "h3"}  # spread by placement
    assert run(s) == []  # nothing more until those finish
    for m in moves:
        s.apply(c.FinishMigration(id=cid(), name=m.name, source="h1", to=m.to, ok=True,
                                  mode="cold"))
    assert len([m for m in run(s) if isinstance(m, c.SetMigration)]) == 2


def test_maintenance_hosts_take_no_new_vms() -> None:
    s = cluster(hosts=2)
    s.apply(c.SetMaintenance(id=cid(), name="h1", on=True))
    create(s, "a")
    run(s)
    assert s.vms["a"].host == "h2"


def test_requested_migration_to_a_full_host_is_refused_with_the_reason() -> None:
    s = cluster(hosts=2, memory_mib=1024)
    create(s, "big", memory_mib=900)
    create(s, "a", memory_mib=512)
    assign(s, "big", "h2")
    assign(s, "a", "h1")
    assert s.apply(c.RequestMigration(id=cid(), name="a", to="h2")).ok
    run(s)
    vm = s.vms["a"]
    assert vm.host == "h1" and vm.migrating_to is None
    assert "cannot move to h2" in vm.migration_error and "memory" in vm.migration_error


def test_migration_records_live_cold_and_failed_moves() -> None:
    s = cluster()
    for v in "abc":
        create(s, v)
        assign(s, v, "h1")
        s.apply(c.SetMigration(id=cid(), name=v, to="h2"))
    assert apply(s, c.FinishMigration(id=cid(), name="a", source="h1", to="h2", ok=True,
                                      mode="live", ts=50.0)) == "ok"
    assert (s.vms["a"].host, s.vms["a"].observed, s.vms["a"].left) == (
        "h2", Observed.RUNNING, {"h1": 50.0})
    s.apply(c.FinishMigration(id=cid(), name="b", source="h1", to="h2", ok=True, mode="cold"))
    assert (s.vms["b"].host, s.vms["b"].observed) == ("h2", Observed.NONE)
    s.apply(c.FinishMigration(id=cid(), name="c", source="h1", to="h2", ok=False,
                              error="boom"))
    assert (s.vms["c"].host, s.vms["c"].migration_error) == ("h1", "boom")


def test_a_move_to_a_host_that_goes_down_stays_in_flight_until_its_source_reports() -> None:
    """The leader does not cancel it (the source's libvirt may be moving it right now, and a
    target whose daemon hung still takes it), nor fence the target by its lease while the
    VM may land there unguarded; the source's report settles it."""
    s = cluster()
    create(s, "a")
    assign(s, "a", "h1")
    s.apply(c.SetMigration(id=cid(), name="a", to="h2"))
    s.apply(c.SetHostStatus(id=cid(), name="h2", status="down"))
    heard = {"h1": 100.0, "h3": 100.0}
    late = LeaderView(now=100.0, leader_since=0.0, last_heard=heard, last_granted={"h2": 1.0})
    assert run(s, late) == []
    assert s.vms["a"].migrating_to == "h2" and s.hosts["h2"].status.value == "down"
    s.apply(c.FinishMigration(id=cid(), name="a", source="h1", to="h2", ok=False,
                              error="target unreachable"))
    (fence,) = run(s, late)
    assert isinstance(fence, c.FenceHost) and fence.name == "h2"
    assert s.vms["a"].host == "h1"


def test_the_source_agent_migrates_running_vms_and_hands_over_stopped_ones() -> None:
    vms = {"a": Vm(name="a", uuid="ua", vcpus=1, memory_mib=1, host="me", migrating_to="x"),
           "b": Vm(name="b", uuid="ub", vcpus=1, memory_mib=1, host="me", migrating_to="x")}
    doms = [Domain("ua", "a", Observed.RUNNING, True)]
    assert [(a.act, a.vm) for a in plan_host("me", vms, doms)] == [
        (Act.MIGRATE, "a"), (Act.HANDOVER, "b")]


def test_the_target_leaves_an_incoming_live_migration_alone() -> None:
    vms = {"a": Vm(name="a", uuid="ua", vcpus=1, memory_mib=1, host="src", migrating_to="me")}
    incoming = [Domain("ua", "a", Observed.PAUSED, True)]
    assert plan_host("me", vms, incoming) == []


def test_a_migrating_vm_holds_room_on_both_hosts() -> None:
    s = cluster(hosts=2, memory_mib=1024)
    create(s, "a", memory_mib=800)
    assign(s, "a", "h1")
    s.apply(c.SetMigration(id=cid(), name="a", to="h2"))
    table = HostTable.build(s.hosts.values(), s.vms.values())
    assert list(table.used_memory_mib) == [800, 800]


def test_apply_refuses_a_move_planned_onto_a_host_that_filled_up_or_went_into_maintenance(
        ) -> None:
    """A leader's pass plans moves beside placements; apply checks each against the state it
    meets, as it does for placements, and the planner tries again next pass."""
    s = cluster(hosts=3, memory_mib=1024)
    for name, host in (("a", "h1"), ("b", "h1"), ("big", "h2")):
        create(s, name, memory_mib=700 if name == "big" else 400)
        assign(s, name, host)
    full = s.apply(c.SetMigration(id=cid(), name="a", to="h2", check_target=True,
                                  expect_version=s.vms["a"].version))
    assert full.code == "conflict" and "no longer fits on h2" in full.message
    s.apply(c.SetMaintenance(id=cid(), name="h3", on=True))
    away = s.apply(c.SetMigration(id=cid(), name="a", to="h3", check_target=True,
                                  expect_version=s.vms["a"].version))
    assert away.code == "conflict" and "maintenance" in away.message
    s.apply(c.SetMaintenance(id=cid(), name="h3", on=False))
    assert s.apply(c.SetMigration(id=cid(), name="a", to="h3", check_target=True,
                                  expect_version=s.vms["a"].version)).ok
    # the second move onto h3 must count the first: 400 + 400 + 400 > 1024
    assert s.apply(c.SetMigration(id=cid(), name="b", to="h3", check_target=True,
                                  expect_version=s.vms["b"].version)).ok
    create(s, "c", memory_mib=400)
    assert assign(s, "c", "h3").code == "conflict"


# ---- balancing --------------------------------------------------------------------------------


def loaded(hosts: int = 3, vms: int = 6) -> ClusterState:
    s = cluster(hosts=hosts)
    for i in range(vms):
        create(s, f"v{i}")
        assign(s, f"v{i}", "h1")
    s.apply(c.SetPolicy(id=cid(), changes={"max_migrations_per_host": 10}))
    return s


def test_balancing_spreads_a_crowded_host() -> None:
    s = loaded()
    bp = plan_balance(s, {}, now=1000.0)
    assert bp.moves and bp.imbalance_after < bp.imbalance / 2
    assert all(m.source == "h1" for m in bp.moves)
    assert {m.target for m in bp.moves} == {"h2", "h3"}


def test_balancing_respects_cooldown_maintenance_and_threshold() -> None:
    s = loaded()
    s.apply(c.SetMaintenance(id=cid(), name="h3", on=True))
    assert {m.target for m in plan_balance(s, {}, now=1000.0).moves} == {"h2"}
    for v in s.vms.values():
        v.left = {"h2": 900.0}  # all left h2 100 s ago: not back within 600 s
    assert plan_balance(s, {}, now=1000.0).moves == []
    s.apply(c.SetPolicy(id=cid(), changes={"balance_threshold": 1.0}))
    assert plan_balance(s, {}, now=5000.0).moves == []


def test_live_cpu_load_counts() -> None:
    s = cluster(hosts=2)
    for i in range(4):
        create(s, f"v{i}")
        assign(s, f"v{i}", f"h{i % 2 + 1}")  # memory evenly spread
    hot = {"h1": HostMetrics(cpu_load=0.9), "h2": HostMetrics(cpu_load=0.1)}
    assert plan_balance(s, {}, now=1.0).moves == []
    assert [m.source for m in plan_balance(s, hot, now=1.0).moves] == ["h1"]


def test_automatic_balancing_runs_from_the_leader_when_due() -> None:
    s = loaded()
    s.apply(c.SetPolicy(id=cid(), changes={"balance_mode": 2}))
    assert not [m for m in run(s) if isinstance(m, c.SetMigration)]  # not due
    cmds = run(s, view(s, balance_due=True))
    assert [m for m in cmds if isinstance(m, c.SetMigration)]


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.sampled_from([256, 512, 1024]), min_size=1, max_size=12),
       spots=st.lists(st.integers(1, 3), min_size=12, max_size=12),
       loads=st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_balancing_never_overcommits(sizes: list[int], spots: list[int],
                                     loads: list[float]) -> None:
    s = cluster(hosts=3, memory_mib=2048)
    s.apply(c.SetPolicy(id=cid(), changes={"max_migrations_per_host": 10}))
    for i, size in enumerate(sizes):
        create(s, f"v{i}", memory_mib=size)
        s.apply(c.AssignVm(id=cid(), name=f"v{i}", host=f"h{spots[i]}"))  # may be refused
    metrics = {f"h{i + 1}": HostMetrics(cpu_load=x) for i, x in enumerate(loads)}
    bp = plan_balance(s, metrics, now=0.0)
    where = {v.name: v.host for v in s.vms.values()}
    for m in bp.moves:
        where[m.vm] = m.target
    for h in {m.target for m in bp.moves}:  # (the test's own assignments may overcommit)
        assert sum(s.vms[v].memory_mib for v, at in where.items() if at == h) <= 2048
    assert bp.imbalance_after <= bp.imbalance
