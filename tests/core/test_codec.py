"""Commands on the wire: JSON, versioned, never pickle; unknown versions stop the member."""

from __future__ import annotations

import json

import pytest

from hacluster.core import commands as c

SAMPLES: list[c.Command] = [
    c.RegisterHost(id="1", ts=1.5, name="h1", raft_addr="a:1", api_addr="a:2", cpus=4,
                   memory_mib=1024, disk_gib=10, lease=2.5, watchdog=1.0),
    c.SetHostStatus(id="2", term=3, name="h1", status="down", last_heard=9.5, expect_version=7),
    c.CreateVm(id="3", name="v", uuid="u", vcpus=2, memory_mib=512, disk_gib=1,
               state="stopped", ha=False, priority=9),
    c.SetVmState(id="4", name="v", state="started"),
    c.DeleteVm(id="5", name="v", expect_version=None),
    c.AssignVm(id="6", term=2, name="v", host="h1", expect_version=3),
    c.MarkPending(id="7", term=2, name="v", reasons=["h1: memory"]),
    c.ObserveVms(id="8", term=2, host="h1", observed={"v": "running"}),
    c.ClaimLeadership(id="9", term=4, leader="h1"),
    c.SetClusterVersion(id="9.1", term=4, version=2),
    c.AddMember(id="9.2", name="h4", raft="10.0.0.4:7400", api="10.0.0.4:7401",
                peer="10.0.0.4:7403", web="10.0.0.4:7402"),
    c.RemoveMember(id="9.3", name="h4"),
    c.SetVoter(id="9.4", term=4, name="h4", voter=True),
    c.FenceHost(id="10", term=4, name="h1", by="lease+watchdog", expect_version=2),
    c.ConfirmFenced(id="11", name="h1"),
    c.VmFailed(id="12", term=4, name="v", host="h1"),
    c.SetPolicy(id="13", changes={"max_restart": 3}),
    c.CreateRule(id="14", name="r", kind="affinity", strength="must", vms=["a", "b"]),
    c.DeleteRule(id="15", name="r"),
    c.SetMaintenance(id="16", name="h1", on=True),
    c.RequestMigration(id="17", name="v", to="h2"),
    c.SetMigration(id="18", term=2, name="v", to="h2", expect_version=4),
    c.FinishMigration(id="19", name="v", source="h1", to="h2", ok=True, mode="cold"),
    c.CreateToken(id="21", name="ci", role="viewer", sha256="ab" * 32, owner="jenkins",
                  expires_at=2e9, actor="token:admin", origin="10.0.0.9:5512"),
    c.RevokeToken(id="22", name="ci"),
    c.SetDirectoryRoles(id="23", roles={"cn=ops,ou=groups,dc=example": "operator"}),
    c.RaiseAlarm(id="24", term=2, key="host-down:h1", kind="host-down", severity="critical",
                 subject="h1", message="host h1 is down"),
    c.ClearAlarm(id="25", term=2, key="host-down:h1"),
    c.AckAlarm(id="26", key="host-down:h1", actor="token:ops"),
    c.CreateUser(id="27", name="ann", role="operator", password_hash="$argon2id$v=19$x"),
    c.SetPassword(id="28", name="ann", password_hash="$argon2id$v=19$y"),
    c.DeleteUser(id="29", name="ann"),
    c.CreatePool(id="30", name="nfs", type="netfs", shared=True, path="/mnt/nfs",
                 source_host="10.0.0.5", source_path="/export"),
    c.DeletePool(id="31", name="nfs"),
    c.VolumesDeleted(id="34", host="h1", volumes=["nfs/w-01234567-disk0"]),
    c.DeleteVm(id="35", name="w", delete_disks=True),
    c.ObserveHostFacts(id="32", host="h1", pools={"nfs": [100.0, 42.5]},
                       pool_errors={"x": "no"}, networks=["lan"]),
    c.CreateNetwork(id="36", name="lan", bridge="br0"),
    c.DeleteNetwork(id="37", name="lan"),
    c.ResizeVm(id="39", name="v", vcpus=4, memory_mib=None, expect_version=3),
    c.ImportVm(id="38", name="legacy", host="h1", xml="<domain/>", running=True, ha=True),
    c.CreateVm(id="33", name="w", uuid="u2", vcpus=1, memory_mib=256,
               disks=[{"pool": "nfs", "size_gib": 10, "image": "nfs/base"}],
               networks=["lan", "storage"]),
    c.Batch(id="20", term=2, commands=(
        c.AssignVm(id="20.1", term=2, name="v", host="h1", expect_version=3),
        c.MarkPending(id="20.2", term=2, name="w", reasons=["h1: memory"]))),
]


def test_every_command_type_has_a_sample() -> None:
    assert {type(s) for s in SAMPLES} == set(c.COMMAND_TYPES.values())


@pytest.mark.parametrize("cmd", SAMPLES, ids=lambda cmd: cmd.TYPE)
def test_round_trip(cmd: c.Command) -> None:
    blob = c.encode(cmd)
    envelope = json.loads(blob)
    assert envelope["v"] == c.needs(cmd) and envelope["type"] == cmd.TYPE
    assert c.decode(blob) == cmd


def test_newer_format_or_unknown_type_is_unsupported() -> None:
    envelope = json.loads(c.encode(SAMPLES[3]))
    with pytest.raises(c.UnsupportedCommand, match="needs hacluster code version 9; this "
                       "member runs version 2"):
        c.decode(json.dumps({**envelope, "v": 9}).encode())
    with pytest.raises(c.UnsupportedCommand, match=r"vm\.teleport"):
        c.decode(json.dumps({**envelope, "type": "vm.teleport"}).encode())


@pytest.mark.parametrize("blob", [b"\x80\x04garbage", b"[1,2]", b'{"type":"vm.state"}',
                                  b'{"v":1,"type":"vm.state","body":[]}',
                                  b'{"v":1,"type":"vm.state","id":"x","body":{"name":"v"}}'])
def test_malformed_bytes_are_malformed(blob: bytes) -> None:
    with pytest.raises(c.MalformedCommand):
        c.decode(blob)


def test_digest_ignores_when_and_who_but_not_what() -> None:
    a = c.CreateVm(id="r", ts=1.0, name="v", uuid="u", vcpus=1, memory_mib=64)
    assert c.digest(a) == c.digest(c.CreateVm(id="r", ts=9.0, term=3, name="v", uuid="u",
                                              vcpus=1, memory_mib=64))
    assert c.digest(a) != c.digest(c.CreateVm(id="r", name="v", uuid="u", vcpus=2,
                                              memory_mib=64))
    assert c.digest(a) != c.digest(c.DeleteVm(id="r", name="v"))
    # who asked, and from where, is recorded but is not what was asked
    assert c.digest(a) == c.digest(c.CreateVm(id="r", name="v", uuid="u", vcpus=1,
                                              memory_mib=64, actor="token:x", origin="b:1"))


def test_a_command_needs_the_version_of_its_type_and_of_the_fields_it_sets() -> None:
    create = c.CreateVm(id="a", name="v", uuid="u", vcpus=1, memory_mib=64)
    checked = c.CreateVm(id="a", name="v", uuid="u", vcpus=1, memory_mib=64, admitted_epoch=0)
    move = c.SetMigration(id="m", name="v", to="h2")
    raise_to_2 = c.SetClusterVersion(id="cv", version=2)
    assert [c.needs(x) for x in (create, checked, move,
                                 c.SetMigration(id="m", name="v", to="h2", check_target=True),
                                 raise_to_2)] == [1, 2, 1, 2, 2]
    assert c.needs(c.Batch(id="b", commands=(move, raise_to_2))) == 2
    assert c.needs(c.Batch(id="b", commands=())) == 1
    # what it needs is what it says on the wire: older code refuses it instead of misreading
    assert json.loads(c.encode(checked))["v"] == 2 and json.loads(c.encode(create))["v"] == 1
    c.check_allowed(checked, 2)
    with pytest.raises(c.TooNew, match=r"vm\.create needs cluster version 2; the cluster runs "
                       "version 1"):
        c.check_allowed(checked, 1)


def test_code_of_an_older_version_refuses_what_is_newer_even_inside_a_batch() -> None:
    old = 1
    assert c.decode(c.encode(c.SetMigration(id="m", name="v", to="h2")), old).TYPE \
        == "vm.migration"
    for newer in (c.SetClusterVersion(id="cv", version=2),
                  c.Batch(id="b", commands=(c.SetMigration(id="m", name="v", to="h2",
                                                           check_target=True),)),
                  c.SetVmState(id="s", name="v", state="running", admitted_epoch=3)):
        with pytest.raises(c.UnsupportedCommand, match="needs hacluster code version 2; this "
                           "member runs version 1"):
            c.decode(c.encode(newer), old)
    # an entry of a newer type mislabelled v1 is refused all the same
    envelope = json.loads(c.encode(c.SetClusterVersion(id="cv", version=2)))
    with pytest.raises(c.UnsupportedCommand, match=r"cluster\.version"):
        c.decode(json.dumps({**envelope, "v": 1}).encode(), old)


def test_raising_the_cluster_version_is_the_leaders_judgement_and_needs_that_code() -> None:
    to_3 = c.SetClusterVersion(id="cv", version=3)
    assert c.needs(to_3) == 3 and json.loads(c.encode(to_3))["v"] == 3
    c.check_allowed(to_3, 1)  # the leader raises it once every host said it runs 3
    c.check_allowed(c.Batch(id="b", commands=(to_3, c.SetMigration(id="m", name="v"))), 1)
    with pytest.raises(c.TooNew):
        c.check_allowed(c.Batch(id="b", commands=(to_3, c.SetMigration(
            id="m", name="v", to="h", check_target=True))), 1)
