"""Replaying the log gives equal state, through the wire format and through snapshots; and a
state handed to a reader never changes afterwards (copy-on-write), whatever is applied."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core import commands as c
from hacluster.core import vm_index
from hacluster.core.state import ClusterState

names = st.sampled_from(["a", "b", "c"])
hosts = st.sampled_from(["h1", "h2"])


def _cmds() -> st.SearchStrategy[c.Command]:
    i = st.uuids().map(str)
    return st.one_of(
        st.builds(c.RegisterHost, id=i, name=hosts, raft_addr=st.just("x:1"),
                  api_addr=st.just("x:2"), cpus=st.integers(1, 8),
                  memory_mib=st.integers(1, 4096), disk_gib=st.integers(0, 10)),
        st.builds(c.CreateVm, id=i, name=names, uuid=names, vcpus=st.integers(-1, 4),
                  memory_mib=st.integers(-1, 2048), state=st.sampled_from(["started",
                                                                         "stopped"])),
        st.builds(c.SetVmState, id=i, name=names, state=st.sampled_from(["started", "stopped"])),
        st.builds(c.DeleteVm, id=i, name=names),
        st.builds(c.AssignVm, id=i, name=names, host=hosts, term=st.integers(0, 3)),
        st.builds(c.ObserveVms, id=i, host=hosts, term=st.integers(0, 3),
                  observed=st.dictionaries(names, st.sampled_from(["running", "stopped"]))),
        st.builds(c.SetHostStatus, id=i, name=hosts, status=st.sampled_from(["up", "down"]),
                  term=st.integers(0, 3)),
        st.builds(c.ClaimLeadership, id=i, term=st.integers(0, 3), leader=hosts),
        st.builds(c.FenceHost, id=i, name=hosts, by=st.just("lease+watchdog"),
                  term=st.integers(0, 3)),
        st.builds(c.ConfirmFenced, id=i, name=hosts),
        st.builds(c.SetMaintenance, id=i, name=hosts, on=st.booleans()),
        st.builds(c.RequestMigration, id=i, name=names, to=st.sampled_from(["", "h1", "h2"])),
        st.builds(c.SetMigration, id=i, name=names, to=st.sampled_from(["", "h1", "h2"]),
                  term=st.integers(0, 3)),
        st.builds(c.FinishMigration, id=i, name=names, source=hosts, to=hosts, ok=st.booleans()),
        st.builds(c.VmFailed, id=i, name=names, host=hosts, term=st.integers(0, 3)),
        st.builds(c.MarkPending, id=i, name=names, reasons=st.lists(st.text(max_size=5)),
                  term=st.integers(0, 3)),
        st.builds(c.CreateRule, id=i, name=st.sampled_from(["r1", "r2"]),
                  kind=st.sampled_from(["affinity", "anti-affinity"]),
                  strength=st.sampled_from(["must", "should"]), vms=st.lists(names, max_size=3)),
        st.builds(c.SetPolicy, id=i, changes=st.dictionaries(
            st.sampled_from(["max_restart", "memory_ratio"]), st.sampled_from([0, 1, 1.5]),
            max_size=2)),
        st.builds(c.Batch, id=i, term=st.just(0), commands=st.lists(
            st.builds(c.AssignVm, id=i, name=names, host=hosts), max_size=3).map(tuple)),
    )


@settings(max_examples=300, deadline=None)
@given(log=st.lists(_cmds(), max_size=40), cut=st.integers(0, 40))
def test_replay_through_codec_and_snapshot_is_equal(log: list[c.Command], cut: int) -> None:
    direct = ClusterState()
    results = [direct.apply(cmd) for cmd in log]

    replica = ClusterState()
    for cmd in log[:cut]:
        replica.apply(c.decode(c.encode(cmd)))
    replica = ClusterState.from_dict(json.loads(json.dumps(replica.to_dict())))  # a snapshot
    replayed = [replica.apply(c.decode(c.encode(cmd))) for cmd in log[cut:]]

    assert replica == direct
    assert replayed == results[cut:] or cut > len(log)
    for vm in direct.vms.values():  # a VM is on at most one host, and only a known one
        assert vm.host is None or vm.host in direct.hosts


@settings(max_examples=200, deadline=None)
@given(log=st.lists(_cmds(), max_size=40))
def test_a_published_state_never_changes(log: list[c.Command]) -> None:
    """As the Raft adapter does: apply each command to a fork and publish the fork."""
    state = ClusterState()
    published = []
    for cmd in log:
        state = state.fork()
        state.apply(cmd)
        published.append((state, state.to_dict()))
    for view, then in published:
        assert view.to_dict() == then


@settings(max_examples=200, deadline=None)
@given(log=st.lists(_cmds(), max_size=40), read_at=st.sets(st.integers(0, 40)))
def test_the_index_carried_from_state_to_state_is_the_one_built_afresh(
        log: list[c.Command], read_at: set[int]) -> None:
    """Readers build the VM index once (core/vm_index.py); every later state carries it,
    updated by apply: it must list exactly what a scan of the VMs would."""
    state = ClusterState()
    for i, cmd in enumerate(log):
        if i in read_at:
            state.listed(vm_index.UNPLACED)  # a reader: the index exists from here on
        state = state.fork()
        state.apply(cmd)
        if state._index is not None:
            assert state._index == vm_index.build(state.vms.values()), cmd
    assert not read_at & set(range(len(log))) or state._index is not None


@settings(max_examples=300, deadline=None)
@given(log=st.lists(_cmds(), max_size=40))
def test_an_indexed_replica_applies_as_one_that_scans(log: list[c.Command]) -> None:
    """Fences and capacity checks look only at the VMs the index lists on a host when
    there is an index (ClusterState._candidates): the same answers and states as a scan."""
    scanning, indexed = ClusterState(), ClusterState().indexed()
    for cmd in log:
        scanning, answer = scanning.after(cmd)
        indexed, same = indexed.after(cmd)
        assert same == answer, cmd
        assert indexed == scanning, cmd


# ---- logs recorded by older versions ----------------------------------------------------------

RECORDED = Path(__file__).parent / "recorded"


def _known(old: Any, new: Any, where: str = "") -> list[str]:
    """Where `new` differs from `old` in what `old` has (fields added since are ignored)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in old for d in (_known(old[k], new.get(k), f"{where}.{k}")
                                         if k in new else [f"{where}.{k} missing"])]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for n, (a, b) in enumerate(zip(old, new, strict=True))
                for d in _known(a, b, f"{where}[{n}]")]
    return [] if old == new else [f"{where}: {old!r} != {new!r}"]


def _by_name(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v, key=lambda r: r["name"]) if k in ("vms", "hosts") else v
            for k, v in snapshot.items()}


@pytest.mark.parametrize("log", sorted(RECORDED.glob("log-*.jsonl.gz")), ids=lambda p: p.name)
def test_a_log_recorded_by_an_older_version_replays_to_the_same_state(log: Path) -> None:
    """apply must stay a stable function of the log: a log written before a change (here,
    before admission control moved out of apply) replays to the state it gave then."""
    expected = json.loads(gzip.decompress(
        (RECORDED / log.name.replace("log-", "state-").replace(".jsonl", ".json")).read_bytes()))
    state = ClusterState()
    codes: dict[str, int] = {}
    for line in gzip.decompress(log.read_bytes()).decode().splitlines():
        result = state.apply(c.decode(line.encode()))
        codes[result.code] = codes.get(result.code, 0) + 1
    assert codes.get("admission", 0) > 0 and codes.get("ok", 0) > 500, codes  # it covers them
    # records in name order: the order of a table is not part of the state (core/cow.py)
    assert _known(_by_name(expected), _by_name(state.to_dict())) == []
