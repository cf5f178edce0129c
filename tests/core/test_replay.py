"""Replaying the log gives equal state, through the wire format and through snapshots."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core import commands as c
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
    )


@settings(max_examples=300, deadline=None)
@given(log=st.lists(_cmds(), max_size=40), cut=st.integers(0, 40))
def test_replay_through_codec_and_snapshot_is_equal(log: list[c.Command], cut: int) -> None:
    direct = ClusterState()
    results = [direct.apply(cmd) for cmd in log]

    replica = ClusterState()
    for cmd in log[:cut]:
        replica.apply(c.decode(c.encode(cmd)))
    replica = pickle.loads(pickle.dumps(replica))  # a snapshot taken mid-log
    replayed = [replica.apply(c.decode(c.encode(cmd))) for cmd in log[cut:]]

    assert replica == direct
    assert replayed == results[cut:] or cut > len(log)
    for vm in direct.vms.values():  # a VM is on at most one host, and only a known one
        assert vm.host is None or vm.host in direct.hosts
