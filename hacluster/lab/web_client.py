"""A small HTTPS client for the web server's tests and benchmarks (the standard library's,
so what is tested is the server, not a client library's conveniences): JSON requests with
a bearer token or a session cookie, and Server-Sent Events read line by line."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return str(self.json.get("error", "")) if self.body.startswith(b"{") else ""


class Web:
    def __init__(self, address: str, ca: Path, token: str | None = None) -> None:
        host, _, port = address.replace("https://", "").strip("/").rpartition(":")
        self.host, self.port = host, int(port)
        self.context = ssl.create_default_context(cafile=str(ca))
        self.token = token
        self.cookie: str | None = None  # "NAME=VALUE" once logged in
        self.csrf: str | None = None

    def connection(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=timeout)

    def headers(self, token: str | None = None, extra: dict[str, str] | None = None
                ) -> dict[str, str]:
        out = dict(extra or {})
        bearer = token if token is not None else self.token
        if bearer:
            out["Authorization"] = f"Bearer {bearer}"
        elif self.cookie:
            out["Cookie"] = self.cookie
        return out

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> Reply:
        extra = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            extra.setdefault("Content-Type", "application/json")
        conn = self.connection()
        try:
            conn.request(method, path, body=data, headers=self.headers(token, extra))
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def login(self, token: str) -> Reply:
        reply = self.request("POST", "/api/v1/session", {"token": token}, token="")
        if reply.status == 200:
            cookie = reply.headers["Set-Cookie"]
            self.cookie = cookie.split(";", 1)[0]
            self.csrf = reply.json["csrf"]
            self.token = None
        return reply

    def events(self, path: str, *, last_event_id: str | None = None, timeout: float = 10.0,
               token: str | None = None) -> Generator[tuple[str, str, Any], None, None]:
        """(id, event, data) of each Server-Sent Event, until the stream ends or `timeout`
        passes without one (socket timeout)."""
        extra = {"Accept": "text/event-stream"}
        if last_event_id:
            extra["Last-Event-ID"] = last_event_id
        conn = self.connection(timeout)
        try:
            conn.request("GET", path, headers=self.headers(token, extra))
            response = conn.getresponse()
            if response.status != 200:
                raise AssertionError(f"{path}: {response.status} {response.read()[:200]!r}")
            event_id, event, data = "", "message", ""
            while True:
                try:
                    line = response.readline()
                except TimeoutError:
                    return
                if not line:
                    return
                text = line.decode().rstrip("\n")
                if text == "":
                    if data:
                        yield event_id, event, json.loads(data)
                    event, data = "message", ""
                elif text.startswith("id: "):
                    event_id = text[4:]
                elif text.startswith("event: "):
                    event = text[7:]
                elif text.startswith("data: "):
                    data = text[6:]
        finally:
            conn.close()


def wait_event(stream: Generator[tuple[str, str, Any], None, None], predicate: Any,
               timeout: float = 10.0
               ) -> tuple[str, str, Any]:
    deadline = time.monotonic() + timeout
    for item in stream:
        if predicate(item):
            return item
        if time.monotonic() > deadline:
            break
    raise AssertionError("the awaited event did not come")
