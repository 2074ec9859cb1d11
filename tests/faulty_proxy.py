"""An HTTP proxy on 127.0.0.1 in front of the moto S3 server that injects faults on demand.

``fail_next(n, status=500)`` answers the next ``n`` requests with an S3-style error instead of forwarding
them; ``stop()`` closes the listening socket (clients get "connection refused", as from an endpoint that
went down) and ``start()`` binds the same port again. Everything else is forwarded unchanged.

``add_rule(action, method=..., path=..., times=...)`` injects a fault on matching requests only (method, and a
regular expression searched in the unquoted ``/bucket/key?query``). Actions:

- ``fail``: answer ``status`` without forwarding (the request never reaches S3);
- ``fail_after_apply``: forward, then answer ``status`` instead of S3's reply (S3 applied it, the client sees an
  error: an ambiguous success);
- ``drop``: close the connection without forwarding or answering;
- ``drop_after_apply``: forward, then close the connection without answering (applied, reply lost).

``rule.hits`` counts the requests a rule acted on; ``times=None`` acts on every match.

``latency`` (seconds, default 0) delays every request before it is forwarded: an endpoint far away.

``log`` lists every request (``"METHOD /path?query"``) in order; ``answered(start)`` the same with the status each
got (a conditional write refused with 412 is a request that wrote nothing).
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>injected by the test proxy</Message></Error>"
)


ACTIONS = ("fail", "fail_after_apply", "drop", "drop_after_apply")


@dataclass
class Rule:
    """One injected fault: which requests it matches, what it does, how often (``times=None``: always)."""

    action: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    times: int | None = 1
    status: int = 500
    hits: int = 0

    def matches(self, method: str, target: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and method.upper() != self.method.upper():
            return False
        return self.path is None or self.path.search(unquote(target)) is not None


class FaultyProxy:
    def __init__(self, upstream: str, latency: float = 0.0) -> None:
        parts = urlsplit(upstream)
        self.latency = latency
        self.upstream = (parts.hostname, parts.port)
        self.port = 0
        self.requests = 0
        self.injected = 0
        self.log: list[str] = []  # "METHOD /path?query" of every request, in order
        self.replies: list[int | None] = []  # the HTTP status answered to each request of the log (None: none yet)
        self._failures: list[int] = []
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def add_rule(
        self,
        action: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
        status: int = 500,
    ) -> Rule:
        """Inject ``action`` (one of ACTIONS) on requests with ``method`` whose target matches ``path`` (a regex)."""
        if action not in ACTIONS:
            raise ValueError(f"proxy action {action!r}: use one of {', '.join(ACTIONS)}")
        rule = Rule(action, method, re.compile(path) if path is not None else None, times, status)
        with self._lock:
            self.rules.append(rule)
        return rule

    def heal(self) -> None:
        """Forget the failures still queued and every rule."""
        with self._lock:
            self._failures.clear()
            self.rules.clear()

    def _take_rule(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, target):
                    rule.hits += 1
                    self.injected += 1
                    return rule
        return None

    def _take_failure(self, line: str = "") -> tuple[int, int | None]:
        """The request's place in the log, and the status of a queued failure to answer it with (None: none)."""
        with self._lock:
            self.requests += 1
            self.log.append(line)
            self.replies.append(None)
            if self._failures:
                self.injected += 1
                return len(self.log) - 1, self._failures.pop(0)
        return len(self.log) - 1, None

    def _replied(self, index: int, status: int) -> None:
        with self._lock:
            self.replies[index] = status

    def answered(self, start: int = 0) -> list[str]:
        """``"STATUS METHOD /path?query"`` of the requests from ``start`` on (``-`` for a request not answered)."""
        with self._lock:
            return [f"{status or '-'} {line}" for line, status in zip(self.log[start:], self.replies[start:])]

    def start(self) -> FaultyProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                super().finish()
                with proxy._lock:
                    proxy._connections.discard(self.connection)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                index, status = proxy._take_failure(f"{self.command} {self.path}")
                rule = proxy._take_rule(self.command, self.path) if status is None else None
                if rule is not None and rule.action == "fail":
                    status = rule.status
                if status is not None:
                    self._error(status)
                    proxy._replied(index, status)
                    return
                if rule is not None and rule.action == "drop":
                    self._drop()
                    return
                if proxy.latency:
                    time.sleep(proxy.latency)
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if rule is not None and rule.action == "fail_after_apply":
                    self._error(rule.status)
                    proxy._replied(index, rule.status)
                    return
                if rule is not None and rule.action == "drop_after_apply":
                    self._drop()
                    return
                proxy._replied(index, resp.status)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                # A HEAD answer has no body but keeps the object's length (clients read sizes from it).
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _error(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(_ERROR_BODY)))
                self.end_headers()
                self.wfile.write(_ERROR_BODY)

            def _drop(self) -> None:
                """Close the connection without a reply: the client sees it dropped mid-request."""
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # a stopped endpoint also drops its open keep-alive connections
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()

    def refuses_connections(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) != 0
