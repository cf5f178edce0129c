"""What-if answers are what the leader then does: checked against the real failover and
maintenance, run through reconcile.plan on the state itself."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core import commands as c
from hacluster.core.model import HostStatus
from hacluster.core.reconcile import LeaderView
from hacluster.core.state import ClusterState
from hacluster.core.whatif import what_if

from .factories import cid, create
from .test_scheduling import cluster, rule, run


def placed(s: ClusterState) -> ClusterState:
    run(s)
    return s


def fail_for_real(s: ClusterState, host: str) -> dict[str, str | None]:
    """Down, fenced, then the leader's passes until quiet: where each VM ended up."""
    on = sorted(v.name for v in s.vms.values() if v.host == host)
    assert s.apply(c.SetHostStatus(id=cid(), term=1, name=host, status="down")).ok
    assert s.apply(c.FenceHost(id=cid(), term=1, name=host, by="test")).ok
    heard = {h.name: 1.0 for h in s.hosts.values() if h.status is HostStatus.UP}
    live = LeaderView(now=1.0, leader_since=0.0, last_heard=heard)
    while run(s, live):
        pass
    return {name: s.vms[name].host for name in on}


def test_failure_places_each_vm_where_the_leader_then_does() -> None:
    s = cluster(hosts=3, memory_mib=4096)
    for i in range(8):
        create(s, f"v{i}", memory_mib=700, priority=i % 3)
    placed(s)
    host = s.vms["v0"].host
    assert host is not None
    before = s.to_dict()
    answer = what_if(s, host, False, {}, ts=200.0)
    assert s.to_dict() == before  # the real state is untouched
    predicted = {o.name: o.target for o in answer.vms}
    assert predicted and all(t is not None and t != host for t in predicted.values())
    assert predicted == fail_for_real(s, host)


def test_stranded_vms_say_why_and_unprotected_ones_are_told_apart() -> None:
    s = cluster(hosts=2, memory_mib=2048)
    create(s, "big", memory_mib=1500)
    create(s, "filler", memory_mib=1500)
    create(s, "scratch", memory_mib=100, ha=False)
    create(s, "idle", memory_mib=100, state="stopped")
    placed(s)
    host = s.vms["big"].host
    assert host is not None and s.vms["filler"].host != host
    for name in ("scratch", "idle"):  # put the others on big's host
        if s.vms[name].host not in (host, None):
            s.apply(c.AssignVm(id=cid(), term=1, name=name, host=host))
    s.vms["idle"].host = host  # a stopped VM still defined on the host
    outcome = {o.name: o for o in what_if(s, host, False, {}, ts=1.0).vms}
    assert outcome["big"].target is None and "memory" in outcome["big"].reason
    assert outcome["big"].reason.startswith("stranded")
    if "scratch" in outcome:
        assert outcome["scratch"].target is None and outcome["scratch"].reason.startswith("not HA")
    assert outcome["idle"].target is None and outcome["idle"].reason.startswith("stopped")
    assert what_if(s, host, False, {}, ts=1.0).stranded == ["big"]


def test_maintenance_moves_what_fits_and_names_what_cannot_move() -> None:
    s = cluster(hosts=3)
    for v in ("a", "b", "c"):
        create(s, v, memory_mib=256)
    assert s.apply(rule(s, "apart", "anti-affinity", ["a", "b", "c"])).ok
    placed(s)
    host = s.vms["a"].host
    assert host is not None
    outcome = {o.name: o for o in what_if(s, host, True, {}, ts=1.0).vms}
    assert outcome["a"].target is None  # the other two hosts each hold one of its rule
    assert "stranded on" in outcome["a"].reason and "apart" in outcome["a"].reason
    assert s.apply(c.DeleteRule(id=cid(), name="apart")).ok
    outcome = {o.name: o for o in what_if(s, host, True, {}, ts=1.0).vms}
    assert outcome["a"].target not in (None, host)
    assert outcome["a"].reason == f"live-migrated to {outcome['a'].target}"


def test_unknown_host_is_a_key_error() -> None:
    s = cluster(hosts=1)
    try:
        what_if(s, "nope", False, {}, ts=1.0)
    except KeyError:
        return
    raise AssertionError("no KeyError")


@settings(max_examples=40, deadline=None)
@given(hosts=st.integers(2, 4), sizes=st.lists(st.integers(128, 1800), min_size=1, max_size=10),
       priorities=st.lists(st.integers(0, 3), min_size=10, max_size=10),
       victim=st.integers(0, 3))
def test_what_if_always_matches_the_failover(hosts: int, sizes: list[int],
                                             priorities: list[int], victim: int) -> None:
    s = cluster(hosts=hosts, memory_mib=3072)
    for i, size in enumerate(sizes):
        create(s, f"v{i}", memory_mib=size, priority=priorities[i])
    placed(s)
    host = f"h{victim % hosts + 1}"
    predicted = {o.name: o.target for o in what_if(s, host, False, {}, ts=1.0).vms}
    assert predicted == fail_for_real(s, host)
