"""A real OpenLDAP server (Debian's slapd) for the directory tests: its own database, users,
groups and a TLS certificate from the test CA, on loopback ports of its own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import ldap3

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret-for-tests"
USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}
GROUPS = {"operators": ["alice"], "viewers": ["bob"]}


def group_dn(name: str) -> str:
    return f"cn={name},ou=groups,{SUFFIX}"


def user_dn(name: str) -> str:
    return f"uid={name},ou=people,{SUFFIX}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LdapServer:
    def __init__(self, root: Path, pki: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"ldaps://127.0.0.1:{self.port}"
        self.ca = str(pki / "ca.pem")
        (root / "db").mkdir(parents=True)
        shutil.copy(pki / "ldap.pem", root / "ldap.pem")
        shutil.copy(pki / "ldap.key", root / "ldap.key")
        conf = root / "slapd.conf"
        conf.write_text(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
TLSCACertificateFile {self.ca}
TLSCertificateFile {root}/ldap.pem
TLSCertificateKeyFile {root}/ldap.key
database mdb
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {root}/db
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
""")
        entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
                   "o: example\ndc: example\n",
                   f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
                   f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"]
        entries += [f"dn: {user_dn(u)}\nobjectClass: inetOrgPerson\nuid: {u}\ncn: {u}\n"
                    f"sn: {u}\nuserPassword: {pw}\n" for u, pw in USERS.items()]
        # groupOfNames needs a member: a placeholder keeps a group valid when emptied
        entries += [f"dn: {group_dn(g)}\nobjectClass: groupOfNames\ncn: {g}\n"
                    + "".join(f"member: {user_dn(m)}\n" for m in [*members, "nobody"])
                    for g, members in GROUPS.items()]
        (root / "init.ldif").write_text("\n".join(entries))
        subprocess.run(["slapadd", "-f", str(conf), "-l", str(root / "init.ldif")],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen(["slapd", "-f", str(conf), "-h", f"{self.url}/",
                                      "-d", "0"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("slapd did not start") from None
                time.sleep(0.05)

    def remove_from_group(self, user: str, group: str) -> None:
        tls = ldap3.Tls(ca_certs_file=self.ca)
        server = ldap3.Server(self.url, use_ssl=True, tls=tls)
        with ldap3.Connection(server, ROOT_DN, ROOT_PW, auto_bind=True) as conn:
            conn.modify(group_dn(group),  # type: ignore[no-untyped-call]
                        {"member": [(ldap3.MODIFY_DELETE, [user_dn(user)])]})
            assert conn.result["result"] == 0, conn.result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
