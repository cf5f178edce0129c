"""The web server of a one-member haclusterd in this process, over real HTTPS: every endpoint
against every role, sessions with their cookie and CSRF rules, bad input, the live stream's
deltas and resumption, the VM list's search and paging, headers and vendored files."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.auth import REQUIRED
from hacluster.client import Client
from hacluster.core import commands as c
from hacluster.core.model import Role
from hacluster.daemon import Daemon
from hacluster.lab.web_client import Web, wait_event
from hacluster.web.routes import STATIC

from ..conftest import admin_token
from .test_api import member  # noqa: F401 (fixture)
from .test_bad_input import watched  # noqa: F401 (fixture)
from .test_raft import wait

# (method, route as registered, a request that changes nothing even when allowed, operation)
ENDPOINTS: list[tuple[str, str, str, Any, str]] = [
    ("GET", "/api/v1/session", "/api/v1/session", None, "WhoAmI"),
    ("DELETE", "/api/v1/session", "/api/v1/session", None, "CloseSession"),
    ("GET", "/api/v1/status", "/api/v1/status", None, "GetStatus"),
    ("GET", "/api/v1/summary", "/api/v1/summary", None, "GetSummary"),
    ("GET", "/api/v1/operations", "/api/v1/operations", None, "ListOperations"),
    ("GET", "/api/v1/hosts", "/api/v1/hosts", None, "ListHosts"),
    ("GET", "/api/v1/hosts/{name}", "/api/v1/hosts/solo", None, "GetHost"),
    ("POST", "/api/v1/hosts/{name}/maintenance", "/api/v1/hosts/ghost/maintenance",
     {"on": True}, "SetMaintenance"),
    ("GET", "/api/v1/hosts/{name}/what-if", "/api/v1/hosts/solo/what-if", None, "WhatIf"),
    ("POST", "/api/v1/hosts/{name}/confirm-fenced", "/api/v1/hosts/ghost/confirm-fenced",
     None, "ConfirmFenced"),
    ("GET", "/api/v1/hosts/{name}/history", "/api/v1/hosts/solo/history", None,
     "GetHistory"),
    ("GET", "/api/v1/vms/{name}/history", "/api/v1/vms/keep/history", None, "GetHistory"),
    ("GET", "/api/v1/vms", "/api/v1/vms", None, "ListVms"),
    ("POST", "/api/v1/vms", "/api/v1/vms", {"name": "Bad Name!", "vcpus": 1,
                                            "memory_mib": 64}, "CreateVm"),
    ("POST", "/api/v1/vms/import", "/api/v1/vms/import", {"name": "Bad!", "host": "solo"},
     "ImportVm"),
    ("GET", "/api/v1/vms/{name}", "/api/v1/vms/keep", None, "GetVm"),
    ("DELETE", "/api/v1/vms/{name}", "/api/v1/vms/ghost", None, "DeleteVm"),
    ("POST", "/api/v1/vms/{name}/start", "/api/v1/vms/ghost/start", None, "StartVm"),
    ("POST", "/api/v1/vms/{name}/stop", "/api/v1/vms/ghost/stop", None, "StopVm"),
    ("POST", "/api/v1/vms/{name}/migrate", "/api/v1/vms/ghost/migrate", {"to": ""},
     "MigrateVm"),
    ("POST", "/api/v1/vms/{name}/resize", "/api/v1/vms/ghost/resize", {"vcpus": 2},
     "ResizeVm"),
    ("GET", "/api/v1/vms/{name}/console", "/api/v1/vms/ghost/console?tail=5", None,
     "Console"),
    ("POST", "/api/v1/vms/{name}/console", "/api/v1/vms/ghost/console", {"input": "ls\n"},
     "Console"),
    ("GET", "/api/v1/vms/{name}/explain", "/api/v1/vms/keep/explain", None, "ExplainVm"),
    ("GET", "/api/v1/alarms", "/api/v1/alarms?all=true", None, "ListAlarms"),
    ("POST", "/api/v1/alarms/{key}/ack", "/api/v1/alarms/ghost:x/ack", None, "AckAlarm"),
    ("GET", "/api/v1/incidents", "/api/v1/incidents", None, "ListIncidents"),
    ("GET", "/api/v1/incidents/{id}", "/api/v1/incidents/999", None, "GetIncident"),
    ("GET", "/api/v1/rules", "/api/v1/rules", None, "ListRules"),
    ("POST", "/api/v1/rules", "/api/v1/rules", {"name": "r", "kind": "bogus", "vms": ["keep"]},
     "CreateRule"),
    ("DELETE", "/api/v1/rules/{name}", "/api/v1/rules/ghost", None, "DeleteRule"),
    ("GET", "/api/v1/storage", "/api/v1/storage", None, "ListPools"),
    ("POST", "/api/v1/storage", "/api/v1/storage", {"name": "p", "type": "zfs"},
     "CreatePool"),
    ("DELETE", "/api/v1/storage/{name}", "/api/v1/storage/ghost", None, "DeletePool"),
    ("GET", "/api/v1/networks", "/api/v1/networks", None, "ListNetworks"),
    ("POST", "/api/v1/networks", "/api/v1/networks", {"name": "n", "bridge": "bad/br"},
     "CreateNetwork"),
    ("DELETE", "/api/v1/networks/{name}", "/api/v1/networks/ghost", None, "DeleteNetwork"),
    ("GET", "/api/v1/balance", "/api/v1/balance", None, "BalancePlan"),
    ("POST", "/api/v1/balance", "/api/v1/balance", None, "BalanceRun"),
    ("GET", "/api/v1/policy", "/api/v1/policy", None, "GetPolicy"),
    ("PATCH", "/api/v1/policy", "/api/v1/policy", {"changes": {"bogus": 1}}, "SetPolicy"),
    ("GET", "/api/v1/tokens", "/api/v1/tokens", None, "ListTokens"),
    ("POST", "/api/v1/tokens", "/api/v1/tokens", {"name": "Bad Name!", "role": "viewer"},
     "CreateToken"),
    ("DELETE", "/api/v1/tokens/{name}", "/api/v1/tokens/ghost", None, "RevokeToken"),
    ("GET", "/api/v1/users", "/api/v1/users", None, "ListUsers"),
    ("POST", "/api/v1/users", "/api/v1/users", {"name": "Bad Name!", "role": "viewer",
                                                "password": "long enough password"},
     "CreateUser"),
    ("DELETE", "/api/v1/users/{name}", "/api/v1/users/ghost", None, "DeleteUser"),
    ("PUT", "/api/v1/users/{name}/password", "/api/v1/users/ghost/password",
     {"password": "long enough password"}, "SetPassword"),
    ("GET", "/api/v1/events", "/api/v1/events?follow=false", None, "WatchEvents"),
    ("GET", "/api/v1/live", "/api/v1/live", None, "WatchLive"),
    ("GET", "/metrics", "/metrics", None, "Metrics"),
]
PUBLIC_ROUTES = {("GET", "/"), ("POST", "/api/v1/session")}  # the page; logging in


@pytest.fixture
def web(member: tuple[Daemon, Client], pki: Path) -> Iterator[tuple[Daemon, Web, Client]]:  # noqa: F811
    daemon, client = member
    client.create_vm("keep", vcpus=1, memory_mib=64)
    wait(lambda: client.get_vm("keep")["status"] == "running")
    yield daemon, Web(daemon.config.me.web, pki / "ca.pem", admin_token(pki)), client


def status_of(web: Web, method: str, path: str, body: Any, token: str | None) -> int:
    """The status only: streams are left as soon as their headers came."""
    if path.endswith("/live"):
        conn = web.connection(5)
        try:
            conn.request(method, path, headers=web.headers(token))
            return conn.getresponse().status
        finally:
            conn.close()
    return web.request(method, path, body, token=token).status


def test_every_endpoint_is_listed_here(web: tuple[Daemon, Web, Client]) -> None:
    daemon, _, _ = web
    assert daemon.web.app is not None
    served = {(r.method, r.resource.canonical) for r in daemon.web.app.router.routes()
              if r.method != "HEAD" and r.resource is not None
              and not r.resource.canonical.startswith("/static")}
    listed = {(m, route) for m, route, _, _, _ in ENDPOINTS} | PUBLIC_ROUTES
    assert served == listed


def test_every_endpoint_against_every_role(
        web: tuple[Daemon, Web, Client],
        watched: tuple[Daemon, list[c.Command]]) -> None:  # noqa: F811
    _, http, client = web
    _, applied = watched
    tokens = {role: client.create_token(f"t-{role.value}", role.value)["token"]
              for role in Role}
    before = len(applied)
    for method, _, path, body, op in ENDPOINTS:
        need = REQUIRED[op]
        assert isinstance(need, Role)
        assert status_of(http, method, path, body, "") == 401, (method, path)
        assert status_of(http, method, path, body, "hat_not-a-token") == 401, (method, path)
        for role, token in tokens.items():
            status = status_of(http, method, path, body, token)
            if role.rank < need.rank:
                assert status == 403, (method, path, role, status)
            else:
                assert status not in (401, 403), (method, path, role, status)
                assert status < 500, (method, path, role, status)
    assert applied[before:] == []  # nothing any of them asked was committed


def test_refusals_say_why_in_json(web: tuple[Daemon, Web, Client]) -> None:
    _, http, client = web
    viewer = client.create_token("v", "viewer")["token"]
    r = http.request("POST", "/api/v1/vms/keep/stop", token=viewer)
    assert r.status == 403 and r.json["code"] == "denied"
    assert "StopVm needs the operator role" in r.error
    r = http.get("/api/v1/vms", token="")
    assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    assert "Authorization: Bearer" in r.error
    assert http.get("/api/v1/nothing-here").json == {"error": "no such endpoint",
                                                    "code": "not_found"}


BAD = [
    ("POST", "/api/v1/vms", b"{", "application/json", "not valid JSON"),
    ("POST", "/api/v1/vms", b"[1]", "application/json", "must be a JSON object"),
    ("POST", "/api/v1/vms", b'{"name":"x"}', "text/plain", "Content-Type: application/json"),
    ("POST", "/api/v1/vms", b'{"name":"x","vcpus":1}', "application/json",
     "missing fields: memory_mib"),
    ("POST", "/api/v1/vms", b'{"name":"x","vcpus":"1","memory_mib":64}', "application/json",
     "vcpus must be int"),
    ("POST", "/api/v1/vms", b'{"name":"x","vcpus":true,"memory_mib":64}',
     "application/json", "vcpus must be int"),
    ("POST", "/api/v1/vms", b'{"name":"x","vcpus":1,"memory_mib":64,"evil":1}',
     "application/json", "unknown fields: evil"),
    ("POST", "/api/v1/vms", b'{"name":"x","vcpus":1,"memory_mib":0}', "application/json",
     "memory_mib must be between"),
    ("POST", "/api/v1/vms", b'{"name":"keep","vcpus":1,"memory_mib":64}', "application/json",
     "already exists"),
    ("POST", "/api/v1/vms/keep/migrate", b'{"to":"nohost"}', "application/json",
     "host nohost does not exist"),
    ("PATCH", "/api/v1/policy", b'{"changes":{"max_restart":"x"}}', "application/json",
     "changes maps policy settings to numbers"),
    ("PATCH", "/api/v1/policy", b'{"changes":{"max_restart":1e9}}', "application/json",
     "max_restart"),
    ("POST", "/api/v1/rules", b'{"name":"r","kind":"affinity","vms":[1]}',
     "application/json", "vms and hosts are lists of names"),
    ("GET", "/api/v1/vms?limit=abc", b"", "", "limit must be an integer"),
    ("GET", "/api/v1/vms?limit=100000", b"", "", "limit must be between"),
    ("GET", "/api/v1/vms?sort=bogus", b"", "", "sort must be one of"),
    ("GET", "/api/v1/vms?evil=1", b"", "", "unknown parameters: evil"),
    ("GET", "/api/v1/incidents/abc", b"", "", "an incident id is a number"),
    ("GET", "/api/v1/hosts/solo/history?range=1y", b"", "", "range must be one of"),
    ("GET", "/api/v1/hosts/solo/what-if?maintenance=maybe", b"", "",
     "maintenance must be true or false"),
    ("GET", "/api/v1/vms/Bad%20Name!", b"", "", "invalid"),
    ("GET", "/api/v1/vms/keep/console?tail=abc", b"", "", "tail must be a whole number"),
    ("GET", "/api/v1/vms/keep/console?tail=20000", b"", "", "tail must be 0-10000"),
    ("POST", "/api/v1/vms/keep/console", b'{"after":-1}', "application/json",
     "after must be an offset"),
    ("POST", "/api/v1/vms/keep/console", b'{"input":"' + b"x" * 5000 + b'"}',
     "application/json", "at most 4096 bytes"),
    # the test driver's domains have no serial console
    ("GET", "/api/v1/vms/keep/console?tail=5", b"", "", "has no console log"),
]


def test_bad_input_is_refused_with_a_message_and_changes_nothing(
        web: tuple[Daemon, Web, Client],
        watched: tuple[Daemon, list[c.Command]]) -> None:  # noqa: F811
    _, http, _ = web
    _, applied = watched
    before = len(applied)
    for method, path, raw, content_type, message in BAD:
        headers = {"Content-Type": content_type} if content_type else {}
        r = http.request(method, path, raw=raw or None, headers=headers)
        assert 400 <= r.status < 500, (path, raw, r.status)
        assert message in r.error, (path, raw, r.error)
    huge = b'{"name":"' + b"x" * 100_000 + b'"}'
    r = http.request("POST", "/api/v1/vms", raw=huge,
                     headers={"Content-Type": "application/json"})
    assert r.status == 413 and r.json["code"] == "invalid"
    assert applied[before:] == []


def test_session_cookie_csrf_logout_and_revocation(web: tuple[Daemon, Web, Client],
                                                   pki: Path) -> None:
    daemon, _, client = web
    operator = client.create_token("op", "operator")["token"]
    browser = Web(daemon.config.me.web, pki / "ca.pem")
    assert browser.login("hat_wrong").status == 401
    reply = browser.login(operator)
    assert reply.status == 200, reply.body
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("__Host-hacluster-session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie, cookie
    assert "Domain" not in cookie and "Max-Age" not in cookie
    session = reply.json["name"]
    assert reply.json["role"] == "operator" and reply.json["owner"] == "session-of:op"
    me = browser.get("/api/v1/session").json
    assert me["name"] == session and me["user"] == "op" and me["csrf"] == browser.csrf

    # a write carried by the cookie needs the CSRF header, and this origin if one is given
    stop = "/api/v1/vms/keep/stop"
    assert browser.request("POST", stop).status == 403
    assert "X-CSRF-Token" in browser.request("POST", stop).error
    wrong = {"X-CSRF-Token": "0" * 64}
    assert browser.request("POST", stop, headers=wrong).status == 403
    forged = {"X-CSRF-Token": browser.csrf or "", "Origin": "https://evil.example"}
    assert browser.request("POST", stop, headers=forged).status == 403
    assert client.get_vm("keep")["state"] == "started"  # none of them did anything
    good = {"X-CSRF-Token": browser.csrf or "",
            "Origin": f"https://{daemon.config.me.web}"}
    assert browser.request("POST", stop, headers=good).status == 200
    assert client.get_vm("keep")["state"] == "stopped"
    assert browser.request("POST", "/api/v1/rules", {"name": "r", "kind": "affinity",
                                                     "vms": ["keep"]},
                           headers=good).status == 403  # an operator's session: no rules

    # revoking the token a session was opened with ends the session
    assert session in {t["name"] for t in client.list_tokens()}
    client.revoke_token("op")
    assert session not in {t["name"] for t in client.list_tokens()}
    assert browser.get("/api/v1/session").status == 401

    # logging out revokes the session's own token, not the one it was opened with
    again = Web(daemon.config.me.web, pki / "ca.pem")
    name = again.login(admin_token(pki)).json["name"]
    assert again.request("DELETE", "/api/v1/session",
                         headers={"X-CSRF-Token": again.csrf or ""}).status == 200
    assert name not in {t["name"] for t in client.list_tokens()}
    assert "admin" in {t["name"] for t in client.list_tokens()}
    assert again.get("/api/v1/session").status == 401


def test_live_stream_carries_deltas_and_resumes_after_a_reconnect(
        web: tuple[Daemon, Web, Client]) -> None:
    _, http, client = web
    stream = http.events("/api/v1/live", timeout=5)
    first_id, kind, _ = next(stream)
    assert kind == "hello"
    t0 = time.monotonic()
    threading.Timer(0.2, lambda: client.create_vm("fresh", vcpus=1, memory_mib=64)).start()
    last_id, _, delta = wait_event(stream, lambda e: e[1] == "delta"
                                   and (e[2].get("vms") or {}).get("fresh") is not None)
    assert time.monotonic() - t0 < 3.0
    assert delta["vms"]["fresh"]["name"] == "fresh"  # the record, in hactl's keys
    assert set(delta["vms"]["fresh"]) == set(client.get_vm("fresh"))
    assert "summary" in delta and delta["summary"]["vms"] >= 2
    stream.close()

    # missed while away: sent on reconnecting with Last-Event-ID, in order, nothing else
    client.stop_vm("fresh")
    wait(lambda: client.get_vm("fresh")["status"] == "stopped")
    time.sleep(0.3)
    resumed = http.events("/api/v1/live", last_event_id=last_id, timeout=2)
    missed = []
    for event_id, kind, data in resumed:
        if kind == "live":
            break
        missed.append((event_id, kind, data))
    assert missed and all(k in ("delta", "event") for _, k, _ in missed)
    assert any((d.get("vms") or {}).get("fresh", {}).get("state") == "stopped"
               for _, k, d in missed if k == "delta")
    seqs = [int(i.split(".")[1]) for i, _, _ in missed]
    assert seqs == sorted(seqs) and seqs[0] == int(last_id.split(".")[1]) + 1
    resumed.close()

    # an id from another run of this member cannot be resumed: the tab is told to reset
    stale = http.events("/api/v1/live", last_event_id=f"0000.{first_id.split('.')[1]}")
    assert next(stale)[1] == "reset"
    stale.close()


def test_event_stream_backlog_and_resume(web: tuple[Daemon, Web, Client]) -> None:
    _, http, client = web
    backlog = list(http.events("/api/v1/events?follow=false&backlog=5", timeout=5))
    assert 0 < len(backlog) <= 5 and all(kind == "event" for _, kind, _ in backlog)
    assert set(backlog[0][2]) == {"seq", "ts", "kind", "message"}
    last_id = backlog[-1][0]
    client.create_vm("later", vcpus=1, memory_mib=64)
    time.sleep(0.5)
    after = list(http.events("/api/v1/events?follow=false", last_event_id=last_id, timeout=5))
    assert after and any("later" in data["message"] for _, _, data in after)
    assert int(after[0][0].split(".")[1]) == int(last_id.split(".")[1]) + 1


def test_vm_list_searches_filters_sorts_and_pages_on_the_server(
        web: tuple[Daemon, Web, Client]) -> None:
    _, http, client = web
    for i in range(12):
        client.create_vm(f"web{i:02d}", vcpus=1, memory_mib=32 + i, stopped=i % 3 == 0)
    page = http.get("/api/v1/vms?q=web&sort=memory_mib&order=desc&limit=5&offset=2").json
    assert page["total"] == 12 and page["offset"] == 2 and page["limit"] == 5
    assert [v["name"] for v in page["vms"]] == ["web09", "web08", "web07", "web06", "web05"]
    assert page["counts"]["stopped"] == 4 and sum(page["counts"].values()) == 12
    stopped = http.get("/api/v1/vms?q=web&status=stopped").json
    assert [v["name"] for v in stopped["vms"]] == ["web00", "web03", "web06", "web09"]
    assert set(page["vms"][0]) == set(client.get_vm("web09"))  # hactl's keys


def test_pages_headers_and_vendored_files(web: tuple[Daemon, Web, Client]) -> None:
    _, http, _ = web
    index = http.get("/", token="")
    assert index.status == 200
    csp = index.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert index.headers["X-Frame-Options"] == "DENY"
    assert http.get("/api/v1/status").headers["Cache-Control"] == "no-store"
    html = index.body.decode()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # no CDN, nothing off-site
    for ref in re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html):
        assert http.get(ref, token="").status == 200, ref
    manifest = json.loads((STATIC / "vendor" / "MANIFEST.json").read_text())
    listed = {name for entry in manifest for name in entry["files"]}
    on_disk = {p.name for p in (STATIC / "vendor").iterdir()} - {"MANIFEST.json"}
    assert listed == on_disk
    for entry in manifest:
        assert entry["name"] and entry["version"] and entry["licence"]
        for name, digest in entry["files"].items():
            assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest
    for script in STATIC.glob("*.js"):
        text = script.read_text()
        assert "innerHTML" not in text and "eval(" not in text, script.name
        assert not re.search(r"setAttribute\(\s*[\"']style", text), script.name


def test_metrics_pass_promtool_and_say_what_the_replica_says(
        web: tuple[Daemon, Web, Client]) -> None:
    daemon, http, client = web
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup installs Debian's prometheus package"
    viewer = client.create_token("prometheus", "viewer")["token"]
    reply = http.get("/metrics", token=viewer)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    check = subprocess.run([promtool, "check", "metrics"], input=reply.body,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    text = reply.body.decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                   if line and not line.startswith("#"))
    assert samples["hacluster_raft_is_leader"] == "1.0"
    assert samples["hacluster_raft_has_leader"] == "1.0"
    assert 0 < float(samples["hacluster_raft_commit_index"]) <= daemon.raft.status()["commit_idx"]
    assert samples['hacluster_host_state{host="solo",state="up"}'] == "1.0"
    assert samples['hacluster_host_state{host="solo",state="down"}'] == "0.0"
    assert samples['hacluster_vm_state{host="solo",state="running",vm="keep"}'] == "1.0"
    assert samples['hacluster_vms{status="running"}'] == "1.0"
    assert float(samples['hacluster_host_memory_allocated_bytes{host="solo"}']) == 64 * 2**20
    assert "hacluster_failover_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text
    assert http.get("/metrics", token="").status == 401


def test_local_users_log_in_with_argon2_hashed_passwords(web: tuple[Daemon, Web, Client],
                                                        pki: Path) -> None:
    daemon, http, client = web
    password = "correct horse battery"
    short = http.request("POST", "/api/v1/users", {"name": "ann", "role": "operator",
                                                   "password": "short"})
    assert short.status == 400 and "12 to 1024 characters" in short.error
    created = http.request("POST", "/api/v1/users", {"name": "ann", "role": "operator",
                                                     "password": password})
    assert created.status == 201 and created.json == {
        "name": "ann", "role": "operator", "created_at": created.json["created_at"]}
    stored = daemon.raft.state.users["ann"].password_hash
    assert stored.startswith("$argon2id$") and password not in stored
    assert "m=65536" in stored  # memory-hard: 64 MiB per guess

    browser = Web(daemon.config.me.web, pki / "ca.pem")
    wrong = browser.request("POST", "/api/v1/session", {"user": "ann", "password": "nope" * 4})
    assert wrong.status == 401 and wrong.error == "wrong user name or password"
    nobody = browser.request("POST", "/api/v1/session", {"user": "zed", "password": "x" * 12})
    assert nobody.status == 401 and nobody.error == "wrong user name or password"
    reply = browser.request("POST", "/api/v1/session", {"user": "ann", "password": password},
                            token="")
    assert reply.status == 200 and reply.json["role"] == "operator"
    assert reply.json["owner"] == "user:ann"
    browser.cookie = reply.headers["Set-Cookie"].split(";", 1)[0]
    browser.csrf = reply.json["csrf"]
    me = browser.get("/api/v1/session").json
    assert me["user"] == "ann" and me["role"] == "operator"

    # her own password she may change (with the CSRF header); nobody else's
    headers = {"X-CSRF-Token": browser.csrf}
    client.create_user("bob", "viewer", "another long password")
    assert browser.request("PUT", "/api/v1/users/bob/password", {"password": "x" * 12},
                           headers=headers).status == 403
    assert browser.request("PUT", "/api/v1/users/ann/password", {"password": "new password 1"},
                           headers=headers).status == 200
    assert daemon.raft.state.users["ann"].password_hash != stored
    assert browser.request("POST", "/api/v1/session",
                           {"user": "ann", "password": "new password 1"}, token="").status == 200

    # deleted: her sessions end at once
    client.delete_user("ann")
    assert browser.get("/api/v1/session").status == 401

    # five wrong guesses lock the name out for a while, even with the right password then
    for _ in range(5):
        assert browser.request("POST", "/api/v1/session", {"user": "bob", "password": "w" * 12},
                               token="").status == 401
    locked = browser.request("POST", "/api/v1/session",
                             {"user": "bob", "password": "another long password"}, token="")
    assert locked.status == 401 and "too many failed logins" in locked.error


def test_sample_prometheus_config_and_grafana_dashboard(web: tuple[Daemon, Web, Client],
                                                        tmp_path: Path) -> None:
    """systemd/prometheus.yml.example passes promtool (its files put in place), and every
    series the Grafana dashboard asks for is one this member serves."""
    _, http, _ = web
    root = Path(__file__).resolve().parents[2] / "systemd"
    (tmp_path / "ca.pem").write_text("ca")
    (tmp_path / "token").write_text("hat_x")
    config = (root / "prometheus.yml.example").read_text() \
        .replace("/etc/prometheus/hacluster-ca.pem", str(tmp_path / "ca.pem")) \
        .replace("/etc/prometheus/hacluster.token", str(tmp_path / "token"))
    (tmp_path / "prometheus.yml").write_text(config)
    promtool = shutil.which("promtool")
    assert promtool
    check = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    text = http.get("/metrics").body.decode()
    served = set(re.findall(r"^# TYPE (\S+)", text, re.M))  # with samples or not yet
    served |= {name + "_bucket" for name in served}
    dashboard = json.loads((root / "grafana-dashboard.json").read_text())
    asked = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\bhacluster_[a-z_]+", target["expr"])}
    assert asked and asked <= served, asked - served
