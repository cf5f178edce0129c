"""The vm list's messages are made again for what changed, and only for that."""

from __future__ import annotations

from hacluster.core import commands as c
from hacluster.core.state import ClusterState
from hacluster.messages import VmMessages, vm_message

from ..core.factories import assign, cid, create, register


def fresh(state: ClusterState) -> list[object]:
    return [vm_message(vm, state) for vm in sorted(state.vms.values(), key=lambda v: v.name)]


def published(state: ClusterState, cmd: c.Command) -> ClusterState:
    """The next state as the Raft adapter publishes it."""
    after, result = state.after(cmd)
    assert result.ok
    return after


def test_a_vm_list_makes_again_only_what_changed() -> None:
    state = ClusterState()
    for host in ("h1", "h2"):
        assert register(state, host).ok
    for vm, host in (("a", "h1"), ("b", "h2"), ("c", "h2")):
        assert create(state, vm).ok and assign(state, vm, host).ok
    state = state.fork()  # published: the records above are nobody's to change now
    made = VmMessages()
    first = made.all(state)
    assert first == fresh(state) and [m.name for m in first] == ["a", "b", "c"]

    # a's host goes down (its record changes, not a's); b is stopped; c is left alone
    state = published(state, c.SetHostStatus(id=cid(), name="h1", status="down"))
    state = published(state, c.SetVmState(id=cid(), name="b", state="stopped"))
    again = made.all(state)
    assert again == fresh(state)
    assert [m.status for m in first] != [m.status for m in again]
    assert again[0].status == "unknown" and again[1].state == "stopped"
    assert again[2] is first[2] and again[0] is not first[0] and again[1] is not first[1]
    assert made.one(state.vms["c"], state) is first[2]

    state = published(state, c.DeleteVm(id=cid(), name="b"))
    assert [m.name for m in made.all(state)] == ["a", "c"]
    state = state.fork()
    assert create(state, "b", vcpus=2).ok  # the same name again: a new VM, not the old message
    assert made.all(state) == fresh(state) and made.all(state)[1].vcpus == 2
