"""Directory accounts against a real OpenLDAP server (Debian's slapd, started here with its own
users and groups, TLS from the test CA): a login's role comes from the person's groups, is
looked up again at every login, and wrong passwords are refused and rate-limited."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hacluster.client import Client, ClientError
from hacluster.daemon import Daemon

from ..ldap_server import USERS, LdapServer, group_dn, user_dn
from .test_api import one_member
from .test_raft import wait

pytestmark = pytest.mark.skipif(shutil.which("slapd") is None,
                                reason="slapd is not installed (Debian: slapd)")


@pytest.fixture
def ldap(tmp_path: Path, pki: Path) -> Iterator[LdapServer]:
    server = LdapServer(tmp_path / "ldap", pki)
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path: Path, host_uri: str, pki: Path, ldap: LdapServer
            ) -> Iterator[tuple[Daemon, Client]]:
    directory = {"url": ldap.url, "ca": ldap.ca, "user_dn": user_dn("{user}"),
                 "group_base": f"ou=groups,{group_dn('x').split(',', 1)[1].split(',', 1)[1]}",
                 "session_ttl": 600}
    with one_member(tmp_path, host_uri, pki, directory=directory) as running:
        running[1].set_directory_roles({group_dn("operators"): "operator",
                                   group_dn("viewers"): "viewer"})
        yield running


def as_user(daemon: Daemon, pki: Path, token: str | None) -> Client:
    return Client([daemon.config.me.api], timeout=10, ca=(pki / "ca.pem").read_bytes(),
                  token=token)


def test_a_login_gets_its_groups_role_and_loses_it_when_removed(
        cluster: tuple[Daemon, Client], ldap: LdapServer, pki: Path) -> None:
    daemon = cluster[0]
    anonymous = as_user(daemon, pki, None)
    session = anonymous.login("alice", USERS["alice"])
    assert session["role"] == "operator" and session["owner"] == "ldap:alice"
    alice = as_user(daemon, pki, session["token"])
    assert alice.whoami()["role"] == "operator"
    alice.create_vm("web1", vcpus=1, memory_mib=64)  # an operator's work
    wait(lambda: alice.get_vm("web1")["status"] == "running")
    assert alice.migrate_vm("web1")["name"] == "web1"  # asked for (nowhere to go, alone)
    with pytest.raises(ClientError) as err:
        alice.set_policy({"max_restart": 2})  # an admin's
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "permission denied" in str(err.value)
    bob = as_user(daemon, pki, anonymous.login("bob", USERS["bob"])["token"])
    assert [v["name"] for v in bob.list_vms()] == ["web1"]
    with pytest.raises(ClientError, match="permission denied"):
        bob.stop_vm("web1")

    ldap.remove_from_group("alice", "operators")
    with pytest.raises(ClientError) as err:
        anonymous.login("alice", USERS["alice"])  # at the next login, no role any more
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(ClientError, match="no group that has a role"):
        anonymous.login("carol", USERS["carol"])


def test_wrong_passwords_are_refused_and_rate_limited(
        cluster: tuple[Daemon, Client], pki: Path) -> None:
    daemon, _ = cluster
    anonymous = as_user(daemon, pki, None)
    for _ in range(5):
        with pytest.raises(ClientError) as err:
            anonymous.login("bob", "not-bobs-password")
        assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert "wrong user name or password" in str(err.value)
    with pytest.raises(ClientError, match="too many failed logins"):
        anonymous.login("bob", USERS["bob"])  # even the right one, for a while
    with pytest.raises(ClientError, match="too many failed logins"):
        anonymous.login("alice", USERS["alice"])  # from this address too
