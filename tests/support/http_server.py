"""A real HTTP server on 127.0.0.1 for the fetcher and ingest tests: routes by path, each
a function that writes the whole answer (a page, a redirect, a trickle, a huge body, gzip).

Fetches from the tests reach it through DIGEST_FETCH_ALLOW (`allow_loopback`), as an
intranet CMS would be allowed in production.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from digest.config import get_settings

Route = Callable[[BaseHTTPRequestHandler], None]


def page(body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200,
         headers: dict[str, str] | None = None) -> Route:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def gzipped(body: bytes, content_type: str = "text/html; charset=utf-8") -> Route:
    """The body gzip-encoded, whatever the request's Accept-Encoding."""
    return page(gzip.compress(body), content_type, headers={"Content-Encoding": "gzip"})


def redirect(location: str, status: int = 302) -> Route:
    return page(b"", "text/plain", status, headers={"Location": location})


def trickle(byte_every_seconds: float, total_bytes: int) -> Route:
    """A byte at a time, each within any per-read timeout: only an overall deadline stops it."""
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        try:
            for _ in range(total_bytes):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(byte_every_seconds)
        except OSError:
            pass  # the client gave up: what the test wants
    return answer


def huge(total_bytes: int, *, declared: bool = True) -> Route:
    """`total_bytes` of text, with or without a Content-Length saying so."""
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        if declared:
            handler.send_header("Content-Length", str(total_bytes))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"x" * 65536
        try:
            for start in range(0, total_bytes, len(block)):
                handler.wfile.write(block[: total_bytes - start])
        except OSError:
            pass
    return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        route = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        self.server.seen.append((self.path, dict(self.headers)))  # type: ignore[attr-defined]
        if route is None:
            page(b"missing", "text/plain", 404)(self)
            return
        route(self)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


class LocalServer:
    """A running server: `base` URL, the `routes` it serves (change them at will) and the
    requests it `seen` as (path, headers)."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.port = server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.routes: dict[str, Route] = server.routes  # type: ignore[attr-defined]
        self.seen: list[tuple[str, dict[str, str]]] = server.seen  # type: ignore[attr-defined]

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def local_server(routes: dict[str, Route] | None = None, port: int = 0) -> Iterator[LocalServer]:
    """A server on 127.0.0.1 (on `port`, e.g. the stack's publisher_port; 0: any free one)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.routes = dict(routes or {})  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LocalServer(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def allow_loopback(monkeypatch: pytest.MonkeyPatch, *entries: str) -> None:
    """Let this test's fetches reach the given host:port entries (DIGEST_FETCH_ALLOW)."""
    monkeypatch.setenv("DIGEST_FETCH_ALLOW", ",".join(entries))
    get_settings.cache_clear()
